//! Several front ends over one PostgreSQL database: two `Store`s (as two
//! `minimail up` processes would open) delivering into one mailbox at the
//! same moment get strictly ascending, never reused UIDs and MODSEQs, and
//! each sees the other's commits.

use std::sync::mpsc::channel;

use mailstore::{NewMessage, Store, Uid};

use crate::util::{simple, store, user};

const PER_FRONT: usize = 500;

#[test]
fn two_front_ends_delivering_to_one_mailbox_get_unique_ascending_uids() {
    let (db, a) = store();
    let b = Store::open(db.url()).unwrap();
    let bob = user(&a, "bob@example.org");
    let inbox = a.read_sync(|r| r.mailbox(bob, "INBOX")).unwrap().unwrap();
    let before = b.read_sync(|r| r.data_version()).unwrap();

    // Every delivery queued at once on both, so each writer commits in
    // groups while the other does too; each front end's `done`s run in
    // its commit order.
    let (tx, rx) = channel::<(usize, usize, Uid)>();
    let fronts = [a.clone(), b.clone()];
    let threads: Vec<_> = fronts
        .iter()
        .enumerate()
        .map(|(f, s)| {
            let s = s.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for i in 0..PER_FRONT {
                    let raw = simple(&format!("f{f}-{i}"), "hello");
                    let tx = tx.clone();
                    s.write(
                        move |t| {
                            t.deliver(
                                &NewMessage {
                                    raw,
                                    internal_date: 1_790_000_000,
                                },
                                &[bob],
                            )
                        },
                        move |r| {
                            let d = r.unwrap();
                            tx.send((f, i, d.entries[0].1)).unwrap();
                        },
                    );
                }
            })
        })
        .collect();
    drop(tx);
    for t in threads {
        t.join().unwrap();
    }
    let done: Vec<(usize, usize, Uid)> = rx.iter().collect();
    assert_eq!(done.len(), 2 * PER_FRONT);

    // In each front end's commit order its UIDs strictly ascend.
    for f in 0..2 {
        let uids: Vec<Uid> = done.iter().filter(|d| d.0 == f).map(|d| d.2).collect();
        assert_eq!(uids.len(), PER_FRONT);
        assert!(
            uids.windows(2).all(|w| w[0] < w[1]),
            "front end {f}: UIDs not ascending in commit order"
        );
    }
    // Together: every UID once, 1..=1000 (nothing failed, so no gaps).
    let mut all: Vec<Uid> = done.iter().map(|d| d.2).collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all, (1..=(2 * PER_FRONT) as Uid).collect::<Vec<_>>());

    // What both front ends read back agrees: UIDs and MODSEQs ascend together.
    for s in [&a, &b] {
        let entries = s.read_sync(|r| r.entries(inbox.id)).unwrap();
        assert_eq!(entries.len(), 2 * PER_FRONT);
        assert!(entries
            .windows(2)
            .all(|w| w[0].uid < w[1].uid && w[0].modseq < w[1].modseq));
        let st = s.read_sync(|r| r.status(inbox.id)).unwrap();
        assert_eq!(st.uidnext, 2 * PER_FRONT as u32 + 1);
        assert_eq!(st.messages, 2 * PER_FRONT as u32);
        assert_eq!(st.uidvalidity, inbox.uidvalidity);
    }
    // B's commit counter moved by both front ends' batches (grouped, so
    // by fewer than one per delivery).
    let after = b.read_sync(|r| r.data_version()).unwrap();
    assert!(after > before + 1, "{before} -> {after}");
    assert!(after - before <= 2 * PER_FRONT as i64);
}

#[test]
fn a_front_end_sees_the_others_changes() {
    let (db, a) = store();
    let b = Store::open(db.url()).unwrap();
    let bob = user(&a, "bob@example.org");
    // B learns of the user A created, and of a mailbox.
    assert_eq!(
        b.read_sync(|r| r.user("BOB@example.org"))
            .unwrap()
            .map(|u| u.id),
        Some(bob)
    );
    let v0 = b.read_sync(|r| r.data_version()).unwrap();
    let d = crate::util::deliver(&a, simple("x", "y"), &[bob]);
    let v1 = b.read_sync(|r| r.data_version()).unwrap();
    assert_eq!(v1, v0 + 1);
    let (mb, uid) = d.entries[0];
    // B flags it, A sees the new modseq and flags.
    let out = b
        .write_sync(move |tx| {
            tx.store_flags(
                mb,
                &[uid],
                mailstore::FlagOp::Add,
                &mailstore::Flags::system(mailstore::Flags::SEEN),
                None,
            )
        })
        .unwrap();
    let e = a.read_sync(|r| r.entries(mb)).unwrap();
    assert_eq!(e[0].modseq, out.updated[0].modseq);
    assert!(e[0].flags.has(mailstore::SystemFlag::Seen));
}
