//! `Tx` operations that add messages: SMTP delivery (one stored copy, one
//! INBOX entry per recipient), IMAP APPEND (RFC 3501 §6.3.11), UID/modseq
//! allocation (RFC 3501 §2.3.1.1, RFC 7162) and garbage collection of
//! messages no entry references. [`PreparedMessage`] lets callers parse
//! off the writer thread.

use rusqlite::{params, OptionalExtension};

use crate::error::{Result, StoreError};
use crate::mime::parse_message;
use crate::query;
use crate::tx::{encode_keywords, Tx};
use crate::types::{Appended, Delivered, Flags, MailboxId, MessageId, NewMessage, Uid, UserId};

/// Everything stored besides the raw bytes, computed from them.
#[derive(Clone, Debug)]
pub(crate) struct Meta {
    pub(crate) envelope_json: String,
    /// The envelope for the metadata FETCH (schema v20, envelope_bin.rs).
    pub(crate) envelope_bin: Vec<u8>,
    pub(crate) structure_json: String,
    pub(crate) sent_date: Option<i64>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) header_text: String,
    pub(crate) body_text: String,
    /// PostgreSQL's search text (pg/search.rs), made ahead of time by
    /// [`crate::Store::prepare`] on that backend; else made by the writer.
    pub(crate) pg_text: Option<Box<crate::pg::search::SearchText>>,
}

impl Meta {
    fn parse(raw: &[u8]) -> Result<Meta> {
        let p = parse_message(raw);
        let json = |e: serde_json::Error| StoreError::Invalid(format!("metadata encoding: {e}"));
        Ok(Meta {
            envelope_json: serde_json::to_string(&p.envelope).map_err(json)?,
            envelope_bin: crate::envelope_bin::encode(&p.envelope),
            structure_json: serde_json::to_string(&p.structure).map_err(json)?,
            sent_date: p.sent_date,
            headers: p.headers,
            header_text: p.header_text,
            body_text: p.body_text,
            pg_text: None,
        })
    }
}

/// A message parsed ahead of time, on the caller's thread, so the writer
/// thread only inserts rows (parsing a 10 KB message costs ~0.1 ms).
#[derive(Clone, Debug)]
pub struct PreparedMessage {
    raw: Vec<u8>,
    internal_date: i64,
    meta: Meta,
}

impl PreparedMessage {
    /// Parse `msg` now. Never fails on bad mail (it is stored with minimal
    /// metadata).
    ///
    /// # Errors
    /// [`StoreError::Invalid`] only if metadata cannot be encoded.
    pub fn new(msg: NewMessage) -> Result<PreparedMessage> {
        let meta = Meta::parse(&msg.raw)?;
        Ok(PreparedMessage {
            raw: msg.raw,
            internal_date: msg.internal_date,
            meta,
        })
    }

    /// [`PreparedMessage::new`], and on PostgreSQL (`postgres`) its
    /// search text too (folded text and the body's distinct words: for a
    /// big message most of what the writer thread would otherwise do for
    /// it). See [`crate::Store::prepare`].
    ///
    /// # Errors
    /// As [`PreparedMessage::new`].
    pub fn new_for(msg: NewMessage, postgres: bool) -> Result<PreparedMessage> {
        let mut p = PreparedMessage::new(msg)?;
        if postgres {
            p.meta.pg_text = Some(Box::new(crate::pg::search::SearchText::of(&p.meta)));
        }
        Ok(p)
    }

    /// The raw bytes.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// INTERNALDATE, unix seconds.
    pub fn internal_date(&self) -> i64 {
        self.internal_date
    }

    /// What parsing found.
    pub(crate) fn meta(&self) -> &Meta {
        &self.meta
    }
}

/// The statements that insert 8, 4, 2 or 1 header rows of one message
/// (`?1` the message, then name and value of each row, in order).
const HEADER_INSERTS: [(usize, &str); 4] = [
    (
        8,
        "INSERT INTO message_headers(message_id, name, value) VALUES (?1, ?2, ?3), (?1, ?4, ?5), \
         (?1, ?6, ?7), (?1, ?8, ?9), (?1, ?10, ?11), (?1, ?12, ?13), (?1, ?14, ?15), (?1, ?16, ?17)",
    ),
    (
        4,
        "INSERT INTO message_headers(message_id, name, value) VALUES (?1, ?2, ?3), (?1, ?4, ?5), \
         (?1, ?6, ?7), (?1, ?8, ?9)",
    ),
    (
        2,
        "INSERT INTO message_headers(message_id, name, value) VALUES (?1, ?2, ?3), (?1, ?4, ?5)",
    ),
    (
        1,
        "INSERT INTO message_headers(message_id, name, value) VALUES (?1, ?2, ?3)",
    ),
];

/// Insert message `id`'s header rows in their order (their rowids follow
/// it: `header_index.hrow` tells fields of one name apart by it), up to
/// eight rows per statement: a statement's fixed cost is most of a
/// small row's, and the writer runs these inside the commit the whole
/// batch waits for.
fn insert_headers(
    conn: &rusqlite::Connection,
    id: MessageId,
    headers: &[(String, String)],
) -> Result<()> {
    let mut rest = headers;
    while !rest.is_empty() {
        let Some(&(n, sql)) = HEADER_INSERTS.iter().find(|(n, _)| *n <= rest.len()) else {
            break;
        };
        let (chunk, tail) = rest.split_at(n);
        let mut st = conn.prepare_cached(sql)?;
        st.raw_bind_parameter(1, id)?;
        for (i, (name, value)) in chunk.iter().enumerate() {
            st.raw_bind_parameter(2 + 2 * i, name)?;
            st.raw_bind_parameter(3 + 2 * i, value)?;
        }
        st.raw_execute()?;
        rest = tail;
    }
    Ok(())
}

impl Tx<'_> {
    /// [`crate::Reader::resolve_recipient`] inside this transaction.
    ///
    /// # Errors
    /// Only database errors.
    pub fn resolve_recipient(&self, address: &str) -> Result<Option<crate::User>> {
        if let Some(pg) = self.pg {
            return pg.resolve_recipient(address);
        }
        crate::query::resolve_recipient(self.conn(), address)
    }

    /// Store `msg` once and give each distinct recipient an entry in their
    /// INBOX (re-created if missing). Unparseable mail is stored anyway.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for no recipients, [`StoreError::NotFound`]
    /// for an unknown recipient id (then nothing of the job is stored).
    pub fn deliver(&mut self, msg: &NewMessage, recipients: &[UserId]) -> Result<Delivered> {
        let meta = Meta::parse(&msg.raw)?;
        self.deliver_parts(&msg.raw, msg.internal_date, &meta, recipients, "INBOX")
    }

    /// [`Tx::deliver`] for a message parsed beforehand with
    /// [`PreparedMessage::new`] (so the writer thread does no parsing).
    ///
    /// # Errors
    /// As [`Tx::deliver`].
    pub fn deliver_prepared(
        &mut self,
        msg: &PreparedMessage,
        recipients: &[UserId],
    ) -> Result<Delivered> {
        self.deliver_parts(&msg.raw, msg.internal_date, &msg.meta, recipients, "INBOX")
    }

    /// [`Tx::deliver_prepared`] into each recipient's `mailbox` instead of
    /// the INBOX (e.g. "Junk" for mail a DMARC policy quarantines); the
    /// mailbox is created if missing ("Junk" with the `\Junk` use).
    ///
    /// # Errors
    /// As [`Tx::deliver`].
    pub fn deliver_prepared_to(
        &mut self,
        msg: &PreparedMessage,
        recipients: &[UserId],
        mailbox: &str,
    ) -> Result<Delivered> {
        self.deliver_parts(&msg.raw, msg.internal_date, &msg.meta, recipients, mailbox)
    }

    /// [`Tx::deliver_prepared_to`] for a caller that needs no UIDs back
    /// (SMTP). On PostgreSQL, in a write batch of such deliveries
    /// ([`crate::Store::write_rerunnable`] jobs), the delivery's statement
    /// may be sent together with the batch's others (pg/deferred.rs): one
    /// statement for the batch's messages instead of one each. The same
    /// rows result, committed with the batch as before.
    ///
    /// # Errors
    /// As [`Tx::deliver`]; on PostgreSQL an error of a statement sent
    /// together may be reported by a later statement of the batch (whose
    /// jobs then all run again).
    pub fn deliver_prepared_unreported(
        &mut self,
        msg: &PreparedMessage,
        recipients: &[UserId],
        mailbox: &str,
    ) -> Result<()> {
        if let Some(pg) = self.pg {
            let (raw, date, meta) = (&msg.raw, msg.internal_date, &msg.meta);
            return self
                .pg_deliver_parts(pg, raw, date, meta, recipients, mailbox, true)
                .map(|_| ());
        }
        self.deliver_parts(&msg.raw, msg.internal_date, &msg.meta, recipients, mailbox)
            .map(|_| ())
    }

    fn deliver_parts(
        &mut self,
        raw: &[u8],
        internal_date: i64,
        meta: &Meta,
        recipients: &[UserId],
        mailbox: &str,
    ) -> Result<Delivered> {
        if let Some(pg) = self.pg {
            return self.pg_deliver_parts(pg, raw, internal_date, meta, recipients, mailbox, false);
        }
        let mut users: Vec<UserId> = Vec::with_capacity(recipients.len());
        for r in recipients {
            if !users.contains(r) {
                users.push(*r);
            }
        }
        if users.is_empty() {
            return Err(StoreError::Invalid("no recipients".into()));
        }
        let message_id = self.insert_message(raw, internal_date, meta)?;
        let mut entries = Vec::with_capacity(users.len());
        for user in users {
            let inbox = match query::mailbox(self.conn(), user, mailbox)? {
                Some(mb) => mb.id,
                None => {
                    if query::user_by_id(self.conn(), user)?.is_none() {
                        return Err(StoreError::NotFound(format!("user {user}")));
                    }
                    let special = crate::tx::DEFAULT_MAILBOXES
                        .iter()
                        .find(|(name, _)| *name == mailbox)
                        .and_then(|(_, special)| *special);
                    self.create_mailbox(user, mailbox, special)?
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
    /// [`StoreError::Invalid`] for a bad keyword,
    /// [`StoreError::OverQuota`] when the owner's quota has no room.
    pub fn append(
        &mut self,
        mailbox: MailboxId,
        raw: &[u8],
        flags: &Flags,
        internal_date: i64,
    ) -> Result<Appended> {
        let meta = Meta::parse(raw)?;
        self.append_parts(mailbox, raw, internal_date, &meta, flags)
    }

    /// [`Tx::append`] for a message parsed beforehand.
    ///
    /// # Errors
    /// As [`Tx::append`].
    pub fn append_prepared(
        &mut self,
        mailbox: MailboxId,
        msg: &PreparedMessage,
        flags: &Flags,
    ) -> Result<Appended> {
        self.append_parts(mailbox, &msg.raw, msg.internal_date, &msg.meta, flags)
    }

    fn append_parts(
        &mut self,
        mailbox: MailboxId,
        raw: &[u8],
        internal_date: i64,
        meta: &Meta,
        flags: &Flags,
    ) -> Result<Appended> {
        if let Some(pg) = self.pg {
            return self.pg_append_parts(pg, mailbox, raw, internal_date, meta, flags);
        }
        let mb = query::mailbox_by_id(self.conn(), mailbox)?
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox}")))?;
        encode_keywords(flags)?;
        self.check_mailbox_quota(mailbox, raw.len() as u64, 1)?;
        let message_id = self.insert_message(raw, internal_date, meta)?;
        let uid = self.add_entry(mailbox, message_id, flags)?;
        Ok(Appended {
            uidvalidity: mb.uidvalidity,
            uid,
        })
    }

    /// Insert a prepared message's rows (no entries yet).
    pub(crate) fn insert_prepared(&mut self, msg: &PreparedMessage) -> Result<MessageId> {
        if let Some(pg) = self.pg {
            return self.pg_insert_prepared(pg, msg);
        }
        self.insert_message(&msg.raw, msg.internal_date, &msg.meta)
    }

    /// Insert one message row (+ raw, headers, search text).
    fn insert_message(&mut self, raw: &[u8], internal_date: i64, meta: &Meta) -> Result<MessageId> {
        let conn = self.conn();
        // A fresh id, never one a deleted message had (schema v10).
        let id: i64 = conn
            .prepare_cached(
                "UPDATE meta SET value = max(value + 1, (SELECT coalesce(max(id), 0) + 1 FROM messages))
                 WHERE key = 'last_message_id' RETURNING value",
            )?
            .query_row([], |r| r.get(0))?;
        // The thread first, so the row is written once, with it.
        let thread = crate::threads::assign(conn, id, &meta.headers)?;
        conn.prepare_cached(
            "INSERT INTO messages(id, size, internal_date, sent_date, envelope, structure, thread_id, envelope_bin)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            id,
            raw.len() as i64,
            internal_date,
            meta.sent_date,
            meta.envelope_json,
            meta.structure_json,
            thread,
            meta.envelope_bin
        ])?;
        conn.prepare_cached("INSERT INTO message_raw(id, raw) VALUES (?1, ?2)")?
            .execute(params![id, raw])?;
        insert_headers(conn, id, &meta.headers)?;
        // Plain-text mail: the search text is the raw message's tail, byte
        // for byte (but for the newline the parser ends each part's text
        // with); point at it instead of writing it twice.
        let text = &meta.body_text;
        let body = text.strip_suffix('\n').unwrap_or(text).as_bytes();
        let (body, body_at, body_len) = if !body.is_empty() && raw.ends_with(body) {
            ("", Some((raw.len() - body.len()) as i64), body.len())
        } else {
            (text.as_str(), None, text.len())
        };
        conn.prepare_cached(
            "INSERT INTO pending_text(id, headers, body, body_at) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![id, meta.header_text, body, body_at])?;
        self.pending.add_message(meta.header_text.len() + body_len);
        Ok(id)
    }

    /// Give `message` the next UID in `mailbox` at a new modseq, saved
    /// (RFC 8514 save date) now.
    pub(crate) fn add_entry(
        &mut self,
        mailbox: MailboxId,
        message: MessageId,
        flags: &Flags,
    ) -> Result<Uid> {
        let keywords = encode_keywords(flags)?;
        let (uid, modseq): (i64, i64) = self
            .conn()
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
        self.conn()
            .prepare_cached(
                "INSERT INTO entries(mailbox_id, uid, message_id, flags, keywords, modseq, saved)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                mailbox,
                uid,
                message,
                flags.system & Flags::ALL_SYSTEM,
                keywords,
                modseq,
                crate::tx::now()
            ])?;
        self.touched.push(mailbox);
        Ok(uid as Uid)
    }

    /// Delete the given messages if no entry references them any more.
    pub(crate) fn collect_garbage(&mut self, ids: &[MessageId]) -> Result<()> {
        let mut check = self
            .conn()
            .prepare_cached("SELECT EXISTS(SELECT 1 FROM entries WHERE message_id = ?1)")?;
        let mut del_text = self
            .conn()
            .prepare_cached("DELETE FROM message_text WHERE rowid = ?1")?;
        let mut del_pending = self
            .conn()
            .prepare_cached("DELETE FROM pending_text WHERE id = ?1")?;
        let mut del = self
            .conn()
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::types::NewMessage;
    use crate::Store;

    /// A message's header rows are all stored, in the message's order,
    /// however they are split over statements (13 fields: 8 + 4 + 1).
    #[test]
    fn header_rows_keep_the_message_order() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path().join("m.db")).unwrap();
        let user = s.write_sync(|tx| tx.create_user("a@x", "h")).unwrap();
        let fields: Vec<String> = (0..11).map(|i| format!("X-F{i}: v{i}")).collect();
        let raw = format!(
            "{}\r\nReceived: one\r\nReceived: two\r\n\r\nbody\r\n",
            fields.join("\r\n")
        );
        let expected = crate::mime::parse_message(raw.as_bytes()).headers;
        assert_eq!(expected.len(), 13);
        let msg = NewMessage {
            raw: raw.into_bytes(),
            internal_date: 1,
        };
        let id = s
            .write_sync(move |tx| tx.deliver(&msg, &[user]).map(|d| d.message_id))
            .unwrap();
        let rows = s
            .write_sync(move |tx| {
                let mut st = tx.conn().prepare(
                    "SELECT name, value FROM message_headers WHERE message_id = ?1 ORDER BY rowid",
                )?;
                let rows = st
                    .query_map([id], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .unwrap();
        assert_eq!(rows, expected);
    }
}
