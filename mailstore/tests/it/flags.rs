//! STORE, EXPUNGE + tombstones + changes_since, COPY, MOVE.

use mailstore::{FlagOp, Flags, MailboxId, Store, StoreError, SystemFlag, UserId};

use crate::util::{deliver, simple, store, user};

fn inbox_with(s: &Store, n: usize) -> (UserId, MailboxId) {
    let a = user(s, "a@x");
    for i in 0..n {
        deliver(s, simple(&format!("m{i}"), "b"), &[a]);
    }
    let id = s
        .read_sync(move |r| r.mailbox(a, "INBOX"))
        .unwrap()
        .unwrap()
        .id;
    (a, id)
}

fn kw(system: u8, kws: &[&str]) -> Flags {
    Flags {
        system,
        keywords: kws.iter().map(|k| k.to_string()).collect(),
    }
}

#[test]
fn store_add_remove_replace_bump_modseq_only_on_change() {
    let (_d, s) = store();
    let (_, mb) = inbox_with(&s, 3);
    let hms = s.read_sync(move |r| r.status(mb)).unwrap().highestmodseq;
    let out = s
        .write_sync(move |tx| {
            tx.store_flags(
                mb,
                &[1, 2, 99],
                FlagOp::Add,
                &kw(Flags::SEEN, &["$Work"]),
                None,
            )
        })
        .unwrap();
    assert_eq!(
        out.updated.iter().map(|e| e.uid).collect::<Vec<_>>(),
        [1, 2]
    );
    assert!(out.updated.iter().all(|e| e.modseq == hms + 1));
    assert!(
        out.updated[0].flags.has(SystemFlag::Seen) && out.updated[0].flags.has_keyword("$work")
    );
    // Adding again changes nothing: nothing returned, no modseq bump.
    let again = s
        .write_sync(move |tx| {
            tx.store_flags(mb, &[1, 2], FlagOp::Add, &kw(Flags::SEEN, &["$WORK"]), None)
        })
        .unwrap();
    assert!(again.updated.is_empty());
    assert_eq!(
        s.read_sync(move |r| r.status(mb)).unwrap().highestmodseq,
        hms + 1
    );
    let rm = s
        .write_sync(move |tx| tx.store_flags(mb, &[1], FlagOp::Remove, &kw(0, &["$work"]), None))
        .unwrap();
    assert_eq!(rm.updated[0].flags, kw(Flags::SEEN, &[]));
    let rep = s
        .write_sync(move |tx| {
            tx.store_flags(
                mb,
                &[1, 2, 3],
                FlagOp::Replace,
                &kw(Flags::FLAGGED, &[]),
                None,
            )
        })
        .unwrap();
    assert_eq!(rep.updated.len(), 3);
    let entries = s.read_sync(move |r| r.entries(mb)).unwrap();
    assert!(entries
        .iter()
        .all(|e| e.flags == Flags::system(Flags::FLAGGED)));
    assert_eq!(s.read_sync(move |r| r.status(mb)).unwrap().unseen, 3);
    let bad = s.write_sync(move |tx| tx.store_flags(mb, &[1], FlagOp::Add, &kw(0, &["a b"]), None));
    assert!(matches!(bad, Err(StoreError::Invalid(_))));
}

/// `+FLAGS`/`-FLAGS` of system flags alone (one UPDATE per run of UIDs):
/// unsorted and repeated UIDs, gaps, UIDs not there, entries that already
/// have the flag, keywords kept, one modseq for the change and none when
/// nothing changes.
#[test]
fn system_flag_store_by_runs_changes_only_what_changes() {
    let (_d, s) = store();
    let (_, mb) = inbox_with(&s, 8);
    s.write_sync(move |tx| {
        tx.store_flags(mb, &[3], FlagOp::Add, &Flags::system(Flags::DELETED), None)?;
        tx.expunge(mb, None)?;
        tx.store_flags(mb, &[2], FlagOp::Add, &kw(Flags::SEEN, &["$Todo"]), None)
    })
    .unwrap();
    let hms = s.read_sync(move |r| r.status(mb)).unwrap().highestmodseq;
    let seen = Flags::system(Flags::SEEN);
    let out = s
        .write_sync(move |tx| {
            tx.store_flags(mb, &[8, 1, 2, 3, 4, 4, 6, 7, 99], FlagOp::Add, &seen, None)
        })
        .unwrap();
    let uids: Vec<u32> = out.updated.iter().map(|e| e.uid).collect();
    assert_eq!(
        uids,
        [1, 4, 6, 7, 8],
        "2 was seen already, 3 is gone, 5 not asked"
    );
    assert!(out
        .updated
        .iter()
        .all(|e| e.modseq == hms + 1 && e.flags.has(SystemFlag::Seen)));
    assert_eq!(
        s.read_sync(move |r| r.status(mb)).unwrap().highestmodseq,
        hms + 1
    );
    let ch = s.read_sync(move |r| r.changes_since(mb, hms)).unwrap();
    assert_eq!(
        ch.changed.iter().map(|e| e.uid).collect::<Vec<_>>(),
        [1, 4, 6, 7, 8]
    );
    // Nothing to change: nothing returned, no modseq taken.
    let seen = Flags::system(Flags::SEEN);
    let again = s
        .write_sync(move |tx| tx.store_flags(mb, &[1, 2, 4], FlagOp::Add, &seen, None))
        .unwrap();
    assert!(again.updated.is_empty());
    assert_eq!(
        s.read_sync(move |r| r.status(mb)).unwrap().highestmodseq,
        hms + 1
    );
    // Removing keeps the keywords and the other flags.
    let both = Flags::system(Flags::SEEN | Flags::FLAGGED);
    let rm = s
        .write_sync(move |tx| tx.store_flags(mb, &[1, 2, 5], FlagOp::Remove, &both, None))
        .unwrap();
    assert_eq!(rm.updated.iter().map(|e| e.uid).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(rm.updated[1].flags, kw(0, &["$Todo"]));
    assert!(rm.updated.iter().all(|e| e.modseq == hms + 2));
    let entries = s.read_sync(move |r| r.entries(mb)).unwrap();
    let seen_now: Vec<u32> = entries
        .iter()
        .filter(|e| e.flags.has(SystemFlag::Seen))
        .map(|e| e.uid)
        .collect();
    assert_eq!(seen_now, [4, 6, 7, 8]);
}

#[test]
fn unchanged_since_refuses_newer_entries() {
    let (_d, s) = store();
    let (_, mb) = inbox_with(&s, 2);
    let e = s.read_sync(move |r| r.entries(mb)).unwrap();
    let base = e[0].modseq; // uid 1 older than uid 2
    let out = s
        .write_sync(move |tx| {
            tx.store_flags(
                mb,
                &[1, 2],
                FlagOp::Add,
                &Flags::system(Flags::SEEN),
                Some(base),
            )
        })
        .unwrap();
    assert_eq!(out.updated.iter().map(|e| e.uid).collect::<Vec<_>>(), [1]);
    assert_eq!(out.failed_modified, [2]);
}

#[test]
fn expunge_writes_tombstones_and_changes_since_reports_them() {
    let (_d, s) = store();
    let (_, mb) = inbox_with(&s, 4);
    let before = s.read_sync(move |r| r.status(mb)).unwrap().highestmodseq;
    s.write_sync(move |tx| {
        tx.store_flags(
            mb,
            &[1, 2, 4],
            FlagOp::Add,
            &Flags::system(Flags::DELETED),
            None,
        )
    })
    .unwrap();
    let gone = s
        .write_sync(move |tx| tx.expunge(mb, Some(&[4, 2, 3])))
        .unwrap();
    assert_eq!(gone, [2, 4], "only \\Deleted within the UID set");
    let ch = s.read_sync(move |r| r.changes_since(mb, before)).unwrap();
    assert_eq!(ch.expunged, [2, 4]);
    assert_eq!(ch.changed.iter().map(|e| e.uid).collect::<Vec<_>>(), [1]);
    assert_eq!(
        ch.highestmodseq,
        s.read_sync(move |r| r.status(mb)).unwrap().highestmodseq
    );
    let rest = s.write_sync(move |tx| tx.expunge(mb, None)).unwrap();
    assert_eq!(rest, [1]);
    assert_eq!(
        s.read_sync(|r| r.stored_messages()).unwrap(),
        1,
        "garbage collected"
    );
    let uids: Vec<u32> = s
        .read_sync(move |r| r.entries(mb))
        .unwrap()
        .iter()
        .map(|e| e.uid)
        .collect();
    assert_eq!(uids, [3]);
    let ch = s.read_sync(move |r| r.changes_since(mb, 0)).unwrap();
    assert_eq!(ch.expunged, [1, 2, 4]);
    // New mail after the expunge gets a fresh UID, never a reused one.
    let a = s.read_sync(|r| r.user("a@x")).unwrap().unwrap().id;
    assert_eq!(deliver(&s, simple("n", "b"), &[a]).entries[0].1, 5);
}

#[test]
fn copy_keeps_flags_and_move_removes_source() {
    let (_d, s) = store();
    let (a, inbox) = inbox_with(&s, 3);
    let trash = s
        .read_sync(move |r| r.mailbox(a, "Trash"))
        .unwrap()
        .unwrap();
    s.write_sync(move |tx| {
        tx.store_flags(inbox, &[2], FlagOp::Add, &kw(Flags::FLAGGED, &["x"]), None)
    })
    .unwrap();
    let c = s
        .write_sync(move |tx| tx.copy(inbox, &[3, 2, 77], trash.id))
        .unwrap();
    assert_eq!(c.uidvalidity, trash.uidvalidity);
    assert_eq!(c.map, [(2, 1), (3, 2)]);
    let te = s.read_sync(move |r| r.entries(trash.id)).unwrap();
    assert_eq!(te[0].flags, kw(Flags::FLAGGED, &["x"]));
    assert_eq!(
        s.read_sync(|r| r.stored_messages()).unwrap(),
        3,
        "copies share rows"
    );
    let m = s
        .write_sync(move |tx| tx.move_messages(inbox, &[1, 2], trash.id))
        .unwrap();
    assert_eq!(m.map, [(1, 3), (2, 4)]);
    let left: Vec<u32> = s
        .read_sync(move |r| r.entries(inbox))
        .unwrap()
        .iter()
        .map(|e| e.uid)
        .collect();
    assert_eq!(left, [3]);
    assert_eq!(
        s.read_sync(move |r| r.changes_since(inbox, 0))
            .unwrap()
            .expunged,
        [1, 2]
    );
    let err = s
        .write_sync(move |tx| tx.copy(inbox, &[3], 4242))
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)));
}

#[test]
fn mailbox_summary_agrees_with_the_entries() {
    let (_d, s) = store();
    let (_, mb) = inbox_with(&s, 4);
    let empty = s.read_sync(move |r| r.mailbox_summary(mb)).unwrap();
    assert_eq!(empty.uids, [1, 2, 3, 4]);
    assert_eq!(empty.first_unseen, Some(1));
    assert!(empty.keywords.is_empty());
    s.write_sync(move |tx| tx.store_flags(mb, &[1, 2], FlagOp::Add, &kw(Flags::SEEN, &[]), None))
        .unwrap();
    s.write_sync(move |tx| tx.store_flags(mb, &[2], FlagOp::Add, &kw(0, &["$Work", "b"]), None))
        .unwrap();
    s.write_sync(move |tx| tx.store_flags(mb, &[4], FlagOp::Add, &kw(0, &["$work", "c"]), None))
        .unwrap();
    s.write_sync(move |tx| tx.store_flags(mb, &[3], FlagOp::Add, &kw(Flags::DELETED, &[]), None))
        .unwrap();
    s.write_sync(move |tx| tx.expunge(mb, None)).unwrap();
    let sum = s.read_sync(move |r| r.mailbox_summary(mb)).unwrap();
    let entries = s.read_sync(move |r| r.entries(mb)).unwrap();
    assert_eq!(sum.uids, entries.iter().map(|e| e.uid).collect::<Vec<_>>());
    assert_eq!(sum.uids, [1, 2, 4]);
    // Sequence number 3 (UID 4) is the first without \Seen.
    assert_eq!(sum.first_unseen, Some(3));
    assert_eq!(sum.keywords.len(), 3, "{:?}", sum.keywords);
    for k in ["$work", "b", "c"] {
        assert!(
            sum.keywords.iter().any(|x| x.eq_ignore_ascii_case(k)),
            "{k}"
        );
    }
}
