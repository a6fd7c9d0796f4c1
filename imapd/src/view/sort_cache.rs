//! SORT and THREAD answers remembered per mailbox state (RFC 5256), so
//! that a client asking the same question of an unchanged mailbox — a
//! webmail list page re-issues `UID SORT (REVERSE ARRIVAL) UTF-8 ALL` on
//! every view — is answered without reading every message again.
//!
//! A state is (mailbox id, UIDVALIDITY, HIGHESTMODSEQ): every change to a
//! mailbox's messages or flags takes a new modseq, so at one modseq the
//! answer to one question is fixed. The question is the command's own
//! canonical text (UID or not, criteria or algorithm, and the store query
//! with message numbers and `\Recent` already resolved to UIDs by the
//! session). Only sessions whose view is exactly that state ask (no
//! held-back expunges): their sequence numbers are the store's. At most
//! [`PER_MAILBOX`] answers per mailbox, [`MAX_MAILBOXES`] mailboxes, and
//! [`MAX_NUMBERS`] numbers in all; the least recently used go first.

use crate::response::Threads;
use mailstore::MailboxId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Answers kept per mailbox.
pub const PER_MAILBOX: usize = 8;
/// Mailboxes with answers kept.
pub const MAX_MAILBOXES: usize = 256;
/// Message numbers kept in all (4 bytes each, plus thread nodes: 16 MiB
/// or so).
pub const MAX_NUMBERS: usize = 4 << 20;

/// A remembered answer.
#[derive(Clone, Debug)]
pub enum Answer {
    /// SORT's numbers and MODSEQ.
    Sort(Arc<(Vec<u32>, Option<u64>)>),
    /// THREAD's tree.
    Thread(Arc<Threads>),
}

impl Answer {
    fn size(&self) -> usize {
        match self {
            Answer::Sort(a) => a.0.len().max(1),
            Answer::Thread(t) => t.nodes.len().max(1),
        }
    }
}

struct Entry {
    question: String,
    answer: Answer,
    used: u64,
}

#[derive(Default)]
struct Inner {
    /// Per mailbox: the state the answers belong to, and the answers.
    by_mailbox: HashMap<MailboxId, ((u32, u64), Vec<Entry>)>,
    numbers: usize,
    clock: u64,
}

/// The cache. See the module docs.
#[derive(Default)]
pub struct SortCache {
    inner: Mutex<Inner>,
}

impl SortCache {
    /// The answer to `question` about `mailbox` at exactly this state.
    pub fn get(&self, mailbox: MailboxId, state: (u32, u64), question: &str) -> Option<Answer> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.clock += 1;
        let now = inner.clock;
        let (at, entries) = inner.by_mailbox.get_mut(&mailbox)?;
        if *at != state {
            return None;
        }
        let e = entries.iter_mut().find(|e| e.question == question)?;
        e.used = now;
        Some(e.answer.clone())
    }

    /// Remember `answer` to `question` about `mailbox` at `state`; answers
    /// about an older state of the mailbox go.
    pub fn put(&self, mailbox: MailboxId, state: (u32, u64), question: String, answer: Answer) {
        let size = answer.size();
        if size > MAX_NUMBERS {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.clock += 1;
        let now = inner.clock;
        let mut freed = 0;
        let slot = inner
            .by_mailbox
            .entry(mailbox)
            .or_insert_with(|| (state, Vec::new()));
        if slot.0 != state {
            freed += slot.1.iter().map(|e| e.answer.size()).sum::<usize>();
            *slot = (state, Vec::new());
        }
        if slot.1.iter().any(|e| e.question == question) {
            inner.numbers -= freed.min(inner.numbers);
            return;
        }
        if slot.1.len() >= PER_MAILBOX {
            if let Some(k) = (0..slot.1.len()).min_by_key(|&k| slot.1[k].used) {
                freed += slot.1.swap_remove(k).answer.size();
            }
        }
        slot.1.push(Entry {
            question,
            answer,
            used: now,
        });
        inner.numbers = inner.numbers.saturating_sub(freed) + size;
        // Over the bounds: drop the least recently used mailboxes' answers
        // (never the one just added).
        while inner.numbers > MAX_NUMBERS || inner.by_mailbox.len() > MAX_MAILBOXES {
            let victim = inner
                .by_mailbox
                .iter()
                .filter(|(m, _)| **m != mailbox)
                .map(|(m, (_, es))| (*m, es.iter().map(|e| e.used).max().unwrap_or(0)))
                .min_by_key(|&(_, used)| used)
                .map(|(m, _)| m);
            let Some(victim) = victim else { break };
            if let Some((_, es)) = inner.by_mailbox.remove(&victim) {
                let n: usize = es.iter().map(|e| e.answer.size()).sum();
                inner.numbers = inner.numbers.saturating_sub(n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sort(nums: &[u32]) -> Answer {
        Answer::Sort(Arc::new((nums.to_vec(), None)))
    }

    fn nums(a: Option<Answer>) -> Option<Vec<u32>> {
        match a? {
            Answer::Sort(s) => Some(s.0.clone()),
            Answer::Thread(_) => None,
        }
    }

    #[test]
    fn answers_belong_to_one_state_and_one_question() {
        let c = SortCache::default();
        c.put(1, (7, 10), "UID (ARRIVAL) All".into(), sort(&[3, 2, 1]));
        assert_eq!(
            nums(c.get(1, (7, 10), "UID (ARRIVAL) All")),
            Some(vec![3, 2, 1])
        );
        assert!(
            c.get(1, (7, 11), "UID (ARRIVAL) All").is_none(),
            "a newer modseq"
        );
        assert!(
            c.get(1, (8, 10), "UID (ARRIVAL) All").is_none(),
            "another UIDVALIDITY"
        );
        assert!(
            c.get(1, (7, 10), "(ARRIVAL) All").is_none(),
            "another question"
        );
        assert!(
            c.get(2, (7, 10), "UID (ARRIVAL) All").is_none(),
            "another mailbox"
        );
        // A newer state replaces the old answers.
        c.put(1, (7, 11), "q".into(), sort(&[1]));
        assert!(c.get(1, (7, 10), "UID (ARRIVAL) All").is_none());
        assert_eq!(nums(c.get(1, (7, 11), "q")), Some(vec![1]));
    }

    #[test]
    fn bounds_hold() {
        let c = SortCache::default();
        for q in 0..(PER_MAILBOX + 5) {
            c.put(1, (1, 1), format!("q{q}"), sort(&[1, 2]));
        }
        let kept = (0..PER_MAILBOX + 5)
            .filter(|q| c.get(1, (1, 1), &format!("q{q}")).is_some())
            .count();
        assert_eq!(kept, PER_MAILBOX);
        for m in 0..(MAX_MAILBOXES as u64 + 10) {
            c.put(100 + m as MailboxId, (1, 1), "q".into(), sort(&[1]));
        }
        let inner = c.inner.lock().unwrap_or_else(PoisonError::into_inner);
        assert!(inner.by_mailbox.len() <= MAX_MAILBOXES);
        assert!(inner.numbers <= MAX_NUMBERS);
        drop(inner);
        // One answer too big to keep is not kept.
        c.put(5, (1, 1), "big".into(), sort(&vec![0; MAX_NUMBERS + 1]));
        assert!(c.get(5, (1, 1), "big").is_none());
    }
}
