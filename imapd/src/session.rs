//! One IMAP conversation: the RFC 3501 §3 state machine plugged into
//! netloop as a [`netloop::Session`].
//!
//! ```text
//!            greeting
//!               |
//!   +-----> NotAuthenticated --LOGIN/AUTHENTICATE--> Authenticated { user }
//!   |                                                  |   ^
//!   |                               SELECT/EXAMINE ok  v   | CLOSE/UNSELECT/failed SELECT
//!   |                                         Selected { user, view }
//!   +-- any state: LOGOUT, timeout, shutdown --> Logout (BYE, close)
//! ```
//!
//! A session is two halves: [`State`], where it stands in that diagram
//! (and what the state owns: the user, the mailbox view), and [`Conn`],
//! everything else — the framer, the output buffer, what the session is
//! [`Busy`] with, the store-job helpers. The halves are separate fields so
//! that `op::dispatch` can hand a command both the connection and what its
//! state guarantees (`&User`, `&mut Selection`) at once.
//!
//! How input is read depends on the [`Mode`]: commands through the literal
//! framer, AUTHENTICATE response lines (§6.2.2), the `DONE` that ends IDLE.
//! While a store job is in flight ([`Busy::Store`]) nothing is read at all:
//! the bytes stay buffered, which keeps pipelined commands in order. Store
//! work runs on store threads; results come back as [`Done::Apply`]
//! closures run on the loop thread. All output goes through `Conn::out`
//! and is flushed (and traced) at the end of each callback. No SQL, no
//! sleeping here.

pub(crate) use crate::conn::{in_selected, or_no, Conn};
use crate::framer::Framer;
use crate::op::fetch::FetchJob;
use crate::response::{Code, Status};
use crate::trace::Tracer;
use crate::view::hub::Hub;
use crate::view::selection::Selection;
use crate::Config;
use mailstore::{Store, User};
use netloop::{Io, Step};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;

/// What every session of one server shares.
pub struct Shared {
    /// The mailbox store.
    pub store: Store,
    /// Server settings.
    pub config: Config,
    /// Change notifications.
    pub hub: Arc<Hub>,
}

/// A closure run on the loop thread with the session.
pub type Apply = Box<dyn FnOnce(&mut ImapSession, &mut Io<'_, Done>) -> Step + Send>;

/// What store threads and the hub send back to a session.
pub enum Done {
    /// The result of a store job, applied on the loop thread.
    Apply(Apply),
    /// The selected mailbox may have changed (a hint; see `view/hub.rs`).
    Changed,
    /// The IDLE keepalive timer fired (`keepalive.rs`).
    Keepalive,
}

/// Where the session stands (RFC 3501 §3), with what that state owns.
pub(crate) enum State {
    /// Before LOGIN/AUTHENTICATE.
    NotAuthenticated,
    /// Logged in, no mailbox selected.
    Authenticated {
        /// Who.
        user: User,
    },
    /// Logged in with a mailbox selected.
    Selected {
        /// Who.
        user: User,
        /// The client's view of the mailbox (`view/`).
        sel: Box<Selection>,
    },
    /// LOGOUT answered (or the connection is being ended): close once
    /// flushed.
    Logout,
}

impl State {
    /// The logged-in user, in the Authenticated and Selected states.
    pub(crate) fn user(&self) -> Option<&User> {
        match self {
            State::Authenticated { user } | State::Selected { user, .. } => Some(user),
            _ => None,
        }
    }

    /// The selected mailbox's view, in the Selected state.
    pub(crate) fn selection(&self) -> Option<&Selection> {
        match self {
            State::Selected { sel, .. } => Some(sel),
            _ => None,
        }
    }

    /// The selected mailbox's view, in the Selected state.
    pub(crate) fn selection_mut(&mut self) -> Option<&mut Selection> {
        match self {
            State::Selected { sel, .. } => Some(sel),
            _ => None,
        }
    }
}

/// What the session is busy with besides reading its next command.
pub(crate) enum Busy {
    /// Nothing: the next command may run.
    Ready,
    /// A store job (or a throttled login answer) is in flight; its result
    /// arrives as [`Done::Apply`]. Input is left alone meanwhile.
    Store,
    /// A FETCH is streaming its responses (`op/fetch.rs`), resumed by
    /// `on_drained`; `reading` counts its store reads in flight (a body
    /// chunk, the batch read ahead).
    Streaming {
        /// The FETCH.
        job: Box<FetchJob>,
        /// Store reads for it in flight.
        reading: u8,
    },
    /// This many APPENDs are handed to the writer and not yet answered
    /// (`op/append.rs`); more APPENDs to the same mailbox may join them,
    /// any other command waits in `Conn::deferred`.
    Appending(usize),
}

/// How the next input is read.
pub(crate) enum Mode {
    /// Commands, through the framer.
    Command,
    /// Waiting for the client's next AUTHENTICATE response line.
    Auth {
        /// Tag of the AUTHENTICATE command.
        tag: String,
        /// Which response of which mechanism comes next.
        step: crate::op::auth::SaslStep,
    },
    /// In IDLE, waiting for `DONE`.
    Idle {
        /// Tag of the IDLE command.
        tag: String,
        /// Counts this session in `minimail_imap_idle_sessions` until the
        /// mode changes or the session ends.
        _counted: metrics::IdleSession,
    },
}

/// The mailbox a run of APPENDs targets, looked up once (`op/append.rs`).
pub(crate) struct AppendTarget {
    /// The name the client gave.
    pub(crate) name: String,
    /// Store id.
    pub(crate) id: mailstore::MailboxId,
    /// UIDVALIDITY at lookup.
    pub(crate) uidvalidity: u32,
}

/// One IMAP session. See the module docs.
pub struct ImapSession {
    /// Everything but the protocol state.
    pub(crate) cx: Conn,
    /// The protocol state.
    pub(crate) state: State,
}

impl ImapSession {
    /// A fresh session for the connection `info` describes.
    pub fn new(shared: Arc<Shared>, info: &netloop::ConnInfo) -> Self {
        let limits = shared.config.framer_limits(false);
        let tracer = shared.config.trace.then(|| Tracer::new(info.id));
        ImapSession {
            cx: Conn {
                shared,
                framer: Framer::new(limits),
                mode: Mode::Command,
                busy: Busy::Ready,
                deferred: None,
                append_target: None,
                pending: Arc::new(AtomicBool::new(false)),
                synced: Arc::new(AtomicU64::new(0)),
                presynced: None,
                condstore: false,
                notify: None,
                qresync: false,
                rev2: false,
                utf8_names: false,
                utf8_accept: false,
                uidonly: false,
                out: Vec::new(),
                tracer,
                id: info.id,
                peer: info.peer.ip(),
                cmd_started: None,
                completer: None,
                keepalive: Default::default(),
            },
            state: State::NotAuthenticated,
        }
    }

    /// The CAPABILITY list for this connection in its current state.
    pub(crate) fn capabilities(&self, io: &Io<'_, Done>) -> String {
        self.cx.capabilities(io, self.state.user().is_some())
    }

    /// Flush, and say whether to go on or close.
    pub(crate) fn step(&mut self, io: &mut Io<'_, Done>) -> Step {
        self.cx.flush(io);
        if matches!(self.state, State::Logout) {
            Step::Close
        } else {
            Step::Continue
        }
    }

    /// [`Conn::finish`] with the selected view, if any.
    pub(crate) fn finish(
        &mut self,
        io: &mut Io<'_, Done>,
        tag: &str,
        status: Status,
        code: Option<Code>,
        text: &str,
        expunge_ok: bool,
    ) -> Step {
        let sel = self.state.selection_mut();
        self.cx.finish(io, sel, tag, status, code, text, expunge_ok)
    }

    /// End the session after the output now queued (LOGOUT, a client too
    /// slow to send its command, a failed TLS upgrade).
    pub(crate) fn logout(&mut self) {
        self.deselect();
        self.state = State::Logout;
    }
}

impl netloop::Session for ImapSession {
    type Done = Done;

    fn on_open(&mut self, io: &mut Io<'_, Done>) -> Step {
        self.cx.completer = Some(io.completer());
        io.set_timeout(self.cx.shared.config.autologout);
        let caps = self.capabilities(io);
        self.cx.status(
            None,
            Status::Ok,
            Some(Code::Capability(caps)),
            "minimail IMAP4rev1 server ready",
        );
        self.step(io)
    }

    fn on_input(&mut self, io: &mut Io<'_, Done>) -> Step {
        self.process_input(io)
    }

    fn on_done(&mut self, done: Done, io: &mut Io<'_, Done>) -> Step {
        match done {
            Done::Apply(f) => {
                self.cx.job_finished();
                let step = f(self, io);
                self.cx.flush(io);
                if step == Step::Close || matches!(self.state, State::Logout) {
                    return Step::Close;
                }
                if self.cx.deferred.is_some() {
                    // The loop calls on_input only while input is buffered;
                    // the deferred command may be the last one sent.
                    return self.process_input(io);
                }
                self.idle_push(io)
            }
            // The hub set `pending` before sending this.
            Done::Changed => self.idle_push(io),
            Done::Keepalive => self.keepalive_timer(io),
        }
    }

    fn on_drained(&mut self, io: &mut Io<'_, Done>) -> Step {
        // The pump knows whether it waits for a read (`op/fetch.rs`).
        if matches!(self.cx.busy, Busy::Streaming { .. }) {
            let step = match &mut self.state {
                State::Selected { sel, .. } => crate::op::fetch::next_batch(&mut self.cx, io, sel),
                _ => Step::Continue,
            };
            self.cx.flush(io);
            // The FETCH may have just finished: the loop does not call
            // on_input after on_drained, so run pipelined commands now.
            if step == Step::Continue && matches!(self.cx.busy, Busy::Ready) {
                return self.process_input(io);
            }
            return step;
        }
        Step::Continue
    }

    fn on_timeout(&mut self, io: &mut Io<'_, Done>) {
        self.cx
            .status(None, Status::Bye, None, "Autologout; idle for too long");
        self.cx.flush(io);
    }

    fn on_shutdown(&mut self, io: &mut Io<'_, Done>) -> Step {
        match self.cx.busy {
            Busy::Store | Busy::Appending(_) => return Step::Continue,
            Busy::Streaming { reading, .. } if reading > 0 => return Step::Continue,
            // Mid-FETCH a BYE could land inside a literal: just close.
            Busy::Streaming { .. } => return Step::Close,
            Busy::Ready => {}
        }
        self.cx
            .status(None, Status::Bye, None, "Server shutting down");
        self.cx.flush(io);
        Step::Close
    }

    fn on_eof(&mut self, _io: &mut Io<'_, Done>) -> Step {
        Step::Close
    }

    fn on_input_error(&mut self, io: &mut Io<'_, Done>, error: &str) -> Step {
        crate::op::compress::corrupt_input(self, io, error)
    }
}

impl Drop for ImapSession {
    fn drop(&mut self) {
        self.deselect();
        self.cx.shared.hub.unwatch(self.cx.id);
        self.cx.shared.hub.unwatch_notify(self.cx.id);
    }
}
