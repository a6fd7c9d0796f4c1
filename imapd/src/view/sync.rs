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
//!
//! A FETCH's last batch and the flags read after a STORE run that read in
//! their own snapshot (`Conn::presync`): the command's end applies it with
//! no second trip to a reader (under imaptest's stress profile a sync
//! followed nearly every command). Changes committed after that snapshot
//! are left to the next command, as if they had come just after this one.

use crate::session::{Conn, Done, ImapSession, State};
use crate::view::selection::Selection;
use mailstore::{Changes, MailboxId, Reader, Uid};
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

/// A sync's read, taken from the view on the loop and run on a reader:
/// the changes since the view's modseq and what they do to the search
/// contexts.
pub(crate) struct SyncRead {
    mailbox: MailboxId,
    since: u64,
    probe: Option<crate::view::contexts::Probe>,
    known: Arc<[Uid]>,
}

/// A command's own read and the sync read done in its snapshot.
pub(crate) type PresyncedRead<T> = (mailstore::Result<T>, Option<mailstore::Result<Synced>>);

/// What a [`SyncRead`] found, in one snapshot of the store.
pub(crate) struct Synced {
    mailbox: MailboxId,
    since: u64,
    changes: Changes,
    found: crate::view::contexts::Matches,
}

impl Synced {
    /// The mailbox's HIGHESTMODSEQ in the snapshot read.
    pub(crate) fn highestmodseq(&self) -> u64 {
        self.changes.highestmodseq
    }
}

impl SyncRead {
    fn of(sel: &Selection) -> SyncRead {
        SyncRead {
            mailbox: sel.mailbox,
            since: sel.modseq,
            // Search UPDATE contexts re-evaluate the changed messages in
            // the same read (view/contexts.rs).
            probe: sel.search.probe(),
            known: sel.uid_map(),
        }
    }

    /// Run on a reader.
    pub(crate) fn run(self, r: &Reader) -> mailstore::Result<Synced> {
        let mut changes = r.changes_since(self.mailbox, self.since)?;
        if !changes.expunged_complete {
            // The store forgot expunges this old (its tombstones are
            // bounded): whatever the view holds and the mailbox does not
            // is gone.
            let present = r.uids(self.mailbox)?;
            changes.expunged = self
                .known
                .iter()
                .copied()
                .filter(|u| present.binary_search(u).is_err())
                .collect();
        }
        let found = match &self.probe {
            Some(p) => p.evaluate(r, self.mailbox, &changes)?,
            None => Default::default(),
        };
        Ok(Synced {
            mailbox: self.mailbox,
            since: self.since,
            changes,
            found,
        })
    }
}

impl Conn {
    /// Bring the selected view `sel` (if any) up to date when anything may
    /// have changed, queue the untagged responses allowed now, then run
    /// `then`.
    ///
    /// A command's own read may have done the sync's read already, in its
    /// snapshot ([`Conn::presync`]): that is applied without another trip
    /// to a reader. Changes committed after that snapshot are concurrent
    /// with the command; the next command reports them (RFC 3501 §5.2
    /// lets the server choose when; the hub's `pending` stays set).
    pub(crate) fn sync(
        &mut self,
        io: &mut Io<'_, Done>,
        sel: Option<&mut Selection>,
        expunge_ok: bool,
        then: impl AfterSync,
    ) -> Step {
        let Some(sel) = sel else {
            self.presynced = None;
            return then(self, None, io);
        };
        let pre = self.presynced.take();
        if let Some(p) = pre {
            if p.mailbox == sel.mailbox && p.since == sel.modseq {
                // What committed after that read is the next command's to
                // report, as if it had come just after this one: `pending`
                // stays set for it.
                self.apply_sync(sel, *p, expunge_ok);
                return then(self, Some(sel), io);
            }
            // A read that no longer fits the view (it took `pending`):
            // read again.
            self.pending.store(false, Ordering::SeqCst);
        } else if !self.pending.swap(false, Ordering::SeqCst) {
            if expunge_ok && sel.holds_expunges() {
                sel.flush_expunges(&mut self.out);
                sel.share(&self.shared.hub.views);
            }
            self.held_modseq(sel);
            return then(self, Some(sel), io);
        }
        let req = SyncRead::of(sel);
        let mailbox = sel.mailbox;
        self.read(
            io,
            move |r| req.run(r),
            move |s, io, res| {
                let cx = &mut s.cx;
                match (res, &mut s.state) {
                    (Ok(synced), State::Selected { sel, .. }) if sel.mailbox == mailbox => {
                        cx.apply_sync(sel, synced, expunge_ok);
                    }
                    (Err(e), _) => log::warn!("imapd conn {}: sync: {e}", cx.id),
                    _ => {}
                }
                then(&mut s.cx, s.state.selection_mut(), io)
            },
        );
        Step::Continue
    }

    /// Start a sync's read to run in the same snapshot as a command's own
    /// read (a FETCH's last batch, the flags a STORE did not change), when
    /// anything may have changed: the command's end then needs no read of
    /// its own. Clears `pending` (any commit from now on sets it again).
    pub(crate) fn presync(&mut self, sel: &Selection) -> Option<SyncRead> {
        if self.presynced.is_some() || !self.pending.swap(false, Ordering::SeqCst) {
            return None;
        }
        Some(SyncRead::of(sel))
    }

    /// Forget a [`Conn::presync`] read not applied; its changes are
    /// pending again.
    pub(crate) fn drop_presynced(&mut self) {
        if self.presynced.take().is_some() {
            self.pending.store(true, Ordering::SeqCst);
        }
    }

    /// The result of a read that carried a [`Conn::presync`]: keep what
    /// the sync found for the command's end and return the command's own
    /// result. When the read failed as a whole, the sync is left to the
    /// end (`pending` again).
    pub(crate) fn with_presynced<T>(
        &mut self,
        res: mailstore::Result<PresyncedRead<T>>,
    ) -> mailstore::Result<T> {
        match res {
            Ok((own, synced)) => {
                self.presynced(synced);
                own
            }
            Err(e) => {
                self.pending.store(true, Ordering::SeqCst);
                Err(e)
            }
        }
    }

    /// Keep what a [`Conn::presync`] read found for the command's end; a
    /// failed read leaves the sync to the end (`pending` again).
    fn presynced(&mut self, res: Option<mailstore::Result<Synced>>) {
        match res {
            Some(Ok(synced)) => self.presynced = Some(Box::new(synced)),
            Some(Err(e)) => {
                log::warn!("imapd conn {}: sync: {e}", self.id);
                self.pending.store(true, Ordering::SeqCst);
            }
            None => {}
        }
    }

    /// The untagged responses for what a sync found, and the view at its
    /// modseq.
    fn apply_sync(&mut self, sel: &mut Selection, synced: Synced, expunge_ok: bool) {
        let Synced {
            mailbox,
            changes,
            found,
            ..
        } = synced;
        // New arrivals are \Recent here unless another session saw them
        // first (§2.3.2).
        let hub = &self.shared.hub;
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
            &mut self.out,
            expunge_ok,
            self.condstore,
            recent_above,
            &hub.views,
        );
        sel.contexts_changed(found, &mut self.out);
        // In step with the store again: share the map with the other
        // sessions at this modseq (views.rs).
        sel.share(&hub.views);
        self.synced.store(sel.modseq, Ordering::SeqCst);
        self.held_modseq(sel);
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
        self.cx.presynced = None;
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
        cx.presynced = None;
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
