//! The writer thread and its group commit. Every session sends write jobs
//! over one channel; the writer takes all queued jobs (up to
//! [`MAX_BATCH`]), runs `BEGIN IMMEDIATE`, each job in its own `SAVEPOINT`
//! (a failing or panicking job rolls back alone), `COMMIT` (one fsync with
//! synchronous=FULL), and only then calls each job's `done`, then the
//! [`Store::on_commit`] listeners. Between batches (when deliveries pause,
//! or a little after each batch once the backlog passes a bound) it moves
//! pending search text into the full-text index (see `indexer.rs`).
//!
//! WAL checkpoints stay out of the commits: SQLite's automatic checkpoint
//! (every 1,000 WAL frames) would run inside the `COMMIT` that crossed
//! the mark, so that batch's sessions waited for the copy into the
//! database file and its fsync. Here a WAL hook replaces it (which turns
//! the automatic one off): past [`CHECKPOINT_FRAMES`] the writer wakes a
//! checkpoint thread of its own (own connection, `PRAGMA
//! wal_checkpoint(PASSIVE)`), which copies committed frames while the
//! writer goes on with the next batch. Once a checkpoint has caught up
//! with the last commit, the writer's next transaction starts the WAL
//! from its beginning again. Should that not happen (under steady load
//! the checkpointer is mostly a commit behind) and the WAL pass [`MAX_WAL_FRAMES`], the
//! writer checkpoints itself between batches, after the checkpoint
//! thread's pass, so the WAL stays bounded (as with SQLite's own
//! checkpoint, a reader holding an old snapshot can still hold it up).
//!
//! [`Store::on_commit`]: crate::Store::on_commit

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::mpsc::{
    channel, sync_channel, Receiver, RecvTimeoutError, Sender, SyncSender, TryRecvError,
};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::Connection;

use crate::error::{fault, Fault, Result};
use crate::health::Health;
use crate::indexer;
use crate::jobs::{BatchFailure, Finish, WriteJob};
use crate::store::{lock, spawn};
use crate::tx::Tx;
use crate::types::{MailboxId, UserId};

/// Most jobs committed by one transaction.
pub const MAX_BATCH: usize = 256;

/// WAL frames (pages) past which a commit wakes the checkpoint thread
/// (SQLite's default for its automatic checkpoint).
pub const CHECKPOINT_FRAMES: u32 = 1000;

/// WAL frames past which the writer checkpoints itself between batches:
/// the bound on the WAL (about 16 MiB of 4 KiB pages).
pub const MAX_WAL_FRAMES: u32 = 4000;

thread_local! {
    /// Frames in the WAL after the last commit on this thread's
    /// connection, set by [`wal_hook`] (each writer has its own thread).
    static WAL_FRAMES: Cell<u32> = const { Cell::new(0) };
}

/// The writer connection's WAL hook (called by SQLite after each commit
/// with the frames now in the WAL). Registering it turns SQLite's
/// automatic checkpoint off.
fn wal_hook(_: &rusqlite::hooks::Wal, frames: std::os::raw::c_int) -> rusqlite::Result<()> {
    WAL_FRAMES.with(|f| f.set(u32::try_from(frames).unwrap_or(0)));
    Ok(())
}

/// Checkpoints off the commit path (see the module documentation).
pub(crate) struct Checkpoints {
    /// Wakes the checkpoint thread (a full slot means a pass is already
    /// asked for); `None` without one.
    wake: Option<SyncSender<()>>,
    /// Held by whoever runs a checkpoint (one at a time: SQLite refuses a
    /// second with SQLITE_BUSY).
    running: Arc<Mutex<()>>,
    /// [`MAX_WAL_FRAMES`], smaller in tests.
    max_frames: u32,
    /// The WAL's frames when the checkpoint thread was last woken (0:
    /// not since the bound's checkpoint).
    woken_at: Cell<u32>,
}

impl Checkpoints {
    /// Install the WAL hook on the writer connection `conn` and start the
    /// checkpoint thread on a connection of its own to `path`.
    fn start(
        conn: &Connection,
        path: &Path,
        health: Arc<Health>,
        threads: &mut Vec<JoinHandle<()>>,
    ) -> Result<Checkpoints> {
        let own = crate::schema::connect(path, false)?;
        conn.wal_hook(Some(wal_hook));
        let (wake, rx) = sync_channel::<()>(1);
        let running: Arc<Mutex<()>> = Arc::default();
        let held = running.clone();
        threads.push(spawn("mailstore-checkpoint", move || {
            // Ends when the writer (the only sender) is gone.
            while rx.recv().is_ok() {
                if health.is_damaged() {
                    continue;
                }
                let _one = lock(&held);
                checkpoint(&own);
            }
        })?);
        Ok(Checkpoints {
            wake: Some(wake),
            running,
            max_frames: MAX_WAL_FRAMES,
            woken_at: Cell::new(0),
        })
    }

    /// After a commit on the writer connection `conn`: past
    /// [`CHECKPOINT_FRAMES`] wake the checkpoint thread, again only once
    /// another half of that was written or the WAL was restarted (each
    /// pass syncs the database file: one per commit would compete with
    /// the commits' own fsyncs); past the bound checkpoint here, after any
    /// pass under way. Returns the frames the last commit left in the WAL.
    fn after_commit(&self, conn: &Connection) -> u32 {
        let frames = WAL_FRAMES.with(Cell::get);
        if frames >= self.max_frames {
            let _one = lock(&self.running);
            checkpoint(conn);
            self.woken_at.set(0);
        } else if frames >= CHECKPOINT_FRAMES {
            let last = self.woken_at.get();
            if frames < last || frames >= last + CHECKPOINT_FRAMES / 2 {
                if let Some(wake) = &self.wake {
                    let _ = wake.try_send(());
                }
                self.woken_at.set(frames);
            }
        }
        frames
    }
}

/// One `PRAGMA wal_checkpoint(PASSIVE)` on `conn`: copies the committed
/// frames no reader still needs into the database file (and syncs it),
/// without waiting for anyone. A failure is logged; the WAL keeps the
/// frames, so nothing is lost.
fn checkpoint(conn: &Connection) {
    let done = conn
        .prepare_cached("PRAGMA wal_checkpoint(PASSIVE)")
        .and_then(|mut st| st.query_row([], |r| Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))));
    match done {
        Ok((log, copied)) => log::debug!("mail store: checkpoint: {copied} of {log} WAL frames"),
        Err(e) => log::warn!("mail store: WAL checkpoint failed: {e}"),
    }
}

pub(crate) type Listener = Arc<dyn Fn(&Committed) + Send + Sync>;

/// What one committed batch changed, as [`Store::on_commit_detail`]
/// listeners see it.
///
/// [`Store::on_commit_detail`]: crate::Store::on_commit_detail
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Committed {
    /// The mailboxes changed (sorted, distinct; possibly none), deleted
    /// ones included: what [`crate::Store::on_commit`] listeners get.
    pub mailboxes: Vec<MailboxId>,
    /// The owner of each of `mailboxes` that still exists (sorted by
    /// mailbox), looked up after the commit only when an
    /// `on_commit_detail` listener asked for it.
    pub owners: Vec<(MailboxId, UserId)>,
    /// Users whose mailbox list or subscriptions changed (created,
    /// deleted, renamed mailboxes; subscriptions), sorted and distinct.
    pub lists: Vec<UserId>,
}

/// The owners of `ids` that still exist (one primary-key lookup each).
fn owners(conn: &Connection, ids: &[MailboxId]) -> Vec<(MailboxId, UserId)> {
    let mut out = Vec::with_capacity(ids.len());
    let Ok(mut st) = conn.prepare_cached("SELECT user_id FROM mailboxes WHERE id = ?1") else {
        return out;
    };
    for &id in ids {
        if let Ok(user) = st.query_row([id], |r| r.get::<_, UserId>(0)) {
            out.push((id, user));
        }
    }
    out
}
/// The [`Store::on_commit`](crate::Store::on_commit) listeners, called
/// by the writer after each committed batch.
#[derive(Default)]
pub(crate) struct ListenerSet {
    pub(crate) list: Mutex<Vec<Listener>>,
    /// A listener wants [`Committed::owners`].
    pub(crate) want_owners: std::sync::atomic::AtomicBool,
    /// The commit counter values of this process's batches, recorded
    /// before each COMMIT (so before anyone can see the commit), for
    /// [`crate::Store::take_own_commits`]; at most [`MAX_OWN`] kept.
    pub(crate) own: Mutex<std::collections::VecDeque<i64>>,
    /// The [`Store::on_queue_change`](crate::Store::on_queue_change)
    /// listeners, called after a batch that changed the outbound queue.
    pub(crate) queue: Mutex<Vec<QueueListener>>,
}

/// A listener told that a committed batch changed the outbound queue.
pub(crate) type QueueListener = Arc<dyn Fn() + Send + Sync>;

/// Most own commit counter values kept for a consumer that does not take
/// them (only the oldest are dropped).
const MAX_OWN: usize = 4096;

/// Shared between the store handle and the writer thread.
pub(crate) type Listeners = Arc<ListenerSet>;

/// After a committed batch (either backend's writer): tell the
/// [`Store::on_commit`](crate::Store::on_commit) listeners what it
/// changed (`touched` mailboxes and `lists` users, sorted and made
/// distinct here; the mailboxes' owners looked up by `owners` only when a
/// listener asked), then, when it changed the outbound queue, the
/// [`Store::on_queue_change`](crate::Store::on_queue_change) listeners.
/// Called for every committed batch, even one that touched no mailbox, so
/// listeners can count commits (each bumps `Reader::data_version` by
/// exactly one). A panicking listener is logged, never fatal.
pub(crate) fn notify_committed(
    listeners: &ListenerSet,
    mut touched: Vec<MailboxId>,
    mut lists: Vec<UserId>,
    queue_changed: bool,
    owners: impl FnOnce(&[MailboxId]) -> Vec<(MailboxId, UserId)>,
) {
    touched.sort_unstable();
    touched.dedup();
    lists.sort_unstable();
    lists.dedup();
    let committed = Committed {
        owners: if listeners
            .want_owners
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            owners(&touched)
        } else {
            Vec::new()
        },
        mailboxes: touched,
        lists,
    };
    let ls: Vec<Listener> = lock(&listeners.list).clone();
    for l in ls {
        if catch_unwind(AssertUnwindSafe(|| l(&committed))).is_err() {
            log::error!("mail store commit listener panicked");
        }
    }
    if queue_changed {
        let ls: Vec<QueueListener> = lock(&listeners.queue).clone();
        for l in ls {
            if catch_unwind(AssertUnwindSafe(|| l())).is_err() {
                log::error!("mail store queue listener panicked");
            }
        }
    }
}

/// Start the writer thread on the write connection `conn`; its handle goes
/// to `threads`. Returns the sender of its job queue (dropping every sender
/// lets the writer finish the queue and exit).
pub(crate) fn start(
    conn: Connection,
    path: &Path,
    listeners: Listeners,
    health: Arc<Health>,
    threads: &mut Vec<JoinHandle<()>>,
) -> Result<Sender<Box<dyn WriteJob>>> {
    let ckpt = Checkpoints::start(&conn, path, health.clone(), threads)?;
    let (wtx, wrx) = channel::<Box<dyn WriteJob>>();
    threads.push(spawn("mailstore-writer", move || {
        writer_loop(conn, wrx, listeners, health, ckpt)
    })?);
    Ok(wtx)
}

fn writer_loop(
    mut conn: Connection,
    rx: Receiver<Box<dyn WriteJob>>,
    listeners: Listeners,
    health: Arc<Health>,
    ckpt: Checkpoints,
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
                    let _cache = IndexCache::new(&conn);
                    loop {
                        // Until the table says nothing is pending (the
                        // count is an estimate), or indexing failed (logged;
                        // retried once another batch leaves text).
                        let step = index_step(&conn, &health);
                        ckpt.after_commit(&conn);
                        match step {
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
        let Some((touched, lists, added, queue_changed)) =
            run_batch(&mut conn, batch, &health, &listeners)
        else {
            continue;
        };
        notify_committed(&listeners, touched, lists, queue_changed, |ids| {
            owners(&conn, ids)
        });
        ckpt.after_commit(&conn);
        backlog.add(added);
        // Sustained load may never leave the queue empty: past a bound,
        // index about twice what the batch added (by cost: a 64 KiB message
        // waiting costs more than a small one), so the backlog shrinks in
        // steps small enough not to stall the next batch long.
        if backlog.over_bound() {
            let _cache = IndexCache::new(&conn);
            let mut indexed = 0;
            while indexed < 2 * added.cost.max(1) {
                let step = index_step(&conn, &health);
                ckpt.after_commit(&conn);
                match step {
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

/// The writer's page cache made big (32 MiB) while it indexes search
/// text: FTS5 merges its segments through the cache, and at the
/// delivery batches' 4 MiB (see `store::WRITER_CACHE`) moving 1,500 64 KiB
/// messages into the index took 5.3 s instead of 4.2 s. Dropped, it puts
/// the batches' size back (the pages beyond it are freed).
struct IndexCache<'c>(&'c Connection);

impl<'c> IndexCache<'c> {
    fn new(conn: &'c Connection) -> IndexCache<'c> {
        if let Err(e) = conn.execute_batch("PRAGMA cache_size = -32768;") {
            log::warn!("mail store: page cache for indexing: {e}");
        }
        IndexCache(conn)
    }
}

impl Drop for IndexCache<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.0.execute_batch(crate::store::WRITER_CACHE) {
            log::warn!("mail store: page cache after indexing: {e}");
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

/// Run one cached statement (no rows): the batch's fixed statements
/// (BEGIN, SAVEPOINT, RELEASE, COMMIT...) are parsed once per connection,
/// not once per job.
pub(crate) fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.raw_execute().map(|_| ())
}

/// Run one group-commit batch; if it committed, returns the touched
/// mailboxes, the users whose lists changed, the search text it left for
/// the index and whether the outbound queue changed. A degraded store
/// fails every job at once.
fn run_batch(
    conn: &mut Connection,
    batch: Vec<Box<dyn WriteJob>>,
    health: &Health,
    listeners: &ListenerSet,
) -> Option<(Vec<MailboxId>, Vec<UserId>, indexer::Backlog, bool)> {
    if let Some(refusal) = health.refusal() {
        for job in batch {
            guarded(|| job.fail(refusal.error()));
        }
        return None;
    }
    let started = std::time::Instant::now();
    let begin = run_cached(conn, "BEGIN IMMEDIATE").and_then(|()| {
        run_cached(
            conn,
            "UPDATE meta SET value = value + 1 WHERE key = 'commit_counter'",
        )
    });
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
        if let Err(e) = run_cached(tx.conn(), "SAVEPOINT job") {
            let failure = BatchFailure::new(&e);
            guarded(|| job.fail(failure.error()));
            broken = Some(failure);
            continue;
        }
        let mark = tx.touched.len();
        let lists_mark = tx.lists.len();
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
            run_cached(tx.conn(), "RELEASE job")
        } else {
            tx.touched.truncate(mark);
            tx.lists.truncate(lists_mark);
            tx.pending = pending_mark;
            run_cached(tx.conn(), "ROLLBACK TO job")
                .and_then(|()| run_cached(tx.conn(), "RELEASE job"))
        };
        if let Err(e) = end {
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
    let lists = std::mem::take(&mut tx.lists);
    let added = tx.pending;
    let queue_changed = tx.queue_changed;
    // Record this batch's commit counter before the commit is visible.
    let recorded = if broken.is_none()
        && listeners
            .want_owners
            .load(std::sync::atomic::Ordering::SeqCst)
    {
        conn.prepare_cached("SELECT value FROM meta WHERE key = 'commit_counter'")
            .and_then(|mut st| st.query_row([], |r| r.get::<_, i64>(0)))
            .ok()
            .inspect(|&v| {
                let mut own = lock(&listeners.own);
                own.push_back(v);
                if own.len() > MAX_OWN {
                    own.pop_front();
                }
            })
    } else {
        None
    };
    let commit = match broken {
        Some(failure) => Err(failure),
        None => {
            crate::walbuf::commit(|| run_cached(conn, "COMMIT")).map_err(|e| BatchFailure::new(&e))
        }
    };
    if let (Err(_), Some(v)) = (&commit, recorded) {
        lock(&listeners.own).retain(|&x| x != v);
    }
    match commit {
        Ok(()) => {
            metrics::store_commit(started.elapsed());
            for f in finishes {
                guarded(|| f(None));
            }
            Some((touched, lists, added, queue_changed))
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
    use crate::Store;

    /// `on_queue_change` listeners hear of batches that changed the
    /// outbound queue, and of no others (a local delivery queues nothing).
    #[test]
    fn queue_listeners_hear_only_queue_changes() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path().join("m.db")).unwrap();
        let heard = Arc::new(AtomicUsize::new(0));
        let h = heard.clone();
        s.on_queue_change(move || {
            h.fetch_add(1, Ordering::SeqCst);
        });
        let user = s.write_sync(|tx| tx.create_user("a@x", "h")).unwrap();
        let msg = NewMessage {
            raw: b"Subject: local\r\n\r\nbody\r\n".to_vec(),
            internal_date: 1,
        };
        s.write_sync(move |tx| tx.deliver(&msg, &[user]).map(|_| ()))
            .unwrap();
        // Listeners run after the batch's completions: a later job is
        // the barrier.
        s.write_sync(|_| Ok(())).unwrap();
        assert_eq!(
            heard.load(Ordering::SeqCst),
            0,
            "a delivery is no queue change"
        );
        let qid = s
            .write_sync(|tx| {
                tx.enqueue(&crate::OutMessage {
                    qid: "q1".into(),
                    sender: "a@x".into(),
                    raw: b"Subject: out\r\n\r\nbody\r\n".to_vec(),
                    ret: None,
                    envid: None,
                    rcpts: vec![crate::OutRcpt {
                        addr: "b@elsewhere.example".into(),
                        notify: None,
                        orcpt: None,
                    }],
                })
            })
            .unwrap();
        assert!(qid > 0);
        s.write_sync(|_| Ok(())).unwrap();
        assert_eq!(heard.load(Ordering::SeqCst), 1, "enqueue is a queue change");
        s.write_sync(|tx| tx.create_user("c@x", "h").map(|_| ()))
            .unwrap();
        s.write_sync(|_| Ok(())).unwrap();
        assert_eq!(heard.load(Ordering::SeqCst), 1);
    }

    /// SQLite's automatic checkpoint is off on the writer connection (the
    /// WAL hook replaced it: the WAL grows past its 1,000 frames), and the
    /// writer's own bound keeps the WAL within the bound plus one commit's
    /// frames even with no checkpoint thread at all.
    #[test]
    fn the_wal_stays_within_the_bound_without_the_checkpoint_thread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let mut conn = crate::schema::connect(&path, true).unwrap();
        crate::schema::migrate(&mut conn, &path).unwrap();
        conn.wal_hook(Some(wal_hook));
        let bound = 400;
        let ckpt = Checkpoints {
            wake: None,
            running: Arc::default(),
            max_frames: bound,
            woken_at: Cell::new(0),
        };
        let commit = |f: &dyn Fn(&mut Tx<'_>)| {
            conn.execute_batch("BEGIN IMMEDIATE").unwrap();
            f(&mut Tx::new(&conn));
            conn.execute_batch("COMMIT").unwrap();
        };
        let user = std::cell::Cell::new(0);
        commit(&|tx| user.set(tx.create_user("a@x", "h").unwrap()));
        let body = "x".repeat(16 * 1024);
        let deliver = |tx: &mut Tx<'_>| {
            let msg = NewMessage {
                raw: format!("Subject: s\r\n\r\n{body}\r\n").into_bytes(),
                internal_date: 1,
            };
            tx.deliver(&msg, &[user.get()]).unwrap();
        };
        // No checkpoint at all: the WAL grows past SQLite's 1,000 frames.
        let mut n = 0;
        while WAL_FRAMES.with(Cell::get) <= 1500 {
            commit(&deliver);
            n += 1;
            assert!(n < 2000, "the WAL did not grow: autocheckpoint still on?");
        }
        // With the writer's bound: checkpointed at once, then restarted by
        // the next commit, and never past the bound plus one commit.
        let per_commit = 1500 / n + 20;
        let mut written = 0;
        let mut most = 0;
        let mut last = ckpt.after_commit(&conn);
        for _ in 0..3 * bound / per_commit.max(1) + 50 {
            commit(&deliver);
            let frames = ckpt.after_commit(&conn);
            // After a restart the WAL holds this commit's frames only.
            written += if frames > last { frames - last } else { frames };
            last = frames;
            most = most.max(frames);
        }
        assert!(written > 2 * bound, "only {written} frames written");
        assert!(
            most <= bound + per_commit,
            "the WAL reached {most} frames (bound {bound}, about {per_commit} per commit)"
        );
    }

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
