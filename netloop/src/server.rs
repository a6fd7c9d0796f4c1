//! The event loop itself: accept, read, write, timeouts, completions and
//! graceful shutdown for one [`Service`] on one or more listeners.
//!
//! mio is edge-triggered: after a readable event we read until `WouldBlock`
//! (or until the connection's input buffer is full — then we remember that the
//! socket may still hold data and resume once the session consumes input).
//! WRITABLE interest is registered only while output is queued.

use crate::buf::{InBuf, OutBuf};
use crate::{Completer, ConnId, ConnInfo, Io, Service, Session, Step};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;
use std::collections::HashMap;
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
    /// beyond `max_connections`).
    pub max_per_ip: usize,
    /// Idle timeout until a session sets its own ([`Io::set_timeout`]).
    pub idle_timeout: Duration,
    /// Bytes buffered per connection before the loop stops reading from it
    /// (back-pressure: memory per connection stays bounded).
    pub max_input: usize,
    /// How long shutdown waits for in-flight work before closing everything.
    pub shutdown_grace: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_connections: 1024,
            max_per_ip: 0,
            idle_timeout: Duration::from_secs(300),
            max_input: 256 * 1024,
            shutdown_grace: Duration::from_secs(30),
        }
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
    session: S,
    info: ConnInfo,
    input: InBuf,
    out: OutBuf,
    timeout: Duration,
    deadline: Instant,
    completer: Completer<S::Done>,
    /// The socket may hold more bytes (edge-triggered readiness not drained).
    may_read: bool,
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
    listeners: Vec<TcpListener>,
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
}

impl<S: Service> Server<S> {
    /// Bind every address (port 0 picks a free port) and prepare the loop.
    ///
    /// # Errors
    /// Any bind or poll set-up failure, with the address in the message.
    pub fn bind(addrs: &[SocketAddr], service: S, config: Config) -> io::Result<Self> {
        let poll = Poll::new()?;
        let mut listeners = Vec::with_capacity(addrs.len());
        for (i, addr) in addrs.iter().enumerate() {
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
            listeners.push(l);
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
        })
    }

    /// The addresses actually bound (useful with port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
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
            let wait = next_scan.saturating_duration_since(now);
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
            let Some(listener) = self.listeners.get(idx) else {
                return;
            };
            let (mut stream, peer) = match listener.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("accept failed: {e}");
                    return;
                }
            };
            let per_ip = self.per_ip.get(&peer.ip()).copied().unwrap_or(0);
            if self.conns.len() >= self.config.max_connections
                || (self.config.max_per_ip > 0 && per_ip >= self.config.max_per_ip)
            {
                log::info!("refusing {peer}: connection limit reached");
                // Best effort: a fresh socket's send buffer is empty.
                let _ = stream.write(&self.service.busy_reply());
                continue;
            }
            let local = stream.local_addr().unwrap_or(peer);
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
        let mut io = Io {
            input: &mut c.input,
            out: &mut c.out,
            info: &c.info,
            timeout: &mut c.timeout,
            completer: &c.completer,
            shutting_down,
        };
        let step = f(&mut c.session, &mut io);
        if c.timeout != before && !c.closing {
            c.deadline = Instant::now() + c.timeout;
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
            if c.closing {
                break;
            }
            let before = c.input.len();
            let mut fatal = false;
            while c.may_read && !c.eof && c.input.len() < self.config.max_input {
                let room = (self.config.max_input - c.input.len()).min(READ_CHUNK);
                match c.stream.read(&mut self.scratch[..room]) {
                    Ok(0) => c.eof = true,
                    Ok(n) => c.input.extend(&self.scratch[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => c.may_read = false,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        log::debug!("conn {}: read error: {e}", c.info.id);
                        fatal = true;
                        break;
                    }
                }
            }
            if fatal {
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
            let mut progressed = false;
            while !c.out.is_empty() {
                match c.stream.write(c.out.as_slice()) {
                    Ok(0) => {
                        self.remove(key);
                        return;
                    }
                    Ok(n) => {
                        c.out.advance(n);
                        progressed = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        log::debug!("conn {}: write error: {e}", c.info.id);
                        self.remove(key);
                        return;
                    }
                }
            }
            if progressed && !c.closing {
                c.deadline = Instant::now() + c.timeout;
            }
            if c.out.is_empty() {
                if c.closing {
                    if c.eof || c.half_closed {
                        self.remove(key);
                    } else {
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
                        .is_some_and(|c| c.out.is_empty() && !c.input.is_empty() && !c.closing)
                    {
                        self.with_session(key, |s, io| s.on_input(io));
                    }
                    if self.conns.get(key).is_some_and(|c| !c.out.is_empty()) {
                        continue;
                    }
                }
            }
            break;
        }
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let want_write = !c.out.is_empty();
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
        // The session may have consumed input after a completion while the
        // socket still holds bytes we stopped reading because the buffer was full.
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
            let Some(&key) = self.by_id.get(&id) else {
                continue;
            };
            self.with_session(key, |s, io| s.on_done(done, io));
            let Some(c) = self.conns.get_mut(key) else {
                continue;
            };
            c.deadline = Instant::now() + if c.closing { LINGER } else { c.timeout };
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
                continue;
            };
            if !c.input.is_empty() && !c.closing {
                self.with_session(key, |s, io| s.on_input(io));
            }
            self.process(key);
        }
    }

    fn begin_shutdown(&mut self) {
        log::info!("shutting down: no longer accepting connections");
        self.stopping_since = Some(Instant::now());
        for l in &mut self.listeners {
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
            .filter(|(_, c)| c.deadline <= now)
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
            log::debug!("conn {}: idle timeout", c.info.id);
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
