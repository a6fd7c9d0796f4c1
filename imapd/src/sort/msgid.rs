//! Message IDs as REFERENCES threading compares them (RFC 5256 §3: "MUST
//! normalize any msg-id in order to avoid false non-matches due to
//! differences in quoting"): `<"01KF8JCEOCBS0045PS"@xxx.yyy.com>` and
//! `<01KF8JCEOCBS0045PS@xxx.yyy.com>` are the same ID. Inside the angle
//! brackets quoting, comments and white space (RFC 5322 §3.6.4's obsolete
//! forms) are dropped; outside them everything is skipped, so comments and
//! stray words between IDs do no harm. An ID without `@` or with an empty
//! side is not valid and is left out. One pass, linear in the value.

/// Skip a comment starting at `b[i] == '('`; returns the index after it.
fn skip_comment(b: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    b.len()
}

/// The valid msg-ids in `value`, normalized, in order.
pub fn msg_ids(value: &str) -> Vec<String> {
    let b = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'(' => i = skip_comment(b, i),
            b'<' => {
                let (id, next) = bracketed(b, i + 1);
                if let Some(id) = id {
                    out.push(id);
                }
                i = next;
            }
            _ => i += 1,
        }
    }
    out
}

/// The first valid msg-id in `value`.
pub fn first_msg_id(value: &str) -> Option<String> {
    msg_ids(value).into_iter().next()
}

/// Read the inside of `<...>` from `i` (just after `<`): the normalized
/// ID if valid, and where to go on (after `>`, or at a `<` that starts
/// another ID).
fn bracketed(b: &[u8], mut i: usize) -> (Option<String>, usize) {
    let mut id: Vec<u8> = Vec::new();
    let mut quoted = false;
    while i < b.len() {
        let c = b[i];
        if quoted {
            match c {
                b'"' => quoted = false,
                b'\\' if i + 1 < b.len() => {
                    i += 1;
                    id.push(b[i]);
                }
                _ => id.push(c),
            }
            i += 1;
            continue;
        }
        match c {
            b'"' => quoted = true,
            b'(' => {
                i = skip_comment(b, i);
                continue;
            }
            b' ' | b'\t' | b'\r' | b'\n' => {}
            b'<' => return (None, i),
            b'>' => return (valid(id), i + 1),
            _ => id.push(c),
        }
        i += 1;
    }
    (None, i)
}

fn valid(id: Vec<u8>) -> Option<String> {
    let at = id.iter().rposition(|&c| c == b'@')?;
    if at == 0 || at + 1 == id.len() {
        return None;
    }
    String::from_utf8(id).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_comments_and_junk_are_normalized_away() {
        assert_eq!(
            msg_ids("<\"01KF8JCEOCBS0045PS\"@xxx.yyy.com>"),
            ["01KF8JCEOCBS0045PS@xxx.yyy.com"]
        );
        assert_eq!(
            msg_ids("(c <x@y>) <a@b>\r\n\t<c (note) @ d> junk <\"q\\\"t\"@e>"),
            ["a@b", "c@d", "q\"t@e"]
        );
        assert_eq!(msg_ids("<no-at> <@x> <y@> <<a@b> <unclosed@x"), ["a@b"]);
        assert_eq!(first_msg_id("  <1@b>  <2@b>"), Some("1@b".into()));
        assert_eq!(first_msg_id("nothing"), None);
        // Case is kept: RFC 5256 compares IDs case-sensitively.
        assert_eq!(msg_ids("<A@B>"), ["A@B"]);
    }
}
