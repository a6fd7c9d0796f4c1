//! minimail's shared mailbox store: SQLite (rusqlite, bundled) behind a
//! protocol-neutral API used by smtpd, imapd and `minimail user`.
//!
//! # Model (made for IMAP, RFC 3501 §2.3; RFC 7162 modseqs)
//! - users (address unique, case-insensitive; argon2id PHC hash);
//! - mailboxes per user (`/` hierarchy, `INBOX` spelled so), each with
//!   UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, SPECIAL-USE; subscriptions are a
//!   separate list of names, so LSUB works after DELETE;
//! - messages stored once however many recipients, with raw bytes and
//!   metadata parsed once at delivery ([`Envelope`], [`MimePart`] tree with
//!   byte offsets into the raw message);
//! - entries (mailbox, uid) -> message with flags and modseq, plus expunge
//!   tombstones for [`Reader::changes_since`];
//! - an FTS5 trigram index over decoded headers and text for substring
//!   SEARCH. A message whose last entry goes is deleted with its index rows.
//!
//! # Threads
//! One writer thread owns the write connection and commits jobs in groups
//! (see [`Store::write`]): `done` runs only after the batch is durable
//! (WAL, synchronous=FULL). Reads run on a small pool of reader threads,
//! each with its own connection. Callbacks run on those threads: keep them
//! cheap (send a value, wake a loop).
//!
//! # Differences from the first API sketch
//! - [`Reader::data_version`] returns a store-wide commit counter kept in
//!   the database (bumped by each write batch of any process) instead of
//!   `PRAGMA data_version`, whose value is per connection and so useless
//!   across a pool of reader connections. Compare successive values: a
//!   change means someone committed.
//! - [`StoreError`] has extra variants `CommitFailed`, `Panicked`, `Password`.
//! - Additional helpers: [`Reader::user_by_id`], [`Reader::mailbox_by_id`],
//!   [`Store::path`].
//!
//! No protocol syntax lives here.

mod error;
mod meta;
mod parse;
mod password;
mod query;
mod reader;
mod reader_msgs;
mod schema;
mod search;
mod store;
mod tx;
mod tx_flags;
mod types;

pub use error::{Result, StoreError};
pub use meta::{Address, Envelope, MessageMeta, MimePart};
pub use password::{hash_password, verify_password};
pub use reader::Reader;
pub use search::Query;
pub use store::{Store, MAX_BATCH, READERS};
pub use tx::{Tx, DEFAULT_MAILBOXES};
pub use types::{
    Appended, Changes, CopyOutcome, Delivered, Entry, FlagOp, Flags, Mailbox, MailboxId, MessageId,
    NewMessage, Status, StoreOutcome, SystemFlag, Uid, User, UserId,
};
