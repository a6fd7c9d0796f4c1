//! The `Store` handle: opening a store for service ([`Store::open_with`],
//! [`OpenOptions`]), starting its threads, and the calls sessions make on
//! it: [`Store::read`] / [`Store::compute`] go to the reader pool
//! (`readers.rs`), [`Store::write`] to the group-commit writer thread
//! (`writer.rs`), each as a job (`jobs.rs`) whose `done` is called exactly
//! once; [`Store::on_commit`] registers commit listeners. No SQL outside
//! this crate; no protocol knowledge here.
//!
//! Integrity: opening for service runs a time-bounded `PRAGMA quick_check`
//! ([`OpenOptions::check_time`]) and refuses a damaged file
//! ([`StoreError::Corrupt`]) unless told otherwise; [`check_file`] runs
//! either check on demand (both in `check.rs`). Damage SQLite reports while
//! serving puts the store in a degraded state (`health.rs`): every later
//! write fails with [`StoreError::Damaged`], reads go on.
//!
//! [`check_file`]: crate::check_file

use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::backup::StoreLock;
use crate::check::{startup_check, STARTUP_CHECK_TIME};
use crate::error::{Result, StoreError};
use crate::health::Health;
use crate::jobs::{Compute, Done, Job, ReadJob, Rerun, WriteJob};
use crate::reader::Reader;
use crate::readers::{self, READERS};
use crate::schema;
use crate::tx::Tx;
use crate::types::MailboxId;
use crate::writer::{self, Committed, Listeners};

/// Connections [`Store::read_sync`] keeps for reuse.
pub const SYNC_READERS: usize = 4;
/// Lock a mutex, going on past a panic of another holder.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Inner {
    path: PathBuf,
    /// The PostgreSQL URL on that backend (`path` is then the URL with
    /// any password hidden).
    pg_url: Option<String>,
    writer: Mutex<Option<Sender<Box<dyn WriteJob>>>>,
    readers: Mutex<Option<crossbeam_channel::Sender<ReadJob>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    listeners: Listeners,
    sync_readers: Mutex<Vec<Reader>>,
    /// Header values for SEARCH, shared by the readers (SQLite only).
    header_cache: Arc<crate::search::HeaderCache>,
    health: Arc<Health>,
    /// `DB.lock` held shared while the store lives (`backup.rs`): a
    /// restore refuses to replace a file someone serves.
    _lock: Option<StoreLock>,
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

/// The writer's page cache: 4 MiB (1,024 pages). A commit after any B-tree
/// page split walks the whole cache: SQLite's `balance_nonroot` sorts new
/// pages by giving one, for a moment, the page number just past 1 GiB,
/// and the commit's `pcache1Truncate` then finds a page number far beyond
/// the file and visits every hash bucket and page of the cache. With 32
/// MiB (8,192 pages) that walk was 17% of the writer's CPU in a profile of
/// 1 KiB SMTP deliveries into a 73 MB store; at 4 MiB the writer spent
/// 106-113 us of CPU per message against 123 (and 64 KiB APPENDs 226 us
/// against 246-260, STORE 1:* over 100,000 messages unchanged). Big
/// batches spill dirty pages to the WAL early; the tails of the tables a
/// delivery grows fit many times over. Indexing search text raises the
/// cache to 32 MiB for a while (`writer::IndexCache`), and SQLite's hash
/// table keeps the buckets it grew then: in a process that has indexed a
/// lot, the walk is shorter by the pages only, and no gain was measured
/// there (`GROW=... bench/smtp-cost.sh`; see the README).
pub(crate) const WRITER_CACHE: &str = "PRAGMA cache_size = -4096;";

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
        if let Some(url) = path.as_ref().to_str().filter(|p| crate::pg::is_url(p)) {
            return Store::open_pg(url);
        }
        let path = path.as_ref().to_path_buf();
        // Before the first connection: never open a file being restored.
        let lock = StoreLock::shared(&path)?;
        let mut wconn = schema::connect(&path, true)?;
        wconn.execute_batch(WRITER_CACHE)?;
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
        let header_cache = Arc::new(crate::search::HeaderCache::default());
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            readers.push(
                Reader::new(schema::connect(&path, false)?)?
                    .with_header_cache(header_cache.clone()),
            );
        }
        let listeners: Listeners = Arc::default();
        let mut threads = Vec::new();

        let wtx = writer::start(
            wconn,
            &path,
            listeners.clone(),
            health.clone(),
            &mut threads,
        )?;
        let rtx = readers::start(readers, &health, &mut threads)?;
        Ok(Store {
            inner: Arc::new(Inner {
                path,
                pg_url: None,
                writer: Mutex::new(Some(wtx)),
                readers: Mutex::new(Some(rtx)),
                threads: Mutex::new(threads),
                listeners,
                sync_readers: Mutex::new(Vec::new()),
                header_cache,
                health,
                _lock: lock,
            }),
        })
    }

    /// Open the PostgreSQL database at `url` (`postgres://user@host:port/db`),
    /// migrating it as needed, and start the writer and reader threads,
    /// each with a connection of its own (see `pg/mod.rs`). The SQLite
    /// options (start-up check, page limit) do not apply.
    fn open_pg(url: &str) -> Result<Store> {
        use crate::pg::{self, PgConn};
        let wconn = PgConn::connect(url)?;
        pg::schema::migrate(&wconn)?;
        let path = PathBuf::from(pg::redact(url));
        let health = Health::new(&path);
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            readers.push(Reader::new_pg(PgConn::connect(url)?)?);
        }
        let listeners: Listeners = Arc::default();
        let mut threads = Vec::new();
        let wtx = pg::writer::start(wconn, listeners.clone(), health.clone(), &mut threads)?;
        let rtx = readers::start(readers, &health, &mut threads)?;
        Ok(Store {
            inner: Arc::new(Inner {
                path,
                pg_url: Some(url.to_owned()),
                writer: Mutex::new(Some(wtx)),
                readers: Mutex::new(Some(rtx)),
                threads: Mutex::new(threads),
                listeners,
                sync_readers: Mutex::new(Vec::new()),
                header_cache: Arc::default(),
                health,
                _lock: None,
            }),
        })
    }

    /// True if this store is on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.inner.pg_url.is_some()
    }

    /// Parse `msg` for a delivery or APPEND ahead of time, on the
    /// caller's thread, with what this backend's writer would otherwise
    /// compute ([`PreparedMessage::new_for`]).
    ///
    /// # Errors
    /// As [`PreparedMessage::new`].
    pub fn prepare(&self, msg: crate::NewMessage) -> Result<crate::PreparedMessage> {
        crate::PreparedMessage::new_for(msg, self.is_postgres())
    }

    /// The PostgreSQL URL on that backend (for connections of its own,
    /// e.g. the outbound queue's leases).
    pub(crate) fn pg_url(&self) -> Option<&str> {
        self.inner.pg_url.as_deref()
    }

    /// The database file path (on PostgreSQL: the URL, any password hidden).
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
        self.send_write(Box::new(Job {
            f,
            done: Done::new(done),
        }));
    }

    /// Hand `job` to the writer thread; after [`Store::shutdown`] it
    /// fails with [`StoreError::Closed`] at once.
    fn send_write(&self, job: Box<dyn WriteJob>) {
        let rejected = match lock(&self.inner.writer).as_ref() {
            Some(tx) => tx.send(job).err().map(|e| e.0),
            None => Some(job),
        };
        if let Some(job) = rejected {
            job.fail(StoreError::Closed);
        }
    }

    /// [`Store::write`] for work that can run more than once (`f` keeps
    /// its input: it borrows or clones what it uses). On PostgreSQL a job
    /// that would have to wait for a lock out of order (or that PostgreSQL
    /// picked as a deadlock's victim) is then run again from its start,
    /// first in a new transaction after the jobs before it are committed,
    /// instead of failing with a temporary error; only its last run's
    /// writes are kept, and `done` is called once, after the commit that
    /// holds them. On SQLite it is [`Store::write`].
    pub fn write_rerunnable<T: Send + 'static>(
        &self,
        f: impl FnMut(&mut Tx) -> Result<T> + Send + 'static,
        done: impl FnOnce(Result<T>) + Send + 'static,
    ) {
        self.send_write(Box::new(Rerun {
            f,
            done: Done::new(done),
            kept: None,
        }));
    }

    /// Change the bound on the header cache (values of Subject, From and
    /// the other indexed fields held in memory for SEARCH, default
    /// [`HEADER_CACHE_LIMIT`](crate::HEADER_CACHE_LIMIT) bytes); a smaller
    /// bound evicts at once. 0 turns the cache off.
    pub fn set_header_cache_limit(&self, bytes: usize) {
        self.inner.header_cache.set_limit(bytes);
    }

    /// Fill the header cache with `mailbox`'s Subject and From values
    /// (`search/cache.rs`, "Filled before the first search") on a reader
    /// thread, in the background: for a session that selected it, so that
    /// its first SUBJECT or FROM search is answered from memory. Nothing
    /// is queued when they are cached already, a fill for the mailbox is
    /// queued, the cache is off or the store is PostgreSQL (whose readers
    /// have no header cache); the fill evicts nothing.
    pub fn warm_header_cache(&self, mailbox: crate::types::MailboxId) {
        let cache = self.inner.header_cache.clone();
        if self.inner.pg_url.is_some() || !cache.start_warming(mailbox) {
            return;
        }
        let filler = cache.clone();
        self.read(
            move |r| filler.warm(r, mailbox),
            move |res| {
                if let Err(e) = res {
                    log::debug!("header cache fill of mailbox {mailbox}: {e}");
                }
                cache.warmed(mailbox);
            },
        );
    }

    /// Background fills of the header cache queued or running
    /// ([`Store::warm_header_cache`]).
    pub fn header_cache_fills_queued(&self) -> usize {
        self.inner.header_cache.fills_queued()
    }

    /// Bytes and (mailbox, field) entries the header cache holds now.
    pub fn header_cache_usage(&self) -> (usize, usize) {
        self.inner.header_cache.usage()
    }

    /// Blocking read on the calling thread with a cached extra connection
    /// (for the CLI, tests and threads of their own such as the outbound
    /// engine's workers; never call it from an event loop). Up to
    /// [`SYNC_READERS`] connections are kept for concurrent callers, so
    /// they do not open a connection per call.
    pub fn read_sync<T>(&self, f: impl FnOnce(&Reader) -> Result<T>) -> Result<T> {
        if lock(&self.inner.writer).is_none() {
            return Err(StoreError::Closed);
        }
        let cached = lock(&self.inner.sync_readers).pop();
        let reader = match cached {
            Some(r) => r,
            None if self.inner.pg_url.is_some() => {
                let url = self.inner.pg_url.as_deref().unwrap_or_default();
                Reader::new_pg(crate::pg::PgConn::connect(url)?)?
            }
            None => {
                let r = Reader::new(schema::connect(&self.inner.path, false)?)?
                    .with_header_cache(self.inner.header_cache.clone());
                // Up to SYNC_READERS of these live at once: a small page
                // cache each keeps memory bounded (RSS with a big queue).
                r.conn().execute_batch("PRAGMA cache_size = -2048;")?;
                r
            }
        };
        let res = reader.snapshot(f);
        if let Err(e) = &res {
            self.inner.health.saw(e);
        }
        let mut pool = lock(&self.inner.sync_readers);
        if pool.len() < SYNC_READERS {
            pool.push(reader);
        }
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
        lock(&self.inner.listeners.list)
            .push(Arc::new(move |c: &Committed| listener(&c.mailboxes)));
    }

    /// Register a listener called on the writer thread after each durable
    /// batch that changed the outbound queue (a message queued, a
    /// recipient finished, deferred or warned about, a retry or delete):
    /// what a delivery engine waits for, without waking for every local
    /// delivery as an [`Store::on_commit`] listener would. (The queue
    /// exists on SQLite only.)
    pub fn on_queue_change(&self, listener: impl Fn() + Send + Sync + 'static) {
        lock(&self.inner.listeners.queue).push(Arc::new(listener));
    }

    /// [`Store::on_commit`] with more detail ([`Committed`]): the owner of
    /// each changed mailbox (one primary-key lookup per changed mailbox
    /// after each batch, made only once such a listener is registered) and
    /// the users whose mailbox list or subscriptions changed. For
    /// notifications that follow a user's mailboxes (IMAP NOTIFY).
    pub fn on_commit_detail(&self, listener: impl Fn(&Committed) + Send + Sync + 'static) {
        self.inner
            .listeners
            .want_owners
            .store(true, std::sync::atomic::Ordering::SeqCst);
        lock(&self.inner.listeners.list).push(Arc::new(listener));
    }

    /// The commit counter values ([`crate::Reader::data_version`]) of this
    /// process's batches up to `version`, removed from the record: the
    /// rest of the counter's moves up to `version` are other processes'
    /// commits. Values are recorded before each commit becomes visible, so
    /// nothing of ours that a reader has seen is missing; recorded only
    /// once an [`Store::on_commit_detail`] listener is registered (the last
    /// 4,096 are kept). For one consumer.
    pub fn take_own_commits(&self, version: i64) -> Vec<i64> {
        let mut own = lock(&self.inner.listeners.own);
        let n = own.iter().take_while(|&&v| v <= version).count();
        own.drain(..n).collect()
    }

    /// Stop taking jobs, finish every queued job (all `done`s are called),
    /// join the threads. Idempotent; also done when the last handle drops.
    pub fn shutdown(&self) {
        self.inner.shutdown();
    }
}

/// Start a named thread.
pub(crate) fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>> {
    thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .map_err(|e| StoreError::Invalid(format!("cannot start thread {name}: {e}")))
}
