//! `Tx`: the write operations, run on the writer thread inside a batch
//! transaction. This file: users, mailboxes (RFC 3501 §6.3.3-6.3.7
//! CREATE/DELETE/RENAME/SUBSCRIBE semantics), delivery and APPEND
//! (RFC 3501 §6.3.11). Flag and expunge operations live in `tx_flags.rs`.

use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::{Result, StoreError};
use crate::parse::parse_message;
use crate::query::{self, is_unique_violation};
use crate::types::{Appended, Delivered, Flags, MailboxId, MessageId, NewMessage, Uid, UserId};

/// Mailboxes every new user gets: (name, special-use).
pub const DEFAULT_MAILBOXES: &[(&str, Option<&str>)] = &[
    ("INBOX", None),
    ("Sent", Some("\\Sent")),
    ("Drafts", Some("\\Drafts")),
    ("Trash", Some("\\Trash")),
    ("Junk", Some("\\Junk")),
];

/// Move the batch's pending search text into the FTS index with one
/// statement (called by the writer after the jobs, before COMMIT).
pub(crate) fn flush_pending_text(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "INSERT INTO message_text(rowid, headers, body) SELECT id, headers, body FROM pending_text;
         DELETE FROM pending_text;",
    )
}

/// Write access inside the current batch transaction (writer thread only).
///
/// Every method that changes a mailbox records it, so the commit listeners
/// learn which mailboxes changed.
pub struct Tx<'c> {
    conn: &'c Connection,
    pub(crate) touched: Vec<MailboxId>,
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
            touched: Vec::new(),
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
        let address = address.trim();
        if address.is_empty() || address.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(StoreError::Invalid(format!("bad address {address:?}")));
        }
        let inserted = self.conn.execute(
            "INSERT INTO users(address, password_hash, created) VALUES (?1, ?2, ?3)",
            params![address, password_hash, now()],
        );
        match inserted {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Exists(format!("user {address}")))
            }
            other => other?,
        };
        let user = self.conn.last_insert_rowid();
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
        Ok(())
    }

    /// Replace a user's password hash.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] if there is no such user.
    pub fn set_password_hash(&mut self, address: &str, password_hash: &str) -> Result<()> {
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
        Ok(id)
    }

    /// Delete one mailbox (not its children) and its entries.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for INBOX, [`StoreError::NotFound`].
    pub fn delete_mailbox(&mut self, id: MailboxId) -> Result<()> {
        let mb = query::mailbox_by_id(self.conn, id)?
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {id}")))?;
        if mb.name == "INBOX" {
            return Err(StoreError::Invalid("INBOX cannot be deleted".into()));
        }
        self.drop_mailbox_entries(id)?;
        self.conn
            .execute("DELETE FROM mailboxes WHERE id = ?1", [id])?;
        self.touched.push(id);
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
        Ok(())
    }

    /// Add or remove `name` in the user's subscriptions. The name need not
    /// exist as a mailbox (RFC 3501 §6.3.6-6.3.7; LSUB still lists it).
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a bad name.
    pub fn set_subscribed(&mut self, user: UserId, name: &str, subscribed: bool) -> Result<()> {
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
        Ok(())
    }

    /// Store `msg` once and give each distinct recipient an entry in their
    /// INBOX (re-created if missing). Unparseable mail is stored anyway.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for no recipients, [`StoreError::NotFound`]
    /// for an unknown recipient id (then nothing of the job is stored).
    pub fn deliver(&mut self, msg: &NewMessage, recipients: &[UserId]) -> Result<Delivered> {
        let mut users: Vec<UserId> = Vec::with_capacity(recipients.len());
        for r in recipients {
            if !users.contains(r) {
                users.push(*r);
            }
        }
        if users.is_empty() {
            return Err(StoreError::Invalid("no recipients".into()));
        }
        let message_id = self.insert_message(&msg.raw, msg.internal_date)?;
        let mut entries = Vec::with_capacity(users.len());
        for user in users {
            let inbox = match query::mailbox(self.conn, user, "INBOX")? {
                Some(mb) => mb.id,
                None => {
                    if query::user_by_id(self.conn, user)?.is_none() {
                        return Err(StoreError::NotFound(format!("user {user}")));
                    }
                    self.create_mailbox(user, "INBOX", None)?
                }
            };
            let uid = self.add_entry(inbox, message_id, &Flags::empty())?;
            entries.push((inbox, uid));
        }
        Ok(Delivered {
            message_id,
            entries,
        })
    }

    /// Add a message to one mailbox with the given flags (IMAP APPEND).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown mailbox,
    /// [`StoreError::Invalid`] for a bad keyword.
    pub fn append(
        &mut self,
        mailbox: MailboxId,
        raw: &[u8],
        flags: &Flags,
        internal_date: i64,
    ) -> Result<Appended> {
        let mb = query::mailbox_by_id(self.conn, mailbox)?
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox}")))?;
        encode_keywords(flags)?;
        let message_id = self.insert_message(raw, internal_date)?;
        let uid = self.add_entry(mailbox, message_id, flags)?;
        Ok(Appended {
            uidvalidity: mb.uidvalidity,
            uid,
        })
    }

    /// Parse and insert one message row (+ raw, headers, search text).
    fn insert_message(&mut self, raw: &[u8], internal_date: i64) -> Result<MessageId> {
        let parsed = parse_message(raw);
        let envelope = serde_json::to_string(&parsed.envelope)
            .map_err(|e| StoreError::Invalid(format!("envelope encoding: {e}")))?;
        let structure = serde_json::to_string(&parsed.structure)
            .map_err(|e| StoreError::Invalid(format!("structure encoding: {e}")))?;
        self.conn
            .prepare_cached(
                "INSERT INTO messages(size, internal_date, sent_date, envelope, structure)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                raw.len() as i64,
                internal_date,
                parsed.sent_date,
                envelope,
                structure
            ])?;
        let id = self.conn.last_insert_rowid();
        self.conn
            .prepare_cached("INSERT INTO message_raw(id, raw) VALUES (?1, ?2)")?
            .execute(params![id, raw])?;
        {
            let mut st = self.conn.prepare_cached(
                "INSERT INTO message_headers(message_id, name, value) VALUES (?1, ?2, ?3)",
            )?;
            for (name, value) in &parsed.headers {
                st.execute(params![id, name, value])?;
            }
        }
        self.conn
            .prepare_cached("INSERT INTO pending_text(id, headers, body) VALUES (?1, ?2, ?3)")?
            .execute(params![id, parsed.header_text, parsed.body_text])?;
        Ok(id)
    }

    /// Give `message` the next UID in `mailbox` at a new modseq.
    pub(crate) fn add_entry(
        &mut self,
        mailbox: MailboxId,
        message: MessageId,
        flags: &Flags,
    ) -> Result<Uid> {
        let keywords = encode_keywords(flags)?;
        let (uid, modseq): (i64, i64) = self
            .conn
            .prepare_cached(
                "UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1
                 WHERE id = ?1 RETURNING uidnext - 1, highestmodseq",
            )?
            .query_row([mailbox], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox}")))?;
        if uid > i64::from(u32::MAX) {
            return Err(StoreError::Invalid(format!(
                "mailbox {mailbox} is out of UIDs"
            )));
        }
        self.conn
            .prepare_cached(
                "INSERT INTO entries(mailbox_id, uid, message_id, flags, keywords, modseq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                mailbox,
                uid,
                message,
                flags.system & Flags::ALL_SYSTEM,
                keywords,
                modseq
            ])?;
        self.touched.push(mailbox);
        Ok(uid as Uid)
    }

    /// Delete the given messages if no entry references them any more.
    pub(crate) fn collect_garbage(&mut self, ids: &[MessageId]) -> Result<()> {
        let mut check = self
            .conn
            .prepare_cached("SELECT EXISTS(SELECT 1 FROM entries WHERE message_id = ?1)")?;
        let mut del_text = self
            .conn
            .prepare_cached("DELETE FROM message_text WHERE rowid = ?1")?;
        let mut del_pending = self
            .conn
            .prepare_cached("DELETE FROM pending_text WHERE id = ?1")?;
        let mut del = self
            .conn
            .prepare_cached("DELETE FROM messages WHERE id = ?1")?;
        for id in ids {
            let used: bool = check.query_row([id], |r| r.get(0))?;
            if !used {
                if del_pending.execute([id])? == 0 {
                    del_text.execute([id])?;
                }
                // message_raw and message_headers go by ON DELETE CASCADE.
                del.execute([id])?;
            }
        }
        Ok(())
    }
}
