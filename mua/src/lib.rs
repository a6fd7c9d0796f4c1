//! mua: minimail's terminal mail client, usable with any standard server.
//!
//! Layout: `cli` (clap definition, account context) → `cmd/<verb>.rs` (one
//! file per subcommand) → protocol clients `smtp` (RFC 5321) and `imap/`
//! (RFC 3501) over blocking sockets (`net`), secured by `tls` (RFC 3207,
//! RFC 3501 §6.2.1, RFC 8314), and `sieve`, a ManageSieve client
//! (RFC 5804) for `mua sieve`. Message building is `compose`
//! (mail-builder), reading is `message` (mailparse) and `html`; `query`
//! maps the search language to IMAP SEARCH keys; `tui/` is the ratatui
//! client. `model/` holds the message and mailbox rows both `cmd/` and
//! `tui/` show (and the IMAP queries that fill them), below both. mua
//! shares no code with the servers.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod cache;
pub mod cli;
pub mod cmd;
pub mod compose;
pub mod config;
pub mod dates;
pub mod editor;
pub mod error;
pub mod html;
pub mod imap;
pub mod message;
pub mod model;
pub mod net;
pub mod query;
pub mod sieve;
pub mod smtp;
pub mod tls;
#[cfg(test)]
mod tls_tests;
pub mod tui;
pub mod words;
