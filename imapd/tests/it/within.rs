//! WITHIN (RFC 5032): the search keys OLDER n and YOUNGER n, intervals in
//! seconds back from the server's time now over INTERNALDATE.

use crate::util::*;
use mailstore::date::{civil_from_days, MONTHS};
use std::time::{SystemTime, UNIX_EPOCH};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// RFC 3501 `date-time` of a moment, in UTC.
fn date_time(unix: i64) -> String {
    let (y, m, d) = civil_from_days(unix.div_euclid(86_400));
    let s = unix.rem_euclid(86_400);
    format!(
        "\"{d:02}-{}-{y} {:02}:{:02}:{:02} +0000\"",
        MONTHS[m as usize - 1],
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// APPEND a small message with the given INTERNALDATE.
fn append_at(c: &mut Client, unix: i64, subject: &str) {
    let msg = simple(subject, "x");
    c.send(format!("a APPEND INBOX {} {{{}+}}\r\n", date_time(unix), msg.len()).as_bytes());
    c.send(&msg);
    c.send(b"\r\n");
    let r = c.until("a");
    assert!(r.last().unwrap().starts_with("a OK"), "{r:?}");
}

#[test]
fn older_and_younger_split_by_internal_date() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let mut c = s.login("bob@localhost");
    let r = c.ok("CAPABILITY");
    assert!(r[0].split(' ').any(|w| w == "WITHIN"), "{r:?}");
    let t = now();
    append_at(&mut c, t - 10 * 86_400, "ten days");
    append_at(&mut c, t - 2 * 3600, "two hours");
    append_at(&mut c, t, "now");
    c.ok("SELECT INBOX");
    let search = |c: &mut Client, q: &str| -> String {
        let r = c.ok(q);
        r.iter()
            .find(|l| l.starts_with("* SEARCH") || l.starts_with("* ESEARCH"))
            .cloned()
            .unwrap()
    };
    assert_eq!(search(&mut c, "SEARCH YOUNGER 3600"), "* SEARCH 3");
    assert_eq!(search(&mut c, "SEARCH YOUNGER 86400"), "* SEARCH 2 3");
    assert_eq!(search(&mut c, "SEARCH OLDER 86400"), "* SEARCH 1");
    assert_eq!(search(&mut c, "SEARCH OLDER 3600"), "* SEARCH 1 2");
    assert_eq!(search(&mut c, "SEARCH OLDER 4294967295"), "* SEARCH");
    assert_eq!(
        search(&mut c, "SEARCH YOUNGER 4294967295"),
        "* SEARCH 1 2 3"
    );
    // With other keys, negated, as UIDs and with ESEARCH.
    assert_eq!(
        search(&mut c, "SEARCH NOT YOUNGER 3600 SUBJECT hours"),
        "* SEARCH 2"
    );
    assert_eq!(
        search(&mut c, "UID SEARCH OR OLDER 864000 YOUNGER 60"),
        "* SEARCH 1 3"
    );
    assert!(search(&mut c, "SEARCH RETURN (COUNT) YOUNGER 86400").ends_with("COUNT 2"));
    // The interval counts from the server's clock: a message dated in the
    // future is younger than any interval and older than none.
    append_at(&mut c, t + 86_400, "tomorrow");
    assert_eq!(search(&mut c, "SEARCH OLDER 60"), "* SEARCH 1 2");
    assert_eq!(
        search(&mut c, "SEARCH YOUNGER 1 SUBJECT tomorrow"),
        "* SEARCH 4"
    );
}

#[test]
fn within_intervals_must_be_positive_32_bit_numbers() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let mut c = s.login("bob@localhost");
    c.ok("SELECT INBOX");
    for bad in [
        "SEARCH YOUNGER 0",
        "SEARCH OLDER 4294967296",
        "SEARCH OLDER -1",
        "SEARCH YOUNGER",
        "SEARCH OLDER 1d",
    ] {
        let r = c.cmd(bad);
        assert_eq!(Client::status_of(&r), "BAD", "{bad}: {r:?}");
    }
}
