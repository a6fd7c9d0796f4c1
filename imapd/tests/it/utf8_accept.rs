//! UTF8=ACCEPT (RFC 6855): ENABLE, UTF-8 mailbox names in both directions,
//! APPEND's `UTF8 (literal8)` with 8-bit headers stored and fetched as
//! sent, and the rules around it (BAD before ENABLE, no SEARCH CHARSET
//! after). Python's imaplib switches to UTF-8 names after its `enable`.

use crate::util::*;

#[test]
fn utf8_append_is_stored_as_sent_and_names_are_utf8() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let mut c = s.login("bob@localhost");
    let r = c.ok("CAPABILITY");
    assert!(r[0].split(' ').any(|w| w == "UTF8=ACCEPT"), "{r:?}");
    let m = "From: Jöran <jöran@bücher.example>\r\nSubject: Grüße\r\n\r\nHallo\r\n";
    // Not before ENABLE (RFC 6855 §4).
    c.send(format!("x1 APPEND INBOX UTF8 (~{{{}+}}\r\n{m})\r\n", m.len()).as_bytes());
    let r = c.until("x1");
    assert!(r.last().unwrap().starts_with("x1 BAD"), "{r:?}");
    let r = c.ok("ENABLE UTF8=ACCEPT");
    assert_eq!(r[0], "* ENABLED UTF8=ACCEPT");
    c.ok("CREATE \"Grüße & Co\"");
    c.send(format!("x2 APPEND \"Grüße & Co\" UTF8 (~{{{}}}\r\n", m.len()).as_bytes());
    assert!(c.line().starts_with("+ "));
    c.send(format!("{m})\r\n").as_bytes());
    let r = c.until("x2");
    assert!(r.last().unwrap().starts_with("x2 OK"), "{r:?}");
    let r = c.ok("LIST \"\" \"Gr*\"");
    assert_eq!(r[0], "* LIST (\\HasNoChildren) \"/\" \"Grüße & Co\"");
    c.ok("SELECT \"Grüße & Co\"");
    c.send(b"x3 FETCH 1 BODY.PEEK[]\r\n");
    let body = c.read_literal_after("FETCH");
    assert_eq!(body, m.as_bytes());
    c.until("x3");
    let r = c.cmd("SEARCH CHARSET UTF-8 SUBJECT x");
    assert!(r.last().unwrap().contains(" BAD "), "{r:?}");
    let r = c.ok("SEARCH SUBJECT \"Grüße\"");
    assert_eq!(r[0], "* SEARCH 1");
}

const SCRIPT: &str = r#"
import sys, imaplib
port = int(sys.argv[1]); user = sys.argv[2]; pw = sys.argv[3]
M = imaplib.IMAP4('127.0.0.1', port)
assert 'UTF8=ACCEPT' in M.capabilities, M.capabilities
M.login(user, pw)
typ, data = M.enable('UTF8=ACCEPT')
assert typ == 'OK' and M.utf8_enabled, (typ, data)
typ, data = M.create('"Entwürfe & Notizen"')
assert typ == 'OK', (typ, data)
typ, data = M.list('""', '"Entw*"')
assert data == ['(\\HasNoChildren) "/" "Entwürfe & Notizen"'.encode()], data
typ, data = M.select('"Entwürfe & Notizen"')
assert typ == 'OK' and data == [b'0'], (typ, data)
M.logout()
print('ok')
"#;

#[test]
fn python_imaplib_uses_utf8_mailbox_names() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    python_client_ok(&s, SCRIPT, "imaplib");
}
