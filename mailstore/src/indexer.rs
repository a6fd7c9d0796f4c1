//! Deferred full-text indexing (the FTS5 trigram index behind SEARCH
//! BODY/TEXT, RFC 3501 §6.4.4).
//!
//! A delivery stores its search text in `pending_text` inside its durable
//! transaction; the writer thread moves that text into the FTS index later,
//! in transactions of its own: once its job queue has been empty for
//! [`QUIET`] (then chunk after chunk while it stays empty), and also
//! between batches once the [`Backlog`] is past a bound ([`MAX_ROWS`]
//! messages or [`MAX_COST`] of text), so sustained load cannot grow it
//! without bound. Tokenising is the most expensive part of a delivery (a
//! 64 KiB body is some 64,000 trigrams), so keeping it out of the group
//! commit shortens the time every `250` waits.
//!
//! Past a bound, a batch indexes about twice the text [`cost`] it added,
//! not twice its message count: a burst of large messages followed by
//! small ones must not make every small delivery wait for a large
//! message's indexing.
//!
//! Search stays exact meanwhile: [`crate::Query`] also scans the pending
//! rows (see `search/sql.rs`), and an index transaction moves rows atomically
//! (insert into the index and delete from `pending_text` commit together).
//! Index transactions run with `synchronous = NORMAL`: they change no mail,
//! and the next delivery's `synchronous = FULL` commit syncs the WAL frames
//! before it, so a crash can only lose index work, never consistency.

use std::time::Duration;

use rusqlite::Connection;

/// How long the job queue must stay empty before the writer indexes.
pub(crate) const QUIET: Duration = Duration::from_millis(20);
/// Backlog [`cost`] beyond which the writer indexes between batches even
/// while jobs are waiting: 256 MiB of text.
const MAX_COST: i64 = 256 << 20;
/// Pending messages beyond which it does the same: a SEARCH right after a
/// burst scans its mailbox's pending text (~2-4 µs a small message), so
/// this keeps that scan to tens of milliseconds. (1,024 was tried: SEARCH
/// right after a 2,000-message APPEND burst 15.8 -> 9.2 ms, but 64 KiB SMTP
/// fell from 1,266 to 379 msg/s, every batch waiting for trigram indexing.)
pub(crate) const MAX_ROWS: i64 = 8192;
/// Most messages indexed by one transaction.
pub(crate) const CHUNK_ROWS: usize = 256;
/// Most bytes of text indexed by one transaction (bounds how long a
/// delivery arriving meanwhile waits).
const CHUNK_BYTES: i64 = 256 * 1024;
/// Every pending message costs at least this much: per-row work (and a
/// SEARCH's per-row scan) dominates for small messages.
const MIN_COST: i64 = 16 * 1024;

/// SQL for the search text of the pending row `p`: stored in `p.body`, or
/// (`p.body_at` set) the tail of the raw message from that byte offset.
pub(crate) const PENDING_BODY: &str = "(CASE WHEN p.body_at IS NULL THEN p.body \
     ELSE CAST(substr((SELECT raw FROM message_raw WHERE id = p.id), p.body_at + 1) AS TEXT) END)";

/// SQL for the bytes of search text of the pending row `p`.
const PENDING_LEN: &str = "(octet_length(p.headers) + CASE WHEN p.body_at IS NULL \
     THEN octet_length(p.body) \
     ELSE (SELECT octet_length(raw) FROM message_raw WHERE id = p.id) - p.body_at END)";

/// The backlog cost of one message with `text_len` bytes of search text.
fn cost(text_len: usize) -> i64 {
    i64::try_from(text_len).unwrap_or(i64::MAX).max(MIN_COST)
}

/// What waits for the index (one scan, at start-up).
pub(crate) fn backlog(conn: &Connection) -> rusqlite::Result<Backlog> {
    conn.query_row(
        &format!("SELECT count(*), coalesce(sum(max({PENDING_LEN}, ?1)), 0) FROM pending_text p"),
        [MIN_COST],
        |r| {
            Ok(Backlog {
                rows: r.get(0)?,
                cost: r.get(1)?,
            })
        },
    )
}

/// Messages waiting for the index (added by deliveries, or moved into it
/// by one index transaction) and their [`cost`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Backlog {
    /// Messages (0 after an index transaction = nothing was pending).
    pub rows: i64,
    /// Their [`cost`].
    pub cost: i64,
}

impl Backlog {
    /// Count one more pending message with `text_len` bytes of text.
    pub(crate) fn add_message(&mut self, text_len: usize) {
        self.rows += 1;
        self.cost += cost(text_len);
    }

    /// Past a bound: index between batches even under load.
    pub(crate) fn over_bound(&self) -> bool {
        self.rows > MAX_ROWS || self.cost > MAX_COST
    }

    /// Add `other`.
    pub(crate) fn add(&mut self, other: Backlog) {
        self.rows += other.rows;
        self.cost += other.cost;
    }

    /// Take away what an index transaction moved; never below zero (the
    /// count is an estimate only a transaction finding nothing resets).
    pub(crate) fn sub(&mut self, done: Backlog) {
        self.rows = (self.rows - done.rows).max(0);
        self.cost = (self.cost - done.cost).max(0);
    }
}

/// Index the oldest pending messages (up to one chunk, at most `rows`)
/// in their own transaction; returns what it moved (no rows: nothing was
/// pending).
pub(crate) fn index_some(conn: &Connection, rows: usize) -> rusqlite::Result<Backlog> {
    conn.execute_batch("PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE;")?;
    let res = index_chunk(conn, rows.clamp(1, CHUNK_ROWS))
        .and_then(|n| crate::walbuf::commit(|| conn.execute_batch("COMMIT")).map(|()| n));
    if res.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    let restored = conn.execute_batch("PRAGMA synchronous = FULL");
    let n = res?;
    restored?;
    Ok(n)
}

/// The body of [`index_some`]: choose the chunk, move it into the index.
fn index_chunk(conn: &Connection, rows: usize) -> rusqlite::Result<Backlog> {
    let mut upto: Option<i64> = None;
    let mut cost_sum = 0i64;
    {
        let mut st = conn.prepare_cached(&format!(
            "SELECT p.id, {PENDING_LEN} FROM pending_text p ORDER BY p.id LIMIT ?1"
        ))?;
        let mut found = st.query([rows as i64])?;
        let mut bytes = 0i64;
        while let Some(row) = found.next()? {
            upto = Some(row.get(0)?);
            let len: i64 = row.get(1)?;
            bytes += len;
            cost_sum += len.max(MIN_COST);
            if bytes >= CHUNK_BYTES {
                break;
            }
        }
    }
    let Some(upto) = upto else {
        return Ok(Backlog::default());
    };
    let n = conn
        .prepare_cached(&format!(
            "INSERT INTO message_text(rowid, headers, body)
             SELECT p.id, p.headers, {PENDING_BODY} FROM pending_text p WHERE p.id <= ?1"
        ))?
        .execute([upto])?;
    conn.prepare_cached("DELETE FROM pending_text WHERE id <= ?1")?
        .execute([upto])?;
    Ok(Backlog {
        rows: n as i64,
        cost: cost_sum,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::reader::Reader;
    use crate::schema;
    use crate::search::Query;
    use crate::tx::Tx;
    use crate::types::{MailboxId, NewMessage};

    /// A store file with one user and `n` messages delivered but not
    /// indexed (no writer thread runs here).
    fn pending_store(dir: &std::path::Path, n: usize) -> (Connection, MailboxId) {
        let path = dir.join("t.db");
        let mut conn = schema::connect(&path, true).unwrap();
        schema::migrate(&mut conn, &path).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        let mut tx = Tx::new(&conn);
        let user = tx.create_user("a@x", "hash").unwrap();
        let inbox: MailboxId = conn
            .query_row(
                "SELECT id FROM mailboxes WHERE user_id = ?1 AND name = 'INBOX'",
                [user],
                |r| r.get(0),
            )
            .unwrap();
        for i in 0..n {
            let raw = format!(
                "Subject: =?utf-8?q?Caf=C3=89?= n{i}\r\nMIME-Version: 1.0\r\n\
                 Content-Type: text/plain; charset=utf-8\r\n\r\nBody number {i} with \u{dc}BER text and padding {}\r\n",
                "x".repeat(i * 3000)
            );
            let msg = NewMessage {
                raw: raw.into_bytes(),
                internal_date: 1_700_000_000,
            };
            tx.deliver(&msg, &[user]).unwrap();
        }
        let added = tx.pending;
        conn.execute_batch("COMMIT").unwrap();
        // What the writer adds up per batch is what a scan finds.
        assert_eq!(backlog(&conn).unwrap(), added);
        // Plain text bodies are not stored twice: the pending rows point
        // into message_raw.
        let by_ref: i64 = conn
            .query_row(
                "SELECT count(*) FROM pending_text WHERE body_at IS NOT NULL AND body = ''",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(by_ref, n as i64);
        (conn, inbox)
    }

    fn search(dir: &std::path::Path, mb: MailboxId, q: Query) -> Vec<u32> {
        let r = Reader::new(schema::connect(&dir.join("t.db"), false).unwrap()).unwrap();
        r.snapshot(|r| r.search(mb, &q)).unwrap()
    }

    fn queries() -> Vec<(Query, Vec<u32>)> {
        vec![
            (Query::Body("über".into()), (1..=40).collect()),
            (Query::Body("NUMBER 7 ".into()), vec![8]),
            (Query::Body("café".into()), vec![]),
            (
                Query::Text("café n1".into()),
                (2..=2).chain(11..=20).collect(),
            ),
            (Query::Text("n3".into()), (4..=4).chain(31..=40).collect()),
            (Query::Body("zzz".into()), vec![]),
        ]
    }

    #[test]
    fn search_is_the_same_before_during_and_after_indexing() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, mb) = pending_store(dir.path(), 40);
        let before = backlog(&conn).unwrap();
        // 40 messages, each costing at least MIN_COST, the big ones more.
        assert_eq!(before.rows, 40);
        assert!(before.cost > 40 * MIN_COST, "backlog {before:?}");
        assert!(!before.over_bound());
        for (q, want) in queries() {
            assert_eq!(search(dir.path(), mb, q.clone()), want, "pending: {q:?}");
        }
        // One chunk is bounded by bytes: the big messages take several.
        let first = index_some(&conn, usize::MAX).unwrap();
        assert!(
            first.rows > 0 && first.rows < 40,
            "first chunk indexed {first:?}"
        );
        let mut left = before;
        left.sub(first);
        assert_eq!(backlog(&conn).unwrap(), left);
        for (q, want) in queries() {
            assert_eq!(search(dir.path(), mb, q.clone()), want, "partly: {q:?}");
        }
        let mut done = first;
        loop {
            match index_some(&conn, usize::MAX).unwrap() {
                Backlog { rows: 0, cost } => {
                    assert_eq!(cost, 0);
                    break;
                }
                n => done.add(n),
            }
        }
        assert_eq!(done, before, "what was indexed adds up to the backlog");
        assert_eq!(backlog(&conn).unwrap(), Backlog::default());
        let sync: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "deliveries commit with synchronous=FULL again");
        for (q, want) in queries() {
            assert_eq!(search(dir.path(), mb, q.clone()), want, "indexed: {q:?}");
        }
    }

    #[test]
    fn pending_text_of_other_mailboxes_is_not_matched() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, inbox) = pending_store(dir.path(), 3);
        // A second user whose pending mail also says "über": a SEARCH in
        // the first user's INBOX sees only its own three messages, and the
        // second user's INBOX only its own one, before and after indexing.
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        let mut tx = Tx::new(&conn);
        let other = tx.create_user("b@x", "hash").unwrap();
        let msg = NewMessage {
            raw: b"Subject: other\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\xc3\x9cBER for b only\r\n".to_vec(),
            internal_date: 1_700_000_000,
        };
        tx.deliver(&msg, &[other]).unwrap();
        conn.execute_batch("COMMIT").unwrap();
        let other_inbox: MailboxId = conn
            .query_row(
                "SELECT id FROM mailboxes WHERE user_id = ?1 AND name = 'INBOX'",
                [other],
                |r| r.get(0),
            )
            .unwrap();
        for stage in ["pending", "indexed"] {
            let q = Query::Body("über".into());
            assert_eq!(
                search(dir.path(), inbox, q.clone()),
                vec![1, 2, 3],
                "{stage}"
            );
            assert_eq!(search(dir.path(), other_inbox, q), vec![1], "{stage}");
            while index_some(&conn, usize::MAX).unwrap().rows > 0 {}
        }
    }

    #[test]
    fn bounds_are_by_rows_and_by_cost() {
        let mut b = Backlog::default();
        for _ in 0..MAX_ROWS {
            b.add_message(100);
        }
        assert!(!b.over_bound());
        b.add_message(100);
        assert!(b.over_bound(), "rows");
        let mut big = Backlog::default();
        while big.cost <= MAX_COST {
            assert!(!big.over_bound());
            big.add_message(1 << 20);
        }
        assert!(big.over_bound() && big.rows < MAX_ROWS, "cost");
        big.sub(Backlog {
            rows: 1000,
            cost: i64::MAX,
        });
        assert_eq!(big, Backlog::default(), "never below zero");
    }

    #[test]
    fn fold_contains_matches_unicode_case_insensitively() {
        assert!(schema::fold_contains("Grüße aus KÖLN", "köln"));
        assert!(schema::fold_contains("abc", "ABC"));
        assert!(!schema::fold_contains("ab", "abc"));
        assert!(schema::fold_contains("x", ""));
        assert!(!schema::fold_contains("Koln", "köln"));
        assert!(schema::fold_contains("xxKumQUAT", "kumquat"));
        assert!(schema::fold_contains("kumquat", "KUMQUAT"));
        assert!(!schema::fold_contains("kumqua", "kumquat"));
        assert!(!schema::fold_contains("k", "kk"));
    }

    proptest::proptest! {
        /// The memchr-based ASCII path agrees with a naive window scan.
        #[test]
        fn ascii_fold_contains_agrees_with_naive(hay in "[a-dA-D .]{0,40}", needle in "[a-dA-D]{1,4}") {
            let naive = hay
                .as_bytes()
                .windows(needle.len())
                .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()));
            proptest::prop_assert_eq!(schema::fold_contains(&hay, &needle), naive);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod bench {
    use crate::reader::Reader;
    use crate::schema;
    use crate::search::Query;
    use crate::tx::Tx;
    use crate::types::{MailboxId, NewMessage};

    /// How long SEARCH takes over text still waiting for the index.
    /// `cargo test --release -p mailstore --lib -- --ignored --nocapture pending_scan`
    #[test]
    #[ignore = "benchmark: prints figures"]
    fn pending_scan() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut conn = schema::connect(&path, true).unwrap();
        schema::migrate(&mut conn, &path).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        let mut tx = Tx::new(&conn);
        let user = tx.create_user("a@x", "hash").unwrap();
        let n = 10_000;
        let line = "The quick brown fox jumps over the lazy dog; pack my box with five dozen j\r\n";
        for i in 0..n {
            let raw = format!(
                "From: <b@x>\r\nTo: <a@x>\r\nSubject: bench {i}\r\nMessage-ID: <{i}@x>\r\n\r\n{}",
                line.repeat(26)
            );
            tx.deliver(
                &NewMessage {
                    raw: raw.into_bytes(),
                    internal_date: 1,
                },
                &[user],
            )
            .unwrap();
        }
        conn.execute_batch("COMMIT").unwrap();
        let mb: MailboxId = conn
            .query_row(
                "SELECT id FROM mailboxes WHERE user_id = ?1 AND name = 'INBOX'",
                [user],
                |r| r.get(0),
            )
            .unwrap();
        let r = Reader::new(schema::connect(&path, false).unwrap()).unwrap();
        for word in ["kumquat", "zebra", "bench 77"] {
            for scope in ["TEXT", "BODY"] {
                let q = if scope == "TEXT" {
                    Query::Text(word.into())
                } else {
                    Query::Body(word.into())
                };
                let t = std::time::Instant::now();
                let mut hits = 0;
                for _ in 0..5 {
                    hits = r.snapshot(|r| r.search(mb, &q)).unwrap().len();
                }
                let per = t.elapsed() / 5;
                println!(
                    "{scope} {word:?}: {hits} hits, {per:?} per search of {n} pending, {:?} per row",
                    per / n
                );
            }
        }
    }
}
