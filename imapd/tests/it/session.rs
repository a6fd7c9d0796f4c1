//! Session-level behaviour: greeting, CAPABILITY, login paths, bad input,
//! commands in the wrong state, LOGOUT, NAMESPACE, ID, ENABLE.

use crate::util::*;
use std::time::{Duration, Instant};

#[test]
fn greeting_and_capability_advertise_extensions() {
    let s = TestServer::start();
    let mut c = s.client();
    assert!(
        c.greeting.starts_with("* OK [CAPABILITY IMAP4rev1"),
        "{}",
        c.greeting
    );
    let r = c.ok("CAPABILITY");
    let caps = &r[0];
    for cap in [
        "IMAP4rev1",
        "IDLE",
        "UIDPLUS",
        "MOVE",
        "UNSELECT",
        "NAMESPACE",
        "ID",
        "ENABLE",
        "LITERAL+",
        "SPECIAL-USE",
        "CHILDREN",
        "CONDSTORE",
        "AUTH=PLAIN",
        "SASL-IR",
    ] {
        assert!(
            caps.split(' ').any(|w| w == cap),
            "{cap} missing from {caps}"
        );
    }
}

#[test]
fn login_with_right_and_wrong_password() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let mut c = s.client();
    let started = Instant::now();
    let r = c.cmd("LOGIN bob@localhost wrong");
    assert_eq!(Client::status_of(&r), "NO");
    assert!(r[0].contains("[AUTHENTICATIONFAILED]"));
    assert!(
        started.elapsed() >= Duration::from_millis(50),
        "no failure delay"
    );
    // The session goes on and can still log in.
    let r = c.ok(&format!("LOGIN BOB@localhost \"{PASSWORD}\""));
    assert!(r[0].contains("[CAPABILITY"));
    let r = c.cmd("LOGIN bob@localhost x");
    assert_eq!(Client::status_of(&r), "BAD");
}

#[test]
fn authenticate_plain_with_and_without_initial_response() {
    use base64::Engine as _;
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let token =
        base64::engine::general_purpose::STANDARD.encode(format!("\0bob@localhost\0{PASSWORD}"));
    let mut c = s.client();
    c.ok(&format!("AUTHENTICATE PLAIN {token}"));

    let mut c = s.client();
    c.send(b"t1 AUTHENTICATE PLAIN\r\n");
    assert_eq!(c.line(), "+ ");
    c.send(format!("{token}\r\n").as_bytes());
    let r = c.until("t1");
    assert!(r[0].starts_with("t1 OK"), "{r:?}");

    let mut c = s.client();
    c.send(b"t2 AUTHENTICATE PLAIN\r\n");
    c.line();
    c.send(b"*\r\n");
    assert!(c.until("t2")[0].starts_with("t2 BAD"));
    let bad = base64::engine::general_purpose::STANDARD.encode("\0bob@localhost\0nope");
    let r = c.cmd(&format!("AUTHENTICATE PLAIN {bad}"));
    assert_eq!(Client::status_of(&r), "NO");
    let r = c.cmd("AUTHENTICATE CRAM-MD5");
    assert_eq!(Client::status_of(&r), "NO");
}

#[test]
fn bad_input_gets_bad_with_reason_and_session_continues() {
    let s = TestServer::start();
    let mut c = s.client();
    let r = c.cmd("FROBNICATE");
    assert!(
        r[0].contains("BAD") && r[0].contains("unknown command"),
        "{r:?}"
    );
    c.send(b"\r\n");
    assert!(c.line().starts_with("* BAD"));
    let r = c.cmd("NOOP extra");
    assert!(r[0].contains("BAD"));
    let r = c.cmd("SELECT INBOX");
    assert!(
        r[0].contains("BAD") && r[0].contains("Log in first"),
        "{r:?}"
    );
    c.ok("NOOP");
}

#[test]
fn wrong_state_commands_are_refused() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let mut c = s.login("bob@localhost");
    let r = c.cmd("FETCH 1 FLAGS");
    assert!(
        r[0].contains("BAD") && r[0].contains("No mailbox selected"),
        "{r:?}"
    );
    let r = c.cmd("EXPUNGE");
    assert_eq!(Client::status_of(&r), "BAD");
}

#[test]
fn logout_says_bye_then_ok_and_closes() {
    let s = TestServer::start();
    let mut c = s.client();
    let r = c.cmd("LOGOUT");
    assert!(r[0].starts_with("* BYE"));
    assert!(r[1].contains("OK"));
    let mut rest = String::new();
    use std::io::Read;
    assert_eq!(c.r.read_to_string(&mut rest).unwrap(), 0);
}

#[test]
fn namespace_id_enable() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let mut c = s.login("bob@localhost");
    assert_eq!(c.ok("NAMESPACE")[0], "* NAMESPACE ((\"\" \"/\")) NIL NIL");
    assert!(c.ok("ID (\"name\" \"test\")")[0].starts_with("* ID (\"name\" \"minimail\""));
    assert_eq!(c.ok("ENABLE CONDSTORE X-UNKNOWN")[0], "* ENABLED CONDSTORE");
}

#[test]
fn too_many_connections_get_bye() {
    let s = TestServer::with(|c| c.net.max_connections = 1);
    let _first = s.client();
    let mut second = Client::connect(s.addr);
    assert!(second.greeting.starts_with("* BYE"), "{}", second.greeting);
    let _ = &mut second;
}

#[test]
fn nasty_lines_never_break_the_session() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let mut c = s.login("bob@localhost");
    c.ok("SELECT INBOX");
    let nasty: &[&[u8]] = &[
        b"\0\0\0",
        b"\xff\xfe garbage \x80",
        b"a1 FETCH",
        b"a1 FETCH 1:* (BODY[1.2.3.4.5.6.7.8.9.10.11.12]<0.1>)",
        b"a1 SEARCH NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT ALL",
        b"a1 UID FETCH 4294967295:1 FLAGS",
        b"a1 UID FETCH 99999999999 FLAGS",
        b"a1 SELECT \"unterminated",
        b"a1 LIST \"\" \"&Jjo\"",
        b"a1 STORE 1:* FLAGS (\\Seen",
        b"a1 APPEND INBOX {-1}",
        b"* NOOP",
        b"a\rb NOOP",
        b"a1 ID (\"k\" \"v\" \"odd\")",
        b"a1 ENABLE",
        b"a1 CREATE \"\"",
        b"a1 RENAME INBOX INBOX",
        b"a1 EXAMINE \"&-&-&-\"",
    ];
    for line in nasty {
        c.send(line);
        c.send(b"\r\n");
        let r = c.cmd("NOOP");
        assert!(
            r.last().unwrap().ends_with("OK NOOP completed"),
            "after {:?}: {r:?}",
            String::from_utf8_lossy(line)
        );
        assert!(r.iter().all(|l| !l.contains("EXPUNGE")));
    }
}

#[test]
fn idle_connection_is_logged_out_after_the_timeout() {
    let s = TestServer::with(|c| c.autologout = Duration::from_millis(300));
    let mut c = s.client();
    assert_eq!(c.line(), "* BYE Autologout; idle for too long");
}

#[test]
fn shutdown_says_bye_to_open_sessions() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let mut c = s.login("bob@localhost");
    c.ok("SELECT INBOX");
    c.send(b"i IDLE\r\n");
    assert_eq!(c.line(), "+ idling");
    s.shutdown();
    assert_eq!(c.line(), "* BYE Server shutting down");
}
