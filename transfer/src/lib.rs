//! Moving mail in and out of a minimail store: `minimail import` and
//! `export` (mbox and Maildir, with flags, keywords and internal dates;
//! idempotent imports through the store's ordinary write path) and
//! `minimail backup` / `restore` (a consistent online copy; a restore that
//! refuses to replace a store in use).
//!
//! The file formats are parsed and written here; the store is reached only
//! through its typed operations (`append_prepared`, `raw`, `entries`,
//! `backup_into`, `StoreLock`). No SQL here.
//!
//! # Files
//! - `message.rs`: line endings, keyword validity, `From `-line dates;
//! - `mbox.rs`: the streaming mbox reader and the writer (mboxrd);
//! - `maildir.rs`: Maildir++ folders, file-name flags, Dovecot keywords,
//!   the writer;
//! - `import.rs`, `export.rs`: the two directions over the store;
//! - `backup.rs`: backup and restore;
//! - `error.rs`: [`TransferError`].

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod backup;
mod error;
pub mod export;
pub mod import;
pub mod maildir;
pub mod mbox;
pub mod message;

pub use error::{Result, TransferError};
pub use import::Format;
