//! A scripted remote SMTP server for tests of outbound delivery: it
//! listens on a loopback address and, on every connection, behaves like a
//! plain receiving MTA (greeting, EHLO with PIPELINING, MAIL, RCPT, DATA,
//! RSET, NOOP, QUIT) except where a [`Rule`] of its [`Script`] says
//! otherwise: another reply at some [`Stage`] (`451` to MAIL the first two
//! times, `550` to RCPT for one address), no greeting at all, the
//! connection closed, or dropped in the middle of the message data.
//!
//! Every message it accepts (a 2xx to the final dot) is recorded, envelope
//! and data, *before* the reply is sent, as a real MTA commits before it
//! says `250`: a client killed between the two sends the message again,
//! and the test sees the duplicate. Tests read what arrived with
//! [`Scripted::deliveries`] / [`Scripted::wait_for`] and what the client
//! said with [`Scripted::commands`].
//!
//! One thread accepts, one thread serves each connection (std::net, no
//! async); every read has a timeout ([`IDLE`]); dropping the server stops
//! it: the listener closes, open connections are shut down and every
//! thread is joined. [`Reserved`] holds a bound port that refuses
//! connections (nothing listening), for "remote down, then up".

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a connection may stay silent before the server hangs up.
pub const IDLE: Duration = Duration::from_secs(60);
/// Longest command line accepted.
const MAX_COMMAND: usize = 8192;
/// Largest message accepted.
const MAX_DATA: usize = 64 << 20;

/// Where in a session a [`Rule`] applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The greeting, when a connection is accepted.
    Connect,
    /// EHLO (and HELO).
    Ehlo,
    /// MAIL FROM.
    Mail,
    /// RCPT TO.
    Rcpt,
    /// The DATA command (the reply that would be `354`).
    Data,
    /// The final dot (the reply that would be `250`).
    EndOfData,
}

/// What the server does at a [`Stage`] where a rule applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Answer with this one-line reply (no CRLF) instead of the usual one.
    /// A non-2xx greeting makes every later command but QUIT get `503`.
    Reply(String),
    /// Answer with this reply, then close the connection (`421`).
    ReplyAndClose(String),
    /// Close the connection without a word.
    Close,
    /// Say nothing at all, and wait until the client gives up and hangs
    /// up (a greeting that never comes: the client's timeout).
    Silence,
    /// Only at [`Stage::Data`]: answer `354`, read this many bytes of the
    /// message (fewer if it ends first, never its final dot), and close
    /// the connection without a reply.
    DropMidData(usize),
}

/// One deviation from normal behaviour: at `stage`, for commands whose
/// argument contains `matching` (any, if `None`), the first `times` times
/// (always, if `None`), do `action`. The first rule that applies wins;
/// counts are over the server's whole life, across connections.
#[derive(Debug, Clone)]
pub struct Rule {
    stage: Stage,
    matching: Option<String>,
    times: Option<usize>,
    action: Action,
}

impl Rule {
    /// At `stage`, always, for any argument, do `action`.
    pub fn new(stage: Stage, action: Action) -> Rule {
        assert!(
            !matches!(action, Action::DropMidData(_)) || stage == Stage::Data,
            "DropMidData is for Stage::Data"
        );
        Rule {
            stage,
            matching: None,
            times: None,
            action,
        }
    }

    /// Shorthand: at `stage` reply `reply` (e.g. `"451 4.3.0 busy"`).
    pub fn reply(stage: Stage, reply: &str) -> Rule {
        Rule::new(stage, Action::Reply(reply.to_owned()))
    }

    /// Only the first `n` times the rule would apply.
    pub fn times(mut self, n: usize) -> Rule {
        self.times = Some(n);
        self
    }

    /// Only for commands whose argument contains `text` (ASCII case
    /// ignored), e.g. a recipient address for [`Stage::Rcpt`].
    pub fn matching(mut self, text: &str) -> Rule {
        self.matching = Some(text.to_ascii_lowercase());
        self
    }
}

/// How a server behaves: its name, its EHLO extensions and its rules.
#[derive(Debug, Clone)]
pub struct Script {
    name: String,
    extensions: Vec<String>,
    rules: Vec<Rule>,
}

impl Script {
    /// A well-behaved server calling itself `name` (in its greeting and
    /// EHLO reply), offering PIPELINING, 8BITMIME, SIZE and
    /// ENHANCEDSTATUSCODES (no STARTTLS).
    pub fn new(name: &str) -> Script {
        Script {
            name: name.to_owned(),
            extensions: [
                "PIPELINING",
                "8BITMIME",
                "SIZE 67108864",
                "ENHANCEDSTATUSCODES",
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
            rules: Vec::new(),
        }
    }

    /// Offer these EHLO extensions instead.
    pub fn extensions(mut self, ext: &[&str]) -> Script {
        self.extensions = ext.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Add a rule (after those already given: earlier rules win).
    pub fn rule(mut self, rule: Rule) -> Script {
        self.rules.push(rule);
        self
    }
}

/// A message the server accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Which connection (1 = the first accepted).
    pub conn: usize,
    /// MAIL FROM's address, without angle brackets.
    pub from: String,
    /// The accepted RCPT TO addresses, without angle brackets, in order.
    pub rcpts: Vec<String>,
    /// The message, dot-unstuffed, CRLF line ends, without the final dot.
    pub data: Vec<u8>,
}

impl Delivery {
    /// The value of the first header field `name` (case ignored) in the
    /// message's header, unfolded and trimmed.
    pub fn header(&self, name: &str) -> Option<String> {
        let text = String::from_utf8_lossy(&self.data);
        let head = text.split("\r\n\r\n").next().unwrap_or("");
        let mut found: Option<String> = None;
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(v) = found.as_mut() {
                    v.push(' ');
                    v.push_str(line.trim());
                }
                continue;
            }
            if found.is_some() {
                break;
            }
            if let Some((n, v)) = line.split_once(':') {
                if n.trim().eq_ignore_ascii_case(name) {
                    found = Some(v.trim().to_owned());
                }
            }
        }
        found
    }
}

struct Shared {
    script: Script,
    /// Per rule, how many more times it applies (`None`: always).
    left: Mutex<Vec<Option<usize>>>,
    deliveries: Mutex<Vec<Delivery>>,
    commands: Mutex<Vec<(usize, String)>>,
    conns: AtomicUsize,
    stop: AtomicBool,
    open: Mutex<Vec<TcpStream>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// The action of the first rule for `stage` and `arg` still in force
    /// (counting it), if any.
    fn action(&self, stage: Stage, arg: &str) -> Option<Action> {
        let arg = arg.to_ascii_lowercase();
        let mut left = lock(&self.left);
        for (rule, left) in self.script.rules.iter().zip(left.iter_mut()) {
            if rule.stage != stage {
                continue;
            }
            if let Some(m) = &rule.matching {
                if !arg.contains(m.as_str()) {
                    continue;
                }
            }
            match left {
                Some(0) => continue,
                Some(n) => *n -= 1,
                None => {}
            }
            return Some(rule.action.clone());
        }
        None
    }
}

/// A bound loopback port with nothing listening on it: connections to it
/// are refused, and nobody else can take it. [`Reserved::listen`] starts
/// a [`Scripted`] server there.
pub struct Reserved {
    socket: socket2::Socket,
    addr: SocketAddr,
}

impl Reserved {
    /// Bind `addr` (port 0: one the kernel picks) without listening.
    pub fn bind(addr: SocketAddr) -> io::Result<Reserved> {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            None,
        )?;
        socket.bind(&addr.into())?;
        let addr = socket
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("not an IP socket"))?;
        Ok(Reserved { socket, addr })
    }

    /// The address connections are refused on (until [`Reserved::listen`]).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Start listening here, serving `script`.
    pub fn listen(self, script: Script) -> Scripted {
        self.socket.listen(128).expect("listen on a reserved port");
        Scripted::serve(self.socket.into(), self.addr, script)
    }
}

/// A running scripted server; stops when dropped.
pub struct Scripted {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Scripted {
    /// Listen on `addr` (e.g. `127.0.0.1:0`) and serve `script`.
    pub fn start(addr: SocketAddr, script: Script) -> Scripted {
        Reserved::bind(addr)
            .unwrap_or_else(|e| panic!("bind {addr}: {e}"))
            .listen(script)
    }

    fn serve(listener: TcpListener, addr: SocketAddr, script: Script) -> Scripted {
        let left = script.rules.iter().map(|r| r.times).collect();
        let shared = Arc::new(Shared {
            script,
            left: Mutex::new(left),
            deliveries: Mutex::new(Vec::new()),
            commands: Mutex::new(Vec::new()),
            conns: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            open: Mutex::new(Vec::new()),
            threads: Mutex::new(Vec::new()),
        });
        let s = Arc::clone(&shared);
        let acceptor = std::thread::Builder::new()
            .name(format!("scripted-{addr}"))
            .spawn(move || accept_loop(&listener, &s))
            .expect("start the acceptor thread");
        Scripted {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.conns.load(Ordering::SeqCst)
    }

    /// Every message accepted so far, in order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        lock(&self.shared.deliveries).clone()
    }

    /// How many messages were accepted so far.
    pub fn delivered(&self) -> usize {
        lock(&self.shared.deliveries).len()
    }

    /// Every command line received so far (without CRLF), with the number
    /// of its connection; message data is not included.
    pub fn commands(&self) -> Vec<(usize, String)> {
        lock(&self.shared.commands).clone()
    }

    /// How many command lines so far start with `verb` (case ignored).
    pub fn count(&self, verb: &str) -> usize {
        lock(&self.shared.commands)
            .iter()
            .filter(|(_, l)| {
                l.get(..verb.len())
                    .is_some_and(|v| v.eq_ignore_ascii_case(verb))
            })
            .count()
    }

    /// Wait until at least `n` messages were accepted, at most `timeout`;
    /// returns them all. Panics, with what came, when time is up.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Delivery> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.deliveries();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{}: {} of {n} messages after {timeout:?}; commands: {:?}",
                self.addr,
                got.len(),
                self.commands()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor with a connection of our own.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
        for s in lock(&self.shared.open).drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        let threads: Vec<JoinHandle<()>> = lock(&self.shared.threads).drain(..).collect();
        for t in threads {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for conn in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(tcp) = conn else { continue };
        let n = shared.conns.fetch_add(1, Ordering::SeqCst) + 1;
        if let Ok(clone) = tcp.try_clone() {
            lock(&shared.open).push(clone);
        }
        let s = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name(format!("scripted-conn-{n}"))
            .spawn(move || {
                // Errors end the session; the client sees a closed connection.
                let _ = Session::new(tcp, n, &s).and_then(|mut sess| sess.run());
            });
        if let Ok(t) = spawned {
            let mut threads = lock(&shared.threads);
            threads.retain(|t| !t.is_finished());
            threads.push(t);
        }
    }
}

/// The state of one connection.
struct Session<'a> {
    r: BufReader<TcpStream>,
    w: TcpStream,
    n: usize,
    shared: &'a Shared,
    /// A non-2xx greeting was sent: nothing but QUIT is served.
    refused: bool,
    from: Option<String>,
    rcpts: Vec<String>,
}

/// How a session ends early.
enum End {
    Close,
}

impl<'a> Session<'a> {
    fn new(tcp: TcpStream, n: usize, shared: &'a Shared) -> io::Result<Session<'a>> {
        tcp.set_read_timeout(Some(IDLE))?;
        tcp.set_write_timeout(Some(IDLE))?;
        let _ = tcp.set_nodelay(true);
        Ok(Session {
            r: BufReader::new(tcp.try_clone()?),
            w: tcp,
            n,
            shared,
            refused: false,
            from: None,
            rcpts: Vec::new(),
        })
    }

    fn send(&mut self, reply: &str) -> io::Result<()> {
        self.w.write_all(format!("{reply}\r\n").as_bytes())?;
        self.w.flush()
    }

    /// Carry out a rule's action: `Ok(Ok(()))` when it replied and the
    /// session goes on, `Ok(Err(End::Close))` when the session ends.
    fn act(&mut self, action: Action) -> io::Result<Result<(), End>> {
        match action {
            Action::Reply(r) => {
                self.send(&r)?;
                Ok(Ok(()))
            }
            Action::ReplyAndClose(r) => {
                self.send(&r)?;
                Ok(Err(End::Close))
            }
            Action::Close => Ok(Err(End::Close)),
            Action::Silence => {
                // Read and ignore until the client hangs up (or IDLE).
                let mut buf = [0u8; 4096];
                while !self.shared.stop.load(Ordering::SeqCst) {
                    match self.r.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
                Ok(Err(End::Close))
            }
            Action::DropMidData(bytes) => {
                self.send("354 End data with <CR><LF>.<CR><LF>")?;
                let mut taken = 0usize;
                while taken < bytes.max(1) {
                    let buf = self.r.fill_buf()?;
                    if buf.is_empty() {
                        break;
                    }
                    // Never the final dot: stop short of "\r\n.\r\n".
                    let end = find(buf, b"\r\n.\r\n").unwrap_or(buf.len());
                    let take = end.min(bytes.max(1) - taken);
                    if take == 0 {
                        break;
                    }
                    self.r.consume(take);
                    taken += take;
                }
                Ok(Err(End::Close))
            }
        }
    }

    fn run(&mut self) -> io::Result<()> {
        let name = self.shared.script.name.clone();
        match self.shared.action(Stage::Connect, "") {
            None => self.send(&format!("220 {name} ESMTP scripted"))?,
            Some(Action::Reply(r)) => {
                self.refused = !r.starts_with('2');
                self.send(&r)?;
            }
            Some(other) => {
                if self.act(other)?.is_err() {
                    return self.close();
                }
            }
        }
        loop {
            let Some(line) = self.command()? else {
                return Ok(()); // the client hung up
            };
            lock(&self.shared.commands).push((self.n, line.clone()));
            let (verb, arg) = match line.split_once(' ') {
                Some((v, a)) => (v.to_ascii_uppercase(), a.to_owned()),
                None => (line.to_ascii_uppercase(), String::new()),
            };
            if verb == "QUIT" {
                self.send("221 2.0.0 Bye")?;
                return self.close();
            }
            if self.refused {
                self.send("503 5.5.1 No service")?;
                continue;
            }
            let stage = match verb.as_str() {
                "EHLO" | "HELO" => Some(Stage::Ehlo),
                "MAIL" => Some(Stage::Mail),
                "RCPT" => Some(Stage::Rcpt),
                "DATA" => Some(Stage::Data),
                _ => None,
            };
            if let Some(stage) = stage {
                if let Some(action) = self.shared.action(stage, &arg) {
                    // A reply in place of the usual one changes no state.
                    if self.act(action)?.is_err() {
                        return self.close();
                    }
                    continue;
                }
            }
            match verb.as_str() {
                "EHLO" => {
                    let mut lines = vec![format!("{name} Hello {arg}")];
                    lines.extend(self.shared.script.extensions.iter().cloned());
                    let last = lines.len() - 1;
                    let mut out = String::new();
                    for (i, l) in lines.iter().enumerate() {
                        let sep = if i == last { ' ' } else { '-' };
                        out.push_str(&format!("250{sep}{l}\r\n"));
                    }
                    self.w.write_all(out.as_bytes())?;
                    self.reset();
                }
                "HELO" => {
                    self.send(&format!("250 {name}"))?;
                    self.reset();
                }
                "MAIL" => match path(&arg, "FROM:") {
                    Some(_) if self.from.is_some() => self.send("503 5.5.1 Nested MAIL")?,
                    Some(from) => {
                        self.from = Some(from);
                        self.send("250 2.1.0 Sender OK")?;
                    }
                    None => self.send("501 5.5.4 Syntax: MAIL FROM:<address>")?,
                },
                "RCPT" => match path(&arg, "TO:") {
                    Some(_) if self.from.is_none() => self.send("503 5.5.1 MAIL first")?,
                    Some(to) => {
                        self.rcpts.push(to);
                        self.send("250 2.1.5 Recipient OK")?;
                    }
                    None => self.send("501 5.5.4 Syntax: RCPT TO:<address>")?,
                },
                "DATA" if self.rcpts.is_empty() => self.send("554 5.5.1 No valid recipients")?,
                "DATA" => {
                    self.send("354 End data with <CR><LF>.<CR><LF>")?;
                    let data = self.data()?;
                    let first = self.rcpts.first().cloned().unwrap_or_default();
                    match self.shared.action(Stage::EndOfData, &first) {
                        None => {
                            let k = self.record(data);
                            self.send(&format!("250 2.0.0 OK queued as S{k}"))?;
                        }
                        Some(Action::Reply(r)) => {
                            if r.starts_with('2') {
                                self.record(data);
                            }
                            self.send(&r)?;
                        }
                        Some(Action::ReplyAndClose(r)) => {
                            if r.starts_with('2') {
                                self.record(data);
                            }
                            self.send(&r)?;
                            return self.close();
                        }
                        Some(other) => {
                            if self.act(other)?.is_err() {
                                return self.close();
                            }
                        }
                    }
                    self.reset();
                }
                "RSET" => {
                    self.reset();
                    self.send("250 2.0.0 OK")?;
                }
                "NOOP" => self.send("250 2.0.0 OK")?,
                _ => self.send("502 5.5.2 Command not implemented")?,
            }
        }
    }

    fn reset(&mut self) {
        self.from = None;
        self.rcpts.clear();
    }

    /// Record the current transaction's message; its number (1-based).
    fn record(&mut self, data: Vec<u8>) -> usize {
        let mut all = lock(&self.shared.deliveries);
        all.push(Delivery {
            conn: self.n,
            from: self.from.clone().unwrap_or_default(),
            rcpts: self.rcpts.clone(),
            data,
        });
        all.len()
    }

    fn close(&mut self) -> io::Result<()> {
        let _ = self.w.shutdown(Shutdown::Both);
        Ok(())
    }

    /// One command line without its CRLF; `None` when the client closed.
    fn command(&mut self) -> io::Result<Option<String>> {
        let mut line = Vec::new();
        let n = (&mut self.r)
            .take(MAX_COMMAND as u64)
            .read_until(b'\n', &mut line)?;
        if n == 0 || self.shared.stop.load(Ordering::SeqCst) {
            return Ok(None);
        }
        if !line.ends_with(b"\n") {
            return Err(io::Error::other("command line too long or cut"));
        }
        let text = String::from_utf8_lossy(&line);
        Ok(Some(text.trim_end_matches(['\r', '\n']).to_owned()))
    }

    /// The message data up to the final dot, dot-unstuffed.
    fn data(&mut self) -> io::Result<Vec<u8>> {
        let mut data = Vec::new();
        loop {
            let mut line = Vec::new();
            let n = self.r.read_until(b'\n', &mut line)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            if line == b".\r\n" {
                return Ok(data);
            }
            let unstuffed = line.strip_prefix(b".").unwrap_or(&line);
            data.extend_from_slice(unstuffed);
            if data.len() > MAX_DATA {
                return Err(io::Error::other("message too large"));
            }
        }
    }
}

/// The address in `FROM:<a>` / `TO:<a> PARAMS` (prefix case ignored).
fn path(arg: &str, prefix: &str) -> Option<String> {
    let rest = arg.get(..prefix.len())?;
    if !rest.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = arg[prefix.len()..].trim_start();
    let inner = rest.strip_prefix('<')?;
    let end = inner.find('>')?;
    Some(inner[..end].to_owned())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::Client;

    fn loopback() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 0))
    }

    #[test]
    fn serves_records_and_follows_its_rules() {
        let s = Scripted::start(
            loopback(),
            Script::new("mx.s.test")
                .rule(Rule::reply(Stage::Mail, "451 4.3.0 busy").times(1))
                .rule(Rule::reply(Stage::Rcpt, "550 5.1.1 no such user").matching("bad@")),
        );
        let mut c = Client::connect(s.addr());
        c.expect_reply("220 mx.s.test");
        let ehlo = c.expect("EHLO c.test", "250-mx.s.test Hello c.test");
        assert!(ehlo.contains("250-PIPELINING\r\n"), "{ehlo}");
        c.expect("MAIL FROM:<a@c.test>", "451 4.3.0");
        c.expect("MAIL FROM:<a@c.test> SIZE=10", "250 2.1.0");
        c.expect("RCPT TO:<bad@s.test>", "550 5.1.1");
        c.expect("RCPT TO:<good@s.test> NOTIFY=NEVER", "250 2.1.5");
        c.expect("DATA", "354");
        c.send(b"Subject: x\r\n\r\n..dot\r\n.\r\n");
        c.expect_reply("250 2.0.0");
        c.expect("QUIT", "221");
        let got = s.deliveries();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].from, "a@c.test");
        assert_eq!(got[0].rcpts, ["good@s.test"]);
        assert_eq!(got[0].data, b"Subject: x\r\n\r\n.dot\r\n");
        assert_eq!(got[0].header("subject").as_deref(), Some("x"));
        assert_eq!(s.count("MAIL"), 2);
        assert_eq!(s.connections(), 1);
    }

    #[test]
    fn silence_close_and_drop_mid_data() {
        let s = Scripted::start(
            loopback(),
            Script::new("mx.s.test")
                .rule(Rule::new(Stage::Connect, Action::Silence).times(1))
                .rule(Rule::new(Stage::Data, Action::DropMidData(10)).times(1)),
        );
        // No greeting: the client's read times out.
        let c = Client::connect(s.addr());
        c.stream()
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 1];
        let err = (&mut c.stream()).read(&mut buf).unwrap_err();
        assert!(matches!(
            err.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ));
        drop(c);
        // Dropped after part of the message: nothing recorded.
        let mut c = Client::connect(s.addr());
        c.expect_reply("220");
        c.expect("EHLO c.test", "250");
        c.expect("MAIL FROM:<a@c.test>", "250");
        c.expect("RCPT TO:<b@s.test>", "250");
        c.expect("DATA", "354");
        c.send(b"Subject: x\r\n\r\nhello\r\n.\r\n");
        assert!(c.closed());
        assert_eq!(s.delivered(), 0);
        // The rules are used up: the third connection goes normally.
        let mut c = Client::connect(s.addr());
        c.expect_reply("220");
        let r = c.send_mail("a@c.test", &["b@s.test"], b"Subject: y\r\n\r\nhi\r\n");
        assert!(r.starts_with("250"), "{r}");
        assert_eq!(s.wait_for(1, Duration::from_secs(5)).len(), 1);
        assert_eq!(s.connections(), 3);
    }

    #[test]
    fn reserved_port_refuses_until_it_listens() {
        let r = Reserved::bind(loopback()).unwrap();
        let addr = r.addr();
        let err = TcpStream::connect(addr).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        let s = r.listen(Script::new("mx.s.test").rule(Rule::new(
            Stage::Connect,
            Action::ReplyAndClose("421 4.3.2 not now".into()),
        )));
        let mut c = Client::connect(addr);
        c.expect_reply("421 4.3.2");
        assert!(c.closed());
        drop(s);
        assert!(TcpStream::connect(addr).is_err(), "stopped on drop");
    }
}
