//! SEARCH arguments (RFC 3501 §6.4.4 and §9 `search`, `search-key`), plus
//! the CONDSTORE `MODSEQ` key (RFC 7162 §3.1.5). Nesting depth is capped so
//! that hostile input cannot exhaust the stack.

use super::{
    astring, astring_text, date, flag, mod_sequence_value, number, quoted, sequence_set, sp,
    PResult,
};
use crate::command::{CommandBody, SearchKey};
use nom::branch::alt;
use nom::bytes::complete::{tag_no_case, take_while1};
use nom::character::complete::char;
use nom::combinator::{all_consuming, map, opt};
use nom::multi::separated_list1;
use nom::sequence::preceded;
use nom::Parser;

use crate::limits::MAX_SEARCH_DEPTH as MAX_DEPTH;

/// If the arguments name a CHARSET other than UTF-8 / US-ASCII, return it.
pub(super) fn unsupported_charset(i: &[u8]) -> Option<String> {
    let (_, cs) = preceded((sp, tag_no_case("CHARSET"), sp), astring)
        .parse(i)
        .ok()?;
    let cs = String::from_utf8_lossy(&cs).into_owned();
    if cs.eq_ignore_ascii_case("UTF-8") || cs.eq_ignore_ascii_case("US-ASCII") {
        None
    } else {
        Some(cs)
    }
}

/// `search = "SEARCH" [SP "CHARSET" SP astring] 1*(SP search-key)`
pub(super) fn search_args(uid: bool, i: &[u8]) -> PResult<'_, CommandBody> {
    let charset = preceded((sp, tag_no_case("CHARSET"), sp), astring);
    let (rest, _) = opt(charset).parse(i)?;
    all_consuming(map(
        nom::multi::many1(preceded(sp, |i| search_key(i, 0))),
        move |keys| {
            let has_modseq = keys.iter().any(mentions_modseq);
            let key = if keys.len() == 1 {
                keys.into_iter().next().unwrap_or(SearchKey::All)
            } else {
                SearchKey::And(keys)
            };
            CommandBody::Search {
                uid,
                key,
                has_modseq,
            }
        },
    ))
    .parse(rest)
}

fn mentions_modseq(k: &SearchKey) -> bool {
    match k {
        SearchKey::ModSeq(_) => true,
        SearchKey::Not(a) => mentions_modseq(a),
        SearchKey::Or(a, b) => mentions_modseq(a) || mentions_modseq(b),
        SearchKey::And(v) => v.iter().any(mentions_modseq),
        _ => false,
    }
}

fn too_deep(i: &[u8]) -> nom::Err<nom::error::Error<&[u8]>> {
    nom::Err::Failure(nom::error::Error::new(i, nom::error::ErrorKind::TooLarge))
}

/// `search-key` (see the module docs for the list).
pub(crate) fn search_key(i: &[u8], depth: usize) -> PResult<'_, SearchKey> {
    if depth > MAX_DEPTH {
        return Err(too_deep(i));
    }
    match i.first() {
        Some(b'(') => {
            let (rest, keys) = separated_list1(sp, |i| search_key(i, depth + 1)).parse(&i[1..])?;
            let (rest, _) = char(')').parse(rest)?;
            return Ok((rest, SearchKey::And(keys)));
        }
        Some(c) if c.is_ascii_digit() || *c == b'*' => {
            return map(sequence_set, SearchKey::Seq).parse(i);
        }
        _ => {}
    }
    let (rest, word) = take_while1(|c: u8| c.is_ascii_alphabetic())(i)?;
    let word = word.to_ascii_uppercase();
    let flag_key = |name: &str| SearchKey::Flag(format!("\\{name}"));
    let not_flag = |name: &str| SearchKey::NotFlag(format!("\\{name}"));
    let hdr = |field: &'static str| {
        map(preceded(sp, astring_text), move |v| {
            SearchKey::Header(field.to_owned(), v)
        })
    };
    match word.as_slice() {
        b"ALL" => Ok((rest, SearchKey::All)),
        b"ANSWERED" => Ok((rest, flag_key("Answered"))),
        b"DELETED" => Ok((rest, flag_key("Deleted"))),
        b"FLAGGED" => Ok((rest, flag_key("Flagged"))),
        b"SEEN" => Ok((rest, flag_key("Seen"))),
        b"DRAFT" => Ok((rest, flag_key("Draft"))),
        b"UNANSWERED" => Ok((rest, not_flag("Answered"))),
        b"UNDELETED" => Ok((rest, not_flag("Deleted"))),
        b"UNFLAGGED" => Ok((rest, not_flag("Flagged"))),
        b"UNSEEN" => Ok((rest, not_flag("Seen"))),
        b"UNDRAFT" => Ok((rest, not_flag("Draft"))),
        b"NEW" => Ok((rest, SearchKey::New)),
        b"OLD" => Ok((rest, SearchKey::Old)),
        b"RECENT" => Ok((rest, SearchKey::Recent)),
        b"KEYWORD" => map(preceded(sp, flag), SearchKey::Keyword).parse(rest),
        b"UNKEYWORD" => map(preceded(sp, flag), SearchKey::Unkeyword).parse(rest),
        b"BCC" => hdr("Bcc").parse(rest),
        b"CC" => hdr("Cc").parse(rest),
        b"FROM" => hdr("From").parse(rest),
        b"SUBJECT" => hdr("Subject").parse(rest),
        b"TO" => hdr("To").parse(rest),
        b"HEADER" => map(
            (preceded(sp, astring_text), preceded(sp, astring_text)),
            |(f, v)| SearchKey::Header(f, v),
        )
        .parse(rest),
        b"BODY" => map(preceded(sp, astring_text), SearchKey::Body).parse(rest),
        b"TEXT" => map(preceded(sp, astring_text), SearchKey::Text).parse(rest),
        b"BEFORE" => map(preceded(sp, date), SearchKey::Before).parse(rest),
        b"ON" => map(preceded(sp, date), SearchKey::On).parse(rest),
        b"SINCE" => map(preceded(sp, date), SearchKey::Since).parse(rest),
        b"SENTBEFORE" => map(preceded(sp, date), SearchKey::SentBefore).parse(rest),
        b"SENTON" => map(preceded(sp, date), SearchKey::SentOn).parse(rest),
        b"SENTSINCE" => map(preceded(sp, date), SearchKey::SentSince).parse(rest),
        b"LARGER" => map(preceded(sp, number), SearchKey::Larger).parse(rest),
        b"SMALLER" => map(preceded(sp, number), SearchKey::Smaller).parse(rest),
        b"UID" => map(preceded(sp, sequence_set), SearchKey::Uid).parse(rest),
        b"NOT" => map(preceded(sp, |i| search_key(i, depth + 1)), |k| {
            SearchKey::Not(Box::new(k))
        })
        .parse(rest),
        b"OR" => map(
            (
                preceded(sp, |i| search_key(i, depth + 1)),
                preceded(sp, |i| search_key(i, depth + 1)),
            ),
            |(a, b)| SearchKey::Or(Box::new(a), Box::new(b)),
        )
        .parse(rest),
        // MODSEQ [SP entry-name SP entry-type-req] SP mod-sequence-value;
        // entry-name is a quoted "/flags/..." and entry-type-req one of
        // three words (RFC 7162 §7), so `MODSEQ 5 LARGER 10` is a MODSEQ
        // key followed by a LARGER key, not an entry.
        b"MODSEQ" => {
            let entry = (
                sp,
                quoted,
                sp,
                alt((
                    tag_no_case("priv"),
                    tag_no_case("shared"),
                    tag_no_case("all"),
                )),
            );
            map(
                preceded((opt(entry), sp), mod_sequence_value),
                SearchKey::ModSeq,
            )
            .parse(rest)
        }
        _ => Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Tag,
        ))),
    }
}
