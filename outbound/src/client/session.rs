//! The connection: connect, greeting, EHLO/HELO, STARTTLS, AUTH, QUIT, and
//! the command/reply plumbing every step uses.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::ClientConnection;

use super::encode::{base64, check_text};
use super::reply::Extensions;
use super::tls::tls_config;
use super::{ClientConfig, Failure, Reply, TlsMode, MAX_LINE, QUIT_TIMEOUT};

/// The connection, plain or TLS.
pub(super) enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    pub(super) fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => &tls.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.read(buf),
            Stream::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.write(buf),
            Stream::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(tcp) => tcp.flush(),
            Stream::Tls(tls) => tls.flush(),
        }
    }
}

/// Why a step failed: the connection is unusable (I/O, timeout, protocol
/// garbage, 421), or the server refused with a reply.
pub(super) enum Error {
    Broken(String),
    Refused(Reply),
}

/// One SMTP connection to one server.
pub struct Session {
    pub(super) stream: Stream,
    /// Bytes read but not yet consumed: `inbuf[inpos..]`.
    pub(super) inbuf: Vec<u8>,
    pub(super) inpos: usize,
    /// "mx.example.org[192.0.2.1]:25", for messages.
    pub(super) peer: String,
    pub(super) greeting_host: String,
    pub(super) ehlo_line: String,
    pub(super) ext: Extensions,
    pub(super) command_timeout: Duration,
    pub(super) data_timeout: Duration,
    pub(super) broken: bool,
    /// `Some` when the dialogue is traced: what the next writes carry.
    pub(super) trace: Option<Traced>,
}

/// What the client is writing, for the trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Traced {
    /// Command lines, shown (AUTH's initial response elided).
    Commands,
    /// SASL responses, never shown.
    Secret,
    /// Message content, counted.
    Content,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("peer", &self.peer)
            .field("tls", &self.is_tls())
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Connect to `addr`, read the greeting, EHLO (HELO if EHLO gets a 5xx),
    /// STARTTLS per `cfg.tls` and EHLO again, then AUTH if configured.
    /// `mx_host` is the name a [`TlsMode::Required`] certificate must match.
    ///
    /// A 5xx greeting is a temporary failure (try another MX, like Postfix's
    /// `smtp_skip_5xx_greeting`); 5xx to both EHLO and HELO is permanent;
    /// TLS and AUTH failures are temporary (they are our configuration's or
    /// the server's problem, not the message's).
    pub fn connect(
        addr: SocketAddr,
        mx_host: &str,
        cfg: &ClientConfig,
    ) -> Result<Session, Failure> {
        match Session::open(addr, mx_host, cfg, cfg.tls) {
            Err(Failed::TlsHandshake(why)) if cfg.tls == TlsMode::Opportunistic => {
                log::info!("{mx_host}[{addr}]: {why}; retrying without TLS");
                Session::open(addr, mx_host, cfg, TlsMode::None).map_err(Failed::into_failure)
            }
            result => result.map_err(Failed::into_failure),
        }
    }

    fn open(
        addr: SocketAddr,
        mx_host: &str,
        cfg: &ClientConfig,
        tls: TlsMode,
    ) -> Result<Session, Failed> {
        let peer = format!("{mx_host}[{}]:{}", addr.ip(), addr.port());
        let tcp = TcpStream::connect_timeout(&addr, cfg.connect_timeout)
            .map_err(|e| Failed::Temporary(format!("{peer}: connect: {e}")))?;
        // Commands go out in whole batches; don't let Nagle hold the last one.
        let _ = tcp.set_nodelay(true);
        let mut session = Session {
            stream: Stream::Plain(tcp),
            inbuf: Vec::with_capacity(MAX_LINE * 2),
            inpos: 0,
            peer,
            greeting_host: String::new(),
            ehlo_line: String::new(),
            ext: Extensions::default(),
            command_timeout: cfg.command_timeout,
            data_timeout: cfg.data_timeout,
            broken: false,
            trace: cfg.trace.then_some(Traced::Commands),
        };

        let greeting = session
            .read_reply(cfg.command_timeout)
            .map_err(|e| session.fail("greeting", e))?;
        session.greeting_host = greeting
            .text
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        if greeting.code != 220 {
            // RFC 5321 §3.1: 554 here means "no SMTP service"; say QUIT.
            session.command_quietly(b"QUIT\r\n");
            return Err(Failed::Temporary(format!(
                "{}: greeting: {greeting}",
                session.peer
            )));
        }

        session.hello(&cfg.helo)?;

        if tls != TlsMode::None && session.ext.starttls {
            session.starttls(mx_host, cfg, tls)?;
            session.hello(&cfg.helo)?;
        } else if tls == TlsMode::Required {
            session.command_quietly(b"QUIT\r\n");
            return Err(Failed::Temporary(format!(
                "{}: TLS required but STARTTLS not offered",
                session.peer
            )));
        }

        if let Some((user, password)) = &cfg.auth {
            session.authenticate(addr, user, password)?;
        }
        Ok(session)
    }

    /// EHLO, falling back to HELO on a 5xx.
    pub(super) fn hello(&mut self, helo: &str) -> Result<(), Failed> {
        check_text(helo).map_err(|why| Failed::Temporary(format!("our HELO name: {why}")))?;
        let ehlo = format!("EHLO {helo}\r\n");
        match self.command(ehlo.as_bytes(), self.command_timeout) {
            Ok(lines) => {
                self.ehlo_line = lines.first().cloned().unwrap_or_default();
                self.ext = Extensions::parse(&lines);
                return Ok(());
            }
            Err(Error::Refused(reply)) if reply.is_permanent() => {}
            Err(e) => return Err(self.fail("EHLO", e)),
        }
        let helo = format!("HELO {helo}\r\n");
        match self.command(helo.as_bytes(), self.command_timeout) {
            Ok(lines) => {
                self.ehlo_line = lines.first().cloned().unwrap_or_default();
                self.ext = Extensions::default();
                Ok(())
            }
            Err(Error::Refused(reply)) if reply.is_permanent() => {
                self.command_quietly(b"QUIT\r\n");
                Err(Failed::Permanent(format!("{}: HELO: {reply}", self.peer)))
            }
            Err(e) => Err(self.fail("HELO", e)),
        }
    }

    pub(super) fn starttls(
        &mut self,
        mx_host: &str,
        cfg: &ClientConfig,
        mode: TlsMode,
    ) -> Result<(), Failed> {
        match self.command(b"STARTTLS\r\n", self.command_timeout) {
            Ok(_) => {}
            Err(Error::Refused(reply)) if mode == TlsMode::Opportunistic && reply.code != 421 => {
                // Offered, then refused: carry on in plaintext.
                log::info!("{}: STARTTLS refused: {reply}", self.peer);
                return Ok(());
            }
            Err(Error::Refused(reply)) if reply.code != 421 => {
                self.command_quietly(b"QUIT\r\n");
                return Err(Failed::Temporary(format!(
                    "{}: STARTTLS: {reply}",
                    self.peer
                )));
            }
            Err(e) => return Err(self.fail("STARTTLS", e)),
        }
        if self.inpos < self.inbuf.len() {
            // Plaintext after the 220 would be read as if it came over TLS
            // (response injection, CVE-2011-0411's mirror image).
            self.broken = true;
            return Err(Failed::TlsHandshake(format!(
                "{}: data sent after the STARTTLS reply",
                self.peer
            )));
        }
        let config = tls_config(mode, cfg.extra_ca.as_deref())
            .map_err(|why| Failed::Temporary(format!("{}: TLS set-up: {why}", self.peer)))?;
        let literal = mx_host.trim_start_matches('[').trim_end_matches(']');
        let literal = literal.strip_prefix("IPv6:").unwrap_or(literal);
        let name = match literal.parse::<std::net::IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => ServerName::try_from(mx_host.trim_end_matches('.').to_string())
                .map_err(|e| Failed::Temporary(format!("{}: TLS server name: {e}", self.peer)))?,
        };
        let conn = ClientConnection::new(config, name)
            .map_err(|e| Failed::Temporary(format!("{}: TLS set-up: {e}", self.peer)))?;
        let placeholder = Stream::Plain(
            self.stream
                .tcp()
                .try_clone()
                .map_err(|e| Failed::Temporary(format!("{}: {e}", self.peer)))?,
        );
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, placeholder) else {
            return Err(Failed::Temporary(format!("{}: TLS already on", self.peer)));
        };
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let deadline = Instant::now() + self.command_timeout;
        while tls.conn.is_handshaking() {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let result = if remaining.is_zero() {
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "handshake timed out",
                ))
            } else {
                set_timeouts(&tls.sock, remaining)
                    .and_then(|()| tls.conn.complete_io(&mut tls.sock))
            };
            match result {
                Ok((0, 0)) if tls.conn.is_handshaking() => {
                    self.broken = true;
                    return Err(Failed::TlsHandshake(format!(
                        "{}: TLS handshake: connection closed",
                        self.peer
                    )));
                }
                Ok(_) => {}
                Err(e) => {
                    self.broken = true;
                    return Err(Failed::TlsHandshake(format!(
                        "{}: TLS handshake: {e}",
                        self.peer
                    )));
                }
            }
        }
        self.stream = Stream::Tls(Box::new(tls));
        Ok(())
    }

    pub(super) fn authenticate(
        &mut self,
        addr: SocketAddr,
        user: &str,
        password: &str,
    ) -> Result<(), Failed> {
        if !self.is_tls() && !addr.ip().is_loopback() {
            self.command_quietly(b"QUIT\r\n");
            return Err(Failed::Temporary(format!(
                "{}: not sending credentials without TLS",
                self.peer
            )));
        }
        let traced = self.trace;
        let result = if self.ext.auth_plain {
            let token = base64(format!("\0{user}\0{password}").as_bytes());
            self.command(
                format!("AUTH PLAIN {token}\r\n").as_bytes(),
                self.command_timeout,
            )
        } else if self.ext.auth_login {
            self.expect_334(b"AUTH LOGIN\r\n")
                .and_then(|()| {
                    self.trace = traced.map(|_| Traced::Secret);
                    self.expect_334(format!("{}\r\n", base64(user.as_bytes())).as_bytes())
                })
                .and_then(|()| {
                    self.command(
                        format!("{}\r\n", base64(password.as_bytes())).as_bytes(),
                        self.command_timeout,
                    )
                })
        } else {
            self.command_quietly(b"QUIT\r\n");
            return Err(Failed::Temporary(format!(
                "{}: AUTH configured but neither PLAIN nor LOGIN offered",
                self.peer
            )));
        };
        self.trace = traced;
        match result {
            Ok(_) => Ok(()),
            Err(Error::Refused(reply)) => {
                self.command_quietly(b"QUIT\r\n");
                Err(Failed::Temporary(format!("{}: AUTH: {reply}", self.peer)))
            }
            Err(e) => Err(self.fail("AUTH", e)),
        }
    }

    /// Send a command; Ok if the reply is 334 (an AUTH challenge).
    pub(super) fn expect_334(&mut self, line: &[u8]) -> Result<(), Error> {
        self.write_all(line)?;
        let reply = self.read_reply(self.command_timeout)?;
        if reply.code == 334 {
            Ok(())
        } else {
            // Abandon the exchange so the session is not left mid-AUTH.
            if reply.code / 100 == 3 {
                let _ = self.write_all(b"*\r\n");
                let _ = self.read_reply(self.command_timeout);
            }
            Err(Error::Refused(reply))
        }
    }

    /// Whether the connection runs TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }

    /// The first word of the server's 220 greeting (normally its host name).
    pub fn remote_greeting_host(&self) -> &str {
        &self.greeting_host
    }

    /// The first line of the server's EHLO (or HELO) reply, without the
    /// code (normally "its.host.name Hello ...").
    pub fn ehlo_line(&self) -> &str {
        &self.ehlo_line
    }

    /// Whether the server offers DSN (RFC 3461): then NOTIFY went with each
    /// RCPT and success notices are its job, not ours (§5.2.2).
    pub fn offers_dsn(&self) -> bool {
        self.ext.dsn
    }

    /// Say QUIT and close, ignoring errors.
    pub fn quit(mut self) {
        if !self.broken {
            self.command_quietly(b"QUIT\r\n");
        }
        if let Stream::Tls(tls) = &mut self.stream {
            tls.conn.send_close_notify();
            if set_timeouts(&tls.sock, QUIT_TIMEOUT.min(self.command_timeout)).is_ok() {
                let _ = tls.conn.complete_io(&mut tls.sock);
            }
        }
        let _ = self.stream.tcp().shutdown(std::net::Shutdown::Both);
    }

    /// True if the session can carry another transaction: no I/O error or
    /// timeout so far and the last reply was not 421.
    pub fn reusable(&self) -> bool {
        !self.broken
    }

    /// Send a command and read its reply; `Refused` unless 2xx. Returns the
    /// reply's lines.
    pub(super) fn command(&mut self, line: &[u8], timeout: Duration) -> Result<Vec<String>, Error> {
        self.write_all(line)?;
        let (reply, lines) = self.read_reply_lines(timeout)?;
        if reply.code == 421 {
            self.broken = true;
        }
        if reply.is_positive() {
            Ok(lines)
        } else {
            Err(Error::Refused(reply))
        }
    }

    /// A command whose outcome does not matter (QUIT on the way out).
    pub(super) fn command_quietly(&mut self, line: &[u8]) {
        let timeout = QUIT_TIMEOUT.min(self.command_timeout);
        self.trace_out(line);
        let sent = set_timeouts(self.stream.tcp(), timeout)
            .and_then(|()| self.stream.write_all(line))
            .and_then(|()| self.stream.flush());
        if sent.is_ok() {
            let _ = self.read_reply(timeout);
        }
        self.broken = true;
    }

    /// Trace what is about to be written (see [`Traced`]).
    pub(super) fn trace_out(&self, bytes: &[u8]) {
        let Some(mode) = self.trace else { return };
        match mode {
            Traced::Content => {
                log::info!(target: "outbound::trace", "{} C: <{} bytes of message data>", self.peer, bytes.len());
            }
            Traced::Secret => {
                log::info!(target: "outbound::trace", "{} C: <credentials elided>", self.peer);
            }
            Traced::Commands => {
                for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                    let text = String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line));
                    let shown = match text.split_once(' ') {
                        Some((verb, rest)) if verb.eq_ignore_ascii_case("AUTH") => {
                            match rest.split_once(' ') {
                                Some((mech, _)) => format!("{verb} {mech} <credentials elided>"),
                                None => text.to_string(),
                            }
                        }
                        _ => text.to_string(),
                    };
                    log::info!(target: "outbound::trace", "{} C: {shown}", self.peer);
                }
            }
        }
    }

    pub(super) fn write_all(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.trace_out(bytes);
        let result = set_timeouts(self.stream.tcp(), self.command_timeout)
            .and_then(|()| self.stream.write_all(bytes))
            .and_then(|()| self.stream.flush());
        result.map_err(|e| {
            self.broken = true;
            Error::Broken(format!("write: {}", io_text(&e)))
        })
    }

    /// The failure for `step`, with the server's name and reply.
    pub(super) fn fail(&mut self, step: &str, e: Error) -> Failed {
        match e {
            Error::Broken(why) => {
                self.broken = true;
                Failed::Temporary(format!("{}: {step}: {why}", self.peer))
            }
            Error::Refused(reply) => {
                if reply.code == 421 {
                    self.broken = true;
                } else {
                    self.command_quietly(b"QUIT\r\n");
                }
                let text = format!("{}: {step}: {reply}", self.peer);
                if reply.is_permanent() {
                    Failed::Permanent(text)
                } else {
                    Failed::Temporary(text)
                }
            }
        }
    }
}

/// A connect-time failure; a failed TLS handshake is told apart so that
/// opportunistic TLS can retry in plaintext.
pub(super) enum Failed {
    Temporary(String),
    Permanent(String),
    TlsHandshake(String),
}

impl Failed {
    pub(super) fn into_failure(self) -> Failure {
        match self {
            Failed::Temporary(text) | Failed::TlsHandshake(text) => Failure::Temporary(text),
            Failed::Permanent(text) => Failure::Permanent(text),
        }
    }
}

pub(super) fn set_timeouts(tcp: &TcpStream, timeout: Duration) -> io::Result<()> {
    // A zero timeout means "none" to the OS: never pass one.
    let timeout = timeout.max(Duration::from_millis(1));
    tcp.set_read_timeout(Some(timeout))?;
    tcp.set_write_timeout(Some(timeout))
}

pub(super) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

pub(super) fn io_text(e: &io::Error) -> String {
    if is_timeout(e) {
        "timed out".to_string()
    } else {
        e.to_string()
    }
}
