//! One ManageSieve conversation as a [`netloop::Session`]: the framer
//! that gathers a command's lines and literal octets under the limits,
//! the state machine, STARTTLS, timeouts, shutdown and the `--trace` log.
//!
//! ```text
//! Anonymous --AUTHENTICATE--> Sasl --(responses)--> Authenticated
//!     ^   \--STARTTLS--> (TLS handshake; capabilities again) --> Anonymous
//!     \------------------UNAUTHENTICATE-------------------- Authenticated
//! LOGOUT, a timeout, too many failed logins: BYE/OK and close
//! ```
//!
//! While a store job is in flight the session leaves input unconsumed;
//! netloop calls again after the completion, so pipelined commands are
//! answered in order.

use crate::auth::Sasl;
use crate::parse::{self, Command};
use crate::response::{Answer, Code, Data, Status};
use crate::Shared;
use mailstore::MAX_SCRIPT_SIZE;
use netloop::{ConnId, ConnInfo, Io, Line, Step, TlsState};
use std::sync::Arc;

/// What store threads (and timers) hand back to a session.
#[derive(Debug)]
pub enum SieveDone {
    /// A password check finished: the user, `None` for bad credentials,
    /// or the store's error.
    Auth(Result<Option<mailstore::User>, String>),
    /// The pause before answering a failed AUTHENTICATE is over.
    AuthDelayed,
    /// A command's store work finished with this answer.
    Answer(Answer),
}

/// Where the conversation is (see the module docs).
#[derive(Debug)]
pub(crate) enum Phase {
    /// Not logged in.
    Anonymous,
    /// In an AUTHENTICATE exchange: the next string is a SASL response.
    Sasl(Sasl),
    /// Logged in as this user.
    Authenticated(mailstore::User),
}

/// One command being gathered: its lines and literal octets.
#[derive(Debug, Default)]
struct Frame {
    /// The command so far (lines with CRLF, literal octets inline).
    buf: Vec<u8>,
    /// Literal octets still to come.
    left: u64,
    /// Over a limit: octets are read and dropped, and the command is
    /// answered `NO (QUOTA/MAXSIZE)` once it ends.
    discarding: bool,
    /// The largest literal announced (for the refusal's text).
    largest: u64,
}

/// One ManageSieve session; see the module docs.
#[derive(Debug)]
pub struct SieveSession {
    pub(crate) shared: Arc<Shared>,
    pub(crate) conn: ConnId,
    pub(crate) info: ConnInfo,
    pub(crate) phase: Phase,
    frame: Frame,
    /// A store job or a timer is in flight: input waits.
    pub(crate) waiting: bool,
    /// STARTTLS was accepted in this callback: handle no more input.
    tls_restart: bool,
    /// Send the capabilities once the TLS layer is up (RFC 5804 §2.2).
    capa_after_tls: bool,
    /// Failed AUTHENTICATEs on this connection.
    pub(crate) auth_failures: usize,
    /// The answer is queued; close once it is sent.
    pub(crate) closing: bool,
    peer_eof: bool,
}

impl SieveSession {
    pub(crate) fn new(shared: Arc<Shared>, info: &ConnInfo) -> SieveSession {
        SieveSession {
            shared,
            conn: info.id,
            info: info.clone(),
            phase: Phase::Anonymous,
            frame: Frame::default(),
            waiting: false,
            tls_restart: false,
            capa_after_tls: false,
            auth_failures: 0,
            closing: false,
            peer_eof: false,
        }
    }

    /// Queue `answer` (and trace it; scripts are not shown).
    pub(crate) fn answer(&mut self, io: &mut Io<'_, SieveDone>, answer: &Answer) {
        let mut buf = Vec::new();
        answer.encode(&mut buf);
        if self.shared.config.trace {
            for d in &answer.data {
                let line = match d {
                    Data::Script(s) => format!("{{{}}} <script elided>", s.len()),
                    other => {
                        let mut v = Vec::new();
                        other.encode(&mut v);
                        String::from_utf8_lossy(&v).trim_end().to_owned()
                    }
                };
                log::info!(target: "managesieve::trace", "#{} S: {line}", self.conn);
            }
            let mut v = Vec::new();
            answer.status.encode(&mut v);
            log::info!(target: "managesieve::trace", "#{} S: {}", self.conn, String::from_utf8_lossy(&v).trim_end());
        }
        if answer.status.kind == crate::response::Kind::Bye {
            self.closing = true;
        }
        io.out.push(&buf);
    }

    /// Queue a final response alone.
    pub(crate) fn status(&mut self, io: &mut Io<'_, SieveDone>, status: Status) {
        self.answer(io, &Answer::status(status));
    }

    fn trace_client(&self, frame: &[u8]) {
        if !self.shared.config.trace {
            return;
        }
        let first = frame.split(|&b| b == b'\n').next().unwrap_or(b"");
        let first = String::from_utf8_lossy(first.strip_suffix(b"\r").unwrap_or(first));
        let upper = first.to_ascii_uppercase();
        let shown = if matches!(self.phase, Phase::Sasl(_)) {
            "<SASL response elided>".to_owned()
        } else if upper.starts_with("AUTHENTICATE ") {
            let mech = first.split(' ').nth(1).unwrap_or("");
            format!("AUTHENTICATE {mech} <credentials elided>")
        } else {
            first.into_owned()
        };
        log::info!(target: "managesieve::trace", "#{} C: {shown}", self.conn);
    }

    /// The capability list (RFC 5804 §1.7) as this connection stands.
    pub(crate) fn capabilities(&self, io: &Io<'_, SieveDone>) -> Vec<Data> {
        let mut v = vec![Data::Capability(
            "IMPLEMENTATION",
            Some("minimail ManageSieve".into()),
        )];
        let authed = matches!(self.phase, Phase::Authenticated(_));
        let sasl = if crate::auth::plaintext_allowed(&self.shared, io, &self.info) && !authed {
            "PLAIN LOGIN"
        } else {
            ""
        };
        v.push(Data::Capability("SASL", Some(sasl.into())));
        v.push(Data::Capability(
            "SIEVE",
            Some(mailsieve::extensions().into()),
        ));
        if io.tls() == TlsState::Available && !authed {
            v.push(Data::Capability("STARTTLS", None));
        }
        v.push(Data::Capability(
            "MAXREDIRECTS",
            Some(mailsieve::MAX_REDIRECTS.to_string()),
        ));
        if let Phase::Authenticated(u) = &self.phase {
            v.push(Data::Capability("OWNER", Some(u.address.clone())));
        }
        v.push(Data::Capability("UNAUTHENTICATE", None));
        v.push(Data::Capability("VERSION", Some("1.0".into())));
        v
    }

    /// Handle one unit of input: literal octets, or one line. Returns
    /// false when more input is needed.
    fn step(&mut self, io: &mut Io<'_, SieveDone>) -> bool {
        if self.frame.left > 0 {
            let n = usize::try_from(self.frame.left)
                .unwrap_or(usize::MAX)
                .min(io.input.len());
            if n == 0 {
                return false;
            }
            if self.frame.discarding {
                io.input.consume(n);
            } else {
                self.frame.buf.extend_from_slice(&io.input.as_slice()[..n]);
                io.input.consume(n);
            }
            self.frame.left -= n as u64;
            return true;
        }
        let max = self.shared.config.max_line;
        match io.input.take_line(max.saturating_sub(2)) {
            Line::Incomplete => false,
            Line::TooLong => {
                self.trace_client(b"<line too long>");
                self.frame = Frame::default();
                if matches!(self.phase, Phase::Sasl(_)) {
                    self.phase = Phase::Anonymous;
                }
                self.status(
                    io,
                    Status::no(format!("Line too long: at most {max} octets")),
                );
                true
            }
            Line::Complete(line, _) => {
                let literal = parse::literal_at_end(&line);
                // Lines count against the command's size too.
                let room = MAX_SCRIPT_SIZE + 4 * max;
                if self.frame.buf.len() + line.len() + 2 > room {
                    self.frame.discarding = true;
                }
                if !self.frame.discarding {
                    self.frame.buf.extend_from_slice(&line);
                    self.frame.buf.extend_from_slice(b"\r\n");
                }
                match literal {
                    Some(n) => {
                        let n = n.unwrap_or(u64::MAX);
                        self.frame.largest = self.frame.largest.max(n);
                        if n > MAX_DISCARD_TOTAL {
                            self.trace_client(&line);
                            self.status(
                                io,
                                Status::bye(format!(
                                    "Literal of {n} octets refused: a script may have at most {MAX_SCRIPT_SIZE}"
                                ))
                                .with(Code::QuotaMaxSize),
                            );
                            return true;
                        }
                        if n > MAX_SCRIPT_SIZE as u64
                            || self.frame.buf.len() as u64 + n > room as u64
                        {
                            self.frame.discarding = true;
                        }
                        self.frame.left = n;
                    }
                    None => {
                        let frame = std::mem::take(&mut self.frame);
                        self.command_framed(io, frame);
                    }
                }
                true
            }
        }
    }

    /// A whole command (or SASL response) has arrived.
    fn command_framed(&mut self, io: &mut Io<'_, SieveDone>, frame: Frame) {
        if frame.discarding {
            self.trace_client(b"<command over the size limit>");
            if matches!(self.phase, Phase::Sasl(_)) {
                self.phase = Phase::Anonymous;
            }
            self.status(
                io,
                Status::no_code(
                    Code::QuotaMaxSize,
                    format!(
                        "Too large: {} octets, and a script may have at most {MAX_SCRIPT_SIZE}",
                        frame.largest
                    ),
                ),
            );
            return;
        }
        self.trace_client(&frame.buf);
        match std::mem::replace(&mut self.phase, Phase::Anonymous) {
            Phase::Sasl(sasl) => self.sasl_response(io, sasl, &frame.buf),
            phase => {
                self.phase = phase;
                match parse::command(&frame.buf) {
                    Ok(cmd) => self.command(io, cmd),
                    Err(e) => {
                        log::debug!("#{}: {e}", self.conn);
                        self.status(io, Status::no(e.0));
                    }
                }
            }
        }
    }

    /// Decide one command.
    fn command(&mut self, io: &mut Io<'_, SieveDone>, cmd: Command) {
        let user = match &self.phase {
            Phase::Authenticated(u) => Some(u.clone()),
            _ => None,
        };
        match (cmd, user) {
            (Command::Capability, _) => {
                let data = self.capabilities(io);
                self.answer(
                    io,
                    &Answer {
                        data,
                        status: Status::ok(""),
                    },
                );
            }
            (Command::Logout, _) => {
                self.status(io, Status::ok("Logout complete"));
                self.closing = true;
            }
            (Command::Noop { tag }, _) => {
                let mut s = Status::ok("Done");
                if let Some(t) = tag {
                    s = s.with(Code::Tag(t));
                }
                self.status(io, s);
            }
            (Command::StartTls, None) => self.starttls(io),
            (Command::StartTls, Some(_)) => {
                self.status(io, Status::no("STARTTLS is not allowed once authenticated"))
            }
            (Command::Authenticate { mechanism, initial }, None) => {
                self.authenticate(io, mechanism, initial)
            }
            (Command::Authenticate { .. }, Some(_)) => {
                self.status(io, Status::no("Already authenticated"))
            }
            (Command::Unauthenticate, Some(_)) => {
                self.phase = Phase::Anonymous;
                self.status(io, Status::ok("Unauthenticated"));
            }
            (Command::Unauthenticate, None) => self.status(io, Status::no("Not authenticated")),
            (cmd, Some(user)) => self.execute(io, &user, cmd),
            (_, None) => self.status(io, Status::no("Authenticate first")),
        }
    }

    /// `STARTTLS` (RFC 5804 §2.2).
    fn starttls(&mut self, io: &mut Io<'_, SieveDone>) {
        match io.tls() {
            TlsState::Unavailable => self.status(io, Status::no("STARTTLS is not available")),
            TlsState::Active => self.status(io, Status::no("TLS is already active")),
            TlsState::Available => {
                self.status(io, Status::ok("Begin TLS negotiation now"));
                if io.start_tls() {
                    self.tls_restart = true;
                    self.capa_after_tls = true;
                }
            }
        }
    }

    fn after_callback(&self) -> Step {
        if self.closing || (self.peer_eof && !self.waiting) {
            Step::Close
        } else {
            Step::Continue
        }
    }
}

/// A literal announced larger than this ends the session.
const MAX_DISCARD_TOTAL: u64 = crate::MAX_DISCARD;

impl netloop::Session for SieveSession {
    type Done = SieveDone;

    fn on_open(&mut self, io: &mut Io<'_, SieveDone>) -> Step {
        io.set_timeout(self.shared.config.timeout);
        if self.shared.config.trace {
            log::info!(target: "managesieve::trace", "#{} connected from {}", self.conn, self.info.peer);
        }
        let data = self.capabilities(io);
        self.answer(
            io,
            &Answer {
                data,
                status: Status::ok(format!("{} ManageSieve ready", self.shared.config.hostname)),
            },
        );
        Step::Continue
    }

    fn on_input(&mut self, io: &mut Io<'_, SieveDone>) -> Step {
        self.tls_restart = false;
        while !self.closing
            && !self.waiting
            && !self.tls_restart
            && io.out.len() < MAX_PENDING_OUTPUT
        {
            if !self.step(io) {
                break;
            }
        }
        self.after_callback()
    }

    fn on_done(&mut self, done: SieveDone, io: &mut Io<'_, SieveDone>) -> Step {
        self.waiting = false;
        match done {
            SieveDone::Answer(a) => self.answer(io, &a),
            SieveDone::Auth(result) => self.auth_done(io, result),
            SieveDone::AuthDelayed => self.auth_failed(io),
        }
        self.on_input(io)
    }

    /// After STARTTLS: the go-ahead went out in plaintext and the TLS
    /// layer is in place, so the capabilities queued now are the first
    /// thing sent under TLS (RFC 5804 §2.2).
    fn on_drained(&mut self, io: &mut Io<'_, SieveDone>) -> Step {
        if self.capa_after_tls && io.tls() == TlsState::Active {
            self.capa_after_tls = false;
            let data = self.capabilities(io);
            self.answer(
                io,
                &Answer {
                    data,
                    status: Status::ok("TLS negotiation successful"),
                },
            );
        }
        Step::Continue
    }

    fn on_timeout(&mut self, io: &mut Io<'_, SieveDone>) {
        log::info!("#{}: ManageSieve idle timeout, closing", self.conn);
        self.status(io, Status::bye("Disconnected for inactivity"));
        self.closing = true;
    }

    fn on_shutdown(&mut self, io: &mut Io<'_, SieveDone>) -> Step {
        if self.waiting {
            return Step::Continue;
        }
        if !self.closing {
            self.status(io, Status::bye("Server shutting down").with(Code::TryLater));
        }
        Step::Close
    }

    fn on_eof(&mut self, _io: &mut Io<'_, SieveDone>) -> Step {
        self.peer_eof = true;
        self.after_callback()
    }
}

/// Answers queued for a client that does not read them, past which input
/// waits until they drain.
const MAX_PENDING_OUTPUT: usize = 1024 * 1024;
