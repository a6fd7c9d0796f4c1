//! Aliases and catch-alls on PostgreSQL: `aliases.rs`'s resolution and
//! checks, in this dialect (addresses compared ignoring case, as SQLite's
//! `COLLATE NOCASE` columns compare them).

use crate::aliases::{alias_address, resolve, Alias, Lookup, Resolution};
use crate::error::{Result, StoreError};
use crate::pg::PgConn;
use crate::types::UserId;

impl Lookup for PgConn {
    fn recipient(&self, address: &str) -> Result<Option<UserId>> {
        Ok(self.resolve_recipient(address)?.map(|u| u.id))
    }

    fn alias_rows(&self, address: &str) -> Result<Vec<String>> {
        Ok(self
            .rows(
                "SELECT target FROM aliases WHERE lower(address) = lower($1) ORDER BY lower(target)",
                &[&address],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn local_domain(&self, domain: &str) -> Result<bool> {
        let suffix = format!("@{}", domain.to_ascii_lowercase());
        Ok(self
            .one(
                "SELECT EXISTS(SELECT 1 FROM users WHERE right(lower(address), length($1)) = $1)
                     OR EXISTS(SELECT 1 FROM aliases WHERE right(lower(address), length($1)) = $1)",
                &[&suffix],
            )?
            .get(0))
    }
}

impl PgConn {
    /// `aliases.rs`'s `resolve`.
    pub(crate) fn route(&self, address: &str) -> Result<Resolution> {
        resolve(self, address)
    }

    /// `aliases.rs`'s `Tx::add_alias` (writer only).
    pub(crate) fn add_alias(&self, address: &str, targets: &[String]) -> Result<usize> {
        let address = alias_address(address)?;
        if targets.is_empty() {
            return Err(StoreError::Invalid("an alias needs a target".into()));
        }
        if self.user(&address)?.is_some() {
            return Err(StoreError::Invalid(format!(
                "{address} is a user; an alias must be another address"
            )));
        }
        let catch_all = address.starts_with('@');
        let mut added = 0;
        for target in targets {
            let target = alias_address(target)?;
            if target.starts_with('@') {
                return Err(StoreError::Invalid(format!(
                    "target {target} is a domain; targets are addresses"
                )));
            }
            added += self.exec(
                "INSERT INTO aliases(address, target) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&address, &target],
            )? as usize;
        }
        let probe = if catch_all {
            format!("\u{1}catch-all-probe{address}")
        } else {
            address.clone()
        };
        if let Resolution::Refused(why) = self.route(&probe)? {
            return Err(StoreError::Invalid(why.replace("\u{1}catch-all-probe", "")));
        }
        for target in targets {
            let target = alias_address(target)?;
            let domain = target.rsplit_once('@').map_or("", |(_, d)| d);
            match self.route(&target)? {
                Resolution::Refused(why) => return Err(StoreError::Invalid(why)),
                Resolution::Unknown if self.local_domain(domain)? => {
                    return Err(StoreError::Invalid(format!(
                        "{target} is no user or alias here"
                    )))
                }
                _ => {}
            }
        }
        Ok(added)
    }

    /// `aliases.rs`'s `Tx::delete_alias` (writer only).
    pub(crate) fn delete_alias(&self, address: &str, targets: &[String]) -> Result<usize> {
        let address = alias_address(address)?;
        let n = if targets.is_empty() {
            self.exec(
                "DELETE FROM aliases WHERE lower(address) = lower($1)",
                &[&address],
            )?
        } else {
            let mut n = 0;
            for t in targets {
                n += self.exec(
                    "DELETE FROM aliases WHERE lower(address) = lower($1) AND lower(target) = lower($2)",
                    &[&address, &t.trim()],
                )?;
            }
            n
        };
        if n == 0 {
            return Err(StoreError::NotFound(format!("alias {address}")));
        }
        Ok(n as usize)
    }

    /// All alias rows, by address then target.
    pub(crate) fn aliases(&self) -> Result<Vec<Alias>> {
        Ok(self
            .rows(
                "SELECT address, target FROM aliases ORDER BY lower(address), lower(target)",
                &[],
            )?
            .iter()
            .map(|r| Alias {
                address: r.get(0),
                target: r.get(1),
            })
            .collect())
    }
}
