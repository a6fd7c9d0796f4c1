//! Error kinds of the client and the process exit codes they map to.
//!
//! Every failure a user can meet is one `MuaError` variant; `main` turns it
//! into a distinct exit status (documented in `mua --help`) so scripts can
//! tell "cannot connect" from "authentication refused" without parsing text.

use std::io;

/// Exit status for a successful run.
pub const EXIT_OK: u8 = 0;
/// Exit status for an unexpected failure (I/O on local files, protocol violation).
pub const EXIT_OTHER: u8 = 1;
/// Exit status for bad command-line usage or missing account settings.
pub const EXIT_USAGE: u8 = 2;
/// Exit status when the SMTP or IMAP server cannot be reached, or TLS with
/// it cannot be set up.
pub const EXIT_CONNECT: u8 = 3;
/// Exit status when the server refuses the credentials.
pub const EXIT_AUTH: u8 = 4;
/// Exit status when a mailbox, UID or attachment does not exist.
pub const EXIT_NOT_FOUND: u8 = 5;
/// Exit status when the server refuses the message or command.
pub const EXIT_REFUSED: u8 = 6;

/// The help text section listing exit codes (shown by `mua --help`).
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  other error (local I/O, protocol violation by the server)
  2  usage error (bad arguments, missing account settings)
  3  cannot connect to the SMTP/IMAP server (refused, unreachable, timed out),
     or cannot secure the connection (untrusted certificate: see --cafile;
     --tls starttls but the server does not offer STARTTLS)
  4  authentication refused
  5  no such mailbox, UID or attachment
  6  message or command refused by the server (its reply is printed)";

/// A failure with a user-facing message and a distinct exit code.
#[derive(Debug, thiserror::Error)]
pub enum MuaError {
    /// Bad arguments or missing configuration.
    #[error("{0}")]
    Usage(String),
    /// The server could not be reached.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// The `host:port` we tried.
        addr: String,
        /// What the OS said.
        reason: io::Error,
    },
    /// TLS could not be set up: handshake, certificate or STARTTLS refused.
    #[error("cannot secure the connection: {0}")]
    Tls(String),
    /// The server refused the credentials (SMTP 535, IMAP LOGIN NO).
    #[error("authentication refused: {0}")]
    Auth(String),
    /// A mailbox, UID or attachment does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The server refused a message or command; the text is its reply.
    #[error("refused by server: {0}")]
    Refused(String),
    /// The server broke the protocol or the connection failed mid-way.
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl MuaError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            MuaError::Usage(_) => EXIT_USAGE,
            MuaError::Connect { .. } | MuaError::Tls(_) => EXIT_CONNECT,
            MuaError::Auth(_) => EXIT_AUTH,
            MuaError::NotFound(_) => EXIT_NOT_FOUND,
            MuaError::Refused(_) => EXIT_REFUSED,
            MuaError::Protocol(_) => EXIT_OTHER,
        }
    }
}

impl From<io::Error> for MuaError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                MuaError::Protocol("timed out waiting for the server".into())
            }
            io::ErrorKind::UnexpectedEof => {
                MuaError::Protocol("server closed the connection".into())
            }
            _ => MuaError::Protocol(format!("connection failed: {e}")),
        }
    }
}

/// Result type of the protocol clients.
pub type Result<T> = std::result::Result<T, MuaError>;

/// Exit code for any error reaching `main`: a `MuaError` keeps its own code.
pub fn exit_code_of(err: &anyhow::Error) -> u8 {
    match err.downcast_ref::<MuaError>() {
        Some(e) => e.exit_code(),
        None => EXIT_OTHER,
    }
}
