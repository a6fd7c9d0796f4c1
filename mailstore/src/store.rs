//! The `Store` handle: one writer thread doing group commit, a small pool of
//! reader threads, completion callbacks and commit listeners.
//!
//! Write path: every session sends jobs over one channel. The writer takes
//! all queued jobs (up to [`MAX_BATCH`]), runs `BEGIN IMMEDIATE`, each job in
//! its own `SAVEPOINT` (a failing or panicking job rolls back alone),
//! `COMMIT` (one fsync with synchronous=FULL), and only then calls each
//! job's `done`, then the [`Store::on_commit`] listeners. No SQL outside
//! this crate; no protocol knowledge here.
//!
//! Integrity: opening for service runs a time-bounded `PRAGMA quick_check`
//! ([`OpenOptions::check_time`]) and refuses a damaged file
//! ([`StoreError::Corrupt`]) unless told otherwise; [`check_file`] runs
//! either check on demand. Damage SQLite reports while serving
//! (`SQLITE_CORRUPT`, `SQLITE_NOTADB`, on the writer or a reader) puts the
//! store in a degraded state: every later write fails with
//! [`StoreError::Damaged`] (logged loudly once), reads go on.

use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode};

use crate::error::{fault, Fault, Result, StoreError};
use crate::indexer;
use crate::reader::Reader;
use crate::schema;
use crate::tx::Tx;
use crate::types::MailboxId;

/// Most jobs committed by one transaction.
pub const MAX_BATCH: usize = 256;
/// Reader threads (each with its own connection).
pub const READERS: usize = 3;

type Listener = Arc<dyn Fn(&[MailboxId]) + Send + Sync>;
type Listeners = Arc<Mutex<Vec<Listener>>>;
type Finish = Box<dyn FnOnce(Option<&BatchFailure>) + Send>;
type ReadJob = Box<dyn ReadJobT>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A completion callback that is called exactly once: with the result, or,
/// if dropped uncalled (the job panicked), with [`StoreError::Panicked`].
struct Done<T, D: FnOnce(Result<T>)> {
    done: Option<D>,
    _t: PhantomData<fn(T)>,
}

impl<T, D: FnOnce(Result<T>)> Done<T, D> {
    fn new(done: D) -> Self {
        Done {
            done: Some(done),
            _t: PhantomData,
        }
    }
    fn call(mut self, r: Result<T>) {
        if let Some(d) = self.done.take() {
            d(r);
        }
    }
}

impl<T, D: FnOnce(Result<T>)> Drop for Done<T, D> {
    fn drop(&mut self) {
        if let Some(d) = self.done.take() {
            d(Err(StoreError::Panicked));
        }
    }
}

/// Why a whole batch failed (it could not start, or not commit).
struct BatchFailure {
    fault: Fault,
    msg: String,
}

impl BatchFailure {
    fn new(e: &rusqlite::Error) -> BatchFailure {
        BatchFailure {
            fault: fault(e),
            msg: e.to_string(),
        }
    }

    /// A job's own error, for when it takes the batch down with it.
    fn of(e: &StoreError) -> BatchFailure {
        let fault = match e {
            StoreError::Damaged(_) => Fault::Damaged,
            StoreError::Full(_) => Fault::Full,
            _ => Fault::Other,
        };
        BatchFailure {
            fault,
            msg: e.to_string(),
        }
    }

    /// What each job of the batch is told.
    fn error(&self) -> StoreError {
        let msg = self.msg.clone();
        match self.fault {
            Fault::Damaged => StoreError::Damaged(msg),
            Fault::Full => StoreError::Full(msg),
            Fault::Other => StoreError::CommitFailed(msg),
        }
    }
}

/// The store's degraded state: set by the first damage SQLite reports,
/// never cleared while the process runs.
struct Health {
    path: PathBuf,
    damaged: OnceLock<String>,
}

impl Health {
    fn new(path: &Path) -> Arc<Health> {
        Arc::new(Health {
            path: path.to_path_buf(),
            damaged: OnceLock::new(),
        })
    }

    /// Note what an operation failed with: damage degrades the store.
    fn saw(&self, e: &StoreError) {
        if let StoreError::Damaged(why) = e {
            self.mark(why);
        }
    }

    fn mark(&self, why: &str) {
        if self.damaged.set(why.to_string()).is_ok() {
            log::error!(
                "MAIL STORE DAMAGED: {}: {why}. From now on every write (deliveries, \
                 APPEND, flag changes) is refused with a temporary error, so no mail is \
                 acknowledged that the store may not give back; reads go on. Stop the \
                 servers and run `minimail store check --db {}`",
                self.path.display(),
                self.path.display()
            );
        }
    }

    fn is_damaged(&self) -> bool {
        self.damaged.get().is_some()
    }

    /// What a write is told once the store is degraded.
    fn refusal(&self) -> Option<BatchFailure> {
        self.damaged.get().map(|why| BatchFailure {
            fault: Fault::Damaged,
            msg: format!(
                "{}: writes refused since SQLite reported damage ({why})",
                self.path.display()
            ),
        })
    }
}

/// A type-erased write job.
trait WriteJob: Send {
    /// Run inside the caller's savepoint; returns what the job failed with
    /// (if it did) and the deferred completion (called after COMMIT with
    /// the batch's failure, if any).
    fn run(self: Box<Self>, tx: &mut Tx, health: &Health) -> (Option<BatchFailure>, Finish);
    /// Complete without running (the batch could not start).
    fn fail(self: Box<Self>, err: StoreError);
}

struct Job<F, D, T>
where
    D: FnOnce(Result<T>),
{
    f: F,
    done: Done<T, D>,
}

impl<F, D, T> WriteJob for Job<F, D, T>
where
    F: FnOnce(&mut Tx) -> Result<T> + Send + 'static,
    D: FnOnce(Result<T>) + Send + 'static,
    T: Send + 'static,
{
    fn run(self: Box<Self>, tx: &mut Tx, health: &Health) -> (Option<BatchFailure>, Finish) {
        let Job { f, done } = *self;
        let result = f(tx);
        let failed = result.as_ref().err().map(|e| {
            health.saw(e);
            BatchFailure::of(e)
        });
        let finish: Finish = Box::new(move |failure: Option<&BatchFailure>| match failure {
            None => done.call(result),
            Some(f) => done.call(Err(f.error())),
        });
        (failed, finish)
    }

    fn fail(self: Box<Self>, err: StoreError) {
        self.done.call(Err(err));
    }
}

/// A type-erased read job.
trait ReadJobT: Send {
    fn run(self: Box<Self>, r: &Reader, health: &Health);
    fn fail(self: Box<Self>, err: StoreError);
}

impl<F, D, T> ReadJobT for Job<F, D, T>
where
    F: FnOnce(&Reader) -> Result<T> + Send + 'static,
    D: FnOnce(Result<T>) + Send + 'static,
    T: Send + 'static,
{
    fn run(self: Box<Self>, r: &Reader, health: &Health) {
        let Job { f, done } = *self;
        let res = r.snapshot(f);
        if let Err(e) = &res {
            health.saw(e);
        }
        done.call(res);
    }

    fn fail(self: Box<Self>, err: StoreError) {
        self.done.call(Err(err));
    }
}

/// CPU work run on a reader thread without touching its connection.
struct Compute<F, D, T>
where
    D: FnOnce(Result<T>),
{
    f: F,
    done: Done<T, D>,
}

impl<F, D, T> ReadJobT for Compute<F, D, T>
where
    F: FnOnce() -> T + Send + 'static,
    D: FnOnce(Result<T>) + Send + 'static,
    T: Send + 'static,
{
    fn run(self: Box<Self>, _r: &Reader, _health: &Health) {
        let Compute { f, done } = *self;
        let v = f();
        done.call(Ok(v));
    }

    fn fail(self: Box<Self>, err: StoreError) {
        self.done.call(Err(err));
    }
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Option<Sender<Box<dyn WriteJob>>>>,
    readers: Mutex<Option<Sender<ReadJob>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    listeners: Listeners,
    sync_reader: Mutex<Option<Reader>>,
    health: Arc<Health>,
}

impl Inner {
    fn shutdown(&self) {
        // Dropping the senders lets each thread drain its queue and exit.
        lock(&self.writer).take();
        lock(&self.readers).take();
        let handles: Vec<JoinHandle<()>> = lock(&self.threads).drain(..).collect();
        let me = thread::current().id();
        for h in handles {
            if h.thread().id() == me {
                continue; // shut down from one of our own callbacks
            }
            if h.join().is_err() {
                log::error!("mail store thread panicked");
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Handle to the mailbox store; cheap to clone and share across threads.
///
/// The last handle dropped shuts the store down (as [`Store::shutdown`]).
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish()
    }
}

/// How long the start-up `PRAGMA quick_check` may run by default; a
/// larger store is checked only partly (logged) and served.
pub const STARTUP_CHECK_TIME: Duration = Duration::from_secs(3);

/// How [`Store::open_with`] opens a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOptions {
    /// Time limit of the start-up `PRAGMA quick_check`; `None` skips it.
    /// A check cut short by the limit is logged and counts as passed.
    pub check_time: Option<Duration>,
    /// Serve a file the start-up check finds damaged (logged as an error)
    /// instead of refusing it with [`StoreError::Corrupt`].
    pub allow_corrupt: bool,
    /// Most pages the database file may have (`PRAGMA max_page_count` on
    /// the writer; a value below the current size means "no growth").
    /// Past it writes fail with [`StoreError::Full`] as on a full disk: a
    /// deterministic full disk for tests.
    pub max_pages: Option<u64>,
}

impl Default for OpenOptions {
    /// Check for [`STARTUP_CHECK_TIME`], refuse damage, no page limit.
    fn default() -> OpenOptions {
        OpenOptions {
            check_time: Some(STARTUP_CHECK_TIME),
            allow_corrupt: false,
            max_pages: None,
        }
    }
}

impl OpenOptions {
    /// The defaults, changed by the environment (what [`Store::open`]
    /// uses, so every program honours them): `MINIMAIL_ALLOW_CORRUPT_STORE`
    /// set to anything but empty or `0` sets `allow_corrupt`;
    /// `MINIMAIL_MAX_PAGES=N` sets `max_pages` (for tests: a full disk).
    pub fn from_env() -> OpenOptions {
        let mut o = OpenOptions::default();
        if let Some(v) = std::env::var_os("MINIMAIL_ALLOW_CORRUPT_STORE") {
            o.allow_corrupt = !v.is_empty() && v != "0";
        }
        if let Some(v) = std::env::var_os("MINIMAIL_MAX_PAGES") {
            match v.to_str().and_then(|v| v.trim().parse::<u64>().ok()) {
                Some(n) => o.max_pages = Some(n),
                None => log::warn!("MINIMAIL_MAX_PAGES={v:?} is not a number; ignored"),
            }
        }
        o
    }
}

/// Which SQLite check [`check_file`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// `PRAGMA quick_check`: every page and record, no index content
    /// comparison (O(N)); at most 20 problems are listed.
    Quick,
    /// `PRAGMA integrity_check`: also checks that indexes match their
    /// tables (O(N log N)); at most 100 problems are listed.
    Full,
}

/// What [`check_file`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Integrity {
    /// SQLite's description of each problem; empty if none was found.
    pub problems: Vec<String>,
    /// False if the time limit stopped the check before the end (what was
    /// read until then is in `problems`).
    pub complete: bool,
}

impl Integrity {
    /// No problem found (in the part checked, see `complete`).
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Run SQLite's own check over the store file at `path` (which must exist;
/// a server may be using it: the check reads one snapshot), stopping after
/// `time_limit` if given.
///
/// # Errors
/// [`StoreError::Open`] when the file cannot be opened,
/// [`StoreError::Corrupt`] when it is not a database at all, other SQLite
/// failures.
pub fn check_file(
    path: impl AsRef<Path>,
    kind: Check,
    time_limit: Option<Duration>,
) -> Result<Integrity> {
    let path = path.as_ref();
    let conn = schema::connect(path, false)?;
    let sql = match kind {
        Check::Quick => "PRAGMA quick_check(20)",
        Check::Full => "PRAGMA integrity_check",
    };
    let watchdog = match time_limit {
        Some(limit) => Some(Watchdog::start(&conn, limit)?),
        None => None,
    };
    let mut found = Integrity {
        problems: Vec::new(),
        complete: true,
    };
    let res = check_rows(&conn, sql, &mut found.problems);
    let fired = watchdog.is_some_and(Watchdog::stop);
    match res {
        Ok(()) => {}
        Err(e) if e.sqlite_error_code() == Some(ErrorCode::OperationInterrupted) && fired => {
            found.complete = false;
        }
        // The check itself tripped over the damage.
        Err(e) if fault(&e) == Fault::Damaged => found.problems.push(e.to_string()),
        Err(e) => return Err(e.into()),
    }
    Ok(found)
}

/// Collect the problems the check reports, one a line (a row may hold
/// several lines), without `ok` and the `*** in database main ***` heading.
fn check_rows(conn: &Connection, sql: &str, out: &mut Vec<String>) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let text: String = row.get(0)?;
        for line in text.lines().map(str::trim) {
            if !line.is_empty() && line != "ok" && !line.starts_with("*** in database") {
                out.push(line.to_string());
            }
        }
    }
    Ok(())
}

/// Interrupts a connection's statements once a time limit has passed,
/// until stopped; after [`Watchdog::stop`] it interrupts nothing more.
struct Watchdog {
    stop: Sender<()>,
    thread: JoinHandle<bool>,
}

impl Watchdog {
    fn start(conn: &Connection, limit: Duration) -> Result<Watchdog> {
        let handle = conn.get_interrupt_handle();
        let (stop, rx) = channel::<()>();
        let thread = thread::Builder::new()
            .name("mailstore-check-timer".into())
            .spawn(move || {
                if !matches!(rx.recv_timeout(limit), Err(RecvTimeoutError::Timeout)) {
                    return false;
                }
                // Again and again: an interrupt while no statement runs
                // (between two steps) is forgotten.
                loop {
                    handle.interrupt();
                    if !matches!(
                        rx.recv_timeout(Duration::from_millis(10)),
                        Err(RecvTimeoutError::Timeout)
                    ) {
                        return true;
                    }
                }
            })
            .map_err(|e| StoreError::Invalid(format!("cannot start the check timer: {e}")))?;
        Ok(Watchdog { stop, thread })
    }

    /// Stop; true if the limit had passed.
    fn stop(self) -> bool {
        drop(self.stop);
        self.thread.join().unwrap_or(true)
    }
}

/// The start-up check of [`Store::open_with`].
fn startup_check(path: &Path, limit: Duration, allow_corrupt: bool) -> Result<()> {
    let started = Instant::now();
    let found = check_file(path, Check::Quick, Some(limit))?;
    let shown = |n: usize| {
        let mut s = found
            .problems
            .iter()
            .take(n)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ");
        if found.problems.len() > n {
            s.push_str(&format!("; and {} more", found.problems.len() - n));
        }
        s
    };
    if !found.complete {
        log::warn!(
            "{}: the start-up integrity check (PRAGMA quick_check) was cut short after {:.1} s \
             and found no damage in the part it read; run `minimail store check --db {}` \
             for a full check",
            path.display(),
            limit.as_secs_f64(),
            path.display()
        );
    } else {
        log::debug!(
            "{}: quick_check done in {} ms",
            path.display(),
            started.elapsed().as_millis()
        );
    }
    if found.ok() {
        return Ok(());
    }
    if allow_corrupt {
        log::error!(
            "MAIL STORE DAMAGED: {}: SQLite's quick_check reports: {}. Serving it anyway, as \
             asked (--allow-corrupt-store / MINIMAIL_ALLOW_CORRUPT_STORE)",
            path.display(),
            shown(20)
        );
        return Ok(());
    }
    let p = path.display();
    Err(StoreError::Corrupt(format!(
        "{p} is damaged; SQLite's quick_check reports: {}. It is not served: mail accepted \
         now might never be readable. Stop every program using it, copy it (with its -wal \
         and -shm files) somewhere safe, run `minimail store check --db {p}` for the full \
         report, and recover what SQLite can still read into a new file (`sqlite3 {p} \
         .recover | sqlite3 recovered.db`; see the README). To serve the damaged file \
         anyway, pass --allow-corrupt-store to `minimail up` or set \
         MINIMAIL_ALLOW_CORRUPT_STORE=1",
        shown(3)
    )))
}

impl Store {
    /// Open (creating and migrating as needed) the store at `path` for
    /// service with [`OpenOptions::from_env`], and start the writer and
    /// reader threads.
    ///
    /// # Errors
    /// [`StoreError::Open`] when the file cannot be opened or written (the
    /// message names the path and SQLite's reason), [`StoreError::Corrupt`]
    /// when it is not a minimail database or the start-up check finds it
    /// damaged (the message says how to check and recover it).
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        Store::open_with(path, &OpenOptions::from_env())
    }

    /// [`Store::open`] with explicit options.
    ///
    /// # Errors
    /// As [`Store::open`].
    pub fn open_with(path: impl AsRef<Path>, options: &OpenOptions) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        let mut wconn = schema::connect(&path, true)?;
        if wconn.is_readonly("main").unwrap_or(false) {
            return Err(StoreError::Open {
                path: path.clone(),
                source: rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY),
                    Some("file is read-only".into()),
                ),
            });
        }
        // Before migrating: a damaged file is not written to.
        if let Some(limit) = options.check_time {
            startup_check(&path, limit, options.allow_corrupt)?;
        }
        schema::migrate(&mut wconn, &path)?;
        if let Some(n) = options.max_pages {
            let n = i64::try_from(n).unwrap_or(i64::MAX);
            let now: i64 = wconn
                .query_row(&format!("PRAGMA max_page_count = {n}"), [], |r| r.get(0))
                .map_err(|source| StoreError::Open {
                    path: path.clone(),
                    source,
                })?;
            log::warn!(
                "{}: limited to {now} pages (max_pages / MINIMAIL_MAX_PAGES)",
                path.display()
            );
        }
        let health = Health::new(&path);
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            readers.push(Reader::new(schema::connect(&path, false)?)?);
        }
        let listeners: Listeners = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();

        let (wtx, wrx) = channel::<Box<dyn WriteJob>>();
        let l = listeners.clone();
        let h = health.clone();
        threads.push(spawn("mailstore-writer", move || {
            writer_loop(wconn, wrx, l, h)
        })?);

        let (rtx, rrx) = channel::<ReadJob>();
        let rrx = Arc::new(Mutex::new(rrx));
        for (i, reader) in readers.into_iter().enumerate() {
            let rrx = rrx.clone();
            let h = health.clone();
            threads.push(spawn(&format!("mailstore-reader-{i}"), move || {
                reader_loop(reader, rrx, h)
            })?);
        }
        Ok(Store {
            inner: Arc::new(Inner {
                path,
                writer: Mutex::new(Some(wtx)),
                readers: Mutex::new(Some(rtx)),
                threads: Mutex::new(threads),
                listeners,
                sync_reader: Mutex::new(None),
                health,
            }),
        })
    }

    /// The database file path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The first damage SQLite reported while this store served, if any:
    /// since then every write fails with [`StoreError::Damaged`].
    pub fn damaged(&self) -> Option<String> {
        self.inner.health.damaged.get().cloned()
    }

    /// Run `f` on a reader thread (own connection, one read snapshot), then
    /// call `done` with its result on that thread.
    ///
    /// After [`Store::shutdown`], `done(Err(Closed))` is called at once on
    /// the caller's thread.
    pub fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Reader) -> Result<T> + Send + 'static,
        done: impl FnOnce(Result<T>) + Send + 'static,
    ) {
        let job: ReadJob = Box::new(Job {
            f,
            done: Done::new(done),
        });
        let rejected = match lock(&self.inner.readers).as_ref() {
            Some(tx) => tx.send(job).err().map(|e| e.0),
            None => Some(job),
        };
        if let Some(job) = rejected {
            job.fail(StoreError::Closed);
        }
    }

    /// Run CPU-bound work `f` that needs no database (e.g.
    /// [`crate::PreparedMessage::new`]) on a reader thread, then `done` with
    /// its value on that thread; `done` may queue a write. Keeps parsing off
    /// event loops and off the writer, whose time every commit waits for.
    ///
    /// After [`Store::shutdown`], `done(Err(Closed))` is called at once; if
    /// `f` panics, `done(Err(Panicked))`.
    pub fn compute<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
        done: impl FnOnce(Result<T>) + Send + 'static,
    ) {
        let job: ReadJob = Box::new(Compute {
            f,
            done: Done::new(done),
        });
        let rejected = match lock(&self.inner.readers).as_ref() {
            Some(tx) => tx.send(job).err().map(|e| e.0),
            None => Some(job),
        };
        if let Some(job) = rejected {
            job.fail(StoreError::Closed);
        }
    }

    /// Queue `f` for the writer thread; `done` runs on the writer thread
    /// after the batch holding `f` is durably committed (or with the error
    /// that rolled `f` back, or [`StoreError::CommitFailed`]).
    ///
    /// After [`Store::shutdown`], `done(Err(Closed))` is called at once.
    pub fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Tx) -> Result<T> + Send + 'static,
        done: impl FnOnce(Result<T>) + Send + 'static,
    ) {
        let job: Box<dyn WriteJob> = Box::new(Job {
            f,
            done: Done::new(done),
        });
        let rejected = match lock(&self.inner.writer).as_ref() {
            Some(tx) => tx.send(job).err().map(|e| e.0),
            None => Some(job),
        };
        if let Some(job) = rejected {
            job.fail(StoreError::Closed);
        }
    }

    /// Blocking read on the calling thread with a cached extra connection
    /// (for the CLI and tests; never call it from an event loop).
    pub fn read_sync<T>(&self, f: impl FnOnce(&Reader) -> Result<T>) -> Result<T> {
        if lock(&self.inner.writer).is_none() {
            return Err(StoreError::Closed);
        }
        let cached = lock(&self.inner.sync_reader).take();
        let reader = match cached {
            Some(r) => r,
            None => Reader::new(schema::connect(&self.inner.path, false)?)?,
        };
        let res = reader.snapshot(f);
        if let Err(e) = &res {
            self.inner.health.saw(e);
        }
        *lock(&self.inner.sync_reader) = Some(reader);
        res
    }

    /// Blocking write through the writer thread; returns once committed.
    /// Must not be called from a `done` callback or listener (deadlock).
    pub fn write_sync<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Tx) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = channel();
        self.write(f, move |r| {
            let _ = tx.send(r);
        });
        rx.recv().unwrap_or(Err(StoreError::Closed))
    }

    /// Register a listener called on the writer thread after each durable
    /// batch with the (sorted, distinct) mailboxes it changed (possibly
    /// none). Every committed batch calls it exactly once and bumps
    /// [`Reader::data_version`] by exactly one, so a listener can tell its
    /// own process's commits from another process's.
    pub fn on_commit(&self, listener: impl Fn(&[MailboxId]) + Send + Sync + 'static) {
        lock(&self.inner.listeners).push(Arc::new(listener));
    }

    /// Stop taking jobs, finish every queued job (all `done`s are called),
    /// join the threads. Idempotent; also done when the last handle drops.
    pub fn shutdown(&self) {
        self.inner.shutdown();
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>> {
    thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .map_err(|e| StoreError::Invalid(format!("cannot start thread {name}: {e}")))
}

fn reader_loop(reader: Reader, rx: Arc<Mutex<Receiver<ReadJob>>>, health: Arc<Health>) {
    loop {
        let job = match lock(&rx).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        // A panicking job or `done` must not kill the reader thread.
        if catch_unwind(AssertUnwindSafe(|| job.run(&reader, &health))).is_err() {
            log::error!("mail store read job panicked");
            // Leave no transaction open behind the panic.
            let _ = reader.conn().execute_batch("ROLLBACK");
        }
    }
}

fn writer_loop(
    mut conn: Connection,
    rx: Receiver<Box<dyn WriteJob>>,
    listeners: Listeners,
    health: Arc<Health>,
) {
    // Search text left pending by an earlier run is indexed when idle. The
    // backlog is counted here from then on (no query per batch).
    let mut backlog = indexer::backlog(&conn).unwrap_or(indexer::Backlog { rows: 1, cost: 1 });
    let mut next: Option<Box<dyn WriteJob>> = None;
    loop {
        let first = if let Some(job) = next.take() {
            job
        } else if backlog.rows > 0 {
            // Index only once deliveries pause, so a burst is not slowed;
            // then chunk after chunk for as long as no job arrives.
            match rx.recv_timeout(indexer::QUIET) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => {
                    loop {
                        // Until the table says nothing is pending (the
                        // count is an estimate), or indexing failed (logged;
                        // retried once another batch leaves text).
                        match index_step(&conn, &health) {
                            Some(n) if n.rows > 0 => backlog.sub(n),
                            _ => {
                                backlog = indexer::Backlog::default();
                                break;
                            }
                        }
                        match rx.try_recv() {
                            Ok(job) => {
                                next = Some(job);
                                break;
                            }
                            Err(TryRecvError::Empty) => {}
                            Err(TryRecvError::Disconnected) => return,
                        }
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
        } else {
            match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let Some((mut touched, added)) = run_batch(&mut conn, batch, &health) else {
            continue;
        };
        touched.sort_unstable();
        touched.dedup();
        // Called for every committed batch, even one that touched no
        // mailbox, so listeners can count commits (each bumps
        // `Reader::data_version` by exactly one).
        let ls: Vec<Listener> = lock(&listeners).clone();
        for l in ls {
            if catch_unwind(AssertUnwindSafe(|| l(&touched))).is_err() {
                log::error!("mail store commit listener panicked");
            }
        }
        backlog.add(added);
        // Sustained load may never leave the queue empty: past a bound,
        // index about twice what the batch added (by cost: a 64 KiB message
        // waiting costs more than a small one), so the backlog shrinks in
        // steps small enough not to stall the next batch long.
        if backlog.over_bound() {
            let mut indexed = 0;
            while indexed < 2 * added.cost.max(1) {
                match index_step(&conn, &health) {
                    Some(n) if n.rows > 0 => {
                        indexed += n.cost;
                        backlog.sub(n);
                    }
                    Some(_) => {
                        backlog = indexer::Backlog::default();
                        break;
                    }
                    None => break,
                }
            }
        }
    }
}

/// Index one chunk of pending search text; `None` if that failed (the
/// text stays pending, search still finds it, and it is retried later) or
/// the store is degraded (no writes at all).
fn index_step(conn: &Connection, health: &Health) -> Option<indexer::Backlog> {
    if health.is_damaged() {
        return None;
    }
    match indexer::index_some(conn, indexer::CHUNK_ROWS) {
        Ok(n) => Some(n),
        Err(e) => {
            log::error!("mail store: search index update failed: {e}");
            if fault(&e) == Fault::Damaged {
                health.mark(&e.to_string());
            }
            None
        }
    }
}

/// Call a user callback; a panicking one must not kill the writer thread.
fn guarded(f: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(f)).is_err() {
        log::error!("mail store completion callback panicked");
    }
}

/// Run one group-commit batch; if it committed, returns the touched
/// mailboxes and the search text it left for the index. A degraded store
/// fails every job at once.
fn run_batch(
    conn: &mut Connection,
    batch: Vec<Box<dyn WriteJob>>,
    health: &Health,
) -> Option<(Vec<MailboxId>, indexer::Backlog)> {
    if let Some(refusal) = health.refusal() {
        for job in batch {
            guarded(|| job.fail(refusal.error()));
        }
        return None;
    }
    let begin = conn.execute_batch(
        "BEGIN IMMEDIATE; UPDATE meta SET value = value + 1 WHERE key = 'commit_counter';",
    );
    if let Err(e) = begin {
        log::error!("mail store: cannot start write batch: {e}");
        let _ = conn.execute_batch("ROLLBACK");
        let failure = BatchFailure::new(&e);
        if failure.fault == Fault::Damaged {
            health.mark(&failure.msg);
        }
        for job in batch {
            guarded(|| job.fail(failure.error()));
        }
        return None;
    }
    let mut finishes: Vec<Finish> = Vec::with_capacity(batch.len());
    let mut broken: Option<BatchFailure> = None;
    let mut tx = Tx::new(conn);
    for job in batch {
        if let Some(failure) = &broken {
            guarded(|| job.fail(failure.error()));
            continue;
        }
        if let Err(e) = tx.conn().execute_batch("SAVEPOINT job") {
            let failure = BatchFailure::new(&e);
            guarded(|| job.fail(failure.error()));
            broken = Some(failure);
            continue;
        }
        let mark = tx.touched.len();
        let pending_mark = tx.pending;
        let outcome = catch_unwind(AssertUnwindSafe(|| job.run(&mut tx, health)));
        let failed = match outcome {
            Ok((failed, finish)) => {
                finishes.push(finish);
                failed
            }
            Err(_) => {
                log::error!("mail store write job panicked; rolled back");
                Some(BatchFailure {
                    fault: Fault::Other,
                    msg: "a job panicked".into(),
                })
            }
        };
        let end = if failed.is_none() {
            "RELEASE job"
        } else {
            tx.touched.truncate(mark);
            tx.pending = pending_mark;
            "ROLLBACK TO job; RELEASE job"
        };
        if let Err(e) = tx.conn().execute_batch(end) {
            // SQLite may roll the whole transaction back after SQLITE_FULL
            // (or damage): then the job's error says why the batch is lost.
            broken = Some(match failed {
                Some(f) if f.fault != Fault::Other => f,
                _ => BatchFailure::new(&e),
            });
        }
        // Damage seen by this job (or any thread meanwhile): nothing of
        // the batch is committed, every job of it is refused.
        if broken.is_none() {
            broken = health.refusal();
        }
    }
    let touched = std::mem::take(&mut tx.touched);
    let added = tx.pending;
    let commit = match broken {
        Some(failure) => Err(failure),
        None => conn
            .execute_batch("COMMIT")
            .map_err(|e| BatchFailure::new(&e)),
    };
    match commit {
        Ok(()) => {
            for f in finishes {
                guarded(|| f(None));
            }
            Some((touched, added))
        }
        Err(failure) => {
            log::error!("mail store: batch commit failed: {}", failure.msg);
            let _ = conn.execute_batch("ROLLBACK");
            if failure.fault == Fault::Damaged {
                health.mark(&failure.msg);
            }
            // A degraded store refuses even the jobs that ran.
            let failure = health.refusal().unwrap_or(failure);
            for f in finishes {
                guarded(|| f(Some(&failure)));
            }
            None
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::types::NewMessage;

    /// Under load that never lets the queue empty, the writer still
    /// indexes between batches, so the text waiting for the index (which a
    /// SEARCH must scan) stays bounded.
    #[test]
    fn sustained_load_keeps_the_index_backlog_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path().join("m.db")).unwrap();
        let user = s.write_sync(|tx| tx.create_user("a@x", "h")).unwrap();
        let n = 2 * indexer::MAX_ROWS as u64;
        for i in 0..n {
            let raw = format!("Subject: m{i}\r\n\r\nbody {i} kumquat\r\n").into_bytes();
            s.write(
                move |tx| {
                    tx.deliver(
                        &NewMessage {
                            raw,
                            internal_date: 1,
                        },
                        &[user],
                    )
                    .map(|_| ())
                },
                |r| r.unwrap(),
            );
        }
        // Queued behind all of them: what is still pending at that point.
        let pending: i64 = s
            .write_sync(|tx| {
                Ok(tx
                    .conn()
                    .query_row("SELECT count(*) FROM pending_text", [], |r| r.get(0))?)
            })
            .unwrap();
        assert!(
            pending <= indexer::MAX_ROWS + 2 * MAX_BATCH as i64,
            "{pending} of {n} messages wait for the index"
        );
        assert_eq!(s.read_sync(|r| r.stored_messages()).unwrap(), n);
    }
}
