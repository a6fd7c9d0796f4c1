//! THREAD's algorithms (RFC 5256 §3): ORDEREDSUBJECT and REFERENCES.
//!
//! Messages come in sequence order; the threads name them by their index
//! in that list (the caller maps indexes to sequence numbers or UIDs).
//! Siblings are ordered by sent date (§2.2), ties by sequence number.
//!
//! REFERENCES follows §3's steps 1-6 exactly (see [`references`]), on an
//! arena of containers. Every walk over the tree uses an explicit stack or
//! a loop, never recursion, so a reply chain as long as the mailbox costs
//! no stack. The loop check of step 1 walks up from the would-be parent;
//! it is skipped when the child has no children (it cannot be an
//! ancestor then: the common case), and the walks of one THREAD command
//! share a budget of [`LOOP_CHECK_BUDGET`] steps, past which a link that
//! would need a walk is not made (as if it made a loop): a hostile mailbox
//! gets shallower threads, never a slow server. References are read up to
//! the last [`MAX_REFERENCES`] IDs of a message.

use super::msgid::{first_msg_id, msg_ids};
use super::order::sent_date;
use super::subject::base_subject;
use crate::response::Threads;
use mailstore::MessageFields;
use std::collections::HashMap;

pub use crate::limits::{
    MAX_THREAD_REFERENCES as MAX_REFERENCES, THREAD_LOOP_CHECK_BUDGET as LOOP_CHECK_BUDGET,
};

const NONE: u32 = u32::MAX;

/// One message's data for threading.
struct Msg {
    /// Sent date, then index (= sequence order): the sibling order.
    key: (i64, u32),
    /// Base subject (i;ascii-casemap) and reply-or-forward.
    subject: (Vec<u8>, bool),
}

fn msgs_of(fields: &[MessageFields]) -> Vec<Msg> {
    fields
        .iter()
        .enumerate()
        .map(|(i, f)| Msg {
            key: (sent_date(f), i as u32),
            subject: base_subject(f.subject.as_deref().unwrap_or("")),
        })
        .collect()
}

/// ORDEREDSUBJECT: sort by base subject, then sent date; each run of one
/// subject is a thread whose first message is the parent of all the
/// others; threads in the order of their first messages' sent dates.
pub fn ordered_subject(fields: &[MessageFields]) -> Threads {
    let msgs = msgs_of(fields);
    let mut order: Vec<usize> = (0..msgs.len()).collect();
    order.sort_by(|&a, &b| {
        (&msgs[a].subject.0, msgs[a].key).cmp(&(&msgs[b].subject.0, msgs[b].key))
    });
    let mut t = Threads::default();
    let mut heads: Vec<usize> = Vec::new();
    let mut prev: Option<usize> = None;
    for i in order {
        let node = t.push(Some(i as u32));
        match prev {
            Some(p) if msgs[p].subject.0 == msgs[i].subject.0 => {
                let head = *heads.last().unwrap_or(&node);
                t.nodes[head].children.push(node);
            }
            _ => {
                heads.push(node);
                prev = Some(i);
            }
        }
    }
    heads.sort_by_key(|&h| t.nodes[h].num.map(|i| msgs[i as usize].key));
    t.roots = heads;
    t
}

/// A container of REFERENCES: a message or a dummy.
struct Node {
    msg: Option<u32>,
    parent: u32,
    /// Where this node is in its parent's `children` (for O(1) unlinking).
    pos: u32,
    children: Vec<u32>,
}

struct Tree {
    nodes: Vec<Node>,
    budget: u64,
}

impl Tree {
    fn add(&mut self, msg: Option<u32>) -> u32 {
        self.nodes.push(Node {
            msg,
            parent: NONE,
            pos: 0,
            children: Vec::new(),
        });
        (self.nodes.len() - 1) as u32
    }

    fn link(&mut self, parent: u32, child: u32) {
        let pos = self.nodes[parent as usize].children.len() as u32;
        self.nodes[parent as usize].children.push(child);
        let c = &mut self.nodes[child as usize];
        c.parent = parent;
        c.pos = pos;
    }

    fn unlink(&mut self, child: u32) {
        let (parent, pos) = {
            let c = &self.nodes[child as usize];
            (c.parent, c.pos as usize)
        };
        if parent == NONE {
            return;
        }
        let siblings = &mut self.nodes[parent as usize].children;
        siblings.swap_remove(pos);
        if let Some(&moved) = siblings.get(pos) {
            self.nodes[moved as usize].pos = pos as u32;
        }
        self.nodes[child as usize].parent = NONE;
    }

    /// Would making `parent` the parent of `child` make a loop (is
    /// `parent` `child` or one of its descendants)? Out of budget: yes.
    fn would_loop(&mut self, parent: u32, child: u32) -> bool {
        if parent == child {
            return true;
        }
        if self.nodes[child as usize].children.is_empty() {
            return false;
        }
        let mut at = parent;
        while at != NONE {
            if at == child {
                return true;
            }
            if self.budget == 0 {
                return true;
            }
            self.budget -= 1;
            at = self.nodes[at as usize].parent;
        }
        false
    }

    /// Move all of `from`'s children under `to`.
    fn adopt_children(&mut self, from: u32, to: u32) {
        let kids = std::mem::take(&mut self.nodes[from as usize].children);
        for k in kids {
            self.nodes[k as usize].parent = NONE;
            self.link(to, k);
        }
    }

    /// Sort every set of siblings under `root` by sent date, youngest
    /// sets first (step 6; a dummy sorts as its first child). Returns
    /// nothing; keys of dummies come from their sorted children.
    fn sort_all(&mut self, root: u32, msgs: &[Msg]) {
        let mut order = vec![root];
        let mut i = 0;
        while i < order.len() {
            let n = order[i] as usize;
            order.extend_from_slice(&self.nodes[n].children);
            i += 1;
        }
        let mut key = vec![(i64::MAX, u32::MAX); self.nodes.len()];
        for &n in order.iter().rev() {
            let mut kids = std::mem::take(&mut self.nodes[n as usize].children);
            kids.sort_by_key(|&k| key[k as usize]);
            for (p, &k) in kids.iter().enumerate() {
                self.nodes[k as usize].pos = p as u32;
            }
            key[n as usize] = match self.nodes[n as usize].msg {
                Some(m) => msgs[m as usize].key,
                None => kids
                    .first()
                    .map_or((i64::MAX, u32::MAX), |&k| key[k as usize]),
            };
            self.nodes[n as usize].children = kids;
        }
    }

    /// The message whose subject a top-level thread has (step 5.B): its
    /// own, or a dummy's first child's.
    fn subject_msg(&self, n: u32) -> Option<u32> {
        let node = &self.nodes[n as usize];
        node.msg.or_else(|| {
            node.children
                .first()
                .and_then(|&c| self.nodes[c as usize].msg)
        })
    }
}

/// The references of a message (step 1): the valid IDs of References, or
/// else the first valid ID of In-Reply-To.
fn references_of(f: &MessageFields) -> Vec<String> {
    let mut refs = f.references.as_deref().map(msg_ids).unwrap_or_default();
    if refs.is_empty() {
        refs.extend(f.in_reply_to.as_deref().and_then(first_msg_id));
    }
    if refs.len() > MAX_REFERENCES {
        refs.drain(..refs.len() - MAX_REFERENCES);
    }
    refs
}

/// REFERENCES (RFC 5256 §3).
pub fn references(fields: &[MessageFields]) -> Threads {
    let msgs = msgs_of(fields);
    let mut tree = Tree {
        nodes: Vec::with_capacity(fields.len() + 1),
        budget: LOOP_CHECK_BUDGET,
    };
    let mut ids: HashMap<String, u32> = HashMap::with_capacity(fields.len());
    // (1) For each message, in sequence order.
    for (i, f) in fields.iter().enumerate() {
        // Its container: a dummy made for its ID earlier, else a new one;
        // no ID, an invalid one or a duplicate gets a container of its own
        // (a unique ID).
        let own = f.message_id.as_deref().and_then(first_msg_id);
        let c = match own {
            Some(id) => match ids.get(&id) {
                Some(&n) if tree.nodes[n as usize].msg.is_none() => {
                    tree.nodes[n as usize].msg = Some(i as u32);
                    n
                }
                Some(_) => tree.add(Some(i as u32)),
                None => {
                    let n = tree.add(Some(i as u32));
                    ids.insert(id, n);
                    n
                }
            },
            None => tree.add(Some(i as u32)),
        };
        // (1.A) Link the references in order, parent to child, keeping
        // links already made and making none that would loop.
        let mut prev: Option<u32> = None;
        for r in references_of(f) {
            let n = match ids.get(&r) {
                Some(&n) => n,
                None => {
                    let n = tree.add(None);
                    ids.insert(r, n);
                    n
                }
            };
            if let Some(p) = prev {
                if tree.nodes[n as usize].parent == NONE && !tree.would_loop(p, n) {
                    tree.link(p, n);
                }
            }
            prev = Some(n);
        }
        // (1.B) The last reference is the parent: break any old link
        // first, and make none that would loop.
        tree.unlink(c);
        if let Some(p) = prev {
            if !tree.would_loop(p, c) {
                tree.link(p, c);
            }
        }
    }
    // (2) The parentless are the root's children.
    let root = tree.add(None);
    for n in 0..root {
        if tree.nodes[n as usize].parent == NONE {
            tree.link(root, n);
        }
    }
    // (3) Prune dummies: drop childless ones, splice the children of the
    // others into their place, except at the top where a dummy with more
    // than one child stays. Spliced children are looked at again.
    let mut stack = vec![root];
    while let Some(p) = stack.pop() {
        let mut i = 0;
        while let Some(&c) = tree.nodes[p as usize].children.get(i) {
            let node = &tree.nodes[c as usize];
            if node.msg.is_none() {
                let k = node.children.len();
                if k == 0 {
                    tree.unlink(c);
                    continue;
                }
                if p != root || k == 1 {
                    tree.unlink(c);
                    tree.adopt_children(c, p);
                    continue;
                }
            }
            if !tree.nodes[c as usize].children.is_empty() {
                stack.push(c);
            }
            i += 1;
        }
    }
    // (4) Sort (the top level by sent date, a dummy by its first child).
    tree.sort_all(root, &msgs);
    // (5) Gather threads with the same base subject.
    merge_subjects(&mut tree, root, &msgs);
    // (6) Sort every set of siblings.
    tree.sort_all(root, &msgs);
    to_threads(&tree, root)
}

/// Step 5: (A) a subject table, (B) filled with one thread per subject,
/// preferring a dummy, then a non-reply, then the earliest; (C) threads
/// of the same subject merged into it.
fn merge_subjects(tree: &mut Tree, root: u32, msgs: &[Msg]) {
    let subject = |tree: &Tree, n: u32| -> Option<(Vec<u8>, bool)> {
        let m = tree.subject_msg(n)?;
        let (s, reply) = &msgs[m as usize].subject;
        let reply = *reply && tree.nodes[n as usize].msg.is_some();
        (!s.is_empty()).then(|| (s.clone(), reply))
    };
    let is_dummy = |tree: &Tree, n: u32| tree.nodes[n as usize].msg.is_none();
    let top: Vec<u32> = tree.nodes[root as usize].children.clone();
    // (B) thread subject -> (thread, reply-or-forward)
    let mut table: HashMap<Vec<u8>, (u32, bool)> = HashMap::new();
    for &c in &top {
        let Some((s, reply)) = subject(tree, c) else {
            continue;
        };
        match table.get(&s) {
            None => {
                table.insert(s, (c, reply));
            }
            Some(&(t, t_reply)) => {
                if !is_dummy(tree, t) && (is_dummy(tree, c) || (t_reply && !reply)) {
                    table.insert(s, (c, reply));
                }
            }
        }
    }
    // (C)
    for &c in &top {
        if tree.nodes[c as usize].parent != root {
            continue;
        }
        let Some((s, reply)) = subject(tree, c) else {
            continue;
        };
        let Some(&(t, t_reply)) = table.get(&s) else {
            continue;
        };
        if t == c {
            continue;
        }
        match (is_dummy(tree, t), is_dummy(tree, c)) {
            (true, true) => {
                tree.adopt_children(c, t);
                tree.unlink(c);
            }
            (true, false) => {
                tree.unlink(c);
                tree.link(t, c);
            }
            _ if reply && !t_reply => {
                tree.unlink(c);
                tree.link(t, c);
            }
            _ => {
                let d = tree.add(None);
                tree.unlink(c);
                tree.unlink(t);
                tree.link(root, d);
                tree.link(d, t);
                tree.link(d, c);
                table.insert(s, (d, false));
            }
        }
    }
}

/// The tree under `root` as response threads (numbers = message indexes).
fn to_threads(tree: &Tree, root: u32) -> Threads {
    let mut t = Threads::default();
    let mut at = vec![usize::MAX; tree.nodes.len()];
    let mut stack: Vec<u32> = tree.nodes[root as usize].children.clone();
    stack.reverse();
    // Pre-order: a node is added before its children, which refer to it.
    while let Some(n) = stack.pop() {
        let node = &tree.nodes[n as usize];
        let idx = t.push(node.msg);
        at[n as usize] = idx;
        match node.parent {
            p if p == root => t.roots.push(idx),
            p => {
                let pi = at[p as usize];
                if let Some(parent) = t.nodes.get_mut(pi) {
                    parent.children.push(idx);
                }
            }
        }
        stack.extend(node.children.iter().rev());
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::Data;

    /// A message: Message-ID, References, In-Reply-To, Subject, sent date.
    fn m(id: &str, refs: &str, irt: &str, subject: &str, date: i64) -> MessageFields {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        MessageFields {
            message_id: some(id),
            references: some(refs),
            in_reply_to: some(irt),
            subject: some(subject),
            sent_date: Some(date),
            ..MessageFields::default()
        }
    }

    /// The THREAD response for `msgs`, numbered 1.. in order.
    fn show(t: Threads) -> String {
        let mut t = t;
        for n in &mut t.nodes {
            n.num = n.num.map(|i| i + 1);
        }
        let mut out = Vec::new();
        Data::Thread(&t).encode(&mut out);
        String::from_utf8_lossy(&out).trim_end().to_owned()
    }

    fn refs(msgs: &[MessageFields]) -> String {
        show(references(msgs))
    }

    /// Step 1.B breaks an old link even when the new one would loop; the
    /// parent comes from In-Reply-To without References; dummies at the
    /// top with one child are replaced by it, with several they stay.
    #[test]
    fn step_one_links_and_dummies() {
        let msgs = [
            m("<a@b>", "", "", "", 30),
            m("<b@b>", "<a@b> <c@b>", "", "", 10),
            m("<c@b>", "<b@b>", "", "", 20),
        ];
        assert_eq!(refs(&msgs), "* THREAD (3 2)(1)");
        let msgs = [
            m("<1@b>", "", "", "", 50),
            m("<2@b>", "", "<1@b>", "", 10),
            m("<3@b>", "", "<1@b>", "", 10),
            m("<4@b>", "", "<2@b>", "", 10),
        ];
        assert_eq!(refs(&msgs), "* THREAD (1 (2 4)(3))");
        let msgs = [
            m("<3@b>", "", "<1@b>", "", 1),
            m("<4@b>", "", "<2@b>", "", 2),
            m("<5@b>", "", "<2@b>", "", 3),
        ];
        assert_eq!(refs(&msgs), "* THREAD (1)((2)(3))");
        let msgs = [m("", "<a@b>", "", "", 1), m("", "<a@b>", "", "", 2)];
        assert_eq!(refs(&msgs), "* THREAD ((1)(2))");
    }

    /// A duplicate Message-ID gets an ID of its own: the first keeps it.
    #[test]
    fn duplicate_ids() {
        let msgs = [
            m("<a@b>", "", "", "", 1),
            m("<b@b>", "<a@b>", "", "", 1),
            m("<c@b>", "<b@b>", "", "", 1),
            m("<b@b>", "<a@b>", "", "", 1),
        ];
        assert_eq!(refs(&msgs), "* THREAD (1 (2 3)(4))");
        let msgs = [m("<a@b>", "", "", "", 1), m("<a@b>", "", "", "", 1)];
        assert_eq!(refs(&msgs), "* THREAD (1)(2)");
        // Quoting does not make IDs differ (RFC 5256 §3).
        let msgs = [
            m("<\"x\"@b>", "", "", "", 1),
            m("<y@b>", "", "<x@b>", "", 2),
        ];
        assert_eq!(refs(&msgs), "* THREAD (1 2)");
    }

    /// Step 5: a reply joins the non-reply of its subject; two
    /// non-replies get a dummy parent; a thread without subject is left.
    #[test]
    fn subject_merging() {
        let msgs = [
            m("<a@b>", "", "", "foo", 1),
            m("<a@b>", "", "", "Re: foo", 2),
        ];
        assert_eq!(refs(&msgs), "* THREAD (1 2)");
        let msgs = [
            m("<a@b>", "", "", "foo", 1),
            m("<b@b>", "<c@b>", "", "Re: foo", 2),
        ];
        assert_eq!(refs(&msgs), "* THREAD (1 2)");
        let msgs = [
            m("", "", "", "foo", 2),
            m("", "", "", "FOO", 1),
            m("", "", "", "bar", 3),
            m("", "", "", "", 4),
            m("", "", "", "", 5),
        ];
        assert_eq!(refs(&msgs), "* THREAD ((2)(1))(3)(4)(5)");
        // A dummy thread takes the others of its subject as children.
        let msgs = [
            m("", "<x@y>", "", "Re: s", 1),
            m("", "<x@y>", "", "Re: s", 2),
            m("", "", "", "s", 3),
        ];
        assert_eq!(refs(&msgs), "* THREAD ((1)(2)(3))");
    }

    #[test]
    fn ordered_subject_groups_by_base_subject_then_date() {
        let msgs = [
            m("", "", "", "a", 10),
            m("", "", "", "b", 9),
            m("", "", "", "a", 8),
            m("", "", "", "b", 7),
            m("", "", "", "Re: a", 30),
            m("", "", "", "", 1),
        ];
        assert_eq!(show(ordered_subject(&msgs)), "* THREAD (6)(4 2)(3 (1)(5))");
    }

    /// References that point at each other, or at the message itself,
    /// make no loop: the later message keeps the earlier as its child.
    #[test]
    fn loops_are_never_made() {
        let msgs = [
            m("<a@b>", "<b@b>", "", "", 1),
            m("<b@b>", "<a@b>", "", "", 2),
            m("<c@b>", "<c@b>", "", "", 3),
            m("<d@b>", "<e@b> <d@b> <e@b>", "", "", 4),
        ];
        assert_eq!(refs(&msgs), "* THREAD (2 1)(3)(4)");
    }

    /// A reply chain as long as a big mailbox needs no recursion, in
    /// either order; the loop checks stay within their budget.
    #[test]
    fn a_chain_of_a_hundred_thousand() {
        let n = 100_000;
        let chain: Vec<MessageFields> = (0..n)
            .map(|i| {
                let parent = if i == 0 {
                    String::new()
                } else {
                    format!("<{}@x>", i - 1)
                };
                m(&format!("<{i}@x>"), &parent, "", "s", i)
            })
            .collect();
        let s = refs(&chain);
        assert!(s.starts_with("* THREAD (1 2 3 "), "{}", &s[..40]);
        assert!(s.ends_with(" 99999 100000)"));
        let mut reversed = chain;
        reversed.reverse();
        let s = refs(&reversed);
        assert!(s.starts_with("* THREAD (100000 99999 "), "{}", &s[..40]);
    }

    /// Only the last MAX_REFERENCES IDs of a References field are used;
    /// without valid ones, the first valid In-Reply-To ID is the parent.
    #[test]
    fn references_are_bounded_and_in_reply_to_is_the_fallback() {
        let ids: Vec<String> = (0..MAX_REFERENCES + 500)
            .map(|i| format!("<{i}@x>"))
            .collect();
        let f = m("<me@x>", &ids.join(" "), "<other@x>", "", 1);
        let refs = references_of(&f);
        assert_eq!(refs.len(), MAX_REFERENCES);
        assert_eq!(refs[0], "500@x");
        assert_eq!(
            refs[MAX_REFERENCES - 1],
            format!("{}@x", MAX_REFERENCES + 499)
        );
        let f = m("<me@x>", "junk <no-at>", "bad <p@x> <q@x>", "", 1);
        assert_eq!(references_of(&f), ["p@x"]);
    }

    #[test]
    fn loop_checks_past_the_budget_refuse_the_link() {
        let mut tree = Tree {
            nodes: Vec::new(),
            budget: 2,
        };
        let [a, b, c, d, e] = [(); 5].map(|_| tree.add(None));
        tree.link(a, b);
        tree.link(b, c);
        tree.link(d, e);
        // d has a child, so putting it under c walks c, b, a: over budget.
        assert!(tree.would_loop(c, d));
        assert_eq!(tree.budget, 0);
        // e has none: no walk needed, so no refusal.
        assert!(!tree.would_loop(a, e));
        assert!(tree.would_loop(e, e));
    }
}
