//! CREATE/DELETE/RENAME/SUBSCRIBE semantics.

use mailstore::StoreError;

use crate::util::{deliver, simple, store, user};

#[test]
fn rename_inbox_moves_messages_and_leaves_inbox_empty() {
    let (_d, s) = store();
    let a = user(&s, "a@x");
    deliver(&s, simple("1", "x"), &[a]);
    deliver(&s, simple("2", "x"), &[a]);
    let old = s
        .read_sync(move |r| r.mailbox(a, "INBOX"))
        .unwrap()
        .unwrap();
    s.write_sync(move |tx| tx.rename_mailbox(a, "inbox", "Old"))
        .unwrap();
    let inbox = s
        .read_sync(move |r| r.mailbox(a, "INBOX"))
        .unwrap()
        .unwrap();
    assert_eq!(inbox.id, old.id);
    assert_eq!(
        s.read_sync(move |r| r.status(inbox.id)).unwrap().messages,
        0
    );
    assert_eq!(inbox.uidnext, 3, "UIDs in INBOX are not reused");
    let moved = s.read_sync(move |r| r.mailbox(a, "Old")).unwrap().unwrap();
    assert_eq!(
        s.read_sync(move |r| r.status(moved.id)).unwrap().messages,
        2
    );
}

#[test]
fn rename_parent_renames_children_and_subscriptions() {
    let (_d, s) = store();
    let a = user(&s, "a@x");
    s.write_sync(move |tx| {
        tx.create_mailbox(a, "work", None)?;
        tx.create_mailbox(a, "work/2024", None)?;
        tx.create_mailbox(a, "workshop", None)?;
        tx.set_subscribed(a, "work/2024", true)
    })
    .unwrap();
    s.write_sync(move |tx| tx.rename_mailbox(a, "work", "jobs"))
        .unwrap();
    let names: Vec<String> = s
        .read_sync(move |r| r.mailboxes(a))
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert!(names.contains(&"jobs".to_string()));
    assert!(names.contains(&"jobs/2024".to_string()));
    assert!(
        names.contains(&"workshop".to_string()),
        "prefix without / untouched"
    );
    assert!(!names.contains(&"work".to_string()));
    let subs = s.read_sync(move |r| r.subscriptions(a)).unwrap();
    assert!(subs.contains(&"jobs/2024".to_string()));
    let err = s
        .write_sync(move |tx| tx.rename_mailbox(a, "jobs", "Sent"))
        .unwrap_err();
    assert!(matches!(err, StoreError::Exists(_)));
    let err = s
        .write_sync(move |tx| tx.rename_mailbox(a, "nope", "x"))
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)));
}

#[test]
fn create_delete_and_subscriptions_survive_delete() {
    let (_d, s) = store();
    let a = user(&s, "a@x");
    let id = s
        .write_sync(move |tx| tx.create_mailbox(a, "Lists", None))
        .unwrap();
    let err = s
        .write_sync(move |tx| tx.create_mailbox(a, "Lists", None))
        .unwrap_err();
    assert!(matches!(err, StoreError::Exists(_)));
    let bad = s
        .write_sync(move |tx| tx.create_mailbox(a, "a//b", None))
        .unwrap_err();
    assert!(matches!(bad, StoreError::Invalid(_)));
    let uv1 = s
        .read_sync(move |r| r.mailbox_by_id(id))
        .unwrap()
        .unwrap()
        .uidvalidity;
    s.write_sync(move |tx| tx.set_subscribed(a, "Lists", true))
        .unwrap();
    let raw = simple("x", "y");
    s.write_sync(move |tx| tx.append(id, &raw, &mailstore::Flags::empty(), 0))
        .unwrap();
    s.write_sync(move |tx| tx.delete_mailbox(id)).unwrap();
    assert!(s
        .read_sync(move |r| r.mailbox(a, "Lists"))
        .unwrap()
        .is_none());
    assert_eq!(s.read_sync(|r| r.stored_messages()).unwrap(), 0);
    assert!(s
        .read_sync(move |r| r.subscriptions(a))
        .unwrap()
        .contains(&"Lists".to_string()));
    let id2 = s
        .write_sync(move |tx| tx.create_mailbox(a, "Lists", None))
        .unwrap();
    let uv2 = s
        .read_sync(move |r| r.mailbox_by_id(id2))
        .unwrap()
        .unwrap()
        .uidvalidity;
    assert_ne!(uv1, uv2, "a reused name gets a new UIDVALIDITY");
    let inbox = s
        .read_sync(move |r| r.mailbox(a, "INBOX"))
        .unwrap()
        .unwrap()
        .id;
    let err = s
        .write_sync(move |tx| tx.delete_mailbox(inbox))
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)));
    s.write_sync(move |tx| tx.set_subscribed(a, "Lists", false))
        .unwrap();
    assert!(!s
        .read_sync(move |r| r.subscriptions(a))
        .unwrap()
        .contains(&"Lists".to_string()));
}
