//! Expunge tombstones and their bound (RFC 7162 §3.2: expunged UIDs are
//! remembered with their modseq; §3.2.5.2/§3.2.6: a server that forgot
//! some may answer with a superset, so the store must say when it did).

use crate::util::{deliver, simple, store, user};
use mailstore::{FlagOp, Flags, MailboxId, Store, DEFAULT_MAX_TOMBSTONES};

fn inbox(s: &Store, n: usize) -> MailboxId {
    let a = user(s, "t@x");
    for i in 0..n {
        deliver(s, simple(&format!("m{i}"), "b"), &[a]);
    }
    s.read_sync(move |r| r.mailbox(a, "INBOX"))
        .unwrap()
        .unwrap()
        .id
}

/// Expunge `uids` (one expunge, one modseq); returns the modseq before.
fn expunge(s: &Store, mb: MailboxId, uids: Vec<u32>) -> u64 {
    let before = s.read_sync(move |r| r.status(mb)).unwrap().highestmodseq;
    s.write_sync(move |tx| {
        tx.store_flags(mb, &uids, FlagOp::Add, &Flags::system(Flags::DELETED), None)?;
        tx.expunge(mb, Some(&uids))
    })
    .unwrap();
    before
}

#[test]
fn tombstones_are_kept_up_to_the_bound_then_the_oldest_go() {
    let (_d, s) = store();
    let mb = inbox(&s, 30);
    assert_eq!(DEFAULT_MAX_TOMBSTONES, 50_000);
    s.write_sync(|tx| tx.set_max_tombstones(8)).unwrap();
    // Five expunges of two messages each: 10 tombstones > 8.
    let mut before = Vec::new();
    for k in 0..4u32 {
        before.push(expunge(&s, mb, vec![2 * k + 1, 2 * k + 2]));
    }
    assert_eq!(s.read_sync(move |r| r.tombstones(mb)).unwrap(), 8);
    assert_eq!(s.read_sync(move |r| r.tombstone_floor(mb)).unwrap(), 0);
    let all = s.read_sync(move |r| r.changes_since(mb, 0)).unwrap();
    assert!(all.expunged_complete);
    assert_eq!(all.expunged, [1, 2, 3, 4, 5, 6, 7, 8]);

    before.push(expunge(&s, mb, vec![9, 10]));
    // Past 8: down to at most 6 (three quarters), whole expunges at a
    // time: the two oldest expunges (UIDs 1-4) are forgotten.
    assert_eq!(s.read_sync(move |r| r.tombstones(mb)).unwrap(), 6);
    let floor = s.read_sync(move |r| r.tombstone_floor(mb)).unwrap();
    assert_eq!(floor, before[2], "the modseq of the second expunge");
    let old = s.read_sync(move |r| r.changes_since(mb, 0)).unwrap();
    assert!(!old.expunged_complete, "asked below the floor");
    assert_eq!(old.expunged, [5, 6, 7, 8, 9, 10]);
    let since = before[2];
    let recent = s.read_sync(move |r| r.changes_since(mb, since)).unwrap();
    assert!(recent.expunged_complete, "asked at the floor: complete");
    assert_eq!(recent.expunged, [5, 6, 7, 8, 9, 10]);
    // The UID list the caller compares with instead.
    let uids = s.read_sync(move |r| r.uids(mb)).unwrap();
    assert_eq!(uids, (11..=30).collect::<Vec<u32>>());
}

#[test]
fn one_expunge_bigger_than_the_bound_is_forgotten_whole() {
    let (_d, s) = store();
    let mb = inbox(&s, 12);
    s.write_sync(|tx| tx.set_max_tombstones(4)).unwrap();
    let before = expunge(&s, mb, (1..=10).collect());
    assert_eq!(s.read_sync(move |r| r.tombstones(mb)).unwrap(), 0);
    let now = s.read_sync(move |r| r.status(mb)).unwrap().highestmodseq;
    assert_eq!(s.read_sync(move |r| r.tombstone_floor(mb)).unwrap(), now);
    let ch = s.read_sync(move |r| r.changes_since(mb, before)).unwrap();
    assert!(!ch.expunged_complete);
    assert!(ch.expunged.is_empty());
    // Later expunges are remembered again.
    let b2 = expunge(&s, mb, vec![11]);
    let ch = s.read_sync(move |r| r.changes_since(mb, b2)).unwrap();
    assert!(ch.expunged_complete);
    assert_eq!(ch.expunged, [11]);
}

#[test]
fn tombstones_are_written_in_the_expunge_transaction_and_go_with_the_mailbox() {
    let (_d, s) = store();
    let a = user(&s, "d@x");
    let mb = s
        .write_sync(move |tx| tx.create_mailbox(a, "Box", None))
        .unwrap();
    let to = s
        .read_sync(move |r| r.mailbox(a, "INBOX"))
        .unwrap()
        .unwrap()
        .id;
    deliver(&s, simple("x", "y"), &[a]);
    s.write_sync(move |tx| tx.copy(to, &[1], mb)).unwrap();
    // A failing job after the expunge rolls both back together.
    let err = s.write_sync(move |tx| {
        tx.store_flags(mb, &[1], FlagOp::Add, &Flags::system(Flags::DELETED), None)?;
        tx.expunge(mb, None)?;
        tx.copy(mb, &[1], 999_999)
    });
    assert!(err.is_err());
    assert_eq!(s.read_sync(move |r| r.tombstones(mb)).unwrap(), 0);
    assert_eq!(s.read_sync(move |r| r.uids(mb)).unwrap(), [1]);
    expunge(&s, mb, vec![1]);
    assert_eq!(s.read_sync(move |r| r.tombstones(mb)).unwrap(), 1);
    s.write_sync(move |tx| tx.delete_mailbox(mb)).unwrap();
    assert_eq!(s.read_sync(move |r| r.tombstones(mb)).unwrap(), 0);
}

/// `summary_since` answers with every change up to `max` of them, and
/// with nothing past that (the caller then reads the whole mailbox),
/// counting flag changes and expunges together.
#[test]
fn summary_since_gives_up_past_max_changes() {
    let (_d, s) = store();
    let mb = inbox(&s, 6);
    let start = s.read_sync(move |r| r.status(mb)).unwrap().highestmodseq;
    s.write_sync(move |tx| {
        tx.store_flags(
            mb,
            &[1, 2, 3],
            FlagOp::Add,
            &Flags::system(Flags::SEEN),
            None,
        )
    })
    .unwrap();
    expunge(&s, mb, vec![5, 6]);
    let at = |max: usize| {
        s.read_sync(move |r| r.summary_since(mb, start, max))
            .unwrap()
    };
    // Changed since: 1, 2, 3 (seen); 5 and 6 expunged.
    for max in [5, 6, 100] {
        let d = at(max).unwrap_or_else(|| panic!("max {max}: gave up"));
        let uids: Vec<u32> = d.changed.iter().map(|c| c.0).collect();
        assert_eq!(uids, [1, 2, 3], "max {max}");
        assert!(d.changed.iter().all(|c| c.1), "all seen");
        assert_eq!(d.expunged, [5, 6], "max {max}");
    }
    assert!(at(4).is_none(), "five changes, at most four asked for");
    assert!(at(2).is_none(), "three flag changes alone pass two");
    assert!(at(0).is_none());
    // Nothing changed since now: an empty answer, even with max 0.
    let now = s.read_sync(move |r| r.status(mb)).unwrap().highestmodseq;
    let d = s
        .read_sync(move |r| r.summary_since(mb, now, 0))
        .unwrap()
        .unwrap();
    assert!(d.changed.is_empty() && d.expunged.is_empty());
}
