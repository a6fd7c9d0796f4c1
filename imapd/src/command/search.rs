//! SEARCH's arguments: the search keys (RFC 3501 §6.4.4; WITHIN, RFC 5032;
//! SAVEDATE, RFC 8514; OBJECTID, RFC 8474) with dates and
//! sets already typed, and the RETURN options of an extended SEARCH
//! (RFC 4466, RFC 4731, RFC 5182, RFC 5267).

use super::{Date, Flag, SequenceSet};

/// `RETURN (...)` of an extended SEARCH (RFC 4466 §2.6, ESEARCH RFC 4731
/// §3.1, SEARCHRES RFC 5182 §2, CONTEXT=SEARCH RFC 5267 §4). `RETURN ()`
/// is read as `ALL` (RFC 4731 §3.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchReturn {
    /// `MIN`: the lowest number found.
    pub min: bool,
    /// `MAX`: the highest number found.
    pub max: bool,
    /// `ALL`: every number found, as a sequence set.
    pub all: bool,
    /// `COUNT`: how many were found.
    pub count: bool,
    /// `SAVE`: remember the result as `$` (RFC 5182).
    pub save: bool,
    /// `CONTEXT`: a hint that the criteria will be reused (RFC 5267 §4.2;
    /// accepted, nothing to do).
    pub context: bool,
    /// `UPDATE`: report later changes of the result as ADDTO/REMOVEFROM
    /// (RFC 5267 §4.3).
    pub update: bool,
    /// `PARTIAL a:b`: results `a` to `b` (1-based, `a <= b`) of the whole
    /// result list (RFC 5267 §4.4).
    pub partial: Option<(u32, u32)>,
}

/// RFC 3501 §6.4.4 search keys, with dates and sets already typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    /// `ALL`
    All,
    /// A system flag that must be set (ANSWERED, DELETED, ...).
    Flag(Flag),
    /// A system flag that must not be set (UNANSWERED, ...).
    NotFlag(Flag),
    /// `KEYWORD k`
    Keyword(Flag),
    /// `UNKEYWORD k`
    Unkeyword(Flag),
    /// `NEW` = RECENT UNSEEN
    New,
    /// `OLD` = NOT RECENT
    Old,
    /// `RECENT`
    Recent,
    /// `BCC/CC/FROM/SUBJECT/TO x` and `HEADER name x`: field, substring.
    Header(String, String),
    /// `BODY x`
    Body(String),
    /// `TEXT x`
    Text(String),
    /// `BEFORE d`
    Before(Date),
    /// `ON d`
    On(Date),
    /// `SINCE d`
    Since(Date),
    /// `SENTBEFORE d`
    SentBefore(Date),
    /// `SENTON d`
    SentOn(Date),
    /// `SENTSINCE d`
    SentSince(Date),
    /// `LARGER n`
    Larger(u32),
    /// `SMALLER n`
    Smaller(u32),
    /// `UID set`
    Uid(SequenceSet),
    /// A bare sequence set (message numbers).
    Seq(SequenceSet),
    /// `MODSEQ n` (RFC 7162; entry-name clauses are accepted and ignored)
    ModSeq(u64),
    /// `OLDER n` (WITHIN, RFC 5032 §2): INTERNALDATE at least `n` seconds
    /// before now (`n` > 0).
    Older(u32),
    /// `YOUNGER n` (WITHIN, RFC 5032 §2): INTERNALDATE at most `n` seconds
    /// before now (`n` > 0).
    Younger(u32),
    /// `SAVEDBEFORE d` (SAVEDATE, RFC 8514 §4.3)
    SavedBefore(Date),
    /// `SAVEDON d`
    SavedOn(Date),
    /// `SAVEDSINCE d`
    SavedSince(Date),
    /// `SAVEDATESUPPORTED`: every message if the mailbox keeps save dates.
    SaveDateSupported,
    /// `EMAILID objectid` (RFC 8474 §6)
    EmailId(String),
    /// `THREADID objectid` (RFC 8474 §6)
    ThreadId(String),
    /// `NOT key`
    Not(Box<SearchKey>),
    /// `OR a b`
    Or(Box<SearchKey>, Box<SearchKey>),
    /// A parenthesised list or the implicit AND of the top level.
    And(Vec<SearchKey>),
}
