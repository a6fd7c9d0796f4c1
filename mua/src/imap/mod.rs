//! mua's own IMAP4rev1 client (RFC 3501): command arguments (`args`:
//! quoted or literal), server responses (`response`) and their wire parser
//! (`parse`), FETCH data types (`fetch`), modified UTF-7 names (`utf7`),
//! the blocking `Client` (`client`) and its typed commands (`commands`).
//! Shares no server code.

pub mod args;
pub mod client;
pub mod commands;
pub mod fetch;
pub mod parse;
pub mod response;
pub mod utf7;

pub use args::{uid_set, Arg};
pub use client::Client;
pub use commands::{MailboxInfo, Selection};
pub use fetch::{Addr, BodyStructure, Envelope, FetchData};

#[cfg(test)]
mod scripted_tests;
