//! FETCH and UID FETCH (RFC 3501 §6.4.5; CONDSTORE RFC 7162 §3.1.4, QRESYNC
//! VANISHED §3.2.6 with `qresync.rs`),
//! streamed: messages are fetched in batches bounded by count and bytes,
//! each batch is read *and encoded* on a store thread (`fetch_encode.rs`),
//! large bodies are left as byte ranges and read in chunks, and more is
//! produced only when little output is waiting (netloop's `on_drained`
//! resumes the pump), so neither a 100,000-message FETCH nor a huge message
//! ever sits in memory whole. One batch is read ahead while the one before
//! is written (issue 21: reading and writing overlap instead of taking
//! turns), so a streaming FETCH holds at most two batches and the output
//! window.
//!
//! Non-PEEK body fetches set `\Seen` first (one write), and FLAGS are then
//! included in the response for the messages that changed.

use super::fetch_encode::{encode_batch, Encoded, Item, Seg};
use crate::command::{FetchAtt, SequenceSet};
use crate::limits::{CHUNK, FETCH_BATCH_MESSAGES as BATCH_MESSAGES, HIGH_WATER};
use crate::response::{Code, Status};
use crate::session::{in_selected, Busy, Conn, Done};
use crate::view::selection::Selection;
use crate::view::sync::PresyncedRead;
use mailstore::{FlagOp, Flags, MailboxId, Query, SystemFlag, Uid};
use netloop::{Io, Step};
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

/// A FETCH in progress.
pub(crate) struct FetchJob {
    tag: String,
    mailbox: MailboxId,
    atts: Arc<Vec<FetchAtt>>,
    items: Vec<Item>,
    next: usize,
    /// Encoded output of the current batch not yet queued.
    segs: VecDeque<Seg>,
    /// The next batch, read ahead while `segs` go out (or its error,
    /// answered once `segs` are out: never inside a literal).
    ahead: Option<mailstore::Result<Encoded>>,
    /// A batch read is in flight (its result becomes `ahead`).
    batch_reading: bool,
    /// A body chunk read is in flight: nothing else may be queued before
    /// it arrives.
    chunk_reading: bool,
    /// Set when a BINARY item met an encoding we cannot undo.
    unknown_cte: Option<String>,
    /// The tagged OK's code and text (FETCH's, or SELECT's when it streams
    /// QRESYNC's changed messages).
    done: (Option<Code>, String),
    /// SELECT (QRESYNC): end without a sync (nothing but the mailbox as
    /// selected may be reported inside SELECT: clients count EXISTS there).
    in_select: bool,
    /// The highest MODSEQ shown so far.
    max_modseq: u64,
}

/// Whether fetching `a` implicitly sets `\Seen` (§6.4.5).
fn sets_seen(a: &FetchAtt) -> bool {
    matches!(
        a,
        FetchAtt::Rfc822
            | FetchAtt::Rfc822Text
            | FetchAtt::Section { peek: false, .. }
            | FetchAtt::Binary { peek: false, .. }
    )
}

/// `FETCH` / `UID FETCH`
#[allow(clippy::too_many_arguments)]
pub(crate) fn fetch(
    cx: &mut Conn,
    io: &mut Io<'_, Done>,
    sel: &mut Selection,
    tag: String,
    uid: bool,
    set: SequenceSet,
    atts: Vec<FetchAtt>,
    changed_since: Option<u64>,
    vanished: bool,
) -> Step {
    if vanished && !cx.qresync {
        // RFC 7162 §3.2.6 (the parser checked UID and CHANGEDSINCE).
        cx.status(
            Some(&tag),
            Status::Bad,
            None,
            "VANISHED without ENABLE QRESYNC",
        );
        return Step::Continue;
    }
    if changed_since.is_none() {
        return start(cx, io, sel, tag, uid, set, atts, None, false);
    }
    // Report pending changes first, as before any FETCH response (no
    // EXPUNGE: this is a FETCH); the filter itself asks the store.
    cx.sync(io, Some(sel), false, move |cx, sel, io| match sel {
        Some(sel) => start(cx, io, sel, tag, uid, set, atts, changed_since, vanished),
        None => Step::Continue,
    })
}

#[allow(clippy::too_many_arguments)]
fn start(
    cx: &mut Conn,
    io: &mut Io<'_, Done>,
    sel: &mut Selection,
    tag: String,
    uid: bool,
    set: SequenceSet,
    mut atts: Vec<FetchAtt>,
    changed_since: Option<u64>,
    vanished: bool,
) -> Step {
    let Some(pairs) = super::message::resolve(cx, sel, &tag, &set, uid) else {
        return Step::Continue;
    };
    // UID FETCH (VANISHED) asks about every UID of the set, known or not.
    let vanished_within = vanished.then(|| set.merged(sel.last_uid()));
    if atts.contains(&FetchAtt::ModSeq) {
        cx.enable_condstore(sel);
    }
    // UID FETCH always reports UIDs (§6.4.8), and under QRESYNC every
    // FETCH does (RFC 7162 §3.2.4); put it first.
    if (uid || cx.qresync) && !atts.contains(&FetchAtt::Uid) {
        atts.insert(0, FetchAtt::Uid);
    }
    let items: Vec<Item> = pairs
        .into_iter()
        .map(|(seq, u)| Item {
            seq,
            uid: u,
            recent: sel.is_recent(u),
            add_flags: false,
            uidonly: sel.uidonly,
        })
        .collect();
    let want_seen = !sel.read_only && atts.iter().any(sets_seen);
    let job = FetchJob {
        tag,
        mailbox: sel.mailbox,
        atts: Arc::new(atts),
        items,
        next: 0,
        segs: VecDeque::new(),
        ahead: None,
        batch_reading: false,
        chunk_reading: false,
        unknown_cte: None,
        done: (None, "FETCH completed".into()),
        in_select: false,
        max_modseq: 0,
    };
    if changed_since.is_none() && !want_seen {
        return stream(cx, io, sel, job);
    }
    // The session caches no flags or modseqs: ask the store which of the
    // messages changed since CHANGEDSINCE (RFC 7162 §3.1.4) and which lack
    // \Seen, so that only those are written (one write, none at all when
    // every message is already seen).
    let mailbox = job.mailbox;
    let uids: Vec<Uid> = job.items.iter().map(|it| it.uid).collect();
    cx.read(
        io,
        move |r| {
            let mut vanished: Option<super::qresync::Ranges> = None;
            let changed: Option<HashSet<Uid>> = match changed_since {
                Some(c) => {
                    let changes = r.changes_since(mailbox, c)?;
                    if let Some(within) = &vanished_within {
                        vanished = Some(super::qresync::vanished_in(r, mailbox, &changes, within)?);
                    }
                    Some(changes.changed.into_iter().map(|e| e.uid).collect())
                }
                None => None,
            };
            let unseen = if want_seen && !uids.is_empty() {
                let q = Query::And(vec![
                    Query::Uids(super::search::uid_runs(uids.iter().copied())),
                    Query::Flag(SystemFlag::Seen, false),
                ]);
                r.search(mailbox, &q)?
            } else {
                Vec::new()
            };
            Ok((changed, unseen, vanished))
        },
        in_selected(move |cx, sel, io, res| {
            let mut job = job;
            let (changed, mut unseen, vanished): (
                Option<HashSet<Uid>>,
                Vec<Uid>,
                Option<super::qresync::Ranges>,
            ) = match res {
                Ok(v) => v,
                Err(e) => {
                    cx.store_error(&job.tag, &e);
                    return Step::Continue;
                }
            };
            if let Some(ranges) = vanished {
                // Before the FETCH responses (RFC 7162 §3.2.6).
                crate::response::Data::Vanished {
                    earlier: true,
                    ranges: ranges.as_slice(),
                }
                .encode(&mut cx.out);
            }
            if let Some(changed) = changed {
                job.items.retain(|it| changed.contains(&it.uid));
                unseen.retain(|u| changed.contains(u));
            }
            set_seen(cx, io, sel, job, unseen)
        }),
    );
    Step::Continue
}

/// Stream `FETCH (UID FLAGS MODSEQ)` of `uids` (known to `sel`, ascending),
/// then the tagged OK with `done`: SELECT (QRESYNC) reporting changed
/// messages (RFC 7162 §3.2.5.1), however many, in bounded batches.
pub(crate) fn stream_changed(
    cx: &mut Conn,
    io: &mut Io<'_, Done>,
    sel: &mut Selection,
    tag: String,
    uids: &[Uid],
    done: (Option<Code>, String),
) -> Step {
    let items = uids
        .iter()
        .filter_map(|&u| {
            Some(Item {
                seq: sel.seq_of(u)?,
                uid: u,
                recent: sel.is_recent(u),
                add_flags: false,
                uidonly: sel.uidonly,
            })
        })
        .collect();
    let job = FetchJob {
        tag,
        mailbox: sel.mailbox,
        atts: Arc::new(vec![FetchAtt::Uid, FetchAtt::Flags, FetchAtt::ModSeq]),
        items,
        next: 0,
        segs: VecDeque::new(),
        ahead: None,
        batch_reading: false,
        chunk_reading: false,
        unknown_cte: None,
        done,
        in_select: true,
        max_modseq: 0,
    };
    stream(cx, io, sel, job)
}

/// Set `\Seen` on `unseen` (a non-PEEK body FETCH, §6.4.5), then stream
/// `job`, adding FLAGS for the messages that changed.
fn set_seen(
    cx: &mut Conn,
    io: &mut Io<'_, Done>,
    sel: &mut Selection,
    job: FetchJob,
    unseen: Vec<Uid>,
) -> Step {
    if unseen.is_empty() {
        return stream(cx, io, sel, job);
    }
    let mailbox = job.mailbox;
    cx.write(
        io,
        move |tx| {
            tx.store_flags(
                mailbox,
                &unseen,
                FlagOp::Add,
                &Flags::system(Flags::SEEN),
                None,
            )
        },
        in_selected(
            move |cx, sel, io, res: mailstore::Result<mailstore::StoreOutcome>| {
                let mut job = job;
                match res {
                    Ok(outcome) => {
                        // The FETCH responses carry the new flags (FLAGS is
                        // added where not asked for), so the client hears of
                        // the change there and the next sync stays quiet.
                        let changed: HashSet<Uid> = outcome.updated.iter().map(|e| e.uid).collect();
                        let has_flags = job.atts.contains(&FetchAtt::Flags);
                        // A FETCH that sets \Seen reports the new MODSEQ
                        // once CONDSTORE is on (RFC 7162 §3.2.4; the UID
                        // is there under QRESYNC already).
                        if cx.condstore
                            && !changed.is_empty()
                            && !job.atts.contains(&FetchAtt::ModSeq)
                        {
                            Arc::make_mut(&mut job.atts).push(FetchAtt::ModSeq);
                        }
                        for it in &mut job.items {
                            it.add_flags = !has_flags && changed.contains(&it.uid);
                        }
                    }
                    Err(e) => log::warn!("imapd conn {}: setting \\Seen: {e}", cx.id),
                }
                stream(cx, io, sel, job)
            },
        ),
    );
    Step::Continue
}

/// Start streaming `job`'s responses.
fn stream(cx: &mut Conn, io: &mut Io<'_, Done>, sel: &mut Selection, job: FetchJob) -> Step {
    cx.busy = Busy::Streaming {
        job: Box::new(job),
        reading: 0,
    };
    next_batch(cx, io, sel)
}

/// Move the FETCH forward: queue encoded segments until enough output is
/// waiting (then `on_drained` calls again), read the next chunk of a
/// large body, take the batch read ahead (and start reading the one after
/// it), or finish the command.
pub(crate) fn next_batch(cx: &mut Conn, io: &mut Io<'_, Done>, sel: &mut Selection) -> Step {
    loop {
        let Busy::Streaming { job, .. } = &mut cx.busy else {
            return Step::Continue;
        };
        if job.chunk_reading {
            // Its callback comes back here.
            return Step::Continue;
        }
        if io.out.len() + cx.out.len() >= HIGH_WATER {
            return Step::Continue;
        }
        match job.segs.pop_front() {
            // Moved, not copied, when nothing is queued before it.
            Some(Seg::Bytes(b)) if cx.out.is_empty() => cx.out = b,
            Some(Seg::Bytes(b)) => cx.out.extend_from_slice(&b),
            Some(Seg::Raw {
                uid,
                message,
                off,
                len,
            }) => {
                let n = len.min(CHUNK);
                if len > n {
                    job.segs.push_front(Seg::Raw {
                        uid,
                        message,
                        off: off + n,
                        len: len - n,
                    });
                }
                job.chunk_reading = true;
                cx.read(
                    io,
                    move |r| {
                        let mut bytes = Vec::with_capacity(n as usize);
                        r.message_range_into(message, off, n, &mut bytes)?;
                        Ok(bytes)
                    },
                    in_selected(move |cx, sel, io, res: mailstore::Result<Vec<u8>>| {
                        if let Busy::Streaming { job, .. } = &mut cx.busy {
                            job.chunk_reading = false;
                        }
                        let mut bytes = res.unwrap_or_else(|e| {
                            log::warn!("imapd conn {}: body chunk of UID {uid}: {e}", cx.id);
                            Vec::new()
                        });
                        // The literal's length is already on the wire: keep
                        // the stream in step whatever happened.
                        bytes.resize(n as usize, b' ');
                        super::fetch_encode::no_nul(&mut bytes);
                        if cx.out.is_empty() {
                            cx.out = bytes;
                        } else {
                            cx.out.extend_from_slice(&bytes);
                        }
                        next_batch(cx, io, sel)
                    }),
                );
                read_ahead(cx, io, sel);
                return Step::Continue;
            }
            Some(Seg::Binary(stream)) => {
                let mailbox = job.mailbox;
                job.chunk_reading = true;
                binary_chunk(cx, io, mailbox, stream);
                read_ahead(cx, io, sel);
                return Step::Continue;
            }
            None => {
                if let Some(cte) = job.unknown_cte.take() {
                    let tag = job.tag.clone();
                    cx.busy = Busy::Ready;
                    let text = format!("Cannot decode content transfer encoding {cte:?}");
                    return cx.finish(
                        io,
                        Some(sel),
                        &tag,
                        Status::No,
                        Some(crate::response::Code::UnknownCte),
                        &text,
                        false,
                    );
                }
                match job.ahead.take() {
                    Some(Ok(enc)) => {
                        take_batch(cx, sel, enc);
                        read_ahead(cx, io, sel);
                        continue;
                    }
                    Some(Err(e)) => {
                        let tag = std::mem::take(&mut job.tag);
                        cx.busy = Busy::Ready;
                        cx.store_error(&tag, &e);
                        return Step::Continue;
                    }
                    None if job.batch_reading => return Step::Continue,
                    None => {}
                }
                if job.next >= job.items.len() {
                    let tag = job.tag.clone();
                    let (code, text) = std::mem::take(&mut job.done);
                    let (in_select, shown) = (job.in_select, job.max_modseq);
                    cx.busy = Busy::Ready;
                    if !in_select {
                        return cx.finish(io, Some(sel), &tag, Status::Ok, code, &text, false);
                    }
                    // SELECT (QRESYNC): the view stays at the snapshot the
                    // SELECT reported. A MODSEQ newer than that (a change
                    // while streaming) must not become the client's resync
                    // point: say HIGHESTMODSEQ again (RFC 7162 §3.2); the
                    // next command reports what else changed.
                    if shown > sel.modseq {
                        cx.status(
                            None,
                            Status::Ok,
                            Some(Code::HighestModSeq(sel.modseq)),
                            "Highest",
                        );
                    }
                    cx.status(Some(&tag), Status::Ok, code, &text);
                    cx.flush(io);
                    return Step::Continue;
                }
                read_ahead(cx, io, sel);
                return Step::Continue;
            }
        }
    }
}

/// Make a batch read ahead the current one: its segments go out next.
fn take_batch(cx: &mut Conn, sel: &mut Selection, enc: Encoded) {
    let Busy::Streaming { job, .. } = &mut cx.busy else {
        return;
    };
    job.segs = enc.segs;
    job.unknown_cte = enc.unknown_cte;
    job.max_modseq = job.max_modseq.max(enc.max_modseq);
    // A keyword another session just created is announced before the
    // first FETCH that shows it (§7.2.6).
    sel.learn_keywords(&enc.keywords, &mut cx.out);
    // The client now knows these flags: no need to repeat them as
    // unsolicited FETCH responses at the next sync.
    for (uid, modseq) in enc.seen {
        sel.note_reported(uid, modseq);
    }
    // A MODSEQ newer than the view: the sync that ends the FETCH must
    // read what else changed up to it (an expunge it must hold back, and
    // then lower HIGHESTMODSEQ for, RFC 7162 §3.2), even if the hub's
    // wake-up is still on its way.
    // A sync read in this batch's snapshot covers it.
    let covered = cx
        .presynced
        .as_ref()
        .is_some_and(|p| p.highestmodseq() >= enc.max_modseq);
    if enc.max_modseq > sel.modseq && !covered {
        cx.pending.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Send the next chunk of a streamed BINARY value (`fetch_binary.rs`),
/// decoded on a store thread; a failed read sends spaces for the rest, as
/// the literal's length is already on the wire.
fn binary_chunk(
    cx: &mut Conn,
    io: &mut Io<'_, Done>,
    mailbox: MailboxId,
    stream: Box<super::fetch_binary::BinaryStream>,
) {
    let mut spare = stream.clone();
    spare.fail();
    cx.read(
        io,
        move |r| {
            let mut s = stream;
            let chunk = s.next_chunk(r, mailbox);
            Ok((s, chunk))
        },
        in_selected(move |cx, sel, io, res| {
            type Chunk = (
                Box<super::fetch_binary::BinaryStream>,
                mailstore::Result<Vec<u8>>,
            );
            let res: mailstore::Result<Chunk> = res;
            let (s, bytes) = match res {
                Ok((s, Ok(bytes))) => (s, bytes),
                Ok((mut s, Err(e))) => {
                    log::warn!("imapd conn {}: BINARY of UID {}: {e}", cx.id, s.uid);
                    s.fail();
                    (s, Vec::new())
                }
                Err(e) => {
                    log::warn!("imapd conn {}: BINARY: {e}", cx.id);
                    (spare, Vec::new())
                }
            };
            cx.out.extend_from_slice(&bytes);
            if let Busy::Streaming { job, .. } = &mut cx.busy {
                job.chunk_reading = false;
                if s.remaining() > 0 {
                    job.segs.push_front(Seg::Binary(s));
                }
            }
            next_batch(cx, io, sel)
        }),
    );
}

/// Start reading and encoding the next batch of messages on a store
/// thread, unless one is read already, waits in `ahead`, or none is left.
/// Its result waits in `ahead` until the segments before it are out.
fn read_ahead(cx: &mut Conn, io: &mut Io<'_, Done>, sel: &Selection) {
    let Busy::Streaming { job, .. } = &mut cx.busy else {
        return;
    };
    if job.batch_reading || job.ahead.is_some() || job.next >= job.items.len() {
        return;
    }
    let end = (job.next + BATCH_MESSAGES).min(job.items.len());
    let batch: Vec<Item> = job.items[job.next..end].to_vec();
    let atts = Arc::clone(&job.atts);
    let mailbox = job.mailbox;
    job.batch_reading = true;
    // The last batch reads the sync that ends the FETCH in its snapshot
    // (view/sync.rs); a SELECT's changed-message stream does not sync.
    let last = end == job.items.len() && !job.in_select;
    let pre = if last { cx.presync(sel) } else { None };
    cx.read(
        io,
        move |r| {
            let enc = encode_batch(r, mailbox, &batch, &atts);
            Ok((enc, pre.map(|p| p.run(r))))
        },
        in_selected(
            move |cx, sel, io, res: mailstore::Result<PresyncedRead<Encoded>>| {
                let res = cx.with_presynced(res);
                if let Busy::Streaming { job, .. } = &mut cx.busy {
                    job.batch_reading = false;
                    match &res {
                        // A BINARY item that cannot be decoded ends the FETCH
                        // after the messages before it: nothing more to read.
                        Ok(enc) if enc.unknown_cte.is_some() => {
                            job.next = job.items.len();
                        }
                        Ok(enc) => job.next += enc.handled.max(1),
                        Err(_) => job.next = job.items.len(),
                    }
                    job.ahead = Some(res);
                }
                next_batch(cx, io, sel)
            },
        ),
    );
}
