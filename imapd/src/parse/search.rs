//! SEARCH arguments (RFC 3501 §6.4.4 and §9 `search`, `search-key`), plus
//! the CONDSTORE `MODSEQ` key (RFC 7162 §3.1.5) and WITHIN's `OLDER` and
//! `YOUNGER` (RFC 5032 §3: `("OLDER" / "YOUNGER") SP nz-number`) and
//! SAVEDATE's `SAVEDBEFORE`/`SAVEDON`/`SAVEDSINCE date` and
//! `SAVEDATESUPPORTED` (RFC 8514 §5), OBJECTID's `EMAILID`/`THREADID
//! objectid` (RFC 8474 §6).
//!
//! Hostile input is bounded: nesting of NOT, OR and parentheses is capped
//! ([`MAX_SEARCH_DEPTH`]) so that it cannot exhaust the stack, and so are
//! the number of keys ([`MAX_SEARCH_KEYS`]) and of TEXT/BODY keys
//! ([`MAX_SEARCH_TEXT_KEYS`]); each refusal is a nom `Failure` that
//! `parse_command` answers with `NO [LIMIT]`. A chain of ORs
//! (`OR a OR b OR c d`, `OR OR a b c`, any mix) is read in a loop, not by
//! recursion, and costs one level of depth however long it is; if it nests
//! deeper than [`FAITHFUL_OR_DEPTH`] it is rebuilt as a balanced tree of
//! the same operands (OR is associative), so the tree stays shallow.

use super::esearch::search_return_opts;
use super::{
    astring, astring_text, date, flag, mod_sequence_value, number, nz_number, quoted, sequence_set,
    sp, PResult,
};
use crate::command::{CommandBody, SearchKey};
use nom::branch::alt;
use nom::bytes::complete::{tag_no_case, take_while1};
use nom::character::complete::char;
use nom::combinator::{all_consuming, map, opt};
use nom::multi::separated_list1;
use nom::sequence::preceded;
use nom::Parser;
use std::cell::Cell;

use crate::limits::{MAX_SEARCH_DEPTH, MAX_SEARCH_KEYS, MAX_SEARCH_TEXT_KEYS};

/// An OR chain nesting at most this deep keeps the client's shape;
/// deeper ones are rebalanced.
const FAITHFUL_OR_DEPTH: usize = 8;

/// The nom error kind of a SEARCH nested deeper than [`MAX_SEARCH_DEPTH`].
pub(super) const TOO_DEEP: nom::error::ErrorKind = nom::error::ErrorKind::TooLarge;
/// The nom error kind of a SEARCH with more than [`MAX_SEARCH_KEYS`] keys.
pub(super) const TOO_MANY: nom::error::ErrorKind = nom::error::ErrorKind::Count;
/// The nom error kind of a SEARCH with more than [`MAX_SEARCH_TEXT_KEYS`]
/// TEXT and BODY keys.
pub(super) const TOO_MANY_TEXT: nom::error::ErrorKind = nom::error::ErrorKind::ManyMN;

/// Keys read so far: all, and TEXT/BODY ones.
#[derive(Default)]
pub(crate) struct Counts {
    keys: Cell<usize>,
    text: Cell<usize>,
}

/// If the arguments name a CHARSET other than UTF-8 / US-ASCII, return it.
pub(super) fn unsupported_charset(i: &[u8]) -> Option<String> {
    if super::mode().utf8_accept {
        // Any CHARSET is refused with BAD by `search_args`.
        return None;
    }
    let (i, _) = opt(preceded(sp, search_return_opts)).parse(i).ok()?;
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

/// `search = "SEARCH" [search-return-opts] [SP "CHARSET" SP astring]
/// 1*(SP search-key)` (RFC 3501 §9, RFC 4466 §7 for the RETURN options)
pub(super) fn search_args(uid: bool, i: &[u8]) -> PResult<'_, CommandBody> {
    let (i, ret) = opt(preceded(sp, search_return_opts)).parse(i)?;
    let charset = preceded((sp, tag_no_case("CHARSET"), sp), astring);
    let (rest, cs) = opt(charset).parse(i)?;
    // RFC 6855 §3: with UTF8=ACCEPT enabled a SEARCH names no charset
    // (everything is UTF-8); one that does is refused with BAD.
    if cs.is_some() && super::mode().utf8_accept {
        return Err(nom::Err::Failure(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Verify,
        )));
    }
    let counted = Counts::default();
    let parsed = all_consuming(map(
        nom::multi::many1(preceded(sp, |i| search_key(i, 0, &counted))),
        move |keys| {
            let has_modseq = keys.iter().any(mentions_modseq);
            let key = if keys.len() == 1 {
                keys.into_iter().next().unwrap_or(SearchKey::All)
            } else {
                SearchKey::And(keys)
            };
            CommandBody::Search {
                uid,
                ret,
                key,
                has_modseq,
            }
        },
    ))
    .parse(rest);
    parsed
}

pub(crate) fn mentions_modseq(k: &SearchKey) -> bool {
    match k {
        SearchKey::ModSeq(_) => true,
        SearchKey::Not(a) => mentions_modseq(a),
        SearchKey::Or(a, b) => mentions_modseq(a) || mentions_modseq(b),
        SearchKey::And(v) => v.iter().any(mentions_modseq),
        _ => false,
    }
}

fn limit(i: &[u8], kind: nom::error::ErrorKind) -> nom::Err<nom::error::Error<&[u8]>> {
    nom::Err::Failure(nom::error::Error::new(i, kind))
}

/// Whether `i` starts with the word `OR`.
fn at_or(i: &[u8]) -> bool {
    i.len() >= 2
        && i[..2].eq_ignore_ascii_case(b"OR")
        && !i.get(2).is_some_and(u8::is_ascii_alphabetic)
}

/// `search-key` (see the module docs for the list); `depth` levels of
/// nesting are open, and `keys` counts the keys read so far.
pub(crate) fn search_key<'a>(i: &'a [u8], depth: usize, keys: &Counts) -> PResult<'a, SearchKey> {
    if depth > MAX_SEARCH_DEPTH {
        return Err(limit(i, TOO_DEEP));
    }
    if at_or(i) {
        return or_chain(&i[2..], depth, keys);
    }
    if i.first() == Some(&b'(') {
        let (rest, list) =
            separated_list1(sp, |i| search_key(i, depth + 1, keys)).parse(&i[1..])?;
        let (rest, _) = char(')').parse(rest)?;
        return Ok((rest, SearchKey::And(list)));
    }
    simple_key(i, depth, keys)
}

/// One piece of an OR chain in prefix order.
enum Piece {
    Or,
    Key(SearchKey),
}

/// The rest of `OR key key` after the word `OR`: every operand that is
/// itself an OR joins the chain (read in this loop, not by recursion), the
/// others are keys one level deeper.
fn or_chain<'a>(mut rest: &'a [u8], depth: usize, keys: &Counts) -> PResult<'a, SearchKey> {
    let mut pieces = vec![Piece::Or];
    // Operands still to read: each OR replaces one by two.
    let mut need = 2usize;
    while need > 0 {
        (rest, _) = sp(rest)?;
        if at_or(rest) {
            rest = &rest[2..];
            pieces.push(Piece::Or);
            need += 1;
        } else {
            let (r, k) = search_key(rest, depth + 1, keys)?;
            rest = r;
            pieces.push(Piece::Key(k));
            need -= 1;
        }
    }
    Ok((rest, build_or(pieces)))
}

/// The tree of an OR chain: as written if it nests at most
/// [`FAITHFUL_OR_DEPTH`] deep, else balanced over the same operands.
fn build_or(pieces: Vec<Piece>) -> SearchKey {
    // Depth as written: evaluate the prefix form from the right.
    let mut depths: Vec<usize> = Vec::new();
    for p in pieces.iter().rev() {
        match p {
            Piece::Key(_) => depths.push(0),
            Piece::Or => {
                let a = depths.pop().unwrap_or(0);
                let b = depths.pop().unwrap_or(0);
                depths.push(a.max(b) + 1);
            }
        }
    }
    if depths.pop().unwrap_or(0) <= FAITHFUL_OR_DEPTH {
        let mut stack: Vec<SearchKey> = Vec::new();
        for p in pieces.into_iter().rev() {
            match p {
                Piece::Key(k) => stack.push(k),
                Piece::Or => {
                    let a = stack.pop().unwrap_or(SearchKey::All);
                    let b = stack.pop().unwrap_or(SearchKey::All);
                    stack.push(SearchKey::Or(Box::new(a), Box::new(b)));
                }
            }
        }
        return stack.pop().unwrap_or(SearchKey::All);
    }
    let operands: Vec<SearchKey> = pieces
        .into_iter()
        .filter_map(|p| match p {
            Piece::Key(k) => Some(k),
            Piece::Or => None,
        })
        .collect();
    balanced_or(operands)
}

/// `a OR b OR ...` as a tree of depth ⌈log2 n⌉ (`n` ≥ 1).
fn balanced_or(mut v: Vec<SearchKey>) -> SearchKey {
    if v.len() <= 1 {
        return v.pop().unwrap_or(SearchKey::All);
    }
    let right = v.split_off(v.len() / 2);
    SearchKey::Or(Box::new(balanced_or(v)), Box::new(balanced_or(right)))
}

/// A key that is not OR or a parenthesised list.
fn simple_key<'a>(i: &'a [u8], depth: usize, keys: &Counts) -> PResult<'a, SearchKey> {
    // Every key but NOT (and the compound ones) counts one.
    let count = || {
        keys.keys.set(keys.keys.get() + 1);
        if keys.keys.get() > MAX_SEARCH_KEYS {
            Err(limit(i, TOO_MANY))
        } else {
            Ok(())
        }
    };
    // A sequence set, or `$` (RFC 5182 §2.1: the saved result).
    if i.first()
        .is_some_and(|c| c.is_ascii_digit() || matches!(c, b'*' | b'$'))
    {
        count()?;
        return map(sequence_set, SearchKey::Seq).parse(i);
    }
    let (rest, word) = take_while1(|c: u8| c.is_ascii_alphabetic())(i)?;
    let word = word.to_ascii_uppercase();
    if word != b"NOT" {
        count()?;
    }
    if word == b"TEXT" || word == b"BODY" {
        keys.text.set(keys.text.get() + 1);
        if keys.text.get() > MAX_SEARCH_TEXT_KEYS {
            return Err(limit(i, TOO_MANY_TEXT));
        }
    }
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
        b"OLDER" => map(preceded(sp, nz_number), SearchKey::Older).parse(rest),
        b"SAVEDBEFORE" => map(preceded(sp, date), SearchKey::SavedBefore).parse(rest),
        b"SAVEDON" => map(preceded(sp, date), SearchKey::SavedOn).parse(rest),
        b"SAVEDSINCE" => map(preceded(sp, date), SearchKey::SavedSince).parse(rest),
        b"SAVEDATESUPPORTED" => Ok((rest, SearchKey::SaveDateSupported)),
        b"EMAILID" => map(preceded(sp, objectid), SearchKey::EmailId).parse(rest),
        b"THREADID" => map(preceded(sp, objectid), SearchKey::ThreadId).parse(rest),
        b"YOUNGER" => map(preceded(sp, nz_number), SearchKey::Younger).parse(rest),
        b"NOT" => map(preceded(sp, |i| search_key(i, depth + 1, keys)), |k| {
            SearchKey::Not(Box::new(k))
        })
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

/// ```text
/// objectid = 1*255(ALPHA / DIGIT / "_" / "-")   ; RFC 8474 §7
/// ```
fn objectid(i: &[u8]) -> PResult<'_, String> {
    let (rest, id) = take_while1(|c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')(i)?;
    if !crate::objectid::is_objectid(id) {
        return Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::TooLarge,
        )));
    }
    Ok((rest, String::from_utf8_lossy(id).into_owned()))
}
