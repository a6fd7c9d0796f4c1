//! Store faults as a sender sees them over a real socket: a full disk is
//! `452 4.3.1` after DATA or BDAT LAST (RFC 5321 §4.2.3 "insufficient
//! system storage", RFC 3463 X.3.1 "mail system full") and the server goes
//! on; a damaged store is `451 4.3.0` saying so, and no mail is accepted
//! once it is known to be damaged.

use crate::util::*;
use mailstore::{NewMessage, OpenOptions, Store, StoreError};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::thread::JoinHandle;
use tempfile::TempDir;

/// A server over a store opened with chosen options.
struct Server {
    addr: SocketAddr,
    store: Store,
    handle: netloop::ShutdownHandle,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl Server {
    fn over(store: Store) -> Server {
        let listeners = [netloop::Listener {
            addr: "127.0.0.1:0".parse().unwrap(),
            implicit_tls: false,
        }];
        let server = smtpd::bind_listeners(&listeners, test_config(), store.clone()).unwrap();
        let addr = server.local_addrs()[0];
        let handle = server.shutdown_handle();
        let thread = Some(std::thread::spawn(move || server.run()));
        Server {
            addr,
            store,
            handle,
            thread,
        }
    }

    fn client(&self) -> Client {
        let mut c = Client::connect(self.addr);
        c.expect_reply("220 mx.test ");
        c
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A closed store file with the test users and `messages` delivered to
/// bob@localhost.
fn closed_store(messages: &[Vec<u8>]) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mail.db");
    let store = Store::open(&path).unwrap();
    add_users(&store);
    let bob = store
        .read_sync(|r| r.user("bob@localhost"))
        .unwrap()
        .unwrap()
        .id;
    for raw in messages {
        let msg = NewMessage {
            raw: raw.clone(),
            internal_date: 1_700_000_000,
        };
        store
            .write_sync(move |tx| tx.deliver(&msg, &[bob]))
            .unwrap();
    }
    store.shutdown();
    drop(store);
    (dir, path)
}

/// A message of about `kib` KiB whose body lines hold `marker`.
fn big_message(kib: usize, marker: &str) -> Vec<u8> {
    let line = marker.repeat(64 / marker.len() + 1);
    let mut m = b"From: alice@example.org\r\nSubject: big\r\n\r\n".to_vec();
    while m.len() < kib * 1024 {
        m.extend_from_slice(line.as_bytes());
        m.extend_from_slice(b"\r\n");
    }
    m
}

#[test]
fn a_full_disk_answers_452_4_3_1_after_data_and_bdat_and_the_server_goes_on() {
    let (_dir, path) = closed_store(&[]);
    // The file may not grow at all: any delivery needing a page is refused
    // exactly as on a full disk (SQLite answers SQLITE_FULL either way).
    let store = Store::open_with(
        &path,
        &OpenOptions {
            max_pages: Some(1),
            ..OpenOptions::default()
        },
    )
    .unwrap();
    let server = Server::over(store);
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
    let n = testkit::wreck_pages_holding(&path, marker.repeat(2).as_bytes());
    assert!(n >= 2, "{n} pages wrecked");
    // Refused at start-up...
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    // ...unless allowed; then the first damage met degrades it.
    let store = Store::open_with(
        &path,
        &OpenOptions {
            allow_corrupt: true,
            ..OpenOptions::default()
        },
    )
    .unwrap();
    let server = Server::over(store);
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
