//! Text that a transcript sends: literal bytes, `${variables}`, `${len:var}`
//! and `${repeat:N:text}` generators, and the backslash escapes of `R:` and
//! `LET` lines (`\r`, `\n`, `\t`, `\\`, `\$`, `\xHH`).
//!
//! Parsing happens once per transcript line (errors carry the column);
//! expansion happens when the step runs, against the case's [`Vars`].
//! No I/O here.

use std::collections::BTreeMap;

/// Names the runner defines before a case starts.
pub const BUILTINS: &[&str] = &[
    "user",
    "password",
    "user2",
    "password2",
    "domain",
    "addr",
    "addr2",
    "unique",
    "CRLF",
];

/// Variable values of one running case (byte strings: literals may be 8-bit).
#[derive(Debug, Clone, Default)]
pub struct Vars {
    map: BTreeMap<String, Vec<u8>>,
}

impl Vars {
    /// Sets (or replaces) a variable.
    pub fn set(&mut self, name: &str, value: impl Into<Vec<u8>>) {
        self.map.insert(name.to_string(), value.into());
    }

    /// The value of a variable, if defined.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.map.get(name).map(Vec::as_slice)
    }
}

/// A reference to a variable with optional integer arithmetic: `size+1`,
/// `size-1`, `size/100`, `size*2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarRef {
    /// Variable name.
    pub name: String,
    /// Operators (`+`, `-`, `*`, `/`) and operands, applied left to right;
    /// empty for the plain value.
    pub ops: Vec<(char, i64)>,
}

impl VarRef {
    /// Parses `name` optionally followed by operations such as `+N`, `-N`,
    /// `*N`, `/N` (applied left to right: `size/78+2`).
    ///
    /// # Errors
    /// A message when the name is empty or not `[A-Za-z0-9_]+`, or the operand
    /// is not an integer.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (name, mut rest) = match s.find(['+', '-', '*', '/']) {
            Some(i) => (&s[..i], &s[i..]),
            None => (s, ""),
        };
        let mut ops = Vec::new();
        while let Some(op) = rest.chars().next() {
            let tail = &rest[1..];
            let end = tail.find(['+', '-', '*', '/']).unwrap_or(tail.len());
            let n: i64 = tail[..end]
                .trim()
                .parse()
                .map_err(|_| format!("bad number after `{op}` in `${{{s}}}`"))?;
            if op == '/' && n == 0 {
                return Err(format!("division by zero in `${{{s}}}`"));
            }
            ops.push((op, n));
            rest = &tail[end..];
        }
        let name = name.trim();
        if !is_name(name) {
            return Err(format!("bad variable name `{name}`"));
        }
        Ok(VarRef {
            name: name.to_string(),
            ops,
        })
    }

    /// The referenced value, with the arithmetic applied if any.
    ///
    /// # Errors
    /// Undefined variable, or arithmetic on a value that is not an integer.
    pub fn resolve(&self, vars: &Vars) -> Result<Vec<u8>, String> {
        let v = vars
            .get(&self.name)
            .ok_or_else(|| format!("variable `{}` is not defined", self.name))?;
        if self.ops.is_empty() {
            return Ok(v.to_vec());
        }
        Ok(self.resolve_number(vars)?.to_string().into_bytes())
    }

    /// The referenced value read as an integer (arithmetic applied).
    ///
    /// # Errors
    /// As [`VarRef::resolve`].
    pub fn resolve_number(&self, vars: &Vars) -> Result<i64, String> {
        let v = vars
            .get(&self.name)
            .ok_or_else(|| format!("variable `{}` is not defined", self.name))?;
        let mut n = self.number(v)?;
        for &(op, k) in &self.ops {
            n = match op {
                '+' => n.saturating_add(k),
                '-' => n.saturating_sub(k),
                '*' => n.saturating_mul(k),
                _ => n / k,
            };
        }
        Ok(n)
    }

    fn number(&self, v: &[u8]) -> Result<i64, String> {
        std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .ok_or_else(|| format!("variable `{}` is not a number", self.name))
    }
}

/// `true` for `[A-Za-z0-9_]+`.
pub fn is_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// How many times a `${repeat:...}` repeats: a number or a variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Count {
    /// A literal count.
    Fixed(u64),
    /// A variable (with arithmetic) holding the count.
    Var(VarRef),
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Bytes sent as they are.
    Lit(Vec<u8>),
    /// `${name}` or `${name+N}`.
    Var(VarRef),
    /// `${len:name}`: the byte length of a variable's value, in decimal.
    Len(String),
    /// `${base64:name}`: a variable's value in base64 (RFC 4648), for SASL.
    Base64(String),
    /// `${repeat:N:text}`: `text` repeated N times.
    Repeat(Count, Vec<u8>),
}

/// Parsed text to send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Template {
    /// The pieces in order.
    pub pieces: Vec<Piece>,
}

/// Largest expansion a template may produce (keeps typos from eating memory).
pub const MAX_EXPANSION: u64 = 256 * 1024 * 1024;

impl Template {
    /// Parses template text; `escapes` turns on backslash escapes.
    ///
    /// # Errors
    /// A message naming the offending construct.
    pub fn parse(text: &str, escapes: bool) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut lit = Vec::new();
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if b == b'\\' && escapes {
                let (v, used) = unescape_at(bytes, i)?;
                lit.push(v);
                i += used;
            } else if b == b'$' && bytes.get(i + 1) == Some(&b'{') {
                let end = find_close(bytes, i + 2)
                    .ok_or_else(|| format!("unclosed `${{` at column {}", i + 1))?;
                let inner = &text[i + 2..end];
                if !lit.is_empty() {
                    pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                }
                pieces.push(parse_inner(inner, escapes)?);
                i = end + 1;
            } else {
                lit.push(b);
                i += 1;
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Lit(lit));
        }
        Ok(Template { pieces })
    }

    /// Variable names this template reads.
    pub fn uses(&self) -> Vec<&str> {
        let mut out = Vec::new();
        for p in &self.pieces {
            match p {
                Piece::Var(v) | Piece::Repeat(Count::Var(v), _) => out.push(v.name.as_str()),
                Piece::Len(n) | Piece::Base64(n) => out.push(n.as_str()),
                _ => {}
            }
        }
        out
    }

    /// Produces the bytes to send.
    ///
    /// # Errors
    /// Undefined variables, non-numeric counts, or an expansion over
    /// [`MAX_EXPANSION`].
    pub fn expand(&self, vars: &Vars) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        for p in &self.pieces {
            match p {
                Piece::Lit(b) => out.extend_from_slice(b),
                Piece::Var(v) => out.extend(v.resolve(vars)?),
                Piece::Len(n) => {
                    let v = vars
                        .get(n)
                        .ok_or_else(|| format!("variable `{n}` is not defined"))?;
                    out.extend(v.len().to_string().into_bytes());
                }
                Piece::Base64(n) => {
                    let v = vars
                        .get(n)
                        .ok_or_else(|| format!("variable `{n}` is not defined"))?;
                    out.extend(base64(v).into_bytes());
                }
                Piece::Repeat(count, text) => {
                    let n = match count {
                        Count::Fixed(n) => *n,
                        Count::Var(v) => u64::try_from(v.resolve_number(vars)?)
                            .map_err(|_| format!("negative repeat count from `{}`", v.name))?,
                    };
                    let total = n.saturating_mul(text.len() as u64);
                    if total + out.len() as u64 > MAX_EXPANSION {
                        return Err(format!("expansion of {total} bytes is too large"));
                    }
                    for _ in 0..n {
                        out.extend_from_slice(text);
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Index of the `}` closing a `${` whose body starts at `from` (nesting aware).
pub fn find_close(bytes: &[u8], from: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'{' => depth += 1,
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

fn parse_inner(inner: &str, escapes: bool) -> Result<Piece, String> {
    if let Some(name) = inner.strip_prefix("len:") {
        if !is_name(name) {
            return Err(format!("bad variable name in `${{len:{name}}}`"));
        }
        return Ok(Piece::Len(name.to_string()));
    }
    if let Some(name) = inner.strip_prefix("base64:") {
        if !is_name(name) {
            return Err(format!("bad variable name in `${{base64:{name}}}`"));
        }
        return Ok(Piece::Base64(name.to_string()));
    }
    if let Some(rest) = inner.strip_prefix("repeat:") {
        let (count, text) = rest
            .split_once(':')
            .ok_or("`${repeat:N:text}` needs a count and a text")?;
        let count = match count.trim().parse::<u64>() {
            Ok(n) => Count::Fixed(n),
            Err(_) => Count::Var(VarRef::parse(count)?),
        };
        let text = Template::parse(text, escapes)?;
        let mut bytes = Vec::new();
        for p in text.pieces {
            match p {
                Piece::Lit(b) => bytes.extend(b),
                _ => return Err("no variables inside `${repeat:...}` text".into()),
            }
        }
        if bytes.is_empty() {
            return Err("`${repeat:N:text}` with empty text".into());
        }
        return Ok(Piece::Repeat(count, bytes));
    }
    Ok(Piece::Var(VarRef::parse(inner)?))
}

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes one backslash escape at `bytes[i]`; returns the byte and how many
/// input bytes it used.
///
/// # Errors
/// Unknown escape or bad `\xHH`.
pub fn unescape_at(bytes: &[u8], i: usize) -> Result<(u8, usize), String> {
    let col = i + 1;
    match bytes.get(i + 1) {
        Some(b'r') => Ok((b'\r', 2)),
        Some(b'n') => Ok((b'\n', 2)),
        Some(b't') => Ok((b'\t', 2)),
        Some(b'0') => Ok((0, 2)),
        Some(b'\\') => Ok((b'\\', 2)),
        Some(b'$') => Ok((b'$', 2)),
        Some(b'x') => {
            let hex = bytes
                .get(i + 2..i + 4)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad `\\xHH` escape at column {col}"))?;
            Ok((hex, 4))
        }
        Some(c) => Err(format!(
            "unknown escape `\\{}` at column {col} (use \\r \\n \\t \\0 \\\\ \\$ \\xHH)",
            *c as char
        )),
        None => Err(format!("trailing backslash at column {col}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        let mut v = Vars::default();
        v.set("user", "alice@x");
        v.set("size", "100");
        v.set("msg", "hello\r\n");
        v
    }

    #[test]
    fn escapes_only_when_enabled() {
        let t = Template::parse(r"a\r\nb\x41\$", true).unwrap();
        assert_eq!(t.expand(&vars()).unwrap(), b"a\r\nbA$");
        let t = Template::parse(r"a\Seen", false).unwrap();
        assert_eq!(t.expand(&vars()).unwrap(), br"a\Seen");
        assert!(Template::parse(r"a\q", true).is_err());
    }

    #[test]
    fn variables_lengths_offsets_and_repeats() {
        let t = Template::parse("${user} {${len:msg}} ${size+1} ${repeat:3:ab}", false).unwrap();
        assert_eq!(t.expand(&vars()).unwrap(), b"alice@x {7} 101 ababab");
        let t = Template::parse(r"${repeat:size-98:x\r}", true).unwrap();
        assert_eq!(t.expand(&vars()).unwrap(), b"x\rx\r");
        let t = Template::parse("${size/30} ${size*2} ${size/30+2} ${base64:msg}", true).unwrap();
        assert_eq!(t.expand(&vars()).unwrap(), b"3 200 5 aGVsbG8NCg==");
        assert_eq!(base64(b"\0a\0b"), "AGEAYg==");
        assert_eq!(base64(b"ab"), "YWI=");
    }

    #[test]
    fn undefined_and_malformed() {
        assert!(Template::parse("${nope}", false)
            .unwrap()
            .expand(&vars())
            .is_err());
        assert!(Template::parse("${user", false).is_err());
        assert!(Template::parse("${bad name}", false).is_err());
        assert!(Template::parse("${user+1}", false)
            .unwrap()
            .expand(&vars())
            .is_err());
    }
}
