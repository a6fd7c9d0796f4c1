//! FETCH and UID FETCH (RFC 3501 §6.4.5; CONDSTORE RFC 7162 §3.1.4),
//! streamed: messages are fetched in batches bounded by count and bytes,
//! each batch is read *and encoded* on a store thread (`fetch_encode.rs`),
//! large bodies are left as byte ranges and read in chunks, and more is
//! produced only when little output is waiting (netloop's `on_drained`
//! resumes the pump), so neither a 100,000-message FETCH nor a huge message
//! ever sits in memory whole.
//!
//! Non-PEEK body fetches set `\Seen` first (one write), and FLAGS are then
//! included in the response for the messages that changed.

use super::fetch_encode::{encode_batch, Item, Seg};
use crate::command::{FetchAtt, SequenceSet};
use crate::limits::{CHUNK, FETCH_BATCH_MESSAGES as BATCH_MESSAGES, HIGH_WATER};
use crate::response::Status;
use crate::session::{Done, ImapSession};
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
}

/// Whether fetching `a` implicitly sets `\Seen` (§6.4.5).
fn sets_seen(a: &FetchAtt) -> bool {
    matches!(
        a,
        FetchAtt::Rfc822 | FetchAtt::Rfc822Text | FetchAtt::Section { peek: false, .. }
    )
}

/// `FETCH` / `UID FETCH`
pub(crate) fn fetch(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    tag: String,
    uid: bool,
    set: SequenceSet,
    atts: Vec<FetchAtt>,
    changed_since: Option<u64>,
) -> Step {
    if changed_since.is_none() {
        return start(s, io, tag, uid, set, atts, None);
    }
    // Report pending changes first, as before any FETCH response (no
    // EXPUNGE: this is a FETCH); the filter itself asks the store.
    s.sync(io, false, move |s, io| {
        start(s, io, tag, uid, set, atts, changed_since)
    })
}

fn start(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    tag: String,
    uid: bool,
    set: SequenceSet,
    mut atts: Vec<FetchAtt>,
    changed_since: Option<u64>,
) -> Step {
    let Some(pairs) = super::message::resolve(s, &tag, &set, uid) else {
        return Step::Continue;
    };
    let Some(sel) = &s.selected else {
        return Step::Continue;
    };
    if atts.contains(&FetchAtt::ModSeq) {
        s.condstore = true;
    }
    // UID FETCH always reports UIDs (§6.4.8); put it first.
    if uid && !atts.contains(&FetchAtt::Uid) {
        atts.insert(0, FetchAtt::Uid);
    }
    let items: Vec<Item> = pairs
        .into_iter()
        .map(|(seq, u)| Item {
            seq,
            uid: u,
            recent: sel.is_recent(u),
            add_flags: false,
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
    };
    if changed_since.is_none() && !want_seen {
        s.streaming = Some(job);
        return next_batch(s, io);
    }
    // The session caches no flags or modseqs: ask the store which of the
    // messages changed since CHANGEDSINCE (RFC 7162 §3.1.4) and which lack
    // \Seen, so that only those are written (one write, none at all when
    // every message is already seen).
    let mailbox = job.mailbox;
    let uids: Vec<Uid> = job.items.iter().map(|it| it.uid).collect();
    s.read(
        io,
        move |r| {
            let changed: Option<HashSet<Uid>> = match changed_since {
                Some(c) => Some(
                    r.changes_since(mailbox, c)?
                        .changed
                        .into_iter()
                        .map(|e| e.uid)
                        .collect(),
                ),
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
            Ok((changed, unseen))
        },
        move |s, io, res| {
            let mut job = job;
            let (changed, mut unseen) = match res {
                Ok(v) => v,
                Err(e) => {
                    s.store_error(&job.tag, &e);
                    return Step::Continue;
                }
            };
            if let Some(changed) = changed {
                job.items.retain(|it| changed.contains(&it.uid));
                unseen.retain(|u| changed.contains(u));
            }
            set_seen(s, io, job, unseen)
        },
    );
    Step::Continue
}

/// Set `\Seen` on `unseen` (a non-PEEK body FETCH, §6.4.5), then stream
/// `job`, adding FLAGS for the messages that changed.
fn set_seen(s: &mut ImapSession, io: &mut Io<'_, Done>, job: FetchJob, unseen: Vec<Uid>) -> Step {
    if unseen.is_empty() {
        s.streaming = Some(job);
        return next_batch(s, io);
    }
    let mailbox = job.mailbox;
    s.write(
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
        move |s, io, res| {
            let mut job = job;
            match res {
                Ok(outcome) => {
                    // The FETCH responses carry the new flags (FLAGS is
                    // added where not asked for), so the client hears of
                    // the change there and the next sync stays quiet.
                    let changed: HashSet<Uid> = outcome.updated.iter().map(|e| e.uid).collect();
                    let has_flags = job.atts.contains(&FetchAtt::Flags);
                    for it in &mut job.items {
                        it.add_flags = !has_flags && changed.contains(&it.uid);
                    }
                }
                Err(e) => log::warn!("imapd conn {}: setting \\Seen: {e}", s.conn),
            }
            s.streaming = Some(job);
            next_batch(s, io)
        },
    );
    Step::Continue
}

/// Move the FETCH forward: queue encoded segments until enough output is
/// waiting (then `on_drained` calls again), read the next chunk of a
/// large body or the next batch of messages, or finish the command.
pub(crate) fn next_batch(s: &mut ImapSession, io: &mut Io<'_, Done>) -> Step {
    loop {
        let Some(job) = &mut s.streaming else {
            return Step::Continue;
        };
        if io.out.len() + s.out.len() >= HIGH_WATER {
            return Step::Continue;
        }
        match job.segs.pop_front() {
            Some(Seg::Bytes(b)) => s.out.extend_from_slice(&b),
            Some(Seg::Raw { uid, off, len }) => {
                let n = len.min(CHUNK);
                if len > n {
                    job.segs.push_front(Seg::Raw {
                        uid,
                        off: off + n,
                        len: len - n,
                    });
                }
                let mailbox = job.mailbox;
                s.read(
                    io,
                    move |r| r.raw_range(mailbox, uid, off, n),
                    move |s, io, res| {
                        let mut bytes = res.unwrap_or_else(|e| {
                            log::warn!("imapd conn {}: body chunk of UID {uid}: {e}", s.conn);
                            Vec::new()
                        });
                        // The literal's length is already on the wire: keep
                        // the stream in step whatever happened.
                        bytes.resize(n as usize, b' ');
                        s.out.extend_from_slice(&bytes);
                        next_batch(s, io)
                    },
                );
                return Step::Continue;
            }
            None => {
                if job.next >= job.items.len() {
                    let tag = job.tag.clone();
                    s.streaming = None;
                    return s.finish(io, &tag, Status::Ok, None, "FETCH completed", false);
                }
                read_batch(s, io);
                return Step::Continue;
            }
        }
    }
}

/// Read and encode the next batch of messages on a store thread.
fn read_batch(s: &mut ImapSession, io: &mut Io<'_, Done>) {
    let Some(job) = &mut s.streaming else {
        return;
    };
    let end = (job.next + BATCH_MESSAGES).min(job.items.len());
    let batch: Vec<Item> = job.items[job.next..end].to_vec();
    let atts = Arc::clone(&job.atts);
    let mailbox = job.mailbox;
    s.read(
        io,
        move |r| encode_batch(r, mailbox, &batch, &atts),
        move |s, io, res| {
            let enc = match res {
                Ok(v) => v,
                Err(e) => {
                    let tag = s.streaming.take().map(|j| j.tag).unwrap_or_default();
                    s.store_error(&tag, &e);
                    return Step::Continue;
                }
            };
            if let Some(job) = &mut s.streaming {
                job.next += enc.handled.max(1);
                job.segs = enc.segs;
            }
            // The client now knows these flags: no need to repeat them as
            // unsolicited FETCH responses at the next sync.
            if let Some(sel) = &mut s.selected {
                for (uid, modseq) in enc.seen {
                    sel.note_reported(uid, modseq);
                }
            }
            next_batch(s, io)
        },
    );
}
