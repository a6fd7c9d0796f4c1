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
use mailstore::{FlagOp, Flags, MailboxId, SystemFlag, Uid};
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
    // CHANGEDSINCE filters on our cached modseqs: bring them up to date
    // first (no EXPUNGE: this is a FETCH).
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
        .filter_map(|(seq, u)| {
            let m = sel.msg(seq)?;
            if changed_since.is_some_and(|c| m.modseq <= c) {
                return None;
            }
            Some(Item {
                seq,
                uid: u,
                recent: m.recent,
                add_flags: false,
            })
        })
        .collect();
    let unseen: Vec<Uid> = if !sel.read_only && atts.iter().any(sets_seen) {
        items
            .iter()
            .filter(|it| {
                sel.msg(it.seq)
                    .is_some_and(|m| !m.flags.has(SystemFlag::Seen))
            })
            .map(|it| it.uid)
            .collect()
    } else {
        Vec::new()
    };
    let mut job = FetchJob {
        tag,
        mailbox: sel.mailbox,
        atts: Arc::new(atts),
        items,
        next: 0,
        segs: VecDeque::new(),
    };
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
            match res {
                Ok(outcome) => {
                    let changed: HashSet<Uid> = outcome.updated.iter().map(|e| e.uid).collect();
                    if let Some(sel) = &mut s.selected {
                        for e in outcome.updated {
                            if let Some(seq) = sel.seq_of(e.uid) {
                                let m = &mut sel.msgs[(seq - 1) as usize];
                                m.flags = e.flags;
                                m.modseq = e.modseq;
                            }
                        }
                    }
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
                for (uid, flags, modseq) in enc.seen {
                    if let Some(seq) = sel.seq_of(uid) {
                        let m = &mut sel.msgs[(seq - 1) as usize];
                        m.flags = flags;
                        m.modseq = m.modseq.max(modseq);
                    }
                }
            }
            next_batch(s, io)
        },
    );
}
