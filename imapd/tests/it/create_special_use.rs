//! CREATE-SPECIAL-USE (RFC 6154 §3): `CREATE name (USE (\Attr))` makes a
//! mailbox with that special use, shown by LIST; an attribute we cannot
//! give is refused with `NO [USEATTR]` and nothing is created.

use crate::util::*;

#[test]
fn create_with_a_special_use_and_list_shows_it() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let mut c = s.login("bob@localhost");
    let r = c.ok("CAPABILITY");
    assert!(r[0].split(' ').any(|w| w == "CREATE-SPECIAL-USE"), "{r:?}");
    c.ok("CREATE Old/2024 (USE (\\archive))");
    let r = c.ok("LIST \"\" Old/2024");
    assert_eq!(
        r[0],
        "* LIST (\\HasNoChildren \\Archive) \"/\" \"Old/2024\""
    );
    let r = c.ok("LIST (SPECIAL-USE) \"\" \"*\"");
    assert!(r.iter().any(|l| l.ends_with("\"Old/2024\"")), "{r:?}");
    // The parent made on the way has no special use.
    let r = c.ok("LIST \"\" Old");
    assert_eq!(r[0], "* LIST (\\HasChildren) \"/\" \"Old\"");
    // USE () is no special use.
    c.ok("CREATE Plain (USE ())");
    let r = c.ok("LIST \"\" Plain");
    assert_eq!(r[0], "* LIST (\\HasNoChildren) \"/\" \"Plain\"");
}

#[test]
fn attributes_we_cannot_give_are_refused_with_useattr() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let mut c = s.login("bob@localhost");
    for (cmd, name) in [
        ("CREATE Odd (USE (\\Important))", "Odd"),
        ("CREATE Two (USE (\\Sent \\Trash))", "Two"),
        ("CREATE Kw (USE (Archive))", "Kw"),
    ] {
        let r = c.cmd(cmd);
        assert!(r.last().unwrap().contains(" NO [USEATTR]"), "{cmd}: {r:?}");
        // §3: the mailbox MUST NOT be created.
        let r = c.ok(&format!("LIST \"\" {name}"));
        assert_eq!(r.len(), 1, "{name} exists: {r:?}");
    }
    let r = c.cmd("CREATE Bad (USE)");
    assert_eq!(Client::status_of(&r), "BAD", "{r:?}");
}
