//! Addresses and paths (RFC 5321 §4.1.2, §4.1.3; RFC 6531 §3.3): the
//! [`Host`], [`Mailbox`], [`ReversePath`] and [`ForwardPath`] values and the
//! grammar from `sub-domain` and `address-literal` up to `Reverse-path` and
//! `Forward-path` (what MAIL FROM, RCPT TO and EHLO take).

use super::{utf8, In};
use nom::branch::alt;
use nom::bytes::complete::{tag, tag_no_case, take_while1, take_while_m_n};
use nom::character::complete::char;
use nom::combinator::{all_consuming, map, map_res, opt, recognize, verify};
use nom::multi::{many0, separated_list1};
use nom::sequence::{delimited, preceded, terminated};
use nom::{IResult, Parser};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The host part of a mailbox or the argument of EHLO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A domain name, as written (compare case-insensitively).
    Domain(String),
    /// An address literal such as `[192.0.2.1]`.
    Literal(AddressLiteral),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::Literal(l) => write!(f, "{l}"),
        }
    }
}

/// RFC 5321 §4.1.3 address literals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressLiteral {
    /// `[1.2.3.4]`
    V4(Ipv4Addr),
    /// `[IPv6:2001:db8::1]`
    V6(Ipv6Addr),
    /// `[tag:content]` for a standardized tag other than IPv6.
    General {
        /// The Standardized-tag.
        tag: String,
        /// The dcontent after the colon.
        content: String,
    },
}

impl fmt::Display for AddressLiteral {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressLiteral::V4(a) => write!(f, "[{a}]"),
            AddressLiteral::V6(a) => write!(f, "[IPv6:{a}]"),
            AddressLiteral::General { tag, content } => write!(f, "[{tag}:{content}]"),
        }
    }
}

/// `Local-part "@" ( Domain / address-literal )`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The local part in canonical form: a Dot-string as written, or a
    /// Quoted-string kept with its quotes unless its content is itself a
    /// valid Dot-string (RFC 5321 §4.1.2 says those are equivalent).
    pub local: String,
    /// Where the mailbox lives.
    pub host: Host,
}

impl Mailbox {
    /// True if any part of the address is outside ASCII (needs SMTPUTF8).
    pub fn is_ascii(&self) -> bool {
        self.local.is_ascii() && self.host.to_string().is_ascii()
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.host)
    }
}

/// `Reverse-path = Path / "<>"`
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReversePath {
    /// `<>`: the null reverse path used by bounces.
    Null,
    /// A real sender.
    Mailbox(Mailbox),
}

impl fmt::Display for ReversePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReversePath::Null => f.write_str("<>"),
            ReversePath::Mailbox(m) => write!(f, "<{m}>"),
        }
    }
}

/// The argument of RCPT TO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardPath {
    /// `<Postmaster>` with no domain (RFC 5321 §4.1.1.3).
    Postmaster,
    /// Any other recipient (including `<Postmaster@domain>`).
    Mailbox(Mailbox),
}

impl fmt::Display for ForwardPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForwardPath::Postmaster => f.write_str("<Postmaster>"),
            ForwardPath::Mailbox(m) => write!(f, "<{m}>"),
        }
    }
}

fn is_ldh_or_utf8(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b >= 0x80
}

/// ```text
/// sub-domain = Let-dig [Ldh-str]          ; RFC 6531: =/ U-label
/// Let-dig    = ALPHA / DIGIT
/// Ldh-str    = *( ALPHA / DIGIT / "-" ) Let-dig
/// ```
pub fn sub_domain(i: In<'_>) -> IResult<In<'_>, In<'_>> {
    verify(take_while1(is_ldh_or_utf8), |s: &[u8]| {
        s.first() != Some(&b'-') && s.last() != Some(&b'-')
    })
    .parse(i)
}

/// ```text
/// Domain = sub-domain *("." sub-domain)
/// ```
pub fn domain(i: In<'_>) -> IResult<In<'_>, String> {
    map_res(recognize(separated_list1(char('.'), sub_domain)), utf8).parse(i)
}

/// ```text
/// Snum = 1*3DIGIT   ; representing a decimal integer value in the range 0 through 255
/// ```
pub fn snum(i: In<'_>) -> IResult<In<'_>, u8> {
    map_res(take_while_m_n(1, 3, |b: u8| b.is_ascii_digit()), |d| {
        std::str::from_utf8(d)
            .map_err(|_| ())
            .and_then(|s| s.parse::<u8>().map_err(|_| ()))
    })
    .parse(i)
}

/// ```text
/// IPv4-address-literal = Snum 3("." Snum)
/// ```
pub fn ipv4_address_literal(i: In<'_>) -> IResult<In<'_>, Ipv4Addr> {
    map(
        (
            snum,
            preceded(char('.'), snum),
            preceded(char('.'), snum),
            preceded(char('.'), snum),
        ),
        |(a, b, c, d)| Ipv4Addr::new(a, b, c, d),
    )
    .parse(i)
}

/// ```text
/// IPv6-address-literal = "IPv6:" IPv6-addr
/// ```
/// The IPv6-addr forms (full, compressed, IPv4-embedded) are the ones the
/// standard library's parser accepts.
pub fn ipv6_address_literal(i: In<'_>) -> IResult<In<'_>, Ipv6Addr> {
    preceded(
        tag_no_case("IPv6:"),
        map_res(
            take_while1(|b: u8| b.is_ascii_hexdigit() || b == b':' || b == b'.'),
            |s: &[u8]| {
                std::str::from_utf8(s)
                    .map_err(|_| ())
                    .and_then(|s| s.parse::<Ipv6Addr>().map_err(|_| ()))
            },
        ),
    )
    .parse(i)
}

/// ```text
/// General-address-literal = Standardized-tag ":" 1*dcontent
/// Standardized-tag = Ldh-str
/// dcontent = %d33-90 / %d94-126
/// ```
/// The tag `IPv6` belongs to [`ipv6_address_literal`] alone.
pub fn general_address_literal(i: In<'_>) -> IResult<In<'_>, AddressLiteral> {
    map_res(
        (
            verify(
                take_while1(|b: u8| b.is_ascii_alphanumeric() || b == b'-'),
                |t: &[u8]| !t.eq_ignore_ascii_case(b"IPv6"),
            ),
            char(':'),
            take_while1(|b: u8| (33..=90).contains(&b) || (94..=126).contains(&b)),
        ),
        |(t, _, c): (In<'_>, char, In<'_>)| -> Result<AddressLiteral, std::str::Utf8Error> {
            Ok(AddressLiteral::General {
                tag: utf8(t)?,
                content: utf8(c)?,
            })
        },
    )
    .parse(i)
}

/// ```text
/// address-literal = "[" ( IPv4-address-literal / IPv6-address-literal /
///                         General-address-literal ) "]"
/// ```
pub fn address_literal(i: In<'_>) -> IResult<In<'_>, AddressLiteral> {
    delimited(
        char('['),
        alt((
            map(ipv4_address_literal, AddressLiteral::V4),
            map(ipv6_address_literal, AddressLiteral::V6),
            general_address_literal,
        )),
        char(']'),
    )
    .parse(i)
}

/// `Domain / address-literal`
pub fn host(i: In<'_>) -> IResult<In<'_>, Host> {
    alt((
        map(address_literal, Host::Literal),
        map(domain, Host::Domain),
    ))
    .parse(i)
}

/// ```text
/// atext = ALPHA / DIGIT / "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" /
///         "-" / "/" / "=" / "?" / "^" / "_" / "`" / "{" / "|" / "}" / "~"
///         ; RFC 6531: =/ UTF8-non-ascii
/// ```
pub fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b) || b >= 0x80
}

/// ```text
/// Atom = 1*atext
/// ```
pub fn atom(i: In<'_>) -> IResult<In<'_>, In<'_>> {
    take_while1(is_atext).parse(i)
}

/// ```text
/// Dot-string = Atom *("."  Atom)
/// ```
pub fn dot_string(i: In<'_>) -> IResult<In<'_>, In<'_>> {
    recognize(separated_list1(char('.'), atom)).parse(i)
}

/// ```text
/// qtextSMTP = %d32-33 / %d35-91 / %d93-126   ; RFC 6531: =/ UTF8-non-ascii
/// ```
fn is_qtext_smtp(b: u8) -> bool {
    matches!(b, 32..=33 | 35..=91 | 93..=126) || b >= 0x80
}

/// ```text
/// Quoted-string   = DQUOTE *QcontentSMTP DQUOTE
/// QcontentSMTP    = qtextSMTP / quoted-pairSMTP
/// quoted-pairSMTP = %d92 %d32-126
/// ```
/// Returns the content with quoted pairs resolved.
pub fn quoted_string(i: In<'_>) -> IResult<In<'_>, Vec<u8>> {
    delimited(
        char('"'),
        map(
            many0(alt((
                take_while1(is_qtext_smtp),
                preceded(
                    char('\\'),
                    take_while_m_n(1, 1, |b| (32..=126).contains(&b)),
                ),
            ))),
            |parts: Vec<In<'_>>| parts.concat(),
        ),
        char('"'),
    )
    .parse(i)
}

/// ```text
/// Local-part = Dot-string / Quoted-string
/// ```
/// Returns the canonical text (see [`Mailbox::local`]).
pub fn local_part(i: In<'_>) -> IResult<In<'_>, String> {
    alt((
        map_res(dot_string, utf8),
        map_res(quoted_string, |content: Vec<u8>| {
            let is_dot_string = matches!(all_consuming(dot_string).parse(&content[..]), Ok((_, _)));
            let text = utf8(&content)?;
            if is_dot_string {
                Ok::<_, std::str::Utf8Error>(text)
            } else {
                let mut q = String::with_capacity(text.len() + 2);
                q.push('"');
                for c in text.chars() {
                    if c == '"' || c == '\\' {
                        q.push('\\');
                    }
                    q.push(c);
                }
                q.push('"');
                Ok(q)
            }
        }),
    ))
    .parse(i)
}

/// ```text
/// Mailbox = Local-part "@" ( Domain / address-literal )
/// ```
pub fn mailbox(i: In<'_>) -> IResult<In<'_>, Mailbox> {
    map((local_part, char('@'), host), |(local, _, host)| Mailbox {
        local,
        host,
    })
    .parse(i)
}

/// ```text
/// A-d-l     = At-domain *( "," At-domain )  ; source route, to be ignored
/// At-domain = "@" Domain
/// ```
pub fn a_d_l(i: In<'_>) -> IResult<In<'_>, ()> {
    map(
        separated_list1(char(','), preceded(char('@'), domain)),
        |_| (),
    )
    .parse(i)
}

/// ```text
/// Path = "<" [ A-d-l ":" ] Mailbox ">"
/// ```
pub fn path(i: In<'_>) -> IResult<In<'_>, Mailbox> {
    delimited(
        char('<'),
        preceded(opt(terminated(a_d_l, char(':'))), mailbox),
        char('>'),
    )
    .parse(i)
}

/// ```text
/// Reverse-path = Path / "<>"
/// ```
pub fn reverse_path(i: In<'_>) -> IResult<In<'_>, ReversePath> {
    alt((
        map(tag("<>"), |_| ReversePath::Null),
        map(path, ReversePath::Mailbox),
    ))
    .parse(i)
}

/// ```text
/// "<Postmaster@" Domain ">" / "<Postmaster>" / Forward-path
/// Forward-path = Path
/// ```
/// `<Postmaster@Domain>` comes back as an ordinary mailbox; the session
/// recognises it whatever the domain.
pub fn forward_path(i: In<'_>) -> IResult<In<'_>, ForwardPath> {
    alt((
        map(tag_no_case("<Postmaster>"), |_| ForwardPath::Postmaster),
        map(path, ForwardPath::Mailbox),
    ))
    .parse(i)
}
