//! Integrity checks of the store file: [`check_file`] runs SQLite's
//! `PRAGMA quick_check` / `integrity_check` on demand (`minimail store
//! check`), stopped by a [`Watchdog`] after a time limit, and
//! `startup_check` is the time-bounded quick check [`Store::open_with`]
//! runs before serving, which refuses a damaged file with
//! [`StoreError::Corrupt`] unless told otherwise.
//!
//! [`Store::open_with`]: crate::Store::open_with

use std::path::Path;
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode};

use crate::error::{fault, Fault, Result, StoreError};
use crate::schema;

/// How long the start-up `PRAGMA quick_check` may run by default; a
/// larger store is checked only partly (logged) and served.
pub const STARTUP_CHECK_TIME: Duration = Duration::from_secs(3);

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
    if path.as_ref().to_str().is_some_and(crate::pg::is_url) {
        return crate::pg::unsupported("store check (use PostgreSQL's amcheck)");
    }
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

/// The start-up check of [`Store::open_with`](crate::Store::open_with).
pub(crate) fn startup_check(path: &Path, limit: Duration, allow_corrupt: bool) -> Result<()> {
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
