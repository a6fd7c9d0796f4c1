//! A blocking SMTP client (RFC 5321) for relaying mail to other servers:
//! ESMTP with PIPELINING (RFC 2920), STARTTLS (RFC 3207), SIZE (RFC 1870),
//! 8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531), DSN (RFC 3461) and AUTH
//! PLAIN/LOGIN (RFC 4954) for smarthosts.
//!
//! A [`Session`] is one connection: [`Session::connect`] reads the greeting,
//! says EHLO, starts TLS per [`TlsMode`] and authenticates; each
//! [`Session::send`] is one mail transaction with a result per recipient.
//! Everything blocks on a `std::net::TcpStream`; the delivery engine runs
//! sessions on its own worker threads.
//!
//! A remote server is untrusted: every read has a deadline (the whole reply
//! must arrive within the timeout, not merely each byte), reply lines are
//! bounded ([`MAX_LINE`]) and so is the number of lines per reply
//! ([`MAX_REPLY_LINES`]).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Longest reply line accepted, CRLF included (RFC 5321 §4.5.3.1.5 says
/// 512; real servers send longer, nobody needs 4 KiB).
pub const MAX_LINE: usize = 4096;
/// Most lines accepted in one reply (an EHLO reply has a dozen or so).
pub const MAX_REPLY_LINES: usize = 100;
/// Commands written before their replies are read, with PIPELINING. Bounded
/// so that neither side's socket buffers fill while the other is writing.
const PIPELINE_BATCH: usize = 100;
/// Body bytes handed to the socket per write.
const WRITE_CHUNK: usize = 64 * 1024;
/// How long `quit` waits for the 221.
const QUIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether and how to use STARTTLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsMode {
    /// Never start TLS.
    None,
    /// STARTTLS when the server offers it, accepting any certificate (RFC
    /// 3207 opportunistic TLS: protection from passive eavesdropping only).
    /// If the handshake fails, the session reconnects without TLS.
    #[default]
    Opportunistic,
    /// STARTTLS must succeed and the certificate must verify, against the
    /// system roots plus [`ClientConfig::extra_ca`], for the MX host name.
    Required,
}

/// How sessions behave. `Debug` leaves out the password.
#[derive(Clone)]
pub struct ClientConfig {
    /// Our host name, said in EHLO/HELO.
    pub helo: String,
    pub tls: TlsMode,
    /// PEM file of extra trusted CA certificates (for [`TlsMode::Required`]).
    pub extra_ca: Option<PathBuf>,
    /// User name and password for AUTH PLAIN (LOGIN if only LOGIN is
    /// offered), for a smarthost. Only sent over TLS, or to a loopback
    /// address.
    pub auth: Option<(String, String)>,
    /// TCP connect timeout (default 30 s).
    pub connect_timeout: Duration,
    /// Greeting, EHLO, MAIL, RCPT, DATA and other replies, and each write
    /// (default 300 s, RFC 5321 §4.5.3.2).
    pub command_timeout: Duration,
    /// The reply to the final dot (default 600 s).
    pub data_timeout: Duration,
}

impl ClientConfig {
    /// The defaults, saying `helo` in EHLO.
    pub fn new(helo: impl Into<String>) -> ClientConfig {
        ClientConfig {
            helo: helo.into(),
            tls: TlsMode::default(),
            extra_ca: None,
            auth: None,
            connect_timeout: Duration::from_secs(30),
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(600),
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("helo", &self.helo)
            .field("tls", &self.tls)
            .field("extra_ca", &self.extra_ca)
            .field("auth_user", &self.auth.as_ref().map(|(user, _)| user))
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("data_timeout", &self.data_timeout)
            .finish()
    }
}

/// One SMTP reply. A multi-line reply's lines are joined with a space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// RFC 3463 enhanced status code (e.g. `5.1.1`) when the server gave one.
    pub enhanced: Option<String>,
    pub text: String,
}

impl Reply {
    fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    fn is_permanent(&self) -> bool {
        (500..600).contains(&self.code)
    }

    /// A reply made up here, not received (e.g. SMTPUTF8 not offered).
    fn local(code: u16, enhanced: &str, text: &str) -> Reply {
        Reply {
            code,
            enhanced: Some(enhanced.to_string()),
            text: text.to_string(),
        }
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.enhanced {
            Some(enhanced) => write!(f, "{} {} {}", self.code, enhanced, self.text),
            None => write!(f, "{} {}", self.code, self.text),
        }
    }
}

/// A failure of the whole connection or transaction; the text names the
/// server and includes its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Temporary(String),
    Permanent(String),
}

impl Failure {
    pub fn is_permanent(&self) -> bool {
        matches!(self, Failure::Permanent(_))
    }

    pub fn text(&self) -> &str {
        match self {
            Failure::Temporary(text) | Failure::Permanent(text) => text,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

impl std::error::Error for Failure {}

/// One message to send.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    /// Reverse path without angle brackets; `""` for the null sender.
    pub from: &'a str,
    pub rcpts: &'a [Rcpt<'a>],
    /// The whole message, header and body. CRLF line ends; bare LF (and bare
    /// CR) are sent as CRLF. Not dot-stuffed: the client does that.
    pub body: &'a [u8],
    /// DSN `RET`: `"FULL"` or `"HDRS"` (sent only if the server offers DSN).
    pub ret: Option<&'a str>,
    /// DSN `ENVID`, decoded; the client xtext-encodes it.
    pub envid: Option<&'a str>,
}

/// One recipient.
#[derive(Debug, Clone, Copy)]
pub struct Rcpt<'a> {
    /// Forward path without angle brackets.
    pub addr: &'a str,
    /// DSN `NOTIFY`: `"NEVER"` or a comma list of `SUCCESS`, `FAILURE`,
    /// `DELAY`.
    pub notify: Option<&'a str>,
    /// DSN `ORCPT`, decoded: `"rfc822;user@example.org"` (a value without
    /// `;` is taken as an rfc822 address); the client xtext-encodes the
    /// address part.
    pub orcpt: Option<&'a str>,
}

/// What became of one recipient in [`Session::send`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptResult {
    /// The server took responsibility for the message (its reply to the final
    /// dot).
    Delivered(Reply),
    /// Try again later (the reply that said so: RCPT, MAIL or final dot).
    Temporary(Reply),
    /// Bounce (the reply that said so).
    Permanent(Reply),
}

impl RcptResult {
    /// The reply behind the result.
    pub fn reply(&self) -> &Reply {
        match self {
            RcptResult::Delivered(reply)
            | RcptResult::Temporary(reply)
            | RcptResult::Permanent(reply) => reply,
        }
    }

    fn from_final(reply: &Reply) -> RcptResult {
        if reply.is_positive() {
            RcptResult::Delivered(reply.clone())
        } else {
            RcptResult::refused(reply)
        }
    }

    /// A non-2xx reply: 5xx is permanent, anything else temporary.
    fn refused(reply: &Reply) -> RcptResult {
        if reply.is_permanent() {
            RcptResult::Permanent(reply.clone())
        } else {
            RcptResult::Temporary(reply.clone())
        }
    }
}

/// What the server said it supports in its EHLO reply.
#[derive(Debug, Default, Clone)]
struct Extensions {
    pipelining: bool,
    size: bool,
    starttls: bool,
    dsn: bool,
    smtputf8: bool,
    eightbitmime: bool,
    auth_plain: bool,
    auth_login: bool,
}

impl Extensions {
    fn parse(lines: &[String]) -> Extensions {
        let mut ext = Extensions::default();
        // The first line is the greeting part ("host Hello ...").
        for line in lines.iter().skip(1) {
            let mut words = line.split([' ', '=']).filter(|w| !w.is_empty());
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword.to_ascii_uppercase().as_str() {
                "PIPELINING" => ext.pipelining = true,
                "SIZE" => ext.size = true,
                "STARTTLS" => ext.starttls = true,
                "DSN" => ext.dsn = true,
                "SMTPUTF8" => ext.smtputf8 = true,
                "8BITMIME" => ext.eightbitmime = true,
                "AUTH" => {
                    for mechanism in words {
                        match mechanism.to_ascii_uppercase().as_str() {
                            "PLAIN" => ext.auth_plain = true,
                            "LOGIN" => ext.auth_login = true,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        ext
    }
}

/// The connection, plain or TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
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
enum Error {
    Broken(String),
    Refused(Reply),
}

/// One SMTP connection to one server.
pub struct Session {
    stream: Stream,
    /// Bytes read but not yet consumed: `inbuf[inpos..]`.
    inbuf: Vec<u8>,
    inpos: usize,
    /// "mx.example.org[192.0.2.1]:25", for messages.
    peer: String,
    greeting_host: String,
    ehlo_line: String,
    ext: Extensions,
    command_timeout: Duration,
    data_timeout: Duration,
    broken: bool,
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
    fn hello(&mut self, helo: &str) -> Result<(), Failed> {
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

    fn starttls(&mut self, mx_host: &str, cfg: &ClientConfig, mode: TlsMode) -> Result<(), Failed> {
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
            return Err(Failed::Temporary(format!(
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

    fn authenticate(&mut self, addr: SocketAddr, user: &str, password: &str) -> Result<(), Failed> {
        if !self.is_tls() && !addr.ip().is_loopback() {
            self.command_quietly(b"QUIT\r\n");
            return Err(Failed::Temporary(format!(
                "{}: not sending credentials without TLS",
                self.peer
            )));
        }
        let result = if self.ext.auth_plain {
            let token = base64(format!("\0{user}\0{password}").as_bytes());
            self.command(
                format!("AUTH PLAIN {token}\r\n").as_bytes(),
                self.command_timeout,
            )
        } else if self.ext.auth_login {
            self.expect_334(b"AUTH LOGIN\r\n")
                .and_then(|()| {
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
    fn expect_334(&mut self, line: &[u8]) -> Result<(), Error> {
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

    /// One mail transaction. See the module docs and the brief in `lib.rs`:
    /// a result per recipient in order; `Err` only when the connection is
    /// unusable (I/O error, timeout, garbage, 421), in which case every
    /// recipient of `env` is still to be tried.
    pub fn send(&mut self, env: &Envelope) -> Result<Vec<RcptResult>, Failure> {
        if self.broken {
            return Err(Failure::Temporary(format!(
                "{}: connection not usable",
                self.peer
            )));
        }
        let n = env.rcpts.len();

        // Refusals decided here, before anything is sent.
        if let Err(why) = check_path(env.from) {
            let reply = Reply::local(
                553,
                "5.1.7",
                &format!("bad sender address <{}>: {why}", env.from.escape_debug()),
            );
            return Ok(vec![RcptResult::Permanent(reply); n]);
        }
        let needs_utf8 = !env.from.is_ascii() || env.rcpts.iter().any(|r| !r.addr.is_ascii());
        if needs_utf8 && !self.ext.smtputf8 {
            let reply = Reply::local(
                553,
                "5.6.7",
                &format!(
                    "{} does not support SMTPUTF8, needed for a non-ASCII address",
                    self.peer
                ),
            );
            return Ok(vec![RcptResult::Permanent(reply); n]);
        }
        let mut results: Vec<Option<RcptResult>> = vec![None; n];
        let mut commands: Vec<(Command, Vec<u8>)> = Vec::with_capacity(n + 2);
        commands.push((
            Command::Mail,
            self.mail_command(env, needs_utf8).into_bytes(),
        ));
        for (i, rcpt) in env.rcpts.iter().enumerate() {
            match self.rcpt_command(rcpt) {
                Ok(line) => commands.push((Command::Rcpt(i), line.into_bytes())),
                Err(why) => {
                    let text = format!(
                        "bad recipient address <{}>: {why}",
                        rcpt.addr.escape_debug()
                    );
                    results[i] = Some(RcptResult::Permanent(Reply::local(553, "5.1.3", &text)));
                }
            }
        }
        if commands.len() == 1 {
            let results = results.into_iter().flatten().collect();
            return Ok(results);
        }
        commands.push((Command::Data, b"DATA\r\n".to_vec()));

        self.transaction(env, commands, results)
            .map_err(|e| self.fail("transaction", e).into_failure())
    }

    fn transaction(
        &mut self,
        env: &Envelope,
        commands: Vec<(Command, Vec<u8>)>,
        mut results: Vec<Option<RcptResult>>,
    ) -> Result<Vec<RcptResult>, Error> {
        let batch = if self.ext.pipelining {
            PIPELINE_BATCH
        } else {
            1
        };
        let mut mail_refused: Option<Reply> = None;
        let mut accepted = 0usize;
        let mut data_reply: Option<Reply> = None;

        let mut next = 0;
        while next < commands.len() && mail_refused.is_none() {
            let mut end = (next + batch).min(commands.len());
            if batch == 1 && matches!(commands[next].0, Command::Data) && accepted == 0 {
                break; // without pipelining, no DATA unless someone was accepted
            }
            if end == commands.len() - 1 && batch > 1 {
                end = commands.len(); // DATA goes with the last batch (RFC 2920 §3.1)
            }
            let mut out = Vec::new();
            for (_, line) in &commands[next..end] {
                out.extend_from_slice(line);
            }
            self.write_all(&out)?;
            for (command, _) in &commands[next..end] {
                let reply = self.read_reply(self.command_timeout)?;
                if reply.code == 421 {
                    return Err(Error::Refused(reply));
                }
                match *command {
                    Command::Mail => {
                        if !reply.is_positive() {
                            mail_refused = Some(reply);
                        }
                    }
                    // After a refused MAIL, RCPT and DATA replies are 503s.
                    Command::Rcpt(_) | Command::Data if mail_refused.is_some() => {}
                    Command::Rcpt(i) => {
                        if reply.is_positive() {
                            accepted += 1;
                        } else {
                            results[i] = Some(RcptResult::refused(&reply));
                        }
                    }
                    Command::Data => data_reply = Some(reply),
                }
            }
            next = end;
        }

        let mut final_reply: Option<Reply> = None;
        match &data_reply {
            Some(reply) if reply.code == 354 => {
                if accepted == 0 || mail_refused.is_some() {
                    // A pipelined DATA went through although nothing was
                    // accepted: end the (empty) message, whatever it says.
                    self.write_all(b".\r\n")?;
                    let reply = self.read_reply(self.data_timeout)?;
                    if reply.code == 421 {
                        return Err(Error::Refused(reply));
                    }
                    self.reset()?;
                } else {
                    self.write_body(env.body)?;
                    let reply = self.read_reply(self.data_timeout)?;
                    if reply.code == 421 {
                        return Err(Error::Refused(reply));
                    }
                    final_reply = Some(reply);
                }
            }
            Some(reply) if reply.code >= 400 => self.reset()?,
            Some(reply) => {
                self.broken = true;
                return Err(Error::Broken(format!("unexpected reply to DATA: {reply}")));
            }
            None => self.reset()?,
        }

        // What decides the recipients the server accepted.
        let last = mail_refused
            .as_ref()
            .or(final_reply.as_ref())
            .or(data_reply.as_ref().filter(|reply| reply.code != 354));
        Ok(results
            .into_iter()
            .map(|result| match (result, last) {
                (Some(refused), _) => refused,
                (None, Some(reply)) => RcptResult::from_final(reply),
                (None, None) => {
                    RcptResult::Temporary(Reply::local(451, "4.4.2", "no reply to DATA"))
                }
            })
            .collect())
    }

    fn mail_command(&self, env: &Envelope, needs_utf8: bool) -> String {
        let mut line = format!("MAIL FROM:<{}>", env.from);
        if self.ext.size {
            line.push_str(&format!(" SIZE={}", env.body.len()));
        }
        if self.ext.eightbitmime && !env.body.is_ascii() {
            line.push_str(" BODY=8BITMIME");
        }
        if needs_utf8 {
            line.push_str(" SMTPUTF8");
        }
        if self.ext.dsn {
            if let Some(ret) = env.ret {
                if ret.eq_ignore_ascii_case("FULL") || ret.eq_ignore_ascii_case("HDRS") {
                    line.push_str(&format!(" RET={}", ret.to_ascii_uppercase()));
                }
            }
            if let Some(envid) = env.envid {
                line.push_str(&format!(" ENVID={}", xtext(envid)));
            }
        }
        line.push_str("\r\n");
        line
    }

    fn rcpt_command(&self, rcpt: &Rcpt) -> Result<String, &'static str> {
        check_path(rcpt.addr)?;
        if rcpt.addr.is_empty() {
            return Err("empty address");
        }
        let mut line = format!("RCPT TO:<{}>", rcpt.addr);
        if self.ext.dsn {
            if let Some(notify) = rcpt.notify {
                if !notify.is_empty()
                    && notify.bytes().all(|b| b.is_ascii_alphabetic() || b == b',')
                {
                    line.push_str(&format!(" NOTIFY={}", notify.to_ascii_uppercase()));
                }
            }
            if let Some(orcpt) = rcpt.orcpt {
                let (kind, addr) = orcpt.split_once(';').unwrap_or(("rfc822", orcpt));
                if !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                {
                    line.push_str(&format!(" ORCPT={kind};{}", xtext(addr)));
                }
            }
        }
        line.push_str("\r\n");
        Ok(line)
    }

    /// RSET after a transaction that did not complete.
    fn reset(&mut self) -> Result<(), Error> {
        match self.command(b"RSET\r\n", self.command_timeout) {
            Ok(_) => Ok(()),
            Err(Error::Refused(reply)) if reply.code != 421 => {
                // Odd, but the transaction's results stand; don't reuse it.
                self.broken = true;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// The message, dot-stuffed, with CRLF line ends, then the final dot.
    fn write_body(&mut self, body: &[u8]) -> Result<(), Error> {
        let mut out = Vec::with_capacity(WRITE_CHUNK + 8);
        let mut line_start = true;
        let mut i = 0;
        while i < body.len() {
            let byte = body[i];
            match byte {
                b'\r' => {
                    out.extend_from_slice(b"\r\n");
                    if body.get(i + 1) == Some(&b'\n') {
                        i += 1;
                    }
                    line_start = true;
                }
                b'\n' => {
                    out.extend_from_slice(b"\r\n");
                    line_start = true;
                }
                _ => {
                    if line_start && byte == b'.' {
                        out.push(b'.');
                    }
                    out.push(byte);
                    line_start = false;
                }
            }
            i += 1;
            if out.len() >= WRITE_CHUNK {
                self.write_all(&out)?;
                out.clear();
            }
        }
        if !line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
        self.write_all(&out)
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

    /// Say QUIT and close, ignoring errors.
    pub fn quit(mut self) {
        if !self.broken {
            self.command_quietly(b"QUIT\r\n");
        }
        if let Stream::Tls(tls) = &mut self.stream {
            tls.conn.send_close_notify();
            let _ = tls.conn.complete_io(&mut tls.sock);
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
    fn command(&mut self, line: &[u8], timeout: Duration) -> Result<Vec<String>, Error> {
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
    fn command_quietly(&mut self, line: &[u8]) {
        if self.write_all(line).is_ok() {
            let _ = self.read_reply(QUIT_TIMEOUT.min(self.command_timeout));
        }
        self.broken = true;
    }

    fn write_all(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let result = set_timeouts(self.stream.tcp(), self.command_timeout)
            .and_then(|()| self.stream.write_all(bytes))
            .and_then(|()| self.stream.flush());
        result.map_err(|e| {
            self.broken = true;
            Error::Broken(format!("write: {}", io_text(&e)))
        })
    }

    fn read_reply(&mut self, timeout: Duration) -> Result<Reply, Error> {
        self.read_reply_lines(timeout).map(|(reply, _)| reply)
    }

    /// Read one whole reply within `timeout`.
    fn read_reply_lines(&mut self, timeout: Duration) -> Result<(Reply, Vec<String>), Error> {
        let deadline = Instant::now() + timeout;
        let mut code = 0u16;
        let mut lines: Vec<String> = Vec::new();
        loop {
            if lines.len() >= MAX_REPLY_LINES {
                self.broken = true;
                return Err(Error::Broken(format!(
                    "reply longer than {MAX_REPLY_LINES} lines"
                )));
            }
            let line = self.read_line(deadline, timeout)?;
            let (line_code, last, text) = match parse_reply_line(&line) {
                Some(parsed) => parsed,
                None => {
                    self.broken = true;
                    return Err(Error::Broken(format!(
                        "malformed reply line {:?}",
                        String::from_utf8_lossy(&line[..line.len().min(80)])
                    )));
                }
            };
            if lines.is_empty() {
                code = line_code;
            }
            lines.push(text);
            if last {
                break;
            }
        }
        if code == 421 {
            self.broken = true;
        }
        let reply = make_reply(code, &lines);
        Ok((reply, lines))
    }

    /// One line, without its CRLF (or bare LF).
    fn read_line(&mut self, deadline: Instant, timeout: Duration) -> Result<Vec<u8>, Error> {
        loop {
            let pending = &self.inbuf[self.inpos..];
            if let Some(at) = pending.iter().position(|&b| b == b'\n') {
                if at + 1 > MAX_LINE {
                    self.broken = true;
                    return Err(Error::Broken(format!(
                        "reply line longer than {MAX_LINE} bytes"
                    )));
                }
                let mut line = pending[..at].to_vec();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.inpos += at + 1;
                return Ok(line);
            }
            if pending.len() >= MAX_LINE {
                self.broken = true;
                return Err(Error::Broken(format!(
                    "reply line longer than {MAX_LINE} bytes"
                )));
            }
            // Make room: keep the partial line at the front.
            if self.inpos > 0 {
                self.inbuf.drain(..self.inpos);
                self.inpos = 0;
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                self.broken = true;
                return Err(Error::Broken(format!(
                    "no complete reply within {} s",
                    timeout.as_secs_f32()
                )));
            }
            let mut chunk = [0u8; MAX_LINE];
            let want = MAX_LINE - self.inbuf.len();
            let result = set_timeouts(self.stream.tcp(), remaining)
                .and_then(|()| self.stream.read(&mut chunk[..want]));
            match result {
                Ok(0) => {
                    self.broken = true;
                    return Err(Error::Broken("connection closed by the server".into()));
                }
                Ok(got) => self.inbuf.extend_from_slice(&chunk[..got]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => {
                    self.broken = true;
                    return Err(Error::Broken(format!(
                        "no complete reply within {} s",
                        timeout.as_secs_f32()
                    )));
                }
                Err(e) => {
                    self.broken = true;
                    return Err(Error::Broken(format!("read: {}", io_text(&e))));
                }
            }
        }
    }

    /// The failure for `step`, with the server's name and reply.
    fn fail(&mut self, step: &str, e: Error) -> Failed {
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

/// Which command a pipelined reply answers.
#[derive(Clone, Copy)]
enum Command {
    Mail,
    Rcpt(usize),
    Data,
}

/// A connect-time failure; a failed TLS handshake is told apart so that
/// opportunistic TLS can retry in plaintext.
enum Failed {
    Temporary(String),
    Permanent(String),
    TlsHandshake(String),
}

impl Failed {
    fn into_failure(self) -> Failure {
        match self {
            Failed::Temporary(text) | Failed::TlsHandshake(text) => Failure::Temporary(text),
            Failed::Permanent(text) => Failure::Permanent(text),
        }
    }
}

/// `"250-text"`, `"250 text"` or `"250"` → (code, is last line, text).
fn parse_reply_line(line: &[u8]) -> Option<(u16, bool, String)> {
    let digits = line.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) || !(b'2'..=b'5').contains(&digits[0]) {
        return None;
    }
    let code = digits
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    let (last, text) = match line.get(3) {
        None => (true, &line[3..3]),
        Some(b' ') => (true, &line[4..]),
        Some(b'-') => (false, &line[4..]),
        Some(_) => return None,
    };
    let text = String::from_utf8_lossy(text)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    Some((code, last, text))
}

/// Build a [`Reply`]: the enhanced code taken off the first line (and off
/// the others when they repeat it), lines joined with a space.
fn make_reply(code: u16, lines: &[String]) -> Reply {
    let enhanced = lines
        .first()
        .and_then(|first| first.split(' ').next())
        .filter(|word| is_enhanced(word, code))
        .map(str::to_string);
    let text = lines
        .iter()
        .map(|line| match &enhanced {
            Some(e) => line
                .strip_prefix(e.as_str())
                .map(|rest| rest.trim_start())
                .unwrap_or(line),
            None => line.as_str(),
        })
        .collect::<Vec<_>>()
        .join(" ");
    Reply {
        code,
        enhanced,
        text,
    }
}

/// RFC 3463 `class.subject.detail`, its class agreeing with the reply code.
fn is_enhanced(word: &str, code: u16) -> bool {
    let parts: Vec<&str> = word.split('.').collect();
    parts.len() == 3
        && parts[0].len() == 1
        && parts[0].as_bytes()[0] == b'0' + (code / 100) as u8
        && parts[1..]
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
}

/// An envelope address must not break the command line it goes into.
fn check_path(addr: &str) -> Result<(), &'static str> {
    if addr.len() > 1000 {
        return Err("too long");
    }
    if addr
        .bytes()
        .any(|b| b.is_ascii_control() || b == b' ' || b == b'<' || b == b'>')
    {
        return Err("contains a space, angle bracket or control character");
    }
    Ok(())
}

/// Our HELO name likewise.
fn check_text(text: &str) -> Result<(), &'static str> {
    if text.is_empty() {
        return Err("empty");
    }
    if text.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err("contains a space or control character");
    }
    Ok(())
}

/// RFC 3461 §4 xtext: `+` followed by two upper-case hex digits for `+`,
/// `=`, and bytes outside `!`..`~`.
fn xtext(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if (b'!'..=b'~').contains(&byte) && byte != b'+' && byte != b'=' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("+{byte:02X}"));
        }
    }
    out
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn set_timeouts(tcp: &TcpStream, timeout: Duration) -> io::Result<()> {
    // A zero timeout means "none" to the OS: never pass one.
    let timeout = timeout.max(Duration::from_millis(1));
    tcp.set_read_timeout(Some(timeout))?;
    tcp.set_write_timeout(Some(timeout))
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn io_text(e: &io::Error) -> String {
    if is_timeout(e) {
        "timed out".to_string()
    } else {
        e.to_string()
    }
}

/// The system's trusted roots, read once per process.
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for error in &found.errors {
            log::warn!("loading system CA certificates: {error}");
        }
        found.certs
    })
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls configuration for `mode` (Opportunistic or Required).
fn tls_config(
    mode: TlsMode,
    extra_ca: Option<&std::path::Path>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let config = if mode == TlsMode::Required {
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(system_roots().iter().cloned());
        if let Some(path) = extra_ca {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("{}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider())))
            .with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// Opportunistic TLS: any certificate is accepted, but the handshake's
/// signatures are still checked, so the session is encrypted to whoever
/// holds the presented certificate's key.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_lines() {
        assert_eq!(
            parse_reply_line(b"250-PIPELINING"),
            Some((250, false, "PIPELINING".into()))
        );
        assert_eq!(parse_reply_line(b"250 ok"), Some((250, true, "ok".into())));
        assert_eq!(parse_reply_line(b"354"), Some((354, true, String::new())));
        assert_eq!(parse_reply_line(b"25"), None);
        assert_eq!(parse_reply_line(b"abc def"), None);
        assert_eq!(parse_reply_line(b"250xok"), None);
        assert_eq!(parse_reply_line(b"650 no"), None);
    }

    #[test]
    fn replies_and_enhanced_codes() {
        let reply = make_reply(550, &["5.1.1 no such".into(), "5.1.1 user here".into()]);
        assert_eq!(reply.enhanced.as_deref(), Some("5.1.1"));
        assert_eq!(reply.text, "no such user here");
        assert_eq!(reply.to_string(), "550 5.1.1 no such user here");
        // The class must agree with the code.
        let reply = make_reply(250, &["5.1.1 odd".into()]);
        assert_eq!(reply.enhanced, None);
        assert_eq!(reply.to_string(), "250 5.1.1 odd");
    }

    #[test]
    fn extensions() {
        let lines: Vec<String> = [
            "mx.example Hello",
            "PIPELINING",
            "SIZE 1000",
            "AUTH=LOGIN",
            "dsn",
            "STARTTLS",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let ext = Extensions::parse(&lines);
        assert!(ext.pipelining && ext.size && ext.auth_login && ext.dsn && ext.starttls);
        assert!(!ext.auth_plain && !ext.smtputf8);
    }

    #[test]
    fn encodings() {
        assert_eq!(xtext("a+b=c d"), "a+2Bb+3Dc+20d");
        assert_eq!(base64(b"\0user\0pass"), "AHVzZXIAcGFzcw==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
        assert_eq!(base64(b""), "");
    }

    #[test]
    fn paths() {
        assert!(check_path("a@b").is_ok());
        assert!(check_path("").is_ok());
        assert!(check_path("a@b> X").is_err());
        assert!(check_path("a@b\r\nRCPT").is_err());
    }
}
