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

/// How a published map was made from another, so that sessions holding
/// that same map and applying the same change adopt the result without
/// building or comparing anything (an arrival then costs each session
/// O(arrivals), not O(mailbox)).
struct Derivation {
    /// The map it was made from. A `Weak` keeps the allocation (not the
    /// contents) alive, so no other map can take its address while we
    /// compare addresses; dropped as soon as the parent is dead.
    parent: Weak<[Uid]>,
    removed: Vec<Uid>,
    appended: Vec<Uid>,
}

/// One published map.
struct View {
    uidvalidity: u32,
    modseq: u64,
    uids: Weak<[Uid]>,
    from: Option<Derivation>,
}

impl View {
    /// Still in use by some session? Also forgets a dead parent.
    fn alive(&mut self) -> bool {
        if self
            .from
            .as_ref()
            .is_some_and(|d| d.parent.strong_count() == 0)
        {
            self.from = None;
        }
        self.uids.strong_count() > 0
    }
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

/// `base` without `removed` (ascending), then `appended`.
pub fn build(base: &[Uid], removed: &[Uid], appended: &[Uid]) -> Arc<[Uid]> {
    let mut v = Vec::with_capacity(base.len() + appended.len());
    if removed.is_empty() {
        v.extend_from_slice(base);
    } else {
        v.extend(
            base.iter()
                .copied()
                .filter(|u| removed.binary_search(u).is_err()),
        );
    }
    v.extend_from_slice(appended);
    Arc::from(v)
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
        self.publish(mailbox, uidvalidity, modseq, uids, None);
    }

    /// The map `base` becomes when `removed` (ascending, all in `base`)
    /// go and `appended` (ascending, above all of `base`) arrive, which is
    /// exactly the mailbox's UIDs at `modseq`: another session's copy if it
    /// made the same change from the same map (or reached an equal map at
    /// `modseq`), else a new one, published.
    pub fn derive(
        &self,
        mailbox: MailboxId,
        uidvalidity: u32,
        modseq: u64,
        base: &Arc<[Uid]>,
        removed: &[Uid],
        appended: &[Uid],
    ) -> Arc<[Uid]> {
        {
            let inner = self.lock();
            let same = |v: &&View| {
                v.from.as_ref().is_some_and(|d| {
                    std::ptr::addr_eq(d.parent.as_ptr(), Arc::as_ptr(base))
                        && d.removed == removed
                        && d.appended == appended
                })
            };
            let found = inner.by_mailbox.get(&mailbox).and_then(|list| {
                list.iter()
                    .filter(|v| v.uidvalidity == uidvalidity)
                    .find(same)
                    .and_then(|v| v.uids.upgrade())
            });
            if let Some(shared) = found {
                return shared;
            }
        }
        let mut uids = build(base, removed, appended);
        let from = Derivation {
            parent: Arc::downgrade(base),
            removed: removed.to_vec(),
            appended: appended.to_vec(),
        };
        self.publish(mailbox, uidvalidity, modseq, &mut uids, Some(from));
        uids
    }

    fn publish(
        &self,
        mailbox: MailboxId,
        uidvalidity: u32,
        modseq: u64,
        uids: &mut Arc<[Uid]>,
        from: Option<Derivation>,
    ) {
        let mut inner = self.lock();
        inner.since_sweep += 1;
        if inner.since_sweep >= SWEEP_EVERY {
            inner.since_sweep = 0;
            inner.by_mailbox.retain(|_, list| {
                list.retain_mut(View::alive);
                !list.is_empty()
            });
        }
        let list = inner.by_mailbox.entry(mailbox).or_default();
        // A different UIDVALIDITY is a mailbox that was deleted and whose
        // id came back: its maps are of no use any more.
        list.retain_mut(|v| v.uidvalidity == uidvalidity && v.alive());
        if let Some(v) = list.iter_mut().find(|v| v.modseq == modseq) {
            if let Some(shared) = v.uids.upgrade() {
                if Arc::ptr_eq(&shared, uids) || *shared == **uids {
                    *uids = shared;
                    // Equal contents: `from` describes it as well.
                    if v.from.is_none() {
                        v.from = from;
                    }
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
            from,
        });
        list.sort_unstable_by_key(|v| std::cmp::Reverse(v.modseq));
        list.truncate(VERSIONS);
    }

    /// A session let go of its map of `mailbox`: forget the maps (and the
    /// parents) nobody uses any more, so their memory goes back at once.
    pub fn release(&self, mailbox: MailboxId) {
        let mut inner = self.lock();
        if let Some(list) = inner.by_mailbox.get_mut(&mailbox) {
            list.retain_mut(View::alive);
            if list.is_empty() {
                inner.by_mailbox.remove(&mailbox);
            }
        }
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
    fn the_same_change_to_the_same_map_is_built_once() {
        let views = Views::new();
        let mut base = map(&[1, 2, 3]);
        views.intern(7, 1, 10, &mut base);
        let a = views.derive(7, 1, 11, &base, &[2], &[4, 5]);
        assert_eq!(&*a, &[1, 3, 4, 5]);
        let b = views.derive(7, 1, 11, &base, &[2], &[4, 5]);
        assert!(Arc::ptr_eq(&a, &b));
        // Another change, or the same change to another (equal) map at
        // another modseq: built anew.
        let c = views.derive(7, 1, 12, &base, &[], &[4, 5]);
        assert_eq!(&*c, &[1, 2, 3, 4, 5]);
        let other = map(&[1, 2, 3]);
        let d = views.derive(7, 1, 13, &other, &[2], &[4, 5]);
        assert!(!Arc::ptr_eq(&a, &d));
        assert_eq!(a, d);
        let e = views.derive(7, 1, 13, &other, &[2], &[4, 5]);
        assert!(Arc::ptr_eq(&d, &e));
        // The same change from a third equal map at modseq 11: shared
        // with `a` after comparing.
        let third = map(&[1, 2, 3]);
        let f = views.derive(7, 1, 11, &third, &[2], &[4, 5]);
        assert!(Arc::ptr_eq(&a, &f));
    }

    #[test]
    fn release_forgets_maps_nobody_uses() {
        let views = Views::new();
        let mut base = map(&[1]);
        views.intern(7, 1, 10, &mut base);
        let next = views.derive(7, 1, 11, &base, &[], &[2]);
        drop(base);
        views.release(7);
        assert_eq!(views.live(), 1);
        drop(next);
        views.release(7);
        assert_eq!(views.live(), 0);
        assert!(views.lock().by_mailbox.is_empty());
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
