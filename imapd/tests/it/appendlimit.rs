//! APPENDLIMIT (RFC 7889): the largest message APPEND accepts
//! (`--max-literal`), advertised as `APPENDLIMIT=N` and answered by
//! `STATUS (APPENDLIMIT)`; a message of exactly N octets is taken, one of
//! N + 1 is refused with TOOBIG.

use crate::util::*;

/// The `APPENDLIMIT=` value in a CAPABILITY list (the greeting's code or
/// a `* CAPABILITY` line).
fn advertised(line: &str) -> Option<u64> {
    line.split([' ', ']'])
        .find_map(|w| w.strip_prefix("APPENDLIMIT="))
        .and_then(|n| n.parse().ok())
}

#[test]
fn the_limit_is_advertised_and_in_status() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let mut c = s.client();
    let greeting_caps = c.cmd("CAPABILITY");
    assert_eq!(
        advertised(&greeting_caps[0]),
        Some(imapd::limits::MAX_LITERAL)
    );
    c.login("bob@localhost", PASSWORD);
    let r = c.ok("CAPABILITY");
    assert_eq!(advertised(&r[0]), Some(imapd::limits::MAX_LITERAL), "{r:?}");
    let r = c.ok("STATUS INBOX (APPENDLIMIT MESSAGES)");
    assert_eq!(
        r[0],
        format!(
            "* STATUS \"INBOX\" (APPENDLIMIT {} MESSAGES 0)",
            imapd::limits::MAX_LITERAL
        )
    );
    let r = c.ok("LIST \"\" \"INBOX\" RETURN (STATUS (APPENDLIMIT))");
    assert_eq!(
        r[1],
        format!(
            "* STATUS \"INBOX\" (APPENDLIMIT {})",
            imapd::limits::MAX_LITERAL
        )
    );
}

#[test]
fn a_message_at_the_limit_is_taken_one_octet_more_is_toobig() {
    const LIMIT: u64 = 2000;
    let s = TestServer::with(|c| c.max_literal = LIMIT);
    s.add_user("bob@localhost");
    let mut c = s.login("bob@localhost");
    let r = c.ok("CAPABILITY");
    assert_eq!(advertised(&r[0]), Some(LIMIT), "{r:?}");
    let r = c.ok("STATUS INBOX (APPENDLIMIT)");
    assert_eq!(r[0], "* STATUS \"INBOX\" (APPENDLIMIT 2000)");
    let head = "Subject: at the limit\r\n\r\n";
    let at = format!("{head}{}", "x".repeat(LIMIT as usize - head.len()));
    assert_eq!(at.len() as u64, LIMIT);
    // Exactly the limit: synchronizing and non-synchronizing literals.
    c.send(format!("a1 APPEND INBOX {{{LIMIT}}}\r\n").as_bytes());
    assert!(c.line().starts_with("+ "));
    c.send(at.as_bytes());
    c.send(b"\r\n");
    let r = c.until("a1");
    assert!(r.last().unwrap().starts_with("a1 OK [APPENDUID "), "{r:?}");
    c.send(format!("a2 APPEND INBOX {{{LIMIT}+}}\r\n{at}\r\n").as_bytes());
    let r = c.until("a2");
    assert!(r.last().unwrap().starts_with("a2 OK [APPENDUID "), "{r:?}");
    // One octet more: refused before any of it is taken, and nothing is
    // stored.
    let over = format!("{at}y");
    c.send(format!("a3 APPEND INBOX {{{}}}\r\n", LIMIT + 1).as_bytes());
    let l = c.line();
    assert!(l.starts_with("a3 BAD [TOOBIG]"), "{l}");
    c.send(format!("a4 APPEND INBOX {{{}+}}\r\n{over}\r\n", LIMIT + 1).as_bytes());
    let l = c.line();
    assert!(l.starts_with("a4 BAD [TOOBIG]"), "{l}");
    let r = c.ok("STATUS INBOX (MESSAGES SIZE)");
    assert_eq!(r[0], "* STATUS \"INBOX\" (MESSAGES 2 SIZE 4000)");
}
