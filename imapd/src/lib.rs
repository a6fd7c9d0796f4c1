//! imapd: minimail's IMAP4rev1 server (RFC 3501) with the extensions real
//! clients expect (IDLE, UIDPLUS, MOVE, UNSELECT, NAMESPACE, ID, ENABLE,
//! LITERAL+, SPECIAL-USE, CHILDREN, CONDSTORE, SASL-IR).
//!
//! Bytes flow one way: netloop reads -> [`framer`] assembles one command
//! (literals included) -> [`parse`] makes a typed [`command::Command`] ->
//! the session executes it against mailstore on store threads -> typed
//! [`response`] values -> one serializer -> netloop writes.

pub mod command;
pub mod framer;
pub mod hub;
pub mod limits;
mod op;
pub mod parse;
pub mod response;
pub mod selection;
mod server;
pub mod session;
pub mod structure;
pub mod trace;
pub mod utf7;

pub use server::{bind, Config, ImapService};
pub use session::ImapSession;

/// The CAPABILITY list we advertise (after login as before: we have no TLS,
/// so LOGINDISABLED is never set; loopback-only by default).
pub const CAPABILITIES: &str = "IMAP4rev1 LITERAL+ SASL-IR IDLE UIDPLUS MOVE UNSELECT \
NAMESPACE ID ENABLE SPECIAL-USE CHILDREN CONDSTORE AUTH=PLAIN";

/// Whether `c` may appear in a tag (`ASTRING-CHAR` except `+`).
pub(crate) fn parse_is_tag_char(c: u8) -> bool {
    parse::is_tag_char(c)
}
