//! One connection: its state ([`Conn`]), reading the socket into the
//! session's [`InBuf`] and writing its [`OutBuf`] out, the TLS pump, the
//! switch to TLS after STARTTLS, and the half-closed drain after a goodbye.
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
//!
//! DEFLATE (COMPRESS, `deflate.rs`) sits between TLS (or the socket) and
//! the session's buffers: reads go transport → `zin` → inflate → [`InBuf`],
//! inflating only into the room the input buffer has, and writes [`OutBuf`]
//! → deflate → `zout` → transport, compressing more only once `zout` has
//! gone out. The session's buffers, and so its back-pressure, measure
//! plaintext either way.

use super::{Server, FIRST_CONN, LINGER};
use crate::buf::{InBuf, OutBuf};
use crate::deflate::{self, Deflate};
use crate::{Completer, ConnInfo, Service, Session};
use mio::net::TcpStream;
use mio::{Interest, Token};
use rustls::ServerConnection;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

/// After the goodbye is sent we half-close and read (discarding) for this
/// long, so unread client bytes do not make the kernel reset the connection
/// and destroy the goodbye before the client reads it.
const DRAIN: Duration = Duration::from_secs(2);

/// One accepted connection: socket, TLS state, buffers, deadlines and the
/// session serving it.
pub(super) struct Conn<S: Session> {
    pub(super) stream: TcpStream,
    /// The TLS state machine, once TLS is on.
    pub(super) tls: Option<Box<ServerConnection>>,
    /// STARTTLS accepted: flush the go-ahead, then begin the handshake.
    pub(super) tls_pending: bool,
    /// The DEFLATE layer, once COMPRESS is on.
    pub(super) deflate: Option<Box<Deflate>>,
    /// Since when unconsumed input has sat without the session progressing.
    pub(super) stalled_since: Option<Instant>,
    pub(super) session: S,
    pub(super) info: ConnInfo,
    pub(super) input: InBuf,
    pub(super) out: OutBuf,
    pub(super) timeout: Duration,
    pub(super) deadline: Instant,
    pub(super) completer: Completer<S::Done>,
    /// The socket may hold more bytes (edge-triggered readiness not drained).
    pub(super) may_read: bool,
    /// The poll reported the peer's end of stream (or an error): read on
    /// to the end rather than stopping at a short read (see
    /// [`Transport::short_read_drains`]).
    pub(super) read_closed: bool,
    /// Queued in [`Server::read_again`]: read on the next turn of the loop.
    pub(super) read_queued: bool,
    pub(super) eof: bool,
    pub(super) eof_told: bool,
    /// Flush the output queue, then close.
    pub(super) closing: bool,
    /// Goodbye sent and our side shut down; discarding input until EOF.
    pub(super) half_closed: bool,
    /// `on_shutdown` answered Continue: ask again after the next completion.
    pub(super) shutdown_pending: bool,
    pub(super) writable_registered: bool,
    /// Counted as an open connection of its listener's protocol while it
    /// lives (metrics).
    pub(super) counted: metrics::OpenConnection,
}

impl<S: Session> Conn<S> {
    /// A freshly accepted connection (`tls` is set on implicit-TLS
    /// listeners), idle deadline `timeout` from now.
    pub(super) fn new(
        stream: TcpStream,
        tls: Option<Box<ServerConnection>>,
        session: S,
        info: ConnInfo,
        timeout: Duration,
        completer: Completer<S::Done>,
        counted: metrics::OpenConnection,
    ) -> Self {
        Conn {
            stream,
            tls,
            tls_pending: false,
            deflate: None,
            stalled_since: None,
            session,
            info,
            input: InBuf::new(),
            out: OutBuf::new(),
            timeout,
            deadline: Instant::now() + timeout,
            completer,
            // Nothing has arrived yet; bytes a client sends before the
            // greeting are reported by the poll as soon as the socket is
            // registered (epoll reports a ready socket on registration).
            may_read: false,
            read_closed: false,
            read_queued: false,
            eof: false,
            eof_told: false,
            closing: false,
            half_closed: false,
            shutdown_pending: false,
            writable_registered: false,
            counted,
        }
    }
}

impl<S: Service> Server<S> {
    /// Read what the socket has, feed the session, flush, close if done.
    pub(super) fn process(&mut self, key: usize) {
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
                if deflate::is_corrupt_input(&e) {
                    self.corrupt_input(key, &e);
                    return;
                }
                match tls_refusal(&e) {
                    Some(why) if c.tls.as_ref().is_some_and(|t| t.is_handshaking()) => {
                        metrics::tls_refused(c.counted.protocol(), why);
                        log::info!("conn {}: {} refused: {e}", c.info.id, c.info.peer);
                    }
                    _ => log::debug!("conn {}: read error: {e}", c.info.id),
                }
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
            let can_read_more = more_to_read(c) && !c.eof && c.input.len() < self.config.max_input;
            if c.closing || !can_read_more || !(got || consumed) {
                break;
            }
        }
        self.flush(key);
    }

    /// Write queued output; when it drains, let the session stream more.
    pub(super) fn flush(&mut self, key: usize) {
        loop {
            let Some(c) = self.conns.get_mut(key) else {
                return;
            };
            let progressed = match write_out(c, &mut self.scratch) {
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
    pub(super) fn read_queued_again(&mut self) {
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

    /// The peer's compressed stream is corrupt: let the session say
    /// goodbye, then close once that is flushed (nothing more is read).
    fn corrupt_input(&mut self, key: usize, e: &io::Error) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        log::info!("conn {}: closing: {e}", c.info.id);
        c.input.clear();
        c.eof = true;
        c.eof_told = true;
        let why = e.to_string();
        self.with_session(key, |s, io| {
            s.on_input_error(io, &why);
            crate::Step::Close
        });
        if let Some(c) = self.conns.get_mut(key) {
            if !c.closing {
                c.closing = true;
                c.deadline = Instant::now() + LINGER;
            }
        }
        self.flush(key);
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
}

/// True when the connection stopped reading while the socket (or, on TLS,
/// rustls) may still hold bytes, and there is room for them now. `may_read`
/// stays true only when reading stopped on a full input buffer: otherwise
/// it ended at `WouldBlock`, and on TLS only after rustls had handed over
/// all the plaintext it held.
fn wants_read<S: Session>(c: &Conn<S>, max_input: usize) -> bool {
    more_to_read(c)
        && !c.eof
        && !c.closing
        && !c.tls_pending
        && !c.half_closed
        && c.input.len() < max_input
}

/// True when the socket may hold more bytes, or (with DEFLATE) compressed
/// input is buffered that can still be inflated, or the end of the
/// transport's stream has not been passed on yet.
fn more_to_read<S: Session>(c: &Conn<S>) -> bool {
    c.may_read
        || c.deflate
            .as_ref()
            .is_some_and(|z| z.has_pending_input() || z.transport_eof || z.finished())
}

/// True when nothing is waiting to be written: neither session output nor
/// compressed output nor TLS records.
fn out_empty<S: Session>(c: &Conn<S>) -> bool {
    c.out.is_empty()
        && c.deflate.as_ref().is_none_or(|z| z.zout.is_empty())
        && c.tls.as_ref().is_none_or(|t| !t.wants_write())
}

/// Read what the socket has into the session's input (through rustls on a
/// TLS connection, and through the inflater once DEFLATE is on), up to
/// `max_input` buffered bytes. Sets `may_read` false on `WouldBlock` and
/// `eof` on end of stream.
fn fill<S: Session>(c: &mut Conn<S>, scratch: &mut [u8], max_input: usize) -> io::Result<()> {
    let Some(z) = c.deflate.as_mut() else {
        let tls = c.tls.as_deref_mut();
        let mut src = Transport {
            stream: &mut c.stream,
            tls,
            may_read: &mut c.may_read,
            eof: &mut c.eof,
            short_read_drains: !c.read_closed,
        };
        return src.read_into(&mut c.input, max_input, scratch);
    };
    loop {
        z.inflate_into(&mut c.input, max_input, scratch)?;
        if c.input.len() >= max_input {
            return Ok(());
        }
        // The peer ended its stream, or closed the connection and
        // everything it sent is inflated: the end, for the session.
        if z.finished() || (z.transport_eof && !z.has_pending_input()) {
            c.eof = true;
            return Ok(());
        }
        if !c.may_read || z.transport_eof || !z.wants_input() {
            return Ok(());
        }
        let before = z.zin.len();
        let mut src = Transport {
            stream: &mut c.stream,
            tls: c.tls.as_deref_mut(),
            may_read: &mut c.may_read,
            eof: &mut z.transport_eof,
            short_read_drains: !c.read_closed,
        };
        src.read_into(&mut z.zin, deflate::ZIN_MAX, scratch)?;
        if z.zin.len() == before && !z.transport_eof {
            return Ok(());
        }
    }
}

/// A TLS protocol error, kept typed inside the `io::Error` it travels in
/// (so the metrics can tell why a handshake failed).
#[derive(Debug)]
struct TlsError(rustls::Error);

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TLS: {}", self.0)
    }
}

impl std::error::Error for TlsError {}

/// Why a TLS error ended a connection, if it is one.
fn tls_refusal(e: &io::Error) -> Option<metrics::TlsRefusal> {
    let TlsError(e) = e.get_ref()?.downcast_ref::<TlsError>()?;
    Some(match e {
        rustls::Error::NoApplicationProtocol => metrics::TlsRefusal::Alpn,
        rustls::Error::PeerIncompatible(_) => metrics::TlsRefusal::Incompatible,
        _ => metrics::TlsRefusal::Handshake,
    })
}

/// The connection's byte source below the DEFLATE layer: the socket, or
/// rustls over it.
struct Transport<'a> {
    stream: &'a mut TcpStream,
    tls: Option<&'a mut ServerConnection>,
    may_read: &'a mut bool,
    eof: &'a mut bool,
    /// A read of fewer bytes than asked for emptied the socket: stop
    /// there instead of reading again only to get `WouldBlock` (one
    /// syscall saved per readiness event). Sound with edge-triggered epoll
    /// on a TCP socket: any byte arriving later raises a new event. Off
    /// once the poll reported the peer's end of stream, which raises no
    /// further event: then reading goes on until the read that returns 0.
    short_read_drains: bool,
}

impl Transport<'_> {
    /// Read into `sink` until it holds `max` bytes, the socket would block
    /// (`may_read` false) or the stream ends (`eof`).
    fn read_into(&mut self, sink: &mut InBuf, max: usize, scratch: &mut [u8]) -> io::Result<()> {
        let Some(tls) = self.tls.as_deref_mut() else {
            while *self.may_read && !*self.eof && sink.len() < max {
                let room = (max - sink.len()).min(scratch.len());
                match self.stream.read(&mut scratch[..room]) {
                    Ok(0) => *self.eof = true,
                    Ok(n) => {
                        sink.extend(&scratch[..n]);
                        if n < room && self.short_read_drains {
                            *self.may_read = false;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => *self.may_read = false,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            return Ok(());
        };
        loop {
            // Plaintext rustls has decrypted already comes first.
            while !*self.eof && sink.len() < max {
                let room = (max - sink.len()).min(scratch.len());
                match tls.reader().read(&mut scratch[..room]) {
                    Ok(0) => *self.eof = true, // close_notify
                    Ok(n) => sink.extend(&scratch[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => *self.eof = true,
                    Err(e) => return Err(e),
                }
            }
            if *self.eof || !*self.may_read || sink.len() >= max {
                return Ok(());
            }
            match tls.read_tls(self.stream) {
                Ok(0) => {
                    // TCP end of stream: whatever was decrypted is still read above.
                    *self.may_read = false;
                    *self.eof = true;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    *self.may_read = false;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let state = tls
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, TlsError(e)))?;
            if *self.eof {
                // Take the last plaintext before reporting the end.
                let mut left = state.plaintext_bytes_to_read();
                let cap = scratch.len();
                while left > 0 {
                    let n = tls.reader().read(&mut scratch[..left.min(cap)])?;
                    if n == 0 {
                        break;
                    }
                    sink.extend(&scratch[..n]);
                    left -= n;
                }
                return Ok(());
            }
        }
    }

    /// Write `src` out (through rustls on a TLS connection). Returns
    /// whether any bytes reached the socket.
    fn write_from(&mut self, src: &mut OutBuf) -> io::Result<bool> {
        let mut progressed = false;
        let Some(tls) = self.tls.as_deref_mut() else {
            while !src.is_empty() {
                match self.stream.write(src.as_slice()) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => {
                        src.advance(n);
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
            if !src.is_empty() {
                // rustls buffers plaintext until the handshake is done, up to
                // its own limit; whatever it does not take stays in `src`.
                let n = tls.writer().write(src.as_slice())?;
                src.advance(n);
            }
            if !tls.wants_write() {
                return Ok(progressed);
            }
            match tls.write_tls(self.stream) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => progressed = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(progressed),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Write queued output (through the compressor once DEFLATE is on, then
/// through rustls on a TLS connection). Returns whether any bytes reached
/// the socket.
fn write_out<S: Session>(c: &mut Conn<S>, scratch: &mut [u8]) -> io::Result<bool> {
    let mut src = Transport {
        stream: &mut c.stream,
        tls: c.tls.as_deref_mut(),
        may_read: &mut c.may_read,
        eof: &mut c.eof,
        short_read_drains: false,
    };
    let Some(z) = c.deflate.as_mut() else {
        return src.write_from(&mut c.out);
    };
    let mut progressed = false;
    loop {
        progressed |= src.write_from(&mut z.zout)?;
        let blocked = !z.zout.is_empty() || src.tls.as_ref().is_some_and(|t| t.wants_write());
        if blocked || c.out.is_empty() {
            return Ok(progressed);
        }
        // Compress more only once the last compressed bytes have gone.
        z.deflate_from(&mut c.out, scratch)?;
    }
}
