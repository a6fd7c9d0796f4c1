//! The outbound queue on PostgreSQL (`outq.rs`'s operations in this
//! dialect), shared by every front end over the database, with leases:
//!
//! - A front end *claims* due recipients in one statement (`UPDATE ...
//!   WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING`): a row
//!   another front end is claiming or completing at that moment is
//!   skipped, so two front ends never get the same recipient. A claim
//!   sets `lease_owner` (the front end's identity) and `lease_until`
//!   (Unix milliseconds on the *database's* clock, so front ends' clocks
//!   need not agree).
//! - While it delivers, the front end *renews* its leases; one that dies
//!   stops renewing, and once `lease_until` passes its recipients are due
//!   for any front end again.
//! - The outcome (finish, defer) is recorded in the writer's transaction
//!   after [`PgConn::queue_still_leased`] locked the rows that are still
//!   ours: a recipient whose lease went to another front end meanwhile is
//!   left alone (that front end now owns it).
//! - A deferred recipient loses its lease (due again at `next_try`, for
//!   any front end); a finished one is deleted, its message with its last
//!   recipient (under the message row's lock, so two front ends finishing
//!   the last two recipients at once still delete it).

use crate::error::{Result, StoreError};
use crate::outq::{domain_of, OutMessage, Queued};
use crate::pg::{is_unique_violation, PgConn};

/// The database's clock, Unix milliseconds (leases are measured on it).
const DB_NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

/// The columns [`queued`] reads, from `outq_rcpt r JOIN outq_msg m`.
const QUEUED_COLUMNS: &str = "r.id, r.msg_id, m.qid, m.sender, r.addr, r.domain, r.notify, \
     r.orcpt, m.ret, m.envid, r.attempts, m.created, r.next_try, r.last_error, r.warned, \
     m.size, r.lease_owner, r.lease_until";

fn queued(r: &postgres::Row) -> Queued {
    Queued {
        id: r.get(0),
        msg_id: r.get(1),
        qid: r.get(2),
        sender: r.get(3),
        addr: r.get(4),
        domain: r.get(5),
        notify: r.get(6),
        orcpt: r.get(7),
        ret: r.get(8),
        envid: r.get(9),
        attempts: r.get::<_, i64>(10).clamp(0, i64::from(u32::MAX)) as u32,
        created: r.get(11),
        next_try: r.get(12),
        last_error: r.get(13),
        warned: r.get::<_, i64>(14) != 0,
        size: r.get::<_, i64>(15).max(0) as u64,
        lease_owner: r.get(16),
        lease_until: r.get(17),
    }
}

fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl PgConn {
    /// `Tx::enqueue` (writer only).
    pub(crate) fn enqueue(&self, msg: &OutMessage) -> Result<i64> {
        if msg.rcpts.is_empty() {
            return Err(StoreError::Invalid("no recipients".into()));
        }
        let now = crate::tx::now();
        let size = msg.raw.len() as i64;
        let rows = self
            .guarded(
                "INSERT INTO outq_msg(qid, sender, size, created, ret, envid)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                &[&msg.qid, &msg.sender, &size, &now, &msg.ret, &msg.envid],
            )?
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Exists(format!("queue id {}", msg.qid))
                } else {
                    e.into()
                }
            })?;
        let id: i64 = rows
            .first()
            .map(|r| r.get(0))
            .ok_or_else(|| StoreError::Invalid("queue insert returned no id".into()))?;
        self.exec(
            "INSERT INTO outq_body(msg_id, raw) VALUES ($1, $2)",
            &[&id, &msg.raw],
        )?;
        for r in &msg.rcpts {
            self.exec(
                "INSERT INTO outq_rcpt(msg_id, addr, domain, notify, orcpt, next_try)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&id, &r.addr, &domain_of(&r.addr), &r.notify, &r.orcpt, &now],
            )?;
        }
        Ok(id)
    }

    /// `Tx::queue_finish` (writer only).
    pub(crate) fn queue_finish(&self, rcpt_id: i64) -> Result<()> {
        let Some(msg) = self.opt("SELECT msg_id FROM outq_rcpt WHERE id = $1", &[&rcpt_id])? else {
            return Ok(());
        };
        let msg: i64 = msg.get(0);
        // The message row's lock orders the front ends finishing its
        // recipients: the last one to finish sees no recipient left.
        self.opt("SELECT id FROM outq_msg WHERE id = $1 FOR UPDATE", &[&msg])?;
        self.exec("DELETE FROM outq_rcpt WHERE id = $1", &[&rcpt_id])?;
        self.exec(
            "DELETE FROM outq_msg WHERE id = $1
             AND NOT EXISTS (SELECT 1 FROM outq_rcpt WHERE msg_id = $1)",
            &[&msg],
        )?;
        Ok(())
    }

    /// `Tx::queue_defer` (writer only): the lease goes with it.
    pub(crate) fn queue_defer(&self, rcpt_id: i64, next_try: i64, error: &str) -> Result<()> {
        self.exec(
            "UPDATE outq_rcpt SET attempts = attempts + 1, next_try = $2, last_error = $3,
                 lease_owner = NULL, lease_until = NULL
             WHERE id = $1",
            &[&rcpt_id, &next_try, &error],
        )?;
        Ok(())
    }

    /// `Tx::queue_warned` (writer only).
    pub(crate) fn queue_warned(&self, rcpt_id: i64) -> Result<()> {
        self.exec("UPDATE outq_rcpt SET warned = 1 WHERE id = $1", &[&rcpt_id])?;
        Ok(())
    }

    /// `Tx::queue_retry` (writer only).
    pub(crate) fn queue_retry(&self, qid: Option<&str>) -> Result<usize> {
        let now = crate::tx::now();
        let n = match qid {
            Some(q) => self.exec(
                "UPDATE outq_rcpt SET next_try = $2
                 WHERE msg_id = (SELECT id FROM outq_msg WHERE qid = $1)",
                &[&q, &now],
            )?,
            None => self.exec("UPDATE outq_rcpt SET next_try = $1", &[&now])?,
        };
        Ok(n as usize)
    }

    /// `Tx::queue_delete` (writer only).
    pub(crate) fn queue_delete(&self, qid: &str) -> Result<bool> {
        Ok(self.exec("DELETE FROM outq_msg WHERE qid = $1", &[&qid])? > 0)
    }

    /// `Tx::queue_still_leased` (writer only): those of `ids` leased to
    /// `owner`, locked until the transaction ends (a claim by another
    /// front end skips them meanwhile, and one under way is waited for).
    pub(crate) fn queue_still_leased(&self, ids: &[i64], owner: &str) -> Result<Vec<i64>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .rows(
                "SELECT id FROM outq_rcpt WHERE id = ANY($1) AND lease_owner = $2
                 ORDER BY id FOR UPDATE",
                &[&ids, &owner],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    /// `Reader::queue_due`: due, and not under a live lease.
    pub(crate) fn queue_due(&self, now: i64, n: usize) -> Result<Vec<Queued>> {
        let sql = format!(
            "SELECT {QUEUED_COLUMNS} FROM outq_rcpt r JOIN outq_msg m ON m.id = r.msg_id
             WHERE r.next_try <= $1 AND (r.lease_until IS NULL OR r.lease_until <= {DB_NOW_MS})
             ORDER BY r.next_try, r.id LIMIT $2"
        );
        Ok(self
            .rows(&sql, &[&now, &limit(n)])?
            .iter()
            .map(queued)
            .collect())
    }

    /// `Reader::queue_size`.
    pub(crate) fn queue_size(&self) -> Result<(u64, u64)> {
        let r = self.one(
            "SELECT (SELECT count(DISTINCT msg_id) FROM outq_rcpt), (SELECT count(*) FROM outq_rcpt)",
            &[],
        )?;
        Ok((r.get::<_, i64>(0) as u64, r.get::<_, i64>(1) as u64))
    }

    /// `Reader::queue_list`.
    pub(crate) fn queue_list(&self) -> Result<Vec<Queued>> {
        let sql = format!(
            "SELECT {QUEUED_COLUMNS} FROM outq_rcpt r JOIN outq_msg m ON m.id = r.msg_id
             ORDER BY m.id, r.id"
        );
        Ok(self.rows(&sql, &[])?.iter().map(queued).collect())
    }

    /// `Reader::queue_next_due`.
    pub(crate) fn queue_next_due(&self) -> Result<Option<i64>> {
        Ok(self.one("SELECT min(next_try) FROM outq_rcpt", &[])?.get(0))
    }

    /// `Reader::queue_raw`.
    pub(crate) fn queue_raw(&self, msg_id: i64) -> Result<Option<Vec<u8>>> {
        Ok(self
            .opt("SELECT raw FROM outq_body WHERE msg_id = $1", &[&msg_id])?
            .map(|r| r.get(0)))
    }

    /// `Reader::queue_raw_by_qid`.
    pub(crate) fn queue_raw_by_qid(&self, qid: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .opt(
                "SELECT b.raw FROM outq_body b JOIN outq_msg m ON m.id = b.msg_id WHERE m.qid = $1",
                &[&qid],
            )?
            .map(|r| r.get(0)))
    }

    /// `QueueLeases::claim`: up to `n` recipients due at `now` and not
    /// under a live lease, leased to `owner` for `lease`; oldest due
    /// first. One statement, in a transaction of its own.
    pub(crate) fn queue_claim(
        &self,
        owner: &str,
        now: i64,
        n: usize,
        lease: std::time::Duration,
    ) -> Result<Vec<Queued>> {
        let sql = format!(
            "WITH claimed AS (
                 UPDATE outq_rcpt r SET lease_owner = $1, lease_until = {DB_NOW_MS} + $2
                 WHERE r.id IN (
                     SELECT id FROM outq_rcpt
                     WHERE next_try <= $3 AND (lease_until IS NULL OR lease_until <= {DB_NOW_MS})
                     ORDER BY next_try, id LIMIT $4
                     FOR UPDATE SKIP LOCKED)
                 RETURNING r.*)
             SELECT {QUEUED_COLUMNS} FROM claimed r JOIN outq_msg m ON m.id = r.msg_id
             ORDER BY r.next_try, r.id"
        );
        Ok(self
            .rows(&sql, &[&owner, &millis(lease), &now, &limit(n)])?
            .iter()
            .map(queued)
            .collect())
    }

    /// `QueueLeases::renew`: extend `owner`'s leases on `ids` by `lease`
    /// from now; returns those still its own.
    pub(crate) fn queue_renew(
        &self,
        owner: &str,
        ids: &[i64],
        lease: std::time::Duration,
    ) -> Result<Vec<i64>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "UPDATE outq_rcpt SET lease_until = {DB_NOW_MS} + $3
             WHERE id = ANY($1) AND lease_owner = $2 RETURNING id"
        );
        Ok(self
            .rows(&sql, &[&ids, &owner, &millis(lease)])?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    /// `QueueLeases::release`: give back `owner`'s leases on `ids`.
    pub(crate) fn queue_release(&self, owner: &str, ids: &[i64]) -> Result<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        Ok(self.exec(
            "UPDATE outq_rcpt SET lease_owner = NULL, lease_until = NULL
             WHERE id = ANY($1) AND lease_owner = $2",
            &[&ids, &owner],
        )? as usize)
    }

    /// `QueueLeases::recover`: give back leases whose owner starts with
    /// `prefix` (an earlier run of this front end) but is not `owner`.
    pub(crate) fn queue_recover(&self, prefix: &str, owner: &str) -> Result<usize> {
        Ok(self.exec(
            "UPDATE outq_rcpt SET lease_owner = NULL, lease_until = NULL
             WHERE left(lease_owner, length($1)) = $1 AND lease_owner <> $2",
            &[&prefix, &owner],
        )? as usize)
    }
}
