//! Drive a [`Session`] without sockets: feed bytes, collect output, answer
//! completions. For session state-machine tests in the server crates. Also
//! a rustls client configuration for tests that talk TLS to a server.

use crate::buf::{InBuf, OutBuf};
use crate::{Completer, ConnId, ConnInfo, Io, Session, Step, TlsState};
use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

/// A session plus fake connection buffers.
pub struct Driver<S: Session> {
    /// The session under test.
    pub session: S,
    /// Bytes "received" and not yet consumed.
    pub input: InBuf,
    /// Bytes the session queued.
    pub out: OutBuf,
    /// The fake connection's facts.
    pub info: ConnInfo,
    timeout: Duration,
    completer: Completer<S::Done>,
    rx: mpsc::Receiver<(ConnId, S::Done)>,
    _poll: mio::Poll,
    /// The last step a callback returned.
    pub last_step: Step,
    /// What `Io::tls` reports to the session.
    pub tls: TlsState,
    /// Set once the session called `Io::start_tls`.
    pub started_tls: bool,
    /// Set once the session called `Io::start_compress` (the driver does
    /// not compress: its buffers stay plaintext).
    pub compressed: bool,
    /// Values the session scheduled with `Io::complete_after`, not yet delivered.
    pub timers: Vec<(Duration, S::Done)>,
}

impl<S: Session> Driver<S> {
    /// Wrap `session`, as if accepted from 127.0.0.1:40000 on 127.0.0.1:25.
    ///
    /// # Panics
    /// If the OS cannot create a poll instance (tests only).
    pub fn new(session: S) -> Self {
        let peer: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 40000));
        let local: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 25));
        Self::with_addrs(session, peer, local)
    }

    /// Wrap `session` with the given peer and local addresses.
    ///
    /// # Panics
    /// If the OS cannot create a poll instance (tests only).
    #[allow(clippy::expect_used)]
    pub fn with_addrs(session: S, peer: SocketAddr, local: SocketAddr) -> Self {
        let poll = mio::Poll::new().expect("poll");
        let waker = Arc::new(crate::Wake::new(Arc::new(
            mio::Waker::new(poll.registry(), mio::Token(0)).expect("waker"),
        )));
        let (tx, rx) = mpsc::channel();
        Driver {
            session,
            input: InBuf::new(),
            out: OutBuf::new(),
            info: ConnInfo { id: 1, peer, local },
            timeout: Duration::from_secs(300),
            completer: Completer { id: 1, tx, waker },
            rx,
            _poll: poll,
            last_step: Step::Continue,
            tls: TlsState::Unavailable,
            started_tls: false,
            compressed: false,
            timers: Vec::new(),
        }
    }

    fn call(&mut self, f: impl FnOnce(&mut S, &mut Io<'_, S::Done>) -> Step) -> Step {
        let mut start_compress = None;
        let mut io = Io {
            input: &mut self.input,
            out: &mut self.out,
            info: &self.info,
            timeout: &mut self.timeout,
            completer: &self.completer,
            shutting_down: false,
            tls: if self.compressed && self.tls == TlsState::Available {
                TlsState::Unavailable
            } else {
                self.tls
            },
            tls_info: None,
            start_tls: &mut self.started_tls,
            compressed: self.compressed,
            start_compress: &mut start_compress,
            timers: &mut self.timers,
        };
        let step = f(&mut self.session, &mut io);
        if start_compress.is_some() {
            self.compressed = true;
        }
        if self.started_tls {
            self.tls = TlsState::Active;
        }
        self.last_step = step;
        step
    }

    /// Call `on_open`.
    pub fn open(&mut self) -> Step {
        self.call(|s, io| s.on_open(io))
    }

    /// Append bytes to the input and call `on_input`.
    pub fn send(&mut self, bytes: &[u8]) -> Step {
        self.input.extend(bytes);
        self.call(|s, io| s.on_input(io))
    }

    /// Wait up to `timeout` for one completion; deliver it (then `on_input`
    /// if input is buffered). `None` if nothing arrived.
    pub fn wait_done(&mut self, timeout: Duration) -> Option<Step> {
        let (_, done) = self.rx.recv_timeout(timeout).ok()?;
        let mut step = self.call(|s, io| s.on_done(done, io));
        if step == Step::Continue && !self.input.is_empty() {
            step = self.call(|s, io| s.on_input(io));
        }
        Some(step)
    }

    /// Deliver completions until none arrives within `timeout`.
    pub fn settle(&mut self, timeout: Duration) -> Step {
        let mut step = self.last_step;
        while let Some(s) = self.wait_done(timeout) {
            step = s;
        }
        step
    }

    /// Deliver every value scheduled with `Io::complete_after` at once
    /// (the driver does not wait for the delays).
    pub fn fire_timers(&mut self) -> Step {
        let mut step = self.last_step;
        for (_, done) in std::mem::take(&mut self.timers) {
            step = self.call(|s, io| s.on_done(done, io));
        }
        step
    }

    /// Call `on_timeout`.
    pub fn timeout(&mut self) {
        self.call(|s, io| {
            s.on_timeout(io);
            Step::Close
        });
    }

    /// Call `on_shutdown`.
    pub fn shutdown(&mut self) -> Step {
        self.call(|s, io| s.on_shutdown(io))
    }

    /// Take everything the session has queued so far.
    pub fn take_output(&mut self) -> Vec<u8> {
        let v = self.out.as_slice().to_vec();
        self.out.advance(v.len());
        v
    }

    /// The idle timeout the session last set.
    pub fn current_timeout(&self) -> Duration {
        self.timeout
    }
}

/// A rustls client configuration that trusts exactly the certificates in
/// `cert_pem` (e.g. from [`crate::tls::self_signed`]): for tests that talk
/// TLS to a server.
///
/// # Panics
/// If the PEM holds no usable certificate (tests only).
#[allow(clippy::expect_used)]
pub fn tls_client_config(cert_pem: &str) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(cert_pem.as_bytes()) {
        roots
            .add(cert.expect("certificate PEM"))
            .expect("trusted certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}
