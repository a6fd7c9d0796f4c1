//! nom parsers for the IMAP command grammar (RFC 3501 §9), one function per
//! ABNF rule, over one complete command as assembled by the framer (literal
//! octets inline, final CRLF removed). Complete-input combinators only: the
//! framer guarantees nothing is missing, so "incomplete" never reaches here.
//!
//! This module holds the shared lexical rules (atoms, strings, literals,
//! numbers, flags, dates, sequence sets); `command`, `fetch` and `search`
//! build the commands on top. Parsing never touches the store.

mod append;
mod binary;
mod command;
mod esearch;
mod fetch;
pub mod imapurl;
mod list_ext;
mod notify;
mod search;
mod select;
mod sort;
mod urlauth;

pub use command::{parse_command, parse_command_as, SyntaxError, SyntaxKind};
pub use esearch::search_saves;

use crate::command::{Date, DateTime, Flag, SeqNum, SeqRange, SequenceSet};
use nom::branch::alt;
use nom::bytes::complete::{tag, tag_no_case, take, take_while1, take_while_m_n};
use nom::character::complete::{char, digit1};
use nom::combinator::{map, map_res, opt, value, verify};
use nom::multi::separated_list0;
use nom::sequence::{delimited, preceded};
use nom::{IResult, Parser};

/// Parser result over bytes.
pub(crate) type PResult<'a, T> = IResult<&'a [u8], T>;

/// ```text
/// atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards /
///                 quoted-specials / resp-specials
/// ```
pub(crate) fn is_atom_char(c: u8) -> bool {
    c > 0x20 && c < 0x7f && !matches!(c, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

/// `ASTRING-CHAR = ATOM-CHAR / resp-specials`
pub(crate) fn is_astring_char(c: u8) -> bool {
    is_atom_char(c) || c == b']'
}

/// `list-char = ATOM-CHAR / list-wildcards / resp-specials`
pub(crate) fn is_list_char(c: u8) -> bool {
    is_atom_char(c) || matches!(c, b'%' | b'*' | b']')
}

/// `atom = 1*ATOM-CHAR`
pub(crate) fn atom(i: &[u8]) -> PResult<'_, &[u8]> {
    take_while1(is_atom_char)(i)
}

/// Whether `c` may appear in a tag.
pub(crate) fn is_tag_char(c: u8) -> bool {
    is_astring_char(c) && c != b'+'
}

/// `tag = 1*<any ASTRING-CHAR except "+">`
pub(crate) fn imap_tag(i: &[u8]) -> PResult<'_, &[u8]> {
    take_while1(is_tag_char)(i)
}

/// `number = 1*DIGIT` (32-bit unsigned)
pub(crate) fn number(i: &[u8]) -> PResult<'_, u32> {
    map_res(digit1, |d: &[u8]| {
        std::str::from_utf8(d)
            .map_err(|_| ())
            .and_then(|s| s.parse::<u32>().map_err(|_| ()))
    })
    .parse(i)
}

/// `nz-number = digit-nz *DIGIT`
pub(crate) fn nz_number(i: &[u8]) -> PResult<'_, u32> {
    verify(number, |n| *n != 0).parse(i)
}

/// `mod-sequence-value = 1*DIGIT` (RFC 7162, 63-bit)
pub(crate) fn mod_sequence_value(i: &[u8]) -> PResult<'_, u64> {
    map_res(digit1, |d: &[u8]| {
        std::str::from_utf8(d)
            .map_err(|_| ())
            .and_then(|s| s.parse::<u64>().map_err(|_| ()))
            .and_then(|n| if n < (1 << 63) { Ok(n) } else { Err(()) })
    })
    .parse(i)
}

/// ```text
/// quoted = DQUOTE *QUOTED-CHAR DQUOTE
/// QUOTED-CHAR = <any TEXT-CHAR except quoted-specials> / "\" quoted-specials
/// ```
/// 8-bit bytes are accepted (UTF-8 from modern clients).
pub(crate) fn quoted(i: &[u8]) -> PResult<'_, Vec<u8>> {
    let (mut rest, _) = char('"').parse(i)?;
    let mut out = Vec::new();
    loop {
        match rest.first() {
            Some(b'"') => return Ok((&rest[1..], out)),
            Some(b'\\') => match rest.get(1) {
                Some(&c @ (b'"' | b'\\')) => {
                    out.push(c);
                    rest = &rest[2..];
                }
                _ => return fail(rest),
            },
            Some(b'\r' | b'\n') | None => return fail(rest),
            Some(&c) => {
                out.push(c);
                rest = &rest[1..];
            }
        }
    }
}

fn fail<T>(i: &[u8]) -> PResult<'_, T> {
    Err(nom::Err::Error(nom::error::Error::new(
        i,
        nom::error::ErrorKind::Verify,
    )))
}

/// `literal = "{" number ["+"] "}" CRLF *CHAR8` (LITERAL+, RFC 7888)
pub(crate) fn literal(i: &[u8]) -> PResult<'_, Vec<u8>> {
    let (i, n) = delimited(char('{'), number, (opt(char('+')), char('}'))).parse(i)?;
    let (i, _) = tag("\r\n").parse(i)?;
    let (i, data) = take(n as usize).parse(i)?;
    Ok((i, data.to_vec()))
}

/// `string = quoted / literal`
pub(crate) fn string(i: &[u8]) -> PResult<'_, Vec<u8>> {
    alt((quoted, literal)).parse(i)
}

/// `astring = 1*ASTRING-CHAR / string`
pub(crate) fn astring(i: &[u8]) -> PResult<'_, Vec<u8>> {
    alt((
        map(take_while1(is_astring_char), |s: &[u8]| s.to_vec()),
        string,
    ))
    .parse(i)
}

/// `nil = "NIL"`
pub(crate) fn nil(i: &[u8]) -> PResult<'_, ()> {
    value((), tag_no_case("NIL")).parse(i)
}

/// `nstring = string / nil`
pub(crate) fn nstring(i: &[u8]) -> PResult<'_, Option<Vec<u8>>> {
    alt((map(string, Some), value(None, nil))).parse(i)
}

/// An astring read as UTF-8 text (lossy: invalid bytes become U+FFFD).
pub(crate) fn astring_text(i: &[u8]) -> PResult<'_, String> {
    map(astring, |v| String::from_utf8_lossy(&v).into_owned()).parse(i)
}

/// `mailbox = "INBOX" / astring`, decoded from modified UTF-7; any case of
/// INBOX becomes `INBOX` (§5.1).
///
/// A name that is not valid modified UTF-7 (`a&b`) is still a well-formed
/// astring: it becomes [`INVALID_UTF7`] followed by its bytes, a name no
/// mailbox can have, so SELECT answers NO (no such mailbox), LIST matches
/// nothing, and CREATE/RENAME refuse it (RFC 3501 §5.1.3; as Dovecot).
pub(crate) fn mailbox(i: &[u8]) -> PResult<'_, String> {
    map(astring, |raw| match decode_name(&raw) {
        Ok(name) => normalise_inbox(name),
        Err(_) => format!("{INVALID_UTF7}{}", String::from_utf8_lossy(&raw)),
    })
    .parse(i)
}

/// What the session has enabled that changes the grammar of its commands
/// (set by [`parse_command_as`] for the length of one parse).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseMode {
    /// Mailbox names are UTF-8, not modified UTF-7 (IMAP4rev2, RFC 9051
    /// §5.1; UTF8=ACCEPT, RFC 6855 §3).
    pub utf8_names: bool,
    /// UTF8=ACCEPT is enabled (RFC 6855 §3, §4): APPEND's `UTF8
    /// (literal8)` is allowed and SEARCH's CHARSET is not.
    pub utf8_accept: bool,
}

std::thread_local! {
    static MODE: std::cell::Cell<ParseMode> = const {
        std::cell::Cell::new(ParseMode { utf8_names: false, utf8_accept: false })
    };
}

/// Run `f` (one parse) in `mode`; the previous mode comes back after it.
pub(crate) fn with_mode<T>(mode: ParseMode, f: impl FnOnce() -> T) -> T {
    struct Reset(ParseMode);
    impl Drop for Reset {
        fn drop(&mut self) {
            MODE.with(|m| m.set(self.0));
        }
    }
    let _reset = Reset(MODE.with(|m| m.replace(mode)));
    f()
}

/// The mode of the parse under way.
pub(crate) fn mode() -> ParseMode {
    MODE.with(std::cell::Cell::get)
}

/// A mailbox name (or LIST pattern) from the wire: modified UTF-7, or
/// UTF-8 taken as it is when the session chose UTF-8 names (`&` is then
/// just a character). Invalid input is an error either way.
pub(crate) fn decode_name(raw: &[u8]) -> Result<String, crate::utf7::Utf7Error> {
    if mode().utf8_names {
        return std::str::from_utf8(raw)
            .map(str::to_owned)
            .map_err(|_| crate::utf7::Utf7Error::BadUtf8);
    }
    crate::utf7::decode(raw)
}

/// First character of a mailbox name that was not valid modified UTF-7
/// (a noncharacter; modified UTF-7 that decodes to it is refused too).
pub const INVALID_UTF7: char = '\u{FFFF}';

/// Spell `INBOX` (any case, also as the first hierarchy level) canonically.
pub fn normalise_inbox(name: String) -> String {
    let b = name.as_bytes();
    if b.len() >= 5 && b[..5].eq_ignore_ascii_case(b"INBOX") && (b.len() == 5 || b[5] == b'/') {
        format!("INBOX{}", &name[5..])
    } else {
        name
    }
}

/// ```text
/// flag = "\Answered" / "\Flagged" / "\Deleted" / "\Seen" / "\Draft" /
///        flag-keyword / flag-extension
/// ```
/// System flags get their canonical spelling; `\Recent` is accepted here and
/// refused by the callers that forbid it.
pub(crate) fn flag(i: &[u8]) -> PResult<'_, Flag> {
    alt((
        map(preceded(char('\\'), atom), |a: &[u8]| {
            canonical_system_flag(&String::from_utf8_lossy(a))
        }),
        map(atom, |a: &[u8]| String::from_utf8_lossy(a).into_owned()),
    ))
    .parse(i)
}

fn canonical_system_flag(name: &str) -> String {
    for known in ["Answered", "Flagged", "Deleted", "Seen", "Draft", "Recent"] {
        if name.eq_ignore_ascii_case(known) {
            return format!("\\{known}");
        }
    }
    format!("\\{name}")
}

/// `flag-list = "(" [flag *(SP flag)] ")"`
pub(crate) fn flag_list(i: &[u8]) -> PResult<'_, Vec<Flag>> {
    delimited(char('('), separated_list0(char(' '), flag), char(')')).parse(i)
}

/// ```text
/// seq-number = nz-number / "*"
/// seq-range = seq-number ":" seq-number
/// sequence-set = (seq-number / seq-range) *("," sequence-set)
/// sequence-set =/ seq-last-command   ; RFC 5182 §4
/// seq-last-command = "$"
/// ```
/// `$` stands alone (as Dovecot reads it too): `$,1:3` is refused.
pub(crate) fn sequence_set(i: &[u8]) -> PResult<'_, SequenceSet> {
    if let Some(rest) = i.strip_prefix(b"$") {
        return Ok((rest, SequenceSet::saved()));
    }
    fn seq_number(i: &[u8]) -> PResult<'_, SeqNum> {
        alt((
            map(nz_number, SeqNum::Value),
            value(SeqNum::Star, char('*')),
        ))
        .parse(i)
    }
    let range = map(
        (seq_number, opt(preceded(char(':'), seq_number))),
        |(a, b)| SeqRange {
            start: a,
            end: b.unwrap_or(a),
        },
    );
    map(nom::multi::separated_list1(char(','), range), SequenceSet).parse(i)
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `date-month = "Jan" / "Feb" / ...` (case-insensitive), as 1..=12.
fn date_month(i: &[u8]) -> PResult<'_, u32> {
    let (rest, m) = take(3usize).parse(i)?;
    match MONTHS
        .iter()
        .position(|n| n.as_bytes().eq_ignore_ascii_case(m))
    {
        Some(p) => Ok((rest, p as u32 + 1)),
        None => fail(i),
    }
}

fn digits_n(n: usize) -> impl Fn(&[u8]) -> PResult<'_, u32> {
    move |i| {
        map_res(
            take_while_m_n(n, n, |c: u8| c.is_ascii_digit()),
            |d: &[u8]| {
                std::str::from_utf8(d)
                    .map_err(|_| ())
                    .and_then(|s| s.parse::<u32>().map_err(|_| ()))
            },
        )
        .parse(i)
    }
}

/// `date-text = date-day "-" date-month "-" date-year`
fn date_text(i: &[u8]) -> PResult<'_, Date> {
    let day = map_res(
        take_while_m_n(1, 2, |c: u8| c.is_ascii_digit()),
        |d: &[u8]| {
            std::str::from_utf8(d)
                .map_err(|_| ())
                .and_then(|s| s.parse::<u32>().map_err(|_| ()))
        },
    );
    map(
        verify(
            (day, char('-'), date_month, char('-'), digits_n(4)),
            |(d, _, m, _, y)| valid_date(*y as i32, *m, *d),
        ),
        |(day, _, month, _, year)| Date {
            year: year as i32,
            month,
            day,
        },
    )
    .parse(i)
}

fn valid_date(y: i32, m: u32, d: u32) -> bool {
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    (1..=12).contains(&m) && d >= 1 && d <= days[(m - 1) as usize]
}

/// `date = date-text / DQUOTE date-text DQUOTE`
pub(crate) fn date(i: &[u8]) -> PResult<'_, Date> {
    alt((date_text, delimited(char('"'), date_text, char('"')))).parse(i)
}

pub use mailstore::date::days_from_civil;

/// ```text
/// date-time = DQUOTE date-day-fixed "-" date-month "-" date-year
///             SP time SP zone DQUOTE
/// ```
pub(crate) fn date_time(i: &[u8]) -> PResult<'_, DateTime> {
    let day = alt((preceded(char(' '), digits_n(1)), digits_n(2), digits_n(1)));
    let zone = (alt((char('+'), char('-'))), digits_n(2), digits_n(2));
    let time = (digits_n(2), char(':'), digits_n(2), char(':'), digits_n(2));
    let (rest, (_, d, _, m, _, y, _, (hh, _, mi, _, ss), _, (sign, zh, zm), _)) = (
        char('"'),
        day,
        char('-'),
        date_month,
        char('-'),
        digits_n(4),
        char(' '),
        time,
        char(' '),
        zone,
        char('"'),
    )
        .parse(i)?;
    if !valid_date(y as i32, m, d) || hh > 23 || mi > 59 || ss > 60 || zm > 59 {
        return fail(i);
    }
    let offset = (zh * 60 + zm) as i32 * if sign == '-' { -1 } else { 1 };
    let local = days_from_civil(y as i32, m, d) * 86_400
        + i64::from(hh) * 3600
        + i64::from(mi) * 60
        + i64::from(ss);
    Ok((
        rest,
        DateTime {
            unix: local - i64::from(offset) * 60,
            offset_minutes: offset,
        },
    ))
}

/// Space, as a parser.
pub(crate) fn sp(i: &[u8]) -> PResult<'_, char> {
    char(' ').parse(i)
}

#[cfg(test)]
mod roundtrip_tests;
#[cfg(test)]
mod tests;
