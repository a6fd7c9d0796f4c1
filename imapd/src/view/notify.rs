//! A NOTIFY session's view of its user's mailboxes (RFC 5465): what the
//! client has been told, and how a fresh reading of the mailboxes turns
//! into the untagged responses its event groups ask for.
//!
//! The state is a snapshot per mailbox (name, subscription, and for the
//! mailboxes followed with message events the STATUS counters); a report
//! compares a new reading with it, so what is sent depends only on the
//! difference, however many commits happened in between — a burst of
//! changes costs one STATUS per mailbox, and the memory is bounded by the
//! number of the user's mailboxes and subscriptions
//! ([`crate::limits::MAX_NOTIFY_TRACKED`], past which the session says
//! `NOTIFICATIONOVERFLOW` and stops, §5.8).
//!
//! What is sent (§5):
//! - MessageNew / MessageExpunge / FlagChange in a mailbox other than the
//!   selected one: `* STATUS name (MESSAGES n UIDNEXT n UIDVALIDITY n
//!   UNSEEN n [HIGHESTMODSEQ n])`, HIGHESTMODSEQ when FlagChange is asked
//!   for anywhere or CONDSTORE is on (§5.2–§5.4; Dovecot sends the same
//!   items).
//! - MailboxName: `* LIST (attrs) "/" new` for a new mailbox, `* LIST
//!   (\NonExistent) "/" old` for a deleted one, and `* LIST (attrs) "/"
//!   new ("OLDNAME" ("old"))` for a renamed one (§5.4).
//! - SubscriptionChange: `* LIST (attrs [\Subscribed]) "/" name` (§5.5),
//!   not for the subscription moves of a rename.

use crate::command::{Events, MailboxFilter, NotifySet};
use crate::response::{Data, Value};
use crate::view::hub::Dirty;
use mailstore::{Mailbox, MailboxId, Status, Uid, UserId};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// What the client knows about one mailbox.
#[derive(Debug, Clone)]
pub(crate) struct Known {
    name: String,
    subscribed: bool,
    /// The counters last reported (or read as the baseline), for the
    /// mailboxes followed with message events.
    st: Option<Status>,
}

/// One reading of the user's mailboxes (made on a store thread).
pub(crate) struct Reading {
    /// Every mailbox of the user.
    pub(crate) boxes: Vec<Mailbox>,
    /// The subscribed names, when the mailbox list or subscriptions changed.
    pub(crate) subs: Option<Vec<String>>,
    /// STATUS of the followed mailboxes whose HIGHESTMODSEQ moved (or that
    /// have no counters yet).
    pub(crate) statuses: HashMap<MailboxId, Status>,
}

/// A session's NOTIFY state.
pub(crate) struct Notify {
    /// What the client asked for.
    pub(crate) set: NotifySet,
    /// Whose mailboxes.
    pub(crate) user: UserId,
    /// What the hub marked as changed since the last report.
    pub(crate) dirty: Arc<Dirty>,
    known: HashMap<MailboxId, Known>,
    subs: BTreeSet<String>,
    /// The selected mailbox (id, UIDVALIDITY) and the highest UID whose
    /// MessageNew FETCH was sent (§5.2 fetch-att).
    pub(crate) fetched: Option<(MailboxId, u32, Uid)>,
    /// Stopped after `NOTIFICATIONOVERFLOW`.
    pub(crate) overflowed: bool,
    /// Mailbox names in UTF-8 (IMAP4rev2, UTF8=ACCEPT), set by the session.
    pub(crate) utf8_names: bool,
}

/// The events of the groups whose filter includes `name` (§6).
pub(crate) fn events_for(set: &NotifySet, name: &str, subscribed: bool) -> Events {
    let mut e = Events::default();
    for g in &set.groups {
        let hit = match &g.filter {
            // Mail is delivered to INBOX only.
            MailboxFilter::Inboxes => name == "INBOX",
            MailboxFilter::Personal => true,
            MailboxFilter::Subscribed => subscribed,
            MailboxFilter::Subtree(roots) => roots.iter().any(|r| {
                name == r
                    || (name.len() > r.len()
                        && name.starts_with(r.as_str())
                        && name.as_bytes()[r.len()] == b'/')
            }),
            MailboxFilter::Mailboxes(names) => names.iter().any(|n| n == name),
        };
        if hit {
            let x = &g.events;
            e.message_new |= x.message_new;
            e.message_expunge |= x.message_expunge;
            e.flag_change |= x.flag_change;
            e.mailbox_name |= x.mailbox_name;
            e.subscription_change |= x.subscription_change;
        }
    }
    e
}

/// Is `mb` followed with message events (so its counters are kept)?
pub(crate) fn wants_status(set: &NotifySet, mb: &Mailbox) -> bool {
    events_for(set, &mb.name, mb.subscribed).any_message()
}

impl Notify {
    pub(crate) fn new(set: NotifySet, user: UserId) -> Notify {
        Notify {
            set,
            user,
            dirty: Arc::default(),
            known: HashMap::new(),
            subs: BTreeSet::new(),
            fetched: None,
            overflowed: false,
            utf8_names: false,
        }
    }

    /// HIGHESTMODSEQ per mailbox with known counters: the reading skips
    /// the STATUS of mailboxes where it has not moved.
    pub(crate) fn known_modseqs(&self) -> HashMap<MailboxId, u64> {
        self.known
            .iter()
            .filter_map(|(id, k)| k.st.as_ref().map(|s| (*id, s.highestmodseq)))
            .collect()
    }

    /// The STATUS items a notification carries.
    fn status_items(&self, st: &Status, condstore: bool) -> Vec<(&'static str, Value)> {
        let mut v = vec![
            ("MESSAGES", u64::from(st.messages)),
            ("UIDNEXT", u64::from(st.uidnext)),
            ("UIDVALIDITY", u64::from(st.uidvalidity)),
            ("UNSEEN", u64::from(st.unseen)),
        ];
        let flags = self.set.groups.iter().any(|g| g.events.flag_change);
        if flags || condstore {
            v.push(("HIGHESTMODSEQ", st.highestmodseq));
        }
        v.into_iter().map(|(k, n)| (k, Value::Num(n))).collect()
    }

    /// Apply a reading: queue the responses for what changed (none when
    /// `baseline`, except the STATUS of every followed mailbox when
    /// `initial_status`, §3.1 `NOTIFY SET STATUS`), and remember it.
    /// `selected` gets no STATUS (it has EXISTS and EXPUNGE). Returns false
    /// if the user has more mailboxes and subscriptions than a session
    /// follows ([`crate::limits::MAX_NOTIFY_TRACKED`]).
    pub(crate) fn apply(
        &mut self,
        reading: Reading,
        baseline: bool,
        initial_status: bool,
        selected: Option<MailboxId>,
        condstore: bool,
        out: &mut Vec<u8>,
    ) -> bool {
        let utf8 = self.utf8_names;
        let subs_len = reading.subs.as_ref().map_or(self.subs.len(), Vec::len);
        if reading.boxes.len() + subs_len > crate::limits::MAX_NOTIFY_TRACKED {
            return false;
        }
        let names: BTreeSet<&str> = reading.boxes.iter().map(|b| b.name.as_str()).collect();
        let attrs = |name: &str, exists: bool, subscribed: bool, special: Option<&String>| {
            let mut a = Vec::new();
            if exists {
                let prefix = format!("{name}/");
                let children = names
                    .range(prefix.as_str()..)
                    .next()
                    .is_some_and(|n| n.starts_with(&prefix));
                a.push(
                    if children {
                        "\\HasChildren"
                    } else {
                        "\\HasNoChildren"
                    }
                    .to_owned(),
                );
            } else {
                a.push("\\NonExistent".to_owned());
            }
            if subscribed {
                a.push("\\Subscribed".to_owned());
            }
            if let Some(su) = special {
                a.push(su.clone());
            }
            a
        };
        let mut moved: BTreeSet<String> = BTreeSet::new();
        // The mailbox list is read every time: names are compared always.
        if !baseline {
            let now: HashMap<MailboxId, &Mailbox> =
                reading.boxes.iter().map(|b| (b.id, b)).collect();
            // Deleted (§5.4).
            let mut gone: Vec<(&MailboxId, &Known)> = self
                .known
                .iter()
                .filter(|(id, _)| !now.contains_key(id))
                .collect();
            gone.sort_by(|a, b| a.1.name.cmp(&b.1.name));
            for (_, k) in gone {
                if events_for(&self.set, &k.name, k.subscribed).mailbox_name {
                    Data::List {
                        lsub: false,
                        attrs: &["\\NonExistent".to_owned()],
                        name: &k.name,
                    }
                    .encode_as(out, utf8);
                }
            }
            // New and renamed.
            for b in &reading.boxes {
                let old = self.known.get(&b.id);
                if old.is_some_and(|k| k.name == b.name) {
                    continue;
                }
                let ev = events_for(&self.set, &b.name, b.subscribed);
                let old_ev = old.map(|k| events_for(&self.set, &k.name, k.subscribed));
                if let Some(k) = old {
                    moved.insert(k.name.clone());
                    moved.insert(b.name.clone());
                }
                if ev.mailbox_name || old_ev.is_some_and(|e| e.mailbox_name) {
                    Data::ListExt {
                        attrs: &attrs(&b.name, true, b.subscribed, b.special_use.as_ref()),
                        name: &b.name,
                        childinfo: false,
                        oldname: old.map(|k| k.name.as_str()),
                    }
                    .encode_as(out, utf8);
                }
            }
        }
        // Subscriptions (§5.5).
        if let Some(subs) = &reading.subs {
            let new: BTreeSet<String> = subs.iter().cloned().collect();
            if !baseline {
                let changed: Vec<(&String, bool)> = new
                    .difference(&self.subs)
                    .map(|n| (n, true))
                    .chain(self.subs.difference(&new).map(|n| (n, false)))
                    .collect();
                for (name, now_subscribed) in changed {
                    if moved.contains(name) {
                        continue;
                    }
                    let ev = events_for(&self.set, name, true);
                    if !ev.subscription_change {
                        continue;
                    }
                    let mb = reading.boxes.iter().find(|b| &b.name == name);
                    Data::List {
                        lsub: false,
                        attrs: &attrs(
                            name,
                            mb.is_some(),
                            now_subscribed,
                            mb.and_then(|m| m.special_use.as_ref()),
                        ),
                        name,
                    }
                    .encode_as(out, utf8);
                }
            }
            self.subs = new;
        }
        // Message events (§5.2–§5.4), in name order.
        let mut boxes: Vec<&Mailbox> = reading.boxes.iter().collect();
        boxes.sort_by(|a, b| a.name.cmp(&b.name));
        let mut known = HashMap::with_capacity(boxes.len());
        for b in boxes {
            let old = self.known.remove(&b.id);
            let ev = events_for(&self.set, &b.name, b.subscribed);
            let st = match reading.statuses.get(&b.id) {
                Some(st) if ev.any_message() => Some(st.clone()),
                // Unchanged: keep the counters we have.
                None if ev.any_message() => old.as_ref().and_then(|k| k.st.clone()),
                _ => None,
            };
            if let Some(new) = &st {
                let emit = if baseline {
                    initial_status
                } else {
                    let before = old.as_ref().and_then(|k| k.st.clone());
                    // A mailbox new to us is compared with an empty one.
                    let before = before.unwrap_or(Status {
                        messages: 0,
                        unseen: 0,
                        uidnext: 1,
                        uidvalidity: new.uidvalidity,
                        highestmodseq: 0,
                    });
                    let added = new.uidnext.saturating_sub(before.uidnext);
                    let arrived = new.uidnext > before.uidnext;
                    let expunged =
                        u64::from(new.messages) < u64::from(before.messages) + u64::from(added);
                    // Any change moves HIGHESTMODSEQ; one that came with new
                    // mail or expunges may have changed flags too.
                    let flags =
                        new.highestmodseq != before.highestmodseq || new.unseen != before.unseen;
                    let is_new_box = old.is_none();
                    (arrived && ev.message_new)
                        || (expunged && ev.message_expunge && !is_new_box)
                        || (flags && ev.flag_change && !is_new_box)
                };
                if emit && Some(b.id) != selected {
                    let vals = self.status_items(new, condstore);
                    Data::Status {
                        name: &b.name,
                        items: &vals,
                    }
                    .encode_as(out, utf8);
                }
            }
            known.insert(
                b.id,
                Known {
                    name: b.name.clone(),
                    subscribed: b.subscribed,
                    st,
                },
            );
        }
        self.known = known;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::EventGroup;

    fn mb(id: MailboxId, name: &str, subscribed: bool) -> Mailbox {
        Mailbox {
            id,
            user_id: 1,
            name: name.into(),
            uidvalidity: 7,
            uidnext: 1,
            highestmodseq: 1,
            special_use: None,
            subscribed,
        }
    }

    fn st(messages: u32, unseen: u32, uidnext: Uid, hms: u64) -> Status {
        Status {
            messages,
            unseen,
            uidnext,
            uidvalidity: 7,
            highestmodseq: hms,
        }
    }

    fn events(names: &[&str]) -> Events {
        let mut e = Events::default();
        for n in names {
            match *n {
                "new" => e.message_new = true,
                "expunge" => e.message_expunge = true,
                "flags" => e.flag_change = true,
                "name" => e.mailbox_name = true,
                _ => e.subscription_change = true,
            }
        }
        e
    }

    fn set(filter: MailboxFilter, ev: &[&str]) -> NotifySet {
        NotifySet {
            status: false,
            selected: None,
            groups: vec![EventGroup {
                filter,
                events: events(ev),
            }],
        }
    }

    fn reading(
        boxes: Vec<Mailbox>,
        subs: Option<Vec<&str>>,
        sts: &[(MailboxId, Status)],
    ) -> Reading {
        Reading {
            boxes,
            subs: subs.map(|v| v.into_iter().map(str::to_owned).collect()),
            statuses: sts.iter().cloned().collect(),
        }
    }

    fn run(n: &mut Notify, r: Reading, baseline: bool, status: bool) -> Vec<String> {
        let mut out = Vec::new();
        assert!(n.apply(r, baseline, status, None, false, &mut out));
        String::from_utf8(out)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn filters_follow_rfc_5465_section_6() {
        let s = set(MailboxFilter::Subtree(vec!["a".into()]), &["new"]);
        assert!(events_for(&s, "a", false).message_new);
        assert!(events_for(&s, "a/b", false).message_new);
        assert!(!events_for(&s, "ab", false).message_new);
        let s = set(MailboxFilter::Inboxes, &["new"]);
        assert!(events_for(&s, "INBOX", false).message_new);
        assert!(!events_for(&s, "Sent", false).message_new);
        let s = set(MailboxFilter::Subscribed, &["new"]);
        assert!(events_for(&s, "x", true).message_new && !events_for(&s, "x", false).message_new);
    }

    #[test]
    fn status_for_new_mail_expunge_and_flags_as_asked() {
        let mut n = Notify::new(set(MailboxFilter::Personal, &["new", "expunge"]), 1);
        let boxes = || vec![mb(1, "INBOX", true), mb(2, "b", false)];
        let base = reading(
            boxes(),
            Some(vec![]),
            &[(1, st(1, 1, 2, 5)), (2, st(0, 0, 1, 1))],
        );
        assert!(run(&mut n, base, true, false).is_empty());
        // New mail in INBOX.
        let r = reading(boxes(), None, &[(1, st(2, 2, 3, 6))]);
        assert_eq!(
            run(&mut n, r, false, false),
            ["* STATUS \"INBOX\" (MESSAGES 2 UIDNEXT 3 UIDVALIDITY 7 UNSEEN 2)"]
        );
        // A flag change only: not asked for.
        let r = reading(boxes(), None, &[(1, st(2, 1, 3, 7))]);
        assert!(run(&mut n, r, false, false).is_empty());
        // An expunge.
        let r = reading(boxes(), None, &[(1, st(1, 1, 3, 8))]);
        assert_eq!(run(&mut n, r, false, false).len(), 1);
        // Nothing changed.
        assert!(run(&mut n, reading(boxes(), None, &[]), false, false).is_empty());
    }

    #[test]
    fn initial_status_and_flag_change_carry_highestmodseq() {
        let mut n = Notify::new(
            set(MailboxFilter::Mailboxes(vec!["b".into()]), &["flags"]),
            1,
        );
        let r = reading(
            vec![mb(1, "INBOX", true), mb(2, "b", false)],
            Some(vec![]),
            &[(2, st(1, 1, 2, 9))],
        );
        assert_eq!(
            run(&mut n, r, true, true),
            ["* STATUS \"b\" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY 7 UNSEEN 1 HIGHESTMODSEQ 9)"]
        );
    }

    #[test]
    fn mailbox_name_and_subscription_events() {
        let mut n = Notify::new(set(MailboxFilter::Personal, &["name", "subs"]), 1);
        let base = reading(
            vec![mb(1, "INBOX", true), mb(2, "old", true)],
            Some(vec!["INBOX", "old"]),
            &[],
        );
        assert!(run(&mut n, base, true, false).is_empty());
        // Rename old -> new (its subscription follows: no SubscriptionChange),
        // create x, subscribe to a name with no mailbox.
        let r = reading(
            vec![mb(1, "INBOX", true), mb(2, "new", true), mb(3, "x", false)],
            Some(vec!["INBOX", "new", "ghost"]),
            &[],
        );
        assert_eq!(
            run(&mut n, r, false, false),
            [
                "* LIST (\\HasNoChildren \\Subscribed) \"/\" \"new\" (\"OLDNAME\" (\"old\"))",
                "* LIST (\\HasNoChildren) \"/\" \"x\"",
                "* LIST (\\NonExistent \\Subscribed) \"/\" \"ghost\"",
            ]
        );
        // Delete x, unsubscribe ghost.
        let r = reading(
            vec![mb(1, "INBOX", true), mb(2, "new", true)],
            Some(vec!["INBOX", "new"]),
            &[],
        );
        assert_eq!(
            run(&mut n, r, false, false),
            [
                "* LIST (\\NonExistent) \"/\" \"x\"",
                "* LIST (\\NonExistent) \"/\" \"ghost\"",
            ]
        );
    }

    #[test]
    fn too_many_mailboxes_overflow() {
        let mut n = Notify::new(set(MailboxFilter::Personal, &["name"]), 1);
        let boxes = (0..=crate::limits::MAX_NOTIFY_TRACKED as i64)
            .map(|i| mb(i, &format!("m{i}"), false))
            .collect();
        let mut out = Vec::new();
        assert!(!n.apply(
            reading(boxes, Some(vec![]), &[]),
            true,
            false,
            None,
            false,
            &mut out
        ));
    }
}
