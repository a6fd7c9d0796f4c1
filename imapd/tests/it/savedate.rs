//! SAVEDATE (RFC 8514): FETCH SAVEDATE (when the message was saved in this
//! mailbox; NIL for messages stored before the store kept it) and the
//! search keys SAVEDBEFORE, SAVEDON, SAVEDSINCE and SAVEDATESUPPORTED.

use crate::util::*;
use mailstore::Store;

/// `SAVEDATE "..."` (or `SAVEDATE NIL`) in a FETCH line.
fn save_date(line: &str) -> String {
    let at = line.find("SAVEDATE ").unwrap() + "SAVEDATE ".len();
    let rest = &line[at..];
    match rest.strip_prefix('"') {
        Some(q) => q[..q.find('"').unwrap()].to_owned(),
        None => rest[..3].to_owned(),
    }
}

/// Today (UTC) as an IMAP `date`, e.g. `6-Dec-2026`.
fn today() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (y, m, d) = mailstore::date::civil_from_days(now / 86_400);
    format!("{d}-{}-{y}", mailstore::date::MONTHS[m as usize - 1])
}

#[test]
fn save_date_is_when_the_message_came_into_the_mailbox() {
    let (dir, path) = testkit::store::closed_store(
        &["bob@localhost"],
        PASSWORD,
        &[simple("old", "1"), simple("new", "2")],
    );
    // The first message's entry as a store from before save dates left
    // it; the second saved long ago (2001-09-09).
    testkit::store::run_sql(
        &path,
        "UPDATE entries SET saved = NULL WHERE uid = 1;
         UPDATE entries SET saved = 1000000000 WHERE uid = 2;",
    );
    let s = TestServer::over(dir, Store::open(&path).unwrap(), |_| {});
    let mut c = s.login("bob@localhost");
    let r = c.ok("CAPABILITY");
    assert!(r[0].split(' ').any(|w| w == "SAVEDATE"), "{r:?}");
    c.ok("CREATE Other");
    c.ok("SELECT INBOX");
    let r = c.ok("FETCH 1:2 (SAVEDATE INTERNALDATE)");
    assert_eq!(save_date(&r[0]), "NIL", "{r:?}");
    assert_eq!(save_date(&r[1]), "09-Sep-2001 01:46:40 +0000", "{r:?}");
    // APPEND saves now, whatever INTERNALDATE the client gives.
    let m = simple("appended", "3");
    c.send(
        format!(
            "a APPEND INBOX \"01-Jan-2000 00:00:00 +0000\" {{{}+}}\r\n",
            m.len()
        )
        .as_bytes(),
    );
    c.send(&m);
    c.send(b"\r\n");
    let r = c.until("a");
    assert!(r.last().unwrap().starts_with("a OK"), "{r:?}");
    let r = c.ok("FETCH 3 (INTERNALDATE SAVEDATE)");
    assert!(
        r[0].contains("INTERNALDATE \"01-Jan-2000 00:00:00 +0000\""),
        "{r:?}"
    );
    let saved = save_date(&r[0]);
    assert!(saved.starts_with(&format!("{:0>11}", today())), "{saved}");
    // COPY and MOVE save the message anew in the target (§3: "the date
    // and time at which the message was saved in the mailbox").
    c.ok("COPY 2 Other");
    c.ok("MOVE 1 Other");
    c.ok("SELECT Other");
    let r = c.ok("FETCH 1:2 (UID SAVEDATE)");
    for l in &r[..2] {
        assert!(
            save_date(l).starts_with(&format!("{:0>11}", today())),
            "{l}"
        );
    }
    // UID FETCH and the FETCH of a read-only mailbox say it too.
    c.ok("EXAMINE INBOX");
    let r = c.ok("UID FETCH 2 SAVEDATE");
    assert!(
        r[0].contains("SAVEDATE \"09-Sep-2001 01:46:40 +0000\""),
        "{r:?}"
    );
}

#[test]
fn saved_search_keys_use_the_save_date_or_else_the_internal_date() {
    let (dir, path) = testkit::store::closed_store(
        &["bob@localhost"],
        PASSWORD,
        &[simple("a", "1"), simple("b", "2"), simple("c", "3")],
    );
    // 1: no save date, internal date 2002-02-02; 2: saved 2001-09-09;
    // 3: saved now.
    testkit::store::run_sql(
        &path,
        "UPDATE entries SET saved = NULL WHERE uid = 1;
         UPDATE messages SET internal_date = 1012608000
             WHERE id = (SELECT message_id FROM entries WHERE uid = 1);
         UPDATE entries SET saved = 1000000000 WHERE uid = 2;",
    );
    let s = TestServer::over(dir, Store::open(&path).unwrap(), |_| {});
    let mut c = s.login("bob@localhost");
    c.ok("SELECT INBOX");
    let search = |c: &mut Client, q: &str| -> String {
        let r = c.ok(q);
        r.iter()
            .find(|l| l.starts_with("* SEARCH"))
            .cloned()
            .unwrap()
    };
    assert_eq!(search(&mut c, "SEARCH SAVEDON 9-Sep-2001"), "* SEARCH 2");
    assert_eq!(search(&mut c, "SEARCH SAVEDON 2-Feb-2002"), "* SEARCH 1");
    assert_eq!(
        search(&mut c, "SEARCH SAVEDBEFORE 1-Jan-2003"),
        "* SEARCH 1 2"
    );
    assert_eq!(
        search(&mut c, "SEARCH SAVEDSINCE 10-Sep-2001"),
        "* SEARCH 1 3"
    );
    assert_eq!(
        search(&mut c, &format!("SEARCH SAVEDSINCE {}", today())),
        "* SEARCH 3"
    );
    assert_eq!(
        search(
            &mut c,
            &format!("UID SEARCH SAVEDON {} SAVEDATESUPPORTED", today())
        ),
        "* SEARCH 3"
    );
    assert_eq!(search(&mut c, "SEARCH SAVEDATESUPPORTED"), "* SEARCH 1 2 3");
    // The internal dates were not used where a save date is known.
    assert_eq!(search(&mut c, "SEARCH SAVEDBEFORE 1-Jan-2001"), "* SEARCH");
    for bad in [
        "SEARCH SAVEDON",
        "SEARCH SAVEDSINCE 2001-09-09",
        "FETCH 1 SAVEDATE.PEEK",
    ] {
        let r = c.cmd(bad);
        assert_eq!(Client::status_of(&r), "BAD", "{bad}: {r:?}");
    }
}
