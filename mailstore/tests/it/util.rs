//! Shared helpers: temp stores, sample messages.

use mailstore::Store;
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

#[path = "../common/mod.rs"]
mod common;
pub use common::{deliver, simple, user};
