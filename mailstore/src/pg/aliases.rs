//! Aliases and catch-alls on PostgreSQL: `aliases.rs`'s resolution and
//! checks, in this dialect (addresses compared ignoring case, as SQLite's
//! `COLLATE NOCASE` columns compare them).

use crate::aliases::{alias_address, Alias, Resolution, Route};
use crate::aliases::{MAX_ALIAS_DEPTH, MAX_ALIAS_TARGETS};
use crate::error::{Result, StoreError};
use crate::pg::PgConn;

impl PgConn {
    /// Targets of the alias of exactly `address` (which may be `@domain`).
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

    /// Whether a user or an alias lives in `domain`.
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

    /// Its own alias, its `+tag`-less base's, or its domain's catch-all.
    fn alias_targets(&self, address: &str) -> Result<Vec<String>> {
        let found = self.alias_rows(address)?;
        if !found.is_empty() {
            return Ok(found);
        }
        let Some((local, domain)) = address.rsplit_once('@') else {
            return Ok(Vec::new());
        };
        if let Some((base, _tag)) = local.split_once('+') {
            if !base.is_empty() {
                let found = self.alias_rows(&format!("{base}@{domain}"))?;
                if !found.is_empty() {
                    return Ok(found);
                }
            }
        }
        if local.is_empty() {
            return Ok(Vec::new());
        }
        self.alias_rows(&format!("@{domain}"))
    }

    /// `aliases.rs`'s `resolve`.
    pub(crate) fn route(&self, address: &str) -> Result<Resolution> {
        let mut ex = Expand {
            pg: self,
            route: Route::default(),
            path: Vec::new(),
            visited: 0,
        };
        match ex.expand(address.trim()) {
            Ok(true) if ex.route.is_empty() => Ok(Resolution::Unknown),
            Ok(true) => Ok(Resolution::Route(ex.route)),
            Ok(false) => Ok(Resolution::Unknown),
            Err(Ok(why)) => Ok(Resolution::Refused(why)),
            Err(Err(e)) => Err(e),
        }
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

struct Expand<'c> {
    pg: &'c PgConn,
    route: Route,
    path: Vec<String>,
    visited: usize,
}

impl Expand<'_> {
    fn expand(&mut self, address: &str) -> std::result::Result<bool, Result<String>> {
        if let Some(u) = self.pg.resolve_recipient(address).map_err(Err)? {
            self.route.add_user(u.id);
            return Ok(true);
        }
        if let Some(at) = self
            .path
            .iter()
            .position(|p| p.eq_ignore_ascii_case(address))
        {
            let mut chain = self.path[at..].to_vec();
            chain.push(address.to_owned());
            return Err(Ok(format!("alias loop: {}", chain.join(" -> "))));
        }
        let found = self.pg.alias_targets(address).map_err(Err)?;
        if found.is_empty() {
            return Ok(false);
        }
        if self.path.len() >= MAX_ALIAS_DEPTH {
            return Err(Ok(format!(
                "aliases nested deeper than {MAX_ALIAS_DEPTH} at {address}"
            )));
        }
        self.path.push(address.to_owned());
        for target in found {
            self.visited += 1;
            if self.visited > MAX_ALIAS_TARGETS {
                return Err(Ok(format!(
                    "aliases expand to more than {MAX_ALIAS_TARGETS} targets"
                )));
            }
            if self.expand(&target)? {
                continue;
            }
            let domain = target.rsplit_once('@').map_or("", |(_, d)| d);
            if self.pg.local_domain(domain).map_err(Err)? {
                log::warn!("alias {address}: target {target} is no user or alias here; skipped");
            } else {
                self.route.add_forward(&target);
            }
        }
        self.path.pop();
        Ok(true)
    }
}
