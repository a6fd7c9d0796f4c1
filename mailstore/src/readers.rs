//! The reader pool: [`READERS`] threads, each with its own read-only
//! connection, taking read jobs ([`Store::read`], [`Store::compute`]) from
//! one shared queue. A panicking job is caught and leaves no transaction
//! open behind it.
//!
//! [`Store::read`]: crate::Store::read
//! [`Store::compute`]: crate::Store::compute

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::error::Result;
use crate::health::Health;
use crate::jobs::ReadJob;
use crate::reader::Reader;
use crate::store::{lock, spawn};

/// Reader threads (each with its own connection).
pub const READERS: usize = 3;

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

/// Start one thread per reader, all taking jobs from one new queue; the
/// handles go to `threads`. Returns the queue's sender (dropping every
/// sender lets the threads finish the queue and exit).
pub(crate) fn start(
    readers: Vec<Reader>,
    health: &Arc<Health>,
    threads: &mut Vec<JoinHandle<()>>,
) -> Result<Sender<ReadJob>> {
    let (rtx, rrx) = channel::<ReadJob>();
    let rrx = Arc::new(Mutex::new(rrx));
    for (i, reader) in readers.into_iter().enumerate() {
        let rrx = rrx.clone();
        let h = health.clone();
        threads.push(spawn(&format!("mailstore-reader-{i}"), move || {
            reader_loop(reader, rrx, h)
        })?);
    }
    Ok(rtx)
}
