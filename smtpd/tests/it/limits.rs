//! Abuse limits over real sockets, each tried with the offending input:
//! connections per client address (local clients exempt), a client
//! trickling a command one byte at a time (slow loris: netloop's
//! `command_timeout`, 421) or message content likewise (the DATA total
//! deadline, 421), a pipelined flood from a client that never
//! reads its replies (memory stays bounded: the server stops reading), and
//! the AUTH line limit of RFC 4954 §4 (12288 octets; 500 5.5.6 beyond).
//! The other limits (total connections, idle timeout, command and text
//! line length, SIZE, recipients) are tested in lifecycle.rs, content.rs
//! and replies.rs.

use crate::util::{b64, plain, Client, TestServer, PASSWORD};
use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

#[test]
fn per_address_limit_applies_to_non_local_clients_only() {
    let s = TestServer::with(|c| c.net.max_per_ip = 2);
    let mut a = s.client_from("127.0.0.2");
    let mut b = s.client_from("127.0.0.2");
    let mut third = Client::connect_from("127.0.0.2".parse().unwrap(), s.addr);
    third.expect_reply("421 4.7.0 ");
    assert!(third.closed());
    // Another address is unaffected, and local clients are exempt.
    let mut other = s.client_from("127.0.0.3");
    let mut locals: Vec<Client> = (0..4).map(|_| s.client()).collect();
    for l in &mut locals {
        l.expect("NOOP", "250");
    }
    other.expect("NOOP", "250");
    a.expect("NOOP", "250");
    b.expect("QUIT", "221");
    assert!(b.closed());
}

#[test]
fn a_command_trickled_one_byte_at_a_time_is_cut_off_with_421() {
    let s = TestServer::with(|c| {
        c.net.command_timeout = Duration::from_secs(1);
    });
    let mut c = s.client();
    c.expect("EHLO slow.example", "250-");
    // Each byte arrives well within the idle timeout (5 min), but the
    // command never completes. 300 bytes take 30 s: far beyond the limit.
    trickle_until_421(
        &mut c,
        "NOOP ".bytes().chain(std::iter::repeat(b'z')).take(300),
    );
}

/// Send `bytes` one at a time, 100 ms apart, until the server answers;
/// that answer must be a 421 and the connection must then close.
fn trickle_until_421(c: &mut Client, bytes: impl Iterator<Item = u8>) {
    c.stream()
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut got = Vec::new();
    for b in bytes {
        if c.stream().write_all(&[b]).is_err() {
            break;
        }
        let mut buf = [0u8; 512];
        match c.stream().read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                break;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("421 4.4.2 "),
        "cut off with 421, got {text:?}"
    );
    c.stream()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert!(c.closed());
}

#[test]
fn a_pipelined_flood_without_reading_replies_is_held_back() {
    let s = TestServer::start();
    let mut c = s.client();
    c.expect("EHLO flood.example", "250-");
    c.stream()
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    // Write NOOPs and read nothing. The server must stop reading once its
    // buffers are full instead of queueing replies without bound: our
    // writes then block. (Kernel socket buffers on loopback hold a few
    // MiB; unbounded buffering would swallow all 64 MiB.)
    let chunk = b"NOOP\r\n".repeat(10_000);
    let cap: usize = 64 * 1024 * 1024;
    let mut sent = 0usize;
    let blocked = loop {
        if sent >= cap {
            break false;
        }
        match c.stream().write(&chunk) {
            Ok(n) => sent += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break true
            }
            Err(e) => panic!("write failed after {sent} bytes: {e}"),
        }
    };
    assert!(blocked, "the server kept reading: {sent} bytes taken");
    // Other clients are served meanwhile.
    let mut other = s.client();
    other.expect("NOOP", "250 2.0.0 ");
    // The flooder's replies come once it reads.
    for _ in 0..1000 {
        c.expect_reply("250 2.0.0 OK");
    }
}

#[test]
fn auth_lines_may_be_long_but_not_over_12288_octets() {
    let s = TestServer::start();
    let mut c = s.client();
    c.expect("EHLO c", "250-");
    // A long initial response (over the 512 of other commands) is read
    // as one AUTH line: bad credentials, not "line too long".
    let long_user = format!("{}@localhost", "u".repeat(3000));
    c.expect(
        &format!("AUTH PLAIN {}", plain(&long_user, "x")),
        "535 5.7.8 ",
    );
    c.expect("AUTH LOGIN", "334 ");
    c.expect(&"A".repeat(13_000), "500 5.5.6 ");
    // The exchange is over; the session goes on.
    c.expect("AUTH LOGIN", "334 ");
    c.expect(&b64("bob@localhost"), "334 ");
    c.expect(&b64(PASSWORD), "235 2.7.0 ");
    // A non-AUTH command line over 512 octets is still refused.
    c.expect(&format!("NOOP {}", "z".repeat(600)), "500 5.5.2 ");
}

#[test]
fn message_content_trickled_one_byte_at_a_time_is_cut_off_with_421() {
    let s = TestServer::with(|c| c.timeouts.data_total = Duration::from_secs(1));
    let mut c = s.client();
    c.expect("EHLO slow.example", "250-");
    c.expect("MAIL FROM:<a@example.org>", "250");
    c.expect("RCPT TO:<bob@localhost>", "250");
    c.expect("DATA", "354");
    // Whole lines, one byte at a time: every byte is consumed at once, so
    // only the total deadline can stop this (300 bytes take 30 s).
    trickle_until_421(&mut c, b"slow line\r\n".iter().copied().cycle().take(300));
    assert!(s.inbox("bob@localhost").is_empty());
}
