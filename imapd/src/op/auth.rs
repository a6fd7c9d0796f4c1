//! Commands valid in any state and in the not-authenticated state:
//! CAPABILITY, LOGOUT, ID (RFC 2971), NAMESPACE (RFC 2342), ENABLE
//! (RFC 5161), LOGIN and AUTHENTICATE PLAIN (RFC 4616, SASL-IR RFC 4959).
//! A failed login is answered after a pause run on the delay thread.

use crate::response::{untagged, untagged_values, Code, Status, Value};
use crate::session::{Apply, Done, ImapSession, Mode};
use base64::Engine as _;
use mailstore::User;
use netloop::{Io, Step};

/// `CAPABILITY` (§6.1.1)
pub(crate) fn capability(s: &mut ImapSession, io: &mut Io<'_, Done>, tag: &str) -> Step {
    untagged(&mut s.out, &format!("CAPABILITY {}", crate::CAPABILITIES));
    s.finish(io, tag, Status::Ok, None, "CAPABILITY completed", true)
}

/// `LOGOUT` (§6.1.3)
pub(crate) fn logout(s: &mut ImapSession, tag: &str) -> Step {
    s.status(None, Status::Bye, None, "minimail logging out");
    s.status(Some(tag), Status::Ok, None, "LOGOUT completed");
    s.deselect();
    s.closing = true;
    Step::Close
}

/// `ID` (RFC 2971 §3.1): we say who we are; the client's list is ignored.
pub(crate) fn id(s: &mut ImapSession, io: &mut Io<'_, Done>, tag: &str) -> Step {
    untagged_values(
        &mut s.out,
        "ID",
        &[Value::List(vec![
            Value::str("name"),
            Value::str("minimail"),
            Value::str("version"),
            Value::str(env!("CARGO_PKG_VERSION")),
        ])],
    );
    s.finish(io, tag, Status::Ok, None, "ID completed", true)
}

/// `NAMESPACE` (RFC 2342 §5): one personal namespace, `/` delimiter.
pub(crate) fn namespace(s: &mut ImapSession, io: &mut Io<'_, Done>, tag: &str) -> Step {
    untagged(&mut s.out, "NAMESPACE ((\"\" \"/\")) NIL NIL");
    s.finish(io, tag, Status::Ok, None, "NAMESPACE completed", true)
}

/// `ENABLE` (RFC 5161 §3.1): CONDSTORE is the only one we know.
pub(crate) fn enable(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    tag: &str,
    caps: &[String],
) -> Step {
    let mut enabled = Vec::new();
    for c in caps {
        if c == "CONDSTORE" && !enabled.contains(&"CONDSTORE") {
            s.condstore = true;
            enabled.push("CONDSTORE");
        }
    }
    let mut line = "ENABLED".to_owned();
    for e in enabled {
        line.push(' ');
        line.push_str(e);
    }
    untagged(&mut s.out, &line);
    s.finish(io, tag, Status::Ok, None, "ENABLE completed", true)
}

/// `LOGIN` (§6.2.3)
pub(crate) fn login(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    tag: String,
    user: String,
    password: String,
) -> Step {
    check_password(s, io, tag, user, password);
    Step::Continue
}

/// `AUTHENTICATE` (§6.2.2): PLAIN only, with or without an initial response.
pub(crate) fn authenticate(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    tag: String,
    mechanism: &str,
    initial: Option<String>,
) -> Step {
    if mechanism != "PLAIN" {
        s.status(
            Some(&tag),
            Status::No,
            Some(Code::Cannot),
            "Unsupported mechanism; use PLAIN",
        );
        return Step::Continue;
    }
    match initial {
        Some(resp) => plain_response(s, io, &tag, resp.as_bytes()),
        None => {
            crate::response::continuation(&mut s.out, "");
            s.mode = Mode::AuthPlain { tag };
        }
    }
    Step::Continue
}

/// The client's PLAIN response (base64 of `authzid NUL authcid NUL passwd`,
/// `=` for empty, `*` to cancel).
pub(crate) fn plain_response(s: &mut ImapSession, io: &mut Io<'_, Done>, tag: &str, line: &[u8]) {
    if line == b"*" {
        s.status(Some(tag), Status::Bad, None, "AUTHENTICATE cancelled");
        return;
    }
    let raw = if line == b"=" {
        Ok(Vec::new())
    } else {
        base64::engine::general_purpose::STANDARD.decode(line)
    };
    let Ok(raw) = raw else {
        s.status(
            Some(tag),
            Status::Bad,
            None,
            "Invalid base64 in AUTHENTICATE response",
        );
        return;
    };
    let fields: Vec<&[u8]> = raw.split(|&b| b == 0).collect();
    let [authz, authc, pass] = fields.as_slice() else {
        s.status(Some(tag), Status::Bad, None, "Malformed PLAIN response");
        return;
    };
    let authc = String::from_utf8_lossy(authc).into_owned();
    if !authz.is_empty() && !authz.eq_ignore_ascii_case(authc.as_bytes()) {
        s.status(
            Some(tag),
            Status::No,
            Some(Code::AuthenticationFailed),
            "Authorization identity must be the login name",
        );
        return;
    }
    let pass = String::from_utf8_lossy(pass).into_owned();
    check_password(s, io, tag.to_owned(), authc, pass);
}

/// Verify credentials on a store thread; a failure is answered after the
/// configured pause (via the delay thread, never sleeping on the loop).
fn check_password(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    tag: String,
    user: String,
    password: String,
) {
    let c = io.completer();
    let delayer = s.shared.delayer.clone();
    let delay = s.shared.config.auth_failure_delay;
    s.busy = true;
    s.shared.store.read(
        move |r| r.authenticate(&user, &password),
        move |res| {
            let failed = !matches!(res, Ok(Some(_)));
            let apply: Apply = Box::new(move |s, io| login_done(s, io, &tag, res));
            if failed {
                delayer.after(delay, move || c.complete(Done::Apply(apply)));
            } else {
                c.complete(Done::Apply(apply));
            }
        },
    );
}

fn login_done(
    s: &mut ImapSession,
    _io: &mut Io<'_, Done>,
    tag: &str,
    res: mailstore::Result<Option<User>>,
) -> Step {
    match res {
        Ok(Some(user)) => {
            s.user = Some(user);
            s.status(Some(tag), Status::Ok, Some(Code::Capability), "Logged in");
        }
        Ok(None) => s.status(
            Some(tag),
            Status::No,
            Some(Code::AuthenticationFailed),
            "Invalid credentials",
        ),
        Err(e) => s.store_error(tag, &e),
    }
    Step::Continue
}
