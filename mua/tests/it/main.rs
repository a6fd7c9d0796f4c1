//! mua end to end against minimail's own servers (smtpd + imapd over one
//! mailstore, on 127.0.0.1 ephemeral ports): the `mua` binary is run as a
//! user would, and its output, exit codes and the stored mail are checked.

#![allow(clippy::unwrap_used)]

mod cache;
mod errors;
mod roundtrip;
mod sieve;
mod tls;
mod tui;
mod util;
mod wait;
