//! Expunge tombstones: which UIDs left a mailbox at which modseq, so that a
//! client can learn what vanished since the modseq it last saw (RFC 7162
//! §3.2: "the server MUST associate the incremented mod-sequence with the
//! UIDs of the expunged messages"). Protocol-neutral: rows of (mailbox,
//! uid, modseq), written by the expunge's own transaction (`tx_flags.rs`).
//!
//! # The bound
//! A mailbox keeps at most `meta.max_tombstones` rows (default
//! [`DEFAULT_MAX_TOMBSTONES`], changed with [`Tx::set_max_tombstones`]).
//! When an expunge takes it past the bound, the oldest rows (lowest
//! modseq, whole expunges at a time) are dropped until three quarters of
//! the bound remain, and the mailbox's *floor* rises to the highest modseq
//! dropped. Asked for expunges since a modseq below the floor, the store
//! says its answer is incomplete ([`Changes::expunged_complete`]); callers
//! then compare UID sets instead (RFC 7162 §3.2.5.2 and §3.2.6 allow a
//! superset in VANISHED (EARLIER)). Deleting a mailbox deletes its rows.

use rusqlite::{params, OptionalExtension};

use crate::error::Result;
use crate::reader::Reader;
use crate::tx::Tx;
use crate::types::{MailboxId, Uid};

#[cfg(doc)]
use crate::types::Changes;

/// Tombstones a mailbox keeps unless `meta.max_tombstones` says otherwise
/// (about 1.5 MiB of table and index per mailbox at the bound).
pub const DEFAULT_MAX_TOMBSTONES: u32 = 50_000;

impl Tx<'_> {
    /// Count `added` new tombstones of `mailbox` and, past the bound, drop
    /// the oldest (see the module docs). Runs inside the expunge's
    /// transaction.
    pub(crate) fn count_tombstones(&mut self, mailbox: MailboxId, added: usize) -> Result<()> {
        if added == 0 {
            return Ok(());
        }
        let conn = self.conn();
        let count: i64 = conn
            .prepare_cached(
                "UPDATE mailboxes SET tombstones = tombstones + ?2 WHERE id = ?1 RETURNING tombstones",
            )?
            .query_row(params![mailbox, added as i64], |r| r.get(0))?;
        let max = self.max_tombstones()?;
        if count <= max {
            return Ok(());
        }
        let keep = max - max / 4;
        // The modseq of the newest row that must go: rows are dropped by
        // whole modseqs, so the floor says exactly what may be missing.
        let cutoff: Option<i64> = conn
            .prepare_cached(
                "SELECT modseq FROM expunged WHERE mailbox_id = ?1 ORDER BY modseq LIMIT 1 OFFSET ?2",
            )?
            .query_row(params![mailbox, count - keep - 1], |r| r.get(0))
            .optional()?;
        let Some(cutoff) = cutoff else {
            return Ok(());
        };
        conn.prepare_cached("DELETE FROM expunged WHERE mailbox_id = ?1 AND modseq <= ?2")?
            .execute(params![mailbox, cutoff])?;
        conn.prepare_cached(
            "UPDATE mailboxes SET tombstone_floor = max(tombstone_floor, ?2),
             tombstones = (SELECT count(*) FROM expunged WHERE mailbox_id = ?1) WHERE id = ?1",
        )?
        .execute(params![mailbox, cutoff])?;
        Ok(())
    }

    /// The bound on tombstones per mailbox now in force.
    fn max_tombstones(&self) -> Result<i64> {
        Ok(self
            .conn()
            .prepare_cached("SELECT value FROM meta WHERE key = 'max_tombstones'")?
            .query_row([], |r| r.get::<_, i64>(0))
            .optional()?
            .unwrap_or(i64::from(DEFAULT_MAX_TOMBSTONES))
            .max(0))
    }

    /// Change the bound on tombstones per mailbox (kept in the file; it
    /// takes effect at each mailbox's next expunge).
    ///
    /// # Errors
    /// Only database errors.
    pub fn set_max_tombstones(&mut self, max: u32) -> Result<()> {
        if let Some(pg) = self.pg {
            return self.pg_set_max_tombstones(pg, max);
        }
        self.conn().execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES ('max_tombstones', ?1)",
            [i64::from(max)],
        )?;
        Ok(())
    }
}

impl Reader {
    /// The highest modseq whose expunges may have been forgotten (0: every
    /// expunge of the mailbox is remembered). Expunges after it are all
    /// known.
    ///
    /// # Errors
    /// Only database errors (an unknown mailbox has floor 0).
    pub fn tombstone_floor(&self, mailbox: MailboxId) -> Result<u64> {
        if let Some(pg) = self.pg() {
            return pg.tombstone_floor(mailbox);
        }
        let f: Option<i64> = self
            .conn()
            .prepare_cached("SELECT tombstone_floor FROM mailboxes WHERE id = ?1")?
            .query_row([mailbox], |r| r.get(0))
            .optional()?;
        Ok(f.unwrap_or(0).max(0) as u64)
    }

    /// Number of tombstones the mailbox holds now.
    ///
    /// # Errors
    /// Only database errors.
    pub fn tombstones(&self, mailbox: MailboxId) -> Result<u64> {
        if let Some(pg) = self.pg() {
            return pg.tombstones(mailbox);
        }
        let n: i64 = self
            .conn()
            .prepare_cached("SELECT count(*) FROM expunged WHERE mailbox_id = ?1")?
            .query_row([mailbox], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// The mailbox's UIDs, ascending (one index scan, nothing else read).
    ///
    /// # Errors
    /// Only database errors (an unknown mailbox has none).
    pub fn uids(&self, mailbox: MailboxId) -> Result<Vec<Uid>> {
        if let Some(pg) = self.pg() {
            return pg.uids(mailbox);
        }
        let mut st = self
            .conn()
            .prepare_cached("SELECT uid FROM entries WHERE mailbox_id = ?1 ORDER BY uid")?;
        let rows = st.query_map([mailbox], |r| r.get::<_, i64>(0))?;
        Ok(rows
            .map(|r| r.map(|u| u as Uid))
            .collect::<rusqlite::Result<_>>()?)
    }
}
