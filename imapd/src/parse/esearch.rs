//! The extended SEARCH grammar: `RETURN (...)` options (RFC 4466 §2.6 and
//! §7 `search-return-opts`, ESEARCH RFC 4731 §4, SEARCHRES RFC 5182 §4,
//! CONTEXT=SEARCH RFC 5267 §5) and `CANCELUPDATE` (RFC 5267 §4.3.5). The
//! `$` of RFC 5182 (`seq-last-command`) is read by `sequence_set` in
//! `mod.rs`.

use super::{atom, imap_tag, nz_number, sp, string, PResult};
use crate::command::{CommandBody, SearchReturn};
use nom::bytes::complete::tag_no_case;
use nom::character::complete::char;
use nom::combinator::{all_consuming, cut, map, opt};
use nom::multi::{many1, separated_list0};
use nom::sequence::{delimited, preceded, separated_pair};
use nom::Parser;

/// One `search-return-opt` as written.
enum Opt {
    Min,
    Max,
    All,
    Count,
    Save,
    Context,
    Update,
    Partial(u32, u32),
}

fn refuse<T>(i: &[u8]) -> PResult<'_, T> {
    Err(nom::Err::Failure(nom::error::Error::new(
        i,
        nom::error::ErrorKind::Verify,
    )))
}

/// ```text
/// partial-range = nz-number ":" nz-number
///     ;; A range 500:400 is the same as 400:500. (RFC 5267 §5; no "*")
/// ```
fn partial_range(i: &[u8]) -> PResult<'_, (u32, u32)> {
    map(separated_pair(nz_number, char(':'), nz_number), |(a, b)| {
        (a.min(b), a.max(b))
    })
    .parse(i)
}

/// `search-return-opt = search-ret-opt-name [SP search-ret-opt-value]`,
/// limited to the options we implement; any other is BAD (RFC 4466 §2.6:
/// "Any options not defined by extensions that the server supports MUST
/// be rejected with a BAD response").
fn return_opt(i: &[u8]) -> PResult<'_, Opt> {
    let (rest, name) = atom(i)?;
    let opt = match name.to_ascii_uppercase().as_slice() {
        b"MIN" => Opt::Min,
        b"MAX" => Opt::Max,
        b"ALL" => Opt::All,
        b"COUNT" => Opt::Count,
        b"SAVE" => Opt::Save,
        b"CONTEXT" => Opt::Context,
        b"UPDATE" => Opt::Update,
        b"PARTIAL" => {
            let (rest, (a, b)) = cut(preceded(sp, partial_range)).parse(rest)?;
            return Ok((rest, Opt::Partial(a, b)));
        }
        _ => return refuse(i),
    };
    Ok((rest, opt))
}

/// ```text
/// search-return-opts = SP "RETURN" SP "(" [search-return-opt
///                      *(SP search-return-opt)] ")"
/// ```
/// (the leading SP is the caller's). `RETURN ()` means `ALL` (RFC 4731
/// §3.1), and so does `RETURN (CONTEXT)` (a hint, RFC 5267 §4.2). At most
/// one PARTIAL or ALL (RFC 5267 §4.4), and UPDATE once.
pub(crate) fn search_return_opts(i: &[u8]) -> PResult<'_, SearchReturn> {
    let (rest, _) = (tag_no_case("RETURN"), sp).parse(i)?;
    let (rest, opts) = cut(delimited(
        char('('),
        separated_list0(sp, return_opt),
        char(')'),
    ))
    .parse(rest)?;
    let mut r = SearchReturn::default();
    let mut updates = 0;
    for o in &opts {
        match *o {
            Opt::Min => r.min = true,
            Opt::Max => r.max = true,
            Opt::All => r.all = true,
            Opt::Count => r.count = true,
            Opt::Save => r.save = true,
            Opt::Context => r.context = true,
            Opt::Update => {
                r.update = true;
                updates += 1;
            }
            Opt::Partial(a, b) => {
                if r.partial.is_some() {
                    return refuse(i);
                }
                r.partial = Some((a, b));
            }
        }
    }
    if updates > 1 || (r.all && r.partial.is_some()) {
        return refuse(i);
    }
    // `RETURN ()`, or only the CONTEXT hint: ALL (as Dovecot).
    if !(r.min || r.max || r.count || r.save || r.update || r.partial.is_some()) {
        r.all = true;
    }
    Ok((rest, r))
}

/// Whether `input` (a whole command) is a SEARCH, UID SEARCH, SORT or
/// UID SORT (ESORT, RFC 5267 §3) whose RETURN options ask to SAVE: when such a command is refused
/// with NO before it runs (`BADCHARSET`, `LIMIT`), `$` must become empty
/// (RFC 5182 §2.1, RFC 9051 §6.4.4.1 example 5).
pub fn search_saves(input: &[u8]) -> bool {
    let uid = opt((tag_no_case("UID"), sp));
    let name = nom::branch::alt((tag_no_case("SEARCH"), tag_no_case("SORT")));
    let head = (imap_tag, sp, uid, name, sp);
    preceded(head, search_return_opts)
        .parse(input)
        .is_ok_and(|(_, r)| r.save)
}

/// `"CANCELUPDATE" 1*(SP quoted)` (RFC 5267 §5): the tags of the
/// searching commands whose updates stop. Literals are accepted too.
pub(super) fn cancelupdate(i: &[u8]) -> PResult<'_, CommandBody> {
    all_consuming(map(many1(preceded(sp, string)), |tags| {
        CommandBody::CancelUpdate(
            tags.iter()
                .map(|t| String::from_utf8_lossy(t).into_owned())
                .collect(),
        )
    }))
    .parse(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(s: &str) -> Option<SearchReturn> {
        all_consuming(search_return_opts)
            .parse(s.as_bytes())
            .ok()
            .map(|(_, r)| r)
    }

    #[test]
    fn empty_return_list_means_all() {
        // RFC 4731 §3.1: "If the list of result options is empty ...
        // This is equivalent to "(ALL)"."
        let r = opts("RETURN ()").unwrap_or_default();
        assert!(r.all && !r.min && !r.max && !r.count && !r.save);
    }

    #[test]
    fn options_are_case_insensitive_and_combine() {
        let r = opts("return (min MAX Count save)").unwrap_or_default();
        assert!(r.min && r.max && r.count && r.save && !r.all);
        let r = opts("RETURN (UPDATE CONTEXT COUNT)").unwrap_or_default();
        assert!(r.update && r.context && r.count && !r.all);
        // UPDATE does not imply ALL (RFC 5267 §4.3: no interaction);
        // CONTEXT alone is only a hint, so it is RETURN ().
        let r = opts("RETURN (UPDATE)").unwrap_or_default();
        assert!(r.update && !r.all);
        let r = opts("RETURN (CONTEXT)").unwrap_or_default();
        assert!(r.context && r.all);
    }

    #[test]
    fn partial_range_is_normalised_and_strict() {
        // RFC 5267 §5: "A range 500:400 is the same as 400:500", no "*".
        assert_eq!(
            opts("RETURN (PARTIAL 4:2)").and_then(|r| r.partial),
            Some((2, 4))
        );
        for bad in [
            "RETURN (PARTIAL 1)",
            "RETURN (PARTIAL 1:*)",
            "RETURN (PARTIAL *:1)",
            "RETURN (PARTIAL 0:3)",
            "RETURN (PARTIAL)",
            // §4.4: at most one PARTIAL or ALL.
            "RETURN (PARTIAL 1:2 PARTIAL 3:4)",
            "RETURN (ALL PARTIAL 1:2)",
            "RETURN (UPDATE UPDATE)",
            // RFC 4466 §2.6: unknown options are BAD.
            "RETURN (FOO)",
            "RETURN (MIN",
        ] {
            assert_eq!(opts(bad), None, "{bad}");
        }
    }

    #[test]
    fn search_saves_reads_the_options_of_a_whole_command() {
        assert!(search_saves(b"a SEARCH RETURN (SAVE) CHARSET KOI8-R ALL"));
        assert!(search_saves(b"a UID SEARCH RETURN (MIN SAVE) ALL"));
        assert!(!search_saves(b"a SEARCH RETURN (MIN) ALL"));
        assert!(!search_saves(b"a SEARCH CHARSET X ALL"));
        assert!(!search_saves(b"a FETCH 1 FLAGS"));
        assert!(search_saves(b"a UID SORT RETURN (SAVE) (DATE) X-CS ALL"));
    }

    #[test]
    fn cancelupdate_takes_one_or_more_strings() {
        assert_eq!(
            all_consuming(cancelupdate)
                .parse(b" \"B01\" \"B02\"")
                .map(|r| r.1),
            Ok(CommandBody::CancelUpdate(vec!["B01".into(), "B02".into()]))
        );
        assert!(all_consuming(cancelupdate).parse(b"").is_err());
    }
}
