//! imapd: minimail's IMAP4rev1 server (RFC 3501) with the extensions real
//! clients expect (IDLE, UIDPLUS, MOVE, UNSELECT, NAMESPACE, ID, ENABLE,
//! LITERAL+, SPECIAL-USE, CHILDREN, CONDSTORE, QRESYNC, SASL-IR, SORT,
//! SORT=DISPLAY, THREAD=ORDEREDSUBJECT, THREAD=REFERENCES, ESEARCH,
//! SEARCHRES, CONTEXT=SEARCH, ESORT, CONTEXT=SORT, LIST-EXTENDED,
//! LIST-STATUS, NOTIFY, BINARY, MULTIAPPEND, CATENATE, URLAUTH,
//! URLAUTH=BINARY, COMPRESS=DEFLATE, STATUS=SIZE, WITHIN, SAVEDATE,
//! UNAUTHENTICATE, CREATE-SPECIAL-USE, PREVIEW, APPENDLIMIT, OBJECTID,
//! IMAP4rev2 (beside IMAP4rev1, by ENABLE), UTF8=ACCEPT, UIDONLY; IDLE
//! keepalives in `keepalive.rs`), STARTTLS (§6.2.1)
//! and implicit TLS (RFC 8314) through netloop, AUTHENTICATE PLAIN and
//! LOGIN, and LOGINDISABLED for plaintext credentials from non-local
//! clients (§6.2.3).
//!
//! Bytes flow one way: netloop reads -> [`framer`] assembles one command
//! (literals included) -> [`parse`] makes a typed [`command::Command`] ->
//! the session executes it against mailstore on store threads -> typed
//! [`response`] values -> one serializer -> netloop writes.

pub mod command;
mod conn;
pub mod cte;
pub mod framer;
mod input;
mod keepalive;
pub mod limits;
pub mod objectid;
mod op;
pub mod parse;
pub mod response;
mod server;
pub mod session;
pub mod sort;
pub mod structure;
pub mod trace;
pub mod utf7;
pub mod view;

pub use server::{bind, bind_listeners, Config, ImapService};
pub use session::ImapSession;

/// The capabilities advertised in every state. Before login
/// [`capabilities`] adds STARTTLS and either the AUTH= mechanisms or
/// LOGINDISABLED (RFC 3501 §6.1.1, §6.2.1, §6.2.3).
pub const CAPABILITIES: &str = "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR IDLE UIDPLUS MOVE UNSELECT \
NAMESPACE ID ENABLE SPECIAL-USE CHILDREN CONDSTORE SORT SORT=DISPLAY \
THREAD=ORDEREDSUBJECT THREAD=REFERENCES ESEARCH SEARCHRES CONTEXT=SEARCH ESORT CONTEXT=SORT \
LIST-EXTENDED LIST-STATUS NOTIFY QRESYNC BINARY MULTIAPPEND CATENATE URLAUTH URLAUTH=BINARY \
STATUS=SIZE WITHIN SAVEDATE UNAUTHENTICATE CREATE-SPECIAL-USE PREVIEW OBJECTID UTF8=ACCEPT UIDONLY \
QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE";

/// The CAPABILITY list for a connection: `tls` is where it stands with TLS,
/// `plaintext_ok` whether credentials may be sent on it now (TLS, a local
/// client, or `allow_plaintext_auth`), `authenticated` whether a user is
/// logged in. STARTTLS only while TLS is available (never once it is on,
/// §6.2.1); LOGINDISABLED instead of AUTH= while credentials may not be
/// sent (§6.2.3); after login neither (they no longer apply).
pub fn capabilities(tls: netloop::TlsState, plaintext_ok: bool, authenticated: bool) -> String {
    let mut caps = CAPABILITIES.to_owned();
    // RFC 4978; the command itself is valid only once authenticated.
    caps.push_str(" COMPRESS=DEFLATE");
    if authenticated {
        return caps;
    }
    if tls == netloop::TlsState::Available {
        caps.push_str(" STARTTLS");
    }
    if plaintext_ok {
        caps.push_str(" AUTH=PLAIN AUTH=LOGIN");
    } else {
        caps.push_str(" LOGINDISABLED");
    }
    caps
}

/// Whether `c` may appear in a tag (`ASTRING-CHAR` except `+`).
pub(crate) fn parse_is_tag_char(c: u8) -> bool {
    parse::is_tag_char(c)
}
