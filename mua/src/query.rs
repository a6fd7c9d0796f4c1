//! mua's search query language, translated to IMAP SEARCH keys (RFC 3501
//! §6.4.4). The server does the searching.
//!
//! ```text
//! word            TEXT word          (anywhere in headers or body)
//! "two words"     TEXT "two words"
//! from:x          FROM x             to:x TO x   cc:x CC x
//! subject:x       SUBJECT x          body:x BODY x
//! since:YYYY-MM-DD  SINCE d-Mon-yyyy before:DATE BEFORE   on:DATE ON
//! larger:N        LARGER N           smaller:N SMALLER N  (bytes)
//! unseen | unread UNSEEN             seen | read SEEN
//! flagged  unflagged  answered  unanswered  deleted  new  all
//! -term, not:term NOT term
//! a or b          OR a b
//! ```
//! Terms side by side must all match (AND). An empty query matches all.

use crate::imap::args::{literal_header, Wire};
use crate::imap::Arg;

/// The query-language summary shown by `mua search --help`.
pub const QUERY_HELP: &str = "\
Query language (terms are ANDed; the server searches):
  word  \"a phrase\"      text anywhere in the message
  from:X to:X cc:X     address fields contain X
  subject:X body:X     subject / body contains X
  since:YYYY-MM-DD before:YYYY-MM-DD on:YYYY-MM-DD
  larger:N smaller:N   size in bytes
  unseen unread seen read flagged unflagged answered unanswered deleted new all
  -TERM or not:TERM    negation;   A or B   either term";

/// Splits a query into terms, honouring double quotes (`subject:"a b"`).
fn tokens(q: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quote = false;
    let mut had = false;
    for c in q.chars() {
        match c {
            '"' => {
                in_quote = !in_quote;
                had = true;
            }
            c if c.is_whitespace() && !in_quote => {
                if had || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                had = false;
            }
            c => cur.push(c),
        }
    }
    if had || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// One term as SEARCH key arguments.
fn term(t: &str) -> Result<Vec<Arg>, String> {
    if let Some(rest) = t.strip_prefix('-').filter(|r| !r.is_empty()) {
        let mut v = vec![Arg::raw("NOT")];
        v.extend(term(rest)?);
        return Ok(v);
    }
    if let Some((key, val)) = t.split_once(':') {
        let k = key.to_ascii_lowercase();
        let s = |name: &str| Ok(vec![Arg::raw(name), Arg::str(val)]);
        let date = |name: &str| {
            crate::dates::imap_date(val)
                .map(|d| vec![Arg::raw(name), Arg::raw(d)])
                .ok_or_else(|| format!("bad date {val:?} (want YYYY-MM-DD)"))
        };
        let num = |name: &str| {
            val.parse::<u64>()
                .map(|n| vec![Arg::raw(name), Arg::raw(n.to_string())])
                .map_err(|_| format!("bad size {val:?} (want bytes)"))
        };
        match k.as_str() {
            "from" => return s("FROM"),
            "to" => return s("TO"),
            "cc" => return s("CC"),
            "bcc" => return s("BCC"),
            "subject" => return s("SUBJECT"),
            "body" => return s("BODY"),
            "text" => return s("TEXT"),
            "since" => return date("SINCE"),
            "before" => return date("BEFORE"),
            "on" => return date("ON"),
            "larger" => return num("LARGER"),
            "smaller" => return num("SMALLER"),
            "not" => {
                let mut v = vec![Arg::raw("NOT")];
                v.extend(term(val)?);
                return Ok(v);
            }
            _ => {} // not a known key: search the text as is (e.g. "re:")
        }
    }
    let flag = match t.to_ascii_lowercase().as_str() {
        "unseen" | "unread" => Some("UNSEEN"),
        "seen" | "read" => Some("SEEN"),
        "flagged" => Some("FLAGGED"),
        "unflagged" => Some("UNFLAGGED"),
        "answered" => Some("ANSWERED"),
        "unanswered" => Some("UNANSWERED"),
        "deleted" => Some("DELETED"),
        "new" => Some("NEW"),
        "all" => Some("ALL"),
        _ => None,
    };
    Ok(match flag {
        Some(f) => vec![Arg::raw(f)],
        None => vec![Arg::raw("TEXT"), Arg::str(t)],
    })
}

/// Translates a query into SEARCH criteria.
///
/// # Errors
/// A message naming the bad term (bad date, bad size, dangling `or`).
pub fn to_search(q: &str) -> Result<Vec<Arg>, String> {
    let toks = tokens(q);
    let mut groups: Vec<Vec<Arg>> = Vec::new();
    let mut pending_or = false;
    for t in &toks {
        if t.eq_ignore_ascii_case("or") {
            if groups.is_empty() || pending_or {
                return Err("`or` needs a term on each side".into());
            }
            pending_or = true;
            continue;
        }
        let keys = term(t)?;
        if pending_or {
            let left = groups.pop().unwrap_or_default();
            let mut v = vec![Arg::raw("OR")];
            v.extend(paren(left));
            v.extend(paren(keys));
            groups.push(v);
            pending_or = false;
        } else {
            groups.push(keys);
        }
    }
    if pending_or {
        return Err("`or` needs a term on each side".into());
    }
    if groups.is_empty() {
        return Ok(vec![Arg::raw("ALL")]);
    }
    Ok(groups.into_iter().flatten().collect())
}

/// Wraps a multi-key group in parentheses so OR sees one key.
fn paren(mut keys: Vec<Arg>) -> Vec<Arg> {
    if keys.len() <= 2 && !matches!(keys.first(), Some(Arg::Raw(r)) if r == "NOT" || r == "OR") {
        return keys;
    }
    if let Some(Arg::Raw(first)) = keys.first_mut() {
        first.insert(0, '(');
    } else {
        keys.insert(0, Arg::raw("("));
    }
    keys.push(Arg::raw(")"));
    keys
}

/// Renders criteria the way they go on the wire (for tests and `--trace`).
pub fn render(args: &[Arg]) -> String {
    let mut s = String::new();
    for a in args {
        let piece = match a.clone().into_wire() {
            Wire::Inline(s) => s,
            Wire::Literal(b) => literal_header(b.len(), false),
        };
        if !s.is_empty() && !s.ends_with('(') && piece != ")" {
            s.push(' ');
        }
        s.push_str(&piece);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> String {
        render(&to_search(s).unwrap())
    }

    #[test]
    fn words_become_text_keys() {
        assert_eq!(q("hello"), r#"TEXT "hello""#);
        assert_eq!(q("hello world"), r#"TEXT "hello" TEXT "world""#);
        assert_eq!(q(r#""hello world""#), r#"TEXT "hello world""#);
        assert_eq!(q(""), "ALL");
    }

    #[test]
    fn field_keys_and_flags() {
        assert_eq!(
            q("from:alice subject:lunch"),
            r#"FROM "alice" SUBJECT "lunch""#
        );
        assert_eq!(q(r#"subject:"team lunch""#), r#"SUBJECT "team lunch""#);
        assert_eq!(q("unseen"), "UNSEEN");
        assert_eq!(q("unread flagged"), "UNSEEN FLAGGED");
        assert_eq!(q("to:bob cc:carol"), r#"TO "bob" CC "carol""#);
        assert_eq!(q("larger:1000"), "LARGER 1000");
    }

    #[test]
    fn dates_are_converted() {
        assert_eq!(q("since:2024-01-31"), "SINCE 31-Jan-2024");
        assert_eq!(
            q("before:2024-12-01 on:2024-06-09"),
            "BEFORE 1-Dec-2024 ON 9-Jun-2024"
        );
        assert!(to_search("since:31/01/2024").is_err());
    }

    #[test]
    fn negation_and_or() {
        assert_eq!(q("-seen"), "NOT SEEN");
        assert_eq!(q("not:from:bob"), r#"NOT FROM "bob""#);
        assert_eq!(q("from:a or from:b"), r#"OR FROM "a" FROM "b""#);
        assert_eq!(q("unseen or -from:x"), r#"OR UNSEEN (NOT FROM "x")"#);
        assert!(to_search("or x").is_err());
        assert!(to_search("x or").is_err());
    }

    #[test]
    fn non_ascii_words_need_a_literal() {
        let args = to_search("grüße").unwrap();
        assert!(matches!(&args[1], Arg::Str(b) if b == "grüße".as_bytes()));
        assert_eq!(render(&args), "TEXT {7}");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "((-|not:)?(from|to|since|larger|subject|x)?:?[a-z0-9ü\"-]{0,6}| or ){0,8}") {
            if let Ok(args) = to_search(&s) {
                let _ = render(&args);
            }
        }
    }
}
