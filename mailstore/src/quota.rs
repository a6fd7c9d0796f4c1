//! Per-user quotas (IMAP QUOTA, RFC 9208): a storage limit in octets and a
//! message-count limit, either or both unset (no limit). Usage is kept in
//! the `users` row by triggers on `entries` (schema v12), so it is exact
//! whatever adds or removes an entry; the checks here run in the writer's
//! transaction, so concurrent deliveries are counted one after the other
//! and can never together overshoot a limit.
//!
//! A message counts once per mailbox holding it, with its whole size (as
//! Dovecot's `count` backend counts). MOVE never changes usage and is never
//! refused; COPY, APPEND and delivery add to it and are checked.

use rusqlite::{params, OptionalExtension};

use crate::error::{Result, StoreError};
use crate::reader::Reader;
use crate::tx::Tx;
use crate::types::{MailboxId, Uid, UserId};

/// A user's limits and usage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Quota {
    /// Storage limit in octets (`None`: unlimited).
    pub storage_limit: Option<u64>,
    /// Message-count limit (`None`: unlimited).
    pub message_limit: Option<u64>,
    /// Octets stored (each mailbox's copy counted).
    pub storage_used: u64,
    /// Messages stored (each mailbox's copy counted).
    pub messages_used: u64,
}

/// Whether adding to a user's mailboxes fits their quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fit {
    /// Within every limit.
    Fits,
    /// Over a limit now, but would fit once mail is deleted (SMTP `452
    /// 4.2.2`, temporary).
    Full,
    /// Larger than the storage limit itself: can never fit (SMTP `552
    /// 5.2.2`).
    TooBig,
}

impl Quota {
    /// True if any limit is set.
    pub fn limited(&self) -> bool {
        self.storage_limit.is_some() || self.message_limit.is_some()
    }

    /// Would `octets` more in `messages` more messages fit?
    pub fn fits(&self, octets: u64, messages: u64) -> Fit {
        if let Some(limit) = self.storage_limit {
            if octets > limit {
                return Fit::TooBig;
            }
            if self.storage_used.saturating_add(octets) > limit {
                return Fit::Full;
            }
        }
        if let Some(limit) = self.message_limit {
            if messages > limit {
                return Fit::TooBig;
            }
            if self.messages_used.saturating_add(messages) > limit {
                return Fit::Full;
            }
        }
        Fit::Fits
    }

    /// The error for adding `octets` in `messages` messages, if they do
    /// not fit.
    pub fn check(&self, octets: u64, messages: u64) -> Result<()> {
        let permanent = match self.fits(octets, messages) {
            Fit::Fits => return Ok(()),
            Fit::Full => false,
            Fit::TooBig => true,
        };
        Err(StoreError::OverQuota {
            detail: self.describe(octets, messages),
            permanent,
        })
    }

    /// What is over, for messages and logs.
    fn describe(&self, octets: u64, messages: u64) -> String {
        let mut parts = Vec::new();
        if let Some(limit) = self.storage_limit {
            parts.push(format!(
                "{} + {octets} of {limit} octets",
                self.storage_used
            ));
        }
        if let Some(limit) = self.message_limit {
            parts.push(format!(
                "{} + {messages} of {limit} messages",
                self.messages_used
            ));
        }
        parts.join(", ")
    }
}

fn quota_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Quota> {
    let limit = |v: Option<i64>| v.map(|n| n.max(0) as u64);
    Ok(Quota {
        storage_limit: limit(r.get(0)?),
        message_limit: limit(r.get(1)?),
        storage_used: r.get::<_, i64>(2)?.max(0) as u64,
        messages_used: r.get::<_, i64>(3)?.max(0) as u64,
    })
}

/// A user's quota; [`StoreError::NotFound`] for an unknown user.
pub(crate) fn quota(conn: &rusqlite::Connection, user: UserId) -> Result<Quota> {
    conn.prepare_cached(
        "SELECT quota_storage, quota_messages, used_storage, used_messages FROM users WHERE id = ?1",
    )?
    .query_row([user], quota_row)
    .optional()?
    .ok_or_else(|| StoreError::NotFound(format!("user {user}")))
}

/// The owner of a mailbox.
fn owner(conn: &rusqlite::Connection, mailbox: MailboxId) -> Result<UserId> {
    conn.prepare_cached("SELECT user_id FROM mailboxes WHERE id = ?1")?
        .query_row([mailbox], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox}")))
}

impl Reader {
    /// `user`'s quota and usage.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown user; database errors.
    pub fn quota(&self, user: UserId) -> Result<Quota> {
        if let Some(pg) = self.pg() {
            return pg.quota(user);
        }
        quota(self.conn(), user)
    }

    /// Octets of the messages flagged `\Deleted` in a mailbox (STATUS
    /// DELETED-STORAGE, RFC 9208 §4.3: what EXPUNGE would free).
    ///
    /// # Errors
    /// Database errors.
    pub fn deleted_size(&self, mailbox: MailboxId) -> Result<u64> {
        if let Some(pg) = self.pg() {
            return pg.deleted_size(mailbox);
        }
        let n: i64 = self
            .conn()
            .prepare_cached(
                "SELECT coalesce(sum(m.size), 0) FROM entries e
                 JOIN messages m ON m.id = e.message_id
                 WHERE e.mailbox_id = ?1 AND (e.flags & ?2) != 0",
            )?
            .query_row(params![mailbox, crate::Flags::DELETED], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }
}

impl Tx<'_> {
    /// `user`'s quota and usage as this transaction sees them.
    ///
    /// # Errors
    /// As [`Reader::quota`].
    pub fn quota(&self, user: UserId) -> Result<Quota> {
        if let Some(pg) = self.pg {
            // Under the user's lock (pg/mod.rs): exact across front ends.
            pg.lock_users(&[user])?;
            return pg.quota(user);
        }
        quota(self.conn(), user)
    }

    /// Set (or with `None` clear) `user`'s limits. Usage is not touched:
    /// a user already over a new limit keeps their mail and gets no more.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown user.
    pub fn set_quota(
        &mut self,
        user: UserId,
        storage: Option<u64>,
        messages: Option<u64>,
    ) -> Result<()> {
        if let Some(pg) = self.pg {
            return pg.set_quota(user, storage, messages);
        }
        let clamp = |v: Option<u64>| v.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        let n = self.conn().execute(
            "UPDATE users SET quota_storage = ?2, quota_messages = ?3 WHERE id = ?1",
            params![user, clamp(storage), clamp(messages)],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("user {user}")));
        }
        Ok(())
    }

    /// [`StoreError::OverQuota`] unless `octets` more in `messages` more
    /// messages fit `user`'s quota (checked in this transaction, so
    /// concurrent deliveries cannot together overshoot).
    ///
    /// # Errors
    /// [`StoreError::OverQuota`], [`StoreError::NotFound`].
    pub fn check_quota(&self, user: UserId, octets: u64, messages: u64) -> Result<()> {
        if let Some(pg) = self.pg {
            return self.pg_check_quota(pg, user, octets, messages);
        }
        quota(self.conn(), user)?.check(octets, messages)
    }

    /// Of `users`, those a message of `octets` would put over their
    /// quota, with how ([`Fit::Full`] or [`Fit::TooBig`]).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown user.
    pub fn over_quota(&self, users: &[UserId], octets: u64) -> Result<Vec<(UserId, Fit)>> {
        if let Some(pg) = self.pg {
            // All at once, in id order (pg/mod.rs).
            pg.lock_users(users)?;
        }
        let mut out = Vec::new();
        for &u in users {
            // Locked and without limits: it fits (pg/mod.rs, no round trip).
            if self.pg.is_some_and(|pg| pg.unlimited(u)) {
                continue;
            }
            match self.quota(u)?.fits(octets, 1) {
                Fit::Fits => {}
                fit => out.push((u, fit)),
            }
        }
        Ok(out)
    }

    /// Check that adding `octets` in `messages` messages to `mailbox`
    /// fits its owner's quota.
    pub(crate) fn check_mailbox_quota(
        &self,
        mailbox: MailboxId,
        octets: u64,
        messages: u64,
    ) -> Result<()> {
        if let Some(pg) = self.pg {
            return self.check_quota(pg.owner(mailbox)?, octets, messages);
        }
        let user = owner(self.conn(), mailbox)?;
        self.check_quota(user, octets, messages)
    }

    /// Octets and count of the entries `uids` of `mailbox` (for COPY's
    /// quota check).
    pub(crate) fn entries_size(&self, mailbox: MailboxId, uids: &[Uid]) -> Result<(u64, u64)> {
        let mut st = self.conn().prepare_cached(
            "SELECT m.size FROM entries e JOIN messages m ON m.id = e.message_id
             WHERE e.mailbox_id = ?1 AND e.uid = ?2",
        )?;
        let (mut octets, mut count) = (0u64, 0u64);
        for uid in uids {
            if let Some(size) = st
                .query_row(params![mailbox, uid], |r| r.get::<_, i64>(0))
                .optional()?
            {
                octets = octets.saturating_add(size.max(0) as u64);
                count += 1;
            }
        }
        Ok((octets, count))
    }
}
