//! ESEARCH (RFC 4731), SEARCHRES (RFC 5182) and CONTEXT=SEARCH (RFC 5267)
//! where a transcript cannot say it: the bound on live UPDATE contexts
//! (`NO [NOUPDATE]`, §4.3.1), updates pushed during IDLE (§4.3.2: "MAY be
//! sent at any time ... when the client is using the IDLE facility"), `$`
//! in COPY/MOVE/UID EXPUNGE, and refusals.

use crate::util::*;
use imapd::limits::MAX_UPDATE_CONTEXTS;

/// A server whose bob@localhost has `n` messages in INBOX, and a client
/// that logged in (tag a1) and selected it (a2).
fn mailbox_of(n: usize) -> (TestServer, Client, mailstore::UserId) {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    for i in 0..n {
        s.deliver(bob, &simple(&format!("m{i}"), "x"));
    }
    let mut c = s.login("bob@localhost");
    c.ok("SELECT INBOX");
    (s, c, bob)
}

#[test]
fn update_contexts_are_bounded_and_the_one_over_is_served_without_updates() {
    let (s, mut a, _) = mailbox_of(3);
    for n in 0..MAX_UPDATE_CONTEXTS {
        let r = a.cmd(&format!("UID SEARCH RETURN (UPDATE) KEYWORD k{n}"));
        assert_eq!(Client::status_of(&r), "OK", "{r:?}");
        assert!(!r.iter().any(|l| l.contains("NOUPDATE")), "{r:?}");
    }
    // One more: §4.3.1 untagged NO [NOUPDATE "tag"], other options still
    // honoured, tagged OK.
    a.send(b"over UID SEARCH RETURN (UPDATE COUNT) KEYWORD over\r\n");
    let r = a.until("over");
    assert!(
        r.contains(&"* ESEARCH (TAG \"over\") UID COUNT 0".to_owned()),
        "{r:?}"
    );
    assert!(
        r.iter().any(|l| l.starts_with("* NO [NOUPDATE \"over\"]")),
        "{r:?}"
    );
    assert!(r.last().unwrap().starts_with("over OK"), "{r:?}");
    // The refused one hears nothing; the live ones do.
    let mut b = s.login("bob@localhost");
    b.ok("SELECT INBOX");
    b.ok("STORE 1 +FLAGS (over k0)");
    let r = a.ok("NOOP");
    assert!(
        r.contains(&"* ESEARCH (TAG \"a3\") UID ADDTO (0 1)".to_owned()),
        "{r:?}"
    );
    assert!(!r.iter().any(|l| l.contains("\"over\"")), "{r:?}");
    // Cancelling one makes room again (the limit is on live contexts).
    a.ok("CANCELUPDATE \"a3\"");
    let r = a.ok("SEARCH RETURN (UPDATE) ALL");
    assert!(!r.iter().any(|l| l.contains("NOUPDATE")), "{r:?}");
    // A new selection drops them all (§4.3: updates cease).
    a.ok("SELECT INBOX");
    for n in 0..MAX_UPDATE_CONTEXTS {
        let r = a.cmd(&format!("SEARCH RETURN (UPDATE) KEYWORD j{n}"));
        assert!(!r.iter().any(|l| l.contains("NOUPDATE")), "{r:?}");
    }
}

#[test]
fn updates_are_pushed_during_idle() {
    let (s, mut a, bob) = mailbox_of(2);
    a.ok("SEARCH RETURN (UPDATE) UNSEEN");
    a.send(b"i1 IDLE\r\n");
    assert_eq!(a.line(), "+ idling");
    // A delivery: EXISTS, then ADDTO with its message number.
    s.deliver(bob, &simple("new", "y"));
    let mut got = Vec::new();
    loop {
        let l = a.line();
        let done = l.starts_with("* ESEARCH");
        got.push(l);
        if done {
            break;
        }
    }
    assert_eq!(
        got.last().unwrap(),
        "* ESEARCH (TAG \"a3\") ADDTO (0 3)",
        "{got:?}"
    );
    assert!(got.contains(&"* 3 EXISTS".to_owned()), "{got:?}");
    // Another session's flag change: REMOVEFROM.
    let mut b = s.login("bob@localhost");
    b.ok("SELECT INBOX");
    b.ok("STORE 2 +FLAGS (\\Seen)");
    loop {
        let l = a.line();
        if l.starts_with("* ESEARCH") {
            assert_eq!(l, "* ESEARCH (TAG \"a3\") REMOVEFROM (0 2)");
            break;
        }
    }
    a.send(b"DONE\r\n");
    assert!(a.until("i1").last().unwrap().starts_with("i1 OK"));
}

#[test]
fn dollar_works_in_copy_move_and_uid_expunge() {
    let (_s, mut a, _) = mailbox_of(4);
    a.ok("CREATE Other");
    a.ok("STORE 2,4 +FLAGS (\\Flagged)");
    a.ok("SEARCH RETURN (SAVE) FLAGGED");
    let r = a.ok("COPY $ Other");
    assert!(
        r.last().unwrap().contains("[COPYUID ") && r.last().unwrap().contains(" 2,4 "),
        "{r:?}"
    );
    let r = a.ok("MOVE $ Other");
    assert_eq!(grep(&r, "* 4 EXPUNGE").len(), 1, "{r:?}");
    assert_eq!(grep(&r, "* 2 EXPUNGE").len(), 1, "{r:?}");
    // The moved messages left $ (RFC 5182 §2.1): it names nothing now.
    let r = a.ok("FETCH $ (UID)");
    assert_eq!(r.len(), 1, "{r:?}");
    a.ok("UID SEARCH RETURN (SAVE) UID 3");
    a.ok("STORE $ +FLAGS (\\Deleted)");
    let r = a.ok("UID EXPUNGE $");
    assert_eq!(grep(&r, "* 2 EXPUNGE").len(), 1, "{r:?}");
    let r = a.ok("SEARCH ALL");
    assert_eq!(r[0], "* SEARCH 1");
}

#[test]
fn refusals_are_clear() {
    let (s, mut a, _) = mailbox_of(2);
    // `$` stands alone (RFC 5182 §4 grammar, as Dovecot reads it).
    let r = a.cmd("FETCH $,1 (UID)");
    assert_eq!(Client::status_of(&r), "BAD", "{r:?}");
    let r = a.cmd("CANCELUPDATE \"nosuch\"");
    assert_eq!(Client::status_of(&r), "NO", "{r:?}");
    let r = a.cmd("CANCELUPDATE");
    assert_eq!(Client::status_of(&r), "BAD", "{r:?}");
    // Outside the Selected state.
    let mut b = s.login("bob@localhost");
    let r = b.cmd("CANCELUPDATE \"a1\"");
    assert_eq!(Client::status_of(&r), "BAD", "{r:?}");
    let r = b.cmd("SEARCH RETURN (SAVE) ALL");
    assert_eq!(Client::status_of(&r), "BAD", "{r:?}");
    // A search too deep for us (NO [LIMIT]) with SAVE empties $ too.
    a.ok("SEARCH RETURN (SAVE) ALL");
    let deep = format!("{}ALL{}", "(".repeat(200), ")".repeat(200));
    let r = a.cmd(&format!("SEARCH RETURN (SAVE) {deep}"));
    assert!(r.last().unwrap().contains("NO [LIMIT]"), "{r:?}");
    let r = a.ok("SEARCH $");
    assert_eq!(r[0], "* SEARCH");
}

#[test]
fn capabilities_are_advertised() {
    let (_s, mut a, _) = mailbox_of(0);
    let r = a.ok("CAPABILITY");
    for cap in ["ESEARCH", "SEARCHRES", "CONTEXT=SEARCH"] {
        assert!(r[0].split(' ').any(|w| w == cap), "{cap} missing: {r:?}");
    }
}

/// RFC 7162 §3.1 (RFC 4551 §3.2 example 5; Dovecot does the same, and
/// imaptest's esearch-condstore expects it): the first CONDSTORE-enabling
/// command while a mailbox is selected announces its HIGHESTMODSEQ, once.
#[test]
fn first_condstore_enabling_command_announces_highestmodseq_once() {
    let (_s, mut a, _) = mailbox_of(2);
    let r = a.ok("FETCH 1 (MODSEQ)");
    assert!(r[0].starts_with("* OK [HIGHESTMODSEQ "), "{r:?}");
    assert!(r[1].starts_with("* 1 FETCH (MODSEQ ("), "{r:?}");
    let r = a.ok("SEARCH RETURN (COUNT) MODSEQ 1");
    assert!(!r.iter().any(|l| l.contains("HIGHESTMODSEQ")), "{r:?}");
    // After SELECT (CONDSTORE) nothing more is announced.
    let (_s, mut b, _) = mailbox_of(1);
    let r = b.ok("SELECT INBOX (CONDSTORE)");
    assert_eq!(grep(&r, "* OK [HIGHESTMODSEQ ").len(), 1, "{r:?}");
    let r = b.ok("STORE 1 (UNCHANGEDSINCE 1000) +FLAGS (\\Seen)");
    assert!(!r.iter().any(|l| l.contains("HIGHESTMODSEQ")), "{r:?}");
}
