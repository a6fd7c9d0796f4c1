//! SMTP AUTH (RFC 4954) with the PLAIN (RFC 4616) and LOGIN mechanisms.
//!
//! Order (RFC 4954 §4): AUTH needs EHLO first, is refused during a mail
//! transaction and once the session has authenticated (503 5.5.1); an
//! unknown mechanism gets 504 5.5.4. Both mechanisms send the password
//! in the clear, so they are offered only when [`plaintext_allowed`]: over
//! TLS, to a local client, or with `Config::allow_plaintext_auth`;
//! otherwise AUTH gets 538 5.7.11 (§6) and EHLO does not list it.
//!
//! The exchange (§4): an optional initial response on the AUTH line (`=`
//! for an empty one), `334` challenges in base64, and the client's base64
//! response lines; `*` cancels (501 5.7.0), bad base64 gets 501 5.5.2.
//! PLAIN is `authzid NUL authcid NUL passwd`; an authzid other than the
//! login name is refused (we have no proxy authorisation). LOGIN asks for
//! `Username:` then `Password:`.
//!
//! Credentials are checked on a store reader thread (argon2 is slow by
//! design). Failed attempts are counted per client address by the shared
//! [`netloop::Throttle`]: a failure is answered (535 5.7.8) only after the
//! throttle's delay, through `Io::complete_after`, never by sleeping; an
//! address that failed too often gets 454 4.7.0 without its password being
//! checked. Success: 235 2.7.0.

use crate::reply::Reply;
use crate::service::Shared;
use crate::session::{SmtpDone, SmtpSession, State, Waiting};
use base64::Engine as _;
use netloop::{Io, Line};

/// `Username:` in base64: LOGIN's first challenge.
const USERNAME_CHALLENGE: &str = "VXNlcm5hbWU6";
/// `Password:` in base64: LOGIN's second challenge.
const PASSWORD_CHALLENGE: &str = "UGFzc3dvcmQ6";

/// Where an AUTH exchange stands: which response the next line carries.
#[derive(Debug)]
pub(crate) enum Sasl {
    /// PLAIN: the response to the empty challenge.
    Plain,
    /// LOGIN: the user name.
    LoginUser,
    /// LOGIN: the password for `user`.
    LoginPassword {
        /// The user name given.
        user: String,
    },
}

/// True if plaintext mechanisms (PLAIN, LOGIN) may be used on this
/// connection: it is encrypted, the client is local, or the operator
/// allowed it.
pub(crate) fn plaintext_allowed(shared: &Shared, io: &Io<'_, SmtpDone>) -> bool {
    io.is_tls() || io.info.is_local() || shared.config.allow_plaintext_auth
}

/// Decode one SASL response: base64, or `=` for an empty one (RFC 4954 §4).
fn decode(text: &[u8]) -> Option<Vec<u8>> {
    if text == b"=" {
        return Some(Vec::new());
    }
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

impl SmtpSession {
    /// `AUTH mechanism [initial-response]`.
    pub(crate) fn auth(
        &mut self,
        io: &mut Io<'_, SmtpDone>,
        mechanism: String,
        initial: Option<String>,
    ) {
        let refusal = if self.helo.is_none() {
            Some(Reply::bad_sequence("send EHLO first"))
        } else if self.user.is_some() {
            Some(Reply::bad_sequence("already authenticated"))
        } else if !matches!(self.state, State::Idle) {
            Some(Reply::bad_sequence(
                "AUTH is not permitted during a mail transaction",
            ))
        } else if mechanism != "PLAIN" && mechanism != "LOGIN" {
            Some(Reply::unknown_mechanism(&mechanism))
        } else if !plaintext_allowed(&self.shared, io) {
            log::info!(
                "#{}: AUTH {mechanism} refused: connection not encrypted",
                self.conn
            );
            Some(Reply::encryption_required())
        } else {
            None
        };
        if let Some(r) = refusal {
            self.reply(io, &r);
            return;
        }
        let plain = mechanism == "PLAIN";
        match (plain, initial) {
            (true, Some(resp)) => self.plain_response(io, resp.as_bytes()),
            (true, None) => {
                self.state = State::Sasl(Sasl::Plain);
                self.reply(io, &Reply::auth_challenge(""));
            }
            (false, Some(resp)) => self.login_user(io, resp.as_bytes()),
            (false, None) => {
                self.state = State::Sasl(Sasl::LoginUser);
                self.reply(io, &Reply::auth_challenge(USERNAME_CHALLENGE));
            }
        }
    }

    /// Read one SASL response line; true once handled (false: need more).
    pub(crate) fn read_sasl(&mut self, io: &mut Io<'_, SmtpDone>, sasl: Sasl) -> bool {
        let max = crate::limits::MAX_AUTH_LINE;
        let line = match io.input.take_line(max - 2) {
            Line::Incomplete => {
                self.state = State::Sasl(sasl);
                return false;
            }
            Line::TooLong => {
                self.trace_hidden("SASL response too long");
                self.reply(io, &Reply::auth_line_too_long());
                return true;
            }
            Line::Complete(line, _) => line,
        };
        self.trace_hidden("credentials elided");
        if line == b"*" {
            self.reply(io, &Reply::auth_cancelled());
            return true;
        }
        match sasl {
            Sasl::Plain => self.plain_response(io, &line),
            Sasl::LoginUser => self.login_user(io, &line),
            Sasl::LoginPassword { user } => match decode(&line) {
                Some(pass) => match String::from_utf8(pass) {
                    Ok(pass) => self.check_password(io, user, pass),
                    Err(_) => self.reply(io, &Reply::auth_malformed("LOGIN")),
                },
                None => self.reply(io, &Reply::auth_bad_base64()),
            },
        }
        true
    }

    /// PLAIN's response: `[authzid] NUL authcid NUL passwd` (RFC 4616 §2).
    fn plain_response(&mut self, io: &mut Io<'_, SmtpDone>, text: &[u8]) {
        let Some(raw) = decode(text) else {
            self.reply(io, &Reply::auth_bad_base64());
            return;
        };
        let fields: Vec<&[u8]> = raw.split(|&b| b == 0).collect();
        let [authz, authc, pass] = fields.as_slice() else {
            self.reply(io, &Reply::auth_malformed("PLAIN"));
            return;
        };
        let (Ok(authz), Ok(authc), Ok(pass)) = (
            std::str::from_utf8(authz),
            std::str::from_utf8(authc),
            std::str::from_utf8(pass),
        ) else {
            self.reply(io, &Reply::auth_malformed("PLAIN"));
            return;
        };
        if authc.is_empty() {
            self.reply(io, &Reply::auth_malformed("PLAIN"));
            return;
        }
        if !authz.is_empty() && !authz.eq_ignore_ascii_case(authc) {
            // Acting as another user is never allowed: a failed attempt.
            log::info!(
                "#{}: AUTH PLAIN as {authc:?} for {authz:?} refused",
                self.conn
            );
            if !self.throttled(io, authc) {
                self.fail_later(io);
            }
            return;
        }
        self.check_password(io, authc.to_owned(), pass.to_owned());
    }

    /// LOGIN's user name (from the AUTH line or the first response).
    fn login_user(&mut self, io: &mut Io<'_, SmtpDone>, text: &[u8]) {
        match decode(text).map(String::from_utf8) {
            Some(Ok(user)) if !user.is_empty() => {
                self.state = State::Sasl(Sasl::LoginPassword { user });
                self.reply(io, &Reply::auth_challenge(PASSWORD_CHALLENGE));
            }
            Some(_) => self.reply(io, &Reply::auth_malformed("LOGIN")),
            None => self.reply(io, &Reply::auth_bad_base64()),
        }
    }

    /// Check the credentials on a store thread, unless the client address
    /// is throttled.
    fn check_password(&mut self, io: &mut Io<'_, SmtpDone>, user: String, pass: String) {
        if self.throttled(io, &user) {
            return;
        }
        self.waiting = Some(Waiting::Auth(user.clone()));
        let completer = io.completer();
        self.shared.store.read(
            move |r| r.authenticate(&user, &pass),
            move |res| completer.complete(SmtpDone::Auth(res.map_err(|e| e.to_string()))),
        );
    }

    /// If the client address failed too often, refuse with 454 (without
    /// looking at the credentials) and return true.
    fn throttled(&mut self, io: &mut Io<'_, SmtpDone>, user: &str) -> bool {
        if !self.shared.config.throttle.is_blocked(self.peer.ip()) {
            return false;
        }
        log::info!(
            "#{}: AUTH as {user:?} refused: too many failures from {}",
            self.conn,
            self.peer.ip()
        );
        self.reply(io, &Reply::auth_throttled());
        true
    }

    /// Count a failure and answer it after the throttle's delay.
    fn fail_later(&mut self, io: &mut Io<'_, SmtpDone>) {
        let delay = self.shared.config.throttle.record_failure(self.peer.ip());
        self.waiting = Some(Waiting::AuthDelay);
        io.complete_after(delay, SmtpDone::AuthDelayed);
    }

    /// The password check finished.
    pub(crate) fn auth_done(
        &mut self,
        io: &mut Io<'_, SmtpDone>,
        login: String,
        result: Result<Option<mailstore::User>, String>,
    ) {
        match result {
            Ok(Some(user)) => {
                self.shared.config.throttle.record_success(self.peer.ip());
                log::info!("#{}: authenticated as {}", self.conn, user.address);
                self.user = Some(user);
                self.reply(io, &Reply::auth_ok());
            }
            Ok(None) => {
                log::info!("#{}: AUTH as {login:?} failed", self.conn);
                self.fail_later(io);
            }
            Err(e) => {
                log::error!("#{}: password check for {login:?} failed: {e}", self.conn);
                self.reply(io, &Reply::auth_temporary_failure());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_decode_as_rfc_4954_says() {
        assert_eq!(decode(b"="), Some(Vec::new()));
        assert_eq!(decode(b""), Some(Vec::new()));
        assert_eq!(decode(b"AGJvYgBwdw==").unwrap(), b"\0bob\0pw");
        assert_eq!(decode(b"not base64!"), None);
        assert_eq!(decode(USERNAME_CHALLENGE.as_bytes()).unwrap(), b"Username:");
        assert_eq!(decode(PASSWORD_CHALLENGE.as_bytes()).unwrap(), b"Password:");
    }
}
