//! `Tx`: the write operations, run on the writer thread inside a batch
//! transaction. This file: users, mailboxes (RFC 3501 §6.3.3-6.3.7
//! CREATE/DELETE/RENAME/SUBSCRIBE semantics).
//! Adding messages lives in `tx_deliver.rs`, flag and expunge operations
//! in `tx_flags.rs`.

use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection};

use crate::error::{Result, StoreError};
use crate::query::{self, is_unique_violation};
use crate::types::{Flags, Mailbox, MailboxId, MessageId, Uid, UserId};

/// Mailboxes every new user gets: (name, special-use).
pub const DEFAULT_MAILBOXES: &[(&str, Option<&str>)] = &[
    ("INBOX", None),
    ("Sent", Some("\\Sent")),
    ("Drafts", Some("\\Drafts")),
    ("Trash", Some("\\Trash")),
    ("Junk", Some("\\Junk")),
];

/// Write access inside the current batch transaction (writer thread only).
///
/// Every method that changes a mailbox records it, so the commit listeners
/// learn which mailboxes changed.
pub struct Tx<'c> {
    conn: &'c Connection,
    /// Set on the PostgreSQL backend (then `conn` is an empty in-memory
    /// SQLite database): every method dispatches to `pg/tx.rs`.
    pub(crate) pg: Option<&'c crate::pg::PgConn>,
    pub(crate) touched: Vec<MailboxId>,
    /// Users whose mailbox list or subscriptions changed (create, delete,
    /// rename, subscribe), for [`crate::Committed::lists`].
    pub(crate) lists: Vec<UserId>,
    /// The search text this transaction left for the index.
    pub(crate) pending: crate::indexer::Backlog,
    /// The outbound queue changed (enqueue, finish, defer, retry,
    /// delete): the [`crate::Store::on_queue_change`] listeners are
    /// called after the commit.
    pub(crate) queue_changed: bool,
}

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Check and normalise a mailbox name: non-empty, no empty hierarchy level,
/// any-case `inbox` becomes `INBOX`.
pub(crate) fn normalize_name(name: &str) -> Result<String> {
    if name.is_empty()
        || name.starts_with('/')
        || name.ends_with('/')
        || name.contains("//")
        || name.chars().any(|c| c.is_control())
    {
        return Err(StoreError::Invalid(format!("bad mailbox name {name:?}")));
    }
    if name.eq_ignore_ascii_case("INBOX") {
        return Ok("INBOX".into());
    }
    // "inbox/x" keeps INBOX as a parent spelled the canonical way.
    match name.split_once('/') {
        Some((first, rest)) if first.eq_ignore_ascii_case("INBOX") => Ok(format!("INBOX/{rest}")),
        _ => Ok(name.to_string()),
    }
}

/// Keywords as stored: space separated.
pub(crate) fn encode_keywords(flags: &Flags) -> Result<String> {
    let mut out: Vec<&str> = Vec::new();
    for k in &flags.keywords {
        if k.is_empty() || k.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(StoreError::Invalid(format!("bad keyword {k:?}")));
        }
        if !out.iter().any(|o| o.eq_ignore_ascii_case(k)) {
            out.push(k);
        }
    }
    Ok(out.join(" "))
}

impl<'c> Tx<'c> {
    pub(crate) fn new(conn: &'c Connection) -> Tx<'c> {
        Tx {
            conn,
            pg: None,
            touched: Vec::new(),
            lists: Vec::new(),
            pending: Default::default(),
            queue_changed: false,
        }
    }

    /// A transaction on PostgreSQL (`conn` is the writer's empty
    /// in-memory SQLite database).
    pub(crate) fn new_pg(conn: &'c Connection, pg: &'c crate::pg::PgConn) -> Tx<'c> {
        Tx {
            conn,
            pg: Some(pg),
            touched: Vec::new(),
            lists: Vec::new(),
            pending: Default::default(),
            queue_changed: false,
        }
    }

    pub(crate) fn conn(&self) -> &'c Connection {
        self.conn
    }

    /// Create a user with INBOX, Sent, Drafts, Trash and Junk (all
    /// subscribed). `password_hash` is a PHC string from [`crate::hash_password`].
    ///
    /// # Errors
    /// [`StoreError::Exists`] if the address (any case) is taken,
    /// [`StoreError::Invalid`] for an empty address or one with spaces.
    pub fn create_user(&mut self, address: &str, password_hash: &str) -> Result<UserId> {
        if let Some(pg) = self.pg {
            return self.pg_create_user(pg, address, password_hash);
        }
        let address = address.trim();
        if address.is_empty() || address.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(StoreError::Invalid(format!("bad address {address:?}")));
        }
        // Ids are never reused (a deleted user's id is not handed to the
        // next one): caches keyed by address, like smtpd's RCPT cache, may
        // then hold a stale id but never another user's.
        self.conn
            .execute_batch("INSERT OR IGNORE INTO meta(key, value) VALUES ('last_user_id', 0)")?;
        let id: i64 = self.conn.query_row(
            "UPDATE meta SET value = max(value, (SELECT coalesce(max(id), 0) FROM users)) + 1
             WHERE key = 'last_user_id' RETURNING value",
            [],
            |r| r.get(0),
        )?;
        let inserted = self.conn.execute(
            "INSERT INTO users(id, address, password_hash, created) VALUES (?1, ?2, ?3, ?4)",
            params![id, address, password_hash, now()],
        );
        match inserted {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Exists(format!("user {address}")))
            }
            other => other?,
        };
        let user = id;
        for (name, special) in DEFAULT_MAILBOXES {
            self.create_mailbox(user, name, *special)?;
            self.set_subscribed(user, name, true)?;
        }
        Ok(user)
    }

    /// Delete a user, their mailboxes and subscriptions; messages no longer
    /// referenced anywhere are removed.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] if there is no such user.
    pub fn delete_user(&mut self, address: &str) -> Result<()> {
        if let Some(pg) = self.pg {
            return self.pg_delete_user(pg, address);
        }
        let user = query::user(self.conn, address)?
            .ok_or_else(|| StoreError::NotFound(format!("user {address}")))?;
        let boxes: Vec<MailboxId> = query::mailboxes(self.conn, user.id)?
            .into_iter()
            .map(|m| m.id)
            .collect();
        for id in boxes {
            self.drop_mailbox_entries(id)?;
        }
        self.conn
            .execute("DELETE FROM users WHERE id = ?1", [user.id])?;
        self.lists.push(user.id);
        Ok(())
    }

    /// Replace a user's password hash.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] if there is no such user.
    pub fn set_password_hash(&mut self, address: &str, password_hash: &str) -> Result<()> {
        if let Some(pg) = self.pg {
            return self.pg_set_password_hash(pg, address, password_hash);
        }
        let n = self.conn.execute(
            "UPDATE users SET password_hash = ?2 WHERE address = ?1",
            params![address.trim(), password_hash],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("user {address}")));
        }
        Ok(())
    }

    /// Create a mailbox (fresh UIDVALIDITY). Parents are not created.
    ///
    /// # Errors
    /// [`StoreError::Exists`], [`StoreError::Invalid`] for a bad name,
    /// [`StoreError::NotFound`] for an unknown user.
    pub fn create_mailbox(
        &mut self,
        user: UserId,
        name: &str,
        special_use: Option<&str>,
    ) -> Result<MailboxId> {
        if let Some(pg) = self.pg {
            return self.pg_create_mailbox(pg, user, name, special_use);
        }
        let name = normalize_name(name)?;
        let uidvalidity: i64 = self.conn.query_row(
            "UPDATE meta SET value = max(value + 1, ?1) WHERE key = 'last_uidvalidity' RETURNING value",
            [now()],
            |r| r.get(0),
        )?;
        let inserted = self.conn.execute(
            "INSERT INTO mailboxes(user_id, name, uidvalidity, special_use) VALUES (?1, ?2, ?3, ?4)",
            params![user, name, uidvalidity & 0xffff_ffff, special_use],
        );
        match inserted {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Exists(format!("mailbox {name}")))
            }
            Err(rusqlite::Error::SqliteFailure(f, _))
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                return Err(StoreError::NotFound(format!("user {user}")))
            }
            other => other?,
        };
        let id = self.conn.last_insert_rowid();
        self.touched.push(id);
        self.lists.push(user);
        Ok(id)
    }

    /// Mailbox by id, as this transaction sees it (e.g. the UIDVALIDITY
    /// of one just created: IMAP's MAILBOXID, RFC 8474, is built from it).
    ///
    /// # Errors
    /// Only database errors.
    pub fn mailbox_by_id(&self, id: MailboxId) -> Result<Option<Mailbox>> {
        if let Some(pg) = self.pg {
            return pg.mailbox_by_id(id);
        }
        query::mailbox_by_id(self.conn, id)
    }

    /// Delete one mailbox (not its children) and its entries.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for INBOX, [`StoreError::NotFound`].
    pub fn delete_mailbox(&mut self, id: MailboxId) -> Result<()> {
        if let Some(pg) = self.pg {
            return self.pg_delete_mailbox(pg, id);
        }
        let mb = query::mailbox_by_id(self.conn, id)?
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {id}")))?;
        if mb.name == "INBOX" {
            return Err(StoreError::Invalid("INBOX cannot be deleted".into()));
        }
        self.drop_mailbox_entries(id)?;
        self.conn
            .execute("DELETE FROM mailboxes WHERE id = ?1", [id])?;
        self.touched.push(id);
        self.lists.push(mb.user_id);
        Ok(())
    }

    /// Remove all entries of a mailbox and collect garbage messages.
    fn drop_mailbox_entries(&mut self, id: MailboxId) -> Result<()> {
        let ids: Vec<MessageId> = {
            let mut st = self
                .conn
                .prepare_cached("SELECT DISTINCT message_id FROM entries WHERE mailbox_id = ?1")?;
            let rows = st.query_map([id], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        // The header index as one range (else its trigger seeks once per
        // entry and field).
        self.conn
            .execute("DELETE FROM header_index WHERE mailbox_id = ?1", [id])?;
        self.conn
            .execute("DELETE FROM entries WHERE mailbox_id = ?1", [id])?;
        self.touched.push(id);
        self.collect_garbage(&ids)
    }

    /// Rename a mailbox and its children (`a` -> `b` also moves `a/x` to
    /// `b/x`); subscriptions follow. Renaming INBOX instead creates `new`,
    /// moves every INBOX message into it and leaves INBOX empty
    /// (RFC 3501 §6.3.5); INBOX's children stay.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] (old), [`StoreError::Exists`] (new or one of
    /// the renamed children's new names), [`StoreError::Invalid`].
    pub fn rename_mailbox(&mut self, user: UserId, old: &str, new: &str) -> Result<()> {
        if let Some(pg) = self.pg {
            return self.pg_rename_mailbox(pg, user, old, new);
        }
        let old = normalize_name(old)?;
        let new = normalize_name(new)?;
        if new == "INBOX" {
            return Err(StoreError::Exists("mailbox INBOX".into()));
        }
        let src = query::mailbox(self.conn, user, &old)?
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {old}")))?;
        if query::mailbox(self.conn, user, &new)?.is_some() {
            return Err(StoreError::Exists(format!("mailbox {new}")));
        }
        if old == "INBOX" {
            let dst = self.create_mailbox(user, &new, None)?;
            let uids: Vec<Uid> = query::entries(self.conn, src.id)?
                .into_iter()
                .map(|e| e.uid)
                .collect();
            self.move_messages(src.id, &uids, dst)?;
            return Ok(());
        }
        if new.starts_with(&format!("{old}/")) {
            return Err(StoreError::Invalid(format!(
                "cannot rename {old} to its own child {new}"
            )));
        }
        let affected: Vec<MailboxId> = {
            let mut st = self.conn.prepare_cached(
                "SELECT id FROM mailboxes WHERE user_id = ?1 AND (name = ?2 OR substr(name, 1, length(?2) + 1) = ?2 || '/')",
            )?;
            let rows = st.query_map(params![user, old], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let renamed = self.conn.execute(
            "UPDATE mailboxes SET name = ?3 || substr(name, length(?2) + 1)
             WHERE user_id = ?1 AND (name = ?2 OR substr(name, 1, length(?2) + 1) = ?2 || '/')",
            params![user, old, new],
        );
        match renamed {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Exists(format!("a child of {new}")))
            }
            other => other?,
        };
        self.conn.execute(
            "UPDATE OR REPLACE subscriptions SET name = ?3 || substr(name, length(?2) + 1)
             WHERE user_id = ?1 AND (name = ?2 OR substr(name, 1, length(?2) + 1) = ?2 || '/')",
            params![user, old, new],
        )?;
        self.touched.extend(affected);
        self.lists.push(user);
        Ok(())
    }

    /// Add or remove `name` in the user's subscriptions. The name need not
    /// exist as a mailbox (RFC 3501 §6.3.6-6.3.7; LSUB still lists it).
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a bad name.
    pub fn set_subscribed(&mut self, user: UserId, name: &str, subscribed: bool) -> Result<()> {
        if let Some(pg) = self.pg {
            return self.pg_set_subscribed(pg, user, name, subscribed);
        }
        let name = normalize_name(name)?;
        if subscribed {
            self.conn.execute(
                "INSERT OR IGNORE INTO subscriptions(user_id, name) VALUES (?1, ?2)",
                params![user, name],
            )?;
        } else {
            self.conn.execute(
                "DELETE FROM subscriptions WHERE user_id = ?1 AND name = ?2",
                params![user, name],
            )?;
        }
        if let Some(mb) = query::mailbox(self.conn, user, &name)? {
            self.touched.push(mb.id);
        }
        self.lists.push(user);
        Ok(())
    }
}
