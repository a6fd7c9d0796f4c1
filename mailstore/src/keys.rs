//! Mailbox keys: one random secret per mailbox, for servers that hand out
//! authorized URLs to messages (imapd's URLAUTH, RFC 4467 §3 "mailbox
//! access key"). The store only keeps the keys; what they sign is the
//! caller's business. A key is made on first use, deleted with its mailbox
//! (the mailbox's id is never reused while the row exists), and replaced by
//! [`Tx::reset_mailbox_keys`], which invalidates everything signed with it.

use rusqlite::{params, OptionalExtension};

use crate::error::Result;
use crate::reader::Reader;
use crate::tx::Tx;
use crate::types::{MailboxId, UserId};

/// Octets in a mailbox key (256 bits).
pub const MAILBOX_KEY_LEN: usize = 32;

impl Tx<'_> {
    /// The mailbox's key, made now (random) if it has none.
    ///
    /// # Errors
    /// A foreign-key failure for an unknown mailbox; SQLite errors.
    pub fn mailbox_key(&mut self, mailbox: MailboxId) -> Result<Vec<u8>> {
        if let Some(pg) = self.pg {
            return pg.make_mailbox_key(mailbox);
        }
        let have: Option<Vec<u8>> = self
            .conn()
            .prepare_cached("SELECT key FROM mailbox_keys WHERE mailbox_id = ?1")?
            .query_row([mailbox], |r| r.get(0))
            .optional()?;
        if let Some(k) = have {
            return Ok(k);
        }
        let key: [u8; MAILBOX_KEY_LEN] = rand::random();
        self.conn().execute(
            "INSERT INTO mailbox_keys(mailbox_id, key) VALUES (?1, ?2)",
            params![mailbox, key.to_vec()],
        )?;
        Ok(key.to_vec())
    }

    /// Forget the key of the user's mailbox `name`, or of all the user's
    /// mailboxes (`None`); the next [`Tx::mailbox_key`] makes a new one.
    /// False if there is no such mailbox.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn reset_mailbox_keys(&mut self, user: UserId, name: Option<&str>) -> Result<bool> {
        if let Some(pg) = self.pg {
            return pg.reset_mailbox_keys(user, name);
        }
        match name {
            Some(name) => {
                let Some(mb) = crate::query::mailbox(self.conn(), user, name)? else {
                    return Ok(false);
                };
                self.conn()
                    .execute("DELETE FROM mailbox_keys WHERE mailbox_id = ?1", [mb.id])?;
            }
            None => {
                self.conn().execute(
                    "DELETE FROM mailbox_keys
                     WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE user_id = ?1)",
                    params![user],
                )?;
            }
        }
        Ok(true)
    }
}

impl Reader {
    /// The mailbox's key, if it has one.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn mailbox_key(&self, mailbox: MailboxId) -> Result<Option<Vec<u8>>> {
        if let Some(pg) = self.pg() {
            return pg.mailbox_key(mailbox);
        }
        Ok(self
            .conn()
            .prepare_cached("SELECT key FROM mailbox_keys WHERE mailbox_id = ?1")?
            .query_row([mailbox], |r| r.get(0))
            .optional()?)
    }
}
