//! Aliases and per-domain catch-alls: where mail to an address that is no
//! user's goes. An alias maps an address (`info@example.org`) or a whole
//! domain (`@example.org`, the catch-all) to targets: users, other
//! aliases, or addresses elsewhere (for the outbound queue).
//!
//! Resolution ([`Reader::route`], [`Tx::route`]) follows, in order: a
//! user of that address (with `+tag` subaddressing), an alias of that exact
//! address, an alias of its `+tag`-less base, the domain's catch-all. Each
//! recipient expands once: two aliases reaching the same user give that
//! user one copy. Expansion is bounded ([`MAX_ALIAS_DEPTH`] levels,
//! [`MAX_ALIAS_TARGETS`] targets) and a loop is refused, so a cycle made
//! behind the checks of [`Tx::add_alias`] (e.g. two catch-alls pointing at
//! each other's domains) refuses the recipient instead of looping.
//!
//! A target whose domain is one of ours (a user or an alias lives there)
//! but which resolves to nothing (a user deleted since) is skipped and
//! logged; other unresolved targets are external.

use rusqlite::params;

use crate::error::{Result, StoreError};
use crate::query;
use crate::reader::Reader;
use crate::tx::Tx;
use crate::types::UserId;

/// Deepest chain of aliases followed (alias → alias → ... → user).
pub const MAX_ALIAS_DEPTH: usize = 10;
/// Most targets visited while expanding one recipient.
pub const MAX_ALIAS_TARGETS: usize = 1000;

/// Where mail to one recipient goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    /// Local users, each once.
    pub users: Vec<UserId>,
    /// Addresses elsewhere (for the outbound queue), each once
    /// (compared case-insensitively).
    pub forward: Vec<String>,
}

impl Route {
    /// True if the route delivers nowhere.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.forward.is_empty()
    }

    pub(crate) fn add_user(&mut self, user: UserId) {
        if !self.users.contains(&user) {
            self.users.push(user);
        }
    }

    pub(crate) fn add_forward(&mut self, addr: &str) {
        if !self.forward.iter().any(|f| f.eq_ignore_ascii_case(addr)) {
            self.forward.push(addr.to_owned());
        }
    }
}

/// The outcome of resolving a recipient address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// No user, alias or catch-all takes this address.
    Unknown,
    /// Delivered as this route says.
    Route(Route),
    /// The aliases behind this address loop or expand past the bounds;
    /// the text says how (for the reply and the log).
    Refused(String),
}

/// One alias row: an address (or `@domain`) and one of its targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    /// `local@domain`, or `@domain` for the domain's catch-all.
    pub address: String,
    /// A user, another alias, or an address elsewhere.
    pub target: String,
}

/// What alias resolution asks of a backend; [`resolve`] does the rest,
/// the same on both.
pub(crate) trait Lookup {
    /// The user `address` (with `+tag` subaddressing) delivers to.
    fn recipient(&self, address: &str) -> Result<Option<UserId>>;
    /// Targets of the alias of exactly `address` (which may be `@domain`).
    fn alias_rows(&self, address: &str) -> Result<Vec<String>>;
    /// Whether a user or an alias lives in `domain`.
    fn local_domain(&self, domain: &str) -> Result<bool>;
}

impl Lookup for rusqlite::Connection {
    fn recipient(&self, address: &str) -> Result<Option<UserId>> {
        Ok(query::resolve_recipient(self, address)?.map(|u| u.id))
    }

    fn alias_rows(&self, address: &str) -> Result<Vec<String>> {
        let mut st =
            self.prepare_cached("SELECT target FROM aliases WHERE address = ?1 ORDER BY target")?;
        let rows = st.query_map([address], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn local_domain(&self, domain: &str) -> Result<bool> {
        let like = format!("%@{}", domain.replace(['%', '_'], ""));
        Ok(self
            .prepare_cached(
                "SELECT EXISTS(SELECT 1 FROM users WHERE address LIKE ?1)
                     OR EXISTS(SELECT 1 FROM aliases WHERE address LIKE ?1)",
            )?
            .query_row([like], |r| r.get(0))?)
    }
}

/// The alias targets that `address` (no user's) expands to: its own
/// alias, its `+tag`-less base's, or its domain's catch-all.
fn alias_targets(db: &(impl Lookup + ?Sized), address: &str) -> Result<Vec<String>> {
    let found = db.alias_rows(address)?;
    if !found.is_empty() {
        return Ok(found);
    }
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Ok(Vec::new());
    };
    if let Some((base, _tag)) = local.split_once('+') {
        if !base.is_empty() {
            let found = db.alias_rows(&format!("{base}@{domain}"))?;
            if !found.is_empty() {
                return Ok(found);
            }
        }
    }
    if local.is_empty() {
        return Ok(Vec::new());
    }
    db.alias_rows(&format!("@{domain}"))
}

/// Expansion state for one recipient.
struct Expand<'c, L: ?Sized> {
    db: &'c L,
    route: Route,
    /// The aliases being expanded, outermost first (for loop detection).
    path: Vec<String>,
    visited: usize,
}

impl<L: Lookup + ?Sized> Expand<'_, L> {
    /// Add what `address` reaches to the route; `Ok(false)` if nothing
    /// takes it, `Err(Ok(why))` for a loop or a bound.
    fn expand(&mut self, address: &str) -> std::result::Result<bool, Result<String>> {
        if let Some(u) = self.db.recipient(address).map_err(Err)? {
            self.route.add_user(u);
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
        let found = alias_targets(self.db, address).map_err(Err)?;
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
            if self.db.local_domain(domain).map_err(Err)? {
                log::warn!("alias {address}: target {target} is no user or alias here; skipped");
            } else {
                self.route.add_forward(&target);
            }
        }
        self.path.pop();
        Ok(true)
    }
}

/// Resolve `address` on any connection of either backend (see the module
/// docs).
pub(crate) fn resolve(db: &(impl Lookup + ?Sized), address: &str) -> Result<Resolution> {
    let address = address.trim();
    let mut ex = Expand {
        db,
        route: Route::default(),
        path: Vec::new(),
        visited: 0,
    };
    match ex.expand(address) {
        Ok(true) if ex.route.is_empty() => Ok(Resolution::Unknown),
        Ok(true) => Ok(Resolution::Route(ex.route)),
        Ok(false) => Ok(Resolution::Unknown),
        Err(Ok(why)) => Ok(Resolution::Refused(why)),
        Err(Err(e)) => Err(e),
    }
}

/// `local@domain` or `@domain`, lower-cased domain; else an error.
pub(crate) fn alias_address(address: &str) -> Result<String> {
    let bad = || {
        StoreError::Invalid(format!(
            "'{address}' is not an address like info@example.org or a catch-all like @example.org"
        ))
    };
    let (local, domain) = address.trim().rsplit_once('@').ok_or_else(bad)?;
    if domain.is_empty()
        || !domain.contains(|c: char| c.is_ascii_alphanumeric())
        || address.chars().any(|c| c.is_whitespace() || c.is_control())
        || local.contains(['<', '>', '@'])
        || domain.contains(['<', '>'])
    {
        return Err(bad());
    }
    Ok(format!("{local}@{}", domain.to_ascii_lowercase()))
}

impl Tx<'_> {
    /// [`Reader::route`] inside this transaction.
    ///
    /// # Errors
    /// Only database errors.
    pub fn route(&self, address: &str) -> Result<Resolution> {
        if let Some(pg) = self.pg {
            return pg.route(address);
        }
        resolve(self.conn(), address)
    }

    /// Point `address` (or `@domain`, the catch-all) at `targets` too.
    /// Returns how many targets were new. Refused (nothing changed) when
    /// `address` is a user's, a target is an unknown address in one of our
    /// domains, or the aliases would loop or pass the expansion bounds.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] with the reason, or database errors.
    pub fn add_alias(&mut self, address: &str, targets: &[String]) -> Result<usize> {
        if let Some(pg) = self.pg {
            return pg.add_alias(address, targets);
        }
        let address = alias_address(address)?;
        if targets.is_empty() {
            return Err(StoreError::Invalid("an alias needs a target".into()));
        }
        if query::user(self.conn(), &address)?.is_some() {
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
            added += self.conn().execute(
                "INSERT OR IGNORE INTO aliases(address, target) VALUES (?1, ?2)",
                params![address, target],
            )?;
        }
        // A loop through the new alias itself (for a catch-all, through an
        // address it takes), reported from it.
        let probe = if catch_all {
            format!("\u{1}catch-all-probe{address}")
        } else {
            address.clone()
        };
        if let Resolution::Refused(why) = resolve(self.conn(), &probe)? {
            return Err(StoreError::Invalid(why.replace("\u{1}catch-all-probe", "")));
        }
        // Every target must lead somewhere (and a loop below one, made
        // behind these checks, is refused with its chain).
        for target in targets {
            let target = alias_address(target)?;
            let domain = target.rsplit_once('@').map_or("", |(_, d)| d);
            match resolve(self.conn(), &target)? {
                Resolution::Refused(why) => return Err(StoreError::Invalid(why)),
                Resolution::Unknown if self.conn().local_domain(domain)? => {
                    return Err(StoreError::Invalid(format!(
                        "{target} is no user or alias here"
                    )))
                }
                _ => {}
            }
        }
        Ok(added)
    }

    /// Remove `address`'s alias: the given targets, or all of them.
    /// Returns how many were removed.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] if nothing matched.
    pub fn delete_alias(&mut self, address: &str, targets: &[String]) -> Result<usize> {
        if let Some(pg) = self.pg {
            return pg.delete_alias(address, targets);
        }
        let address = alias_address(address)?;
        let n = if targets.is_empty() {
            self.conn()
                .execute("DELETE FROM aliases WHERE address = ?1", [&address])?
        } else {
            let mut n = 0;
            for t in targets {
                n += self.conn().execute(
                    "DELETE FROM aliases WHERE address = ?1 AND target = ?2",
                    params![address, t.trim()],
                )?;
            }
            n
        };
        if n == 0 {
            return Err(StoreError::NotFound(format!("alias {address}")));
        }
        Ok(n)
    }
}

impl Reader {
    /// Where mail to `address` goes: a user (with `+tag`), an alias or a
    /// catch-all, expanded once per recipient (see the module docs).
    ///
    /// # Errors
    /// Only database errors; loops and bounds are [`Resolution::Refused`].
    pub fn route(&self, address: &str) -> Result<Resolution> {
        if let Some(pg) = self.pg() {
            return pg.route(address);
        }
        resolve(self.conn(), address)
    }

    /// All alias rows, by address then target.
    ///
    /// # Errors
    /// Database errors.
    pub fn aliases(&self) -> Result<Vec<Alias>> {
        if let Some(pg) = self.pg() {
            return pg.aliases();
        }
        let mut st = self
            .conn()
            .prepare_cached("SELECT address, target FROM aliases ORDER BY address, target")?;
        let rows = st.query_map([], |r| {
            Ok(Alias {
                address: r.get(0)?,
                target: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
