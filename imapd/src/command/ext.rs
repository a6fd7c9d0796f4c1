//! Argument types of MULTIAPPEND (RFC 3502), CATENATE (RFC 4469),
//! URLFETCH (RFC 4467, RFC 5524) and SELECT's QRESYNC parameter (RFC
//! 7162), kept apart from `command.rs`.

use super::{DateTime, Flag, SequenceSet};

/// One message of a MULTIAPPEND (RFC 3502 §6 `append-message`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendMessage {
    /// Initial flags.
    pub flags: Vec<Flag>,
    /// Internal date, if given.
    pub date: Option<DateTime>,
    /// The message: a literal (or `literal8`, RFC 3516 §4.4) or CATENATE.
    pub data: AppendData,
}

/// `append-data` (RFC 3502, RFC 4469 §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendData {
    /// The message bytes.
    Literal(Vec<u8>),
    /// `CATENATE (cat-part ...)`: the message built from these parts.
    Catenate(Vec<CatPart>),
}

/// `cat-part = text-literal / url` (RFC 4469 §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatPart {
    /// `TEXT literal`
    Text(Vec<u8>),
    /// `URL astring`: an IMAP URL (RFC 5092), checked when executed
    /// (an unusable one is `NO [BADURL]`, not BAD).
    Url(String),
}

/// One URL of URLFETCH (RFC 4467 §7, with RFC 5524's parameters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlFetchItem {
    /// The URL, as given (checked when executed).
    pub url: String,
    /// RFC 5524 form `(url args)`: the answer is a parenthesised list.
    pub extended: bool,
    /// `BODYPARTSTRUCTURE`
    pub structure: bool,
    /// `BINARY`: the data decoded (RFC 5524 §3).
    pub binary: bool,
    /// `BODY` (or the plain form): the data as stored.
    pub body: bool,
}

/// The `QRESYNC` SELECT/EXAMINE parameter (RFC 7162 §3.2.5): what the
/// client remembers of the mailbox. Sets are checked by the parser: no
/// `*` in the UID sets, and the two sets of `seq_match` name equally many
/// numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QresyncParams {
    /// The UIDVALIDITY the client's cache belongs to.
    pub uidvalidity: u32,
    /// The HIGHESTMODSEQ the client last saw.
    pub modseq: u64,
    /// `known-uids`: the UIDs the client knows (default: all below UIDNEXT).
    pub known_uids: Option<SequenceSet>,
    /// `seq-match-data`: message numbers and the UIDs the client believes
    /// they have (RFC 7162 §3.2.5.2).
    pub seq_match: Option<(SequenceSet, SequenceSet)>,
}
