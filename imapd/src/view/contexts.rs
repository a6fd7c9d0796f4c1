//! What a Selected session remembers about its searches: the saved result
//! `$` (SEARCHRES, RFC 5182) and the live UPDATE contexts (CONTEXT=SEARCH,
//! RFC 5267 §4.3). Both belong to the selection: a new SELECT/EXAMINE,
//! CLOSE or UNSELECT drops them with it (RFC 5182 §2.1: "Upon successful
//! completion of a SELECT or an EXAMINE command ... reset to the empty
//! sequence"; RFC 5267 §4.3: "Updates will cease when the mailbox is no
//! longer selected").
//!
//! Both hold UIDs, so expunges need no renumbering: `$` names the saved
//! messages still in the view, and a context's result is kept as the UIDs
//! that match now. How the view changes reaches a context:
//!
//! - an expunge, when the view announces it ([`SearchState::expunged`]):
//!   `REMOVEFROM` before the EXPUNGE responses, so message numbers are
//!   still valid (RFC 5267 §4.3.4);
//! - new messages and flag changes, after the view applied them (so the
//!   EXISTS came first, §4.3.3): the sync's store read re-evaluates every
//!   context's query on just the messages that changed ([`Probe`]), and
//!   [`SearchState::changed`] compares with the remembered result.
//!
//! Like Dovecot, updates of SEARCH contexts use context position 0
//! (allowed for SEARCH, §4.3.3–§4.3.4) with the set in mailbox order,
//! REMOVEFROM before ADDTO in one ESEARCH response per context.
//!
//! A SORT context (CONTEXT=SORT, §4) also keeps its result in sort order,
//! and its updates carry real 1-based positions in that order, to be
//! applied one after the other as §4.3.3's example `ADDTO (1 2733 1
//! 2731:2732)` is: REMOVEFROM pairs from the last position to the first
//! (each a run of neighbours, at its position before the removal), ADDTO
//! pairs from the first to the last (each a run of neighbours, at its
//! position after the insertion). Sort keys never change (RFC 5256 keys
//! are immutable message data; ties fall to mailbox order), so the
//! messages that stay keep their relative order and only additions need
//! the sort: the sync's store read sorts the union of the result and the
//! new matches ([`Probe::evaluate`]). Dovecot sends position 0 for SORT
//! contexts too; real positions are what §4.3.3 describes for them.

use super::sort_context::{insertions, removals, send_pairs};
use crate::command::SortCriterion;
use crate::limits::MAX_UPDATE_CONTEXTS;
use crate::response::{Data, ESearch, ReturnData};
use mailstore::{Changes, MailboxId, Query, Reader, Uid};
use std::sync::Arc;

/// One live UPDATE context.
#[derive(Debug)]
struct Context {
    /// The searching command's tag (the search correlator).
    tag: String,
    /// Answer with UIDs (UID SEARCH), else message numbers.
    uid: bool,
    /// The search program, with message numbers already turned into UIDs
    /// (RFC 5267 §4.3: they are "evaluated at the time the command is
    /// received").
    query: Arc<Query>,
    /// The messages that match now, among those the client knows (UIDs
    /// ascending).
    result: Vec<Uid>,
    /// Identity across a store read (a context cancelled and re-created
    /// meanwhile is a different one).
    id: u64,
    /// A SORT context: its criteria and `result` in sort order.
    sort: Option<(Arc<[SortCriterion]>, Vec<Uid>)>,
}

/// The saved result and the UPDATE contexts of one selection.
#[derive(Debug, Default)]
pub struct SearchState {
    /// `$`: UID runs, ascending and disjoint.
    saved: Vec<(Uid, Uid)>,
    /// Live contexts, oldest first; at most [`MAX_UPDATE_CONTEXTS`].
    contexts: Vec<Context>,
    /// Next context id.
    next_id: u64,
}

/// The queries of the live contexts, to evaluate on a store thread.
#[derive(Debug, Clone, Default)]
pub struct Probe(Vec<ProbeItem>);

/// One context's share of a [`Probe`].
#[derive(Debug, Clone)]
struct ProbeItem {
    id: u64,
    query: Arc<Query>,
    /// A SORT context: its criteria and current result (UIDs ascending).
    sort: Option<(Arc<[SortCriterion]>, Vec<Uid>)>,
}

/// What a [`Probe`] found: the UIDs evaluated (ascending) and, per
/// context, which of them match.
#[derive(Debug, Default)]
pub struct Matches {
    touched: Vec<Uid>,
    per_context: Vec<(u64, Vec<Uid>)>,
    /// SORT contexts: the old result and the new matches, in sort order.
    sorted: Vec<(u64, Vec<Uid>)>,
}

impl Probe {
    /// Evaluate every context on the messages `changes` touched (new or
    /// with changed flags), on a store reader.
    ///
    /// # Errors
    /// The store's.
    pub fn evaluate(
        &self,
        r: &Reader,
        mailbox: MailboxId,
        changes: &Changes,
    ) -> mailstore::Result<Matches> {
        if self.0.is_empty() || changes.changed.is_empty() {
            return Ok(Matches::default());
        }
        let touched: Vec<Uid> = changes.changed.iter().map(|e| e.uid).collect();
        let runs = crate::op::search::uid_runs(touched.iter().copied());
        let mut per_context = Vec::with_capacity(self.0.len());
        let mut sorted = Vec::new();
        for item in &self.0 {
            let q = Query::And(vec![Query::Uids(runs.clone()), (*item.query).clone()]);
            let matching = r.search(mailbox, &q)?;
            if let Some((criteria, result)) = &item.sort {
                if !matching.is_empty() {
                    let mut all = result.clone();
                    all.extend(&matching);
                    all.sort_unstable();
                    all.dedup();
                    let fields =
                        r.message_fields(mailbox, &all, crate::sort::order::fields_for(criteria))?;
                    let order: Vec<Uid> = crate::sort::order::sort(&fields, criteria)
                        .into_iter()
                        .filter_map(|i| fields.get(i).map(|f| f.uid))
                        .collect();
                    sorted.push((item.id, order));
                }
            }
            per_context.push((item.id, matching));
        }
        Ok(Matches {
            touched,
            per_context,
            sorted,
        })
    }
}

/// Runs of the ascending `uids`.
fn runs(uids: &[Uid]) -> Vec<(Uid, Uid)> {
    crate::op::search::uid_runs(uids.iter().copied())
}

impl SearchState {
    /// `$` as UID runs (possibly naming messages no longer in the view).
    pub fn saved(&self) -> &[(Uid, Uid)] {
        &self.saved
    }

    /// Replace `$` with `uids` (ascending): a successful SEARCH with SAVE.
    pub fn save(&mut self, uids: &[Uid]) {
        self.saved = runs(uids);
    }

    /// Empty `$`: a SEARCH with SAVE that failed (RFC 5182 §2.1: "A
    /// SEARCH command with the SAVE result option that caused the server
    /// to return the NO tagged response sets the value of the search
    /// result variable to the empty sequence").
    pub fn forget_saved(&mut self) {
        self.saved = Vec::new();
    }

    /// Is there a live context for `tag`?
    pub fn has_context(&self, tag: &str) -> bool {
        self.contexts.iter().any(|c| c.tag == tag)
    }

    /// Number of live contexts.
    pub fn context_count(&self) -> usize {
        self.contexts.len()
    }

    /// Start updates for the searching command `tag`, whose result (the
    /// known messages matching `query`) is `result`. `false` when
    /// [`MAX_UPDATE_CONTEXTS`] are live already (RFC 5267 §4.3.1: the
    /// caller answers `NO [NOUPDATE]`).
    pub fn add_context(
        &mut self,
        tag: &str,
        uid: bool,
        query: Arc<Query>,
        result: Vec<Uid>,
    ) -> bool {
        if self.contexts.len() >= MAX_UPDATE_CONTEXTS {
            return false;
        }
        self.next_id += 1;
        self.contexts.push(Context {
            tag: tag.to_owned(),
            uid,
            query,
            result,
            id: self.next_id,
            sort: None,
        });
        true
    }

    /// Start updates for the SORT command `tag` (CONTEXT=SORT, RFC 5267
    /// §4): as [`add_context`](Self::add_context), with `order` the
    /// result in sort order.
    pub fn add_sort_context(
        &mut self,
        tag: &str,
        uid: bool,
        query: Arc<Query>,
        criteria: Arc<[SortCriterion]>,
        order: Vec<Uid>,
    ) -> bool {
        let mut result = order.clone();
        result.sort_unstable();
        if !self.add_context(tag, uid, query, result) {
            return false;
        }
        if let Some(c) = self.contexts.last_mut() {
            c.sort = Some((criteria, order));
        }
        true
    }

    /// CANCELUPDATE of `tag` (RFC 5267 §4.3.5); `false` if none was live.
    pub fn cancel(&mut self, tag: &str) -> bool {
        let before = self.contexts.len();
        self.contexts.retain(|c| c.tag != tag);
        self.contexts.len() != before
    }

    /// Any UPDATE context to keep (RFC 5267 §4.2)?
    pub fn has_contexts(&self) -> bool {
        !self.contexts.is_empty()
    }

    /// The queries to re-evaluate on a sync's store read; `None` without
    /// contexts (the read then does nothing more).
    pub fn probe(&self) -> Option<Probe> {
        (!self.contexts.is_empty()).then(|| {
            Probe(
                self.contexts
                    .iter()
                    .map(|c| ProbeItem {
                        id: c.id,
                        query: Arc::clone(&c.query),
                        sort: c
                            .sort
                            .as_ref()
                            .map(|(k, _)| (Arc::clone(k), c.result.clone())),
                    })
                    .collect(),
            )
        })
    }

    /// The view is about to announce the expunge of `gone` (ascending,
    /// all known; `seq` still numbers them): REMOVEFROM for every context
    /// that held one, and `gone` leaves `$`.
    pub fn expunged(&mut self, gone: &[Uid], seq: impl Fn(Uid) -> Option<u32>, out: &mut Vec<u8>) {
        if gone.is_empty() {
            return;
        }
        if !self.saved.is_empty() {
            let kept: Vec<Uid> = self
                .saved
                .iter()
                .flat_map(|&(a, b)| a..=b)
                .filter(|u| gone.binary_search(u).is_err())
                .collect();
            self.saved = runs(&kept);
        }
        for c in &mut self.contexts {
            let removed: Vec<Uid> = c
                .result
                .iter()
                .copied()
                .filter(|u| gone.binary_search(u).is_ok())
                .collect();
            if removed.is_empty() {
                continue;
            }
            c.result.retain(|u| gone.binary_search(u).is_err());
            if let Some((_, order)) = &mut c.sort {
                let pairs = removals(order, |u| gone.binary_search(&u).is_ok(), c.uid, &seq);
                order.retain(|u| gone.binary_search(u).is_err());
                send_pairs(out, &c.tag, c.uid, pairs, Vec::new());
                continue;
            }
            let nums = numbers(&removed, c.uid, &seq);
            send(out, &c.tag, c.uid, nums, Vec::new());
        }
    }

    /// The view has applied a sync: compare each context's result with
    /// what `found` says about the messages it evaluated, and send
    /// REMOVEFROM/ADDTO for the differences. `known` says whether the
    /// client knows a message and it is not expunged (only those can
    /// join a result), `seq` numbers it.
    pub fn changed(
        &mut self,
        found: Matches,
        known: impl Fn(Uid) -> bool,
        seq: impl Fn(Uid) -> Option<u32>,
        out: &mut Vec<u8>,
    ) {
        let mut sorted = found.sorted;
        for (id, matching) in found.per_context {
            let Some(c) = self.contexts.iter_mut().find(|c| c.id == id) else {
                continue;
            };
            let (mut added, mut removed) = (Vec::new(), Vec::new());
            for &u in &found.touched {
                let now = matching.binary_search(&u).is_ok() && known(u);
                match (c.result.binary_search(&u), now) {
                    (Err(at), true) => {
                        c.result.insert(at, u);
                        added.push(u);
                    }
                    // An expunged message leaves when its expunge is
                    // announced (`expunged`), not here.
                    (Ok(at), false) if known(u) => {
                        c.result.remove(at);
                        removed.push(u);
                    }
                    _ => {}
                }
            }
            if added.is_empty() && removed.is_empty() {
                continue;
            }
            added.sort_unstable();
            removed.sort_unstable();
            if let Some((_, order)) = &mut c.sort {
                let new_order = sorted
                    .iter_mut()
                    .find(|s| s.0 == id)
                    .map(|s| std::mem::take(&mut s.1))
                    .unwrap_or_default();
                let gone = |u: Uid| removed.binary_search(&u).is_ok();
                let rm = removals(order, gone, c.uid, &seq);
                order.retain(|&u| !gone(u));
                let add = insertions(order, &new_order, &added, c.uid, &seq);
                send_pairs(out, &c.tag, c.uid, rm, add);
                continue;
            }
            let removed = numbers(&removed, c.uid, &seq);
            let added = numbers(&added, c.uid, &seq);
            send(out, &c.tag, c.uid, removed, added);
        }
    }
}

/// `uids` as the context reports them: UIDs, or message numbers.
pub(super) fn numbers(uids: &[Uid], uid: bool, seq: &impl Fn(Uid) -> Option<u32>) -> Vec<u32> {
    if uid {
        uids.to_vec()
    } else {
        uids.iter().filter_map(|&u| seq(u)).collect()
    }
}

/// `* ESEARCH (TAG "t") [UID] REMOVEFROM (0 set) ADDTO (0 set)`.
fn send(out: &mut Vec<u8>, tag: &str, uid: bool, removed: Vec<u32>, added: Vec<u32>) {
    let mut data = Vec::new();
    if !removed.is_empty() {
        data.push(ReturnData::RemoveFrom(vec![(0, removed)]));
    }
    if !added.is_empty() {
        data.push(ReturnData::AddTo(vec![(0, added)]));
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

    fn text(out: &[u8]) -> String {
        String::from_utf8_lossy(out).into_owned()
    }

    #[test]
    fn expunges_leave_saved_and_contexts_with_removefrom() {
        let mut s = SearchState::default();
        s.save(&[2, 3, 4, 9]);
        assert!(s.add_context("B01", true, Arc::new(Query::All), vec![3, 9]));
        assert!(s.add_context("B02", false, Arc::new(Query::All), vec![2, 4]));
        let mut out = Vec::new();
        // Message numbers 1.. for UIDs 2, 3, 4, 9.
        let seq = |u: Uid| {
            [2, 3, 4, 9]
                .iter()
                .position(|&x| x == u)
                .map(|p| p as u32 + 1)
        };
        s.expunged(&[3, 4], seq, &mut out);
        assert_eq!(s.saved(), &[(2, 2), (9, 9)]);
        assert_eq!(
            text(&out),
            "* ESEARCH (TAG \"B01\") UID REMOVEFROM (0 3)\r\n\
             * ESEARCH (TAG \"B02\") REMOVEFROM (0 3)\r\n"
        );
    }

    #[test]
    fn changes_send_the_difference_only() {
        let mut s = SearchState::default();
        assert!(s.add_context("C", true, Arc::new(Query::All), vec![1, 2]));
        let id = s.contexts[0].id;
        let found = Matches {
            touched: vec![2, 3, 4, 5],
            per_context: vec![(id, vec![3, 5])],
            sorted: Vec::new(),
        };
        let mut out = Vec::new();
        // 5 is expunged (not known): it does not join.
        s.changed(found, |u| u != 5, Some, &mut out);
        assert_eq!(
            text(&out),
            "* ESEARCH (TAG \"C\") UID REMOVEFROM (0 2) ADDTO (0 3)\r\n"
        );
        assert_eq!(s.contexts[0].result, vec![1, 3]);
    }

    /// RFC 5267 §4.3.3/§4.3.4 for a SORT context: positions in sort
    /// order, applied in turn (ADDTO first to last, REMOVEFROM last to
    /// first), REMOVEFROM before ADDTO.
    #[test]
    fn sort_contexts_report_positions_in_sort_order() {
        let mut s = SearchState::default();
        let crit: Arc<[SortCriterion]> = Arc::from(Vec::new());
        // Sort order 7, 2, 9, 4 (UIDs).
        assert!(s.add_sort_context("S", true, Arc::new(Query::All), crit, vec![7, 2, 9, 4]));
        let id = s.contexts[0].id;
        // 9 leaves; 5 and 6 join, sorted (by the store) between 7 and 2,
        // and 1 at the end.
        let found = Matches {
            touched: vec![1, 5, 6, 9],
            per_context: vec![(id, vec![1, 5, 6])],
            sorted: vec![(id, vec![7, 5, 6, 2, 9, 4, 1])],
        };
        let mut out = Vec::new();
        s.changed(found, |_| true, Some, &mut out);
        assert_eq!(
            text(&out),
            "* ESEARCH (TAG \"S\") UID REMOVEFROM (3 9) ADDTO (2 5:6 6 1)\r\n"
        );
        let order = s.contexts[0].sort.as_ref().map(|x| x.1.clone());
        assert_eq!(order, Some(vec![7, 5, 6, 2, 4, 1]));
        assert_eq!(s.contexts[0].result, vec![1, 2, 4, 5, 6, 7]);
        // Expunges: runs of neighbours, last first, with sequence numbers.
        let mut out = Vec::new();
        let seq = |u: Uid| Some(u * 10);
        s.expunged(&[1, 5, 6, 7], seq, &mut out);
        assert_eq!(
            text(&out),
            "* ESEARCH (TAG \"S\") UID REMOVEFROM (6 1 1 7,5:6)\r\n"
        );
        let order = s.contexts[0].sort.as_ref().map(|x| x.1.clone());
        assert_eq!(order, Some(vec![2, 4]));
    }

    #[test]
    fn contexts_are_bounded_and_cancelled_by_tag() {
        let mut s = SearchState::default();
        for n in 0..MAX_UPDATE_CONTEXTS {
            assert!(s.add_context(&format!("t{n}"), false, Arc::new(Query::All), vec![]));
        }
        assert!(!s.add_context("over", false, Arc::new(Query::All), vec![]));
        assert!(s.cancel("t0"));
        assert!(!s.cancel("t0"));
        assert!(s.add_context("over", false, Arc::new(Query::All), vec![]));
        assert_eq!(s.context_count(), MAX_UPDATE_CONTEXTS);
    }
}
