//! BINARY fetch items (RFC 3516 §6):
//!
//! ```text
//! fetch-att      =/ "BINARY" [".PEEK"] section-binary [partial] /
//!                   "BINARY.SIZE" section-binary
//! section-binary = "[" [section-part] "]"
//! partial        = "<" number "." nz-number ">"
//! ```

use super::{number, nz_number, PResult};
use crate::command::FetchAtt;
use nom::character::complete::char;
use nom::combinator::opt;
use nom::multi::separated_list0;
use nom::sequence::{delimited, preceded};
use nom::Parser;

/// The rest of a BINARY item after its (upper-cased) name `word`.
pub(super) fn binary_att<'a>(word: &[u8], i: &'a [u8]) -> PResult<'a, FetchAtt> {
    let (i, part) = section_binary(i)?;
    if word == b"BINARY.SIZE" {
        return Ok((i, FetchAtt::BinarySize(part)));
    }
    let (i, partial) = opt(delimited(
        char('<'),
        (number, preceded(char('.'), nz_number)),
        char('>'),
    ))
    .parse(i)?;
    Ok((
        i,
        FetchAtt::Binary {
            part,
            partial,
            peek: word == b"BINARY.PEEK",
        },
    ))
}

/// `section-binary = "[" [section-part] "]"`
pub(crate) fn section_binary(i: &[u8]) -> PResult<'_, Vec<u32>> {
    delimited(char('['), separated_list0(char('.'), nz_number), char(']')).parse(i)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::command::{CommandBody, FetchAtt};
    use crate::parse::parse_command;

    fn atts(line: &str) -> Vec<FetchAtt> {
        match parse_command(line.as_bytes()).map(|c| c.body) {
            Ok(CommandBody::Fetch { atts, .. }) => atts,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn binary_items_parse() {
        assert_eq!(
            atts("a FETCH 1 (BINARY.PEEK[1.2]<5.10> binary[] BINARY.SIZE[3])"),
            vec![
                FetchAtt::Binary {
                    part: vec![1, 2],
                    partial: Some((5, 10)),
                    peek: true
                },
                FetchAtt::Binary {
                    part: vec![],
                    partial: None,
                    peek: false
                },
                FetchAtt::BinarySize(vec![3]),
            ]
        );
        for bad in [
            "a FETCH 1 BINARY[HEADER]",
            "a FETCH 1 BINARY[1.MIME]",
            "a FETCH 1 BINARY",
            "a FETCH 1 BINARY.SIZE[1]<0.5>",
            "a FETCH 1 BINARY[0]",
        ] {
            assert!(parse_command(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
