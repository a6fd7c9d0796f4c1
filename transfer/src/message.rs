//! What every format shares: line-ending conversion (the store keeps
//! messages as received, CRLF; mbox and Maildir files hold LF lines, as
//! Dovecot and mutt write them), keyword validity, and the asctime dates
//! of mbox `From ` lines.

use mailstore::date::{civil_from_days, days_from_civil};

/// `raw` with every bare LF made CRLF (a CR already before an LF is kept;
/// a lone CR stays as it is).
pub fn to_crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 32 + 2);
    let mut last = 0;
    for i in memchr::memchr_iter(b'\n', raw) {
        if i > 0 && raw[i - 1] == b'\r' {
            continue;
        }
        out.extend_from_slice(&raw[last..i]);
        out.extend_from_slice(b"\r\n");
        last = i + 1;
    }
    out.extend_from_slice(&raw[last..]);
    out
}

/// `raw` with every CRLF made LF (the file form).
pub fn to_lf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut last = 0;
    for i in memchr::memchr_iter(b'\n', raw) {
        if i > 0 && raw[i - 1] == b'\r' {
            out.extend_from_slice(&raw[last..i - 1]);
            out.push(b'\n');
            last = i + 1;
        }
    }
    out.extend_from_slice(&raw[last..]);
    out
}

/// Whether `kw` can be an IMAP keyword (RFC 3501 `flag-keyword` = `atom`:
/// no space, controls, `(){%*"\]`, and not a `\` system flag).
pub fn valid_keyword(kw: &str) -> bool {
    !kw.is_empty()
        && kw.len() <= 100
        && kw
            .bytes()
            .all(|b| b > b' ' && b < 0x7f && !b"(){%*\"\\]".contains(&b))
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];

/// Unix seconds as asctime in UTC, the date of an mbox `From ` line:
/// `Thu Dec  6 05:10:03 2026`.
pub fn asctime(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {y}",
        WEEKDAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize],
        d,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The date of an mbox `From ` line (the text after `From `), as unix
/// seconds: `sender Www Mmm dd hh:mm[:ss] [zone] yyyy [zone]`, the
/// weekday optional, a numeric zone applied. `None` when there is no
/// such date: then the line is not a separator (as mutt decides).
pub fn from_line_date(rest: &str) -> Option<i64> {
    let tokens: Vec<&str> = rest.split_ascii_whitespace().collect();
    // tokens[0] is the envelope sender.
    let at = (1..tokens.len()).find(|&i| month(tokens[i]).is_some())?;
    let m = month(tokens[at])?;
    let d: u32 = tokens
        .get(at + 1)?
        .parse()
        .ok()
        .filter(|d| (1..=31).contains(d))?;
    let mut hms = tokens.get(at + 2)?.split(':');
    let h: i64 = hms.next()?.parse().ok().filter(|h| *h < 24)?;
    let mi: i64 = hms.next()?.parse().ok().filter(|m| *m < 60)?;
    let s: i64 = match hms.next() {
        Some(s) => s.parse().ok().filter(|s| *s <= 60)?,
        None => 0,
    };
    let mut year = None;
    let mut zone = 0i64;
    for t in tokens.iter().skip(at + 3).take(3) {
        let b = t.as_bytes();
        if b.len() == 4 && b.iter().all(u8::is_ascii_digit) && year.is_none() {
            year = t.parse::<i32>().ok();
        } else if b.len() == 5 && (b[0] == b'+' || b[0] == b'-') {
            let n: i64 = t[1..].parse().ok()?;
            let off = (n / 100) * 3600 + (n % 100) * 60;
            zone = if b[0] == b'-' { -off } else { off };
        }
    }
    let days = days_from_civil(year?, m, d);
    Some(days * 86_400 + h * 3600 + mi * 60 + s - zone)
}

fn month(t: &str) -> Option<u32> {
    MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(t))
        .map(|i| i as u32 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_endings_convert_both_ways() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"a\nb\n", b"a\r\nb\r\n"),
            (b"a\r\nb\n", b"a\r\nb\r\n"),
            (b"\n", b"\r\n"),
            (b"no newline", b"no newline"),
            (b"lone\rcr\n", b"lone\rcr\r\n"),
        ];
        for (lf, crlf) in cases {
            assert_eq!(to_crlf(lf), *crlf);
        }
        assert_eq!(to_lf(b"a\r\nb\r\n"), b"a\nb\n");
        assert_eq!(to_lf(b"a\rb\n"), b"a\rb\n");
    }

    #[test]
    fn asctime_and_from_line_dates_agree() {
        assert_eq!(asctime(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(asctime(1_796_533_803), "Sun Dec  6 05:10:03 2026");
        for t in [0, 86_399, 951_782_400, 1_796_533_803] {
            assert_eq!(
                from_line_date(&format!("MAILER-DAEMON {}", asctime(t))),
                Some(t)
            );
        }
        let cases = [
            ("a@b Sat Jan  3 01:05:34 1996", Some(820_631_134)),
            ("a@b Jan 3 01:05:34 1996", Some(820_631_134)),
            ("a@b Sat Jan  3 01:05:34 +0100 1996", Some(820_627_534)),
            ("a@b Sat Jan  3 01:05:34 1996 -0030", Some(820_632_934)),
            ("a@b Sat Jan  3 01:05 1996", Some(820_631_100)),
            ("me, I like to talk", None),
            ("a@b Sat Jan 33 01:05:34 1996", None),
            ("a@b Sat Jan 3 01:05:34", None),
            ("", None),
        ];
        for (line, want) in cases {
            assert_eq!(from_line_date(line), want, "{line}");
        }
    }

    #[test]
    fn keywords_must_be_atoms() {
        for ok in ["$Forwarded", "Junk", "$label1", "a.b"] {
            assert!(valid_keyword(ok), "{ok}");
        }
        for bad in ["", "a b", "\\Seen", "(x", "x]", "t\u{e9}"] {
            assert!(!valid_keyword(bad), "{bad}");
        }
    }
}
