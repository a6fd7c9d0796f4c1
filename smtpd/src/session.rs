//! One SMTP conversation as a [`netloop::Session`]: the input loop that
//! switches between command lines, DATA content and BDAT chunks, the
//! completions coming back from the store, timeouts (RFC 5321 §4.5.3.2),
//! shutdown, and the `--trace` dialogue log.
//!
//! The per-command rules (RFC 5321 §4.1.4 order, §4.3.2 replies) live in
//! `transaction.rs`; reading content and committing it in `deliver.rs`;
//! AUTH and its SASL exchange (RFC 4954) in `auth.rs`; STARTTLS
//! (RFC 3207) in `tls.rs`. The `--trace` log never shows credentials: the
//! arguments of AUTH and every SASL response line are masked.
//!
//! While a store job is in flight (a RCPT lookup or a commit) the session
//! leaves input unconsumed; netloop calls again after the completion, so
//! pipelined commands (RFC 2920) are answered strictly in order.

use crate::command::{Command, MailParams, RcptParams};
use crate::data::{BdatBody, DataReader};
use crate::parse::ReversePath;
use crate::reply::Reply;
use crate::service::Shared;
use netloop::{ConnId, ConnInfo, Io, Line, Step};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// What store threads hand back to a session.
#[derive(Debug)]
pub enum SmtpDone {
    /// A RCPT lookup finished: where mail to `addr` goes (users, aliases,
    /// catch-all), if anywhere.
    Rcpt {
        /// The recipient address looked up.
        addr: String,
        /// The resolution, or the store's error.
        result: Result<(mailstore::Resolution, crate::transaction::RcptQuota), String>,
    },
    /// A delivery was committed durably (or failed).
    Committed(Result<(), String>),
    /// The inbound checks (SPF, DKIM, ARC, DMARC) finished: the verdict
    /// and the message body handed back.
    Checked(Box<(mailauth::Verdict, Vec<u8>)>),
    /// The message was refused before committing (its From header is not
    /// the authenticated user's); the text says why.
    Refused(String),
    /// Every local recipient's Sieve script rejected the message; the
    /// text is the reason.
    Rejected(String),
    /// A password check finished: the user, `None` for bad credentials, or
    /// the store's error.
    Auth(Result<Option<mailstore::User>, String>),
    /// The pause before answering a failed AUTH is over.
    AuthDelayed,
}

/// The client's EHLO/HELO.
#[derive(Debug, Clone)]
pub(crate) struct Helo {
    /// The name it gave.
    pub(crate) name: String,
    /// EHLO (true) or HELO.
    pub(crate) extended: bool,
}

/// An accepted recipient.
#[derive(Debug, Clone)]
pub(crate) struct Recipient {
    /// As given in RCPT TO (canonical form).
    pub(crate) addr: String,
    /// Who gets it: local users and the addresses elsewhere an alias
    /// forwards to, or None for another host (outbound queue).
    pub(crate) route: Option<mailstore::Route>,
    /// Its DSN parameters (RFC 3461), passed on with the message.
    pub(crate) dsn: RcptParams,
}

/// One mail transaction (RFC 5321 §3.3), from MAIL on.
#[derive(Debug)]
pub(crate) struct Envelope {
    pub(crate) from: ReversePath,
    pub(crate) params: MailParams,
    pub(crate) rcpts: Vec<Recipient>,
    pub(crate) started: Instant,
    /// Chunks received so far, once BDAT has been used.
    pub(crate) bdat: Option<BdatBody>,
}

/// Where the conversation is. Sequence (RFC 5321 §4.1.4):
///
/// ```text
/// Idle --MAIL--> Envelope --RCPT*--> Envelope --DATA--> Data --.--> Idle (commit)
///                    \--BDAT--> Chunk --(not LAST)--> Envelope
///                                     \--(LAST)--> Idle (commit)
/// Idle --AUTH--> Sasl --(response lines)--> Idle
/// RSET, EHLO, HELO, STARTTLS: any --> Idle
/// ```
#[derive(Debug)]
pub(crate) enum State {
    /// No transaction.
    Idle,
    /// MAIL accepted; RCPTs (and BDAT chunks) arriving.
    Envelope(Envelope),
    /// After 354: reading the message.
    Data(Envelope, DataReader),
    /// Reading the bytes of one BDAT chunk. With `env: None` the chunk is
    /// discarded and `failure` is the reply once it has been read.
    Chunk {
        env: Option<Envelope>,
        left: u64,
        size: u64,
        last: bool,
        failure: Option<Reply>,
    },
    /// In an AUTH exchange: the next line is a SASL response.
    Sasl(crate::auth::Sasl),
}

/// Store work in flight; input waits until it is answered.
#[derive(Debug)]
pub(crate) enum Waiting {
    /// A RCPT lookup, with the command's parameters.
    Rcpt(RcptParams),
    /// A delivery commit, with what the log line needs.
    Commit(CommitInfo),
    /// The inbound checks of a message waiting to be stored (the body is
    /// with the checker).
    Check(Box<Envelope>),
    /// A password check, for the login name given.
    Auth(String),
    /// The pause before a 535.
    AuthDelay,
}

/// Facts about a message being committed, for the reply and the log.
#[derive(Debug)]
pub(crate) struct CommitInfo {
    pub(crate) id: String,
    pub(crate) from: String,
    pub(crate) rcpts: Vec<String>,
    pub(crate) size: usize,
    pub(crate) started: Instant,
    /// When the message was handed to the store (metrics: delivery time).
    pub(crate) handed: Instant,
}

/// One SMTP session; see the module docs.
#[derive(Debug)]
pub struct SmtpSession {
    pub(crate) shared: Arc<Shared>,
    pub(crate) conn: ConnId,
    pub(crate) peer: SocketAddr,
    pub(crate) helo: Option<Helo>,
    /// The user this session authenticated as (RFC 4954).
    pub(crate) user: Option<mailstore::User>,
    /// STARTTLS was accepted in this callback: handle no more input.
    pub(crate) tls_restart: bool,
    /// When the current DATA content or BDAT chunk began (its total
    /// deadline, `Timeouts::data_total`, runs from here).
    pub(crate) content_since: Instant,
    pub(crate) state: State,
    pub(crate) waiting: Option<Waiting>,
    /// QUIT was answered: ignore further input, close.
    pub(crate) closing: bool,
    /// The client closed its side; close once pending work is answered.
    pub(crate) peer_eof: bool,
}

impl SmtpSession {
    pub(crate) fn new(shared: Arc<Shared>, info: &ConnInfo) -> SmtpSession {
        SmtpSession {
            shared,
            conn: info.id,
            peer: info.peer,
            helo: None,
            user: None,
            tls_restart: false,
            content_since: Instant::now(),
            state: State::Idle,
            waiting: None,
            closing: false,
            peer_eof: false,
        }
    }

    /// Queue `reply` (and trace it).
    pub(crate) fn reply(&self, io: &mut Io<'_, SmtpDone>, reply: &Reply) {
        let mut buf = Vec::new();
        reply.encode(&mut buf);
        if self.shared.config.trace {
            for line in String::from_utf8_lossy(&buf).split_terminator("\r\n") {
                log::info!(target: "smtpd::trace", "#{} S: {}", self.conn, line);
            }
        }
        io.out.push(&buf);
    }

    /// Trace a client command line; an AUTH initial response is elided.
    pub(crate) fn trace_client(&self, line: &[u8]) {
        if !self.shared.config.trace {
            return;
        }
        let line = line.trim_ascii_start();
        let text = String::from_utf8_lossy(line);
        let is_auth = line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"AUTH");
        let shown = if is_auth {
            let mut words = text.split(' ');
            let verb = words.next().unwrap_or("");
            match (words.next(), words.next()) {
                (Some(mech), Some(_)) => format!("{verb} {mech} <credentials elided>"),
                (Some(mech), None) => format!("{verb} {mech}"),
                _ => verb.to_owned(),
            }
        } else {
            text.into_owned()
        };
        log::info!(target: "smtpd::trace", "#{} C: {}", self.conn, shown);
    }

    /// Trace a line of the client's that is not shown (a SASL response).
    pub(crate) fn trace_hidden(&self, what: &str) {
        if self.shared.config.trace {
            log::info!(target: "smtpd::trace", "#{} C: <{what}>", self.conn);
        }
    }

    /// Trace that `n` octets of message content arrived.
    pub(crate) fn trace_content(&self, n: u64) {
        if self.shared.config.trace {
            log::info!(target: "smtpd::trace", "#{} C: <{} bytes of message data>", self.conn, n);
        }
    }

    /// Handle one unit of input (a command line, or as much content as is
    /// buffered). Returns false when more input is needed.
    fn step(&mut self, io: &mut Io<'_, SmtpDone>) -> bool {
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Data(env, reader) => self.read_data(io, env, reader),
            State::Chunk {
                env,
                left,
                size,
                last,
                failure,
            } => self.read_chunk(io, env, left, size, last, failure),
            State::Sasl(sasl) => self.read_sasl(io, sasl),
            other => {
                self.state = other;
                self.read_command(io)
            }
        }
    }

    fn read_command(&mut self, io: &mut Io<'_, SmtpDone>) -> bool {
        // AUTH lines may be longer than other commands (RFC 4954 §4).
        let head = io.input.as_slice();
        let is_auth = head.len() >= 5 && head[..5].eq_ignore_ascii_case(b"AUTH ");
        let max = if is_auth {
            crate::limits::MAX_AUTH_LINE.max(self.shared.config.max_command_line)
        } else {
            self.shared.config.max_command_line
        };
        match io.input.take_line(max.saturating_sub(2)) {
            Line::Incomplete => false,
            Line::TooLong => {
                self.trace_client(b"<line too long>");
                self.reply(io, &Reply::line_too_long(max));
                true
            }
            Line::Complete(line, _ending) => {
                self.trace_client(&line);
                match Command::parse(&line) {
                    Ok(cmd) => self.command(io, cmd),
                    Err(e) => {
                        log::debug!("#{}: {e}", self.conn);
                        self.reply(io, &e.reply());
                    }
                }
                true
            }
        }
    }

    fn after_callback(&self) -> Step {
        if self.closing || (self.peer_eof && self.waiting.is_none()) {
            Step::Close
        } else {
            Step::Continue
        }
    }
}

impl netloop::Session for SmtpSession {
    type Done = SmtpDone;

    fn on_open(&mut self, io: &mut Io<'_, SmtpDone>) -> Step {
        io.set_timeout(self.shared.config.timeouts.command);
        if self.shared.config.trace {
            log::info!(target: "smtpd::trace", "#{} connected from {}", self.conn, self.peer);
        }
        self.reply(io, &Reply::greeting(&self.shared.config.hostname));
        Step::Continue
    }

    fn on_input(&mut self, io: &mut Io<'_, SmtpDone>) -> Step {
        self.tls_restart = false;
        // After STARTTLS nothing more is read in this callback: the loop
        // has discarded the rest (RFC 3207 §4.2, pre-handshake injection).
        // Replies the client does not read are not piled up: past a bound
        // the rest of the input waits until the output drains (netloop
        // calls again then), so a flood of pipelined commands costs at most
        // the input buffer plus this much.
        while !self.closing
            && self.waiting.is_none()
            && !self.tls_restart
            && io.out.len() < crate::limits::MAX_PENDING_OUTPUT
        {
            if !self.step(io) {
                break;
            }
        }
        self.after_callback()
    }

    fn on_done(&mut self, done: SmtpDone, io: &mut Io<'_, SmtpDone>) -> Step {
        match (done, self.waiting.take()) {
            (SmtpDone::Rcpt { addr, result }, Some(Waiting::Rcpt(params))) => {
                self.rcpt_done(io, addr, params, result)
            }
            (SmtpDone::Checked(checked), Some(Waiting::Check(env))) => {
                let (verdict, body) = *checked;
                self.checked(io, *env, body, verdict)
            }
            (SmtpDone::Committed(result), Some(Waiting::Commit(info))) => {
                self.commit_done(io, info, result)
            }
            (SmtpDone::Refused(why), Some(Waiting::Commit(info))) => {
                self.commit_refused(io, info, &why)
            }
            (SmtpDone::Rejected(why), Some(Waiting::Commit(info))) => {
                self.commit_rejected(io, info, &why)
            }
            (SmtpDone::Auth(result), Some(Waiting::Auth(login))) => {
                self.auth_done(io, login, result)
            }
            (SmtpDone::AuthDelayed, Some(Waiting::AuthDelay)) => {
                self.reply(io, &Reply::auth_failed());
            }
            (done, waiting) => {
                log::error!("#{}: unexpected completion {done:?}", self.conn);
                self.waiting = waiting;
            }
        }
        self.on_input(io)
    }

    fn on_timeout(&mut self, io: &mut Io<'_, SmtpDone>) {
        log::info!("#{}: timeout, closing", self.conn);
        self.reply(io, &Reply::timeout(&self.shared.config.hostname));
        self.closing = true;
    }

    fn on_shutdown(&mut self, io: &mut Io<'_, SmtpDone>) -> Step {
        if self.waiting.is_some() {
            return Step::Continue;
        }
        if !self.closing {
            self.reply(io, &Reply::shutting_down(&self.shared.config.hostname));
            self.closing = true;
        }
        Step::Close
    }

    fn on_eof(&mut self, _io: &mut Io<'_, SmtpDone>) -> Step {
        self.peer_eof = true;
        self.after_callback()
    }
}
