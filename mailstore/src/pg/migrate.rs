//! `minimail migrate`: copy a single-host SQLite store into an empty
//! PostgreSQL database, so that clients need no resync (same user and
//! mailbox ids, UIDVALIDITY, UIDs, MODSEQs, tombstones, message ids).
//!
//! # How
//! - The source is opened read-only and read in ONE SQLite read
//!   transaction (a WAL snapshot): a store a running `minimail up` keeps
//!   writing is copied as of one commit; what commits after the snapshot
//!   is not copied (the report gives the snapshot's commit counter).
//! - The target is brought to the schema version by the normal
//!   PostgreSQL migrations (`schema.rs`) and must then hold no data
//!   (every copied table empty); the whole copy is one PostgreSQL
//!   transaction, so a failure leaves it as it was.
//! - Table-driven: [`TABLES`] says, for every table of the SQLite schema,
//!   how it is carried over, in dependency order. A table not listed is
//!   an error (also checked by a unit test on a fresh store); a SQLite
//!   column without a PostgreSQL counterpart is an error, so a column
//!   added on one side only is never silently dropped.
//! - Rows stream: each table is read row by row from SQLite and written
//!   with `COPY ... FROM STDIN (FORMAT binary)`; memory stays bounded by
//!   the largest row (one raw message), whatever the store's size.
//! - Derived columns (quota usage kept by triggers) are copied as they
//!   are, with the copied tables' own triggers disabled for the
//!   transaction; identity sequences and the `meta` high-water marks are
//!   moved above the copied ids, so new ids, UIDs and MODSEQs continue
//!   strictly above the copied ones (UIDNEXT and HIGHESTMODSEQ are
//!   mailbox columns and come over as they are).
//! - The outbound queue: a store whose queue is not empty is refused
//!   (deliver or delete those messages first): a message the SQLite
//!   front end is sending at the snapshot would be sent again from the
//!   copy, and its queue rows carry no leases for the PostgreSQL front
//!   ends to share. The queue tables (with v15's lease columns) are in
//!   [`TABLES`] and copied, empty.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use crate::error::{Result, StoreError};
use crate::pg::{pg_message, redact, PgConn};

/// How long the copy waits for a lock on the target's tables.
const LOCK_TIMEOUT: &str = "10s";

/// How one SQLite table is carried over.
#[derive(Clone, Copy, Debug)]
enum How {
    /// Every column into the PostgreSQL table of the same name.
    Copy,
    /// Rows of the SELECT this makes (its column names are the
    /// PostgreSQL table's).
    Select(fn() -> String),
    /// Not copied, for the reason given.
    Skip(&'static str),
}

/// Search text: the FTS5 table's rows and the rows still waiting for
/// the index (their body possibly the raw message's tail: see
/// `indexer.rs`), folded (`pg/search.rs`), with the body's words (v17;
/// the table's trigger is off during the copy), into PostgreSQL's
/// `message_text`.
fn search_text() -> String {
    format!(
        "SELECT rowid AS id, {f}(headers) AS headers, {f}(body) AS body, {w}({f}(body)) AS words
         FROM message_text
         UNION ALL SELECT p.id AS id, {f}(p.headers) AS headers, {f}({b}) AS body,
             {w}({f}({b})) AS words FROM pending_text p",
        f = crate::pg::search::FOLD_FN,
        w = crate::pg::search::WORDS_FN,
        b = crate::indexer::PENDING_BODY
    )
}

/// Every table of the SQLite schema, in dependency order (a table after
/// those it references). `meta` is merged key by key (see [`copy_meta`]).
const TABLES: &[(&str, How)] = &[
    (
        "meta",
        How::Skip("merged key by key, high-water marks raised"),
    ),
    ("users", How::Copy),
    ("mailboxes", How::Copy),
    ("subscriptions", How::Copy),
    ("messages", How::Copy),
    ("message_raw", How::Copy),
    ("message_headers", How::Copy),
    ("message_text", How::Select(search_text)),
    ("pending_text", How::Skip("copied into message_text")),
    ("message_text_data", How::Skip("FTS5 index internals")),
    ("message_text_idx", How::Skip("FTS5 index internals")),
    ("message_text_content", How::Skip("FTS5 index internals")),
    ("message_text_docsize", How::Skip("FTS5 index internals")),
    ("message_text_config", How::Skip("FTS5 index internals")),
    ("entries", How::Copy),
    (
        "header_index",
        How::Skip("SQLite's header SEARCH index (v14); PostgreSQL searches message_headers"),
    ),
    ("expunged", How::Copy),
    ("mailbox_keys", How::Copy),
    ("outq_msg", How::Copy),
    ("outq_body", How::Copy),
    ("outq_rcpt", How::Copy),
    ("dkim_keys", How::Copy),
    ("aliases", How::Copy),
    ("sieve_scripts", How::Copy),
    ("sieve_seen", How::Copy),
    ("thread_refs", How::Copy),
];

/// What [`migrate_sqlite_to_postgres`] copied.
#[derive(Debug, Clone)]
pub struct MigrateReport {
    /// The source file.
    pub from: PathBuf,
    /// The target URL (password hidden).
    pub to: String,
    /// The schema version of both.
    pub schema_version: i64,
    /// The source's commit counter at the snapshot: commits after it are
    /// not in the copy.
    pub commit_counter: i64,
    /// Rows copied per table, in copy order.
    pub tables: Vec<(String, u64)>,
    /// Tables of the source not copied as such, and why.
    pub skipped: Vec<(String, &'static str)>,
    /// Bytes of raw messages copied.
    pub message_bytes: u64,
    /// Text values whose NUL characters were dropped (PostgreSQL's text
    /// cannot hold them).
    pub nul_stripped: u64,
    /// Wall-clock time of the copy.
    pub elapsed: Duration,
}

/// Copy the SQLite store at `from` into the PostgreSQL database at `to`
/// (see the module documentation); `progress` gets each table's name,
/// row count and copy time as it is done.
///
/// # Errors
/// [`StoreError::Invalid`] for a source that is not a minimail store, a
/// schema version other than this program's, a target that is not
/// empty, a non-empty outbound queue, or a table or column the copy does
/// not know; [`StoreError::Postgres`] when the URL does not connect or
/// the server refuses a row (nothing is then left in the target).
pub fn migrate_sqlite_to_postgres(
    from: &Path,
    to: &str,
    mut progress: impl FnMut(&str, u64, Duration),
) -> Result<MigrateReport> {
    let started = Instant::now();
    let src = open_source(from)?;
    // The snapshot: every read below sees the store as of this commit.
    src.execute_batch("BEGIN")?;
    let commit_counter: i64 = src
        .query_row(
            "SELECT value FROM meta WHERE key = 'commit_counter'",
            [],
            |r| r.get(0),
        )
        .map_err(|e| not_minimail(from, &e.to_string()))?;
    let sqlite_tables = sqlite_tables(&src)?;
    check_plan(&sqlite_tables)?;
    let queued: i64 = src.query_row("SELECT count(*) FROM outq_msg", [], |r| r.get(0))?;
    if queued > 0 {
        return Err(StoreError::Invalid(format!(
            "the outbound queue of {} holds {queued} message(s), which a running \
             front end may be sending: let `minimail up` deliver them (or \
             `minimail queue delete` them) first, then migrate",
            from.display()
        )));
    }

    let pg = PgConn::connect(to)?;
    crate::pg::schema::migrate(&pg)?;
    let mut client = pg.c()?;
    // One long transaction: not cut by the statement bound (pg/watch.rs).
    client.unwatch();
    let mut t = client.transaction()?;
    let version: i64 = t
        .query_one("SELECT value FROM meta WHERE key = 'schema_version'", &[])?
        .get(0);
    if version != crate::schema::VERSION {
        return Err(StoreError::Invalid(format!(
            "{} is at schema version {version}, this minimail's is {}",
            redact(to),
            crate::schema::VERSION
        )));
    }
    let mut report = MigrateReport {
        from: from.to_path_buf(),
        to: redact(to),
        schema_version: version,
        commit_counter,
        tables: Vec::new(),
        skipped: Vec::new(),
        message_bytes: 0,
        nul_stripped: 0,
        elapsed: Duration::ZERO,
    };
    let copied: Vec<&str> = TABLES
        .iter()
        .filter(|(name, how)| {
            !matches!(how, How::Skip(_)) && sqlite_tables.contains(&name.to_string())
        })
        .map(|(name, _)| *name)
        .collect();
    // Derived columns (quota usage) come over as they are: the copied
    // tables' triggers stay off until the copy is done. This also locks
    // every copied table until COMMIT (before the emptiness check, so
    // nothing slips in after it); a front end already using the database
    // makes this wait at most LOCK_TIMEOUT.
    t.batch_execute(&format!("SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))?;
    for name in &copied {
        t.batch_execute(&format!("ALTER TABLE {name} DISABLE TRIGGER USER"))
            .map_err(|e| {
                StoreError::Postgres(format!(
                    "{}: cannot lock table {name} ({}): is a front end using the \
                     database? migrate before starting them",
                    redact(to),
                    pg_message(&e)
                ))
            })?;
    }
    for name in &copied {
        let any: bool = t
            .query_one(&format!("SELECT EXISTS (SELECT 1 FROM {name})"), &[])
            .map_err(|e| {
                StoreError::Postgres(format!("{}: table {name}: {}", redact(to), pg_message(&e)))
            })?
            .get(0);
        if any {
            return Err(StoreError::Invalid(format!(
                "{} is not empty (table {name} has rows): migrate copies into an empty \
                 database only (a new one, or one whose schema minimail created and \
                 which holds no data)",
                redact(to)
            )));
        }
    }
    for (name, how) in TABLES {
        let select = match how {
            How::Skip(why) => {
                if sqlite_tables.contains(&name.to_string()) {
                    report.skipped.push(((*name).to_owned(), *why));
                }
                continue;
            }
            _ if !sqlite_tables.contains(&name.to_string()) => continue,
            How::Copy => {
                let cols = sqlite_columns(&src, name)?;
                let list: Vec<String> = cols.iter().map(|c| format!("\"{c}\"")).collect();
                format!("SELECT {} FROM {name}", list.join(", "))
            }
            How::Select(make) => make(),
        };
        let table_started = Instant::now();
        let rows = copy_table(&src, &mut t, name, &select, &mut report)?;
        progress(name, rows, table_started.elapsed());
        report.tables.push(((*name).to_owned(), rows));
    }
    for name in &copied {
        t.batch_execute(&format!("ALTER TABLE {name} ENABLE TRIGGER USER"))?;
    }
    copy_meta(&src, &mut t)?;
    raise_sequences(&mut t, &copied)?;
    t.commit()?;
    src.execute_batch("COMMIT")?;
    report.elapsed = started.elapsed();
    Ok(report)
}

fn not_minimail(path: &Path, why: &str) -> StoreError {
    StoreError::Invalid(format!(
        "{} is not a minimail store ({why})",
        path.display()
    ))
}

/// The source, read-only, after checking it is a minimail store of this
/// program's schema version.
fn open_source(path: &Path) -> Result<Connection> {
    if !path.is_file() {
        return Err(StoreError::Invalid(format!(
            "{}: no such file (give the SQLite store's path, e.g. sqlite:./minimail.db)",
            path.display()
        )));
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn =
        Connection::open_with_flags(path, flags).map_err(|e| not_minimail(path, &e.to_string()))?;
    conn.busy_timeout(crate::schema::BUSY_TIMEOUT)?;
    // Search text goes over folded, as PostgreSQL's `message_text` keeps it.
    crate::pg::search::register_fold(&conn)?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| not_minimail(path, &e.to_string()))?;
    let has_meta: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta')",
            [],
            |r| r.get(0),
        )
        .map_err(|e| not_minimail(path, &e.to_string()))?;
    if version == 0 || !has_meta {
        return Err(not_minimail(path, "no minimail schema in it"));
    }
    if version != crate::schema::VERSION {
        let hint = if version < crate::schema::VERSION {
            "open it once with this minimail (e.g. `minimail user list --db PATH`) to migrate it, then run migrate again"
        } else {
            "run the newer minimail that wrote it"
        };
        return Err(StoreError::Invalid(format!(
            "{} is at schema version {version}, this minimail's is {}: {hint}",
            path.display(),
            crate::schema::VERSION
        )));
    }
    Ok(conn)
}

/// The source's tables (SQLite's own `sqlite_*` aside).
fn sqlite_tables(src: &Connection) -> Result<Vec<String>> {
    let mut st = src.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
    )?;
    let names = st
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(names)
}

/// Every table of the source is in [`TABLES`].
fn check_plan(tables: &[String]) -> Result<()> {
    let unknown: Vec<&str> = tables
        .iter()
        .filter(|t| !TABLES.iter().any(|(n, _)| n == t))
        .map(String::as_str)
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(StoreError::Invalid(format!(
        "the store has table(s) migrate does not know: {} (list them in mailstore/src/pg/migrate.rs)",
        unknown.join(", ")
    )))
}

/// A SQLite table's column names, in order.
fn sqlite_columns(src: &Connection, table: &str) -> Result<Vec<String>> {
    let mut st = src.prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?;
    let cols = st
        .query_map([table], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(cols)
}

/// One value converted for the PostgreSQL column's type.
enum Val {
    I64(Option<i64>),
    I32(Option<i32>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
}

impl Val {
    fn sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Val::I64(v) => v,
            Val::I32(v) => v,
            Val::Text(v) => v,
            Val::Bytes(v) => v,
        }
    }
}

/// `v` as a value of PostgreSQL type `ty`, or why not.
fn convert(v: ValueRef<'_>, ty: &Type, nul_stripped: &mut u64) -> std::result::Result<Val, String> {
    let int = |v: ValueRef<'_>| -> std::result::Result<Option<i64>, String> {
        match v {
            ValueRef::Null => Ok(None),
            ValueRef::Integer(i) => Ok(Some(i)),
            ValueRef::Real(f) if f.fract() == 0.0 && f.abs() < 9.0e18 => Ok(Some(f as i64)),
            ValueRef::Text(t) => std::str::from_utf8(t)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .map(Some)
                .ok_or_else(|| {
                    format!(
                        "text {:?} where a number belongs",
                        String::from_utf8_lossy(t)
                    )
                }),
            other => Err(format!("{:?} where a number belongs", other.data_type())),
        }
    };
    Ok(match *ty {
        Type::INT8 => Val::I64(int(v)?),
        Type::INT4 => Val::I32(
            int(v)?
                .map(i32::try_from)
                .transpose()
                .map_err(|_| "a number too large for an integer column".to_owned())?,
        ),
        Type::TEXT | Type::VARCHAR => Val::Text(match v {
            ValueRef::Null => None,
            ValueRef::Integer(i) => Some(i.to_string()),
            ValueRef::Real(f) => Some(f.to_string()),
            ValueRef::Text(b) | ValueRef::Blob(b) => {
                let s = String::from_utf8_lossy(b);
                if s.contains('\0') {
                    *nul_stripped += 1;
                    Some(s.replace('\0', ""))
                } else {
                    Some(s.into_owned())
                }
            }
        }),
        Type::BYTEA => Val::Bytes(match v {
            ValueRef::Null => None,
            ValueRef::Text(b) | ValueRef::Blob(b) => Some(b.to_vec()),
            ValueRef::Integer(i) => Some(i.to_string().into_bytes()),
            ValueRef::Real(f) => Some(f.to_string().into_bytes()),
        }),
        ref other => return Err(format!("PostgreSQL type {other} is not handled by migrate")),
    })
}

/// Stream the rows of `select` (on the source) into PostgreSQL's `table`
/// with binary COPY; the number of rows.
fn copy_table(
    src: &Connection,
    t: &mut postgres::Transaction<'_>,
    table: &str,
    select: &str,
    report: &mut MigrateReport,
) -> Result<u64> {
    let mut st = src.prepare(select)?;
    let cols: Vec<String> = st.column_names().iter().map(|c| (*c).to_owned()).collect();
    // The PostgreSQL table's columns and their types.
    let pg_cols: Vec<(String, Type)> = {
        let probe = t
            .prepare(&format!("SELECT * FROM {table} LIMIT 0"))
            .map_err(|e| {
                StoreError::Invalid(format!(
                    "table {table} has no PostgreSQL counterpart: {}",
                    pg_message(&e)
                ))
            })?;
        probe
            .columns()
            .iter()
            .map(|c| (c.name().to_owned(), c.type_().clone()))
            .collect()
    };
    let mut types = Vec::with_capacity(cols.len());
    for c in &cols {
        match pg_cols.iter().find(|(n, _)| n == c) {
            Some((_, ty)) => types.push(ty.clone()),
            None => {
                return Err(StoreError::Invalid(format!(
                    "column {table}.{c} of the SQLite store has no PostgreSQL counterpart: \
                     add it to the PostgreSQL schema (or teach mailstore/src/pg/migrate.rs)"
                )))
            }
        }
    }
    let list: Vec<String> = cols.iter().map(|c| format!("\"{c}\"")).collect();
    let copy = format!(
        "COPY {table} ({}) FROM STDIN (FORMAT binary)",
        list.join(", ")
    );
    let writer = t.copy_in(&copy)?;
    let mut w = BinaryCopyInWriter::new(writer, &types);
    let raw_col = (table == "message_raw")
        .then(|| cols.iter().position(|c| c == "raw"))
        .flatten();
    let mut rows = st.query([])?;
    let mut n: u64 = 0;
    let mut vals: Vec<Val> = Vec::with_capacity(cols.len());
    while let Some(row) = rows.next()? {
        vals.clear();
        for (i, ty) in types.iter().enumerate() {
            let v = row.get_ref(i)?;
            if Some(i) == raw_col {
                if let ValueRef::Blob(b) = v {
                    report.message_bytes += b.len() as u64;
                }
            }
            let val = convert(v, ty, &mut report.nul_stripped).map_err(|why| {
                StoreError::Invalid(format!(
                    "{table}.{} (row {}): {why}; nothing was copied",
                    cols[i],
                    n + 1
                ))
            })?;
            vals.push(val);
        }
        let refs: Vec<&(dyn ToSql + Sync)> = vals.iter().map(Val::sql).collect();
        w.write(&refs)
            .map_err(|e| StoreError::Postgres(format!("copying {table}: {}", pg_message(&e))))?;
        n += 1;
    }
    w.finish().map_err(|e| {
        StoreError::Postgres(format!(
            "copying {table}: {}; nothing was copied",
            pg_message(&e)
        ))
    })?;
    Ok(n)
}

/// The source's `meta` rows over the target's, then the id high-water
/// marks raised to the copied ids.
fn copy_meta(src: &Connection, t: &mut postgres::Transaction<'_>) -> Result<()> {
    let mut st = src.prepare("SELECT key, value FROM meta")?;
    let rows = st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (key, value) in rows {
        if key == "schema_version" {
            continue;
        }
        t.execute(
            "INSERT INTO meta(key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&key, &value],
        )?;
    }
    t.batch_execute(
        "INSERT INTO meta(key, value) VALUES
             ('last_user_id', (SELECT coalesce(max(id), 0) FROM users)),
             ('last_message_id', (SELECT coalesce(max(id), 0) FROM messages)),
             ('last_uidvalidity', (SELECT coalesce(max(uidvalidity), 0) FROM mailboxes))
         ON CONFLICT (key) DO UPDATE SET value = greatest(meta.value, excluded.value)",
    )?;
    Ok(())
}

/// Every identity/serial column of the copied tables continues above its
/// highest copied value.
fn raise_sequences(t: &mut postgres::Transaction<'_>, tables: &[&str]) -> Result<()> {
    for table in tables {
        let cols = t.query(
            "SELECT column_name::text, pg_get_serial_sequence(quote_ident($1::text), column_name::text)
             FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name::text = $1::text",
            &[table],
        )?;
        for c in cols {
            let col: String = c.get(0);
            let Some(seq) = c.get::<_, Option<String>>(1) else {
                continue;
            };
            t.execute(
                &format!(
                    "SELECT setval($1::text::regclass, coalesce((SELECT max(\"{col}\") FROM {table}), 0) + 1, false)"
                ),
                &[&seq],
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Every table of a fresh store at this schema version is either
    /// copied or skipped by name: a table added to `schema.rs` without a
    /// line in [`TABLES`] fails here (and migrate refuses to run).
    #[test]
    fn every_sqlite_table_is_copied_or_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = crate::Store::open(&path).unwrap();
        drop(store);
        let conn = open_source(&path).unwrap();
        let tables = sqlite_tables(&conn).unwrap();
        assert!(tables.contains(&"entries".to_owned()), "{tables:?}");
        check_plan(&tables).unwrap();
        // And the plan names no table the schema lacks (a stale line).
        for (name, _) in TABLES {
            assert!(
                tables.iter().any(|t| t == name),
                "{name} is not in the schema"
            );
        }
        // A table the plan does not know is refused.
        let mut more = tables.clone();
        more.push("new_table".into());
        let err = check_plan(&more).unwrap_err().to_string();
        assert!(err.contains("new_table"), "{err}");
    }

    #[test]
    fn values_convert_to_the_target_types() {
        let mut n = 0;
        assert!(matches!(
            convert(ValueRef::Integer(7), &Type::INT8, &mut n),
            Ok(Val::I64(Some(7)))
        ));
        assert!(matches!(
            convert(ValueRef::Null, &Type::INT4, &mut n),
            Ok(Val::I32(None))
        ));
        assert!(convert(ValueRef::Integer(1 << 40), &Type::INT4, &mut n).is_err());
        assert!(convert(ValueRef::Text(b"abc"), &Type::INT8, &mut n).is_err());
        match convert(ValueRef::Text(b"a\0b"), &Type::TEXT, &mut n) {
            Ok(Val::Text(Some(s))) => assert_eq!(s, "ab"),
            _ => panic!("text"),
        }
        assert_eq!(n, 1);
        assert!(
            matches!(convert(ValueRef::Blob(b"\0\x01"), &Type::BYTEA, &mut n), Ok(Val::Bytes(Some(ref b))) if b == b"\0\x01")
        );
    }
}
