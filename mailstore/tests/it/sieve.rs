//! Sieve scripts and remembered ids in the store (the language is not the
//! store's business): one active script per user, the active one cannot
//! be deleted, limits, ids remembered once until they expire, and filing
//! one message into several mailboxes with flags.

use mailstore::{Filing, Flags, PreparedMessage, StoreError, MAX_SCRIPT_SIZE};

#[test]
fn one_script_is_active_and_cannot_be_deleted() {
    let (_d, s) = crate::util::store();
    let u = crate::util::user(&s, "bob@example.org");
    s.write_sync(move |tx| {
        tx.put_sieve_script(u, "a", b"keep;")?;
        tx.put_sieve_script(u, "b", b"discard;")?;
        tx.activate_sieve_script(u, Some("a"))?;
        tx.activate_sieve_script(u, Some("b"))
    })
    .unwrap();
    let list = s.read_sync(move |r| r.sieve_scripts(u)).unwrap();
    assert_eq!(
        list.iter()
            .map(|i| (i.name.as_str(), i.active))
            .collect::<Vec<_>>(),
        [("a", false), ("b", true)]
    );
    assert_eq!(
        s.read_sync(move |r| r.active_sieve_script(u)).unwrap(),
        Some(("b".into(), b"discard;".to_vec()))
    );
    let e = s
        .write_sync(move |tx| tx.delete_sieve_script(u, "b"))
        .unwrap_err();
    assert!(e.to_string().contains("active"), "{e}");
    // Replacing the active script keeps it active; renaming too.
    s.write_sync(move |tx| {
        tx.put_sieve_script(u, "b", b"stop;")?;
        tx.rename_sieve_script(u, "b", "c")
    })
    .unwrap();
    assert_eq!(
        s.read_sync(move |r| r.active_sieve_script(u)).unwrap(),
        Some(("c".into(), b"stop;".to_vec()))
    );
    s.write_sync(move |tx| {
        tx.activate_sieve_script(u, None)?;
        tx.delete_sieve_script(u, "c")
    })
    .unwrap();
    assert_eq!(
        s.read_sync(move |r| r.active_sieve_script(u)).unwrap(),
        None
    );
    let e = s
        .write_sync(move |tx| tx.activate_sieve_script(u, Some("nope")))
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound(_)), "{e:?}");
}

/// The writer's check before a delivery: exactly the users with an
/// active script, each once, in the order asked; a script that exists but
/// is not active does not count, and deactivating one is seen at once.
#[test]
fn users_with_active_script_names_exactly_those() {
    let (_d, s) = crate::util::store();
    let a = crate::util::user(&s, "a@example.org");
    let b = crate::util::user(&s, "b@example.org");
    let c = crate::util::user(&s, "c@example.org");
    s.write_sync(move |tx| {
        tx.put_sieve_script(a, "x", b"keep;")?;
        tx.put_sieve_script(b, "y", b"keep;")?;
        tx.put_sieve_script(c, "z", b"keep;")?;
        tx.activate_sieve_script(c, Some("z"))?;
        tx.activate_sieve_script(a, Some("x"))
    })
    .unwrap();
    let ask = |users: Vec<i64>| {
        s.write_sync(move |tx| tx.users_with_active_script(&users))
            .unwrap()
    };
    assert_eq!(ask(vec![a, b, c]), [a, c]);
    assert_eq!(ask(vec![c, c, b, a, 999_999]), [c, a]);
    assert_eq!(ask(vec![b]), Vec::<i64>::new());
    assert_eq!(ask(vec![]), Vec::<i64>::new());
    s.write_sync(move |tx| tx.activate_sieve_script(c, None))
        .unwrap();
    assert_eq!(ask(vec![a, b, c]), [a]);
    // Inside one transaction, after the user was looked at (on
    // PostgreSQL: locked, the answer kept for the batch), an activation
    // and a deactivation are seen at once.
    let seen = s
        .write_sync(move |tx| {
            let mut seen = vec![tx.users_with_active_script(&[a, b])?];
            tx.activate_sieve_script(b, Some("y"))?;
            seen.push(tx.users_with_active_script(&[a, b])?);
            tx.activate_sieve_script(a, None)?;
            seen.push(tx.users_with_active_script(&[a, b])?);
            Ok(seen)
        })
        .unwrap();
    assert_eq!(seen, [vec![a], vec![a, b], vec![b]]);
    // A job that activated a script and then failed changed nothing.
    let e = s
        .write_sync(move |tx| {
            tx.users_with_active_script(&[c])?;
            tx.activate_sieve_script(c, Some("z"))?;
            Err::<(), _>(StoreError::Invalid("changed my mind".into()))
        })
        .unwrap_err();
    assert!(matches!(e, StoreError::Invalid(_)), "{e:?}");
    assert_eq!(ask(vec![a, b, c]), [b]);
}

#[test]
fn script_size_and_names_are_bounded() {
    let (_d, s) = crate::util::store();
    let u = crate::util::user(&s, "bob@example.org");
    let big = vec![b'#'; MAX_SCRIPT_SIZE + 1];
    let e = s
        .write_sync(move |tx| tx.put_sieve_script(u, "big", &big))
        .unwrap_err();
    assert!(e.to_string().contains("more than"), "{e}");
    let just = vec![b'#'; MAX_SCRIPT_SIZE];
    s.write_sync(move |tx| tx.put_sieve_script(u, "just", &just))
        .unwrap();
    assert!(s
        .write_sync(move |tx| tx.put_sieve_script(u, "a\nb", b"keep;"))
        .is_err());
    assert!(s
        .write_sync(move |tx| tx.put_sieve_script(u, "", b"keep;"))
        .is_err());
}

#[test]
fn ids_are_remembered_once_until_they_expire() {
    let (_d, s) = crate::util::store();
    let u = crate::util::user(&s, "bob@example.org");
    let far = i64::MAX;
    assert!(s
        .write_sync(move |tx| tx.remember_sieve_id(u, "_vx", far))
        .unwrap());
    assert!(!s
        .write_sync(move |tx| tx.remember_sieve_id(u, "_vx", far))
        .unwrap());
    assert!(s.read_sync(move |r| r.sieve_id_seen(u, "_vx")).unwrap());
    // An expired id is forgotten.
    assert!(s
        .write_sync(move |tx| tx.remember_sieve_id(u, "old", 1))
        .unwrap());
    assert!(!s.read_sync(move |r| r.sieve_id_seen(u, "old")).unwrap());
    assert!(s
        .write_sync(move |tx| tx.remember_sieve_id(u, "old", far))
        .unwrap());
}

#[test]
fn one_message_is_filed_into_several_mailboxes_with_flags() {
    let (_d, s) = crate::util::store();
    let u = crate::util::user(&s, "bob@example.org");
    let msg = PreparedMessage::new(mailstore::NewMessage {
        raw: crate::util::simple("filed", "x"),
        internal_date: 1_790_000_000,
    })
    .unwrap();
    let filing = |mailbox: &str, flags: Flags, create: bool| Filing {
        user: u,
        mailbox: mailbox.into(),
        flags,
        create,
    };
    let filings = vec![
        filing("Lists", Flags::system(Flags::SEEN), true),
        filing("Missing", Flags::empty(), false),
        filing("INBOX", Flags::system(Flags::FLAGGED), false),
    ];
    s.write_sync(move |tx| tx.deliver_filed(&msg, &filings))
        .unwrap();
    let lists = s
        .read_sync(move |r| r.mailbox(u, "Lists"))
        .unwrap()
        .unwrap();
    assert!(lists.subscribed, ":create makes it subscribed");
    let e = s.read_sync(move |r| r.entries(lists.id)).unwrap();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].flags.system, Flags::SEEN);
    assert!(s
        .read_sync(move |r| r.mailbox(u, "Missing"))
        .unwrap()
        .is_none());
    let inbox = s
        .read_sync(move |r| r.mailbox(u, "INBOX"))
        .unwrap()
        .unwrap();
    // The copy for the missing mailbox went to INBOX; INBOX once.
    let e = s.read_sync(move |r| r.entries(inbox.id)).unwrap();
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(s.read_sync(|r| r.stored_messages()).unwrap(), 1);
}
