//! managesieve: the ManageSieve server of minimail (RFC 5804), through
//! which users' clients (Thunderbird's Sieve add-on, Roundcube's
//! managesieve plugin, `sieve-connect`, `mua sieve`) list, upload, check,
//! activate, download, rename and delete their Sieve scripts.
//!
//! Bytes flow one way, as in smtpd and imapd: netloop reads, the session's
//! framer (`session.rs`) gathers one command's lines and literal octets
//! under the limits below, [`parse`] (nom) turns them into a typed
//! [`parse::Command`], the session decides (`session.rs`, `auth.rs`),
//! store work runs on store threads (`ops.rs`: every script is compiled
//! with `mailsieve` on a reader thread before the writer stores it, and a
//! script that does not compile is answered `NO` with the compiler's
//! message, nothing stored or activated), and a typed
//! [`response::Answer`] is encoded back.
//!
//! Limits: command lines [`MAX_LINE`] octets; a literal larger than
//! `mailstore::MAX_SCRIPT_SIZE` is read and dropped, then answered
//! `NO (QUOTA/MAXSIZE)`, and one over [`MAX_DISCARD`] ends the session
//! (`BYE`); `mailstore::MAX_SCRIPTS` scripts per user
//! (`NO (QUOTA/MAXSCRIPTS)`); [`Config::max_auth_failures`] failed
//! AUTHENTICATEs per connection (then `BYE`), each answered after the
//! shared [`netloop::Throttle`]'s delay; the idle [`Config::timeout`]
//! (`BYE`); connections in total and per address through netloop.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod auth;
mod ops;
pub mod parse;
pub mod response;
mod session;

pub use session::{SieveDone, SieveSession};

use netloop::ConnInfo;
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// Longest command line (or SASL response line), CRLF included; literal
/// octets do not count.
pub const MAX_LINE: usize = 8 * 1024;

/// Literal octets past `mailstore::MAX_SCRIPT_SIZE` that are read and
/// dropped to answer a too-large upload with a clean `NO`; a literal
/// announced larger than this ends the session with `BYE`.
pub const MAX_DISCARD: u64 = 16 * 1024 * 1024;

/// Failed AUTHENTICATEs one connection may make before `BYE`.
pub const MAX_AUTH_FAILURES: usize = 3;

/// Default idle timeout: ManageSieve clients keep a session open while
/// their user edits a script.
pub const TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// Everything the ManageSieve server is configured with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Our name (in the greeting's IMPLEMENTATION text and logs).
    pub hostname: String,
    /// Log every session's dialogue as `C:`/`S:` lines (credentials and
    /// script bodies elided).
    pub trace: bool,
    /// Allow PLAIN/LOGIN on unencrypted connections from non-local
    /// clients (as smtpd and imapd: otherwise only over TLS or from the
    /// server's own address).
    pub allow_plaintext_auth: bool,
    /// Failed-login throttling per client address (shared with the other
    /// servers).
    pub throttle: Arc<netloop::Throttle>,
    /// Longest command line, CRLF included.
    pub max_line: usize,
    /// Failed AUTHENTICATEs per connection before `BYE`.
    pub max_auth_failures: usize,
    /// Idle timeout.
    pub timeout: Duration,
    /// Event loop settings: connection limits, TLS, buffers.
    pub net: netloop::Config,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            hostname: "localhost".into(),
            trace: false,
            allow_plaintext_auth: false,
            throttle: netloop::Throttle::new(netloop::ThrottleConfig::default()),
            max_line: MAX_LINE,
            max_auth_failures: MAX_AUTH_FAILURES,
            timeout: TIMEOUT,
            net: netloop::Config {
                max_per_ip: 20,
                idle_timeout: TIMEOUT,
                ..netloop::Config::default()
            },
        }
    }
}

/// What every session of one server shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) store: mailstore::Store,
}

/// The ManageSieve [`netloop::Service`].
#[derive(Debug, Clone)]
pub struct SieveService {
    shared: Arc<Shared>,
}

impl SieveService {
    /// A service over `store`.
    pub fn new(config: Config, store: mailstore::Store) -> SieveService {
        SieveService {
            shared: Arc::new(Shared { config, store }),
        }
    }

    /// Serve new connections with `config` from now on (a reload).
    pub fn set_config(&mut self, config: Config) {
        self.shared = Arc::new(Shared {
            config,
            store: self.shared.store.clone(),
        });
    }
}

impl netloop::Service for SieveService {
    type Session = SieveSession;

    fn open(&mut self, info: &ConnInfo) -> SieveSession {
        SieveSession::new(Arc::clone(&self.shared), info)
    }

    fn busy_reply(&self) -> Vec<u8> {
        let mut out = Vec::new();
        response::Status::bye("Too many connections; try again later")
            .with(response::Code::TryLater)
            .encode(&mut out);
        out
    }

    /// ALPACA: TLS clients naming another protocol by ALPN are refused.
    fn alpn(&self) -> &'static [&'static [u8]] {
        &[b"managesieve"]
    }
}

/// Bind the ManageSieve service on `listen` (port 0 picks a free port).
///
/// # Errors
/// When an address cannot be bound (the message names it).
pub fn bind(
    listen: &[netloop::Listener],
    config: Config,
    store: mailstore::Store,
) -> io::Result<netloop::Server<SieveService>> {
    let net = config.net.clone();
    netloop::Server::bind_listeners(listen, SieveService::new(config, store), net)
}
