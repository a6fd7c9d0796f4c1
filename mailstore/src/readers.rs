//! The reader pool: [`READERS`] threads, each with its own read-only
//! connection, taking read jobs ([`Store::read`], [`Store::compute`]) from
//! one shared queue. A panicking job is caught and leaves no transaction
//! open behind it.
//!
//! The queue is a multi-consumer channel (crossbeam's): a job wakes one
//! idle reader. The standard channel behind a mutex woke the thread
//! parked in `recv` holding the mutex, which then woke the next one
//! waiting for the mutex to park in its place: two wake-ups per job, and
//! that mutex was 4.6% of the server's samples under imaptest's stress
//! profile.
//!
//! [`Store::read`]: crate::Store::read
//! [`Store::compute`]: crate::Store::compute

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::error::Result;
use crate::health::Health;
use crate::jobs::ReadJob;
use crate::reader::Reader;
use crate::store::spawn;
use crossbeam_channel::{unbounded, Receiver, Sender};

/// Reader threads (each with its own connection).
pub const READERS: usize = 3;

fn reader_loop(reader: Reader, rx: Receiver<ReadJob>, health: Arc<Health>) {
    // Ends when every sender is gone and the queue is empty.
    while let Ok(job) = rx.recv() {
        // A panicking job or `done` must not kill the reader thread.
        if catch_unwind(AssertUnwindSafe(|| job.run(&reader, &health))).is_err() {
            log::error!("mail store read job panicked");
            // Leave no transaction open behind the panic.
            let _ = reader.conn().execute_batch("ROLLBACK");
        }
    }
}

/// Start one thread per reader, all taking jobs from one new queue; the
/// handles go to `threads`. Returns the queue's sender (dropping every
/// sender lets the threads finish the queue and exit).
pub(crate) fn start(
    readers: Vec<Reader>,
    health: &Arc<Health>,
    threads: &mut Vec<JoinHandle<()>>,
) -> Result<Sender<ReadJob>> {
    let (rtx, rrx) = unbounded::<ReadJob>();
    for (i, reader) in readers.into_iter().enumerate() {
        let rrx = rrx.clone();
        let h = health.clone();
        threads.push(spawn(&format!("mailstore-reader-{i}"), move || {
            reader_loop(reader, rrx, h)
        })?);
    }
    Ok(rtx)
}
