//! Two sessions on one mailbox, now that sessions share their sequence
//! maps and cache no flags (RFC 3501 §5.2, §7.4.1; RFC 7162 §3.2): a flag
//! change is reported exactly once to each session, never repeated to the
//! session that made or fetched it; `\Recent` belongs to one session
//! (§2.3.2) across several syncs; expunges are held back during FETCH,
//! STORE and SEARCH even when new mail arrives in the same sync;
//! unsolicited FETCH carries MODSEQ under CONDSTORE.

use crate::util::*;

fn fetches(r: &[String]) -> Vec<&String> {
    r.iter()
        .filter(|l| l.starts_with("* ") && l.contains(" FETCH ("))
        .collect()
}

fn modseq_of(line: &str) -> u64 {
    line.split("MODSEQ (")
        .nth(1)
        .and_then(|t| t.split(')').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no MODSEQ in {line:?}"))
}

fn two_sessions(n: usize) -> (TestServer, UserId, Client, Client) {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    for i in 0..n {
        s.deliver(bob, &simple(&format!("m{i}"), "x"));
    }
    let mut a = s.login("bob@localhost");
    let mut b = s.login("bob@localhost");
    a.ok("SELECT INBOX");
    b.ok("SELECT INBOX");
    (s, bob, a, b)
}

use mailstore::UserId;

#[test]
fn store_is_reported_once_to_the_other_session_and_not_back() {
    let (_s, _bob, mut a, mut b) = two_sessions(3);
    let r = b.ok("STORE 1 +FLAGS (\\Flagged)");
    assert_eq!(fetches(&r), ["* 1 FETCH (FLAGS (\\Flagged))"], "{r:?}");
    // The storing session already told its client: no repeat.
    assert!(fetches(&b.ok("NOOP")).is_empty());
    let r = a.ok("NOOP");
    assert_eq!(
        fetches(&r),
        ["* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))"],
        "{r:?}"
    );
    assert!(fetches(&a.ok("NOOP")).is_empty());

    // .SILENT: nothing to the storing session, now or later; one FETCH
    // to the other.
    let r = b.ok("STORE 2 +FLAGS.SILENT (\\Seen)");
    assert!(fetches(&r).is_empty(), "{r:?}");
    assert!(fetches(&b.ok("NOOP")).is_empty());
    let r = a.ok("NOOP");
    assert_eq!(
        fetches(&r),
        ["* 2 FETCH (UID 2 FLAGS (\\Seen \\Recent))"],
        "{r:?}"
    );
    assert!(fetches(&a.ok("NOOP")).is_empty());
}

#[test]
fn a_change_the_session_fetched_itself_is_not_repeated() {
    let (_s, _bob, mut a, mut b) = two_sessions(2);
    b.ok("STORE 2 +FLAGS.SILENT (\\Answered)");
    // A fetches the flags before hearing of the change: the solicited
    // FETCH shows it, and no unsolicited one follows, then or later.
    let r = a.ok("FETCH 2 FLAGS");
    assert_eq!(
        fetches(&r),
        ["* 2 FETCH (FLAGS (\\Answered \\Recent))"],
        "{r:?}"
    );
    assert!(fetches(&a.ok("NOOP")).is_empty());
    // A later change to the same message is reported again.
    b.ok("STORE 2 -FLAGS.SILENT (\\Answered)");
    let r = a.ok("NOOP");
    assert_eq!(fetches(&r), ["* 2 FETCH (UID 2 FLAGS (\\Recent))"], "{r:?}");
}

#[test]
fn store_replies_carry_current_flags_of_unchanged_messages() {
    // 70 messages: more than the few looked up one by one.
    for n in [3, 70] {
        let (_s, _bob, mut a, mut b) = two_sessions(n);
        b.ok(&format!("STORE 1:{n} +FLAGS.SILENT (\\Seen)"));
        // Changes nothing: still one FETCH per message, with the flags
        // the other session set (read from the store, not a cache).
        let r = a.ok(&format!("STORE 1:{n} +FLAGS (\\Seen)"));
        let f = fetches(&r);
        assert_eq!(f.len(), n, "{r:?}");
        assert_eq!(f[0], "* 1 FETCH (FLAGS (\\Seen \\Recent))");
        assert_eq!(f[n - 1], &format!("* {n} FETCH (FLAGS (\\Seen \\Recent))"));
        // Nothing more to report afterwards.
        assert!(fetches(&a.ok("NOOP")).is_empty());
    }
}

/// A session's own STORE moves its view past the STORE's modseq only when
/// nothing else changed before it (issue 21: the sync after a STORE of a
/// whole mailbox then reads nothing back): another session's changes just
/// before and just after it are still reported, once, with their MODSEQ,
/// and the STORE's own never again.
#[test]
fn own_store_between_other_sessions_changes_reports_each_once() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    for i in 0..4 {
        s.deliver(bob, &simple(&format!("m{i}"), "x"));
    }
    let mut a = s.login("bob@localhost");
    let mut b = s.login("bob@localhost");
    a.ok("SELECT INBOX (CONDSTORE)");
    b.ok("SELECT INBOX");
    // B's change before A's STORE, to a message the STORE does not
    // change: A's view must not skip past it.
    b.ok("STORE 4 +FLAGS.SILENT (\\Seen)");
    let r = a.ok("STORE 1:3 +FLAGS (\\Flagged)");
    let f = fetches(&r);
    assert_eq!(f.len(), 4, "{r:?}");
    let m = modseq_of(f[0]);
    assert!(f[..3].iter().all(|l| modseq_of(l) == m), "{r:?}");
    assert!(
        f[3].starts_with("* 4 FETCH (UID 4 FLAGS (\\Seen \\Recent) MODSEQ ("),
        "{r:?}"
    );
    assert!(modseq_of(f[3]) < m);
    assert!(fetches(&a.ok("NOOP")).is_empty());
    // A change by B after it: reported to A once.
    b.ok("STORE 3 +FLAGS.SILENT (\\Deleted)");
    let r = a.ok("NOOP");
    let f = fetches(&r);
    assert_eq!(f.len(), 1, "{r:?}");
    assert!(
        f[0].starts_with("* 3 FETCH (UID 3 FLAGS (\\Flagged \\Deleted \\Recent) MODSEQ ("),
        "{r:?}"
    );
    assert!(modseq_of(f[0]) > m);
    // A, in step now, stores again: its view moves past its own STORE;
    // B hears of it, and B's next change still reaches A.
    let r = a.ok("STORE 1:* -FLAGS (\\Flagged)");
    assert_eq!(fetches(&r).len(), 4, "{r:?}");
    assert!(fetches(&a.ok("NOOP")).is_empty());
    let r = b.ok("NOOP");
    assert_eq!(fetches(&r).len(), 3, "{r:?}");
    b.ok("STORE 4 +FLAGS.SILENT (\\Answered)");
    let r = a.ok("NOOP");
    let f = fetches(&r);
    assert_eq!(f.len(), 1, "{r:?}");
    assert!(
        f[0].starts_with("* 4 FETCH (UID 4 FLAGS (\\Seen \\Answered \\Recent) MODSEQ ("),
        "{r:?}"
    );
    assert!(fetches(&a.ok("NOOP")).is_empty());
    // The HIGHESTMODSEQ A reports is the mailbox's.
    let r = a.ok("STATUS INBOX (HIGHESTMODSEQ)");
    let r2 = b.ok("STATUS INBOX (HIGHESTMODSEQ)");
    assert_eq!(r[0], r2[0]);
}

#[test]
fn recent_stays_with_the_session_that_saw_each_arrival_first() {
    let (s, bob, mut a, mut b) = two_sessions(1);
    // A got message 1 as recent at SELECT. Then 2 -> A, 3 -> B, 4 -> A.
    s.deliver(bob, &simple("m2", "x"));
    let r = a.ok("NOOP");
    assert!(r.contains(&"* 2 EXISTS".to_owned()) && r.contains(&"* 2 RECENT".to_owned()));
    s.deliver(bob, &simple("m3", "x"));
    let r = b.ok("NOOP");
    assert!(
        r.contains(&"* 3 EXISTS".to_owned()) && r.contains(&"* 1 RECENT".to_owned()),
        "{r:?}"
    );
    s.deliver(bob, &simple("m4", "x"));
    let r = a.ok("NOOP");
    assert!(
        r.contains(&"* 4 EXISTS".to_owned()) && r.contains(&"* 3 RECENT".to_owned()),
        "{r:?}"
    );
    let r = b.ok("NOOP");
    assert!(
        r.contains(&"* 4 EXISTS".to_owned()) && r.contains(&"* 1 RECENT".to_owned()),
        "{r:?}"
    );
    assert_eq!(a.ok("SEARCH RECENT")[0], "* SEARCH 1 2 4");
    assert_eq!(a.ok("SEARCH NOT RECENT")[0], "* SEARCH 3");
    assert_eq!(a.ok("SEARCH NEW")[0], "* SEARCH 1 2 4");
    assert_eq!(b.ok("SEARCH RECENT")[0], "* SEARCH 3");
    assert_eq!(b.ok("UID SEARCH OLD")[0], "* SEARCH 1 2 4");
    let r = a.ok("FETCH 1:4 FLAGS");
    assert_eq!(
        fetches(&r),
        [
            "* 1 FETCH (FLAGS (\\Recent))",
            "* 2 FETCH (FLAGS (\\Recent))",
            "* 3 FETCH (FLAGS ())",
            "* 4 FETCH (FLAGS (\\Recent))",
        ]
    );
    // \Recent survives renumbering: expunge 2 (A's) and check again.
    a.ok("STORE 2 +FLAGS.SILENT (\\Deleted)");
    let r = a.ok("EXPUNGE");
    assert!(r.contains(&"* 2 EXPUNGE".to_owned()), "{r:?}");
    assert_eq!(a.ok("SEARCH RECENT")[0], "* SEARCH 1 3");
    let r = a.ok("STORE 3 +FLAGS (\\Flagged)");
    assert_eq!(fetches(&r), ["* 3 FETCH (FLAGS (\\Flagged \\Recent))"]);
    // B hears of both; 3 is still its only recent message.
    let r = b.ok("NOOP");
    assert!(r.contains(&"* 2 EXPUNGE".to_owned()), "{r:?}");
    // (The FETCH comes first, numbered before the EXPUNGE.)
    assert!(
        r.contains(&"* 4 FETCH (UID 4 FLAGS (\\Flagged))".to_owned()),
        "{r:?}"
    );
    assert_eq!(b.ok("SEARCH RECENT")[0], "* SEARCH 2");
}

#[test]
fn held_back_expunge_and_new_mail_in_one_sync() {
    let (s, bob, mut a, mut b) = two_sessions(3);
    b.ok("STORE 2 +FLAGS.SILENT (\\Deleted)");
    b.ok("EXPUNGE");
    s.deliver(bob, &simple("new", "x"));
    // During FETCH: EXISTS counts the held-back message too; no EXPUNGE.
    let r = a.ok("FETCH 3 UID");
    assert!(r.contains(&"* 3 FETCH (UID 3)".to_owned()), "{r:?}");
    assert!(r.contains(&"* 4 EXISTS".to_owned()), "{r:?}");
    assert!(!r.iter().any(|l| l.contains("EXPUNGE")), "{r:?}");
    let r = a.ok("UID FETCH 4 UID");
    assert_eq!(fetches(&r), ["* 4 FETCH (UID 4)"]);
    let r = a.ok("SEARCH ALL");
    assert!(!r.iter().any(|l| l.contains("EXPUNGE")), "{r:?}");
    // A STORE naming the held-back message changes nothing for it.
    let r = a.ok("STORE 2 +FLAGS (\\Flagged)");
    assert!(fetches(&r).is_empty(), "{r:?}");
    assert!(!r.iter().any(|l| l.contains("EXPUNGE")), "{r:?}");
    // Now it may be announced; the map is renumbered.
    let r = a.ok("NOOP");
    assert!(r.contains(&"* 2 EXPUNGE".to_owned()), "{r:?}");
    assert_eq!(fetches(&a.ok("FETCH 1:3 UID")).len(), 3);
    assert_eq!(a.ok("FETCH 3 UID")[0], "* 3 FETCH (UID 4)");
    // The other session (which expunged) agrees.
    let r = b.ok("NOOP");
    assert!(r.contains(&"* 3 EXISTS".to_owned()), "{r:?}");
    assert_eq!(b.ok("FETCH 3 UID")[0], "* 3 FETCH (UID 4)");
}

#[test]
fn unsolicited_fetch_has_modseq_under_condstore() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    s.deliver(bob, &simple("a", "1"));
    s.deliver(bob, &simple("b", "2"));
    let mut a = s.login("bob@localhost");
    let mut b = s.login("bob@localhost");
    a.ok("SELECT INBOX (CONDSTORE)");
    b.ok("SELECT INBOX");
    let r = b.ok("STORE 2 +FLAGS (\\Flagged)");
    assert_eq!(fetches(&r), ["* 2 FETCH (FLAGS (\\Flagged))"]);
    let r = b.ok("FETCH 2 MODSEQ");
    let m = modseq_of(fetches(&r)[0]);
    let r = a.ok("NOOP");
    assert_eq!(
        fetches(&r),
        [&format!(
            "* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent) MODSEQ ({m}))"
        )],
        "{r:?}"
    );
    assert!(fetches(&a.ok("NOOP")).is_empty());
    // A's own STORE reply carries the new MODSEQ, and is not repeated.
    let r = a.ok("STORE 1 +FLAGS (\\Seen)");
    let f = fetches(&r);
    assert_eq!(f.len(), 1, "{r:?}");
    assert!(f[0].starts_with("* 1 FETCH (FLAGS (\\Seen \\Recent) MODSEQ ("));
    assert!(modseq_of(f[0]) > m);
    assert!(fetches(&a.ok("NOOP")).is_empty());
    // FETCH CHANGEDSINCE asks the store: only message 1 changed after m.
    let r = a.ok(&format!("FETCH 1:2 (FLAGS) (CHANGEDSINCE {m})"));
    let f = fetches(&r);
    assert_eq!(f.len(), 1, "{r:?}");
    assert!(f[0].starts_with("* 1 FETCH (FLAGS (\\Seen \\Recent) MODSEQ ("));
    // SEARCH MODSEQ reports the highest modseq of what it returns.
    let r = a.ok("SEARCH MODSEQ 1");
    assert_eq!(r[0], format!("* SEARCH 1 2 (MODSEQ {})", modseq_of(f[0])));
    let r = a.ok("SEARCH FLAGGED MODSEQ 1");
    assert_eq!(r[0], format!("* SEARCH 2 (MODSEQ {m})"));
}

#[test]
fn body_fetch_sets_seen_once_and_reports_it_once() {
    let (_s, _bob, mut a, mut b) = two_sessions(2);
    let r = a.ok("FETCH 1:2 (BODY[TEXT])");
    let lines: Vec<&String> = r.iter().filter(|l| l.contains("FLAGS")).collect();
    assert_eq!(lines.len(), 2, "{r:?}");
    assert!(lines.iter().all(|l| l.contains("\\Seen")), "{r:?}");
    assert!(fetches(&a.ok("NOOP")).is_empty());
    // Already seen: no FLAGS added this time.
    let r = a.ok("FETCH 1 (BODY[TEXT])");
    assert!(!r.iter().any(|l| l.contains("FLAGS")), "{r:?}");
    // The other session hears of both changes once.
    let r = b.ok("NOOP");
    assert_eq!(fetches(&r).len(), 2, "{r:?}");
    assert!(fetches(&b.ok("NOOP")).is_empty());
}

/// SELECT's answers are remembered per mailbox state (select_cache.rs):
/// selecting again after any change (flags, keywords, arrival, expunge, in
/// this session or another) must answer for the new state.
#[test]
fn select_again_after_each_kind_of_change_answers_for_the_new_state() {
    let (s, bob, mut a, mut b) = two_sessions(3);
    let line = |r: &[String], p: &str| -> String {
        r.iter()
            .find(|l| l.contains(p))
            .cloned()
            .unwrap_or_else(|| panic!("no {p:?} in {r:?}"))
    };
    let r = a.ok("SELECT INBOX");
    assert_eq!(line(&r, "EXISTS"), "* 3 EXISTS");
    assert!(line(&r, "UNSEEN").contains("[UNSEEN 1]"), "{r:?}");
    // The same state: the same answers.
    let again = a.ok("SELECT INBOX");
    assert_eq!(line(&again, "EXISTS"), "* 3 EXISTS");
    assert!(line(&again, "UNSEEN").contains("[UNSEEN 1]"));

    // Flags changed by the other session.
    b.ok("STORE 1 +FLAGS (\\Seen)");
    let r = a.ok("SELECT INBOX");
    assert!(line(&r, "UNSEEN").contains("[UNSEEN 2]"), "{r:?}");
    // A new keyword shows in FLAGS.
    b.ok("STORE 3 +FLAGS (Kumquat)");
    let r = a.ok("SELECT INBOX");
    assert!(line(&r, "* FLAGS").contains("Kumquat"), "{r:?}");
    // An arrival.
    s.deliver(bob, &simple("m3", "x"));
    let r = a.ok("SELECT INBOX");
    assert_eq!(line(&r, "EXISTS"), "* 4 EXISTS");
    // An expunge: the map renumbers.
    b.ok("STORE 2 +FLAGS (\\Deleted)");
    b.ok("EXPUNGE");
    let r = a.ok("SELECT INBOX");
    assert_eq!(line(&r, "EXISTS"), "* 3 EXISTS");
    let r = a.ok("FETCH 1:* (UID)");
    let uids: Vec<&String> = fetches(&r);
    assert_eq!(
        uids,
        [
            "* 1 FETCH (UID 1)",
            "* 2 FETCH (UID 3)",
            "* 3 FETCH (UID 4)"
        ],
        "{r:?}"
    );
    // Everything seen: no UNSEEN code at all.
    b.ok("STORE 1:* +FLAGS (\\Seen)");
    let r = a.ok("SELECT INBOX");
    assert!(!r.iter().any(|l| l.contains("UNSEEN")), "{r:?}");
}

/// A mailbox selected again after changes is brought up to date from the
/// remembered state and the changes since (select_cache.rs `Opened::since`,
/// issue 21): after every step of a mixed run of changes by another
/// session (flags on and off, keywords added and taken off the last
/// message carrying them, arrivals, expunges, several at once), SELECT's
/// EXISTS, UNSEEN, FLAGS and sequence -> UID map must equal what the other
/// session's SEARCH and FETCH read from the store itself.
#[test]
fn select_after_changes_matches_the_store_at_every_step() {
    let (s, bob, mut a, mut b) = two_sessions(30);
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let keywords = ["Kumquat", "$Label1", "Zeta", "alpha"];
    let numbers = |r: &[String]| -> Vec<u64> {
        r.iter()
            .find(|l| l.starts_with("* SEARCH"))
            .map(|l| {
                l.split(' ')
                    .skip(2)
                    .filter_map(|n| n.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    for step in 0..60 {
        b.ok("NOOP");
        let exists = numbers(&b.ok("SEARCH ALL")).len() as u64;
        match next(7) {
            _ if exists == 0 => {
                s.deliver(bob, &simple(&format!("new{step}"), "x"));
            }
            0 => {
                let n = 1 + next(exists);
                b.ok(&format!("STORE {n} +FLAGS.SILENT (\\Seen)"));
            }
            1 => {
                let n = 1 + next(exists);
                b.ok(&format!("STORE 1:{n} -FLAGS.SILENT (\\Seen)"));
            }
            2 => {
                let n = 1 + next(exists);
                let k = keywords[next(keywords.len() as u64) as usize];
                b.ok(&format!("STORE {n} +FLAGS.SILENT ({k})"));
            }
            3 => {
                // Take a keyword off every message: it leaves FLAGS.
                let k = keywords[next(keywords.len() as u64) as usize];
                b.ok(&format!("STORE 1:* -FLAGS.SILENT ({k})"));
            }
            4 => {
                for i in 0..1 + next(3) {
                    s.deliver(bob, &simple(&format!("new{step}.{i}"), "x"));
                }
            }
            _ => {
                let n = 1 + next(exists);
                let m = (n + next(3)).min(exists);
                b.ok(&format!("STORE {n}:{m} +FLAGS.SILENT (\\Deleted)"));
                b.ok("EXPUNGE");
            }
        }
        // What the store holds, through the other session.
        b.ok("NOOP");
        let uids = numbers(&b.ok("UID SEARCH ALL"));
        let unseen = numbers(&b.ok("SEARCH UNSEEN"));
        let mut in_use: Vec<&str> = keywords
            .iter()
            .copied()
            .filter(|k| !numbers(&b.ok(&format!("SEARCH KEYWORD {k}"))).is_empty())
            .collect();
        in_use.sort_by_key(|k| k.to_ascii_lowercase());
        let mut flags = String::from("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft");
        for k in &in_use {
            flags.push(' ');
            flags.push_str(k);
        }
        flags.push(')');

        let r = a.ok("SELECT INBOX");
        let ctx = format!("step {step}: {r:?}");
        assert!(r.contains(&flags), "want {flags}; {ctx}");
        assert!(r.contains(&format!("* {} EXISTS", uids.len())), "{ctx}");
        match unseen.first() {
            Some(n) => assert!(
                r.iter().any(|l| l.contains(&format!("[UNSEEN {n}]"))),
                "want UNSEEN {n}; {ctx}"
            ),
            None => assert!(!r.iter().any(|l| l.contains("[UNSEEN")), "{ctx}"),
        }
        let map: Vec<u64> = if uids.is_empty() {
            Vec::new()
        } else {
            a.ok("FETCH 1:* (UID)")
                .iter()
                .filter_map(|l| l.split("(UID ").nth(1))
                .filter_map(|t| t.trim_end_matches(')').parse().ok())
                .collect()
        };
        assert_eq!(map, uids, "step {step}");
    }
}
