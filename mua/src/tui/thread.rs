//! Conversation threading for the message list, from Message-ID,
//! In-Reply-To and References (RFC 5322 §3.6.4), in the spirit of
//! RFC 5256's REFERENCES algorithm but computed client-side over the
//! headers loaded so far.
//!
//! Threads are ordered newest activity first; replies follow their parent
//! oldest first, indented by depth. Messages whose headers are not loaded
//! yet stand alone at their UID's position, so the order stays stable while
//! a large mailbox loads.

use std::collections::HashMap;

/// What threading needs to know about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The message's UID.
    pub uid: u32,
    /// Its Message-ID, if any.
    pub message_id: Option<String>,
    /// The nearest ancestor's Message-ID: last of References, else In-Reply-To.
    pub parent_id: Option<String>,
}

/// The parent Message-ID from References / In-Reply-To header values.
pub fn parent_of(references: Option<&str>, in_reply_to: Option<&str>) -> Option<String> {
    let last_ref = references.and_then(|r| r.split_whitespace().last().map(str::to_string));
    last_ref.or_else(|| in_reply_to.and_then(|r| r.split_whitespace().next().map(str::to_string)))
}

/// Orders `all` UIDs for display: threads of `loaded` nodes, other UIDs as
/// singletons. Returns (uid, depth) pairs.
pub fn order(all: &[u32], loaded: &[Node]) -> Vec<(u32, usize)> {
    let by_id: HashMap<&str, u32> = loaded
        .iter()
        .filter_map(|n| n.message_id.as_deref().map(|id| (id, n.uid)))
        .collect();
    let mut parent: HashMap<u32, u32> = HashMap::new();
    for n in loaded {
        if let Some(p) = n.parent_id.as_deref().and_then(|id| by_id.get(id)) {
            if *p != n.uid {
                parent.insert(n.uid, *p);
            }
        }
    }
    // Break cycles (a broken References chain could point in a loop).
    let keys: Vec<u32> = parent.keys().copied().collect();
    for start in keys {
        let mut seen = vec![start];
        let mut cur = start;
        while let Some(&p) = parent.get(&cur) {
            if seen.contains(&p) {
                parent.remove(&cur);
                break;
            }
            seen.push(p);
            cur = p;
        }
    }
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (&c, &p) in &parent {
        children.entry(p).or_default().push(c);
    }
    for v in children.values_mut() {
        v.sort_unstable();
    }
    fn newest(u: u32, children: &HashMap<u32, Vec<u32>>) -> u32 {
        children.get(&u).map_or(u, |c| {
            c.iter()
                .map(|&x| newest(x, children))
                .max()
                .unwrap_or(u)
                .max(u)
        })
    }
    let mut roots: Vec<(u32, u32)> = all
        .iter()
        .filter(|u| !parent.contains_key(u))
        .map(|&u| (newest(u, &children), u))
        .collect();
    roots.sort_unstable_by(|a, b| b.cmp(a));
    let mut out = Vec::with_capacity(all.len());
    fn walk(u: u32, depth: usize, children: &HashMap<u32, Vec<u32>>, out: &mut Vec<(u32, usize)>) {
        out.push((u, depth));
        if let Some(c) = children.get(&u) {
            for &x in c {
                walk(x, depth + 1, children, out);
            }
        }
    }
    for (_, r) in roots {
        walk(r, 0, &children, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(uid: u32, id: &str, parent: Option<&str>) -> Node {
        Node {
            uid,
            message_id: Some(id.into()),
            parent_id: parent.map(str::to_string),
        }
    }

    #[test]
    fn replies_follow_their_parent_and_threads_sort_by_activity() {
        let loaded = vec![
            node(1, "<a>", None),
            node(2, "<b>", None),
            node(3, "<c>", Some("<a>")),
            node(4, "<d>", Some("<c>")),
        ];
        let o = order(&[4, 3, 2, 1], &loaded);
        assert_eq!(o, vec![(1, 0), (3, 1), (4, 2), (2, 0)]);
    }

    #[test]
    fn unloaded_uids_keep_their_place() {
        let loaded = vec![node(9, "<x>", None), node(10, "<y>", Some("<x>"))];
        let o = order(&[10, 9, 8, 7], &loaded);
        assert_eq!(o, vec![(9, 0), (10, 1), (8, 0), (7, 0)]);
    }

    #[test]
    fn cycles_do_not_hang_or_drop_messages() {
        let loaded = vec![node(1, "<a>", Some("<b>")), node(2, "<b>", Some("<a>"))];
        let o = order(&[2, 1], &loaded);
        assert_eq!(o.len(), 2);
    }

    #[test]
    fn parent_prefers_last_reference() {
        assert_eq!(
            parent_of(Some("<a> <b>"), Some("<c>")).as_deref(),
            Some("<b>")
        );
        assert_eq!(parent_of(None, Some("<c>")).as_deref(), Some("<c>"));
        assert_eq!(parent_of(None, None), None);
    }
}
