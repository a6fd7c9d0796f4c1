//! Opening a mailbox and asking about one: SELECT and EXAMINE (RFC 3501
//! §6.3.1, §6.3.2; CONDSTORE, RFC 7162 §3.1.8; QRESYNC §3.2.5 with
//! `op/qresync.rs`, and `[CLOSED]` §3.2.11) and STATUS (§6.3.10, with
//! `op/status_items.rs`).
//!
//! The store always keeps modseqs, so SELECT always answers
//! `[HIGHESTMODSEQ n]` and never `[NOMODSEQ]` (RFC 7162 §3.1.2.2): every
//! mailbox can be resynchronised.
//! SELECT hands the mailbox view to the session (`view/`); its answers per
//! mailbox state come from `view/select_cache.rs` when they can.

use crate::command::{QresyncParams, StatusItem};
use crate::op::qresync::{resync, Resync};
use crate::op::status_items;
use crate::response::{Code, Data, Status, StatusLine};
use crate::session::{or_no, Done, ImapSession, State};
use crate::view::select_cache::{sort_keywords, Opened};
use crate::view::selection::{flags_lines, Selection};
use mailstore::{Mailbox, User};
use netloop::{Io, Step};

/// `SELECT` / `EXAMINE` (§6.3.1, §6.3.2)
#[allow(clippy::too_many_arguments)]
pub(crate) fn select(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    user: &User,
    tag: String,
    name: String,
    read_only: bool,
    condstore: bool,
    qresync: Option<QresyncParams>,
) -> Step {
    if qresync.is_some() && !s.cx.qresync {
        // RFC 7162 §3.2.5; the current mailbox stays selected.
        s.cx.status(
            Some(&tag),
            Status::Bad,
            None,
            "QRESYNC parameter without ENABLE QRESYNC",
        );
        return Step::Continue;
    }
    // RFC 9586 §3: QRESYNC's seq-match-data is message numbers.
    if s.cx.uidonly && qresync.as_ref().is_some_and(|q| q.seq_match.is_some()) {
        s.cx.status(
            Some(&tag),
            Status::Bad,
            Some(Code::UidRequired),
            "Message numbers cannot be used with UIDONLY enabled",
        );
        return Step::Continue;
    }
    // Selecting (even unsuccessfully) leaves the current mailbox (§6.3.1);
    // [CLOSED] marks where its responses end (RFC 7162 §3.2.11).
    if s.state.selection().is_some() {
        s.cx.status(
            None,
            Status::Ok,
            Some(Code::Closed),
            "Previous mailbox closed",
        );
    }
    s.deselect();
    if condstore {
        s.cx.condstore = true;
    }
    let uid = user.id;
    let hub = std::sync::Arc::clone(&s.cx.shared.hub);
    s.cx.read(
        io,
        move |r| {
            let Some(mb) = r.mailbox(uid, &name)? else {
                return Ok(None);
            };
            // The same state selected before: nothing to read
            // (select_cache.rs). The mailbox row and the entries are read
            // in one snapshot (Store::read runs each job in one).
            let (uidvalidity, modseq) = (mb.uidvalidity, mb.highestmodseq);
            let mut opened = match hub.selects.get(mb.id, uidvalidity, modseq) {
                Some(cached) => cached,
                None => {
                    // An older state remembered: apply what changed since
                    // (select_cache.rs); else boil every entry down here,
                    // on the store thread.
                    let newer = match hub.selects.get_older(mb.id, uidvalidity, modseq) {
                        Some(older) => older.since(r, mb.id, modseq)?,
                        None => None,
                    };
                    match newer {
                        Some(o) => o,
                        None => {
                            let summary = r.mailbox_summary(mb.id)?;
                            let mut keywords = summary.keywords;
                            sort_keywords(&mut keywords);
                            Opened {
                                uidvalidity,
                                modseq,
                                uids: summary.uids.into(),
                                keywords,
                                first_unseen: summary.first_unseen,
                            }
                        }
                    }
                }
            };
            // The session keeps only the UID map, shared with the other
            // sessions that see the mailbox at this modseq (views.rs).
            hub.views
                .intern(mb.id, uidvalidity, modseq, &mut opened.uids);
            hub.selects.put(mb.id, opened.clone());
            let resynced = match &qresync {
                Some(p) => resync(r, mb.id, uidvalidity, mb.uidnext, &opened.uids, p)?,
                None => None,
            };
            Ok(Some((mb, opened, resynced)))
        },
        or_no(
            &tag.clone(),
            move |s: &mut ImapSession, io: &mut Io<'_, Done>, found: Option<Found>| {
                match found {
                    Some((mb, opened, resynced)) => {
                        return selected(s, io, tag, mb, opened, read_only, resynced)
                    }
                    None => s.cx.status(
                        Some(&tag),
                        Status::No,
                        Some(Code::Nonexistent),
                        "No such mailbox",
                    ),
                }
                Step::Continue
            },
        ),
    );
    Step::Continue
}

/// What SELECT's store read found: the mailbox, its view, what a QRESYNC
/// client missed.
type Found = (Mailbox, Opened, Option<Resync>);

/// SELECT's untagged answers and tagged OK; the session enters the
/// Selected state.
fn selected(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    tag: String,
    mb: Mailbox,
    opened: Opened,
    read_only: bool,
    resynced: Option<Resync>,
) -> Step {
    let Opened {
        uids,
        keywords,
        first_unseen,
        ..
    } = opened;
    // EXAMINE must not take \Recent away from others (§6.3.2).
    let last_uid = uids.last().copied().unwrap_or(0);
    let hub = &s.cx.shared.hub;
    // IMAP4rev2 has no \Recent (RFC 9051 Appendix E): claim none.
    let rev2 = s.cx.rev2;
    let recent_above = if read_only || rev2 {
        hub.recent_mark(mb.id, mb.uidvalidity)
    } else {
        hub.claim_recent(mb.id, mb.uidvalidity, last_uid)
    };
    let mut sel = Selection::new(
        mb.id,
        mb.name,
        mb.uidvalidity,
        read_only,
        uids,
        mb.highestmodseq,
        keywords,
        recent_above,
    );
    sel.no_recent = rev2;
    let out = &mut s.cx.out;
    flags_lines(out, &sel.keywords, read_only);
    Data::Exists(sel.len()).encode(out);
    if rev2 {
        // RFC 9051 §6.3.2: a LIST response with the mailbox name instead
        // of RECENT and the UNSEEN code (its attributes true, not all).
        let attrs: Vec<String> = mb.special_use.iter().cloned().collect();
        Data::List {
            lsub: false,
            attrs: &attrs,
            name: &sel.name,
        }
        .encode_as(out, true);
    } else {
        Data::Recent(sel.recent_count()).encode(out);
        if let Some(u) = first_unseen {
            StatusLine::untagged(Status::Ok, Some(Code::Unseen(u)), "First unseen").encode(out);
        }
    }
    for (code, text) in [
        (Code::UidValidity(mb.uidvalidity), "UIDs valid"),
        (Code::UidNext(mb.uidnext), "Predicted next UID"),
        (Code::HighestModSeq(mb.highestmodseq), "Highest"),
        (
            Code::MailboxId(crate::objectid::mailbox(mb.id, mb.uidvalidity)),
            "Ok",
        ),
    ] {
        StatusLine::untagged(Status::Ok, Some(code), text).encode(out);
    }
    // RFC 9586 §3: under UIDONLY expunges are VANISHED, as under QRESYNC.
    sel.vanished = s.cx.qresync || s.cx.uidonly;
    sel.uidonly = s.cx.uidonly;
    // What a QRESYNC client missed (RFC 7162 §3.2.5.1): VANISHED (EARLIER)
    // first, then a FETCH (UID FLAGS MODSEQ) per changed message.
    let changed = match resynced {
        Some(r) => {
            Data::Vanished {
                earlier: true,
                ranges: &r.vanished,
            }
            .encode(out);
            r.changed
        }
        None => Vec::new(),
    };
    let (code, verb) = if read_only {
        (Code::ReadOnly, "EXAMINE")
    } else {
        (Code::ReadWrite, "SELECT")
    };
    let text = format!("{verb} completed");
    // Its first SUBJECT or FROM search answered from memory
    // (mailstore/src/search/cache.rs): filled now, in the background.
    s.cx.shared.store.warm_header_cache(mb.id);
    if changed.is_empty() {
        s.cx.status(Some(&tag), Status::Ok, Some(code), &text);
        s.enter_selected(sel);
        return Step::Continue;
    }
    // However many changed, their FETCH responses go out in bounded
    // batches, and the tagged OK after them.
    s.enter_selected(sel);
    let ImapSession { cx, state } = s;
    match state {
        State::Selected { sel, .. } => {
            crate::op::fetch::stream_changed(cx, io, sel, tag, &changed, (Some(code), text))
        }
        _ => Step::Continue,
    }
}

/// `STATUS` (§6.3.10; SIZE, RFC 8438): the items' values come from
/// `status_items.rs`, shared with LIST-STATUS.
pub(crate) fn status(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    user: &User,
    tag: String,
    name: String,
    items: Vec<StatusItem>,
) -> Step {
    let uid = user.id;
    let wanted = items.clone();
    s.cx.read(
        io,
        move |r| {
            let Some(mb) = r.mailbox(uid, &name)? else {
                return Ok(None);
            };
            let counts = status_items::read(r, mb.id, &wanted)?;
            Ok(Some((mb.name.clone(), mb.id, counts)))
        },
        or_no(
            &tag.clone(),
            move |s: &mut ImapSession,
                  io: &mut Io<'_, Done>,
                  found: Option<(String, mailstore::MailboxId, status_items::Counts)>| {
                let Some((name, id, counts)) = found else {
                    s.cx.status(
                        Some(&tag),
                        Status::No,
                        Some(Code::Nonexistent),
                        "No such mailbox",
                    );
                    return Step::Continue;
                };
                let vals = status_items::values(&s.cx.shared, id, &counts, &items);
                Data::Status {
                    name: &name,
                    items: &vals,
                }
                .encode_as(&mut s.cx.out, s.cx.utf8_names);
                s.finish(io, &tag, Status::Ok, None, "STATUS completed", true)
            },
        ),
    );
    Step::Continue
}
