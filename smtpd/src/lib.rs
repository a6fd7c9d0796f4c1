//! smtpd: the ESMTP receiver of minimail (RFC 5321, with PIPELINING
//! RFC 2920, SIZE RFC 1870, 8BITMIME RFC 6152, SMTPUTF8 RFC 6531, CHUNKING
//! RFC 3030 and ENHANCEDSTATUSCODES RFC 2034).
//!
//! Bytes flow one way: `netloop` frames lines, `parse` (nom, named after
//! the RFC 5321 §4.1 ABNF) and `command` turn a line into a typed
//! [`command::Command`], the session decides, the store commits, and a typed
//! [`reply::Reply`] is encoded back. `data` reads message content.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod command;
pub mod data;
pub mod limits;
pub mod parse;
pub mod reply;
