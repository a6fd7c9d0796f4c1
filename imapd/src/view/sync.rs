//! Keeping a session's view in step with the store: entering and leaving
//! the Selected state, and the sync every command ends with (RFC 3501
//! §5.2, §7.4.1; RFC 7162 §3.2).
//!
//! A sync reads `changes_since` the view's modseq only when something may
//! have changed (the hub's `pending` flag, set by wake-ups and by the
//! session's own writes), turns the changes into the untagged responses
//! the current command allows (`Selection::apply`), shares the resulting
//! map (`views.rs`) and tells the hub how far the session has caught up.
//! When the store no longer remembers expunges that old (its tombstones
//! are bounded), the view's UIDs are compared with the mailbox's instead.

use crate::session::{Conn, Done, ImapSession, State};
use crate::view::selection::Selection;
use netloop::{Io, Step};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// What runs once a sync is done: with the connection and the selected
/// view (if any).
pub(crate) trait AfterSync:
    FnOnce(&mut Conn, Option<&mut Selection>, &mut Io<'_, Done>) -> Step + Send + 'static
{
}
impl<F> AfterSync for F where
    F: FnOnce(&mut Conn, Option<&mut Selection>, &mut Io<'_, Done>) -> Step + Send + 'static
{
}

impl Conn {
    /// Bring the selected view `sel` (if any) up to date when anything may
    /// have changed, queue the untagged responses allowed now, then run
    /// `then`.
    pub(crate) fn sync(
        &mut self,
        io: &mut Io<'_, Done>,
        sel: Option<&mut Selection>,
        expunge_ok: bool,
        then: impl AfterSync,
    ) -> Step {
        let Some(sel) = sel else {
            return then(self, None, io);
        };
        if !self.pending.swap(false, Ordering::SeqCst) {
            if expunge_ok && sel.holds_expunges() {
                sel.flush_expunges(&mut self.out);
                sel.share(&self.shared.hub.views);
            }
            self.held_modseq(sel);
            return then(self, Some(sel), io);
        }
        let (mailbox, since) = (sel.mailbox, sel.modseq);
        // Search UPDATE contexts re-evaluate the changed messages in the
        // same read (view/contexts.rs).
        let probe = sel.search.probe();
        let known = sel.uid_map();
        self.read(
            io,
            move |r| {
                let mut changes = r.changes_since(mailbox, since)?;
                if !changes.expunged_complete {
                    // The store forgot expunges this old (its tombstones
                    // are bounded): whatever the view holds and the
                    // mailbox does not is gone.
                    let present = r.uids(mailbox)?;
                    changes.expunged = known
                        .iter()
                        .copied()
                        .filter(|u| present.binary_search(u).is_err())
                        .collect();
                }
                let found = match &probe {
                    Some(p) => p.evaluate(r, mailbox, &changes)?,
                    None => Default::default(),
                };
                Ok((changes, found))
            },
            move |s, io, res| {
                let cx = &mut s.cx;
                match (res, &mut s.state) {
                    (Ok((changes, found)), State::Selected { sel, .. })
                        if sel.mailbox == mailbox =>
                    {
                        // New arrivals are \Recent here unless another
                        // session saw them first (§2.3.2).
                        let hub = &cx.shared.hub;
                        let known = sel.last_uid();
                        let newest = changes.changed.iter().map(|e| e.uid).max().unwrap_or(0);
                        let recent_above = if newest <= known {
                            newest
                        } else if sel.read_only || sel.no_recent {
                            hub.recent_mark(mailbox, sel.uidvalidity)
                        } else {
                            hub.claim_recent(mailbox, sel.uidvalidity, newest)
                        };
                        sel.apply(
                            changes,
                            &mut cx.out,
                            expunge_ok,
                            cx.condstore,
                            recent_above,
                            &hub.views,
                        );
                        sel.contexts_changed(found, &mut cx.out);
                        // In step with the store again: share the map with
                        // the other sessions at this modseq (views.rs).
                        sel.share(&hub.views);
                        cx.synced.store(sel.modseq, Ordering::SeqCst);
                        cx.held_modseq(sel);
                    }
                    (Err(e), _) => log::warn!("imapd conn {}: sync: {e}", cx.id),
                    _ => {}
                }
                then(&mut s.cx, s.state.selection_mut(), io)
            },
        );
        Step::Continue
    }
}

impl Conn {
    /// While expunges are held back (during FETCH, STORE, SEARCH) a
    /// CONDSTORE client may have been shown MODSEQs newer than they are:
    /// tell it a HIGHESTMODSEQ below them, so that a client resuming from
    /// it after a lost connection still learns of the expunges (RFC 7162
    /// §3.2, "the server MUST send the HIGHESTMODSEQ response code with a
    /// lower value than the EXPUNGE's mod-sequence").
    fn held_modseq(&mut self, sel: &Selection) {
        if let Some(m) = sel.held_since().filter(|_| self.condstore) {
            crate::response::StatusLine::untagged(
                crate::response::Status::Ok,
                Some(crate::response::Code::HighestModSeq(m)),
                "Expunges pending",
            )
            .encode(&mut self.out);
        }
    }
}

impl ImapSession {
    /// [`Conn::sync`] of the selected view, if any.
    pub(crate) fn sync(
        &mut self,
        io: &mut Io<'_, Done>,
        expunge_ok: bool,
        then: impl AfterSync,
    ) -> Step {
        let sel = self.state.selection_mut();
        self.cx.sync(io, sel, expunge_ok, then)
    }

    /// Leave the Selected state (CLOSE, UNSELECT, SELECT, LOGOUT, the end
    /// of the connection): back to Authenticated.
    pub(crate) fn deselect(&mut self) {
        let state = std::mem::replace(&mut self.state, State::Logout);
        self.state = match state {
            State::Selected { user, sel } => {
                let mailbox = sel.mailbox;
                drop(sel);
                let hub = &self.cx.shared.hub;
                hub.unwatch(self.cx.id);
                // Our map may have been the last user of a shared one.
                hub.views.release(mailbox);
                State::Authenticated { user }
            }
            other => other,
        };
    }

    /// Enter the Selected state (from Authenticated) and start hearing
    /// about changes.
    pub(crate) fn enter_selected(&mut self, sel: Selection) {
        let cx = &mut self.cx;
        if let Some(c) = &cx.completer {
            cx.synced.store(sel.modseq, Ordering::SeqCst);
            let c = c.clone();
            cx.shared.hub.watch(
                cx.id,
                sel.mailbox,
                Box::new(move || c.complete(Done::Changed)),
                Arc::clone(&cx.pending),
                Arc::clone(&cx.synced),
            );
        }
        // Commits between the SELECT's read and this registration woke
        // nobody: make the next command look.
        cx.pending.store(true, Ordering::SeqCst);
        let state = std::mem::replace(&mut self.state, State::Logout);
        self.state = match state {
            State::Authenticated { user } | State::Selected { user, .. } => State::Selected {
                user,
                sel: Box::new(sel),
            },
            other => other,
        };
    }
}
