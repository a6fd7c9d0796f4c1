//! One IMAP conversation: the RFC 3501 §3 state machine plugged into
//! netloop as a [`netloop::Session`].
//!
//! ```text
//!            greeting
//!               |
//!   +-----> NotAuthenticated --LOGIN/AUTHENTICATE--> Authenticated
//!   |                                                  |   ^
//!   |                               SELECT/EXAMINE ok  v   | CLOSE/UNSELECT/failed SELECT
//!   |                                                 Selected
//!   +-- any state: LOGOUT, timeout, shutdown --> Logout (BYE, close)
//! ```
//!
//! How input is read depends on the [`Mode`]: commands through the literal
//! framer, AUTHENTICATE response lines (§6.2.2), the `DONE` that ends IDLE, or
//! nothing at all while a store job is in flight (`busy`: the bytes stay
//! buffered, which keeps pipelined commands in order). Store work runs on
//! store threads; results come back as [`Done::Apply`] closures run on the
//! loop thread. All output goes through `self.out` and is flushed (and
//! traced) at the end of each callback. No SQL, no sleeping here.

use crate::command::{Command, CommandBody};
use crate::framer::{Frame, Framer};
use crate::hub::Hub;
use crate::parse::{parse_command, SyntaxKind};
use crate::response::{Code, Status, StatusLine};
use crate::selection::Selection;
use crate::trace::Tracer;
use crate::Config;
use mailstore::{Reader, Store, StoreError, Tx, User};
use netloop::{Io, Line, Step};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Largest output buffer a session keeps between callbacks.
const OUT_KEEP: usize = 4096;

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
    /// The selected mailbox may have changed (a hint; see `hub.rs`).
    Changed,
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
    },
}

/// One IMAP session. See the module docs.
pub struct ImapSession {
    pub(crate) shared: Arc<Shared>,
    pub(crate) framer: Framer,
    pub(crate) mode: Mode,
    /// A store job is in flight: leave input alone.
    pub(crate) busy: bool,
    /// Logged-in user (Authenticated and Selected states).
    pub(crate) user: Option<User>,
    /// The selected mailbox (Selected state).
    pub(crate) selected: Option<Selection>,
    /// Set by the hub when the selected mailbox may have changed; cleared
    /// when the session reads the changes.
    pub(crate) pending: Arc<AtomicBool>,
    /// HIGHESTMODSEQ the selected view is in sync with (read by the hub's
    /// watcher to decide whom to wake).
    pub(crate) synced: Arc<AtomicU64>,
    /// CONDSTORE enabled (RFC 7162 §3.1): MODSEQ in unsolicited FETCH.
    pub(crate) condstore: bool,
    /// LOGOUT answered: close once flushed.
    pub(crate) closing: bool,
    /// Output produced during the current callback.
    pub(crate) out: Vec<u8>,
    /// A FETCH being streamed (continued from `on_drained`).
    pub(crate) streaming: Option<crate::op::fetch::FetchJob>,
    pub(crate) tracer: Option<Tracer>,
    pub(crate) conn: netloop::ConnId,
    /// The client's address (failed-login throttling is per address).
    pub(crate) peer: std::net::IpAddr,
    /// When the command now being received (literals) began arriving.
    pub(crate) cmd_started: Option<Instant>,
    /// APPENDs handed to the writer and not yet answered (see op/append.rs).
    pub(crate) appends_in_flight: usize,
    /// A command that arrived while APPENDs were in flight: it runs once
    /// they have all been answered, so answers stay in order.
    pub(crate) deferred: Option<Command>,
    /// The mailbox a run of APPENDs targets (name, id, UIDVALIDITY),
    /// looked up once.
    pub(crate) append_target: Option<(String, mailstore::MailboxId, u32)>,
    pub(crate) completer: Option<netloop::Completer<Done>>,
}

impl ImapSession {
    /// A fresh session for the connection `info` describes.
    pub fn new(shared: Arc<Shared>, info: &netloop::ConnInfo) -> Self {
        let conn = info.id;
        let limits = shared.config.framer_limits(false);
        let tracer = shared.config.trace.then(|| Tracer::new(conn));
        ImapSession {
            shared,
            framer: Framer::new(limits),
            mode: Mode::Command,
            busy: false,
            appends_in_flight: 0,
            deferred: None,
            append_target: None,
            user: None,
            selected: None,
            pending: Arc::new(AtomicBool::new(false)),
            synced: Arc::new(AtomicU64::new(0)),
            condstore: false,
            closing: false,
            out: Vec::new(),
            streaming: None,
            tracer,
            conn,
            peer: info.peer.ip(),
            cmd_started: None,
            completer: None,
        }
    }

    /// May credentials be sent on this connection now? Over TLS, from a
    /// local client, or when the operator allows plaintext (RFC 3501
    /// §6.2.3, §11.1).
    pub(crate) fn plaintext_ok(&self, io: &Io<'_, Done>) -> bool {
        io.is_tls() || io.info.is_local() || self.shared.config.allow_plaintext_auth
    }

    /// The CAPABILITY list for this connection in its current state.
    pub(crate) fn capabilities(&self, io: &Io<'_, Done>) -> String {
        crate::capabilities(io.tls(), self.plaintext_ok(io), self.user.is_some())
    }

    /// Queue a tagged or untagged status line.
    pub(crate) fn status(
        &mut self,
        tag: Option<&str>,
        status: Status,
        code: Option<Code>,
        text: &str,
    ) {
        StatusLine {
            tag: tag.map(str::to_owned),
            status,
            code,
            text: text.to_owned(),
        }
        .encode(&mut self.out);
    }

    /// Push `self.out` to the connection, tracing it.
    pub(crate) fn flush(&mut self, io: &mut Io<'_, Done>) {
        if self.out.is_empty() {
            return;
        }
        if let Some(t) = &mut self.tracer {
            t.server(&self.out);
        }
        io.out.push(&self.out);
        self.out.clear();
        // Keep no output buffer while idling (ten thousand IDLE clients
        // would hold 10 MB of them), and no large one after a big reply.
        if self.out.capacity() > OUT_KEEP || matches!(self.mode, Mode::Idle { .. }) {
            self.out = Vec::new();
        }
    }

    fn step(&mut self, io: &mut Io<'_, Done>) -> Step {
        self.flush(io);
        if self.closing {
            Step::Close
        } else {
            Step::Continue
        }
    }

    /// Run `f` on a store reader thread, then `then` on the loop thread.
    pub(crate) fn read<T: Send + 'static>(
        &mut self,
        io: &mut Io<'_, Done>,
        f: impl FnOnce(&Reader) -> mailstore::Result<T> + Send + 'static,
        then: impl FnOnce(&mut ImapSession, &mut Io<'_, Done>, mailstore::Result<T>) -> Step
            + Send
            + 'static,
    ) {
        let c = io.completer();
        self.busy = true;
        self.shared.store.read(f, move |r| {
            c.complete(Done::Apply(Box::new(move |s, io| then(s, io, r))));
        });
    }

    /// Run `f` in a store write transaction, then `then` once committed.
    pub(crate) fn write<T: Send + 'static>(
        &mut self,
        io: &mut Io<'_, Done>,
        f: impl FnOnce(&mut Tx) -> mailstore::Result<T> + Send + 'static,
        then: impl FnOnce(&mut ImapSession, &mut Io<'_, Done>, mailstore::Result<T>) -> Step
            + Send
            + 'static,
    ) {
        let c = io.completer();
        self.busy = true;
        // Our own commit changes what the client must hear about.
        self.pending.store(true, Ordering::SeqCst);
        self.shared.store.write(f, move |r| {
            c.complete(Done::Apply(Box::new(move |s, io| then(s, io, r))));
        });
    }

    /// Answer a store error as a tagged NO with the right response code
    /// (RFC 5530 §3): a full disk is `OVERQUOTA` (no room for what the
    /// command adds; Dovecot answers ENOSPC so too), a damaged store that
    /// refuses changes `UNAVAILABLE` (a subsystem is down; try later).
    pub(crate) fn store_error(&mut self, tag: &str, e: &StoreError) {
        let (code, text) = match e {
            StoreError::NotFound(what) => (Code::Nonexistent, format!("No such {what}")),
            StoreError::Exists(what) => (Code::AlreadyExists, format!("{what} already exists")),
            StoreError::Invalid(why) => (Code::Cannot, why.clone()),
            StoreError::Full(_) => {
                log::error!("imapd conn {}: {e}", self.conn);
                (Code::OverQuota, "Not enough disk space".to_owned())
            }
            StoreError::Damaged(_) => {
                log::error!("imapd conn {}: {e}", self.conn);
                (
                    Code::Unavailable,
                    "Mail store damaged; changes are refused until it is repaired".to_owned(),
                )
            }
            other => {
                log::error!("imapd conn {}: store failure: {other}", self.conn);
                (
                    Code::ServerBug,
                    "Internal error; try again later".to_owned(),
                )
            }
        };
        self.status(Some(tag), Status::No, Some(code), &text);
    }

    /// Finish a command: report pending mailbox changes if the command
    /// allows (`expunge_ok` is false for FETCH, STORE and SEARCH, §7.4.1),
    /// then the tagged line.
    pub(crate) fn finish(
        &mut self,
        io: &mut Io<'_, Done>,
        tag: &str,
        status: Status,
        code: Option<Code>,
        text: &str,
        expunge_ok: bool,
    ) -> Step {
        let tag = tag.to_owned();
        let text = text.to_owned();
        self.sync(io, expunge_ok, move |s, io| {
            s.status(Some(&tag), status, code, &text);
            s.step(io)
        })
    }

    /// Bring the selected mailbox view up to date (if anything may have
    /// changed), queue the untagged responses allowed now, then run `then`.
    pub(crate) fn sync(
        &mut self,
        io: &mut Io<'_, Done>,
        expunge_ok: bool,
        then: impl FnOnce(&mut ImapSession, &mut Io<'_, Done>) -> Step + Send + 'static,
    ) -> Step {
        let Some(sel) = &mut self.selected else {
            return then(self, io);
        };
        if !self.pending.swap(false, Ordering::SeqCst) {
            if expunge_ok && sel.holds_expunges() {
                sel.flush_expunges(&mut self.out);
                sel.share(&self.shared.hub.views);
            }
            return then(self, io);
        }
        let (mailbox, since) = (sel.mailbox, sel.modseq);
        self.read(
            io,
            move |r| r.changes_since(mailbox, since),
            move |s, io, res| {
                let condstore = s.condstore;
                match (res, &mut s.selected) {
                    (Ok(changes), Some(sel)) if sel.mailbox == mailbox => {
                        // New arrivals are \Recent here unless another
                        // session saw them first (§2.3.2).
                        let known = sel.last_uid();
                        let newest = changes.changed.iter().map(|e| e.uid).max().unwrap_or(0);
                        let recent_above = if newest <= known {
                            newest
                        } else if sel.read_only {
                            s.shared.hub.recent_mark(mailbox, sel.uidvalidity)
                        } else {
                            s.shared.hub.claim_recent(mailbox, sel.uidvalidity, newest)
                        };
                        let views = &s.shared.hub.views;
                        sel.apply(
                            changes,
                            &mut s.out,
                            expunge_ok,
                            condstore,
                            recent_above,
                            views,
                        );
                        // In step with the store again: share the map with
                        // the other sessions at this modseq (views.rs).
                        sel.share(&s.shared.hub.views);
                        s.synced.store(sel.modseq, Ordering::SeqCst);
                    }
                    (Err(e), _) => log::warn!("imapd conn {}: sync: {e}", s.conn),
                    _ => {}
                }
                then(s, io)
            },
        );
        Step::Continue
    }

    /// Leave the Selected state (CLOSE, UNSELECT, failed SELECT).
    pub(crate) fn deselect(&mut self) {
        if let Some(sel) = self.selected.take() {
            let mailbox = sel.mailbox;
            drop(sel);
            self.shared.hub.unwatch(self.conn);
            // Our map may have been the last user of a shared one.
            self.shared.hub.views.release(mailbox);
        }
    }

    /// Enter the Selected state and start hearing about changes.
    pub(crate) fn enter_selected(&mut self, sel: Selection) {
        if let Some(c) = &self.completer {
            self.synced.store(sel.modseq, Ordering::SeqCst);
            self.shared.hub.watch(
                self.conn,
                sel.mailbox,
                c.clone(),
                Arc::clone(&self.pending),
                Arc::clone(&self.synced),
            );
        }
        // Commits between the SELECT's read and this registration woke
        // nobody: make the next command look.
        self.pending.store(true, Ordering::SeqCst);
        self.selected = Some(sel);
    }

    /// Handle as much buffered input as the current mode allows.
    fn process_input(&mut self, io: &mut Io<'_, Done>) -> Step {
        let max_line = self.shared.config.max_line;
        // A client that pipelines commands without reading the answers
        // must not make us queue output without bound: stop at the high
        // water mark and go on once the output has drained (netloop calls
        // on_input again then; meanwhile its input buffer fills and it
        // stops reading from the socket).
        if !self.busy && self.appends_in_flight == 0 && !self.closing {
            if let Some(cmd) = self.deferred.take() {
                let step = self.execute(cmd, io);
                if step == Step::Close {
                    self.flush(io);
                    return Step::Close;
                }
            }
        }
        while !self.busy
            && !self.closing
            && self.deferred.is_none()
            && self.streaming.is_none()
            && io.out.len() < crate::limits::HIGH_WATER
        {
            match &self.mode {
                Mode::Command => match self.framer.poll(io.input) {
                    Frame::Incomplete => break,
                    Frame::Continue => {
                        crate::response::continuation(&mut self.out, "Ready for literal data");
                    }
                    Frame::LineTooLong { tag } => {
                        if let Some(t) = &mut self.tracer {
                            t.note("C: <line too long>");
                        }
                        let text = format!("Line too long (limit {max_line} octets)");
                        self.status(tag.as_deref(), Status::Bad, Some(Code::TooBig), &text);
                    }
                    Frame::LiteralTooBig { tag } => {
                        if let Some(t) = &mut self.tracer {
                            t.note("C: <literal too large>");
                        }
                        let text = format!(
                            "Literal too large (limit {} octets{})",
                            self.framer.limits().max_literal,
                            if self.user.is_none() {
                                " before login"
                            } else {
                                ""
                            }
                        );
                        self.status(tag.as_deref(), Status::Bad, Some(Code::TooBig), &text);
                    }
                    Frame::Command(bytes) => {
                        let parsed = parse_command(&bytes);
                        if let Some(t) = &mut self.tracer {
                            t.client_command(&bytes, parsed.as_ref().ok());
                        }
                        match parsed {
                            Ok(cmd) => {
                                // Only an APPEND to the mailbox the APPENDs in
                                // flight target may join them (op/append.rs).
                                let joins = match &cmd.body {
                                    CommandBody::Append { mailbox, .. } => self
                                        .append_target
                                        .as_ref()
                                        .is_some_and(|(name, _, _)| name == mailbox),
                                    _ => {
                                        self.append_target = None;
                                        false
                                    }
                                };
                                if self.appends_in_flight > 0 && !joins {
                                    self.deferred = Some(cmd);
                                    break;
                                }
                                let step = self.execute(cmd, io);
                                if step == Step::Close {
                                    self.flush(io);
                                    return Step::Close;
                                }
                            }
                            Err(e) => {
                                let (status, code) = match e.kind {
                                    SyntaxKind::Bad => (Status::Bad, None),
                                    SyntaxKind::BadCharset => (Status::No, Some(Code::BadCharset)),
                                    SyntaxKind::Limit => (Status::No, Some(Code::Limit)),
                                };
                                self.status(e.tag.as_deref(), status, code, &e.reason);
                            }
                        }
                    }
                },
                Mode::Auth { tag, step } => {
                    let (tag, step) = (tag.clone(), step.clone());
                    match io.input.take_line(max_line) {
                        Line::Incomplete => break,
                        Line::TooLong => {
                            self.mode = Mode::Command;
                            self.status(Some(&tag), Status::Bad, None, "Response too long");
                        }
                        Line::Complete(line, _) => {
                            if let Some(t) = &mut self.tracer {
                                t.note("C: <credentials masked>");
                            }
                            self.mode = Mode::Command;
                            crate::op::auth::sasl_response(self, io, tag, step, &line);
                        }
                    }
                }
                Mode::Idle { tag } => {
                    let tag = tag.clone();
                    match io.input.take_line(max_line) {
                        Line::Incomplete => break,
                        Line::TooLong => {
                            self.mode = Mode::Command;
                            self.status(Some(&tag), Status::Bad, None, "Expected DONE");
                        }
                        Line::Complete(line, _) => {
                            if let Some(t) = &mut self.tracer {
                                t.note(&format!("C: {}", String::from_utf8_lossy(&line)));
                            }
                            self.mode = Mode::Command;
                            io.set_timeout(self.shared.config.autologout);
                            if line.eq_ignore_ascii_case(b"DONE") {
                                let step = self.finish(
                                    io,
                                    &tag,
                                    Status::Ok,
                                    None,
                                    "IDLE terminated",
                                    true,
                                );
                                if step == Step::Close {
                                    return step;
                                }
                            } else {
                                self.status(Some(&tag), Status::Bad, None, "Expected DONE");
                            }
                        }
                    }
                }
            }
            // Keep output flowing even while pipelined commands pile up.
            self.flush(io);
        }
        self.check_pace(io);
        self.step(io)
    }

    /// Slow senders inside a command. netloop cuts off a client whose
    /// unconsumed bytes sit without progress, but literal octets are
    /// consumed as they arrive (so a slow, steady APPEND is never cut off),
    /// which would let a client trickle a literal one byte at a time. So
    /// while a command is being received: silence ends the connection
    /// after `net.command_timeout`, and after that grace period the
    /// command must have averaged `min_upload_rate` octets per second.
    fn check_pace(&mut self, io: &mut Io<'_, Done>) {
        let grace = self.shared.config.net.command_timeout;
        if !matches!(self.mode, Mode::Command) || !self.framer.in_progress() || self.closing {
            if self.cmd_started.take().is_some() && matches!(self.mode, Mode::Command) {
                io.set_timeout(self.shared.config.autologout);
            }
            return;
        }
        let now = Instant::now();
        let Some(started) = self.cmd_started else {
            self.cmd_started = Some(now);
            io.set_timeout(grace);
            return;
        };
        let Some(over) = now.saturating_duration_since(started).checked_sub(grace) else {
            return;
        };
        let need = over.as_secs_f64() * self.shared.config.min_upload_rate as f64;
        if (self.framer.taken() as f64) < need {
            if let Some(t) = &mut self.tracer {
                t.note("-- command arriving too slowly; closing --");
            }
            self.status(None, Status::Bye, None, "Command arriving too slowly");
            self.closing = true;
        }
    }

    /// In IDLE, report pending changes now (RFC 2177). Also re-checked
    /// after every store result, because a wake-up that arrives while a
    /// sync is in flight is otherwise only remembered in `pending`.
    fn idle_push(&mut self, io: &mut Io<'_, Done>) -> Step {
        if self.busy
            || !matches!(self.mode, Mode::Idle { .. })
            || !self.pending.load(Ordering::SeqCst)
        {
            return Step::Continue;
        }
        let step = self.sync(io, true, |s, io| s.step(io));
        self.flush(io);
        step
    }

    fn execute(&mut self, cmd: Command, io: &mut Io<'_, Done>) -> Step {
        crate::op::dispatch(self, cmd, io)
    }
}

impl netloop::Session for ImapSession {
    type Done = Done;

    fn on_open(&mut self, io: &mut Io<'_, Done>) -> Step {
        self.completer = Some(io.completer());
        io.set_timeout(self.shared.config.autologout);
        let caps = self.capabilities(io);
        self.status(
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
                self.busy = false;
                let step = f(self, io);
                self.flush(io);
                if step == Step::Close || self.closing {
                    return Step::Close;
                }
                if self.deferred.is_some() {
                    // The loop calls on_input only while input is buffered;
                    // the deferred command may be the last one sent.
                    return self.process_input(io);
                }
                self.idle_push(io)
            }
            // The hub set `pending` before sending this.
            Done::Changed => self.idle_push(io),
        }
    }

    fn on_drained(&mut self, io: &mut Io<'_, Done>) -> Step {
        if self.streaming.is_some() && !self.busy {
            let step = crate::op::fetch::next_batch(self, io);
            self.flush(io);
            // The FETCH may have just finished: the loop does not call
            // on_input after on_drained, so run pipelined commands now.
            if step == Step::Continue && !self.busy && self.streaming.is_none() {
                return self.process_input(io);
            }
            return step;
        }
        Step::Continue
    }

    fn on_timeout(&mut self, io: &mut Io<'_, Done>) {
        self.status(None, Status::Bye, None, "Autologout; idle for too long");
        self.flush(io);
    }

    fn on_shutdown(&mut self, io: &mut Io<'_, Done>) -> Step {
        if self.busy || self.appends_in_flight > 0 {
            return Step::Continue;
        }
        if self.streaming.is_some() {
            // Mid-FETCH a BYE could land inside a literal: just close.
            return Step::Close;
        }
        self.status(None, Status::Bye, None, "Server shutting down");
        self.flush(io);
        Step::Close
    }

    fn on_eof(&mut self, _io: &mut Io<'_, Done>) -> Step {
        Step::Close
    }
}

impl Drop for ImapSession {
    fn drop(&mut self) {
        self.deselect();
        self.shared.hub.unwatch(self.conn);
    }
}
