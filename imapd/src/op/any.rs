//! Commands that ask about the server or the session rather than mail:
//! CAPABILITY, NOOP and CHECK, LOGOUT (RFC 3501 §6.1, §6.4.1), ID (RFC
//! 2971), NAMESPACE (RFC 2342) and ENABLE (RFC 5161).

use crate::response::{Data, Status};
use crate::session::{Done, ImapSession};
use netloop::{Io, Step};
use std::sync::atomic::Ordering;

/// `CAPABILITY` (§6.1.1)
pub(crate) fn capability(s: &mut ImapSession, io: &mut Io<'_, Done>, tag: &str) -> Step {
    let caps = s.capabilities(io);
    Data::Capability(&caps).encode(&mut s.cx.out);
    s.finish(io, tag, Status::Ok, None, "CAPABILITY completed", true)
}

/// `NOOP` (§6.1.2) and `CHECK` (§6.4.1): both always look for mailbox
/// changes (clients poll with them).
pub(crate) fn poll(s: &mut ImapSession, io: &mut Io<'_, Done>, tag: &str, text: &str) -> Step {
    s.cx.pending.store(true, Ordering::SeqCst);
    s.finish(io, tag, Status::Ok, None, text, true)
}

/// `LOGOUT` (§6.1.3)
pub(crate) fn logout(s: &mut ImapSession, tag: &str) -> Step {
    s.cx.status(None, Status::Bye, None, "minimail logging out");
    s.cx.status(Some(tag), Status::Ok, None, "LOGOUT completed");
    s.logout();
    Step::Close
}

/// `ID` (RFC 2971 §3.1): we say who we are; the client's list is ignored.
pub(crate) fn id(s: &mut ImapSession, io: &mut Io<'_, Done>, tag: &str) -> Step {
    Data::Id(&[("name", "minimail"), ("version", env!("CARGO_PKG_VERSION"))]).encode(&mut s.cx.out);
    s.finish(io, tag, Status::Ok, None, "ID completed", true)
}

/// `NAMESPACE` (RFC 2342 §5): one personal namespace, `/` delimiter.
pub(crate) fn namespace(s: &mut ImapSession, io: &mut Io<'_, Done>, tag: &str) -> Step {
    Data::Namespace.encode(&mut s.cx.out);
    s.finish(io, tag, Status::Ok, None, "NAMESPACE completed", true)
}

/// `ENABLE` (RFC 5161 §3.1): CONDSTORE and QRESYNC (RFC 7162 §3.2.3,
/// which implies CONDSTORE; only what was asked for is listed as ENABLED,
/// as Dovecot does).
pub(crate) fn enable(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    tag: &str,
    caps: &[String],
) -> Step {
    let mut enabled = Vec::new();
    for c in caps {
        if c == "CONDSTORE" && !enabled.contains(&"CONDSTORE") {
            s.cx.condstore = true;
            enabled.push("CONDSTORE");
        }
        if c == "QRESYNC" && !enabled.contains(&"QRESYNC") {
            s.cx.condstore = true;
            s.cx.qresync = true;
            enabled.push("QRESYNC");
        }
        // RFC 6855 §3: UTF-8 mailbox names and message headers.
        if c == "UTF8=ACCEPT" && !enabled.contains(&"UTF8=ACCEPT") {
            s.cx.utf8_accept = true;
            s.cx.utf8_names = true;
            enabled.push("UTF8=ACCEPT");
        }
        // RFC 9586 §3.1: UIDs only from now on.
        if c == "UIDONLY" && !enabled.contains(&"UIDONLY") {
            s.cx.uidonly = true;
            enabled.push("UIDONLY");
        }
        // RFC 9051 §6.3.1: the client chooses IMAP4rev2 behaviour.
        if c == "IMAP4REV2" && !enabled.contains(&"IMAP4rev2") {
            s.cx.rev2 = true;
            s.cx.utf8_names = true;
            enabled.push("IMAP4rev2");
        }
    }
    Data::Enabled(&enabled).encode(&mut s.cx.out);
    s.finish(io, tag, Status::Ok, None, "ENABLE completed", true)
}
