//! Stores for tests: a temporary store, users with a password, mail
//! delivered straight into it, a closed store file to reopen with chosen
//! options, and the damage helpers of the store-fault tests (garbage over
//! the pages that hold a marker, after checkpointing the WAL).

use mailstore::{NewMessage, OpenOptions, Store, StoreError, Uid, UserId};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The internal date of every message [`deliver`] stores (Nov 2023).
pub const INTERNAL_DATE: i64 = 1_700_000_000;

/// A temporary directory with an empty store in it (`mail.db`).
pub fn temp_store() -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("mail.db")).unwrap();
    (dir, store)
}

/// The argon2 hash of `password`, made once per password: argon2 is slow
/// in debug builds and tests make many users.
pub fn password_hash(password: &str) -> String {
    static HASHES: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    let mut hashes = HASHES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    hashes
        .entry(password.to_owned())
        .or_insert_with(|| mailstore::hash_password(password).unwrap())
        .clone()
}

/// Create the user `address` with `password` in `store`.
pub fn add_user(store: &Store, address: &str, password: &str) -> UserId {
    let hash = password_hash(password);
    let address = address.to_owned();
    store
        .write_sync(move |tx| tx.create_user(&address, &hash))
        .unwrap()
}

/// Deliver `raw` to `user`'s INBOX (internal date [`INTERNAL_DATE`]); its UID.
pub fn deliver(store: &Store, user: UserId, raw: &[u8]) -> Uid {
    let msg = NewMessage {
        raw: raw.to_vec(),
        internal_date: INTERNAL_DATE,
    };
    let d = store
        .write_sync(move |tx| tx.deliver(&msg, &[user]))
        .unwrap();
    d.entries[0].1
}

/// A closed store file (`mail.db` in a temporary directory) with `users`,
/// all with `password`, and `messages` delivered to the first of them
/// (UIDs 1, 2, ...). Reopen it with the options a test needs.
pub fn closed_store(users: &[&str], password: &str, messages: &[Vec<u8>]) -> (TempDir, PathBuf) {
    let (dir, store) = temp_store();
    let path = dir.path().join("mail.db");
    let ids: Vec<UserId> = users
        .iter()
        .map(|u| add_user(&store, u, password))
        .collect();
    for raw in messages {
        deliver(&store, ids[0], raw);
    }
    store.shutdown();
    drop(store);
    (dir, path)
}

/// `head` (header fields and the blank line) followed by body lines that
/// repeat `marker`, to about `kib` KiB: mail big enough to fill pages of
/// its own, which [`wreck_pages_holding`] can find by the marker.
pub fn big_message(head: &str, kib: usize, marker: &str) -> Vec<u8> {
    let line = marker.repeat(64 / marker.len() + 1);
    let mut m = head.as_bytes().to_vec();
    while m.len() < kib * 1024 {
        m.extend_from_slice(line.as_bytes());
        m.extend_from_slice(b"\r\n");
    }
    m
}

/// Open the store file at `path` so that it may not grow at all: whatever
/// needs a new page fails exactly as on a full disk (SQLite answers
/// SQLITE_FULL either way).
pub fn open_full(path: &Path) -> Store {
    Store::open_with(
        path,
        &OpenOptions {
            max_pages: Some(1),
            ..OpenOptions::default()
        },
    )
    .unwrap()
}

/// Open the damaged store file at `path` as a server told to serve it
/// anyway does (`allow_corrupt`), after asserting that a plain open
/// refuses it as corrupt.
pub fn open_damaged(path: &Path) -> Store {
    let err = Store::open(path).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    Store::open_with(
        path,
        &OpenOptions {
            allow_corrupt: true,
            ..OpenOptions::default()
        },
    )
    .unwrap()
}

/// Make sure everything of the closed SQLite store at `path` is in the main
/// file: the last connection to close checkpoints the WAL, unless it is a
/// read-only reader's (they close just after shutdown returns, in any
/// order), so checkpoint it here until the WAL is empty. Panics after 20 s.
pub fn checkpoint_closed_store(path: &Path) {
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    let waited = Instant::now();
    while std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0)
        && waited.elapsed() < Duration::from_secs(20)
    {
        std::thread::sleep(Duration::from_millis(20));
        if let Ok(conn) = rusqlite::Connection::open(path) {
            let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
    }
    assert!(
        std::fs::metadata(&wal).map_or(true, |m| m.len() == 0),
        "the WAL was checkpointed into the file"
    );
}

/// Write garbage over every page (but the header page) of the closed
/// store file at `path` that holds `marker`; returns how many. The
/// damage SQLite's `quick_check` and queries then meet is real.
pub fn wreck_pages_holding(path: &Path, marker: &[u8]) -> usize {
    checkpoint_closed_store(path);
    let mut bytes = std::fs::read(path).unwrap();
    let page_size = match u16::from_be_bytes([bytes[16], bytes[17]]) {
        1 => 65536,
        n => usize::from(n),
    };
    let mut wrecked = 0;
    for page in bytes.chunks_mut(page_size).skip(1) {
        if page.windows(marker.len()).any(|w| w == marker) {
            for (i, b) in page.iter_mut().enumerate() {
                *b = (i * 7919 % 251) as u8;
            }
            wrecked += 1;
        }
    }
    std::fs::write(path, &bytes).unwrap();
    wrecked
}

/// Run `sql` on the closed store file at `path` (to make a file look as
/// an older program left it, e.g. entries without a save date).
pub fn run_sql(path: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(sql).unwrap();
}
