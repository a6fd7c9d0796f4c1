//! Interop with real clients: Python's imaplib and curl's imap:// support.
//! These fail (not skip) if python3 or curl is missing.

use crate::util::*;
use std::process::Command;

#[test]
fn python_imaplib_logs_in_selects_fetches_stores_searches() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    s.deliver(bob, MULTIPART);
    s.deliver(bob, &simple("second", "hello imaplib"));
    let script = r#"
import imaplib, sys
port = int(sys.argv[1]); expected = open(sys.argv[2], 'rb').read()
m = imaplib.IMAP4('127.0.0.1', port)
m.login('bob@localhost', 'secret pw')
typ, data = m.select('INBOX')
assert typ == 'OK' and data == [b'2'], (typ, data)
typ, data = m.fetch('1', '(BODY.PEEK[])')
assert typ == 'OK' and data[0][1] == expected, data
typ, data = m.uid('FETCH', '2', '(FLAGS RFC822.SIZE)')
assert typ == 'OK' and b'UID 2' in data[0], data
typ, data = m.store('2', '+FLAGS', '(\\Flagged)')
assert typ == 'OK' and b'\\Flagged' in data[0], data
typ, data = m.search(None, 'FLAGGED')
assert data == [b'2'], data
typ, data = m.uid('SEARCH', None, 'TEXT', 'imaplib')
assert data == [b'2'], data
typ, data = m.list()
assert typ == 'OK' and any(b'"INBOX"' in l for l in data), data
m.create('Py/Sub')
typ, data = m.copy('1:2', 'Py/Sub')
assert typ == 'OK', (typ, data)
typ, data = m.status('Py/Sub', '(MESSAGES)')
assert data == [b'"Py/Sub" (MESSAGES 2)'], data
typ, data = m.append('Py/Sub', '(\\Seen)', None, b'Subject: appended\r\n\r\nhi\r\n')
assert typ == 'OK', (typ, data)
m.close()
m.logout()
print('ok')
"#;
    let expected = s.dir.path().join("expected.eml");
    std::fs::write(&expected, MULTIPART).unwrap();
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(s.addr.port().to_string())
        .arg(&expected)
        .output()
        .expect("python3 must be installed for interop tests");
    assert!(
        out.status.success(),
        "imaplib failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

fn curl(args: &[&str]) -> std::process::Output {
    Command::new("curl")
        .args([
            "-s",
            "-S",
            "--max-time",
            "20",
            "-u",
            "bob@localhost:secret pw",
        ])
        .args(args)
        .output()
        .expect("curl must be installed for interop tests")
}

#[test]
fn curl_lists_mailboxes_and_fetches_a_message() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    s.deliver(bob, MULTIPART);
    let base = format!("imap://127.0.0.1:{}", s.addr.port());
    let out = curl(&[&format!("{base}/")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.contains("\"INBOX\"") && listing.contains("\"Sent\""),
        "{listing}"
    );
    let out = curl(&[&format!("{base}/INBOX;UID=1")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, MULTIPART);
    let out = curl(&[&format!("{base}/INBOX?SUBJECT%20Multi")]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("SEARCH 1"),
        "{:?}",
        out
    );
}
