//! ManageSieve syntax (RFC 5804 §4): one command is an atom followed by
//! strings (quoted, or literals `{n+}` / `{n}` carrying their octets
//! after the CRLF) and numbers, ending in CRLF. The session's framer
//! (`frame.rs`) assembles a command's lines and literal octets into one
//! buffer; here nom's complete parsers turn that buffer into a typed
//! [`Command`]. Nothing here touches the store.
//!
//! ```text
//! command        = atom *(SP argument) CRLF
//! argument       = string / number
//! string         = quoted / literal-c2s
//! quoted         = DQUOTE *QUOTED-CHAR DQUOTE   ; "\" escapes DQUOTE and "\"
//! literal-c2s    = "{" number "+}" CRLF *OCTET   ; "{" number "}" accepted too
//! number         = 1*DIGIT
//! ```

use nom::branch::alt;
use nom::bytes::complete::{tag, take, take_while1};
use nom::character::complete::{char, digit1};
use nom::combinator::{map, map_res, opt};
use nom::multi::many0;
use nom::sequence::{delimited, preceded, terminated};
use nom::{IResult, Parser};

/// Longest script name (RFC 5804 §1.6 leaves it to the server; the store
/// keeps at most this many octets).
pub const MAX_NAME: usize = 512;

/// One argument of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// A quoted string or a literal (its octets).
    Str(Vec<u8>),
    /// A number.
    Num(u64),
}

/// A command as the client sent it (RFC 5804 §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `AUTHENTICATE mechanism [initial-response]` (§2.1).
    Authenticate {
        /// The mechanism, upper-cased.
        mechanism: String,
        /// The base64 initial response, if given.
        initial: Option<Vec<u8>>,
    },
    /// `STARTTLS` (§2.2).
    StartTls,
    /// `LOGOUT` (§2.3).
    Logout,
    /// `CAPABILITY` (§2.4).
    Capability,
    /// `HAVESPACE name size` (§2.5).
    HaveSpace {
        /// Script name.
        name: String,
        /// Size in octets.
        size: u64,
    },
    /// `PUTSCRIPT name script` (§2.6).
    PutScript {
        /// Script name.
        name: String,
        /// The script.
        script: Vec<u8>,
    },
    /// `LISTSCRIPTS` (§2.7).
    ListScripts,
    /// `SETACTIVE name` (§2.8); an empty name deactivates.
    SetActive {
        /// Script name, "" for none.
        name: String,
    },
    /// `GETSCRIPT name` (§2.9).
    GetScript {
        /// Script name.
        name: String,
    },
    /// `DELETESCRIPT name` (§2.10).
    DeleteScript {
        /// Script name.
        name: String,
    },
    /// `RENAMESCRIPT old new` (§2.11.1).
    RenameScript {
        /// Current name.
        from: String,
        /// New name.
        to: String,
    },
    /// `CHECKSCRIPT script` (§2.12).
    CheckScript {
        /// The script.
        script: Vec<u8>,
    },
    /// `NOOP [tag]` (§2.13).
    Noop {
        /// Echoed back in the `TAG` response code.
        tag: Option<Vec<u8>>,
    },
    /// `UNAUTHENTICATE` (§2.14).
    Unauthenticate,
}

/// Why a command could not be understood; the session answers `NO` with
/// this text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError(pub String);

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

type In<'a> = &'a [u8];

/// `quoted = DQUOTE *QUOTED-CHAR DQUOTE` with `\"` and `\\`; no CR or
/// LF inside.
fn quoted(i: In) -> IResult<In, Vec<u8>> {
    let fail = |at| nom::Err::Error(nom::error::Error::new(at, nom::error::ErrorKind::Char));
    let (mut i, _) = char('"').parse(i)?;
    let mut out = Vec::new();
    loop {
        match i {
            [b'"', rest @ ..] => return Ok((rest, out)),
            [b'\\', c @ (b'"' | b'\\'), rest @ ..] => {
                out.push(*c);
                i = rest;
            }
            [] | [b'\\', ..] | [b'\r' | b'\n', ..] => return Err(fail(i)),
            [c, rest @ ..] => {
                out.push(*c);
                i = rest;
            }
        }
    }
}

fn number(i: In) -> IResult<In, u64> {
    map_res(digit1, |d: &[u8]| {
        std::str::from_utf8(d)
            .map_err(|_| ())
            .and_then(|s| s.parse::<u64>().map_err(|_| ()))
    })
    .parse(i)
}

/// `literal-c2s = "{" number ["+"] "}" CRLF *OCTET`: the framer has made
/// sure the octets are there.
fn literal(i: In) -> IResult<In, Vec<u8>> {
    let (i, n) = terminated(
        delimited(char('{'), number, (opt(char('+')), char('}'))),
        tag(&b"\r\n"[..]),
    )
    .parse(i)?;
    let n = usize::try_from(n).map_err(|_| {
        nom::Err::Failure(nom::error::Error::new(i, nom::error::ErrorKind::TooLarge))
    })?;
    map(take(n), |s: &[u8]| s.to_vec()).parse(i)
}

/// `string = quoted / literal-c2s`.
fn string(i: In) -> IResult<In, Vec<u8>> {
    alt((quoted, literal)).parse(i)
}

fn argument(i: In) -> IResult<In, Arg> {
    alt((map(string, Arg::Str), map(number, Arg::Num))).parse(i)
}

fn atom(i: In<'_>) -> IResult<In<'_>, &[u8]> {
    take_while1(|b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_').parse(i)
}

/// Optional CR before the final LF (bare LF accepted, as everywhere in
/// minimail).
fn end(i: In) -> IResult<In, ()> {
    map((opt(char('\r')), char('\n')), |_| ()).parse(i)
}

/// The verb and arguments of one framed command (CRLF included).
///
/// # Errors
/// A [`SyntaxError`] saying what is wrong.
pub fn words(input: &[u8]) -> Result<(String, Vec<Arg>), SyntaxError> {
    let parsed: IResult<In, (&[u8], Vec<Arg>)> = (
        atom,
        many0(preceded(take_while1(|b: u8| b == b' '), argument)),
    )
        .parse(input);
    let (rest, (verb, args)) = parsed.map_err(|_| SyntaxError("Expected a command name".into()))?;
    let spaces = rest.iter().take_while(|&&b| b == b' ').count();
    let rest = &rest[spaces..];
    if end(rest).map(|(r, _)| r.is_empty()).unwrap_or(false) {
        Ok((String::from_utf8_lossy(verb).to_ascii_uppercase(), args))
    } else {
        Err(SyntaxError(format!(
            "Bad argument syntax after {} argument(s): expected a quoted string, a literal {{n+}} or a number",
            args.len()
        )))
    }
}

/// A SASL response line (RFC 5804 §2.1): one string, then CRLF.
///
/// # Errors
/// A [`SyntaxError`] when the line is not one string.
pub fn sasl_response(input: &[u8]) -> Result<Vec<u8>, SyntaxError> {
    match terminated(string, end).parse(input) {
        Ok(([], s)) => Ok(s),
        _ => Err(SyntaxError("Expected a SASL response string".into())),
    }
}

/// A script name (§1.6): UTF-8, not empty (except where `empty_ok`), at
/// most [`MAX_NAME`] octets, no control characters.
fn name(arg: Arg, empty_ok: bool) -> Result<String, SyntaxError> {
    let Arg::Str(bytes) = arg else {
        return Err(SyntaxError("A script name must be a string".into()));
    };
    let s =
        String::from_utf8(bytes).map_err(|_| SyntaxError("A script name must be UTF-8".into()))?;
    if (s.is_empty() && !empty_ok) || s.len() > MAX_NAME || s.chars().any(char::is_control) {
        return Err(SyntaxError(format!(
            "Invalid script name: 1 to {MAX_NAME} octets without control characters"
        )));
    }
    Ok(s)
}

fn script(arg: Arg) -> Result<Vec<u8>, SyntaxError> {
    match arg {
        Arg::Str(s) => Ok(s),
        Arg::Num(_) => Err(SyntaxError("A script must be a string".into())),
    }
}

/// Parse one framed command into a typed [`Command`].
///
/// # Errors
/// Unknown commands, wrong argument counts or types.
pub fn command(input: &[u8]) -> Result<Command, SyntaxError> {
    let (verb, args) = words(input)?;
    let n = args.len();
    let mut it = args.into_iter();
    let mut next = || it.next();
    let count = |want: &[usize]| -> Result<(), SyntaxError> {
        if want.contains(&n) {
            Ok(())
        } else {
            Err(SyntaxError(format!(
                "{verb} takes {} argument(s), not {n}",
                want.iter()
                    .map(|w| w.to_string())
                    .collect::<Vec<_>>()
                    .join(" or ")
            )))
        }
    };
    let cmd = match verb.as_str() {
        "AUTHENTICATE" => {
            count(&[1, 2])?;
            let Some(Arg::Str(mech)) = next() else {
                return Err(SyntaxError("The SASL mechanism must be a string".into()));
            };
            let initial = match next() {
                None => None,
                Some(Arg::Str(s)) => Some(s),
                Some(Arg::Num(_)) => {
                    return Err(SyntaxError("The initial response must be a string".into()))
                }
            };
            Command::Authenticate {
                mechanism: String::from_utf8_lossy(&mech).to_ascii_uppercase(),
                initial,
            }
        }
        "STARTTLS" => count(&[0]).map(|_| Command::StartTls)?,
        "LOGOUT" => count(&[0]).map(|_| Command::Logout)?,
        "CAPABILITY" => count(&[0]).map(|_| Command::Capability)?,
        "LISTSCRIPTS" => count(&[0]).map(|_| Command::ListScripts)?,
        "UNAUTHENTICATE" => count(&[0]).map(|_| Command::Unauthenticate)?,
        "HAVESPACE" => {
            count(&[2])?;
            let name = name(next().unwrap_or(Arg::Num(0)), false)?;
            let Some(Arg::Num(size)) = next() else {
                return Err(SyntaxError("HAVESPACE's size must be a number".into()));
            };
            Command::HaveSpace { name, size }
        }
        "PUTSCRIPT" => {
            count(&[2])?;
            let name = name(next().unwrap_or(Arg::Num(0)), false)?;
            let script = script(next().unwrap_or(Arg::Num(0)))?;
            Command::PutScript { name, script }
        }
        "CHECKSCRIPT" => {
            count(&[1])?;
            Command::CheckScript {
                script: script(next().unwrap_or(Arg::Num(0)))?,
            }
        }
        "SETACTIVE" => {
            count(&[1])?;
            Command::SetActive {
                name: name(next().unwrap_or(Arg::Num(0)), true)?,
            }
        }
        "GETSCRIPT" => {
            count(&[1])?;
            Command::GetScript {
                name: name(next().unwrap_or(Arg::Num(0)), false)?,
            }
        }
        "DELETESCRIPT" => {
            count(&[1])?;
            Command::DeleteScript {
                name: name(next().unwrap_or(Arg::Num(0)), false)?,
            }
        }
        "RENAMESCRIPT" => {
            count(&[2])?;
            let from = name(next().unwrap_or(Arg::Num(0)), false)?;
            let to = name(next().unwrap_or(Arg::Num(0)), false)?;
            Command::RenameScript { from, to }
        }
        "NOOP" => {
            count(&[0, 1])?;
            match next() {
                None => Command::Noop { tag: None },
                Some(Arg::Str(s)) => Command::Noop { tag: Some(s) },
                Some(Arg::Num(_)) => return Err(SyntaxError("NOOP's tag must be a string".into())),
            }
        }
        other => {
            let shown: String = other.chars().take(40).collect();
            return Err(SyntaxError(format!("Unknown command {shown}")));
        }
    };
    Ok(cmd)
}

/// If `line` (one line, ending removed) ends in a literal announcement
/// `{n+}` or `{n}`, the announced length (`None` for a number too large
/// for u64: treated as huge).
pub fn literal_at_end(line: &[u8]) -> Option<Option<u64>> {
    let body = line.strip_suffix(b"}")?;
    let body = body.strip_suffix(b"+").unwrap_or(body);
    let open = body.iter().rposition(|&b| b == b'{')?;
    let digits = &body[open + 1..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse().ok()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str) -> Command {
        command(input.as_bytes()).unwrap_or_else(|e| panic!("{input:?}: {e}"))
    }

    #[test]
    fn rfc_5804_examples_parse() {
        assert_eq!(
            ok("Authenticate \"PLAIN\" \"QJIrweAPyo6Q1T9xy\"\r\n"),
            Command::Authenticate {
                mechanism: "PLAIN".into(),
                initial: Some(b"QJIrweAPyo6Q1T9xy".to_vec()),
            }
        );
        assert_eq!(
            ok("AUTHENTICATE \"PLAIN\" {8+}\r\nAGJvYgB4\r\n"),
            Command::Authenticate {
                mechanism: "PLAIN".into(),
                initial: Some(b"AGJvYgB4".to_vec()),
            }
        );
        assert_eq!(
            ok("Putscript \"foo\" {31+}\r\n#comment\r\nInvalidSieveCommand\r\n\r\n"),
            Command::PutScript {
                name: "foo".into(),
                script: b"#comment\r\nInvalidSieveCommand\r\n".to_vec(),
            }
        );
        assert_eq!(
            ok("HAVESPACE \"myscript\" 999999\r\n"),
            Command::HaveSpace {
                name: "myscript".into(),
                size: 999999
            }
        );
        assert_eq!(ok("Listscripts\r\n"), Command::ListScripts);
        assert_eq!(
            ok("Setactive \"\"\r\n"),
            Command::SetActive { name: "".into() }
        );
        assert_eq!(
            ok("Renamescript \"foo\" \"bar\"\r\n"),
            Command::RenameScript {
                from: "foo".into(),
                to: "bar".into()
            }
        );
        assert_eq!(
            ok("NOOP \"STARTTLS-SYNC-42\"\r\n"),
            Command::Noop {
                tag: Some(b"STARTTLS-SYNC-42".to_vec())
            }
        );
        assert_eq!(
            ok("GETSCRIPT \"a \\\"quoted\\\" \\\\ name\"\n"),
            Command::GetScript {
                name: "a \"quoted\" \\ name".into()
            }
        );
    }

    #[test]
    fn bad_commands_say_why() {
        for (input, says) in [
            ("FROB\r\n", "Unknown command FROB"),
            ("GETSCRIPT\r\n", "takes 1 argument(s), not 0"),
            ("GETSCRIPT foo\r\n", "Bad argument syntax"),
            ("GETSCRIPT \"\"\r\n", "Invalid script name"),
            ("GETSCRIPT \"a\x01\"\r\n", "Invalid script name"),
            ("HAVESPACE \"a\" \"b\"\r\n", "must be a number"),
            ("PUTSCRIPT \"a\" 12\r\n", "must be a string"),
            ("GETSCRIPT \"unterminated\r\n", "Bad argument syntax"),
            ("\r\n", "Expected a command name"),
        ] {
            let e = command(input.as_bytes()).unwrap_err();
            assert!(e.0.contains(says), "{input:?}: {e}");
        }
        let long = format!("GETSCRIPT \"{}\"\r\n", "x".repeat(MAX_NAME + 1));
        assert!(command(long.as_bytes()).is_err());
    }

    #[test]
    fn literal_announcements_are_found() {
        assert_eq!(literal_at_end(b"PUTSCRIPT \"a\" {12+}"), Some(Some(12)));
        assert_eq!(literal_at_end(b"PUTSCRIPT \"a\" {12}"), Some(Some(12)));
        assert_eq!(literal_at_end(b"{99999999999999999999999+}"), Some(None));
        assert_eq!(literal_at_end(b"PUTSCRIPT \"a{}\""), None);
        assert_eq!(literal_at_end(b"X {+}"), None);
        assert_eq!(literal_at_end(b"X {1a}"), None);
    }

    #[test]
    fn sasl_responses() {
        assert_eq!(sasl_response(b"\"AGJvYgB4\"\r\n").unwrap(), b"AGJvYgB4");
        assert_eq!(sasl_response(b"{4+}\r\nAGJv\r\n").unwrap(), b"AGJv");
        assert_eq!(sasl_response(b"\"*\"\r\n").unwrap(), b"*");
        assert!(sasl_response(b"AGJvYgB4\r\n").is_err());
    }
}
