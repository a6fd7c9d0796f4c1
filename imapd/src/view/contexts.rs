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
//! Like Dovecot, updates use context position 0 (allowed for SEARCH,
//! §4.3.3–§4.3.4) with the set in mailbox order, REMOVEFROM before ADDTO
//! in one ESEARCH response per context.

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
pub struct Probe(Vec<(u64, Arc<Query>)>);

/// What a [`Probe`] found: the UIDs evaluated (ascending) and, per
/// context, which of them match.
#[derive(Debug, Default)]
pub struct Matches {
    touched: Vec<Uid>,
    per_context: Vec<(u64, Vec<Uid>)>,
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
        for (id, q) in &self.0 {
            let q = Query::And(vec![Query::Uids(runs.clone()), (**q).clone()]);
            per_context.push((*id, r.search(mailbox, &q)?));
        }
        Ok(Matches {
            touched,
            per_context,
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
        });
        true
    }

    /// CANCELUPDATE of `tag` (RFC 5267 §4.3.5); `false` if none was live.
    pub fn cancel(&mut self, tag: &str) -> bool {
        let before = self.contexts.len();
        self.contexts.retain(|c| c.tag != tag);
        self.contexts.len() != before
    }

    /// The queries to re-evaluate on a sync's store read; `None` without
    /// contexts (the read then does nothing more).
    pub fn probe(&self) -> Option<Probe> {
        (!self.contexts.is_empty()).then(|| {
            Probe(
                self.contexts
                    .iter()
                    .map(|c| (c.id, Arc::clone(&c.query)))
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
            let removed = numbers(&removed, c.uid, &seq);
            let added = numbers(&added, c.uid, &seq);
            send(out, &c.tag, c.uid, removed, added);
        }
    }
}

/// `uids` as the context reports them: UIDs, or message numbers.
fn numbers(uids: &[Uid], uid: bool, seq: &impl Fn(Uid) -> Option<u32>) -> Vec<u32> {
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
