//! STARTTLS (RFC 3207) for the session, and the `with` protocol names of
//! the Received header that say whether TLS and AUTH were used (RFC 3848,
//! RFC 6531 §3.7.3).
//!
//! RFC 3207 §4: STARTTLS takes no parameters (501); it is answered
//! `220 2.0.0 Ready to start TLS`, then the TLS handshake starts. The
//! event loop (`netloop::Io::start_tls`) discards every byte the client
//! sent after the command and before the handshake, so commands injected
//! in plaintext are never executed (the CVE-2011-0411 class). §4.2: after
//! the handshake the session forgets everything it knew (EHLO, the mail
//! transaction, AUTH), the client must send EHLO again, and STARTTLS is no
//! longer offered. On an encrypted connection STARTTLS is 503 5.5.1; with
//! no certificate configured it is not advertised and answered 502 5.5.1.

use crate::reply::Reply;
use crate::session::{SmtpDone, SmtpSession, State};
use netloop::{Io, TlsState};

impl SmtpSession {
    /// `STARTTLS`.
    pub(crate) fn starttls(&mut self, io: &mut Io<'_, SmtpDone>) {
        match io.tls() {
            TlsState::Unavailable => self.reply(io, &Reply::tls_unavailable()),
            TlsState::Active => self.reply(io, &Reply::tls_already_active()),
            TlsState::Available => {
                // The go-ahead first: it is sent in plaintext before the
                // handshake.
                self.reply(io, &Reply::ready_for_tls());
                if io.start_tls() {
                    if self.shared.config.trace {
                        log::info!(target: "smtpd::trace", "#{} TLS handshake begins", self.conn);
                    }
                    self.helo = None;
                    self.state = State::Idle;
                    self.user = None;
                    self.tls_restart = true;
                }
            }
        }
    }
}

/// The Received header's protocol name (RFC 3848 §2, RFC 6531 §3.7.3):
/// `ESMTP` plus `S` when the message came over TLS and `A` when the client
/// authenticated; `UTF8SMTP` likewise for SMTPUTF8 mail; plain `SMTP`
/// after HELO.
pub(crate) fn protocol_name(extended: bool, utf8: bool, tls: bool, auth: bool) -> &'static str {
    match (extended, utf8, tls, auth) {
        (false, ..) => "SMTP",
        (true, false, false, false) => "ESMTP",
        (true, false, true, false) => "ESMTPS",
        (true, false, false, true) => "ESMTPA",
        (true, false, true, true) => "ESMTPSA",
        (true, true, false, false) => "UTF8SMTP",
        (true, true, true, false) => "UTF8SMTPS",
        (true, true, false, true) => "UTF8SMTPA",
        (true, true, true, true) => "UTF8SMTPSA",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_names_follow_rfc_3848_and_6531() {
        assert_eq!(protocol_name(false, false, true, true), "SMTP");
        assert_eq!(protocol_name(true, false, false, false), "ESMTP");
        assert_eq!(protocol_name(true, false, true, false), "ESMTPS");
        assert_eq!(protocol_name(true, false, false, true), "ESMTPA");
        assert_eq!(protocol_name(true, false, true, true), "ESMTPSA");
        assert_eq!(protocol_name(true, true, false, false), "UTF8SMTP");
        assert_eq!(protocol_name(true, true, true, true), "UTF8SMTPSA");
    }
}
