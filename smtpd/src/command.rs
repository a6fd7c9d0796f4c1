//! Typed SMTP commands (RFC 5321 §4.1.1, RFC 3030 BDAT, RFC 3207 STARTTLS,
//! RFC 4954 §4 AUTH) and the mapping of a parse failure to the reply
//! RFC 5321 §4.2.4 asks for.
//!
//! [`Command::parse`] takes one framed line (no CRLF), splits off the
//! case-insensitive verb and hands the rest to the grammar in `parse.rs`.
//! ESMTP parameters of MAIL are interpreted here (SIZE of RFC 1870, BODY of
//! RFC 6152, SMTPUTF8 of RFC 6531, RET and ENVID of RFC 3461), as are those
//! of RCPT (NOTIFY and ORCPT of RFC 3461); any other parameter is refused
//! with 555 (RFC 5321 §4.1.1.11).
//! The AUTH parameter of MAIL (RFC 4954 §5) is accepted and its value
//! ignored: we relay nothing, so the original submitter is never passed on.

use crate::parse::{self, EsmtpParam, ForwardPath, Host, ReversePath};
use crate::reply::Reply;

/// The BODY parameter of MAIL (RFC 6152).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Body {
    /// No BODY parameter.
    #[default]
    Unspecified,
    /// `BODY=7BIT`
    SevenBit,
    /// `BODY=8BITMIME`
    EightBitMime,
}

/// The parameters of MAIL FROM we support.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MailParams {
    /// `SIZE=n`: the size the client declares (RFC 1870).
    pub size: Option<u64>,
    /// `BODY=`
    pub body: Body,
    /// `SMTPUTF8` was given (RFC 6531).
    pub smtputf8: bool,
    /// `RET=FULL|HDRS` (RFC 3461 §4.3): what a DSN returns of the message.
    pub ret: Option<Ret>,
    /// `ENVID=xtext` (RFC 3461 §4.4), decoded.
    pub envid: Option<String>,
}

/// The RET parameter of MAIL (RFC 3461 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ret {
    /// Return the whole message in a failure DSN.
    Full,
    /// Return its headers only.
    Hdrs,
}

impl Ret {
    /// The keyword, as the queue stores it.
    pub fn as_str(self) -> &'static str {
        match self {
            Ret::Full => "FULL",
            Ret::Hdrs => "HDRS",
        }
    }
}

/// The parameters of RCPT TO we support (RFC 3461 §4.1, §4.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RcptParams {
    /// `NOTIFY=`: `NEVER`, or a comma list of `SUCCESS`, `FAILURE`,
    /// `DELAY`, upper-cased.
    pub notify: Option<String>,
    /// `ORCPT=addr-type;xtext`, decoded: e.g. `rfc822;bob@example.org`.
    pub orcpt: Option<String>,
}

/// RFC 3461 §4.4: an ENVID is at most 100 characters (before decoding).
pub const MAX_ENVID: usize = 100;
/// RFC 3461 §4.2: an ORCPT is at most 500 characters.
pub const MAX_ORCPT: usize = 500;

/// One parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `EHLO name`: the name as the client gave it.
    Ehlo(String),
    /// `HELO name`
    Helo(String),
    /// `MAIL FROM:<path> params`
    Mail {
        /// The reverse path.
        from: ReversePath,
        /// Its parameters.
        params: MailParams,
    },
    /// `RCPT TO:<path> params`
    Rcpt {
        /// The forward path.
        to: ForwardPath,
        /// Its DSN parameters.
        params: RcptParams,
    },
    /// `DATA`
    Data,
    /// `BDAT size [LAST]` (RFC 3030)
    Bdat {
        /// Octets in the chunk that follows the command line.
        size: u64,
        /// The chunk ends the message.
        last: bool,
    },
    /// `RSET`
    Rset,
    /// `VRFY string`
    Vrfy(String),
    /// `EXPN string`
    Expn(String),
    /// `HELP [topic]`
    Help(Option<String>),
    /// `NOOP [string]`
    Noop,
    /// `QUIT`
    Quit,
    /// `STARTTLS` (RFC 3207 §4)
    StartTls,
    /// `AUTH mechanism [initial-response]` (RFC 4954 §4)
    Auth {
        /// The SASL mechanism name, upper-cased.
        mechanism: String,
        /// The initial response as sent (base64, or `=` for empty).
        initial: Option<String>,
    },
}

/// Why a line is not an acceptable command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The verb is not one we know: 500 5.5.2.
    #[error("command not recognized")]
    Unrecognized,
    /// A command we know of but do not offer (TURN, STARTTLS, AUTH...): 502.
    #[error("{0} not implemented")]
    NotImplemented(String),
    /// The arguments do not follow the grammar: 501, with the usage and
    /// the enhanced code to show.
    #[error("syntax error, expected {usage}")]
    Syntax {
        /// Enhanced status code (5.5.4, or 5.1.7 / 5.1.3 for bad addresses).
        enhanced: &'static str,
        /// The expected form.
        usage: &'static str,
    },
    /// An ESMTP parameter we do not support: 555 5.5.4.
    #[error("unsupported parameter {0}")]
    UnknownParameter(String),
}

impl CommandError {
    /// The reply this error earns.
    pub fn reply(&self) -> Reply {
        match self {
            CommandError::Unrecognized => Reply::unrecognized(),
            CommandError::NotImplemented(v) => Reply::not_implemented(v),
            CommandError::Syntax { enhanced, usage } => Reply::syntax(enhanced, usage),
            CommandError::UnknownParameter(k) => Reply::unknown_parameter(k),
        }
    }
}

const fn syntax(enhanced: &'static str, usage: &'static str) -> CommandError {
    CommandError::Syntax { enhanced, usage }
}

/// Verbs from RFC 5321 and common extensions that we recognise but do not
/// implement; they get 502 instead of 500.
const NOT_IMPLEMENTED: &[&str] = &["TURN", "ETRN", "ATRN", "SEND", "SOML", "SAML", "XCLIENT"];

impl Command {
    /// Parse one command line (without its line ending).
    pub fn parse(line: &[u8]) -> Result<Command, CommandError> {
        let (verb, rest) = parse::verb(line).ok_or(CommandError::Unrecognized)?;
        let only = |cmd: Command, usage: &'static str| {
            if rest.iter().all(|&b| b == b' ' || b == b'\t') {
                Ok(cmd)
            } else {
                Err(syntax("5.5.4", usage))
            }
        };
        match verb.as_str() {
            "EHLO" | "HELO" => {
                let usage = if verb == "EHLO" {
                    "EHLO domain-or-address-literal"
                } else {
                    "HELO domain"
                };
                let name = helo_name(rest).ok_or(syntax("5.5.4", usage))?;
                Ok(if verb == "EHLO" {
                    Command::Ehlo(name)
                } else {
                    Command::Helo(name)
                })
            }
            "MAIL" => {
                let (_, (from, params)) = parse::mail_args(rest)
                    .map_err(|_| syntax("5.1.7", "MAIL FROM:<address> [parameters]"))?;
                Ok(Command::Mail {
                    from,
                    params: mail_params(params)?,
                })
            }
            "RCPT" => {
                let (_, (to, params)) = parse::rcpt_args(rest)
                    .map_err(|_| syntax("5.1.3", "RCPT TO:<address> [parameters]"))?;
                Ok(Command::Rcpt {
                    to,
                    params: rcpt_params(params)?,
                })
            }
            "DATA" => only(Command::Data, "DATA"),
            "BDAT" => {
                let (_, (size, last)) =
                    parse::bdat_args(rest).map_err(|_| syntax("5.5.4", "BDAT size [LAST]"))?;
                Ok(Command::Bdat { size, last })
            }
            "RSET" => only(Command::Rset, "RSET"),
            "QUIT" => only(Command::Quit, "QUIT"),
            "NOOP" => Ok(Command::Noop),
            "STARTTLS" => only(Command::StartTls, "STARTTLS (no parameters)"),
            "AUTH" => auth_args(rest).ok_or(syntax("5.5.4", "AUTH mechanism [initial-response]")),
            "VRFY" => {
                let (_, s) = parse::string_arg(rest).map_err(|_| syntax("5.5.4", "VRFY string"))?;
                Ok(Command::Vrfy(s))
            }
            "EXPN" => {
                let (_, s) = parse::string_arg(rest).map_err(|_| syntax("5.5.4", "EXPN string"))?;
                Ok(Command::Expn(s))
            }
            "HELP" => {
                if rest.iter().all(|&b| b == b' ' || b == b'\t') {
                    Ok(Command::Help(None))
                } else {
                    let (_, s) =
                        parse::string_arg(rest).map_err(|_| syntax("5.5.4", "HELP [topic]"))?;
                    Ok(Command::Help(Some(s)))
                }
            }
            v if NOT_IMPLEMENTED.contains(&v) && (rest.is_empty() || rest[0] == b' ') => {
                Err(CommandError::NotImplemented(verb))
            }
            _ => Err(CommandError::Unrecognized),
        }
    }
}

/// The EHLO/HELO argument: a Domain or address literal per the grammar,
/// else (for interoperability with clients whose host names break the
/// rules, e.g. with `_`) any single printable token.
fn helo_name(rest: &[u8]) -> Option<String> {
    if let Ok((_, host)) = parse::ehlo_args(rest) {
        return Some(match host {
            Host::Domain(d) => d,
            Host::Literal(l) => l.to_string(),
        });
    }
    let token = rest.strip_prefix(b" ")?;
    let token = token.trim_ascii_end();
    if token.is_empty() || !token.iter().all(|&b| (33..=126).contains(&b)) {
        return None;
    }
    String::from_utf8(token.to_vec()).ok()
}

/// `auth-command = "AUTH" SP sasl-mech [SP initial-response]` with
/// `sasl-mech = 1*20(UPPER-ALPHA / DIGIT / "-" / "_")` (RFC 4954 §4; the
/// name is matched case-insensitively) and `initial-response = base64 / "="`.
/// The response is only checked for being one token here; decoding it is
/// the SASL exchange's job (a bad one gets 501 5.5.2 there).
fn auth_args(rest: &[u8]) -> Option<Command> {
    let rest = rest.strip_prefix(b" ")?.trim_ascii_end();
    let mut words = rest.split(|&b| b == b' ');
    let mech = words.next()?;
    let initial = words.next();
    if words.next().is_some()
        || mech.is_empty()
        || mech.len() > 20
        || !mech
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    let initial = match initial {
        Some(w) if w.is_empty() || !w.iter().all(|&b| (33..=126).contains(&b)) => return None,
        Some(w) => Some(String::from_utf8_lossy(w).into_owned()),
        None => None,
    };
    Some(Command::Auth {
        mechanism: String::from_utf8_lossy(mech).to_ascii_uppercase(),
        initial,
    })
}

fn mail_params(params: Vec<EsmtpParam>) -> Result<MailParams, CommandError> {
    let mut out = MailParams::default();
    let mut seen: Vec<String> = Vec::new();
    for p in params {
        if seen.contains(&p.keyword) {
            return Err(syntax("5.5.4", "each MAIL parameter at most once"));
        }
        seen.push(p.keyword.clone());
        match (p.keyword.as_str(), p.value.as_deref()) {
            ("SIZE", Some(v)) => {
                let n = v
                    .parse::<u64>()
                    .map_err(|_| syntax("5.5.4", "SIZE=number-of-octets"))?;
                out.size = Some(n);
            }
            ("SIZE", None) => return Err(syntax("5.5.4", "SIZE=number-of-octets")),
            ("BODY", Some(v)) if v.eq_ignore_ascii_case("7BIT") => out.body = Body::SevenBit,
            ("BODY", Some(v)) if v.eq_ignore_ascii_case("8BITMIME") => {
                out.body = Body::EightBitMime
            }
            ("BODY", _) => return Err(syntax("5.5.4", "BODY=7BIT or BODY=8BITMIME")),
            ("SMTPUTF8", None) => out.smtputf8 = true,
            ("SMTPUTF8", Some(_)) => return Err(syntax("5.5.4", "SMTPUTF8 takes no value")),
            // RFC 4954 §5: accepted (as if `<>`), never passed on.
            ("AUTH", Some(_)) => {}
            ("AUTH", None) => return Err(syntax("5.5.4", "AUTH=addr-spec or AUTH=<>")),
            ("RET", Some(v)) if v.eq_ignore_ascii_case("FULL") => out.ret = Some(Ret::Full),
            ("RET", Some(v)) if v.eq_ignore_ascii_case("HDRS") => out.ret = Some(Ret::Hdrs),
            ("RET", _) => return Err(syntax("5.5.4", "RET=FULL or RET=HDRS")),
            ("ENVID", Some(v)) if v.len() <= MAX_ENVID => {
                out.envid = Some(xtext(v).ok_or(syntax("5.5.4", "ENVID=xtext"))?);
            }
            ("ENVID", Some(_)) => {
                return Err(syntax("5.5.4", "ENVID=xtext of at most 100 characters"))
            }
            ("ENVID", None) => return Err(syntax("5.5.4", "ENVID=xtext")),
            (k, _) => return Err(CommandError::UnknownParameter(k.to_owned())),
        }
    }
    Ok(out)
}

const NOTIFY_USAGE: &str = "NOTIFY=NEVER or NOTIFY=SUCCESS,FAILURE,DELAY (any of the three)";
const ORCPT_USAGE: &str = "ORCPT=addr-type;xtext of at most 500 characters";

/// RCPT parameters (RFC 3461 §4.1, §4.2), each at most once.
fn rcpt_params(params: Vec<EsmtpParam>) -> Result<RcptParams, CommandError> {
    let mut out = RcptParams::default();
    let mut seen: Vec<String> = Vec::new();
    for p in params {
        if seen.contains(&p.keyword) {
            return Err(syntax("5.5.4", "each RCPT parameter at most once"));
        }
        seen.push(p.keyword.clone());
        match (p.keyword.as_str(), p.value.as_deref()) {
            ("NOTIFY", Some(v)) => {
                out.notify = Some(notify(v).ok_or(syntax("5.5.4", NOTIFY_USAGE))?)
            }
            ("NOTIFY", None) => return Err(syntax("5.5.4", NOTIFY_USAGE)),
            ("ORCPT", Some(v)) => out.orcpt = Some(orcpt(v).ok_or(syntax("5.5.4", ORCPT_USAGE))?),
            ("ORCPT", None) => return Err(syntax("5.5.4", ORCPT_USAGE)),
            (k, _) => return Err(CommandError::UnknownParameter(k.to_owned())),
        }
    }
    Ok(out)
}

/// `NOTIFY=` value: `NEVER` alone, or SUCCESS / FAILURE / DELAY each at
/// most once, comma separated, any case (RFC 3461 §4.1). Upper-cased.
fn notify(v: &str) -> Option<String> {
    let v = v.to_ascii_uppercase();
    if v == "NEVER" {
        return Some(v);
    }
    let mut seen: Vec<&str> = Vec::new();
    for word in v.split(',') {
        if !matches!(word, "SUCCESS" | "FAILURE" | "DELAY") || seen.contains(&word) {
            return None;
        }
        seen.push(word);
    }
    Some(v)
}

/// `ORCPT=addr-type ";" xtext` (RFC 3461 §4.2); addr-type is an atom
/// (here: letters, digits, `-`). Decoded; the type is kept as given.
fn orcpt(v: &str) -> Option<String> {
    if v.len() > MAX_ORCPT {
        return None;
    }
    let (kind, addr) = v.split_once(';')?;
    if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return None;
    }
    let addr = xtext(addr)?;
    if addr.is_empty() {
        return None;
    }
    Some(format!("{kind};{addr}"))
}

/// Decode RFC 3461 §4 xtext: `+` and two hex digits stand for one octet,
/// any other character from `!` to `~` but `+` and `=` for itself. The
/// result must be printable US-ASCII (space allowed), so nothing decoded
/// can break a header line of a DSN.
pub fn xtext(v: &str) -> Option<String> {
    let b = v.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = match b[i] {
            b'+' => {
                let hex = b.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                i += 2;
                u8::from_str_radix(hex, 16).ok()?
            }
            b'=' => return None,
            c => c,
        };
        if !(0x20..=0x7e).contains(&c) {
            return None;
        }
        out.push(char::from(c));
        i += 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::Mailbox;

    fn p(s: &str) -> Result<Command, CommandError> {
        Command::parse(s.as_bytes())
    }

    fn code(s: &str) -> u16 {
        match p(s) {
            Ok(_) => 0,
            Err(e) => e.reply().code,
        }
    }

    #[test]
    fn verbs_are_case_insensitive() {
        assert_eq!(p("quit"), Ok(Command::Quit));
        assert_eq!(p("QuIt"), Ok(Command::Quit));
        assert_eq!(p("data"), Ok(Command::Data));
        assert_eq!(p("rset "), Ok(Command::Rset));
        assert_eq!(p("noop hello there"), Ok(Command::Noop));
        assert_eq!(p("help"), Ok(Command::Help(None)));
        assert_eq!(p("HELP mail"), Ok(Command::Help(Some("mail".into()))));
        assert_eq!(
            p("ehlo client.example"),
            Ok(Command::Ehlo("client.example".into()))
        );
        assert_eq!(
            p("HELO [127.0.0.1]"),
            Ok(Command::Helo("[127.0.0.1]".into()))
        );
        assert_eq!(p("EHLO my_host"), Ok(Command::Ehlo("my_host".into())));
        assert_eq!(
            p("bdat 10 last"),
            Ok(Command::Bdat {
                size: 10,
                last: true
            })
        );
        assert_eq!(p("VRFY bob"), Ok(Command::Vrfy("bob".into())));
    }

    #[test]
    fn reply_codes_for_bad_lines() {
        let table: &[(&str, u16)] = &[
            ("", 500),
            ("FOO", 500),
            ("MAILX FROM:<a@b>", 500),
            ("1234", 500),
            ("EHLO", 501),
            ("EHLO ", 501),
            ("HELO a b", 501),
            ("QUIT now", 501),
            ("DATA x", 501),
            ("RSET x", 501),
            ("VRFY", 501),
            ("MAIL FROM:bob", 501),
            ("MAIL TO:<a@b>", 501),
            ("MAIL FROM:<a@b> SIZE=x", 501),
            ("MAIL FROM:<a@b> SIZE", 501),
            ("MAIL FROM:<a@b> BODY=BINARYMIME", 501),
            ("MAIL FROM:<a@b> SIZE=1 SIZE=2", 501),
            ("MAIL FROM:<a@b> SMTPUTF8=yes", 501),
            ("MAIL FROM:<a@b> RET=HDRS", 0),
            ("MAIL FROM:<a@b> RET=hdrs ENVID=QQ314159", 0),
            ("MAIL FROM:<a@b> RET=ALL", 501),
            ("MAIL FROM:<a@b> RET", 501),
            ("MAIL FROM:<a@b> RET=FULL RET=HDRS", 501),
            ("MAIL FROM:<a@b> ENVID=a+0Db", 501),
            ("MAIL FROM:<a@b> ENVID=a+2", 501),
            ("MAIL FROM:<a@b> XYZZY=1", 555),
            ("MAIL FROM:<a@b> AUTH=<>", 0),
            ("MAIL FROM:<a@b> AUTH", 501),
            ("RCPT TO:<a@b> NOTIFY=NEVER", 0),
            ("RCPT TO:<a@b> NOTIFY=success,DELAY ORCPT=rfc822;a@b", 0),
            ("RCPT TO:<a@b> NOTIFY=NEVER,SUCCESS", 501),
            ("RCPT TO:<a@b> NOTIFY=FAILURE,FAILURE", 501),
            ("RCPT TO:<a@b> NOTIFY=", 501),
            ("RCPT TO:<a@b> NOTIFY", 501),
            ("RCPT TO:<a@b> ORCPT=a@b", 501),
            ("RCPT TO:<a@b> ORCPT=rfc822;", 501),
            ("RCPT TO:<a@b> NOTIFY=NEVER NOTIFY=NEVER", 501),
            ("RCPT TO:<a@b> XYZZY", 555),
            ("RCPT TO:a@b", 501),
            ("BDAT", 501),
            ("BDAT -1", 501),
            ("STARTTLS", 0),
            ("starttls ", 0),
            ("STARTTLS now", 501),
            ("AUTH PLAIN", 0),
            ("AUTH plain AGJvYgBwdw==", 0),
            ("AUTH LOGIN =", 0),
            ("AUTH", 501),
            ("AUTH ", 501),
            ("AUTH PLAIN a b", 501),
            ("AUTH PL@IN", 501),
            ("AUTH ABCDEFGHIJKLMNOPQRSTU", 501),
            ("TURN", 502),
            ("EXPN", 501),
            ("EXPN list", 0),
            ("MAIL FROM:<a@b> SIZE=100 BODY=8bitmime SMTPUTF8", 0),
        ];
        for (line, want) in table {
            assert_eq!(code(line), *want, "line {line:?}");
        }
    }

    #[test]
    fn mail_params_are_typed() {
        let c = p("MAIL FROM:<a@b.c> SIZE=1000 BODY=8BITMIME SMTPUTF8").unwrap();
        assert_eq!(
            c,
            Command::Mail {
                from: ReversePath::Mailbox(Mailbox {
                    local: "a".into(),
                    host: Host::Domain("b.c".into())
                }),
                params: MailParams {
                    size: Some(1000),
                    body: Body::EightBitMime,
                    smtputf8: true,
                    ..MailParams::default()
                }
            }
        );
        assert_eq!(
            p("MAIL FROM:<>"),
            Ok(Command::Mail {
                from: ReversePath::Null,
                params: MailParams::default()
            })
        );
        assert_eq!(
            p("RCPT TO:<postmaster>"),
            Ok(Command::Rcpt {
                to: ForwardPath::Postmaster,
                params: RcptParams::default()
            })
        );
    }

    #[test]
    fn dsn_params_are_decoded() {
        let Ok(Command::Mail { params, .. }) =
            p("MAIL FROM:<a@b.c> RET=hdrs ENVID=QQ+2B314+3D159+20x")
        else {
            panic!("MAIL with RET/ENVID refused");
        };
        assert_eq!(params.ret, Some(Ret::Hdrs));
        assert_eq!(params.envid.as_deref(), Some("QQ+314=159 x"));
        let Ok(Command::Rcpt { params, .. }) =
            p("RCPT TO:<x@y.z> notify=failure,Delay ORCPT=rfc822;x+2Btag@y.z")
        else {
            panic!("RCPT with NOTIFY/ORCPT refused");
        };
        assert_eq!(params.notify.as_deref(), Some("FAILURE,DELAY"));
        assert_eq!(params.orcpt.as_deref(), Some("rfc822;x+tag@y.z"));
        let long = format!("MAIL FROM:<a@b.c> ENVID={}", "x".repeat(101));
        assert_eq!(code(&long), 501);
        let long = format!("RCPT TO:<a@b.c> ORCPT=rfc822;{}", "x".repeat(500));
        assert_eq!(code(&long), 501);
    }

    #[test]
    fn auth_mechanism_is_upper_cased_and_the_response_kept() {
        assert_eq!(
            p("auth login dXNlcg=="),
            Ok(Command::Auth {
                mechanism: "LOGIN".into(),
                initial: Some("dXNlcg==".into())
            })
        );
        assert_eq!(
            p("AUTH CRAM-MD5"),
            Ok(Command::Auth {
                mechanism: "CRAM-MD5".into(),
                initial: None
            })
        );
        assert_eq!(p("STARTTLS"), Ok(Command::StartTls));
    }

    #[test]
    fn unknown_parameter_names_the_keyword() {
        let e = p("MAIL FROM:<a@b> X-FOO=1").unwrap_err();
        assert_eq!(e, CommandError::UnknownParameter("X-FOO".into()));
        assert!(e.reply().to_string().starts_with("555 5.5.4 "));
    }
}
