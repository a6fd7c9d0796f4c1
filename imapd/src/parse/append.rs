//! APPEND's arguments, with MULTIAPPEND (RFC 3502 §6), CATENATE (RFC 4469
//! §5) and `literal8` (RFC 3516 §4.4):
//!
//! ```text
//! append          = "APPEND" SP mailbox 1*append-message
//! append-message  = append-opts SP append-data
//! append-opts     = [SP flag-list] [SP date-time]
//! append-data     = literal / literal8 / append-data-ext
//! append-data-ext = "CATENATE" SP "(" cat-part *(SP cat-part) ")"
//! cat-part        = text-literal / url
//! text-literal    = "TEXT" SP (literal / literal8)
//! url             = "URL" SP astring
//! literal8        = "~{" number ["+"] "}" CRLF *OCTET
//! append-data     =/ "UTF8" SP "(" literal8 ")"      ; RFC 6855 §4
//! cat-part        =/ "UTF8" SP "(" literal8 ")"      ; RFC 6855 §4
//! ```
//!
//! One message with a plain literal is the classic (pipelined) APPEND;
//! anything else is [`CommandBody::AppendMulti`].

use super::{astring, date_time, flag_list, literal, number, sp, string, PResult};
use crate::command::{AppendData, AppendMessage, CatPart, CommandBody};
use nom::branch::alt;
use nom::bytes::complete::{tag, tag_no_case, take};
use nom::character::complete::char;
use nom::combinator::{all_consuming, map, opt};
use nom::multi::{many1, separated_list1};
use nom::sequence::{delimited, preceded};
use nom::Parser;

/// `literal8 = "~{" number ["+"] "}" CRLF *OCTET` (RFC 3516 §4.4; the `+`
/// of LITERAL+, RFC 7888 §4).
pub(crate) fn literal8(i: &[u8]) -> PResult<'_, Vec<u8>> {
    let (i, n) = delimited(tag("~{"), number, (opt(char('+')), char('}'))).parse(i)?;
    let (i, _) = tag("\r\n").parse(i)?;
    let (i, data) = take(n as usize).parse(i)?;
    Ok((i, data.to_vec()))
}

fn any_literal(i: &[u8]) -> PResult<'_, Vec<u8>> {
    alt((literal, literal8)).parse(i)
}

/// `APPEND mailbox [flags] [date-time] string`: one message given as a
/// quoted string, which RFC 3501 does not allow (`literal`) but which we
/// accepted before MULTIAPPEND and still do (only alone: with several
/// messages a quoted string could be read as a date-time).
fn legacy_append(i: &[u8]) -> PResult<'_, CommandBody> {
    all_consuming(map(
        (
            preceded(sp, super::mailbox),
            opt(preceded(sp, flag_list)),
            opt(preceded(sp, date_time)),
            preceded(sp, string),
        ),
        |(mailbox, flags, date, message)| CommandBody::Append {
            mailbox,
            flags: flags.unwrap_or_default(),
            date,
            message,
        },
    ))
    .parse(i)
}

fn cat_part(i: &[u8]) -> PResult<'_, CatPart> {
    alt((
        map(
            preceded((tag_no_case("TEXT"), sp), any_literal),
            CatPart::Text,
        ),
        // RFC 6855 §4: text-literal =/ "UTF8" SP "(" literal8 ")".
        map(utf8_data, CatPart::Text),
        map(preceded((tag_no_case("URL"), sp), astring), |u| {
            CatPart::Url(String::from_utf8_lossy(&u).into_owned())
        }),
    ))
    .parse(i)
}

/// `"UTF8" SP "(" literal8 ")"` (RFC 6855 §4): a message whose headers
/// may be UTF-8, stored as sent. Only once UTF8=ACCEPT is enabled; before
/// that it is a syntax error (BAD), as §4 asks.
fn utf8_data(i: &[u8]) -> PResult<'_, Vec<u8>> {
    let (rest, _) = (tag_no_case("UTF8"), sp).parse(i)?;
    if !super::mode().utf8_accept {
        return Err(nom::Err::Failure(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Verify,
        )));
    }
    delimited(char('('), literal8, char(')')).parse(rest)
}

fn append_data(i: &[u8]) -> PResult<'_, AppendData> {
    alt((
        map(any_literal, AppendData::Literal),
        map(utf8_data, AppendData::Literal),
        map(
            preceded(
                (tag_no_case("CATENATE"), sp),
                delimited(char('('), separated_list1(sp, cat_part), char(')')),
            ),
            AppendData::Catenate,
        ),
    ))
    .parse(i)
}

/// One or more spaces. Between the messages of a MULTIAPPEND, Python's
/// imapclient sends two (`{117+}\r\n<msg>  {160+}`); Dovecot takes it, so
/// do we (and only there: elsewhere the grammar's single SP holds).
fn spaces(i: &[u8]) -> PResult<'_, ()> {
    map(nom::bytes::complete::take_while1(|c| c == b' '), |_| ()).parse(i)
}

fn append_message(i: &[u8]) -> PResult<'_, AppendMessage> {
    map(
        (
            opt(preceded(spaces, flag_list)),
            opt(preceded(sp, date_time)),
            preceded(spaces, append_data),
        ),
        |(flags, date, data)| AppendMessage {
            flags: flags.unwrap_or_default(),
            date,
            data,
        },
    )
    .parse(i)
}

/// The arguments of APPEND (after the command name).
pub(super) fn append_args(i: &[u8]) -> PResult<'_, CommandBody> {
    let parsed = all_consuming((preceded(sp, super::mailbox), many1(append_message))).parse(i);
    let (rest, (mailbox, mut messages)) = match parsed {
        Ok(v) => v,
        Err(e) => return legacy_append(i).map_err(|_| e),
    };
    let one = messages.len() == 1;
    match messages.pop() {
        Some(AppendMessage {
            flags,
            date,
            data: AppendData::Literal(message),
        }) if one => {
            return Ok((
                rest,
                CommandBody::Append {
                    mailbox,
                    flags,
                    date,
                    message,
                },
            ))
        }
        Some(m) => messages.push(m),
        None => {}
    }
    Ok((rest, CommandBody::AppendMulti { mailbox, messages }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::command::{AppendData, CatPart, CommandBody};
    use crate::parse::parse_command;

    fn body(s: &[u8]) -> CommandBody {
        match parse_command(s) {
            Ok(c) => c.body,
            Err(e) => panic!("{}: {e}", String::from_utf8_lossy(s)),
        }
    }

    #[test]
    fn single_literal_and_literal8_are_plain_appends() {
        for cmd in [
            &b"a APPEND INBOX {3}\r\nx\0y"[..],
            b"a APPEND INBOX ~{3}\r\nx\0y",
            b"a APPEND INBOX ~{3+}\r\nx\0y",
        ] {
            match body(cmd) {
                CommandBody::Append { message, .. } => assert_eq!(message, b"x\0y"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn multiappend_takes_imapclients_double_space_between_messages() {
        let b = body(b"a APPEND INBOX {2+}\r\nab  {2+}\r\ncd");
        assert!(
            matches!(&b, CommandBody::AppendMulti { messages, .. } if messages.len() == 2),
            "{b:?}"
        );
    }

    #[test]
    fn multiappend_and_catenate_parse() {
        let cmd = b"a APPEND box (\\Seen) {2}\r\nm1 CATENATE (URL \"/box/;uid=3\" TEXT ~{2}\r\nt\0) (\\Answered) \"05-Dec-2026 07:00:00 +0000\" {2}\r\nm3";
        let CommandBody::AppendMulti { mailbox, messages } = body(cmd) else {
            panic!("not multi")
        };
        assert_eq!(mailbox, "box");
        assert_eq!(messages.len(), 3);
        assert_eq!(messages[0].flags, vec!["\\Seen".to_string()]);
        assert_eq!(messages[0].data, AppendData::Literal(b"m1".to_vec()));
        assert_eq!(
            messages[1].data,
            AppendData::Catenate(vec![
                CatPart::Url("/box/;uid=3".into()),
                CatPart::Text(b"t\0".to_vec())
            ])
        );
        assert!(messages[1].flags.is_empty());
        assert!(messages[2].date.is_some());
        for bad in [
            &b"a APPEND box CATENATE ()"[..],
            b"a APPEND box CATENATE (FOO {1}\r\nx)",
            b"a APPEND box",
            b"a APPEND box {1}\r\nx (\\Seen)",
        ] {
            assert!(
                parse_command(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
