//! The outbound queue: mail accepted for other hosts (RFC 5321 §4.1.1.4:
//! once we said 250 the message is ours to deliver or bounce), kept in the
//! same file and committed in the same transaction as local deliveries, so
//! it survives restarts and kill -9.
//!
//! A message row holds the envelope sender and the bytes; each recipient
//! row still to deliver holds its attempt count, when to try next and the
//! last error. Delivered and failed recipients are deleted (the delivery
//! engine logs them); a message goes with its last recipient.
//!
//! On PostgreSQL several front ends share the queue: each delivers a
//! recipient only under a lease it claimed ([`QueueLeases`], SQL in
//! `pg/outq.rs`), renews it while delivering, and records the outcome
//! only where the lease is still its own ([`Tx::queue_still_leased`]); a
//! front end that dies stops renewing, and its recipients are due for the
//! others once the lease has passed. On SQLite one process owns the queue
//! and the lease columns stay empty.

use std::time::Duration;

use rusqlite::{params, OptionalExtension};

use crate::error::{Result, StoreError};
use crate::reader::Reader;
use crate::tx::Tx;

/// A message to queue for delivery elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutMessage {
    /// Queue id (shown in logs and by `minimail queue`), unique.
    pub qid: String,
    /// Envelope sender (RFC 5321 reverse-path); empty for the null sender.
    pub sender: String,
    /// The message as it goes out (trace headers included).
    pub raw: Vec<u8>,
    /// RFC 3461 RET (FULL or HDRS).
    pub ret: Option<String>,
    /// RFC 3461 ENVID.
    pub envid: Option<String>,
    /// Recipients.
    pub rcpts: Vec<OutRcpt>,
}

/// One recipient of an [`OutMessage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutRcpt {
    /// The address (local@domain).
    pub addr: String,
    /// RFC 3461 NOTIFY as given (e.g. "FAILURE,DELAY" or "NEVER").
    pub notify: Option<String>,
    /// RFC 3461 ORCPT as given (addr-type;xtext).
    pub orcpt: Option<String>,
}

/// A queued recipient, as the delivery engine and `minimail queue` see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// Recipient row id.
    pub id: i64,
    /// Message row id.
    pub msg_id: i64,
    /// The message's queue id.
    pub qid: String,
    /// Envelope sender ("" = null sender).
    pub sender: String,
    /// Recipient address.
    pub addr: String,
    /// Its domain (lower case).
    pub domain: String,
    /// RFC 3461 NOTIFY.
    pub notify: Option<String>,
    /// RFC 3461 ORCPT.
    pub orcpt: Option<String>,
    /// RFC 3461 RET.
    pub ret: Option<String>,
    /// RFC 3461 ENVID.
    pub envid: Option<String>,
    /// Attempts so far.
    pub attempts: u32,
    /// When the message was queued (Unix seconds).
    pub created: i64,
    /// When to try next (Unix seconds).
    pub next_try: i64,
    /// The last failure, if any.
    pub last_error: Option<String>,
    /// A delay warning was sent.
    pub warned: bool,
    /// The message's size in octets.
    pub size: u64,
    /// The front end delivering it now (PostgreSQL; see [`QueueLeases`]).
    pub lease_owner: Option<String>,
    /// Until when that lease holds (Unix milliseconds, the database's
    /// clock).
    pub lease_until: Option<i64>,
}

const QUEUED_COLUMNS: &str = "r.id, r.msg_id, m.qid, m.sender, r.addr, r.domain, r.notify, \
     r.orcpt, m.ret, m.envid, r.attempts, m.created, r.next_try, r.last_error, r.warned, \
     m.size, r.lease_owner, r.lease_until";

fn queued_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Queued> {
    Ok(Queued {
        id: r.get(0)?,
        msg_id: r.get(1)?,
        qid: r.get(2)?,
        sender: r.get(3)?,
        addr: r.get(4)?,
        domain: r.get(5)?,
        notify: r.get(6)?,
        orcpt: r.get(7)?,
        ret: r.get(8)?,
        envid: r.get(9)?,
        attempts: r.get::<_, i64>(10)?.clamp(0, i64::from(u32::MAX)) as u32,
        created: r.get(11)?,
        next_try: r.get(12)?,
        last_error: r.get(13)?,
        warned: r.get::<_, i64>(14)? != 0,
        size: r.get::<_, i64>(15)?.max(0) as u64,
        lease_owner: r.get(16)?,
        lease_until: r.get(17)?,
    })
}

/// The domain of an address, lower case ("" when it has none).
pub fn domain_of(addr: &str) -> String {
    addr.rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .unwrap_or_default()
}

impl Tx<'_> {
    /// Queue `msg` for its recipients, due now.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] without recipients; [`StoreError::Exists`]
    /// for a queue id in use.
    pub fn enqueue(&mut self, msg: &OutMessage) -> Result<i64> {
        self.queue_changed = true;
        if let Some(pg) = self.pg {
            return pg.enqueue(msg);
        }
        if msg.rcpts.is_empty() {
            return Err(StoreError::Invalid("no recipients".into()));
        }
        let now = crate::tx::now();
        let conn = self.conn();
        conn.execute(
            "INSERT INTO outq_msg(qid, sender, size, created, ret, envid) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![msg.qid, msg.sender, msg.raw.len() as i64, now, msg.ret, msg.envid],
        )
        .map_err(|e| {
            if crate::query::is_unique_violation(&e) {
                StoreError::Exists(format!("queue id {}", msg.qid))
            } else {
                e.into()
            }
        })?;
        let id = conn.last_insert_rowid();
        conn.prepare_cached("INSERT INTO outq_body(msg_id, raw) VALUES (?1, ?2)")?
            .execute(params![id, msg.raw])?;
        let mut stmt = conn.prepare_cached(
            "INSERT INTO outq_rcpt(msg_id, addr, domain, notify, orcpt, next_try) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for r in &msg.rcpts {
            stmt.execute(params![
                id,
                r.addr,
                domain_of(&r.addr),
                r.notify,
                r.orcpt,
                now
            ])?;
        }
        Ok(id)
    }

    /// A recipient is finished (delivered, or failed and reported): drop
    /// it, and its message once no recipient is left. Unknown ids are
    /// ignored (`minimail queue delete` may have removed them meanwhile).
    ///
    /// # Errors
    /// Only database errors.
    pub fn queue_finish(&mut self, rcpt_id: i64) -> Result<()> {
        self.queue_changed = true;
        if let Some(pg) = self.pg {
            return pg.queue_finish(rcpt_id);
        }
        let conn = self.conn();
        let msg: Option<i64> = conn
            .query_row(
                "DELETE FROM outq_rcpt WHERE id = ?1 RETURNING msg_id",
                [rcpt_id],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(msg) = msg {
            conn.execute(
                "DELETE FROM outq_msg WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM outq_rcpt WHERE msg_id = ?1)",
                [msg],
            )?;
        }
        Ok(())
    }

    /// A recipient failed temporarily: count the attempt, remember why,
    /// try again at `next_try`.
    ///
    /// # Errors
    /// Only database errors.
    pub fn queue_defer(&mut self, rcpt_id: i64, next_try: i64, error: &str) -> Result<()> {
        self.queue_changed = true;
        if let Some(pg) = self.pg {
            return pg.queue_defer(rcpt_id, next_try, error);
        }
        self.conn().execute(
            "UPDATE outq_rcpt SET attempts = attempts + 1, next_try = ?2, last_error = ?3 WHERE id = ?1",
            params![rcpt_id, next_try, error],
        )?;
        Ok(())
    }

    /// Mark that a delay warning went out for a recipient.
    ///
    /// # Errors
    /// Only database errors.
    pub fn queue_warned(&mut self, rcpt_id: i64) -> Result<()> {
        self.queue_changed = true;
        if let Some(pg) = self.pg {
            return pg.queue_warned(rcpt_id);
        }
        self.conn()
            .execute("UPDATE outq_rcpt SET warned = 1 WHERE id = ?1", [rcpt_id])?;
        Ok(())
    }

    /// Make queued recipients due now: those of message `qid`, or all.
    /// Returns how many.
    ///
    /// # Errors
    /// Only database errors.
    pub fn queue_retry(&mut self, qid: Option<&str>) -> Result<usize> {
        self.queue_changed = true;
        if let Some(pg) = self.pg {
            return pg.queue_retry(qid);
        }
        let now = crate::tx::now();
        let n = match qid {
            Some(q) => self.conn().execute(
                "UPDATE outq_rcpt SET next_try = ?2 WHERE msg_id = (SELECT id FROM outq_msg WHERE qid = ?1)",
                params![q, now],
            )?,
            None => self
                .conn()
                .execute("UPDATE outq_rcpt SET next_try = ?1", [now])?,
        };
        Ok(n)
    }

    /// Those of `ids` still leased to `owner`, which only they may record
    /// outcomes for: on PostgreSQL the rows are locked until this
    /// transaction ends, so the lease cannot pass to another front end
    /// before the outcome is recorded; one that passed already (this
    /// front end stalled past its lease) is left to its new owner. On
    /// SQLite (one delivering process) all of `ids`.
    ///
    /// # Errors
    /// Only database errors.
    pub fn queue_still_leased(&mut self, ids: &[i64], owner: &str) -> Result<Vec<i64>> {
        if let Some(pg) = self.pg {
            return pg.queue_still_leased(ids, owner);
        }
        Ok(ids.to_vec())
    }

    /// Delete message `qid` from the queue without delivering it. Returns
    /// whether it was there.
    ///
    /// # Errors
    /// Only database errors.
    pub fn queue_delete(&mut self, qid: &str) -> Result<bool> {
        self.queue_changed = true;
        if let Some(pg) = self.pg {
            return pg.queue_delete(qid);
        }
        let n = self
            .conn()
            .execute("DELETE FROM outq_msg WHERE qid = ?1", [qid])?;
        Ok(n > 0)
    }
}

impl Reader {
    /// Up to `limit` recipients due at `now`, oldest due first.
    ///
    /// # Errors
    /// Only database errors.
    pub fn queue_due(&self, now: i64, limit: usize) -> Result<Vec<Queued>> {
        if let Some(pg) = self.pg() {
            return pg.queue_due(now, limit);
        }
        let sql = format!(
            "SELECT {QUEUED_COLUMNS} FROM outq_rcpt r JOIN outq_msg m ON m.id = r.msg_id \
             WHERE r.next_try <= ?1 ORDER BY r.next_try, r.id LIMIT ?2"
        );
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let rows = stmt.query_map(params![now, limit as i64], queued_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// How many messages and recipients are queued: `(messages,
    /// recipients)`.
    ///
    /// # Errors
    /// Only database errors.
    pub fn queue_size(&self) -> Result<(u64, u64)> {
        if let Some(pg) = self.pg() {
            return pg.queue_size();
        }
        Ok(self.conn().query_row(
            "SELECT (SELECT count(DISTINCT msg_id) FROM outq_rcpt), (SELECT count(*) FROM outq_rcpt)",
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
        )?)
    }

    /// Every queued recipient, by message then recipient.
    ///
    /// # Errors
    /// Only database errors.
    pub fn queue_list(&self) -> Result<Vec<Queued>> {
        if let Some(pg) = self.pg() {
            return pg.queue_list();
        }
        let sql = format!(
            "SELECT {QUEUED_COLUMNS} FROM outq_rcpt r JOIN outq_msg m ON m.id = r.msg_id \
             ORDER BY m.id, r.id"
        );
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let rows = stmt.query_map([], queued_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The earliest `next_try` in the queue.
    ///
    /// # Errors
    /// Only database errors.
    pub fn queue_next_due(&self) -> Result<Option<i64>> {
        if let Some(pg) = self.pg() {
            return pg.queue_next_due();
        }
        Ok(self
            .conn()
            .query_row("SELECT min(next_try) FROM outq_rcpt", [], |r| r.get(0))?)
    }

    /// The bytes of queued message `msg_id`.
    ///
    /// # Errors
    /// Only database errors.
    pub fn queue_raw(&self, msg_id: i64) -> Result<Option<Vec<u8>>> {
        if let Some(pg) = self.pg() {
            return pg.queue_raw(msg_id);
        }
        Ok(self
            .conn()
            .query_row(
                "SELECT raw FROM outq_body WHERE msg_id = ?1",
                [msg_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The bytes of queued message `qid`.
    ///
    /// # Errors
    /// Only database errors.
    pub fn queue_raw_by_qid(&self, qid: &str) -> Result<Option<Vec<u8>>> {
        if let Some(pg) = self.pg() {
            return pg.queue_raw_by_qid(qid);
        }
        Ok(self
            .conn()
            .query_row(
                "SELECT b.raw FROM outq_body b JOIN outq_msg m ON m.id = b.msg_id WHERE m.qid = ?1",
                [qid],
                |r| r.get(0),
            )
            .optional()?)
    }
}

/// A front end's leases on the shared queue (PostgreSQL): claims, renews
/// and gives back recipients under its identity, on a connection of its
/// own (not the writer's: a claim is no mail store commit, and the
/// delivery engine, which wakes on every commit, would wake itself).
/// Not `Sync`: one thread (the engine's scheduler) uses it.
pub struct QueueLeases {
    pg: crate::pg::PgConn,
    owner: String,
}

impl std::fmt::Debug for QueueLeases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "QueueLeases({})", self.owner)
    }
}

impl crate::Store {
    /// Leases under the identity `owner` (unique among the front ends
    /// sharing the database, e.g. host, address, pid and start time): on
    /// PostgreSQL; `None` on SQLite, where one process owns the queue.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for an empty `owner`; a connection that
    /// cannot be made.
    pub fn queue_leases(&self, owner: &str) -> Result<Option<QueueLeases>> {
        let Some(url) = self.pg_url() else {
            return Ok(None);
        };
        if owner.is_empty() {
            return Err(StoreError::Invalid("a lease owner needs a name".into()));
        }
        Ok(Some(QueueLeases {
            pg: crate::pg::PgConn::connect(url)?,
            owner: owner.to_owned(),
        }))
    }
}

impl QueueLeases {
    /// The identity leases are taken under.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Take up to `limit` recipients due at `now` (Unix seconds) that no
    /// front end holds a live lease on, leased to us for `lease`; oldest
    /// due first. Atomic: two front ends claiming at once never get the
    /// same recipient.
    ///
    /// # Errors
    /// Only database errors.
    pub fn claim(&self, now: i64, limit: usize, lease: Duration) -> Result<Vec<Queued>> {
        self.pg.queue_claim(&self.owner, now, limit, lease)
    }

    /// Extend our leases on `ids` to `lease` from now; returns those of
    /// `ids` that are no longer ours (delivered meanwhile, deleted, or
    /// claimed by another front end after our lease had passed).
    ///
    /// # Errors
    /// Only database errors.
    pub fn renew(&self, ids: &[i64], lease: Duration) -> Result<Vec<i64>> {
        let kept = self.pg.queue_renew(&self.owner, ids, lease)?;
        Ok(ids
            .iter()
            .filter(|id| !kept.contains(id))
            .copied()
            .collect())
    }

    /// Give back our leases on `ids` (claimed, not to be delivered now):
    /// due for any front end at once. Returns how many.
    ///
    /// # Errors
    /// Only database errors.
    pub fn release(&self, ids: &[i64]) -> Result<usize> {
        self.pg.queue_release(&self.owner, ids)
    }

    /// At start: give back the leases of earlier runs of this front end,
    /// owners that begin with `prefix` (which our own owner must begin
    /// with too) but are not us. Leases of other front ends, live or not,
    /// are left alone. Returns how many.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] when our owner does not begin with
    /// `prefix` or `prefix` is empty; database errors.
    pub fn recover(&self, prefix: &str) -> Result<usize> {
        if prefix.is_empty() || !self.owner.starts_with(prefix) || self.owner == prefix {
            return Err(StoreError::Invalid(format!(
                "lease owner {} does not extend the prefix {prefix:?}",
                self.owner
            )));
        }
        self.pg.queue_recover(prefix, &self.owner)
    }
}
