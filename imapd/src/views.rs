//! Shared sequence-number maps (RFC 3501 §2.3.1.2): sessions that have the
//! same mailbox selected and are in sync with the same HIGHESTMODSEQ hold
//! one copy of its message sequence number -> UID map between them.
//!
//! Each session owns its map as an `Arc<[Uid]>` and never changes it in
//! place: a change (arrivals, announced expunges) builds a new one. After
//! SELECT, and after a sync that leaves nothing held back, the map is
//! exactly "the mailbox's UIDs at that modseq"; the session then
//! [`Views::intern`]s it under (mailbox, UIDVALIDITY, modseq): it gets the
//! copy another session already published, or publishes its own. So ten
//! thousand IDLE sessions on one INBOX share one map, and when a message
//! arrives each builds its new map, finds the first one's, and drops its
//! own at once.
//!
//! The registry holds only weak references (a map lives as long as a
//! session uses it) and a few of the newest versions per mailbox. Sharing
//! is decided by comparing contents, so a wrong key can cost memory but
//! never change what a client sees. No protocol syntax, no store access.

use mailstore::{MailboxId, Uid};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

/// Versions kept per mailbox (sessions may be a commit apart while they
/// catch up with a burst of arrivals).
const VERSIONS: usize = 4;

/// Interns between sweeps of mailboxes whose maps are all gone.
const SWEEP_EVERY: u32 = 1024;

/// One published map.
struct View {
    uidvalidity: u32,
    modseq: u64,
    uids: Weak<[Uid]>,
}

#[derive(Default)]
struct Inner {
    by_mailbox: HashMap<MailboxId, Vec<View>>,
    since_sweep: u32,
}

/// The registry of shared maps. See the module docs.
#[derive(Default)]
pub struct Views {
    inner: Mutex<Inner>,
}

impl Views {
    /// An empty registry.
    pub fn new() -> Views {
        Views::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `uids` is exactly the UIDs of `mailbox` (with `uidvalidity`) at
    /// HIGHESTMODSEQ `modseq`: replace it by the registry's equal copy if
    /// there is one, else publish it.
    pub fn intern(&self, mailbox: MailboxId, uidvalidity: u32, modseq: u64, uids: &mut Arc<[Uid]>) {
        let mut inner = self.lock();
        inner.since_sweep += 1;
        if inner.since_sweep >= SWEEP_EVERY {
            inner.since_sweep = 0;
            inner.by_mailbox.retain(|_, list| {
                list.retain(|v| v.uids.strong_count() > 0);
                !list.is_empty()
            });
        }
        let list = inner.by_mailbox.entry(mailbox).or_default();
        // A different UIDVALIDITY is a mailbox that was deleted and whose
        // id came back: its maps are of no use any more.
        list.retain(|v| v.uidvalidity == uidvalidity && v.uids.strong_count() > 0);
        if let Some(v) = list.iter().find(|v| v.modseq == modseq) {
            if let Some(shared) = v.uids.upgrade() {
                if !Arc::ptr_eq(&shared, uids) && *shared == **uids {
                    *uids = shared;
                }
                return;
            }
        }
        if list.len() >= VERSIONS && list.iter().all(|v| v.modseq > modseq) {
            return;
        }
        list.push(View {
            uidvalidity,
            modseq,
            uids: Arc::downgrade(uids),
        });
        list.sort_unstable_by_key(|v| std::cmp::Reverse(v.modseq));
        list.truncate(VERSIONS);
    }

    /// Number of live published maps (for tests).
    pub fn live(&self) -> usize {
        self.lock()
            .by_mailbox
            .values()
            .flatten()
            .filter(|v| v.uids.strong_count() > 0)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: &[Uid]) -> Arc<[Uid]> {
        Arc::from(v.to_vec())
    }

    #[test]
    fn equal_maps_at_the_same_modseq_become_one() {
        let views = Views::new();
        let mut a = map(&[1, 2, 3]);
        let mut b = map(&[1, 2, 3]);
        views.intern(7, 1, 10, &mut a);
        views.intern(7, 1, 10, &mut b);
        assert!(Arc::ptr_eq(&a, &b));
        // Another modseq or UIDVALIDITY is another key.
        let mut c = map(&[1, 2, 3]);
        views.intern(7, 1, 11, &mut c);
        assert!(!Arc::ptr_eq(&a, &c));
        let mut d = map(&[1, 2, 3]);
        views.intern(7, 2, 11, &mut d);
        assert!(!Arc::ptr_eq(&c, &d));
    }

    #[test]
    fn different_contents_are_never_shared() {
        let views = Views::new();
        let mut a = map(&[1, 2, 3]);
        let mut b = map(&[1, 2, 4]);
        views.intern(7, 1, 10, &mut a);
        views.intern(7, 1, 10, &mut b);
        assert_eq!(&*b, &[1, 2, 4]);
        assert!(!Arc::ptr_eq(&a, &b));
    }

    #[test]
    fn maps_are_dropped_with_their_last_session_and_old_versions_go() {
        let views = Views::new();
        let mut a = map(&[1]);
        views.intern(7, 1, 10, &mut a);
        assert_eq!(views.live(), 1);
        drop(a);
        assert_eq!(views.live(), 0);
        let mut keep = Vec::new();
        for m in 0..10u64 {
            let mut x = map(&[1, 2]);
            views.intern(7, 1, 20 + m, &mut x);
            keep.push(x);
        }
        assert_eq!(views.live(), VERSIONS);
        // Older than every kept version: not published.
        let mut old = map(&[1]);
        views.intern(7, 1, 5, &mut old);
        assert_eq!(views.live(), VERSIONS);
    }
}
