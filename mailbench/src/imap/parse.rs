//! Reading and classifying IMAP server responses (RFC 3501 §7, §9): one
//! response is a line plus any literals `{n}` / `{n+}` (RFC 7888) it carries,
//! each followed by the rest of the line. Only what the load tool needs is
//! understood: tagged status, continuation, EXISTS, CAPABILITY and SEARCH.

use anyhow::{bail, Result};
use std::io::{BufRead, Read};

/// Longest response line (outside literals) we accept.
const MAX_LINE: usize = 1 << 20;

/// Byte count of the literal announced at the end of `line` (CRLF already
/// stripped), for `{123}` and `{123+}`.
pub fn literal_len(line: &[u8]) -> Option<usize> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Read one whole response (line, literals and continuation lines) into
/// `out`, which is cleared first. Errors on EOF or an over-long line.
pub fn read_response<R: BufRead>(r: &mut R, out: &mut Vec<u8>) -> Result<()> {
    out.clear();
    loop {
        let start = out.len();
        let n = r.take(MAX_LINE as u64).read_until(b'\n', out)?;
        if n == 0 {
            bail!("connection closed by server");
        }
        if out.last() != Some(&b'\n') {
            bail!("response line too long or truncated");
        }
        let mut end = out.len() - 1;
        if end > start && out[end - 1] == b'\r' {
            end -= 1;
        }
        match literal_len(&out[start..end]) {
            Some(len) => {
                let at = out.len();
                out.resize(at + len, 0);
                r.read_exact(&mut out[at..])?;
            }
            None => return Ok(()),
        }
    }
}

/// What kind of response a complete response is.
#[derive(Debug, PartialEq, Eq)]
pub enum Kind<'a> {
    /// `* ...`: the text after `* `.
    Untagged(&'a [u8]),
    /// `+ ...`: a continuation request.
    Continue,
    /// `tag OK|NO|BAD text`.
    Tagged {
        tag: &'a [u8],
        ok: bool,
        text: &'a [u8],
    },
}

/// Classify a response read by [`read_response`].
pub fn classify(resp: &[u8]) -> Kind<'_> {
    let line = trim_crlf(resp);
    if let Some(rest) = line.strip_prefix(b"* ") {
        return Kind::Untagged(rest);
    }
    if line == b"+" || line.starts_with(b"+ ") {
        return Kind::Continue;
    }
    let sp = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
    let tag = &line[..sp];
    let rest = line.get(sp + 1..).unwrap_or(b"");
    let ok = rest.len() >= 2 && rest[..2].eq_ignore_ascii_case(b"OK");
    Kind::Tagged {
        tag,
        ok,
        text: rest,
    }
}

fn trim_crlf(b: &[u8]) -> &[u8] {
    let b = b.strip_suffix(b"\n").unwrap_or(b);
    b.strip_suffix(b"\r").unwrap_or(b)
}

/// `n` of an untagged `n EXISTS` (text after `* `).
pub fn exists(untagged: &[u8]) -> Option<u32> {
    let line = trim_crlf(untagged);
    let sp = line.iter().position(|&b| b == b' ')?;
    if !line[sp + 1..].eq_ignore_ascii_case(b"EXISTS") {
        return None;
    }
    std::str::from_utf8(&line[..sp]).ok()?.parse().ok()
}

/// Capability names (upper-cased) from an untagged `CAPABILITY ...` or a
/// `[CAPABILITY ...]` response code inside a greeting or tagged OK.
pub fn capabilities(text: &[u8]) -> Option<Vec<String>> {
    let s = String::from_utf8_lossy(trim_crlf(text)).to_ascii_uppercase();
    let list = if let Some(r) = s.strip_prefix("CAPABILITY ") {
        r.to_string()
    } else {
        let at = s.find("[CAPABILITY ")?;
        let r = &s[at + "[CAPABILITY ".len()..];
        r[..r.find(']')?].to_string()
    };
    Some(list.split_whitespace().map(str::to_string).collect())
}

/// The numbers of an untagged `SEARCH n n n` (text after `* `).
pub fn search_numbers(untagged: &[u8]) -> Option<Vec<u32>> {
    let line = trim_crlf(untagged);
    let head = line.get(..6)?;
    if !head.eq_ignore_ascii_case(b"SEARCH") {
        return None;
    }
    let rest = std::str::from_utf8(&line[6..]).ok()?;
    Some(
        rest.split_whitespace()
            .take_while(|w| !w.starts_with('('))
            .filter_map(|w| w.parse().ok())
            .collect(),
    )
}

/// An IMAP quoted string for `s` (RFC 3501 §4.3: `\` and `"` escaped).
pub fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufReader, Cursor};

    fn read_all(input: &[u8]) -> Vec<Vec<u8>> {
        let mut r = BufReader::with_capacity(7, Cursor::new(input.to_vec()));
        let mut out = Vec::new();
        let mut buf = Vec::new();
        while read_response(&mut r, &mut buf).is_ok() {
            out.push(buf.clone());
        }
        out
    }

    #[test]
    fn literal_lengths() {
        assert_eq!(literal_len(b"* 1 FETCH (BODY[] {12}"), Some(12));
        assert_eq!(literal_len(b"a APPEND x {0+}"), Some(0));
        assert_eq!(literal_len(b"* OK {x}"), None);
        assert_eq!(literal_len(b"* OK {}"), None);
        assert_eq!(literal_len(b"* OK fine"), None);
        assert_eq!(literal_len(b"}"), None);
    }

    #[test]
    fn responses_with_literals_are_read_whole() {
        let input = b"* 1 FETCH (UID 5 BODY[] {9}\r\nab\r\n{3}\r\n ENVELOPE (NIL {2}\r\nxy))\r\n\
                      a1 OK done\r\n";
        let got = read_all(input);
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0],
            b"* 1 FETCH (UID 5 BODY[] {9}\r\nab\r\n{3}\r\n ENVELOPE (NIL {2}\r\nxy))\r\n".to_vec()
        );
        assert_eq!(got[1], b"a1 OK done\r\n".to_vec());
    }

    #[test]
    fn truncated_literal_is_an_error() {
        let mut r = Cursor::new(b"* 1 FETCH (BODY[] {10}\r\nshort".to_vec());
        let mut buf = Vec::new();
        assert!(read_response(&mut r, &mut buf).is_err());
        let mut r = Cursor::new(b"no newline".to_vec());
        assert!(read_response(&mut r, &mut buf).is_err());
    }

    #[test]
    fn bare_lf_lines_are_accepted() {
        assert_eq!(read_all(b"* 3 EXISTS\n+ go\n").len(), 2);
    }

    #[test]
    fn classify_kinds() {
        assert_eq!(classify(b"* 3 EXISTS\r\n"), Kind::Untagged(b"3 EXISTS"));
        assert_eq!(classify(b"+ idling\r\n"), Kind::Continue);
        assert_eq!(classify(b"+\r\n"), Kind::Continue);
        assert_eq!(
            classify(b"a12 ok [APPENDUID 1 2] done\r\n"),
            Kind::Tagged {
                tag: b"a12",
                ok: true,
                text: b"ok [APPENDUID 1 2] done"
            }
        );
        match classify(b"a3 NO [TRYCREATE] no such mailbox\r\n") {
            Kind::Tagged { tag, ok, .. } => assert_eq!((tag, ok), (&b"a3"[..], false)),
            k => panic!("{k:?}"),
        }
        match classify(b"a4 BAD\r\n") {
            Kind::Tagged { ok, .. } => assert!(!ok),
            k => panic!("{k:?}"),
        }
    }

    #[test]
    fn exists_counts() {
        assert_eq!(exists(b"20000 EXISTS\r\n"), Some(20000));
        assert_eq!(exists(b"7 exists"), Some(7));
        assert_eq!(exists(b"7 RECENT"), None);
        assert_eq!(exists(b"OK [UIDNEXT 4]"), None);
    }

    #[test]
    fn capability_lists() {
        let c = capabilities(b"CAPABILITY IMAP4rev1 literal+ IDLE\r\n").unwrap_or_default();
        assert_eq!(c, ["IMAP4REV1", "LITERAL+", "IDLE"]);
        let c =
            capabilities(b"OK [CAPABILITY IMAP4rev1 SASL-IR] Dovecot ready.").unwrap_or_default();
        assert_eq!(c, ["IMAP4REV1", "SASL-IR"]);
        assert_eq!(capabilities(b"OK ready"), None);
    }

    #[test]
    fn search_results() {
        assert_eq!(
            search_numbers(b"SEARCH 2 84 882\r\n"),
            Some(vec![2, 84, 882])
        );
        assert_eq!(search_numbers(b"SEARCH\r\n"), Some(vec![]));
        assert_eq!(
            search_numbers(b"SEARCH 4 5 (MODSEQ 9)"),
            Some(vec![4, 5]),
            "CONDSTORE's MODSEQ is not a number of the result"
        );
        assert_eq!(search_numbers(b"3 EXISTS"), None);
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quote("plain@x"), "\"plain@x\"");
    }
}
