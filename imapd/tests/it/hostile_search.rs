//! SEARCH under hostile criteria (issue 12 item 6), over a socket: a
//! thousand keys, flat or as OR chains, are answered correctly (they were
//! `NO [SERVERBUG]`: "Expression tree is too large" from SQLite); nesting
//! deeper than `limits::MAX_SEARCH_DEPTH` and more than
//! `limits::MAX_SEARCH_KEYS` keys are `NO [LIMIT]` (RFC 5530 §3) at once,
//! without exhausting the stack; and other sessions are served meanwhile.

use crate::util::*;
use imapd::limits::{MAX_SEARCH_DEPTH, MAX_SEARCH_KEYS, MAX_SEARCH_TEXT_KEYS};
use std::time::{Duration, Instant};

/// Generous for a loaded 2-core machine and a debug build.
const QUICK: Duration = Duration::from_secs(5);

/// A server where bob's INBOX holds `n` messages with subjects m0, m1, …
/// (UID i + 1 has subject m{i}).
fn server(n: usize) -> TestServer {
    let s = TestServer::start();
    let u = s.add_user("bob@localhost");
    s.store
        .write_sync(move |tx| {
            for i in 0..n {
                let msg = mailstore::NewMessage {
                    raw: simple(&format!("m{i}"), &format!("body {i}")),
                    internal_date: 1_700_000_000,
                };
                tx.deliver(&msg, &[u])?;
            }
            Ok(())
        })
        .unwrap();
    s
}

fn selected(s: &TestServer) -> Client {
    let mut c = s.login("bob@localhost");
    c.ok("SELECT INBOX");
    c
}

/// The numbers of the `* SEARCH` line.
fn found(r: &[String]) -> Vec<u32> {
    let line = grep(r, "* SEARCH");
    assert_eq!(line.len(), 1, "{r:?}");
    line[0]
        .split(' ')
        .skip(2)
        .map(|n| n.parse().unwrap())
        .collect()
}

/// UIDs of the messages whose subject contains `m{d}` among m0..m{n-1}.
fn subject_has(d: usize, n: usize) -> Vec<u32> {
    (0..n)
        .filter(|i| format!("m{i}").contains(&format!("m{d}")))
        .map(|i| i as u32 + 1)
        .collect()
}

/// Run `cmd` (raw bytes, literals included) tagged `tag`.
fn raw(c: &mut Client, tag: &str, cmd: &[u8]) -> Vec<String> {
    let mut line = format!("{tag} ").into_bytes();
    line.extend_from_slice(cmd);
    line.extend_from_slice(b"\r\n");
    c.send(&line);
    c.until(tag)
}

/// `OR k0 OR k1 … OR k{n-2} k{n-1}` (right-nested, `n` ≥ 2). Keep lines
/// under the 64 KiB line limit: long chains put their strings in literals.
fn or_chain(keys: &[String]) -> String {
    let mut s = String::new();
    for k in &keys[..keys.len() - 1] {
        s.push_str("OR ");
        s.push_str(k);
        s.push(' ');
    }
    s.push_str(&keys[keys.len() - 1]);
    s
}

#[test]
fn a_thousand_keys_are_answered() {
    let s = server(30);
    let mut c = selected(&s);
    let t = Instant::now();
    // 1,000 x `OR SUBJECT a SUBJECT b`, flat (2,000 keys): the case.
    let flat: String = (0..1000)
        .map(|i| format!(" OR SUBJECT zz{i} SUBJECT m1"))
        .collect();
    let r = c.ok(&format!("UID SEARCH{flat}"));
    assert_eq!(found(&r), subject_has(1, 30));
    // A right-nested chain of 1,000 ORs: one level, however long.
    let mut keys: Vec<String> = (0..1000).map(|i| format!("SUBJECT k{i}")).collect();
    keys.push("SUBJECT m2".into());
    let r = c.ok(&format!("UID SEARCH {}", or_chain(&keys)));
    assert_eq!(found(&r), subject_has(2, 30));
    // A left-nested chain (`OR OR OR a b c d`), HEADER keys, under NOT.
    let mut left = "OR ".repeat(999);
    left.push_str("HEADER Subject m3");
    for i in 0..999 {
        left.push_str(&format!(" HEADER X-None v{i}"));
    }
    let r = c.ok(&format!("UID SEARCH NOT {left}"));
    let not_m3: Vec<u32> = (1..=30)
        .filter(|u| !subject_has(3, 30).contains(u))
        .collect();
    assert_eq!(found(&r), not_m3);
    // 1,000 UID sets and 1,000 message-number sets, ANDed.
    let uids: String = (0..1000)
        .map(|i| format!(" UID {}:{},40", i % 5 + 1, 30 - i % 5))
        .collect();
    let r = c.ok(&format!("UID SEARCH{uids}"));
    assert_eq!(found(&r), (5..=26).collect::<Vec<u32>>());
    let seqs: String = (0..1000).map(|i| format!(" {}", i % 7 + 1)).collect();
    let r = c.ok(&format!("SEARCH OR ({}) 9", seqs.trim_start()));
    assert_eq!(found(&r), [9]);
    eprintln!("five searches of 1,000-2,000 keys: {:?}", t.elapsed());
}

#[test]
fn up_to_max_search_keys_are_answered_and_more_is_limit() {
    let s = server(12);
    let mut c = selected(&s);
    let t = Instant::now();
    let r = c.ok(&format!("SEARCH{}", " SEEN".repeat(MAX_SEARCH_KEYS)));
    assert!(found(&r).is_empty());
    let r = c.ok(&format!("SEARCH{}", " 1:*".repeat(MAX_SEARCH_KEYS)));
    assert_eq!(found(&r).len(), 12);
    eprintln!("{MAX_SEARCH_KEYS} flat keys: {:?}", t.elapsed());
    let t = Instant::now();
    let mut keys: Vec<String> = (0..MAX_SEARCH_KEYS - 1)
        .map(|i| format!("SUBJECT {{{}+}}\r\nk{i}", format!("k{i}").len()))
        .collect();
    keys.push("SUBJECT m11".into());
    let r = raw(
        &mut c,
        "or",
        format!("UID SEARCH {}", or_chain(&keys)).as_bytes(),
    );
    assert_eq!(found(&r), [12], "{:?}", r.last());
    eprintln!("{MAX_SEARCH_KEYS} ORed SUBJECT keys: {:?}", t.elapsed());
    let r = c.cmd(&format!("SEARCH{}", " SEEN".repeat(MAX_SEARCH_KEYS + 1)));
    let last = r.last().unwrap();
    assert!(last.contains(" NO [LIMIT] "), "{last}");
    assert!(last.contains(&MAX_SEARCH_KEYS.to_string()), "{last}");
    // TEXT and BODY keys have a bound of their own.
    let text = |n: usize| -> String {
        let keys: Vec<String> = (0..n)
            .map(|i| format!("{} k{i}", if i % 2 == 0 { "TEXT" } else { "BODY" }))
            .collect();
        format!("SEARCH {}", or_chain(&keys))
    };
    let r = c.ok(&text(MAX_SEARCH_TEXT_KEYS));
    assert!(found(&r).is_empty());
    let r = c.cmd(&text(MAX_SEARCH_TEXT_KEYS + 1));
    let last = r.last().unwrap();
    assert!(
        last.contains(" NO [LIMIT] Too many TEXT and BODY keys"),
        "{last}"
    );
    // More keys than a line holds, in literals: refused by count, the
    // session in step.
    let mut cmd = b"big SEARCH".to_vec();
    for _ in 0..=MAX_SEARCH_KEYS {
        cmd.extend_from_slice(b" SUBJECT {1+}\r\nx");
    }
    cmd.extend_from_slice(b"\r\n");
    c.send(&cmd);
    let r = c.until("big");
    assert!(r.last().unwrap().starts_with("big NO [LIMIT]"), "{r:?}");
    c.ok("NOOP");
}

#[test]
fn deep_nesting_is_limit_not_a_crash() {
    let s = server(3);
    let mut c = selected(&s);
    let d = MAX_SEARCH_DEPTH;
    // At the bound: answered.
    let r = c.ok(&format!("SEARCH {}ALL", "NOT ".repeat(d)));
    assert_eq!(found(&r), [1, 2, 3]);
    let r = c.ok(&format!("SEARCH {}ALL{}", "(".repeat(d), ")".repeat(d)));
    assert_eq!(found(&r), [1, 2, 3]);
    let r = c.ok(&format!(
        "SEARCH {}2{}",
        "NOT (".repeat(d / 2),
        ")".repeat(d / 2)
    ));
    assert_eq!(found(&r), [2]);
    // One deeper, and the hostile sizes: NO [LIMIT], quickly.
    for (what, cmd) in [
        ("33 NOTs", format!("SEARCH {}ALL", "NOT ".repeat(d + 1))),
        (
            "10,000 NOTs",
            format!("SEARCH {}ALL", "NOT ".repeat(10_000)),
        ),
        (
            "10,000 parentheses",
            format!("SEARCH {}ALL{}", "(".repeat(10_000), ")".repeat(10_000)),
        ),
        (
            "10,000 unclosed parentheses",
            format!("SEARCH {}ALL", "(".repeat(10_000)),
        ),
        (
            "NOT ( x 10,000",
            format!("SEARCH {}ALL{}", "NOT (".repeat(10_000), ")".repeat(10_000)),
        ),
        (
            "OR chains nested in operands x 5,000",
            format!("SEARCH {}ALL", "OR ALL NOT ".repeat(5_000)),
        ),
    ] {
        let t = Instant::now();
        let r = c.cmd(&cmd);
        let last = r.last().unwrap();
        assert!(last.contains(" NO [LIMIT] "), "{what}: {last}");
        assert!(last.contains("nested too deeply"), "{what}: {last}");
        assert!(t.elapsed() < QUICK, "{what}: {:?}", t.elapsed());
    }
    // OR chains do not count as nesting: 10,000 ORs deep is one level.
    let r = c.ok(&format!("SEARCH {}3", "OR 1 ".repeat(9_000)));
    assert_eq!(found(&r), [1, 3]);
    let r = c.ok(&format!(
        "SEARCH {}1{}",
        "OR ".repeat(9_000),
        " 2".repeat(9_000)
    ));
    assert_eq!(found(&r), [1, 2]);
    c.ok("NOOP");
}

#[test]
fn other_sessions_are_served_during_large_searches() {
    let s = server(200);
    let mut a = selected(&s);
    let mut b = selected(&s);
    // a pipelines four searches of 10,000 keys each, the most TEXT keys
    // among them.
    let mut keys: Vec<String> = (0..MAX_SEARCH_KEYS - 1)
        .map(|i| {
            let verb = if i < MAX_SEARCH_TEXT_KEYS {
                "TEXT"
            } else {
                "FROM"
            };
            format!("{verb} {{{}+}}\r\nk{i}x", format!("k{i}x").len())
        })
        .collect();
    keys.push("SUBJECT m199".into());
    let chain = or_chain(&keys);
    let t = Instant::now();
    for n in 0..4 {
        a.send(format!("s{n} UID SEARCH {chain}\r\n").as_bytes());
    }
    // Meanwhile b is served.
    let mut worst = Duration::ZERO;
    for cmd in [
        "NOOP",
        "FETCH 1 FLAGS",
        "SEARCH SUBJECT m19",
        "LIST \"\" *",
        "STATUS INBOX (MESSAGES)",
    ] {
        let t = Instant::now();
        b.ok(cmd);
        worst = worst.max(t.elapsed());
    }
    for n in 0..4 {
        let r = a.until(&format!("s{n}"));
        assert_eq!(found(&r), [200], "{r:?}");
    }
    eprintln!(
        "4 x {MAX_SEARCH_KEYS}-key searches over 200 messages: {:?}; other session's worst command: {worst:?}",
        t.elapsed()
    );
    assert!(worst < QUICK, "{worst:?}");
}
