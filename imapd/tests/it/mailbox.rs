//! Mailbox commands: SELECT/EXAMINE data, CREATE/DELETE/RENAME (INBOX
//! too), LIST wildcards and attributes, LSUB, SUBSCRIBE, STATUS, APPEND,
//! modified UTF-7 names.

use crate::util::*;

#[test]
fn select_reports_counts_uids_and_flags() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    s.deliver(bob, &simple("one", "1"));
    s.deliver(bob, &simple("two", "2"));
    let mut c = s.login("bob@localhost");
    let r = c.ok("SELECT inbox");
    let all = r.join("\n");
    assert!(
        all.contains("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)"),
        "{all}"
    );
    assert!(all.contains("* OK [PERMANENTFLAGS ("), "{all}");
    assert!(all.contains("* 2 EXISTS"));
    assert!(all.contains("* 2 RECENT"), "{all}");
    assert!(all.contains("* OK [UNSEEN 1]"));
    assert!(all.contains("* OK [UIDVALIDITY "));
    assert!(all.contains("* OK [UIDNEXT 3]"));
    assert!(all.contains("* OK [HIGHESTMODSEQ "));
    assert!(r.last().unwrap().contains("[READ-WRITE]"));
    let r = c.ok("EXAMINE INBOX");
    assert!(r.last().unwrap().contains("[READ-ONLY]"));
    let r = c.cmd("STORE 1 +FLAGS (\\Seen)");
    assert_eq!(Client::status_of(&r), "NO");
    let r = c.cmd("SELECT nosuch");
    assert!(r.last().unwrap().contains("NO [NONEXISTENT]"));
    // A failed SELECT leaves the Selected state.
    let r = c.cmd("FETCH 1 FLAGS");
    assert_eq!(Client::status_of(&r), "BAD");
}

#[test]
fn create_list_rename_delete() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let mut c = s.login("bob@localhost");
    c.ok("CREATE Projects/2024/Q1");
    c.ok("CREATE \"Entw&APw-rfe\"");
    let r = c.cmd("CREATE INBOX");
    assert!(r[0].contains("NO"));
    let r = c.cmd("CREATE Projects");
    assert!(r[0].contains("NO [ALREADYEXISTS]"), "{r:?}");

    let r = c.ok("LIST \"\" *");
    let all = r.join("\n");
    assert!(
        all.contains("* LIST (\\HasNoChildren) \"/\" \"INBOX\""),
        "{all}"
    );
    assert!(
        all.contains("* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\""),
        "{all}"
    );
    assert!(
        all.contains("* LIST (\\HasChildren) \"/\" \"Projects\""),
        "{all}"
    );
    assert!(all.contains("\"Projects/2024/Q1\""));
    assert!(all.contains("\"Entw&APw-rfe\""));

    let r = c.ok("LIST \"\" %");
    assert!(!r.join("\n").contains("Projects/2024"));
    let r = c.ok("LIST Projects/ %");
    assert_eq!(grep(&r, "* LIST").len(), 1, "{r:?}");
    assert!(r[0].ends_with("\"Projects/2024\""));
    let r = c.ok("LIST \"\" \"\"");
    assert_eq!(r[0], "* LIST (\\Noselect) \"/\" \"\"");

    c.ok("RENAME Projects Archive2");
    let r = c.ok("LIST \"\" Archive2/*");
    assert_eq!(grep(&r, "* LIST").len(), 2, "{r:?}");
    let r = c.cmd("RENAME nosuch x");
    assert!(r[0].contains("NO"));

    c.ok("DELETE Archive2/2024/Q1");
    let r = c.cmd("DELETE INBOX");
    assert_eq!(Client::status_of(&r), "NO");
    let r = c.cmd("DELETE nosuch");
    assert!(r[0].contains("NO [NONEXISTENT]"));
}

#[test]
fn rename_inbox_moves_messages_and_keeps_inbox() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    s.deliver(bob, &simple("one", "1"));
    let mut c = s.login("bob@localhost");
    c.ok("RENAME INBOX Old");
    let r = c.ok("STATUS INBOX (MESSAGES)");
    assert_eq!(r[0], "* STATUS \"INBOX\" (MESSAGES 0)");
    let r = c.ok("STATUS Old (MESSAGES)");
    assert_eq!(r[0], "* STATUS \"Old\" (MESSAGES 1)");
}

#[test]
fn subscribe_and_lsub() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let mut c = s.login("bob@localhost");
    c.ok("CREATE Lists/rust");
    c.ok("SUBSCRIBE Lists/rust");
    let r = c.ok("LSUB \"\" Lists/*");
    assert_eq!(r[0], "* LSUB () \"/\" \"Lists/rust\"");
    c.ok("UNSUBSCRIBE Lists/rust");
    let r = c.ok("LSUB \"\" Lists/*");
    assert_eq!(r.len(), 1);
    let r = c.ok("LSUB \"\" *");
    assert!(r.join("\n").contains("\"INBOX\""));
}

#[test]
fn status_and_append_with_appenduid() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let mut c = s.login("bob@localhost");
    let msg = simple("appended", "body");
    c.send(
        format!(
            "x1 APPEND Drafts (\\Draft $Label) \"14-Nov-2023 10:00:00 +0100\" {{{}}}\r\n",
            msg.len()
        )
        .as_bytes(),
    );
    assert!(c.line().starts_with("+"));
    c.send(&msg);
    c.send(b"\r\n");
    let r = c.until("x1");
    assert!(r.last().unwrap().starts_with("x1 OK [APPENDUID "), "{r:?}");
    let r = c.ok("STATUS Drafts (MESSAGES UNSEEN UIDNEXT RECENT)");
    assert_eq!(
        r[0],
        "* STATUS \"Drafts\" (MESSAGES 1 UNSEEN 1 UIDNEXT 2 RECENT 1)"
    );
    let r = c.cmd("APPEND nosuch {1+}\r\nx");
    assert!(r[0].contains("NO [TRYCREATE]"), "{r:?}");
    let r = c.cmd("APPEND INBOX (\\Recent) {1+}\r\nx");
    assert_eq!(Client::status_of(&r), "BAD");
    c.ok("SELECT Drafts");
    let r = c.ok("FETCH 1 (FLAGS INTERNALDATE)");
    assert!(r[0].contains("\\Draft") && r[0].contains("$Label"), "{r:?}");
    assert!(
        r[0].contains("INTERNALDATE \"14-Nov-2023 09:00:00 +0000\""),
        "{r:?}"
    );
}

/// Names that are not valid modified UTF-7 are astrings like any other:
/// SELECT answers NO, LIST matches nothing; CREATE refuses them, and
/// names with empty, `.` or `..` levels or a leading `/` or `~`.
#[test]
fn invalid_and_path_like_names() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let mut c = s.login("bob@localhost");
    let r = c.cmd("SELECT !#$&'+,-.0123456789:;<=>?@^_`|[}");
    assert!(r.last().unwrap().contains(" NO "), "{r:?}");
    let r = c.ok("LIST \"\" !#$&'+,-.0123456789:;<=>?@^_`|[}%*");
    assert_eq!(r.len(), 1, "{r:?}");
    for bad in ["a&b", "/abs", "~home", "a//b", "a/./b", "..", "a/.."] {
        let r = c.cmd(&format!("CREATE \"{bad}\""));
        assert!(r.last().unwrap().contains("NO [CANNOT]"), "{bad}: {r:?}");
    }
    c.ok("CREATE \"a.b/c..d\"");
}

/// RFC 3501 §6.3.9: `foo/bar` subscribed but `foo` not: LSUB with `%`
/// returns `foo` flagged \Noselect.
#[test]
fn lsub_percent_returns_unsubscribed_parent_as_noselect() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let mut c = s.login("bob@localhost");
    c.ok("CREATE foo/bar");
    c.ok("SUBSCRIBE foo/bar");
    let r = c.ok("LSUB \"\" %");
    assert!(
        r.iter().any(|l| l == "* LSUB (\\Noselect) \"/\" \"foo\""),
        "{r:?}"
    );
    assert!(!r.iter().any(|l| l.contains("foo/bar")), "{r:?}");
    let r = c.ok("LSUB \"\" *");
    assert!(r.iter().any(|l| l.contains("foo/bar")), "{r:?}");
    assert!(!r.iter().any(|l| l.ends_with(" \"foo\"")), "{r:?}");
}
