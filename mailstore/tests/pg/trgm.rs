//! SEARCH TEXT/BODY on PostgreSQL (schema versions 16 and 17): folded
//! search text under `pg_trgm` GIN indexes (the body's over its distinct
//! words since 17). The answers themselves are the shared
//! suite's (`../it/search.rs`, run here too); these tests check what is
//! PostgreSQL's own: a database of version 14 folded and indexed on open,
//! and the index used by SEARCH.

use std::time::{Duration, Instant};

use mailstore::{NewMessage, Query, Store};

use crate::util::{store, user};

fn client(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).unwrap()
}

#[test]
fn a_version_14_database_is_folded_and_indexed_on_open() {
    let (db, s) = store();
    let a = user(&s, "a@x");
    let raw = b"Subject: Gr\xc3\xbc\xc3\x9fe\r\n\r\nhello\r\n".to_vec();
    s.write_sync(move |tx| {
        tx.deliver(
            &NewMessage {
                raw,
                internal_date: 1_790_000_000,
            },
            &[a],
        )
    })
    .unwrap();
    s.shutdown();
    drop(s);
    // As version 14 left it: text as decoded (capitals), no trigram index,
    // no commit trigger, no queue lease columns (v15), no queue trigger
    // (v18).
    let mut c = client(db.url());
    c.batch_execute(
        "DROP INDEX message_text_body_trgm; DROP INDEX message_text_headers_trgm;
         DROP TRIGGER meta_commit_notify ON meta; DROP FUNCTION minimail_commit_notify();
         UPDATE message_text SET body = 'Viele GRÜSSE, Ihr ÄRGER-Team', headers = 'Subject: Grüße aus KÖLN';
         DROP TRIGGER outq_rcpt_notify ON outq_rcpt; DROP FUNCTION minimail_queue_notify();
         ALTER TABLE outq_rcpt DROP COLUMN lease_owner, DROP COLUMN lease_until;
         UPDATE meta SET value = 14 WHERE key = 'schema_version';",
    )
    .unwrap();
    let s = Store::open(db.url()).unwrap();
    let row = c
        .query_one(
            "SELECT (SELECT value FROM meta WHERE key = 'schema_version'), body, headers,
                    (SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'message_text_%_trgm'),
                    (SELECT count(*) FROM pg_trigger WHERE tgname = 'meta_commit_notify')
             FROM message_text",
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), mailstore_version());
    assert_eq!(row.get::<_, &str>(1), "viele grüsse, ihr ärger-team");
    assert_eq!(row.get::<_, &str>(2), "subject: grüße aus köln");
    assert_eq!(row.get::<_, i64>(3), 2);
    assert_eq!(row.get::<_, i64>(4), 1);
    let mb = s
        .read_sync(move |r| r.mailbox(a, "INBOX"))
        .unwrap()
        .unwrap()
        .id;
    let find = |q: Query| s.read_sync(move |r| r.search(mb, &q)).unwrap();
    assert_eq!(find(Query::Body("Ärger".into())), [1]);
    assert_eq!(find(Query::Text("köln".into())), [1]);
    assert_eq!(find(Query::Body("köln".into())), Vec::<u32>::new());
}

/// The schema version a fresh store reaches (read from a fresh one).
fn mailstore_version() -> i64 {
    let (db, s) = store();
    s.shutdown();
    client(db.url())
        .query_one("SELECT value FROM meta WHERE key = 'schema_version'", &[])
        .unwrap()
        .get(0)
}

#[test]
fn text_search_reads_the_trigram_index() {
    let (db, s) = store();
    let a = user(&s, "a@x");
    // 1,000 messages of ~1.5 KB, one word each of their own.
    s.write_sync(move |tx| {
        for n in 0..1000u32 {
            let body = format!("word{n:04}zq {}\r\n", "filler text line. ".repeat(80));
            let raw = format!("Subject: m{n}\r\n\r\n{body}").into_bytes();
            tx.deliver(
                &NewMessage {
                    raw,
                    internal_date: 1_790_000_000,
                },
                &[a],
            )?;
        }
        Ok(())
    })
    .unwrap();
    let mut c = client(db.url());
    // As autovacuum does after many inserts: the GIN indexes' pending
    // lists merged (the planner counts a long one against the index),
    // statistics taken.
    c.batch_execute("VACUUM ANALYZE").unwrap();
    let mb = s
        .read_sync(move |r| r.mailbox(a, "INBOX"))
        .unwrap()
        .unwrap()
        .id;
    assert_eq!(
        s.read_sync(move |r| r.search(mb, &Query::Body("WORD0417ZQ".into())))
            .unwrap(),
        [418]
    );
    assert_eq!(
        s.read_sync(move |r| r.search(mb, &Query::Text("word0999zq".into())))
            .unwrap(),
        [1000]
    );
    // The store's connections end (their backends report their statistics
    // as they exit); then the index scans are counted.
    s.shutdown();
    drop(s);
    let deadline = Instant::now() + Duration::from_secs(20);
    let (body, headers) = loop {
        let r = c
            .query_one(
                "SELECT (SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'message_text_body_trgm'),
                        (SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'message_text_headers_trgm')",
                &[],
            )
            .unwrap();
        let (b, h): (i64, i64) = (r.get(0), r.get(1));
        if (b >= 2 && h >= 1) || Instant::now() > deadline {
            break (b, h);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        body >= 2 && headers >= 1,
        "trigram index scans: body {body}, headers {headers}"
    );
}

/// Schema version 17: the body's index is over its distinct words, and a
/// needle's words filter rows before the body's LIKE. That filter must
/// never drop a match: every needle (across words, inside words, with
/// punctuation, white space runs, capitals) finds exactly the messages
/// whose stored body contains it, as `position()` over the body says.
#[test]
fn body_words_filter_drops_no_match() {
    let (db, s) = store();
    let a = user(&s, "a@x");
    let bodies = [
        "The quick brown fox jumps over the lazy dog; pack my box with five dozen j\r\n"
            .repeat(800),
        "fox\tjumps  over\r\nthe lazy-dog's back, then naps.\r\n".to_owned(),
        "Grüße aus Köln: ÄRGER-frei, 100% sicher_heit\\back\r\n".to_owned(),
        "lazydog quickbrown foxjumps\r\n".repeat(3),
        "a b c ab abc abcd\r\n".to_owned(),
    ];
    let texts: Vec<String> = bodies.iter().map(|b| b.to_owned()).collect();
    s.write_sync(move |tx| {
        for (n, body) in texts.iter().enumerate() {
            let raw = format!("Subject: m{n}\r\n\r\n{body}").into_bytes();
            tx.deliver(
                &NewMessage {
                    raw,
                    internal_date: 1_790_000_000,
                },
                &[a],
            )?;
        }
        Ok(())
    })
    .unwrap();
    let mut c = client(db.url());
    // Every row has its words, each distinct.
    let missing: i64 = c
        .query_one("SELECT count(*) FROM message_text WHERE words IS NULL", &[])
        .unwrap()
        .get(0);
    assert_eq!(missing, 0);
    let long_words: String = c
        .query_one(
            "SELECT t.words FROM message_text t JOIN entries e ON e.message_id = t.id WHERE e.uid = 1",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(
        long_words.len() < 200,
        "the 60 KiB body's words are its 15 distinct ones: {long_words:?}"
    );
    let mb = s
        .read_sync(move |r| r.mailbox(a, "INBOX"))
        .unwrap()
        .unwrap()
        .id;
    let needles = [
        "fox jumps",
        "ox jum",
        "OVER THE LAZY",
        "dozen j\r\nthe",
        "j\r\nthe quick",
        "lazy-dog's back",
        "dog's",
        "fox\tjumps  over",
        "jumps  over",
        "grüsse aus",
        "ärger-frei, 100%",
        "100% sicher_heit\\back",
        "sicher_heit",
        "lazydog quick",
        "foxjumps\r\nlazy",
        "abc abcd",
        "b c ab",
        "quick",
        "zzz never",
        " ",
    ];
    for needle in needles {
        let want: Vec<u32> = c
            .query(
                "SELECT e.uid FROM entries e JOIN message_text t ON t.id = e.message_id
                 WHERE e.mailbox_id = $1 AND position(lower($2) IN t.body) > 0 ORDER BY e.uid",
                &[&mb, &needle],
            )
            .unwrap()
            .iter()
            .map(|r| r.get::<_, i64>(0) as u32)
            .collect();
        let q = needle.to_owned();
        let got = s.read_sync(move |r| r.search(mb, &Query::Body(q))).unwrap();
        assert_eq!(got, want, "BODY {needle:?}");
    }
    // Rows written without words (an older writer, a copy) get them from
    // the trigger, and an edited body its new words.
    c.batch_execute(
        "UPDATE message_text SET body = 'brand new words here' WHERE id = (SELECT min(id) FROM message_text)",
    )
    .unwrap();
    let w: String = c
        .query_one(
            "SELECT words FROM message_text WHERE id = (SELECT min(id) FROM message_text)",
            &[],
        )
        .unwrap()
        .get(0);
    let mut w: Vec<&str> = w.split(' ').collect();
    w.sort_unstable();
    assert_eq!(w, ["brand", "here", "new", "words"]);
}
