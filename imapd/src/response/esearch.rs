//! The ESEARCH response (RFC 4466 §7 `esearch-response`, RFC 4731 §3.1),
//! with the return data of ESEARCH (MIN, MAX, ALL, COUNT), CONDSTORE
//! (MODSEQ, RFC 4731 §3.2 / RFC 7162 §3.1.5) and CONTEXT=SEARCH (PARTIAL,
//! ADDTO, REMOVEFROM, RFC 5267 §4.3–§4.4).
//!
//! ```text
//! esearch-response  = "ESEARCH" [search-correlator] [SP "UID"]
//!                     *(SP search-return-data)
//! search-correlator = SP "(" "TAG" SP tag-string ")"
//! ```
//!
//! Sets keep the order they are given in: a SEARCH gives them ascending,
//! an ESORT (RFC 5267 §3, answering SORT with ESEARCH responses) in sort
//! order; only runs of consecutive ascending numbers become `a:b` ranges
//! (§3.2: "ranges only ... where the numbers are contiguous and
//! ascending"), so the same type serves both.

use super::{compact_set, encode_string, Buf};
use std::fmt::Write as _;

/// One `search-return-data` item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReturnData {
    /// `MIN n`: the lowest number found (RFC 4731 §3.1).
    Min(u32),
    /// `MAX n`: the highest number found.
    Max(u32),
    /// `ALL set`: every number found, in result order. An empty list is
    /// left out (§3.1: "MUST NOT include the ALL result option" when
    /// nothing matched).
    All(Vec<u32>),
    /// `COUNT n`: how many were found (always sent when asked for).
    Count(u32),
    /// `MODSEQ n`: the highest mod-sequence of the messages returned
    /// (RFC 4731 §3.2).
    ModSeq(u64),
    /// `PARTIAL (a:b set)`: results `a` to `b` of the result list, `NIL`
    /// when none lie in the range (RFC 5267 §4.4).
    Partial {
        /// The range asked for, low first.
        range: (u32, u32),
        /// The results in it, in result order.
        nums: Vec<u32>,
    },
    /// `ADDTO (pos set ...)`: results to insert at context positions (0:
    /// wherever mailbox order puts them, RFC 5267 §4.3.3). Empty sets are
    /// left out, and the item with them.
    AddTo(Vec<(u32, Vec<u32>)>),
    /// `REMOVEFROM (pos set ...)`: results to remove (RFC 5267 §4.3.4).
    RemoveFrom(Vec<(u32, Vec<u32>)>),
}

/// An ESEARCH response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ESearch<'a> {
    /// The tag of the searching command (the search correlator); `None`
    /// leaves the correlator out.
    pub tag: Option<&'a str>,
    /// Numbers are UIDs (`UID` indicator), else message sequence numbers.
    pub uid: bool,
    /// The return data, in the order written.
    pub data: Vec<ReturnData>,
}

/// `pos set pos set ...` of ADDTO/REMOVEFROM; `None` if every set is empty.
fn updates(pairs: &[(u32, Vec<u32>)]) -> Option<String> {
    let mut s = String::new();
    for (pos, nums) in pairs.iter().filter(|p| !p.1.is_empty()) {
        if !s.is_empty() {
            s.push(' ');
        }
        let _ = write!(s, "{pos} {}", compact_set(nums));
    }
    (!s.is_empty()).then_some(s)
}

impl ESearch<'_> {
    /// Serialize the response's text after `* ` (no CRLF).
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"ESEARCH");
        if let Some(tag) = self.tag {
            out.extend_from_slice(b" (TAG ");
            encode_string(tag.as_bytes(), out);
            out.push(b')');
        }
        if self.uid {
            out.extend_from_slice(b" UID");
        }
        for d in &self.data {
            let mut w = Buf(out);
            let _ = match d {
                ReturnData::Min(n) => write!(w, " MIN {n}"),
                ReturnData::Max(n) => write!(w, " MAX {n}"),
                ReturnData::All(nums) if nums.is_empty() => Ok(()),
                ReturnData::All(nums) => write!(w, " ALL {}", compact_set(nums)),
                ReturnData::Count(n) => write!(w, " COUNT {n}"),
                ReturnData::ModSeq(m) => write!(w, " MODSEQ {m}"),
                ReturnData::Partial { range, nums } => {
                    let set = if nums.is_empty() {
                        "NIL".to_owned()
                    } else {
                        compact_set(nums)
                    };
                    write!(w, " PARTIAL ({}:{} {set})", range.0, range.1)
                }
                ReturnData::AddTo(pairs) => match updates(pairs) {
                    Some(s) => write!(w, " ADDTO ({s})"),
                    None => Ok(()),
                },
                ReturnData::RemoveFrom(pairs) => match updates(pairs) {
                    Some(s) => write!(w, " REMOVEFROM ({s})"),
                    None => Ok(()),
                },
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Data;
    use super::*;

    fn enc(tag: Option<&str>, uid: bool, data: Vec<ReturnData>) -> String {
        let mut out = Vec::new();
        Data::ESearch(ESearch { tag, uid, data }).encode(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn rfc_4731_examples_encode_as_written() {
        use ReturnData::*;
        // RFC 4731 §3.1 examples.
        assert_eq!(
            enc(Some("A282"), false, vec![Min(2), Count(3)]),
            "* ESEARCH (TAG \"A282\") MIN 2 COUNT 3\r\n"
        );
        assert_eq!(
            enc(Some("A283"), false, vec![All(vec![2, 10, 11])]),
            "* ESEARCH (TAG \"A283\") ALL 2,10:11\r\n"
        );
        assert_eq!(
            enc(Some("A285"), true, vec![Min(7), Max(3800)]),
            "* ESEARCH (TAG \"A285\") UID MIN 7 MAX 3800\r\n"
        );
        // §3.2 with CONDSTORE.
        assert_eq!(
            enc(
                Some("a4"),
                false,
                vec![Min(2), Count(10), ModSeq(917162500)]
            ),
            "* ESEARCH (TAG \"a4\") MIN 2 COUNT 10 MODSEQ 917162500\r\n"
        );
    }

    #[test]
    fn nothing_found_leaves_out_all_but_keeps_count() {
        use ReturnData::*;
        // RFC 4731 §3.1: no MIN/MAX/ALL when nothing matched, COUNT always.
        assert_eq!(
            enc(Some("t"), true, vec![All(vec![]), Count(0)]),
            "* ESEARCH (TAG \"t\") UID COUNT 0\r\n"
        );
        assert_eq!(enc(Some("t"), false, vec![]), "* ESEARCH (TAG \"t\")\r\n");
        assert_eq!(enc(None, false, vec![Count(1)]), "* ESEARCH COUNT 1\r\n");
    }

    #[test]
    fn partial_echoes_the_range_and_says_nil_for_nothing() {
        // RFC 5267 §4.4 examples.
        assert_eq!(
            enc(
                Some("A04"),
                true,
                vec![ReturnData::Partial {
                    range: (24000, 24500),
                    nums: vec![]
                }]
            ),
            "* ESEARCH (TAG \"A04\") UID PARTIAL (24000:24500 NIL)\r\n"
        );
        assert_eq!(
            enc(
                Some("t"),
                false,
                vec![ReturnData::Partial {
                    range: (1, 3),
                    nums: vec![1, 2, 4]
                }]
            ),
            "* ESEARCH (TAG \"t\") PARTIAL (1:3 1:2,4)\r\n"
        );
    }

    #[test]
    fn updates_carry_positions_and_sets() {
        // RFC 5267 §4.3.3 / §4.3.4 examples.
        assert_eq!(
            enc(
                Some("B01"),
                true,
                vec![ReturnData::AddTo(vec![(0, vec![32768, 32769])])]
            ),
            "* ESEARCH (TAG \"B01\") UID ADDTO (0 32768:32769)\r\n"
        );
        assert_eq!(
            enc(
                Some("C01"),
                true,
                vec![ReturnData::AddTo(vec![
                    (1, vec![2733]),
                    (1, vec![2731, 2732])
                ])]
            ),
            "* ESEARCH (TAG \"C01\") UID ADDTO (1 2733 1 2731:2732)\r\n"
        );
        assert_eq!(
            enc(
                Some("B01"),
                true,
                vec![
                    ReturnData::RemoveFrom(vec![(0, vec![32768])]),
                    ReturnData::AddTo(vec![(0, vec![])]),
                ]
            ),
            "* ESEARCH (TAG \"B01\") UID REMOVEFROM (0 32768)\r\n"
        );
    }

    #[test]
    fn sets_in_sort_order_only_merge_ascending_runs() {
        // An ESORT result (RFC 5267 §3.2) keeps its order.
        assert_eq!(
            enc(
                Some("s"),
                false,
                vec![ReturnData::All(vec![5, 6, 7, 1, 3, 2])]
            ),
            "* ESEARCH (TAG \"s\") ALL 5:7,1,3,2\r\n"
        );
    }

    #[test]
    fn the_correlator_is_a_quoted_string() {
        assert_eq!(
            enc(Some("a\"b"), false, vec![]),
            "* ESEARCH (TAG \"a\\\"b\")\r\n"
        );
    }
}
