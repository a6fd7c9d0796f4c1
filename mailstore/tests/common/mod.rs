//! The sample data and operations both backends' suites use
//! (`it/util.rs` on SQLite, `pg/util.rs` on PostgreSQL re-export them).

use mailstore::{NewMessage, Store, UserId};

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
