//! The `\Recent` flag of one session (RFC 3501 §2.3.2), kept as UID ranges
//! instead of a bit per message.
//!
//! A session claims `\Recent` in whole blocks: SELECT takes every UID above
//! the mailbox's recent mark, and each later sync takes the new arrivals
//! above the mark (see `Hub::claim_recent`). So the session's recent
//! messages are always "the known UIDs inside a few ranges", whatever the
//! mailbox size. Membership is decided together with the selection's UID
//! map: a range may span UIDs the session does not know (expunged, or
//! claimed by another session in between); those simply are not messages
//! of this session. No protocol syntax here; `selection.rs` answers with it.

use mailstore::Uid;

/// Inclusive UID ranges, ascending and disjoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecentSet {
    ranges: Vec<(Uid, Uid)>,
}

/// How many of the ascending `uids` fall inside `lo..=hi`.
fn count_in(uids: &[Uid], lo: Uid, hi: Uid) -> usize {
    let a = uids.partition_point(|&u| u < lo);
    let b = uids.partition_point(|&u| u <= hi);
    b.saturating_sub(a)
}

impl RecentSet {
    /// Nothing recent.
    pub fn new() -> RecentSet {
        RecentSet { ranges: Vec::new() }
    }

    /// Everything above `above` up to `last` (SELECT).
    pub fn above(above: Uid, last: Uid) -> RecentSet {
        let mut r = RecentSet::new();
        if last > above {
            r.ranges.push((above + 1, last));
        }
        r
    }

    /// Add `lo..=hi` (above every range already held). `uids` is the
    /// selection's map *after* the arrivals were added; the new range is
    /// merged into the last one when no known UID lies between them, so a
    /// session that keeps claiming its arrivals keeps one range.
    pub fn claim(&mut self, lo: Uid, hi: Uid, uids: &[Uid]) {
        if hi < lo {
            return;
        }
        if let Some(last) = self.ranges.last_mut() {
            if last.1 >= lo {
                last.1 = last.1.max(hi);
                return;
            }
            if count_in(uids, last.1 + 1, lo - 1) == 0 {
                last.1 = hi;
                return;
            }
        }
        self.ranges.push((lo, hi));
    }

    /// Is `uid` recent for this session?
    pub fn contains(&self, uid: Uid) -> bool {
        let i = self.ranges.partition_point(|r| r.1 < uid);
        self.ranges.get(i).is_some_and(|r| r.0 <= uid)
    }

    /// Number of the ascending `uids` that are recent.
    pub fn count(&self, uids: &[Uid]) -> usize {
        self.ranges
            .iter()
            .map(|&(lo, hi)| count_in(uids, lo, hi))
            .sum()
    }

    /// The ranges, for a SEARCH RECENT query (the caller keeps only the
    /// UIDs the session knows).
    pub fn ranges(&self) -> &[(Uid, Uid)] {
        &self.ranges
    }

    /// Drop ranges that no longer hold any of `uids` (after expunges).
    pub fn prune(&mut self, uids: &[Uid]) {
        self.ranges.retain(|&(lo, hi)| count_in(uids, lo, hi) > 0);
        if self.ranges.is_empty() {
            self.ranges = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_claims_everything_above_the_mark() {
        let uids = [1, 2, 5, 9];
        let r = RecentSet::above(2, 9);
        assert_eq!(r.count(&uids), 2);
        assert!(!r.contains(2) && r.contains(5) && r.contains(9) && !r.contains(10));
        assert_eq!(RecentSet::above(9, 9).count(&uids), 0);
        assert!(RecentSet::above(9, 9).ranges().is_empty());
    }

    #[test]
    fn consecutive_claims_merge_unless_a_known_uid_lies_between() {
        let mut r = RecentSet::above(0, 3);
        r.claim(4, 6, &[1, 2, 3, 4, 5, 6]);
        assert_eq!(r.ranges(), &[(1, 6)]);
        // 7 was claimed by another session and is known here: not merged.
        r.claim(8, 8, &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(r.ranges(), &[(1, 6), (8, 8)]);
        assert!(!r.contains(7) && r.contains(8));
        assert_eq!(r.count(&[1, 2, 3, 4, 5, 6, 7, 8]), 7);
        // 9 is unknown (expunged before we saw it): merging over it is fine.
        r.claim(10, 11, &[1, 2, 3, 4, 5, 6, 7, 8, 10, 11]);
        assert_eq!(r.ranges(), &[(1, 6), (8, 11)]);
        r.claim(12, 11, &[]);
        assert_eq!(r.ranges().len(), 2);
    }

    #[test]
    fn prune_drops_ranges_without_known_messages() {
        let mut r = RecentSet::above(0, 2);
        r.claim(5, 6, &[1, 2, 3, 5, 6]);
        r.prune(&[3, 5]);
        assert_eq!(r.ranges(), &[(5, 6)]);
        r.prune(&[3]);
        assert!(r.ranges().is_empty());
    }
}
