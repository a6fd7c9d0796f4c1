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
    /// written by a newer schema). The message names the path and the cause.
    #[error("corrupt mail store: {0}")]
    Corrupt(String),
    /// Any other SQLite failure.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
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
    /// Password hashing failed (argon2 parameter or encoding error).
    #[error("password hashing failed: {0}")]
    Password(String),
}

/// Result alias used throughout the crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
