//! The `Store` handle: one writer thread doing group commit, a small pool of
//! reader threads, completion callbacks and commit listeners.
//!
//! Write path: every session sends jobs over one channel. The writer takes
//! all queued jobs (up to [`MAX_BATCH`]), runs `BEGIN IMMEDIATE`, each job in
//! its own `SAVEPOINT` (a failing or panicking job rolls back alone),
//! `COMMIT` (one fsync with synchronous=FULL), and only then calls each
//! job's `done`, then the [`Store::on_commit`] listeners. No SQL outside
//! this crate; no protocol knowledge here.

use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};

use rusqlite::Connection;

use crate::error::{Result, StoreError};
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
type Finish = Box<dyn FnOnce(Option<&str>) + Send>;
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

/// A type-erased write job.
trait WriteJob: Send {
    /// Run inside the caller's savepoint; returns success and the deferred
    /// completion (called after COMMIT with the commit error, if any).
    fn run(self: Box<Self>, tx: &mut Tx) -> (bool, Finish);
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
    fn run(self: Box<Self>, tx: &mut Tx) -> (bool, Finish) {
        let Job { f, done } = *self;
        let result = f(tx);
        let ok = result.is_ok();
        let finish: Finish = Box::new(move |commit_err: Option<&str>| match commit_err {
            None => done.call(result),
            Some(e) => done.call(Err(StoreError::CommitFailed(e.to_string()))),
        });
        (ok, finish)
    }

    fn fail(self: Box<Self>, err: StoreError) {
        self.done.call(Err(err));
    }
}

/// A type-erased read job.
trait ReadJobT: Send {
    fn run(self: Box<Self>, r: &Reader);
    fn fail(self: Box<Self>, err: StoreError);
}

impl<F, D, T> ReadJobT for Job<F, D, T>
where
    F: FnOnce(&Reader) -> Result<T> + Send + 'static,
    D: FnOnce(Result<T>) + Send + 'static,
    T: Send + 'static,
{
    fn run(self: Box<Self>, r: &Reader) {
        let Job { f, done } = *self;
        let res = r.snapshot(f);
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
    fn run(self: Box<Self>, _r: &Reader) {
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

impl Store {
    /// Open (creating and migrating as needed) the store at `path`, and start
    /// the writer and reader threads.
    ///
    /// # Errors
    /// [`StoreError::Open`] when the file cannot be opened or written (the
    /// message names the path and SQLite's reason), [`StoreError::Corrupt`]
    /// when it is not a minimail database.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
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
        schema::migrate(&mut wconn, &path)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            readers.push(Reader::new(schema::connect(&path, false)?)?);
        }
        let listeners: Listeners = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();

        let (wtx, wrx) = channel::<Box<dyn WriteJob>>();
        let l = listeners.clone();
        threads.push(spawn("mailstore-writer", move || {
            writer_loop(wconn, wrx, l)
        })?);

        let (rtx, rrx) = channel::<ReadJob>();
        let rrx = Arc::new(Mutex::new(rrx));
        for (i, reader) in readers.into_iter().enumerate() {
            let rrx = rrx.clone();
            threads.push(spawn(&format!("mailstore-reader-{i}"), move || {
                reader_loop(reader, rrx)
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
            }),
        })
    }

    /// The database file path.
    pub fn path(&self) -> &Path {
        &self.inner.path
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

fn reader_loop(reader: Reader, rx: Arc<Mutex<Receiver<ReadJob>>>) {
    loop {
        let job = match lock(&rx).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        // A panicking job or `done` must not kill the reader thread.
        if catch_unwind(AssertUnwindSafe(|| job.run(&reader))).is_err() {
            log::error!("mail store read job panicked");
            // Leave no transaction open behind the panic.
            let _ = reader.conn().execute_batch("ROLLBACK");
        }
    }
}

fn writer_loop(mut conn: Connection, rx: Receiver<Box<dyn WriteJob>>, listeners: Listeners) {
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
                        match index_step(&conn) {
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
        let Some((mut touched, added)) = run_batch(&mut conn, batch) else {
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
                match index_step(&conn) {
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
/// text stays pending, search still finds it, and it is retried later).
fn index_step(conn: &Connection) -> Option<indexer::Backlog> {
    match indexer::index_some(conn, indexer::CHUNK_ROWS) {
        Ok(n) => Some(n),
        Err(e) => {
            log::error!("mail store: search index update failed: {e}");
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
/// mailboxes and the search text it left for the index.
fn run_batch(
    conn: &mut Connection,
    batch: Vec<Box<dyn WriteJob>>,
) -> Option<(Vec<MailboxId>, indexer::Backlog)> {
    let begin = conn.execute_batch(
        "BEGIN IMMEDIATE; UPDATE meta SET value = value + 1 WHERE key = 'commit_counter';",
    );
    if let Err(e) = begin {
        log::error!("mail store: cannot start write batch: {e}");
        let _ = conn.execute_batch("ROLLBACK");
        let msg = e.to_string();
        for job in batch {
            guarded(|| job.fail(StoreError::CommitFailed(msg.clone())));
        }
        return None;
    }
    let mut finishes: Vec<Finish> = Vec::with_capacity(batch.len());
    let mut broken: Option<String> = None;
    let mut tx = Tx::new(conn);
    for job in batch {
        if let Some(msg) = &broken {
            guarded(|| job.fail(StoreError::CommitFailed(msg.clone())));
            continue;
        }
        if let Err(e) = tx.conn().execute_batch("SAVEPOINT job") {
            broken = Some(e.to_string());
            guarded(|| job.fail(StoreError::CommitFailed(e.to_string())));
            continue;
        }
        let mark = tx.touched.len();
        let pending_mark = tx.pending;
        let outcome = catch_unwind(AssertUnwindSafe(|| job.run(&mut tx)));
        let ok = match outcome {
            Ok((ok, finish)) => {
                finishes.push(finish);
                ok
            }
            Err(_) => {
                log::error!("mail store write job panicked; rolled back");
                false
            }
        };
        let end = if ok {
            "RELEASE job"
        } else {
            tx.touched.truncate(mark);
            tx.pending = pending_mark;
            "ROLLBACK TO job; RELEASE job"
        };
        if let Err(e) = tx.conn().execute_batch(end) {
            broken = Some(e.to_string());
        }
    }
    let touched = std::mem::take(&mut tx.touched);
    let added = tx.pending;
    let commit = match broken {
        Some(msg) => Err(msg),
        None => conn.execute_batch("COMMIT").map_err(|e| e.to_string()),
    };
    match commit {
        Ok(()) => {
            for f in finishes {
                guarded(|| f(None));
            }
            Some((touched, added))
        }
        Err(msg) => {
            log::error!("mail store: batch commit failed: {msg}");
            let _ = conn.execute_batch("ROLLBACK");
            for f in finishes {
                guarded(|| f(Some(&msg)));
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
