//! LIST's extended syntax (RFC 5258 §6, RFC 5819 §4, RFC 6154 §6):
//!
//! ```text
//! list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat
//!        [SP list-return-opts]
//! list-select-opts = "(" [list-select-option *(SP list-select-option)] ")"
//! mbox-or-pat = list-mailbox / patterns
//! patterns = "(" list-mailbox *(SP list-mailbox) ")"
//! list-return-opts = "RETURN" SP "(" [return-option *(SP return-option)] ")"
//! return-option = "SUBSCRIBED" / "CHILDREN" / "SPECIAL-USE" /
//!                 "STATUS" SP "(" status-att *(SP status-att) ")"
//! ```
//!
//! Options we do not know are refused (`BAD`), as is RECURSIVEMATCH without
//! a selection option it can modify (RFC 5258 §3.1: REMOTE does not count).

use super::command::{list_mailbox, mailbox_reference};
use super::{sp, PResult};
use crate::command::{CommandBody, ListExtended, ListReturn, ListSelect, StatusItem};
use nom::branch::alt;
use nom::bytes::complete::{tag_no_case, take_while1};
use nom::character::complete::char;
use nom::combinator::{all_consuming, map, opt, value};
use nom::multi::{separated_list0, separated_list1};
use nom::sequence::{delimited, preceded};
use nom::Parser;

/// The nom error kind of a LIST with more than
/// [`crate::limits::MAX_LIST_PATTERNS`] patterns (answered `NO [LIMIT]`).
pub(super) const TOO_MANY_PATTERNS: nom::error::ErrorKind = nom::error::ErrorKind::Many1Count;

/// LIST's arguments: the RFC 3501 form as [`CommandBody::List`], anything
/// using the extended syntax as [`CommandBody::ListExtended`].
pub(super) fn list(i: &[u8]) -> PResult<'_, CommandBody> {
    let plain = map(
        (preceded(sp, mailbox_reference), preceded(sp, list_mailbox)),
        |(reference, pattern)| CommandBody::List { reference, pattern },
    );
    alt((all_consuming(plain), extended)).parse(i)
}

fn option_word(i: &[u8]) -> PResult<'_, Vec<u8>> {
    map(
        take_while1(|c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'.'),
        |w: &[u8]| w.to_ascii_uppercase(),
    )
    .parse(i)
}

fn select_opts(i: &[u8]) -> PResult<'_, ListSelect> {
    let (rest, words) =
        delimited(char('('), separated_list0(sp, option_word), char(')')).parse(i)?;
    let mut sel = ListSelect::default();
    for w in &words {
        match w.as_slice() {
            b"SUBSCRIBED" => sel.subscribed = true,
            b"REMOTE" => sel.remote = true,
            b"RECURSIVEMATCH" => sel.recursive = true,
            b"SPECIAL-USE" => sel.special_use = true,
            _ => {
                return Err(nom::Err::Error(nom::error::Error::new(
                    i,
                    nom::error::ErrorKind::Tag,
                )))
            }
        }
    }
    // §3.1: RECURSIVEMATCH needs a selection option it can modify.
    if sel.recursive && !(sel.subscribed || sel.special_use) {
        return Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Verify,
        )));
    }
    Ok((rest, sel))
}

/// `status-att` (RFC 3501 §9, RFC 7162 HIGHESTMODSEQ, RFC 8438 SIZE,
/// RFC 7889 APPENDLIMIT, RFC 8474 MAILBOXID), for STATUS and LIST's RETURN (STATUS (...)) alike.
pub(crate) fn status_att(i: &[u8]) -> PResult<'_, StatusItem> {
    alt((
        value(StatusItem::Messages, tag_no_case("MESSAGES")),
        value(StatusItem::Recent, tag_no_case("RECENT")),
        value(StatusItem::UidNext, tag_no_case("UIDNEXT")),
        value(StatusItem::UidValidity, tag_no_case("UIDVALIDITY")),
        value(StatusItem::Unseen, tag_no_case("UNSEEN")),
        value(StatusItem::HighestModSeq, tag_no_case("HIGHESTMODSEQ")),
        value(StatusItem::Size, tag_no_case("SIZE")),
        value(StatusItem::AppendLimit, tag_no_case("APPENDLIMIT")),
        value(StatusItem::DeletedStorage, tag_no_case("DELETED-STORAGE")),
        value(StatusItem::MailboxId, tag_no_case("MAILBOXID")),
        value(StatusItem::Deleted, tag_no_case("DELETED")),
    ))
    .parse(i)
}

enum RetOpt {
    Word(Vec<u8>),
    Status(Vec<StatusItem>),
}

fn return_opts(i: &[u8]) -> PResult<'_, ListReturn> {
    let status = map(
        preceded(
            (tag_no_case("STATUS"), sp),
            delimited(char('('), separated_list1(sp, status_att), char(')')),
        ),
        RetOpt::Status,
    );
    let opt_ = alt((status, map(option_word, RetOpt::Word)));
    let (rest, opts) = preceded(
        (tag_no_case("RETURN"), sp),
        delimited(char('('), separated_list0(sp, opt_), char(')')),
    )
    .parse(i)?;
    let mut ret = ListReturn::default();
    for o in opts {
        match o {
            RetOpt::Status(items) => ret.status = Some(items),
            RetOpt::Word(w) => match w.as_slice() {
                b"SUBSCRIBED" => ret.subscribed = true,
                b"CHILDREN" => ret.children = true,
                b"SPECIAL-USE" => ret.special_use = true,
                _ => {
                    return Err(nom::Err::Error(nom::error::Error::new(
                        i,
                        nom::error::ErrorKind::Tag,
                    )))
                }
            },
        }
    }
    Ok((rest, ret))
}

fn patterns(i: &[u8]) -> PResult<'_, Vec<String>> {
    let (rest, pats) =
        delimited(char('('), separated_list1(sp, list_mailbox), char(')')).parse(i)?;
    if pats.len() > crate::limits::MAX_LIST_PATTERNS {
        return Err(nom::Err::Failure(nom::error::Error::new(
            i,
            TOO_MANY_PATTERNS,
        )));
    }
    Ok((rest, pats))
}

fn extended(i: &[u8]) -> PResult<'_, CommandBody> {
    all_consuming(map(
        (
            opt(preceded(sp, select_opts)),
            preceded(sp, mailbox_reference),
            preceded(sp, alt((patterns, map(list_mailbox, |p| vec![p])))),
            opt(preceded(sp, return_opts)),
        ),
        |(select, reference, patterns, ret)| {
            let select = select.unwrap_or_default();
            let mut ret = ret.unwrap_or_default();
            // §3.1: the SUBSCRIBED selection option implies the return option.
            ret.subscribed |= select.subscribed;
            CommandBody::ListExtended(Box::new(ListExtended {
                reference,
                patterns,
                select,
                ret,
            }))
        },
    ))
    .parse(i)
}

#[cfg(test)]
mod tests {
    use crate::command::{CommandBody, ListExtended, StatusItem};
    use crate::parse::{parse_command, SyntaxKind};

    fn ext(line: &str) -> ListExtended {
        match parse_command(line.as_bytes()).map(|c| c.body) {
            Ok(CommandBody::ListExtended(l)) => *l,
            other => panic!("{line:?}: {other:?}"),
        }
    }

    fn refused(line: &str) -> SyntaxKind {
        match parse_command(line.as_bytes()) {
            Ok(c) => panic!("{line:?} parsed as {c:?}"),
            Err(e) => e.kind,
        }
    }

    #[test]
    fn rfc_5258_examples_parse() {
        // §5 example 3, 9; RFC 5819 §5; RFC 6154 §5.1.
        let l = ext("A02 LIST (SUBSCRIBED) \"\" \"*\"");
        assert!(l.select.subscribed && l.ret.subscribed);
        let l = ext("A03 LIST () \"\" (\"%\" \"Other/%\") RETURN (CHILDREN)");
        assert_eq!(l.patterns, ["%", "Other/%"]);
        assert!(l.ret.children);
        let l = ext("A04 LIST (subscribed remote RECURSIVEMATCH) \"\" %");
        assert!(l.select.recursive && l.select.remote);
        let l = ext("A01 LIST \"\" % RETURN (STATUS (MESSAGES UNSEEN))");
        assert_eq!(
            l.ret.status.as_deref(),
            Some(&[StatusItem::Messages, StatusItem::Unseen][..])
        );
        let l = ext("t1 LIST (SPECIAL-USE) \"\" *");
        assert!(l.select.special_use && !l.ret.subscribed);
        let l = ext("t1 LIST \"\" * RETURN (SPECIAL-USE SUBSCRIBED)");
        assert!(l.ret.special_use && l.ret.subscribed);
    }

    #[test]
    fn unknown_options_and_lone_recursivematch_are_bad() {
        // §3.1: RECURSIVEMATCH needs an option it modifies (not REMOTE).
        for line in [
            "a LIST (imaptest) \"\" \"\"",
            "a LIST (recursivematch) \"\" \"\"",
            "a LIST (recursivematch remote) \"\" \"\"",
            "a LIST \"\" \"\" return (imaptest)",
            "a LIST \"\" () ",
            "a LIST \"\" % RETURN (STATUS ())",
        ] {
            assert_eq!(refused(line), SyntaxKind::Bad, "{line}");
        }
    }

    #[test]
    fn too_many_patterns_is_limit() {
        let pats = vec!["x"; crate::limits::MAX_LIST_PATTERNS + 1].join(" ");
        assert_eq!(refused(&format!("a LIST \"\" ({pats})")), SyntaxKind::Limit);
        let pats = vec!["x"; crate::limits::MAX_LIST_PATTERNS].join(" ");
        assert_eq!(ext(&format!("a LIST \"\" ({pats})")).patterns.len(), 100);
    }
}
