//! The PostgreSQL backend: the same [`crate::Store`] / [`crate::Reader`] /
//! [`crate::Tx`] API over a shared PostgreSQL database, so several front
//! ends (`minimail up` on different hosts) can serve one store. Selected by
//! opening a `postgres://` URL instead of a path.
//!
//! # Shape
//! A [`crate::Reader`] or [`crate::Tx`] holds either a SQLite connection
//! or a [`PgConn`] (a sync `postgres::Client`, one per reader thread and
//! one for the writer, in a `RefCell`: one thread per connection); each
//! public method dispatches at its top. The SQL of this dialect lives
//! here: `schema.rs` (schema + migrations, same version numbering as
//! SQLite's), `reader.rs` (reads), `tx.rs` (writes), `writer.rs` (group
//! commit on the writer thread).
//!
//! # Guarantees
//! - A read job runs in one `REPEATABLE READ, READ ONLY` transaction.
//! - The writer batches jobs into one transaction (a savepoint each);
//!   `done` runs only after COMMIT. Each batch first bumps the commit
//!   counter row (`meta.commit_counter`), which also takes that row's
//!   lock: write batches of every front end are serialized as SQLite
//!   serializes writers, so UIDs and MODSEQs (allocated by `UPDATE
//!   mailboxes ... RETURNING` under the mailbox row's lock) are strictly
//!   ascending in commit order and never reused, and
//!   [`crate::Reader::data_version`] counts every front end's commits.
//! - A connection the server dropped (restart) is re-opened by the next
//!   job: found dead at its `BEGIN`, the job runs on a new connection
//!   ([`PgConn::begin`]); cut later, the job fails. Errors that say the
//!   server is gone ([`is_gone`]) are [`StoreError::Unavailable`], which
//!   the servers answer as temporary (`451 4.3.0`, `NO [UNAVAILABLE]`).
//!
//! # Not yet on PostgreSQL
//! Operations listed in [`unsupported`]'s callers (full-text SEARCH
//! TEXT/BODY index, SORT/THREAD fields, the outbound queue, Sieve scripts,
//! aliases, quota limits, DKIM keys, URLAUTH keys, backup and checks)
//! fail with [`StoreError::Unsupported`]: never a panic or a silent wrong
//! answer.

pub(crate) mod aliases;
pub(crate) mod migrate;
pub(crate) mod reader;
pub(crate) mod schema;
pub(crate) mod search;
pub(crate) mod sieve;
pub(crate) mod tx;
pub(crate) mod writer;

use std::cell::{RefCell, RefMut};

use postgres::error::SqlState;
use std::collections::HashMap;

use postgres::{Client, NoTls, Statement};

use crate::error::{Result, StoreError};

/// True if `db` names a PostgreSQL database (`postgres://` or
/// `postgresql://`) rather than a SQLite file.
pub fn is_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// The error for an operation the PostgreSQL backend lacks so far.
pub(crate) fn unsupported<T>(what: &str) -> Result<T> {
    Err(StoreError::Unsupported(format!(
        "not supported on PostgreSQL yet: {what}"
    )))
}

/// `url` with any password replaced, for messages and logs.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (auth, host) = match rest.split_once('@') {
        Some((a, h)) => (a, h),
        None => return url.to_owned(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> StoreError {
        if is_gone(&e) {
            StoreError::Unavailable(pg_message(&e))
        } else {
            StoreError::Postgres(pg_message(&e))
        }
    }
}

/// Whether `e` says the server is gone or going rather than that the
/// statement failed: the connection is closed or broke (an I/O error, a
/// timeout), or the server ends sessions (57P01 admin shutdown, 57P02
/// crash shutdown, 57P03 not accepting connections yet, class 08
/// connection exceptions, 53300 too many connections).
pub(crate) fn is_gone(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        return code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300");
    }
    // The client's own errors: an I/O failure or a timeout has an
    // `io::Error` as its source; a protocol or conversion error has not.
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        if c.is::<std::io::Error>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// The server's message (with its detail) or the client's.
pub(crate) fn pg_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(d) => format!("{}: {} ({d})", db.code().code(), db.message()),
            None => format!("{}: {}", db.code().code(), db.message()),
        },
        // The client's own errors say what failed; the cause (refused,
        // timed out, name unknown) is their source.
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

/// Whether `e` is a unique-constraint violation.
pub(crate) fn is_unique_violation(e: &postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

/// Whether `e` is a foreign-key violation.
pub(crate) fn is_fk_violation(e: &postgres::Error) -> bool {
    e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION)
}

/// One PostgreSQL connection, used by one thread at a time.
pub(crate) struct PgConn {
    url: String,
    client: RefCell<Client>,
    /// Prepared statements by SQL text (cleared on reconnect).
    stmts: RefCell<HashMap<String, Statement>>,
    /// A read snapshot is open (left so by a panicking job: rolled back
    /// before the next one).
    in_read: std::cell::Cell<bool>,
}

impl std::fmt::Debug for PgConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact(&self.url))
    }
}

fn open_client(url: &str) -> Result<Client> {
    let mut config: postgres::Config = url
        .parse()
        .map_err(|e| StoreError::Invalid(format!("bad PostgreSQL URL {}: {e}", redact(url))))?;
    // Bounds on a server that is gone without closing the connection
    // (host down, network cut), unless the URL sets its own: connecting
    // gives up after 10 s; an idle connection is probed after 10 s (then
    // every 5 s), and data the server leaves unacknowledged for 30 s
    // (probes included) closes the connection, so no job waits on a dead
    // server longer than that. A session of ours left idle inside a
    // transaction for 60 s (its front end vanished mid-batch) is ended by
    // the server, so the locks it held do not stop the other front ends.
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(std::time::Duration::from_secs(10));
    }
    if !url.contains("keepalives_idle") {
        config.keepalives_idle(std::time::Duration::from_secs(10));
        config.keepalives_interval(std::time::Duration::from_secs(5));
    }
    if !url.contains("tcp_user_timeout") {
        config.tcp_user_timeout(std::time::Duration::from_secs(30));
    }
    if config.get_options().is_none() {
        config.options("-c idle_in_transaction_session_timeout=60s");
    }
    config.application_name("minimail");
    config.connect(NoTls).map_err(|e| {
        let msg = format!("cannot connect to {}: {}", redact(url), pg_message(&e));
        // A bad password or database stays an error; a server that is
        // not there (yet) is a transient failure.
        if is_gone(&e) {
            StoreError::Unavailable(msg)
        } else {
            StoreError::Postgres(msg)
        }
    })
}

impl PgConn {
    /// Connect to `url`.
    pub(crate) fn connect(url: &str) -> Result<PgConn> {
        Ok(PgConn {
            url: url.to_owned(),
            client: RefCell::new(open_client(url)?),
            stmts: RefCell::new(HashMap::new()),
            in_read: std::cell::Cell::new(false),
        })
    }

    /// The client, re-connected first if the server dropped it.
    pub(crate) fn c(&self) -> Result<RefMut<'_, Client>> {
        let mut c = self
            .client
            .try_borrow_mut()
            .map_err(|_| StoreError::Invalid("PostgreSQL connection re-entered".into()))?;
        if c.is_closed() {
            log::warn!("{}: connection lost; reconnecting", redact(&self.url));
            *c = open_client(&self.url)?;
            self.stmts.borrow_mut().clear();
        }
        Ok(c)
    }

    /// Start a transaction with `sql` (a `BEGIN`). A connection the
    /// server dropped since the last job (a restart) is only found dead
    /// here; nothing has been done on it, so it is opened again and the
    /// `BEGIN` retried once: the job runs instead of failing. Never
    /// retried past this point (a cut COMMIT's outcome is unknown).
    pub(crate) fn begin(&self, sql: &str) -> Result<()> {
        let first = self.c()?.batch_execute(sql);
        match first {
            Ok(()) => Ok(()),
            Err(e) if is_gone(&e) => {
                log::warn!(
                    "{}: connection lost ({}); reconnecting",
                    redact(&self.url),
                    pg_message(&e)
                );
                {
                    let mut c = self.client.try_borrow_mut().map_err(|_| {
                        StoreError::Invalid("PostgreSQL connection re-entered".into())
                    })?;
                    *c = open_client(&self.url)?;
                    self.stmts.borrow_mut().clear();
                }
                self.batch(sql)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Run `f` in one read-only snapshot (REPEATABLE READ).
    pub(crate) fn snapshot<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        if self.in_read.get() {
            let _ = self.batch("ROLLBACK");
        }
        self.begin("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
        self.in_read.set(true);
        let res = f();
        let end = self.batch("COMMIT");
        self.in_read.set(false);
        if let Err(e) = end {
            let _ = self.batch("ROLLBACK");
            if res.is_ok() {
                return Err(e);
            }
        }
        res
    }

    /// The prepared statement for `sql` on `c`.
    fn prep(&self, c: &mut Client, sql: &str) -> Result<Statement> {
        if let Some(s) = self.stmts.borrow().get(sql) {
            return Ok(s.clone());
        }
        let s = c.prepare(sql)?;
        self.stmts.borrow_mut().insert(sql.to_owned(), s.clone());
        Ok(s)
    }

    /// Run statements (no parameters, no rows).
    pub(crate) fn batch(&self, sql: &str) -> Result<()> {
        self.c()?.batch_execute(sql)?;
        Ok(())
    }

    /// Rows of one statement.
    pub(crate) fn rows(
        &self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<postgres::Row>> {
        let mut c = self.c()?;
        let st = self.prep(&mut c, sql)?;
        Ok(c.query(&st, params)?)
    }

    /// At most one row of one statement.
    pub(crate) fn opt(
        &self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Option<postgres::Row>> {
        let mut c = self.c()?;
        let st = self.prep(&mut c, sql)?;
        Ok(c.query_opt(&st, params)?)
    }

    /// Exactly one row of one statement.
    pub(crate) fn one(
        &self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<postgres::Row> {
        let mut c = self.c()?;
        let st = self.prep(&mut c, sql)?;
        Ok(c.query_one(&st, params)?)
    }

    /// Run one statement; the rows it changed.
    pub(crate) fn exec(
        &self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<u64> {
        let mut c = self.c()?;
        let st = self.prep(&mut c, sql)?;
        Ok(c.execute(&st, params)?)
    }

    /// Run one statement inside a savepoint of its own, keeping the
    /// driver's error (for constraint checks): a statement that fails
    /// there does not abort the enclosing transaction.
    pub(crate) fn guarded(
        &self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<std::result::Result<Vec<postgres::Row>, postgres::Error>> {
        let mut c = self.c()?;
        let st = self.prep(&mut c, sql)?;
        c.batch_execute("SAVEPOINT guarded")?;
        let res = c.query(&st, params);
        match &res {
            Ok(_) => c.batch_execute("RELEASE SAVEPOINT guarded")?,
            Err(_) => {
                c.batch_execute("ROLLBACK TO SAVEPOINT guarded; RELEASE SAVEPOINT guarded")?
            }
        }
        Ok(res)
    }
}

/// The outbound queue and its leases (issue 18).
pub(crate) mod outq;
// Push across front ends (LISTEN/NOTIFY): pg/notify.rs.
pub(crate) mod notify;

// Sieve filing's message rows without an entry: pg/filing.rs.
pub(crate) mod filing;
