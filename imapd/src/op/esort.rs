//! ESORT: `SORT RETURN (...)` / `UID SORT RETURN (...)` answered with one
//! ESEARCH response (RFC 5267 §3), and CONTEXT=SORT's PARTIAL results and
//! UPDATE contexts for SORT (RFC 5267 §4).
//!
//! The search and the ordering are SORT's (`sort.rs`, `crate::sort`);
//! what is returned follows `esearch.rs`, on the result list in sort
//! order:
//!
//! - `MIN`/`MAX` are the first and last message of the sorted result
//!   (RFC 5267 §3.1: "Return the message sequence number/UID of the
//!   lowest/highest sorted message"; Dovecot does the same), not the
//!   lowest and highest numbers;
//! - `ALL` keeps sort order, so only contiguous ascending runs become
//!   ranges (§3.2);
//! - `PARTIAL a:b` is positions `a` to `b` of the sorted result (§4.4);
//! - `SAVE` (RFC 5182) saves the returned messages as a set (`$` has no
//!   order);
//! - `UPDATE` (§4.3) starts a context that keeps the sort order: later
//!   ADDTO/REMOVEFROM carry real positions in it (`view/contexts.rs`).
//!   Contexts share the per-selection limit [`MAX_UPDATE_CONTEXTS`] with
//!   SEARCH's.
//!
//! [`MAX_UPDATE_CONTEXTS`]: crate::limits::MAX_UPDATE_CONTEXTS

use super::esearch::{return_data, returned};
use super::search::to_query;
use crate::command::{SearchKey, SearchReturn, SortCriterion};
use crate::response::{Code, Data, ESearch, Status, StatusLine};
use crate::session::{Conn, Done, ImapSession, State};
use crate::sort::order;
use crate::view::selection::Selection;
use mailstore::Uid;
use netloop::{Io, Step};
use std::sync::Arc;

/// What the store job finds: the known messages matching, in sort order
/// (UIDs), and their mod-sequences when asked (ascending by UID).
type Found = (Vec<Uid>, Vec<(Uid, u64)>);

/// `SORT RETURN (...)` / `UID SORT RETURN (...)`
#[allow(clippy::too_many_arguments)]
pub(crate) fn esort(
    cx: &mut Conn,
    io: &mut Io<'_, Done>,
    sel: &mut Selection,
    tag: String,
    uid: bool,
    ret: SearchReturn,
    (criteria, key): (Vec<SortCriterion>, SearchKey),
    has_modseq: bool,
) -> Step {
    // RFC 5267 §4.3: a tag in use by a live UPDATE is BAD.
    if ret.update && sel.search.has_context(&tag) {
        cx.status(
            Some(&tag),
            Status::Bad,
            None,
            "Tag reuse: a SEARCH/SORT UPDATE with this tag is live",
        );
        return Step::Continue;
    }
    if has_modseq {
        cx.enable_condstore(sel);
    }
    let query = Arc::new(to_query(&key, sel));
    let mailbox = sel.mailbox;
    let known: Arc<[Uid]> = sel.uid_map();
    let criteria: Arc<[SortCriterion]> = criteria.into();
    let (q, c) = (Arc::clone(&query), Arc::clone(&criteria));
    cx.read(
        io,
        move |r| {
            let mut found = r.search(mailbox, &q)?;
            found.retain(|u| known.binary_search(u).is_ok());
            let fields = r.message_fields(mailbox, &found, order::fields_for(&c))?;
            let sorted: Vec<Uid> = order::sort(&fields, &c)
                .into_iter()
                .filter_map(|i| fields.get(i).map(|f| f.uid))
                .collect();
            let modseqs: Vec<(Uid, u64)> = if has_modseq && !found.is_empty() {
                r.entries(mailbox)?
                    .into_iter()
                    .filter(|e| found.binary_search(&e.uid).is_ok())
                    .map(|e| (e.uid, e.modseq))
                    .collect()
            } else {
                Vec::new()
            };
            Ok((sorted, modseqs))
        },
        move |s: &mut ImapSession, io: &mut Io<'_, Done>, res: mailstore::Result<Found>| {
            let ImapSession { cx, state } = s;
            let State::Selected { sel, .. } = state else {
                return Step::Continue;
            };
            match res {
                Ok(found) => {
                    let ask = Ask {
                        tag: &tag,
                        uid,
                        ret,
                        has_modseq,
                    };
                    answer(cx, io, sel, ask, query, criteria, found)
                }
                Err(e) => {
                    if ret.save {
                        sel.search.forget_saved();
                    }
                    cx.store_error(&tag, &e);
                    Step::Continue
                }
            }
        },
    );
    Step::Continue
}

/// What the command asked for.
struct Ask<'a> {
    tag: &'a str,
    uid: bool,
    ret: SearchReturn,
    has_modseq: bool,
}

/// The ESEARCH response, `$`, the UPDATE context and the tagged OK.
fn answer(
    cx: &mut Conn,
    io: &mut Io<'_, Done>,
    sel: &mut Selection,
    ask: Ask<'_>,
    query: Arc<mailstore::Query>,
    criteria: Arc<[SortCriterion]>,
    (sorted, modseqs): Found,
) -> Step {
    let Ask {
        tag,
        uid,
        ret,
        has_modseq,
    } = ask;
    // Messages expunged from the view meanwhile have no number: left out.
    let pairs: Vec<(u32, Uid)> = sorted
        .into_iter()
        .filter_map(|u| sel.seq_of(u).map(|s| (s, u)))
        .collect();
    let ids: Vec<u32> = pairs
        .iter()
        .map(|&(s, u)| if uid { u } else { s })
        .collect();
    let picked = returned(&ret, pairs.len());
    let modseq = has_modseq
        .then(|| {
            picked
                .iter()
                .filter_map(|&i| {
                    let u = pairs[i].1;
                    modseqs
                        .binary_search_by_key(&u, |m| m.0)
                        .ok()
                        .map(|k| modseqs[k].1)
                })
                .max()
        })
        .flatten();
    // RFC 5182 §2.1: SAVE alone returns no ESEARCH.
    let save_only = ret.save
        && !(ret.min || ret.max || ret.all || ret.count || ret.update)
        && ret.partial.is_none();
    if !save_only {
        Data::ESearch(ESearch {
            tag: Some(tag),
            uid,
            data: return_data(&ret, &ids, modseq),
        })
        .encode(&mut cx.out);
    }
    if ret.save {
        let mut uids: Vec<Uid> = picked.iter().map(|&i| pairs[i].1).collect();
        uids.sort_unstable();
        sel.search.save(&uids);
    }
    if ret.update {
        let order: Vec<Uid> = pairs.iter().map(|p| p.1).collect();
        if !sel
            .search
            .add_sort_context(tag, uid, query, criteria, order)
        {
            // RFC 5267 §4.3.1: refused, the other options still honoured.
            StatusLine::untagged(
                Status::No,
                Some(Code::NoUpdate(tag.to_owned())),
                &format!(
                    "Too many search contexts (limit {}); CANCELUPDATE one",
                    crate::limits::MAX_UPDATE_CONTEXTS
                ),
            )
            .encode(&mut cx.out);
        }
    }
    cx.finish(
        io,
        Some(sel),
        tag,
        Status::Ok,
        None,
        "SORT completed",
        false,
    )
}
