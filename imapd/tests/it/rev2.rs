//! IMAP4rev2 (RFC 9051) beside IMAP4rev1, chosen by `ENABLE IMAP4rev2`:
//! the differences of Appendix E that apply to us (no `\Recent`, SEARCH
//! answered with ESEARCH, SELECT's LIST response, STATUS DELETED, UTF-8
//! mailbox names), and the same commands unchanged for an IMAP4rev1
//! session on the same mailbox. Also driven by Python's imaplib.

use crate::util::*;

#[test]
fn rev2_session_differs_and_rev1_session_does_not() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    s.deliver(bob, &simple("one", "1"));
    s.deliver(bob, &simple("two", "2"));

    let mut v1 = s.login("bob@localhost");
    let r = v1.ok("SELECT INBOX");
    assert_eq!(grep(&r, "* 2 RECENT").len(), 1, "{r:?}");
    assert_eq!(grep(&r, "* OK [UNSEEN 1]").len(), 1, "{r:?}");
    let r = v1.ok("SEARCH ALL");
    assert_eq!(r[0], "* SEARCH 1 2");
    v1.ok("LOGOUT");

    let mut c = s.login("bob@localhost");
    // Not while a mailbox is selected (RFC 5161 §3.1).
    c.ok("SELECT INBOX");
    let r = c.cmd("ENABLE IMAP4rev2");
    assert!(r.last().unwrap().contains(" BAD "), "{r:?}");
    c.ok("UNSELECT");
    let r = c.ok("ENABLE IMAP4rev2");
    assert_eq!(r[0], "* ENABLED IMAP4rev2");
    let r = c.ok("SELECT INBOX");
    assert!(
        grep(&r, "* 0 RECENT").is_empty() && grep(&r, "RECENT").is_empty(),
        "{r:?}"
    );
    assert!(grep(&r, "* OK [UNSEEN").is_empty(), "{r:?}");
    assert_eq!(grep(&r, "* LIST () \"/\" \"INBOX\"").len(), 1, "{r:?}");
    let r = c.ok("FETCH 1:2 (FLAGS)");
    assert!(r.iter().all(|l| !l.contains("\\Recent")), "{r:?}");
    let r = c.ok("SEARCH ALL");
    let tag = r[1].split(' ').next().unwrap();
    assert_eq!(r[0], format!("* ESEARCH (TAG \"{tag}\") ALL 1:2"));
    let r = c.ok("UID SEARCH SUBJECT nothing");
    let tag = r[1].split(' ').next().unwrap();
    assert_eq!(r[0], format!("* ESEARCH (TAG \"{tag}\") UID"));
    c.ok("STORE 2 +FLAGS.SILENT (\\Deleted)");
    let r = c.ok("STATUS INBOX (DELETED MESSAGES)");
    assert_eq!(r[0], "* STATUS \"INBOX\" (DELETED 1 MESSAGES 2)");
    // New mail: EXISTS, no RECENT.
    s.deliver(bob, &simple("three", "3"));
    let r = c.ok("NOOP");
    assert!(
        grep(&r, "* 3 EXISTS").len() == 1 && grep(&r, "RECENT").is_empty(),
        "{r:?}"
    );
    // UTF-8 names both ways; an IMAP4rev1 session sees modified UTF-7.
    c.ok("CREATE \"Entwürfe & Co\"");
    let r = c.ok("LIST \"\" \"Entw*\"");
    assert_eq!(r[0], "* LIST (\\HasNoChildren) \"/\" \"Entwürfe & Co\"");
    let mut v1 = s.login("bob@localhost");
    let r = v1.ok("LIST \"\" \"Entw*\"");
    assert_eq!(
        r[0],
        "* LIST (\\HasNoChildren) \"/\" \"Entw&APw-rfe &- Co\""
    );
}

const SCRIPT: &str = r#"
import sys, imaplib
port = int(sys.argv[1]); user = sys.argv[2]; pw = sys.argv[3]
M = imaplib.IMAP4('127.0.0.1', port)
assert 'IMAP4REV2' in M.capabilities, M.capabilities
M.login(user, pw)
typ, data = M.enable('IMAP4rev2')
assert typ == 'OK', (typ, data)
assert M.untagged_responses.pop('ENABLED') == [b'IMAP4rev2'], M.untagged_responses
typ, data = M.select('INBOX')
assert typ == 'OK' and data == [b'2'], (typ, data)
assert 'RECENT' not in M.untagged_responses, M.untagged_responses
assert M.untagged_responses.get('LIST') == [b'() "/" "INBOX"'], M.untagged_responses
typ, data = M.fetch('1:2', '(FLAGS)')
assert all(b'Recent' not in d for d in data), data
typ, data = M.search(None, 'ALL')
assert typ == 'OK', typ
es = M.untagged_responses.pop('ESEARCH', None)
assert es and es[0].endswith(b'ALL 1:2'), (es, M.untagged_responses)
typ, data = M.status('INBOX', '(DELETED SIZE)')
assert typ == 'OK' and b'DELETED 0' in data[0], data
M.logout()
print('ok')
"#;

#[test]
fn python_imaplib_enables_imap4rev2() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    s.deliver(bob, &simple("one", "1"));
    s.deliver(bob, &simple("two", "2"));
    python_client_ok(&s, SCRIPT, "imaplib");
}
