//! What SELECT computes from a mailbox's entries (RFC 3501 §6.3.1: EXISTS,
//! the UNSEEN code, the keywords of the FLAGS response, and the sequence
//! number -> UID map), remembered per mailbox state so that selecting a big
//! mailbox again does not read every entry again.
//!
//! A state is (mailbox id, UIDVALIDITY, HIGHESTMODSEQ): every change to a
//! mailbox's messages or flags takes a new modseq in the store (arrivals,
//! flag changes, expunges, copies), so at one modseq the answers are
//! exactly the same. The newest state of up to [`MAX_MAILBOXES`] mailboxes
//! is kept, [`MAX_UIDS`] UIDs in all (the maps are shared with the sessions
//! through `views.rs`, so a cached map in use costs nothing extra).

use mailstore::{MailboxId, Uid};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Mailboxes remembered at most.
pub const MAX_MAILBOXES: usize = 256;
/// UIDs remembered in all (4 bytes each: 16 MiB).
pub const MAX_UIDS: usize = 4 << 20;

/// SELECT's answers for one mailbox state.
#[derive(Debug, Clone)]
pub struct Opened {
    /// UIDVALIDITY of the state.
    pub uidvalidity: u32,
    /// HIGHESTMODSEQ of the state.
    pub modseq: u64,
    /// UIDs ascending.
    pub uids: Arc<[Uid]>,
    /// Keywords in use (§7.2.6 FLAGS).
    pub keywords: Vec<String>,
    /// Sequence number of the first message without `\Seen`.
    pub first_unseen: Option<u32>,
}

#[derive(Default)]
struct Inner {
    by_mailbox: HashMap<MailboxId, (Opened, u64)>,
    uids: usize,
    clock: u64,
}

/// The cache. See the module docs.
#[derive(Default)]
pub struct SelectCache {
    inner: Mutex<Inner>,
}

impl SelectCache {
    /// The answers for `mailbox` at exactly this state, if remembered.
    pub fn get(&self, mailbox: MailboxId, uidvalidity: u32, modseq: u64) -> Option<Opened> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.clock += 1;
        let now = inner.clock;
        let (o, used) = inner.by_mailbox.get_mut(&mailbox)?;
        if o.uidvalidity != uidvalidity || o.modseq != modseq {
            return None;
        }
        *used = now;
        Some(o.clone())
    }

    /// Remember `opened` as the state of `mailbox` (replacing an older
    /// one; never a newer one).
    pub fn put(&self, mailbox: MailboxId, opened: Opened) {
        if opened.uids.len() > MAX_UIDS {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.clock += 1;
        let now = inner.clock;
        if let Some((old, _)) = inner.by_mailbox.get(&mailbox) {
            if old.uidvalidity == opened.uidvalidity && old.modseq > opened.modseq {
                return;
            }
        }
        if let Some((old, _)) = inner.by_mailbox.remove(&mailbox) {
            inner.uids -= old.uids.len();
        }
        while !inner.by_mailbox.is_empty()
            && (inner.by_mailbox.len() >= MAX_MAILBOXES
                || inner.uids + opened.uids.len() > MAX_UIDS)
        {
            let Some(oldest) = inner
                .by_mailbox
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(id, _)| *id)
            else {
                break;
            };
            if let Some((old, _)) = inner.by_mailbox.remove(&oldest) {
                inner.uids -= old.uids.len();
            }
        }
        inner.uids += opened.uids.len();
        inner.by_mailbox.insert(mailbox, (opened, now));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn opened(uidvalidity: u32, modseq: u64, n: u32) -> Opened {
        Opened {
            uidvalidity,
            modseq,
            uids: (1..=n).collect(),
            keywords: vec!["$Junk".into()],
            first_unseen: Some(1),
        }
    }

    #[test]
    fn only_the_exact_state_is_answered() {
        let c = SelectCache::default();
        c.put(1, opened(7, 10, 3));
        assert_eq!(c.get(1, 7, 10).map(|o| o.uids.len()), Some(3));
        assert!(c.get(1, 7, 11).is_none(), "newer modseq");
        assert!(c.get(1, 8, 10).is_none(), "recreated mailbox");
        assert!(c.get(2, 7, 10).is_none());
        // An older state never replaces a newer one.
        c.put(1, opened(7, 9, 2));
        assert!(c.get(1, 7, 10).is_some());
        c.put(1, opened(7, 12, 4));
        assert!(c.get(1, 7, 10).is_none());
        assert_eq!(c.get(1, 7, 12).map(|o| o.uids.len()), Some(4));
    }

    #[test]
    fn bounded_by_mailboxes_and_uids_least_recently_used_first() {
        let c = SelectCache::default();
        for id in 0..MAX_MAILBOXES as i64 + 10 {
            c.put(id, opened(1, 1, 1));
            if id > 0 {
                // Keep mailbox 0 in use.
                assert!(c.get(0, 1, 1).is_some(), "mailbox 0 evicted at {id}");
            }
        }
        let inner = c.inner.lock().unwrap();
        assert!(inner.by_mailbox.len() <= MAX_MAILBOXES);
        drop(inner);
        c.put(9999, opened(1, 1, MAX_UIDS as u32));
        let inner = c.inner.lock().unwrap();
        assert!(inner.uids <= MAX_UIDS, "{}", inner.uids);
        assert!(inner.by_mailbox.contains_key(&9999));
        drop(inner);
        c.put(10_000, opened(1, 1, MAX_UIDS as u32 + 1));
        assert!(c.get(10_000, 1, 1).is_none(), "too big to keep");
    }
}
