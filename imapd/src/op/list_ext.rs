//! LIST with the extended syntax (RFC 5258 LIST-EXTENDED): selection
//! options SUBSCRIBED, REMOTE, RECURSIVEMATCH and SPECIAL-USE (RFC 6154
//! §5.1), return options SUBSCRIBED, CHILDREN, SPECIAL-USE and STATUS
//! (RFC 5819 LIST-STATUS), several patterns at once, `\NonExistent`,
//! `\Subscribed` and the CHILDINFO extended data item.
//!
//! The names and their attributes are worked out by [`lines`], a pure
//! function of the user's mailboxes and subscriptions; the read job also
//! reads the STATUS of each listed mailbox when RETURN (STATUS) asks.

use crate::command::{ListExtended, ListSelect};
use crate::op::list::{too_long, Matcher};
use crate::op::status_items;
use crate::response::{Code, Data, Status};
use crate::session::{or_no, Done, ImapSession};
use mailstore::{Mailbox, MailboxId, User};
use netloop::{Io, Step};
use std::collections::{BTreeMap, BTreeSet};

/// One `* LIST` response to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    /// The mailbox name.
    pub(crate) name: String,
    /// Its attributes.
    pub(crate) attrs: Vec<String>,
    /// `("CHILDINFO" ("SUBSCRIBED"))`.
    pub(crate) childinfo: bool,
    /// The mailbox, when it exists and can be selected (for STATUS).
    pub(crate) mailbox: Option<MailboxId>,
}

/// `reference` joined to `pattern` as RFC 3501 §6.3.8 describes (the
/// same join as plain LIST).
pub(crate) fn join(reference: &str, pattern: &str) -> String {
    if reference.is_empty() || pattern.starts_with('/') {
        pattern.to_owned()
    } else if reference.ends_with('/') {
        format!("{reference}{pattern}")
    } else {
        format!("{reference}/{pattern}")
    }
}

fn has_children(name: &str, all: &BTreeSet<&str>) -> bool {
    let prefix = format!("{name}/");
    all.range(prefix.as_str()..)
        .next()
        .is_some_and(|n| n.starts_with(&prefix))
}

/// The LIST responses for `patterns` (already joined to the reference)
/// over `boxes` and the subscribed names `subs` (RFC 5258 §3).
pub(crate) fn lines(
    select: &ListSelect,
    subscribed_attr: bool,
    patterns: &[String],
    boxes: &[Mailbox],
    subs: &[String],
) -> Vec<Line> {
    let matchers: Vec<Matcher> = patterns.iter().map(|p| Matcher::new(p)).collect();
    let matches = |n: &str| matchers.iter().any(|m| m.matches(n));
    let by_name: BTreeMap<&str, &Mailbox> = boxes.iter().map(|b| (b.name.as_str(), b)).collect();
    let names: BTreeSet<&str> = by_name.keys().copied().collect();
    let subscribed: BTreeSet<&str> = subs.iter().map(String::as_str).collect();
    let filtered = select.subscribed || select.special_use;
    // Does a name satisfy the selection criteria (§3.1; several are ANDed)?
    let selected = |n: &str| {
        (!select.subscribed || subscribed.contains(n))
            && (!select.special_use || by_name.get(n).is_some_and(|b| b.special_use.is_some()))
    };
    // name -> CHILDINFO wanted
    let mut out: BTreeMap<String, bool> = BTreeMap::new();
    if filtered {
        let pool: BTreeSet<&str> = if select.subscribed {
            subscribed.clone()
        } else {
            names.clone()
        };
        for n in pool {
            if !selected(n) {
                continue;
            }
            if matches(n) {
                out.entry(n.to_owned()).or_insert(false);
            } else if select.recursive && select.subscribed {
                // §3.5: a parent that matches, of a name that satisfies
                // the criteria but does not match itself.
                for (i, _) in n.match_indices('/') {
                    let parent = &n[..i];
                    if matches(parent) {
                        *out.entry(parent.to_owned()).or_insert(true) = true;
                    }
                }
            }
        }
    } else {
        for n in &names {
            if matches(n) {
                out.insert((*n).to_owned(), false);
            }
        }
        // Missing superiors for `%` (RFC 3501 §6.3.8), as plain LIST does.
        if patterns.iter().any(|p| p.ends_with('%')) {
            let pct: Vec<Matcher> = patterns
                .iter()
                .filter(|p| p.ends_with('%'))
                .map(|p| Matcher::new(p))
                .collect();
            for n in &names {
                for (i, _) in n.match_indices('/') {
                    let parent = &n[..i];
                    if !names.contains(parent) && pct.iter().any(|m| m.matches(parent)) {
                        out.entry(parent.to_owned()).or_insert(false);
                    }
                }
            }
        }
    }
    out.into_iter()
        .map(|(name, childinfo)| {
            let mb = by_name.get(name.as_str());
            let mut attrs = Vec::new();
            let children = has_children(&name, &names);
            if mb.is_none() {
                // §3: no mailbox of this name (implies \Noselect).
                attrs.push("\\NonExistent".to_owned());
                if children {
                    attrs.push("\\HasChildren".to_owned());
                }
            } else {
                attrs.push(
                    if children {
                        "\\HasChildren"
                    } else {
                        "\\HasNoChildren"
                    }
                    .to_owned(),
                );
            }
            if subscribed_attr && subscribed.contains(name.as_str()) {
                attrs.push("\\Subscribed".to_owned());
            }
            if let Some(su) = mb.and_then(|m| m.special_use.clone()) {
                attrs.push(su);
            }
            Line {
                mailbox: mb.map(|m| m.id),
                name,
                attrs,
                childinfo: childinfo && select.subscribed,
            }
        })
        .collect()
}

/// `LIST` with the extended syntax.
pub(crate) fn list(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    user: &User,
    tag: String,
    args: ListExtended,
) -> Step {
    let ListExtended {
        reference,
        patterns,
        select,
        ret,
    } = args;
    let bad = too_long("LIST reference", &reference)
        .or_else(|| patterns.iter().find_map(|p| too_long("LIST pattern", p)));
    if let Some(text) = bad {
        s.cx.status(Some(&tag), Status::No, Some(Code::Limit), &text);
        return Step::Continue;
    }
    if patterns.iter().all(String::is_empty) && !(select.subscribed || select.special_use) {
        // §6.3.8 of RFC 3501, as plain LIST: the delimiter and the root.
        Data::List {
            lsub: false,
            attrs: &["\\Noselect".to_owned()],
            name: "",
        }
        .encode_as(&mut s.cx.out, s.cx.utf8_names);
        return s.finish(io, &tag, Status::Ok, None, "LIST completed", true);
    }
    let full: Vec<String> = patterns.iter().map(|p| join(&reference, p)).collect();
    let uid = user.id;
    let want_status = ret.status.clone();
    let subscribed_attr = ret.subscribed;
    s.cx.read(
        io,
        move |r| {
            let boxes = r.mailboxes(uid)?;
            let subs = r.subscriptions(uid)?;
            let lines = lines(&select, subscribed_attr, &full, &boxes, &subs);
            let mut statuses = Vec::new();
            if let Some(items) = &want_status {
                for l in &lines {
                    if let Some(id) = l.mailbox {
                        statuses.push(Some((id, status_items::read(r, id, items)?)));
                    } else {
                        statuses.push(None);
                    }
                }
            }
            Ok((lines, statuses))
        },
        or_no(
            &tag.clone(),
            move |s: &mut ImapSession,
                  io: &mut Io<'_, Done>,
                  (lines, statuses): (
                Vec<Line>,
                Vec<Option<(MailboxId, status_items::Counts)>>,
            )| {
                let shared = std::sync::Arc::clone(&s.cx.shared);
                for (i, l) in lines.iter().enumerate() {
                    Data::ListExt {
                        attrs: &l.attrs,
                        name: &l.name,
                        childinfo: l.childinfo,
                        oldname: None,
                    }
                    .encode_as(&mut s.cx.out, s.cx.utf8_names);
                    // RFC 5819 §2: the STATUS right after its LIST.
                    if let (Some(items), Some(Some((id, st)))) = (&ret.status, statuses.get(i)) {
                        let vals = status_items::values(&shared, *id, st, items);
                        Data::Status {
                            name: &l.name,
                            items: &vals,
                        }
                        .encode_as(&mut s.cx.out, s.cx.utf8_names);
                    }
                }
                s.finish(io, &tag, Status::Ok, None, "LIST completed", true)
            },
        ),
    );
    Step::Continue
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mb(id: i64, name: &str, special: Option<&str>) -> Mailbox {
        Mailbox {
            id,
            user_id: 1,
            name: name.into(),
            uidvalidity: 1,
            uidnext: 1,
            highestmodseq: 1,
            special_use: special.map(str::to_owned),
            subscribed: false,
        }
    }

    fn show(lines: &[Line]) -> Vec<String> {
        lines
            .iter()
            .map(|l| {
                format!(
                    "({}) {}{}",
                    l.attrs.join(" "),
                    l.name,
                    if l.childinfo { " CHILDINFO" } else { "" }
                )
            })
            .collect()
    }

    /// The example hierarchy of imaptest's listext script.
    fn fixture() -> (Vec<Mailbox>, Vec<String>) {
        let names = [
            "m",
            "m/test1",
            "m/test2/test1",
            "m/test3",
            "m/test4/test5",
            "m/test4/test52",
            "m/test7/test7",
            "m/test8/test8",
            "m/test8/test9",
        ];
        let boxes = names
            .iter()
            .enumerate()
            .map(|(i, n)| mb(i as i64 + 1, n, None))
            .collect();
        let subs = [
            "m/test1",
            "m/test2/test1",
            "m/test6",
            "m/test7/test7",
            "m/test8/test8",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        (boxes, subs)
    }

    #[test]
    fn subscribed_selection_lists_nonexistent_names() {
        // RFC 5258 §3.1, §5 example 3: \NonExistent (no \Noselect) for a
        // subscribed name without a mailbox.
        let (boxes, subs) = fixture();
        let sel = ListSelect {
            subscribed: true,
            ..Default::default()
        };
        let got = show(&lines(&sel, true, &["m/*".into()], &boxes, &subs));
        assert_eq!(
            got,
            [
                "(\\HasNoChildren \\Subscribed) m/test1",
                "(\\HasNoChildren \\Subscribed) m/test2/test1",
                "(\\NonExistent \\Subscribed) m/test6",
                "(\\HasNoChildren \\Subscribed) m/test7/test7",
                "(\\HasNoChildren \\Subscribed) m/test8/test8",
            ]
        );
    }

    #[test]
    fn recursivematch_adds_childinfo_only_for_unmatched_children() {
        // RFC 5258 §3.5: CHILDINFO when a descendant satisfies the
        // criteria but does not match the pattern itself.
        let (boxes, subs) = fixture();
        let sel = ListSelect {
            subscribed: true,
            recursive: true,
            ..Default::default()
        };
        let l = |p: &[&str]| {
            let p: Vec<String> = p.iter().map(|s| (*s).to_owned()).collect();
            show(&lines(&sel, true, &p, &boxes, &subs))
        };
        assert_eq!(
            l(&["m/test2"]),
            ["(\\NonExistent \\HasChildren) m/test2 CHILDINFO"]
        );
        assert_eq!(
            l(&["m/test2", "m/test2/test1"]),
            ["(\\HasNoChildren \\Subscribed) m/test2/test1"]
        );
        assert_eq!(
            l(&["m*test7"]),
            ["(\\HasNoChildren \\Subscribed) m/test7/test7"]
        );
        assert_eq!(
            l(&["m/%"]),
            [
                "(\\HasNoChildren \\Subscribed) m/test1",
                "(\\NonExistent \\HasChildren) m/test2 CHILDINFO",
                "(\\NonExistent \\Subscribed) m/test6",
                "(\\NonExistent \\HasChildren) m/test7 CHILDINFO",
                "(\\NonExistent \\HasChildren) m/test8 CHILDINFO",
            ]
        );
    }

    #[test]
    fn several_patterns_and_special_use_selection() {
        let (mut boxes, subs) = fixture();
        boxes.push(mb(50, "Sent", Some("\\Sent")));
        let none = ListSelect::default();
        let got = show(&lines(
            &none,
            false,
            &["m/*2".into(), "m/test3".into()],
            &boxes,
            &subs,
        ));
        assert_eq!(
            got,
            [
                "(\\HasNoChildren) m/test3",
                "(\\HasNoChildren) m/test4/test52"
            ]
        );
        let su = ListSelect {
            special_use: true,
            ..Default::default()
        };
        assert_eq!(
            show(&lines(&su, false, &["*".into()], &boxes, &subs)),
            ["(\\HasNoChildren \\Sent) Sent"]
        );
    }
}
