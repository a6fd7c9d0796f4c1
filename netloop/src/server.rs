//! The event loop itself: a [`Server`] binds its listeners, then
//! [`Server::run`] polls and dispatches every event for one [`Service`],
//! and [`Server::with_session`] runs each session callback with its [`Io`].
//! The work is divided by what it is about:
//!
//! - `accept.rs`: accepting, the total and per-IP connection limits, and
//!   removing a connection;
//! - `conn.rs`: one connection — reading into its buffers, writing out, the
//!   TLS pump, STARTTLS, the DEFLATE layer (COMPRESS), edge-triggered
//!   read-again and the closing drain;
//! - `timers.rs`: idle and per-command deadlines, [`Io::complete_after`]
//!   timers, and delivering completions to [`Session::on_done`];
//! - `shutdown.rs`: [`ShutdownHandle`] and the graceful shutdown;
//! - `reconfigure.rs`: [`Reconfigure`], changing the service and the
//!   settings of a running server (configuration reload).

mod accept;
mod conn;
mod reconfigure;
mod shutdown;
mod timers;

pub use reconfigure::Reconfigure;
pub use shutdown::ShutdownHandle;

use crate::deflate::Deflate;
use crate::tls::TlsConfig;
use crate::{ConnId, Io, Service, Session, Step, TlsState};
use conn::Conn;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use timers::Timer;

const WAKER: Token = Token(usize::MAX - 1);
/// Tokens below this are listeners; connection `k` in the slab is `FIRST_CONN + k`.
const FIRST_CONN: usize = 1024;
/// How often idle deadlines are checked.
const SCAN_EVERY: Duration = Duration::from_millis(250);
/// How long a closing connection may take to drain its goodbye.
const LINGER: Duration = Duration::from_secs(10);
const READ_CHUNK: usize = 64 * 1024;

/// Limits and timeouts of the loop. Every limit has a sane default.
#[derive(Debug, Clone)]
pub struct Config {
    /// Connections open at once; further ones get the service's busy reply.
    pub max_connections: usize,
    /// Connections open at once from one client IP address (0 = no limit
    /// beyond `max_connections`). Clients connecting from the server's own
    /// address ([`ConnInfo::is_local`]) are exempt, as Postfix exempts
    /// `$mynetworks` from its per-client limits.
    ///
    /// [`ConnInfo::is_local`]: crate::ConnInfo::is_local
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
    /// The completions' coalescing wake-up (see [`crate::Wake`]).
    wake: Arc<crate::Wake>,
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
    /// Changes queued through [`Reconfigure`] handles.
    changes: reconfigure::Pending<S>,
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
    pub fn bind_listeners(listen: &[Listener], service: S, mut config: Config) -> io::Result<Self> {
        // This server's own TLS session cache and ALPN ids.
        if let Some(tls) = &config.tls {
            config.tls = Some(crate::tls::per_server(tls, service.alpn()));
        }
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
        // Completions wake the loop through the same waker (mio allows
        // one per poll), coalesced by a flag.
        let wake = Arc::new(crate::Wake::new(Arc::clone(&waker)));
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
            wake,
            done_tx,
            done_rx,
            stop: Arc::new(AtomicBool::new(false)),
            stopping_since: None,
            scratch: vec![0; READ_CHUNK],
            timers: BinaryHeap::new(),
            timer_seq: 0,
            read_again: Vec::new(),
            changes: Default::default(),
        })
    }

    /// The addresses actually bound (useful with port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|(l, _)| l.local_addr().ok())
            .collect()
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
            if let Some(at) = self.next_timer_due() {
                wait = wait.min(at.saturating_duration_since(now));
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
            self.apply_changes();
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
                            if event.is_read_closed() || event.is_error() {
                                c.read_closed = true;
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
            if self.shutdown_finished() {
                return Ok(());
            }
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
        let compressed = c.deflate.is_some();
        let tls = if c.tls.is_some() || c.tls_pending {
            TlsState::Active
        } else if self.config.tls.is_some() && !compressed {
            TlsState::Available
        } else {
            TlsState::Unavailable
        };
        let mut start_tls = false;
        let mut start_compress = None;
        let mut timers = Vec::new();
        let mut io = Io {
            input: &mut c.input,
            out: &mut c.out,
            info: &c.info,
            timeout: &mut c.timeout,
            completer: &c.completer,
            shutting_down,
            tls,
            tls_info: c.tls.as_deref().and_then(crate::tls::TlsInfo::of),
            start_tls: &mut start_tls,
            compressed,
            start_compress: &mut start_compress,
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
        if let Some(start) = start_compress {
            let mut z = Box::new(Deflate::new());
            // The reply that accepted compression goes out as it is.
            let raw = start.raw_out.min(c.out.len());
            z.push_raw(&c.out.as_slice()[..raw]);
            c.out.advance(raw);
            z.push_compressed(&start.pending_in);
            c.deflate = Some(z);
            c.stalled_since = None;
            // Inflate what already arrived (and read on) next turn.
            if !c.read_queued {
                c.read_queued = true;
                self.read_again.push(c.info.id);
            }
        }
        if step == Step::Close && !c.closing {
            c.closing = true;
            c.deadline = Instant::now() + LINGER;
        }
        let id = c.info.id;
        self.schedule(id, timers);
    }
}
