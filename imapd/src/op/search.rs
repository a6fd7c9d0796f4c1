//! SEARCH and UID SEARCH (RFC 3501 §6.4.4, §7.2.5; CONDSTORE MODSEQ
//! RFC 7162 §3.1.5; WITHIN RFC 5032): typed search keys become mailstore's
//! protocol-neutral [`Query`], with message numbers and `\Recent` (session
//! state) resolved here, and WITHIN's intervals made moments from the
//! server's clock now. Results are limited to messages the client knows.

use crate::command::{Date, SearchKey};
use crate::parse::days_from_civil;
use crate::response::{Data, Status};
use crate::session::{in_selected, or_no, Conn, Done};
use crate::view::selection::Selection;
use mailstore::{Query, SystemFlag, Uid};
use netloop::{Io, Step};

fn day(d: Date) -> i64 {
    days_from_civil(d.year, d.month, d.day) * 86_400
}

fn system_flag(name: &str) -> Option<SystemFlag> {
    Some(match name {
        "\\Seen" => SystemFlag::Seen,
        "\\Answered" => SystemFlag::Answered,
        "\\Flagged" => SystemFlag::Flagged,
        "\\Deleted" => SystemFlag::Deleted,
        "\\Draft" => SystemFlag::Draft,
        _ => return None,
    })
}

/// The server's time now, in seconds since the Unix epoch.
fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Contiguous UID runs of the given (ascending) UIDs.
pub(crate) fn uid_runs(uids: impl Iterator<Item = Uid>) -> Vec<(Uid, Uid)> {
    let mut runs: Vec<(Uid, Uid)> = Vec::new();
    for u in uids {
        match runs.last_mut() {
            Some(last) if last.1.checked_add(1) == Some(u) => last.1 = u,
            _ => runs.push((u, u)),
        }
    }
    runs
}

/// Translate one key. Message-number keys need the selection.
pub(crate) fn to_query(key: &SearchKey, sel: &Selection) -> Query {
    match key {
        SearchKey::All => Query::All,
        SearchKey::Flag(f) => match system_flag(f) {
            Some(sf) => Query::Flag(sf, true),
            None => Query::Keyword(f.clone(), true),
        },
        SearchKey::NotFlag(f) => match system_flag(f) {
            Some(sf) => Query::Flag(sf, false),
            None => Query::Keyword(f.clone(), false),
        },
        SearchKey::Keyword(k) => Query::Keyword(k.clone(), true),
        SearchKey::Unkeyword(k) => Query::Keyword(k.clone(), false),
        // The session's \Recent ranges; UIDs in them it does not know
        // are dropped from the result like any other unknown UID.
        SearchKey::Recent => Query::Uids(sel.recent_ranges().to_vec()),
        SearchKey::New => Query::And(vec![
            to_query(&SearchKey::Recent, sel),
            Query::Flag(SystemFlag::Seen, false),
        ]),
        SearchKey::Old => Query::Not(Box::new(to_query(&SearchKey::Recent, sel))),
        SearchKey::Header(f, v) => Query::Header(f.clone(), v.clone()),
        SearchKey::Body(s) => Query::Body(s.clone()),
        SearchKey::Text(s) => Query::Text(s.clone()),
        SearchKey::Before(d) => Query::Before(day(*d)),
        SearchKey::On(d) => Query::On(day(*d)),
        SearchKey::Since(d) => Query::Since(day(*d)),
        SearchKey::SentBefore(d) => Query::SentBefore(day(*d)),
        SearchKey::SentOn(d) => Query::SentOn(day(*d)),
        SearchKey::SentSince(d) => Query::SentSince(day(*d)),
        SearchKey::SavedBefore(d) => Query::SavedBefore(day(*d)),
        SearchKey::SavedOn(d) => Query::SavedOn(day(*d)),
        SearchKey::SavedSince(d) => Query::SavedSince(day(*d)),
        // RFC 8514 §4.3: the store keeps save dates in every mailbox.
        SearchKey::SaveDateSupported => Query::All,
        // RFC 8474 §6: an id that is not one of ours matches nothing.
        SearchKey::EmailId(id) => match crate::objectid::parse_email(id) {
            Some(id) => Query::Message(id),
            None => Query::Any(Vec::new()),
        },
        SearchKey::ThreadId(id) => match crate::objectid::parse_thread(id) {
            Some(id) => Query::Thread(id),
            None => Query::Any(Vec::new()),
        },
        SearchKey::Larger(n) => Query::Larger(u64::from(*n)),
        SearchKey::Smaller(n) => Query::Smaller(u64::from(*n)),
        SearchKey::Uid(set) => {
            let pairs = sel.resolve(set, true).unwrap_or_default();
            Query::Uids(uid_runs(pairs.into_iter().map(|p| p.1)))
        }
        // `$` (RFC 5182 §2.1) names the same messages as a UID set.
        SearchKey::Seq(set) if set.is_saved() => to_query(&SearchKey::Uid(set.clone()), sel),
        SearchKey::Seq(set) => {
            // Out-of-range numbers simply match nothing in SEARCH.
            let n = sel.len();
            let uids = set
                .merged(n)
                .into_iter()
                .flat_map(|(a, b)| a.max(1)..=b.min(n))
                .filter_map(|seq| sel.uid(seq));
            Query::Uids(uid_runs(uids))
        }
        SearchKey::ModSeq(m) => Query::ModSeq(*m),
        // RFC 5032 §2: the interval back from the server's time now; both
        // ends inclusive, as Dovecot does (OLDER n and YOUNGER n both
        // match a message exactly n seconds old). A context kept for
        // UPDATE (RFC 5267) keeps the moment of its SEARCH.
        SearchKey::Older(n) => Query::Before(now_unix() - i64::from(*n) + 1),
        SearchKey::Younger(n) => Query::Since(now_unix() - i64::from(*n)),
        SearchKey::Not(k) => Query::Not(Box::new(to_query(k, sel))),
        // A chain of ORs (however the parser shaped it) is one `Any`, and
        // nested parentheses one `And`, so the query nests only as deep as
        // NOT/OR/AND alternate (at most MAX_SEARCH_DEPTH).
        SearchKey::Or(..) => Query::Any(
            flatten(key, |k| match k {
                SearchKey::Or(a, b) => Some(vec![&**a, &**b]),
                _ => None,
            })
            .map(|k| to_query(k, sel))
            .collect(),
        ),
        SearchKey::And(_) => Query::And(
            flatten(key, |k| match k {
                SearchKey::And(v) => Some(v.iter().collect()),
                _ => None,
            })
            .map(|k| to_query(k, sel))
            .collect(),
        ),
    }
}

/// The operands of the associative operator at `key`, left to right:
/// `split` gives the children of a node of that operator (`None` for an
/// operand), and nested nodes of the same operator are opened in a loop.
fn flatten<'k>(
    key: &'k SearchKey,
    split: impl Fn(&'k SearchKey) -> Option<Vec<&'k SearchKey>>,
) -> impl Iterator<Item = &'k SearchKey> {
    let mut out = Vec::new();
    let mut stack = vec![key];
    while let Some(k) = stack.pop() {
        match split(k) {
            Some(children) => stack.extend(children.into_iter().rev()),
            None => out.push(k),
        }
    }
    out.into_iter()
}

/// `SEARCH` / `UID SEARCH`
#[allow(clippy::too_many_arguments)]
pub(crate) fn search(
    cx: &mut Conn,
    io: &mut Io<'_, Done>,
    sel: &mut Selection,
    tag: String,
    uid: bool,
    key: SearchKey,
    has_modseq: bool,
) -> Step {
    if has_modseq {
        cx.enable_condstore(sel);
    }
    let query = to_query(&key, sel);
    let mailbox = sel.mailbox;
    cx.read(
        io,
        move |r| {
            let found = r.search(mailbox, &query)?;
            // RFC 7162 §3.1.5 wants the highest modseq of the messages
            // returned; the session caches none, so read them.
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
        or_no(
            &tag.clone(),
            in_selected(
                move |cx, sel, io, (found, modseqs): (Vec<Uid>, Vec<(Uid, u64)>)| {
                    let mut nums = Vec::with_capacity(found.len());
                    let mut max_modseq = 0;
                    for u in found {
                        let Some(seq) = sel.seq_of(u) else { continue };
                        if let Ok(i) = modseqs.binary_search_by_key(&u, |m| m.0) {
                            max_modseq = max_modseq.max(modseqs[i].1);
                        }
                        nums.push(if uid { u } else { seq });
                    }
                    let modseq = (has_modseq && max_modseq > 0).then_some(max_modseq);
                    Data::Search {
                        nums: &nums,
                        modseq,
                    }
                    .encode(&mut cx.out);
                    cx.finish(
                        io,
                        Some(sel),
                        &tag,
                        Status::Ok,
                        None,
                        "SEARCH completed",
                        false,
                    )
                },
            ),
        ),
    );
    Step::Continue
}
