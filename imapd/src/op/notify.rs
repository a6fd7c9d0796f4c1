//! NOTIFY (RFC 5465): the command, and the reports that deliver its
//! events — in IDLE, between commands, and before each tagged response.
//!
//! `NOTIFY SET` registers the session with the hub for its user's
//! mailboxes (`view/hub.rs`), reads a baseline of them (`view/notify.rs`)
//! and, with `STATUS`, sends the STATUS of each followed mailbox (§3.1).
//! When the hub marks something changed, [`Conn::notify_report`] reads the
//! user's mailbox list and the STATUS of the followed mailboxes whose
//! HIGHESTMODSEQ moved, and sends what the event groups ask for. With a
//! `selected` group whose MessageNew names fetch attributes, new messages
//! of the selected mailbox are sent as FETCH responses after their EXISTS
//! (§5.2), encoded as FETCH encodes them (`fetch_encode.rs`); like every
//! notification this never changes the mailbox (no implicit `\Seen`).
//!
//! Choices where the RFC leaves room (checked against Dovecot 2.3):
//! `inboxes` is INBOX (mail is only ever delivered there); without a
//! `selected` group, or with `(selected NONE)`, the selected mailbox is
//! reported as RFC 3501 says (EXISTS, EXPUNGE, FETCH at command ends and
//! in IDLE); the STATUS items are Dovecot's (MESSAGES UIDNEXT UIDVALIDITY
//! UNSEEN, and HIGHESTMODSEQ when FlagChange is asked for or CONDSTORE
//! is on). AnnotationChange, MailboxMetadataChange, ServerMetadataChange
//! and unknown events are refused with `NO [BADEVENT (...)]` listing what
//! we support (§3.2).

use super::fetch_encode::{encode_batch, Item, Seg};
use crate::command::{FetchAtt, NotifySet};
use crate::limits::FETCH_BATCH_MESSAGES;
use crate::response::{Code, Status};
use crate::session::{Busy, Conn, Done, ImapSession};
use crate::view::hub::DirtySet;
use crate::view::notify::{wants_status, Notify, Reading};
use crate::view::selection::Selection;
use crate::view::sync::AfterSync;
use mailstore::{StoreError, User};
use netloop::{Io, Step};
use std::collections::HashMap;
use std::sync::Arc;

/// The events we deliver, for `BADEVENT` (§3.2).
const SUPPORTED: [&str; 5] = [
    "MessageNew",
    "MessageExpunge",
    "FlagChange",
    "MailboxName",
    "SubscriptionChange",
];

/// `NOTIFY SET ...` / `NOTIFY NONE`
pub(crate) fn notify(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    user: &User,
    tag: String,
    set: Option<Box<NotifySet>>,
) -> Step {
    let Some(set) = set else {
        // §3: NOTIFY NONE ends all notifications.
        s.cx.notify = None;
        s.cx.shared.hub.unwatch_notify(s.cx.id);
        return s.finish(io, &tag, Status::Ok, None, "NOTIFY completed", true);
    };
    let mut bad = Vec::new();
    for e in set
        .groups
        .iter()
        .map(|g| &g.events)
        .chain(set.selected.as_ref().map(|s| &s.events))
    {
        bad.extend(e.unsupported());
    }
    if !bad.is_empty() {
        bad.dedup();
        let text = format!("Unsupported NOTIFY events: {}", bad.join(" "));
        s.cx.status(
            Some(&tag),
            Status::No,
            Some(Code::BadEvent(SUPPORTED.to_vec())),
            &text,
        );
        return Step::Continue;
    }
    let initial_status = set.status;
    let mut n = Notify::new(*set, user.id);
    if let Some(sel) = s.state.selection() {
        n.fetched = Some((sel.mailbox, sel.uidvalidity, sel.last_uid()));
    }
    // Register first: a commit during the baseline read marks the set, and
    // the next report looks again.
    if let Some(c) = &s.cx.completer {
        let c = c.clone();
        s.cx.shared.hub.watch_notify(
            s.cx.id,
            user.id,
            Box::new(move || c.complete(Done::Changed)),
            Arc::clone(&n.dirty),
        );
    }
    s.cx.notify = Some(Box::new(n));
    let all = DirtySet {
        all: true,
        ..DirtySet::default()
    };
    s.cx.read_notify(io, all, true, initial_status, move |cx, sel, io| {
        cx.finish(io, sel, &tag, Status::Ok, None, "NOTIFY completed", true)
    });
    Step::Continue
}

impl Conn {
    /// Report what NOTIFY's event groups ask for and the hub has marked
    /// changed, then run `then` (at once when nothing is waiting).
    pub(crate) fn notify_report(
        &mut self,
        io: &mut Io<'_, Done>,
        sel: Option<&mut Selection>,
        then: impl AfterSync,
    ) -> Step {
        // Only between commands' own store work: a report waits while
        // APPENDs are in flight or a FETCH streams (idle_push looks again).
        let dirty = match &self.notify {
            Some(n) if !n.overflowed && matches!(self.busy, Busy::Ready) => n.dirty.take(),
            _ => return then(self, sel, io),
        };
        if dirty.is_empty() {
            return self.notify_fetch(io, sel, then);
        }
        self.read_notify(io, dirty, false, false, then);
        Step::Continue
    }

    /// Read the user's mailboxes (and subscriptions when they may have
    /// changed) and the STATUS of each followed mailbox whose HIGHESTMODSEQ
    /// moved; apply the reading ([`Notify::apply`]); then the selected
    /// mailbox's MessageNew FETCHes; then `then`.
    fn read_notify(
        &mut self,
        io: &mut Io<'_, Done>,
        dirty: DirtySet,
        baseline: bool,
        initial_status: bool,
        then: impl AfterSync,
    ) {
        let Some(n) = &self.notify else { return };
        let set = n.set.clone();
        let user = n.user;
        let known = n.known_modseqs();
        let want_subs = baseline || dirty.lists || dirty.all;
        self.read(
            io,
            move |r| {
                let boxes = r.mailboxes(user)?;
                let subs = if want_subs {
                    Some(r.subscriptions(user)?)
                } else {
                    None
                };
                let mut statuses = HashMap::new();
                if boxes.len() <= crate::limits::MAX_NOTIFY_TRACKED {
                    for b in &boxes {
                        if wants_status(&set, b) && known.get(&b.id) != Some(&b.highestmodseq) {
                            match r.status(b.id) {
                                Ok(st) => {
                                    statuses.insert(b.id, st);
                                }
                                // Deleted meanwhile: the next report sees it.
                                Err(StoreError::NotFound(_)) => {}
                                Err(e) => return Err(e),
                            }
                        }
                    }
                }
                Ok(Reading {
                    boxes,
                    subs,
                    statuses,
                })
            },
            move |s: &mut ImapSession, io: &mut Io<'_, Done>, res: mailstore::Result<Reading>| {
                let selected = s.state.selection().map(|v| v.mailbox);
                let cx = &mut s.cx;
                let Conn {
                    notify,
                    out,
                    shared,
                    condstore,
                    id,
                    utf8_names,
                    ..
                } = cx;
                if let Some(n) = notify {
                    n.utf8_names = *utf8_names;
                    match res {
                        Ok(reading) => {
                            if !n.apply(
                                reading,
                                baseline,
                                initial_status,
                                selected,
                                *condstore,
                                out,
                            ) {
                                // §5.8: too much to follow; stop.
                                crate::response::StatusLine::untagged(
                                    Status::Ok,
                                    Some(Code::NotificationOverflow),
                                    "Too many mailboxes to follow; NOTIFY is off",
                                )
                                .encode(out);
                                n.overflowed = true;
                                shared.hub.unwatch_notify(*id);
                            }
                        }
                        Err(e) => {
                            log::warn!("imapd conn {id}: NOTIFY report: {e}");
                            // Look again next time.
                            n.dirty.mark_all();
                        }
                    }
                }
                let sel = s.state.selection_mut();
                s.cx.notify_fetch(io, sel, then)
            },
        );
    }

    /// §5.2: FETCH the selected mailbox's new messages with the fetch
    /// attributes of the `selected` group's MessageNew, in batches, then
    /// run `then`.
    fn notify_fetch(
        &mut self,
        io: &mut Io<'_, Done>,
        sel: Option<&mut Selection>,
        then: impl AfterSync,
    ) -> Step {
        let (Some(n), Some(sel)) = (self.notify.as_mut(), sel) else {
            return then(self, None, io);
        };
        let atts = match &n.set.selected {
            Some(s) if !s.fetch.is_empty() && !n.overflowed => s.fetch.clone(),
            _ => return then(self, Some(sel), io),
        };
        let up_to = match n.fetched {
            Some((m, v, u)) if m == sel.mailbox && v == sel.uidvalidity => u,
            _ => {
                // Another mailbox: what it holds now is not new.
                n.fetched = Some((sel.mailbox, sel.uidvalidity, sel.last_uid()));
                return then(self, Some(sel), io);
            }
        };
        // Message text is read whole here (not streamed as FETCH does):
        // one message per read then, so a session holds at most one.
        let content = atts.iter().any(|a| {
            !matches!(
                a,
                FetchAtt::Envelope
                    | FetchAtt::Flags
                    | FetchAtt::InternalDate
                    | FetchAtt::Rfc822Size
                    | FetchAtt::Body
                    | FetchAtt::BodyStructure
                    | FetchAtt::Uid
                    | FetchAtt::ModSeq
                    | FetchAtt::SaveDate
                    | FetchAtt::EmailId
                    | FetchAtt::ThreadId
            )
        });
        let batch = if content { 1 } else { FETCH_BATCH_MESSAGES };
        let items: Vec<Item> = sel
            .uids()
            .iter()
            .enumerate()
            .filter(|(_, &u)| u > up_to)
            .take(batch)
            .map(|(i, &u)| Item {
                seq: i as u32 + 1,
                uid: u,
                recent: sel.is_recent(u),
                add_flags: false,
                uidonly: sel.uidonly,
            })
            .collect();
        if items.is_empty() {
            return then(self, Some(sel), io);
        }
        let mailbox = sel.mailbox;
        self.read(
            io,
            move |r| {
                let enc = encode_batch(r, mailbox, &items, &atts)?;
                // Large sections were left as byte ranges: read them here.
                let mut bytes = Vec::new();
                for seg in enc.segs {
                    match seg {
                        Seg::Bytes(b) => bytes.extend_from_slice(&b),
                        Seg::Raw {
                            message, off, len, ..
                        } => {
                            let at = bytes.len();
                            r.message_range_into(message, off, len, &mut bytes)?;
                            // The literal's length is already written.
                            bytes.resize(at + len as usize, b' ');
                            super::fetch_encode::no_nul(&mut bytes[at..]);
                        }
                        // A BINARY value: decode it all here (a failed read
                        // turns the rest into spaces: its length is sent).
                        Seg::Binary(mut stream) => {
                            while stream.remaining() > 0 {
                                match stream.next_chunk(r, mailbox) {
                                    Ok(c) if !c.is_empty() => bytes.extend_from_slice(&c),
                                    _ => stream.fail(),
                                }
                            }
                        }
                    }
                }
                let last = items.get(enc.handled.max(1) - 1).map_or(up_to, |it| it.uid);
                Ok((bytes, last, enc.seen))
            },
            move |s: &mut ImapSession, io: &mut Io<'_, Done>, res| {
                let cx = &mut s.cx;
                match res {
                    Ok((bytes, last, seen)) => {
                        cx.out.extend_from_slice(&bytes);
                        let uidvalidity = s.state.selection().map_or(0, |v| v.uidvalidity);
                        if let Some(n) = cx.notify.as_mut() {
                            n.fetched = Some((mailbox, uidvalidity, last));
                        }
                        if let Some(v) = s.state.selection_mut() {
                            for (uid, modseq) in seen {
                                v.note_reported(uid, modseq);
                            }
                        }
                    }
                    Err(e) => {
                        log::warn!("imapd conn {}: NOTIFY FETCH: {e}", cx.id);
                        // Do not try these again.
                        if let (Some(n), Some(v)) = (cx.notify.as_mut(), s.state.selection()) {
                            n.fetched = Some((v.mailbox, v.uidvalidity, v.last_uid()));
                        }
                    }
                }
                let sel = s.state.selection_mut();
                s.cx.notify_fetch(io, sel, then)
            },
        );
        Step::Continue
    }
}
