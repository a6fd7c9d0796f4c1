//! The suite: loads transcripts (built in, or from a directory), picks the
//! cases to run, decides SKIPs from advertised capabilities and configured
//! accounts, runs each case on fresh connections, and cleans up after IMAP
//! cases.

use crate::exec::{run_steps, Failure, Target};
use crate::probe;
use crate::template::Vars;
use crate::transcript::{parse, Case, ParseError, Proto};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

include!(concat!(env!("OUT_DIR"), "/builtin.rs"));

/// Result of one case.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Every step held.
    Pass,
    /// A step did not hold.
    Fail(Failure),
    /// Failed, on a server listed in the case's `# differs:` and given as
    /// `--known`; holds the note.
    Known(Failure, String),
    /// Not run, and why.
    Skip(String),
    /// Held, but something the RFC allows and advises against happened
    /// (outbound section: e.g. plaintext though STARTTLS was offered).
    Warn(String),
}

/// One reported case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// `smtp/...`, `imap/...`, `mixed/...` or `outbound/...`.
    pub name: String,
    /// RFC references.
    pub rfc: Vec<String>,
    /// The case's title.
    pub title: String,
    /// What happened.
    pub outcome: Outcome,
    /// Wall time.
    pub elapsed: Duration,
}

/// What to run and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// The server and accounts.
    pub target: Target,
    /// `--only` patterns (substring, or `*` globs) on case names.
    pub only: Vec<String>,
    /// Server names whose documented differences are expected (`--known`).
    pub known: Vec<String>,
}

fn parse_all(files: impl Iterator<Item = (String, String)>) -> Result<Vec<Case>, Vec<ParseError>> {
    let mut cases = Vec::new();
    let mut errors = Vec::new();
    for (rel, text) in files {
        let proto = if rel.starts_with("smtp/") {
            Proto::Smtp
        } else if rel.starts_with("mixed/") {
            Proto::Mixed
        } else {
            Proto::Imap
        };
        let name = rel.trim_end_matches(".txt").to_string();
        match parse(&rel, &name, proto, &text) {
            Ok(c) => cases.push(c),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(cases)
    } else {
        Err(errors)
    }
}

/// The transcripts compiled into this binary.
///
/// # Errors
/// Every transcript that does not parse.
pub fn builtin() -> Result<Vec<Case>, Vec<ParseError>> {
    parse_all(BUILTIN.iter().map(|(p, t)| (p.to_string(), t.to_string())))
}

/// Transcripts from `dir/{smtp,imap}/*.txt`.
///
/// # Errors
/// Unreadable files and transcripts that do not parse.
pub fn load_dir(dir: &Path) -> Result<Vec<Case>, Vec<ParseError>> {
    let mut files = Vec::new();
    for proto in ["smtp", "imap", "mixed"] {
        let Ok(entries) = std::fs::read_dir(dir.join(proto)) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "txt") {
                let rel = format!("{proto}/{}", e.file_name().to_string_lossy());
                match std::fs::read_to_string(&p) {
                    Ok(t) => files.push((rel, t)),
                    Err(err) => {
                        return Err(vec![ParseError {
                            file: rel,
                            line: 0,
                            msg: err.to_string(),
                        }])
                    }
                }
            }
        }
    }
    files.sort();
    parse_all(files.into_iter())
}

/// `true` when `name` is selected by the `--only` patterns.
pub fn selected(name: &str, only: &[String]) -> bool {
    only.is_empty()
        || only.iter().any(|p| {
            if p.contains('*') {
                glob(p.as_bytes(), name.as_bytes())
            } else {
                name.contains(p.as_str())
            }
        })
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| glob(rest, &s[i..])),
        Some((c, rest)) => s.first() == Some(c) && glob(rest, &s[1..]),
    }
}

fn has_cap(caps: &probe::Caps, req: &str) -> bool {
    caps.iter()
        .any(|c| c == req || c.starts_with(&format!("{req}=")))
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh token for `${unique}`: `pt` + base-36 time + counter, alphanumeric.
pub fn unique_token() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut t = secs % 36u128.pow(6);
    let mut s = String::new();
    for _ in 0..6 {
        let d = (t % 36) as u32;
        s.push(char::from_digit(d, 36).unwrap_or('0'));
        t /= 36;
    }
    format!("pt{s}{n}")
}

/// Runs the selected cases in order, calling `report` after each.
///
/// # Errors
/// The server could not be probed (unreachable, or LOGIN refused).
pub fn run(
    cases: &[Case],
    opts: &Options,
    mut report: impl FnMut(&CaseResult),
) -> Result<Vec<CaseResult>, String> {
    let t = &opts.target;
    let want = |p: Proto| {
        cases
            .iter()
            .any(|c| (c.proto == p || c.proto == Proto::Mixed) && selected(&c.name, &opts.only))
    };
    let smtp_caps = match &t.smtp {
        Some(a) if want(Proto::Smtp) => {
            Some(probe::smtp_caps(t, a).map_err(|e| format!("SMTP probe: {e}"))?)
        }
        _ => None,
    };
    let imap_caps = match &t.imap {
        Some(a) if want(Proto::Imap) => {
            Some(probe::imap_caps(t, a).map_err(|e| format!("IMAP probe: {e}"))?)
        }
        _ => None,
    };
    let mut results = Vec::new();
    for case in cases.iter().filter(|c| selected(&c.name, &opts.only)) {
        let start = Instant::now();
        let both;
        let caps = match case.proto {
            Proto::Smtp => smtp_caps.as_ref(),
            Proto::Imap => imap_caps.as_ref(),
            Proto::Mixed => match (&smtp_caps, &imap_caps) {
                (Some(s), Some(i)) => {
                    both = s.union(i).cloned().collect::<probe::Caps>();
                    Some(&both)
                }
                _ => None,
            },
        };
        let outcome = if let Some(caps) = caps {
            let missing: Vec<&String> =
                case.requires.iter().filter(|r| !has_cap(caps, r)).collect();
            if !missing.is_empty() {
                Outcome::Skip(format!(
                    "not advertised: {}",
                    missing
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                ))
            } else if case.users > 1 && t.user2.is_none() {
                Outcome::Skip("needs a second account (--user2)".into())
            } else {
                run_one(case, opts)
            }
        } else {
            Outcome::Skip(match case.proto {
                Proto::Mixed => "needs both --smtp and --imap".to_string(),
                p => format!("no --{p} server given"),
            })
        };
        let r = CaseResult {
            name: case.name.clone(),
            rfc: case.rfc.clone(),
            title: case.title.clone(),
            outcome,
            elapsed: start.elapsed(),
        };
        report(&r);
        results.push(r);
    }
    Ok(results)
}

fn run_one(case: &Case, opts: &Options) -> Outcome {
    let t = &opts.target;
    let unique = unique_token();
    let mut vars = Vars::default();
    vars.set("user", t.user.as_str());
    vars.set("password", t.password.as_str());
    vars.set("addr", t.address(&t.user));
    if let Some((u, p)) = &t.user2 {
        vars.set("user2", u.as_str());
        vars.set("password2", p.as_str());
        vars.set("addr2", t.address(u));
    }
    vars.set("domain", t.domain.as_str());
    vars.set("unique", unique.as_str());
    vars.set("CRLF", "\r\n");
    let res = run_steps(case, t, &mut vars);
    let mut res = res.map(|_| ());
    if case.proto != Proto::Smtp {
        if let Some(addr) = &t.imap {
            if let Err(e) = probe::imap_cleanup(t, addr, &unique) {
                if res.is_ok() {
                    res = Err(Failure {
                        line: 0,
                        msg: format!("cleanup after the case failed: {e}"),
                        expected: None,
                        got: Vec::new(),
                    });
                }
            }
        }
    }
    match res {
        Ok(()) => Outcome::Pass,
        Err(f) => match case.differs.iter().find(|d| opts.known.contains(&d.server)) {
            Some(d) => Outcome::Known(f, format!("{}: {}", d.server, d.note)),
            None => Outcome::Fail(f),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_transcripts_parse() {
        let cases = builtin().unwrap_or_else(|errs| {
            panic!(
                "{}",
                errs.iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        });
        assert!(!cases.is_empty());
    }

    #[test]
    fn only_patterns() {
        assert!(selected("smtp/5321-4.1.4-x", &[]));
        assert!(selected("smtp/5321-4.1.4-x", &["4.1.4".into()]));
        assert!(selected("smtp/5321-4.1.4-x", &["smtp/*-x".into()]));
        assert!(!selected("smtp/5321-4.1.4-x", &["imap/*".into()]));
    }

    #[test]
    fn unique_tokens_differ_and_are_alphanumeric() {
        let a = unique_token();
        let b = unique_token();
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
    }
}
