//! The helpers of `tests/it/util.rs`, on PostgreSQL: each store is a
//! fresh database in a private cluster (`testkit::pg`).

use mailstore::Store;
use testkit::pg::{fresh_db, PgDb};

/// A fresh database; stands where the SQLite tests hold their temporary
/// directory.
pub struct Db(PgDb);

/// What [`Db::path`] gives: joined with a file name (as the SQLite tests
/// do to open a second `Store` on the same file) it is the same database.
pub struct DbPath(String);

impl DbPath {
    pub fn join(&self, _file: &str) -> String {
        self.0.clone()
    }
}

impl Db {
    pub fn url(&self) -> &str {
        self.0.url()
    }

    pub fn path(&self) -> DbPath {
        DbPath(self.0.url().to_owned())
    }
}

/// A fresh PostgreSQL-backed store (keep the database guard alive).
pub fn store() -> (Db, Store) {
    let db = fresh_db();
    let store = Store::open(db.url()).unwrap();
    assert!(store.is_postgres());
    (Db(db), store)
}

/// `tests/it/util.rs`'s `write_behind` on PostgreSQL: `sql` run with a
/// client of its own while the store is shut, the store opened again.
pub fn write_behind(db: &Db, s: Store, sql: &str) -> Store {
    s.shutdown();
    let mut c = postgres::Client::connect(db.url(), postgres::NoTls).unwrap();
    c.batch_execute(sql).unwrap();
    drop(c);
    Store::open(db.url()).unwrap()
}

#[path = "../common/mod.rs"]
mod common;
pub use common::{deliver, simple, user};
