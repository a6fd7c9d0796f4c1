//! The header cache (issue 21: header SEARCH from memory, `search/cache.rs`):
//! the same answers as the scan of `message_headers` after every kind of
//! change (APPEND, COPY, MOVE, EXPUNGE, tombstones dropped past their
//! bound, a mailbox deleted and made again), in an older snapshot than the
//! cache's, and within its byte bound.

use mailstore::{FlagOp, Flags, MailboxId, Query, Store, UserId};

use crate::util::{store, user};

/// The answer of the scan SEARCH used before v14.
fn scan(db: &std::path::Path, mb: MailboxId, field: &str, needle: &str) -> Vec<u32> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut st = c
        .prepare(
            "SELECT e.uid FROM entries e WHERE e.mailbox_id = ?1 AND EXISTS (
               SELECT 1 FROM message_headers h WHERE h.message_id = e.message_id
               AND h.name = lower(?2) AND instr(lower(h.value), lower(?3)) > 0)
             ORDER BY e.uid",
        )
        .unwrap();
    st.query_map(rusqlite::params![mb, field.trim(), needle], |r| r.get(0))
        .unwrap()
        .map(|u| u.unwrap())
        .collect()
}

fn search(s: &Store, mb: MailboxId, field: &str, needle: &str) -> Vec<u32> {
    let q = Query::Header(field.into(), needle.into());
    s.read_sync(move |r| r.search(mb, &q)).unwrap()
}

/// Message `i`: subject "topic {i % 10}", sender "sender{i % 7}", and
/// every fifth with a second Subject field.
fn message(i: u32) -> Vec<u8> {
    let second = if i.is_multiple_of(5) {
        format!("Subject: Extra {i}\r\n")
    } else {
        String::new()
    };
    format!(
        "From: Sender {n} <SENDER{n}@example.org>\r\nTo: r@x\r\nSubject: Topic {t} of {i}\r\n{second}\
         Message-ID: <m{i}@x>\r\n\r\nbody\r\n",
        n = i % 7,
        t = i % 10,
    )
    .into_bytes()
}

/// Append messages `from..to` to `mb` in one transaction.
fn append(s: &Store, mb: MailboxId, from: u32, to: u32) {
    s.write_sync(move |tx| {
        for i in from..to {
            tx.append(mb, &message(i), &Flags::default(), 1_790_000_000)?;
        }
        Ok(())
    })
    .unwrap();
}

fn expunge(s: &Store, mb: MailboxId, uids: Vec<u32>) {
    s.write_sync(move |tx| {
        tx.store_flags(mb, &uids, FlagOp::Add, &Flags::system(Flags::DELETED), None)?;
        tx.expunge(mb, Some(&uids))
    })
    .unwrap();
}

const ASKS: &[(&str, &str)] = &[
    ("subject", "topic 3"),
    ("SUBJECT", "TOPIC 3 OF 1"),
    ("subject", "extra"),
    ("subject", ""),
    ("subject", "of 4"),
    ("from", "sender2@"),
    ("from", "SENDER 5"),
    ("from", "example.org"),
    ("to", "r@x"),
    ("message-id", "<m1"),
    ("message-id", "no such"),
];

/// Every ask equals the scan, alone and combined with another criterion
/// (the cached UIDs then go into the statement).
fn assert_same_as_scan(s: &Store, db: &std::path::Path, mb: MailboxId) {
    for (field, needle) in ASKS {
        let want = scan(db, mb, field, needle);
        assert_eq!(search(s, mb, field, needle), want, "{field}: {needle:?}");
        let q = Query::And(vec![
            Query::Header((*field).into(), (*needle).into()),
            Query::Not(Box::new(Query::Uids(vec![(1, 3)]))),
        ]);
        let got = s.read_sync(move |r| r.search(mb, &q)).unwrap();
        let want: Vec<u32> = want.into_iter().filter(|u| *u > 3).collect();
        assert_eq!(got, want, "{field}: {needle:?} and not 1:3");
    }
}

fn mailbox(s: &Store, a: UserId, name: &'static str) -> MailboxId {
    s.write_sync(move |tx| tx.create_mailbox(a, name, None))
        .unwrap()
}

#[test]
fn the_header_cache_follows_every_change() {
    let (d, s) = store();
    let db = d.path().join("mail.db");
    let a = user(&s, "a@x");
    let mb = mailbox(&s, a, "Box");
    let other = mailbox(&s, a, "Other");
    append(&s, mb, 0, 60);
    assert_same_as_scan(&s, &db, mb);
    // Not vacuous: the cache holds the fields asked.
    let (bytes, entries) = s.header_cache_usage();
    assert!(
        bytes > 60 * 20 && entries >= 4,
        "{bytes} bytes, {entries} entries"
    );
    assert_eq!(search(&s, mb, "subject", "topic 3 of 13"), [14]);

    // New mail, then mail that leaves (EXPUNGE, MOVE), then COPY in.
    append(&s, mb, 60, 70);
    assert_eq!(search(&s, mb, "subject", "of 65"), [66]);
    expunge(&s, mb, vec![14, 15, 66]);
    assert_eq!(
        search(&s, mb, "subject", "topic 3 of 13"),
        Vec::<u32>::new()
    );
    assert_same_as_scan(&s, &db, mb);
    s.write_sync(move |tx| tx.move_messages(mb, &[20, 21], other))
        .unwrap();
    s.write_sync(move |tx| tx.copy(mb, &[30], other)).unwrap();
    assert_same_as_scan(&s, &db, mb);
    assert_same_as_scan(&s, &db, other);
    // A flag change alone moves the mailbox's modseq: still right.
    s.write_sync(move |tx| {
        tx.store_flags(mb, &[1], FlagOp::Add, &Flags::system(Flags::SEEN), None)
    })
    .unwrap();
    assert_same_as_scan(&s, &db, mb);

    // More than half the values expunged: the entry is rebuilt.
    expunge(&s, mb, (1..=50).collect());
    assert_same_as_scan(&s, &db, mb);
    expunge(&s, mb, (51..=55).collect());
    assert_same_as_scan(&s, &db, mb);

    // Tombstones dropped past their bound: the expunges since the cache's
    // state may be forgotten, so it rebuilds.
    append(&s, mb, 100, 140);
    assert_same_as_scan(&s, &db, mb);
    s.write_sync(|tx| tx.set_max_tombstones(4)).unwrap();
    let uids = s.read_sync(move |r| r.search(mb, &Query::All)).unwrap();
    for chunk in uids.chunks(3).take(5) {
        expunge(&s, mb, chunk.to_vec());
    }
    assert!(s.read_sync(move |r| r.tombstone_floor(mb)).unwrap() > 0);
    assert_same_as_scan(&s, &db, mb);

    // A mailbox deleted and made again (it may get the same id): its
    // new UIDVALIDITY empties the entry.
    s.write_sync(move |tx| tx.delete_mailbox(other)).unwrap();
    let again = mailbox(&s, a, "Other");
    assert_eq!(search(&s, again, "subject", ""), Vec::<u32>::new());
    append(&s, again, 500, 503);
    assert_eq!(search(&s, again, "subject", "of 50"), [1, 2, 3]);
    assert_same_as_scan(&s, &db, again);
}

/// A search in a snapshot older than the cache's state answers for its
/// snapshot (from SQL), and the cache stays right for newer ones.
#[test]
fn an_older_snapshot_gets_its_own_answer() {
    let (d, s) = store();
    let db = d.path().join("mail.db");
    let a = user(&s, "a@x");
    let mb = mailbox(&s, a, "Box");
    append(&s, mb, 0, 20);
    let s2 = s.clone();
    let (before, newer, after) = s
        .read_sync(move |r| {
            let q = Query::Header("subject".into(), "topic 3".into());
            let before = r.search(mb, &q)?;
            // Another transaction adds and removes mail; a newer snapshot
            // brings the cache forward.
            append(&s2, mb, 20, 30);
            expunge(&s2, mb, vec![4]);
            let newer = search(&s2, mb, "subject", "topic 3");
            Ok((before, newer, r.search(mb, &q)?))
        })
        .unwrap();
    assert_eq!(before, [4, 14]);
    assert_eq!(after, before);
    assert_eq!(newer, [14, 24]);
    assert_eq!(search(&s, mb, "subject", "topic 3"), [14, 24]);
    assert_same_as_scan(&s, &db, mb);
}

#[test]
fn the_header_cache_keeps_to_its_bound() {
    let (d, s) = store();
    let db = d.path().join("mail.db");
    let a = user(&s, "a@x");
    let small: Vec<MailboxId> = ["A", "B", "C", "D"]
        .into_iter()
        .map(|n| mailbox(&s, a, n))
        .collect();
    let big = mailbox(&s, a, "Big");
    for mb in &small {
        append(&s, *mb, 0, 20);
    }
    append(&s, big, 0, 400);
    assert_eq!(mailstore::HEADER_CACHE_LIMIT, 32 << 20);
    // 0.3-0.8 KiB per (mailbox, field) of 20 messages; each field of the
    // big mailbox (5-16 KiB) alone passes the bound.
    let limit = 4096;
    s.set_header_cache_limit(limit);
    for round in 0..2 {
        for mb in small.iter().chain([&big]) {
            for (field, needle) in [("subject", "topic 3"), ("from", "sender2"), ("to", "r@")] {
                assert_eq!(
                    search(&s, *mb, field, needle),
                    scan(&db, *mb, field, needle),
                    "round {round}, {field}"
                );
                let (bytes, _) = s.header_cache_usage();
                assert!(bytes <= limit, "{bytes} > {limit}");
            }
        }
    }
    let (bytes, entries) = s.header_cache_usage();
    // Full up to the bound, older entries evicted (the small mailboxes'
    // three fields are ~6.5 KiB; the big one's fit in none).
    assert!(
        bytes > limit / 2 && (3..12).contains(&entries),
        "{bytes} bytes, {entries} entries"
    );
    assert_same_as_scan(&s, &db, big);
    // A smaller bound evicts at once; 0 keeps nothing and still answers.
    s.set_header_cache_limit(1500);
    assert!(s.header_cache_usage().0 <= 1500);
    s.set_header_cache_limit(0);
    assert_eq!(s.header_cache_usage(), (0, 0));
    assert_same_as_scan(&s, &db, small[0]);
    assert_eq!(s.header_cache_usage(), (0, 0));
    // Growing one message at a time (the entry brought forward each time)
    // keeps to the bound too, until the field no longer fits.
    s.set_header_cache_limit(limit);
    for i in 20..80 {
        append(&s, small[1], i, i + 1);
        assert_eq!(
            search(&s, small[1], "from", "sender3"),
            scan(&db, small[1], "from", "sender3")
        );
        let (bytes, _) = s.header_cache_usage();
        assert!(bytes <= limit, "{bytes} > {limit} after message {i}");
    }
    // A bigger bound lets the big mailbox in.
    s.set_header_cache_limit(1 << 20);
    assert_same_as_scan(&s, &db, big);
    assert!(s.header_cache_usage().0 > 11_000);
}

/// Waits until the header cache holds `entries` entries (a background fill
/// queued by `warm_header_cache`); panics after 10 s.
fn wait_for_entries(s: &Store, entries: usize) -> (usize, usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let usage = s.header_cache_usage();
        if usage.1 >= entries {
            return usage;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no fill: {usage:?}, want {entries} entries"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Waits until no background fill is queued or running; panics after
/// 10 s.
fn wait_for_fills(s: &Store) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while s.header_cache_fills_queued() > 0 {
        assert!(std::time::Instant::now() < deadline, "a fill never ended");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// `warm_header_cache` (what SELECT calls) fills Subject and From in the
/// background; the searches that follow are answered from those entries
/// (the cache does not grow) and agree with the scan; a mailbox that
/// changed meanwhile is brought forward; the fill never evicts.
#[test]
fn selecting_fills_subject_and_from_without_evicting() {
    let (d, s) = store();
    let db = d.path().join("mail.db");
    let a = user(&s, "a@x");
    let mb = mailbox(&s, a, "Box");
    append(&s, mb, 0, 50);
    assert_eq!(s.header_cache_usage(), (0, 0));
    s.warm_header_cache(mb);
    let (bytes, entries) = wait_for_entries(&s, 2);
    assert_eq!(entries, 2);
    assert!(bytes > 50 * 20, "{bytes} bytes");
    for (field, needle) in [
        ("subject", "topic 3"),
        ("from", "sender2@"),
        ("subject", ""),
    ] {
        assert_eq!(search(&s, mb, field, needle), scan(&db, mb, field, needle));
    }
    assert_eq!(s.header_cache_usage(), (bytes, 2), "answered from the fill");
    // Both there: nothing more to fill (the next fill would find nothing
    // missing); new mail is brought forward by the search.
    s.warm_header_cache(mb);
    assert_eq!(s.header_cache_fills_queued(), 0);
    append(&s, mb, 50, 55);
    assert_eq!(search(&s, mb, "subject", "of 52"), [53]);
    assert_same_as_scan(&s, &db, mb);

    // No room left under the bound: the fill keeps nothing and evicts
    // nothing (the entries searched before stay).
    let other = mailbox(&s, a, "Other");
    append(&s, other, 0, 50);
    let before = s.header_cache_usage();
    s.set_header_cache_limit(before.0 + 100);
    s.warm_header_cache(other);
    wait_for_fills(&s);
    assert_eq!(
        s.header_cache_usage(),
        before,
        "a fill with no room evicts nothing"
    );
    // No more room than when that fill did not fit: none is queued again
    // for the mailbox.
    s.warm_header_cache(other);
    assert_eq!(
        s.header_cache_fills_queued(),
        0,
        "no second fill that cannot fit"
    );
    // Full: no fill is even queued.
    s.set_header_cache_limit(before.0);
    s.warm_header_cache(other);
    assert_eq!(s.header_cache_fills_queued(), 0, "nothing queued when full");
    s.set_header_cache_limit(before.0 + 100);
    // A search still fills (evicting, as before).
    assert_eq!(
        search(&s, other, "subject", "topic 3"),
        scan(&db, other, "subject", "topic 3")
    );

    // Off: nothing is filled.
    s.set_header_cache_limit(0);
    s.warm_header_cache(other);
    assert_eq!(s.header_cache_fills_queued(), 0);
    assert_eq!(s.header_cache_usage(), (0, 0));
}

/// Searches from several threads at once, while the bound keeps evicting
/// entries (so that fills, done outside the cache's lock, overlap with
/// searches of the same field, which then run in SQL) and SELECT-style
/// fills are queued: every answer equals the scan.
#[test]
fn concurrent_fills_and_searches_agree_with_the_scan() {
    let (d, s) = store();
    let db = d.path().join("mail.db");
    let a = user(&s, "a@x");
    let boxes: Vec<MailboxId> = ["A", "B", "C"]
        .into_iter()
        .map(|n| mailbox(&s, a, n))
        .collect();
    for (i, mb) in boxes.iter().enumerate() {
        append(&s, *mb, 0, 150 + 50 * i as u32);
    }
    let want: Vec<Vec<(&str, &str, Vec<u32>)>> = boxes
        .iter()
        .map(|mb| {
            ASKS.iter()
                .map(|(f, n)| (*f, *n, scan(&db, *mb, f, n)))
                .collect()
        })
        .collect();
    std::thread::scope(|scope| {
        for t in 0..4usize {
            let (s, boxes, want) = (&s, &boxes, &want);
            scope.spawn(move || {
                for round in 0..60usize {
                    let b = (t + round) % boxes.len();
                    if round % 7 == t {
                        // Small enough that entries keep being evicted.
                        s.set_header_cache_limit(if round % 2 == 0 { 6000 } else { 1 << 20 });
                    }
                    if round % 5 == 0 {
                        s.warm_header_cache(boxes[b]);
                    }
                    let (field, needle, uids) = &want[b][(t * 3 + round) % ASKS.len()];
                    assert_eq!(
                        &search(s, boxes[b], field, needle),
                        uids,
                        "thread {t} round {round}: {field} {needle:?}"
                    );
                }
            });
        }
    });
    wait_for_fills(&s);
    // Entries never pass the bound (1 MiB is the larger of the two set).
    let (bytes, _) = s.header_cache_usage();
    assert!(bytes <= 1 << 20, "{bytes}");
}
