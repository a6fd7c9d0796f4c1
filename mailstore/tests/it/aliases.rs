//! Aliases and catch-alls: resolution order, one copy per user, external
//! targets, loops refused at add time and at resolution, bounds.

use mailstore::{Resolution, Route, Store, StoreError, MAX_ALIAS_DEPTH};

fn add(s: &Store, address: &str, targets: &[&str]) -> mailstore::Result<usize> {
    let a = address.to_owned();
    let t: Vec<String> = targets.iter().map(|t| (*t).to_owned()).collect();
    s.write_sync(move |tx| tx.add_alias(&a, &t))
}

fn route(s: &Store, address: &str) -> Resolution {
    let a = address.to_owned();
    s.read_sync(move |r| r.route(&a)).unwrap()
}

fn users(ids: &[mailstore::UserId]) -> Resolution {
    Resolution::Route(Route {
        users: ids.to_vec(),
        forward: vec![],
    })
}

#[test]
fn users_aliases_tags_and_catch_all_resolve_in_order() {
    let (_d, s) = crate::util::store();
    let bob = crate::util::user(&s, "bob@example.org");
    let carol = crate::util::user(&s, "carol@example.org");
    assert_eq!(route(&s, "bob@example.org"), users(&[bob]));
    assert_eq!(route(&s, "Bob+x@example.org"), users(&[bob]));
    assert_eq!(route(&s, "info@example.org"), Resolution::Unknown);

    add(&s, "info@example.org", &["bob@example.org"]).unwrap();
    assert_eq!(route(&s, "INFO@Example.org"), users(&[bob]));
    assert_eq!(route(&s, "info+news@example.org"), users(&[bob]));
    assert_eq!(route(&s, "nobody@example.org"), Resolution::Unknown);

    add(&s, "@example.org", &["carol@example.org"]).unwrap();
    assert_eq!(route(&s, "nobody@example.org"), users(&[carol]));
    // Users and exact aliases come before the catch-all.
    assert_eq!(route(&s, "bob@example.org"), users(&[bob]));
    assert_eq!(route(&s, "info@example.org"), users(&[bob]));
    // Another domain is not caught.
    assert_eq!(route(&s, "nobody@example.net"), Resolution::Unknown);
}

#[test]
fn a_user_reached_twice_is_listed_once() {
    let (_d, s) = crate::util::store();
    let bob = crate::util::user(&s, "bob@example.org");
    let carol = crate::util::user(&s, "carol@example.org");
    add(
        &s,
        "sales@example.org",
        &["bob@example.org", "carol@example.org"],
    )
    .unwrap();
    add(
        &s,
        "team@example.org",
        &["sales@example.org", "bob@example.org"],
    )
    .unwrap();
    assert_eq!(route(&s, "team@example.org"), users(&[bob, carol]));
}

#[test]
fn external_targets_are_forwarded_once() {
    let (_d, s) = crate::util::store();
    let bob = crate::util::user(&s, "bob@example.org");
    add(
        &s,
        "a@example.org",
        &["bob@example.org", "Far@Elsewhere.test"],
    )
    .unwrap();
    add(
        &s,
        "b@example.org",
        &["a@example.org", "far@elsewhere.test"],
    )
    .unwrap();
    assert_eq!(
        route(&s, "b@example.org"),
        Resolution::Route(Route {
            users: vec![bob],
            forward: vec!["Far@elsewhere.test".into()],
        })
    );
}

#[test]
fn loops_are_refused_at_add_time_with_the_chain() {
    let (_d, s) = crate::util::store();
    crate::util::user(&s, "bob@example.org");
    add(&s, "a@example.org", &["bob@example.org"]).unwrap();
    add(&s, "b@example.org", &["a@example.org"]).unwrap();
    let err = add(&s, "a@example.org", &["b@example.org"]).unwrap_err();
    let StoreError::Invalid(why) = err else {
        panic!("{err:?}")
    };
    assert!(why.contains("alias loop"), "{why}");
    assert!(why.contains("a@example.org -> b@example.org"), "{why}");
    // Nothing of the refused add was kept.
    let rows = s.read_sync(|r| r.aliases()).unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    // Self-reference.
    assert!(add(&s, "c@example.org", &["c@example.org"]).is_err());
}

#[test]
fn catch_alls_pointing_at_each_other_are_refused() {
    let (_d, s) = crate::util::store();
    crate::util::user(&s, "bob@a.test");
    crate::util::user(&s, "carol@b.test");
    add(&s, "x@a.test", &["bob@a.test"]).unwrap();
    add(&s, "y@b.test", &["carol@b.test"]).unwrap();
    add(&s, "@a.test", &["z@b.test"]).unwrap_err(); // z@b.test: no such user
    add(&s, "@b.test", &["w@a.test"]).unwrap_err();
    // Written behind the checks (as an old file or a second writer could):
    // resolution refuses instead of looping.
    s.write_sync(|tx| {
        tx.delete_alias("x@a.test", &[])?;
        Ok(())
    })
    .unwrap();
    let s = crate::util::write_behind(
        &_d,
        s,
        "INSERT INTO aliases VALUES ('@a.test', 'q@b.test'), ('@b.test', 'q@a.test');",
    );
    let Resolution::Refused(why) = route(&s, "q@a.test") else {
        panic!()
    };
    assert!(why.contains("alias loop"), "{why}");
    // The users themselves still get their mail.
    assert!(matches!(route(&s, "bob@a.test"), Resolution::Route(_)));
}

#[test]
fn expansion_depth_is_bounded() {
    let (_d, s) = crate::util::store();
    let bob = crate::util::user(&s, "bob@example.org");
    add(&s, "l0@example.org", &["bob@example.org"]).unwrap();
    for i in 1..MAX_ALIAS_DEPTH {
        add(
            &s,
            &format!("l{i}@example.org"),
            &[&format!("l{}@example.org", i - 1)],
        )
        .unwrap();
    }
    let top = format!("l{}@example.org", MAX_ALIAS_DEPTH - 1);
    assert_eq!(route(&s, &top), users(&[bob]), "just under the bound");
    let err = add(&s, "over@example.org", &[&top]).unwrap_err();
    assert!(err.to_string().contains("deeper than"), "{err}");
}

#[test]
fn bad_aliases_are_refused_clearly() {
    let (_d, s) = crate::util::store();
    crate::util::user(&s, "bob@example.org");
    let e = add(&s, "bob@example.org", &["x@elsewhere.test"]).unwrap_err();
    assert!(e.to_string().contains("is a user"), "{e}");
    let e = add(&s, "info@example.org", &["ghost@example.org"]).unwrap_err();
    assert!(e.to_string().contains("no user or alias here"), "{e}");
    let e = add(&s, "not an address", &["bob@example.org"]).unwrap_err();
    assert!(e.to_string().contains("not an address"), "{e}");
    let e = add(&s, "info@example.org", &["@example.org"]).unwrap_err();
    assert!(e.to_string().contains("is a domain"), "{e}");
    let e = add(&s, "info@example.org", &[]).unwrap_err();
    assert!(e.to_string().contains("needs a target"), "{e}");
    assert!(s.read_sync(|r| r.aliases()).unwrap().is_empty());
}

#[test]
fn deleting_targets_and_whole_aliases() {
    let (_d, s) = crate::util::store();
    let bob = crate::util::user(&s, "bob@example.org");
    let carol = crate::util::user(&s, "carol@example.org");
    add(
        &s,
        "info@example.org",
        &["bob@example.org", "carol@example.org"],
    )
    .unwrap();
    s.write_sync(|tx| tx.delete_alias("info@example.org", &["carol@example.org".into()]))
        .unwrap();
    assert_eq!(route(&s, "info@example.org"), users(&[bob]));
    s.write_sync(|tx| tx.delete_alias("info@example.org", &[]))
        .unwrap();
    assert_eq!(route(&s, "info@example.org"), Resolution::Unknown);
    let e = s
        .write_sync(|tx| tx.delete_alias("info@example.org", &[]))
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound(_)), "{e:?}");
    // A deleted user's alias target is skipped, the rest still delivered.
    add(
        &s,
        "both@example.org",
        &["bob@example.org", "carol@example.org"],
    )
    .unwrap();
    s.write_sync(|tx| tx.delete_user("bob@example.org"))
        .unwrap();
    assert_eq!(route(&s, "both@example.org"), users(&[carol]));
}
