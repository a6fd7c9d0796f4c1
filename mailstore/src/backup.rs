//! What copying a store needs from SQLite: a consistent online copy
//! ([`backup_into`], `VACUUM INTO` on a connection of its own), the schema
//! version a file carries ([`schema_version`], compared with
//! [`SCHEMA_VERSION`]), and the store's lock file ([`StoreLock`]): every
//! store opened for service holds it shared, so whoever holds it
//! exclusively ([`StoreLock::exclusive`]) knows no process is serving the
//! file. File handling (temporary names, renames, fsync) is the caller's.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use crate::error::{Result, StoreError};
use crate::schema;

/// The schema version this program writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = schema::VERSION;

/// The lock file beside the store `db`: `DB.lock`.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// A lock on a store's lock file (`flock(2)`), released when dropped.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

impl StoreLock {
    fn open(db: &Path) -> Result<File> {
        let path = lock_path(db);
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::Invalid(format!("cannot open {}: {e}", path.display())))
    }

    /// The shared lock a store opened for service holds while it lives;
    /// `None` when the lock file cannot be made (a missing or read-only
    /// directory: opening the database then reports the real problem).
    ///
    /// # Errors
    /// [`StoreError::Invalid`] when the file is being restored (someone
    /// holds the lock exclusively).
    pub(crate) fn shared(db: &Path) -> Result<Option<StoreLock>> {
        let Ok(file) = StoreLock::open(db) else {
            return Ok(None);
        };
        match file.try_lock_shared() {
            Ok(()) => Ok(Some(StoreLock { _file: file })),
            Err(TryLockError::WouldBlock) => Err(StoreError::Invalid(format!(
                "{} is being replaced (`minimail restore` holds {}); try again when it is done",
                db.display(),
                lock_path(db).display()
            ))),
            Err(TryLockError::Error(e)) => {
                log::warn!("cannot lock {}: {e}", lock_path(db).display());
                Ok(None)
            }
        }
    }

    /// The lock held exclusively, without waiting: `Ok(None)` when some
    /// process has the store open (a server, `minimail user ...`).
    ///
    /// # Errors
    /// [`StoreError::Invalid`] when the lock file cannot be opened or
    /// locked for another reason.
    pub fn exclusive(db: &Path) -> Result<Option<StoreLock>> {
        let file = StoreLock::open(db)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(StoreLock { _file: file })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(StoreError::Invalid(format!(
                "cannot lock {}: {e}",
                lock_path(db).display()
            ))),
        }
    }
}

/// Write a consistent copy of the store `db` to the new file `dest` while
/// other connections go on writing: `VACUUM INTO` reads one snapshot (a
/// WAL read transaction, which blocks no writer) and writes it compacted.
/// `dest` must not exist.
///
/// # Errors
/// [`StoreError::Open`] / [`StoreError::Corrupt`] for a file that cannot be
/// opened; SQLite's failure to write `dest` (it exists, no room).
pub fn backup_into(db: &Path, dest: &Path) -> Result<()> {
    if db.to_str().is_some_and(crate::pg::is_url) {
        return crate::pg::unsupported("minimail backup (use pg_dump or replication)");
    }
    let conn = schema::connect(db, false)?;
    let dest = dest
        .to_str()
        .ok_or_else(|| StoreError::Invalid(format!("{} is not UTF-8", dest.display())))?;
    conn.execute("VACUUM INTO ?1", [dest])?;
    Ok(())
}

/// The schema version of the file at `path` (`PRAGMA user_version`), read
/// without writing to it.
///
/// # Errors
/// [`StoreError::Open`] when it cannot be opened, [`StoreError::Corrupt`]
/// when it is not a database.
pub fn schema_version(path: &Path) -> Result<i64> {
    if path.to_str().is_some_and(crate::pg::is_url) {
        return crate::pg::unsupported("reading the schema version of a URL");
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase)
            | Some(rusqlite::ErrorCode::DatabaseCorrupt) => {
                StoreError::Corrupt(format!("{}: {e}", path.display()))
            }
            _ => StoreError::Open {
                path: path.to_path_buf(),
                source: e,
            },
        })
}
