//! The listing cache: the first `mua list` fetches the mailbox whole and
//! caches it; later ones select with QRESYNC (RFC 7162 §3.2.5) and receive
//! only what changed — flag changes, expunges (VANISHED) and new messages —
//! and print exactly what a listing without the cache prints. Octets
//! counted by `--stats`.

use super::util::Servers;

fn send(s: &Servers, subject: &str) {
    s.ok(
        "alice@localhost",
        &[
            "send",
            "--to",
            "bob@localhost",
            "--subject",
            subject,
            "--body",
            "some text",
        ],
        None,
    );
}

/// (stdout, stats line) of `mua list` for bob, with or without the cache.
fn list(s: &Servers, cache: bool) -> (String, String) {
    let mut args = vec!["list", "--stats"];
    if !cache {
        args.insert(0, "--no-cache");
    }
    let out = s.ok("bob@localhost", &args, None);
    (out.stdout, out.stderr.trim().to_string())
}

fn octets(stats: &str) -> u64 {
    stats
        .strip_prefix("mua: ")
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no octets in {stats:?}"))
}

#[test]
fn listings_resynchronise_with_qresync_and_match_uncached_ones() {
    let s = Servers::start();
    for i in 0..40 {
        send(
            &s,
            &format!("message number {i} with a longer subject line to fetch"),
        );
    }
    let (first, stats) = list(&s, true);
    assert!(stats.contains("for 40 messages (fetched whole)"), "{stats}");
    let whole = octets(&stats);

    // Nothing changed: the cache answers; the server sends almost nothing.
    let (again, stats) = list(&s, true);
    assert_eq!(again, first);
    assert!(
        stats.contains("cache resynchronised with QRESYNC: 0 flag changes, 0 expunged, 0 new"),
        "{stats}"
    );
    let quiet = octets(&stats);
    assert!(
        quiet * 10 < whole,
        "{quiet} octets vs {whole} for the whole listing"
    );

    // Changes from another client: two flagged, one read, two deleted, one
    // new. The cached listing follows, and equals a listing without cache.
    let newest = s.newest_uid("bob@localhost", "INBOX");
    let (a, b, c) = (
        (newest - 1).to_string(),
        (newest - 2).to_string(),
        (newest - 3).to_string(),
    );
    s.ok("bob@localhost", &["flag", &a, &b, "--flagged"], None);
    s.ok("bob@localhost", &["read", &c], None);
    s.ok("bob@localhost", &["delete", "1", "2"], None);
    send(&s, "a late arrival");
    let (cached, stats) = list(&s, true);
    let (fresh, _) = list(&s, false);
    assert_eq!(
        cached, fresh,
        "cached listing differs:\n{cached}\nvs\n{fresh}"
    );
    assert!(cached.contains("a late arrival"));
    assert_eq!(cached.lines().count(), 39);
    assert!(
        stats.contains("cache resynchronised with QRESYNC: 3 flag changes, 2 expunged, 1 new"),
        "{stats}"
    );
    assert!(octets(&stats) * 4 < whole, "{stats} vs {whole}");

    // --unread and --limit work on the cached listing as without it.
    let unread = s
        .ok("bob@localhost", &["list", "--unread", "--limit", "5"], None)
        .stdout;
    let unread_fresh = s
        .ok(
            "bob@localhost",
            &["--no-cache", "list", "--unread", "--limit", "5"],
            None,
        )
        .stdout;
    assert_eq!(unread, unread_fresh);
    assert_eq!(unread.lines().count(), 5);

    // A damaged cache file is not trusted: fetched whole again.
    let cache_dir = s.dir.path().join(".cache/mua");
    let file = std::fs::read_dir(&cache_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("INBOX.json");
    std::fs::write(&file, b"{not json").unwrap();
    let (after, stats) = list(&s, true);
    assert_eq!(after, fresh);
    assert!(stats.contains("(fetched whole)"), "{stats}");
}
