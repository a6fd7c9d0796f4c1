//! The transcript language: one file, one case (see the crate README).
//!
//! Parses header lines (`# rfc:`, `# title:`, `# requires:`, `# user:`,
//! `# differs:`) and steps (`C:`, `R:`, `S:`, `S~:`, `S!:`, `S>:`, `LET`,
//! `SLEEP`, `TIMEOUT`, `QUIET`, `NOT`, `CLOSED`, `CLOSE`), with an optional
//! `[conn]` after the step keyword. Every error names the file and line.
//! Also checks that each variable is defined (builtin, `LET` or captured)
//! before it is used. No I/O here.

use crate::pattern::Pattern;
use crate::template::{Template, BUILTINS};
use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

/// Which protocol a case speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// SMTP (RFC 5321).
    Smtp,
    /// IMAP (RFC 3501).
    Imap,
    /// Both servers (`transcripts/mixed/`): each connection's name starts
    /// with `smtp` or `imap` and says which server it talks to.
    Mixed,
}

impl Proto {
    /// The wire protocol of connection `conn` in a case of this protocol.
    pub fn of_conn(self, conn: &str) -> Proto {
        match self {
            Proto::Mixed if conn.starts_with("imap") => Proto::Imap,
            Proto::Mixed => Proto::Smtp,
            p => p,
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Smtp => "smtp",
            Proto::Imap => "imap",
            Proto::Mixed => "mixed",
        })
    }
}

/// A server known to deviate from the RFC on this case, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Differs {
    /// Server name as given to `--known` (e.g. `dovecot`).
    pub server: String,
    /// The explanation from the header.
    pub note: String,
}

/// One transcript.
#[derive(Debug, Clone)]
pub struct Case {
    /// `smtp/<file stem>`.
    pub name: String,
    /// Protocol (from the directory).
    pub proto: Proto,
    /// RFC references (`5321 4.1.4`).
    pub rfc: Vec<String>,
    /// One-line description.
    pub title: String,
    /// Capabilities the server must advertise, else SKIP.
    pub requires: Vec<String>,
    /// Highest account number the case uses (1 or 2).
    pub users: u8,
    /// Known deviations.
    pub differs: Vec<Differs>,
    /// The steps in order.
    pub steps: Vec<Step>,
}

/// A step and the transcript line it came from.
#[derive(Debug, Clone)]
pub struct Step {
    /// 1-based line number.
    pub line: usize,
    /// What to do.
    pub kind: StepKind,
}

/// How a block of `S~`/`S!` lines is tied to its anchor.
#[derive(Debug, Clone)]
pub struct Expect {
    /// Connection name (`""` is the default connection).
    pub conn: String,
    /// `S~:` patterns (must each match a line before the anchor), with lines.
    pub some: Vec<(usize, Pattern)>,
    /// `S!:` patterns (no line before the anchor may match), with lines.
    pub none: Vec<(usize, Pattern)>,
    /// The anchor pattern.
    pub anchor: Pattern,
    /// `S:` without a block: the very next line must match.
    pub strict: bool,
}

/// What a step does.
#[derive(Debug, Clone)]
pub enum StepKind {
    /// `C:` (text + CRLF) or `R:` (raw bytes, escapes, nothing appended).
    Send {
        /// Connection name.
        conn: String,
        /// What to send.
        text: Template,
        /// `C:` appends CRLF.
        crlf: bool,
    },
    /// `S:`, `S>:` with their `S~:`/`S!:` block.
    Expect(Expect),
    /// `LET name = text`.
    Let(String, Template),
    /// `SLEEP 500ms`.
    Sleep(Duration),
    /// `TIMEOUT 10s`: read timeout for the following steps.
    Timeout(Duration),
    /// `QUIET[c] 1s`: no byte may arrive within the time (a close is silent).
    Quiet(String, Duration),
    /// `NOT[c] 1s pattern`: no line matching may arrive within the time;
    /// other lines are kept for later steps.
    Not(String, Duration, Pattern),
    /// `CLOSED[c]`: the server closes the connection (no further line).
    Closed(String),
    /// `CLOSE[c]`: the client closes its side.
    Close(String),
}

/// A parse error: file, line, message.
#[derive(Debug, Clone)]
pub struct ParseError {
    /// File name.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub msg: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.msg)
    }
}

impl std::error::Error for ParseError {}

/// Parses a duration: `250ms`, `2s`, `1.5s`.
///
/// # Errors
/// A message when the text is not a number with `ms` or `s`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else {
        return Err(format!("bad duration `{s}` (write 500ms or 2s)"));
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("bad duration `{s}` (write 500ms or 2s)"))?;
    if !(0.0..=600.0).contains(&(v * scale)) {
        return Err(format!("duration `{s}` out of range (0..600s)"));
    }
    Ok(Duration::from_secs_f64(v * scale))
}

/// Splits `KEYWORD[conn]: rest` / `KEYWORD[conn] rest` into its parts; the
/// `S` modifiers may also follow the bracket (`S[a]>:` is `S>[a]:`).
fn split_step(line: &str) -> Option<(String, String, &str)> {
    let kw_end = line
        .find(|c: char| !(c.is_ascii_alphabetic() || c == '~' || c == '!' || c == '>'))
        .unwrap_or(line.len());
    let kw = &line[..kw_end];
    let mut rest = &line[kw_end..];
    let mut conn = String::new();
    if let Some(r) = rest.strip_prefix('[') {
        let close = r.find(']')?;
        conn = r[..close].to_string();
        rest = &r[close + 1..];
    }
    let mut kw = kw.to_string();
    if kw == "S" {
        if let Some(m) = rest.chars().next().filter(|c| matches!(c, '>' | '~' | '!')) {
            kw.push(m);
            rest = &rest[1..];
        }
    }
    Some((kw, conn, rest))
}

/// Patterns with the transcript line each came from.
type Lined = Vec<(usize, Pattern)>;

/// Parses one transcript.
///
/// # Errors
/// The first problem found, with its line.
pub fn parse(file: &str, name: &str, proto: Proto, text: &str) -> Result<Case, ParseError> {
    let mut case = Case {
        name: name.to_string(),
        proto,
        rfc: Vec::new(),
        title: String::new(),
        requires: Vec::new(),
        users: 1,
        differs: Vec::new(),
        steps: Vec::new(),
    };
    let mut defined: BTreeSet<String> = BUILTINS.iter().map(|s| s.to_string()).collect();
    // An open `S~:`/`S!:` block: connection, required and forbidden patterns.
    let mut block: Option<(String, Lined, Lined)> = None;
    let mut in_header = true;
    for (idx, raw) in text.lines().enumerate() {
        let lno = idx + 1;
        let err = |msg: String| ParseError {
            file: file.to_string(),
            line: lno,
            msg,
        };
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(h) = line.strip_prefix('#') {
            if in_header {
                header(&mut case, h.trim()).map_err(err)?;
            }
            continue;
        }
        in_header = false;
        let (kw, conn, rest) =
            split_step(line).ok_or_else(|| err("unclosed `[` in connection name".into()))?;
        let kw = kw.as_str();
        if !conn.is_empty() && !crate::template::is_name(&conn) {
            return Err(err(format!("bad connection name `{conn}`")));
        }
        let takes_conn = !matches!(kw, "LET" | "SLEEP" | "TIMEOUT");
        if proto == Proto::Mixed
            && takes_conn
            && !(conn.starts_with("smtp") || conn.starts_with("imap"))
        {
            return Err(err(format!(
                "in mixed/ cases every connection is named smtp... or imap... (`{kw}[smtp]:`), not `{conn}`"
            )));
        }
        let colon_arg = |rest: &str| -> Result<String, ParseError> {
            let r = rest
                .strip_prefix(':')
                .ok_or_else(|| err(format!("`{kw}` must be followed by `:` (e.g. `{kw}: ...`)")))?;
            Ok(r.strip_prefix(' ').unwrap_or(r).to_string())
        };
        let word_arg = |rest: &str| rest.trim().to_string();
        if let Some((bconn, _, _)) = &block {
            if !matches!(kw, "S" | "S~" | "S!" | "S>") || *bconn != conn {
                return Err(err(
                    "`S~:`/`S!:` lines must be followed by an `S:` or `S>:` line on the same connection"
                        .into(),
                ));
            }
        }
        let check_uses = |uses: Vec<&str>, defined: &BTreeSet<String>| {
            for u in uses {
                if !defined.contains(u) {
                    return Err(err(format!(
                        "variable `{u}` is used before it is defined (LET or capture)"
                    )));
                }
            }
            Ok(())
        };
        let kind = match kw {
            "C" | "R" => {
                let t = Template::parse(&colon_arg(rest)?, kw == "R").map_err(err)?;
                check_uses(t.uses(), &defined)?;
                StepKind::Send {
                    conn,
                    text: t,
                    crlf: kw == "C",
                }
            }
            "S" | "S>" | "S~" | "S!" => {
                let p = Pattern::parse(&colon_arg(rest)?).map_err(err)?;
                check_uses(p.uses(), &defined)?;
                for c in p.captures() {
                    defined.insert(c.to_string());
                }
                if kw == "S~" || kw == "S!" {
                    let b = block.get_or_insert_with(|| (conn.clone(), Vec::new(), Vec::new()));
                    if kw == "S~" {
                        b.1.push((lno, p));
                    } else {
                        b.2.push((lno, p));
                    }
                    continue;
                }
                let (some, none) = match block.take() {
                    Some((_, s, n)) => (s, n),
                    None => (Vec::new(), Vec::new()),
                };
                let strict = kw == "S" && some.is_empty() && none.is_empty();
                StepKind::Expect(Expect {
                    conn,
                    some,
                    none,
                    anchor: p,
                    strict,
                })
            }
            "LET" => {
                let r = word_arg(rest);
                let (name, value) = r
                    .split_once('=')
                    .ok_or_else(|| err("write `LET name = text`".into()))?;
                let name = name.trim();
                if !crate::template::is_name(name) {
                    return Err(err(format!("bad variable name `{name}`")));
                }
                let value = value.strip_prefix(' ').unwrap_or(value);
                let t = Template::parse(value, true).map_err(err)?;
                check_uses(t.uses(), &defined)?;
                defined.insert(name.to_string());
                StepKind::Let(name.to_string(), t)
            }
            "SLEEP" => StepKind::Sleep(parse_duration(&word_arg(rest)).map_err(err)?),
            "TIMEOUT" => StepKind::Timeout(parse_duration(&word_arg(rest)).map_err(err)?),
            "QUIET" => StepKind::Quiet(conn, parse_duration(&word_arg(rest)).map_err(err)?),
            "NOT" => {
                let r = rest.trim_start();
                let (d, pat) = r
                    .split_once(' ')
                    .ok_or_else(|| err("write `NOT 1s pattern`".into()))?;
                let p = Pattern::parse(pat).map_err(err)?;
                check_uses(p.uses(), &defined)?;
                StepKind::Not(conn, parse_duration(d).map_err(err)?, p)
            }
            "CLOSED" | "CLOSE" => {
                if !rest.trim().is_empty() {
                    return Err(err(format!("`{kw}` takes no argument")));
                }
                if kw == "CLOSED" {
                    StepKind::Closed(conn)
                } else {
                    StepKind::Close(conn)
                }
            }
            other => {
                return Err(err(format!(
                    "unknown step `{other}` (C: R: S: S>: S~: S!: LET SLEEP TIMEOUT QUIET NOT CLOSED CLOSE)"
                )))
            }
        };
        case.steps.push(Step { line: lno, kind });
    }
    if block.is_some() {
        return Err(ParseError {
            file: file.to_string(),
            line: text.lines().count(),
            msg: "file ends inside an `S~:`/`S!:` block (add its `S:` anchor)".into(),
        });
    }
    if case.rfc.is_empty() {
        return Err(ParseError {
            file: file.to_string(),
            line: 1,
            msg: "missing `# rfc:` header".into(),
        });
    }
    if case.steps.is_empty() {
        return Err(ParseError {
            file: file.to_string(),
            line: 1,
            msg: "no steps".into(),
        });
    }
    Ok(case)
}

fn header(case: &mut Case, h: &str) -> Result<(), String> {
    let Some((key, value)) = h.split_once(':') else {
        return Ok(()); // a comment
    };
    let value = value.trim();
    match key.trim() {
        "rfc" => case.rfc.push(value.to_string()),
        "title" => case.title = value.to_string(),
        "requires" => case
            .requires
            .extend(value.split_whitespace().map(|s| s.to_ascii_uppercase())),
        "user" => {
            case.users = match value {
                "1" => 1,
                "2" => 2,
                _ => return Err(format!("`# user:` must be 1 or 2, not `{value}`")),
            }
        }
        "differs" => {
            let (server, note) = value
                .split_once(' ')
                .ok_or("write `# differs: SERVER reason...`")?;
            case.differs.push(Differs {
                server: server.trim().to_ascii_lowercase(),
                note: note.trim_start_matches(['-', '—', ' ']).to_string(),
            });
        }
        _ => {} // free comment with a colon
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Case, ParseError> {
        parse("t.txt", "smtp/t", Proto::Smtp, text)
    }

    #[test]
    fn parses_a_full_case() {
        let c = p("# rfc: 5321 4.1.4\n# title: x\n# requires: pipelining\n# user: 2\n\
                   # differs: postfix — says 250\nS: 220 *\nC: EHLO x\nS~: 250-PIPELINING\n\
                   S!: 250-CHUNKING\nS: 250 *\nS[b]>: x\nR[b]: a\\r\\n\nS[b]: * OK [UIDVALIDITY ${uv:=\\d+}]*\n\
                   C[b]: a1 ${uv}\nNOT[b] 1s *EXPUNGE\nQUIET 200ms\nLET m = hi\\r\\n\n\
                   C: {${len:m}}\nCLOSED[b]\n")
        .unwrap();
        assert_eq!(c.requires, vec!["PIPELINING"]);
        assert_eq!(c.users, 2);
        assert_eq!(c.differs[0].server, "postfix");
        assert_eq!(c.differs[0].note, "says 250");
        assert_eq!(c.steps.len(), 12);
        match &c.steps[2].kind {
            StepKind::Expect(e) => {
                assert!(!e.strict);
                assert_eq!(e.some.len(), 1);
                assert_eq!(e.none.len(), 1);
            }
            k => panic!("{k:?}"),
        }
    }

    #[test]
    fn mixed_cases_name_their_server_per_connection() {
        let ok = parse(
            "m.txt",
            "mixed/m",
            Proto::Mixed,
            "# rfc: 1\nS[smtp]: 220*\nS[imap2]: * OK*\nLET x = 1\n",
        );
        let c = ok.unwrap();
        assert_eq!(c.proto.of_conn("smtp"), Proto::Smtp);
        assert_eq!(c.proto.of_conn("imap2"), Proto::Imap);
        let e = parse("m.txt", "mixed/m", Proto::Mixed, "# rfc: 1\nS: 220*\n").unwrap_err();
        assert!(e.msg.contains("mixed/"), "{e}");
    }

    #[test]
    fn errors_name_the_line() {
        let e = p("# rfc: 1\nS: 220 *\nC: ${nope}\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.msg.contains("nope"), "{e}");
        let e = p("# rfc: 1\nX: 1\n").unwrap_err();
        assert!(e.msg.contains("unknown step"), "{e}");
        let e = p("# rfc: 1\nS~: a\nC: b\n").unwrap_err();
        assert_eq!(e.line, 3);
        let e = p("# rfc: 1\nS~: a\n").unwrap_err();
        assert!(e.msg.contains("ends inside"), "{e}");
        let e = p("S: 220\n").unwrap_err();
        assert!(e.msg.contains("rfc"), "{e}");
        let e = p("# rfc: 1\nC EHLO\n").unwrap_err();
        assert!(e.msg.contains("followed by `:`"), "{e}");
        let e = p("# rfc: 1\nSLEEP 5 minutes\n").unwrap_err();
        assert!(e.msg.contains("duration"), "{e}");
    }
}
