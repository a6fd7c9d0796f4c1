//! The scripted remote SMTP server of the outbound section: the MTA under
//! test is configured to route the outbound domain here, and this server
//! behaves, per recipient, as the scenario named in the recipient's local
//! part says (`tempfail-TOKEN@D`: `451` to the first RCPT; `reject-...`:
//! `550`; `drop-...`: the connection dropped in the middle of the message
//! data the first time; `tempdata-...`: `451` after the final dot the first
//! time; anything else known: accepted). It records everything the MTA
//! does: each connection's commands and whether it used TLS, every RCPT
//! with its reply and parameters, every DATA attempt and every message
//! accepted, so the cases can be graded afterwards.
//!
//! What it advertises is a [`Mode`], switched between the section's
//! phases; a connection keeps the mode it was greeted with, and one idle
//! between transactions is closed when the mode changes (as a server's
//! idle timeout would), so later mail comes on fresh connections.
//!
//! One thread accepts, one thread serves each connection (std::net); every
//! read has a deadline; [`Remote::stop`] (or dropping it) ends them all.

use super::wire::{Wire, MAX_LINE};
use crate::conn::ReadError;
use std::collections::HashSet;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A silent connection is closed after this long.
const IDLE: Duration = Duration::from_secs(300);
/// How often a waiting read looks at the stop flag and the mode.
const POLL: Duration = Duration::from_millis(100);
/// `drop-` scenario: bytes of message data read before hanging up.
pub const DROP_AFTER: usize = 16 * 1024;
/// Largest message accepted.
const MAX_DATA: usize = 64 << 20;
/// Lines kept per connection for failure reports.
const MAX_LOGGED: usize = 400;

/// What the server advertises in its EHLO reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    /// STARTTLS (RFC 3207).
    pub starttls: bool,
    /// DSN (RFC 3461).
    pub dsn: bool,
    /// PIPELINING, 8BITMIME, ENHANCEDSTATUSCODES, SIZE.
    pub extensions: bool,
}

impl Mode {
    /// Everything: STARTTLS, DSN, PIPELINING, 8BITMIME,
    /// ENHANCEDSTATUSCODES, SIZE.
    pub const FULL: Mode = Mode {
        starttls: true,
        dsn: true,
        extensions: true,
    };
    /// A bare RFC 5321 server: no extension at all.
    pub const MINIMAL: Mode = Mode {
        starttls: false,
        dsn: false,
        extensions: false,
    };
}

/// An ESMTP parameter of MAIL or RCPT, keyword upper-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Keyword (`NOTIFY`, `ORCPT`...), upper-cased.
    pub name: String,
    /// Value as sent, if any.
    pub value: Option<String>,
}

/// The value of parameter `name` in `params`.
pub fn param<'a>(params: &'a [Param], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(name))
        .map(|p| p.value.as_deref().unwrap_or(""))
}

/// One RCPT command and what the server answered.
#[derive(Debug, Clone)]
pub struct RcptAttempt {
    /// The address, as sent.
    pub addr: String,
    /// Connection number (1-based).
    pub conn: usize,
    /// When it came.
    pub at: Instant,
    /// The reply code given.
    pub code: u16,
    /// What the connection was offered.
    pub mode: Mode,
    /// The transaction's reverse-path (`""` for `<>`).
    pub reverse_path: String,
    /// RCPT parameters.
    pub params: Vec<Param>,
}

/// One MAIL command and what the server answered.
#[derive(Debug, Clone)]
pub struct MailAttempt {
    /// Connection number (1-based).
    pub conn: usize,
    /// What the connection was offered.
    pub mode: Mode,
    /// The reverse-path (`""` for `<>`).
    pub reverse_path: String,
    /// MAIL parameters.
    pub params: Vec<Param>,
    /// The reply code given.
    pub code: u16,
}

/// How one DATA attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataEnd {
    /// The server hung up in the middle (scenario `drop`).
    Dropped,
    /// `451` after the final dot (scenario `tempdata`).
    Deferred,
    /// `250` after the final dot: a delivery.
    Accepted,
    /// The client stopped sending (or something else failed).
    Broken,
}

/// One DATA attempt.
#[derive(Debug, Clone)]
pub struct DataAttempt {
    /// Connection number.
    pub conn: usize,
    /// When it ended.
    pub at: Instant,
    /// Accepted recipients of the transaction.
    pub rcpts: Vec<String>,
    /// How it ended.
    pub end: DataEnd,
}

/// A message the server accepted (`250` after the final dot).
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Connection number.
    pub conn: usize,
    /// When the final dot was answered.
    pub at: Instant,
    /// Whether the connection was in TLS.
    pub tls: bool,
    /// What the connection was offered.
    pub mode: Mode,
    /// Reverse-path (`""` for `<>`).
    pub reverse_path: String,
    /// MAIL parameters.
    pub mail_params: Vec<Param>,
    /// Accepted recipients with their parameters.
    pub rcpts: Vec<(String, Vec<Param>)>,
    /// The message as received, dot-unstuffed, CRLF line ends kept.
    pub data: Vec<u8>,
}

/// One connection's record.
#[derive(Debug, Clone)]
pub struct ConnLog {
    /// Connection number (1-based).
    pub id: usize,
    /// What it was offered.
    pub mode: Mode,
    /// Whether TLS was started.
    pub tls: bool,
    /// A failed TLS handshake.
    pub tls_error: Option<String>,
    /// EHLO (or HELO) was sent again after TLS started.
    pub ehlo_after_tls: bool,
    /// MAIL came after TLS started but before a new EHLO.
    pub mail_before_ehlo_after_tls: bool,
    /// The dialogue, `C: `/`S: ` lines (capped).
    pub lines: Vec<String>,
}

/// Everything the server saw.
#[derive(Debug, Clone, Default)]
pub struct Log {
    /// Connections, in order.
    pub conns: Vec<ConnLog>,
    /// Every MAIL, in order.
    pub mails: Vec<MailAttempt>,
    /// Every RCPT, in order.
    pub rcpts: Vec<RcptAttempt>,
    /// Every DATA attempt that reached `354`.
    pub data: Vec<DataAttempt>,
    /// Every accepted message, in order.
    pub deliveries: Vec<Delivery>,
    /// One-time faults already played (`scenario:addr`).
    fired: HashSet<String>,
}

impl Log {
    /// RCPTs for `addr` (any case).
    pub fn rcpts_for(&self, addr: &str) -> Vec<&RcptAttempt> {
        self.rcpts
            .iter()
            .filter(|r| r.addr.eq_ignore_ascii_case(addr))
            .collect()
    }

    /// Accepted messages that went to `addr`.
    pub fn deliveries_to(&self, addr: &str) -> Vec<&Delivery> {
        self.deliveries
            .iter()
            .filter(|d| d.rcpts.iter().any(|(a, _)| a.eq_ignore_ascii_case(addr)))
            .collect()
    }

    /// DATA attempts whose transaction included `addr`.
    pub fn data_for(&self, addr: &str) -> Vec<&DataAttempt> {
        self.data
            .iter()
            .filter(|d| d.rcpts.iter().any(|a| a.eq_ignore_ascii_case(addr)))
            .collect()
    }

    /// Connection `id`'s record.
    pub fn conn(&self, id: usize) -> Option<&ConnLog> {
        self.conns.get(id.wrapping_sub(1))
    }
}

struct Shared {
    domain: String,
    tls: Arc<rustls::ServerConfig>,
    mode: Mutex<Mode>,
    epoch: AtomicU64,
    stop: AtomicBool,
    log: Mutex<Log>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The running server.
pub struct Remote {
    /// Where it listens.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Remote {
    /// Listens on `listen` as the mail server of `domain`, advertising
    /// `mode`.
    ///
    /// # Errors
    /// The address cannot be bound, or no certificate can be made.
    pub fn start(listen: &str, domain: &str, mode: Mode) -> Result<Remote, String> {
        let tls = super::wire::server_config(&[format!("mx.{domain}"), domain.to_string()])?;
        let listener = TcpListener::bind(listen).map_err(|e| format!("{listen}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("{listen}: {e}"))?;
        let shared = Arc::new(Shared {
            domain: domain.to_ascii_lowercase(),
            tls,
            mode: Mutex::new(mode),
            epoch: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            log: Mutex::new(Log::default()),
            threads: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        let accept = std::thread::spawn(move || accept_loop(&listener, &s));
        Ok(Remote {
            addr,
            shared,
            accept: Some(accept),
        })
    }

    /// Advertise `mode` on new connections from now on; connections idle
    /// between transactions are closed.
    pub fn set_mode(&self, mode: Mode) {
        *lock(&self.shared.mode) = mode;
        self.shared.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// A copy of everything recorded so far.
    pub fn log(&self) -> Log {
        lock(&self.shared.log).clone()
    }

    /// Stops accepting, closes every connection and waits for the threads.
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        let threads: Vec<JoinHandle<()>> = lock(&self.shared.threads).drain(..).collect();
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((tcp, _)) => {
                let s = shared.clone();
                let t = std::thread::spawn(move || serve(tcp, &s));
                lock(&shared.threads).push(t);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// What the server does for a recipient, by the local part's scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    /// `451` the first time, then accepted.
    TempfailRcpt,
    /// Accepted; `451` after the final dot the first time.
    TempfailData,
    /// Accepted; the connection dropped mid-DATA the first time.
    DropMidData,
    /// `550` always.
    Refuse,
    /// Accepted.
    Accept,
}

/// The scenario named by an address at `domain`: the local part up to its
/// first `-`, lower-cased.
pub fn scenario_of(addr: &str, domain: &str) -> Option<String> {
    let (local, d) = addr.rsplit_once('@')?;
    if !d.eq_ignore_ascii_case(domain) {
        return None;
    }
    let (scenario, _) = local.split_once('-')?;
    Some(scenario.to_ascii_lowercase())
}

fn behaviour(scenario: &str) -> Option<Behaviour> {
    Some(match scenario {
        "tempfail" => Behaviour::TempfailRcpt,
        "tempdata" => Behaviour::TempfailData,
        "drop" => Behaviour::DropMidData,
        "reject" | "nullsender" => Behaviour::Refuse,
        "accept" | "tls" | "dsn" | "dsnoff" | "dots" => Behaviour::Accept,
        _ => return None,
    })
}

struct Tx {
    reverse_path: String,
    params: Vec<Param>,
    rcpts: Vec<(String, Vec<Param>)>,
}

struct Session<'a> {
    shared: &'a Shared,
    id: usize,
    wire: Wire,
    mode: Mode,
    epoch: u64,
    greeted: bool,
    tx: Option<Tx>,
    last_input: Instant,
}

enum Next {
    Line(Vec<u8>),
    End,
}

fn serve(tcp: TcpStream, shared: &Shared) {
    let Ok(wire) = Wire::new(tcp) else {
        return;
    };
    let mode = *lock(&shared.mode);
    let epoch = shared.epoch.load(Ordering::SeqCst);
    let id = {
        let mut log = lock(&shared.log);
        let id = log.conns.len() + 1;
        log.conns.push(ConnLog {
            id,
            mode,
            tls: false,
            tls_error: None,
            ehlo_after_tls: false,
            mail_before_ehlo_after_tls: false,
            lines: Vec::new(),
        });
        id
    };
    let mut s = Session {
        shared,
        id,
        wire,
        mode,
        epoch,
        greeted: false,
        tx: None,
        last_input: Instant::now(),
    };
    s.run();
    s.wire.close();
}

impl Session<'_> {
    fn note(&self, f: impl FnOnce(&mut ConnLog)) {
        let mut log = lock(&self.shared.log);
        if let Some(c) = log.conns.get_mut(self.id - 1) {
            f(c);
        }
    }

    fn record(&self, line: String) {
        self.note(|c| {
            if c.lines.len() < MAX_LOGGED {
                c.lines.push(line);
            }
        });
    }

    fn reply(&mut self, text: &str) -> bool {
        for line in text.split("\r\n") {
            self.record(format!("S: {line}"));
        }
        self.wire.send(format!("{text}\r\n").as_bytes()).is_ok()
    }

    /// The next line from the client, or `End` when it closed, the
    /// server stops, the connection idled too long, or (between
    /// transactions) the mode changed.
    fn next(&mut self, raw: bool) -> Next {
        loop {
            if self.shared.stop.load(Ordering::SeqCst) {
                return Next::End;
            }
            let deadline = Instant::now() + POLL;
            let got = if raw {
                self.wire.read_raw_line(deadline)
            } else {
                self.wire.read_line(deadline)
            };
            match got {
                Ok(l) => {
                    self.last_input = Instant::now();
                    return Next::Line(l);
                }
                Err(ReadError::Timeout(_)) => {
                    if self.last_input.elapsed() > IDLE {
                        let _ = self.reply("421 4.4.2 idle too long, closing");
                        return Next::End;
                    }
                    if !raw
                        && self.tx.is_none()
                        && self.shared.epoch.load(Ordering::SeqCst) != self.epoch
                    {
                        self.record(
                            "(closed by the server: the section moved to its next phase)".into(),
                        );
                        return Next::End;
                    }
                }
                Err(ReadError::TooLong) => {
                    let _ = self.reply("500 5.5.6 line too long");
                    return Next::End;
                }
                Err(_) => return Next::End,
            }
        }
    }

    fn run(&mut self) {
        if !self.reply(&format!(
            "220 mx.{} ESMTP protocol-tests scripted server",
            self.shared.domain
        )) {
            return;
        }
        loop {
            let Next::Line(line) = self.next(false) else {
                return;
            };
            let text = String::from_utf8_lossy(&line).into_owned();
            self.record(format!("C: {text}"));
            let upper = text.to_ascii_uppercase();
            let verb = upper.split(' ').next().unwrap_or("");
            let go_on = match verb {
                "EHLO" => self.ehlo(),
                "HELO" => {
                    self.hello();
                    self.reply(&format!("250 mx.{}", self.shared.domain))
                }
                "STARTTLS" => self.starttls(),
                "MAIL" => self.mail(&text),
                "RCPT" => self.rcpt(&text),
                "DATA" => self.data(),
                "RSET" => {
                    self.tx = None;
                    self.reply("250 2.0.0 Ok")
                }
                "NOOP" => self.reply("250 2.0.0 Ok"),
                "VRFY" => self.reply("252 2.5.0 Cannot VRFY, send some mail"),
                "QUIT" => {
                    let _ = self.reply("221 2.0.0 Bye");
                    return;
                }
                _ => self.reply("500 5.5.2 Command not recognized"),
            };
            if !go_on {
                return;
            }
        }
    }

    fn hello(&mut self) {
        self.greeted = true;
        self.tx = None;
        if self.wire.is_tls() {
            self.note(|c| c.ehlo_after_tls = true);
        }
    }

    fn ehlo(&mut self) -> bool {
        self.hello();
        let mut lines = vec![format!("mx.{} protocol-tests", self.shared.domain)];
        if self.mode.extensions {
            lines.extend(
                [
                    "PIPELINING",
                    "8BITMIME",
                    "ENHANCEDSTATUSCODES",
                    "SIZE 67108864",
                ]
                .map(String::from),
            );
        }
        if self.mode.dsn {
            lines.push("DSN".into());
        }
        if self.mode.starttls && !self.wire.is_tls() {
            lines.push("STARTTLS".into());
        }
        let n = lines.len();
        let text: Vec<String> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| format!("250{}{l}", if i + 1 == n { ' ' } else { '-' }))
            .collect();
        self.reply(&text.join("\r\n"))
    }

    fn starttls(&mut self) -> bool {
        if !self.mode.starttls || self.wire.is_tls() {
            return self.reply("502 5.5.1 STARTTLS not offered");
        }
        if !self.reply("220 2.0.0 Ready to start TLS") {
            return false;
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        match self
            .wire
            .start_tls_server(self.shared.tls.clone(), deadline)
        {
            Ok(()) => {
                self.greeted = false;
                self.tx = None;
                self.note(|c| c.tls = true);
                self.record("(TLS started)".into());
                true
            }
            Err(e) => {
                let why = e.to_string();
                self.note(|c| c.tls_error = Some(why));
                false
            }
        }
    }

    /// Parameters the server did not advertise (refused with 555).
    fn unsupported(&self, params: &[Param], rcpt: bool) -> Option<String> {
        params
            .iter()
            .find(|p| {
                let ok = match p.name.as_str() {
                    "SIZE" | "BODY" => !rcpt && self.mode.extensions,
                    "RET" | "ENVID" => !rcpt && self.mode.dsn,
                    "NOTIFY" | "ORCPT" => rcpt && self.mode.dsn,
                    _ => false,
                };
                !ok
            })
            .map(|p| p.name.clone())
    }

    fn mail(&mut self, text: &str) -> bool {
        if !self.greeted {
            if self.wire.is_tls() {
                self.note(|c| c.mail_before_ehlo_after_tls = true);
            }
            return self.reply("503 5.5.1 EHLO first");
        }
        if self.tx.is_some() {
            return self.reply("503 5.5.1 Nested MAIL command");
        }
        let Some((path, params)) = parse_path(text, "MAIL FROM:") else {
            return self.reply("501 5.5.4 Syntax: MAIL FROM:<address>");
        };
        let refused = self.unsupported(&params, false);
        lock(&self.shared.log).mails.push(MailAttempt {
            conn: self.id,
            mode: self.mode,
            reverse_path: path.clone(),
            params: params.clone(),
            code: if refused.is_some() { 555 } else { 250 },
        });
        if let Some(p) = refused {
            return self.reply(&format!("555 5.5.4 {p} parameter not supported here"));
        }
        self.tx = Some(Tx {
            reverse_path: path,
            params,
            rcpts: Vec::new(),
        });
        self.reply("250 2.1.0 Ok")
    }

    fn rcpt(&mut self, text: &str) -> bool {
        let Some(tx) = &self.tx else {
            return self.reply("503 5.5.1 Need MAIL first");
        };
        let Some((addr, params)) = parse_path(text, "RCPT TO:") else {
            return self.reply("501 5.5.4 Syntax: RCPT TO:<address>");
        };
        let reverse_path = tx.reverse_path.clone();
        let key = format!("tempfail:{}", addr.to_ascii_lowercase());
        let (code, reply) = if let Some(p) = self.unsupported(&params, true) {
            (555, format!("555 5.5.4 {p} parameter not supported here"))
        } else {
            match scenario_of(&addr, &self.shared.domain) {
                None if !addr
                    .rsplit_once('@')
                    .is_some_and(|(_, d)| d.eq_ignore_ascii_case(&self.shared.domain)) =>
                {
                    (550, format!("550 5.7.1 <{addr}>: relay access denied"))
                }
                s => match s.as_deref().and_then(behaviour) {
                    None => (550, format!("550 5.1.1 <{addr}>: no such scenario here")),
                    Some(Behaviour::Refuse) => (
                        550,
                        format!("550 5.1.1 <{addr}>: recipient refused (protocol-tests scenario)"),
                    ),
                    Some(Behaviour::TempfailRcpt)
                        if lock(&self.shared.log).fired.insert(key.clone()) =>
                    {
                        (
                            451,
                            format!(
                                "451 4.3.0 <{addr}>: try again later (protocol-tests scenario)"
                            ),
                        )
                    }
                    Some(_) => (250, format!("250 2.1.5 <{addr}> Ok")),
                },
            }
        };
        lock(&self.shared.log).rcpts.push(RcptAttempt {
            addr: addr.clone(),
            conn: self.id,
            at: Instant::now(),
            code,
            mode: self.mode,
            reverse_path,
            params: params.clone(),
        });
        if code == 250 {
            if let Some(tx) = &mut self.tx {
                tx.rcpts.push((addr, params));
            }
        }
        self.reply(&reply)
    }

    fn once(&self, scenario: &str, rcpts: &[(String, Vec<Param>)], b: Behaviour) -> bool {
        let mut log = lock(&self.shared.log);
        for (a, _) in rcpts {
            if scenario_of(a, &self.shared.domain)
                .as_deref()
                .and_then(behaviour)
                == Some(b)
                && log
                    .fired
                    .insert(format!("{scenario}:{}", a.to_ascii_lowercase()))
            {
                return true;
            }
        }
        false
    }

    fn data(&mut self) -> bool {
        let Some(tx) = self.tx.take() else {
            return self.reply("503 5.5.1 Need MAIL first");
        };
        if tx.rcpts.is_empty() {
            return self.reply("554 5.5.1 No valid recipients");
        }
        let drop = self.once("drop", &tx.rcpts, Behaviour::DropMidData);
        if !self.reply("354 End data with <CR><LF>.<CR><LF>") {
            return false;
        }
        let mut data = Vec::new();
        let mut size = 0usize;
        let end = loop {
            let Next::Line(line) = self.next(true) else {
                break DataEnd::Broken;
            };
            if line == b".\r\n" {
                break DataEnd::Accepted;
            }
            size += line.len();
            if drop && size >= DROP_AFTER {
                break DataEnd::Dropped;
            }
            if size <= MAX_DATA {
                let unstuffed = line.strip_prefix(b".").unwrap_or(&line);
                data.extend_from_slice(unstuffed);
            }
        };
        let rcpts: Vec<String> = tx.rcpts.iter().map(|(a, _)| a.clone()).collect();
        let mut end = end;
        let mut reply = None;
        if end == DataEnd::Accepted {
            if size > MAX_DATA {
                end = DataEnd::Broken;
                reply = Some("552 5.3.4 Message too big".to_string());
            } else if self.once("tempdata", &tx.rcpts, Behaviour::TempfailData) {
                end = DataEnd::Deferred;
                reply = Some("451 4.3.0 Try again later (protocol-tests scenario)".to_string());
            }
        }
        {
            let mut log = lock(&self.shared.log);
            log.data.push(DataAttempt {
                conn: self.id,
                at: Instant::now(),
                rcpts,
                end,
            });
            if end == DataEnd::Accepted {
                log.deliveries.push(Delivery {
                    conn: self.id,
                    at: Instant::now(),
                    tls: self.wire.is_tls(),
                    mode: self.mode,
                    reverse_path: tx.reverse_path,
                    mail_params: tx.params,
                    rcpts: tx.rcpts,
                    data,
                });
            }
        }
        match end {
            DataEnd::Dropped => {
                self.record(format!(
                    "(connection dropped by the server after {size} bytes of data)"
                ));
                false
            }
            DataEnd::Broken if reply.is_none() => false,
            DataEnd::Accepted => {
                let n = lock(&self.shared.log).deliveries.len();
                self.reply(&format!("250 2.0.0 Ok: accepted as message {n}"))
            }
            _ => self.reply(reply.as_deref().unwrap_or("451 4.3.0 Try again later")),
        }
    }
}

/// `MAIL FROM:<path> params` / `RCPT TO:<path> params`: the path without
/// its brackets and the parameters.
pub fn parse_path(text: &str, prefix: &str) -> Option<(String, Vec<Param>)> {
    let head = text.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = text[prefix.len()..].trim_start();
    let rest = rest.strip_prefix('<')?;
    let close = rest.find('>')?;
    let path = rest[..close].to_string();
    if path.len() > MAX_LINE {
        return None;
    }
    let params = rest[close + 1..]
        .split_whitespace()
        .map(|p| match p.split_once('=') {
            Some((k, v)) => Param {
                name: k.to_ascii_uppercase(),
                value: Some(v.to_string()),
            },
            None => Param {
                name: p.to_ascii_uppercase(),
                value: None,
            },
        })
        .collect();
    Some((path, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_parameters() {
        let (p, params) = parse_path(
            "MAIL FROM:<a@b> RET=HDRS ENVID=x+2By SMTPUTF8",
            "MAIL FROM:",
        )
        .unwrap();
        assert_eq!(p, "a@b");
        assert_eq!(param(&params, "ret"), Some("HDRS"));
        assert_eq!(param(&params, "ENVID"), Some("x+2By"));
        assert_eq!(param(&params, "SMTPUTF8"), Some(""));
        assert_eq!(parse_path("rcpt to: <>", "RCPT TO:").unwrap().0, "");
        assert!(parse_path("RCPT TO:a@b", "RCPT TO:").is_none());
    }

    #[test]
    fn scenarios_by_local_part() {
        assert_eq!(
            scenario_of("Tempfail-pt1@D.test", "d.test").as_deref(),
            Some("tempfail")
        );
        assert_eq!(scenario_of("tempfail-pt1@other.test", "d.test"), None);
        assert_eq!(scenario_of("nobody@d.test", "d.test"), None);
        assert_eq!(behaviour("reject"), Some(Behaviour::Refuse));
        assert_eq!(behaviour("what"), None);
    }

    fn say(w: &mut Wire, line: &str) -> u16 {
        w.send(format!("{line}\r\n").as_bytes()).unwrap();
        w.read_reply(Instant::now() + Duration::from_secs(5))
            .unwrap()
            .code
    }

    #[test]
    fn plays_the_scenarios_and_records_what_came() {
        let mut r = Remote::start("127.0.0.1:0", "d.test", Mode::FULL).unwrap();
        let mut w = Wire::new(TcpStream::connect(r.addr).unwrap()).unwrap();
        let dl = Instant::now() + Duration::from_secs(5);
        assert_eq!(w.read_reply(dl).unwrap().code, 220);
        assert_eq!(say(&mut w, "MAIL FROM:<a@b>"), 503, "EHLO first");
        assert_eq!(say(&mut w, "EHLO c"), 250);
        for (rcpt, codes) in [
            ("tempfail-pt1@d.test", [451, 250]),
            ("reject-pt1@d.test", [550, 550]),
            ("nobody@d.test", [550, 550]),
            ("accept-pt1@x.test", [550, 550]),
        ] {
            for code in codes {
                assert_eq!(say(&mut w, "MAIL FROM:<a@b> RET=HDRS"), 250);
                assert_eq!(
                    say(&mut w, &format!("RCPT TO:<{rcpt}> NOTIFY=NEVER")),
                    code,
                    "{rcpt}"
                );
                assert_eq!(say(&mut w, "RSET"), 250);
            }
        }
        assert_eq!(say(&mut w, "MAIL FROM:<>"), 250);
        assert_eq!(say(&mut w, "RCPT TO:<tempdata-pt1@d.test>"), 250);
        assert_eq!(say(&mut w, "DATA"), 354);
        assert_eq!(say(&mut w, "..x\r\n."), 451, "451 after the dot, once");
        assert_eq!(say(&mut w, "MAIL FROM:<>"), 250);
        assert_eq!(say(&mut w, "RCPT TO:<tempdata-pt1@d.test>"), 250);
        assert_eq!(say(&mut w, "DATA"), 354);
        assert_eq!(say(&mut w, "..x\r\ny\r\n."), 250);
        assert_eq!(say(&mut w, "MAIL FROM:<a@b>"), 250);
        assert_eq!(say(&mut w, "RCPT TO:<drop-pt1@d.test>"), 250);
        assert_eq!(say(&mut w, "DATA"), 354);
        let chunk = "y".repeat(1000) + "\r\n";
        let _ = w.send(chunk.repeat(40).as_bytes());
        assert!(
            w.read_reply(Instant::now() + Duration::from_secs(5))
                .is_err(),
            "dropped"
        );
        // A connection greeted after the switch is offered nothing, and
        // DSN parameters are refused.
        r.set_mode(Mode::MINIMAL);
        let mut w = Wire::new(TcpStream::connect(r.addr).unwrap()).unwrap();
        assert_eq!(w.read_reply(dl).unwrap().code, 220);
        w.send(b"EHLO c\r\n").unwrap();
        assert_eq!(w.read_reply(dl).unwrap().lines.len(), 1);
        assert_eq!(say(&mut w, "MAIL FROM:<a@b> ENVID=x"), 555);
        assert_eq!(say(&mut w, "QUIT"), 221);
        r.stop();
        let log = r.log();
        assert_eq!(log.conns.len(), 2);
        assert!(log.conns[0].mode.dsn && !log.conns[1].mode.dsn);
        assert_eq!(log.rcpts_for("TEMPFAIL-pt1@d.test").len(), 2);
        let d = log.deliveries_to("tempdata-pt1@d.test");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].data, b".x\r\ny\r\n");
        assert_eq!(d[0].reverse_path, "");
        let ends: Vec<DataEnd> = log.data.iter().map(|a| a.end).collect();
        assert_eq!(
            ends,
            [DataEnd::Deferred, DataEnd::Accepted, DataEnd::Dropped]
        );
        assert_eq!(param(&log.mails[1].params, "RET"), Some("HDRS"));
        assert_eq!(log.mails.last().map(|m| m.code), Some(555));
    }
}
