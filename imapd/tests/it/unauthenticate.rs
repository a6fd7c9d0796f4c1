//! UNAUTHENTICATE (RFC 8437): back to the Not Authenticated state on the
//! same connection, with what the login brought dropped: the selected
//! mailbox (not expunged), change notifications (IDLE's watch, NOTIFY),
//! ENABLEd extensions, the logged-in literal limit.

use crate::util::*;
use std::time::Duration;

#[test]
fn back_to_not_authenticated_then_log_in_as_someone_else() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    let carol = s.add_user("carol@localhost");
    s.deliver(bob, &simple("for bob", "1"));
    s.deliver(carol, &simple("for carol", "1"));
    s.deliver(carol, &simple("for carol", "2"));
    let mut c = s.client();
    let r = c.cmd("UNAUTHENTICATE");
    assert_eq!(Client::status_of(&r), "BAD", "not before login: {r:?}");
    c.login("bob@localhost", PASSWORD);
    let r = c.ok("CAPABILITY");
    assert!(r[0].split(' ').any(|w| w == "UNAUTHENTICATE"), "{r:?}");
    assert!(!r[0].contains("AUTH=PLAIN"), "{r:?}");
    c.ok("SELECT INBOX");
    c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)");
    let r = c.ok("UNAUTHENTICATE");
    assert!(
        r.len() == 1 && r[0].ends_with(" OK UNAUTHENTICATE completed"),
        "{r:?}"
    );
    // Not authenticated: mailbox commands are refused, the login
    // mechanisms are offered again, and UNAUTHENTICATE itself is refused.
    for cmd in [
        "FETCH 1 FLAGS",
        "SELECT INBOX",
        "STATUS INBOX (MESSAGES)",
        "UNAUTHENTICATE",
    ] {
        let r = c.cmd(cmd);
        assert_eq!(Client::status_of(&r), "BAD", "{cmd}: {r:?}");
    }
    let r = c.ok("CAPABILITY");
    assert!(r[0].contains("AUTH=PLAIN"), "{r:?}");
    c.login("carol@localhost", PASSWORD);
    let r = c.ok("SELECT INBOX");
    assert!(r.contains(&"* 2 EXISTS".to_owned()), "carol's INBOX: {r:?}");
    // Bob's mailbox was closed without an expunge (as UNSELECT).
    c.ok("UNAUTHENTICATE");
    c.login("bob@localhost", PASSWORD);
    let r = c.ok("STATUS INBOX (MESSAGES)");
    assert_eq!(r[0], "* STATUS \"INBOX\" (MESSAGES 1)");
}

#[test]
fn notifications_and_enabled_extensions_do_not_survive_it() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    s.deliver(bob, &simple("first", "1"));
    let mut c = s.login("bob@localhost");
    c.ok("ENABLE CONDSTORE");
    c.ok("NOTIFY SET (selected (MessageNew (UID) MessageExpunge)) (personal (MessageNew))");
    c.ok("SELECT INBOX");
    let r = c.ok("STORE 1 +FLAGS (\\Flagged)");
    assert!(r[0].contains("MODSEQ"), "CONDSTORE on: {r:?}");
    c.ok("UNAUTHENTICATE");
    // Mail to the mailbox that was selected and NOTIFY'd: nothing is
    // pushed to the unauthenticated session.
    s.deliver(bob, &simple("second", "2"));
    std::thread::sleep(Duration::from_millis(400));
    let r = c.ok("NOOP");
    assert_eq!(r.len(), 1, "nothing unsolicited: {r:?}");
    // Logged in again: CONDSTORE is off until enabled again, and the new
    // mail is only heard of by selecting.
    c.login("bob@localhost", PASSWORD);
    s.deliver(bob, &simple("third", "3"));
    std::thread::sleep(Duration::from_millis(400));
    let r = c.ok("NOOP");
    assert_eq!(r.len(), 1, "no NOTIFY left: {r:?}");
    let r = c.ok("SELECT INBOX");
    assert!(r.contains(&"* 3 EXISTS".to_owned()), "{r:?}");
    let r = c.ok("STORE 1 -FLAGS (\\Flagged)");
    assert!(!r[0].contains("MODSEQ"), "CONDSTORE reset: {r:?}");
    // ENABLE is valid again (Authenticated state only, RFC 5161 §3.1).
    c.ok("UNSELECT");
    let r = c.ok("ENABLE QRESYNC");
    assert_eq!(r[0], "* ENABLED QRESYNC");
}

#[test]
fn the_pre_login_literal_limit_applies_again() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let mut c = s.login("bob@localhost");
    // Logged in, a literal over the pre-login bound is fine.
    let big = imapd::limits::PREAUTH_MAX_LITERAL + 1;
    c.send(format!("x1 CREATE {{{big}+}}\r\n{}\r\n", "a".repeat(big as usize)).as_bytes());
    let l = c.until("x1").pop().unwrap();
    assert!(!l.contains("TOOBIG"), "{l}");
    c.ok("UNAUTHENTICATE");
    c.send(format!("x2 LOGIN {{{big}}}\r\n").as_bytes());
    let l = c.line();
    assert!(l.starts_with("x2 BAD [TOOBIG]"), "{l}");
    assert!(l.contains("before login"), "{l}");
    // And the session goes on.
    c.login("bob@localhost", PASSWORD);
}
