//! Connection life cycle over real sockets: pipelining (RFC 2920), the
//! connection limit, the idle timeout (RFC 5321 §4.5.3.2) and graceful
//! shutdown, all answered with 421 where RFC 5321 §3.8 asks for it.

use crate::util::{Client, TestServer};
use std::net::Shutdown;
use std::time::Duration;

#[test]
fn whole_transaction_pipelined_in_one_write() {
    let s = TestServer::start();
    let mut c = s.client();
    c.send(
        b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<bob@localhost>\r\nRCPT TO:<nobody@localhost>\r\n\
RCPT TO:<alice@localhost>\r\nDATA\r\nSubject: p\r\n\r\npipelined\r\n.\r\nMAIL FROM:<a@b.example>\r\n\
RCPT TO:<carol@example.test>\r\nDATA\r\nSubject: p2\r\n\r\n.\r\nQUIT\r\n",
    );
    c.expect_reply("250-mx.test");
    c.expect_reply("250 2.1.0");
    c.expect_reply("250 2.1.5");
    c.expect_reply("550 5.1.1");
    c.expect_reply("250 2.1.5");
    c.expect_reply("354");
    c.expect_reply("250 2.0.0");
    c.expect_reply("250 2.1.0");
    c.expect_reply("250 2.1.5");
    c.expect_reply("354");
    c.expect_reply("250 2.0.0");
    c.expect_reply("221 2.0.0");
    assert!(c.closed());
    assert_eq!(s.inbox("bob@localhost").len(), 1);
    assert_eq!(s.inbox("alice@localhost").len(), 1);
    assert_eq!(s.inbox("carol@example.test").len(), 1);
}

#[test]
fn client_half_close_after_data_still_gets_its_replies() {
    let s = TestServer::start();
    let mut c = s.client();
    c.send(
        b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<bob@localhost>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n",
    );
    c.stream().shutdown(Shutdown::Write).unwrap();
    for p in ["250-", "250 2.1.0", "250 2.1.5", "354", "250 2.0.0", "221"] {
        c.expect_reply(p);
    }
    assert!(c.closed());
    assert_eq!(s.inbox("bob@localhost").len(), 1);
}

#[test]
fn connections_over_the_limit_get_421() {
    let s = TestServer::with(|c| c.net.max_connections = 2);
    let mut a = s.client();
    let mut b = s.client();
    let mut third = Client::connect(s.addr);
    third.expect_reply("421 4.7.0 ");
    assert!(third.closed());
    a.expect("NOOP", "250");
    b.expect("QUIT", "221");
    assert!(b.closed());
    // A slot is free again (the loop may need a moment to reap it).
    let mut ok = false;
    for _ in 0..50 {
        let mut d = Client::connect(s.addr);
        if d.reply().starts_with("220 ") {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(ok, "a new connection is accepted after one closed");
}

#[test]
fn idle_session_times_out_with_421() {
    let s = TestServer::with(|c| {
        c.timeouts = smtpd::limits::Timeouts::all(Duration::from_millis(500));
    });
    let mut c = s.client();
    c.expect("EHLO c", "250");
    // Say nothing: the server gives up.
    c.expect_reply("421 4.4.2 ");
    assert!(c.closed());
    // Also in the middle of DATA.
    let mut c = s.client();
    c.expect("EHLO c", "250");
    c.expect("MAIL FROM:<a@b.example>", "250");
    c.expect("RCPT TO:<bob@localhost>", "250");
    c.expect("DATA", "354");
    c.send(b"partial line");
    c.expect_reply("421 4.4.2 ");
    assert!(c.closed());
    assert!(s.inbox("bob@localhost").is_empty());
}

#[test]
fn shutdown_sends_421_to_open_sessions_and_stops_accepting() {
    let mut s = TestServer::start();
    let mut idle = s.client();
    let mut mid = s.client();
    mid.expect("EHLO c", "250");
    mid.expect("MAIL FROM:<a@b.example>", "250");
    mid.expect("RCPT TO:<bob@localhost>", "250");
    mid.expect("DATA", "354");
    mid.send(b"Subject: unfinished\r\n");
    // Let the server read it, so that closing does not reset the
    // connection under the 421 (a close with unread input sends RST).
    std::thread::sleep(Duration::from_millis(200));
    s.begin_stop();
    idle.expect_reply("421 4.3.2 ");
    assert!(idle.closed());
    mid.expect_reply("421 4.3.2 ");
    assert!(mid.closed());
    s.stop();
    assert!(s.inbox("bob@localhost").is_empty());
    // The listener is gone.
    assert!(std::net::TcpStream::connect(s.addr).is_err());
}
