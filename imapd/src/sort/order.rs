//! SORT's ordering (RFC 5256 §3, RFC 5957 §3): each message gets one key
//! per criterion, keys compare as numbers or as `i;ascii-casemap` strings
//! (RFC 4790 §9.2: ASCII letters upper-cased, then octet by octet),
//! REVERSE turns one criterion around, and messages that compare equal on
//! every criterion stay in sequence-number order (RFC 5256 §3: "the
//! order in which the messages appear in the mailbox").

use crate::command::{SortCriterion, SortKey};
use mailstore::{FieldSet, FirstAddress, MessageFields};
use std::cmp::Ordering;

/// One message's key for one criterion.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Val {
    Num(i64),
    Text(Vec<u8>),
}

/// What the store must read for `criteria`.
pub fn fields_for(criteria: &[SortCriterion]) -> FieldSet {
    let mut f = FieldSet::default();
    for c in criteria {
        match c.key {
            SortKey::Arrival | SortKey::Size => {}
            SortKey::Date => f.sent_date = true,
            SortKey::Subject => f.subject = true,
            SortKey::Cc | SortKey::From | SortKey::To => f.addresses = true,
            SortKey::DisplayFrom | SortKey::DisplayTo => f.addresses = true,
        }
    }
    f
}

/// The sent date (RFC 5256 §2.2): the Date field in UTC, or INTERNALDATE
/// when there is none or it does not parse.
pub fn sent_date(m: &MessageFields) -> i64 {
    m.sent_date.unwrap_or(m.internal_date)
}

fn casemap(s: &str) -> Val {
    Val::Text(s.as_bytes().to_ascii_uppercase())
}

/// RFC 5256: the `addr-mailbox` of the first address (for a group, the
/// group's name, as in the IMAP envelope); empty without one.
fn mailbox(a: Option<&FirstAddress>) -> Val {
    casemap(a.and_then(|a| a.local.as_deref()).unwrap_or(""))
}

/// RFC 5957 §3: the first address's display name (a group's name) if it
/// is not empty, else its addr-spec; empty without one.
fn display(a: Option<&FirstAddress>) -> Val {
    let Some(a) = a else {
        return casemap("");
    };
    if let Some(name) = a.name.as_deref().filter(|n| !n.trim().is_empty()) {
        return casemap(name.trim());
    }
    let local = a.local.as_deref().unwrap_or("");
    match a.host.as_deref().filter(|h| !h.is_empty()) {
        Some(host) => casemap(&format!("{local}@{host}")),
        None => casemap(local),
    }
}

fn key_of(m: &MessageFields, key: SortKey) -> Val {
    match key {
        SortKey::Arrival => Val::Num(m.internal_date),
        SortKey::Date => Val::Num(sent_date(m)),
        SortKey::Size => Val::Num(i64::try_from(m.size).unwrap_or(i64::MAX)),
        SortKey::Subject => {
            Val::Text(super::subject::base_subject(m.subject.as_deref().unwrap_or("")).0)
        }
        SortKey::From => mailbox(m.from.as_ref()),
        SortKey::To => mailbox(m.to.as_ref()),
        SortKey::Cc => mailbox(m.cc.as_ref()),
        SortKey::DisplayFrom => display(m.from.as_ref()),
        SortKey::DisplayTo => display(m.to.as_ref()),
    }
}

/// The order of `msgs` (given in sequence order) by `criteria`, as
/// indexes into `msgs`.
pub fn sort(msgs: &[MessageFields], criteria: &[SortCriterion]) -> Vec<usize> {
    let keys: Vec<Vec<Val>> = msgs
        .iter()
        .map(|m| criteria.iter().map(|c| key_of(m, c.key)).collect())
        .collect();
    let mut order: Vec<usize> = (0..msgs.len()).collect();
    order.sort_by(|&a, &b| {
        for (i, c) in criteria.iter().enumerate() {
            let o = keys[a][i].cmp(&keys[b][i]);
            let o = if c.reverse { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        a.cmp(&b)
    });
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(name: Option<&str>, local: &str, host: Option<&str>) -> Option<FirstAddress> {
        Some(FirstAddress {
            name: name.map(Into::into),
            local: Some(local.into()),
            host: host.map(Into::into),
            group: host.is_none(),
        })
    }

    fn crit(key: SortKey, reverse: bool) -> SortCriterion {
        SortCriterion { key, reverse }
    }

    /// RFC 5957's display keys: name, else addr-spec, a group's name;
    /// compared upper-cased (so `_` sorts after letters).
    #[test]
    fn display_keys_and_ascii_casemap() {
        let to = [
            addr(Some("foo bar"), "a", Some("b.c")),
            addr(None, "b", Some("c.d")),
            addr(None, "d", Some("")),
            addr(Some("z"), "z", None),
            addr(Some(" "), "_x", Some("y")),
            None,
        ];
        let msgs: Vec<MessageFields> = to
            .iter()
            .map(|t| MessageFields {
                to: t.clone(),
                ..MessageFields::default()
            })
            .collect();
        assert_eq!(
            sort(&msgs, &[crit(SortKey::DisplayTo, false)]),
            [5, 1, 2, 0, 3, 4]
        );
        // Ties (all empty From) keep sequence order, also reversed.
        assert_eq!(
            sort(&msgs, &[crit(SortKey::From, true)]),
            [0, 1, 2, 3, 4, 5]
        );
    }

    /// Later criteria break ties of earlier ones; REVERSE is per criterion;
    /// DATE falls back to INTERNALDATE.
    #[test]
    fn criteria_in_order() {
        let m = |size: u64, internal_date: i64, sent_date: Option<i64>| MessageFields {
            size,
            internal_date,
            sent_date,
            ..MessageFields::default()
        };
        let msgs = [
            m(10, 5, None),
            m(20, 1, Some(9)),
            m(10, 3, Some(2)),
            m(30, 9, None),
        ];
        assert_eq!(sort(&msgs, &[crit(SortKey::Date, false)]), [2, 0, 1, 3]);
        assert_eq!(sort(&msgs, &[crit(SortKey::Arrival, true)]), [3, 0, 2, 1]);
        assert_eq!(
            sort(
                &msgs,
                &[crit(SortKey::Size, false), crit(SortKey::Arrival, true)]
            ),
            [0, 2, 1, 3]
        );
        assert_eq!(
            fields_for(&[crit(SortKey::Size, false)]),
            FieldSet::default()
        );
    }
}
