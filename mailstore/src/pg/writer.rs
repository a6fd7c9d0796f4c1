//! The writer thread on PostgreSQL: group commit as `writer.rs` does it on
//! SQLite (several jobs per transaction, a savepoint each, `done` only
//! after COMMIT, listeners called once per committed batch), without the
//! FTS indexer. Each batch ends by bumping the commit counter row just
//! before COMMIT, so the batches of several front ends overlap except for
//! that tail, and the counter still moves by one per commit, in commit
//! order (see `mod.rs` for the lock order that keeps UIDs in commit order
//! and batches free of deadlocks).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use rusqlite::Connection;

use crate::error::{Fault, Result, StoreError};
use crate::health::Health;
use crate::jobs::{BatchFailure, Finish, Ran, WriteJob};
use crate::pg::PgConn;
use crate::store::{lock, spawn};
use crate::tx::Tx;
use crate::types::{MailboxId, UserId};
use crate::writer::{ListenerSet, Listeners, MAX_BATCH};

/// Most own commit counter values kept (as `writer.rs`).
const MAX_OWN: usize = 4096;

fn failure(msg: String) -> BatchFailure {
    BatchFailure {
        fault: Fault::Other,
        msg,
    }
}

/// Start the writer thread on `pg`; as `writer::start`.
pub(crate) fn start(
    pg: PgConn,
    listeners: Listeners,
    health: Arc<Health>,
    threads: &mut Vec<JoinHandle<()>>,
) -> Result<Sender<Box<dyn WriteJob>>> {
    // `Tx` carries a SQLite handle too; this one has no tables, so a
    // method without a PostgreSQL version fails instead of writing.
    let dummy = Connection::open_in_memory()?;
    let (wtx, wrx) = channel::<Box<dyn WriteJob>>();
    threads.push(spawn("mailstore-writer", move || {
        writer_loop(pg, dummy, wrx, listeners, health)
    })?);
    Ok(wtx)
}

fn guarded(f: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(f)).is_err() {
        log::error!("mail store completion callback panicked");
    }
}

fn owners(pg: &PgConn, ids: &[MailboxId]) -> Vec<(MailboxId, UserId)> {
    if ids.is_empty() {
        return Vec::new();
    }
    pg.owners_of(ids).unwrap_or_default()
}

/// How often the writer logs its batch sizes (at debug level, target
/// `mailstore::pg::writer`), while it has work.
const STATS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Batches and jobs since the last report (group commit's effect: jobs per
/// COMMIT, and the writer thread's time in batches).
#[derive(Default)]
struct BatchStats {
    batches: u64,
    jobs: u64,
    largest: usize,
    busy: std::time::Duration,
}

impl BatchStats {
    fn note(&mut self, jobs: usize, took: std::time::Duration) {
        self.batches += 1;
        self.jobs += jobs as u64;
        self.largest = self.largest.max(jobs);
        self.busy += took;
    }

    fn report(&mut self, since: std::time::Duration) {
        if self.batches > 0 {
            log::debug!(
                "pg writer: {} batches, {} jobs in {:.1} s (mean {:.1} jobs per commit, largest {}), \
                 busy {:.0}%, {:.2} ms per batch",
                self.batches,
                self.jobs,
                since.as_secs_f64(),
                self.jobs as f64 / self.batches as f64,
                self.largest,
                100.0 * self.busy.as_secs_f64() / since.as_secs_f64().max(1e-9),
                self.busy.as_secs_f64() * 1000.0 / self.batches as f64
            );
        }
        *self = BatchStats::default();
    }
}

fn writer_loop(
    pg: PgConn,
    dummy: Connection,
    rx: Receiver<Box<dyn WriteJob>>,
    listeners: Listeners,
    health: Arc<Health>,
) {
    let mut stats = BatchStats::default();
    let mut since = std::time::Instant::now();
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (jobs, began) = (batch.len(), std::time::Instant::now());
        let ran = if batch.len() > 1 && batch.iter().all(|j| j.rerunnable()) {
            match run_optimistic(&pg, &dummy, batch, &health, &listeners) {
                Ok(ran) => ran,
                Err(batch) => run_batch(&pg, &dummy, batch, &health, &listeners),
            }
        } else {
            run_batch(&pg, &dummy, batch, &health, &listeners)
        };
        if log::log_enabled!(log::Level::Debug) {
            stats.note(jobs, began.elapsed());
            if since.elapsed() >= STATS_EVERY {
                stats.report(since.elapsed());
                since = std::time::Instant::now();
            }
        }
        let Some((touched, lists, queue_changed)) = ran else {
            continue;
        };
        crate::writer::notify_committed(&listeners, touched, lists, queue_changed, |ids| {
            owners(&pg, ids)
        });
    }
}

/// How often one job is run again (see [`PgConn::take_rerun`]) before a
/// lock out of order fails it as before (a temporary error).
const MAX_RERUNS: u32 = 8;

/// The jobs of the batch committed early during the job that just ran
/// (see `PgConn::lock_users`, `PgConn::commit_for_rerun`): completed as
/// committed, their commit counters noted as this process's own.
fn committed_early(pg: &PgConn, listeners: &ListenerSet, finishes: &mut Vec<Finish>) {
    let early = pg.take_early_commits();
    if early.is_empty() {
        return;
    }
    if listeners
        .want_owners
        .load(std::sync::atomic::Ordering::SeqCst)
    {
        let mut own = lock(&listeners.own);
        own.extend(early.iter().copied());
        while own.len() > MAX_OWN {
            own.pop_front();
        }
    }
    for f in finishes.drain(..) {
        guarded(|| f(None));
    }
}

/// The tail of a batch: the last job's savepoint ended, then the commit
/// counter bumped (its row locked only from here to COMMIT).
const BUMP: &str = "UPDATE meta SET value = value + 1 WHERE key = 'commit_counter' RETURNING value";

/// Start a batch's transaction with `sql`; if that fails, every job of
/// the batch fails with the reason (`None`).
fn begin(pg: &PgConn, sql: &str, batch: Vec<Box<dyn WriteJob>>) -> Option<Vec<Box<dyn WriteJob>>> {
    match pg.begin(sql) {
        Ok(()) => Some(batch),
        Err(e) => {
            log::error!("mail store: cannot start write batch: {e}");
            pg.rollback();
            fail_all(batch, &BatchFailure::of(&e));
            None
        }
    }
}

/// Complete every job of `batch`, unrun, with `f`.
fn fail_all(batch: Vec<Box<dyn WriteJob>>, f: &BatchFailure) {
    for job in batch {
        guarded(|| job.fail(f.error()));
    }
}

/// A batch of jobs that can all run again (SMTP deliveries), run without
/// a savepoint around each: `BEGIN`, the jobs, the counter's bump and
/// `COMMIT`, one round trip per job fewer than [`run_batch`]; plain
/// deliveries' statements are sent together, as one (deferred.rs). Each job's
/// result is kept, and completed only after the COMMIT, as there. If any
/// job fails, asks to run again or would take a lock out of order (or
/// the bump fails: a statement error a job let pass), nothing is kept:
/// the transaction is rolled back and the jobs are handed back (`Err`)
/// for [`run_batch`], where each runs in its own savepoint as usual —
/// unless the connection is gone (lost, or cut by the watchdog because
/// the server did not answer): then the jobs fail at once, temporarily,
/// so a hung server still costs a job one bound, not two.
#[allow(clippy::type_complexity)]
fn run_optimistic(
    pg: &PgConn,
    dummy: &Connection,
    batch: Vec<Box<dyn WriteJob>>,
    health: &Health,
    listeners: &ListenerSet,
) -> std::result::Result<Option<(Vec<MailboxId>, Vec<UserId>, bool)>, Vec<Box<dyn WriteJob>>> {
    let started = std::time::Instant::now();
    pg.begin_batch();
    // Failing, as `run_batch` (trying again would wait for the server twice).
    let Some(mut batch) = begin(pg, "BEGIN", batch) else {
        return Ok(None);
    };
    pg.set_optimistic(true);
    let mut tx = Tx::new_pg(dummy, pg);
    let mut ran_all = true;
    for job in batch.iter_mut() {
        pg.job_starts(false);
        let ok = catch_unwind(AssertUnwindSafe(|| job.run_kept(&mut tx)));
        if !matches!(ok, Ok(true)) || !pg.take_early_commits().is_empty() {
            ran_all = false;
            break;
        }
    }
    // The deliveries kept to be sent together (deferred.rs), before the
    // bump: an error, or entries other than expected, runs the batch again.
    if ran_all {
        if let Err(e) = pg.flush_deferred() {
            log::debug!("pg writer: deliveries sent together failed: {e}");
        }
        ran_all = !pg.flush_failed();
    }
    pg.set_optimistic(false);
    let counter = if ran_all {
        pg.batch_value(BUMP)
            .ok()
            .flatten()
            .and_then(|v| v.parse::<i64>().ok())
    } else {
        None
    };
    let Some(counter) = counter else {
        if pg.is_closed() {
            // The connection is gone (lost, or cut by the watchdog: the
            // server did not answer in time). Running the batch again
            // would wait for the server a second time: the jobs fail
            // now, temporarily, as in `run_batch`.
            let f = BatchFailure {
                fault: Fault::Unavailable,
                msg: "mail store unavailable: the connection to PostgreSQL was lost".into(),
            };
            log::error!("mail store: write batch failed: {}", f.msg);
            fail_all(batch, &f);
            return Ok(None);
        }
        log::debug!(
            "pg writer: a batch of {} jobs runs again, each in a savepoint",
            batch.len()
        );
        pg.rollback();
        return Err(batch);
    };
    let queue_changed = tx.queue_changed;
    let touched = std::mem::take(&mut tx.touched);
    let lists = std::mem::take(&mut tx.lists);
    let finishes: Vec<Finish> = batch.into_iter().map(|j| j.kept(health)).collect();
    Ok(finish_batch(
        pg,
        listeners,
        started,
        Ok(counter),
        finishes,
        (touched, lists, queue_changed),
    ))
}

fn run_batch(
    pg: &PgConn,
    dummy: &Connection,
    batch: Vec<Box<dyn WriteJob>>,
    health: &Health,
    listeners: &ListenerSet,
) -> Option<(Vec<MailboxId>, Vec<UserId>, bool)> {
    let started = std::time::Instant::now();
    pg.begin_batch();
    let batch = begin(pg, "BEGIN; SAVEPOINT job", batch)?;
    let mut finishes: Vec<Finish> = Vec::with_capacity(batch.len());
    let mut broken: Option<BatchFailure> = None;
    let mut tx = Tx::new_pg(dummy, pg);
    // A job's savepoint is released together with the next one's being
    // taken (one round trip per job, not two); the last one's together
    // with the counter's bump.
    let mut open = true;
    let mut counter: Option<i64> = None;
    let mut queue: std::collections::VecDeque<Box<dyn WriteJob>> = batch.into();
    // The job at the queue's front runs again: how often it did, and the
    // users it had locked or wanted (taken first, in order).
    let mut again: Option<(u32, Vec<UserId>)> = None;
    while let Some(job) = queue.pop_front() {
        if let Some(f) = &broken {
            guarded(|| job.fail(f.error()));
            continue;
        }
        if !open {
            if let Err(e) = pg.batch("SAVEPOINT job") {
                let f = BatchFailure::of(&e);
                guarded(|| job.fail(f.error()));
                broken = Some(f);
                continue;
            }
        }
        open = false;
        let mark = tx.touched.len();
        let lists_mark = tx.lists.len();
        let runs = again.as_ref().map_or(0, |a| a.0);
        pg.job_starts(job.rerunnable() && runs < MAX_RERUNS);
        let locks_mark = pg.locks_mark();
        if let Some((_, users)) = again.take() {
            // Run again in a transaction that holds nothing: its users
            // first, in order (waiting is safe here). Failing that (a user
            // gone), the job finds out itself.
            if !users.is_empty() && pg.lock_users(&users).is_err() {
                let _ = pg.batch("ROLLBACK TO SAVEPOINT job");
                pg.locks_rolled_back(locks_mark);
            }
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| job.attempt(&mut tx, health)));
        // The job committed the jobs before it early (to take its locks
        // in order, see PgConn::lock_users): they are done.
        committed_early(pg, listeners, &mut finishes);
        let failed = match outcome {
            Ok(Ran::Again(job)) => {
                // Its writes rolled back, the batch so far committed, and
                // the job first in a new transaction (PgConn::take_rerun).
                let users = pg.take_rerun().unwrap_or_default();
                tx.touched.truncate(mark);
                tx.lists.truncate(lists_mark);
                pg.locks_rolled_back(locks_mark);
                match pg.commit_for_rerun() {
                    Ok(()) => {
                        committed_early(pg, listeners, &mut finishes);
                        again = Some((runs + 1, users));
                        queue.push_front(job);
                        open = true;
                        continue;
                    }
                    Err(e) => {
                        // Whether the jobs before it were committed is
                        // told at the end (a failed COMMIT fails them).
                        committed_early(pg, listeners, &mut finishes);
                        let f = BatchFailure::of(&e);
                        guarded(|| job.fail(f.error()));
                        broken = Some(f);
                        continue;
                    }
                }
            }
            Ok(Ran::Done(failed, finish)) => {
                let _ = pg.take_rerun();
                finishes.push(finish);
                failed
            }
            Err(_) => {
                let _ = pg.take_rerun();
                log::error!("mail store write job panicked; rolled back");
                Some(failure("a job panicked".into()))
            }
        };
        let end = if failed.is_none() {
            "RELEASE SAVEPOINT job"
        } else {
            tx.touched.truncate(mark);
            tx.lists.truncate(lists_mark);
            pg.locks_rolled_back(locks_mark);
            "ROLLBACK TO SAVEPOINT job; RELEASE SAVEPOINT job"
        };
        if !queue.is_empty() {
            match pg.batch(&format!("{end}; SAVEPOINT job")) {
                Ok(()) => open = true,
                Err(e) => broken = Some(BatchFailure::of(&e)),
            }
        } else {
            match pg.batch_value(&format!("{end}; {BUMP}")) {
                Ok(Some(v)) => match v.parse::<i64>() {
                    Ok(v) => counter = Some(v),
                    Err(e) => broken = Some(failure(format!("commit counter {v:?}: {e}"))),
                },
                Ok(None) => broken = Some(failure("no commit counter row".into())),
                Err(e) => broken = Some(BatchFailure::of(&e)),
            }
        }
    }
    let queue_changed = tx.queue_changed;
    let touched = std::mem::take(&mut tx.touched);
    let lists = std::mem::take(&mut tx.lists);
    let counter = match (counter, broken) {
        (Some(c), None) => Ok(c),
        (_, Some(f)) => Err(f),
        (None, None) => Err(failure("empty write batch".into())),
    };
    finish_batch(
        pg,
        listeners,
        started,
        counter,
        finishes,
        (touched, lists, queue_changed),
    )
}

/// The end of a batch whose jobs ran (the counter bumped, or why not):
/// COMMIT, then each job's completion, after it.
fn finish_batch(
    pg: &PgConn,
    listeners: &ListenerSet,
    started: std::time::Instant,
    counter: std::result::Result<i64, BatchFailure>,
    finishes: Vec<Finish>,
    (touched, lists, queue_changed): (Vec<MailboxId>, Vec<UserId>, bool),
) -> Option<(Vec<MailboxId>, Vec<UserId>, bool)> {
    // Recorded before the commit becomes visible (see take_own_commits).
    let recorded = counter.is_ok()
        && listeners
            .want_owners
            .load(std::sync::atomic::Ordering::SeqCst);
    if let (true, Ok(c)) = (recorded, &counter) {
        let mut own = lock(&listeners.own);
        own.push_back(*c);
        if own.len() > MAX_OWN {
            own.pop_front();
        }
    }
    let mine = counter.as_ref().ok().copied();
    let commit = counter.and_then(|c| {
        pg.c()
            .map_err(|e| BatchFailure::of(&e))
            .and_then(|mut cl| {
                cl.batch_execute("COMMIT")
                    .map_err(|e| BatchFailure::of(&StoreError::from(e)))
            })
            .map(|()| c)
    });
    if let (true, Err(_), Some(c)) = (recorded, &commit, mine) {
        lock(&listeners.own).retain(|&x| x != c);
    }
    match commit {
        Ok(_) => {
            metrics::store_commit(started.elapsed());
            for f in finishes {
                guarded(|| f(None));
            }
            Some((touched, lists, queue_changed))
        }
        Err(f) => {
            log::error!("mail store: batch commit failed: {}", f.msg);
            pg.rollback();
            for fin in finishes {
                guarded(|| fin(Some(&f)));
            }
            None
        }
    }
}
