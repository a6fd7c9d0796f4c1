//! IDLE keepalives: `* OK Still here` after `idle_keepalive` of silence
//! while a client idles (never outside IDLE), driven by the event loop's
//! timers; the autologout of a silent idling client still happens.

use crate::util::*;
use std::io::BufRead;
use std::net::TcpStream;
use std::time::Duration;

/// A logged-in client and a handle on its socket, to change how long a
/// read waits.
fn client(s: &TestServer) -> (Client, TcpStream) {
    let tcp = testkit::net::connect(s.addr);
    let handle = tcp.try_clone().unwrap();
    let mut c = Client::from_stream(tcp);
    c.login("bob@localhost", PASSWORD);
    (c, handle)
}

/// True if no line arrives within `wait`.
fn silent_for(c: &mut Client, tcp: &TcpStream, wait: Duration) -> bool {
    tcp.set_read_timeout(Some(wait)).unwrap();
    let mut l = Vec::new();
    let got = c.r.read_until(b'\n', &mut l);
    tcp.set_read_timeout(Some(testkit::net::READ_TIMEOUT))
        .unwrap();
    match got {
        Ok(_) => {
            panic!("unexpected: {:?}", String::from_utf8_lossy(&l));
        }
        Err(e) => matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[test]
fn keepalives_while_idling_and_only_then() {
    let s = TestServer::with(|c| c.idle_keepalive = Duration::from_secs(1));
    let bob = s.add_user("bob@localhost");
    let (mut c, tcp) = client(&s);
    c.ok("SELECT INBOX");
    c.send(b"i1 IDLE\r\n");
    assert_eq!(c.line(), "+ idling");
    // Not before the interval, then one per interval of silence.
    assert!(silent_for(&mut c, &tcp, Duration::from_millis(500)));
    assert_eq!(c.line(), "* OK Still here");
    assert_eq!(c.line(), "* OK Still here");
    // New mail is pushed as ever, keepalives go on after it.
    s.deliver(bob, &simple("new", "x"));
    let mut l = c.line();
    while l == "* OK Still here" {
        l = c.line();
    }
    assert_eq!(l, "* 1 EXISTS");
    assert_eq!(c.line(), "* 1 RECENT");
    assert_eq!(c.line(), "* OK Still here");
    c.send(b"DONE\r\n");
    assert_eq!(c.line(), "i1 OK IDLE terminated");
    // Outside IDLE: nothing unsolicited, however long.
    assert!(silent_for(&mut c, &tcp, Duration::from_millis(2500)));
    // IDLE again (and again): keepalives resume, one timer at a time.
    for n in 2..5 {
        c.send(format!("i{n} IDLE\r\n").as_bytes());
        assert_eq!(c.line(), "+ idling");
        c.send(b"DONE\r\n");
        assert_eq!(c.line(), format!("i{n} OK IDLE terminated"));
    }
    c.send(b"i9 IDLE\r\n");
    assert_eq!(c.line(), "+ idling");
    assert!(silent_for(&mut c, &tcp, Duration::from_millis(500)));
    assert_eq!(c.line(), "* OK Still here");
    c.send(b"DONE\r\n");
    assert_eq!(c.line(), "i9 OK IDLE terminated");
    c.ok("NOOP");
}

#[test]
fn a_silent_idling_client_is_still_logged_out() {
    let s = TestServer::with(|c| {
        c.idle_keepalive = Duration::from_millis(300);
        c.autologout = Duration::from_millis(1500);
        c.net.idle_timeout = c.autologout;
    });
    s.add_user("bob@localhost");
    let (mut c, _tcp) = client(&s);
    c.ok("SELECT INBOX");
    c.send(b"i IDLE\r\n");
    assert_eq!(c.line(), "+ idling");
    let mut keepalives = 0;
    loop {
        let l = c.line();
        if l == "* OK Still here" {
            keepalives += 1;
            // 1.5 s of IDLE holds about 5; without the logout, forever.
            assert!(keepalives < 20, "never logged out");
            continue;
        }
        assert_eq!(l, "* BYE Autologout; idle for too long");
        break;
    }
    assert!(keepalives >= 2, "{keepalives}");
    assert!(c.closed());
}

#[test]
fn no_keepalives_when_turned_off() {
    let s = TestServer::with(|c| c.idle_keepalive = Duration::ZERO);
    s.add_user("bob@localhost");
    let (mut c, tcp) = client(&s);
    c.ok("SELECT INBOX");
    c.send(b"i IDLE\r\n");
    assert_eq!(c.line(), "+ idling");
    assert!(silent_for(&mut c, &tcp, Duration::from_millis(1500)));
    c.send(b"DONE\r\n");
    assert_eq!(c.line(), "i OK IDLE terminated");
}
