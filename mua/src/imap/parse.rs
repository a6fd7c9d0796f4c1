//! IMAP response parser (RFC 3501 §7, §9 "response" grammar).
//!
//! Input is one complete response as read from the wire: the line plus any
//! literals (`{n}` CRLF followed by n octets) inline. Output is a typed
//! `Response` (the types are in `response.rs`, re-exported here); FETCH
//! item values stay generic `Value` trees that `fetch.rs` interprets
//! (ENVELOPE, BODYSTRUCTURE, BODY[...]).

pub use super::response::{RespText, Response, Status, Untagged, Value};
use super::utf7;

/// Why a response could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot parse IMAP response: {0}")]
pub struct ParseError(pub String);

/// If a response line ends with a literal announcement `{n}` (or `{n+}`),
/// returns n.
pub fn literal_len(line: &[u8]) -> Option<usize> {
    let body = line.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    let digits = &body[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// A cursor over one response.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn err(&self, what: &str) -> ParseError {
        ParseError(format!("{what} at offset {}", self.pos))
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    /// Rest of the buffer as text (for resp-text).
    fn rest(&mut self) -> String {
        let s = String::from_utf8_lossy(&self.buf[self.pos..]).into_owned();
        self.pos = self.buf.len();
        s
    }

    /// A space-delimited word (tag, keyword).
    fn word(&mut self) -> String {
        self.skip_spaces();
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b == b' ' {
                break;
            }
            self.pos += 1;
        }
        String::from_utf8_lossy(&self.buf[start..self.pos]).into_owned()
    }

    /// `atom` (RFC 3501 §9: any CHAR but SP, CTL, `(`, `)`, `{`, ...),
    /// leniently also accepting `]` (ASTRING-CHAR, e.g. in mailbox names).
    /// `[` is an ordinary ATOM-CHAR (`a[b` is a valid flag keyword) except
    /// right after a fetch attribute that takes a section (`BODY`,
    /// `BODY.PEEK`, `BINARY`, `BINARY.PEEK`, `BINARY.SIZE`): there the
    /// `section` up to its `]` joins the atom, and a following `<origin>`
    /// is read as atom characters, giving e.g. `BODY[HEADER.FIELDS (TO)]<0>`.
    fn atom(&mut self) -> Result<String, ParseError> {
        let start = self.pos;
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'(' | b')' | b'\r' | b'\n' => break,
                b'[' if is_section_att(&self.buf[start..self.pos]) => {
                    if let Some(end) = section_end(self.buf, self.pos) {
                        self.pos = end;
                        continue;
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.err("expected an atom"));
        }
        Ok(String::from_utf8_lossy(&self.buf[start..self.pos]).into_owned())
    }

    /// `quoted = DQUOTE *QUOTED-CHAR DQUOTE`
    fn quoted(&mut self) -> Result<Vec<u8>, ParseError> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.err("unterminated quoted string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let c = self.peek().ok_or_else(|| self.err("dangling escape"))?;
                    out.push(c);
                    self.pos += 1;
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// `literal = "{" number "}" CRLF *CHAR8`
    fn literal(&mut self) -> Result<Vec<u8>, ParseError> {
        let close = self.buf[self.pos..]
            .iter()
            .position(|&b| b == b'}')
            .ok_or_else(|| self.err("unterminated literal length"))?;
        let digits = &self.buf[self.pos + 1..self.pos + close];
        let digits = digits.strip_suffix(b"+").unwrap_or(digits);
        let n: usize = std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| self.err("bad literal length"))?;
        self.pos += close + 1;
        if self.buf[self.pos..].starts_with(b"\r\n") {
            self.pos += 2;
        } else if self.buf[self.pos..].starts_with(b"\n") {
            self.pos += 1;
        } else {
            return Err(self.err("literal length not followed by CRLF"));
        }
        let end = match self.pos.checked_add(n) {
            Some(end) if end <= self.buf.len() => end,
            _ => return Err(self.err("literal shorter than announced")),
        };
        let data = self.buf[self.pos..end].to_vec();
        self.pos = end;
        Ok(data)
    }

    /// Any value: list, string, literal, NIL or atom.
    fn value(&mut self) -> Result<Value, ParseError> {
        self.skip_spaces();
        match self.peek() {
            None => Err(self.err("expected a value")),
            Some(b'(') => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_spaces();
                    match self.peek() {
                        None => return Err(self.err("unterminated list")),
                        Some(b')') => {
                            self.pos += 1;
                            return Ok(Value::List(items));
                        }
                        _ => items.push(self.value()?),
                    }
                }
            }
            Some(b'"') => Ok(Value::Bytes(self.quoted()?)),
            Some(b'{') => Ok(Value::Bytes(self.literal()?)),
            Some(_) => {
                let a = self.atom()?;
                if a.eq_ignore_ascii_case("NIL") {
                    Ok(Value::Nil)
                } else {
                    Ok(Value::Atom(a))
                }
            }
        }
    }

    /// `resp-text = ["[" resp-text-code "]" SP] text`
    fn resp_text(&mut self) -> RespText {
        self.skip_spaces();
        let mut code = None;
        if self.peek() == Some(b'[') {
            if let Some(end) = code_end(self.buf, self.pos) {
                let inner = &self.buf[self.pos + 1..end - 1];
                code = Some(String::from_utf8_lossy(inner).into_owned());
                self.pos = end;
                self.skip_spaces();
            }
        }
        RespText {
            code,
            text: self.rest(),
        }
    }
}

/// Fetch attribute names that a `section` follows (RFC 3501 §9 `msg-att`,
/// `fetch-att`; RFC 3516 `section-binary`).
fn is_section_att(name: &[u8]) -> bool {
    const NAMES: [&[u8]; 5] = [
        b"BODY",
        b"BODY.PEEK",
        b"BINARY",
        b"BINARY.PEEK",
        b"BINARY.SIZE",
    ];
    NAMES.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// Where the `section` opened by the `[` at `open` ends (just after its
/// `]`), or None when the bytes there are not a section (RFC 3501 §9:
/// `section = "[" [section-spec] "]"`; the only SP in a section-spec comes
/// after `HEADER.FIELDS [.NOT]` and opens a `header-list` of astrings, in
/// which `]` is an ordinary ASTRING-CHAR and strings may be quoted or
/// literals). Scans never pass a `(` or `)` outside the header-list, so a
/// response full of `BODY[` atoms costs linear time.
fn section_end(buf: &[u8], open: usize) -> Option<usize> {
    let mut i = open + 1;
    loop {
        match *buf.get(i)? {
            b']' => return Some(i + 1),
            b' ' => break,
            b'(' | b')' | b'"' | b'{' | b'\r' | b'\n' => return None,
            _ => i += 1,
        }
    }
    let spec = buf[open + 1..i].to_ascii_uppercase();
    if !(spec.ends_with(b"HEADER.FIELDS") || spec.ends_with(b"HEADER.FIELDS.NOT")) {
        return None;
    }
    i += 1;
    if buf.get(i) != Some(&b'(') {
        return None;
    }
    i += 1;
    loop {
        match *buf.get(i)? {
            b')' => break,
            b'"' | b'{' => {
                let mut c = Cursor { buf, pos: i };
                if buf[i] == b'"' {
                    c.quoted().ok()?;
                } else {
                    c.literal().ok()?;
                }
                i = c.pos;
            }
            b'(' | b'\r' | b'\n' => return None,
            _ => i += 1,
        }
    }
    (buf.get(i + 1) == Some(&b']')).then_some(i + 2)
}

/// Where the `resp-text-code` opened by the `[` at `open` ends (just after
/// its `]`). The code ends at the first `]` outside parentheses and quoted
/// strings (RFC 3501 §9: `]` is resp-specials, so no atom holds it, but
/// `PERMANENTFLAGS (a[b)` holds `[` and `BADCHARSET` astrings may hold
/// `]`); when that never comes, at the first `]`; None without any `]`.
fn code_end(buf: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = open + 1;
    while let Some(&b) = buf.get(i) {
        match b {
            b']' if depth == 0 => return Some(i + 1),
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            b'"' => {
                let mut c = Cursor { buf, pos: i };
                if c.quoted().is_err() {
                    break;
                }
                i = c.pos;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    buf[open + 1..]
        .iter()
        .position(|&b| b == b']')
        .map(|p| open + p + 2)
}

fn status_of(word: &str) -> Option<Status> {
    match word.to_ascii_uppercase().as_str() {
        "OK" => Some(Status::Ok),
        "NO" => Some(Status::No),
        "BAD" => Some(Status::Bad),
        "BYE" => Some(Status::Bye),
        "PREAUTH" => Some(Status::Preauth),
        _ => None,
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.list()
        .iter()
        .filter_map(|x| x.text().map(|t| t.into_owned()))
        .collect()
}

/// Parses one complete response (line plus inline literals, no final CRLF).
///
/// # Errors
/// `ParseError` when the bytes do not follow the response grammar.
pub fn parse_response(buf: &[u8]) -> Result<Response, ParseError> {
    let mut c = Cursor { buf, pos: 0 };
    if buf.starts_with(b"+") {
        c.pos = 1;
        c.skip_spaces();
        return Ok(Response::Continue(c.rest()));
    }
    let tag = c.word();
    if tag.is_empty() {
        return Err(ParseError("empty response".into()));
    }
    if tag != "*" {
        let st = c.word();
        let status = status_of(&st)
            .filter(|s| matches!(s, Status::Ok | Status::No | Status::Bad))
            .ok_or_else(|| ParseError(format!("bad tagged status {st:?}")))?;
        return Ok(Response::Tagged {
            tag,
            status,
            text: c.resp_text(),
        });
    }
    let first = c.word();
    if let Ok(n) = first.parse::<u32>() {
        let kw = c.word().to_ascii_uppercase();
        return Ok(Response::Untagged(match kw.as_str() {
            "EXISTS" => Untagged::Exists(n),
            "RECENT" => Untagged::Recent(n),
            "EXPUNGE" => Untagged::Expunge(n),
            "FETCH" => {
                let v = c.value()?;
                let list = v.list();
                let mut items = Vec::new();
                for pair in list.chunks(2) {
                    if let [k, val] = pair {
                        let name = k.text().unwrap_or_default().to_ascii_uppercase();
                        items.push((name, val.clone()));
                    }
                }
                Untagged::Fetch { seq: n, items }
            }
            _ => Untagged::Other(String::from_utf8_lossy(buf).into_owned()),
        }));
    }
    let kw = first.to_ascii_uppercase();
    if let Some(st) = status_of(&kw) {
        return Ok(Response::Untagged(Untagged::State(st, c.resp_text())));
    }
    let u = match kw.as_str() {
        "CAPABILITY" => Untagged::Capability(
            c.rest()
                .split_whitespace()
                .map(|s| s.to_ascii_uppercase())
                .collect(),
        ),
        "LIST" | "LSUB" => {
            let flags = strings(&c.value()?);
            let delim = match c.value()? {
                Value::Bytes(b) => b.first().map(|&b| b as char),
                Value::Atom(a) => a.chars().next(),
                _ => None,
            };
            let name = c.value()?;
            let name = name.text().unwrap_or_default();
            Untagged::List {
                flags,
                delim,
                name: utf7::decode(&name),
            }
        }
        "SEARCH" => Untagged::Search(
            c.rest()
                .split_whitespace()
                .filter_map(|s| s.parse().ok())
                .collect(),
        ),
        "STATUS" => {
            let mb = c.value()?;
            let mailbox = utf7::decode(&mb.text().unwrap_or_default());
            let list = c.value()?;
            let items = list
                .list()
                .chunks(2)
                .filter_map(|p| match p {
                    [k, v] => Some((k.text()?.to_ascii_uppercase(), v.number()?)),
                    _ => None,
                })
                .collect();
            Untagged::Status { mailbox, items }
        }
        "FLAGS" => Untagged::Flags(strings(&c.value()?)),
        _ => Untagged::Other(String::from_utf8_lossy(buf).into_owned()),
    };
    Ok(Response::Untagged(u))
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
