//! Base subject extraction (RFC 5256 §2.1), the key SORT SUBJECT and
//! both THREAD algorithms group by:
//!
//! ```text
//! subj-refwd   = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
//! subj-blob    = "[" *BLOBCHAR "]" *WSP
//! subj-leader  = (*subj-blob subj-refwd) / WSP
//! subj-trailer = "(fwd)" / WSP
//! subj-fwd-hdr = "[fwd:"      subj-fwd-trl = "]"
//! ```
//!
//! 1. encoded words are decoded (the store hands us UTF-8), tabs and line
//!    breaks become spaces, runs of spaces one space;
//! 2. trailers are removed, repeatedly;
//! 3. leaders are removed, 4. then a leading blob if text remains after it,
//!    5. repeating 3 and 4 while either matches;
//! 6. a `[fwd: ...]` wrapper is removed and we start again at 2.
//!
//! The result is compared with `i;ascii-casemap` (RFC 4790 §9.2), so the
//! key is returned with ASCII letters upper-cased. The subject is a reply
//! or forward (REFERENCES step 5) if a `subj-refwd`, a `(fwd)` trailer or
//! a `[fwd:` wrapper was removed, as Dovecot counts it.
//!
//! Cost: every step removes what it looked at, except a run of blobs not
//! followed by `re:`/`fw:`, which is removed in one go (step 4 would
//! remove the same blobs one per round), so the work is linear in the
//! subject's length (at most 64 KiB, the store's bound on a header value).

/// The base subject of `subject` as an `i;ascii-casemap` key, and whether
/// the subject is a reply or forward.
pub fn base_subject(subject: &str) -> (Vec<u8>, bool) {
    let mut s = normalize(subject);
    let mut reply = false;
    let mut start = 0usize;
    loop {
        // (2) trailers.
        loop {
            if s.len() > start && s.last() == Some(&b' ') {
                s.pop();
            } else if s.len() >= start + 5 && s[s.len() - 5..].eq_ignore_ascii_case(b"(fwd)") {
                s.truncate(s.len() - 5);
                reply = true;
            } else {
                break;
            }
        }
        // (3)-(5) leaders and blobs.
        loop {
            let t = &s[start..];
            if t.first() == Some(&b' ') {
                start += 1;
                continue;
            }
            let (blobs, after_blobs, last_blob) = blob_run(t);
            if let Some(n) = refwd(&t[after_blobs..]) {
                start += after_blobs + n;
                reply = true;
                continue;
            }
            if blobs > 0 {
                // (4): remove the blobs as long as text remains after them.
                let cut = if after_blobs < t.len() {
                    after_blobs
                } else {
                    last_blob
                };
                if cut > 0 {
                    start += cut;
                    continue;
                }
            }
            break;
        }
        // (6) `[fwd: ... ]`.
        let t = &s[start..];
        if t.len() >= 6 && t[..5].eq_ignore_ascii_case(b"[fwd:") && t.last() == Some(&b']') {
            s.pop();
            start += 5;
            reply = true;
            continue;
        }
        break;
    }
    let mut key = s.split_off(start);
    key.make_ascii_uppercase();
    (key, reply)
}

/// Step 1 after decoding: white space (tab, CR, LF, space) runs become
/// one space.
fn normalize(subject: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(subject.len());
    for &b in subject.as_bytes() {
        let b = match b {
            b'\t' | b'\r' | b'\n' => b' ',
            b => b,
        };
        if b == b' ' && out.last() == Some(&b' ') {
            continue;
        }
        out.push(b);
    }
    out
}

/// Length of a `subj-blob` at the start of `t` (trailing space included).
fn blob(t: &[u8]) -> Option<usize> {
    if t.first() != Some(&b'[') {
        return None;
    }
    let close = t[1..].iter().position(|&c| c == b'[' || c == b']')? + 1;
    if t[close] != b']' {
        return None;
    }
    let mut n = close + 1;
    if t.get(n) == Some(&b' ') {
        n += 1;
    }
    Some(n)
}

/// The blobs at the start of `t`: how many, where they end, and where the
/// last one starts.
fn blob_run(t: &[u8]) -> (usize, usize, usize) {
    let (mut count, mut end, mut last) = (0, 0, 0);
    while let Some(n) = blob(&t[end..]) {
        count += 1;
        last = end;
        end += n;
    }
    (count, end, last)
}

/// Length of a `subj-refwd` at the start of `t`.
fn refwd(t: &[u8]) -> Option<usize> {
    let lower = |i: usize| t.get(i).map(u8::to_ascii_lowercase);
    let mut n = match (lower(0), lower(1), lower(2)) {
        (Some(b'r'), Some(b'e'), _) => 2,
        (Some(b'f'), Some(b'w'), Some(b'd')) => 3,
        (Some(b'f'), Some(b'w'), _) => 2,
        _ => return None,
    };
    if t.get(n) == Some(&b' ') {
        n += 1;
    }
    if let Some(b) = blob(&t[n..]) {
        n += b;
    }
    (t.get(n) == Some(&b':')).then_some(n + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(s: &str) -> (String, bool) {
        let (k, r) = base_subject(s);
        (String::from_utf8_lossy(&k).into_owned(), r)
    }

    /// RFC 5256 §2.1, case by case (the subjects of imaptest's sort-subject).
    #[test]
    fn rfc_5256_base_subjects() {
        for (subject, want, reply) in [
            ("a", "A", false),
            ("", "", false),
            (" ", "", false),
            ("_", "_", false),
            ("[foo] Fwd: [bar] Re: fw: b (fWd)  (fwd)", "B", true),
            ("b (a)", "B (A)", false),
            ("Re: [FWD: c]", "C", true),
            ("[xyz]", "[XYZ]", false),
            ("[xyz] [abc]", "[ABC]", false),
            ("[xyz] hello", "HELLO", false),
            ("RE: C", "C", true),
            ("Ad: Re: Ad: Re: Ad: x", "AD: RE: AD: RE: AD: X", false),
            ("re: [fwd: [fwd: re: [fwd: babylon]]]", "BABYLON", true),
            ("Re[2]: tabs\tand\r\n  folds", "TABS AND FOLDS", true),
            ("fwd:fw:re :x", "X", true),
            ("Re:", "", true),
            ("[fwd: ]", "", true),
            // Only ASCII letters are case-mapped (i;ascii-casemap).
            ("R\u{e9}: caf\u{e9}", "R\u{e9}: CAF\u{e9}", false),
        ] {
            assert_eq!(base(subject), (want.to_owned(), reply), "{subject:?}");
        }
    }

    #[test]
    fn hostile_subjects_cost_linear_time() {
        let many_blobs = "[a] ".repeat(16_000) + "x";
        assert_eq!(base(&many_blobs), ("X".into(), false));
        let all_blobs = "[a]".repeat(20_000);
        assert_eq!(base(&all_blobs), ("[A]".into(), false));
        let nested = "[fwd: ".repeat(10_000) + "y" + &"]".repeat(10_000);
        assert_eq!(base(&nested), ("Y".into(), true));
        let unclosed = "[".repeat(60_000);
        assert_eq!(base(&unclosed).0.len(), 60_000);
        let leaders = "re: ".repeat(16_000) + "z";
        assert_eq!(base(&leaders), ("Z".into(), true));
    }
}
