//! smtpd: the ESMTP receiver of minimail (RFC 5321, with PIPELINING
//! RFC 2920, SIZE RFC 1870, 8BITMIME RFC 6152, SMTPUTF8 RFC 6531, CHUNKING
//! RFC 3030 and ENHANCEDSTATUSCODES RFC 2034).
//!
//! Bytes flow one way: `netloop` frames lines, [`parse`] (nom, named after
//! the RFC 5321 §4.1 ABNF) and [`command`] turn a line into a typed
//! [`command::Command`], the [`session`] decides, the store commits on its
//! writer thread, and a typed [`reply::Reply`] is encoded back. [`data`]
//! reads message content; [`received`] writes the trace headers.
//!
//! Start a server with [`bind`] and run it with `netloop::Server::run`.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod command;
pub mod data;
mod deliver;
pub mod limits;
pub mod parse;
pub mod received;
pub mod reply;
pub mod service;
pub mod session;
mod transaction;

pub use service::SmtpService;
pub use session::SmtpSession;

use limits::Timeouts;
use std::io;
use std::net::SocketAddr;

/// Everything the receiver can be configured with. `Default` gives the
/// RFC 5321 limits, a 25 MiB size limit and the domain `localhost`.
#[derive(Debug, Clone)]
pub struct Config {
    /// Our name, used in the greeting and in Received headers.
    pub hostname: String,
    /// Domains we accept mail for (case-insensitive). Everything else is
    /// refused with 550 5.7.1: this is no open relay.
    pub domains: Vec<String>,
    /// Largest message accepted, in octets (advertised as SIZE).
    pub max_message_size: usize,
    /// Recipients per message; the next one gets 452 4.5.3.
    pub max_recipients: usize,
    /// Longest command line, CRLF included.
    pub max_command_line: usize,
    /// Longest DATA text line, CRLF included.
    pub max_text_line: usize,
    /// How long to wait for the client.
    pub timeouts: Timeouts,
    /// Log every session's dialogue as `C:`/`S:` lines (info level).
    pub trace: bool,
    /// Event loop settings: connection limits, buffers, shutdown grace.
    pub net: netloop::Config,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            hostname: "localhost".into(),
            domains: vec!["localhost".into()],
            max_message_size: limits::MAX_MESSAGE_SIZE,
            max_recipients: limits::MAX_RECIPIENTS,
            max_command_line: limits::MAX_COMMAND_LINE,
            max_text_line: limits::MAX_TEXT_LINE,
            timeouts: Timeouts::default(),
            trace: false,
            net: netloop::Config::default(),
        }
    }
}

impl Config {
    /// True if `domain` is one we receive mail for.
    pub fn is_local_domain(&self, domain: &str) -> bool {
        self.domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
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
