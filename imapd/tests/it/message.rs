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
