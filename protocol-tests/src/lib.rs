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

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod conn;
pub mod exec;
pub mod pattern;
pub mod probe;
pub mod report;
pub mod suite;
pub mod template;
pub mod transcript;
