//! `command` (RFC 3501 §9): tag, command name, and the arguments of every
//! command we implement, including the extension commands we advertise.
//! FETCH attributes live in `fetch.rs`, search keys in `search.rs`.

use super::fetch::fetch_args;
use super::search::search_args;
use super::{
    astring, astring_text, atom, flag, flag_list, imap_tag, mailbox, mod_sequence_value, nil,
    nstring, sequence_set, sp, string, PResult,
};
use crate::command::{Command, CommandBody, StoreMode};
use nom::branch::alt;
use nom::bytes::complete::{tag_no_case, take_while1};
use nom::character::complete::char;
use nom::combinator::{all_consuming, map, opt, value};
use nom::multi::{separated_list0, separated_list1};
use nom::sequence::{delimited, preceded, separated_pair};
use nom::Parser;

/// What kind of refusal a syntax error calls for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyntaxKind {
    /// Plain `BAD`.
    Bad,
    /// SEARCH with an unsupported charset: `NO [BADCHARSET ...]`.
    BadCharset,
    /// Well-formed, but over an implementation limit (a SEARCH nested too
    /// deeply or with too many keys, a LIST pattern too long):
    /// `NO [LIMIT]` (RFC 5530 §3).
    Limit,
}

/// A command that could not be parsed. Carries the tag when one was read,
/// so the session can answer tagged (`a1 BAD ...`) rather than untagged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct SyntaxError {
    /// The tag, if the line started with a valid one.
    pub tag: Option<String>,
    /// Human-readable reason for the BAD response.
    pub reason: String,
    /// What to answer.
    pub kind: SyntaxKind,
}

/// [`parse_command`] in the grammar `mode` says the session has chosen
/// (UTF-8 mailbox names, UTF8=ACCEPT).
///
/// # Errors
/// As [`parse_command`].
pub fn parse_command_as(input: &[u8], mode: super::ParseMode) -> Result<Command, SyntaxError> {
    super::with_mode(mode, || parse_command(input))
}

/// Parse one complete command (literals inline, no trailing CRLF), mailbox
/// names in modified UTF-7.
///
/// # Errors
/// [`SyntaxError`] with the tag (if readable) and a reason.
pub fn parse_command(input: &[u8]) -> Result<Command, SyntaxError> {
    let bad = |tag: Option<&str>, reason: String| SyntaxError {
        tag: tag.map(str::to_owned),
        reason,
        kind: SyntaxKind::Bad,
    };
    let (rest, tag) = match imap_tag(input) {
        Ok((rest, t)) => (rest, String::from_utf8_lossy(t).into_owned()),
        Err(_) => return Err(bad(None, "missing or invalid tag".into())),
    };
    let Ok((rest, _)) = sp(rest) else {
        return Err(bad(Some(&tag), "missing command".into()));
    };
    let Ok((rest, name)) = command_name(rest) else {
        return Err(bad(Some(&tag), "missing command".into()));
    };
    let name = name.to_ascii_uppercase();
    let (rest, name, uid) = if name == "UID" {
        match preceded(sp, command_name).parse(rest) {
            Ok((r, n)) => (r, n.to_ascii_uppercase(), true),
            Err(_) => return Err(bad(Some(&tag), "UID needs a command".into())),
        }
    } else {
        (rest, name, false)
    };
    if uid
        && !matches!(
            name.as_str(),
            "FETCH" | "SEARCH" | "STORE" | "COPY" | "MOVE" | "EXPUNGE" | "SORT" | "THREAD"
        )
    {
        return Err(bad(Some(&tag), format!("UID {name} is not a UID command")));
    }
    if matches!(name.as_str(), "SEARCH" | "SORT" | "THREAD") {
        let cs = match name.as_str() {
            "SEARCH" => super::search::unsupported_charset(rest),
            other => super::sort::unsupported_charset(other, rest),
        };
        if let Some(cs) = cs {
            return Err(SyntaxError {
                tag: Some(tag),
                reason: format!("charset {cs} is not supported"),
                kind: SyntaxKind::BadCharset,
            });
        }
    }
    match arguments(&name, uid, rest) {
        Some(Ok((_, body))) => Ok(Command { tag, body }),
        Some(Err(e)) => {
            if let nom::Err::Failure(f) = &e {
                if let Some(reason) = over_limit(&name, f.code) {
                    return Err(SyntaxError {
                        tag: Some(tag),
                        reason,
                        kind: SyntaxKind::Limit,
                    });
                }
            }
            let at = match &e {
                nom::Err::Error(e) | nom::Err::Failure(e) => e.input,
                nom::Err::Incomplete(_) => rest,
            };
            let reason = if at.is_empty() {
                format!("{name}: arguments missing or incomplete")
            } else {
                let shown: String = String::from_utf8_lossy(&at[..at.len().min(24)])
                    .chars()
                    .map(|c| if c.is_control() { '.' } else { c })
                    .collect();
                format!("{name}: syntax error at \"{shown}\"")
            };
            Err(bad(Some(&tag), reason))
        }
        None => Err(bad(Some(&tag), format!("unknown command {name}"))),
    }
}

/// The text of a refusal for an implementation limit, if `code` (of a nom
/// `Failure`) is one for the command `name`.
fn over_limit(name: &str, code: nom::error::ErrorKind) -> Option<String> {
    use crate::limits::{
        MAX_LIST_PATTERN, MAX_SEARCH_DEPTH, MAX_SEARCH_KEYS, MAX_SEARCH_TEXT_KEYS,
    };
    match name {
        "SORT" if code == super::sort::TOO_MANY_CRITERIA => Some(format!(
            "Too many SORT criteria (limit {})", super::sort::MAX_SORT_CRITERIA
        )),
        "SEARCH" | "SORT" | "THREAD" if code == super::search::TOO_DEEP => Some(format!(
            "SEARCH criteria nested too deeply (limit {MAX_SEARCH_DEPTH} levels of NOT, OR and parentheses)"
        )),
        "SEARCH" | "SORT" | "THREAD" if code == super::search::TOO_MANY => Some(format!(
            "Too many SEARCH keys (limit {MAX_SEARCH_KEYS})"
        )),
        "SEARCH" | "SORT" | "THREAD" if code == super::search::TOO_MANY_TEXT => Some(format!(
            "Too many TEXT and BODY keys in one SEARCH (limit {MAX_SEARCH_TEXT_KEYS})"
        )),
        "LIST" | "LSUB" if code == LIST_TOO_LONG => Some(format!(
            "{name} reference or pattern too long (limit {MAX_LIST_PATTERN} octets each)"
        )),
        "LIST" if code == super::list_ext::TOO_MANY_PATTERNS => Some(format!(
            "Too many LIST patterns (limit {})",
            crate::limits::MAX_LIST_PATTERNS
        )),
        "NOTIFY" if code == super::notify::TOO_MANY => Some(format!(
            "Too many mailboxes or event groups in NOTIFY (limit {})",
            crate::limits::MAX_NOTIFY_NAMES
        )),
        _ => None,
    }
}

/// The nom error kind of a LIST reference or pattern over the limit.
const LIST_TOO_LONG: nom::error::ErrorKind = nom::error::ErrorKind::TooLarge;

fn command_name(i: &[u8]) -> PResult<'_, String> {
    map(
        take_while1(|c: u8| c.is_ascii_alphanumeric()),
        |s: &[u8]| String::from_utf8_lossy(s).into_owned(),
    )
    .parse(i)
}

/// Dispatch on the (upper-cased) command name; `None` if unknown.
fn arguments<'a>(name: &str, uid: bool, i: &'a [u8]) -> Option<PResult<'a, CommandBody>> {
    let no_args = |body: CommandBody| -> PResult<'a, CommandBody> {
        all_consuming(value(body, nom::combinator::success(()))).parse(i)
    };
    let r = match name {
        "CAPABILITY" => no_args(CommandBody::Capability),
        "NOOP" => no_args(CommandBody::Noop),
        "LOGOUT" => no_args(CommandBody::Logout),
        "STARTTLS" => no_args(CommandBody::StartTls),
        "CHECK" => no_args(CommandBody::Check),
        "CLOSE" => no_args(CommandBody::Close),
        "UNSELECT" => no_args(CommandBody::Unselect),
        "IDLE" => no_args(CommandBody::Idle),
        "NAMESPACE" => no_args(CommandBody::Namespace),
        "UNAUTHENTICATE" => no_args(CommandBody::Unauthenticate),
        "EXPUNGE" if uid => all_consuming(map(preceded(sp, sequence_set), |s| {
            CommandBody::Expunge { uids: Some(s) }
        }))
        .parse(i),
        "EXPUNGE" => no_args(CommandBody::Expunge { uids: None }),
        "LOGIN" => login(i),
        "AUTHENTICATE" => authenticate(i),
        // compress = "COMPRESS" SP algorithm (RFC 4978 §5); any atom, so
        // that an unknown one gets a clear answer.
        "COMPRESS" => all_consuming(map(preceded(sp, atom), |a: &[u8]| {
            CommandBody::Compress(String::from_utf8_lossy(a).to_ascii_uppercase())
        }))
        .parse(i),
        "SELECT" | "EXAMINE" => super::select::select(name == "SELECT", i),
        "CREATE" => create(i),
        "DELETE" => one_mailbox(i, CommandBody::Delete),
        "SUBSCRIBE" => one_mailbox(i, CommandBody::Subscribe),
        "UNSUBSCRIBE" => one_mailbox(i, CommandBody::Unsubscribe),
        "RENAME" => all_consuming(map(
            preceded(sp, separated_pair(mailbox, sp, mailbox)),
            |(a, b)| CommandBody::Rename(a, b),
        ))
        .parse(i),
        "LIST" => super::list_ext::list(i),
        "LSUB" => list(false, i),
        "NOTIFY" => super::notify::notify(i),
        "STATUS" => status(i),
        "APPEND" => super::append::append_args(i),
        "GENURLAUTH" => super::urlauth::genurlauth(i),
        "RESETKEY" => super::urlauth::resetkey(i),
        "URLFETCH" => super::urlauth::urlfetch(i),
        "SEARCH" => search_args(uid, i),
        "SORT" => super::sort::sort_args(uid, i),
        "THREAD" => super::sort::thread_args(uid, i),
        "FETCH" => fetch_args(uid, i),
        "STORE" => store(uid, i),
        "COPY" | "MOVE" => copy(name == "MOVE", uid, i),
        "ID" => id(i),
        "CANCELUPDATE" => super::esearch::cancelupdate(i),
        // RFC 9208 §4.2 (quota-root names are astrings).
        "GETQUOTA" => {
            all_consuming(map(preceded(sp, astring_text), CommandBody::GetQuota)).parse(i)
        }
        "GETQUOTAROOT" => one_mailbox(i, CommandBody::GetQuotaRoot),
        "SETQUOTA" => all_consuming(map(
            preceded(
                sp,
                separated_pair(
                    astring_text,
                    sp,
                    delimited(
                        char('('),
                        separated_list0(
                            sp,
                            separated_pair(
                                map(atom, |a: &[u8]| {
                                    String::from_utf8_lossy(a).to_ascii_uppercase()
                                }),
                                sp,
                                nom::character::complete::u64,
                            ),
                        ),
                        char(')'),
                    ),
                ),
            ),
            |(root, limits)| CommandBody::SetQuota(root, limits),
        ))
        .parse(i),
        "ENABLE" => all_consuming(map(
            nom::multi::many1(preceded(sp, atom)),
            |caps: Vec<&[u8]>| {
                CommandBody::Enable(
                    caps.iter()
                        .map(|c| String::from_utf8_lossy(c).to_ascii_uppercase())
                        .collect(),
                )
            },
        ))
        .parse(i),
        _ => return None,
    };
    Some(r)
}

/// `login = "LOGIN" SP userid SP password`
fn login(i: &[u8]) -> PResult<'_, CommandBody> {
    all_consuming(map(
        preceded(sp, separated_pair(astring_text, sp, astring_text)),
        |(user, password)| CommandBody::Login { user, password },
    ))
    .parse(i)
}

/// `authenticate = "AUTHENTICATE" SP auth-type [SP (base64 / "=")]`
fn authenticate(i: &[u8]) -> PResult<'_, CommandBody> {
    let b64 = take_while1(|c: u8| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'='));
    all_consuming(map(
        (preceded(sp, atom), opt(preceded(sp, b64))),
        |(mech, init): (&[u8], Option<&[u8]>)| CommandBody::Authenticate {
            mechanism: String::from_utf8_lossy(mech).to_ascii_uppercase(),
            initial: init.map(|b| String::from_utf8_lossy(b).into_owned()),
        },
    ))
    .parse(i)
}

/// ```text
/// create = "CREATE" SP mailbox [SP "(" "USE" SP "(" [use-attr *(SP use-attr)] ")" ")"]
/// use-attr = "\All" / "\Archive" / ... / "\" atom
/// ```
/// (RFC 4466 §2.2 `create-param`, RFC 6154 §6); which attributes are
/// accepted is the executor's business (`NO [USEATTR]`).
fn create(i: &[u8]) -> PResult<'_, CommandBody> {
    let use_attrs = delimited(
        (char('('), tag_no_case("USE"), sp, char('(')),
        separated_list0(sp, flag),
        (char(')'), char(')')),
    );
    all_consuming(map(
        (preceded(sp, mailbox), opt(preceded(sp, use_attrs))),
        |(mailbox, special_use)| CommandBody::Create {
            mailbox,
            special_use: special_use.unwrap_or_default(),
        },
    ))
    .parse(i)
}

fn one_mailbox(i: &[u8], f: fn(String) -> CommandBody) -> PResult<'_, CommandBody> {
    all_consuming(map(preceded(sp, mailbox), f)).parse(i)
}

/// `list = "LIST" SP mailbox SP list-mailbox` (same shape for LSUB).
/// The reference and the pattern may each be at most
/// [`crate::limits::MAX_LIST_PATTERN`] octets of UTF-8 (a `Failure` that
/// `parse_command` answers `NO [LIMIT]`), so matching stays cheap.
fn list(is_list: bool, i: &[u8]) -> PResult<'_, CommandBody> {
    // RETURN (SPECIAL-USE) is tolerated (RFC 6154 §2 with LIST-EXTENDED);
    // our LIST always returns special-use attributes anyway.
    let ret = (
        sp,
        tag_no_case("RETURN"),
        sp,
        delimited(char('('), separated_list0(sp, atom), char(')')),
    );
    all_consuming(map(
        (
            preceded(sp, mailbox_reference),
            preceded(sp, list_mailbox),
            opt(ret),
        ),
        move |(reference, pattern, _)| {
            if is_list {
                CommandBody::List { reference, pattern }
            } else {
                CommandBody::Lsub { reference, pattern }
            }
        },
    ))
    .parse(i)
}

/// The LIST reference is a `mailbox`, but must not have INBOX normalised
/// differently from the pattern it is joined to, so decode it plainly.
pub(super) fn mailbox_reference(i: &[u8]) -> PResult<'_, String> {
    let (rest, raw) = astring(i)?;
    bounded_list_name(i, rest, &raw)
}

/// `list-mailbox = 1*list-char / string`, decoded from modified UTF-7.
pub(super) fn list_mailbox(i: &[u8]) -> PResult<'_, String> {
    let (rest, raw) = alt((
        map(take_while1(super::is_list_char), |s: &[u8]| s.to_vec()),
        string,
    ))
    .parse(i)?;
    bounded_list_name(i, rest, &raw)
}

/// Decode a LIST reference or pattern read from `i` (`raw`, ending at
/// `rest`), refusing one over the limit: a wire form over four times the
/// limit undecoded (modified UTF-7 of real text is at most 2.5 times its
/// UTF-8), else by its decoded length.
fn bounded_list_name<'a>(i: &'a [u8], rest: &'a [u8], raw: &[u8]) -> PResult<'a, String> {
    let max = crate::limits::MAX_LIST_PATTERN;
    let too_long = || nom::Err::Failure(nom::error::Error::new(i, LIST_TOO_LONG));
    if raw.len() > max.saturating_mul(4) {
        return Err(too_long());
    }
    let name = match super::decode_name(raw) {
        Ok(name) => name,
        // Not valid modified UTF-7: a pattern that matches no mailbox.
        Err(_) => format!("{}{}", super::INVALID_UTF7, String::from_utf8_lossy(raw)),
    };
    if name.len() > max {
        return Err(too_long());
    }
    Ok((rest, name))
}

/// `status = "STATUS" SP mailbox SP "(" status-att *(SP status-att) ")"`
fn status(i: &[u8]) -> PResult<'_, CommandBody> {
    let att = super::list_ext::status_att;
    all_consuming(map(
        (
            preceded(sp, mailbox),
            preceded(
                sp,
                delimited(char('('), separated_list1(sp, att), char(')')),
            ),
        ),
        |(mailbox, items)| CommandBody::Status { mailbox, items },
    ))
    .parse(i)
}

/// ```text
/// store = "STORE" SP sequence-set [SP "(" "UNCHANGEDSINCE" SP n ")"]
///         SP store-att-flags
/// store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP
///                   (flag-list / (flag *(SP flag)))
/// ```
fn store(uid: bool, i: &[u8]) -> PResult<'_, CommandBody> {
    let modifier = delimited(
        (char('('), tag_no_case("UNCHANGEDSINCE"), sp),
        mod_sequence_value,
        char(')'),
    );
    let mode = alt((
        value(StoreMode::Add, char('+')),
        value(StoreMode::Remove, char('-')),
    ));
    all_consuming(map(
        (
            preceded(sp, sequence_set),
            opt(preceded(sp, modifier)),
            preceded(sp, opt(mode)),
            tag_no_case("FLAGS"),
            opt(tag_no_case(".SILENT")),
            preceded(sp, alt((flag_list, separated_list1(sp, flag)))),
        ),
        move |(set, unchanged_since, mode, _, silent, flags)| CommandBody::Store {
            uid,
            set,
            mode: mode.unwrap_or(StoreMode::Replace),
            silent: silent.is_some(),
            flags,
            unchanged_since,
        },
    ))
    .parse(i)
}

/// `copy = "COPY" SP sequence-set SP mailbox` (MOVE has the same shape)
fn copy(is_move: bool, uid: bool, i: &[u8]) -> PResult<'_, CommandBody> {
    all_consuming(map(
        preceded(sp, separated_pair(sequence_set, sp, mailbox)),
        move |(set, mailbox)| {
            if is_move {
                CommandBody::Move { uid, set, mailbox }
            } else {
                CommandBody::Copy { uid, set, mailbox }
            }
        },
    ))
    .parse(i)
}

/// `id = "ID" SP id-params-list`;
/// `id-params-list = "(" *(string SP nstring) ")" / nil` (RFC 2971)
fn id(i: &[u8]) -> PResult<'_, CommandBody> {
    let pair = map(separated_pair(string, sp, nstring), |(k, v)| {
        (
            String::from_utf8_lossy(&k).into_owned(),
            v.map(|v| String::from_utf8_lossy(&v).into_owned()),
        )
    });
    let params = alt((
        delimited(char('('), separated_list0(sp, pair), char(')')),
        value(Vec::new(), nil),
    ));
    all_consuming(map(preceded(sp, params), CommandBody::Id)).parse(i)
}
