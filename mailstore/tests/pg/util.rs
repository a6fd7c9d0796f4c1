//! The helpers of `tests/it/util.rs`, on PostgreSQL: each store is a
//! fresh database in a private cluster (`testkit::pg`).

use mailstore::{NewMessage, Store, UserId};
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
