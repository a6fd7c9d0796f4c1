//! ESORT and CONTEXT=SORT (RFC 5267 §3, §4) where a transcript cannot say
//! it: SORT UPDATE contexts share the per-selection bound with SEARCH's
//! (`NO [NOUPDATE]`, §4.3.1), a delivery during IDLE reaches a SORT
//! context with its position in sort order after its EXISTS (§4.3.2,
//! §4.3.3), and a failed store read leaves nothing half-made.

use crate::util::*;
use imapd::limits::MAX_UPDATE_CONTEXTS;

/// bob@localhost with messages whose subjects are `subjects`, logged in
/// and INBOX selected.
fn mailbox_with(subjects: &[&str]) -> (TestServer, Client, mailstore::UserId) {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    for subj in subjects {
        s.deliver(bob, &simple(subj, "x"));
    }
    let mut c = s.login("bob@localhost");
    c.ok("SELECT INBOX");
    (s, c, bob)
}

#[test]
fn sort_and_search_contexts_share_the_bound() {
    let (_s, mut a, _) = mailbox_with(&["b", "a"]);
    for n in 0..MAX_UPDATE_CONTEXTS {
        let cmd = match n % 2 {
            0 => format!("SORT RETURN (UPDATE) (SUBJECT) UTF-8 KEYWORD k{n}"),
            _ => format!("SEARCH RETURN (UPDATE) KEYWORD k{n}"),
        };
        let r = a.cmd(&cmd);
        assert_eq!(Client::status_of(&r), "OK", "{r:?}");
        assert!(!r.iter().any(|l| l.contains("NOUPDATE")), "{r:?}");
    }
    // One more SORT: refused with NOUPDATE, its other options answered.
    a.send(b"over SORT RETURN (UPDATE ALL) (SUBJECT) UTF-8 ALL\r\n");
    let r = a.until("over");
    assert!(
        r.contains(&"* ESEARCH (TAG \"over\") ALL 2,1".to_owned()),
        "{r:?}"
    );
    assert!(
        r.iter().any(|l| l.starts_with("* NO [NOUPDATE \"over\"]")),
        "{r:?}"
    );
    assert!(r.last().unwrap().starts_with("over OK"), "{r:?}");
    // Cancelling a SORT context makes room.
    a.ok("CANCELUPDATE \"a3\"");
    let r = a.ok("SORT RETURN (UPDATE) (SUBJECT) UTF-8 ALL");
    assert!(!r.iter().any(|l| l.contains("NOUPDATE")), "{r:?}");
}

#[test]
fn a_delivery_during_idle_reaches_a_sort_context_at_its_position() {
    // Subjects c, a, e: sorted 2 (a), 1 (c), 3 (e).
    let (s, mut a, bob) = mailbox_with(&["c", "a", "e"]);
    let r = a.ok("SORT RETURN (UPDATE ALL MIN MAX) (SUBJECT) UTF-8 ALL");
    assert_eq!(
        r[0], "* ESEARCH (TAG \"a3\") MIN 2 MAX 3 ALL 2,1,3",
        "{r:?}"
    );
    a.send(b"i1 IDLE\r\n");
    assert_eq!(a.line(), "+ idling");
    // "d" sorts between c and e: message 4 at position 3, after EXISTS.
    s.deliver(bob, &simple("d", "y"));
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
        "* ESEARCH (TAG \"a3\") ADDTO (3 4)",
        "{got:?}"
    );
    assert!(got.contains(&"* 4 EXISTS".to_owned()), "{got:?}");
    a.send(b"DONE\r\n");
    assert!(a.until("i1").last().unwrap().starts_with("i1 OK"));
    // The context now is 2, 1, 4, 3: expunging 1 (position 2) says so.
    let mut b = s.login("bob@localhost");
    b.ok("SELECT INBOX");
    b.ok("STORE 1 +FLAGS (\\Deleted)");
    b.ok("EXPUNGE");
    let r = a.ok("NOOP");
    let at = |want: &str| r.iter().position(|l| l == want);
    let removed = at("* ESEARCH (TAG \"a3\") REMOVEFROM (2 1)");
    let expunge = at("* 1 EXPUNGE");
    assert!(removed.is_some() && removed < expunge, "{r:?}");
    // And a fresh SORT agrees with what the context became.
    let r = a.ok("SORT RETURN (ALL) (SUBJECT) UTF-8 ALL");
    assert_eq!(r[0], "* ESEARCH (TAG \"a5\") ALL 1,3,2", "{r:?}");
}

#[test]
fn esort_without_a_selected_mailbox_or_with_bad_options_is_refused() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let mut c = s.login("bob@localhost");
    let r = c.cmd("SORT RETURN (MIN) (ARRIVAL) UTF-8 ALL");
    assert_eq!(Client::status_of(&r), "BAD", "{r:?}");
    c.ok("SELECT INBOX");
    for bad in [
        "SORT RETURN (PARTIAL 0:1) (ARRIVAL) UTF-8 ALL",
        "SORT RETURN (MIN) ARRIVAL UTF-8 ALL",
        "SORT RETURN (UPDATE UPDATE) (ARRIVAL) UTF-8 ALL",
    ] {
        let r = c.cmd(bad);
        assert_eq!(Client::status_of(&r), "BAD", "{bad}: {r:?}");
    }
    // Empty mailbox: only COUNT is said (RFC 4731 §3.1 via §3).
    let r = c.ok("SORT RETURN (MIN MAX ALL COUNT) (ARRIVAL) UTF-8 ALL");
    assert_eq!(r[0], "* ESEARCH (TAG \"a7\") COUNT 0", "{r:?}");
}
