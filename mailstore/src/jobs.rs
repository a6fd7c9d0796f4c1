//! The jobs the store's threads run, type-erased so one channel carries
//! them all: [`WriteJob`] (run by the writer inside a batch's savepoint,
//! completed after COMMIT), [`ReadJobT`] (run by a reader thread in one
//! read snapshot), the [`Done`] callback every job completes exactly once
//! (with [`StoreError::Panicked`] if the job panicked), and
//! [`BatchFailure`], what a write job is told when its whole batch fails.

use std::marker::PhantomData;

use crate::error::{fault, Fault, Result, StoreError};
use crate::health::Health;
use crate::reader::Reader;
use crate::tx::Tx;

/// A write job's completion, called after COMMIT with the batch's
/// failure, if any.
pub(crate) type Finish = Box<dyn FnOnce(Option<&BatchFailure>) + Send>;
/// A queued read job.
pub(crate) type ReadJob = Box<dyn ReadJobT>;

/// A completion callback that is called exactly once: with the result, or,
/// if dropped uncalled (the job panicked), with [`StoreError::Panicked`].
pub(crate) struct Done<T, D: FnOnce(Result<T>)> {
    done: Option<D>,
    _t: PhantomData<fn(T)>,
}

impl<T, D: FnOnce(Result<T>)> Done<T, D> {
    pub(crate) fn new(done: D) -> Self {
        Done {
            done: Some(done),
            _t: PhantomData,
        }
    }
    pub(crate) fn call(mut self, r: Result<T>) {
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
pub(crate) struct BatchFailure {
    pub(crate) fault: Fault,
    pub(crate) msg: String,
}

impl BatchFailure {
    pub(crate) fn new(e: &rusqlite::Error) -> BatchFailure {
        BatchFailure {
            fault: fault(e),
            msg: e.to_string(),
        }
    }

    /// A job's own error, for when it takes the batch down with it.
    pub(crate) fn of(e: &StoreError) -> BatchFailure {
        let fault = match e {
            StoreError::Damaged(_) => Fault::Damaged,
            StoreError::Full(_) => Fault::Full,
            StoreError::Unavailable(_) => Fault::Unavailable,
            _ => Fault::Other,
        };
        BatchFailure {
            fault,
            msg: e.to_string(),
        }
    }

    /// What each job of the batch is told.
    pub(crate) fn error(&self) -> StoreError {
        let msg = self.msg.clone();
        match self.fault {
            Fault::Damaged => StoreError::Damaged(msg),
            Fault::Full => StoreError::Full(msg),
            Fault::Unavailable => StoreError::Unavailable(msg),
            Fault::Other => StoreError::CommitFailed(msg),
        }
    }
}

/// What a [`WriteJob::attempt`] came to.
pub(crate) enum Ran {
    /// It ran: as [`WriteJob::run`] returns.
    Done(Option<BatchFailure>, Finish),
    /// The store asked for it to run again from its start (PostgreSQL: a
    /// lock it could not take in order, or a deadlock), and it can: the
    /// caller rolls its savepoint back and runs it again (not completed).
    Again(Box<dyn WriteJob>),
}

/// A type-erased write job.
pub(crate) trait WriteJob: Send {
    /// Run inside the caller's savepoint; returns what the job failed with
    /// (if it did) and the deferred completion (called after COMMIT with
    /// the batch's failure, if any).
    fn run(self: Box<Self>, tx: &mut Tx, health: &Health) -> (Option<BatchFailure>, Finish);
    /// Complete without running (the batch could not start).
    fn fail(self: Box<Self>, err: StoreError);
    /// Whether the job's work can run twice (each run inside a savepoint
    /// rolled back before the next, so only the last one's writes stay).
    fn rerunnable(&self) -> bool {
        false
    }
    /// Run as [`WriteJob::run`], or give the job back when the store
    /// asked for a rerun and it is [`WriteJob::rerunnable`].
    fn attempt(self: Box<Self>, tx: &mut Tx, health: &Health) -> Ran {
        let (failed, finish) = self.run(tx, health);
        Ran::Done(failed, finish)
    }
    /// Run and keep the result inside, not completed (a batch without a
    /// savepoint per job: see `pg::writer::run_optimistic`); whether it
    /// succeeded. Only a [`WriteJob::rerunnable`] job can (the batch may
    /// be run again); any other says no without running.
    fn run_kept(&mut self, _tx: &mut Tx) -> bool {
        false
    }
    /// The completion of a job run by [`WriteJob::run_kept`], with the
    /// result it kept.
    fn kept(self: Box<Self>, _health: &Health) -> Finish {
        self.fail(StoreError::Invalid(
            "write job completed without running".into(),
        ));
        Box::new(|_| {})
    }
}

/// The result of a job, completion built: what [`WriteJob::run`] returns.
fn finished<T, D>(
    result: Result<T>,
    done: Done<T, D>,
    health: &Health,
) -> (Option<BatchFailure>, Finish)
where
    D: FnOnce(Result<T>) + Send + 'static,
    T: Send + 'static,
{
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

/// A write job whose work can run more than once ([`WriteJob::rerunnable`]):
/// `f` keeps its input (it takes it by reference, or clones what it
/// consumes), so the PostgreSQL writer can run it again from its start in
/// a new transaction instead of failing it (see `pg::PgConn::lock_users`).
pub(crate) struct Rerun<F, D, T>
where
    D: FnOnce(Result<T>),
{
    pub(crate) f: F,
    pub(crate) done: Done<T, D>,
    /// The result of the last [`WriteJob::run_kept`].
    pub(crate) kept: Option<Result<T>>,
}

impl<F, D, T> WriteJob for Rerun<F, D, T>
where
    F: FnMut(&mut Tx) -> Result<T> + Send + 'static,
    D: FnOnce(Result<T>) + Send + 'static,
    T: Send + 'static,
{
    fn run(self: Box<Self>, tx: &mut Tx, health: &Health) -> (Option<BatchFailure>, Finish) {
        let Rerun { mut f, done, .. } = *self;
        let result = f(tx);
        finished(result, done, health)
    }

    fn fail(self: Box<Self>, err: StoreError) {
        self.done.call(Err(err));
    }

    fn rerunnable(&self) -> bool {
        true
    }

    fn attempt(mut self: Box<Self>, tx: &mut Tx, health: &Health) -> Ran {
        let result = (self.f)(tx);
        if tx.pg.is_some_and(|pg| pg.rerun_asked()) {
            return Ran::Again(self);
        }
        let Rerun { done, .. } = *self;
        let (failed, finish) = finished(result, done, health);
        Ran::Done(failed, finish)
    }

    fn run_kept(&mut self, tx: &mut Tx) -> bool {
        let result = (self.f)(tx);
        let ok = result.is_ok() && !tx.pg.is_some_and(|pg| pg.rerun_asked());
        self.kept = Some(result);
        ok
    }

    fn kept(self: Box<Self>, health: &Health) -> Finish {
        let Rerun { done, kept, .. } = *self;
        let result =
            kept.unwrap_or_else(|| Err(StoreError::Invalid("write job was not run".into())));
        finished(result, done, health).1
    }
}

/// A job: the work `f` and its completion `done`.
pub(crate) struct Job<F, D, T>
where
    D: FnOnce(Result<T>),
{
    pub(crate) f: F,
    pub(crate) done: Done<T, D>,
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
        finished(result, done, health)
    }

    fn fail(self: Box<Self>, err: StoreError) {
        self.done.call(Err(err));
    }
}

/// A type-erased read job.
pub(crate) trait ReadJobT: Send {
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
pub(crate) struct Compute<F, D, T>
where
    D: FnOnce(Result<T>),
{
    pub(crate) f: F,
    pub(crate) done: Done<T, D>,
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
