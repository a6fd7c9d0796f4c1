//! Authentication: LOGIN (RFC 3501 §6.2.3) and AUTHENTICATE (§6.2.2)
//! with PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login), both with
//! SASL-IR (RFC 4959). STARTTLS is `tls.rs`.
//!
//! Credentials are refused with `NO [PRIVACYREQUIRED]` (RFC 5530 §3) on a
//! plaintext connection from a non-local client unless the operator allows
//! it (§6.2.3 LOGINDISABLED, §11.1). Failed logins go through the shared
//! [`netloop::Throttle`]: a blocked address gets `NO [UNAVAILABLE]` without
//! its password being checked, and each failure is answered after the
//! throttle's delay ([`Io::complete_after`]; nothing sleeps).

use crate::response::{Code, Status};
use crate::session::{Apply, Busy, Conn, Done, ImapSession, Mode, State};
use base64::Engine as _;
use mailstore::User;
use netloop::{Io, Step};

/// Which AUTHENTICATE response the session waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SaslStep {
    /// PLAIN: `authzid NUL authcid NUL passwd` (RFC 4616 §2).
    Plain,
    /// LOGIN: the user name, after `+ VXNlcm5hbWU6` ("Username:").
    LoginUser,
    /// LOGIN: the password, after `+ UGFzc3dvcmQ6` ("Password:").
    LoginPass(String),
}

/// SASL LOGIN's prompts, base64 of `Username:` and `Password:`.
const USERNAME_PROMPT: &str = "VXNlcm5hbWU6";
const PASSWORD_PROMPT: &str = "UGFzc3dvcmQ6";

/// Refuse credentials on this connection unless they may be sent here.
/// True if refused (the tagged NO is queued).
fn privacy_refused(s: &mut Conn, io: &Io<'_, Done>, tag: &str) -> bool {
    if s.plaintext_ok(io) {
        return false;
    }
    let text = if io.tls() == netloop::TlsState::Available {
        "Plaintext authentication disallowed; use STARTTLS first"
    } else {
        "Plaintext authentication disallowed on this connection"
    };
    s.status(Some(tag), Status::No, Some(Code::PrivacyRequired), text);
    true
}

/// `LOGIN` (§6.2.3)
pub(crate) fn login(
    s: &mut Conn,
    io: &mut Io<'_, Done>,
    tag: String,
    user: String,
    password: String,
) -> Step {
    if !privacy_refused(s, io, &tag) {
        check_password(s, io, tag, user, password);
    }
    Step::Continue
}

/// `AUTHENTICATE` (§6.2.2): PLAIN or LOGIN, with or without an initial
/// response (RFC 4959).
pub(crate) fn authenticate(
    s: &mut Conn,
    io: &mut Io<'_, Done>,
    tag: String,
    mechanism: &str,
    initial: Option<String>,
) -> Step {
    let step = match mechanism {
        "PLAIN" => SaslStep::Plain,
        "LOGIN" => SaslStep::LoginUser,
        _ => {
            s.status(
                Some(&tag),
                Status::No,
                Some(Code::Cannot),
                "Unsupported mechanism; use PLAIN or LOGIN",
            );
            return Step::Continue;
        }
    };
    if privacy_refused(s, io, &tag) {
        return Step::Continue;
    }
    match initial {
        Some(resp) => sasl_response(s, io, tag, step, resp.as_bytes()),
        None => {
            let prompt = if step == SaslStep::LoginUser {
                USERNAME_PROMPT
            } else {
                ""
            };
            crate::response::continuation(&mut s.out, prompt);
            s.mode = Mode::Auth { tag, step };
        }
    }
    Step::Continue
}

/// One client response to AUTHENTICATE (base64, `=` for empty, `*` to
/// cancel, §6.2.2 and RFC 4959 §3).
pub(crate) fn sasl_response(
    s: &mut Conn,
    io: &mut Io<'_, Done>,
    tag: String,
    step: SaslStep,
    line: &[u8],
) {
    if line == b"*" {
        s.status(Some(&tag), Status::Bad, None, "AUTHENTICATE cancelled");
        return;
    }
    let raw = if line == b"=" {
        Ok(Vec::new())
    } else {
        base64::engine::general_purpose::STANDARD.decode(line)
    };
    let Ok(raw) = raw else {
        s.status(
            Some(&tag),
            Status::Bad,
            None,
            "Invalid base64 in AUTHENTICATE response",
        );
        return;
    };
    match step {
        SaslStep::Plain => plain(s, io, tag, &raw),
        SaslStep::LoginUser => {
            let user = String::from_utf8_lossy(&raw).into_owned();
            crate::response::continuation(&mut s.out, PASSWORD_PROMPT);
            s.mode = Mode::Auth {
                tag,
                step: SaslStep::LoginPass(user),
            };
        }
        SaslStep::LoginPass(user) => {
            let pass = String::from_utf8_lossy(&raw).into_owned();
            check_password(s, io, tag, user, pass);
        }
    }
}

/// The decoded PLAIN message: `authzid NUL authcid NUL passwd`.
fn plain(s: &mut Conn, io: &mut Io<'_, Done>, tag: String, raw: &[u8]) {
    let fields: Vec<&[u8]> = raw.split(|&b| b == 0).collect();
    let [authz, authc, pass] = fields.as_slice() else {
        s.status(Some(&tag), Status::Bad, None, "Malformed PLAIN response");
        return;
    };
    let authc = String::from_utf8_lossy(authc).into_owned();
    if !authz.is_empty() && !authz.eq_ignore_ascii_case(authc.as_bytes()) {
        s.status(
            Some(&tag),
            Status::No,
            Some(Code::AuthenticationFailed),
            "Authorization identity must be the login name",
        );
        return;
    }
    let pass = String::from_utf8_lossy(pass).into_owned();
    check_password(s, io, tag, authc, pass);
}

/// Verify credentials on a store thread. A blocked address is refused
/// without a check; a failure is counted and answered after the
/// throttle's delay; a success clears the address's record.
fn check_password(
    s: &mut Conn,
    io: &mut Io<'_, Done>,
    tag: String,
    user: String,
    password: String,
) {
    let throttle = std::sync::Arc::clone(&s.shared.config.throttle);
    let ip = s.peer;
    if throttle.is_blocked(ip) {
        s.status(
            Some(&tag),
            Status::No,
            Some(Code::Unavailable),
            "Too many failed login attempts, try again later",
        );
        return;
    }
    s.read(
        io,
        move |r| r.authenticate(&user, &password),
        move |s, io, res| {
            match res {
                Ok(Some(_)) => throttle.record_success(ip),
                Ok(None) => {
                    let delay = throttle.record_failure(ip);
                    // Stay busy (pipelined commands wait) until the answer.
                    s.cx.busy = Busy::Store;
                    let apply: Apply = Box::new(move |s, io| login_done(s, io, &tag, res));
                    io.complete_after(delay, Done::Apply(apply));
                    return Step::Continue;
                }
                Err(_) => {}
            }
            login_done(s, io, &tag, res)
        },
    );
}

fn login_done(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    tag: &str,
    res: mailstore::Result<Option<User>>,
) -> Step {
    match res {
        Ok(Some(user)) => {
            s.state = State::Authenticated { user };
            let limits = s.cx.shared.config.framer_limits(true);
            s.cx.framer.set_limits(limits);
            let caps = s.capabilities(io);
            s.cx.status(
                Some(tag),
                Status::Ok,
                Some(Code::Capability(caps)),
                "Logged in",
            );
        }
        Ok(None) => s.cx.status(
            Some(tag),
            Status::No,
            Some(Code::AuthenticationFailed),
            "Invalid credentials",
        ),
        Err(e) => s.cx.store_error(tag, &e),
    }
    Step::Continue
}
