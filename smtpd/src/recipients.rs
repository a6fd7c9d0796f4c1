//! A short-lived cache of RCPT lookups (RFC 5321 §4.1.1.3), so a burst of
//! mail to the same addresses answers RCPT on the event loop instead of a
//! round trip through a store reader thread for every message.
//!
//! An answer is the address's route: its user, or what its alias or its
//! domain's catch-all expands to. Only positive answers are kept, each for [`TTL`]: a user added is found
//! at once; a user deleted (even by `minimail user del` in another process)
//! may still be accepted at RCPT for up to [`TTL`], and then the commit
//! after DATA fails with a temporary error (451) because the user is gone
//! — nothing is lost or misdelivered, as user ids are never reused (see
//! `mailstore`'s `create_user`). The cache is bounded by [`MAX_ENTRIES`].
//!
//! Also here: [`SieveUsers`], the users last seen with an active Sieve
//! script (a hint for the order of work at delivery, never for its
//! outcome).

use mailstore::{Route, UserId};
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a positive lookup is trusted.
pub const TTL: Duration = Duration::from_secs(2);
/// Most addresses remembered (past it, stale entries are dropped, and if
/// none is stale the cache starts over).
pub const MAX_ENTRIES: usize = 4096;

/// Addresses recently resolved to a route (users, alias targets), by the
/// exact RCPT address.
#[derive(Debug, Default)]
pub struct RecipientCache {
    map: Mutex<HashMap<String, (Route, Instant)>>,
}

impl RecipientCache {
    /// The route `addr` resolved to less than [`TTL`] ago.
    pub fn get(&self, addr: &str, now: Instant) -> Option<Route> {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(addr)
            .filter(|(_, at)| now.saturating_duration_since(*at) < TTL)
            .map(|(route, _)| route.clone())
    }

    /// Remember that `addr` resolved to `route` at `now`.
    pub fn put(&self, addr: &str, route: Route, now: Instant) {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_ENTRIES && !map.contains_key(addr) {
            map.retain(|_, (_, at)| now.saturating_duration_since(*at) < TTL);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(addr.to_owned(), (route, now));
    }
}

/// Most users [`SieveUsers`] remembers (past it, it starts over).
pub const MAX_SIEVE_USERS: usize = 65_536;

/// Users last seen with an active Sieve script: their mail is planned by
/// the script before the commit (see `deliver.rs`). Only a hint for the
/// order of work, never for the outcome: mail for a user not in the set
/// goes to the writer, whose job checks for a script in its own
/// transaction and hands the message back for planning if there is one
/// (the user is then added); a user whose planning finds no script is
/// removed. Bounded by [`MAX_SIEVE_USERS`].
#[derive(Debug, Default)]
pub struct SieveUsers {
    set: Mutex<HashSet<UserId>>,
}

impl SieveUsers {
    /// True if any of `users` was last seen with an active script.
    pub fn any(&self, users: &[UserId]) -> bool {
        let set = self.set.lock().unwrap_or_else(PoisonError::into_inner);
        !set.is_empty() && users.iter().any(|u| set.contains(u))
    }

    /// `users` have an active script.
    pub fn add(&self, users: &[UserId]) {
        let mut set = self.set.lock().unwrap_or_else(PoisonError::into_inner);
        if set.len() + users.len() > MAX_SIEVE_USERS {
            set.clear();
        }
        set.extend(users.iter().copied());
    }

    /// `users` have no active script.
    pub fn remove(&self, users: &[UserId]) {
        if users.is_empty() {
            return;
        }
        let mut set = self.set.lock().unwrap_or_else(PoisonError::into_inner);
        for u in users {
            set.remove(u);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: mailstore::UserId) -> Route {
        Route {
            users: vec![id],
            forward: vec![],
        }
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let c = RecipientCache::default();
        let t0 = Instant::now();
        assert_eq!(c.get("a@x", t0), None);
        c.put("a@x", user(7), t0);
        assert_eq!(c.get("a@x", t0 + TTL / 2), Some(user(7)));
        assert_eq!(c.get("A@x", t0), None, "exact address only");
        assert_eq!(c.get("a@x", t0 + TTL), None);
    }

    #[test]
    fn size_is_bounded() {
        let c = RecipientCache::default();
        let t0 = Instant::now();
        for i in 0..MAX_ENTRIES * 3 {
            c.put(&format!("u{i}@x"), user(i as mailstore::UserId), t0);
            assert!(c.map.lock().unwrap().len() <= MAX_ENTRIES);
        }
        let last = MAX_ENTRIES * 3 - 1;
        assert_eq!(
            c.get(&format!("u{last}@x"), t0),
            Some(user(last as mailstore::UserId))
        );
    }

    #[test]
    fn sieve_users_are_bounded() {
        let s = SieveUsers::default();
        assert!(!s.any(&[1, 2]));
        s.add(&[2]);
        assert!(s.any(&[1, 2]));
        assert!(!s.any(&[1]));
        s.remove(&[2]);
        assert!(!s.any(&[2]));
        for i in 0..(MAX_SIEVE_USERS as UserId) * 2 {
            s.add(&[i]);
            assert!(s.set.lock().unwrap().len() <= MAX_SIEVE_USERS);
        }
        assert!(s.any(&[(MAX_SIEVE_USERS as UserId) * 2 - 1]));
    }
}
