//! SELECT and EXAMINE arguments with their parameters: CONDSTORE
//! (RFC 7162 §3.1.8) and QRESYNC (§3.2.5, ABNF in §7):
//!
//! ```text
//! select        = "SELECT" SP mailbox [select-params]
//! select-params = SP "(" select-param *(SP select-param) ")"
//! select-param  = "CONDSTORE" / "QRESYNC" SP "(" uidvalidity SP
//!                 mod-sequence-value [SP known-uids] [SP seq-match-data] ")"
//! seq-match-data = "(" known-sequence-set SP known-uid-set ")"
//! ```
//!
//! `known-uids` and `known-uid-set` may not contain `*` (§7); the two sets
//! of `seq-match-data` must name equally many numbers (§3.2.5.2: pairs).
//! Counting is arithmetic on the ranges, so a huge range costs nothing.
//! Anything else is a syntax error (BAD, §3.2.5: "If any parameter is not
//! syntactically valid, the server returns the tagged BAD response").

use super::{mailbox, mod_sequence_value, nz_number, sequence_set, sp, PResult};
use crate::command::{CommandBody, QresyncParams, SeqNum, SequenceSet};
use nom::branch::alt;
use nom::bytes::complete::tag_no_case;
use nom::character::complete::char;
use nom::combinator::{all_consuming, map, opt, verify};
use nom::multi::separated_list1;
use nom::sequence::{delimited, preceded};
use nom::Parser;

/// One select-param: `None` for CONDSTORE.
fn param(i: &[u8]) -> PResult<'_, Option<QresyncParams>> {
    alt((map(tag_no_case("CONDSTORE"), |_| None), map(qresync, Some))).parse(i)
}

fn no_star(set: &SequenceSet) -> bool {
    set.0
        .iter()
        .all(|r| r.start != SeqNum::Star && r.end != SeqNum::Star)
}

/// How many numbers a set without `*` names (duplicates counted: the
/// pairs of seq-match-data line up element by element).
pub(crate) fn count(set: &SequenceSet) -> u64 {
    set.resolve(0)
        .iter()
        .map(|&(a, b)| u64::from(b - a) + 1)
        .sum()
}

/// `"QRESYNC" SP "(" uidvalidity SP mod-sequence-value [SP known-uids]
/// [SP seq-match-data] ")"`
fn qresync(i: &[u8]) -> PResult<'_, QresyncParams> {
    let uid_set = || verify(sequence_set, no_star);
    let seq_match = verify(
        delimited(
            char('('),
            (verify(sequence_set, no_star), preceded(sp, uid_set())),
            char(')'),
        ),
        |(s, u): &(SequenceSet, SequenceSet)| count(s) == count(u),
    );
    map(
        preceded(
            (tag_no_case("QRESYNC"), sp),
            delimited(
                char('('),
                (
                    nz_number,
                    preceded(sp, mod_sequence_value),
                    opt(preceded(sp, uid_set())),
                    opt(preceded(sp, seq_match)),
                ),
                char(')'),
            ),
        ),
        |(uidvalidity, modseq, known_uids, seq_match)| QresyncParams {
            uidvalidity,
            modseq,
            known_uids,
            seq_match,
        },
    )
    .parse(i)
}

/// `SELECT` / `EXAMINE` arguments: the mailbox and optional parameters,
/// each at most once.
pub(super) fn select(rw: bool, i: &[u8]) -> PResult<'_, CommandBody> {
    let params = verify(
        delimited(char('('), separated_list1(sp, param), char(')')),
        |ps: &Vec<Option<QresyncParams>>| {
            let q = ps.iter().filter(|p| p.is_some()).count();
            q <= 1 && ps.len() - q <= 1
        },
    );
    all_consuming(map(
        (preceded(sp, mailbox), opt(preceded(sp, params))),
        move |(mailbox, ps)| {
            let ps = ps.unwrap_or_default();
            let condstore = ps.iter().any(Option::is_none);
            let qresync = ps.into_iter().flatten().next();
            if rw {
                CommandBody::Select {
                    mailbox,
                    condstore,
                    qresync,
                }
            } else {
                CommandBody::Examine {
                    mailbox,
                    condstore,
                    qresync,
                }
            }
        },
    ))
    .parse(i)
}
