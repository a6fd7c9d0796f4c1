//! ESMTP parameters (RFC 5321 §4.1.2): the `esmtp-param`s after the path
//! of MAIL FROM and RCPT TO (SIZE, BODY, SMTPUTF8, AUTH, ...), as
//! [`EsmtpParam`] keyword/value pairs; what each one means is decided in
//! `command.rs`.

use super::{utf8, In};
use nom::bytes::complete::{take_while, take_while1, take_while_m_n};
use nom::character::complete::char;
use nom::combinator::{map, map_res, opt, recognize};
use nom::multi::many0;
use nom::sequence::{pair, preceded};
use nom::{IResult, Parser};

/// `esmtp-param = esmtp-keyword ["=" esmtp-value]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EsmtpParam {
    /// The keyword, upper-cased (keywords are case-insensitive).
    pub keyword: String,
    /// The value, as written.
    pub value: Option<String>,
}

fn is_alpha_digit(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// ```text
/// esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
/// ```
pub fn esmtp_keyword(i: In<'_>) -> IResult<In<'_>, String> {
    map_res(
        recognize(pair(
            take_while_m_n(1, 1, is_alpha_digit),
            take_while(|b: u8| b.is_ascii_alphanumeric() || b == b'-'),
        )),
        |k| utf8(k).map(|s| s.to_ascii_uppercase()),
    )
    .parse(i)
}

/// ```text
/// esmtp-value = 1*(%d33-60 / %d62-126)   ; RFC 6531: =/ UTF8-non-ascii
/// ```
pub fn esmtp_value(i: In<'_>) -> IResult<In<'_>, String> {
    map_res(
        take_while1(|b: u8| matches!(b, 33..=60 | 62..=126) || b >= 0x80),
        utf8,
    )
    .parse(i)
}

/// ```text
/// esmtp-param = esmtp-keyword ["=" esmtp-value]
/// ```
pub fn esmtp_param(i: In<'_>) -> IResult<In<'_>, EsmtpParam> {
    map(
        pair(esmtp_keyword, opt(preceded(char('='), esmtp_value))),
        |(keyword, value)| EsmtpParam { keyword, value },
    )
    .parse(i)
}

/// ```text
/// Mail-parameters = esmtp-param *(SP esmtp-param)
/// Rcpt-parameters = esmtp-param *(SP esmtp-param)
/// ```
/// Preceded by the SP that separates them from the path; runs of spaces are
/// tolerated.
pub fn parameters(i: In<'_>) -> IResult<In<'_>, Vec<EsmtpParam>> {
    many0(preceded(take_while1(|b| b == b' '), esmtp_param)).parse(i)
}
