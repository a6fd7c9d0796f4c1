//! What the IMAP server says, as types (RFC 3501 §7): a `Response` is
//! tagged (completion with `Status` and `RespText`), untagged data
//! (`Untagged`: capabilities, LIST, SEARCH, STATUS, EXISTS, FETCH, ...) or
//! a continuation request. FETCH values stay generic `Value` trees. The
//! parser that builds them from wire bytes is `parse.rs`.

use std::borrow::Cow;

/// A generic IMAP data item: NIL, atom/number, string (quoted or literal) or list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `NIL`
    Nil,
    /// An atom or number, e.g. `\Seen`, `42`, `BODY[1.2]`.
    Atom(String),
    /// A quoted string or literal, as raw bytes.
    Bytes(Vec<u8>),
    /// A parenthesised list.
    List(Vec<Value>),
}

impl Value {
    /// Text of an atom or string (lossy UTF-8); None for NIL or lists.
    pub fn text(&self) -> Option<Cow<'_, str>> {
        match self {
            Value::Atom(a) => Some(Cow::Borrowed(a)),
            Value::Bytes(b) => Some(String::from_utf8_lossy(b)),
            _ => None,
        }
    }

    /// The value as a number, if it is one.
    pub fn number(&self) -> Option<u64> {
        self.text()?.parse().ok()
    }

    /// Elements of a list (empty for anything else).
    pub fn list(&self) -> &[Value] {
        match self {
            Value::List(v) => v,
            _ => &[],
        }
    }
}

/// Status condition of a tagged or untagged status response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `OK`
    Ok,
    /// `NO`
    No,
    /// `BAD`
    Bad,
    /// `BYE`
    Bye,
    /// `PREAUTH`
    Preauth,
}

/// `resp-text`: an optional `[code]` and human-readable text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RespText {
    /// Response code without brackets, e.g. `UIDVALIDITY 3`.
    pub code: Option<String>,
    /// The free text.
    pub text: String,
}

impl std::fmt::Display for RespText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.code {
            Some(c) => write!(f, "[{c}] {}", self.text),
            None => f.write_str(&self.text),
        }
    }
}

/// Untagged server data (`* ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Untagged {
    /// `* OK/NO/BAD/BYE/PREAUTH [code] text`
    State(Status, RespText),
    /// `* CAPABILITY ...` (upper-cased)
    Capability(Vec<String>),
    /// `* LIST (flags) delim name` with the name decoded from modified UTF-7.
    List {
        /// Name attributes such as `\Noselect`.
        flags: Vec<String>,
        /// Hierarchy delimiter, None for NIL.
        delim: Option<char>,
        /// Decoded mailbox name.
        name: String,
    },
    /// `* SEARCH n...`
    Search(Vec<u32>),
    /// `* STATUS mailbox (item value ...)`
    Status {
        /// Decoded mailbox name.
        mailbox: String,
        /// Item name (upper-cased) and value.
        items: Vec<(String, u64)>,
    },
    /// `* n EXISTS`
    Exists(u32),
    /// `* n RECENT`
    Recent(u32),
    /// `* n EXPUNGE`
    Expunge(u32),
    /// `* n FETCH (item value ...)`, item names upper-cased.
    Fetch {
        /// Message sequence number.
        seq: u32,
        /// Data items.
        items: Vec<(String, Value)>,
    },
    /// `* FLAGS (...)`
    Flags(Vec<String>),
    /// Anything else, kept as text.
    Other(String),
}

/// One complete server response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// `tag OK/NO/BAD text`
    Tagged {
        /// The command's tag.
        tag: String,
        /// Completion result.
        status: Status,
        /// Code and text.
        text: RespText,
    },
    /// `* ...`
    Untagged(Untagged),
    /// `+ text` (command continuation request)
    Continue(String),
}
