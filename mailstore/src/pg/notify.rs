//! Push across front ends: every committed write batch NOTIFYs, every
//! front end LISTENs.
//!
//! # Sending
//! Schema version 16 puts a trigger on the commit counter row
//! (`meta.commit_counter`, which every write batch of every front end
//! bumps once): it runs `pg_notify('minimail_commit', <counter>)`.
//! PostgreSQL delivers a NOTIFY only when its transaction commits, so a
//! listener hears of a batch once it is durable and visible, and nothing
//! of a batch that rolled back. The payload is the counter (a few bytes,
//! far below NOTIFY's 8,000-byte limit); it says "something changed",
//! and the listener reads what (the mailboxes' HIGHESTMODSEQs), as the
//! poll it replaces did. Being a trigger, it needs no code in the
//! writer and covers every writer (`minimail user ...` too).
//!
//! # Listening
//! [`Store::listen_commits`] starts one thread with a connection of its
//! own that LISTENs on the channel and calls its callback for each batch
//! of notifications (a burst is one call). It never runs on an event
//! loop: it blocks on the connection, waking every second to see whether
//! it should stop and every [`PROBE_EVERY`] to probe the connection
//! (a cut that the socket does not report). When the connection is lost
//! (a PostgreSQL restart) it connects again with a backoff from 100 ms up
//! to [`MAX_BACKOFF`], and after each (re)connection calls the callback
//! once, since commits made while it was not listening were not heard.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use postgres::fallible_iterator::FallibleIterator;

use crate::pg::{open_client, pg_message, redact};
use crate::store::Store;

/// The channel commits are announced on.
pub const CHANNEL: &str = "minimail_commit";

/// Schema version 16's trigger: each bump of the commit counter NOTIFYs
/// (delivered at COMMIT).
pub(crate) const TRIGGER_SQL: &str = r#"
CREATE OR REPLACE FUNCTION minimail_commit_notify() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    PERFORM pg_notify('minimail_commit', NEW.value::text);
    RETURN NULL;
END
$f$;
SET LOCAL client_min_messages = warning;
DROP TRIGGER IF EXISTS meta_commit_notify ON meta;
CREATE TRIGGER meta_commit_notify AFTER UPDATE ON meta
    FOR EACH ROW WHEN (NEW.key = 'commit_counter')
    EXECUTE FUNCTION minimail_commit_notify();
"#;

/// The channel on which a queued recipient that became free to claim is
/// announced (schema version 18's trigger on `outq_rcpt`).
pub const QUEUE_CHANNEL: &str = "minimail_queue";

/// Schema version 18's trigger: a row of `outq_rcpt` inserted or updated
/// without a lease (queued, given back, deferred, retried: what a front
/// end may now claim) NOTIFYs, delivered at COMMIT. Claims and lease
/// renewals set a lease and stay silent; PostgreSQL folds the same
/// notification raised many times in one transaction into one.
pub(crate) const QUEUE_TRIGGER_SQL: &str = r#"
CREATE OR REPLACE FUNCTION minimail_queue_notify() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    PERFORM pg_notify('minimail_queue', '');
    RETURN NULL;
END
$f$;
SET LOCAL client_min_messages = warning;
DROP TRIGGER IF EXISTS outq_rcpt_notify ON outq_rcpt;
CREATE TRIGGER outq_rcpt_notify AFTER INSERT OR UPDATE ON outq_rcpt
    FOR EACH ROW WHEN (NEW.lease_owner IS NULL)
    EXECUTE FUNCTION minimail_queue_notify();
"#;

/// How long the listener waits for a notification before it looks at
/// its stop flag.
const TICK: Duration = Duration::from_secs(1);
/// How often a silent LISTEN connection is probed with a query.
pub const PROBE_EVERY: Duration = Duration::from_secs(5);
/// First wait before connecting again.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between two connection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A running listener thread ([`Store::listen_commits`]); it stops
/// (within a second) when this is dropped.
#[derive(Debug)]
pub struct CommitListener {
    stop: Arc<AtomicBool>,
}

impl Drop for CommitListener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl Store {
    /// On PostgreSQL: start a thread that LISTENs for the commits of every
    /// front end on this database and calls `wake` for each (a burst may
    /// be one call), and once after each (re)connection. `None` on SQLite
    /// (there the IMAP server polls the file's commit counter), or when
    /// the thread cannot be started.
    pub fn listen_commits(&self, wake: impl Fn() + Send + 'static) -> Option<CommitListener> {
        self.listen(CHANNEL, wake)
    }

    /// On PostgreSQL: as [`Store::listen_commits`], for queued recipients
    /// that became free to claim on any front end ([`QUEUE_CHANNEL`]):
    /// what wakes the outbound engine for mail queued elsewhere. `None`
    /// on SQLite (one process delivers there).
    pub fn listen_queue(&self, wake: impl Fn() + Send + 'static) -> Option<CommitListener> {
        self.listen(QUEUE_CHANNEL, wake)
    }

    fn listen(
        &self,
        channel: &'static str,
        wake: impl Fn() + Send + 'static,
    ) -> Option<CommitListener> {
        let url = self.pg_url()?.to_owned();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let spawned = thread::Builder::new()
            .name("pg-listen".into())
            .spawn(move || listen_loop(&url, channel, &flag, &wake));
        match spawned {
            Ok(_) => Some(CommitListener { stop }),
            Err(e) => {
                log::error!("cannot start the PostgreSQL LISTEN thread: {e}");
                None
            }
        }
    }
}

/// Sleep `d` in short steps; false if asked to stop meanwhile.
fn nap(d: Duration, stop: &AtomicBool) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        thread::sleep((end - Instant::now()).min(Duration::from_millis(100)));
    }
    !stop.load(Ordering::SeqCst)
}

fn listen_loop(url: &str, channel: &str, stop: &AtomicBool, wake: &dyn Fn()) {
    let mut backoff = MIN_BACKOFF;
    let mut failing = false;
    while !stop.load(Ordering::SeqCst) {
        // The LISTEN and the probes are bounded as a statement is
        // (watch.rs).
        let mut watch = None;
        let mut client = match open_client(url).and_then(|mut c| {
            watch = super::watch::Watch::of(&mut c);
            if let Some(w) = &watch {
                w.waiting(true);
            }
            let r = c.batch_execute(&format!("LISTEN {channel}"));
            if let Some(w) = &watch {
                w.waiting(false);
            }
            r?;
            Ok(c)
        }) {
            Ok(c) => c,
            Err(e) => {
                if !failing {
                    log::warn!(
                        "{}: cannot LISTEN on {channel} ({e}); retrying",
                        redact(url)
                    );
                    failing = true;
                }
                if !nap(backoff, stop) {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        if failing {
            log::info!("{}: listening on {channel} again", redact(url));
            failing = false;
        }
        backoff = MIN_BACKOFF;
        // Whatever committed while nobody listened.
        wake();
        let mut quiet_since = Instant::now();
        loop {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            let heard = {
                let mut n = client.notifications();
                let first = n.timeout_iter(TICK).next();
                // Take the rest of a burst: one wake for all of it.
                if let Ok(Some(_)) = first {
                    while let Ok(Some(_)) = n.iter().next() {}
                }
                first.map(|x| x.is_some())
            };
            let lost = match heard {
                Ok(true) => {
                    wake();
                    quiet_since = Instant::now();
                    None
                }
                Ok(false) if client.is_closed() => Some("closed".to_owned()),
                Ok(false) if quiet_since.elapsed() >= PROBE_EVERY => {
                    quiet_since = Instant::now();
                    if let Some(w) = &watch {
                        w.waiting(true);
                    }
                    let probe = client.batch_execute("SELECT 1");
                    if let Some(w) = &watch {
                        w.waiting(false);
                    }
                    probe.err().map(|e| pg_message(&e))
                }
                Ok(false) => None,
                Err(e) => Some(pg_message(&e)),
            };
            if let Some(why) = lost {
                log::warn!(
                    "{}: LISTEN connection lost ({why}); reconnecting",
                    redact(url)
                );
                break;
            }
        }
        // A short pause before the first attempt (the server may be
        // shutting down).
        if !nap(MIN_BACKOFF, stop) {
            return;
        }
    }
}
