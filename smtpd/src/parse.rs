//! The command grammar of RFC 5321 §4.1.2 (with the SMTPUTF8 extensions of
//! RFC 6531 §3.3), as nom parsers over one framed command line.
//!
//! Each function is named after the ABNF rule it implements and quotes the
//! rule. The input is a complete line without its CRLF, so every parser uses
//! nom's `complete` combinators. The results are plain values ([`Mailbox`],
//! [`ReversePath`], [`ForwardPath`], [`EsmtpParam`]); turning them into typed
//! commands (and deciding which reply a failure earns) is `command.rs`'s job.
//!
//! Bytes of 0x80 and above are accepted wherever RFC 6531 allows
//! `UTF8-non-ascii`; they must form valid UTF-8 or the value is refused.
//!
//! The grammar is in three files, re-exported here so that callers write
//! `parse::mail_args`, `parse::Mailbox` and so on:
//! - `parse/address.rs`: hosts, address literals, mailboxes and paths;
//! - `parse/params.rs`: ESMTP parameters (`esmtp-param`);
//! - `parse/verbs.rs`: the verb and each command's arguments.

mod address;
mod params;
mod verbs;

pub use address::*;
pub use params::*;
pub use verbs::*;

/// Parser input: the bytes of one command line.
pub type In<'a> = &'a [u8];

fn utf8(b: In<'_>) -> Result<String, std::str::Utf8Error> {
    std::str::from_utf8(b).map(str::to_owned)
}

#[cfg(test)]
mod roundtrip_tests;
#[cfg(test)]
mod tests;
