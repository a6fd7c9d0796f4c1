//! Mailbox keys (for URLAUTH, RFC 4467 §3): made once, kept, reset per
//! mailbox or per user, gone with the mailbox, and a migration from v3.

use crate::util::{store, user};

#[test]
fn keys_are_made_once_reset_and_dropped_with_the_mailbox() {
    let (_dir, s) = store();
    let a = user(&s, "a@x");
    let b = user(&s, "b@x");
    let ids = s
        .write_sync(move |tx| {
            let inbox = tx.create_mailbox(a, "K1", None)?;
            let other = tx.create_mailbox(a, "K2", None)?;
            let bs = tx.create_mailbox(b, "K1", None)?;
            Ok((inbox, other, bs))
        })
        .unwrap();
    let (k1, k2, kb) = ids;
    let key = |m| s.write_sync(move |tx| tx.mailbox_key(m)).unwrap();
    let first = key(k1);
    assert_eq!(first.len(), mailstore::MAILBOX_KEY_LEN);
    assert_eq!(key(k1), first, "kept");
    assert_ne!(key(k2), first, "one per mailbox");
    let b_first = key(kb);
    assert_ne!(b_first, first);
    assert_eq!(
        s.read_sync(move |r| r.mailbox_key(k1)).unwrap(),
        Some(first.clone())
    );
    // b resets b's own K1, not a's; a resets one, then all.
    assert!(s
        .write_sync(move |tx| tx.reset_mailbox_keys(b, Some("K1")))
        .unwrap());
    assert_eq!(key(k1), first);
    assert_eq!(s.read_sync(move |r| r.mailbox_key(kb)).unwrap(), None);
    let b_key = key(kb);
    assert_ne!(b_key, b_first);
    assert!(!s
        .write_sync(move |tx| tx.reset_mailbox_keys(b, Some("K2")))
        .unwrap());
    assert!(s
        .write_sync(move |tx| tx.reset_mailbox_keys(a, Some("K1")))
        .unwrap());
    assert_eq!(s.read_sync(move |r| r.mailbox_key(k1)).unwrap(), None);
    let second = key(k1);
    assert_ne!(second, first);
    assert!(s
        .write_sync(move |tx| tx.reset_mailbox_keys(a, None))
        .unwrap());
    assert_eq!(s.read_sync(move |r| r.mailbox_key(k1)).unwrap(), None);
    assert_eq!(s.read_sync(move |r| r.mailbox_key(k2)).unwrap(), None);
    assert_eq!(
        s.read_sync(move |r| r.mailbox_key(kb)).unwrap(),
        Some(b_key)
    );
    key(k2);
    s.write_sync(move |tx| tx.delete_mailbox(k2)).unwrap();
    assert_eq!(s.read_sync(move |r| r.mailbox_key(k2)).unwrap(), None);
}
