//! Message commands in the Selected state: STORE, EXPUNGE, UID EXPUNGE,
//! COPY and MOVE (COPYUID), SEARCH / UID SEARCH, CLOSE and UNSELECT.

use crate::util::*;

fn setup(n: usize) -> (TestServer, Client) {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    for i in 1..=n {
        s.deliver(
            bob,
            &simple(&format!("msg{i}"), &format!("body number {i} zebra{i}")),
        );
    }
    let mut c = s.login("bob@localhost");
    c.ok("SELECT INBOX");
    (s, c)
}

#[test]
fn store_reports_flags_and_silent_does_not() {
    let (_s, mut c) = setup(3);
    let r = c.ok("STORE 1:2 +FLAGS (\\Flagged $Work)");
    // A new keyword is announced first (RFC 3501 §7.2.6).
    assert_eq!(
        r[0],
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)"
    );
    assert!(
        r[1].starts_with("* OK [PERMANENTFLAGS (") && r[1].contains("$Work \\*)]"),
        "{r:?}"
    );
    assert_eq!(r[2], "* 1 FETCH (FLAGS (\\Flagged \\Recent $Work))");
    assert_eq!(r[3], "* 2 FETCH (FLAGS (\\Flagged \\Recent $Work))");
    let r = c.ok("STORE 1 +FLAGS ($Work)");
    assert_eq!(r.len(), 2, "known keyword: no new FLAGS: {r:?}");
    let r = c.ok("STORE 1 -FLAGS.SILENT ($Work)");
    assert_eq!(r.len(), 1);
    let r = c.ok("UID STORE 3 FLAGS (\\Seen)");
    assert_eq!(r[0], "* 3 FETCH (UID 3 FLAGS (\\Seen \\Recent))");
    let r = c.ok("FETCH 1:3 FLAGS");
    assert_eq!(r[0], "* 1 FETCH (FLAGS (\\Flagged \\Recent))");
    let r = c.cmd("STORE 9 +FLAGS (\\Seen)");
    assert_eq!(Client::status_of(&r), "BAD");
    let r = c.cmd("STORE 1 +FLAGS (\\Bogus)");
    assert_eq!(Client::status_of(&r), "BAD");
}

#[test]
fn conditional_store_reports_modified() {
    let (_s, mut c) = setup(2);
    let r = c.ok("FETCH 1:2 (MODSEQ)");
    let modseq: u64 = r
        .iter()
        .filter(|l| l.contains(" FETCH ("))
        .map(|l| {
            l.split("MODSEQ (")
                .nth(1)
                .unwrap()
                .trim_end_matches("))")
                .parse::<u64>()
                .unwrap()
        })
        .max()
        .unwrap();
    c.ok("STORE 1 +FLAGS (\\Seen)");
    let r = c.ok(&format!(
        "STORE 1,2 (UNCHANGEDSINCE {modseq}) +FLAGS (\\Flagged)"
    ));
    assert!(r.last().unwrap().contains("[MODIFIED 1]"), "{r:?}");
    assert!(
        r.iter()
            .any(|l| l.starts_with("* 2 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ")),
        "{r:?}"
    );
}

#[test]
fn expunge_and_uid_expunge() {
    let (_s, mut c) = setup(5);
    c.ok("STORE 2,4 +FLAGS.SILENT (\\Deleted)");
    let r = c.ok("EXPUNGE");
    assert_eq!(&r[..2], &["* 4 EXPUNGE", "* 2 EXPUNGE"]);
    c.ok("STORE 1:3 +FLAGS.SILENT (\\Deleted)");
    let r = c.ok("UID EXPUNGE 5");
    assert_eq!(r[0], "* 3 EXPUNGE");
    let r = c.ok("UID SEARCH ALL");
    assert_eq!(r[0], "* SEARCH 1 3");
}

#[test]
fn copy_and_move_report_copyuid() {
    let (_s, mut c) = setup(3);
    let r = c.ok("COPY 1:2 Trash");
    assert!(r.last().unwrap().contains("[COPYUID "), "{r:?}");
    assert!(
        r.last().unwrap().ends_with("1:2 1:2] COPY completed"),
        "{r:?}"
    );
    let r = c.ok("UID MOVE 2 Junk");
    assert!(
        r[0].starts_with("* OK [COPYUID ") && r[0].contains(" 2 1]"),
        "{r:?}"
    );
    assert_eq!(r[1], "* 2 EXPUNGE");
    let r = c.cmd("COPY 1 Nowhere");
    assert!(r[0].contains("NO [TRYCREATE]"));
    let r = c.ok("STATUS Trash (MESSAGES)");
    assert_eq!(r[0], "* STATUS \"Trash\" (MESSAGES 2)");
}

#[test]
fn search_keys_and_uid_search() {
    let (_s, mut c) = setup(4);
    c.ok("STORE 2 +FLAGS (\\Seen)");
    c.ok("STORE 3 +FLAGS (\\Flagged)");
    assert_eq!(c.ok("SEARCH ALL")[0], "* SEARCH 1 2 3 4");
    assert_eq!(c.ok("SEARCH UNSEEN")[0], "* SEARCH 1 3 4");
    assert_eq!(c.ok("SEARCH SEEN")[0], "* SEARCH 2");
    assert_eq!(c.ok("SEARCH OR SEEN FLAGGED")[0], "* SEARCH 2 3");
    assert_eq!(c.ok("SEARCH NOT (SEEN) 2:4")[0], "* SEARCH 3 4");
    assert_eq!(c.ok("SEARCH SUBJECT msg3")[0], "* SEARCH 3");
    assert_eq!(c.ok("SEARCH BODY zebra4")[0], "* SEARCH 4");
    assert_eq!(c.ok("UID SEARCH TEXT zebra2")[0], "* SEARCH 2");
    assert_eq!(
        c.ok("SEARCH CHARSET UTF-8 FROM alice")[0],
        "* SEARCH 1 2 3 4"
    );
    assert_eq!(c.ok("SEARCH LARGER 100000")[0], "* SEARCH");
    assert_eq!(
        c.ok("SEARCH SINCE 1-Jan-2020 BEFORE 1-Jan-2030")[0],
        "* SEARCH 1 2 3 4"
    );
    assert_eq!(c.ok("SEARCH SENTON 13-Nov-2023")[0], "* SEARCH 1 2 3 4");
    assert_eq!(c.ok("SEARCH UID 2:3")[0], "* SEARCH 2 3");
    assert!(grep(&c.ok("SEARCH MODSEQ 1"), "* SEARCH")[0].contains("(MODSEQ "));
    let r = c.cmd("SEARCH CHARSET KOI8-R ALL");
    assert!(r[0].contains("NO [BADCHARSET"), "{r:?}");
}

#[test]
fn close_expunges_silently_and_unselect_does_not() {
    let (s, mut c) = setup(2);
    c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)");
    let r = c.ok("UNSELECT");
    assert_eq!(r.len(), 1);
    c.ok("SELECT INBOX");
    let r = c.ok("CLOSE");
    assert_eq!(r.len(), 1, "{r:?}");
    let mut c2 = s.login("bob@localhost");
    assert_eq!(
        c2.ok("STATUS INBOX (MESSAGES)")[0],
        "* STATUS \"INBOX\" (MESSAGES 1)"
    );
}

/// A FETCH or STORE reads what other sessions changed in the snapshot of
/// its own read and reports it at its end (view/sync.rs, `presync`); what
/// it does not report there, the next command does: each change exactly
/// once, and an expunge only where EXPUNGE may be sent (RFC 3501 §7.4.1).
#[test]
fn changes_by_others_are_reported_once_by_fetch_store_and_the_next_command() {
    let (s, mut a) = setup(4);
    let mut b = s.login("bob@localhost");
    b.ok("SELECT INBOX");
    for round in 0..20 {
        // Another session changes message 1's flags: A's FETCH of
        // message 2 (or, at the latest, the NOOP after it) reports it.
        let flag = if round % 2 == 0 { "+" } else { "-" };
        b.ok(&format!("STORE 1 {flag}FLAGS.SILENT (\\Flagged)"));
        let want = if round % 2 == 0 {
            "* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))"
        } else {
            "* 1 FETCH (UID 1 FLAGS (\\Recent))"
        };
        let mut seen = a.ok("FETCH 2 (FLAGS)");
        assert!(
            seen.contains(&"* 2 FETCH (FLAGS (\\Recent))".to_string()),
            "{seen:?}"
        );
        seen.extend(a.ok("NOOP"));
        let n = seen.iter().filter(|l| l.as_str() == want).count();
        assert_eq!(n, 1, "round {round}: {seen:?}");
    }
    // Another session expunges message 4. A STORE that leaves message 2
    // as it was (its FETCH reply reads the current flags, and the sync in
    // the same snapshot) must not send EXPUNGE; the NOOP after it does.
    a.ok("STORE 2 +FLAGS.SILENT (\\Seen)");
    b.ok("STORE 4 +FLAGS.SILENT (\\Deleted)");
    b.ok("EXPUNGE");
    let r = a.ok("STORE 2 +FLAGS (\\Seen)");
    assert!(
        r.iter().all(|l| !l.ends_with("EXPUNGE")),
        "no EXPUNGE during STORE: {r:?}"
    );
    assert!(
        r.contains(&"* 2 FETCH (FLAGS (\\Seen \\Recent))".to_string()),
        "{r:?}"
    );
    let r = a.ok("NOOP");
    assert_eq!(
        r.iter().filter(|l| l.as_str() == "* 4 EXPUNGE").count(),
        1,
        "{r:?}"
    );
    assert!(a.ok("NOOP").iter().all(|l| !l.ends_with("EXPUNGE")));
    let r = a.ok("FETCH 1:* (UID)");
    let fetched = r.iter().filter(|l| l.starts_with("* ")).count();
    assert_eq!(fetched, 3, "three messages left: {r:?}");
    // An EXPUNGE reads the sync in its own transaction: its own expunge
    // and another session's earlier change, each reported once, with it.
    a.ok("STORE 3 +FLAGS.SILENT (\\Deleted)");
    b.ok("STORE 1 +FLAGS.SILENT (\\Answered)");
    let r = a.ok("EXPUNGE");
    let once = |r: &[String], want: &str| r.iter().filter(|l| l.as_str() == want).count() == 1;
    assert!(once(&r, "* 3 EXPUNGE"), "{r:?}");
    assert!(
        once(&r, "* 1 FETCH (UID 1 FLAGS (\\Answered \\Recent))"),
        "{r:?}"
    );
    let r = a.ok("NOOP");
    assert_eq!(r.len(), 1, "nothing left to report: {r:?}");
    let r = b.ok("NOOP");
    assert!(once(&r, "* 3 EXPUNGE"), "{r:?}");
    // A lone APPEND to the selected mailbox does the same: EXISTS for its
    // message and another session's earlier change, with the APPEND.
    b.ok("STORE 2 +FLAGS.SILENT (\\Answered)");
    let msg = "Subject: appended\r\n\r\nhello\r\n";
    a.send(format!("x1 APPEND INBOX {{{}+}}\r\n{msg}\r\n", msg.len()).as_bytes());
    let r = a.until("x1");
    assert!(
        r.last().is_some_and(|l| l.starts_with("x1 OK [APPENDUID ")),
        "{r:?}"
    );
    assert!(once(&r, "* 3 EXISTS"), "{r:?}");
    assert!(
        once(&r, "* 2 FETCH (UID 2 FLAGS (\\Seen \\Answered \\Recent))"),
        "{r:?}"
    );
    let r = a.ok("NOOP");
    assert_eq!(r.len(), 1, "nothing left to report: {r:?}");
    let r = a.ok("FETCH 3 (FLAGS)");
    assert!(r[0].starts_with("* 3 FETCH (FLAGS (\\Recent))"), "{r:?}");
}
