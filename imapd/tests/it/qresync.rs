//! QRESYNC (RFC 7162 §3.2) over real sockets where a transcript cannot
//! say it: the bytes a resync of a 100,000-message mailbox costs, the
//! bound on remembered expunges (the store forgets the oldest tombstones;
//! SELECT then answers with the superset §3.2.5.2 allows and a live view
//! compares UIDs instead), the HIGHESTMODSEQ sent while expunges are held
//! back (§3.2), and VANISHED split into bounded lines.

use crate::util::*;
use mailstore::{FlagOp, Flags};

/// Fill `user`'s INBOX with `n` small messages, 5,000 per write batch.
fn fill(s: &TestServer, user: mailstore::UserId, n: usize) {
    for start in (0..n).step_by(5000) {
        let end = (start + 5000).min(n);
        s.store
            .write_sync(move |tx| {
                for i in start..end {
                    let msg = mailstore::NewMessage {
                        raw: format!("Subject: m{i}\r\n\r\nx\r\n").into_bytes(),
                        internal_date: 1_700_000_000,
                    };
                    tx.deliver(&msg, &[user])?;
                }
                Ok(())
            })
            .unwrap();
    }
}

fn inbox(s: &TestServer, user: mailstore::UserId) -> mailstore::MailboxId {
    s.store
        .read_sync(move |r| r.mailbox(user, "INBOX"))
        .unwrap()
        .unwrap()
        .id
}

/// Expunge `uids` in one store transaction (as another client would).
fn expunge(s: &TestServer, mb: mailstore::MailboxId, uids: Vec<u32>) {
    s.store
        .write_sync(move |tx| {
            tx.store_flags(mb, &uids, FlagOp::Add, &Flags::system(Flags::DELETED), None)?;
            tx.expunge(mb, Some(&uids))
        })
        .unwrap();
}

/// `* OK [NAME n]` from SELECT's answers.
fn code(lines: &[String], name: &str) -> u64 {
    let pre = format!("* OK [{name} ");
    let l = lines
        .iter()
        .find(|l| l.starts_with(&pre))
        .unwrap_or_else(|| panic!("no {name} in {lines:?}"));
    l[pre.len()..].split(']').next().unwrap().parse().unwrap()
}

fn bytes(lines: &[String]) -> usize {
    lines.iter().map(|l| l.len() + 2).sum()
}

#[test]
fn resync_of_100k_messages_after_10_changes_sends_kilobytes() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    fill(&s, bob, 100_000);
    let mb = inbox(&s, bob);
    let mut c = s.login("bob@localhost");
    c.ok("ENABLE QRESYNC");
    let first = c.ok("SELECT INBOX");
    let (uv, ms) = (code(&first, "UIDVALIDITY"), code(&first, "HIGHESTMODSEQ"));
    c.ok("LOGOUT");
    // Ten changes while the client is away: five flag changes, five
    // expunges, spread over the mailbox.
    for k in 0..5u32 {
        let uid = 1 + k * 20_000;
        s.store
            .write_sync(move |tx| {
                tx.store_flags(
                    mb,
                    &[uid],
                    FlagOp::Add,
                    &Flags::system(Flags::FLAGGED),
                    None,
                )
            })
            .unwrap();
        expunge(&s, mb, vec![uid + 7]);
    }
    let mut c = s.login("bob@localhost");
    c.ok("ENABLE QRESYNC");
    let r = c.ok(&format!("SELECT INBOX (QRESYNC ({uv} {ms}))"));
    let resync = bytes(&r);
    assert!(r.contains(&"* 99995 EXISTS".to_owned()), "{r:?}");
    assert_eq!(
        grep(&r, "* VANISHED (EARLIER) "),
        ["* VANISHED (EARLIER) 8,20008,40008,60008,80008"]
    );
    let fetches = grep(&r, "* ");
    let fetches: Vec<_> = fetches.iter().filter(|l| l.contains(" FETCH (")).collect();
    assert_eq!(fetches.len(), 5, "{r:?}");
    assert!(fetches
        .iter()
        .all(|l| l.contains("FLAGS (\\Flagged") && l.contains("MODSEQ (")));
    // What a client without QRESYNC needs to learn the same: every flag.
    c.ok("UNSELECT");
    let plain = c.ok("SELECT INBOX");
    let all = c.ok("UID FETCH 1:* (FLAGS)");
    let full = bytes(&plain) + bytes(&all);
    println!("QRESYNC SELECT after 10 changes of 100,000: {resync} bytes; SELECT + UID FETCH 1:* (FLAGS): {full} bytes");
    assert!(resync < 4096, "{resync} bytes");
    assert!(full > 1_000_000, "{full} bytes");
}

#[test]
fn forgotten_expunges_are_answered_with_the_superset() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    fill(&s, bob, 20);
    let mb = inbox(&s, bob);
    s.store.write_sync(|tx| tx.set_max_tombstones(4)).unwrap();
    let mut c = s.login("bob@localhost");
    c.ok("ENABLE QRESYNC");
    let first = c.ok("SELECT INBOX");
    let (uv, ms) = (code(&first, "UIDVALIDITY"), code(&first, "HIGHESTMODSEQ"));
    c.ok("UNSELECT");
    // Six expunges of one message each: the oldest tombstones go.
    for uid in [2, 4, 6, 8, 10, 12] {
        expunge(&s, mb, vec![uid]);
    }
    let floor = s.store.read_sync(move |r| r.tombstone_floor(mb)).unwrap();
    assert!(
        floor > ms,
        "the store forgot expunges after the client's modseq"
    );
    // Every known UID not in the mailbox: exactly what was expunged (UIDs
    // never given out, at or above UIDNEXT, are not named).
    let r = c.ok(&format!("SELECT INBOX (QRESYNC ({uv} {ms} 1:4294967295))"));
    assert_eq!(
        grep(&r, "* VANISHED"),
        ["* VANISHED (EARLIER) 2,4,6,8,10,12"],
        "{r:?}"
    );
    // seq-match-data proves the client knows messages 1..=5 are UIDs 1,3,
    // 5,7,9: nothing at or below UID 9 is reported (RFC 7162 §3.2.5.2).
    let r = c.ok(&format!(
        "SELECT INBOX (QRESYNC ({uv} {ms} 1:20 (1:5 1,3,5,7,9)))"
    ));
    assert_eq!(grep(&r, "* VANISHED"), ["* VANISHED (EARLIER) 10,12"]);
    // A pair that does not match stops the proof there.
    let r = c.ok(&format!(
        "SELECT INBOX (QRESYNC ({uv} {ms} 1:20 (1,2,3 1,3,6)))"
    ));
    assert_eq!(grep(&r, "* VANISHED"), ["* VANISHED (EARLIER) 4,6,8,10,12"]);
    // UID FETCH (VANISHED) below the floor: the same superset.
    let r = c.ok(&format!(
        "UID FETCH 5:9 (FLAGS) (CHANGEDSINCE {ms} VANISHED)"
    ));
    assert_eq!(grep(&r, "* VANISHED"), ["* VANISHED (EARLIER) 6,8"]);
}

#[test]
fn a_view_older_than_the_remembered_expunges_still_learns_them() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    fill(&s, bob, 12);
    let mb = inbox(&s, bob);
    s.store.write_sync(|tx| tx.set_max_tombstones(2)).unwrap();
    let mut plain = s.login("bob@localhost");
    plain.ok("SELECT INBOX");
    let mut q = s.login("bob@localhost");
    q.ok("ENABLE QRESYNC");
    q.ok("SELECT INBOX");
    // Behind both sessions' backs (no command runs meanwhile): five
    // expunges, more than the store remembers.
    for uid in [1, 3, 5, 7, 9] {
        expunge(&s, mb, vec![uid]);
    }
    let r = plain.ok("NOOP");
    assert_eq!(
        grep(&r, "* ")
            .iter()
            .filter(|l| l.ends_with(" EXPUNGE"))
            .count(),
        5,
        "{r:?}"
    );
    let r = plain.ok("FETCH 1:* (UID)");
    let uids: Vec<&str> = r
        .iter()
        .filter_map(|l| l.split("(UID ").nth(1))
        .map(|t| t.trim_end_matches(')'))
        .collect();
    assert_eq!(uids, ["2", "4", "6", "8", "10", "11", "12"]);
    let r = q.ok("NOOP");
    assert_eq!(grep(&r, "* VANISHED"), ["* VANISHED 1,3,5,7,9"], "{r:?}");
    assert!(grep(&r, "* ").iter().all(|l| !l.ends_with("EXPUNGE")));
}

#[test]
fn held_back_expunges_lower_the_reported_highestmodseq() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    fill(&s, bob, 3);
    let mut a = s.login("bob@localhost");
    a.ok("ENABLE QRESYNC");
    let sel = a.ok("SELECT INBOX");
    let before = code(&sel, "HIGHESTMODSEQ");
    let mut b = s.login("bob@localhost");
    b.ok("SELECT INBOX");
    b.ok("STORE 1 +FLAGS (\\Deleted)");
    b.ok("EXPUNGE");
    b.ok("STORE 2 +FLAGS (\\Flagged)");
    // A FETCH may not announce the expunge (RFC 3501 §7.4.1) but shows a
    // MODSEQ newer than it: the client must also hear a HIGHESTMODSEQ
    // below the expunge's, or a reconnect from the newest MODSEQ would
    // miss it (RFC 7162 §3.2).
    let r = a.ok("FETCH 2 (FLAGS MODSEQ)");
    assert!(
        grep(&r, "* ")
            .iter()
            .all(|l| !l.contains("VANISHED") && !l.contains("EXPUNGE")),
        "{r:?}"
    );
    let shown: u64 = r
        .iter()
        .filter_map(|l| l.split("MODSEQ (").nth(1))
        .map(|t| t.split(')').next().unwrap().parse::<u64>().unwrap())
        .max()
        .unwrap();
    let lowered = code(&r, "HIGHESTMODSEQ");
    assert!(lowered < shown && lowered >= before, "{r:?}");
    let r = a.ok("NOOP");
    assert_eq!(grep(&r, "* VANISHED"), ["* VANISHED 1"]);
    assert!(
        grep(&r, "* OK [HIGHESTMODSEQ").is_empty(),
        "nothing held: {r:?}"
    );
}

#[test]
fn vanished_lines_stay_bounded() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    fill(&s, bob, 2400);
    let mb = inbox(&s, bob);
    let mut c = s.login("bob@localhost");
    c.ok("ENABLE QRESYNC");
    c.ok("SELECT INBOX");
    // 1,200 scattered expunges: 1,200 ranges, more than one line holds.
    expunge(&s, mb, (1..=2400).step_by(2).collect());
    let r = c.ok("NOOP");
    let lines = grep(&r, "* VANISHED ");
    assert_eq!(lines.len(), 3, "500 + 500 + 200 ranges");
    assert!(lines.iter().all(|l| l.len() < 12_000));
    let n: usize = lines
        .iter()
        .map(|l| l["* VANISHED ".len()..].split(',').count())
        .sum();
    assert_eq!(n, 1200);
    let r = c.ok("FETCH 1:* (UID)");
    assert_eq!(r.len(), 1201);
}

#[test]
fn resync_from_modseq_0_streams_every_message_then_the_tagged_ok() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    fill(&s, bob, 3000);
    let mut c = s.login("bob@localhost");
    c.ok("ENABLE QRESYNC");
    let first = c.ok("EXAMINE INBOX");
    let uv = code(&first, "UIDVALIDITY");
    c.ok("UNSELECT");
    // Everything changed since 0: one FETCH per message, in order, in
    // bounded batches, and the tagged OK last with EXAMINE's code. Mail
    // arriving meanwhile is not reported inside the EXAMINE (clients count
    // its EXISTS), only by the next command.
    let store = s.store.clone();
    let arrivals = std::thread::spawn(move || {
        for i in 0..100 {
            let msg = mailstore::NewMessage {
                raw: format!("Subject: late{i}\r\n\r\nx\r\n").into_bytes(),
                internal_date: 1_700_000_000,
            };
            store
                .write_sync(move |tx| tx.deliver(&msg, &[bob]))
                .unwrap();
        }
    });
    let r = c.ok(&format!("EXAMINE INBOX (QRESYNC ({uv} 0))"));
    arrivals.join().unwrap();
    let exists = grep(&r, "* ");
    let exists: Vec<_> = exists.iter().filter(|l| l.ends_with(" EXISTS")).collect();
    assert_eq!(exists.len(), 1, "{exists:?}");
    // Arrivals that won the race to the EXAMINE's snapshot are part of it
    // (its EXISTS says how many); none is reported inside it otherwise.
    let n: usize = exists[0]
        .trim_start_matches("* ")
        .trim_end_matches(" EXISTS")
        .parse()
        .unwrap();
    assert!((3000..=3100).contains(&n), "{n}");
    let fetches: Vec<&String> = r.iter().filter(|l| l.contains(" FETCH (UID ")).collect();
    assert_eq!(fetches.len(), n);
    let last = fetches[n - 1];
    assert!(
        last.starts_with(&format!("* {n} FETCH (UID {n} FLAGS (")) && last.contains(") MODSEQ ("),
        "{last}"
    );
    assert!(
        r.last()
            .unwrap()
            .contains("OK [READ-ONLY] EXAMINE completed"),
        "{:?}",
        r.last()
    );
    assert!(grep(&r, "* VANISHED").is_empty());
    // The session is selected and usable afterwards; the next command
    // reports the arrivals.
    let mut r = c.ok("FETCH 3000 (UID)");
    assert_eq!(r[0], "* 3000 FETCH (UID 3000)");
    r.extend(c.ok("NOOP"));
    if n < 3100 {
        assert!(r.contains(&"* 3100 EXISTS".to_owned()), "{r:?}");
    }
}
