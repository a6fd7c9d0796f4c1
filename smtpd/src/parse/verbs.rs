//! Command lines (RFC 5321 §4.1.1, RFC 3030 §2): splitting off the [`verb`]
//! and parsing what follows it for each command that takes arguments —
//! MAIL, RCPT, EHLO/HELO, BDAT, and the string of VRFY, EXPN, HELP and
//! NOOP — from the address and parameter grammars.

use super::{atom, forward_path, host, parameters, quoted_string, reverse_path, utf8, In};
use super::{EsmtpParam, ForwardPath, Host, ReversePath};
use nom::branch::alt;
use nom::bytes::complete::{tag, tag_no_case, take_while, take_while1};
use nom::combinator::{all_consuming, map, map_res, opt};
use nom::sequence::{delimited, pair, preceded, terminated};
use nom::{IResult, Parser};

/// Optional trailing blanks, which many clients (and people) leave behind.
pub fn trailing_space(i: In<'_>) -> IResult<In<'_>, ()> {
    map(take_while(|b| b == b' ' || b == b'\t'), |_| ()).parse(i)
}

/// ```text
/// mail = "MAIL FROM:" Reverse-path [SP Mail-parameters] CRLF
/// ```
/// Takes the line after the `MAIL` verb. Spaces after the colon are
/// tolerated, as most servers do.
pub fn mail_args(i: In<'_>) -> IResult<In<'_>, (ReversePath, Vec<EsmtpParam>)> {
    all_consuming(terminated(
        preceded(
            (tag(" "), tag_no_case("FROM:"), take_while(|b| b == b' ')),
            pair(reverse_path, parameters),
        ),
        trailing_space,
    ))
    .parse(i)
}

/// ```text
/// rcpt = "RCPT TO:" ( "<Postmaster@" Domain ">" / "<Postmaster>" /
///        Forward-path ) [SP Rcpt-parameters] CRLF
/// ```
/// Takes the line after the `RCPT` verb.
pub fn rcpt_args(i: In<'_>) -> IResult<In<'_>, (ForwardPath, Vec<EsmtpParam>)> {
    all_consuming(terminated(
        preceded(
            (tag(" "), tag_no_case("TO:"), take_while(|b| b == b' ')),
            pair(forward_path, parameters),
        ),
        trailing_space,
    ))
    .parse(i)
}

/// ```text
/// ehlo = "EHLO" SP ( Domain / address-literal ) CRLF
/// helo = "HELO" SP Domain CRLF
/// ```
/// Takes the line after the verb.
pub fn ehlo_args(i: In<'_>) -> IResult<In<'_>, Host> {
    all_consuming(delimited(tag(" "), host, trailing_space)).parse(i)
}

/// ```text
/// String = Atom / Quoted-string
/// ```
pub fn string(i: In<'_>) -> IResult<In<'_>, String> {
    alt((map_res(atom, utf8), map_res(quoted_string, |v| utf8(&v)))).parse(i)
}

/// `SP String` as taken by VRFY, EXPN, HELP and NOOP. Real clients pass
/// addresses (`VRFY <bob@example.org>`) too, so anything printable is
/// accepted and returned trimmed.
pub fn string_arg(i: In<'_>) -> IResult<In<'_>, String> {
    all_consuming(preceded(
        tag(" "),
        map_res(take_while1(|b: u8| b >= 0x20 && b != 0x7f), |s: In<'_>| {
            utf8(s).map(|s| s.trim().to_owned())
        }),
    ))
    .parse(i)
}

/// ```text
/// bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ] CR LF   ; RFC 3030 §2
/// chunk-size = 1*DIGIT
/// end-marker = "LAST"
/// ```
/// Takes the line after the verb.
pub fn bdat_args(i: In<'_>) -> IResult<In<'_>, (u64, bool)> {
    all_consuming(terminated(
        pair(
            preceded(
                tag(" "),
                map_res(take_while1(|b: u8| b.is_ascii_digit()), |d: In<'_>| {
                    std::str::from_utf8(d)
                        .map_err(|_| ())
                        .and_then(|s| s.parse::<u64>().map_err(|_| ()))
                }),
            ),
            map(opt(preceded(tag(" "), tag_no_case("LAST"))), |l| {
                l.is_some()
            }),
        ),
        trailing_space,
    ))
    .parse(i)
}

/// Splits a line into its verb (letters only, upper-cased) and the rest.
/// Returns `None` if the line does not start with a letter.
pub fn verb(line: In<'_>) -> Option<(String, In<'_>)> {
    let res: IResult<In<'_>, In<'_>> = take_while1(|b: u8| b.is_ascii_alphabetic()).parse(line);
    let (rest, v) = res.ok()?;
    let v = std::str::from_utf8(v).ok()?.to_ascii_uppercase();
    Some((v, rest))
}
