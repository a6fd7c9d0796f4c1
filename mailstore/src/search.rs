//! SEARCH criteria (RFC 3501 §6.4.4, RFC 7162 MODSEQ) as a protocol-neutral
//! [`Query`] tree, compiled to one SQL statement per search.

use crate::types::{SystemFlag, Uid};

/// A search criterion. Substring matches are case-insensitive (ASCII for
/// headers; Unicode case folding for body/text via the FTS5 trigram index).
///
/// Date criteria take the unix timestamp of the start of the day (in the
/// time zone the caller chose) and have day granularity:
/// `Before(d)`: date < d; `On(d)`: d <= date < d + 86400; `Since(d)`: date >= d.
/// `Before`/`On`/`Since` use INTERNALDATE. `SentBefore`/`SentOn`/`SentSince`
/// use the `Date:` header read as the sender's wall-clock time (its zone
/// disregarded, as RFC 3501 says); a message without a parseable `Date:`
/// uses its INTERNALDATE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    /// Every message.
    All,
    /// UIDs in any of these inclusive ranges.
    Uids(Vec<(Uid, Uid)>),
    /// System flag set (`true`) or not set (`false`).
    Flag(SystemFlag, bool),
    /// Keyword set (`true`) or not set (`false`).
    Keyword(String, bool),
    /// Header field `name` contains the substring; `""` = has the field.
    Header(String, String),
    /// Decoded body text contains the substring.
    Body(String),
    /// Header or body contains the substring.
    Text(String),
    /// RFC822.SIZE larger than.
    Larger(u64),
    /// RFC822.SIZE smaller than.
    Smaller(u64),
    /// INTERNALDATE before the day.
    Before(i64),
    /// INTERNALDATE within the day.
    On(i64),
    /// INTERNALDATE on or after the day.
    Since(i64),
    /// `Date:` before the day.
    SentBefore(i64),
    /// `Date:` within the day.
    SentOn(i64),
    /// `Date:` on or after the day.
    SentSince(i64),
    /// Entry modseq >= the value (RFC 7162 §3.1.5).
    ModSeq(u64),
    /// Negation.
    Not(Box<Query>),
    /// All of these (empty = all messages).
    And(Vec<Query>),
    /// Either.
    Or(Box<Query>, Box<Query>),
}
