//! netloop: the one mio event loop both servers plug into.
//!
//! It owns everything a line-oriented TCP server needs and nothing about any
//! protocol: accepting (with a total and per-address connection limit),
//! buffered non-blocking reads and writes, line framing with a length limit
//! ([`InBuf::take_line`]), idle timeouts, a [`mio::Waker`] through which store
//! threads hand results back ([`Completer`]), and graceful shutdown.
//!
//! A protocol implements [`Service`] (a session factory) and [`Session`] (one
//! conversation). The loop calls the session with an [`Io`] giving access to
//! the bytes received so far and the output queue. The loop never blocks and
//! never panics on behalf of a connection: no SQLite, no DNS, no sleeping.
//!
//! TLS (rustls) is the loop's business too, so that sessions only ever see
//! plaintext: listeners may be implicit-TLS, and a session switches a plain
//! connection to TLS with [`Io::start_tls`] (STARTTLS). Likewise DEFLATE
//! (IMAP COMPRESS, RFC 4978): [`Io::start_compress`] puts a compression
//! layer under the session's buffers, inside TLS when TLS is on. Abuse limits that
//! are not about any protocol live here as well: connections in total and
//! per address, a per-command deadline against clients that trickle bytes
//! (slow loris), and the failed-login [`Throttle`].
//!
//! # Module map
//!
//! - `lib.rs` (here): the protocol-facing API — [`Service`], [`Session`],
//!   [`Io`], [`Completer`], [`ConnInfo`], [`Step`], [`TlsState`].
//! - `buf.rs`: [`InBuf`] (with line framing, [`InBuf::take_line`]) and
//!   [`OutBuf`].
//! - `server.rs`: [`Server`] and its [`Config`] / [`Listener`]: binding,
//!   [`Server::run`] (polling and dispatching events) and the call into a
//!   session callback. Its parts live in `server/`:
//!   - `server/accept.rs`: accepting, the total and per-IP connection
//!     limits, removing a connection;
//!   - `server/conn.rs`: one connection — reading and writing its buffers,
//!     the TLS pump, STARTTLS, read-again after back-pressure, the closing
//!     drain;
//!   - `server/timers.rs`: idle and per-command deadlines,
//!     [`Io::complete_after`] timers, delivering completions;
//!   - `server/shutdown.rs`: [`ShutdownHandle`] and graceful shutdown.
//! - `signals.rs`: [`shutdown_on_signals`] (SIGTERM / SIGINT).
//! - `throttle.rs`: the failed-login [`Throttle`].
//! - `tls.rs`: [`TlsConfig`] from PEM files (the default certificate and
//!   those chosen by SNI, reloaded on SIGHUP), one copy per server with its
//!   own session cache and ALPN ids ([`tls::per_server`]), self-signed
//!   certificates; `tls/options.rs`: the admin's settings
//!   ([`tls::TlsOptions`]: SNI, lowest version, groups, OCSP) and what a
//!   connection negotiated ([`tls::TlsInfo`]).
//! - `deflate.rs`: the DEFLATE layer [`Io::start_compress`] turns on, its
//!   bounded buffers and its fixed memory cost.
//! - `testing.rs`: a socket-less driver for session tests, and a TLS
//!   client configuration for tests.

mod buf;
pub mod cli;
pub mod deflate;
mod server;
mod signals;
pub mod testing;
mod throttle;
pub mod tls;

pub use buf::{Ending, InBuf, Line, OutBuf};
pub use server::{Config, Listener, Reconfigure, Server, ShutdownHandle};
pub use signals::shutdown_on_signals;
pub use throttle::{Throttle, ThrottleConfig};
pub use tls::TlsConfig;

use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

/// Identifies one accepted connection for the life of the server (never
/// reused, unlike the slab slot behind it).
pub type ConnId = u64;

/// Facts about a connection, fixed at accept time.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// Unique id of this connection.
    pub id: ConnId,
    /// The client's address.
    pub peer: SocketAddr,
    /// Our address on this connection (tells which listener accepted it).
    pub local: SocketAddr,
}

impl ConnInfo {
    /// True when the client connects from the server's own address on this
    /// connection (as Dovecot decides "local"): such a client may use
    /// plaintext authentication. 127.0.0.2 talking to a server on
    /// 127.0.0.1 is not local.
    pub fn is_local(&self) -> bool {
        self.peer.ip() == self.local.ip()
    }
}

/// Where a connection stands with TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsState {
    /// Plaintext, and STARTTLS is unavailable: the server has no
    /// certificate, or compression is on ([`Io::start_compress`]; TLS
    /// cannot be put under a compressed stream, RFC 4978 §3/§6).
    Unavailable,
    /// Plaintext; [`Io::start_tls`] may switch it.
    Available,
    /// TLS is on (implicit TLS, or after STARTTLS).
    Active,
}

/// What the loop should do with a connection after a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Keep the connection open.
    Continue,
    /// Send what is queued in the output buffer, then close.
    Close,
}

/// Hands the result of work done on another thread back to the session that
/// asked for it: [`Completer::complete`] queues `D` for the loop and wakes it;
/// the loop then calls [`Session::on_done`] on the loop thread.
///
/// Cloneable and `Send`; if the connection has gone away meanwhile, the value
/// is dropped silently.
pub struct Completer<D> {
    id: ConnId,
    tx: mpsc::Sender<(ConnId, D)>,
    waker: Arc<Wake>,
}

/// The loop's [`mio::Waker`] with a flag that coalesces wake-ups: a store
/// thread completing a batch of jobs for many sessions wakes the loop
/// (one eventfd write, one `epoll_wait` return) once, not once per job.
/// The flag is set by the first completion since the loop last emptied
/// its completion queue; later completions see it set and only queue
/// their value, which the loop takes in the same pass ([`Wake::clear`]
/// comes before the queue is emptied, so nothing queued after a
/// completion found the flag set can be missed).
pub(crate) struct Wake {
    waker: Arc<mio::Waker>,
    pending: std::sync::atomic::AtomicBool,
}

impl Wake {
    pub(crate) fn new(waker: Arc<mio::Waker>) -> Wake {
        Wake {
            waker,
            pending: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Wake the loop unless a wake-up is already pending.
    fn wake(&self) {
        if !self.pending.swap(true, std::sync::atomic::Ordering::SeqCst) {
            // A failed wake means the loop is gone; nothing left to do.
            let _ = self.waker.wake();
        }
    }

    /// The loop is about to empty its completion queue: the next
    /// completion must wake it again.
    pub(crate) fn clear(&self) {
        self.pending
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

impl<D> Clone for Completer<D> {
    fn clone(&self) -> Self {
        Completer {
            id: self.id,
            tx: self.tx.clone(),
            waker: Arc::clone(&self.waker),
        }
    }
}

impl<D: Send + 'static> Completer<D> {
    /// Deliver `value` to the session's [`Session::on_done`] on the loop thread.
    pub fn complete(&self, value: D) {
        if self.tx.send((self.id, value)).is_ok() {
            self.waker.wake();
        }
    }
}

/// The session's view of its connection during a callback.
pub struct Io<'a, D> {
    /// Bytes received and not yet consumed by the session.
    pub input: &'a mut InBuf,
    /// Bytes queued for sending.
    pub out: &'a mut OutBuf,
    /// Facts about this connection.
    pub info: &'a ConnInfo,
    pub(crate) timeout: &'a mut Duration,
    pub(crate) completer: &'a Completer<D>,
    pub(crate) shutting_down: bool,
    pub(crate) tls: TlsState,
    pub(crate) tls_info: Option<tls::TlsInfo>,
    pub(crate) start_tls: &'a mut bool,
    pub(crate) compressed: bool,
    pub(crate) start_compress: &'a mut Option<CompressStart>,
    pub(crate) timers: &'a mut Vec<(Duration, D)>,
}

/// What [`Io::start_compress`] hands the loop: where compression begins.
#[derive(Debug, Default)]
pub(crate) struct CompressStart {
    /// Octets of output queued before the call: they go out uncompressed.
    pub(crate) raw_out: usize,
    /// Input received after the command and not consumed: already
    /// compressed, so it is inflated first.
    pub(crate) pending_in: Vec<u8>,
}

impl<D: Send + 'static> Io<'_, D> {
    /// A handle through which another thread can answer this session.
    pub fn completer(&self) -> Completer<D> {
        self.completer.clone()
    }

    /// Set the idle timeout from now on: if no bytes arrive for this long
    /// (and no completion is pending), [`Session::on_timeout`] is called.
    /// Applies from the next read onwards; resets the current deadline.
    pub fn set_timeout(&mut self, timeout: Duration) {
        *self.timeout = timeout;
    }

    /// True once the server has begun shutting down.
    pub fn shutting_down(&self) -> bool {
        self.shutting_down
    }

    /// Where this connection stands with TLS.
    pub fn tls(&self) -> TlsState {
        self.tls
    }

    /// What TLS version and cipher the connection negotiated, once its
    /// handshake is done (`None` on plaintext and during the handshake).
    pub fn tls_info(&self) -> Option<tls::TlsInfo> {
        self.tls_info
    }

    /// True if the connection is encrypted (or STARTTLS has been accepted).
    pub fn is_tls(&self) -> bool {
        self.tls == TlsState::Active
    }

    /// Switch this connection to TLS (STARTTLS): the output queued so far
    /// (the "go ahead" reply) is sent in plaintext, then the TLS handshake
    /// begins. Every byte the client sent before this call and not yet
    /// consumed is discarded now, and nothing more is read as plaintext
    /// (RFC 3207 §4.2, RFC 3501 §6.2.1; the CVE-2011-0411 class), so the
    /// session must stop handling input for this callback. Returns false
    /// (and changes nothing) when TLS is unavailable or already on.
    pub fn start_tls(&mut self) -> bool {
        if self.tls != TlsState::Available || self.compressed() {
            return false;
        }
        *self.start_tls = true;
        self.input.clear();
        self.tls = TlsState::Active;
        true
    }

    /// Compress the rest of this connection both ways with raw DEFLATE
    /// (RFC 1951), as IMAP COMPRESS=DEFLATE asks (RFC 4978 §3): the output
    /// queued so far (the tagged OK) is sent as it is, everything queued
    /// after it is compressed, with a sync flush at the end of each burst.
    /// Every byte the client sent after the command and the session has
    /// not consumed is compressed data: it is taken out of `input` now and
    /// inflated back into it on the next turn of the loop, so the session
    /// must stop reading input for this callback. On a TLS connection
    /// compression runs inside TLS. Returns false (and changes nothing)
    /// when compression is already on or STARTTLS was accepted in this
    /// callback. See `deflate.rs` for the memory this costs.
    pub fn start_compress(&mut self) -> bool {
        if self.compressed() || *self.start_tls {
            return false;
        }
        let pending_in = self.input.take(self.input.len());
        self.input.clear();
        *self.start_compress = Some(CompressStart {
            raw_out: self.out.len(),
            pending_in,
        });
        if self.tls == TlsState::Available {
            self.tls = TlsState::Unavailable;
        }
        true
    }

    /// True once compression is on ([`Io::start_compress`] was accepted).
    pub fn compressed(&self) -> bool {
        self.compressed || self.start_compress.is_some()
    }

    /// Deliver `value` to this session's [`Session::on_done`] after `delay`,
    /// on the loop thread (e.g. to answer a failed login slowly without
    /// blocking anything). Pending timers count as work in flight.
    pub fn complete_after(&mut self, delay: Duration, value: D) {
        self.timers.push((delay, value));
    }
}

/// One conversation with one client. All callbacks run on the loop thread
/// and must not block.
pub trait Session: 'static {
    /// What store threads hand back through a [`Completer`].
    type Done: Send + 'static;

    /// Called once right after accept; queue the greeting.
    fn on_open(&mut self, io: &mut Io<'_, Self::Done>) -> Step;

    /// New bytes are in `io.input`, or bytes are still there after an
    /// [`Session::on_done`]. Consume what can be handled now and leave the
    /// rest (e.g. while waiting for the store): the loop calls again after
    /// the next read or completion. When the input buffer reaches its limit
    /// without being consumed, the loop stops reading until it shrinks.
    fn on_input(&mut self, io: &mut Io<'_, Self::Done>) -> Step;

    /// A value sent through this connection's [`Completer`] arrived.
    /// The loop calls [`Session::on_input`] right after if input is buffered.
    fn on_done(&mut self, done: Self::Done, io: &mut Io<'_, Self::Done>) -> Step;

    /// The output queue became empty (everything was written to the
    /// socket). Sessions that stream large responses produce the next chunk
    /// here. If this queues nothing and input is buffered, the loop then
    /// calls [`Session::on_input`] (the session may have held input back
    /// while streaming). Default: nothing.
    fn on_drained(&mut self, _io: &mut Io<'_, Self::Done>) -> Step {
        Step::Continue
    }

    /// Nothing arrived within the idle timeout. Queue a goodbye (SMTP 421,
    /// IMAP `* BYE`); the connection is closed after it is flushed.
    fn on_timeout(&mut self, io: &mut Io<'_, Self::Done>);

    /// The server is shutting down. Return [`Step::Close`] after queueing a
    /// goodbye, or [`Step::Continue`] if work is in flight (a commit): the
    /// loop asks again after each [`Session::on_done`], until a grace period
    /// ends.
    fn on_shutdown(&mut self, io: &mut Io<'_, Self::Done>) -> Step;

    /// The peer closed its sending side. Default: close once output is sent.
    fn on_eof(&mut self, _io: &mut Io<'_, Self::Done>) -> Step {
        Step::Close
    }

    /// The peer's compressed stream is corrupt (after
    /// [`Io::start_compress`]): nothing more can be read from it. Queue a
    /// goodbye if the protocol has one; the connection is closed once it is
    /// flushed, whatever this returns. Input already inflated is dropped.
    fn on_input_error(&mut self, _io: &mut Io<'_, Self::Done>, _error: &str) -> Step {
        Step::Close
    }
}

/// A session factory: one per listening server.
pub trait Service: 'static {
    /// The session type this service creates.
    type Session: Session;

    /// Create the session for a newly accepted connection.
    fn open(&mut self, info: &ConnInfo) -> Self::Session;

    /// What to send to a connection refused because a connection limit is
    /// reached (e.g. `421 4.7.0 Too many connections\r\n`), before closing.
    fn busy_reply(&self) -> Vec<u8>;

    /// The protocol a connection on a plain (`implicit_tls` false) or
    /// implicit-TLS listener is counted under in the metrics. Default:
    /// [`metrics::Protocol::Other`].
    fn protocol(&self, _implicit_tls: bool) -> metrics::Protocol {
        metrics::Protocol::Other
    }

    /// The ALPN ids (RFC 7301) this service answers to, e.g. `imap`: a TLS
    /// client offering ALPN ids, none of them these, is refused (ALPACA).
    /// Default: none (ALPN is ignored).
    fn alpn(&self) -> &'static [&'static [u8]] {
        &[]
    }
}
