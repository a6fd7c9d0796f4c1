//! FETCH arguments (RFC 3501 §6.4.5 and §9 `fetch`, `fetch-att`, `section`),
//! with the ALL/FAST/FULL macros expanded and the CONDSTORE CHANGEDSINCE
//! and QRESYNC VANISHED modifiers (RFC 7162 §3.1.4.1, §3.2.6).

use super::{astring_text, mod_sequence_value, number, nz_number, sequence_set, sp, PResult};
use crate::command::{CommandBody, FetchAtt, Section, SectionText};
use nom::branch::alt;
use nom::bytes::complete::{tag_no_case, take_while1};
use nom::character::complete::char;
use nom::combinator::{all_consuming, map, opt};
use nom::multi::{separated_list0, separated_list1};
use nom::sequence::{delimited, preceded};
use nom::Parser;

/// ```text
/// fetch = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" /
///         fetch-att / "(" fetch-att *(SP fetch-att) ")")
///         [SP "(" fetch-modifier *(SP fetch-modifier) ")"]
/// fetch-modifier = "CHANGEDSINCE" SP mod-sequence-value / "VANISHED"
/// ```
/// (RFC 7162 §3.1.4.1, §3.2.6): each modifier at most once, and VANISHED
/// only in UID FETCH together with CHANGEDSINCE (else BAD).
pub(super) fn fetch_args(uid: bool, i: &[u8]) -> PResult<'_, CommandBody> {
    // None: VANISHED; Some(n): CHANGEDSINCE n.
    let one = alt((
        map(
            preceded((tag_no_case("CHANGEDSINCE"), sp), mod_sequence_value),
            Some,
        ),
        map(tag_no_case("VANISHED"), |_| None),
    ));
    let modifiers = nom::combinator::verify(
        delimited(char('('), separated_list1(sp, one), char(')')),
        move |m: &Vec<Option<u64>>| {
            let since = m.iter().filter(|x| x.is_some()).count();
            let vanished = m.len() - since;
            since <= 1 && vanished <= 1 && (vanished == 0 || (uid && since == 1))
        },
    );
    let atts = alt((
        delimited(char('('), separated_list1(sp, fetch_att), char(')')),
        fetch_macro_or_att,
    ));
    all_consuming(map(
        (
            preceded(sp, sequence_set),
            preceded(sp, atts),
            opt(preceded(sp, modifiers)),
        ),
        move |(set, mut atts, modifiers)| {
            let modifiers = modifiers.unwrap_or_default();
            let changed_since = modifiers.iter().find_map(|m| *m);
            let vanished = modifiers.iter().any(Option::is_none);
            if changed_since.is_some() && !atts.contains(&FetchAtt::ModSeq) {
                atts.push(FetchAtt::ModSeq);
            }
            CommandBody::Fetch {
                uid,
                set,
                atts,
                changed_since,
                vanished,
            }
        },
    ))
    .parse(i)
}

/// `"ALL" / "FULL" / "FAST" / fetch-att`, macros expanded (§6.4.5).
fn fetch_macro_or_att(i: &[u8]) -> PResult<'_, Vec<FetchAtt>> {
    use FetchAtt::*;
    let (rest, word) = take_while1(|c: u8| c.is_ascii_alphanumeric() || c == b'.')(i)?;
    let upper = word.to_ascii_uppercase();
    let expanded = match upper.as_slice() {
        b"ALL" => vec![Flags, InternalDate, Rfc822Size, Envelope],
        b"FAST" => vec![Flags, InternalDate, Rfc822Size],
        b"FULL" => vec![Flags, InternalDate, Rfc822Size, Envelope, Body],
        _ => return map(fetch_att, |a| vec![a]).parse(i),
    };
    Ok((rest, expanded))
}

/// ```text
/// fetch-att = "ENVELOPE" / "FLAGS" / "INTERNALDATE" /
///             "RFC822" [".HEADER" / ".SIZE" / ".TEXT"] /
///             "BODY" ["STRUCTURE"] / "UID" / "MODSEQ" / "SAVEDATE" /
///             "PREVIEW" [SP "(" "LAZY" ")"] / "EMAILID" / "THREADID" /
///             "BODY" section ["<" number "." nz-number ">"] /
///             "BODY.PEEK" section ["<" number "." nz-number ">"]
/// ```
pub(crate) fn fetch_att(i: &[u8]) -> PResult<'_, FetchAtt> {
    let (rest, word) = take_while1(|c: u8| c.is_ascii_alphanumeric() || c == b'.')(i)?;
    let upper = word.to_ascii_uppercase();
    let simple = match upper.as_slice() {
        b"ENVELOPE" => Some(FetchAtt::Envelope),
        b"FLAGS" => Some(FetchAtt::Flags),
        b"INTERNALDATE" => Some(FetchAtt::InternalDate),
        b"RFC822" => Some(FetchAtt::Rfc822),
        b"RFC822.HEADER" => Some(FetchAtt::Rfc822Header),
        b"RFC822.SIZE" => Some(FetchAtt::Rfc822Size),
        b"RFC822.TEXT" => Some(FetchAtt::Rfc822Text),
        b"BODYSTRUCTURE" => Some(FetchAtt::BodyStructure),
        b"UID" => Some(FetchAtt::Uid),
        b"MODSEQ" => Some(FetchAtt::ModSeq),
        b"SAVEDATE" => Some(FetchAtt::SaveDate),
        b"EMAILID" => Some(FetchAtt::EmailId),
        b"THREADID" => Some(FetchAtt::ThreadId),
        // RFC 8970 §5: "PREVIEW" [SP "(" preview-mod *(SP preview-mod) ")"],
        // preview-mod = "LAZY".
        b"PREVIEW" => {
            let mods = delimited(
                char('('),
                separated_list1(sp, tag_no_case("LAZY")),
                char(')'),
            );
            let (rest, _) = opt(preceded(sp, mods)).parse(rest)?;
            return Ok((rest, FetchAtt::Preview));
        }
        b"BODY" | b"BODY.PEEK" => None,
        b"BINARY" | b"BINARY.PEEK" | b"BINARY.SIZE" => {
            return super::binary::binary_att(&upper, rest)
        }
        _ => {
            return Err(nom::Err::Error(nom::error::Error::new(
                i,
                nom::error::ErrorKind::Tag,
            )))
        }
    };
    if let Some(a) = simple {
        return Ok((rest, a));
    }
    let peek = upper.as_slice() == b"BODY.PEEK";
    if !rest.starts_with(b"[") {
        if peek {
            return Err(nom::Err::Error(nom::error::Error::new(
                rest,
                nom::error::ErrorKind::Char,
            )));
        }
        return Ok((rest, FetchAtt::Body));
    }
    let (rest, section) = section(rest)?;
    let (rest, partial) = opt(delimited(
        char('<'),
        (number, preceded(char('.'), nz_number)),
        char('>'),
    ))
    .parse(rest)?;
    Ok((
        rest,
        FetchAtt::Section {
            section,
            partial,
            peek,
        },
    ))
}

/// ```text
/// section = "[" [section-spec] "]"
/// section-spec = section-msgtext / (section-part ["." section-text])
/// section-part = nz-number *("." nz-number)
/// ```
pub(crate) fn section(i: &[u8]) -> PResult<'_, Section> {
    let (i, _) = char('[').parse(i)?;
    let (i, part) = separated_list0(char('.'), nz_number).parse(i)?;
    let (i, text) = if part.is_empty() {
        opt(section_msgtext).parse(i)?
    } else {
        opt(preceded(
            char('.'),
            alt((
                section_msgtext,
                map(tag_no_case("MIME"), |_| SectionText::Mime),
            )),
        ))
        .parse(i)?
    };
    let (i, _) = char(']').parse(i)?;
    Ok((
        i,
        Section {
            part,
            text: text.unwrap_or(SectionText::Full),
        },
    ))
}

/// ```text
/// section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list /
///                   "TEXT"
/// header-list = "(" header-fld-name *(SP header-fld-name) ")"
/// ```
fn section_msgtext(i: &[u8]) -> PResult<'_, SectionText> {
    let header_list = || {
        preceded(
            sp,
            delimited(char('('), separated_list1(sp, astring_text), char(')')),
        )
    };
    alt((
        map(
            preceded(tag_no_case("HEADER.FIELDS.NOT"), header_list()),
            SectionText::HeaderFieldsNot,
        ),
        map(
            preceded(tag_no_case("HEADER.FIELDS"), header_list()),
            SectionText::HeaderFields,
        ),
        map(tag_no_case("HEADER"), |_| SectionText::Header),
        map(tag_no_case("TEXT"), |_| SectionText::Text),
    ))
    .parse(i)
}

impl Section {
    /// The section as it appears in a FETCH response, e.g. `1.2.HEADER` or
    /// `HEADER.FIELDS (From To)`.
    pub fn spec(&self) -> String {
        let mut s = self
            .part
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(".");
        let text = match &self.text {
            SectionText::Full => String::new(),
            SectionText::Header => "HEADER".into(),
            SectionText::Text => "TEXT".into(),
            SectionText::Mime => "MIME".into(),
            SectionText::HeaderFields(f) => format!("HEADER.FIELDS ({})", quote_fields(f)),
            SectionText::HeaderFieldsNot(f) => {
                format!("HEADER.FIELDS.NOT ({})", quote_fields(f))
            }
        };
        if !s.is_empty() && !text.is_empty() {
            s.push('.');
        }
        s.push_str(&text);
        s
    }
}

fn quote_fields(f: &[String]) -> String {
    f.iter()
        .map(|name| {
            if !name.is_empty() && name.bytes().all(super::is_atom_char) {
                name.clone()
            } else {
                crate::response::quote(name)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
