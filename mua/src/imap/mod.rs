//! mua's own IMAP4rev1 client (RFC 3501): wire parser, FETCH data types,
//! modified UTF-7 names and the blocking `Client`. Shares no server code.

pub mod client;
pub mod commands;
pub mod fetch;
pub mod parse;
pub mod utf7;

pub use client::{uid_set, Arg, Client};
pub use commands::{MailboxInfo, Selection};
pub use fetch::{Addr, BodyStructure, Envelope, FetchData};

#[cfg(test)]
mod scripted_tests;
