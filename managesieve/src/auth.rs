//! AUTHENTICATE (RFC 5804 §2.1) with PLAIN (RFC 4616) and LOGIN.
//!
//! `AUTHENTICATE "PLAIN" ["initial-response"]`; without an initial
//! response the server sends an empty challenge string and the client
//! answers with a string (quoted or a literal) holding base64; `"*"`
//! cancels (`NO`). LOGIN asks for `Username:` then `Password:`. Both
//! send the password in the clear, so they are offered only over TLS, to
//! a local client, or with `allow_plaintext_auth` (otherwise the `SASL`
//! capability is empty and AUTHENTICATE is answered
//! `NO (ENCRYPT-NEEDED)`).
//!
//! Passwords are checked on a store reader thread (argon2 is slow by
//! design). A failure is answered `NO` only after the shared
//! [`netloop::Throttle`]'s delay (through `Io::complete_after`, never by
//! sleeping); an address that failed too often gets `NO (TRYLATER)`
//! without its password being checked, and a connection that failed
//! [`crate::Config::max_auth_failures`] times gets `BYE`.

use crate::response::{Answer, Code, Data, Status};
use crate::session::{Phase, SieveDone, SieveSession};
use crate::Shared;
use base64::Engine as _;
use netloop::{ConnInfo, Io};

/// `Username:` in base64: LOGIN's first challenge.
const USERNAME_CHALLENGE: &str = "VXNlcm5hbWU6";
/// `Password:` in base64: LOGIN's second challenge.
const PASSWORD_CHALLENGE: &str = "UGFzc3dvcmQ6";

/// Where an AUTHENTICATE exchange stands.
#[derive(Debug)]
pub(crate) enum Sasl {
    /// PLAIN: the response to the empty challenge.
    Plain,
    /// LOGIN: the user name.
    LoginUser,
    /// LOGIN: the password for `user`.
    LoginPassword { user: String },
}

/// True if PLAIN and LOGIN may be used on this connection.
pub(crate) fn plaintext_allowed(shared: &Shared, io: &Io<'_, SieveDone>, info: &ConnInfo) -> bool {
    io.is_tls() || info.is_local() || shared.config.allow_plaintext_auth
}

fn decode(text: &[u8]) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

impl SieveSession {
    /// `AUTHENTICATE mechanism [initial-response]`.
    pub(crate) fn authenticate(
        &mut self,
        io: &mut Io<'_, SieveDone>,
        mechanism: String,
        initial: Option<Vec<u8>>,
    ) {
        if mechanism != "PLAIN" && mechanism != "LOGIN" {
            self.status(
                io,
                Status::no(format!(
                    "Unsupported SASL mechanism {}",
                    mechanism.chars().take(40).collect::<String>()
                )),
            );
            return;
        }
        if !plaintext_allowed(&self.shared, io, &self.info) {
            self.status(
                io,
                Status::no_code(
                    Code::EncryptNeeded,
                    "Plaintext authentication needs TLS: use STARTTLS first",
                ),
            );
            return;
        }
        match (mechanism == "PLAIN", initial) {
            (true, Some(resp)) => self.plain(io, &resp),
            (true, None) => self.challenge(io, Sasl::Plain, ""),
            (false, Some(resp)) => self.login_user(io, &resp),
            (false, None) => self.challenge(io, Sasl::LoginUser, USERNAME_CHALLENGE),
        }
    }

    fn challenge(&mut self, io: &mut Io<'_, SieveDone>, next: Sasl, text: &str) {
        self.phase = Phase::Sasl(next);
        let mut out = Vec::new();
        Data::Challenge(text.into()).encode(&mut out);
        if self.shared.config.trace {
            log::info!(target: "managesieve::trace", "#{} S: \"{text}\"", self.conn);
        }
        io.out.push(&out);
    }

    /// One SASL response (a whole framed string).
    pub(crate) fn sasl_response(&mut self, io: &mut Io<'_, SieveDone>, sasl: Sasl, frame: &[u8]) {
        let text = match crate::parse::sasl_response(frame) {
            Ok(t) => t,
            Err(e) => {
                self.status(io, Status::no(format!("{e}; authentication cancelled")));
                return;
            }
        };
        if text == b"*" {
            self.status(io, Status::no("Authentication cancelled"));
            return;
        }
        match sasl {
            Sasl::Plain => self.plain(io, &text),
            Sasl::LoginUser => self.login_user(io, &text),
            Sasl::LoginPassword { user } => match decode(&text).map(String::from_utf8) {
                Some(Ok(pass)) => self.check_password(io, user, pass),
                Some(Err(_)) => self.status(io, Status::no("Malformed LOGIN password")),
                None => self.status(io, Status::no("Invalid base64 in the SASL response")),
            },
        }
    }

    /// PLAIN's response: `[authzid] NUL authcid NUL passwd` (RFC 4616 §2).
    fn plain(&mut self, io: &mut Io<'_, SieveDone>, text: &[u8]) {
        let Some(raw) = decode(text) else {
            self.status(io, Status::no("Invalid base64 in the SASL response"));
            return;
        };
        let fields: Vec<&[u8]> = raw.split(|&b| b == 0).collect();
        let [authz, authc, pass] = fields.as_slice() else {
            self.status(io, Status::no("Malformed PLAIN response"));
            return;
        };
        let (Ok(authz), Ok(authc), Ok(pass)) = (
            std::str::from_utf8(authz),
            std::str::from_utf8(authc),
            std::str::from_utf8(pass),
        ) else {
            self.status(io, Status::no("Malformed PLAIN response"));
            return;
        };
        if authc.is_empty() {
            self.status(io, Status::no("Malformed PLAIN response"));
            return;
        }
        if !authz.is_empty() && !authz.eq_ignore_ascii_case(authc) {
            log::info!(
                "#{}: ManageSieve AUTHENTICATE as {authc:?} for {authz:?} refused",
                self.conn
            );
            if !self.throttled(io, authc) {
                self.fail_later(io);
            }
            return;
        }
        self.check_password(io, authc.to_owned(), pass.to_owned());
    }

    fn login_user(&mut self, io: &mut Io<'_, SieveDone>, text: &[u8]) {
        match decode(text).map(String::from_utf8) {
            Some(Ok(user)) if !user.is_empty() => {
                self.challenge(io, Sasl::LoginPassword { user }, PASSWORD_CHALLENGE)
            }
            Some(_) => self.status(io, Status::no("Malformed LOGIN user name")),
            None => self.status(io, Status::no("Invalid base64 in the SASL response")),
        }
    }

    fn check_password(&mut self, io: &mut Io<'_, SieveDone>, user: String, pass: String) {
        if self.throttled(io, &user) {
            return;
        }
        self.waiting = true;
        let completer = io.completer();
        self.shared.store.read(
            move |r| r.authenticate(&user, &pass),
            move |res| completer.complete(SieveDone::Auth(res.map_err(|e| e.to_string()))),
        );
    }

    fn throttled(&mut self, io: &mut Io<'_, SieveDone>, user: &str) -> bool {
        if !self.shared.config.throttle.is_blocked(self.info.peer.ip()) {
            return false;
        }
        log::info!(
            "#{}: ManageSieve AUTHENTICATE as {user:?} refused: too many failures from {}",
            self.conn,
            self.info.peer.ip()
        );
        self.status(
            io,
            Status::no_code(
                Code::TryLater,
                "Too many failed logins from your address; try again later",
            ),
        );
        true
    }

    fn fail_later(&mut self, io: &mut Io<'_, SieveDone>) {
        let delay = self
            .shared
            .config
            .throttle
            .record_failure(self.info.peer.ip());
        self.waiting = true;
        io.complete_after(delay, SieveDone::AuthDelayed);
    }

    /// The delay after a failure is over: answer it.
    pub(crate) fn auth_failed(&mut self, io: &mut Io<'_, SieveDone>) {
        self.auth_failures += 1;
        if self.auth_failures >= self.shared.config.max_auth_failures {
            self.status(
                io,
                Status::bye(format!(
                    "Authentication failed {} times; goodbye",
                    self.auth_failures
                )),
            );
        } else {
            self.status(io, Status::no("Authentication failed"));
        }
    }

    /// The password check finished.
    pub(crate) fn auth_done(
        &mut self,
        io: &mut Io<'_, SieveDone>,
        result: Result<Option<mailstore::User>, String>,
    ) {
        match result {
            Ok(Some(user)) => {
                self.shared
                    .config
                    .throttle
                    .record_success(self.info.peer.ip());
                log::info!("#{}: ManageSieve login as {}", self.conn, user.address);
                self.phase = Phase::Authenticated(user);
                self.answer(io, &Answer::status(Status::ok("Logged in")));
            }
            Ok(None) => {
                log::info!("#{}: ManageSieve AUTHENTICATE failed", self.conn);
                self.fail_later(io);
            }
            Err(e) => {
                log::error!("#{}: password check failed: {e}", self.conn);
                self.status(
                    io,
                    Status::no_code(Code::TryLater, "Cannot check the password now"),
                );
            }
        }
    }
}
