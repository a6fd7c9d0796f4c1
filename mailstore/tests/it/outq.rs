//! The outbound queue (`outq.rs`): enqueue, due, defer, finish, retry,
//! delete, list. Runs on SQLite and, unchanged, on PostgreSQL
//! (`tests/pg/main.rs`).

use mailstore::{OutMessage, OutRcpt, StoreError};

use crate::util::store;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn msg(qid: &str, rcpts: &[&str]) -> OutMessage {
    OutMessage {
        qid: qid.into(),
        sender: "a@a.test".into(),
        raw: b"Subject: x\r\n\r\nhi\r\n".to_vec(),
        ret: None,
        envid: None,
        rcpts: rcpts
            .iter()
            .map(|a| OutRcpt {
                addr: (*a).into(),
                notify: None,
                orcpt: None,
            })
            .collect(),
    }
}

#[test]
fn queue_lifecycle() {
    let (_dir, store) = store();
    let m = msg("Q1", &["x@B.test", "y@c.test"]);
    store.write_sync(move |tx| tx.enqueue(&m)).unwrap();
    let due = store.read_sync(|r| r.queue_due(now() + 1, 10)).unwrap();
    assert_eq!(due.len(), 2);
    assert_eq!(due[0].domain, "b.test");
    assert_eq!(due[0].size, 18);
    assert_eq!(due[0].lease_owner, None);
    assert_eq!(store.read_sync(|r| r.queue_size()).unwrap(), (1, 2));
    let (a, b) = (due[0].id, due[1].id);
    let later = now() + 3600;
    store
        .write_sync(move |tx| tx.queue_defer(a, later, "451 try later"))
        .unwrap();
    let due = store.read_sync(|r| r.queue_due(now() + 1, 10)).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        store
            .read_sync(|r| r.queue_next_due())
            .unwrap()
            .map(|t| t > 0),
        Some(true)
    );
    store.write_sync(move |tx| tx.queue_warned(a)).unwrap();
    store.write_sync(move |tx| tx.queue_finish(b)).unwrap();
    let all = store.read_sync(|r| r.queue_list()).unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].attempts, 1);
    assert!(all[0].warned);
    assert_eq!(all[0].last_error.as_deref(), Some("451 try later"));
    assert_eq!(
        store.read_sync(|r| r.queue_raw_by_qid("Q1")).unwrap(),
        Some(b"Subject: x\r\n\r\nhi\r\n".to_vec())
    );
    let msg_id = all[0].msg_id;
    assert!(store
        .read_sync(move |r| r.queue_raw(msg_id))
        .unwrap()
        .is_some());
    assert_eq!(
        store.write_sync(|tx| tx.queue_retry(Some("Q1"))).unwrap(),
        1
    );
    assert_eq!(
        store.write_sync(|tx| tx.queue_retry(Some("NOPE"))).unwrap(),
        0
    );
    assert_eq!(
        store
            .read_sync(|r| r.queue_due(now() + 1, 10))
            .unwrap()
            .len(),
        1
    );
    store.write_sync(move |tx| tx.queue_finish(a)).unwrap();
    // Finishing an unknown (already finished) recipient is no error.
    store.write_sync(move |tx| tx.queue_finish(a)).unwrap();
    assert!(store.read_sync(|r| r.queue_list()).unwrap().is_empty());
    assert_eq!(store.read_sync(|r| r.queue_raw_by_qid("Q1")).unwrap(), None);
    assert_eq!(store.read_sync(move |r| r.queue_raw(msg_id)).unwrap(), None);
    assert_eq!(store.read_sync(|r| r.queue_next_due()).unwrap(), None);
    assert_eq!(store.read_sync(|r| r.queue_size()).unwrap(), (0, 0));

    let m = msg("Q2", &["x@b.test"]);
    store.write_sync(move |tx| tx.enqueue(&m)).unwrap();
    // A queue id is unique.
    let m = msg("Q2", &["z@b.test"]);
    let e = store.write_sync(move |tx| tx.enqueue(&m)).unwrap_err();
    assert!(matches!(e, StoreError::Exists(_)), "{e:?}");
    assert!(store.write_sync(|tx| tx.queue_delete("Q2")).unwrap());
    assert!(!store.write_sync(|tx| tx.queue_delete("Q2")).unwrap());
    assert!(store.read_sync(|r| r.queue_list()).unwrap().is_empty());
    let m = msg("Q3", &[]);
    assert!(store.write_sync(move |tx| tx.enqueue(&m)).is_err());
    // The failed jobs left the store usable.
    let m = msg("Q4", &["x@b.test"]);
    store.write_sync(move |tx| tx.enqueue(&m)).unwrap();
    assert_eq!(store.read_sync(|r| r.queue_size()).unwrap(), (1, 1));
}

/// Where one process owns the queue (SQLite), every recipient is "still
/// leased" to whoever records its outcome; on PostgreSQL only to the
/// front end that claimed it (see `tests/pg/outq.rs`).
#[test]
fn outcomes_of_unleased_recipients() {
    let (_dir, store) = store();
    let m = msg("Q1", &["x@b.test"]);
    store.write_sync(move |tx| tx.enqueue(&m)).unwrap();
    let id = store.read_sync(|r| r.queue_list()).unwrap()[0].id;
    let kept = store
        .write_sync(move |tx| tx.queue_still_leased(&[id], "me"))
        .unwrap();
    if store.is_postgres() {
        assert!(kept.is_empty(), "never claimed: {kept:?}");
        assert!(store.queue_leases("me").unwrap().is_some());
    } else {
        assert_eq!(kept, [id]);
        assert!(store.queue_leases("me").unwrap().is_none());
    }
}
