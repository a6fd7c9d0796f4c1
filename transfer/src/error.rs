//! The one error type of import, export, backup and restore.

use std::path::{Path, PathBuf};

/// What a transfer can fail with.
#[derive(thiserror::Error, Debug)]
pub enum TransferError {
    /// A file or directory could not be read or written.
    #[error("{}: {err}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The reason (in the message, so not also a `source`).
        err: std::io::Error,
    },
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] mailstore::StoreError),
    /// The input is not what it claims to be (not an mbox, not a Maildir).
    #[error("{0}")]
    Format(String),
    /// The operation is refused (a live store, an existing file, ...).
    #[error("{0}")]
    Refused(String),
}

/// Result alias of this crate.
pub type Result<T, E = TransferError> = std::result::Result<T, E>;

/// `map_err` helper: an I/O error about `path`.
pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TransferError + '_ {
    move |err| TransferError::Io {
        path: path.to_path_buf(),
        err,
    }
}
