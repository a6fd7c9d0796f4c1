//! QRESYNC (RFC 7162 §3.2): what a returning client missed, as UID ranges.
//!
//! - SELECT/EXAMINE with `QRESYNC (uidvalidity modseq [known-uids
//!   [seq-match-data]])` (§3.2.5): after the usual answers, `* VANISHED
//!   (EARLIER) uids` for the known UIDs expunged since `modseq`, then a
//!   `FETCH (UID FLAGS MODSEQ)` for every known message changed since
//!   (`op/select.rs` sends them; [`resync`] works them out on a store
//!   thread).
//! - `UID FETCH set items (CHANGEDSINCE m VANISHED)` (§3.2.6):
//!   [`vanished_since`] over the UID set (`op/fetch.rs`).
//! - EXPUNGE, UID EXPUNGE and MOVE end with `OK [HIGHESTMODSEQ n]`
//!   (§3.2.7; RFC 6851 §4.4 the same for MOVE): [`finish_expunge`]. The
//!   view announces expunges as `VANISHED` (`view/selection.rs`).
//!
//! The store remembers expunges as tombstones, bounded per mailbox
//! (mailstore `tombstones.rs`). Asked about a modseq older than what it
//! still remembers, the answer is the superset §3.2.5.2 and §3.2.6 allow:
//! every UID in the asked set, below UIDNEXT, that is not in the mailbox
//! now, minus what `seq-match-data` proves the client knows is gone.
//! Everything is computed on ranges: a set like `1:4294967295` costs one
//! range, never four billion numbers.

use crate::command::{QresyncParams, SequenceSet};
use crate::response::{Code, Status};
use crate::session::{Conn, Done};
use crate::view::selection::Selection;
use mailstore::{Changes, Reader, Uid};
use netloop::{Io, Step};

/// Sorted, disjoint, inclusive UID ranges.
pub(crate) type Ranges = Vec<(Uid, Uid)>;

/// Ascending UIDs as ranges of consecutive numbers.
pub(crate) fn ranges(uids: impl IntoIterator<Item = Uid>) -> Ranges {
    let mut out: Ranges = Vec::new();
    for u in uids {
        match out.last_mut() {
            Some(last) if last.1.checked_add(1) == Some(u) => last.1 = u,
            Some(last) if last.1 >= u => {}
            _ => out.push((u, u)),
        }
    }
    out
}

/// Is `uid` in `within` (sorted, disjoint)?
fn contains(within: &[(Uid, Uid)], uid: Uid) -> bool {
    let i = within.partition_point(|&(_, b)| b < uid);
    within.get(i).is_some_and(|&(a, _)| a <= uid)
}

/// `within` cut to `lo..=hi`.
fn clamp(within: &[(Uid, Uid)], lo: Uid, hi: Uid) -> Ranges {
    within
        .iter()
        .filter_map(|&(a, b)| {
            let (a, b) = (a.max(lo), b.min(hi));
            (a <= b).then_some((a, b))
        })
        .collect()
}

/// The UIDs of `within` expunged after the modseq `changes` were read
/// for. With every tombstone still kept, exactly those; otherwise the
/// superset: UIDs of `within` above `known_gone` and below `uidnext` that
/// are not in `present` (ascending).
pub(crate) fn vanished_since(
    changes: &Changes,
    within: &[(Uid, Uid)],
    present: &[Uid],
    uidnext: Uid,
    known_gone: Uid,
) -> Ranges {
    if changes.expunged_complete {
        return ranges(
            changes
                .expunged
                .iter()
                .copied()
                .filter(|&u| contains(within, u)),
        );
    }
    let mut out: Ranges = Vec::new();
    let top = uidnext.saturating_sub(1);
    for (a, b) in clamp(within, known_gone.saturating_add(1), top) {
        // Walk the present UIDs inside a..=b; the gaps between them vanished.
        let mut next = Some(a);
        let mut i = present.partition_point(|&u| u < a);
        while let (Some(&u), Some(n)) = (present.get(i).filter(|&&u| u <= b), next) {
            if u > n {
                out.push((n, u - 1));
            }
            next = u.checked_add(1);
            i += 1;
        }
        if let Some(n) = next.filter(|&n| n <= b) {
            out.push((n, b));
        }
    }
    out
}

/// [`vanished_since`] for UID FETCH (VANISHED) (RFC 7162 §3.2.6): the UIDs
/// of `within` expunged since the modseq `changes` were read for, on the
/// same store thread and snapshot (present UIDs are read only when the
/// tombstones no longer reach back that far).
pub(crate) fn vanished_in(
    r: &Reader,
    mailbox: mailstore::MailboxId,
    changes: &Changes,
    within: &[(Uid, Uid)],
) -> mailstore::Result<Ranges> {
    if changes.expunged_complete {
        return Ok(vanished_since(changes, within, &[], 0, 0));
    }
    let uidnext = r.mailbox_by_id(mailbox)?.map_or(0, |m| m.uidnext);
    let present = r.uids(mailbox)?;
    Ok(vanished_since(changes, within, &present, uidnext, 0))
}

/// RFC 7162 §3.2.5.2: the highest UID up to which the client provably knows
/// every expunge: pairs (message number, UID) are compared with the
/// mailbox (`uids`, in sequence order) in ascending order, up to the first
/// that does not match. Cost: at most one step per message of the mailbox
/// (numbers ascend, and a number past the end never matches).
pub(crate) fn seq_match_upto(seqs: &SequenceSet, uids_set: &SequenceSet, uids: &[Uid]) -> Uid {
    let pairs_s = seqs.resolve(0);
    let pairs_u = uids_set.resolve(0);
    let mut upto = 0;
    let mut su = pairs_u.iter().flat_map(|&(a, b)| a..=b);
    for seq in pairs_s.iter().flat_map(|&(a, b)| a..=b) {
        let Some(uid) = su.next() else { break };
        let here = (seq as usize)
            .checked_sub(1)
            .and_then(|i| uids.get(i))
            .copied();
        if here != Some(uid) {
            break;
        }
        upto = uid;
    }
    upto
}

/// What SELECT/EXAMINE (QRESYNC ...) reports after its usual answers.
#[derive(Debug, Default)]
pub(crate) struct Resync {
    /// `VANISHED (EARLIER)` ranges.
    pub(crate) vanished: Ranges,
    /// UIDs of known messages changed since the client's modseq
    /// (ascending); their FETCH responses are streamed (`op/fetch.rs`).
    pub(crate) changed: Vec<Uid>,
}

/// Work out [`Resync`] on a store thread, in the SELECT's snapshot:
/// `uids` are the mailbox's UIDs now, `uidnext` its UIDNEXT. `None` when
/// the UIDVALIDITY differs: the client's cache is void and nothing is
/// reported (§3.2.5).
pub(crate) fn resync(
    r: &Reader,
    mailbox: mailstore::MailboxId,
    uidvalidity: u32,
    uidnext: Uid,
    uids: &[Uid],
    p: &QresyncParams,
) -> mailstore::Result<Option<Resync>> {
    if p.uidvalidity != uidvalidity {
        return Ok(None);
    }
    let top = uidnext.saturating_sub(1);
    // Without known-uids the client "knows" 1:<UIDNEXT-1> (§3.2.5.1).
    let within = match &p.known_uids {
        Some(set) => clamp(&set.merged(0), 1, top),
        None if top > 0 => vec![(1, top)],
        None => Vec::new(),
    };
    let changes = r.changes_since(mailbox, p.modseq)?;
    let known_gone = match (&p.seq_match, changes.expunged_complete) {
        (Some((s, u)), false) => seq_match_upto(s, u, uids),
        _ => 0,
    };
    let vanished = vanished_since(&changes, &within, uids, uidnext, known_gone);
    let changed = changes
        .changed
        .into_iter()
        .filter(|e| contains(&within, e.uid))
        .map(|e| e.uid)
        .collect();
    Ok(Some(Resync { vanished, changed }))
}

/// The tagged OK of EXPUNGE, UID EXPUNGE and MOVE, after the view's sync:
/// with QRESYNC enabled and something removed, `[HIGHESTMODSEQ n]`
/// (RFC 7162 §3.2.7: the expunge took a modseq no FETCH carries).
pub(crate) fn finish_expunge(
    cx: &mut Conn,
    io: &mut Io<'_, Done>,
    sel: &mut Selection,
    tag: String,
    text: String,
    removed: bool,
) -> Step {
    let with_modseq = removed && cx.qresync;
    cx.sync(io, Some(sel), true, move |cx, sel, io| {
        let code = sel
            .filter(|_| with_modseq)
            .map(|s| Code::HighestModSeq(s.modseq));
        cx.status(Some(&tag), Status::Ok, code, &text);
        cx.flush(io);
        Step::Continue
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{SeqNum, SeqRange};

    fn set(r: &[(u32, u32)]) -> SequenceSet {
        SequenceSet(
            r.iter()
                .map(|&(a, b)| SeqRange {
                    start: SeqNum::Value(a),
                    end: SeqNum::Value(b),
                })
                .collect(),
        )
    }

    fn changes(expunged: &[u32], complete: bool) -> Changes {
        Changes {
            changed: Vec::new(),
            expunged: expunged.to_vec(),
            expunged_complete: complete,
            highestmodseq: 9,
        }
    }

    #[test]
    fn ranges_merge_runs() {
        assert_eq!(ranges([1, 2, 3, 5, 7, 8]), [(1, 3), (5, 5), (7, 8)]);
        assert_eq!(ranges([u32::MAX - 1, u32::MAX]), [(u32::MAX - 1, u32::MAX)]);
        assert!(ranges([]).is_empty());
    }

    #[test]
    fn complete_tombstones_are_cut_to_the_known_uids() {
        let ch = changes(&[2, 4, 9, 20], true);
        assert_eq!(
            vanished_since(&ch, &[(1, 5), (9, 10)], &[], 30, 0),
            [(2, 2), (4, 4), (9, 9)]
        );
    }

    #[test]
    fn forgotten_tombstones_give_the_superset_below_uidnext() {
        let ch = changes(&[], false);
        // Present: 3, 6, 7. Known 1:4294967295, UIDNEXT 10.
        let v = vanished_since(&ch, &[(1, u32::MAX)], &[3, 6, 7], 10, 0);
        assert_eq!(v, [(1, 2), (4, 5), (8, 9)]);
        // seq-match-data proved everything up to UID 6 known.
        let v = vanished_since(&ch, &[(1, u32::MAX)], &[3, 6, 7], 10, 6);
        assert_eq!(v, [(8, 9)]);
        // A range ending on a present UID leaves no tail.
        let v = vanished_since(&ch, &[(1, 3)], &[3], 10, 0);
        assert_eq!(v, [(1, 2)]);
        assert!(vanished_since(&ch, &[(3, 3)], &[3], 10, 0).is_empty());
    }

    #[test]
    fn seq_match_stops_at_the_first_mismatch() {
        // RFC 7162 §3.2.5.2: only UIDs divisible by three remain.
        let uids: Vec<u32> = (1..=10).map(|k| 3 * k).collect();
        assert_eq!(seq_match_upto(&set(&[(3, 3)]), &set(&[(9, 9)]), &uids), 9);
        assert_eq!(
            seq_match_upto(&set(&[(1, 1), (4, 4)]), &set(&[(3, 3), (13, 13)]), &uids),
            3,
            "the second pair does not match"
        );
        assert_eq!(seq_match_upto(&set(&[(1, 1)]), &set(&[(1, 1)]), &uids), 0);
        // Huge ranges cost at most one step per message.
        let big = set(&[(1, u32::MAX)]);
        assert_eq!(seq_match_upto(&big, &big, &uids), 0);
        let seqs = set(&[(1, u32::MAX - 1)]);
        let us = set(&[(3, u32::MAX)]);
        let dense: Vec<u32> = (3..=100_002).collect();
        assert_eq!(seq_match_upto(&seqs, &us, &dense), 100_002);
    }
}
