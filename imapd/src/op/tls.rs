//! `STARTTLS` (RFC 3501 §6.2.1; RFC 2595 §3.1; RFC 7817 for the
//! certificate side, which netloop's rustls configuration handles).
//!
//! Valid only in the not-authenticated state (the dispatcher answers BAD
//! otherwise) and only while TLS is available on a plaintext connection:
//! once TLS is on, or when the server has no certificate, STARTTLS is not
//! advertised and the command gets `BAD`. Otherwise we queue `tag OK Begin
//! TLS negotiation now` and hand the connection to netloop
//! ([`netloop::Io::start_tls`]), which discards every byte the client sent
//! after the command (pipelined commands must not survive the switch: the
//! CVE-2011-0411 class) and reads nothing more in plaintext. No protocol
//! state survives either: the client must ask for CAPABILITY again, and
//! the list it then gets has no STARTTLS and no LOGINDISABLED but the AUTH=
//! mechanisms (§6.2.1, §6.2.3).

use crate::response::Status;
use crate::session::{Done, ImapSession, Mode};
use netloop::{Io, Step, TlsState};

/// `STARTTLS` (§6.2.1)
pub(crate) fn starttls(s: &mut ImapSession, io: &mut Io<'_, Done>, tag: &str) -> Step {
    match io.tls() {
        TlsState::Active => {
            s.cx.status(Some(tag), Status::Bad, None, "TLS is already active");
            return Step::Continue;
        }
        TlsState::Unavailable => {
            s.cx.status(Some(tag), Status::Bad, None, "STARTTLS is not available");
            return Step::Continue;
        }
        TlsState::Available => {}
    }
    s.cx.status(Some(tag), Status::Ok, None, "Begin TLS negotiation now");
    // The go-ahead must be queued before the switch: it goes out in
    // plaintext, the handshake follows.
    s.cx.flush(io);
    s.cx.framer.reset();
    s.cx.mode = Mode::Command;
    if !io.start_tls() {
        // Cannot happen after the check above; fail closed if it does.
        log::error!("imapd conn {}: STARTTLS refused by the loop", s.cx.id);
        s.logout();
        return Step::Close;
    }
    if let Some(t) = &mut s.cx.tracer {
        t.note("-- TLS handshake; earlier unread input discarded --");
    }
    Step::Continue
}

#[cfg(test)]
mod tests {
    use netloop::TlsState;

    #[test]
    fn capability_list_follows_tls_and_plaintext_rules() {
        let caps = |t, p, a| crate::capabilities(t, p, a);
        let c = caps(TlsState::Available, false, false);
        assert!(
            c.contains(" STARTTLS") && c.contains(" LOGINDISABLED"),
            "{c}"
        );
        assert!(!c.contains(" AUTH="), "{c}");
        let c = caps(TlsState::Active, true, false);
        assert!(
            !c.contains("STARTTLS") && !c.contains("LOGINDISABLED"),
            "{c}"
        );
        assert!(c.contains(" AUTH=PLAIN AUTH=LOGIN"), "{c}");
        let c = caps(TlsState::Unavailable, true, false);
        assert!(!c.contains("STARTTLS") && c.contains("AUTH=PLAIN"), "{c}");
        let c = caps(TlsState::Available, true, true);
        assert!(
            c.starts_with("IMAP4rev1 ") && !c.contains("STARTTLS"),
            "{c}"
        );
        assert!(!c.contains(" AUTH=") && !c.contains("LOGINDISABLED"), "{c}");
    }
}
