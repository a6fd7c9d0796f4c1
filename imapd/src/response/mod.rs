//! Typed IMAP responses and the one serializer (RFC 3501 §7 and §9
//! `response`, `resp-text-code`, `string`, `nstring`).
//!
//! Every string the server sends goes through [`Value::encode`], which picks
//! NIL, a quoted string or a literal: a literal whenever the bytes contain
//! CR, LF, NUL or 8-bit octets, or are long, so no client ever sees a broken
//! quoted string. Status lines are built by [`Status`] + [`Code`]
//! ([`StatusLine`]); untagged data by [`Data`] (`data.rs`).

use std::fmt::Write as _;

mod data;
mod thread;
pub use data::{fetch_close, fetch_open, push_num, uidfetch_open, Data, DELIMITER};
pub use thread::{ThreadNode, Threads};
mod esearch;
pub use esearch::{ESearch, ReturnData};

/// Longest string we send quoted; longer ones become literals.
const MAX_QUOTED: usize = 1024;

/// One value in a parenthesised response (FETCH items, ENVELOPE, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `NIL`
    Nil,
    /// A number.
    Num(u64),
    /// An atom written as is (flags, `\Seen`, keywords of the grammar).
    Atom(String),
    /// A string: quoted or literal as its bytes require.
    Str(Vec<u8>),
    /// A string always sent as a literal (message data: clients expect it).
    Literal(Vec<u8>),
    /// A parenthesised list, elements separated by SP.
    List(Vec<Value>),
    /// Values written back to back with no separator (the parts of a
    /// multipart body: `body-type-mpart = 1*body SP media-subtype`).
    Concat(Vec<Value>),
}

impl Value {
    /// A string value from text.
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into().into_bytes())
    }

    /// `nstring`: NIL for `None`.
    pub fn nstr(s: Option<&str>) -> Value {
        s.map_or(Value::Nil, Value::str)
    }

    /// Serialize onto `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Nil => out.extend_from_slice(b"NIL"),
            Value::Num(n) => {
                let _ = write!(Buf(out), "{n}");
            }
            Value::Atom(a) => out.extend_from_slice(a.as_bytes()),
            Value::Str(s) => encode_string(s, out),
            Value::Literal(s) => {
                literal_header(s.len() as u64, out);
                out.extend_from_slice(s);
            }
            Value::Concat(items) => {
                for v in items {
                    v.encode(out);
                }
            }
            Value::List(items) => encode_list(items, out),
        }
    }
}

/// `(a b c)`: values in parentheses, separated by SP.
pub(crate) fn encode_list(items: &[Value], out: &mut Vec<u8>) {
    out.push(b'(');
    for (k, v) in items.iter().enumerate() {
        if k > 0 {
            out.push(b' ');
        }
        v.encode(out);
    }
    out.push(b')');
}

struct Buf<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Buf<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// `s` holds a byte a quoted string cannot (NUL, CR, LF or 8-bit).
const UNQUOTABLE: u8 = 1;
/// `s` holds a byte escaped in a quoted string (`"` or `\`).
const ESCAPED: u8 = 2;

/// [`UNQUOTABLE`] and [`ESCAPED`] as they apply to `s`. One pass without
/// an early exit, so that it compiles to SIMD compares over many bytes at
/// a time (a byte loop with four tests and two passes was 12% of a
/// metadata FETCH's reader CPU, issue 21).
fn classify(s: &[u8]) -> u8 {
    s.iter().fold(0u8, |acc, &b| {
        let unquotable = (b == 0) | (b == b'\r') | (b == b'\n') | (b >= 0x80);
        let escaped = (b == b'"') | (b == b'\\');
        acc | (u8::from(unquotable) * UNQUOTABLE) | (u8::from(escaped) * ESCAPED)
    })
}

/// Encode bytes as `string`: quoted when possible (TEXT-CHAR only, short),
/// else a literal.
pub fn encode_string(s: &[u8], out: &mut Vec<u8>) {
    let class = if s.len() <= MAX_QUOTED {
        classify(s)
    } else {
        UNQUOTABLE
    };
    if class & UNQUOTABLE != 0 {
        literal_header(s.len() as u64, out);
        out.extend_from_slice(s);
        return;
    }
    out.reserve(s.len() + 2);
    out.push(b'"');
    if class & ESCAPED == 0 {
        out.extend_from_slice(s);
    } else {
        // Runs without a quote or backslash are copied whole.
        let mut rest = s;
        while let Some(i) = rest.iter().position(|&b| b == b'"' || b == b'\\') {
            out.extend_from_slice(&rest[..i]);
            out.push(b'\\');
            out.push(rest[i]);
            rest = &rest[i + 1..];
        }
        out.extend_from_slice(rest);
    }
    out.push(b'"');
}

/// `{n}CRLF`, the start of a literal whose bytes follow.
pub fn literal_header(n: u64, out: &mut Vec<u8>) {
    let _ = write!(Buf(out), "{{{n}}}\r\n");
}

/// A quoted string from text (used where the grammar wants a quoted string
/// and the text is known to be quotable, e.g. mailbox names after UTF-7).
pub fn quote(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len() + 2);
    encode_string(s.as_bytes(), &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// A mailbox name as UTF-8 (IMAP4rev2 and UTF8=ACCEPT): a quoted string,
/// which may hold UTF-8 there (RFC 9051 §9 `QUOTED-CHAR`, RFC 6855 §4),
/// or a literal when it cannot be quoted.
pub fn utf8_mailbox_name(name: &str) -> Value {
    let b = name.as_bytes();
    if b.len() > MAX_QUOTED || b.iter().any(|&c| c == 0 || c == b'\r' || c == b'\n') {
        return Value::str(name);
    }
    let mut q = String::with_capacity(name.len() + 2);
    q.push('"');
    for c in name.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    Value::Atom(q)
}

/// Encode a mailbox name for the wire: modified UTF-7, then `astring`
/// rules (we always quote, which every client accepts).
pub fn mailbox_name(name: &str) -> Value {
    Value::str(crate::utf7::encode(name))
}

/// Tagged/untagged status condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `OK`
    Ok,
    /// `NO`
    No,
    /// `BAD`
    Bad,
    /// `PREAUTH` (greeting only)
    PreAuth,
    /// `BYE`
    Bye,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::No => "NO",
            Status::Bad => "BAD",
            Status::PreAuth => "PREAUTH",
            Status::Bye => "BYE",
        }
    }
}

/// Response codes (RFC 3501 §7.1, RFC 4315, RFC 5530, RFC 7162).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    /// `ALERT`
    Alert,
    /// `BADCHARSET (UTF-8 US-ASCII)`
    BadCharset,
    /// `CAPABILITY ...` (the list, as [`crate::capabilities`] makes it)
    Capability(String),
    /// `PARSE`
    Parse,
    /// `PERMANENTFLAGS (...)`
    PermanentFlags(Vec<String>),
    /// `READ-ONLY`
    ReadOnly,
    /// `READ-WRITE`
    ReadWrite,
    /// `TRYCREATE`
    TryCreate,
    /// `UIDNEXT n`
    UidNext(u32),
    /// `UIDVALIDITY n`
    UidValidity(u32),
    /// `UNSEEN n`
    Unseen(u32),
    /// `HIGHESTMODSEQ n`
    HighestModSeq(u64),
    /// `NOMODSEQ`
    NoModSeq,
    /// `MODIFIED set`
    Modified(String),
    /// `APPENDUID validity uid`
    AppendUid(u32, u32),
    /// `COPYUID validity src dst`
    CopyUid(u32, String, String),
    /// `CLOSED` (RFC 7162 §3.2.11)
    Closed,
    /// `NONEXISTENT`
    Nonexistent,
    /// `ALREADYEXISTS`
    AlreadyExists,
    /// `AUTHENTICATIONFAILED`
    AuthenticationFailed,
    /// `LIMIT`
    Limit,
    /// `SERVERBUG`
    ServerBug,
    /// `CANNOT`
    Cannot,
    /// `CLIENTBUG`
    ClientBug,
    /// `TOOBIG`
    TooBig,
    /// `EXPUNGEISSUED`
    ExpungeIssued,
    /// `PRIVACYREQUIRED` (RFC 5530 §3): credentials need TLS here
    PrivacyRequired,
    /// `UNAVAILABLE` (RFC 5530 §3): temporarily refused (login throttle,
    /// a damaged store that refuses changes)
    Unavailable,
    /// `OVERQUOTA` (RFC 5530 §3, RFC 9208 §4.3): no room for what the
    /// command adds (the user's quota, or the disk is full)
    OverQuota,
    /// `NOPERM` (RFC 5530 §3): not allowed for this user (SETQUOTA)
    NoPerm,
    /// `NOUPDATE "tag"` (RFC 5267 §4.3.1): the search of that tag gets no
    /// updates
    NoUpdate(String),
    /// `BADEVENT (event ...)` (RFC 5465 §3.2): the events we support
    BadEvent(Vec<&'static str>),
    /// `NOTIFICATIONOVERFLOW` (RFC 5465 §5.8)
    NotificationOverflow,
    /// `UNKNOWN-CTE` (RFC 3516 §4.2): BINARY met an encoding we cannot undo
    UnknownCte,
    /// `BADURL url` (RFC 4469 §6): a CATENATE URL that cannot be used
    BadUrl(String),
    /// `APPENDUID validity uid-set` (RFC 4315 §3, for MULTIAPPEND)
    AppendUids(u32, String),
    /// `COMPRESSIONACTIVE` (RFC 4978 §3): COMPRESS when it is on already
    CompressionActive,
    /// `USEATTR` (RFC 6154 §3): CREATE refused for its special-use
    /// attributes
    UseAttr,
    /// `MAILBOXID (objectid)` (RFC 8474 §4): SELECT's and CREATE's answer
    MailboxId(String),
    /// `UIDREQUIRED` (RFC 9586 §3): message numbers used under UIDONLY
    UidRequired,
}

impl Code {
    fn write(&self, out: &mut String) {
        let _ = match self {
            Code::Alert => write!(out, "ALERT"),
            Code::BadCharset => write!(out, "BADCHARSET (UTF-8 US-ASCII)"),
            Code::Capability(caps) => write!(out, "CAPABILITY {caps}"),
            Code::Parse => write!(out, "PARSE"),
            Code::PermanentFlags(f) => write!(out, "PERMANENTFLAGS ({})", f.join(" ")),
            Code::ReadOnly => write!(out, "READ-ONLY"),
            Code::ReadWrite => write!(out, "READ-WRITE"),
            Code::TryCreate => write!(out, "TRYCREATE"),
            Code::UidNext(n) => write!(out, "UIDNEXT {n}"),
            Code::UidValidity(n) => write!(out, "UIDVALIDITY {n}"),
            Code::Unseen(n) => write!(out, "UNSEEN {n}"),
            Code::HighestModSeq(n) => write!(out, "HIGHESTMODSEQ {n}"),
            Code::NoModSeq => write!(out, "NOMODSEQ"),
            Code::Modified(s) => write!(out, "MODIFIED {s}"),
            Code::AppendUid(v, u) => write!(out, "APPENDUID {v} {u}"),
            Code::CopyUid(v, a, b) => write!(out, "COPYUID {v} {a} {b}"),
            Code::Closed => write!(out, "CLOSED"),
            Code::Nonexistent => write!(out, "NONEXISTENT"),
            Code::AlreadyExists => write!(out, "ALREADYEXISTS"),
            Code::AuthenticationFailed => write!(out, "AUTHENTICATIONFAILED"),
            Code::Limit => write!(out, "LIMIT"),
            Code::ServerBug => write!(out, "SERVERBUG"),
            Code::Cannot => write!(out, "CANNOT"),
            Code::ClientBug => write!(out, "CLIENTBUG"),
            Code::TooBig => write!(out, "TOOBIG"),
            Code::ExpungeIssued => write!(out, "EXPUNGEISSUED"),
            Code::PrivacyRequired => write!(out, "PRIVACYREQUIRED"),
            Code::Unavailable => write!(out, "UNAVAILABLE"),
            Code::OverQuota => write!(out, "OVERQUOTA"),
            Code::NoPerm => write!(out, "NOPERM"),
            Code::NoUpdate(tag) => write!(out, "NOUPDATE {}", quote(tag)),
            Code::BadEvent(ev) => write!(out, "BADEVENT ({})", ev.join(" ")),
            Code::NotificationOverflow => write!(out, "NOTIFICATIONOVERFLOW"),
            Code::UnknownCte => write!(out, "UNKNOWN-CTE"),
            // url-resp-text: any TEXT-CHAR but "]" (RFC 4469 §6).
            Code::BadUrl(u) => write!(out, "BADURL {}", u.replace(']', "%5D")),
            Code::AppendUids(v, set) => write!(out, "APPENDUID {v} {set}"),
            Code::CompressionActive => write!(out, "COMPRESSIONACTIVE"),
            Code::UseAttr => write!(out, "USEATTR"),
            Code::MailboxId(id) => write!(out, "MAILBOXID ({id})"),
            Code::UidRequired => write!(out, "UIDREQUIRED"),
        };
    }
}

/// A status response line: `tag|* STATUS [CODE] text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusLine {
    /// `None` for untagged (`*`).
    pub tag: Option<String>,
    /// The condition.
    pub status: Status,
    /// Optional response code.
    pub code: Option<Code>,
    /// Human-readable text.
    pub text: String,
}

impl StatusLine {
    /// A tagged response.
    pub fn tagged(tag: &str, status: Status, code: Option<Code>, text: &str) -> Self {
        StatusLine {
            tag: Some(tag.to_owned()),
            status,
            code,
            text: text.to_owned(),
        }
    }

    /// An untagged status response.
    pub fn untagged(status: Status, code: Option<Code>, text: &str) -> Self {
        StatusLine {
            tag: None,
            status,
            code,
            text: text.to_owned(),
        }
    }

    /// Serialize onto `out`, ending with CRLF.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut s = String::with_capacity(64);
        s.push_str(self.tag.as_deref().unwrap_or("*"));
        s.push(' ');
        s.push_str(self.status.as_str());
        if let Some(code) = &self.code {
            s.push_str(" [");
            code.write(&mut s);
            s.push(']');
        }
        s.push(' ');
        // resp-text must not contain CR/LF; other controls are dropped too.
        // `text = 1*TEXT-CHAR`: if nothing is left, say something.
        let before = s.len();
        s.extend(self.text.chars().filter(|c| !c.is_control()));
        if s.len() == before {
            s.push_str("done");
        }
        s.push_str("\r\n");
        out.extend_from_slice(s.as_bytes());
    }
}

/// A continuation request: `+ text`.
pub fn continuation(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b"+ ");
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Flags as atoms in a list, as FETCH FLAGS and the FLAGS response use.
pub fn flags_value(flags: &[String]) -> Value {
    Value::List(flags.iter().map(|f| Value::Atom(f.clone())).collect())
}

/// Compact a sorted list of numbers into a sequence set (`1:3,7`).
pub fn compact_set(nums: &[u32]) -> String {
    let mut out = String::new();
    let mut k = 0;
    while k < nums.len() {
        let start = nums[k];
        let mut end = start;
        while k + 1 < nums.len() && nums[k + 1] == end.wrapping_add(1) {
            k += 1;
            end = nums[k];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            let _ = write!(out, "{start}");
        } else {
            let _ = write!(out, "{start}:{end}");
        }
        k += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::any;

    fn enc(v: &Value) -> String {
        let mut out = Vec::new();
        v.encode(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The byte-at-a-time form `classify` replaced (issue 21).
    fn encode_string_bytewise(s: &[u8], out: &mut Vec<u8>) {
        let quotable = s.len() <= MAX_QUOTED
            && s.iter()
                .all(|&b| b != 0 && b != b'\r' && b != b'\n' && b < 0x80);
        if !quotable {
            literal_header(s.len() as u64, out);
            out.extend_from_slice(s);
            return;
        }
        out.push(b'"');
        for &b in s {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    }

    proptest::proptest! {
        /// Any bytes (special ones likely, at any place, lengths across
        /// SIMD widths and the quoted-length bound) encode as before.
        #[test]
        fn encode_string_matches_the_bytewise_form(
            fill in proptest::sample::select(vec![b'a', b'~', b' ']),
            len in proptest::prop_oneof![0usize..80, (MAX_QUOTED - 2)..(MAX_QUOTED + 2)],
            specials in proptest::collection::vec(
                (any::<proptest::sample::Index>(),
                 proptest::sample::select(vec![0u8, b'\r', b'\n', b'"', b'\\', 0x80, 0xff, 0x7f, b'a'])),
                0..3),
        ) {
            let mut s = vec![fill; len];
            for (at, b) in specials {
                if !s.is_empty() {
                    let i = at.index(s.len());
                    s[i] = b;
                }
            }
            let (mut got, mut want) = (Vec::new(), Vec::new());
            encode_string(&s, &mut got);
            encode_string_bytewise(&s, &mut want);
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn strings_pick_quoted_or_literal_form() {
        let table: &[(&[u8], &str)] = &[
            (b"", "\"\""),
            (b"hello", "\"hello\""),
            (b"say \"hi\"", "\"say \\\"hi\\\"\""),
            (b"back\\slash", "\"back\\\\slash\""),
            (b"two\r\nlines", "{10}\r\ntwo\r\nlines"),
            ("caf\u{e9}".as_bytes(), "{5}\r\ncaf\u{e9}"),
            (b"nul\0", "{4}\r\nnul\0"),
        ];
        for (input, want) in table {
            assert_eq!(enc(&Value::Str(input.to_vec())), *want);
        }
        let long = vec![b'a'; MAX_QUOTED + 1];
        assert!(enc(&Value::Str(long)).starts_with("{1025}\r\n"));
    }

    #[test]
    fn lists_nest_and_nil_is_bare() {
        let v = Value::List(vec![
            Value::Nil,
            Value::Num(42),
            Value::Atom("\\Seen".into()),
            Value::List(vec![Value::str("x")]),
        ]);
        assert_eq!(enc(&v), "(NIL 42 \\Seen (\"x\"))");
    }

    #[test]
    fn status_lines_carry_codes_and_strip_crlf_from_text() {
        let mut out = Vec::new();
        StatusLine::tagged("a1", Status::No, Some(Code::TryCreate), "no\r\nsuch").encode(&mut out);
        assert_eq!(out, b"a1 NO [TRYCREATE] nosuch\r\n");
        out.clear();
        StatusLine::untagged(Status::Ok, Some(Code::UidNext(7)), "Predicted").encode(&mut out);
        assert_eq!(out, b"* OK [UIDNEXT 7] Predicted\r\n");
    }

    /// Checked by fuzz target `imap_response` (seen while writing its
    /// resp-text grammar check): a text made only of control
    /// characters left an empty resp-text (`a1 BAD \r\n`), which the
    /// grammar (`text = 1*TEXT-CHAR`) forbids.
    #[test]
    fn status_text_of_only_controls_is_not_left_empty() {
        let mut out = Vec::new();
        StatusLine::tagged("a1", Status::Bad, None, "\r\n\u{1}").encode(&mut out);
        assert_eq!(out, b"a1 BAD done\r\n");
        out.clear();
        StatusLine::untagged(Status::No, Some(Code::Parse), "\t").encode(&mut out);
        assert_eq!(out, b"* NO [PARSE] done\r\n");
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_survive_encode_then_parse(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let mut out = Vec::new();
            encode_string(&bytes, &mut out);
            let parsed = crate::parse::string(&out);
            proptest::prop_assert_eq!(parsed, Ok((&b""[..], bytes.clone())));
        }
    }

    #[test]
    fn sets_compact_into_ranges() {
        assert_eq!(compact_set(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(compact_set(&[4]), "4");
        assert_eq!(compact_set(&[]), "");
    }
}
