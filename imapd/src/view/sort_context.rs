//! The positions of a SORT context's updates (CONTEXT=SORT, RFC 5267
//! §4.3.3–§4.3.4): the context keeps its result in sort order, and
//! ADDTO/REMOVEFROM name runs of neighbours at their 1-based positions,
//! to be applied one after the other as §4.3.3's example `ADDTO (1 2733 1
//! 2731:2732)` is. See `contexts.rs` for when they are sent.

use super::contexts::numbers;
use crate::response::{Data, ESearch, ReturnData};
use mailstore::Uid;

/// A position in a list as the protocol counts it (1-based).
fn position(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}

/// REMOVEFROM pairs for the messages of `order` that are `gone`: runs of
/// neighbours at their 1-based position, last run first (so that each
/// position is still right when the client removes the runs in turn).
pub(super) fn removals(
    order: &[Uid],
    gone: impl Fn(Uid) -> bool,
    uid: bool,
    seq: &impl Fn(Uid) -> Option<u32>,
) -> Vec<(u32, Vec<u32>)> {
    let mut pairs: Vec<(u32, Vec<u32>)> = Vec::new();
    let mut prev: Option<usize> = None;
    for (i, &u) in order.iter().enumerate() {
        if !gone(u) {
            continue;
        }
        let n = numbers(&[u], uid, seq);
        match (prev, pairs.last_mut()) {
            (Some(p), Some(last)) if p + 1 == i => last.1.extend(n),
            _ => pairs.push((position(i), n)),
        }
        prev = Some(i);
    }
    pairs.reverse();
    pairs
}

/// Insert `added` (ascending UIDs) into `order` (which holds what stays,
/// in sort order) where `sorted` (the store's sort of stayers and new
/// matches) puts them, and return the ADDTO pairs: runs of neighbours at
/// their 1-based position after insertion, first run first. A stayer
/// missing from `sorted` (expunged in the store, not yet announced)
/// keeps its place after its old predecessor.
pub(super) fn insertions(
    order: &mut Vec<Uid>,
    sorted: &[Uid],
    added: &[Uid],
    uid: bool,
    seq: &impl Fn(Uid) -> Option<u32>,
) -> Vec<(u32, Vec<u32>)> {
    let is_added = |u: &Uid| added.binary_search(u).is_ok();
    let mut stays: Vec<Uid> = order.clone();
    stays.sort_unstable();
    let mut next: Vec<Uid> = sorted
        .iter()
        .copied()
        .filter(|u| is_added(u) || stays.binary_search(u).is_ok())
        .collect();
    // Additions the store could not sort go last; stayers it did not
    // return go back after their predecessor.
    let mut placed: Vec<Uid> = next.clone();
    placed.sort_unstable();
    for &u in added {
        if placed.binary_search(&u).is_err() {
            next.push(u);
        }
    }
    for (i, &u) in order.iter().enumerate() {
        if placed.binary_search(&u).is_ok() {
            continue;
        }
        let at = match i.checked_sub(1).and_then(|p| order.get(p)) {
            Some(before) => next.iter().position(|x| x == before).map_or(0, |p| p + 1),
            None => 0,
        };
        next.insert(at, u);
    }
    let mut pairs: Vec<(u32, Vec<u32>)> = Vec::new();
    let mut prev: Option<usize> = None;
    for (i, u) in next.iter().enumerate() {
        if !is_added(u) {
            continue;
        }
        let n = numbers(&[*u], uid, seq);
        match (prev, pairs.last_mut()) {
            (Some(p), Some(last)) if p + 1 == i => last.1.extend(n),
            _ => pairs.push((position(i), n)),
        }
        prev = Some(i);
    }
    *order = next;
    pairs
}

/// `* ESEARCH (TAG "t") [UID] REMOVEFROM (pos set ...) ADDTO (pos set
/// ...)` of a SORT context.
pub(super) fn send_pairs(
    out: &mut Vec<u8>,
    tag: &str,
    uid: bool,
    removed: Vec<(u32, Vec<u32>)>,
    added: Vec<(u32, Vec<u32>)>,
) {
    let mut data = Vec::new();
    if !removed.is_empty() {
        data.push(ReturnData::RemoveFrom(removed));
    }
    if !added.is_empty() {
        data.push(ReturnData::AddTo(added));
    }
    if data.is_empty() {
        return;
    }
    Data::ESearch(ESearch {
        tag: Some(tag),
        uid,
        data,
    })
    .encode(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stayer_the_store_no_longer_sorts_keeps_its_place() {
        let mut order = vec![3, 8, 5];
        // 8 is gone from the store (its expunge not yet announced).
        let pairs = insertions(&mut order, &[3, 4, 5], &[4], true, &Some);
        assert_eq!(order, vec![3, 8, 4, 5]);
        assert_eq!(pairs, vec![(3, vec![4])]);
    }
}
