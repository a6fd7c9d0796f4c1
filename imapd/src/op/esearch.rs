//! Extended SEARCH: `SEARCH RETURN (...)` answered with one ESEARCH
//! response (RFC 4731 §3.1; MODSEQ RFC 4731 §3.2), saving the result as
//! `$` (SEARCHRES, RFC 5182 §2), PARTIAL results and UPDATE contexts
//! (CONTEXT=SEARCH, RFC 5267 §4), and CANCELUPDATE (§4.3.5).
//!
//! The search itself is the one of `search.rs` (same query, same store
//! read); only what is returned and remembered differs. The result list
//! is in mailbox order (RFC 5267 §4.1: a server with CONTEXT=SEARCH
//! orders SEARCH results "in mailbox order").

use super::search::to_query;
use crate::command::{SearchKey, SearchReturn};
use crate::response::{Code, Data, ESearch, ReturnData, Status, StatusLine};
use crate::session::{Conn, Done, ImapSession, State};
use crate::view::selection::Selection;
use mailstore::{Query, Uid};
use netloop::{Io, Step};
use std::sync::Arc;

/// Which results (indexes into the result list) a SEARCH "returns" in the
/// sense of RFC 4731 §3.2 (whose mod-sequences MODSEQ covers) and RFC
/// 5182 §2.1 (what SAVE keeps): all of them with ALL or COUNT; else MIN
/// and MAX and the PARTIAL range, those asked for; all of them when none
/// is (SAVE or UPDATE alone). As Dovecot does, PARTIAL without ALL or
/// COUNT saves just its range.
pub(super) fn returned(ret: &SearchReturn, n: usize) -> Vec<usize> {
    if n == 0 {
        return Vec::new();
    }
    let some = ret.min || ret.max || ret.partial.is_some();
    if ret.all || ret.count || !some {
        return (0..n).collect();
    }
    let mut picked = Vec::new();
    if ret.min {
        picked.push(0);
    }
    if let Some(r) = partial_range(ret, n) {
        picked.extend(r);
    }
    if ret.max {
        picked.push(n - 1);
    }
    picked.sort_unstable();
    picked.dedup();
    picked
}

/// The indexes PARTIAL `a:b` selects from `n` results (1-based range).
fn partial_range(ret: &SearchReturn, n: usize) -> Option<std::ops::Range<usize>> {
    let (a, b) = ret.partial?;
    let lo = (a as usize).saturating_sub(1);
    let hi = (b as usize).min(n);
    (lo < hi).then_some(lo..hi)
}

/// The ESEARCH return data for `ids` (the result list: UIDs or message
/// numbers, ascending), in Dovecot's order: MIN MAX ALL PARTIAL COUNT
/// MODSEQ.
pub(super) fn return_data(ret: &SearchReturn, ids: &[u32], modseq: Option<u64>) -> Vec<ReturnData> {
    let mut data = Vec::new();
    if let (true, Some(&m)) = (ret.min, ids.first()) {
        data.push(ReturnData::Min(m));
    }
    if let (true, Some(&m)) = (ret.max, ids.last()) {
        data.push(ReturnData::Max(m));
    }
    if ret.all && !ids.is_empty() {
        data.push(ReturnData::All(ids.to_vec()));
    }
    if let Some(range) = ret.partial {
        let nums = partial_range(ret, ids.len()).map_or_else(Vec::new, |r| ids[r].to_vec());
        data.push(ReturnData::Partial { range, nums });
    }
    if ret.count {
        data.push(ReturnData::Count(ids.len() as u32));
    }
    if let Some(m) = modseq {
        data.push(ReturnData::ModSeq(m));
    }
    data
}

/// `SEARCH RETURN (...)` / `UID SEARCH RETURN (...)`
#[allow(clippy::too_many_arguments)]
pub(crate) fn esearch(
    cx: &mut Conn,
    io: &mut Io<'_, Done>,
    sel: &mut Selection,
    tag: String,
    uid: bool,
    ret: SearchReturn,
    key: SearchKey,
    has_modseq: bool,
) -> Step {
    // RFC 5267 §4.3: "An attempt to use UPDATE where a tag is already in
    // use with a previous searching command that itself used UPDATE SHALL
    // result in the server rejecting the searching command with a BAD".
    if ret.update && sel.search.has_context(&tag) {
        cx.status(
            Some(&tag),
            Status::Bad,
            None,
            "Tag reuse: a SEARCH UPDATE with this tag is live",
        );
        return Step::Continue;
    }
    if has_modseq {
        cx.enable_condstore(sel);
    }
    let query = Arc::new(to_query(&key, sel));
    let mailbox = sel.mailbox;
    let q = Arc::clone(&query);
    cx.read(
        io,
        move |r| {
            let found = r.search(mailbox, &q)?;
            let modseqs: Vec<(Uid, u64)> = if has_modseq && !found.is_empty() {
                r.entries(mailbox)?
                    .into_iter()
                    .filter(|e| found.binary_search(&e.uid).is_ok())
                    .map(|e| (e.uid, e.modseq))
                    .collect()
            } else {
                Vec::new()
            };
            Ok((found, modseqs))
        },
        move |s: &mut ImapSession, io: &mut Io<'_, Done>, res| {
            let ImapSession { cx, state } = s;
            let State::Selected { sel, .. } = state else {
                return Step::Continue;
            };
            match res {
                Ok((found, modseqs)) => answer(
                    cx, io, sel, &tag, uid, ret, has_modseq, query, found, &modseqs,
                ),
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

/// The ESEARCH response, `$`, the UPDATE context and the tagged OK for
/// the messages `found` (UIDs ascending; `modseqs` theirs when asked).
#[allow(clippy::too_many_arguments)]
fn answer(
    cx: &mut Conn,
    io: &mut Io<'_, Done>,
    sel: &mut Selection,
    tag: &str,
    uid: bool,
    ret: SearchReturn,
    has_modseq: bool,
    query: Arc<Query>,
    found: Vec<Uid>,
    modseqs: &[(Uid, u64)],
) -> Step {
    // Only messages the client knows (§7.2.5 of RFC 3501 as in search.rs).
    let pairs: Vec<(u32, Uid)> = found
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
    // RFC 5182 §2.1 / RFC 9051 §6.4.4: SAVE alone returns no ESEARCH.
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
        let uids: Vec<Uid> = picked.iter().map(|&i| pairs[i].1).collect();
        sel.search.save(&uids);
    }
    if ret.update {
        let result: Vec<Uid> = pairs.iter().map(|p| p.1).collect();
        if !sel.search.add_context(tag, uid, query, result) {
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
        "SEARCH completed",
        false,
    )
}

/// `CANCELUPDATE "tag" ...` (RFC 5267 §4.3.5): the named contexts stop.
/// A tag with no live context is answered NO (as Dovecot), after the
/// others named are cancelled.
pub(crate) fn cancelupdate(
    cx: &mut Conn,
    io: &mut Io<'_, Done>,
    sel: &mut Selection,
    tag: String,
    tags: Vec<String>,
) -> Step {
    let unknown: Vec<&str> = tags
        .iter()
        .filter(|t| !sel.search.cancel(t))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        let text = format!("No search updates for tag {}", unknown.join(", "));
        cx.status(Some(&tag), Status::No, None, &text);
        return Step::Continue;
    }
    cx.finish(
        io,
        Some(sel),
        &tag,
        Status::Ok,
        None,
        "Updates cancelled",
        false,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ret(f: impl FnOnce(&mut SearchReturn)) -> SearchReturn {
        let mut r = SearchReturn::default();
        f(&mut r);
        r
    }

    #[test]
    fn modseq_and_save_cover_what_is_returned() {
        // RFC 5182 §2.1 table (RFC 9051 §6.4.4.1 Table 4).
        let min = ret(|r| r.min = true);
        assert_eq!(returned(&min, 5), vec![0]);
        let max = ret(|r| r.max = true);
        assert_eq!(returned(&max, 5), vec![4]);
        let both = ret(|r| (r.min, r.max) = (true, true));
        assert_eq!(returned(&both, 5), vec![0, 4]);
        assert_eq!(returned(&both, 1), vec![0]);
        let count = ret(|r| (r.min, r.count) = (true, true));
        assert_eq!(returned(&count, 3), vec![0, 1, 2]);
        let save = ret(|r| r.save = true);
        assert_eq!(returned(&save, 3), vec![0, 1, 2]);
        let partial = ret(|r| r.partial = Some((2, 3)));
        assert_eq!(returned(&partial, 5), vec![1, 2]);
        assert_eq!(returned(&partial, 0), Vec::<usize>::new());
    }

    #[test]
    fn partial_takes_the_range_of_the_result_list() {
        // imaptest search-partial: 1:2,4:5 with PARTIAL 2:4 is 2,4:5.
        let ids = [1, 2, 4, 5];
        let d = return_data(&ret(|r| r.partial = Some((2, 4))), &ids, None);
        assert_eq!(
            d,
            vec![ReturnData::Partial {
                range: (2, 4),
                nums: vec![2, 4, 5]
            }]
        );
        let d = return_data(&ret(|r| r.partial = Some((6, 6))), &ids, None);
        assert_eq!(
            d,
            vec![ReturnData::Partial {
                range: (6, 6),
                nums: vec![]
            }]
        );
    }

    #[test]
    fn nothing_found_returns_only_count() {
        let all = ret(|r| (r.min, r.max, r.all, r.count) = (true, true, true, true));
        assert_eq!(return_data(&all, &[], None), vec![ReturnData::Count(0)]);
    }
}
