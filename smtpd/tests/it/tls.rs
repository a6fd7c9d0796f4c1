//! TLS over real sockets with a rustls client: STARTTLS (RFC 3207) and
//! implicit TLS (RFC 8314 §3.3), plaintext AUTH refused to a non-local
//! client (RFC 4954 §4, §6: 538 5.7.11) but allowed after STARTTLS or with
//! `allow_plaintext_auth`, the pre-STARTTLS injection (CVE-2011-0411
//! class) discarded, and failed AUTH delayed then throttled (454 4.7.0).

use crate::util::{plain, strip_trace, TestServer, PASSWORD};
use netloop::ThrottleConfig;
use std::time::Duration;

const NON_LOCAL: &str = "127.0.0.2";

#[test]
fn starttls_from_a_non_local_client_enables_auth_and_delivery() {
    let s = TestServer::with_tls(|_| {});
    let mut c = s.client_from(NON_LOCAL);
    let r = c.expect("EHLO c.example", "250-");
    assert!(r.contains("STARTTLS\r\n"), "{r}");
    assert!(!r.contains("AUTH"), "no AUTH before TLS: {r}");
    c.expect(
        &format!("AUTH PLAIN {}", plain("bob@localhost", PASSWORD)),
        "538 5.7.11 ",
    );
    let mut t = c.starttls(s.tls_config());
    t.expect("MAIL FROM:<bob@localhost>", "503 5.5.1 ");
    let r = t.expect("EHLO c.example", "250-");
    assert!(!r.contains("STARTTLS"), "{r}");
    assert!(r.contains("250 AUTH PLAIN LOGIN\r\n"), "{r}");
    t.expect(
        &format!("AUTH PLAIN {}", plain("bob@localhost", PASSWORD)),
        "235 2.7.0 ",
    );
    t.expect("MAIL FROM:<bob@localhost>", "250 ");
    t.expect("RCPT TO:<alice@localhost>", "250 ");
    t.expect("DATA", "354");
    t.send(b"From: bob@localhost\r\nSubject: over tls\r\n\r\nsecret\r\n.\r\n");
    t.expect_reply("250 2.0.0 ");
    t.expect("QUIT", "221 ");
    let msgs = s.inbox("alice@localhost");
    assert_eq!(msgs.len(), 1);
    let m = String::from_utf8_lossy(&msgs[0]);
    assert!(m.contains(" with ESMTPSA id "), "{m}");
    assert!(strip_trace(&msgs[0]).starts_with(b"From: bob@localhost\r\n"));
}

#[test]
fn implicit_tls_listener_speaks_smtp_from_the_first_byte() {
    let s = TestServer::with_tls(|_| {});
    let mut t = s.smtps_client();
    let r = t.expect("EHLO c.example", "250-");
    assert!(!r.contains("STARTTLS"), "{r}");
    assert!(r.contains("AUTH PLAIN LOGIN"), "{r}");
    t.expect("STARTTLS", "503 5.5.1 ");
    t.expect("MAIL FROM:<x@example.org>", "250 ");
    t.expect("RCPT TO:<carol@example.test>", "250 ");
    t.expect("DATA", "354");
    t.send(b"Subject: implicit\r\n\r\nhi\r\n.\r\n");
    t.expect_reply("250 2.0.0 ");
    t.expect("QUIT", "221 ");
    let msgs = s.inbox("carol@example.test");
    assert!(String::from_utf8_lossy(&msgs[0]).contains(" with ESMTPS id "));
}

#[test]
fn commands_injected_before_the_handshake_are_discarded() {
    let s = TestServer::with_tls(|_| {});
    // A MAIL injected after STARTTLS: had it run, the MAIL after EHLO
    // would be refused as nested (503); it must be accepted.
    let mut c = s.client_from(NON_LOCAL);
    c.expect("EHLO c.example", "250-");
    c.send(b"STARTTLS\r\nMAIL FROM:<injected@example.org>\r\n");
    c.expect_reply("220 2.0.0 ");
    let mut t = c.starttls_after_220(s.tls_config());
    t.expect("EHLO c.example", "250-");
    t.expect("MAIL FROM:<real@example.org>", "250 2.1.0 ");
    t.expect("RCPT TO:<bob@localhost>", "250 ");
    t.expect("DATA", "354");
    t.send(b"Subject: after tls\r\n\r\nx\r\n.\r\n");
    t.expect_reply("250 2.0.0 ");
    let m = s.inbox("bob@localhost");
    assert!(String::from_utf8_lossy(&m[0]).starts_with("Return-Path: <real@example.org>"));

    // An injected NOOP and QUIT: no stray reply, the session goes on.
    let mut c = s.client_from(NON_LOCAL);
    c.expect("EHLO c.example", "250-");
    c.send(b"STARTTLS\r\nNOOP\r\nQUIT\r\n");
    c.expect_reply("220 2.0.0 ");
    let mut t = c.starttls_after_220(s.tls_config());
    // The first reply over TLS answers our EHLO, not the injected NOOP.
    let r = t.expect("EHLO c.example", "250-mx.test Hello");
    assert!(!r.contains("OK"), "{r}");
    t.expect("NOOP", "250 2.0.0 ");
    t.expect("QUIT", "221 ");
}

#[test]
fn plaintext_auth_for_non_local_clients_when_the_operator_allows_it() {
    let s = TestServer::start();
    let mut c = s.client_from(NON_LOCAL);
    let r = c.expect("EHLO c.example", "250-");
    assert!(!r.contains("AUTH") && !r.contains("STARTTLS"), "{r}");
    c.expect("AUTH LOGIN", "538 5.7.11 ");
    c.expect("STARTTLS", "502 5.5.1 ");
    // Local clients may.
    let mut c = s.client();
    let r = c.expect("EHLO c.example", "250-");
    assert!(r.contains("AUTH PLAIN LOGIN"), "{r}");
    c.expect(
        &format!("AUTH PLAIN {}", plain("bob@localhost", PASSWORD)),
        "235 ",
    );

    let s = TestServer::with(|c| c.allow_plaintext_auth = true);
    let mut c = s.client_from(NON_LOCAL);
    let r = c.expect("EHLO c.example", "250-");
    assert!(r.contains("AUTH PLAIN LOGIN"), "{r}");
    c.expect(
        &format!("AUTH PLAIN {}", plain("bob@localhost", PASSWORD)),
        "235 ",
    );
}

#[test]
fn failed_auth_is_delayed_and_then_throttled_per_address() {
    let s = TestServer::with_tls(|c| {
        c.throttle = netloop::Throttle::new(ThrottleConfig {
            max_failures: 3,
            base_delay: Duration::from_millis(50),
            ..ThrottleConfig::default()
        })
    });
    let mut c = s.client();
    c.expect("EHLO c.example", "250-");
    for _ in 0..3 {
        c.expect(
            &format!("AUTH PLAIN {}", plain("bob@localhost", "nope")),
            "535 5.7.8 ",
        );
    }
    c.expect(
        &format!("AUTH PLAIN {}", plain("bob@localhost", PASSWORD)),
        "454 4.7.0 ",
    );
    // Another connection from the same address is refused too.
    let mut c = s.client();
    c.expect("EHLO c.example", "250-");
    c.expect("AUTH LOGIN", "334 ");
    c.expect(&crate::util::b64("bob@localhost"), "334 ");
    c.expect(&crate::util::b64(PASSWORD), "454 4.7.0 ");
    // Another address is not: 127.0.0.2 over TLS.
    let c = s.client_from(NON_LOCAL);
    let mut t = c.starttls(s.tls_config());
    t.expect("EHLO c.example", "250-");
    t.expect(
        &format!("AUTH PLAIN {}", plain("bob@localhost", PASSWORD)),
        "235 ",
    );
}
