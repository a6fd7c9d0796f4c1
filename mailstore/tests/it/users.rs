//! Users: create (default mailboxes), duplicates, delete, passwords, lookup.

use mailstore::{hash_password, verify_password, StoreError};

use crate::util::{deliver, simple, store, user};

#[test]
fn create_user_makes_default_mailboxes_subscribed() {
    let (_d, s) = store();
    let id = user(&s, "Bob@Example.org");
    let boxes = s.read_sync(move |r| r.mailboxes(id)).unwrap();
    let names: Vec<&str> = boxes.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["Drafts", "INBOX", "Junk", "Sent", "Trash"]);
    let sent = boxes.iter().find(|m| m.name == "Sent").unwrap();
    assert_eq!(sent.special_use.as_deref(), Some("\\Sent"));
    assert!(boxes.iter().all(|m| m.subscribed && m.uidnext == 1));
    let inbox = s
        .read_sync(move |r| r.mailbox(id, "inbox"))
        .unwrap()
        .unwrap();
    assert_eq!(inbox.name, "INBOX");
}

#[test]
fn duplicate_user_any_case_is_exists() {
    let (_d, s) = store();
    user(&s, "bob@example.org");
    let err = s
        .write_sync(|tx| tx.create_user("BOB@example.org", "h"))
        .unwrap_err();
    assert!(matches!(err, StoreError::Exists(_)), "{err:?}");
}

#[test]
fn lookup_is_case_insensitive_and_plus_tags_resolve() {
    let (_d, s) = store();
    let id = user(&s, "bob@example.org");
    let u = s.read_sync(|r| r.user("BOB@EXAMPLE.ORG")).unwrap().unwrap();
    assert_eq!(u.id, id);
    let r = s
        .read_sync(|r| r.resolve_recipient("Bob+lists@example.org"))
        .unwrap()
        .unwrap();
    assert_eq!(r.id, id);
    assert!(s
        .read_sync(|r| r.resolve_recipient("carol@example.org"))
        .unwrap()
        .is_none());
    assert!(s
        .read_sync(|r| r.resolve_recipient("+x@example.org"))
        .unwrap()
        .is_none());
}

#[test]
fn delete_user_removes_mail_and_unknown_is_not_found() {
    let (_d, s) = store();
    let a = user(&s, "a@x");
    let b = user(&s, "b@x");
    deliver(&s, simple("one", "hi"), &[a]);
    deliver(&s, simple("two", "hi"), &[a, b]);
    assert_eq!(s.read_sync(|r| r.stored_messages()).unwrap(), 2);
    s.write_sync(|tx| tx.delete_user("A@x")).unwrap();
    assert!(s.read_sync(|r| r.user("a@x")).unwrap().is_none());
    // "two" still belongs to b.
    assert_eq!(s.read_sync(|r| r.stored_messages()).unwrap(), 1);
    let err = s.write_sync(|tx| tx.delete_user("a@x")).unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)));
}

#[test]
fn a_deleted_users_id_is_never_given_to_another() {
    let (_d, s) = store();
    let a = user(&s, "a@x");
    let b = user(&s, "b@x");
    s.write_sync(|tx| tx.delete_user("b@x")).unwrap();
    // b had the highest id: plain rowid allocation would hand it out again.
    let c = user(&s, "c@x");
    assert!(c > b && b > a, "ids a={a} b={b} c={c}");
    let err = s.write_sync(|tx| tx.create_user("c@x", "h")).unwrap_err();
    assert!(matches!(err, StoreError::Exists(_)));
    s.write_sync(|tx| tx.delete_user("c@x")).unwrap();
    let d = user(&s, "d@x");
    assert!(d > c, "ids c={c} d={d}");
}

#[test]
fn passwords_hash_verify_and_authenticate() {
    let (_d, s) = store();
    let phc = hash_password("s3cret").unwrap();
    assert!(phc.starts_with("$argon2id$"));
    assert!(!verify_password("garbage", "s3cret"));
    s.write_sync(move |tx| tx.create_user("a@x", &phc)).unwrap();
    assert!(s
        .read_sync(|r| r.authenticate("A@X", "s3cret"))
        .unwrap()
        .is_some());
    assert!(s
        .read_sync(|r| r.authenticate("a@x", "nope"))
        .unwrap()
        .is_none());
    let phc2 = hash_password("new").unwrap();
    s.write_sync(move |tx| tx.set_password_hash("a@x", &phc2))
        .unwrap();
    assert!(s
        .read_sync(|r| r.authenticate("a@x", "new"))
        .unwrap()
        .is_some());
    let err = s
        .write_sync(|tx| tx.set_password_hash("zz@x", "h"))
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)));
}
