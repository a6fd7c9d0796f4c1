//! `Tx` operations on existing entries: STORE (RFC 3501 §6.4.6 with
//! RFC 7162 §3.1.3 UNCHANGEDSINCE), EXPUNGE (RFC 3501 §6.4.3, RFC 4315
//! UID EXPUNGE), COPY (RFC 3501 §6.4.7) and MOVE (RFC 6851). Every change
//! takes one new mailbox modseq; expunges leave tombstones for
//! `changes_since` (RFC 7162 QRESYNC VANISHED).

use rusqlite::{params, OptionalExtension};

use crate::error::{Result, StoreError};
use crate::query;
use crate::tx::{encode_keywords, Tx};
use crate::types::{CopyOutcome, Entry, FlagOp, Flags, MailboxId, MessageId, StoreOutcome, Uid};

fn sorted(uids: &[Uid]) -> Vec<Uid> {
    let mut v = uids.to_vec();
    v.sort_unstable();
    v.dedup();
    v
}

/// Runs of consecutive values in `sorted` as inclusive (first, last).
fn runs(sorted: &[Uid]) -> Vec<(Uid, Uid)> {
    let mut out: Vec<(Uid, Uid)> = Vec::new();
    for &u in sorted {
        match out.last_mut() {
            Some((_, hi)) if hi.checked_add(1) == Some(u) => *hi = u,
            _ => out.push((u, u)),
        }
    }
    out
}

impl Tx<'_> {
    /// Take the next modseq of a mailbox.
    fn bump_modseq(&mut self, mailbox: MailboxId) -> Result<u64> {
        let m: i64 = self
            .conn()
            .prepare_cached(
                "UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = ?1 RETURNING highestmodseq",
            )?
            .query_row([mailbox], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox}")))?;
        self.touched.push(mailbox);
        Ok(m as u64)
    }

    fn require_mailbox(&self, mailbox: MailboxId) -> Result<crate::types::Mailbox> {
        query::mailbox_by_id(self.conn(), mailbox)?
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox}")))
    }

    /// (message id, entry) for one uid.
    fn entry(&self, mailbox: MailboxId, uid: Uid) -> Result<Option<(MessageId, Entry)>> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT message_id, uid, flags, keywords, modseq FROM entries WHERE mailbox_id = ?1 AND uid = ?2",
            )?
            .query_row(params![mailbox, uid], |r| {
                Ok((r.get(0)?, query::entry_at(r, 1)?))
            })
            .optional()?)
    }

    /// Change flags of the given UIDs (missing UIDs are ignored). Entries
    /// whose flags really change get the mailbox's next modseq and are
    /// returned; with `unchanged_since`, entries modified after it are
    /// left alone and listed in `failed_modified`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] (mailbox), [`StoreError::Invalid`] (keyword).
    pub fn store_flags(
        &mut self,
        mailbox: MailboxId,
        uids: &[Uid],
        op: FlagOp,
        flags: &Flags,
        unchanged_since: Option<u64>,
    ) -> Result<StoreOutcome> {
        if let Some(pg) = self.pg {
            return self.pg_store_flags(pg, mailbox, uids, op, flags, unchanged_since);
        }
        let mb = self.require_mailbox(mailbox)?;
        encode_keywords(flags)?;
        if flags.keywords.is_empty() && unchanged_since.is_none() {
            let bits = flags.system & Flags::ALL_SYSTEM;
            match op {
                FlagOp::Add => return self.store_system(mb, uids, bits, true),
                FlagOp::Remove => return self.store_system(mb, uids, bits, false),
                FlagOp::Replace => {}
            }
        }
        let mut out = StoreOutcome {
            prior_modseq: Some(mb.highestmodseq),
            ..StoreOutcome::default()
        };
        let mut modseq: Option<u64> = None;
        for uid in sorted(uids) {
            let Some((_, cur)) = self.entry(mailbox, uid)? else {
                continue;
            };
            if unchanged_since.is_some_and(|u| cur.modseq > u) {
                out.failed_modified.push(uid);
                continue;
            }
            let new = cur.flags.apply(op, flags);
            if new.same_as(&cur.flags) {
                continue;
            }
            let m = match modseq {
                Some(m) => m,
                None => {
                    let m = self.bump_modseq(mailbox)?;
                    modseq = Some(m);
                    m
                }
            };
            self.conn()
                .prepare_cached(
                    "UPDATE entries SET flags = ?3, keywords = ?4, modseq = ?5 WHERE mailbox_id = ?1 AND uid = ?2",
                )?
                .execute(params![mailbox, uid, new.system, encode_keywords(&new)?, m as i64])?;
            out.updated.push(Entry {
                uid,
                flags: new,
                modseq: m,
            });
        }
        Ok(out)
    }

    /// `+FLAGS`/`-FLAGS` of system flags only (`bits`; the common STORE,
    /// e.g. `\Seen` or `\Deleted` on a range): one UPDATE per run of
    /// consecutive UIDs changes just the entries whose flags change, at
    /// the mailbox's next modseq, taken only if any changed.
    fn store_system(
        &mut self,
        mb: crate::types::Mailbox,
        uids: &[Uid],
        bits: u8,
        add: bool,
    ) -> Result<StoreOutcome> {
        let mut out = StoreOutcome {
            prior_modseq: Some(mb.highestmodseq),
            ..StoreOutcome::default()
        };
        if bits == 0 {
            return Ok(out);
        }
        let modseq = mb.highestmodseq.saturating_add(1);
        let mut st = self.conn().prepare_cached(if add {
            "UPDATE entries SET flags = flags | ?4, modseq = ?5
             WHERE mailbox_id = ?1 AND uid BETWEEN ?2 AND ?3 AND (flags & ?4) != ?4
             RETURNING uid, flags, keywords, modseq"
        } else {
            "UPDATE entries SET flags = flags & ~?4, modseq = ?5
             WHERE mailbox_id = ?1 AND uid BETWEEN ?2 AND ?3 AND (flags & ?4) != 0
             RETURNING uid, flags, keywords, modseq"
        })?;
        for (lo, hi) in runs(&sorted(uids)) {
            let rows = st.query_map(params![mb.id, lo, hi, bits, modseq as i64], |r| {
                query::entry_at(r, 0)
            })?;
            for e in rows {
                out.updated.push(e?);
            }
        }
        drop(st);
        if !out.updated.is_empty() {
            // The modseq the entries took becomes the mailbox's (no other
            // writer: this is the write transaction).
            self.conn()
                .prepare_cached(
                    "UPDATE mailboxes SET highestmodseq = max(highestmodseq, ?2) WHERE id = ?1",
                )?
                .execute(params![mb.id, modseq as i64])?;
            self.touched.push(mb.id);
            out.updated.sort_unstable_by_key(|e| e.uid);
        }
        Ok(out)
    }

    /// Remove entries, leave tombstones at one new modseq; returns the
    /// message ids they referenced.
    fn remove_entries(&mut self, mailbox: MailboxId, uids: &[Uid]) -> Result<Vec<MessageId>> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let modseq = self.bump_modseq(mailbox)?;
        let mut ids = Vec::with_capacity(uids.len());
        let conn = self.conn();
        let mut del = conn.prepare_cached(
            "DELETE FROM entries WHERE mailbox_id = ?1 AND uid = ?2 RETURNING message_id",
        )?;
        let mut tomb = conn.prepare_cached(
            "INSERT OR REPLACE INTO expunged(mailbox_id, uid, modseq) VALUES (?1, ?2, ?3)",
        )?;
        for uid in uids {
            if let Some(id) = del
                .query_row(params![mailbox, uid], |r| r.get::<_, MessageId>(0))
                .optional()?
            {
                ids.push(id);
                tomb.execute(params![mailbox, uid, modseq as i64])?;
            }
        }
        self.count_tombstones(mailbox, ids.len())?;
        Ok(ids)
    }

    /// Expunge entries flagged `\Deleted` (only those in `only`, if given);
    /// returns the expunged UIDs ascending. Unreferenced messages are deleted.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown mailbox.
    pub fn expunge(&mut self, mailbox: MailboxId, only: Option<&[Uid]>) -> Result<Vec<Uid>> {
        if let Some(pg) = self.pg {
            return self.pg_expunge(pg, mailbox, only);
        }
        self.require_mailbox(mailbox)?;
        let mut uids: Vec<Uid> = {
            let mut st = self.conn().prepare_cached(
                "SELECT uid FROM entries WHERE mailbox_id = ?1 AND (flags & ?2) != 0 ORDER BY uid",
            )?;
            let rows = st.query_map(params![mailbox, Flags::DELETED], |r| r.get::<_, i64>(0))?;
            rows.map(|r| r.map(|u| u as Uid))
                .collect::<rusqlite::Result<_>>()?
        };
        if let Some(only) = only {
            let only = sorted(only);
            uids.retain(|u| only.binary_search(u).is_ok());
        }
        let ids = self.remove_entries(mailbox, &uids)?;
        self.collect_garbage(&ids)?;
        Ok(uids)
    }

    /// Copy entries (flags kept, new UIDs and modseq) into `dst`.
    /// Missing source UIDs are skipped.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown source or destination,
    /// [`StoreError::OverQuota`] when the copies do not fit the
    /// destination owner's quota (nothing is copied).
    pub fn copy(&mut self, src: MailboxId, uids: &[Uid], dst: MailboxId) -> Result<CopyOutcome> {
        if let Some(pg) = self.pg {
            return self.pg_copy(pg, src, uids, dst);
        }
        let (octets, count) = self.entries_size(src, &sorted(uids))?;
        if count > 0 {
            self.check_mailbox_quota(dst, octets, count)?;
        }
        self.copy_entries(src, uids, dst)
    }

    /// [`Tx::copy`] without the quota check (MOVE frees what it adds).
    fn copy_entries(
        &mut self,
        src: MailboxId,
        uids: &[Uid],
        dst: MailboxId,
    ) -> Result<CopyOutcome> {
        self.require_mailbox(src)?;
        let dst_box = self.require_mailbox(dst)?;
        let mut map = Vec::with_capacity(uids.len());
        for uid in sorted(uids) {
            let Some((msg, e)) = self.entry(src, uid)? else {
                continue;
            };
            let new = self.add_entry(dst, msg, &e.flags)?;
            map.push((uid, new));
        }
        Ok(CopyOutcome {
            uidvalidity: dst_box.uidvalidity,
            map,
        })
    }

    /// Copy, then remove the source entries whatever their flags (with
    /// tombstones in `src`).
    ///
    /// # Errors
    /// As [`Tx::copy`].
    pub fn move_messages(
        &mut self,
        src: MailboxId,
        uids: &[Uid],
        dst: MailboxId,
    ) -> Result<CopyOutcome> {
        if let Some(pg) = self.pg {
            return self.pg_move_messages(pg, src, uids, dst);
        }
        let out = self.copy_entries(src, uids, dst)?;
        let moved: Vec<Uid> = out.map.iter().map(|(s, _)| *s).collect();
        let ids = self.remove_entries(src, &moved)?;
        self.collect_garbage(&ids)?;
        Ok(out)
    }
}
