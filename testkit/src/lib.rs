//! Helpers shared by the integration tests of the server crates (smtpd,
//! imapd, mua, protocol-tests, the `minimail` binary): one copy instead of
//! one per harness. A dev-dependency only; nothing here ships in a server.
//!
//! - [`server`]: servers started in-process on loopback ports and stopped
//!   on drop ([`server::Running`]), and the `minimail` binary started as a
//!   child process ([`server::minimail_up`]).
//! - [`store`]: temporary stores with users and mail, and the damage
//!   helpers of the store-fault tests.
//! - [`net`]: TCP connections with read timeouts, from any source address.
//! - [`tls`]: self-signed test certificates and rustls client streams.
//! - [`smtp`], [`imap`]: line clients that panic on anything unexpected;
//!   [`lines`]: a fallible one for tests that must survive a server
//!   going away.
//! - [`process`]: running third-party tools and binaries.
//! - [`pg`]: a private PostgreSQL cluster (initdb + pg_ctl) on a loopback
//!   port, for the PostgreSQL backend's tests.
//! - [`dkim`]: DKIM verification by dkimpy, an independent implementation.
//! - [`scripted`]: a scripted remote SMTP server (replies, silences and
//!   dropped connections on cue) that records what it accepts, for the
//!   outbound delivery fault tests.
//!
//! Every helper panics on failure (it is test code): every socket read has
//! a timeout, so no test can hang on a server that stays silent.
#![allow(clippy::unwrap_used)]

pub mod dkim;
pub mod dns;
pub mod imap;
pub mod lines;
pub mod net;
pub mod pg;
pub mod process;
pub mod scripted;
pub mod server;
pub mod smtp;
pub mod store;
pub mod tls;
