//! Opening connections (WAL, synchronous=FULL, busy_timeout, foreign keys)
//! and the versioned schema, migrated with `PRAGMA user_version`.
//! The layout follows IMAP's data model (RFC 3501 §2.3, RFC 7162 modseqs).

use std::path::Path;
use std::time::Duration;

use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::error::{Result, StoreError};

/// How long a connection waits for another writer (e.g. a second process).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The schema version [`migrate`] brings a file to.
pub(crate) const VERSION: i64 = MIGRATIONS.len() as i64;

/// The header fields `header_index` (schema v14) holds, as an SQL list.
/// SEARCH on any other field reads message_headers.
macro_rules! indexed_headers {
    () => {
        "'subject', 'from', 'to', 'cc', 'bcc', 'sender', 'reply-to', 'message-id', 'in-reply-to', 'list-id'"
    };
}

/// Schema versions; `MIGRATIONS[i]` takes the file from version i to i+1.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO meta(key, value) VALUES ('commit_counter', 0), ('last_uidvalidity', 0);

CREATE TABLE users(
    id INTEGER PRIMARY KEY,
    address TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    created INTEGER NOT NULL
);

CREATE TABLE mailboxes(
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL,
    uidnext INTEGER NOT NULL DEFAULT 1,
    highestmodseq INTEGER NOT NULL DEFAULT 1,
    special_use TEXT,
    UNIQUE(user_id, name)
);

-- Subscriptions are names, not mailbox rows: they survive DELETE (RFC 3501 §6.3.6).
CREATE TABLE subscriptions(
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    PRIMARY KEY(user_id, name)
) WITHOUT ROWID;

-- One row per stored message, however many mailboxes hold it.
CREATE TABLE messages(
    id INTEGER PRIMARY KEY,
    size INTEGER NOT NULL,
    internal_date INTEGER NOT NULL,
    sent_date INTEGER,
    envelope TEXT NOT NULL,
    structure TEXT NOT NULL
);
-- Raw bytes apart, so metadata scans never touch blob pages; rowid = messages.id
-- for blob I/O.
CREATE TABLE message_raw(
    id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
    raw BLOB NOT NULL
);
CREATE TABLE message_headers(
    message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value TEXT NOT NULL
);
CREATE INDEX message_headers_msg ON message_headers(message_id, name);

CREATE TABLE entries(
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid INTEGER NOT NULL,
    message_id INTEGER NOT NULL REFERENCES messages(id),
    flags INTEGER NOT NULL DEFAULT 0,
    keywords TEXT NOT NULL DEFAULT '',
    modseq INTEGER NOT NULL,
    PRIMARY KEY(mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX entries_message ON entries(message_id);
CREATE INDEX entries_modseq ON entries(mailbox_id, modseq);

CREATE TABLE expunged(
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid INTEGER NOT NULL,
    modseq INTEGER NOT NULL,
    PRIMARY KEY(mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX expunged_modseq ON expunged(mailbox_id, modseq);

-- Substring search (IMAP SEARCH is substring, case-insensitive): trigram FTS,
-- rowid = messages.id.
CREATE VIRTUAL TABLE message_text USING fts5(headers, body, tokenize = 'trigram');
"#,
    // v2: search text waits here until the end of the write batch and enters
    // the FTS index in one statement. (FTS5 flushes its buffer at every
    // statement savepoint, so one insert per message made a segment per message.)
    r#"
CREATE TABLE pending_text(
    id INTEGER PRIMARY KEY,
    headers TEXT NOT NULL,
    body TEXT NOT NULL
);
"#,
    // v3: a body whose search text is the raw message's tail byte for byte
    // (plain text, most mail; the parser's part-ending newline aside) is not
    // written twice: `body` is '' and
    // `body_at` the offset in message_raw.raw where that text starts
    // (see indexer::PENDING_BODY).
    r#"
ALTER TABLE pending_text ADD COLUMN body_at INTEGER;
"#,
    // v4: a secret per mailbox that authorizes URLs to its messages
    // (imapd's URLAUTH, RFC 4467 §3: "mailbox access keys"); made when
    // first needed, gone with its mailbox, replaced by a reset.
    r#"
CREATE TABLE IF NOT EXISTS mailbox_keys(
    mailbox_id INTEGER PRIMARY KEY REFERENCES mailboxes(id) ON DELETE CASCADE,
    key BLOB NOT NULL
);
"#,
    // v5: expunge tombstones are bounded per mailbox (RFC 7162 §3.2.5.2 and
    // §3.2.6 let a server that forgot old expunges answer with a superset).
    // `tombstones` counts a mailbox's rows in `expunged`; `tombstone_floor`
    // is the highest modseq whose tombstones may have been dropped (0: none
    // ever were); `meta.max_tombstones` is the bound (see tx_flags.rs).
    r#"
ALTER TABLE mailboxes ADD COLUMN tombstones INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN tombstone_floor INTEGER NOT NULL DEFAULT 0;
UPDATE mailboxes SET tombstones = (SELECT count(*) FROM expunged e WHERE e.mailbox_id = mailboxes.id);
INSERT OR IGNORE INTO meta(key, value) VALUES ('max_tombstones', 50000);
"#,
    // v6: the outbound queue (see outq.rs): one row per message accepted
    // for another host, one per recipient still to deliver. A recipient row
    // is deleted once delivered or failed; the message goes with its last.
    r#"
CREATE TABLE IF NOT EXISTS outq_msg(
    id INTEGER PRIMARY KEY,
    qid TEXT NOT NULL UNIQUE,
    sender TEXT NOT NULL,
    raw BLOB NOT NULL,
    created INTEGER NOT NULL,
    ret TEXT,
    envid TEXT
);
CREATE TABLE IF NOT EXISTS outq_rcpt(
    id INTEGER PRIMARY KEY,
    msg_id INTEGER NOT NULL REFERENCES outq_msg(id) ON DELETE CASCADE,
    addr TEXT NOT NULL,
    domain TEXT NOT NULL COLLATE NOCASE,
    notify TEXT,
    orcpt TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try INTEGER NOT NULL,
    last_error TEXT,
    warned INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outq_rcpt_due ON outq_rcpt(next_try);
CREATE INDEX IF NOT EXISTS outq_rcpt_msg ON outq_rcpt(msg_id);
"#,
    // v7: DKIM signing keys (see dkim.rs), by domain and selector; one
    // active per domain signs, the others stay for rotation.
    r#"
CREATE TABLE IF NOT EXISTS dkim_keys(
    domain TEXT NOT NULL COLLATE NOCASE,
    selector TEXT NOT NULL COLLATE NOCASE,
    algorithm TEXT NOT NULL,
    private_key BLOB NOT NULL,
    public_key BLOB NOT NULL,
    created INTEGER NOT NULL,
    active INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY(domain, selector)
);
"#,
    // v8: queued message bodies in a table of their own, so the delivery
    // engine's scans of due recipients (which want the message's created
    // time, RET and ENVID) never read a body's overflow pages; the size is
    // kept beside the envelope.
    r#"
ALTER TABLE outq_msg ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
UPDATE outq_msg SET size = length(raw);
CREATE TABLE IF NOT EXISTS outq_body(
    msg_id INTEGER PRIMARY KEY REFERENCES outq_msg(id) ON DELETE CASCADE,
    raw BLOB NOT NULL
);
INSERT INTO outq_body(msg_id, raw) SELECT id, raw FROM outq_msg;
ALTER TABLE outq_msg DROP COLUMN raw;
"#,
    // v9: when each entry was saved in its mailbox (unix seconds; IMAP's
    // SAVEDATE, RFC 8514): set by delivery, APPEND, COPY and MOVE. NULL for
    // entries saved before v9: not known (FETCH SAVEDATE gives NIL, the
    // SAVED* search keys use the internal date).
    r#"
ALTER TABLE entries ADD COLUMN saved INTEGER;
"#,
    // v10: message row ids are never reused (IMAP's EMAILID, RFC 8474 §5.1,
    // is built from them and must not name a different message later).
    // SQLite hands out max(rowid) + 1, which reuses the id of the newest
    // message once it is deleted; `last_message_id` is the high-water mark
    // the insert counts up from instead.
    r#"
INSERT INTO meta(key, value) VALUES ('last_message_id', (SELECT coalesce(max(id), 0) FROM messages))
    ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value);
"#,
    // v11: aliases and per-domain catch-alls (see aliases.rs): one row per
    // (address, target); `address` is `local@domain` or `@domain`. Sieve
    // scripts and remembered ids (see sieve.rs).
    r#"
CREATE TABLE IF NOT EXISTS aliases(
    address TEXT NOT NULL COLLATE NOCASE,
    target TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY(address, target)
) WITHOUT ROWID;
-- Sieve (see sieve.rs): each user's scripts, at most one active; and the
-- ids scripts remember (duplicate, vacation's once per period) until
-- they expire.
CREATE TABLE IF NOT EXISTS sieve_scripts(
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    script BLOB NOT NULL,
    active INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY(user_id, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sieve_seen(
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    expires INTEGER NOT NULL,
    PRIMARY KEY(user_id, id)
) WITHOUT ROWID;
"#,
    // v12 (THREADID, RFC 8474 §5.2; see threads.rs): each message's thread,
    // and which thread each Message-ID seen so far (a message's own, its
    // In-Reply-To and References) belongs to. Messages stored before v12
    // are each their own thread; their Message-IDs are recorded (the
    // oldest message first) so replies arriving later join them.
    r#"
ALTER TABLE messages ADD COLUMN thread_id INTEGER;
UPDATE messages SET thread_id = id;
CREATE TABLE IF NOT EXISTS thread_refs(
    msgid TEXT PRIMARY KEY,
    thread_id INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS messages_thread ON messages(thread_id);
INSERT OR IGNORE INTO thread_refs(msgid, thread_id)
    SELECT substr(value, instr(value, '<') + 1, instr(value, '>') - instr(value, '<') - 1), message_id
    FROM message_headers
    WHERE name = 'message-id' AND instr(value, '>') > instr(value, '<') + 1 AND instr(value, '<') > 0
    ORDER BY message_id;
"#,
    // v13: per-user quotas (IMAP QUOTA, RFC 9208; see quota.rs): the
    // limits (NULL: none) and the usage they are checked against, kept
    // exact by triggers on every entry added or removed (deliver, APPEND,
    // COPY, MOVE, EXPUNGE, DELETE): a message counts once per mailbox
    // that holds it, with its full size, as Dovecot counts. Entries are
    // always deleted before their message and their mailbox (tx.rs), so
    // both are still there to read when the trigger runs.
    r#"
ALTER TABLE users ADD COLUMN quota_storage INTEGER;
ALTER TABLE users ADD COLUMN quota_messages INTEGER;
ALTER TABLE users ADD COLUMN used_storage INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN used_messages INTEGER NOT NULL DEFAULT 0;
UPDATE users SET
    used_storage = (SELECT coalesce(sum(m.size), 0) FROM mailboxes b
        JOIN entries e ON e.mailbox_id = b.id JOIN messages m ON m.id = e.message_id
        WHERE b.user_id = users.id),
    used_messages = (SELECT count(*) FROM mailboxes b
        JOIN entries e ON e.mailbox_id = b.id WHERE b.user_id = users.id);
CREATE TRIGGER IF NOT EXISTS entries_usage_add AFTER INSERT ON entries BEGIN
    UPDATE users SET
        used_storage = used_storage + (SELECT size FROM messages WHERE id = NEW.message_id),
        used_messages = used_messages + 1
    WHERE id = (SELECT user_id FROM mailboxes WHERE id = NEW.mailbox_id);
END;
CREATE TRIGGER IF NOT EXISTS entries_usage_del AFTER DELETE ON entries BEGIN
    UPDATE users SET
        used_storage = max(0, used_storage - coalesce((SELECT size FROM messages WHERE id = OLD.message_id), 0)),
        used_messages = max(0, used_messages - 1)
    WHERE id = (SELECT user_id FROM mailboxes WHERE id = OLD.mailbox_id);
END;
"#,
    // v14 (issue 21): header SEARCH without a lookup per message. The
    // decoded values (as in message_headers) of the fields clients search
    // most, ASCII lower-cased as SEARCH compares them, kept per mailbox
    // entry so that one (mailbox, field) is one contiguous key range: a
    // SUBJECT or FROM search is one range scan (see search/sql.rs).
    // `hrow` (the message_headers row) tells apart several fields of one
    // name. Kept by triggers on every entry added or removed, like the
    // quota usage; entries saved before v14 are indexed here.
    concat!(
        r#"
CREATE TABLE IF NOT EXISTS header_index(
    mailbox_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    uid INTEGER NOT NULL,
    hrow INTEGER NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY(mailbox_id, name, uid, hrow)
) WITHOUT ROWID;
INSERT OR IGNORE INTO header_index(mailbox_id, name, uid, hrow, value)
    SELECT e.mailbox_id, h.name, e.uid, h.rowid, lower(h.value)
    FROM entries e JOIN message_headers h ON h.message_id = e.message_id
    WHERE h.name IN ("#,
        indexed_headers!(),
        r#");
CREATE TRIGGER IF NOT EXISTS entries_header_index_add AFTER INSERT ON entries BEGIN
    INSERT OR IGNORE INTO header_index(mailbox_id, name, uid, hrow, value)
        SELECT NEW.mailbox_id, h.name, NEW.uid, h.rowid, lower(h.value)
        FROM message_headers h
        WHERE h.message_id = NEW.message_id AND h.name IN ("#,
        indexed_headers!(),
        r#");
END;
CREATE TRIGGER IF NOT EXISTS entries_header_index_del AFTER DELETE ON entries BEGIN
    DELETE FROM header_index
        WHERE mailbox_id = OLD.mailbox_id AND name IN ("#,
        indexed_headers!(),
        r#") AND uid = OLD.uid;
END;
"#
    ),
    // v15 (issue 18): leases on queued recipients, for front ends that
    // share one queue (PostgreSQL, see pg/outq.rs): who is delivering a
    // recipient and until when (Unix milliseconds, the database's clock).
    // A SQLite store has one delivering process and leaves them NULL; the
    // columns exist so that both schemas match (`minimail migrate`).
    r#"
ALTER TABLE outq_rcpt ADD COLUMN lease_owner TEXT;
ALTER TABLE outq_rcpt ADD COLUMN lease_until INTEGER;
"#,
    // v16: PostgreSQL's pg_trgm index for SEARCH TEXT/BODY (pg/search.rs);
    // SQLite has its FTS5 trigram index since v1, so nothing here. The
    // version moves in step with PostgreSQL's.
    "",
    // v17: PostgreSQL's body index over the body's distinct words
    // (pg/schema.rs); nothing on SQLite.
    "",
    // v18: PostgreSQL's NOTIFY when a queued recipient becomes free to
    // claim (pg/notify.rs `QUEUE_TRIGGER_SQL`); nothing on SQLite.
    "",
    // v19: PostgreSQL's message side tables without foreign keys and its
    // words trigger with WHEN conditions (pg/schema.rs); nothing on SQLite.
    "",
    // v20 (issue 21): the envelope also in a compact binary form
    // (envelope_bin.rs), read by the metadata FETCH instead of parsing the
    // JSON. Filled here for mail stored before; a row whose JSON does not
    // decode keeps NULL and is read from the JSON.
    r#"
ALTER TABLE messages ADD COLUMN envelope_bin BLOB;
UPDATE messages SET envelope_bin = mm_envelope_bin(envelope);
"#,
];

/// `indexed_headers!` as a list: the (lower-case) field names whose
/// SEARCH uses `header_index`.
pub(crate) const INDEXED_HEADERS: [&str; 10] = [
    "subject",
    "from",
    "to",
    "cc",
    "bcc",
    "sender",
    "reply-to",
    "message-id",
    "in-reply-to",
    "list-id",
];

/// Open a connection with the store's pragmas, mapping failures to errors
/// that name the path and the cause.
pub(crate) fn connect(path: &Path, create: bool) -> Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let open_err = |source: rusqlite::Error| classify(path, source);
    crate::walbuf::register();
    let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
    // The first statement that reads the file: a non-database fails here.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(open_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        log::warn!("{}: journal_mode is {mode}, not wal", path.display());
    }
    // 32 MiB page cache (readers and the writer set their own).
    // Temporary files in memory: every write job runs in a SAVEPOINT whose
    // statement journal (original pages, ~60 KiB for an APPEND) otherwise
    // spills to a new file in /var/tmp per batch (open, unlink, a dozen
    // writes: a third of a STORE's time under strace), and /var/tmp may
    // be read-only under the systemd unit's sandboxing.
    conn.execute_batch(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -32768; \
         PRAGMA temp_store = MEMORY;",
    )
    .map_err(open_err)?;
    conn.set_prepared_statement_cache_capacity(64);
    conn.create_scalar_function(
        CONTAINS_FN,
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let hay = ctx.get_raw(0).as_str().unwrap_or("");
            let needle = ctx.get_raw(1).as_str().unwrap_or("");
            Ok(fold_contains(hay, needle))
        },
    )
    .map_err(open_err)?;
    // The v20 migration's conversion of stored JSON envelopes.
    conn.create_scalar_function(
        ENVELOPE_BIN_FN,
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            Ok(ctx
                .get_raw(0)
                .as_str()
                .ok()
                .and_then(crate::envelope_bin::from_json))
        },
    )
    .map_err(open_err)?;
    Ok(conn)
}

/// SQL name of the JSON -> binary envelope conversion (schema v20).
const ENVELOPE_BIN_FN: &str = "mm_envelope_bin";

/// SQL name of the case-folding substring test used for search text not
/// yet in the FTS index: `mm_fold_contains(haystack, needle)`.
pub(crate) const CONTAINS_FN: &str = "mm_fold_contains";

/// Fold one character as FTS5's trigram tokenizer does (one-to-one
/// Unicode lower-casing; characters whose lower case is several
/// characters stay as they are).
pub(crate) fn fold_char(c: char) -> char {
    let mut l = c.to_lowercase();
    match (l.next(), l.next()) {
        (Some(one), None) => one,
        _ => c,
    }
}

/// Case-insensitive substring test with the FTS index's folding, so text
/// that is still waiting for the index matches exactly as indexed text.
pub(crate) fn fold_contains(hay: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    if hay.is_ascii() && needle.is_ascii() {
        return ascii_contains_ignore_case(hay.as_bytes(), needle.as_bytes());
    }
    let hay: String = hay.chars().map(fold_char).collect();
    let needle: String = needle.chars().map(fold_char).collect();
    hay.contains(&needle)
}

/// ASCII case-insensitive substring test: candidates are found with a
/// vectorised search for the needle's first byte in either case (memchr),
/// so text without them is skipped at memory speed.
fn ascii_contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    let (lo, up) = (first.to_ascii_lowercase(), first.to_ascii_uppercase());
    let last_start = match hay.len().checked_sub(needle.len()) {
        Some(n) => n,
        None => return false,
    };
    memchr::memchr2_iter(lo, up, &hay[..=last_start])
        .any(|i| hay[i + 1..i + needle.len()].eq_ignore_ascii_case(rest))
}

/// Corrupt/not-a-database errors become [`StoreError::Corrupt`], the rest
/// [`StoreError::Open`].
fn classify(path: &Path, source: rusqlite::Error) -> StoreError {
    match source.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt) => {
            StoreError::Corrupt(format!("{}: {source}", path.display()))
        }
        _ => StoreError::Open {
            path: path.to_path_buf(),
            source,
        },
    }
}

/// Bring the schema up to date; refuses files from a newer version.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| classify(path, e))?;
    let target = MIGRATIONS.len() as i64;
    if version > target {
        return Err(StoreError::Corrupt(format!(
            "{}: schema version {version} is newer than this program's {target}",
            path.display()
        )));
    }
    if version == target {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| classify(path, e))?;
    // Re-read inside the write lock: another process may have migrated.
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        tx.execute_batch(sql).map_err(|e| classify(path, e))?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
    }
    tx.commit().map_err(|e| classify(path, e))?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The SQL list of the v14 triggers and the list SEARCH consults are
    /// the same fields.
    #[test]
    fn indexed_header_lists_agree() {
        let sql: Vec<String> = INDEXED_HEADERS.iter().map(|n| format!("'{n}'")).collect();
        assert_eq!(sql.join(", "), indexed_headers!());
    }

    /// The bundled SQLite is built without memory statistics (the
    /// workspace's `.cargo/config.toml`): with them every allocation of
    /// every connection takes one process-wide mutex.
    #[test]
    fn sqlite_is_built_without_memory_statistics() {
        let conn = Connection::open_in_memory().unwrap();
        let mut st = conn.prepare("PRAGMA compile_options").unwrap();
        let opts: Vec<String> = st
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(
            opts.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "compile options: {opts:?}"
        );
        // Nor with one page-cache group (and mutex) for all connections.
        assert!(
            !opts.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "compile options: {opts:?}"
        );
    }
}
