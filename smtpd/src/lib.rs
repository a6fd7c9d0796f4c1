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

pub use limits::Config;
pub use service::{bind, SmtpService};
pub use session::SmtpSession;
