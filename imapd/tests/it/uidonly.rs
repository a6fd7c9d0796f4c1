//! UIDONLY (RFC 9586): after `ENABLE UIDONLY`, message numbers are refused
//! with `BAD [UIDREQUIRED]` (also inside UID SEARCH and QRESYNC's
//! seq-match-data), FETCH data comes as `uid UIDFETCH (...)`, and expunges
//! as VANISHED. A session that did not enable it is unchanged. Python's
//! imaplib, which knows nothing of UIDONLY, reads UIDFETCH as an untagged
//! response of its own name.

use crate::util::*;
use std::process::Command;

#[test]
fn uids_only_after_enable() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    for n in 1..=3 {
        s.deliver(bob, &simple(&format!("m{n}"), "x"));
    }
    let mut c = s.login("bob@localhost");
    let r = c.ok("CAPABILITY");
    assert!(r[0].split(' ').any(|w| w == "UIDONLY"), "{r:?}");
    // QRESYNC's seq-match-data is message numbers too.
    let mut q = s.login("bob@localhost");
    let r = q.ok("ENABLE UIDONLY QRESYNC");
    assert_eq!(r[0], "* ENABLED UIDONLY QRESYNC");
    let r = q.cmd("SELECT INBOX (QRESYNC (1 1 1:3 (1:3 1:3)))");
    assert!(r.last().unwrap().contains(" BAD [UIDREQUIRED]"), "{r:?}");
    q.ok("SELECT INBOX (QRESYNC (1 1 1:3))");

    let r = c.ok("ENABLE UIDONLY");
    assert_eq!(r[0], "* ENABLED UIDONLY");
    c.ok("SELECT INBOX");
    for bad in [
        "FETCH 1 FLAGS",
        "STORE 1:* +FLAGS (\\Seen)",
        "COPY 1 INBOX",
        "MOVE 2 INBOX",
        "SEARCH ALL",
        "UID SEARCH OR 1 UID 2",
        "SORT (DATE) UTF-8 ALL",
        "THREAD REFERENCES UTF-8 ALL",
    ] {
        let r = c.cmd(bad);
        assert!(
            r.last().unwrap().contains(" BAD [UIDREQUIRED]"),
            "{bad}: {r:?}"
        );
    }
    let r = c.ok("UID FETCH 2:3 (FLAGS)");
    assert_eq!(r.len(), 3, "{r:?}");
    assert!(r[0].starts_with("* 2 UIDFETCH (UID 2 FLAGS"), "{r:?}");
    assert!(r[1].starts_with("* 3 UIDFETCH ("), "{r:?}");
    let r = c.ok("UID STORE 3 +FLAGS (\\Deleted)");
    assert!(
        r[0].starts_with("* 3 UIDFETCH (") && r[0].contains("\\Deleted"),
        "{r:?}"
    );
    c.ok("UID SEARCH $");
    // Without QRESYNC too, expunges are VANISHED (RFC 9586 §3).
    let r = c.ok("EXPUNGE");
    assert_eq!(r[0], "* VANISHED 3");
    assert!(!r.iter().any(|l| l.ends_with(" EXPUNGE")), "{r:?}");
    let r = c.ok("UID SEARCH UID 1:*");
    assert_eq!(r[0], "* SEARCH 1 2");

    // Another session, without UIDONLY, is unchanged.
    let mut v = s.login("bob@localhost");
    v.ok("SELECT INBOX");
    let r = v.ok("FETCH 1 (FLAGS)");
    assert!(r[0].starts_with("* 1 FETCH (FLAGS"), "{r:?}");
    v.ok("STORE 2 +FLAGS (\\Flagged)");
    // ...and its change reaches the UIDONLY session by UID.
    let r = c.ok("NOOP");
    assert!(grep(&r, "* 2 UIDFETCH (").len() == 1, "{r:?}");
}

const SCRIPT_OK: &str = r#"
import sys, imaplib
port = int(sys.argv[1]); user = sys.argv[2]; pw = sys.argv[3]
M = imaplib.IMAP4('127.0.0.1', port)
M.login(user, pw)
M.enable('UIDONLY')
M.select('INBOX')
try:
    M.fetch('1', '(FLAGS)')
    raise SystemExit('FETCH by number was accepted')
except imaplib.IMAP4.error as e:
    assert 'UIDREQUIRED' in str(e), e
typ, data = M.uid('FETCH', '1:*', '(FLAGS)')
assert typ == 'OK', (typ, data)
got = M.untagged_responses.pop('UIDFETCH', [])
assert got == [b'1 (UID 1 FLAGS (\\Recent))'], got
assert 'FETCH' not in M.untagged_responses, M.untagged_responses
M.logout()
print('ok')
"#;

#[test]
fn python_imaplib_sees_uidfetch_and_uidrequired() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    s.deliver(bob, &simple("one", "1"));
    let out = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT_OK)
        .arg(s.addr.port().to_string())
        .arg("bob@localhost")
        .arg(PASSWORD)
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
