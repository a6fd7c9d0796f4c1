//! `Reader` queries for selected-mailbox work: message metadata for FETCH
//! (RFC 3501 §6.4.5, §7.4.2), raw bytes via SQLite blob I/O (so large
//! messages stream in chunks), and changes since a modseq (RFC 7162
//! CONDSTORE/QRESYNC, also used for cross-session notifications).

use rusqlite::{params, OptionalExtension};

use crate::error::{Result, StoreError};
use crate::meta::{MessageMeta, MetaParts};
use crate::query;
use crate::reader::Reader;
use crate::types::{Changes, MailboxId, MessageId, Uid};

fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("stored metadata does not decode: {e}"))
}

impl Reader {
    /// Metadata (no raw bytes) of the given UIDs, uid ascending, in one
    /// query; UIDs not in the mailbox are skipped.
    ///
    /// # Errors
    /// Database errors; [`StoreError::Corrupt`] if stored JSON is unreadable.
    pub fn messages(&self, mailbox: MailboxId, uids: &[Uid]) -> Result<Vec<MessageMeta>> {
        self.messages_with(mailbox, uids, MetaParts::ALL)
    }

    /// [`Reader::messages`], decoding only the parts asked for: the others
    /// are left empty (`Default`). Decoding the stored envelope and MIME
    /// structure is most of the cost of a metadata FETCH over a big
    /// mailbox, and most FETCHes need one or neither.
    ///
    /// # Errors
    /// As [`Reader::messages`].
    pub fn messages_with(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        parts: MetaParts,
    ) -> Result<Vec<MessageMeta>> {
        if let Some(pg) = self.pg() {
            return pg.messages_with(mailbox, uids, parts);
        }
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let list = serde_json::to_string(uids).map_err(json_err)?;
        let mut st = self.conn().prepare_cached(
            "SELECT e.uid, e.flags, e.keywords, e.modseq, m.size, m.internal_date,
                    m.envelope, m.structure, m.id, e.saved, coalesce(m.thread_id, m.id)
             FROM entries e JOIN messages m ON m.id = e.message_id
             WHERE e.mailbox_id = ?1 AND e.uid IN (SELECT value FROM json_each(?2))
             ORDER BY e.uid",
        )?;
        let mut rows = st.query(params![mailbox, list])?;
        let mut out = Vec::with_capacity(uids.len());
        while let Some(r) = rows.next()? {
            let entry = query::entry_at(r, 0)?;
            let json = |i: usize| -> Result<&str> {
                r.get_ref(i)?
                    .as_str()
                    .map_err(|e| StoreError::Corrupt(format!("stored metadata: {e}")))
            };
            let envelope = match parts.envelope {
                true => serde_json::from_str(json(6)?).map_err(json_err)?,
                false => Default::default(),
            };
            let structure = match parts.structure {
                true => serde_json::from_str(json(7)?).map_err(json_err)?,
                false => Default::default(),
            };
            out.push(MessageMeta {
                uid: entry.uid,
                flags: entry.flags,
                modseq: entry.modseq,
                size: r.get::<_, i64>(4)? as u64,
                internal_date: r.get(5)?,
                save_date: r.get(9)?,
                envelope,
                structure,
                message_id: r.get(8)?,
                thread_id: r.get(10)?,
            });
        }
        Ok(out)
    }

    /// The stored message behind a mailbox entry.
    fn message_of(&self, mailbox: MailboxId, uid: Uid) -> Result<MessageId> {
        self.conn()
            .prepare_cached("SELECT message_id FROM entries WHERE mailbox_id = ?1 AND uid = ?2")?
            .query_row(params![mailbox, uid], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("message uid {uid} in mailbox {mailbox}")))
    }

    /// The whole message exactly as received.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] if the UID is not in the mailbox.
    pub fn raw(&self, mailbox: MailboxId, uid: Uid) -> Result<Vec<u8>> {
        self.raw_range(mailbox, uid, 0, u64::MAX)
    }

    /// `len` bytes from `offset` of the raw message (fewer at the end; empty
    /// past it), read with blob I/O so only those bytes are loaded.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] if the UID is not in the mailbox.
    pub fn raw_range(
        &self,
        mailbox: MailboxId,
        uid: Uid,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>> {
        if let Some(pg) = self.pg() {
            return pg.raw_range(mailbox, uid, offset, len);
        }
        let id = self.message_of(mailbox, uid)?;
        let blob = self
            .conn()
            .blob_open("main", "message_raw", "raw", id, true)?;
        let size = blob.len() as u64;
        let start = offset.min(size);
        let n = len.min(size - start);
        let mut buf = vec![0u8; n as usize];
        blob.read_at_exact(&mut buf, start as usize)?;
        Ok(buf)
    }

    /// Raw message size in octets.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] if the UID is not in the mailbox.
    pub fn raw_len(&self, mailbox: MailboxId, uid: Uid) -> Result<u64> {
        if let Some(pg) = self.pg() {
            return pg.raw_len(mailbox, uid);
        }
        let id = self.message_of(mailbox, uid)?;
        let n: i64 = self
            .conn()
            .prepare_cached("SELECT size FROM messages WHERE id = ?1")?
            .query_row([id], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// Entries new or changed after `modseq` and UIDs expunged after it
    /// (all of them if `expunged_complete`; see `tombstones.rs`).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown mailbox.
    pub fn changes_since(&self, mailbox: MailboxId, modseq: u64) -> Result<Changes> {
        if let Some(pg) = self.pg() {
            return pg.changes_since(mailbox, modseq);
        }
        let mb = query::mailbox_by_id(self.conn(), mailbox)?
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox}")))?;
        let since = modseq.min(i64::MAX as u64) as i64;
        let changed = {
            let mut st = self.conn().prepare_cached(
                "SELECT uid, flags, keywords, modseq FROM entries
                 WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid",
            )?;
            let rows = st.query_map(params![mailbox, since], |r| query::entry_at(r, 0))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        };
        let expunged = {
            let mut st = self.conn().prepare_cached(
                "SELECT uid FROM expunged WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid",
            )?;
            let rows = st.query_map(params![mailbox, since], |r| r.get::<_, i64>(0))?;
            rows.map(|r| r.map(|u| u as Uid))
                .collect::<rusqlite::Result<Vec<_>>>()?
        };
        let floor = self.tombstone_floor(mailbox)?;
        Ok(Changes {
            changed,
            expunged,
            expunged_complete: modseq >= floor,
            highestmodseq: mb.highestmodseq,
        })
    }
}
