//! Server wiring: [`Config`], the netloop [`ImapService`], [`bind`] and
//! [`bind_listeners`] (plain listeners with STARTTLS, RFC 3501 §6.2.1, and
//! implicit-TLS ones, RFC 8314 §3.3).

use crate::framer::Limits;
use crate::limits;
use crate::session::{ImapSession, Shared};
use crate::view::hub::Hub;
use mailstore::Store;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Server settings. Every limit has a default.
#[derive(Debug, Clone)]
pub struct Config {
    /// Log each session's dialogue to stderr (`C:`/`S:` lines).
    pub trace: bool,
    /// Largest literal accepted (APPEND message size limit).
    pub max_literal: u64,
    /// Longest command line (without literals).
    pub max_line: usize,
    /// Idle time before autologout (RFC 3501 §5.4: at least 30 minutes);
    /// also the IDLE timeout.
    pub autologout: Duration,
    /// Silence during IDLE after which `* OK Still here` is sent (zero:
    /// never).
    pub idle_keepalive: Duration,
    /// Octets per second a command with literals must average once it
    /// has taken longer than `net.command_timeout` (slow senders).
    pub min_upload_rate: u64,
    /// Accept LOGIN / AUTHENTICATE on plaintext connections from
    /// non-local clients (RFC 3501 §6.2.3 LOGINDISABLED otherwise).
    pub allow_plaintext_auth: bool,
    /// Failed-login delays and temporary refusals per client address
    /// (shared with smtpd under `minimail up`).
    pub throttle: Arc<netloop::Throttle>,
    /// Mailboxes one user may have; CREATE/RENAME beyond: `NO [LIMIT]`.
    pub max_mailboxes: usize,
    /// Longest mailbox name in octets (as sent, modified UTF-7).
    pub max_mailbox_name: usize,
    /// Deepest mailbox hierarchy (levels separated by `/`).
    pub max_mailbox_depth: usize,
    /// Event loop settings: connection limits (total, per IP), the
    /// per-command deadline against slow senders (`command_timeout`),
    /// buffered input per connection, and TLS (`tls`: the certificate for
    /// STARTTLS and implicit-TLS listeners; `None` disables both).
    pub net: netloop::Config,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            trace: false,
            max_literal: limits::MAX_LITERAL,
            max_line: limits::MAX_LINE,
            autologout: limits::AUTOLOGOUT,
            idle_keepalive: limits::IDLE_KEEPALIVE,
            min_upload_rate: limits::MIN_UPLOAD_RATE,
            allow_plaintext_auth: false,
            throttle: netloop::Throttle::new(netloop::ThrottleConfig::default()),
            max_mailboxes: limits::MAX_MAILBOXES,
            max_mailbox_name: limits::MAX_MAILBOX_NAME,
            max_mailbox_depth: limits::MAX_MAILBOX_DEPTH,
            net: netloop::Config {
                idle_timeout: limits::AUTOLOGOUT,
                max_per_ip: limits::MAX_PER_IP,
                command_timeout: limits::COMMAND_TIMEOUT,
                ..netloop::Config::default()
            },
        }
    }
}

impl Config {
    /// Framer limits for a logged-in session (`authenticated`), or for one
    /// that has not logged in yet: that only needs literals for
    /// credentials, so it may not make us buffer a large one.
    pub(crate) fn framer_limits(&self, authenticated: bool) -> Limits {
        let max_literal = if authenticated {
            self.max_literal
        } else {
            self.max_literal.min(limits::PREAUTH_MAX_LITERAL)
        };
        let slack = if authenticated {
            limits::COMMAND_SLACK
        } else {
            limits::PREAUTH_MAX_LITERAL as usize
        };
        Limits {
            max_line: self.max_line,
            max_literal,
            max_command: usize::try_from(max_literal)
                .unwrap_or(usize::MAX)
                .saturating_add(slack),
        }
    }
}

/// The netloop service: one [`ImapSession`] per connection.
pub struct ImapService {
    shared: Arc<Shared>,
}

impl ImapService {
    /// A service over `store`; starts the notification hub and timer.
    pub fn new(config: Config, store: Store) -> Self {
        let hub = Hub::start(&store);
        ImapService {
            shared: Arc::new(Shared { store, config, hub }),
        }
    }
}

impl ImapService {
    /// Serve new connections with `config` from now on (a reload); open
    /// sessions keep the settings they started with, and every session
    /// goes on sharing one notification hub.
    pub fn set_config(&mut self, config: Config) {
        self.shared = Arc::new(Shared {
            store: self.shared.store.clone(),
            config,
            hub: Arc::clone(&self.shared.hub),
        });
    }

    /// The settings new connections get.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }
}

impl Drop for ImapService {
    fn drop(&mut self) {
        self.shared.hub.stop();
    }
}

impl netloop::Service for ImapService {
    type Session = ImapSession;

    fn open(&mut self, info: &netloop::ConnInfo) -> ImapSession {
        ImapSession::new(Arc::clone(&self.shared), info)
    }

    fn busy_reply(&self) -> Vec<u8> {
        b"* BYE Too many connections\r\n".to_vec()
    }

    /// ALPACA: TLS clients naming another protocol by ALPN are refused.
    fn alpn(&self) -> &'static [&'static [u8]] {
        &[b"imap"]
    }

    fn protocol(&self, implicit_tls: bool) -> metrics::Protocol {
        if implicit_tls {
            metrics::Protocol::Imaps
        } else {
            metrics::Protocol::Imap
        }
    }
}

/// Bind the IMAP server on `addrs` over `store`; call `.run()` to serve.
///
/// # Errors
/// Bind failures, naming the address.
pub fn bind(
    addrs: &[SocketAddr],
    config: Config,
    store: Store,
) -> io::Result<netloop::Server<ImapService>> {
    let net = config.net.clone();
    netloop::Server::bind(addrs, ImapService::new(config, store), net)
}

/// Bind the IMAP server on plain and implicit-TLS listeners over `store`
/// (implicit TLS needs `config.net.tls`); call `.run()` to serve.
///
/// # Errors
/// Bind failures, naming the address; an implicit-TLS listener without a
/// certificate.
pub fn bind_listeners(
    listen: &[netloop::Listener],
    config: Config,
    store: Store,
) -> io::Result<netloop::Server<ImapService>> {
    let net = config.net.clone();
    netloop::Server::bind_listeners(listen, ImapService::new(config, store), net)
}
