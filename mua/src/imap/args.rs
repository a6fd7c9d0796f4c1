//! Command arguments and how they go on the wire — the one place the
//! client decides between a quoted string and a literal (RFC 3501 §4.3)
//! and writes a literal's announcement: `{n}` (synchronising, §7.5) or
//! `{n+}` (non-synchronising, LITERAL+, RFC 7888). Also UID sequence sets.

use super::utf7;

/// One argument of a command.
#[derive(Debug, Clone)]
pub enum Arg {
    /// Sent verbatim (atoms, sequence sets, parenthesised item lists).
    Raw(String),
    /// A string: quoted when safe, else a literal.
    Str(Vec<u8>),
    /// A mailbox name: modified-UTF-7 encoded, then as `Str`.
    Mailbox(String),
    /// Always a literal (message data).
    Literal(Vec<u8>),
}

/// How one argument is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wire {
    /// Text that goes into the command line as is (an atom, a set, a list
    /// or a quoted string).
    Inline(String),
    /// Octets sent as a literal: the line ends with `literal_header`, the
    /// octets follow.
    Literal(Vec<u8>),
}

impl Arg {
    /// Shorthand for `Arg::Raw`.
    pub fn raw(s: impl Into<String>) -> Arg {
        Arg::Raw(s.into())
    }
    /// Shorthand for `Arg::Str`.
    pub fn str(s: impl AsRef<[u8]>) -> Arg {
        Arg::Str(s.as_ref().to_vec())
    }

    /// Decides how this argument is sent: raw text verbatim; strings and
    /// (modified-UTF-7 encoded) mailbox names quoted when `quote` allows,
    /// else as literals; literal data always as a literal.
    pub fn into_wire(self) -> Wire {
        match self {
            Arg::Raw(s) => Wire::Inline(s),
            Arg::Str(b) => string(b),
            Arg::Mailbox(m) => string(utf7::encode(&m).into_bytes()),
            Arg::Literal(b) => Wire::Literal(b),
        }
    }
}

/// A string as a quoted string when it can be one, else as a literal.
fn string(b: Vec<u8>) -> Wire {
    match quote(&b) {
        Some(q) => Wire::Inline(q),
        None => Wire::Literal(b),
    }
}

/// How a string is put on the wire: `Some(quoted)` or `None` for a literal.
pub fn quote(s: &[u8]) -> Option<String> {
    if s.len() > 1000
        || s.iter()
            .any(|&b| b == b'\r' || b == b'\n' || b == 0 || b >= 0x80)
    {
        return None;
    }
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for &b in s {
        if b == b'"' || b == b'\\' {
            q.push('\\');
        }
        q.push(b as char);
    }
    q.push('"');
    Some(q)
}

/// The announcement that ends a line before a literal of `len` octets:
/// `{len}` (the client then waits for `+`), or `{len+}` when
/// `non_synchronising` (the server advertised LITERAL+).
pub fn literal_header(len: usize, non_synchronising: bool) -> String {
    if non_synchronising {
        format!("{{{len}+}}")
    } else {
        format!("{{{len}}}")
    }
}

/// Formats UIDs as a compact sequence set, e.g. `1:3,7`.
pub fn uid_set(uids: &[u32]) -> String {
    let mut v = uids.to_vec();
    v.sort_unstable();
    v.dedup();
    let mut out = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let start = v[i];
        while i + 1 < v.len() && v[i + 1] == v[i] + 1 {
            i += 1;
        }
        if v[i] == start {
            out.push(start.to_string());
        } else {
            out.push(format!("{start}:{}", v[i]));
        }
        i += 1;
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_quoted_or_sent_as_literals() {
        assert_eq!(quote(b"INBOX").as_deref(), Some("\"INBOX\""));
        assert_eq!(quote(br#"a"b\c"#).as_deref(), Some(r#""a\"b\\c""#));
        assert_eq!(quote(b""), Some("\"\"".into()));
        assert_eq!(quote("Grüße".as_bytes()), None);
        assert_eq!(quote(b"two\r\nlines"), None);
    }

    #[test]
    fn uid_sets_are_compacted() {
        assert_eq!(uid_set(&[3, 1, 2, 7, 9, 8, 12]), "1:3,7:9,12");
        assert_eq!(uid_set(&[5]), "5");
        assert_eq!(uid_set(&[5, 5]), "5");
    }
}
