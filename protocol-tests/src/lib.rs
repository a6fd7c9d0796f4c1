//! protocol-tests: a conformance suite that grades any SMTP/IMAP server.
//!
//! Cases are transcripts (`transcripts/{smtp,imap}/*.txt`, language in the
//! crate README) citing the RFC section they check. The runner speaks only
//! TCP: [`suite::run`] probes the server's capabilities, runs each selected
//! case on fresh connections ([`exec`]), and [`report`] prints the results.
//!
//! Layers: [`template`] (what is sent), [`pattern`] (what must come back),
//! [`transcript`] (the file parser), [`conn`] (blocking sockets with
//! deadlines), [`exec`] (one case), [`probe`] (capabilities, IMAP clean-up),
//! [`suite`] (selection, SKIP rules, run loop), [`report`] (text/TAP/JUnit).
//!
//! [`outbound`] is the section that grades an MTA's sending side: it is
//! code rather than transcripts, since it plays the remote server the MTA
//! delivers to (scripted replies, dropped connections, STARTTLS, DSN) and
//! grades what arrives, what is retried and what reports the sender gets.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod conn;
pub mod exec;
pub mod outbound;
pub mod pattern;
pub mod probe;
pub mod report;
pub mod suite;
pub mod template;
pub mod transcript;
