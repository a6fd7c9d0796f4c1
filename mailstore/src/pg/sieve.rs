//! Sieve scripts and the ids scripts remember, on PostgreSQL: `sieve.rs`
//! in this dialect (the same limits and names rules).

use crate::error::{Result, StoreError};
use crate::pg::PgConn;
use crate::sieve::{check_name, cut, ScriptInfo, MAX_SCRIPTS, MAX_SCRIPT_SIZE, MAX_SEEN_IDS};
use crate::types::UserId;

impl PgConn {
    fn sieve_script_exists(&self, user: UserId, name: &str) -> Result<bool> {
        Ok(self
            .one(
                "SELECT EXISTS(SELECT 1 FROM sieve_scripts WHERE user_id = $1 AND name = $2)",
                &[&user, &name],
            )?
            .get(0))
    }

    pub(crate) fn put_sieve_script(&self, user: UserId, name: &str, script: &[u8]) -> Result<()> {
        check_name(name)?;
        if script.len() > MAX_SCRIPT_SIZE {
            return Err(StoreError::Invalid(format!(
                "script is {} bytes, more than {MAX_SCRIPT_SIZE}",
                script.len()
            )));
        }
        let exists = self.sieve_script_exists(user, name)?;
        let count: i64 = self
            .one(
                "SELECT count(*) FROM sieve_scripts WHERE user_id = $1",
                &[&user],
            )?
            .get(0);
        if !exists && count as usize >= MAX_SCRIPTS {
            return Err(StoreError::Invalid(format!(
                "at most {MAX_SCRIPTS} scripts per user"
            )));
        }
        match self.guarded(
            "INSERT INTO sieve_scripts(user_id, name, script) VALUES ($1, $2, $3)
             ON CONFLICT (user_id, name) DO UPDATE SET script = excluded.script",
            &[&user, &name, &script],
        )? {
            Ok(_) => Ok(()),
            Err(e) if super::is_fk_violation(&e) => {
                Err(StoreError::NotFound(format!("user {user}")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Which script is active changes with the user's row locked, so a
    /// batch delivering to the user knows whether one is without asking
    /// again (see [`PgConn::users_with_active_script`]).
    pub(crate) fn activate_sieve_script(&self, user: UserId, name: Option<&str>) -> Result<()> {
        self.lock_users(&[user])?;
        if let Some(name) = name {
            if !self.sieve_script_exists(user, name)? {
                return Err(StoreError::NotFound(format!("script {name:?}")));
            }
        }
        self.exec(
            "UPDATE sieve_scripts SET active = (name IS NOT DISTINCT FROM $2 AND $2 IS NOT NULL)::int
             WHERE user_id = $1",
            &[&user, &name],
        )?;
        self.script_change(user, name.is_some());
        Ok(())
    }

    pub(crate) fn delete_sieve_script(&self, user: UserId, name: &str) -> Result<()> {
        let active: Option<i64> = self
            .opt(
                "SELECT active FROM sieve_scripts WHERE user_id = $1 AND name = $2",
                &[&user, &name],
            )?
            .map(|r| r.get(0));
        match active {
            None => Err(StoreError::NotFound(format!("script {name:?}"))),
            Some(a) if a != 0 => Err(StoreError::Invalid(format!("script {name:?} is active"))),
            Some(_) => {
                self.exec(
                    "DELETE FROM sieve_scripts WHERE user_id = $1 AND name = $2",
                    &[&user, &name],
                )?;
                Ok(())
            }
        }
    }

    pub(crate) fn rename_sieve_script(&self, user: UserId, from: &str, to: &str) -> Result<()> {
        check_name(to)?;
        if !self.sieve_script_exists(user, from)? {
            return Err(StoreError::NotFound(format!("script {from:?}")));
        }
        if self.sieve_script_exists(user, to)? {
            return Err(StoreError::Exists(format!("script {to:?}")));
        }
        self.exec(
            "UPDATE sieve_scripts SET name = $3 WHERE user_id = $1 AND name = $2",
            &[&user, &from, &to],
        )?;
        Ok(())
    }

    pub(crate) fn remember_sieve_id(&self, user: UserId, id: &str, expires: i64) -> Result<bool> {
        let id = cut(id).replace('\0', "");
        let now = crate::tx::now();
        self.exec(
            "DELETE FROM sieve_seen WHERE user_id = $1 AND expires <= $2",
            &[&user, &now],
        )?;
        let fresh = self.exec(
            "INSERT INTO sieve_seen(user_id, id, expires) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&user, &id, &expires],
        )? == 1;
        if fresh {
            self.exec(
                "DELETE FROM sieve_seen WHERE user_id = $1 AND id IN (
                     SELECT id FROM sieve_seen WHERE user_id = $1
                     ORDER BY expires DESC OFFSET $2)",
                &[&user, &(MAX_SEEN_IDS as i64)],
            )?;
        }
        Ok(fresh)
    }

    pub(crate) fn sieve_scripts(&self, user: UserId) -> Result<Vec<ScriptInfo>> {
        Ok(self
            .rows(
                "SELECT name, active FROM sieve_scripts WHERE user_id = $1 ORDER BY name COLLATE \"C\"",
                &[&user],
            )?
            .iter()
            .map(|r| ScriptInfo {
                name: r.get(0),
                active: r.get::<_, i64>(1) != 0,
            })
            .collect())
    }

    pub(crate) fn sieve_script(&self, user: UserId, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .opt(
                "SELECT script FROM sieve_scripts WHERE user_id = $1 AND name = $2",
                &[&user, &name],
            )?
            .map(|r| r.get(0)))
    }

    pub(crate) fn active_sieve_script(&self, user: UserId) -> Result<Option<(String, Vec<u8>)>> {
        Ok(self
            .opt(
                "SELECT name, script FROM sieve_scripts WHERE user_id = $1 AND active = 1",
                &[&user],
            )?
            .map(|r| (r.get(0), r.get(1))))
    }

    pub(crate) fn sieve_id_seen(&self, user: UserId, id: &str) -> Result<bool> {
        let id = cut(id).replace('\0', "");
        Ok(self
            .one(
                "SELECT EXISTS(SELECT 1 FROM sieve_seen WHERE user_id = $1 AND id = $2 AND expires > $3)",
                &[&user, &id, &crate::tx::now()],
            )?
            .get(0))
    }
}
