//! The event loop itself: accept, read, write, timeouts, completions and
//! graceful shutdown for one [`Service`] on one or more listeners.
//!
//! mio is edge-triggered: after a readable event we read until `WouldBlock`
//! (or until the connection's input buffer is full — then we remember that the
//! socket may still hold data and resume once the session consumes input).
//! A session holds input back while its unread output is large (output
//! back-pressure), so the input buffer fills and reading stops; no readiness
//! event will come for bytes already waiting, so once the output drains and
//! the session has taken input, the loop reads again by itself on its next
//! turn ([`Server::run`]'s `read_again` queue).
//! WRITABLE interest is registered only while output is queued.
//!
//! TLS runs here, between the socket and the session's buffers: on a TLS
//! connection reads go socket → rustls → [`InBuf`] and writes [`OutBuf`] →
//! rustls → socket, so sessions only ever see plaintext. STARTTLS: the
//! session's go-ahead is flushed in plaintext, unconsumed input is dropped,
//! and nothing is read until the handshake starts.

use crate::buf::{InBuf, OutBuf};
use crate::tls::TlsConfig;
use crate::{Completer, ConnId, ConnInfo, Io, Service, Session, Step, TlsState};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use rustls::ServerConnection;
use slab::Slab;
use std::cmp::Ordering as CmpOrdering;
use std::collections::{BinaryHeap, HashMap};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

const WAKER: Token = Token(usize::MAX - 1);
/// Tokens below this are listeners; connection `k` in the slab is `FIRST_CONN + k`.
const FIRST_CONN: usize = 1024;
/// How often idle deadlines are checked.
const SCAN_EVERY: Duration = Duration::from_millis(250);
/// How long a closing connection may take to drain its goodbye.
const LINGER: Duration = Duration::from_secs(10);
const READ_CHUNK: usize = 64 * 1024;
/// After the goodbye is sent we half-close and read (discarding) for this
/// long, so unread client bytes do not make the kernel reset the connection
/// and destroy the goodbye before the client reads it.
const DRAIN: Duration = Duration::from_secs(2);

/// Limits and timeouts of the loop. Every limit has a sane default.
#[derive(Debug, Clone)]
pub struct Config {
    /// Connections open at once; further ones get the service's busy reply.
    pub max_connections: usize,
    /// Connections open at once from one client IP address (0 = no limit
    /// beyond `max_connections`). Clients connecting from the server's own
    /// address ([`ConnInfo::is_local`]) are exempt, as Postfix exempts
    /// `$mynetworks` from its per-client limits.
    pub max_per_ip: usize,
    /// Idle timeout until a session sets its own ([`Io::set_timeout`]).
    pub idle_timeout: Duration,
    /// Bytes buffered per connection before the loop stops reading from it
    /// (back-pressure: memory per connection stays bounded).
    pub max_input: usize,
    /// How long shutdown waits for in-flight work before closing everything.
    pub shutdown_grace: Duration,
    /// How long received bytes may sit unconsumed while the session makes no
    /// progress (no input consumed, no output written, no completion): a
    /// client trickling a command one byte at a time (slow loris) is cut
    /// off after this, however often bytes arrive.
    pub command_timeout: Duration,
    /// Certificate and key for implicit-TLS listeners and STARTTLS; `None`
    /// disables both.
    pub tls: Option<TlsConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_connections: 1024,
            max_per_ip: 0,
            idle_timeout: Duration::from_secs(300),
            max_input: 256 * 1024,
            shutdown_grace: Duration::from_secs(30),
            command_timeout: Duration::from_secs(120),
            tls: None,
        }
    }
}

/// One address to listen on.
#[derive(Debug, Clone, Copy)]
pub struct Listener {
    /// Where to listen (port 0 picks a free port).
    pub addr: SocketAddr,
    /// TLS from the first byte (RFC 8314 implicit TLS: smtps 465, imaps 993).
    pub implicit_tls: bool,
}

/// A session value due at a time (from [`Io::complete_after`]).
struct Timer<D> {
    at: Instant,
    seq: u64,
    id: ConnId,
    value: D,
}

impl<D> PartialEq for Timer<D> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<D> Eq for Timer<D> {}
impl<D> PartialOrd for Timer<D> {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl<D> Ord for Timer<D> {
    /// Reversed, so that `BinaryHeap` pops the earliest first.
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// Asks a running [`Server`] to shut down. Cloneable, `Send`, `Sync`.
#[derive(Clone)]
pub struct ShutdownHandle {
    flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl ShutdownHandle {
    /// Stop accepting, let sessions say goodbye, finish in-flight work.
    pub fn shutdown(&self) {
        self.flag.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
    }
}

struct Conn<S: Session> {
    stream: TcpStream,
    /// The TLS state machine, once TLS is on.
    tls: Option<Box<ServerConnection>>,
    /// STARTTLS accepted: flush the go-ahead, then begin the handshake.
    tls_pending: bool,
    /// Since when unconsumed input has sat without the session progressing.
    stalled_since: Option<Instant>,
    session: S,
    info: ConnInfo,
    input: InBuf,
    out: OutBuf,
    timeout: Duration,
    deadline: Instant,
    completer: Completer<S::Done>,
    /// The socket may hold more bytes (edge-triggered readiness not drained).
    may_read: bool,
    /// Queued in [`Server::read_again`]: read on the next turn of the loop.
    read_queued: bool,
    eof: bool,
    eof_told: bool,
    /// Flush the output queue, then close.
    closing: bool,
    /// Goodbye sent and our side shut down; discarding input until EOF.
    half_closed: bool,
    /// `on_shutdown` answered Continue: ask again after the next completion.
    shutdown_pending: bool,
    writable_registered: bool,
}

/// A server: listeners plus the loop that serves them with one [`Service`].
pub struct Server<S: Service> {
    poll: Poll,
    listeners: Vec<(TcpListener, bool)>,
    service: S,
    config: Config,
    conns: Slab<Conn<S::Session>>,
    by_id: HashMap<ConnId, usize>,
    per_ip: HashMap<IpAddr, usize>,
    next_id: ConnId,
    waker: Arc<Waker>,
    done_tx: mpsc::Sender<(ConnId, <S::Session as Session>::Done)>,
    done_rx: mpsc::Receiver<(ConnId, <S::Session as Session>::Done)>,
    stop: Arc<AtomicBool>,
    stopping_since: Option<Instant>,
    /// One read buffer for all connections (the loop is single-threaded).
    scratch: Vec<u8>,
    timers: BinaryHeap<Timer<<S::Session as Session>::Done>>,
    timer_seq: u64,
    /// Connections that stopped reading with bytes possibly left in the
    /// socket and now have room again: read on the next turn of the loop
    /// (edge-triggered readiness will not report those bytes again).
    read_again: Vec<ConnId>,
}

impl<S: Service> Server<S> {
    /// Bind every address (port 0 picks a free port) and prepare the loop.
    ///
    /// # Errors
    /// Any bind or poll set-up failure, with the address in the message.
    pub fn bind(addrs: &[SocketAddr], service: S, config: Config) -> io::Result<Self> {
        let plain: Vec<Listener> = addrs
            .iter()
            .map(|&addr| Listener {
                addr,
                implicit_tls: false,
            })
            .collect();
        Self::bind_listeners(&plain, service, config)
    }

    /// Bind plain and implicit-TLS listeners (see [`Server::bind`]).
    ///
    /// # Errors
    /// As [`Server::bind`]; also an implicit-TLS listener without
    /// [`Config::tls`].
    pub fn bind_listeners(listen: &[Listener], service: S, config: Config) -> io::Result<Self> {
        let poll = Poll::new()?;
        let mut listeners = Vec::with_capacity(listen.len());
        for (i, spec) in listen.iter().enumerate() {
            let addr = &spec.addr;
            if spec.implicit_tls && config.tls.is_none() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("implicit TLS on {addr} needs a certificate and key"),
                ));
            }
            if i >= FIRST_CONN - 1 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "too many listeners",
                ));
            }
            let mut l = TcpListener::bind(*addr)
                .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
            poll.registry()
                .register(&mut l, Token(i), Interest::READABLE)?;
            listeners.push((l, spec.implicit_tls));
        }
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (done_tx, done_rx) = mpsc::channel();
        Ok(Server {
            poll,
            listeners,
            service,
            config,
            conns: Slab::new(),
            by_id: HashMap::new(),
            per_ip: HashMap::new(),
            next_id: 1,
            waker,
            done_tx,
            done_rx,
            stop: Arc::new(AtomicBool::new(false)),
            stopping_since: None,
            scratch: vec![0; READ_CHUNK],
            timers: BinaryHeap::new(),
            timer_seq: 0,
            read_again: Vec::new(),
        })
    }

    /// The addresses actually bound (useful with port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|(l, _)| l.local_addr().ok())
            .collect()
    }

    /// A handle that makes [`Server::run`] shut down gracefully and return.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            flag: Arc::clone(&self.stop),
            waker: Arc::clone(&self.waker),
        }
    }

    /// What a standalone server binary does once bound: install SIGTERM /
    /// SIGINT handling, print `NAME: listening on A, B` to stderr (the
    /// start-up line scripts wait for), then [`Server::run`].
    ///
    /// # Errors
    /// If the signal handlers cannot be installed, or the loop fails.
    pub fn serve(self, name: &str) -> io::Result<()> {
        crate::shutdown_on_signals(vec![self.shutdown_handle()])?;
        let addrs: Vec<String> = self.local_addrs().iter().map(|a| a.to_string()).collect();
        eprintln!("{name}: listening on {}", addrs.join(", "));
        self.run()
    }

    /// Serve until shut down. Returns once every connection is closed.
    ///
    /// # Errors
    /// Only a failure of the poll itself; connection errors close that
    /// connection and are logged.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut next_scan = Instant::now() + SCAN_EVERY;
        loop {
            let now = Instant::now();
            let mut wait = next_scan.saturating_duration_since(now);
            if let Some(t) = self.timers.peek() {
                wait = wait.min(t.at.saturating_duration_since(now));
            }
            if !self.read_again.is_empty() {
                wait = Duration::ZERO;
            }
            if let Err(e) = self.poll.poll(&mut events, Some(wait)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            for event in events.iter() {
                match event.token() {
                    WAKER => {}
                    Token(i) if i < FIRST_CONN => self.accept(i),
                    Token(t) => {
                        let key = t - FIRST_CONN;
                        if let Some(c) = self.conns.get_mut(key) {
                            if event.is_readable() || event.is_read_closed() || event.is_error() {
                                c.may_read = true;
                            }
                        }
                        self.process(key);
                    }
                }
            }
            self.completions();
            self.fire_timers();
            self.read_queued_again();
            if self.stop.load(Ordering::SeqCst) && self.stopping_since.is_none() {
                self.begin_shutdown();
            }
            if Instant::now() >= next_scan {
                self.scan_deadlines();
                next_scan = Instant::now() + SCAN_EVERY;
            }
            if let Some(since) = self.stopping_since {
                if self.conns.is_empty() {
                    return Ok(());
                }
                if since.elapsed() >= self.config.shutdown_grace {
                    log::warn!(
                        "shutdown grace ended; closing {} connections",
                        self.conns.len()
                    );
                    let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
                    for k in keys {
                        self.remove(k);
                    }
                    return Ok(());
                }
            }
        }
    }

    fn accept(&mut self, idx: usize) {
        loop {
            let Some((listener, implicit_tls)) = self.listeners.get(idx) else {
                return;
            };
            let implicit_tls = *implicit_tls;
            let (mut stream, peer) = match listener.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("accept failed: {e}");
                    return;
                }
            };
            let local = stream.local_addr().unwrap_or(peer);
            let is_local = local.ip() == peer.ip();
            let per_ip = self.per_ip.get(&peer.ip()).copied().unwrap_or(0);
            if self.conns.len() >= self.config.max_connections
                || (self.config.max_per_ip > 0 && !is_local && per_ip >= self.config.max_per_ip)
            {
                log::info!("refusing {peer}: connection limit reached");
                // Best effort: a fresh socket's send buffer is empty. (On an
                // implicit-TLS listener the client cannot read plaintext; it
                // sees the connection close, which is all we can offer.)
                if !implicit_tls {
                    let _ = stream.write(&self.service.busy_reply());
                }
                continue;
            }
            let tls = match (implicit_tls, &self.config.tls) {
                (true, Some(cfg)) => match ServerConnection::new(Arc::clone(cfg)) {
                    Ok(t) => Some(Box::new(t)),
                    Err(e) => {
                        log::warn!("TLS set-up for {peer} failed: {e}");
                        continue;
                    }
                },
                _ => None,
            };
            let _ = stream.set_nodelay(true);
            let id = self.next_id;
            self.next_id += 1;
            let info = ConnInfo { id, peer, local };
            let session = self.service.open(&info);
            let entry = self.conns.vacant_entry();
            let key = entry.key();
            if let Err(e) = self.poll.registry().register(
                &mut stream,
                Token(FIRST_CONN + key),
                Interest::READABLE,
            ) {
                log::warn!("cannot register {peer}: {e}");
                continue;
            }
            let timeout = self.config.idle_timeout;
            entry.insert(Conn {
                stream,
                tls,
                tls_pending: false,
                stalled_since: None,
                session,
                info,
                input: InBuf::new(),
                out: OutBuf::new(),
                timeout,
                deadline: Instant::now() + timeout,
                completer: Completer {
                    id,
                    tx: self.done_tx.clone(),
                    waker: Arc::clone(&self.waker),
                },
                may_read: true,
                read_queued: false,
                eof: false,
                eof_told: false,
                closing: false,
                half_closed: false,
                shutdown_pending: false,
                writable_registered: false,
            });
            self.by_id.insert(id, key);
            *self.per_ip.entry(peer.ip()).or_insert(0) += 1;
            let shutting_down = self.stopping_since.is_some();
            self.with_session(key, |s, io| s.on_open(io));
            if shutting_down {
                self.with_session(key, |s, io| s.on_shutdown(io));
            }
            self.process(key);
        }
    }

    /// Run one session callback with an [`Io`] and apply the returned step.
    fn with_session(
        &mut self,
        key: usize,
        f: impl FnOnce(&mut S::Session, &mut Io<'_, <S::Session as Session>::Done>) -> Step,
    ) {
        let shutting_down = self.stopping_since.is_some();
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let before = c.timeout;
        let tls = if c.tls.is_some() || c.tls_pending {
            TlsState::Active
        } else if self.config.tls.is_some() {
            TlsState::Available
        } else {
            TlsState::Unavailable
        };
        let mut start_tls = false;
        let mut timers = Vec::new();
        let mut io = Io {
            input: &mut c.input,
            out: &mut c.out,
            info: &c.info,
            timeout: &mut c.timeout,
            completer: &c.completer,
            shutting_down,
            tls,
            start_tls: &mut start_tls,
            timers: &mut timers,
        };
        let step = f(&mut c.session, &mut io);
        if c.timeout != before && !c.closing {
            c.deadline = Instant::now() + c.timeout;
        }
        if start_tls {
            c.tls_pending = true;
            c.stalled_since = None;
        }
        if !timers.is_empty() {
            let now = Instant::now();
            let id = c.info.id;
            for (delay, value) in timers {
                self.timer_seq += 1;
                self.timers.push(Timer {
                    at: now + delay,
                    seq: self.timer_seq,
                    id,
                    value,
                });
            }
        }
        if step == Step::Close && !c.closing {
            c.closing = true;
            c.deadline = Instant::now() + LINGER;
        }
    }

    /// Read what the socket has, feed the session, flush, close if done.
    fn process(&mut self, key: usize) {
        loop {
            let Some(c) = self.conns.get_mut(key) else {
                return;
            };
            if c.half_closed {
                self.drain(key);
                return;
            }
            if c.closing || c.tls_pending {
                // After STARTTLS nothing is read until the handshake begins.
                break;
            }
            let before = c.input.len();
            if let Err(e) = fill(c, &mut self.scratch, self.config.max_input) {
                log::debug!("conn {}: read error: {e}", c.info.id);
                // A TLS alert may be queued; send it best effort.
                if let Some(tls) = c.tls.as_mut() {
                    let _ = tls.write_tls(&mut c.stream);
                }
                self.remove(key);
                return;
            }
            let got = c.input.len() > before;
            if got {
                c.deadline = Instant::now() + c.timeout;
            }
            let len_before_session = c.input.len();
            if got || (!c.input.is_empty() && c.eof && !c.eof_told) {
                self.with_session(key, |s, io| s.on_input(io));
            }
            let Some(c) = self.conns.get_mut(key) else {
                return;
            };
            if c.eof && !c.eof_told && !c.closing {
                c.eof_told = true;
                self.with_session(key, |s, io| s.on_eof(io));
            }
            let Some(c) = self.conns.get_mut(key) else {
                return;
            };
            let consumed = c.input.len() < len_before_session;
            if c.input.is_empty() {
                c.stalled_since = None;
            } else if consumed || c.stalled_since.is_none() {
                c.stalled_since = Some(Instant::now());
            }
            let can_read_more = c.may_read && !c.eof && c.input.len() < self.config.max_input;
            if c.closing || !can_read_more || !(got || consumed) {
                break;
            }
        }
        self.flush(key);
    }

    /// Write queued output; when it drains, let the session stream more.
    fn flush(&mut self, key: usize) {
        loop {
            let Some(c) = self.conns.get_mut(key) else {
                return;
            };
            let progressed = match write_out(c) {
                Ok(p) => p,
                Err(e) => {
                    log::debug!("conn {}: write error: {e}", c.info.id);
                    self.remove(key);
                    return;
                }
            };
            if progressed && !c.closing {
                c.deadline = Instant::now() + c.timeout;
                if c.stalled_since.is_some() {
                    c.stalled_since = Some(Instant::now());
                }
            }
            if out_empty(c) {
                if c.tls_pending && !c.closing {
                    let Some(cfg) = self.config.tls.clone() else {
                        self.remove(key);
                        return;
                    };
                    match ServerConnection::new(cfg) {
                        Ok(t) => {
                            c.tls = Some(Box::new(t));
                            c.tls_pending = false;
                            // The client may already have sent its hello.
                            self.process(key);
                        }
                        Err(e) => {
                            log::warn!("conn {}: TLS set-up failed: {e}", c.info.id);
                            self.remove(key);
                        }
                    }
                    return;
                }
                if c.closing {
                    if c.eof || c.half_closed {
                        self.remove(key);
                    } else {
                        if let Some(tls) = c.tls.as_mut() {
                            tls.send_close_notify();
                            let _ = tls.write_tls(&mut c.stream);
                        }
                        let _ = c.stream.shutdown(std::net::Shutdown::Write);
                        c.half_closed = true;
                        c.deadline = Instant::now() + DRAIN;
                        self.drain(key);
                    }
                    return;
                }
                if progressed {
                    self.with_session(key, |s, io| s.on_drained(io));
                    // A session that held input back while streaming may
                    // take it now (as after a completion).
                    if self
                        .conns
                        .get(key)
                        .is_some_and(|c| out_empty(c) && !c.input.is_empty() && !c.closing)
                    {
                        self.with_session(key, |s, io| s.on_input(io));
                    }
                    if self.conns.get(key).is_some_and(|c| !out_empty(c)) {
                        continue;
                    }
                }
            }
            break;
        }
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let want_write = !out_empty(c);
        if want_write != c.writable_registered {
            let interest = if want_write {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if self
                .poll
                .registry()
                .reregister(&mut c.stream, Token(FIRST_CONN + key), interest)
                .is_err()
            {
                self.remove(key);
                return;
            }
            c.writable_registered = want_write;
        }
        // Reading stopped when the input buffer filled (the session holding
        // input back while its output was unread); the output has drained
        // and the session took input, but the socket may still hold bytes
        // and, being edge-triggered, will not report them again. Read on the
        // next turn of the loop: not recursively here, so a client that
        // floods and reads fast neither deepens the stack nor starves others.
        // (While output is still queued, the WRITABLE event that reports its
        // progress runs `process`, which reads.)
        if !want_write && !c.read_queued && wants_read(c, self.config.max_input) {
            c.read_queued = true;
            self.read_again.push(c.info.id);
        }
    }

    /// Read from the connections queued by [`Server::flush`] (once each;
    /// those that queue themselves again wait for the next turn).
    fn read_queued_again(&mut self) {
        for id in std::mem::take(&mut self.read_again) {
            let Some(&key) = self.by_id.get(&id) else {
                continue;
            };
            if let Some(c) = self.conns.get_mut(key) {
                c.read_queued = false;
            }
            self.process(key);
        }
    }

    /// Read and discard what a half-closed connection still sends; close on
    /// EOF or error (the deadline scan closes it otherwise).
    fn drain(&mut self, key: usize) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        loop {
            match c.stream.read(&mut self.scratch) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        self.remove(key);
    }

    fn completions(&mut self) {
        while let Ok((id, done)) = self.done_rx.try_recv() {
            self.deliver(id, done);
        }
    }

    /// Hand due [`Io::complete_after`] values to their sessions.
    fn fire_timers(&mut self) {
        let now = Instant::now();
        while self.timers.peek().is_some_and(|t| t.at <= now) {
            if let Some(t) = self.timers.pop() {
                self.deliver(t.id, t.value);
            }
        }
    }

    fn deliver(&mut self, id: ConnId, done: <S::Session as Session>::Done) {
        let Some(&key) = self.by_id.get(&id) else {
            return;
        };
        self.with_session(key, |s, io| s.on_done(done, io));
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        c.deadline = Instant::now() + if c.closing { LINGER } else { c.timeout };
        if c.stalled_since.is_some() {
            c.stalled_since = Some(Instant::now());
        }
        if c.shutdown_pending && !c.closing {
            c.shutdown_pending = false;
            self.with_session(key, |s, io| s.on_shutdown(io));
            if let Some(c) = self.conns.get_mut(key) {
                if !c.closing {
                    c.shutdown_pending = true;
                }
            }
        }
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        if !c.input.is_empty() && !c.closing && !c.tls_pending {
            self.with_session(key, |s, io| s.on_input(io));
        }
        self.process(key);
    }

    fn begin_shutdown(&mut self) {
        log::info!("shutting down: no longer accepting connections");
        self.stopping_since = Some(Instant::now());
        for (l, _) in &mut self.listeners {
            let _ = self.poll.registry().deregister(l);
        }
        self.listeners.clear();
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            if self.conns.get(key).is_some_and(|c| c.closing) {
                continue;
            }
            self.with_session(key, |s, io| s.on_shutdown(io));
            if let Some(c) = self.conns.get_mut(key) {
                if !c.closing {
                    c.shutdown_pending = true;
                }
            }
            self.flush(key);
        }
    }

    fn scan_deadlines(&mut self) {
        let now = Instant::now();
        let expired: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.deadline <= now
                    || (!c.closing
                        && c.stalled_since
                            .is_some_and(|s| now.duration_since(s) >= self.config.command_timeout))
            })
            .map(|(k, _)| k)
            .collect();
        for key in expired {
            let Some(c) = self.conns.get_mut(key) else {
                continue;
            };
            if c.closing {
                self.remove(key);
                continue;
            }
            log::debug!("conn {}: idle or command timeout", c.info.id);
            self.with_session(key, |s, io| {
                s.on_timeout(io);
                Step::Close
            });
            self.flush(key);
        }
    }

    fn remove(&mut self, key: usize) {
        if !self.conns.contains(key) {
            return;
        }
        let mut c = self.conns.remove(key);
        let _ = self.poll.registry().deregister(&mut c.stream);
        self.by_id.remove(&c.info.id);
        let ip = c.info.peer.ip();
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }
}

/// True when the connection stopped reading while the socket (or, on TLS,
/// rustls) may still hold bytes, and there is room for them now. `may_read`
/// stays true only when reading stopped on a full input buffer: otherwise
/// it ended at `WouldBlock`, and on TLS only after rustls had handed over
/// all the plaintext it held.
fn wants_read<S: Session>(c: &Conn<S>, max_input: usize) -> bool {
    c.may_read
        && !c.eof
        && !c.closing
        && !c.tls_pending
        && !c.half_closed
        && c.input.len() < max_input
}

/// True when nothing is waiting to be written: neither session output nor
/// TLS records.
fn out_empty<S: Session>(c: &Conn<S>) -> bool {
    c.out.is_empty() && c.tls.as_ref().is_none_or(|t| !t.wants_write())
}

/// Read what the socket has into the session's input (through rustls on a
/// TLS connection), up to `max_input` buffered bytes. Sets `may_read` false
/// on `WouldBlock` and `eof` on end of stream.
fn fill<S: Session>(c: &mut Conn<S>, scratch: &mut [u8], max_input: usize) -> io::Result<()> {
    let Some(tls) = c.tls.as_mut() else {
        while c.may_read && !c.eof && c.input.len() < max_input {
            let room = (max_input - c.input.len()).min(scratch.len());
            match c.stream.read(&mut scratch[..room]) {
                Ok(0) => c.eof = true,
                Ok(n) => c.input.extend(&scratch[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => c.may_read = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        return Ok(());
    };
    loop {
        // Plaintext rustls has decrypted already comes first.
        while !c.eof && c.input.len() < max_input {
            let room = (max_input - c.input.len()).min(scratch.len());
            match tls.reader().read(&mut scratch[..room]) {
                Ok(0) => c.eof = true, // close_notify
                Ok(n) => c.input.extend(&scratch[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => c.eof = true,
                Err(e) => return Err(e),
            }
        }
        if c.eof || !c.may_read || c.input.len() >= max_input {
            return Ok(());
        }
        match tls.read_tls(&mut c.stream) {
            Ok(0) => {
                // TCP end of stream: whatever was decrypted is still read above.
                c.may_read = false;
                c.eof = true;
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                c.may_read = false;
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        let state = tls
            .process_new_packets()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("TLS: {e}")))?;
        if c.eof {
            // Take the last plaintext before reporting the end.
            let mut left = state.plaintext_bytes_to_read();
            let cap = scratch.len();
            while left > 0 {
                let n = tls.reader().read(&mut scratch[..left.min(cap)])?;
                if n == 0 {
                    break;
                }
                c.input.extend(&scratch[..n]);
                left -= n;
            }
            return Ok(());
        }
    }
}

/// Write queued output (through rustls on a TLS connection). Returns
/// whether any bytes reached the socket.
fn write_out<S: Session>(c: &mut Conn<S>) -> io::Result<bool> {
    let mut progressed = false;
    let Some(tls) = c.tls.as_mut() else {
        while !c.out.is_empty() {
            match c.stream.write(c.out.as_slice()) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    c.out.advance(n);
                    progressed = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        return Ok(progressed);
    };
    loop {
        if !c.out.is_empty() {
            // rustls buffers plaintext until the handshake is done, up to
            // its own limit; whatever it does not take stays in `out`.
            let n = tls.writer().write(c.out.as_slice())?;
            c.out.advance(n);
        }
        if !tls.wants_write() {
            return Ok(progressed);
        }
        match tls.write_tls(&mut c.stream) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => progressed = true,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(progressed),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
