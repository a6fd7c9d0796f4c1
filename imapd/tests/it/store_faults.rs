//! Store faults as a client sees them (RFC 5530 §3 response codes): a full
//! disk answers APPEND with `NO [OVERQUOTA] Not enough disk space` and the
//! mailbox stays readable; a damaged store answers what touches the damage,
//! and every change, with `NO [UNAVAILABLE]`, while reads that avoid it go
//! on.

use crate::util::*;
use std::path::PathBuf;

/// A closed store with bob@localhost and `messages` in his INBOX (UIDs 1,
/// 2, ...).
fn closed_store(messages: &[Vec<u8>]) -> (tempfile::TempDir, PathBuf) {
    testkit::store::closed_store(&["bob@localhost"], PASSWORD, messages)
}

/// A message of about `kib` KiB whose body lines hold `marker`.
fn big_message(kib: usize, marker: &str) -> Vec<u8> {
    testkit::store::big_message(&String::from_utf8_lossy(&simple("big", "")), kib, marker)
}

fn append(c: &mut Client, tag: &str, msg: &[u8]) -> Vec<String> {
    let mut cmd = format!("{tag} APPEND INBOX {{{}+}}\r\n", msg.len()).into_bytes();
    cmd.extend_from_slice(msg);
    cmd.extend_from_slice(b"\r\n");
    c.send(&cmd);
    c.until(tag)
}

#[test]
fn a_full_disk_answers_append_with_overquota_and_reads_go_on() {
    let (dir, path) = closed_store(&[simple("first", "kept")]);
    // No growth at all: what needs a new page fails as on a full disk.
    let store = testkit::store::open_full(&path);
    let s = TestServer::over(dir, store, |_| {});
    let mut c = s.login("bob@localhost");
    let r = append(&mut c, "x1", &big_message(300, "overquota-"));
    assert_eq!(
        r.last().unwrap(),
        "x1 NO [OVERQUOTA] Not enough disk space",
        "{r:?}"
    );
    let r = c.ok("SELECT INBOX");
    assert!(r.iter().any(|l| l == "* 1 EXISTS"), "{r:?}");
    let r = c.ok("FETCH 1 BODY.PEEK[TEXT]");
    assert!(r.iter().any(|l| l.contains("kept")), "{r:?}");
    // Changes that fit in the pages there are go through.
    c.ok("STORE 1 +FLAGS (\\Flagged)");
    assert_eq!(s.store.damaged(), None, "a full disk is no damage");
}

#[test]
fn a_damaged_store_answers_unavailable_and_refuses_changes() {
    let marker = "broken-page-";
    let (dir, path) = closed_store(&[big_message(24, marker), simple("small", "intact")]);
    let n = testkit::store::wreck_pages_holding(&path, marker.repeat(2).as_bytes());
    assert!(n >= 2, "{n} pages wrecked");
    let store = testkit::store::open_damaged(&path);
    let s = TestServer::over(dir, store, |_| {});
    let mut c = s.login("bob@localhost");
    let r = c.ok("SELECT INBOX");
    assert!(r.iter().any(|l| l == "* 2 EXISTS"), "{r:?}");
    let r = c.cmd("FETCH 1 BODY.PEEK[]");
    let last = r.last().unwrap();
    assert!(last.contains(" NO [UNAVAILABLE] "), "{r:?}");
    assert!(s.store.damaged().is_some());
    // Every change is refused from now on...
    let r = append(&mut c, "x2", &simple("new", "not kept"));
    assert!(
        r.last()
            .unwrap()
            .starts_with("x2 NO [UNAVAILABLE] Mail store damaged"),
        "{r:?}"
    );
    let r = c.cmd("STORE 2 +FLAGS (\\Seen)");
    assert!(r.last().unwrap().contains(" NO [UNAVAILABLE] "), "{r:?}");
    // ...while reads that avoid the damage go on.
    let r = c.ok("FETCH 1:* (UID FLAGS)");
    assert_eq!(grep(&r, "* ").len(), 2, "{r:?}");
    assert!(!r.iter().any(|l| l.contains("\\Seen")), "{r:?}");
    let r = c.ok("STATUS INBOX (MESSAGES)");
    assert!(r.iter().any(|l| l.contains("MESSAGES 2")), "{r:?}");
}
