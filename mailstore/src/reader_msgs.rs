//! `Reader` queries for selected-mailbox work: message metadata for FETCH
//! (RFC 3501 §6.4.5, §7.4.2), raw bytes via SQLite blob I/O (so large
//! messages stream in chunks), and changes since a modseq (RFC 7162
//! CONDSTORE/QRESYNC, also used for cross-session notifications).

use rusqlite::{params, OptionalExtension};

use crate::error::{Result, StoreError};
use crate::meta::{EnvelopeRef, MessageMeta, MetaParts};
use crate::query;
use crate::reader::Reader;
use crate::types::{Changes, MailboxId, MessageId, Uid};

fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("stored metadata does not decode: {e}"))
}

/// The [`MessageMeta`] of a row of [`Reader::each_row`], without its
/// envelope and structure.
fn meta_at(r: &rusqlite::Row<'_>) -> Result<MessageMeta> {
    let entry = query::entry_at(r, 0)?;
    Ok(MessageMeta {
        uid: entry.uid,
        flags: entry.flags,
        modseq: entry.modseq,
        size: r.get::<_, i64>(4)? as u64,
        internal_date: r.get(5)?,
        save_date: r.get(9)?,
        envelope: Default::default(),
        structure: Default::default(),
        message_id: r.get(8)?,
        thread_id: r.get(10)?,
    })
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
        let mut out = Vec::with_capacity(uids.len());
        self.each_row(mailbox, uids, parts, |r| {
            let json = |i: usize| -> Result<&str> {
                r.get_ref(i)?
                    .as_str()
                    .map_err(|e| StoreError::Corrupt(format!("stored metadata: {e}")))
            };
            let mut meta = meta_at(r)?;
            if parts.envelope {
                meta.envelope = serde_json::from_str(json(6)?).map_err(json_err)?;
            }
            if parts.structure {
                meta.structure = serde_json::from_str(json(7)?).map_err(json_err)?;
            }
            out.push(meta);
            Ok(())
        })?;
        Ok(out)
    }

    /// [`Reader::messages_with`] without the MIME structure, handing each
    /// message to `f` (uid ascending) with its envelope borrowed from the
    /// stored text ([`MessageMeta::envelope`] is left empty): a metadata
    /// FETCH of many messages, with no copy of each envelope's strings.
    ///
    /// # Errors
    /// As [`Reader::messages`], and what `f` returns.
    pub fn each_message(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        mut f: impl FnMut(&MessageMeta, &EnvelopeRef<'_>) -> Result<()>,
    ) -> Result<()> {
        if uids.is_empty() {
            return Ok(());
        }
        if let Some(pg) = self.pg() {
            return pg.each_message(mailbox, uids, &mut f);
        }
        // The envelope from its binary form (schema v20); from the JSON
        // for a row that has none (column 7, read only then).
        let mut row = |r: &rusqlite::Row<'_>| -> Result<()> {
            let meta = meta_at(r)?;
            let envelope: EnvelopeRef<'_> = match r.get_ref(6)? {
                rusqlite::types::ValueRef::Blob(b) => crate::envelope_bin::decode(b)?,
                _ => {
                    let text = r
                        .get_ref(7)?
                        .as_str()
                        .map_err(|e| StoreError::Corrupt(format!("stored metadata: {e}")))?;
                    serde_json::from_str(text).map_err(json_err)?
                }
            };
            f(&meta, &envelope)
        };
        const COLUMNS: &str =
            "SELECT e.uid, e.flags, e.keywords, e.modseq, m.size, m.internal_date,
                    m.envelope_bin, CASE WHEN m.envelope_bin IS NULL THEN m.envelope END,
                    m.id, e.saved, coalesce(m.thread_id, m.id)
             FROM entries e JOIN messages m ON m.id = e.message_id";
        // A run of UIDs (a FETCH 1:* batch): one range scan, the rows of
        // UIDs not asked for skipped; else the UIDs as a list.
        let (lo, hi) = (uids[0], uids[uids.len() - 1]);
        let dense =
            uids.windows(2).all(|w| w[0] < w[1]) && u64::from(hi - lo) < 2 * uids.len() as u64;
        if !dense {
            let list = serde_json::to_string(uids).map_err(json_err)?;
            let mut st = self.conn().prepare_cached(&format!(
                "{COLUMNS} WHERE e.mailbox_id = ?1 AND e.uid IN (SELECT value FROM json_each(?2))
                 ORDER BY e.uid"
            ))?;
            let mut rows = st.query(params![mailbox, list])?;
            while let Some(r) = rows.next()? {
                row(r)?;
            }
            return Ok(());
        }
        let mut st = self.conn().prepare_cached(&format!(
            "{COLUMNS} WHERE e.mailbox_id = ?1 AND e.uid BETWEEN ?2 AND ?3 ORDER BY e.uid"
        ))?;
        let mut rows = st.query(params![mailbox, lo, hi])?;
        while let Some(r) = rows.next()? {
            let uid = r.get::<_, i64>(0)? as Uid;
            if uids.binary_search(&uid).is_ok() {
                row(r)?;
            }
        }
        Ok(())
    }

    /// Run `f` on the metadata rows of `uids` (uid ascending); the
    /// envelope and structure columns are NULL unless `parts` wants them
    /// (they are the rows' big values).
    fn each_row(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        parts: MetaParts,
        mut f: impl FnMut(&rusqlite::Row<'_>) -> Result<()>,
    ) -> Result<()> {
        let list = serde_json::to_string(uids).map_err(json_err)?;
        let sql = format!(
            "SELECT e.uid, e.flags, e.keywords, e.modseq, m.size, m.internal_date,
                    {}, {}, m.id, e.saved, coalesce(m.thread_id, m.id)
             FROM entries e JOIN messages m ON m.id = e.message_id
             WHERE e.mailbox_id = ?1 AND e.uid IN (SELECT value FROM json_each(?2))
             ORDER BY e.uid",
            if parts.envelope { "m.envelope" } else { "NULL" },
            if parts.structure {
                "m.structure"
            } else {
                "NULL"
            },
        );
        let mut st = self.conn().prepare_cached(&sql)?;
        let mut rows = st.query(params![mailbox, list])?;
        while let Some(r) = rows.next()? {
            f(r)?;
        }
        Ok(())
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

    /// Append `len` bytes from `offset` of stored message `message` (fewer
    /// at its end; none past it) to `out`: [`RawReader::read_into`] for
    /// one read.
    ///
    /// # Errors
    /// As [`RawReader::read_into`].
    pub fn message_range_into(
        &self,
        message: MessageId,
        offset: u64,
        len: u64,
        out: &mut Vec<u8>,
    ) -> Result<u64> {
        self.raw_reader().read_into(message, offset, len, out)
    }

    /// A [`RawReader`] over this reader's connection.
    pub fn raw_reader(&self) -> RawReader<'_> {
        RawReader {
            reader: self,
            blob: None,
        }
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
                // Sorted here: with ORDER BY uid SQLite walks every entry
                // of the mailbox by its primary key instead of the
                // (mailbox_id, modseq) range (issue 21).
                "SELECT uid, flags, keywords, modseq FROM entries
                 WHERE mailbox_id = ?1 AND modseq > ?2",
            )?;
            let rows = st.query_map(params![mailbox, since], |r| query::entry_at(r, 0))?;
            let mut v = rows.collect::<rusqlite::Result<Vec<_>>>()?;
            v.sort_unstable_by_key(|e| e.uid);
            v
        };
        let expunged = {
            let mut st = self.conn().prepare_cached(
                // Sorted here, as above (the modseq index, not the key).
                "SELECT uid FROM expunged WHERE mailbox_id = ?1 AND modseq > ?2",
            )?;
            let rows = st.query_map(params![mailbox, since], |r| r.get::<_, i64>(0))?;
            let mut v = rows
                .map(|r| r.map(|u| u as Uid))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            v.sort_unstable();
            v
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

/// Reads stored messages' raw bytes one after another through one SQLite
/// blob handle, moved from row to row (`sqlite3_blob_reopen`) rather than
/// opened anew for each (an open compiles and runs a statement; issue
/// 21).
pub struct RawReader<'r> {
    reader: &'r Reader,
    blob: Option<rusqlite::blob::Blob<'r>>,
}

impl RawReader<'_> {
    /// Append `len` bytes from `offset` of stored message `message` (fewer
    /// at its end; none past it) to `out`, read with blob I/O straight
    /// into it: the one copy a body FETCH makes out of the store.
    /// `message` is [`MessageMeta::message_id`] from a read of the mailbox
    /// (so no UID lookup per read). Returns the octets appended.
    ///
    /// # Errors
    /// Database errors (a message no longer stored among them); `out` is
    /// left as it was.
    ///
    /// [`MessageMeta::message_id`]: crate::MessageMeta::message_id
    pub fn read_into(
        &mut self,
        message: MessageId,
        offset: u64,
        len: u64,
        out: &mut Vec<u8>,
    ) -> Result<u64> {
        if let Some(pg) = self.reader.pg() {
            let bytes = pg.message_range(message, offset, len)?;
            out.extend_from_slice(&bytes);
            return Ok(bytes.len() as u64);
        }
        if let Some(b) = self.blob.as_mut() {
            if b.reopen(message).is_err() {
                // An aborted handle is not reused.
                self.blob = None;
            }
        }
        if self.blob.is_none() {
            self.blob =
                Some(
                    self.reader
                        .conn()
                        .blob_open("main", "message_raw", "raw", message, true)?,
                );
        }
        let Some(blob) = self.blob.as_ref() else {
            return Ok(0);
        };
        let size = blob.len() as u64;
        let start = offset.min(size);
        let n = len.min(size - start) as usize;
        let at = out.len();
        out.reserve(n);
        let spare = &mut out.spare_capacity_mut()[..n];
        let got = blob.raw_read_at_exact(spare, start as usize)?.len();
        // SAFETY: `raw_read_at_exact` initialised the first `got` (= `n`)
        // bytes of the spare capacity (it fails otherwise, and then the
        // length stays `at`); no zero-filling first.
        unsafe { out.set_len(at + got) };
        Ok(got as u64)
    }
}
