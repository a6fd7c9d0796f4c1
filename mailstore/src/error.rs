//! The one error type of the store. Callers map variants to protocol replies
//! (see STYLE.md "Errors: decide the audience first"); no protocol text here.

use std::path::PathBuf;

/// Everything a store operation can fail with.
#[derive(thiserror::Error, Debug)]
pub enum StoreError {
    /// The database file could not be opened or initialised (missing
    /// directory, no permission, read-only file system, locked, ...).
    #[error("cannot open mail store {}: {source}", path.display())]
    Open {
        /// The path given to [`crate::Store::open`].
        path: PathBuf,
        /// SQLite's reason.
        #[source]
        source: rusqlite::Error,
    },
    /// The file is not a usable minimail database (not SQLite, damaged, or
    /// written by a newer schema), found when opening it (the start-up
    /// `PRAGMA quick_check` included), or stored metadata that does not
    /// decode. The message names the path and the cause.
    #[error("corrupt mail store: {0}")]
    Corrupt(String),
    /// SQLite reported damage (`SQLITE_CORRUPT`, `SQLITE_NOTADB`) while
    /// the store was serving, or the store refused a write because it had
    /// seen such damage before: from the first one on, every write fails
    /// with this (see [`crate::Store::damaged`]); reads go on.
    #[error("mail store damaged: {0}")]
    Damaged(String),
    /// No room for the change (`SQLITE_FULL`: the disk or file system is
    /// full, or the database reached its page limit); nothing of it was
    /// stored. Transient: the same write may succeed once space is freed.
    #[error("mail store full: {0}")]
    Full(String),
    /// Any other SQLite failure.
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    /// A user, mailbox or message that the operation needs does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The user or mailbox to create already exists.
    #[error("already exists: {0}")]
    Exists(String),
    /// The request itself is not acceptable (bad name, INBOX deletion, ...).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The store has been shut down and takes no more jobs.
    #[error("mail store is shut down")]
    Closed,
    /// The job ran, but the batch it belonged to failed to commit; nothing of
    /// it was stored.
    #[error("commit failed: {0}")]
    CommitFailed(String),
    /// The job's closure panicked; its work was rolled back.
    #[error("store job panicked")]
    Panicked,
    /// The change would put a user over their quota (RFC 9208); nothing
    /// of it was stored. `permanent` when it could never fit (larger than
    /// the limit itself), else it may fit once mail is deleted.
    #[error("over quota: {detail}")]
    OverQuota {
        /// What is over (used, added and limit).
        detail: String,
        /// Larger than the limit itself.
        permanent: bool,
    },
    /// The operation is not implemented on this backend yet (PostgreSQL:
    /// see `pg/mod.rs`); nothing was done.
    #[error("{0}")]
    Unsupported(String),
    /// A PostgreSQL failure (constraint, server error); the message is
    /// the server's or the client's.
    #[error("database error: {0}")]
    Postgres(String),
    /// The database server cannot be reached or dropped the connection
    /// (PostgreSQL restarting or shutting down, the network, too many
    /// connections); nothing of the job was stored, or (a COMMIT cut off)
    /// its outcome is unknown and the client is told to retry. Transient:
    /// the next job opens a new connection.
    #[error("mail store unavailable: {0}")]
    Unavailable(String),
    /// Password hashing failed (argon2 parameter or encoding error).
    #[error("password hashing failed: {0}")]
    Password(String),
}

/// SQLite's errors by what they mean for the store: damage and a full disk
/// get variants of their own, so callers can say what happened.
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        match fault(&e) {
            Fault::Damaged => StoreError::Damaged(e.to_string()),
            Fault::Full => StoreError::Full(e.to_string()),
            Fault::Other | Fault::Unavailable => StoreError::Sqlite(e),
        }
    }
}

/// What a SQLite error says about the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// `SQLITE_CORRUPT` (any extended code) or `SQLITE_NOTADB`.
    Damaged,
    /// `SQLITE_FULL`: the disk, or the page limit (`max_page_count`).
    Full,
    /// The database server is unreachable (PostgreSQL only).
    Unavailable,
    /// Anything else.
    Other,
}

/// Classify a SQLite error (SQLite itself reports a write that failed with
/// `ENOSPC` as `SQLITE_FULL`).
pub(crate) fn fault(e: &rusqlite::Error) -> Fault {
    use rusqlite::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseCorrupt) | Some(ErrorCode::NotADatabase) => Fault::Damaged,
        Some(ErrorCode::DiskFull) => Fault::Full,
        _ => Fault::Other,
    }
}

/// Result alias used throughout the crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
