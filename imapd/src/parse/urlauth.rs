//! URLAUTH commands (RFC 4467 §9) with URLFETCH's parameters (RFC 5524 §4):
//!
//! ```text
//! genurlauth      = "GENURLAUTH" 1*(SP url-rump SP mechanism)
//! url-rump        = astring
//! mechanism       = "INTERNAL" / 1*(ALPHA / DIGIT / "-" / ".")
//! resetkey        = "RESETKEY" [SP mailbox *(SP mechanism)]
//! urlfetch        = "URLFETCH" 1*(SP url-fetch-param)
//! url-fetch-param = url-full / "(" url-full *(SP url-fetch-arg) ")"
//! url-fetch-arg   = "BODYPARTSTRUCTURE" / "BINARY" / "BODY"
//! ```
//! (`BODY` and `BINARY` together are refused: RFC 5524 §4 allows one.)

use super::{astring_text, mailbox, sp, PResult};
use crate::command::{CommandBody, UrlFetchItem};
use nom::branch::alt;
use nom::bytes::complete::{tag_no_case, take_while1};
use nom::character::complete::char;
use nom::combinator::{all_consuming, map, map_opt, opt};
use nom::multi::{many0, many1};
use nom::sequence::{delimited, preceded};
use nom::Parser;

fn mechanism(i: &[u8]) -> PResult<'_, String> {
    map(
        take_while1(|c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'.'),
        |m: &[u8]| String::from_utf8_lossy(m).to_ascii_uppercase(),
    )
    .parse(i)
}

pub(super) fn genurlauth(i: &[u8]) -> PResult<'_, CommandBody> {
    all_consuming(map(
        many1((preceded(sp, astring_text), preceded(sp, mechanism))),
        CommandBody::GenUrlAuth,
    ))
    .parse(i)
}

pub(super) fn resetkey(i: &[u8]) -> PResult<'_, CommandBody> {
    all_consuming(map(
        opt((preceded(sp, mailbox), many0(preceded(sp, mechanism)))),
        |m| match m {
            Some((mailbox, mechanisms)) => CommandBody::ResetKey {
                mailbox: Some(mailbox),
                mechanisms,
            },
            None => CommandBody::ResetKey {
                mailbox: None,
                mechanisms: Vec::new(),
            },
        },
    ))
    .parse(i)
}

#[derive(Clone, Copy, PartialEq)]
enum Arg {
    Structure,
    Binary,
    Body,
}

fn fetch_arg(i: &[u8]) -> PResult<'_, Arg> {
    alt((
        map(tag_no_case("BODYPARTSTRUCTURE"), |_| Arg::Structure),
        map(tag_no_case("BINARY"), |_| Arg::Binary),
        map(tag_no_case("BODY"), |_| Arg::Body),
    ))
    .parse(i)
}

fn fetch_param(i: &[u8]) -> PResult<'_, UrlFetchItem> {
    alt((
        map_opt(
            delimited(
                char('('),
                (astring_text, many0(preceded(sp, fetch_arg))),
                char(')'),
            ),
            |(url, args)| {
                let item = UrlFetchItem {
                    url,
                    extended: true,
                    structure: args.contains(&Arg::Structure),
                    binary: args.contains(&Arg::Binary),
                    // `(url)` alone asks for the data as stored.
                    body: args.contains(&Arg::Body) || args.is_empty(),
                };
                (!(item.binary && item.body)).then_some(item)
            },
        ),
        map(astring_text, |url| UrlFetchItem {
            url,
            extended: false,
            structure: false,
            binary: false,
            body: true,
        }),
    ))
    .parse(i)
}

pub(super) fn urlfetch(i: &[u8]) -> PResult<'_, CommandBody> {
    all_consuming(map(many1(preceded(sp, fetch_param)), CommandBody::UrlFetch)).parse(i)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::command::CommandBody;
    use crate::parse::parse_command;

    #[test]
    fn urlauth_commands_parse() {
        let c = parse_command(b"a GENURLAUTH \"imap://a@b/X/;UID=1;URLAUTH=authuser\" internal")
            .unwrap();
        assert_eq!(
            c.body,
            CommandBody::GenUrlAuth(vec![(
                "imap://a@b/X/;UID=1;URLAUTH=authuser".into(),
                "INTERNAL".into()
            )])
        );
        let c = parse_command(b"a RESETKEY").unwrap();
        assert!(matches!(
            c.body,
            CommandBody::ResetKey { mailbox: None, .. }
        ));
        let c = parse_command(b"a RESETKEY inbox INTERNAL").unwrap();
        assert_eq!(
            c.body,
            CommandBody::ResetKey {
                mailbox: Some("INBOX".into()),
                mechanisms: vec!["INTERNAL".into()]
            }
        );
        let CommandBody::UrlFetch(items) =
            parse_command(b"a URLFETCH u1 (\"u2\" binary BODYPARTSTRUCTURE) (u3)")
                .unwrap()
                .body
        else {
            panic!()
        };
        assert_eq!(items.len(), 3);
        assert!(!items[0].extended && items[0].body);
        assert!(items[1].extended && items[1].binary && items[1].structure && !items[1].body);
        assert!(items[2].extended && !items[2].binary && items[2].body);
        for bad in [
            &b"a GENURLAUTH u"[..],
            b"a URLFETCH",
            b"a URLFETCH (u BODY BINARY)",
            b"a URLFETCH (u FOO)",
        ] {
            assert!(
                parse_command(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
