//! Plaintext-credential rules (RFC 3501 §6.2.3 LOGINDISABLED, RFC 5530
//! PRIVACYREQUIRED), AUTHENTICATE LOGIN and PLAIN (RFC 3501 §6.2.2,
//! RFC 4616, SASL-IR RFC 4959) and failed-login throttling (`NO
//! [UNAVAILABLE]`, RFC 5530 §3). "Non-local" clients connect from
//! 127.0.0.2 to a server on 127.0.0.1.

use crate::util::*;
use std::net::IpAddr;

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn caps(c: &mut Client) -> String {
    let r = c.ok("CAPABILITY");
    grep(&r, "* CAPABILITY ")[0].clone()
}

#[test]
fn non_local_plaintext_client_sees_logindisabled_and_is_refused() {
    let s = TestServer::tls(|_| {});
    s.add_user("bob@localhost");
    let mut c = s.remote_client();
    assert!(c.greeting.contains("LOGINDISABLED"), "{}", c.greeting);
    let caps = caps(&mut c);
    assert!(caps.contains(" LOGINDISABLED"), "{caps}");
    assert!(caps.contains(" STARTTLS"), "{caps}");
    assert!(!caps.contains(" AUTH="), "{caps}");
    let r = c.cmd(&format!("LOGIN bob@localhost \"{PASSWORD}\""));
    assert!(r[0].contains("NO [PRIVACYREQUIRED]"), "{r:?}");
    let r = c.cmd(&format!(
        "AUTHENTICATE PLAIN {}",
        b64(&format!("\0bob@localhost\0{PASSWORD}"))
    ));
    assert!(r[0].contains("NO [PRIVACYREQUIRED]"), "{r:?}");
    // No continuation is offered: the credentials are never asked for.
    let r = c.cmd("AUTHENTICATE LOGIN");
    assert!(r[0].contains("NO [PRIVACYREQUIRED]"), "{r:?}");
    let r = c.cmd("SELECT INBOX");
    assert_eq!(Client::status_of(&r), "BAD", "{r:?}");
}

#[test]
fn non_local_refused_without_tls_configured_too() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let mut c = s.remote_client();
    let caps = caps(&mut c);
    assert!(
        caps.contains(" LOGINDISABLED") && !caps.contains("STARTTLS"),
        "{caps}"
    );
    let r = c.cmd(&format!("LOGIN bob@localhost \"{PASSWORD}\""));
    assert!(r[0].contains("NO [PRIVACYREQUIRED]"), "{r:?}");
}

#[test]
fn allow_plaintext_auth_lets_non_local_clients_log_in() {
    let s = TestServer::with(|c| c.allow_plaintext_auth = true);
    s.add_user("bob@localhost");
    let mut c = s.remote_client();
    let caps = caps(&mut c);
    assert!(caps.contains(" AUTH=PLAIN AUTH=LOGIN"), "{caps}");
    assert!(!caps.contains("LOGINDISABLED"), "{caps}");
    c.ok(&format!("LOGIN bob@localhost \"{PASSWORD}\""));
    c.ok("SELECT INBOX");
}

#[test]
fn local_client_may_log_in_in_plaintext() {
    let s = TestServer::tls(|_| {});
    s.add_user("bob@localhost");
    let mut c = s.client();
    let caps = caps(&mut c);
    assert!(
        caps.contains(" STARTTLS") && caps.contains(" AUTH=PLAIN"),
        "{caps}"
    );
    assert!(!caps.contains("LOGINDISABLED"), "{caps}");
    let r = c.ok(&format!("LOGIN bob@localhost \"{PASSWORD}\""));
    // After login: no STARTTLS, AUTH= or LOGINDISABLED any more.
    assert!(r[0].contains("[CAPABILITY IMAP4rev1"), "{r:?}");
    assert!(
        !r[0].contains("STARTTLS") && !r[0].contains(" AUTH="),
        "{r:?}"
    );
}

#[test]
fn non_local_client_logs_in_after_starttls() {
    let s = TestServer::tls(|_| {});
    s.add_user("bob@localhost");
    let from: IpAddr = "127.0.0.2".parse().unwrap();
    let (greeting, mut c) = starttls_with(from, s.addr, b"s STARTTLS\r\n");
    assert!(greeting.contains("STARTTLS"), "{greeting}");
    let caps = caps(&mut c);
    assert!(
        !caps.contains("STARTTLS") && !caps.contains("LOGINDISABLED"),
        "{caps}"
    );
    assert!(caps.contains(" AUTH=PLAIN AUTH=LOGIN"), "{caps}");
    c.ok(&format!("LOGIN bob@localhost \"{PASSWORD}\""));
    c.ok("SELECT INBOX");
}

#[test]
fn authenticate_login_asks_for_user_then_password() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let mut c = s.client();
    c.send(b"a1 AUTHENTICATE LOGIN\r\n");
    assert_eq!(c.line(), "+ VXNlcm5hbWU6");
    c.send(format!("{}\r\n", b64("bob@localhost")).as_bytes());
    assert_eq!(c.line(), "+ UGFzc3dvcmQ6");
    c.send(format!("{}\r\n", b64(PASSWORD)).as_bytes());
    let r = c.until("a1");
    assert!(r[0].starts_with("a1 OK"), "{r:?}");
    c.ok("SELECT INBOX");
}

#[test]
fn authenticate_login_with_initial_response_wrong_password_and_cancel() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let mut c = s.client();
    // SASL-IR: the user name comes with the command.
    c.send(format!("a1 AUTHENTICATE LOGIN {}\r\n", b64("bob@localhost")).as_bytes());
    assert_eq!(c.line(), "+ UGFzc3dvcmQ6");
    c.send(format!("{}\r\n", b64("wrong")).as_bytes());
    let r = c.until("a1");
    assert!(r[0].starts_with("a1 NO [AUTHENTICATIONFAILED]"), "{r:?}");
    c.send(b"a2 AUTHENTICATE LOGIN\r\n");
    assert!(c.line().starts_with("+ "));
    c.send(b"*\r\n");
    assert!(c.until("a2")[0].starts_with("a2 BAD"));
    c.send(b"a3 AUTHENTICATE LOGIN\r\n");
    assert!(c.line().starts_with("+ "));
    c.send(b"not base64!\r\n");
    assert!(c.until("a3")[0].starts_with("a3 BAD"));
    c.ok(&format!("LOGIN bob@localhost \"{PASSWORD}\""));
}

#[test]
fn authenticate_plain_still_works_both_ways() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let cred = b64(&format!("\0bob@localhost\0{PASSWORD}"));
    let mut c = s.client();
    c.ok(&format!("AUTHENTICATE PLAIN {cred}"));
    let mut c = s.client();
    c.send(b"a1 AUTHENTICATE PLAIN\r\n");
    assert!(c.line().starts_with("+"));
    c.send(format!("{cred}\r\n").as_bytes());
    assert!(c.until("a1")[0].starts_with("a1 OK"));
}

#[test]
fn repeated_failures_block_the_address_even_with_the_right_password() {
    let s = TestServer::with(|c| {
        c.throttle = netloop::Throttle::new(netloop::ThrottleConfig {
            max_failures: 3,
            base_delay: std::time::Duration::from_millis(10),
            max_delay: std::time::Duration::from_millis(20),
            ..netloop::ThrottleConfig::default()
        });
    });
    s.add_user("bob@localhost");
    let mut c = s.client();
    for _ in 0..3 {
        let r = c.cmd("LOGIN bob@localhost wrong");
        assert!(r[0].contains("NO [AUTHENTICATIONFAILED]"), "{r:?}");
    }
    // Blocked now: refused without checking, whatever the password.
    let r = c.cmd(&format!("LOGIN bob@localhost \"{PASSWORD}\""));
    assert!(r[0].contains("NO [UNAVAILABLE]"), "{r:?}");
    let r = c.cmd(&format!(
        "AUTHENTICATE PLAIN {}",
        b64(&format!("\0bob@localhost\0{PASSWORD}"))
    ));
    assert!(r[0].contains("NO [UNAVAILABLE]"), "{r:?}");
    // Another connection from the same address is blocked too.
    let mut c2 = s.client();
    let r = c2.cmd(&format!("LOGIN bob@localhost \"{PASSWORD}\""));
    assert!(r[0].contains("NO [UNAVAILABLE]"), "{r:?}");
    // A different address is not.
    let mut c3 = s.remote_client();
    let r = c3.cmd(&format!("LOGIN bob@localhost \"{PASSWORD}\""));
    assert!(r[0].contains("PRIVACYREQUIRED"), "{r:?}");
}

#[test]
fn failure_reply_is_delayed_but_pipelined_commands_stay_in_order() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let mut c = s.client();
    c.send(
        format!(
            "a1 LOGIN bob@localhost wrong\r\na2 LOGIN bob@localhost \"{PASSWORD}\"\r\na3 NOOP\r\n"
        )
        .as_bytes(),
    );
    let r = c.until("a3");
    let tagged: Vec<&String> = r.iter().filter(|l| !l.starts_with("* ")).collect();
    assert!(tagged[0].starts_with("a1 NO"), "{r:?}");
    assert!(tagged[1].starts_with("a2 OK"), "{r:?}");
    assert!(tagged[2].starts_with("a3 OK"), "{r:?}");
}
