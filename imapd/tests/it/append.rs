//! Pipelined APPEND (RFC 3501 §6.3.11, RFC 7888 LITERAL+, RFC 4315
//! APPENDUID): a burst of APPENDs sent without waiting is committed
//! together yet answered in command order, with ascending UIDs; commands of
//! other kinds, and APPENDs to another mailbox, wait their turn; the
//! selected mailbox hears about the new messages.

use crate::util::*;

fn append_cmd(tag: &str, mailbox: &str, msg: &[u8]) -> Vec<u8> {
    let mut v = format!("{tag} APPEND {mailbox} (\\Seen) {{{}+}}\r\n", msg.len()).into_bytes();
    v.extend_from_slice(msg);
    v.extend_from_slice(b"\r\n");
    v
}

/// The UID from a tagged `OK [APPENDUID v uid]`.
fn appenduid(line: &str) -> u32 {
    let rest = line
        .split("[APPENDUID ")
        .nth(1)
        .unwrap_or_else(|| panic!("{line}"));
    rest.split([' ', ']']).nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_pipelined_burst_is_answered_in_order_with_ascending_uids() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let mut c = s.login("bob@localhost");
    let mut burst = Vec::new();
    for i in 0..50 {
        burst.extend(append_cmd(
            &format!("p{i}"),
            "INBOX",
            &simple(&format!("m{i}"), "x"),
        ));
    }
    c.send(&burst);
    let mut last = 0;
    for i in 0..50 {
        let r = c.until(&format!("p{i}"));
        let tagged = r.last().unwrap();
        assert!(tagged.starts_with(&format!("p{i} OK [APPENDUID ")), "{r:?}");
        let uid = appenduid(tagged);
        assert!(
            uid > last,
            "UIDs ascend in command order: {uid} after {last}"
        );
        last = uid;
    }
    let r = c.ok("SELECT INBOX");
    assert!(r.iter().any(|l| l == "* 50 EXISTS"), "{r:?}");
    let r = c.ok("FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    for i in 0..50 {
        assert!(
            r.iter().any(|l| l.contains(&format!("Subject: m{i}"))),
            "m{i} missing"
        );
    }
}

#[test]
fn other_commands_and_other_mailboxes_wait_for_the_appends_in_flight() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let mut c = s.login("bob@localhost");
    c.ok("SELECT INBOX");
    let mut burst = Vec::new();
    burst.extend(append_cmd("a1", "INBOX", &simple("one", "x")));
    burst.extend(append_cmd("a2", "INBOX", &simple("two", "x")));
    // Must see both messages: it runs only after a1 and a2 are answered.
    burst.extend_from_slice(b"s1 SEARCH ALL\r\n");
    burst.extend(append_cmd("a3", "Drafts", &simple("three", "x")));
    burst.extend(append_cmd("a4", "INBOX", &simple("four", "x")));
    burst.extend(append_cmd("a5", "Nowhere", &simple("five", "x")));
    burst.extend_from_slice(b"n1 NOOP\r\n");
    c.send(&burst);
    let mut tags = Vec::new();
    let mut search = String::new();
    let mut exists = Vec::new();
    while tags.len() < 7 {
        let l = c.line();
        if l.starts_with("* SEARCH") {
            search = l.clone();
        } else if l.ends_with(" EXISTS") {
            exists.push(l.clone());
        } else if !l.starts_with('*') {
            tags.push(l.split(' ').take(2).collect::<Vec<_>>().join(" "));
        }
    }
    assert_eq!(
        tags,
        ["a1 OK", "a2 OK", "s1 OK", "a3 OK", "a4 OK", "a5 NO", "n1 OK"],
        "answers in command order"
    );
    assert_eq!(search, "* SEARCH 1 2");
    assert!(exists.contains(&"* 2 EXISTS".to_owned()), "{exists:?}");
    assert!(exists.contains(&"* 3 EXISTS".to_owned()), "{exists:?}");
    let r = c.ok("STATUS Drafts (MESSAGES)");
    assert!(r[0].contains("MESSAGES 1"), "{r:?}");
}

#[test]
fn an_append_run_follows_a_mailbox_deleted_and_recreated_by_another_session() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let mut c = s.login("bob@localhost");
    let mut other = s.login("bob@localhost");
    c.ok("CREATE Box");
    c.send(&append_cmd("a1", "Box", &simple("one", "x")));
    assert!(c.until("a1").last().unwrap().starts_with("a1 OK"));
    other.ok("DELETE Box");
    c.send(&append_cmd("a2", "Box", &simple("two", "x")));
    let r = c.until("a2");
    assert!(r.last().unwrap().starts_with("a2 NO [TRYCREATE]"), "{r:?}");
    other.ok("CREATE Box");
    c.send(&append_cmd("a3", "Box", &simple("three", "x")));
    let r = c.until("a3");
    assert!(r.last().unwrap().starts_with("a3 OK"), "{r:?}");
    let r = c.ok("STATUS Box (MESSAGES)");
    assert!(r[0].contains("MESSAGES 1"), "{r:?}");
}

#[test]
fn a_cached_target_never_leads_into_a_mailbox_that_took_over_its_row() {
    let s = TestServer::start();
    s.add_user("alice@localhost");
    s.add_user("bob@localhost");
    let mut alice = s.login("alice@localhost");
    let mut alice2 = s.login("alice@localhost");
    let mut bob = s.login("bob@localhost");
    // Box is the newest mailbox row; deleting it lets SQLite hand its row
    // id to the next mailbox created — here one of bob's.
    alice.ok("CREATE Box");
    alice.send(&append_cmd("a1", "Box", &simple("one", "x")));
    assert!(alice.until("a1").last().unwrap().starts_with("a1 OK"));
    alice2.ok("DELETE Box");
    bob.ok("CREATE Mine");
    alice.send(&append_cmd("a2", "Box", &simple("for alice only", "x")));
    let r = alice.until("a2");
    assert!(r.last().unwrap().starts_with("a2 NO [TRYCREATE]"), "{r:?}");
    let r = bob.ok("STATUS Mine (MESSAGES)");
    assert!(
        r[0].contains("MESSAGES 0"),
        "bob's mailbox got alice's mail: {r:?}"
    );
}
