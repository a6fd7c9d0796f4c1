//! The connection half of an IMAP session ([`Conn`]): the output buffer,
//! what the session is busy with, and the helpers every command uses to
//! run store jobs and answer — including the one place a store error
//! becomes a tagged NO ([`or_no`], [`Conn::store_error`]).

use crate::command::Command;
use crate::framer::Framer;
use crate::response::{Code, Status, StatusLine};
use crate::session::{AppendTarget, Busy, Done, ImapSession, Mode, Shared, State};
use crate::trace::Tracer;
use crate::view::selection::Selection;
use mailstore::{Reader, StoreError, Tx};
use netloop::{Io, Step};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Largest output buffer a session keeps between callbacks.
const OUT_KEEP: usize = 4096;

/// The connection half of a session: everything but [`State`].
pub(crate) struct Conn {
    pub(crate) shared: Arc<Shared>,
    pub(crate) framer: Framer,
    pub(crate) mode: Mode,
    pub(crate) busy: Busy,
    /// A command that arrived while APPENDs were in flight: it runs once
    /// they have all been answered, so answers stay in order.
    pub(crate) deferred: Option<Command>,
    /// The mailbox of the current run of APPENDs.
    pub(crate) append_target: Option<AppendTarget>,
    /// Set by the hub when the selected mailbox may have changed; cleared
    /// when the session reads the changes.
    pub(crate) pending: Arc<AtomicBool>,
    /// HIGHESTMODSEQ the selected view is in sync with (read by the hub's
    /// watcher to decide whom to wake).
    pub(crate) synced: Arc<AtomicU64>,
    /// A sync read in the snapshot of the command's own read, for the
    /// command's end (`view/sync.rs`).
    pub(crate) presynced: Option<Box<crate::view::sync::Synced>>,
    /// CONDSTORE enabled (RFC 7162 §3.1): MODSEQ in unsolicited FETCH.
    pub(crate) condstore: bool,
    /// NOTIFY in effect (RFC 5465; `op/notify.rs`).
    pub(crate) notify: Option<Box<crate::view::notify::Notify>>,
    /// QRESYNC enabled (RFC 7162 §3.2.3; implies `condstore`): VANISHED
    /// instead of EXPUNGE, SELECT's QRESYNC parameter allowed.
    pub(crate) qresync: bool,
    /// IMAP4rev2 enabled (RFC 9051 §6.3.1): no `\Recent`, SEARCH answers
    /// with ESEARCH, SELECT sends LIST instead of RECENT and UNSEEN,
    /// mailbox names in UTF-8 (`op/rev2.rs`).
    pub(crate) rev2: bool,
    /// Mailbox names travel as UTF-8, not modified UTF-7: IMAP4rev2 or
    /// UTF8=ACCEPT (RFC 6855 §3) enabled.
    pub(crate) utf8_names: bool,
    /// UTF8=ACCEPT enabled (RFC 6855 §3): APPEND takes `UTF8 (literal8)`,
    /// SEARCH takes no CHARSET.
    pub(crate) utf8_accept: bool,
    /// UIDONLY enabled (RFC 9586 §3): message numbers refused with `BAD
    /// [UIDREQUIRED]`, FETCH responses by UID (`UIDFETCH`), VANISHED.
    pub(crate) uidonly: bool,
    /// Output produced during the current callback.
    pub(crate) out: Vec<u8>,
    pub(crate) tracer: Option<Tracer>,
    /// netloop's id of this connection (also in log lines).
    pub(crate) id: netloop::ConnId,
    /// The client's address (failed-login throttling is per address).
    pub(crate) peer: std::net::IpAddr,
    /// When the command now being received (literals) began arriving.
    pub(crate) cmd_started: Option<Instant>,
    pub(crate) completer: Option<netloop::Completer<Done>>,
    /// IDLE keepalive times (`keepalive.rs`).
    pub(crate) keepalive: crate::keepalive::Keepalive,
}

/// A continuation of a store job.
pub(crate) trait Then<T>:
    FnOnce(&mut ImapSession, &mut Io<'_, Done>, T) -> Step + Send + 'static
{
}
impl<T, F: FnOnce(&mut ImapSession, &mut Io<'_, Done>, T) -> Step + Send + 'static> Then<T> for F {}

/// A store error answered as a tagged NO, so the continuation sees only
/// the value. The one place store errors meet the protocol (with
/// [`Conn::store_error`]).
pub(crate) fn or_no<T: 'static>(tag: &str, then: impl Then<T>) -> impl Then<mailstore::Result<T>> {
    let tag = tag.to_owned();
    move |s: &mut ImapSession, io: &mut Io<'_, Done>, r: mailstore::Result<T>| match r {
        Ok(v) => then(s, io, v),
        Err(e) => {
            s.cx.store_error(&tag, &e);
            Step::Continue
        }
    }
}

/// A continuation that needs the Selected state's view. A job started by
/// a Selected-state command finds the session still Selected (no other
/// command runs while it is in flight); if it does not, there is nobody
/// left to answer.
pub(crate) fn in_selected<T: 'static>(
    then: impl FnOnce(&mut Conn, &mut Selection, &mut Io<'_, Done>, T) -> Step + Send + 'static,
) -> impl Then<T> {
    move |s: &mut ImapSession, io: &mut Io<'_, Done>, v: T| match &mut s.state {
        State::Selected { sel, .. } => then(&mut s.cx, sel, io, v),
        _ => Step::Continue,
    }
}

impl Conn {
    /// May credentials be sent on this connection now? Over TLS, from a
    /// local client, or when the operator allows plaintext (RFC 3501
    /// §6.2.3, §11.1).
    pub(crate) fn plaintext_ok(&self, io: &Io<'_, Done>) -> bool {
        io.is_tls() || io.info.is_local() || self.shared.config.allow_plaintext_auth
    }

    /// The CAPABILITY list for this connection in state `state`, with
    /// `APPENDLIMIT=N` (RFC 7889 §2): the largest message APPEND accepts,
    /// the same for every mailbox (`--max-literal`).
    pub(crate) fn capabilities(&self, io: &Io<'_, Done>, authenticated: bool) -> String {
        let mut caps = crate::capabilities(io.tls(), self.plaintext_ok(io), authenticated);
        // Right after the fixed list (a prefix), before STARTTLS and AUTH=.
        let limit = format!(" APPENDLIMIT={}", self.shared.config.max_literal);
        caps.insert_str(crate::CAPABILITIES.len().min(caps.len()), &limit);
        caps
    }

    /// A CONDSTORE-enabling command ran (RFC 7162 §3.1: FETCH MODSEQ or
    /// CHANGEDSINCE, SEARCH MODSEQ, STORE UNCHANGEDSINCE): MODSEQ goes
    /// with every untagged FETCH from now on, and the first one while a
    /// mailbox is selected announces its `HIGHESTMODSEQ` in an untagged OK
    /// (RFC 4551 §3.2 example 5: "sent ... because this was the first
    /// CONDSTORE enabling command"; Dovecot does so, imaptest expects it).
    pub(crate) fn enable_condstore(&mut self, sel: &Selection) {
        if !self.condstore {
            self.condstore = true;
            let code = Code::HighestModSeq(sel.modseq);
            self.status(None, Status::Ok, Some(code), "Highest");
        }
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
        // Handed over without a copy when nothing else is queued.
        io.out.append(&mut self.out);
        if matches!(self.mode, Mode::Idle { .. }) {
            self.keepalive.wrote(Instant::now());
        }
        // Keep no output buffer while idling (ten thousand IDLE clients
        // would hold 10 MB of them), and no large one after a big reply.
        if self.out.capacity() > OUT_KEEP || matches!(self.mode, Mode::Idle { .. }) {
            self.out = Vec::new();
        }
    }

    /// A store job starts: input waits until its result is applied.
    fn job_started(&mut self) {
        match &mut self.busy {
            Busy::Streaming { reading, .. } => *reading = reading.saturating_add(1),
            Busy::Appending(_) => {}
            busy => *busy = Busy::Store,
        }
    }

    /// A store job's result is about to be applied.
    pub(crate) fn job_finished(&mut self) {
        match &mut self.busy {
            Busy::Streaming { reading, .. } => *reading = reading.saturating_sub(1),
            Busy::Appending(_) => {}
            busy => *busy = Busy::Ready,
        }
    }

    /// Run `f` on a store reader thread, then `then` on the loop thread.
    pub(crate) fn read<T: Send + 'static>(
        &mut self,
        io: &mut Io<'_, Done>,
        f: impl FnOnce(&Reader) -> mailstore::Result<T> + Send + 'static,
        then: impl Then<mailstore::Result<T>>,
    ) {
        let c = io.completer();
        self.job_started();
        self.shared.store.read(f, move |r| {
            c.complete(Done::Apply(Box::new(move |s, io| then(s, io, r))));
        });
    }

    /// Run `f` in a store write transaction, then `then` once committed.
    pub(crate) fn write<T: Send + 'static>(
        &mut self,
        io: &mut Io<'_, Done>,
        f: impl FnOnce(&mut Tx) -> mailstore::Result<T> + Send + 'static,
        then: impl Then<mailstore::Result<T>>,
    ) {
        let c = io.completer();
        self.job_started();
        // Our own commit changes what the client must hear about.
        self.pending.store(true, Ordering::SeqCst);
        self.shared.store.write(f, move |r| {
            c.complete(Done::Apply(Box::new(move |s, io| then(s, io, r))));
        });
    }

    /// Answer a store error as a tagged NO with the right response code
    /// (RFC 5530 §3): a full disk is `OVERQUOTA` (no room for what the
    /// command adds; Dovecot answers ENOSPC so too), a damaged store that
    /// refuses changes and a database server out of reach (PostgreSQL
    /// restarting) `UNAVAILABLE` (a subsystem is down; try later).
    pub(crate) fn store_error(&mut self, tag: &str, e: &StoreError) {
        let (code, text) = match e {
            StoreError::NotFound(what) => (Code::Nonexistent, format!("No such {what}")),
            StoreError::Exists(what) => (Code::AlreadyExists, format!("{what} already exists")),
            StoreError::Invalid(why) => (Code::Cannot, why.clone()),
            StoreError::Full(_) => {
                log::error!("imapd conn {}: {e}", self.id);
                (Code::OverQuota, "Not enough disk space".to_owned())
            }
            // RFC 9208 §4.3: the user's quota has no room (nothing added).
            StoreError::OverQuota { permanent, .. } => {
                log::info!("imapd conn {}: {e}", self.id);
                let text = if *permanent {
                    "Quota exceeded (the message is larger than the quota)"
                } else {
                    "Quota exceeded (mailbox full)"
                };
                (Code::OverQuota, text.to_owned())
            }
            StoreError::Damaged(_) => {
                log::error!("imapd conn {}: {e}", self.id);
                (
                    Code::Unavailable,
                    "Mail store damaged; changes are refused until it is repaired".to_owned(),
                )
            }
            // The database server is restarting or out of reach: a
            // subsystem is down, the same command may work later.
            StoreError::Unavailable(_) => {
                log::warn!("imapd conn {}: {e}", self.id);
                (
                    Code::Unavailable,
                    "Mail store temporarily unavailable; try again later".to_owned(),
                )
            }
            other => {
                log::error!("imapd conn {}: store failure: {other}", self.id);
                (
                    Code::ServerBug,
                    "Internal error; try again later".to_owned(),
                )
            }
        };
        self.status(Some(tag), Status::No, Some(code), &text);
    }

    /// Finish a command: report pending mailbox changes to `sel` (the
    /// selected view, if any) if the command allows (`expunge_ok` is false
    /// for FETCH, STORE and SEARCH, §7.4.1), then the tagged line.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn finish(
        &mut self,
        io: &mut Io<'_, Done>,
        sel: Option<&mut Selection>,
        tag: &str,
        status: Status,
        code: Option<Code>,
        text: &str,
        expunge_ok: bool,
    ) -> Step {
        let tag = tag.to_owned();
        let text = text.to_owned();
        self.sync(io, sel, expunge_ok, move |cx, sel, io| {
            // NOTIFY's events before the tagged line (RFC 5465 §4).
            cx.notify_report(io, sel, move |cx, _, io| {
                cx.status(Some(&tag), status, code, &text);
                cx.flush(io);
                Step::Continue
            })
        })
    }
}
