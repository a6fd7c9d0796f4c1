//! SORT and THREAD (RFC 5256, RFC 5957) over a socket, where a transcript
//! cannot say it: messages the session has not been told about (EXISTS)
//! are left out, and those expunged by another session but not yet
//! announced are left out too without renumbering (RFC 3501 §7.4.1); a
//! reply chain thousands deep and a References field of thousands of IDs
//! are answered at once while another session is served; and the cost on
//! a 100,000-message mailbox (an ignored test: run it with `--release
//! --ignored --nocapture` for the figures).

use crate::util::*;
use std::time::{Duration, Instant};

/// Generous for a loaded 2-core machine and a debug build.
const QUICK: Duration = Duration::from_secs(10);

fn msg(id: usize, refs: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: u{id}@example.org\r\nSubject: {subject}\r\nMessage-ID: <{id}@x>\r\n\
         References: {refs}\r\nDate: Mon, 13 Nov 2023 10:00:00 +0000\r\n\r\nbody\r\n"
    )
    .into_bytes()
}

/// The numbers of the one `* SORT` line.
fn sorted(r: &[String]) -> Vec<u32> {
    let line = grep(r, "* SORT");
    assert_eq!(line.len(), 1, "{r:?}");
    line[0]
        .split(' ')
        .skip(2)
        .map(|n| n.parse().unwrap())
        .collect()
}

fn thread_line(r: &[String]) -> String {
    let line = grep(r, "* THREAD");
    assert_eq!(line.len(), 1, "{r:?}");
    line[0].clone()
}

#[test]
fn only_messages_the_session_knows_are_sorted_and_threaded() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    for (i, subject) in ["c", "a", "b"].iter().enumerate() {
        s.deliver(bob, &msg(i, "", subject));
    }
    let mut a = s.login("bob@localhost");
    a.ok("SELECT INBOX");
    let mut b = s.login("bob@localhost");
    b.ok("SELECT INBOX");
    // Another session expunges "a" (seq 2) and a new message arrives. The
    // expunge is not announced during SORT (§7.4.1), so the numbers do not
    // shift; the new message is not sorted before its EXISTS (§5.2).
    b.ok("STORE 2 +FLAGS.SILENT (\\Deleted)");
    b.ok("EXPUNGE");
    s.deliver(bob, &msg(3, "<0@x>", "Re: c"));
    let r = a.ok("SORT (SUBJECT) UTF-8 ALL");
    assert!(grep(&r, "* 2 EXPUNGE").is_empty(), "{r:?}");
    let at = |p: &str| r.iter().position(|l| l.starts_with(p));
    match (at("* 4 EXISTS"), at("* SORT")) {
        (Some(e), Some(s)) if e < s => assert_eq!(sorted(&r), [3, 1, 4], "{r:?}"),
        _ => assert_eq!(sorted(&r), [3, 1], "{r:?}"),
    }
    // By the tagged OK the new message has been announced.
    assert_eq!(grep(&r, "* 4 EXISTS").len(), 1, "{r:?}");
    let r = a.ok("THREAD REFERENCES UTF-8 ALL");
    assert!(grep(&r, "* 2 EXPUNGE").is_empty(), "{r:?}");
    assert_eq!(thread_line(&r), "* THREAD (1 4)(3)");
    // NOOP announces the expunge: everything is numbered anew.
    let r = a.ok("NOOP");
    assert_eq!(grep(&r, "* 2 EXPUNGE").len(), 1, "{r:?}");
    let r = a.ok("SORT (REVERSE SUBJECT) UTF-8 ALL");
    assert_eq!(sorted(&r), [1, 3, 2], "{r:?}");
    let r = a.ok("SORT (SUBJECT) UTF-8 NOT 3");
    assert_eq!(sorted(&r), [2, 1], "{r:?}");
    let r = a.ok("THREAD REFERENCES UTF-8 ALL");
    assert_eq!(thread_line(&r), "* THREAD (1 3)(2)");
    let r = a.ok("UID THREAD ORDEREDSUBJECT UTF-8 ALL");
    assert_eq!(thread_line(&r), "* THREAD (1 4)(3)");
}

/// Deep and wide reference structures cost no stack and little time, and
/// other sessions are served meanwhile.
#[test]
fn deep_chains_and_long_references_are_answered_quickly() {
    let n = 3000;
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    s.store
        .write_sync(move |tx| {
            for i in 0..n {
                // Each message replies to the previous one; every 100th
                // also lists all its ancestors (what mail clients do).
                let refs = if i % 100 == 99 {
                    (0..i)
                        .map(|j| format!("<{j}@x>"))
                        .collect::<Vec<_>>()
                        .join(" ")
                } else if i > 0 {
                    format!("<{}@x>", i - 1)
                } else {
                    String::new()
                };
                let m = mailstore::NewMessage {
                    raw: msg(i, &refs, "chain"),
                    internal_date: 1_700_000_000 + i as i64,
                };
                tx.deliver(&m, &[bob])?;
            }
            Ok(())
        })
        .unwrap();
    let mut c = s.login("bob@localhost");
    c.ok("SELECT INBOX");
    let t = Instant::now();
    c.send(b"t1 THREAD REFERENCES UTF-8 ALL\r\n");
    let mut other = s.login("bob@localhost");
    other.ok("NOOP");
    let r = c.until("t1");
    assert!(t.elapsed() < QUICK, "{:?}", t.elapsed());
    assert!(r.last().unwrap().starts_with("t1 OK"), "{:?}", r.last());
    let want: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
    assert_eq!(thread_line(&r), format!("* THREAD ({})", want.join(" ")));
    let r = c.ok("SORT (REVERSE ARRIVAL) UTF-8 ALL");
    assert_eq!(sorted(&r), (1..=n as u32).rev().collect::<Vec<_>>());
}

/// Figures for the README: SORT and THREAD over 100,000 messages.
#[test]
#[ignore = "benchmark: prints figures"]
fn bench_sort_and_thread_a_hundred_thousand() {
    let n: usize = std::env::var("IMAPD_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    for start in (0..n).step_by(5000) {
        let end = (start + 5000).min(n);
        s.store
            .write_sync(move |tx| {
                for i in start..end {
                    // Threads of ten: each replies to the one before.
                    let refs = match i % 10 {
                        0 => String::new(),
                        _ => format!("<{}@x> <{}@x>", i - i % 10, i - 1),
                    };
                    let subject = match i % 10 {
                        0 => format!("topic {}", i / 10 % 997),
                        _ => format!("Re: topic {}", i / 10 % 997),
                    };
                    let m = mailstore::NewMessage {
                        raw: msg(i, &refs, &subject),
                        internal_date: 1_700_000_000 + (i as i64 * 7919) % 100_000,
                    };
                    tx.deliver(&m, &[bob])?;
                }
                Ok(())
            })
            .unwrap();
    }
    let mut c = s.login("bob@localhost");
    c.ok("SELECT INBOX");
    for cmd in [
        "UID SORT (ARRIVAL) UTF-8 ALL",
        "UID SORT (SIZE) UTF-8 ALL",
        "UID SORT (DATE) UTF-8 ALL",
        "UID SORT (SUBJECT) UTF-8 ALL",
        "UID SORT (FROM) UTF-8 ALL",
        "UID SORT (DISPLAYFROM REVERSE DATE) UTF-8 ALL",
        "UID THREAD ORDEREDSUBJECT UTF-8 ALL",
        "UID THREAD REFERENCES UTF-8 ALL",
    ] {
        // The second run is the warm one (pages cached).
        c.ok(cmd);
        let t = Instant::now();
        let r = c.ok(cmd);
        println!(
            "{cmd}: {:?} ({} bytes)",
            t.elapsed(),
            r.iter().map(String::len).sum::<usize>()
        );
    }
}

/// Answers are remembered per mailbox state (`view/sort_cache.rs`): the
/// same question of an unchanged mailbox gets the same answer, and any
/// change — an arrival, a flag, an expunge, in this session or another —
/// makes the next answer fresh, for sessions in the same state too.
#[test]
fn remembered_answers_follow_every_change() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    for (i, subject) in ["c", "a", "b"].iter().enumerate() {
        s.deliver(bob, &msg(i, "", subject));
    }
    let mut a = s.login("bob@localhost");
    a.ok("SELECT INBOX");
    let mut b = s.login("bob@localhost");
    b.ok("SELECT INBOX");
    assert_eq!(sorted(&a.ok("UID SORT (SUBJECT) UTF-8 ALL")), [2, 3, 1]);
    // Asked again, here and by another session in the same state.
    assert_eq!(sorted(&a.ok("UID SORT (SUBJECT) UTF-8 ALL")), [2, 3, 1]);
    assert_eq!(sorted(&b.ok("UID SORT (SUBJECT) UTF-8 ALL")), [2, 3, 1]);
    assert_eq!(sorted(&b.ok("SORT (SUBJECT) UTF-8 ALL")), [2, 3, 1]);
    // An arrival.
    s.deliver(bob, &msg(9, "", "0 first"));
    a.ok("NOOP");
    assert_eq!(sorted(&a.ok("UID SORT (SUBJECT) UTF-8 ALL")), [4, 2, 3, 1]);
    // A flag: the same criteria over FLAGGED, before and after.
    assert!(sorted(&a.ok("UID SORT (SUBJECT) UTF-8 FLAGGED")).is_empty());
    b.ok("NOOP");
    b.ok("UID STORE 3 +FLAGS (\\Flagged)");
    a.ok("NOOP");
    assert_eq!(sorted(&a.ok("UID SORT (SUBJECT) UTF-8 FLAGGED")), [3]);
    // An expunge by the other session.
    b.ok("UID STORE 2 +FLAGS.SILENT (\\Deleted)");
    b.ok("EXPUNGE");
    a.ok("NOOP");
    assert_eq!(sorted(&a.ok("UID SORT (SUBJECT) UTF-8 ALL")), [4, 3, 1]);
    assert_eq!(sorted(&a.ok("SORT (SUBJECT) UTF-8 ALL")), [3, 2, 1]);
    let t = thread_line(&a.ok("UID THREAD ORDEREDSUBJECT UTF-8 ALL"));
    assert_eq!(t, thread_line(&a.ok("UID THREAD ORDEREDSUBJECT UTF-8 ALL")));
    assert!(!t.contains('2'), "{t}");
}
