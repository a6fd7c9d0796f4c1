//! LIST and LSUB under hostile patterns (issue 12 item 3), over a socket:
//! a pattern or reference over `limits::MAX_LIST_PATTERN` octets is
//! `NO [LIMIT]` (RFC 5530 §3) at once, even as a 100 KB literal against
//! 1,000 mailboxes (which held the event loop 24 s before), while another
//! connection is served; the longest accepted patterns, in their worst
//! shapes, are answered quickly and correctly.

use crate::util::*;
use imapd::limits::MAX_LIST_PATTERN;
use std::time::{Duration, Instant};

/// Generous for a loaded 2-core machine and a debug build; the stall this
/// guards against took 24 s.
const QUICK: Duration = Duration::from_secs(3);

/// A server whose user bob has `n` mailboxes named by `name`.
fn with_mailboxes(n: usize, name: impl Fn(usize) -> String + Send + 'static) -> TestServer {
    let s = TestServer::with(|c| c.max_mailboxes = n + 10);
    let u = s.add_user("bob@localhost");
    s.store
        .write_sync(move |tx| {
            for i in 0..n {
                tx.create_mailbox(u, &name(i), None)?;
            }
            Ok(())
        })
        .unwrap();
    s
}

/// The pattern shape: `*a%` repeated.
fn hostile(len: usize) -> String {
    let mut p = "*a%".repeat(len / 3 + 1);
    p.truncate(len);
    p
}

#[test]
fn long_pattern_is_refused_at_once_while_others_are_served() {
    let s = with_mailboxes(1000, |i| format!("box{i:04}"));
    let mut a = s.login("bob@localhost");
    let mut b = s.login("bob@localhost");
    let p = hostile(100_000);
    let t = Instant::now();
    a.send(format!("l1 LIST \"\" {{{}+}}\r\n{p}\r\n", p.len()).as_bytes());
    // Meanwhile another connection is served.
    let r = b.ok("LIST \"\" box000%");
    let other = t.elapsed();
    assert_eq!(grep(&r, "* LIST").len(), 10, "{r:?}");
    let r = a.until("l1");
    let took = t.elapsed();
    eprintln!("100 KB pattern x 1,000 mailboxes: answered in {took:?}; other session in {other:?}");
    let last = r.last().unwrap();
    assert!(last.starts_with("l1 NO [LIMIT]"), "{last}");
    assert!(last.contains(&MAX_LIST_PATTERN.to_string()), "{last}");
    assert_eq!(r.len(), 1, "nothing listed: {r:?}");
    assert!(took < QUICK, "{took:?}");
    assert!(other < QUICK, "{other:?}");
    // The session goes on.
    a.ok("NOOP");
    assert_eq!(grep(&a.ok("LIST \"\" box0999"), "* LIST").len(), 1);
}

#[test]
fn the_bound_applies_to_reference_and_pattern_of_list_and_lsub() {
    let s = with_mailboxes(3, |i| format!("box{i}"));
    let mut c = s.login("bob@localhost");
    c.ok("SUBSCRIBE box1");
    let at_bound = format!("{}box1", "*".repeat(MAX_LIST_PATTERN - 4));
    let over = format!("{}box1", "*".repeat(MAX_LIST_PATTERN - 3));
    // Exactly at the bound: served (and the wildcard run matches).
    for verb in ["LIST", "LSUB"] {
        let r = c.ok(&format!("{verb} \"\" \"{at_bound}\""));
        assert_eq!(grep(&r, &format!("* {verb}")).len(), 1, "{r:?}");
        let r = c.cmd(&format!("{verb} \"\" \"{over}\""));
        assert!(r.last().unwrap().contains(" NO [LIMIT] "), "{r:?}");
        let long_ref = "x".repeat(MAX_LIST_PATTERN + 1);
        let r = c.cmd(&format!("{verb} {long_ref} *"));
        assert!(r.last().unwrap().contains(" NO [LIMIT] "), "{r:?}");
        let r = c.ok(&format!("{verb} {} %", "x".repeat(MAX_LIST_PATTERN)));
        assert!(grep(&r, &format!("* {verb}")).is_empty(), "{r:?}");
    }
    // Counted in octets of UTF-8: 512 "é" (1,024 octets) pass, 513 do not;
    // as modified UTF-7 on the wire they are 5 octets per 3 ("&AOkA6QDp-").
    let utf7 = |n: usize| imapd::utf7::encode(&"é".repeat(n));
    c.ok(&format!("LIST \"\" \"{}\"", utf7(512)));
    let r = c.cmd(&format!("LIST \"\" \"{}\"", utf7(513)));
    assert!(r.last().unwrap().contains(" NO [LIMIT] "), "{r:?}");
    // A megabyte literal: refused without being decoded; still in step.
    let big = "&AOk-".repeat(200_000);
    c.send(format!("m LIST \"\" {{{}+}}\r\n{big}\r\n", big.len()).as_bytes());
    let r = c.until("m");
    assert!(r.last().unwrap().starts_with("m NO [LIMIT]"), "{r:?}");
    c.ok("NOOP");
}

#[test]
fn worst_patterns_within_the_bound_are_quick_and_right() {
    // 1,000 mailboxes with long names (a/aaa…, 200 octets): every name is
    // long enough that the matcher must read it to the end.
    let s = with_mailboxes(1000, |i| {
        format!("{}/{}{i:04}", "a".repeat(4), "a".repeat(190))
    });
    let mut c = s.login("bob@localhost");
    let patterns = [
        // Wildcards between up to 190 literals, never matching (`%` does
        // not cross the `/`).
        "%a".repeat(MAX_LIST_PATTERN / 2),
        format!("{}b", "*a%".repeat(120)),
        // Every mailbox (1,000, INBOX and 4 special-use ones) and, as the
        // pattern ends in `%`, their missing superior `aaaa`.
        "*%".repeat(MAX_LIST_PATTERN / 2),
        // Matching every mailbox under aaaa.
        format!("{}*", "a*".repeat(150)),
        // A long head before one exact name.
        format!("{}INBOX", "%*".repeat(500)),
    ];
    let mut worst = Duration::ZERO;
    let mut hits = Vec::new();
    for p in &patterns {
        let t = Instant::now();
        let r = c.ok(&format!("LIST \"\" \"{p}\""));
        worst = worst.max(t.elapsed());
        hits.push(grep(&r, "* LIST").len());
    }
    eprintln!("worst 1 KiB pattern x 1,000 long names: {worst:?}; hits {hits:?}");
    assert_eq!(hits, [0, 0, 1006, 1000, 1]);
    assert!(worst < QUICK, "{worst:?}");
}
