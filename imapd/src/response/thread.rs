//! The THREAD response's data (RFC 5256 §4 `thread-data`):
//!
//! ```text
//! thread-data    = "THREAD" [SP 1*thread-list]
//! thread-list    = "(" (thread-members / thread-nested) ")"
//! thread-members = nz-number *(SP nz-number) [SP thread-nested]
//! thread-nested  = 2*thread-list
//! ```
//!
//! A message with one child continues its thread's list (`1 2 3`); one
//! with several opens a nested list per child (`1 (2)(3)`); a dummy
//! parent (no message) is only its children's lists (`((1)(2))`).
//! Threads are a forest kept in one arena, and both building and writing
//! walk it with explicit stacks: a reply chain 100,000 messages deep needs
//! no recursion (so no stack overflow), neither here nor when it is dropped.

use super::Buf;
use std::fmt::Write as _;

/// One node of a thread forest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadNode {
    /// The message (sequence number or UID); `None` for a dummy parent.
    pub num: Option<u32>,
    /// Children (indexes into [`Threads::nodes`]), in order.
    pub children: Vec<usize>,
}

/// The threads of a THREAD response, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Threads {
    /// Every node; children refer to others by index.
    pub nodes: Vec<ThreadNode>,
    /// The first node of each thread (indexes into `nodes`), in order.
    pub roots: Vec<usize>,
}

impl Threads {
    /// Add a node and return its index.
    pub fn push(&mut self, num: Option<u32>) -> usize {
        self.nodes.push(ThreadNode {
            num,
            children: Vec::new(),
        });
        self.nodes.len() - 1
    }

    /// Write `thread-data` after the word THREAD: ` (..)(..)`, or nothing
    /// for no threads. Indexes out of range (never made by [`Threads::push`]
    /// users) are skipped rather than trusted.
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        enum Task {
            Text(&'static [u8]),
            Node(usize),
        }
        if !self.roots.is_empty() {
            out.push(b' ');
        }
        let mut stack: Vec<Task> = Vec::new();
        for &root in self.roots.iter().rev() {
            stack.push(Task::Text(b")"));
            stack.push(Task::Node(root));
            stack.push(Task::Text(b"("));
        }
        while let Some(task) = stack.pop() {
            let n = match task {
                Task::Text(t) => {
                    out.extend_from_slice(t);
                    continue;
                }
                Task::Node(n) => n,
            };
            let Some(node) = self.nodes.get(n) else {
                continue;
            };
            if let Some(num) = node.num {
                let _ = write!(Buf(out), "{num}");
            }
            match (node.num, node.children.as_slice()) {
                (_, []) => {}
                // One child continues the list.
                (Some(_), [only]) => {
                    stack.push(Task::Node(*only));
                    stack.push(Task::Text(b" "));
                }
                (None, [only]) => stack.push(Task::Node(*only)),
                (num, many) => {
                    for &c in many.iter().rev() {
                        stack.push(Task::Text(b")"));
                        stack.push(Task::Node(c));
                        stack.push(Task::Text(b"("));
                    }
                    if num.is_some() {
                        stack.push(Task::Text(b" "));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Build threads from `(num, parent)` pairs in order (`parent` an
    /// index into the list, `None` for a root).
    fn forest(spec: &[(Option<u32>, Option<usize>)]) -> Threads {
        let mut t = Threads::default();
        for &(num, parent) in spec {
            let i = t.push(num);
            match parent {
                Some(p) => t.nodes[p].children.push(i),
                None => t.roots.push(i),
            }
        }
        t
    }

    fn enc(t: &Threads) -> String {
        let mut out = Vec::new();
        t.encode(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The examples of RFC 5256 §4 and the shapes of each kind of node.
    #[test]
    fn thread_lists_read_as_rfc_5256_says() {
        assert_eq!(enc(&Threads::default()), "");
        // (2)(3 6 (4 23)(44 7 96))
        let t = forest(&[
            (Some(2), None),
            (Some(3), None),
            (Some(6), Some(1)),
            (Some(4), Some(2)),
            (Some(23), Some(3)),
            (Some(44), Some(2)),
            (Some(7), Some(5)),
            (Some(96), Some(6)),
        ]);
        assert_eq!(enc(&t), " (2)(3 6 (4 23)(44 7 96))");
        // A dummy parent: ((3)(5))
        let t = forest(&[(None, None), (Some(3), Some(0)), (Some(5), Some(0))]);
        assert_eq!(enc(&t), " ((3)(5))");
        // A dummy with one child is only that child.
        let t = forest(&[(None, None), (Some(3), Some(0)), (Some(4), Some(1))]);
        assert_eq!(enc(&t), " (3 4)");
    }

    #[test]
    fn a_chain_of_a_hundred_thousand_needs_no_recursion() {
        let n = 100_000;
        let mut spec = vec![(Some(1), None)];
        spec.extend((1..n).map(|i| (Some(i as u32 + 1), Some(i - 1))));
        let s = enc(&forest(&spec));
        assert!(s.starts_with(" (1 2 3 "));
        assert!(s.ends_with(" 99999 100000)"));
    }
}
