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
//!   job; the job that saw it fail gets the error.
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
        StoreError::Postgres(pg_message(&e))
    }
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
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(std::time::Duration::from_secs(10));
    }
    config.application_name("minimail");
    config.connect(NoTls).map_err(|e| {
        StoreError::Postgres(format!(
            "cannot connect to {}: {}",
            redact(url),
            pg_message(&e)
        ))
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

    /// Run `f` in one read-only snapshot (REPEATABLE READ).
    pub(crate) fn snapshot<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        if self.in_read.get() {
            let _ = self.batch("ROLLBACK");
        }
        self.batch("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
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

// Push across front ends (LISTEN/NOTIFY): pg/notify.rs.
pub(crate) mod notify;

// Sieve filing's message rows without an entry: pg/filing.rs.
pub(crate) mod filing;
