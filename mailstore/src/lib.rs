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
//!   tombstones for [`Reader::changes_since`], bounded per mailbox
//!   (`tombstones.rs`: past the bound the oldest are forgotten and
//!   [`Changes::expunged_complete`] says so);
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
//! # Search
//! FTS5 with the trigram tokenizer is available in the bundled SQLite and
//! is used for `Body`/`Text` (substring, case-insensitive, decoded text of
//! text parts incl. qp/base64 and embedded messages, capped at 2 MiB per
//! message); needles under 3 characters scan the stored text instead.
//! `Header` uses a table of decoded header values (ASCII case folding),
//! for the indexed fields through an in-memory cache of one mailbox's
//! values per field (`search/cache.rs`, bounded, exact per snapshot).
//! Search text is staged in `pending_text` by the delivery's durable
//! transaction and enters the FTS index later, in the writer's own
//! transactions, when deliveries pause or the backlog grows (see
//! `indexer.rs`); search also scans the pending rows, so results never
//! depend on indexing progress.
//!
//! # Damage and a full disk
//! [`Store::open`] runs `PRAGMA quick_check` for at most
//! [`STARTUP_CHECK_TIME`] and refuses a damaged file with
//! [`StoreError::Corrupt`] (unless [`OpenOptions::allow_corrupt`] or
//! `MINIMAIL_ALLOW_CORRUPT_STORE=1`); [`check_file`] runs
//! `quick_check`/`integrity_check` on demand. Damage SQLite reports while
//! serving degrades the store: every later write fails with
//! [`StoreError::Damaged`], reads go on ([`Store::damaged`]). `SQLITE_FULL`
//! (disk full, or [`OpenOptions::max_pages`] / `MINIMAIL_MAX_PAGES` for
//! tests) fails the write with [`StoreError::Full`]; nothing is stored.
//!
//! # Commit notifications
//! Every committed batch bumps [`Reader::data_version`] by one and calls
//! each [`Store::on_commit`] listener once (with the touched mailboxes,
//! possibly none), so a process can tell its own commits from others'.
//!
//! # Callbacks
//! `done` is called exactly once: after COMMIT, or at once with
//! [`StoreError::Closed`] after shutdown, or with [`StoreError::Panicked`]
//! if the job panicked. A panicking callback is caught and logged.
//!
//! # Differences from the first API sketch
//! - [`Reader::data_version`] returns a store-wide commit counter kept in
//!   the database (bumped by each write batch of any process) instead of
//!   `PRAGMA data_version`, whose value is per connection and so useless
//!   across a pool of reader connections. Compare successive values: a
//!   change means someone committed.
//! - [`StoreError`] has extra variants `CommitFailed`, `Panicked`,
//!   `Password`, `Damaged`, `Full`.
//! - [`PreparedMessage`] with [`Tx::deliver_prepared`] /
//!   [`Tx::append_prepared`]: parse on the caller's thread so the writer
//!   only inserts rows (plain `deliver`/`append` parse on the writer).
//! - [`Store::compute`] runs CPU work (e.g. [`PreparedMessage::new`]) on a
//!   reader thread without touching the database.
//! - Additional helpers: [`Reader::user_by_id`], [`Reader::mailbox_by_id`],
//!   [`Reader::raw_len`], [`Reader::stored_messages`], [`Store::path`],
//!   [`Flags`] helpers (`has`, `set`, `apply`, `same_as`, keywords).
//! - `Tx::delete_mailbox` refuses INBOX ([`StoreError::Invalid`]) and
//!   deletes only the named mailbox, not its children (the caller applies
//!   RFC 3501's \Noselect rules). `rename_mailbox` also renames
//!   subscriptions; renaming to INBOX is [`StoreError::Exists`].
//! - Renaming INBOX moves its messages (new UIDs in the new mailbox,
//!   tombstones in INBOX); INBOX keeps its UIDVALIDITY and UIDNEXT.
//! - Keywords must be non-empty and contain no whitespace
//!   ([`StoreError::Invalid`]); keyword matching is ASCII case-insensitive.
//! - A `store_flags` or `expunge` call uses one new modseq for all the
//!   entries it changes; each entry added (deliver, append, copy, move)
//!   gets its own.
//! - `deliver` is all-or-nothing: an unknown recipient id fails the job
//!   with [`StoreError::NotFound`] (nothing stored); no recipients is
//!   [`StoreError::Invalid`]; a recipient without INBOX gets one re-created.
//! - MIME parsing (`mime`) is linear in the message's size and bounded in
//!   depth, parts and header fields; a message beyond a bound is stored
//!   byte-exact with its structure cut (the rest described as one part).
//!
//! # Files
//! - `store.rs`: the [`Store`] handle, [`OpenOptions`], opening for
//!   service, `read`/`compute`/`write`, listeners, shutdown;
//! - `jobs.rs`: the type-erased read and write jobs and their `done`;
//! - `writer.rs`: the writer thread's group commit and its indexing
//!   between batches; `readers.rs`: the reader-thread pool;
//! - `backup.rs`: online copies (`VACUUM INTO`), a file's schema
//!   version, the lock file every store opened for service holds shared;
//! - `health.rs`: the degraded state after damage; `check.rs`:
//!   [`check_file`] and the start-up check;
//! - `schema.rs`: connections, schema, migrations; `query.rs`: row
//!   lookups shared by both sides;
//! - `reader.rs`, `reader_msgs.rs`, `reader_sort.rs` (what sorting and
//!   threading read): [`Reader`] (reads);
//!   `tx.rs`, `tx_deliver.rs`, `tx_flags.rs`: [`Tx`] (writes);
//! - `search/`: [`Query`]; `mod.rs` picks `sql.rs` (one statement) or
//!   `eval.rs` (Rust evaluation of large queries);
//! - `quota.rs`: per-user quotas (RFC 9208), usage kept by triggers;
//! - `tombstones.rs`: the bound on expunge tombstones, UID lists;
//! - `indexer.rs`: moving pending search text into the FTS index;
//! - `mime/`: the bounded MIME/header/address parser; `meta.rs`: the
//!   metadata it yields; `types.rs`: plain domain types; `error.rs`:
//!   [`StoreError`]; `password.rs`: argon2id; `date.rs`: calendar
//!   arithmetic.
//!
//! - `pg/`: the PostgreSQL backend (a `postgres://` URL instead of a
//!   path): each public [`Reader`] and [`Tx`] method dispatches there at
//!   its top; see `pg/mod.rs` for its guarantees and what it lacks yet.
//!
//! No protocol syntax lives here.

mod aliases;
mod backup;
mod check;
pub mod date;
mod dkim;
mod envelope_bin;
mod error;
mod health;
mod indexer;
mod jobs;
mod keys;
mod meta;
mod mime;
mod outq;
mod password;
mod pg;
mod query;
mod quota;
mod reader;
mod reader_msgs;
mod reader_sort;
mod readers;
mod schema;
mod search;
mod sieve;
mod store;
mod threads;
mod tombstones;
mod tx;
mod tx_deliver;
mod tx_flags;
mod types;
mod walbuf;
mod writer;

pub use aliases::{Alias, Resolution, Route, MAX_ALIAS_DEPTH, MAX_ALIAS_TARGETS};
pub use backup::{backup_into, lock_path, schema_version, StoreLock, SCHEMA_VERSION};
pub use check::{check_file, Check, Integrity, STARTUP_CHECK_TIME};
pub use dkim::DkimKey;
pub use error::{Result, StoreError};
pub use keys::MAILBOX_KEY_LEN;
pub use meta::{Address, AddressRef, Envelope, EnvelopeRef, MessageMeta, MetaParts, MimePart};
pub use outq::{domain_of, OutMessage, OutRcpt, QueueLeases, Queued};
pub use password::{hash_password, verify_password};
pub use pg::is_url as is_postgres_url;
pub use pg::migrate::{migrate_sqlite_to_postgres, MigrateReport};
pub use pg::notify::CommitListener;
pub use quota::{Fit, Quota};
pub use reader::{MailboxSummary, Reader, SummaryDelta};
pub use reader_msgs::RawReader;
pub use reader_sort::{FieldSet, FirstAddress, MessageFields};
pub use readers::READERS;
pub use search::{Query, HEADER_CACHE_LIMIT};
pub use sieve::{Filing, ScriptInfo, MAX_SCRIPTS, MAX_SCRIPT_SIZE, MAX_SEEN_IDS};
pub use store::{OpenOptions, Store, SYNC_READERS};
pub use tombstones::DEFAULT_MAX_TOMBSTONES;
pub use tx::{Tx, DEFAULT_MAILBOXES};
pub use tx_deliver::PreparedMessage;
pub use types::{
    Appended, Changes, CopyOutcome, Delivered, Entry, FlagOp, Flags, Mailbox, MailboxId, MessageId,
    NewMessage, Status, StoreOutcome, SystemFlag, Uid, User, UserId,
};
pub use writer::Committed;
pub use writer::MAX_BATCH;

/// Text of `bytes` in the MIME charset `charset` (RFC 2046 §4.1.2), read
/// as the search index reads message text: a missing or unknown charset is
/// UTF-8, or Latin-1 where the octets are not UTF-8.
pub fn charset_text(bytes: &[u8], charset: Option<&str>) -> String {
    mime::header::charset_text(bytes, charset)
}
