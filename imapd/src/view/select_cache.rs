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

use mailstore::{MailboxId, Reader, Result, SummaryDelta, Uid};
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

/// Changes more than this many entries plus an eighth of the mailbox are
/// not applied to a remembered state: reading every entry is as cheap.
pub const MAX_DELTA: usize = 1000;

impl Opened {
    /// SELECT's answers for `mailbox` at `modseq` (the snapshot `r` reads),
    /// from this older state of the same UIDVALIDITY and the changes after
    /// it (`Reader::summary_since`): every arrival, flag change and expunge
    /// takes a new modseq, so the entries changed after this state's
    /// modseq and the UIDs expunged after it are all that differs. `None`
    /// when the store cannot say exactly or cheaply (then read it whole).
    ///
    /// # Errors
    /// Only database errors.
    pub fn since(&self, r: &Reader, mailbox: MailboxId, modseq: u64) -> Result<Option<Opened>> {
        let max = MAX_DELTA + self.uids.len() / 8;
        let Some(delta) = r.summary_since(mailbox, self.modseq, max)? else {
            return Ok(None);
        };
        // The first unseen entry now is the lowest of: a changed entry
        // without \Seen, or the first unseen at or above the old first
        // unseen (every entry below it had \Seen and, unless it changed,
        // still has).
        let old_unseen = self
            .first_unseen
            .and_then(|n| self.uids.get((n as usize).checked_sub(1)?).copied());
        let from_old = match old_unseen {
            Some(u) => r.first_unseen_from(mailbox, u)?,
            None => None,
        };
        // A keyword remembered and carried by no changed entry may have
        // been taken off the last message that had it.
        let mut in_use = Vec::with_capacity(self.keywords.len());
        for k in &self.keywords {
            let carried = delta
                .changed
                .iter()
                .any(|(_, _, kws)| kws.split(' ').any(|x| x.eq_ignore_ascii_case(k)));
            in_use.push(carried || r.keyword_in_use(mailbox, k)?);
        }
        Ok(self.advanced(modseq, &delta, from_old, &in_use))
    }

    /// The state after `delta` (see [`Opened::since`]); `from_old` is the
    /// first unseen UID at or above the old first unseen, `in_use` says per
    /// remembered keyword whether a message still carries it. `None` when
    /// `delta` does not fit this state (a changed UID below the highest
    /// remembered one that was not remembered).
    fn advanced(
        &self,
        modseq: u64,
        delta: &SummaryDelta,
        from_old: Option<Uid>,
        in_use: &[bool],
    ) -> Option<Opened> {
        let last = self.uids.last().copied().unwrap_or(0);
        let mut uids: Vec<Uid> = Vec::with_capacity(self.uids.len() + delta.changed.len());
        let mut gone = delta.expunged.iter().peekable();
        for &u in self.uids.iter() {
            while gone.next_if(|&&g| g < u).is_some() {}
            if gone.next_if(|&&g| g == u).is_some() {
                continue;
            }
            uids.push(u);
        }
        let mut first_unseen = from_old;
        let mut keywords: Vec<String> = self
            .keywords
            .iter()
            .zip(in_use)
            .filter(|(_, used)| **used)
            .map(|(k, _)| k.clone())
            .collect();
        for (u, seen, kws) in &delta.changed {
            if *u <= last {
                if uids.binary_search(u).is_err() {
                    return None;
                }
            } else {
                if uids.last().is_some_and(|l| l >= u) {
                    return None;
                }
                uids.push(*u);
            }
            if !seen && first_unseen.is_none_or(|f| *u < f) {
                first_unseen = Some(*u);
            }
            for k in kws.split(' ').filter(|k| !k.is_empty()) {
                if !keywords.iter().any(|x| x.eq_ignore_ascii_case(k)) {
                    keywords.push(k.to_owned());
                }
            }
        }
        sort_keywords(&mut keywords);
        let first_unseen = match first_unseen {
            Some(u) => Some(uids.binary_search(&u).ok()? as u32 + 1),
            None => None,
        };
        Some(Opened {
            uidvalidity: self.uidvalidity,
            modseq,
            uids: uids.into(),
            keywords,
            first_unseen,
        })
    }
}

/// The order of the keywords in SELECT's FLAGS: by name, ignoring ASCII
/// case, so that a state read whole and one brought up to date answer
/// alike.
pub fn sort_keywords(keywords: &mut [String]) {
    keywords.sort_by_cached_key(|k| k.to_ascii_lowercase());
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

    /// The remembered answers for `mailbox` at an older state of the same
    /// UIDVALIDITY than `modseq`, to be brought up to date ([`Opened::since`]).
    pub fn get_older(&self, mailbox: MailboxId, uidvalidity: u32, modseq: u64) -> Option<Opened> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let (o, _) = inner.by_mailbox.get(&mailbox)?;
        (o.uidvalidity == uidvalidity && o.modseq < modseq).then(|| o.clone())
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
    fn a_delta_is_applied_or_refused_when_it_does_not_fit() {
        let old = Opened {
            uidvalidity: 7,
            modseq: 10,
            uids: vec![2, 4, 6, 8].into(),
            keywords: vec!["Zeta".into(), "alpha".into()],
            first_unseen: Some(3),
        };
        let delta = SummaryDelta {
            // 4 changed (now unseen, a new keyword), 9 and 11 arrived.
            changed: vec![
                (4, false, "Beta".into()),
                (9, true, String::new()),
                (11, false, "zeta".into()),
            ],
            expunged: vec![1, 6],
        };
        // Zeta still in use, alpha no more.
        let new = old.advanced(12, &delta, Some(8), &[true, false]).unwrap();
        assert_eq!(&*new.uids, &[2, 4, 8, 9, 11]);
        assert_eq!(new.first_unseen, Some(2), "UID 4 is the second");
        assert_eq!(new.keywords, ["Beta", "Zeta"]);
        assert_eq!(new.modseq, 12);
        // Nothing unseen before, none now.
        let seen = SummaryDelta {
            changed: vec![(9, true, String::new())],
            expunged: vec![],
        };
        let none = Opened {
            first_unseen: None,
            ..old.clone()
        };
        let new = none.advanced(11, &seen, None, &[true, true]).unwrap();
        assert_eq!(new.first_unseen, None);
        assert_eq!(&*new.uids, &[2, 4, 6, 8, 9]);
        // A changed UID below the highest remembered one that was never
        // remembered: refused (read it whole).
        let odd = SummaryDelta {
            changed: vec![(5, true, String::new())],
            expunged: vec![],
        };
        assert!(old.advanced(11, &odd, Some(6), &[true, true]).is_none());
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
