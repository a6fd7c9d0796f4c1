//! smtpd: the ESMTP receiver of minimail (RFC 5321, with PIPELINING
//! RFC 2920, SIZE RFC 1870, 8BITMIME RFC 6152, SMTPUTF8 RFC 6531, CHUNKING
//! RFC 3030, ENHANCEDSTATUSCODES RFC 2034, STARTTLS RFC 3207 and AUTH
//! RFC 4954 with PLAIN and LOGIN).
//!
//! Bytes flow one way: `netloop` frames lines, [`parse`] (nom, named after
//! the RFC 5321 §4.1 ABNF) and [`command`] turn a line into a typed
//! [`command::Command`], the [`session`] decides, the store commits on its
//! writer thread, and a typed [`reply::Reply`] is encoded back. [`data`]
//! reads message content; [`received`] writes the trace headers.
//!
//! Start a server with [`bind`] (or [`bind_listeners`] for implicit-TLS
//! listeners too, RFC 8314) and run it with `netloop::Server::run`.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod auth;
pub mod command;
pub mod data;
mod deliver;
mod filter;
pub mod limits;
pub mod parse;
pub mod received;
mod recipients;
pub mod reply;
pub mod sender;
pub mod service;
pub mod session;
mod tls;
mod transaction;

pub use limits::Config;
pub use service::{bind, bind_listeners, SmtpService};
pub use session::SmtpSession;
