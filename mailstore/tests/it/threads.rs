//! Writer/reader threads: group commit, done-after-commit, shutdown drain,
//! commit listeners, closed store.

use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};

use mailstore::{NewMessage, Store, StoreError};

use crate::util::{simple, store, user};

#[test]
fn concurrent_writes_all_commit_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let s = Store::open(&path).unwrap();
    let a = user(&s, "a@x");
    let (tx, rx) = channel();
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let s = s.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for i in 0..200 {
                    let raw = simple(&format!("t{t}-{i}"), "body");
                    let tx = tx.clone();
                    s.write(
                        move |w| {
                            w.deliver(
                                &NewMessage {
                                    raw,
                                    internal_date: 1,
                                },
                                &[a],
                            )
                        },
                        move |r| tx.send(r.map(|d| d.entries[0].1)).unwrap(),
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    drop(tx);
    let mut uids: Vec<u32> = rx.iter().map(|r| r.unwrap()).collect();
    uids.sort_unstable();
    assert_eq!(uids, (1..=3200).collect::<Vec<u32>>());
    s.shutdown();
    drop(s);
    let s = Store::open(&path).unwrap();
    let inbox = s
        .read_sync(move |r| r.mailbox(a, "INBOX"))
        .unwrap()
        .unwrap();
    assert_eq!(
        s.read_sync(move |r| r.status(inbox.id)).unwrap().messages,
        3200
    );
    assert_eq!(s.read_sync(|r| r.stored_messages()).unwrap(), 3200);
}

#[test]
fn done_runs_after_commit_is_visible_to_another_connection() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let s = Store::open(&path).unwrap();
    let a = user(&s, "a@x");
    let other = Store::open(&path).unwrap(); // separate connections
    let (tx, rx) = channel();
    for i in 0..20 {
        let other = other.clone();
        let tx = tx.clone();
        let raw = simple(&format!("m{i}"), "b");
        s.write(
            move |w| {
                w.deliver(
                    &NewMessage {
                        raw,
                        internal_date: 1,
                    },
                    &[a],
                )
            },
            move |r| {
                let d = r.unwrap();
                let (mb, uid) = d.entries[0];
                // Runs on the writer thread: the row must already be durable
                // and visible to a different connection.
                let seen = other
                    .read_sync(move |rd| rd.entries(mb))
                    .unwrap()
                    .iter()
                    .any(|e| e.uid == uid);
                tx.send(seen).unwrap();
            },
        );
    }
    drop(tx);
    let seen: Vec<bool> = rx.iter().collect();
    assert_eq!(seen.len(), 20);
    assert!(seen.iter().all(|&v| v));
}

#[test]
fn shutdown_drains_queued_jobs_then_refuses() {
    let (_d, s) = store();
    let a = user(&s, "a@x");
    let count = Arc::new(Mutex::new(0));
    for i in 0..300 {
        let count = count.clone();
        let raw = simple(&format!("m{i}"), "b");
        s.write(
            move |w| {
                w.deliver(
                    &NewMessage {
                        raw,
                        internal_date: 1,
                    },
                    &[a],
                )
            },
            move |r| {
                r.unwrap();
                *count.lock().unwrap() += 1;
            },
        );
    }
    s.shutdown();
    assert_eq!(*count.lock().unwrap(), 300);
    s.shutdown(); // idempotent
    let (tx, rx) = channel();
    s.write(|w| w.create_user("z@x", "h"), move |r| tx.send(r).unwrap());
    assert!(matches!(rx.recv().unwrap(), Err(StoreError::Closed)));
    let (tx, rx) = channel();
    s.read(|r| r.users(), move |r| tx.send(r).unwrap());
    assert!(matches!(rx.recv().unwrap(), Err(StoreError::Closed)));
}

#[test]
fn failing_job_rolls_back_alone_and_listener_sees_mailboxes() {
    let (_d, s) = store();
    let a = user(&s, "a@x");
    let inbox = s
        .read_sync(move |r| r.mailbox(a, "INBOX"))
        .unwrap()
        .unwrap()
        .id;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    s.on_commit(move |ids| seen2.lock().unwrap().extend_from_slice(ids));
    let (tx, rx) = channel();
    let tx2 = tx.clone();
    s.write(
        move |w| {
            w.deliver(
                &NewMessage {
                    raw: simple("ok", "b"),
                    internal_date: 1,
                },
                &[a],
            )?;
            Err::<(), _>(StoreError::Invalid("boom".into()))
        },
        move |r| tx.send(r.is_ok()).unwrap(),
    );
    s.write(
        move |w| {
            w.deliver(
                &NewMessage {
                    raw: simple("ok2", "b"),
                    internal_date: 1,
                },
                &[a],
            )
        },
        move |r| tx2.send(r.is_ok()).unwrap(),
    );
    let results: Vec<bool> = rx.iter().take(2).collect();
    assert_eq!(results, [false, true]);
    assert_eq!(s.read_sync(|r| r.stored_messages()).unwrap(), 1);
    s.shutdown();
    assert!(seen.lock().unwrap().contains(&inbox));
}

#[test]
fn panicking_job_reports_panicked_and_writer_survives() {
    let (_d, s) = store();
    let r = s.write_sync(|_w| -> mailstore::Result<()> { panic!("job bug") });
    assert!(matches!(r, Err(StoreError::Panicked)), "{r:?}");
    user(&s, "a@x");
    let (tx, rx) = channel();
    s.read(
        |_r| -> mailstore::Result<()> { panic!("read bug") },
        move |r| tx.send(r).unwrap(),
    );
    assert!(matches!(rx.recv().unwrap(), Err(StoreError::Panicked)));
    assert_eq!(s.read_sync(|r| r.users()).unwrap().len(), 1);
}

#[test]
fn data_version_changes_after_commits() {
    let (_d, s) = store();
    let v1 = s.read_sync(|r| r.data_version()).unwrap();
    user(&s, "a@x");
    let v2 = s.read_sync(|r| r.data_version()).unwrap();
    assert!(v2 > v1);
}

#[test]
fn panicking_callback_does_not_stop_the_writer() {
    let (_d, s) = store();
    s.write(|w| w.create_user("a@x", "h"), |_r| panic!("callback bug"));
    // The next job still runs and commits.
    user(&s, "b@x");
    assert_eq!(s.read_sync(|r| r.users()).unwrap().len(), 2);
}

#[test]
fn every_commit_calls_listeners_once_and_bumps_data_version_once() {
    let (_d, s) = store();
    let calls = Arc::new(Mutex::new(0i64));
    let c2 = calls.clone();
    s.on_commit(move |_| *c2.lock().unwrap() += 1);
    let v0 = s.read_sync(|r| r.data_version()).unwrap();
    user(&s, "a@x"); // touches mailboxes
    s.write_sync(|tx| tx.set_password_hash("a@x", "h2"))
        .unwrap(); // touches none
    let _ = s.write_sync(|tx| tx.delete_user("nobody@x")); // fails, batch still commits
    let v1 = s.read_sync(|r| r.data_version()).unwrap();
    s.shutdown();
    assert_eq!(*calls.lock().unwrap(), v1 - v0);
    assert_eq!(v1 - v0, 3);
}

#[test]
fn two_stores_on_one_file_write_concurrently() {
    // As a standalone smtpd and imapd would: separate writers, one file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let s1 = Store::open(&path).unwrap();
    let s2 = Store::open(&path).unwrap();
    let a = user(&s1, "a@x");
    let (tx, rx) = channel();
    let threads: Vec<_> = [s1.clone(), s2.clone()]
        .into_iter()
        .enumerate()
        .flat_map(|(k, s)| {
            let tx = tx.clone();
            (0..4).map(move |t| {
                let s = s.clone();
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for i in 0..100 {
                        let raw = simple(&format!("s{k}-{t}-{i}"), "b");
                        let tx = tx.clone();
                        s.write(
                            move |w| {
                                w.deliver(
                                    &NewMessage {
                                        raw,
                                        internal_date: 1,
                                    },
                                    &[a],
                                )
                            },
                            move |r| tx.send(r.map(|d| d.entries[0].1)).unwrap(),
                        );
                    }
                })
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    drop(tx);
    let mut uids: Vec<u32> = rx.iter().map(|r| r.unwrap()).collect();
    uids.sort_unstable();
    assert_eq!(uids, (1..=800).collect::<Vec<u32>>(), "no UID given twice");
    let inbox = s2
        .read_sync(move |r| r.mailbox(a, "INBOX"))
        .unwrap()
        .unwrap();
    assert_eq!(
        s2.read_sync(move |r| r.status(inbox.id)).unwrap().messages,
        800
    );
}

#[test]
fn store_is_clone_send_sync() {
    fn check<T: Clone + Send + Sync + 'static>(_: &T) {}
    let (_d, s) = store();
    check(&s);
    let moved = s.clone();
    let h = std::thread::spawn(move || moved.read_sync(|r| r.users()).map(|u| u.len()));
    assert_eq!(h.join().unwrap().unwrap(), 0);
}

/// Rows of `pending_text` (search text not yet moved into the index),
/// read straight from the file.
fn pending_rows(path: &std::path::Path) -> i64 {
    let c = rusqlite::Connection::open(path).unwrap();
    c.query_row("SELECT count(*) FROM pending_text", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn idle_writer_indexes_the_whole_backlog_and_search_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let s = Store::open(&path).unwrap();
    let a = user(&s, "a@x");
    // One batch of 700 messages (3 index chunks of at most 256 rows), the
    // search text left pending by the delivering transaction.
    let every: Vec<Vec<u8>> = (0..700)
        .map(|i| simple(&format!("m{i}"), &format!("word{i} kumquat{}", i % 7)))
        .collect();
    s.write_sync(move |w| {
        for raw in every {
            w.deliver(
                &NewMessage {
                    raw,
                    internal_date: 1,
                },
                &[a],
            )?;
        }
        Ok(())
    })
    .unwrap();
    let inbox = s
        .read_sync(move |r| r.mailbox(a, "INBOX"))
        .unwrap()
        .unwrap()
        .id;
    let search = |s: &Store| {
        s.read_sync(move |r| r.search(inbox, &mailstore::Query::Body("kumquat3".into())))
            .unwrap()
    };
    let before = search(&s);
    assert_eq!(before.len(), 100);
    // Nothing else arrives: the writer indexes chunk after chunk until
    // nothing is pending.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while pending_rows(&path) > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "backlog of {} rows not indexed while idle",
            pending_rows(&path)
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(search(&s), before);
}
