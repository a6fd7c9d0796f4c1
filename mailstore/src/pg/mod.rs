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
//!   `done` runs only after COMMIT. UIDs and MODSEQs are allocated by
//!   `UPDATE mailboxes ... RETURNING` under the mailbox row's lock, held
//!   to COMMIT, so they are strictly ascending in commit order and never
//!   reused. Each batch bumps the commit counter row
//!   (`meta.commit_counter`) just before COMMIT, so
//!   [`crate::Reader::data_version`] moves by one per commit of any front
//!   end, while batches of several front ends overlap up to that tail
//!   (see [`PgConn::lock_users`] for the lock order that keeps them free
//!   of deadlocks). Message ids and UIDVALIDITYs come from counters
//!   committed on a connection of their own, never held by a batch.
//! - A connection the server dropped (restart) is re-opened by the next
//!   job: found dead at its `BEGIN`, the job runs on a new connection
//!   ([`PgConn::begin`]); cut later, the job fails. Errors that say the
//!   server is gone ([`is_gone`]) are [`StoreError::Unavailable`], which
//!   the servers answer as temporary (`451 4.3.0`, `NO [UNAVAILABLE]`).
//!
//! # Not on PostgreSQL
//! Every operation the servers, `minimail queue`, `user`, `alias`,
//! `sieve` and `migrate` need exists on both backends (the outbound queue
//! shared through leases, `outq.rs`; SEARCH TEXT/BODY by `pg_trgm`,
//! `search.rs`; push by LISTEN/NOTIFY, `notify.rs`). What is left to
//! PostgreSQL's own tools, `minimail backup` (pg_dump, replication) and
//! `minimail check` (amcheck), goes through [`unsupported`]: a
//! [`StoreError::Unsupported`] naming the tool, never a panic or a silent
//! wrong answer.

pub(crate) mod aliases;
pub(crate) mod deferred;
pub(crate) mod migrate;
pub(crate) mod reader;
pub(crate) mod schema;
pub(crate) mod search;
pub(crate) mod sieve;
pub(crate) mod tx;
mod watch;
pub(crate) mod writer;

use std::cell::{RefCell, RefMut};

use postgres::error::SqlState;
use std::collections::HashMap;

use postgres::{Client, Statement};

use crate::error::{Result, StoreError};
use crate::types::{MailboxId, UserId};

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
    /// The watchdog's view of `client` (watch.rs), replaced on reconnect.
    watch: RefCell<Option<std::sync::Arc<watch::Watch>>>,
    /// Prepared statements by SQL text (cleared on reconnect, and as the
    /// statements run: see [`PgConn::prep`]).
    stmts: RefCell<HashMap<String, Statement>>,
    /// Statements run from `stmts`, and the count at which it is next
    /// cleared (see [`PgConn::prep`]).
    uses: std::cell::Cell<(u64, u64)>,
    /// A read snapshot is open (left so by a panicking job: rolled back
    /// before the next one).
    in_read: std::cell::Cell<bool>,
    /// The writer's state for lock ordering and id allocation (unused on
    /// reader connections).
    write: RefCell<WriteState>,
    /// Deliveries kept to be sent together (deferred.rs).
    deferred: RefCell<Vec<deferred::Deferred>>,
    /// Those are being sent (no other statement sends them first).
    flushing: std::cell::Cell<bool>,
    /// Sending them failed in this batch (even if a job let the error
    /// pass, the batch must not commit).
    flush_failed: std::cell::Cell<bool>,
}

/// Statement runs before the prepared statements are first prepared
/// afresh (see `PgConn::prep`), and the most between two times.
const FIRST_REPLAN: u64 = 256;
const LAST_REPLAN: u64 = 1 << 20;

/// Message ids taken per round trip to the id counter.
const MESSAGE_ID_BLOCK: i64 = 64;
/// Mailbox owners remembered (ids are never reused for another user).
const MAX_OWNERS: usize = 100_000;
/// How long a batch tries, without waiting, to lock users it would lock
/// out of order before the job fails with a temporary error.
const OUT_OF_ORDER_TRIES: u32 = 40;

/// See [`PgConn::lock_users`] and [`PgConn::next_message_id`].
#[derive(Default)]
struct WriteState {
    /// Users whose row this batch has locked, in the order taken.
    held: Vec<UserId>,
    /// Of `held`, those that had no quota limits when locked (see
    /// [`PgConn::unlimited`]).
    unlimited: Vec<UserId>,
    /// Of `held`, those that had an active Sieve script when locked (see
    /// [`PgConn::scripted`]).
    scripted: Vec<UserId>,
    /// The current job's changes to `scripted`: (user, was in it before),
    /// undone if the job is rolled back.
    script_undo: Vec<(UserId, bool)>,
    /// The current job has asked for users' locks (held already or not):
    /// it may have written, so the batch is not committed early for it.
    job_locked: bool,
    /// The batch runs without a savepoint per job (see
    /// `writer::run_optimistic`): a lock out of order fails the job at
    /// once, and the writer runs the whole batch again the usual way.
    optimistic: bool,
    /// The rest of the current block of message ids: next, last.
    ids: Option<(i64, i64)>,
    /// A second connection for counters taken outside the batch
    /// (autocommit, so their rows are never locked for a whole batch).
    aux: Option<Client>,
    /// The watchdog's view of `aux` (watch.rs).
    aux_watch: Option<std::sync::Arc<watch::Watch>>,
    /// Mailbox -> owner.
    owners: HashMap<MailboxId, UserId>,
    /// (Owner, mailbox name) -> mailbox, as statements found them
    /// (deferred.rs: what a kept delivery expects).
    known: HashMap<(UserId, String), MailboxId>,
    /// Mailbox -> (its next UID, UIDVALIDITY, owner) as this batch's last
    /// statement left it (deferred.rs: the UID a kept APPEND gets).
    /// Forgotten when any other statement runs, and with the batch.
    next_uid: HashMap<MailboxId, (i64, i64, UserId)>,
    /// `held.len()` when the current job began (see [`PgConn::job_starts`]).
    job_mark: usize,
    /// Commit counters of the commits made early during the current job
    /// (see [`PgConn::lock_users`]): every job before it is committed.
    early: Vec<i64>,
    /// The current job can be run again from its start (see
    /// [`PgConn::job_starts`]).
    rerunnable: bool,
    /// The current job asked to be run again (a lock out of order, or a
    /// deadlock PostgreSQL detected): see [`PgConn::take_rerun`].
    rerun: bool,
    /// The users the current job locked or wanted before it asked to be
    /// run again: locked first, in order, when it runs again.
    job_users: Vec<UserId>,
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
    // The start-up handshake too is bounded (a server that accepts and
    // never answers): see watch.rs.
    watch::connect(config, url).map_err(|e| match e {
        watch::Connect::Failed(e) => {
            let msg = format!("cannot connect to {}: {}", redact(url), pg_message(&e));
            // A bad password or database stays an error; a server that
            // is not there (yet) is a transient failure.
            if is_gone(&e) {
                StoreError::Unavailable(msg)
            } else {
                StoreError::Postgres(msg)
            }
        }
        watch::Connect::NoAnswer(msg) => StoreError::Unavailable(msg),
    })
}

impl PgConn {
    /// Connect to `url`.
    pub(crate) fn connect(url: &str) -> Result<PgConn> {
        let mut client = open_client(url)?;
        let w = watch::Watch::of(&mut client);
        Ok(PgConn {
            url: url.to_owned(),
            client: RefCell::new(client),
            watch: RefCell::new(w),
            stmts: RefCell::new(HashMap::new()),
            uses: std::cell::Cell::new((0, FIRST_REPLAN)),
            in_read: std::cell::Cell::new(false),
            write: RefCell::new(WriteState::default()),
            deferred: RefCell::new(Vec::new()),
            flushing: std::cell::Cell::new(false),
            flush_failed: std::cell::Cell::new(false),
        })
    }

    /// The client, re-connected first if the server dropped it; while it
    /// is borrowed, the watchdog closes its connection if the server does
    /// not answer within [`watch::bound`] (watch.rs). Deliveries kept to
    /// be sent together are sent first (deferred.rs), so every statement
    /// sees them.
    pub(crate) fn c(&self) -> Result<watch::Busy<'_>> {
        if !self.flushing.get() {
            if !self.deferred.borrow().is_empty() {
                self.flush_deferred()?;
            }
            // This statement may take UIDs (deferred.rs).
            if let Ok(mut w) = self.write.try_borrow_mut() {
                w.next_uid.clear();
            }
        }
        let mut c = self
            .client
            .try_borrow_mut()
            .map_err(|_| StoreError::Invalid("PostgreSQL connection re-entered".into()))?;
        if c.is_closed() {
            log::warn!("{}: connection lost; reconnecting", redact(&self.url));
            self.reopen(&mut c)?;
        }
        let w = self.watch.borrow().clone();
        Ok(watch::Busy::new(c, w))
    }

    /// Whether the connection is closed (lost, or cut by the watchdog).
    pub(crate) fn is_closed(&self) -> bool {
        self.client.try_borrow().is_ok_and(|c| c.is_closed())
    }

    /// End the transaction, if the connection is still open (a lost one
    /// has none to end: not reconnected just for that).
    pub(crate) fn rollback(&self) {
        self.drop_deferred();
        let open = self.client.try_borrow().is_ok_and(|c| !c.is_closed());
        if open {
            let _ = self.batch("ROLLBACK");
        }
    }

    /// A new connection in `c`'s place (statements and watch renewed).
    fn reopen(&self, c: &mut Client) -> Result<()> {
        *self.watch.borrow_mut() = None;
        *c = open_client(&self.url)?;
        self.stmts.borrow_mut().clear();
        *self.watch.borrow_mut() = watch::Watch::of(c);
        Ok(())
    }

    /// Start a transaction with `sql` (a `BEGIN`). A connection the
    /// server dropped since the last job (a restart) is only found dead
    /// here; nothing has been done on it, so it is opened again and the
    /// `BEGIN` retried once: the job runs instead of failing. Never
    /// retried past this point (a cut COMMIT's outcome is unknown).
    pub(crate) fn begin(&self, sql: &str) -> Result<()> {
        let first = self.c()?.batch_execute(sql);
        // Cut by the watchdog: the server is there but not answering, so
        // a new connection would not be answered either.
        let cut = self.watch.borrow().as_ref().is_some_and(|w| w.was_cut());
        match first {
            Ok(()) => Ok(()),
            Err(e) if is_gone(&e) && !cut => {
                log::warn!(
                    "{}: connection lost ({}); reconnecting",
                    redact(&self.url),
                    pg_message(&e)
                );
                {
                    let mut c = self.client.try_borrow_mut().map_err(|_| {
                        StoreError::Invalid("PostgreSQL connection re-entered".into())
                    })?;
                    self.reopen(&mut c)?;
                }
                self.batch(sql)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Run `f` in one read-only snapshot (REPEATABLE READ).
    pub(crate) fn snapshot<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        if self.in_read.get() {
            self.rollback();
        }
        self.begin("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
        self.in_read.set(true);
        let res = f();
        let end = self.batch("COMMIT");
        self.in_read.set(false);
        if let Err(e) = end {
            self.rollback();
            if res.is_ok() {
                return Err(e);
            }
        }
        res
    }

    /// The prepared statement for `sql` on `c`.
    ///
    /// PostgreSQL plans a prepared statement for its table sizes when it
    /// is prepared, and keeps that plan until the tables are analyzed
    /// (autovacuum: a minute or more on a busy server). A plan made while
    /// a table was nearly empty (a new store) reads it whole, which costs
    /// more with every row it gains: `thread_refs`, read by each delivery,
    /// made a delivery's cost grow with the number of messages stored.
    /// So the statements are prepared afresh, with the sizes of the time,
    /// after [`FIRST_REPLAN`] runs and again each time that count has
    /// doubled, up to every [`LAST_REPLAN`] runs.
    fn prep(&self, c: &mut Client, sql: &str) -> Result<Statement> {
        let (uses, next) = self.uses.get();
        if uses >= next {
            self.stmts.borrow_mut().clear();
            self.uses.set((0, (next * 2).min(LAST_REPLAN)));
        } else {
            self.uses.set((uses + 1, next));
        }
        if let Some(s) = self.stmts.borrow().get(sql) {
            return Ok(s.clone());
        }
        let s = c.prepare(sql)?;
        self.stmts.borrow_mut().insert(sql.to_owned(), s.clone());
        Ok(s)
    }

    /// Run statements (no parameters, no rows).
    pub(crate) fn batch(&self, sql: &str) -> Result<()> {
        let r = self.c()?.batch_execute(sql);
        self.checked(r)
    }

    /// `r` as a store result, a deadlock noted first ([`PgConn::saw`]).
    fn checked<T>(&self, r: std::result::Result<T, postgres::Error>) -> Result<T> {
        r.map_err(|e| {
            self.saw(&e);
            e.into()
        })
    }

    /// Rows of one statement.
    pub(crate) fn rows(
        &self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<postgres::Row>> {
        let mut c = self.c()?;
        let st = self.prep(&mut c, sql)?;
        let r = c.query(&st, params);
        drop(c);
        self.checked(r)
    }

    /// At most one row of one statement.
    pub(crate) fn opt(
        &self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Option<postgres::Row>> {
        let mut c = self.c()?;
        let st = self.prep(&mut c, sql)?;
        let r = c.query_opt(&st, params);
        drop(c);
        self.checked(r)
    }

    /// Exactly one row of one statement.
    pub(crate) fn one(
        &self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<postgres::Row> {
        let mut c = self.c()?;
        let st = self.prep(&mut c, sql)?;
        let r = c.query_one(&st, params);
        drop(c);
        self.checked(r)
    }

    /// Run one statement; the rows it changed.
    pub(crate) fn exec(
        &self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<u64> {
        let mut c = self.c()?;
        let st = self.prep(&mut c, sql)?;
        let r = c.execute(&st, params);
        drop(c);
        self.checked(r)
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
        if let Err(e) = &res {
            self.saw(e);
        }
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

/// Write batches of several front ends overlap: nothing every batch needs
/// is locked for the whole batch (message ids and UIDVALIDITY come from
/// counters committed on their own; the commit counter is bumped just
/// before COMMIT). What orders UIDs and MODSEQs is the mailbox row's lock,
/// held to COMMIT; every write that changes a mailbox row or its entries
/// first locks its owner's `users` row ([`PgConn::lock_users`]), so
/// mailbox rows are only ever locked under their owner's lock, and users
/// are locked in ascending id order within a batch. A user that would be
/// locked out of order (lower than one the batch holds) is only tried
/// without waiting: two batches can then never wait on each other in a
/// cycle over users and mailboxes (a deadlock). A job that holds no lock
/// of its own yet commits the jobs before it and waits in order; one that
/// does and can run again ([`PgConn::job_starts`]) is run again by the
/// writer, first in a new transaction with its users locked in order (as
/// is one PostgreSQL picked as a deadlock's victim); any other job that
/// cannot get its lock in time fails with a temporary error (SMTP 451,
/// IMAP NO) instead of waiting for PostgreSQL's deadlock detector. (What this does
/// not order: two front ends storing messages that share a Message-ID or
/// reference at the same moment may wait on each other's `thread_refs`
/// row; PostgreSQL's detector then fails one job, temporarily.)
impl PgConn {
    /// The batch starting runs without a savepoint per job (`yes`), or
    /// with them.
    pub(crate) fn set_optimistic(&self, yes: bool) {
        self.write.borrow_mut().optimistic = yes;
    }

    /// A write batch starts: it holds no locks yet.
    pub(crate) fn begin_batch(&self) {
        self.drop_deferred();
        self.flush_failed.set(false);
        let mut w = self.write.borrow_mut();
        w.next_uid.clear();
        w.held.clear();
        w.unlimited.clear();
        w.scripted.clear();
        w.job_mark = 0;
        w.early.clear();
    }

    /// A job of the batch starts (inside its savepoint `job`);
    /// `rerunnable`: it can be run again from its start, so a lock it
    /// cannot take in order is not waited for but asked for as a rerun
    /// ([`PgConn::take_rerun`]).
    pub(crate) fn job_starts(&self, rerunnable: bool) {
        let mut w = self.write.borrow_mut();
        w.job_mark = w.held.len();
        w.early.clear();
        w.rerunnable = rerunnable;
        w.rerun = false;
        w.job_users.clear();
        w.script_undo.clear();
        w.job_locked = false;
    }

    /// Whether the job that just ran asked to be run again; if so, the
    /// users it locked or wanted (to lock first, in order, when it runs
    /// again in a transaction that holds nothing).
    pub(crate) fn take_rerun(&self) -> Option<Vec<UserId>> {
        let mut w = self.write.borrow_mut();
        if !std::mem::take(&mut w.rerun) {
            return None;
        }
        let mut users = std::mem::take(&mut w.job_users);
        users.sort_unstable();
        users.dedup();
        Some(users)
    }

    /// Whether the job running asked to be run again (it should stop).
    pub(crate) fn rerun_asked(&self) -> bool {
        self.write.try_borrow().is_ok_and(|w| w.rerun)
    }

    /// The current job (if it can be run again) is to be: note the users
    /// it holds and `wanted`.
    fn ask_rerun(&self, wanted: &[UserId]) -> bool {
        let Ok(mut w) = self.write.try_borrow_mut() else {
            return false;
        };
        if !w.rerunnable {
            return false;
        }
        let mark = w.job_mark.min(w.held.len());
        let mine: Vec<UserId> = w.held[mark..].to_vec();
        w.job_users.extend(mine);
        w.job_users.extend_from_slice(wanted);
        w.rerun = true;
        true
    }

    /// A deadlock PostgreSQL detected (40P01) ended a statement of the
    /// current job: a job that can run again is run again (its locks in
    /// order, in a new transaction) instead of failing.
    fn saw(&self, e: &postgres::Error) {
        if e.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED) && self.ask_rerun(&[]) {
            log::info!(
                "mail store: {}; the job runs again",
                pg_message(e).replace('\n', " ")
            );
        }
    }

    /// Commit the jobs of the batch before the current one, whose work
    /// (if any: `sql` rolls it back first) is not kept, and go on in a
    /// new transaction, the savepoint `job` taken: the writer runs the
    /// job again there ([`PgConn::take_rerun`]).
    pub(crate) fn commit_for_rerun(&self) -> Result<()> {
        self.commit_so_far("ROLLBACK TO SAVEPOINT job; RELEASE SAVEPOINT job")
    }

    /// The commit counters of the commits made early during the job that
    /// just ran: if any, every job before it in the batch is committed.
    pub(crate) fn take_early_commits(&self) -> Vec<i64> {
        std::mem::take(&mut self.write.borrow_mut().early)
    }

    /// Commit the batch so far in the middle of a job that has locked
    /// nothing yet (so it has written nothing either: every write locks
    /// its owner first), then go on in a new transaction holding no locks:
    /// the job's users can then be waited for in order. The jobs before it
    /// are committed (the writer completes them, [`PgConn::take_early_commits`]).
    fn commit_early(&self) -> Result<()> {
        self.commit_so_far("RELEASE SAVEPOINT job")
    }

    /// `end` (ends the savepoint `job`), then the batch so far committed
    /// (its counter noted for [`PgConn::take_early_commits`]), then a new
    /// transaction with the savepoint `job` taken.
    fn commit_so_far(&self, end: &str) -> Result<()> {
        let v = self.batch_value(&format!(
            "{end}; UPDATE meta SET value = value + 1 WHERE key = 'commit_counter' RETURNING value"
        ))?;
        let counter = v
            .and_then(|v| v.parse::<i64>().ok())
            .ok_or_else(|| StoreError::Postgres("no commit counter row".into()))?;
        self.batch("COMMIT")?;
        {
            let mut w = self.write.borrow_mut();
            w.early.push(counter);
            w.held.clear();
            w.unlimited.clear();
            w.scripted.clear();
            w.job_mark = 0;
        }
        self.batch("BEGIN; SAVEPOINT job")
    }

    /// How many user locks the batch holds (for [`PgConn::locks_rolled_back`]).
    pub(crate) fn locks_mark(&self) -> usize {
        self.write.borrow().held.len()
    }

    /// A job was rolled back to its savepoint: the locks it took are gone
    /// (and, if it committed the batch early, the ones before it too).
    pub(crate) fn locks_rolled_back(&self, mark: usize) {
        let mut w = self.write.borrow_mut();
        let keep = mark.min(w.job_mark);
        w.held.truncate(keep);
        while let Some((user, was)) = w.script_undo.pop() {
            w.scripted.retain(|&u| u != user);
            if was {
                w.scripted.push(user);
            }
        }
        let WriteState {
            held,
            unlimited,
            scripted,
            ..
        } = &mut *w;
        unlimited.retain(|u| held.contains(u));
        scripted.retain(|u| held.contains(u));
    }

    /// Whether `user` is locked by this batch and had no quota limits
    /// when it was locked: then no delivery can be over its quota, and a
    /// quota check needs no round trip. Exact: limits change only by an
    /// `UPDATE users`, which another front end cannot make while this
    /// batch holds the row, and which this one makes through
    /// [`PgConn::limits_change`].
    pub(crate) fn unlimited(&self, user: UserId) -> bool {
        self.write.borrow().unlimited.contains(&user)
    }

    /// `user`'s limits are being set (or the user deleted): quota checks
    /// read them again.
    pub(crate) fn limits_change(&self, user: UserId) {
        self.write.borrow_mut().unlimited.retain(|&u| u != user);
    }

    /// Of `users` (each locked by this batch first), those with an active
    /// Sieve script, each once, in the order given. Exact for the batch:
    /// activating or deactivating a script locks its user's row
    /// ([`PgConn::script_change`]), so no other front end changes it
    /// while this batch holds the row. Usually no round trip: the lock
    /// already taken for an earlier job of the batch read it.
    pub(crate) fn users_with_active_script(&self, users: &[UserId]) -> Result<Vec<UserId>> {
        let scripted: Vec<UserId> = match self.lock_users(users) {
            Ok(()) => self.write.borrow().scripted.clone(),
            // A user that does not exist (any more) has no script; the
            // delivery finds out about it itself.
            Err(StoreError::NotFound(_)) => self
                .rows(
                    "SELECT DISTINCT user_id FROM sieve_scripts WHERE user_id = ANY($1) AND active = 1",
                    &[&users],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect(),
            Err(e) => return Err(e),
        };
        let mut out: Vec<UserId> = Vec::new();
        for &u in users {
            if scripted.contains(&u) && !out.contains(&u) {
                out.push(u);
            }
        }
        Ok(out)
    }

    /// `user`'s active script is now `active` (set by this batch, which
    /// holds the user's row).
    pub(crate) fn script_change(&self, user: UserId, active: bool) {
        let mut w = self.write.borrow_mut();
        let was = w.scripted.contains(&user);
        w.script_undo.push((user, was));
        w.scripted.retain(|&u| u != user);
        if active && w.held.contains(&user) {
            w.scripted.push(user);
        }
    }

    /// Lock the `users` rows of `users` for the rest of the batch (see
    /// above); [`StoreError::NotFound`] names a user that does not exist.
    pub(crate) fn lock_users(&self, users: &[UserId]) -> Result<()> {
        let (want, in_order) = {
            let w = self.write.borrow();
            let mut want: Vec<UserId> = users
                .iter()
                .copied()
                .filter(|u| !w.held.contains(u))
                .collect();
            want.sort_unstable();
            want.dedup();
            let in_order = match (w.held.iter().max(), want.first()) {
                (Some(max), Some(first)) => first > max,
                _ => true,
            };
            (want, in_order)
        };
        if want.is_empty() {
            // Every write locks its owner first: a job that asked for
            // held users only may write to them from here on.
            if !users.is_empty() {
                self.write.borrow_mut().job_locked = true;
            }
            return Ok(());
        }
        // With the lock, whether the user has quota limits and an active
        // Sieve script (one round trip for all three; see
        // PgConn::unlimited, PgConn::users_with_active_script).
        const LOCK: &str = "SELECT id, quota_storage IS NULL AND quota_messages IS NULL,
             EXISTS(SELECT 1 FROM sieve_scripts s WHERE s.user_id = users.id AND s.active = 1)
             FROM users WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE";
        let rows = if in_order {
            self.rows(LOCK, &[&want])?
        } else {
            let sql = format!("{LOCK} NOWAIT");
            let mut tries = 0;
            loop {
                match self.guarded(&sql, &[&want])? {
                    Ok(rows) => break rows,
                    Err(e) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => {
                        if self.write.borrow().optimistic {
                            // Nothing to commit early or roll back to
                            // here: the batch runs again with savepoints.
                            return Err(StoreError::Postgres(format!(
                                "users {want:?} are busy in another front end's batch \
                                 (not waited for: lock order); the batch runs again"
                            )));
                        }
                        // A job that has asked for no users yet (so has
                        // written nothing: every write locks its owner
                        // first, even one an earlier job holds): commit
                        // the jobs before it and wait for its users in
                        // order.
                        if !self.write.borrow().job_locked {
                            self.commit_early()?;
                            break self.rows(LOCK, &[&want])?;
                        }
                        // A job that can run again does, from its start,
                        // in a new transaction holding nothing.
                        if self.ask_rerun(&want) {
                            return Err(StoreError::Postgres(format!(
                                "users {want:?} are busy in another front end's batch \
                                 (not waited for: lock order); the job runs again"
                            )));
                        }
                        tries += 1;
                        if tries >= OUT_OF_ORDER_TRIES {
                            return Err(StoreError::Postgres(format!(
                                "users {want:?} are busy in another front end's batch \
                                 (not waited for: lock order); try again"
                            )));
                        }
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        if rows.len() < want.len() {
            let found: Vec<UserId> = rows.iter().map(|r| r.get(0)).collect();
            let missing = want.iter().find(|u| !found.contains(u)).copied();
            return Err(StoreError::NotFound(format!(
                "user {}",
                missing.unwrap_or_default()
            )));
        }
        let mut w = self.write.borrow_mut();
        w.job_locked = true;
        w.held.extend(want);
        w.unlimited.extend(
            rows.iter()
                .filter(|r| r.get::<_, bool>(1))
                .map(|r| r.get::<_, UserId>(0)),
        );
        w.scripted.extend(
            rows.iter()
                .filter(|r| r.get::<_, bool>(2))
                .map(|r| r.get::<_, UserId>(0)),
        );
        Ok(())
    }

    /// Lock the owner of `mailbox` (as [`PgConn::lock_users`]); the owner.
    pub(crate) fn lock_owner(&self, mailbox: MailboxId) -> Result<UserId> {
        let owner = self.owners_of(&[mailbox])?;
        let Some(&(_, user)) = owner.first() else {
            return Err(StoreError::NotFound(format!("mailbox {mailbox}")));
        };
        self.lock_users(&[user])?;
        Ok(user)
    }

    /// Remember that `mailbox` belongs to `user`.
    pub(crate) fn note_owner(&self, mailbox: MailboxId, user: UserId) {
        let mut w = self.write.borrow_mut();
        if w.owners.len() >= MAX_OWNERS {
            w.owners.clear();
        }
        w.owners.insert(mailbox, user);
    }

    /// `mailbox` is being deleted: no owner to report for it any more.
    pub(crate) fn forget_owner(&self, mailbox: MailboxId) {
        let mut w = self.write.borrow_mut();
        w.owners.remove(&mailbox);
        w.known.retain(|_, id| *id != mailbox);
    }

    /// (mailbox, owner) of each of `ids` that exists, by id; remembered
    /// owners are not looked up again.
    pub(crate) fn owners_of(&self, ids: &[MailboxId]) -> Result<Vec<(MailboxId, UserId)>> {
        let (mut out, missing) = {
            let w = self.write.borrow();
            let mut out = Vec::with_capacity(ids.len());
            let mut missing = Vec::new();
            for &id in ids {
                match w.owners.get(&id) {
                    Some(&u) => out.push((id, u)),
                    None => missing.push(id),
                }
            }
            (out, missing)
        };
        if !missing.is_empty() {
            for r in self.rows(
                "SELECT id, user_id FROM mailboxes WHERE id = ANY($1)",
                &[&missing],
            )? {
                let (id, user): (MailboxId, UserId) = (r.get(0), r.get(1));
                self.note_owner(id, user);
                out.push((id, user));
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// The counter connection, opened (again) if needed. Its commits need
    /// no flush of their own: a batch that uses a value commits after it,
    /// and the counters are also raised to what the tables hold.
    fn aux(&self) -> Result<watch::Busy<'_>> {
        let mut w = self
            .write
            .try_borrow_mut()
            .map_err(|_| StoreError::Invalid("PostgreSQL connection re-entered".into()))?;
        if w.aux.as_ref().is_none_or(|c| c.is_closed()) {
            w.aux = None;
            w.aux_watch = None;
            let mut c = open_client(&self.url)?;
            c.batch_execute("SET synchronous_commit = off; SET lock_timeout = '10s'")?;
            w.aux_watch = watch::Watch::of(&mut c);
            w.aux = Some(c);
        }
        let watch = w.aux_watch.clone();
        RefMut::filter_map(w, |w| w.aux.as_mut())
            .map(|c| watch::Busy::new(c, watch))
            .map_err(|_| StoreError::Postgres("no counter connection".into()))
    }

    /// A new message id, from a block taken from `meta.last_message_id`
    /// in a transaction of its own (so no batch holds that row).
    pub(crate) fn next_message_id(&self) -> Result<i64> {
        if let Some((next, last)) = self.write.borrow_mut().ids.as_mut() {
            if *next <= *last {
                let id = *next;
                *next += 1;
                return Ok(id);
            }
        }
        let last: i64 = self
            .aux()?
            .query_one(
                "UPDATE meta SET value = greatest(value, (SELECT coalesce(max(id), 0) FROM messages)) + $1
                 WHERE key = 'last_message_id' RETURNING value",
                &[&MESSAGE_ID_BLOCK],
            )?
            .get(0);
        let first = last - MESSAGE_ID_BLOCK + 1;
        self.write.borrow_mut().ids = Some((first + 1, last));
        Ok(first)
    }

    /// A new UIDVALIDITY (at least `now`), committed on its own.
    pub(crate) fn next_uidvalidity(&self, now: i64) -> Result<i64> {
        Ok(self
            .aux()?
            .query_one(
                "UPDATE meta SET value = greatest(value + 1, $1) WHERE key = 'last_uidvalidity' RETURNING value",
                &[&now],
            )?
            .get(0))
    }

    /// Run `sql` (simple protocol, several statements in one round trip);
    /// the first column of the last row any of them returned.
    pub(crate) fn batch_value(&self, sql: &str) -> Result<Option<String>> {
        let r = self.c()?.simple_query(sql);
        let msgs = self.checked(r)?;
        Ok(msgs.iter().rev().find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        }))
    }
}
