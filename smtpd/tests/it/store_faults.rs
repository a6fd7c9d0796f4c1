//! Store faults as a sender sees them over a real socket: a full disk is
//! `452 4.3.1` after DATA or BDAT LAST (RFC 5321 §4.2.3 "insufficient
//! system storage", RFC 3463 X.3.1 "mail system full") and the server goes
//! on; a damaged store is `451 4.3.0` saying so, and no mail is accepted
//! once it is known to be damaged.

use crate::util::*;
use mailstore::StoreError;
use std::path::PathBuf;
use tempfile::TempDir;

/// A closed store file with the test users and `messages` delivered to
/// bob@localhost.
fn closed_store(messages: &[Vec<u8>]) -> (TempDir, PathBuf) {
    testkit::store::closed_store(USERS, PASSWORD, messages)
}

/// A message of about `kib` KiB whose body lines hold `marker`.
fn big_message(kib: usize, marker: &str) -> Vec<u8> {
    testkit::store::big_message(
        "From: alice@example.org\r\nSubject: big\r\n\r\n",
        kib,
        marker,
    )
}

#[test]
fn a_full_disk_answers_452_4_3_1_after_data_and_bdat_and_the_server_goes_on() {
    let (_dir, path) = closed_store(&[]);
    // The file may not grow at all: any delivery needing a page is refused
    // exactly as on a full disk (SQLite answers SQLITE_FULL either way).
    let store = testkit::store::open_full(&path);
    let server = TestServer::over(store);
    let big = big_message(300, "full-disk-");
    let mut c = server.client();
    let mut body = big.clone();
    body.extend_from_slice(b"\r\n");
    let r = c.send_mail("alice@example.org", &["bob@localhost"], &body);
    assert!(r.starts_with("452 4.3.1 "), "{r}");
    assert!(r.contains("Insufficient system storage"), "{r}");
    // The session goes on; so do the store's reads (RCPT looks users up).
    c.expect("MAIL FROM:<alice@example.org>", "250 2.1.0");
    c.expect("RCPT TO:<bob@localhost>", "250 2.1.5");
    c.send(format!("BDAT {} LAST\r\n", big.len()).as_bytes());
    c.send(&big);
    let r = c.reply();
    assert!(r.starts_with("452 4.3.1 "), "BDAT LAST: {r}");
    c.expect("NOOP", "250");
    c.expect("QUIT", "221");
    assert!(inbox(&server.store, "bob@localhost").is_empty());
    assert_eq!(server.store.damaged(), None, "a full disk is no damage");
    // A second client is served as usual up to the commit.
    let mut c = server.client();
    c.expect("EHLO client.test", "250");
    c.expect("MAIL FROM:<alice@example.org>", "250 2.1.0");
    c.expect("RCPT TO:<carol@example.test>", "250 2.1.5");
}

#[test]
fn a_damaged_store_answers_451_4_3_0_and_takes_no_more_mail() {
    let marker = "wreck-me-";
    let (_dir, path) = closed_store(&[big_message(24, marker)]);
    let n = testkit::store::wreck_pages_holding(&path, marker.repeat(2).as_bytes());
    assert!(n >= 2, "{n} pages wrecked");
    // Refused at start-up unless allowed; then the first damage met
    // degrades it.
    let store = testkit::store::open_damaged(&path);
    let server = TestServer::over(store);
    let read = server.store.read_sync(|r| {
        let bob = r.user("bob@localhost")?.expect("bob");
        let inbox = r.mailbox(bob.id, "INBOX")?.expect("INBOX");
        r.raw(inbox.id, 1)
    });
    assert!(matches!(read, Err(StoreError::Damaged(_))), "{read:?}");
    let mut c = server.client();
    let r = c.send_mail(
        "alice@example.org",
        &["bob@localhost"],
        b"Subject: after\r\n\r\nnot acknowledged\r\n",
    );
    assert!(r.starts_with("451 4.3.0 "), "{r}");
    assert!(r.contains("mail store damaged"), "{r}");
    // Still answering, still refusing.
    c.expect("MAIL FROM:<alice@example.org>", "250 2.1.0");
    c.expect("RCPT TO:<carol@example.test>", "250 2.1.5");
    c.expect("DATA", "354");
    c.send(b"Subject: again\r\n\r\nno\r\n.\r\n");
    c.expect_reply("451 4.3.0 ");
    c.expect("QUIT", "221");
    let entries = server.store.read_sync(|r| {
        let bob = r.user("bob@localhost")?.expect("bob");
        let inbox = r.mailbox(bob.id, "INBOX")?.expect("INBOX");
        r.entries(inbox.id)
    });
    assert_eq!(entries.unwrap().len(), 1, "nothing was added");
}
