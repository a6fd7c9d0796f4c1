//! SORT and THREAD arguments (RFC 5256 §5 `sort`, `thread`; RFC 5957 §4
//! DISPLAYFROM, DISPLAYTO):
//!
//! ```text
//! sort            = ["UID" SP] "SORT" SP sort-criteria SP search-criteria
//! sort-criteria   = "(" sort-criterion *(SP sort-criterion) ")"
//! sort-criterion  = ["REVERSE" SP] sort-key
//! thread          = ["UID" SP] "THREAD" SP thread-alg SP search-criteria
//! search-criteria = charset 1*(SP search-key)
//! ```
//!
//! The charset is mandatory here (unlike SEARCH); one we cannot read is
//! answered `NO [BADCHARSET]` (RFC 5256 §3) before the rest is parsed.
//! The search keys are SEARCH's own, with its bounds; the number of sort
//! criteria is bounded too ([`MAX_SORT_CRITERIA`]).

use super::esearch::search_return_opts;
use super::search::{mentions_modseq, search_key, Counts};
use super::{astring, atom, sp, PResult};
use crate::command::{CommandBody, SearchKey, SortCriterion, SortKey, ThreadAlgorithm};
use nom::bytes::complete::tag_no_case;
use nom::character::complete::char;
use nom::combinator::{all_consuming, opt};
use nom::multi::{many1, separated_list1};
use nom::sequence::{delimited, preceded, terminated};
use nom::Parser;

pub use crate::limits::MAX_SORT_CRITERIA;

/// The nom error kind of a SORT with more than [`MAX_SORT_CRITERIA`].
pub(super) const TOO_MANY_CRITERIA: nom::error::ErrorKind = nom::error::ErrorKind::Many1Count;

fn sort_key(i: &[u8]) -> PResult<'_, SortKey> {
    let (rest, word) = atom(i)?;
    let key = match word.to_ascii_uppercase().as_slice() {
        b"ARRIVAL" => SortKey::Arrival,
        b"CC" => SortKey::Cc,
        b"DATE" => SortKey::Date,
        b"FROM" => SortKey::From,
        b"SIZE" => SortKey::Size,
        b"SUBJECT" => SortKey::Subject,
        b"TO" => SortKey::To,
        b"DISPLAYFROM" => SortKey::DisplayFrom,
        b"DISPLAYTO" => SortKey::DisplayTo,
        _ => {
            return Err(nom::Err::Error(nom::error::Error::new(
                i,
                nom::error::ErrorKind::Tag,
            )))
        }
    };
    Ok((rest, key))
}

fn sort_criterion(i: &[u8]) -> PResult<'_, SortCriterion> {
    let (rest, reverse) = opt(terminated(tag_no_case("REVERSE"), sp)).parse(i)?;
    let (rest, key) = sort_key(rest)?;
    Ok((
        rest,
        SortCriterion {
            key,
            reverse: reverse.is_some(),
        },
    ))
}

/// `sort-criteria`, refusing more than [`MAX_SORT_CRITERIA`].
fn sort_criteria(i: &[u8]) -> PResult<'_, Vec<SortCriterion>> {
    let (rest, list) =
        delimited(char('('), separated_list1(sp, sort_criterion), char(')')).parse(i)?;
    if list.len() > MAX_SORT_CRITERIA {
        return Err(nom::Err::Failure(nom::error::Error::new(
            i,
            TOO_MANY_CRITERIA,
        )));
    }
    Ok((rest, list))
}

fn thread_alg(i: &[u8]) -> PResult<'_, ThreadAlgorithm> {
    let (rest, word) = atom(i)?;
    let alg = match word.to_ascii_uppercase().as_slice() {
        b"ORDEREDSUBJECT" => ThreadAlgorithm::OrderedSubject,
        b"REFERENCES" => ThreadAlgorithm::References,
        _ => {
            return Err(nom::Err::Error(nom::error::Error::new(
                i,
                nom::error::ErrorKind::Tag,
            )))
        }
    };
    Ok((rest, alg))
}

/// `1*(SP search-key)` after the charset, as one key (an implicit AND).
fn search_criteria(i: &[u8]) -> PResult<'_, SearchKey> {
    let counted = Counts::default();
    let (rest, mut keys) = many1(preceded(sp, |i| search_key(i, 0, &counted))).parse(i)?;
    let key = match keys.len() {
        1 => keys.pop().unwrap_or(SearchKey::All),
        _ => SearchKey::And(keys),
    };
    Ok((rest, key))
}

/// The charset of a SORT or THREAD command if it is one we do not
/// support (anything but UTF-8 and US-ASCII); `None` if it is supported
/// or the arguments do not get as far as a charset (the full parse then
/// says what is wrong).
pub(super) fn unsupported_charset(name: &str, i: &[u8]) -> Option<String> {
    let rest = match name {
        "SORT" => {
            let i = opt(preceded(sp, search_return_opts)).parse(i).ok()?.0;
            preceded(sp, sort_criteria).parse(i).ok()?.0
        }
        "THREAD" => preceded(sp, atom).parse(i).ok()?.0,
        _ => return None,
    };
    let (after, cs) = preceded(sp, astring).parse(rest).ok()?;
    // Without search keys after it, the command is BAD, whatever the
    // charset.
    if after.len() < 2 || after[0] != b' ' {
        return None;
    }
    let cs = String::from_utf8_lossy(&cs).into_owned();
    match cs.eq_ignore_ascii_case("UTF-8") || cs.eq_ignore_ascii_case("US-ASCII") {
        true => None,
        false => Some(cs),
    }
}

/// The arguments of `SORT` (after the command name).
pub(super) fn sort_args(uid: bool, i: &[u8]) -> PResult<'_, CommandBody> {
    let (rest, (ret, criteria, _, key)) = all_consuming((
        opt(preceded(sp, search_return_opts)),
        preceded(sp, sort_criteria),
        preceded(sp, astring),
        search_criteria,
    ))
    .parse(i)?;
    let has_modseq = mentions_modseq(&key);
    Ok((
        rest,
        CommandBody::Sort {
            uid,
            ret,
            criteria,
            key,
            has_modseq,
        },
    ))
}

/// The arguments of `THREAD` (after the command name).
pub(super) fn thread_args(uid: bool, i: &[u8]) -> PResult<'_, CommandBody> {
    let (rest, (algorithm, _, key)) = all_consuming((
        preceded(sp, thread_alg),
        preceded(sp, astring),
        search_criteria,
    ))
    .parse(i)?;
    Ok((
        rest,
        CommandBody::Thread {
            uid,
            algorithm,
            key,
        },
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::command::{CommandBody, SearchKey, SortCriterion, SortKey, ThreadAlgorithm};
    use crate::parse::{parse_command, SyntaxKind};

    fn body(line: &str) -> CommandBody {
        parse_command(line.as_bytes()).unwrap().body
    }

    fn kind(line: &str) -> SyntaxKind {
        parse_command(line.as_bytes()).unwrap_err().kind
    }

    #[test]
    fn sort_criteria_reverse_and_search_keys() {
        let c = |key, reverse| SortCriterion { key, reverse };
        assert_eq!(
            body("a UID SORT (REVERSE arrival Subject displayFROM) utf-8 UNSEEN 1:5"),
            CommandBody::Sort {
                uid: true,
                ret: None,
                criteria: vec![
                    c(SortKey::Arrival, true),
                    c(SortKey::Subject, false),
                    c(SortKey::DisplayFrom, false),
                ],
                key: SearchKey::And(vec![
                    SearchKey::NotFlag("\\Seen".into()),
                    SearchKey::Seq(crate::parse::sequence_set(b"1:5").unwrap().1),
                ]),
                has_modseq: false,
            }
        );
        assert_eq!(
            body("a SORT (SIZE) \"US-ASCII\" MODSEQ 4"),
            CommandBody::Sort {
                uid: false,
                ret: None,
                criteria: vec![c(SortKey::Size, false)],
                key: SearchKey::ModSeq(4),
                has_modseq: true,
            }
        );
    }

    /// RFC 5267 §3: `SORT RETURN (...)` (ESORT) with the search-return
    /// options of RFC 4731 and §4's PARTIAL/UPDATE; a bad option is BAD,
    /// an unknown charset still `NO [BADCHARSET]`.
    #[test]
    fn sort_return_options() {
        let CommandBody::Sort { ret, criteria, .. } =
            body("a UID SORT RETURN (MIN max COUNT PARTIAL 4:2 UPDATE) (REVERSE DATE) UTF-8 ALL")
        else {
            panic!("not a SORT");
        };
        let r = ret.unwrap();
        assert!(r.min && r.max && r.count && r.update && !r.all);
        assert_eq!(r.partial, Some((2, 4)));
        assert_eq!(criteria.len(), 1);
        let CommandBody::Sort { ret, .. } = body("a SORT RETURN () (ARRIVAL) US-ASCII ALL") else {
            panic!("not a SORT");
        };
        assert!(ret.unwrap().all);
        let CommandBody::Sort { ret, .. } = body("a SORT (ARRIVAL) US-ASCII ALL") else {
            panic!("not a SORT");
        };
        assert_eq!(ret, None);
        assert_eq!(
            kind("a SORT RETURN (MIN) (DATE) KOI8-R ALL"),
            SyntaxKind::BadCharset
        );
        for line in [
            "a SORT RETURN (PARTIAL 1) (ARRIVAL) US-ASCII ALL",
            "a SORT RETURN (PARTIAL 1:*) (ARRIVAL) US-ASCII ALL",
            "a SORT RETURN (PARTIAL *:1) (ARRIVAL) US-ASCII ALL",
            "a SORT RETURN (ALL PARTIAL 1:2) (ARRIVAL) US-ASCII ALL",
            "a SORT RETURN (FOO) (ARRIVAL) US-ASCII ALL",
            "a SORT RETURN (MIN) US-ASCII ALL",
            "a SORT RETURN (ARRIVAL) US-ASCII ALL",
        ] {
            assert_eq!(kind(line), SyntaxKind::Bad, "{line}");
        }
    }

    #[test]
    fn thread_algorithms() {
        assert_eq!(
            body("a THREAD REFERENCES US-ASCII ALL"),
            CommandBody::Thread {
                uid: false,
                algorithm: ThreadAlgorithm::References,
                key: SearchKey::All,
            }
        );
        assert_eq!(
            body("a uid thread orderedsubject utf-8 all"),
            CommandBody::Thread {
                uid: true,
                algorithm: ThreadAlgorithm::OrderedSubject,
                key: SearchKey::All,
            }
        );
    }

    /// RFC 5256 §3: an unknown charset is `NO [BADCHARSET]`; the charset
    /// and at least one search key are required; unknown keys and
    /// algorithms, empty criteria, a dangling REVERSE are BAD.
    #[test]
    fn bad_arguments() {
        assert_eq!(kind("a SORT (DATE) KOI8-R ALL"), SyntaxKind::BadCharset);
        assert_eq!(
            kind("a THREAD REFERENCES x-unknown ALL"),
            SyntaxKind::BadCharset
        );
        for line in [
            "a SORT (DATE) ALL",
            "a SORT (DATE) UTF-8",
            "a SORT () UTF-8 ALL",
            "a SORT (REVERSE) UTF-8 ALL",
            "a SORT (NAME) UTF-8 ALL",
            "a SORT DATE UTF-8 ALL",
            "a THREAD UTF-8 ALL",
            "a THREAD X-ALG UTF-8 ALL",
            "a THREAD REFERENCES UTF-8",
            "a UID SORT (DATE) UTF-8 ALL extra(",
        ] {
            assert_eq!(kind(line), SyntaxKind::Bad, "{line}");
        }
    }

    #[test]
    fn limits_are_no_limit() {
        let many = vec!["DATE"; super::MAX_SORT_CRITERIA].join(" ");
        let line = format!("a SORT ({many}) UTF-8 ALL");
        assert!(parse_command(line.as_bytes()).is_ok());
        let line = format!("a SORT ({many} SIZE) UTF-8 ALL");
        assert_eq!(kind(&line), SyntaxKind::Limit);
        let deep = format!("a THREAD REFERENCES UTF-8 {}ALL", "NOT ".repeat(200));
        assert_eq!(kind(&deep), SyntaxKind::Limit);
    }
}
