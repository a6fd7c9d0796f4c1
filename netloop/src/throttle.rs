//! Failed-login throttling per client address, shared by both servers.
//!
//! Each authentication failure from an address is answered only after a
//! delay that doubles with every failure in the window (like Dovecot's
//! `auth_penalty`); after `max_failures` failures within `window` the
//! address gets a temporary refusal (SMTP `454 4.7.0`, IMAP `NO
//! [UNAVAILABLE]`) until the window has passed since its first failure. A
//! success clears the address. The table is bounded: when full, the oldest
//! entries are dropped first. No protocol knowledge lives here; sessions
//! apply the delay with [`crate::Io::complete_after`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Throttle settings. Every value has a sane default.
#[derive(Debug, Clone)]
pub struct ThrottleConfig {
    /// Failures within `window` after which the address is refused.
    pub max_failures: u32,
    /// How long failures are remembered (and a refusal lasts).
    pub window: Duration,
    /// Delay before answering the first failure; doubles per failure.
    pub base_delay: Duration,
    /// The delay never exceeds this.
    pub max_delay: Duration,
    /// Addresses tracked at once (memory bound under a distributed attack).
    pub max_tracked: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            max_failures: 10,
            window: Duration::from_secs(15 * 60),
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            max_tracked: 100_000,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    first: Instant,
}

/// Counts failed logins per client address. Share one between servers
/// (`Arc<Throttle>`); all methods take `&self`.
#[derive(Debug)]
pub struct Throttle {
    config: ThrottleConfig,
    table: Mutex<HashMap<IpAddr, Entry>>,
}

impl Throttle {
    /// A throttle with these settings.
    pub fn new(config: ThrottleConfig) -> Arc<Self> {
        Arc::new(Throttle {
            config,
            table: Mutex::new(HashMap::new()),
        })
    }

    /// The settings in force.
    pub fn config(&self) -> &ThrottleConfig {
        &self.config
    }

    fn with_table<R>(&self, f: impl FnOnce(&mut HashMap<IpAddr, Entry>) -> R) -> R {
        // The table holds counters only; a panic elsewhere cannot leave it
        // inconsistent, so a poisoned lock is still usable.
        let mut t = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut t)
    }

    /// True if `ip` has failed too often recently and must be refused now.
    pub fn is_blocked(&self, ip: IpAddr) -> bool {
        let now = Instant::now();
        self.with_table(|t| match t.get(&ip) {
            Some(e) if now.duration_since(e.first) < self.config.window => {
                e.failures >= self.config.max_failures
            }
            Some(_) => {
                t.remove(&ip);
                false
            }
            None => false,
        })
    }

    /// Count a failure from `ip`; returns how long to wait before answering it.
    pub fn record_failure(&self, ip: IpAddr) -> Duration {
        let now = Instant::now();
        let cfg = &self.config;
        let failures = self.with_table(|t| {
            if t.len() >= cfg.max_tracked && !t.contains_key(&ip) {
                t.retain(|_, e| now.duration_since(e.first) < cfg.window);
                if t.len() >= cfg.max_tracked {
                    if let Some(oldest) = t.iter().min_by_key(|(_, e)| e.first).map(|(k, _)| *k) {
                        t.remove(&oldest);
                    }
                }
            }
            let e = t.entry(ip).or_insert(Entry {
                failures: 0,
                first: now,
            });
            if now.duration_since(e.first) >= cfg.window {
                *e = Entry {
                    failures: 0,
                    first: now,
                };
            }
            e.failures = e.failures.saturating_add(1);
            e.failures
        });
        let doublings = failures.saturating_sub(1).min(16);
        cfg.base_delay
            .saturating_mul(1u32 << doublings)
            .min(cfg.max_delay)
    }

    /// A successful login from `ip`: forget its failures.
    pub fn record_success(&self, ip: IpAddr) {
        self.with_table(|t| {
            t.remove(&ip);
        });
    }

    /// Addresses currently tracked (for tests and diagnostics).
    pub fn tracked(&self) -> usize {
        self.with_table(|t| t.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn delay_doubles_up_to_the_cap_then_the_address_is_blocked() {
        let t = Throttle::new(ThrottleConfig {
            max_failures: 4,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
            ..ThrottleConfig::default()
        });
        assert!(!t.is_blocked(ip(1)));
        assert_eq!(t.record_failure(ip(1)), Duration::from_millis(100));
        assert_eq!(t.record_failure(ip(1)), Duration::from_millis(200));
        assert_eq!(t.record_failure(ip(1)), Duration::from_millis(300));
        assert!(!t.is_blocked(ip(1)));
        t.record_failure(ip(1));
        assert!(t.is_blocked(ip(1)));
        assert!(!t.is_blocked(ip(2)), "other addresses are unaffected");
        t.record_success(ip(1));
        assert!(!t.is_blocked(ip(1)));
    }

    #[test]
    fn failures_expire_after_the_window() {
        let t = Throttle::new(ThrottleConfig {
            max_failures: 1,
            window: Duration::from_millis(50),
            ..ThrottleConfig::default()
        });
        t.record_failure(ip(1));
        assert!(t.is_blocked(ip(1)));
        std::thread::sleep(Duration::from_millis(80));
        assert!(!t.is_blocked(ip(1)));
        assert_eq!(t.tracked(), 0);
    }

    #[test]
    fn the_table_stays_bounded() {
        let t = Throttle::new(ThrottleConfig {
            max_tracked: 3,
            ..ThrottleConfig::default()
        });
        for n in 0..10 {
            t.record_failure(ip(n));
        }
        assert_eq!(t.tracked(), 3);
    }
}
