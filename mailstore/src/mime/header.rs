//! Header blocks (RFC 5322 §2.2, §3.6), encoded words (RFC 2047) and
//! `Content-*` parameters (RFC 2045 §5.1), all in time linear in the input:
//! every loop moves forward through the bytes and never revisits them, so
//! a hostile header (a 25 MiB Subject, a million `=?`) costs what reading
//! it costs.

use std::borrow::Cow;

use charset::Charset;

/// One header field: byte ranges into the block it came from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Field<'a> {
    /// Field name as sent, without trailing white space.
    pub name: &'a [u8],
    /// Raw value after the colon: folding and encoded words kept.
    pub value: &'a [u8],
}

impl Field<'_> {
    /// Case-insensitive name test (RFC 5322 §1.2.2).
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name.as_bytes())
    }
}

/// A split header block.
#[derive(Debug, Default)]
pub(crate) struct Head<'a> {
    /// The first fields, at most the `max` given to [`split`].
    pub fields: Vec<Field<'a>>,
    /// Length of the header including the blank separator line (0 when
    /// the part starts with a line that is not a header field).
    pub len: usize,
    /// More fields than were kept.
    pub cut: bool,
}

impl<'a> Head<'a> {
    /// The first field called `name`.
    pub fn first(&self, name: &str) -> Option<&Field<'a>> {
        self.fields.iter().find(|f| f.is(name))
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Split the header block at the start of `raw`, keeping at most `max`
/// fields. The header ends at the first empty line (included in
/// [`Head::len`]), or before the first line that is neither a field nor a
/// continuation, or at the end of `raw`.
pub(crate) fn split(raw: &[u8], max: usize) -> Head<'_> {
    let mut head = Head::default();
    let mut pos = 0;
    let mut fields: Vec<(usize, usize, usize, usize)> = Vec::new();
    let mut cur: Option<(usize, usize, usize)> = None; // (name_start, name_end, value_start)
    let mut cur_end = 0;
    let mut push = |cur: &mut Option<(usize, usize, usize)>, end: usize, head: &mut Head<'_>| {
        if let Some((ns, ne, vs)) = cur.take() {
            if fields.len() < max {
                fields.push((ns, ne, vs, end));
            } else {
                head.cut = true;
            }
        }
    };
    loop {
        if pos >= raw.len() {
            push(&mut cur, cur_end, &mut head);
            head.len = raw.len();
            break;
        }
        let rest = &raw[pos..];
        let eol = memchr::memchr(b'\n', rest).map_or(raw.len(), |i| pos + i + 1);
        let line = trim_cr(raw[pos..eol].strip_suffix(b"\n").unwrap_or(&raw[pos..eol]));
        if line.is_empty() {
            push(&mut cur, cur_end, &mut head);
            head.len = eol;
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if cur.is_some() {
                cur_end = pos + line.len();
                pos = eol;
                continue;
            }
            if pos == 0 {
                // Leading white space before any field: not a header.
                head.len = 0;
                break;
            }
        }
        match memchr::memchr(b':', line) {
            Some(colon) if valid_name(&line[..colon]) => {
                push(&mut cur, cur_end, &mut head);
                let mut ne = colon;
                while ne > 0 && (line[ne - 1] == b' ' || line[ne - 1] == b'\t') {
                    ne -= 1;
                }
                cur = Some((pos, pos + ne, pos + colon + 1));
                cur_end = pos + line.len();
                pos = eol;
            }
            _ => {
                // Not a field: the body starts here.
                push(&mut cur, cur_end, &mut head);
                head.len = pos;
                break;
            }
        }
    }
    head.fields = fields
        .into_iter()
        .map(|(ns, ne, vs, ve)| Field {
            name: raw.get(ns..ne).unwrap_or_default(),
            value: raw.get(vs..ve.max(vs)).unwrap_or_default(),
        })
        .collect();
    head
}

/// RFC 5322 §3.6.8 field name (plus obsolete white space before the colon).
fn valid_name(name: &[u8]) -> bool {
    let name = trim_ascii_end(name);
    !name.is_empty() && name.iter().all(|&b| (33..=126).contains(&b) && b != b':')
}

fn trim_ascii_end(b: &[u8]) -> &[u8] {
    let mut end = b.len();
    while end > 0 && b[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    &b[..end]
}

/// Bytes as text: UTF-8 if they are (RFC 6532), else Latin-1, so that an
/// 8-bit byte from an old mailer keeps its letter instead of becoming U+FFFD.
pub(crate) fn text(raw: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(raw) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(raw.iter().map(|&b| b as char).collect()),
    }
}

/// The value as sent, unfolded (line breaks removed) and trimmed;
/// encoded words kept. At most `max` bytes of `raw` are read.
pub(crate) fn raw_value(raw: &[u8], max: usize) -> String {
    let raw = &raw[..raw.len().min(max)];
    let s = text(raw);
    let mut out = String::with_capacity(s.len());
    for piece in s.split(['\r', '\n']) {
        out.push_str(piece);
    }
    out.trim().to_owned()
}

/// The value for reading and searching: unfolded (each line break and the
/// white space around it become one space), encoded words decoded
/// (RFC 2047), trimmed. At most `max` bytes of `raw` are read.
pub(crate) fn decoded_value(raw: &[u8], max: usize) -> String {
    let raw = &raw[..raw.len().min(max)];
    let s = text(raw);
    let mut unfolded = String::with_capacity(s.len());
    for (i, line) in s.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if i == 0 {
            unfolded.push_str(line);
        } else {
            let l = line.trim_start();
            if !l.is_empty() {
                unfolded.push(' ');
                unfolded.push_str(l);
            }
        }
    }
    decode_words(unfolded.trim())
}

/// Decode the RFC 2047 encoded words in `s`; white space between two
/// adjacent encoded words is dropped (§6.2). Anything that is not a
/// well-formed encoded word, or names an unknown charset, stays as it is.
pub(crate) fn decode_words(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut copied = 0;
    // out's length just after the last decoded word, and where in `s`
    // that word ended.
    let mut after_word: Option<(usize, usize)> = None;
    while let Some(off) = memchr::memmem::find(&b[i..], b"=?") {
        let at = i + off;
        match encoded_word(b, at) {
            Some((decoded, end)) => {
                out.push_str(&s[copied..at]);
                if let Some((out_len, word_end)) = after_word {
                    if word_end <= at && b[word_end..at].iter().all(|c| c.is_ascii_whitespace()) {
                        out.truncate(out_len);
                    }
                }
                out.push_str(&decoded);
                after_word = Some((out.len(), end));
                copied = end;
                i = end;
            }
            None => i = at + 2,
        }
    }
    out.push_str(&s[copied..]);
    out
}

/// The encoded word `=?charset?enc?text?=` at `at`: its decoded text and
/// the index after it. Each scan stops at the first `?` or white space, so
/// a failed attempt reads only up to where the next attempt can start.
fn encoded_word(b: &[u8], at: usize) -> Option<(String, usize)> {
    let start = at + 2;
    let charset_end = start + scan(b.get(start..)?, 76)?;
    let charset = b.get(start..charset_end)?;
    if charset.is_empty() {
        return None;
    }
    let enc = *b.get(charset_end + 1)?;
    if b.get(charset_end + 2) != Some(&b'?') {
        return None;
    }
    let text_start = charset_end + 3;
    let text_end = text_start + scan(b.get(text_start..)?, usize::MAX)?;
    if b.get(text_end + 1) != Some(&b'=') {
        return None;
    }
    let data = &b[text_start..text_end];
    let bytes = match enc {
        b'B' | b'b' => base64(data)?,
        b'Q' | b'q' => q_decode(data),
        _ => return None,
    };
    // RFC 2231 §5: `charset*language`.
    let label = charset.split(|&c| c == b'*').next().unwrap_or(charset);
    let cs = Charset::for_label_no_replacement(label)?;
    let (text, _) = cs.decode_without_bom_handling(&bytes);
    Some((text.into_owned(), text_end + 2))
}

/// Length of the run before the next `?`, if one comes before white space
/// and within `max` bytes.
fn scan(b: &[u8], max: usize) -> Option<usize> {
    for (n, &c) in b.iter().enumerate() {
        if c == b'?' {
            return Some(n);
        }
        if c.is_ascii_whitespace() || n >= max {
            return None;
        }
    }
    None
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// RFC 2047 §4.2 "Q" encoding.
fn q_decode(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            b'_' => out.push(b' '),
            b'=' => {
                if let (Some(h), Some(l)) = (
                    data.get(i + 1).copied().and_then(hex),
                    data.get(i + 2).copied().and_then(hex),
                ) {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                out.push(b'=');
            }
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// Lenient base64 (RFC 2045 §6.8): characters outside the alphabet are
/// skipped, missing padding is supplied, a dangling sixth bit dropped.
pub(crate) fn base64(data: &[u8]) -> Option<Vec<u8>> {
    let mut clean: Vec<u8> = data
        .iter()
        .copied()
        .take_while(|&c| c != b'=')
        .filter(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
        .collect();
    if clean.len() % 4 == 1 {
        clean.pop();
    }
    while !clean.len().is_multiple_of(4) {
        clean.push(b'=');
    }
    data_encoding::BASE64_MIME_PERMISSIVE.decode(&clean).ok()
}

/// Body bytes after the transfer encoding is undone (RFC 2045 §6).
pub(crate) fn transfer_decode<'b>(body: &'b [u8], encoding: &str) -> Cow<'b, [u8]> {
    match encoding {
        "base64" => base64(body).map_or(Cow::Borrowed(body), Cow::Owned),
        "quoted-printable" => quoted_printable::decode(body, quoted_printable::ParseMode::Robust)
            .map_or(Cow::Borrowed(body), Cow::Owned),
        _ => Cow::Borrowed(body),
    }
}

/// Decoded bytes in `charset` as text (unknown charsets: UTF-8 or Latin-1).
pub(crate) fn charset_text(bytes: &[u8], charset: Option<&str>) -> String {
    match charset.and_then(|c| Charset::for_label(c.as_bytes())) {
        Some(cs) => cs.decode(bytes).0.into_owned(),
        None => text(bytes).into_owned(),
    }
}

/// `Content-Type`/`Content-Disposition` value: the first token (lowercase)
/// and the parameters in their wire form (names lowercase, values with
/// quoting undone; RFC 2231 `name*0*` pieces kept as sent, as IMAP servers
/// send them in BODYSTRUCTURE).
pub(crate) fn params_value(value: &str) -> (String, Vec<(String, String)>) {
    let mut parts = ParamLexer {
        s: value.as_bytes(),
        i: 0,
    };
    let first = parts.until(b';');
    let kind = strip_comments(&first).trim().to_ascii_lowercase();
    let mut params = Vec::new();
    while parts.i < parts.s.len() {
        parts.i += 1; // the ';'
        parts.skip_ws();
        let name = parts.until_any(b"=;");
        let name = strip_comments(&name).trim().to_ascii_lowercase();
        if parts.peek() != Some(b'=') {
            continue;
        }
        parts.i += 1;
        parts.skip_ws();
        let v = if parts.peek() == Some(b'"') {
            parts.quoted()
        } else {
            strip_comments(&parts.until(b';')).trim().to_owned()
        };
        // Skip anything after a quoted string up to the next ';'.
        let _ = parts.until(b';');
        if !name.is_empty() {
            params.push((name, v));
        }
    }
    (kind, params)
}

struct ParamLexer<'s> {
    s: &'s [u8],
    i: usize,
}

impl ParamLexer<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }
    fn until(&mut self, stop: u8) -> String {
        self.until_any(&[stop])
    }
    /// Up to (not including) the first byte of `stops` outside quotes.
    fn until_any(&mut self, stops: &[u8]) -> String {
        let start = self.i;
        let mut quoted = false;
        while let Some(c) = self.peek() {
            if !quoted && stops.contains(&c) {
                break;
            }
            if c == b'"' {
                quoted = !quoted;
            } else if c == b'\\' && quoted {
                self.i += 1;
            }
            self.i += 1;
        }
        let end = self.i.min(self.s.len());
        self.i = end;
        String::from_utf8_lossy(&self.s[start..end]).into_owned()
    }
    /// A quoted string at the cursor, unquoted.
    fn quoted(&mut self) -> String {
        let mut out = Vec::new();
        self.i += 1;
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    if let Some(n) = self.peek() {
                        out.push(n);
                        self.i += 1;
                    }
                }
                b'\r' | b'\n' => {}
                c => out.push(c),
            }
        }
        text(&out).into_owned()
    }
}

/// Remove RFC 5322 comments `( … )` (nested, with quoted pairs), outside
/// quoted strings. One pass.
pub(crate) fn strip_comments(s: &str) -> String {
    if !s.contains('(') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut depth = 0usize;
    let mut quoted = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if depth > 0 || quoted => {
                let next = chars.next();
                if depth == 0 {
                    out.push(c);
                    if let Some(n) = next {
                        out.push(n);
                    }
                }
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    out.push(' ');
                }
            }
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn splits_fields_and_finds_the_blank_line() {
        let raw = b"Subject: a\r\n b\r\nFrom : x@y\r\n\r\nbody";
        let h = split(raw, 10);
        assert_eq!(h.len, 30);
        assert_eq!(h.fields.len(), 2);
        assert_eq!(h.fields[0].name, b"Subject");
        assert_eq!(h.fields[0].value, b" a\r\n b");
        assert_eq!(h.fields[1].name, b"From");
        assert!(!h.cut);
    }

    #[test]
    fn a_line_that_is_not_a_field_starts_the_body() {
        let h = split(b"just text\r\nmore", 10);
        assert_eq!(h.len, 0);
        let h = split(b"A: b\r\nno colon here\r\n", 10);
        assert_eq!((h.len, h.fields.len()), (6, 1));
        let h = split(b"A: b", 10);
        assert_eq!((h.len, h.fields.len()), (4, 1));
        assert_eq!(h.fields[0].value, b" b");
    }

    #[test]
    fn fields_beyond_the_bound_are_counted_not_kept() {
        let raw = "X: 1\r\n".repeat(50) + "\r\n";
        let h = split(raw.as_bytes(), 10);
        assert_eq!(h.fields.len(), 10);
        assert!(h.cut);
        assert_eq!(h.len, raw.len());
    }

    #[test]
    fn encoded_words() {
        assert_eq!(
            decode_words("=?utf-8?q?caf=C3=A9?= au lait"),
            "café au lait"
        );
        assert_eq!(decode_words("=?UTF-8?B?w6k=?= =?utf-8?b?w6k?="), "éé");
        assert_eq!(
            decode_words("a =?x-unknown?q?b?= c"),
            "a =?x-unknown?q?b?= c"
        );
        assert_eq!(decode_words("=?utf-8*en?q?hi_there?="), "hi there");
        assert_eq!(decode_words("=?=?=?"), "=?=?=?");
        assert_eq!(decode_words("(=?iso-8859-1?q?J=F6rg?=)"), "(Jörg)");
        assert_eq!(
            decode_words("=?us-ascii?B?bXVsdGlwYXJ0L21peGVk?="),
            "multipart/mixed"
        );
    }

    #[test]
    fn decoded_value_unfolds() {
        assert_eq!(decoded_value(b" a\r\n\t b \r\n", 100), "a b");
        assert_eq!(raw_value(b" =?x?q?a?=\r\n b", 100), "=?x?q?a?= b");
        assert_eq!(raw_value(b" caf\xe9", 100), "café");
    }

    #[test]
    fn params_keep_the_wire_form() {
        let (k, p) = params_value(
            "multipart/Mixed; boundary=\"a;b\" (comment); Name*0*=us-ascii''x; q=\"\\\"\"",
        );
        assert_eq!(k, "multipart/mixed");
        assert_eq!(
            p,
            vec![
                ("boundary".into(), "a;b".into()),
                ("name*0*".into(), "us-ascii''x".into()),
                ("q".into(), "\"".into()),
            ]
        );
        let (k, p) = params_value("text/plain (c) ; charset = utf-8 (x)");
        assert_eq!(k, "text/plain");
        assert_eq!(p, vec![("charset".into(), "utf-8".into())]);
    }

    #[test]
    fn lenient_base64() {
        assert_eq!(base64(b"aGk=").unwrap(), b"hi");
        assert_eq!(base64(b"aG\r\nk").unwrap(), b"hi");
        assert_eq!(base64(b"aGk*!").unwrap(), b"hi");
    }

    #[test]
    fn cost_is_linear_in_hostile_headers() {
        // A million `=?` and a long chain of encoded words.
        let many = "(=?a?=x".repeat(200_000);
        let t = std::time::Instant::now();
        let _ = decode_words(&many);
        let words = "=?us-ascii?q?ab?= ".repeat(100_000);
        assert_eq!(decode_words(&words).len(), 200_000 + 1);
        let _ = decode_words(&"=?".repeat(500_000));
        // Not a speed test: a quadratic decoder would take hours here.
        log::debug!("hostile headers decoded in {:?}", t.elapsed());
    }
}
