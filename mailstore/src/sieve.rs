//! Sieve (RFC 5228) as the store sees it: each user's scripts by name,
//! at most one active (RFC 5804 §1.1's model, shared by ManageSieve), the
//! ids a script asked to remember (RFC 7352 `duplicate` and RFC 5230
//! vacation's once-per-period record), and delivering one message to
//! several mailboxes with flags at once (what `fileinto`, `keep` and
//! imap4flags decide). The store knows nothing of the Sieve language.

use rusqlite::{params, OptionalExtension};

use crate::error::{Result, StoreError};
use crate::query;
use crate::reader::Reader;
use crate::tx::Tx;
use crate::tx_deliver::PreparedMessage;
use crate::types::{Flags, UserId};

/// Longest script stored, in bytes.
pub const MAX_SCRIPT_SIZE: usize = 256 * 1024;
/// Most scripts one user keeps.
pub const MAX_SCRIPTS: usize = 64;
/// Longest remembered id (longer ones are cut: they only name a sender
/// and a handle).
const MAX_SEEN_ID: usize = 512;
/// Most remembered ids per user (the oldest to expire go first).
pub const MAX_SEEN_IDS: usize = 10_000;

/// One stored script's name and whether it is the active one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptInfo {
    /// Its name (RFC 5804 §1.6: any UTF-8 without controls).
    pub name: String,
    /// True for the user's one active script.
    pub active: bool,
}

/// Where one copy of a delivered message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filing {
    /// The user.
    pub user: UserId,
    /// The mailbox name (`INBOX` for keep).
    pub mailbox: String,
    /// Flags and keywords to set on it (RFC 5232).
    pub flags: Flags,
    /// Create the mailbox when missing (RFC 5490 `:create`); without it
    /// a missing mailbox gets the copy in INBOX instead.
    pub create: bool,
}

/// A script name RFC 5804 §1.6 allows: not empty, at most 512 octets,
/// no controls.
pub(crate) fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 512 || name.chars().any(char::is_control) {
        return Err(StoreError::Invalid(format!("bad script name {name:?}")));
    }
    Ok(())
}

fn unix_now() -> i64 {
    crate::tx::now()
}

impl Tx<'_> {
    /// Store (or replace) `user`'s script `name`. A replaced active
    /// script stays active.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a bad name, an oversized script or too
    /// many scripts.
    pub fn put_sieve_script(&mut self, user: UserId, name: &str, script: &[u8]) -> Result<()> {
        if let Some(pg) = self.pg {
            return pg.put_sieve_script(user, name, script);
        }
        check_name(name)?;
        if script.len() > MAX_SCRIPT_SIZE {
            return Err(StoreError::Invalid(format!(
                "script is {} bytes, more than {MAX_SCRIPT_SIZE}",
                script.len()
            )));
        }
        let exists = self.sieve_script_exists(user, name)?;
        let count: i64 = self.conn().query_row(
            "SELECT count(*) FROM sieve_scripts WHERE user_id = ?1",
            [user],
            |r| r.get(0),
        )?;
        if !exists && count as usize >= MAX_SCRIPTS {
            return Err(StoreError::Invalid(format!(
                "at most {MAX_SCRIPTS} scripts per user"
            )));
        }
        self.conn().execute(
            "INSERT INTO sieve_scripts(user_id, name, script) VALUES (?1, ?2, ?3)
             ON CONFLICT(user_id, name) DO UPDATE SET script = excluded.script",
            params![user, name, script],
        )?;
        Ok(())
    }

    fn sieve_script_exists(&self, user: UserId, name: &str) -> Result<bool> {
        Ok(self.conn().query_row(
            "SELECT EXISTS(SELECT 1 FROM sieve_scripts WHERE user_id = ?1 AND name = ?2)",
            params![user, name],
            |r| r.get(0),
        )?)
    }

    /// Make `name` the active script, or none active for `None`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for no such script.
    pub fn activate_sieve_script(&mut self, user: UserId, name: Option<&str>) -> Result<()> {
        if let Some(pg) = self.pg {
            return pg.activate_sieve_script(user, name);
        }
        if let Some(name) = name {
            if !self.sieve_script_exists(user, name)? {
                return Err(StoreError::NotFound(format!("script {name:?}")));
            }
        }
        self.conn().execute(
            "UPDATE sieve_scripts SET active = (name = ?2 AND ?2 IS NOT NULL) WHERE user_id = ?1",
            params![user, name],
        )?;
        Ok(())
    }

    /// Delete a script; the active one cannot be (RFC 5804 §2.10).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for no such script,
    /// [`StoreError::Invalid`] for the active one.
    pub fn delete_sieve_script(&mut self, user: UserId, name: &str) -> Result<()> {
        if let Some(pg) = self.pg {
            return pg.delete_sieve_script(user, name);
        }
        let active: Option<bool> = self
            .conn()
            .query_row(
                "SELECT active FROM sieve_scripts WHERE user_id = ?1 AND name = ?2",
                params![user, name],
                |r| r.get(0),
            )
            .optional()?;
        match active {
            None => Err(StoreError::NotFound(format!("script {name:?}"))),
            Some(true) => Err(StoreError::Invalid(format!("script {name:?} is active"))),
            Some(false) => {
                self.conn().execute(
                    "DELETE FROM sieve_scripts WHERE user_id = ?1 AND name = ?2",
                    params![user, name],
                )?;
                Ok(())
            }
        }
    }

    /// Rename a script (RFC 5804 §2.11.1); it keeps being active.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] / [`StoreError::Exists`].
    pub fn rename_sieve_script(&mut self, user: UserId, from: &str, to: &str) -> Result<()> {
        if let Some(pg) = self.pg {
            return pg.rename_sieve_script(user, from, to);
        }
        check_name(to)?;
        if !self.sieve_script_exists(user, from)? {
            return Err(StoreError::NotFound(format!("script {from:?}")));
        }
        if self.sieve_script_exists(user, to)? {
            return Err(StoreError::Exists(format!("script {to:?}")));
        }
        self.conn().execute(
            "UPDATE sieve_scripts SET name = ?3 WHERE user_id = ?1 AND name = ?2",
            params![user, from, to],
        )?;
        Ok(())
    }

    /// Those of `users` who have an active script, read inside this
    /// transaction (so exact for the delivery it runs with): a delivery
    /// for none of them needs no Sieve planning. One primary-key range
    /// lookup per user (on PostgreSQL one statement for all of them).
    ///
    /// # Errors
    /// Database errors.
    pub fn users_with_active_script(&self, users: &[UserId]) -> Result<Vec<UserId>> {
        if let Some(pg) = self.pg {
            return pg.users_with_active_script(users);
        }
        let mut st = self.conn().prepare_cached(
            "SELECT EXISTS(SELECT 1 FROM sieve_scripts WHERE user_id = ?1 AND active = 1)",
        )?;
        let mut out = Vec::new();
        for &user in users {
            if !out.contains(&user) && st.query_row([user], |r| r.get::<_, bool>(0))? {
                out.push(user);
            }
        }
        Ok(out)
    }

    /// Remember `id` for `user` until `expires` (unix seconds); true if
    /// it was not remembered yet (or had expired), i.e. the caller is the
    /// first to act on it. Expired ids are dropped, and past
    /// [`MAX_SEEN_IDS`] those nearest to expiry.
    ///
    /// # Errors
    /// Database errors.
    pub fn remember_sieve_id(&mut self, user: UserId, id: &str, expires: i64) -> Result<bool> {
        if let Some(pg) = self.pg {
            return pg.remember_sieve_id(user, id, expires);
        }
        let id = cut(id);
        let now = unix_now();
        self.conn().execute(
            "DELETE FROM sieve_seen WHERE user_id = ?1 AND expires <= ?2",
            params![user, now],
        )?;
        let fresh = self.conn().execute(
            "INSERT OR IGNORE INTO sieve_seen(user_id, id, expires) VALUES (?1, ?2, ?3)",
            params![user, id, expires],
        )? == 1;
        if fresh {
            self.conn().execute(
                "DELETE FROM sieve_seen WHERE user_id = ?1 AND id IN (
                     SELECT id FROM sieve_seen WHERE user_id = ?1
                     ORDER BY expires DESC LIMIT -1 OFFSET ?2)",
                params![user, MAX_SEEN_IDS as i64],
            )?;
        }
        Ok(fresh)
    }

    /// Store `msg` once and file a copy per [`Filing`] (RFC 5228 keep and
    /// fileinto, each mailbox once per user). A missing mailbox is made
    /// for `create`, else that copy goes to INBOX.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for no filings or a bad flag,
    /// [`StoreError::NotFound`] for an unknown user.
    pub fn deliver_filed(&mut self, msg: &PreparedMessage, filings: &[Filing]) -> Result<()> {
        if let Some(pg) = self.pg {
            return self.pg_deliver_filed(pg, msg, filings);
        }
        if filings.is_empty() {
            return Err(StoreError::Invalid("no recipients".into()));
        }
        let message = self.insert_prepared(msg)?;
        let mut done: Vec<i64> = Vec::new();
        for f in filings {
            let mailbox = match query::mailbox(self.conn(), f.user, &f.mailbox)? {
                Some(mb) => mb.id,
                None if f.create && !f.mailbox.eq_ignore_ascii_case("INBOX") => {
                    match self.create_mailbox(f.user, &f.mailbox, None) {
                        Ok(id) => {
                            self.set_subscribed(f.user, &f.mailbox, true)?;
                            id
                        }
                        Err(StoreError::Invalid(why)) => {
                            log::warn!(
                                "sieve: cannot create {:?}: {why}; filed in INBOX",
                                f.mailbox
                            );
                            self.inbox_of(f.user)?
                        }
                        Err(e) => return Err(e),
                    }
                }
                None => self.inbox_of(f.user)?,
            };
            if done.contains(&mailbox) {
                continue;
            }
            done.push(mailbox);
            self.add_entry(mailbox, message, &f.flags)?;
        }
        Ok(())
    }

    /// `user`'s INBOX, re-created if missing.
    fn inbox_of(&mut self, user: UserId) -> Result<i64> {
        if let Some(mb) = query::mailbox(self.conn(), user, "INBOX")? {
            return Ok(mb.id);
        }
        if query::user_by_id(self.conn(), user)?.is_none() {
            return Err(StoreError::NotFound(format!("user {user}")));
        }
        self.create_mailbox(user, "INBOX", None)
    }
}

pub(crate) fn cut(id: &str) -> &str {
    if id.len() <= MAX_SEEN_ID {
        return id;
    }
    let mut end = MAX_SEEN_ID;
    while !id.is_char_boundary(end) {
        end -= 1;
    }
    &id[..end]
}

impl Reader {
    /// `user`'s scripts by name.
    ///
    /// # Errors
    /// Database errors.
    pub fn sieve_scripts(&self, user: UserId) -> Result<Vec<ScriptInfo>> {
        if let Some(pg) = self.pg() {
            return pg.sieve_scripts(user);
        }
        let mut st = self.conn().prepare_cached(
            "SELECT name, active FROM sieve_scripts WHERE user_id = ?1 ORDER BY name",
        )?;
        let rows = st.query_map([user], |r| {
            Ok(ScriptInfo {
                name: r.get(0)?,
                active: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The text of `user`'s script `name`.
    ///
    /// # Errors
    /// Database errors.
    pub fn sieve_script(&self, user: UserId, name: &str) -> Result<Option<Vec<u8>>> {
        if let Some(pg) = self.pg() {
            return pg.sieve_script(user, name);
        }
        Ok(self
            .conn()
            .prepare_cached("SELECT script FROM sieve_scripts WHERE user_id = ?1 AND name = ?2")?
            .query_row(params![user, name], |r| r.get(0))
            .optional()?)
    }

    /// `user`'s active script: its name and text.
    ///
    /// # Errors
    /// Database errors.
    pub fn active_sieve_script(&self, user: UserId) -> Result<Option<(String, Vec<u8>)>> {
        if let Some(pg) = self.pg() {
            return pg.active_sieve_script(user);
        }
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT name, script FROM sieve_scripts WHERE user_id = ?1 AND active = 1",
            )?
            .query_row([user], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    /// Whether `user` remembers `id` (unexpired).
    ///
    /// # Errors
    /// Database errors.
    pub fn sieve_id_seen(&self, user: UserId, id: &str) -> Result<bool> {
        if let Some(pg) = self.pg() {
            return pg.sieve_id_seen(user, id);
        }
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT EXISTS(SELECT 1 FROM sieve_seen WHERE user_id = ?1 AND id = ?2 AND expires > ?3)",
            )?
            .query_row(params![user, cut(id), unix_now()], |r| r.get(0))?)
    }
}
