//! LIST and LSUB (RFC 3501 §6.3.8, §6.3.9) with the `*` and `%` wildcards,
//! CHILDREN attributes (RFC 3348) and SPECIAL-USE attributes (RFC 6154).
//! Names go out in modified UTF-7 with the `/` delimiter.

use crate::response::{mailbox_name, untagged_values, Status, Value};
use crate::session::{Done, ImapSession};
use mailstore::Mailbox;
use netloop::{Io, Step};
use std::collections::{BTreeMap, BTreeSet};

/// Does `name` match the LIST pattern? `*` matches anything, `%` anything
/// but the delimiter. Dynamic programming, so hostile patterns stay cheap.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // m[j] = pattern prefix (so far) matches name prefix of length j.
    let mut m = vec![false; n.len() + 1];
    m[0] = true;
    for &pc in &p {
        let mut next = vec![false; n.len() + 1];
        match pc {
            '*' | '%' => {
                // A wildcard run extends the match by any characters
                // (but `%` never crosses the delimiter).
                for j in 0..=n.len() {
                    next[j] = m[j] || (j > 0 && next[j - 1] && (pc == '*' || n[j - 1] != '/'));
                }
            }
            c => {
                for j in 1..=n.len() {
                    next[j] = m[j - 1] && n[j - 1] == c;
                }
            }
        }
        m = next;
    }
    m[n.len()]
}

/// Match with INBOX case-insensitivity (§5.1): the pattern's leading INBOX
/// may be in any case.
fn matches(pattern: &str, name: &str) -> bool {
    if wildcard_match(pattern, name) {
        return true;
    }
    if name.starts_with("INBOX") {
        let p = crate::parse::normalise_inbox(pattern.to_owned());
        return wildcard_match(&p, name);
    }
    false
}

/// `LIST` / `LSUB`
pub(crate) fn list(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    tag: String,
    reference: String,
    pattern: String,
    lsub: bool,
) -> Step {
    let verb = if lsub { "LSUB" } else { "LIST" };
    if pattern.is_empty() {
        // §6.3.8: the delimiter and root of the reference.
        untagged_values(
            &mut s.out,
            verb,
            &[
                Value::List(vec![Value::Atom("\\Noselect".into())]),
                Value::str("/"),
                Value::str(""),
            ],
        );
        return s.finish(
            io,
            &tag,
            Status::Ok,
            None,
            &format!("{verb} completed"),
            true,
        );
    }
    let full = if reference.is_empty() || pattern.starts_with('/') {
        pattern
    } else if reference.ends_with('/') {
        format!("{reference}{pattern}")
    } else {
        format!("{reference}/{pattern}")
    };
    let uid = s.user.as_ref().map_or(0, |u| u.id);
    s.read(
        io,
        move |r| {
            Ok((
                r.mailboxes(uid)?,
                if lsub {
                    r.subscriptions(uid)?
                } else {
                    Vec::new()
                },
            ))
        },
        move |s, io, res| match res {
            Ok((boxes, subs)) => {
                if lsub {
                    lsub_lines(s, &full, &boxes, &subs);
                } else {
                    list_lines(s, &full, &boxes);
                }
                s.finish(
                    io,
                    &tag,
                    Status::Ok,
                    None,
                    &format!("{verb} completed"),
                    true,
                )
            }
            Err(e) => {
                s.store_error(&tag, &e);
                Step::Continue
            }
        },
    );
    Step::Continue
}

fn has_children(name: &str, all: &BTreeSet<String>) -> bool {
    let prefix = format!("{name}/");
    all.range(prefix.clone()..)
        .next()
        .is_some_and(|n| n.starts_with(&prefix))
}

fn list_lines(s: &mut ImapSession, pattern: &str, boxes: &[Mailbox]) {
    let names: BTreeSet<String> = boxes.iter().map(|b| b.name.clone()).collect();
    // Candidates: real mailboxes, plus missing superiors (\Noselect) when
    // the pattern ends in `%` (§6.3.8).
    let mut cands: BTreeMap<String, Option<&Mailbox>> =
        boxes.iter().map(|b| (b.name.clone(), Some(b))).collect();
    if pattern.ends_with('%') {
        for b in boxes {
            let mut cur = b.name.as_str();
            while let Some((parent, _)) = cur.rsplit_once('/') {
                cands.entry(parent.to_owned()).or_insert(None);
                cur = parent;
            }
        }
    }
    for (name, mb) in cands {
        if !matches(pattern, &name) {
            continue;
        }
        let mut attrs = Vec::new();
        if mb.is_none() {
            attrs.push("\\Noselect".to_owned());
        }
        attrs.push(
            if has_children(&name, &names) {
                "\\HasChildren"
            } else {
                "\\HasNoChildren"
            }
            .to_owned(),
        );
        if let Some(su) = mb.and_then(|m| m.special_use.clone()) {
            attrs.push(su);
        }
        untagged_values(
            &mut s.out,
            "LIST",
            &[
                Value::List(attrs.into_iter().map(Value::Atom).collect()),
                Value::str("/"),
                mailbox_name(&name),
            ],
        );
    }
}

fn lsub_lines(s: &mut ImapSession, pattern: &str, boxes: &[Mailbox], subs: &[String]) {
    let names: BTreeSet<&str> = boxes.iter().map(|b| b.name.as_str()).collect();
    for name in subs {
        if !matches(pattern, name) {
            continue;
        }
        let attrs = if names.contains(name.as_str()) {
            Vec::new()
        } else {
            vec![Value::Atom("\\Noselect".into())]
        };
        untagged_values(
            &mut s.out,
            "LSUB",
            &[Value::List(attrs), Value::str("/"), mailbox_name(name)],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_follow_rfc_3501() {
        let table = [
            ("*", "a/b/c", true),
            ("%", "a", true),
            ("%", "a/b", false),
            ("a/%", "a/b", true),
            ("a/%", "a/b/c", false),
            ("a/*", "a/b/c", true),
            ("a*c", "abc", true),
            ("a%c", "a/c", false),
            ("INBOX", "INBOX", true),
            ("inbox", "INBOX", true),
            ("Inbox/%", "INBOX/x", true),
            ("Sent", "sent", false),
            ("*x", "abc", false),
            ("", "", true),
        ];
        for (p, n, want) in table {
            assert_eq!(matches(p, n), want, "{p} vs {n}");
        }
    }
}
