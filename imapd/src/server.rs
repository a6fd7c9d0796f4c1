//! Server wiring: [`Config`], the netloop [`ImapService`] and [`bind`].

use crate::framer::Limits;
use crate::hub::{Delayer, Hub};
use crate::limits;
use crate::session::{ImapSession, Shared};
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
    /// Pause before answering a failed login.
    pub auth_failure_delay: Duration,
    /// Event loop settings (connection limits etc.).
    pub net: netloop::Config,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            trace: false,
            max_literal: limits::MAX_LITERAL,
            max_line: limits::MAX_LINE,
            autologout: limits::AUTOLOGOUT,
            auth_failure_delay: limits::AUTH_FAILURE_DELAY,
            net: netloop::Config {
                idle_timeout: limits::AUTOLOGOUT,
                ..netloop::Config::default()
            },
        }
    }
}

impl Config {
    pub(crate) fn framer_limits(&self) -> Limits {
        Limits {
            max_line: self.max_line,
            max_literal: self.max_literal,
            max_command: usize::try_from(self.max_literal)
                .unwrap_or(usize::MAX)
                .saturating_add(limits::COMMAND_SLACK),
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
            shared: Arc::new(Shared {
                store,
                config,
                hub,
                delayer: Delayer::start(),
            }),
        }
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
        ImapSession::new(Arc::clone(&self.shared), info.id)
    }

    fn busy_reply(&self) -> Vec<u8> {
        b"* BYE Too many connections\r\n".to_vec()
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
