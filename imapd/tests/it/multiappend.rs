//! MULTIAPPEND (RFC 3502) and CATENATE (RFC 4469) over a real socket: the
//! limits (message count, TOOBIG for a built message over --max-literal),
//! and isolation: a plain URL names only the user's own messages, even
//! written as an absolute URL with another user's name.

use crate::util::*;

#[test]
fn more_messages_than_the_limit_is_refused_and_nothing_appended() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let mut c = s.login("bob@localhost");
    c.ok("CREATE Box");
    let n = imapd::limits::MAX_MULTIAPPEND + 1;
    let mut cmd = b"a1 APPEND Box".to_vec();
    for _ in 0..n {
        cmd.extend_from_slice(b" {3+}\r\nx\r\n");
    }
    cmd.extend_from_slice(b"\r\n");
    c.send(&cmd);
    let r = c.until("a1");
    assert!(r.last().unwrap().starts_with("a1 NO [LIMIT]"), "{r:?}");
    let r = c.ok("STATUS Box (MESSAGES)");
    assert!(r[0].contains("(MESSAGES 0)"), "{r:?}");
    // The limit itself is fine, in one transaction with one UID set.
    let mut cmd = b"a2 APPEND Box".to_vec();
    for _ in 0..imapd::limits::MAX_MULTIAPPEND {
        cmd.extend_from_slice(b" {3+}\r\nx\r\n");
    }
    cmd.extend_from_slice(b"\r\n");
    c.send(&cmd);
    let r = c.until("a2");
    let last = r.last().unwrap();
    assert!(
        last.starts_with("a2 OK [APPENDUID ") && last.contains(" 1:1000]"),
        "{r:?}"
    );
}

#[test]
fn catenate_over_max_literal_is_toobig() {
    let s = TestServer::with(|c| c.max_literal = 4096);
    let u = s.add_user("bob@localhost");
    let body = "y".repeat(3000);
    s.deliver(u, &simple("big", &body));
    let mut c = s.login("bob@localhost");
    // One URL fits; the same message twice (about 6 KB) does not.
    c.ok("APPEND INBOX CATENATE (URL \"/INBOX/;UID=1\")");
    let r = c.cmd("APPEND INBOX CATENATE (URL \"/INBOX/;UID=1\" URL \"/INBOX/;UID=1\")");
    assert!(r.last().unwrap().contains("NO [TOOBIG]"), "{r:?}");
    let r = c.ok("STATUS INBOX (MESSAGES)");
    assert!(r[0].contains("(MESSAGES 2)"), "{r:?}");
}

#[test]
fn plain_urls_never_reach_another_users_messages() {
    let s = TestServer::start();
    let alice = s.add_user("alice@localhost");
    s.add_user("bob@localhost");
    s.deliver(alice, &simple("private", "alice's secret"));
    let mut c = s.login("bob@localhost");
    for url in [
        "imap://alice@localhost@localhost/INBOX/;UID=1",
        "imap://alice%40localhost@localhost/INBOX/;UID=1",
        "imap://alice@localhost/INBOX/;UID=1",
        "/INBOX/;UID=1",
    ] {
        let r = c.cmd(&format!("APPEND INBOX CATENATE (URL \"{url}\")"));
        assert!(r.last().unwrap().contains("NO [BADURL"), "{url}: {r:?}");
    }
    let r = c.ok("STATUS INBOX (MESSAGES)");
    assert!(r[0].contains("(MESSAGES 0)"), "{r:?}");
}
