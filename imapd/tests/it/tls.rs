//! STARTTLS (RFC 3501 §6.2.1) and implicit TLS (RFC 8314 §3.3) with a
//! rustls client: capabilities before and after, the go-ahead, STARTTLS in
//! the wrong state or twice, and the pre-handshake injection test (bytes
//! pipelined after STARTTLS must be discarded, the CVE-2011-0411 class).

use crate::util::*;
use std::io::Write;
use std::net::IpAddr;

fn local() -> IpAddr {
    "127.0.0.1".parse().unwrap()
}

#[test]
fn starttls_switches_and_capabilities_change() {
    let s = TestServer::tls(|_| {});
    s.add_user("bob@localhost");
    let (greeting, mut c) = starttls_with(local(), s.addr, b"s STARTTLS\r\n");
    assert!(greeting.contains(" STARTTLS"), "{greeting}");
    let r = c.ok("CAPABILITY");
    assert!(
        !r[0].contains("STARTTLS") && !r[0].contains("LOGINDISABLED"),
        "{r:?}"
    );
    assert!(r[0].contains("AUTH=PLAIN"), "{r:?}");
    // STARTTLS again over TLS: BAD, and the session goes on.
    let r = c.cmd("STARTTLS");
    assert_eq!(Client::status_of(&r), "BAD", "{r:?}");
    c.ok(&format!("LOGIN bob@localhost \"{PASSWORD}\""));
    c.ok("SELECT INBOX");
    c.ok("LOGOUT");
}

#[test]
fn injected_commands_before_the_handshake_are_discarded() {
    let s = TestServer::tls(|_| {});
    s.add_user("bob@localhost");
    // From a local client, so the injected LOGIN would succeed if run.
    let inject =
        format!("s STARTTLS\r\nb LOGIN bob@localhost \"{PASSWORD}\"\r\nc SELECT INBOX\r\n");
    let (_, mut c) = starttls_with(local(), s.addr, inject.as_bytes());
    let r = c.ok("CAPABILITY");
    for l in &r {
        assert!(!l.starts_with("b ") && !l.starts_with("c "), "{r:?}");
    }
    // Still not authenticated.
    assert!(r[0].contains("AUTH=PLAIN"), "{r:?}");
    let r = c.cmd("SELECT INBOX");
    assert_eq!(Client::status_of(&r), "BAD", "{r:?}");
    let r = c.cmd("NOOP");
    assert!(!r.iter().any(|l| l.starts_with("b ")), "{r:?}");
}

#[test]
fn starttls_after_login_is_bad_and_not_advertised() {
    let s = TestServer::tls(|_| {});
    s.add_user("bob@localhost");
    let mut c = s.login("bob@localhost");
    let r = c.ok("CAPABILITY");
    assert!(!r[0].contains("STARTTLS"), "{r:?}");
    let r = c.cmd("STARTTLS");
    assert_eq!(Client::status_of(&r), "BAD", "{r:?}");
    c.ok("SELECT INBOX");
}

#[test]
fn starttls_without_a_certificate_is_refused_and_not_advertised() {
    let s = TestServer::start();
    let mut c = s.client();
    assert!(!c.greeting.contains("STARTTLS"), "{}", c.greeting);
    let r = c.cmd("STARTTLS");
    assert_eq!(Client::status_of(&r), "BAD", "{r:?}");
    c.ok("NOOP");
}

#[test]
fn implicit_tls_greets_over_tls_with_auth_mechanisms() {
    let s = TestServer::tls(|_| {});
    s.add_user("bob@localhost");
    let imaps = s.imaps.unwrap();
    let mut c = Client::connect_tls(imaps);
    assert!(
        c.greeting.starts_with("* OK [CAPABILITY IMAP4rev1"),
        "{}",
        c.greeting
    );
    assert!(!c.greeting.contains("STARTTLS"), "{}", c.greeting);
    assert!(c.greeting.contains("AUTH=PLAIN"), "{}", c.greeting);
    let r = c.cmd("STARTTLS");
    assert_eq!(Client::status_of(&r), "BAD", "{r:?}");
    c.ok(&format!("LOGIN bob@localhost \"{PASSWORD}\""));
    let r = c.ok("STATUS INBOX (MESSAGES)");
    assert!(r[0].contains("MESSAGES 0"), "{r:?}");
}

#[test]
fn implicit_tls_from_non_local_client_may_log_in() {
    let s = TestServer::tls(|_| {});
    s.add_user("bob@localhost");
    let tcp = connect_from("127.0.0.2".parse().unwrap(), s.imaps.unwrap());
    let mut c = Client::from_stream(tls_stream(tcp));
    assert!(!c.greeting.contains("LOGINDISABLED"), "{}", c.greeting);
    c.ok(&format!("LOGIN bob@localhost \"{PASSWORD}\""));
}

#[test]
fn plaintext_on_the_implicit_tls_port_gets_no_imap() {
    let s = TestServer::tls(|_| {});
    let mut tcp = connect_from(local(), s.imaps.unwrap());
    tcp.write_all(b"a1 CAPABILITY\r\n").unwrap();
    let mut buf = [0u8; 256];
    use std::io::Read;
    // rustls answers garbage with an alert (or just closes): never "* OK".
    let n = tcp.read(&mut buf).unwrap_or(0);
    assert!(!buf[..n].starts_with(b"* "), "{:?}", &buf[..n]);
}

#[test]
fn bind_listeners_without_a_certificate_refuses_implicit_tls() {
    let dir = tempfile::tempdir().unwrap();
    let store = mailstore::Store::open(dir.path().join("m.db")).unwrap();
    let listen = [netloop::Listener {
        addr: "127.0.0.1:0".parse().unwrap(),
        implicit_tls: true,
    }];
    let e = imapd::bind_listeners(&listen, imapd::Config::default(), store.clone())
        .err()
        .unwrap();
    assert!(e.to_string().contains("certificate"), "{e}");
    store.shutdown();
}
