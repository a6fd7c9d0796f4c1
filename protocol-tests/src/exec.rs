//! Runs one parsed case against a server and decides PASS / FAIL.
//!
//! Semantics of each step are documented in the crate README. Connections
//! open on first mention; every read has a deadline (the case's `TIMEOUT`,
//! default from the command line), so a case never hangs.

use crate::conn::{show, Conn, ReadError};
use crate::pattern::Pattern;
use crate::template::Vars;
use crate::transcript::{Case, Expect, Proto, StepKind};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Where and as whom to run.
#[derive(Debug, Clone)]
pub struct Target {
    /// SMTP `HOST:PORT`, if SMTP cases should run.
    pub smtp: Option<String>,
    /// IMAP `HOST:PORT`, if IMAP cases should run.
    pub imap: Option<String>,
    /// First account: login name and password.
    pub user: String,
    /// Password of the first account.
    pub password: String,
    /// Second account, if any.
    pub user2: Option<(String, String)>,
    /// Mail domain of the accounts.
    pub domain: String,
    /// Default read timeout.
    pub timeout: Duration,
}

impl Target {
    /// The mail address of a login name (`name` if it has an `@`).
    pub fn address(&self, login: &str) -> String {
        if login.contains('@') {
            login.to_string()
        } else {
            format!("{login}@{}", self.domain)
        }
    }
}

/// Why a case failed.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Transcript line of the failing step.
    pub line: usize,
    /// What went wrong.
    pub msg: String,
    /// The pattern expected, if the step had one.
    pub expected: Option<String>,
    /// What came instead (rendered lines).
    pub got: Vec<String>,
}

/// Runs the steps of `case` with `vars` preset; returns the first failure.
///
/// # Errors
/// The failure of the first step that did not hold.
pub fn run_steps(case: &Case, target: &Target, vars: &mut Vars) -> Result<(), Failure> {
    let mut conns: HashMap<String, Conn> = HashMap::new();
    let mut timeout = target.timeout;
    for step in &case.steps {
        let fail = |msg: String| Failure {
            line: step.line,
            msg,
            expected: None,
            got: Vec::new(),
        };
        let conn_name = match &step.kind {
            StepKind::Send { conn, .. }
            | StepKind::Quiet(conn, _)
            | StepKind::Not(conn, _, _)
            | StepKind::Closed(conn)
            | StepKind::Close(conn) => Some(conn.clone()),
            StepKind::Expect(e) => Some(e.conn.clone()),
            _ => None,
        };
        if let Some(name) = &conn_name {
            if !conns.contains_key(name) {
                let proto = case.proto.of_conn(name);
                let addr = match proto {
                    Proto::Imap => target.imap.clone(),
                    _ => target.smtp.clone(),
                }
                .unwrap_or_default();
                let c = Conn::connect(&addr, proto, timeout).map_err(|e| {
                    fail(format!(
                        "cannot connect to {addr} (connection `{name}`): {e}"
                    ))
                })?;
                conns.insert(name.clone(), c);
            }
        }
        let conn = conn_name.as_ref().and_then(|n| conns.get_mut(n));
        match (&step.kind, conn) {
            (StepKind::Send { text, crlf, .. }, Some(c)) => {
                let mut bytes = text.expand(vars).map_err(fail)?;
                if *crlf {
                    bytes.extend_from_slice(b"\r\n");
                }
                c.send(&bytes)
                    .map_err(|e| fail(format!("send failed: {e}")))?;
            }
            (StepKind::Expect(e), Some(c)) => {
                let proto = case.proto.of_conn(&e.conn);
                expect(c, e, proto, vars, Instant::now() + timeout).map_err(|mut f| {
                    f.line = step.line;
                    f
                })?;
            }
            (StepKind::Let(name, t), _) => {
                let v = t.expand(vars).map_err(fail)?;
                vars.set(name, v);
            }
            (StepKind::Sleep(d), _) => std::thread::sleep(*d),
            (StepKind::Timeout(d), _) => timeout = *d,
            (StepKind::Quiet(_, d), Some(c)) => match c.read_line(Instant::now() + *d) {
                Err(ReadError::Timeout(p) | ReadError::Closed(p)) if p.is_empty() => {}
                Err(e) => return Err(fail(format!("expected silence for {d:?}, got: {e}"))),
                Ok(l) => {
                    return Err(Failure {
                        got: vec![show(&l)],
                        ..fail(format!("expected silence for {d:?}"))
                    })
                }
            },
            (StepKind::Not(_, d, p), Some(c)) => {
                let deadline = Instant::now() + *d;
                let mut keep = Vec::new();
                let res = loop {
                    match c.read_line(deadline) {
                        Ok(l) => {
                            if p.matches(&l, vars).map_err(fail)?.is_some() {
                                break Err(Failure {
                                    expected: Some(format!("no line like `{}`", p.source)),
                                    got: vec![show(&l)],
                                    ..fail(format!("forbidden response within {d:?}"))
                                });
                            }
                            keep.push(l);
                        }
                        Err(_) => break Ok(()),
                    }
                };
                for l in keep.into_iter().rev() {
                    c.push_back(l);
                }
                res?;
            }
            (StepKind::Closed(_), Some(c)) => match c.read_line(Instant::now() + timeout) {
                Err(ReadError::Closed(p)) if p.is_empty() => {}
                Err(e) => return Err(fail(format!("expected the server to close: {e}"))),
                Ok(l) => {
                    return Err(Failure {
                        got: vec![show(&l)],
                        ..fail("expected the server to close the connection".into())
                    })
                }
            },
            (StepKind::Close(name), Some(c)) => {
                c.close();
                conns.remove(name);
            }
            (k, None) => return Err(fail(format!("internal: no connection for {k:?}"))),
        }
    }
    Ok(())
}

/// `true` when a line ends the server's answer to a command.
fn is_completion(proto: Proto, line: &[u8]) -> bool {
    match proto {
        Proto::Smtp => {
            line.len() >= 3
                && line[..3].iter().all(u8::is_ascii_digit)
                && (line.len() == 3 || line[3] == b' ')
        }
        Proto::Imap | Proto::Mixed => !line.starts_with(b"* "),
    }
}

fn expect(
    c: &mut Conn,
    e: &Expect,
    proto: Proto,
    vars: &mut Vars,
    deadline: Instant,
) -> Result<(), Failure> {
    let base = |msg: String, p: &Pattern, got: Vec<String>| Failure {
        line: 0,
        msg,
        expected: Some(p.source.clone()),
        got,
    };
    let apply = |vars: &mut Vars, caps: Vec<(String, Vec<u8>)>| {
        for (n, v) in caps {
            vars.set(&n, v);
        }
    };
    let pattern_err = |m: String| Failure {
        line: 0,
        msg: m,
        expected: None,
        got: Vec::new(),
    };
    if e.strict {
        let line = c
            .read_line(deadline)
            .map_err(|err| base(format!("no matching line: {err}"), &e.anchor, Vec::new()))?;
        return match e.anchor.matches(&line, vars).map_err(pattern_err)? {
            Some(caps) => {
                apply(vars, caps);
                Ok(())
            }
            None => Err(base(
                "line does not match".into(),
                &e.anchor,
                vec![show(&line)],
            )),
        };
    }
    let mut seen = vec![false; e.some.len()];
    let mut got = Vec::new();
    loop {
        let line = c.read_line(deadline).map_err(|err| {
            base(
                format!("no line matched the anchor: {err}"),
                &e.anchor,
                got.clone(),
            )
        })?;
        let anchored = e.anchor.matches(&line, vars).map_err(pattern_err)?;
        if anchored.is_none() {
            for (l, p) in &e.none {
                if p.matches(&line, vars).map_err(pattern_err)?.is_some() {
                    got.push(show(&line));
                    return Err(Failure {
                        line: 0,
                        msg: format!("forbidden response (line {l})"),
                        expected: Some(format!("no line like `{}`", p.source)),
                        got,
                    });
                }
            }
        }
        for ((_, p), s) in e.some.iter().zip(seen.iter_mut()) {
            if !*s {
                if let Some(caps) = p.matches(&line, vars).map_err(pattern_err)? {
                    *s = true;
                    apply(vars, caps);
                }
            }
        }
        if let Some(caps) = anchored {
            let missing: Vec<String> = e
                .some
                .iter()
                .zip(&seen)
                .filter(|(_, s)| !**s)
                .map(|((l, p), _)| format!("line {l}: `{}`", p.source))
                .collect();
            if !missing.is_empty() {
                got.push(show(&line));
                return Err(Failure {
                    line: 0,
                    msg: "required response(s) missing before the anchor".into(),
                    expected: Some(missing.join("; ")),
                    got,
                });
            }
            apply(vars, caps);
            return Ok(());
        }
        got.push(show(&line));
        if is_completion(proto, &line) {
            return Err(base(
                "the command completed without the expected response".into(),
                &e.anchor,
                got,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_lines() {
        assert!(is_completion(Proto::Smtp, b"250 OK"));
        assert!(is_completion(Proto::Smtp, b"250"));
        assert!(!is_completion(Proto::Smtp, b"250-SIZE"));
        assert!(is_completion(Proto::Imap, b"a1 OK"));
        assert!(is_completion(Proto::Imap, b"+ go"));
        assert!(!is_completion(Proto::Imap, b"* 1 EXISTS"));
    }
}
