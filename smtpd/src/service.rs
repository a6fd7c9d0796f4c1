//! The session factory netloop calls on accept, the state every session
//! shares (configuration and the store handle), and [`bind`] /
//! [`bind_listeners`], which put them on listening sockets (the latter with
//! implicit-TLS listeners too, RFC 8314 §3.3: port 465 "submissions").
//!
//! A connection refused because of the connection limit gets
//! `421 4.7.0` (RFC 5321 §3.8: 421 when the service is not available).

use crate::reply::Reply;
use crate::session::SmtpSession;
use crate::Config;
use netloop::ConnInfo;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

/// What every session of one server shares.
#[derive(Debug)]
pub struct Shared {
    /// The configuration.
    pub config: Config,
    /// The mailbox store.
    pub store: mailstore::Store,
    /// Recent RCPT lookups.
    pub(crate) recipients: crate::recipients::RecipientCache,
    /// Users last seen with an active Sieve script.
    pub(crate) sieve_users: Arc<crate::recipients::SieveUsers>,
}

/// The SMTP [`netloop::Service`]: creates one [`SmtpSession`] per connection.
#[derive(Debug, Clone)]
pub struct SmtpService {
    shared: Arc<Shared>,
}

impl SmtpService {
    /// A service delivering into `store`.
    pub fn new(config: Config, store: mailstore::Store) -> SmtpService {
        SmtpService {
            shared: Arc::new(Shared {
                config,
                store,
                recipients: Default::default(),
                sieve_users: Default::default(),
            }),
        }
    }

    /// Serve new connections with `config` from now on (a reload); open
    /// sessions keep the settings they started with.
    pub fn set_config(&mut self, config: Config) {
        self.shared = Arc::new(Shared {
            config,
            store: self.shared.store.clone(),
            recipients: Default::default(),
            sieve_users: self.shared.sieve_users.clone(),
        });
    }

    /// The settings new connections get.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// A session for a connection (used by netloop and by tests that drive
    /// sessions without sockets).
    pub fn session(&self, info: &ConnInfo) -> SmtpSession {
        SmtpSession::new(Arc::clone(&self.shared), info)
    }
}

impl netloop::Service for SmtpService {
    type Session = SmtpSession;

    fn open(&mut self, info: &ConnInfo) -> SmtpSession {
        self.session(info)
    }

    fn busy_reply(&self) -> Vec<u8> {
        Reply::too_many_connections(&self.shared.config.hostname).to_bytes()
    }

    /// ALPACA: TLS clients naming another protocol by ALPN are refused.
    fn alpn(&self) -> &'static [&'static [u8]] {
        &[b"smtp"]
    }

    fn protocol(&self, implicit_tls: bool) -> metrics::Protocol {
        match (self.shared.config.submission, implicit_tls) {
            (_, true) => metrics::Protocol::Smtps,
            (true, false) => metrics::Protocol::Submission,
            (false, false) => metrics::Protocol::Smtp,
        }
    }
}

/// Bind the SMTP service on `addrs` (port 0 picks a free port). Run the
/// returned server with `run()`; see `local_addrs()` for the bound ports.
///
/// # Errors
/// When an address cannot be bound (the message names it).
pub fn bind(
    addrs: &[SocketAddr],
    config: Config,
    store: mailstore::Store,
) -> io::Result<netloop::Server<SmtpService>> {
    let net = config.net.clone();
    netloop::Server::bind(addrs, SmtpService::new(config, store), net)
}

/// Bind the SMTP service on plain and implicit-TLS listeners (see [`bind`]).
/// Implicit-TLS listeners need `config.net.tls`.
///
/// # Errors
/// When an address cannot be bound, or an implicit-TLS listener is asked
/// for without a certificate.
pub fn bind_listeners(
    listen: &[netloop::Listener],
    config: Config,
    store: mailstore::Store,
) -> io::Result<netloop::Server<SmtpService>> {
    let net = config.net.clone();
    netloop::Server::bind_listeners(listen, SmtpService::new(config, store), net)
}
