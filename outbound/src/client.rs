//! A blocking SMTP client (RFC 5321) for relaying mail to other servers:
//! ESMTP with PIPELINING (RFC 2920), STARTTLS (RFC 3207), SIZE (RFC 1870),
//! 8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531), DSN (RFC 3461) and AUTH
//! PLAIN/LOGIN (RFC 4954) for smarthosts.
//!
//! A [`Session`] is one connection: [`Session::connect`] reads the greeting,
//! says EHLO, starts TLS per [`TlsMode`] and authenticates; each
//! [`Session::send`] is one mail transaction with a result per recipient.
//! Everything blocks on a `std::net::TcpStream`; the delivery engine runs
//! sessions on its own worker threads.
//!
//! A remote server is untrusted: every read has a deadline (the whole reply
//! must arrive within the timeout, not merely each byte), reply lines are
//! bounded ([`MAX_LINE`]) and so is the number of lines per reply
//! ([`MAX_REPLY_LINES`]).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

mod encode;
mod reply;
mod session;
mod tls;
mod transaction;

pub use session::Session;

/// Longest reply line accepted, CRLF included (RFC 5321 §4.5.3.1.5 says
/// 512; real servers send longer, nobody needs 4 KiB).
pub const MAX_LINE: usize = 4096;
/// Most lines accepted in one reply (an EHLO reply has a dozen or so).
pub const MAX_REPLY_LINES: usize = 100;
/// Commands written before their replies are read, with PIPELINING. Bounded
/// so that neither side's socket buffers fill while the other is writing.
pub(crate) const PIPELINE_BATCH: usize = 100;
/// Body bytes handed to the socket per write.
pub(crate) const WRITE_CHUNK: usize = 64 * 1024;
/// How long `quit` waits for the 221.
pub(crate) const QUIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether and how to use STARTTLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsMode {
    /// Never start TLS.
    None,
    /// STARTTLS when the server offers it, accepting any certificate (RFC
    /// 3207 opportunistic TLS: protection from passive eavesdropping only).
    /// If the handshake fails, the session reconnects without TLS.
    #[default]
    Opportunistic,
    /// STARTTLS must succeed and the certificate must verify, against the
    /// system roots plus [`ClientConfig::extra_ca`], for the MX host name.
    Required,
}

/// How sessions behave. `Debug` leaves out the password.
#[derive(Clone)]
pub struct ClientConfig {
    /// Our host name, said in EHLO/HELO.
    pub helo: String,
    pub tls: TlsMode,
    /// PEM file of extra trusted CA certificates (for [`TlsMode::Required`]).
    pub extra_ca: Option<PathBuf>,
    /// User name and password for AUTH PLAIN (LOGIN if only LOGIN is
    /// offered), for a smarthost. Only sent over TLS, or to a loopback
    /// address.
    pub auth: Option<(String, String)>,
    /// TCP connect timeout (default 30 s).
    pub connect_timeout: Duration,
    /// Greeting, EHLO, MAIL, RCPT, DATA and other replies, and each write
    /// (default 300 s, RFC 5321 §4.5.3.2).
    pub command_timeout: Duration,
    /// The reply to the final dot (default 600 s).
    pub data_timeout: Duration,
    /// Log the dialogue (`--trace`) at info level under the target
    /// `outbound::trace`: commands and replies, credentials and message
    /// content elided.
    pub trace: bool,
}

impl ClientConfig {
    /// The defaults, saying `helo` in EHLO.
    pub fn new(helo: impl Into<String>) -> ClientConfig {
        ClientConfig {
            helo: helo.into(),
            tls: TlsMode::default(),
            extra_ca: None,
            auth: None,
            connect_timeout: Duration::from_secs(30),
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(600),
            trace: false,
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("helo", &self.helo)
            .field("tls", &self.tls)
            .field("extra_ca", &self.extra_ca)
            .field("auth_user", &self.auth.as_ref().map(|(user, _)| user))
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("data_timeout", &self.data_timeout)
            .finish()
    }
}

/// One SMTP reply. A multi-line reply's lines are joined with a space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// RFC 3463 enhanced status code (e.g. `5.1.1`) when the server gave one.
    pub enhanced: Option<String>,
    pub text: String,
}

impl Reply {
    pub(crate) fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    pub(crate) fn is_permanent(&self) -> bool {
        (500..600).contains(&self.code)
    }

    /// A reply made up here, not received (e.g. SMTPUTF8 not offered).
    pub(crate) fn local(code: u16, enhanced: &str, text: &str) -> Reply {
        Reply {
            code,
            enhanced: Some(enhanced.to_string()),
            text: text.to_string(),
        }
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.enhanced {
            Some(enhanced) => write!(f, "{} {} {}", self.code, enhanced, self.text),
            None => write!(f, "{} {}", self.code, self.text),
        }
    }
}

/// A failure of the whole connection or transaction; the text names the
/// server and includes its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Temporary(String),
    Permanent(String),
}

impl Failure {
    pub fn is_permanent(&self) -> bool {
        matches!(self, Failure::Permanent(_))
    }

    pub fn text(&self) -> &str {
        match self {
            Failure::Temporary(text) | Failure::Permanent(text) => text,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

impl std::error::Error for Failure {}

/// One message to send.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    /// Reverse path without angle brackets; `""` for the null sender.
    pub from: &'a str,
    pub rcpts: &'a [Rcpt<'a>],
    /// The whole message, header and body. CRLF line ends; bare LF (and bare
    /// CR) are sent as CRLF. Not dot-stuffed: the client does that.
    pub body: &'a [u8],
    /// DSN `RET`: `"FULL"` or `"HDRS"` (sent only if the server offers DSN).
    pub ret: Option<&'a str>,
    /// DSN `ENVID`, decoded; the client xtext-encodes it.
    pub envid: Option<&'a str>,
}

/// One recipient.
#[derive(Debug, Clone, Copy)]
pub struct Rcpt<'a> {
    /// Forward path without angle brackets.
    pub addr: &'a str,
    /// DSN `NOTIFY`: `"NEVER"` or a comma list of `SUCCESS`, `FAILURE`,
    /// `DELAY`.
    pub notify: Option<&'a str>,
    /// DSN `ORCPT`, decoded: `"rfc822;user@example.org"` (a value without
    /// `;` is taken as an rfc822 address); the client xtext-encodes the
    /// address part.
    pub orcpt: Option<&'a str>,
}

/// What became of one recipient in [`Session::send`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptResult {
    /// The server took responsibility for the message (its reply to the final
    /// dot).
    Delivered(Reply),
    /// Try again later (the reply that said so: RCPT, MAIL or final dot).
    Temporary(Reply),
    /// Bounce (the reply that said so).
    Permanent(Reply),
}

impl RcptResult {
    /// The reply behind the result.
    pub fn reply(&self) -> &Reply {
        match self {
            RcptResult::Delivered(reply)
            | RcptResult::Temporary(reply)
            | RcptResult::Permanent(reply) => reply,
        }
    }

    pub(crate) fn from_final(reply: &Reply) -> RcptResult {
        if reply.is_positive() {
            RcptResult::Delivered(reply.clone())
        } else {
            RcptResult::refused(reply)
        }
    }

    /// A non-2xx reply: 5xx is permanent, anything else temporary.
    pub(crate) fn refused(reply: &Reply) -> RcptResult {
        if reply.is_permanent() {
            RcptResult::Permanent(reply.clone())
        } else {
            RcptResult::Temporary(reply.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_safety() {
        fn send<T: Send>() {}
        fn send_sync<T: Send + Sync>() {}
        send::<Session>();
        send_sync::<ClientConfig>();
        send_sync::<crate::route::Resolver>();
    }
}
