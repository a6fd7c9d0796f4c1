//! Shared helpers: temp stores, sample messages.

use mailstore::{NewMessage, Store, UserId};
use tempfile::TempDir;

/// What keeps a test's store alive (on PostgreSQL, `tests/pg/util.rs`: its
/// database), so suites shared by both backends can name it.
pub type Db = TempDir;

/// A fresh store in a temp dir (keep the dir alive).
pub fn store() -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("mail.db")).unwrap();
    (dir, store)
}

/// Run `sql` on the store's database behind the store's back (as an old
/// file or another writer could), with the store shut for it; the store
/// opened again.
pub fn write_behind(_dir: &TempDir, s: Store, sql: &str) -> Store {
    let path = s.path().to_owned();
    s.shutdown();
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(sql).unwrap();
    drop(c);
    Store::open(&path).unwrap()
}

/// Create a user with a dummy hash (hashing is slow in debug builds).
pub fn user(store: &Store, address: &str) -> UserId {
    let a = address.to_string();
    store
        .write_sync(move |tx| tx.create_user(&a, "$argon2id$dummy"))
        .unwrap()
}

/// A small plain message.
pub fn simple(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: {subject}\r\n\
         Date: Tue, 24 Nov 2026 10:00:00 +0100\r\nMessage-ID: <{subject}@example.org>\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// Deliver a message to users, returning its entries.
pub fn deliver(store: &Store, raw: Vec<u8>, to: &[UserId]) -> mailstore::Delivered {
    let to = to.to_vec();
    store
        .write_sync(move |tx| {
            tx.deliver(
                &NewMessage {
                    raw,
                    internal_date: 1_790_000_000,
                },
                &to,
            )
        })
        .unwrap()
}
