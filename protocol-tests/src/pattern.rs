//! `S:` patterns: what a server line must look like.
//!
//! A pattern matches a whole response line (without its CRLF; for IMAP,
//! literals sent by the server are inlined), ASCII case-insensitively:
//! - `*` matches any run of bytes (so a trailing `*` is a prefix match);
//!   a `*` at the very start followed by a space is the IMAP untagged marker
//!   and matches itself; `\*` is a literal star, `\$` a literal dollar,
//!   `\\` a backslash; any other backslash is literal (`\Seen`).
//! - `${name}` matches the current value of a variable, literally and
//!   case-sensitively;
//!   `${name+N}` its numeric value plus N; `${len:name}` its length.
//! - `${name:=REGEX}` matches REGEX and stores the text in `name`;
//!   `${=REGEX}` matches REGEX without storing it.
//!
//! No I/O here.

use crate::template::{find_close, is_name, VarRef, Vars};
use regex::bytes::{Regex, RegexBuilder};

/// Variables captured by a successful match: `(name, value)` pairs.
pub type Captures = Vec<(String, Vec<u8>)>;

/// One piece of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Text matched literally (case-insensitively).
    Lit(String),
    /// `*`.
    Wild,
    /// `${name}`.
    Var(VarRef),
    /// `${len:name}`: the byte length of a variable's value.
    Len(String),
    /// `${name:=re}` or `${=re}`.
    Capture(Option<String>, String),
}

/// A parsed `S:` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// The source text, for error messages.
    pub source: String,
    /// The pieces in order.
    pub pieces: Vec<Piece>,
}

impl Pattern {
    /// Parses pattern text.
    ///
    /// # Errors
    /// A message for unclosed `${`, bad names, or a capture regex that does
    /// not compile.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bytes = text.as_bytes();
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut i = 0;
        if text.starts_with("* ") {
            lit.push('*');
            i = 1;
        }
        while i < bytes.len() {
            let c = bytes[i];
            match c {
                b'\\' if matches!(bytes.get(i + 1), Some(b'*' | b'$' | b'\\')) => {
                    lit.push(bytes[i + 1] as char);
                    i += 2;
                }
                b'*' => {
                    flush(&mut lit, &mut pieces);
                    pieces.push(Piece::Wild);
                    i += 1;
                }
                b'$' if bytes.get(i + 1) == Some(&b'{') => {
                    let end = find_close(bytes, i + 2)
                        .ok_or_else(|| format!("unclosed `${{` at column {}", i + 1))?;
                    flush(&mut lit, &mut pieces);
                    pieces.push(parse_inner(&text[i + 2..end])?);
                    i = end + 1;
                }
                _ => {
                    // Copy one whole UTF-8 character.
                    let ch = text[i..].chars().next().unwrap_or('\u{fffd}');
                    lit.push(ch);
                    i += ch.len_utf8().max(1);
                }
            }
        }
        flush(&mut lit, &mut pieces);
        Ok(Pattern {
            source: text.to_string(),
            pieces,
        })
    }

    /// Variable names this pattern reads (not the ones it captures).
    pub fn uses(&self) -> Vec<&str> {
        self.pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Var(v) => Some(v.name.as_str()),
                Piece::Len(n) => Some(n.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Variable names this pattern captures.
    pub fn captures(&self) -> Vec<&str> {
        self.pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Capture(Some(n), _) => Some(n.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Matches a line; on success returns the captured `(name, value)` pairs.
    ///
    /// # Errors
    /// Undefined variables (a transcript bug, reported as such).
    pub fn matches(&self, line: &[u8], vars: &Vars) -> Result<Option<Captures>, String> {
        if let Some(fixed) = self.fixed(line, vars)? {
            return Ok(fixed.then(Vec::new));
        }
        let mut re = String::from("(?i)^");
        let mut names = Vec::new();
        for p in &self.pieces {
            match p {
                Piece::Lit(s) => re.push_str(&regex::escape(s)),
                Piece::Wild => re.push_str("(?s-u:.)*?"),
                Piece::Var(v) => re.push_str(&escape_bytes(&v.resolve(vars)?)),
                Piece::Len(n) => {
                    let v = vars
                        .get(n)
                        .ok_or_else(|| format!("variable `{n}` is not defined"))?;
                    re.push_str(&v.len().to_string());
                }
                Piece::Capture(name, body) => {
                    re.push_str(&format!("(?P<c{}>{body})", names.len()));
                    names.push(name.clone());
                }
            }
        }
        re.push('$');
        // Large limits: a variable may hold a whole message (megabytes).
        let re = RegexBuilder::new(&re)
            .size_limit(1 << 30)
            .dfa_size_limit(64 << 20)
            .build()
            .map_err(|e| format!("pattern `{}`: {e}", self.source))?;
        let Some(caps) = re.captures(line) else {
            return Ok(None);
        };
        let mut out = Vec::new();
        for (i, name) in names.iter().enumerate() {
            if let (Some(name), Some(m)) = (name, caps.name(&format!("c{i}"))) {
                out.push((name.clone(), m.as_bytes().to_vec()));
            }
        }
        Ok(Some(out))
    }
}

impl Pattern {
    /// Matches a pattern without `*` or captures by direct comparison (no
    /// regex: variables may hold megabytes). `None` when the pattern needs
    /// the regex path.
    fn fixed(&self, line: &[u8], vars: &Vars) -> Result<Option<bool>, String> {
        let mut rest = line;
        for p in &self.pieces {
            let ok = match p {
                Piece::Wild | Piece::Capture(..) => return Ok(None),
                Piece::Lit(s) => eat(&mut rest, s.as_bytes(), true),
                Piece::Var(v) => eat(&mut rest, &v.resolve(vars)?, false),
                Piece::Len(n) => {
                    let v = vars
                        .get(n)
                        .ok_or_else(|| format!("variable `{n}` is not defined"))?;
                    eat(&mut rest, v.len().to_string().as_bytes(), false)
                }
            };
            if !ok {
                return Ok(Some(false));
            }
        }
        Ok(Some(rest.is_empty()))
    }
}

/// Consumes `want` from the front of `rest` (ASCII case-insensitively if
/// asked); `false` when it is not there.
fn eat(rest: &mut &[u8], want: &[u8], fold: bool) -> bool {
    let Some(head) = rest.get(..want.len()) else {
        return false;
    };
    let same = if fold {
        head.eq_ignore_ascii_case(want)
    } else {
        head == want
    };
    if same {
        *rest = &rest[want.len()..];
    }
    same
}

fn flush(lit: &mut String, pieces: &mut Vec<Piece>) {
    if !lit.is_empty() {
        pieces.push(Piece::Lit(std::mem::take(lit)));
    }
}

fn parse_inner(inner: &str) -> Result<Piece, String> {
    if let Some(name) = inner.strip_prefix("len:") {
        if !is_name(name) {
            return Err(format!("bad variable name in `${{len:{name}}}`"));
        }
        return Ok(Piece::Len(name.to_string()));
    }
    if let Some(re) = inner.strip_prefix('=') {
        check_regex(re)?;
        return Ok(Piece::Capture(None, re.to_string()));
    }
    if let Some((name, re)) = inner.split_once(":=") {
        if !is_name(name) {
            return Err(format!("bad capture name `{name}`"));
        }
        check_regex(re)?;
        return Ok(Piece::Capture(Some(name.to_string()), re.to_string()));
    }
    Ok(Piece::Var(VarRef::parse(inner)?))
}

fn check_regex(re: &str) -> Result<(), String> {
    if re.is_empty() {
        return Err("empty capture regex".into());
    }
    Regex::new(re)
        .map(|_| ())
        .map_err(|e| format!("capture regex `{re}`: {e}"))
}

/// Escapes a variable's value (possibly not UTF-8) for a bytes regex; the
/// value matches case-sensitively.
fn escape_bytes(b: &[u8]) -> String {
    if let Ok(text) = std::str::from_utf8(b) {
        return format!("(?-i:{})", regex::escape(text));
    }
    let mut out = String::from("(?-i:");
    for &c in b {
        if c.is_ascii_alphanumeric() {
            out.push(c as char);
        } else {
            out.push_str(&format!("(?-u:\\x{c:02X})"));
        }
    }
    out.push(')');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, line: &str) -> Option<Vec<(String, Vec<u8>)>> {
        let mut v = Vars::default();
        v.set("tag", "a1");
        v.set("n", "4");
        Pattern::parse(p)
            .unwrap()
            .matches(line.as_bytes(), &v)
            .unwrap()
    }

    #[test]
    fn wildcards_prefix_and_untagged_marker() {
        assert!(m("250 *", "250 OK").is_some());
        assert!(m("250 *", "250-SIZE").is_none());
        assert!(m("* 3 EXISTS", "* 3 EXISTS").is_some());
        assert!(m("* 3 EXISTS", "a1 3 EXISTS").is_none());
        assert!(m("* * EXISTS", "* 12 EXISTS").is_some());
        assert!(m(r"a \* b", "a * b").is_some());
        assert!(m(r"a \* b", "a x b").is_none());
        assert!(m(r"* FLAGS (\Seen*", r"* FLAGS (\Seen \Deleted)").is_some());
    }

    #[test]
    fn case_insensitive_and_whole_line() {
        assert!(m("a1 OK*", "a1 ok done").is_some());
        assert!(m("a1 OK", "a1 OK done").is_none());
    }

    #[test]
    fn variables_and_captures() {
        assert!(m("${tag} OK*", "a1 OK").is_some());
        assert!(m("${tag} OK*", "a2 OK").is_none());
        assert!(m("${tag} OK*", "A1 OK").is_none());
        assert!(m("* ${n+1} EXISTS", "* 5 EXISTS").is_some());
        assert!(m("{${len:tag}}", "{2}").is_some());
        let caps = m(
            r"* OK [UIDVALIDITY ${uv:=\d+}]*",
            "* OK [UIDVALIDITY 1234] x",
        )
        .unwrap();
        assert_eq!(caps, vec![("uv".to_string(), b"1234".to_vec())]);
        assert!(m(r"${=25[01]} *", "251 x").is_some());
        assert!(m(r"${=25[01]} *", "252 x").is_none());
    }

    #[test]
    fn parse_errors() {
        assert!(Pattern::parse("${x:=(}").is_err());
        assert!(Pattern::parse("${x").is_err());
        assert!(Pattern::parse("${a b:=x}").is_err());
    }
}
