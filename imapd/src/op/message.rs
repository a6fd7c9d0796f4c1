//! Selected-state commands that change messages or the selection (RFC 3501
//! §6.4): STORE (with UNCHANGEDSINCE, RFC 7162 §3.1.3), COPY and MOVE (with
//! COPYUID, RFC 4315 / RFC 6851), EXPUNGE and UID EXPUNGE, CLOSE, UNSELECT
//! (RFC 3691), and IDLE (RFC 2177). FETCH and SEARCH have their own files.
//! Under QRESYNC, EXPUNGE and MOVE end with `[HIGHESTMODSEQ]` (`qresync.rs`).

use crate::command::{Flag, SequenceSet, StoreMode};
use crate::response::{compact_set, continuation, Code, Status, StatusLine};
use crate::response::{fetch_close, fetch_open, push_num, uidfetch_open};
use crate::session::{in_selected, or_no, Conn, Done, ImapSession, Mode};
use crate::view::selection::{write_flags, Selection};
use crate::view::sync::PresyncedRead;
use mailstore::{
    CopyOutcome, Entry, FlagOp, Flags, MailboxId, Reader, StoreOutcome, SystemFlag, Uid, User,
};
use netloop::{Io, Step};

/// Convert flags from the wire to the store's form. `\Recent` cannot be
/// set by clients (§2.3.2) and unknown `\` flags are refused.
pub(crate) fn store_flags_from(flags: &[Flag]) -> Result<Flags, String> {
    let mut out = Flags::empty();
    for f in flags {
        let sys = match f.as_str() {
            "\\Seen" => Some(SystemFlag::Seen),
            "\\Answered" => Some(SystemFlag::Answered),
            "\\Flagged" => Some(SystemFlag::Flagged),
            "\\Deleted" => Some(SystemFlag::Deleted),
            "\\Draft" => Some(SystemFlag::Draft),
            _ => None,
        };
        match sys {
            Some(flag) => out.set(flag, true),
            None if f.starts_with('\\') => return Err(format!("Flag {f} cannot be set")),
            None => out.add_keyword(f),
        }
    }
    Ok(out)
}

fn read_only_refusal(cx: &mut Conn, sel: &Selection, tag: &str) -> bool {
    if sel.read_only {
        cx.status(
            Some(tag),
            Status::No,
            Some(Code::Cannot),
            "Mailbox is read-only",
        );
        return true;
    }
    false
}

/// Resolve a set against the selection, answering BAD on failure.
pub(crate) fn resolve(
    cx: &mut Conn,
    sel: &Selection,
    tag: &str,
    set: &SequenceSet,
    uid: bool,
) -> Option<Vec<(u32, Uid)>> {
    match sel.resolve(set, uid) {
        Ok(v) => Some(v),
        Err(why) => {
            cx.status(Some(tag), Status::Bad, None, &why);
            None
        }
    }
}

/// `STORE` / `UID STORE` (§6.4.6)
#[allow(clippy::too_many_arguments)]
pub(crate) fn store(
    cx: &mut Conn,
    io: &mut Io<'_, Done>,
    sel: &mut Selection,
    tag: String,
    uid: bool,
    set: SequenceSet,
    mode: StoreMode,
    silent: bool,
    flags: Vec<Flag>,
    unchanged_since: Option<u64>,
) -> Step {
    if read_only_refusal(cx, sel, &tag) {
        return Step::Continue;
    }
    let flags = match store_flags_from(&flags) {
        Ok(f) => f,
        Err(why) => {
            cx.status(Some(&tag), Status::Bad, None, &why);
            return Step::Continue;
        }
    };
    let Some(pairs) = resolve(cx, sel, &tag, &set, uid) else {
        return Step::Continue;
    };
    if unchanged_since.is_some() {
        cx.enable_condstore(sel);
    }
    let op = match mode {
        StoreMode::Add => FlagOp::Add,
        StoreMode::Remove => FlagOp::Remove,
        StoreMode::Replace => FlagOp::Replace,
    };
    let mailbox = sel.mailbox;
    let uids: Vec<Uid> = pairs.iter().map(|p| p.1).collect();
    cx.write(
        io,
        move |tx| tx.store_flags(mailbox, &uids, op, &flags, unchanged_since),
        or_no(
            &tag.clone(),
            in_selected(move |cx, sel, io, outcome: StoreOutcome| {
                // All of the STORE's changes took one modseq (the store
                // says which was before it).
                if let (Some(prior), Some(m)) = (
                    outcome.prior_modseq,
                    outcome.updated.iter().map(|e| e.modseq).max(),
                ) {
                    sel.own_store(prior, m);
                }
                let reply = StoreReply {
                    tag,
                    uid,
                    silent,
                    unchanged_since,
                    pairs,
                    updated: outcome.updated,
                    failed: outcome.failed_modified,
                };
                // Messages this STORE did not change still get a FETCH with
                // their flags (§6.4.6), which the session does not cache: read
                // them (after the commit, so they are current).
                let unchanged: Vec<Uid> = if silent {
                    Vec::new()
                } else {
                    reply
                        .pairs
                        .iter()
                        .map(|p| p.1)
                        .filter(|u| {
                            reply.failed.binary_search(u).is_err()
                                && sel.expunged.binary_search(u).is_err()
                                && reply.updated.binary_search_by_key(u, |e| e.uid).is_err()
                        })
                        .collect()
                };
                if unchanged.is_empty() {
                    return store_reply(cx, io, sel, reply, &[]);
                }
                // The sync that ends the STORE reads in the same snapshot.
                let pre = cx.presync(sel);
                cx.read(
                    io,
                    move |r| Ok((current_flags(r, mailbox, &unchanged), pre.map(|p| p.run(r)))),
                    in_selected(
                        move |cx, sel, io, res: mailstore::Result<PresyncedRead<Vec<Entry>>>| {
                            let current = cx.with_presynced(res);
                            let current = current.unwrap_or_else(|e| {
                                log::warn!("imapd conn {}: STORE reply flags: {e}", cx.id);
                                Vec::new()
                            });
                            store_reply(cx, io, sel, reply, &current)
                        },
                    ),
                );
                Step::Continue
            }),
        ),
    );
    Step::Continue
}

/// A STORE whose write is done, waiting for its replies.
struct StoreReply {
    tag: String,
    uid: bool,
    silent: bool,
    unchanged_since: Option<u64>,
    pairs: Vec<(u32, Uid)>,
    /// Entries the STORE changed (uid ascending).
    updated: Vec<Entry>,
    /// Refused by UNCHANGEDSINCE (ascending).
    failed: Vec<Uid>,
}

/// Current flags of `uids` (ascending); missing ones are skipped. A few
/// are read by UID (with their metadata), many by one scan of the
/// mailbox's entries.
fn current_flags(r: &Reader, mailbox: MailboxId, uids: &[Uid]) -> mailstore::Result<Vec<Entry>> {
    if uids.len() <= FEW_UIDS {
        return Ok(r
            .messages_with(
                mailbox,
                uids,
                mailstore::MetaParts {
                    envelope: false,
                    structure: false,
                },
            )?
            .into_iter()
            .map(|m| Entry {
                uid: m.uid,
                flags: m.flags,
                modseq: m.modseq,
            })
            .collect());
    }
    Ok(r.entries(mailbox)?
        .into_iter()
        .filter(|e| uids.binary_search(&e.uid).is_ok())
        .collect())
}

/// Up to this many UIDs, [`current_flags`] reads just those messages.
const FEW_UIDS: usize = 64;

/// The untagged FETCH replies of a STORE (§6.4.6, RFC 7162 §3.1.3), then
/// its tagged line. `current` holds the flags of messages it did not change.
fn store_reply(
    cx: &mut Conn,
    io: &mut Io<'_, Done>,
    sel: &mut Selection,
    r: StoreReply,
    current: &[Entry],
) -> Step {
    let condstore = cx.condstore;
    for &(seq, u) in &r.pairs {
        if r.failed.binary_search(&u).is_ok() || sel.expunged.binary_search(&u).is_ok() {
            continue;
        }
        let (entry, was_updated) = match r.updated.binary_search_by_key(&u, |e| e.uid) {
            Ok(i) => (Some(&r.updated[i]), true),
            Err(_) => (
                current
                    .binary_search_by_key(&u, |e| e.uid)
                    .ok()
                    .map(|i| &current[i]),
                false,
            ),
        };
        let Some(e) = entry else {
            continue;
        };
        sel.learn(&e.flags, &mut cx.out);
        // RFC 7162 §3.1.3: with UNCHANGEDSINCE, changed messages are
        // reported (with MODSEQ) even under .SILENT. A silent change is
        // the client's own: the next sync does not report it either.
        sel.note_reported(u, e.modseq);
        if r.silent && !(was_updated && r.unchanged_since.is_some()) {
            continue;
        }
        // `* seq FETCH (...)` written straight onto the output (a STORE
        // of a whole mailbox answers for every message).
        let out = &mut cx.out;
        match sel.uidonly {
            true => uidfetch_open(out, u),
            false => fetch_open(out, seq),
        }
        // Under QRESYNC, STORE's FETCH responses carry the UID (RFC 7162
        // §3.2.4; as Dovecot, not for CONDSTORE alone), as in UID STORE.
        if r.uid || cx.qresync {
            out.extend_from_slice(b"UID ");
            push_num(out, u64::from(u));
            out.push(b' ');
        }
        out.extend_from_slice(b"FLAGS ");
        write_flags(out, &e.flags, sel.is_recent(u));
        if condstore {
            out.extend_from_slice(b" MODSEQ (");
            push_num(out, e.modseq);
            out.push(b')');
        }
        fetch_close(out);
    }
    let code = if r.failed.is_empty() {
        None
    } else if r.uid {
        Some(Code::Modified(compact_set(&r.failed)))
    } else {
        let seqs: Vec<u32> = r.failed.iter().filter_map(|u| sel.seq_of(*u)).collect();
        Some(Code::Modified(compact_set(&seqs)))
    };
    let text = if code.is_some() {
        "Conditional STORE failed for some"
    } else {
        "STORE completed"
    };
    cx.finish(io, Some(sel), &r.tag, Status::Ok, code, text, false)
}

/// `COPY` / `MOVE` and their UID forms (§6.4.7, RFC 6851 §3)
#[allow(clippy::too_many_arguments)]
pub(crate) fn copy(
    cx: &mut Conn,
    io: &mut Io<'_, Done>,
    user: &User,
    sel: &mut Selection,
    tag: String,
    uid: bool,
    set: SequenceSet,
    dest: String,
    is_move: bool,
) -> Step {
    if is_move && read_only_refusal(cx, sel, &tag) {
        return Step::Continue;
    }
    let Some(pairs) = resolve(cx, sel, &tag, &set, uid) else {
        return Step::Continue;
    };
    let src = sel.mailbox;
    let user = user.id;
    let uids: Vec<Uid> = pairs.iter().map(|p| p.1).collect();
    let verb = if is_move { "MOVE" } else { "COPY" };
    let tag2 = tag.clone();
    cx.read(
        io,
        move |r| r.mailbox(user, &dest),
        or_no(
            &tag2,
            in_selected(move |cx, _sel, io, found: Option<mailstore::Mailbox>| {
                let Some(dst) = found.map(|mb| mb.id) else {
                    cx.status(
                        Some(&tag),
                        Status::No,
                        Some(Code::TryCreate),
                        "No such mailbox",
                    );
                    return Step::Continue;
                };
                let tag2 = tag.clone();
                cx.write(
                    io,
                    move |tx| {
                        if is_move {
                            tx.move_messages(src, &uids, dst)
                        } else {
                            tx.copy(src, &uids, dst)
                        }
                    },
                    or_no(
                        &tag2,
                        in_selected(move |cx, sel, io, outcome: CopyOutcome| {
                            let code = (!outcome.map.is_empty()).then(|| {
                                let a: Vec<Uid> = outcome.map.iter().map(|m| m.0).collect();
                                let b: Vec<Uid> = outcome.map.iter().map(|m| m.1).collect();
                                Code::CopyUid(outcome.uidvalidity, compact_set(&a), compact_set(&b))
                            });
                            if !is_move {
                                return cx.finish(
                                    io,
                                    Some(sel),
                                    &tag,
                                    Status::Ok,
                                    code,
                                    "COPY completed",
                                    true,
                                );
                            }
                            if code.is_some() {
                                StatusLine::untagged(Status::Ok, code, "Moved").encode(&mut cx.out);
                            }
                            let moved: Vec<Uid> = outcome.map.iter().map(|m| m.0).collect();
                            sel.remove(&moved, &mut cx.out);
                            super::qresync::finish_expunge(
                                cx,
                                io,
                                sel,
                                tag,
                                format!("{verb} completed"),
                                !moved.is_empty(),
                            )
                        }),
                    ),
                );
                Step::Continue
            }),
        ),
    );
    Step::Continue
}

/// `EXPUNGE` / `UID EXPUNGE` (§6.4.3, RFC 4315 §2.1)
pub(crate) fn expunge(
    cx: &mut Conn,
    io: &mut Io<'_, Done>,
    sel: &mut Selection,
    tag: String,
    uids: Option<SequenceSet>,
) -> Step {
    if read_only_refusal(cx, sel, &tag) {
        return Step::Continue;
    }
    let only: Option<Vec<Uid>> = match &uids {
        None => None,
        Some(set) => match resolve(cx, sel, &tag, set, true) {
            Some(p) => Some(p.into_iter().map(|x| x.1).collect()),
            None => return Step::Continue,
        },
    };
    let mailbox = sel.mailbox;
    cx.write(
        io,
        move |tx| tx.expunge(mailbox, only.as_deref()),
        or_no(
            &tag.clone(),
            in_selected(move |cx, sel, io, gone: Vec<Uid>| {
                sel.remove(&gone, &mut cx.out);
                let removed = !gone.is_empty();
                super::qresync::finish_expunge(
                    cx,
                    io,
                    sel,
                    tag,
                    "EXPUNGE completed".into(),
                    removed,
                )
            }),
        ),
    );
    Step::Continue
}

/// `CLOSE` (§6.4.2: silent expunge if read-write) or `UNSELECT` (RFC 3691).
pub(crate) fn close(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    tag: String,
    expunge: bool,
) -> Step {
    let Some(sel) = s.state.selection() else {
        return Step::Continue;
    };
    let (mailbox, read_only) = (sel.mailbox, sel.read_only);
    let verb = if expunge { "CLOSE" } else { "UNSELECT" };
    s.deselect();
    if !expunge || read_only {
        s.cx.status(Some(&tag), Status::Ok, None, &format!("{verb} completed"));
        return Step::Continue;
    }
    s.cx.write(
        io,
        move |tx| tx.expunge(mailbox, None),
        or_no(
            &tag.clone(),
            move |s: &mut ImapSession, _io: &mut Io<'_, Done>, _gone: Vec<Uid>| {
                s.cx.status(Some(&tag), Status::Ok, None, "CLOSE completed");
                Step::Continue
            },
        ),
    );
    Step::Continue
}

/// `IDLE` (RFC 2177): report what is pending, then push changes until DONE.
pub(crate) fn idle(s: &mut ImapSession, io: &mut Io<'_, Done>, tag: String) -> Step {
    s.cx.pending
        .store(true, std::sync::atomic::Ordering::SeqCst);
    io.set_timeout(s.cx.shared.config.autologout);
    s.sync(io, true, move |cx, _, io| {
        continuation(&mut cx.out, "idling");
        cx.mode = Mode::Idle {
            tag,
            _counted: metrics::idle_session(),
        };
        cx.idle_started(io);
        Step::Continue
    })
}
