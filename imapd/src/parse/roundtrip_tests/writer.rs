//! The lexical half of the test-only IMAP command serializer: strings
//! (atom, quoted, literal, LITERAL+), modified UTF-7 mailbox names
//! (RFC 3501 §5.1.3), flags, sequence sets, `date` and `date-time`
//! (RFC 3501 §9), each spelled in one of the ways the grammar allows.

use crate::command::*;

/// Spelling choices for the serializer, drawn from random bits.
pub(super) struct W {
    pub(super) out: Vec<u8>,
    pub(super) bits: u64,
}

impl W {
    pub(super) fn flip(&mut self) -> bool {
        // xorshift64
        self.bits ^= self.bits << 13;
        self.bits ^= self.bits >> 7;
        self.bits ^= self.bits << 17;
        self.bits & 1 == 1
    }

    pub(super) fn raw(&mut self, s: &str) -> &mut Self {
        self.out.extend_from_slice(s.as_bytes());
        self
    }

    /// A case-insensitive name in a random mix of cases.
    pub(super) fn name(&mut self, s: &str) -> &mut Self {
        for c in s.chars() {
            let c = if self.flip() {
                c.to_ascii_lowercase()
            } else {
                c.to_ascii_uppercase()
            };
            self.out.extend_from_slice(c.to_string().as_bytes());
        }
        self
    }

    /// `string = quoted / literal` (synchronizing or LITERAL+).
    pub(super) fn string(&mut self, s: &[u8]) -> &mut Self {
        if s.contains(&b'\r') || s.contains(&b'\n') || self.flip() {
            let plus = if self.flip() { "+" } else { "" };
            self.raw(&format!("{{{}{plus}}}\r\n", s.len()));
            self.out.extend_from_slice(s);
        } else {
            self.out.push(b'"');
            for &b in s {
                if b == b'"' || b == b'\\' {
                    self.out.push(b'\\');
                }
                self.out.push(b);
            }
            self.out.push(b'"');
        }
        self
    }

    /// `astring = 1*ASTRING-CHAR / string`
    pub(super) fn astring(&mut self, s: &[u8]) -> &mut Self {
        if !s.is_empty() && s.iter().all(|&b| is_atom_char(b) || b == b']') && self.flip() {
            self.out.extend_from_slice(s);
            self
        } else {
            self.string(s)
        }
    }

    /// A mailbox name: modified UTF-7 (RFC 3501 §5.1.3) or, as some
    /// clients send, raw UTF-8 with only `&` escaped.
    pub(super) fn mailbox(&mut self, name: &str) -> &mut Self {
        let wire = if self.flip() {
            utf7(name)
        } else {
            name.replace('&', "&-")
        };
        self.astring(wire.as_bytes())
    }

    /// `list-mailbox = 1*list-char / string`
    pub(super) fn list_mailbox(&mut self, name: &str) -> &mut Self {
        let wire = utf7(name);
        let list_char = |b: u8| is_atom_char(b) || matches!(b, b'%' | b'*' | b']');
        if !wire.is_empty() && wire.bytes().all(list_char) && self.flip() {
            self.raw(&wire)
        } else {
            self.string(wire.as_bytes())
        }
    }

    pub(super) fn flag(&mut self, f: &str) -> &mut Self {
        if SYSTEM_FLAGS.contains(&f) {
            self.raw("\\").name(&f[1..])
        } else {
            self.raw(f)
        }
    }

    pub(super) fn flags(&mut self, flags: &[Flag]) -> &mut Self {
        self.raw("(");
        for (n, f) in flags.iter().enumerate() {
            if n > 0 {
                self.raw(" ");
            }
            self.flag(f);
        }
        self.raw(")")
    }

    pub(super) fn set(&mut self, s: &SequenceSet) -> &mut Self {
        if s.is_saved() {
            return self.raw("$");
        }
        let n = |x: &SeqNum| match x {
            SeqNum::Value(v) => v.to_string(),
            SeqNum::Star => "*".into(),
        };
        let text: Vec<String> =
            s.0.iter()
                .map(|r| {
                    if r.start == r.end {
                        n(&r.start)
                    } else {
                        format!("{}:{}", n(&r.start), n(&r.end))
                    }
                })
                .collect();
        self.raw(&text.join(","))
    }

    /// `date = date-text / DQUOTE date-text DQUOTE`
    pub(super) fn date(&mut self, d: &Date) -> &mut Self {
        let q = if self.flip() { "\"" } else { "" };
        let day = if d.day < 10 && self.flip() {
            format!("0{}", d.day)
        } else {
            d.day.to_string()
        };
        self.raw(&format!("{q}{day}-"))
            .name(MONTHS[d.month as usize - 1])
            .raw(&format!("-{:04}{q}", d.year))
    }

    /// `date-time` (RFC 3501 §9), from the moment and its zone.
    pub(super) fn date_time(&mut self, t: &DateTime) -> &mut Self {
        let local = t.unix + i64::from(t.offset_minutes) * 60;
        let (y, m, d) = civil_from_days(local.div_euclid(86_400));
        let s = local.rem_euclid(86_400);
        let day = match (d < 10, self.flip()) {
            (true, true) => format!(" {d}"),
            _ => format!("{d:02}"),
        };
        let sign = match t.offset_minutes {
            o if o < 0 => "-",
            0 if self.flip() => "-",
            _ => "+",
        };
        let o = t.offset_minutes.unsigned_abs();
        self.raw(&format!("\"{day}-"))
            .name(MONTHS[m as usize - 1])
            .raw(&format!(
                "-{y:04} {:02}:{:02}:{:02} {sign}{:02}{:02}\"",
                s / 3600,
                s / 60 % 60,
                s % 60,
                o / 60,
                o % 60
            ))
    }
}

pub(super) const SYSTEM_FLAGS: [&str; 6] = [
    "\\Answered",
    "\\Flagged",
    "\\Deleted",
    "\\Seen",
    "\\Draft",
    "\\Recent",
];

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `ATOM-CHAR`: any CHAR except atom-specials (RFC 3501 §9).
fn is_atom_char(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !b"(){%*\"\\]".contains(&b)
}

/// Modified UTF-7 (RFC 3501 §5.1.3), written here independently of
/// `crate::utf7`.
pub(super) fn utf7(name: &str) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";
    fn flush(units: &mut Vec<u16>, out: &mut String) {
        if units.is_empty() {
            return;
        }
        let bytes: Vec<u8> = units.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().fold(0u32, |acc, &b| acc << 8 | u32::from(b))
                << (8 * (3 - chunk.len()));
            for k in 0..=chunk.len() {
                out.push(char::from(B64[(n >> (18 - 6 * k) & 63) as usize]));
            }
        }
        out.push('-');
        units.clear();
    }
    let mut out = String::new();
    let mut units = Vec::new();
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut units, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            units.extend_from_slice(c.encode_utf16(&mut [0; 2]));
        }
    }
    flush(&mut units, &mut out);
    out
}

use mailstore::date::civil_from_days;

/// What `mailbox` makes of a name: any-case INBOX is `INBOX` (§5.1).
pub(super) fn inbox(name: String) -> String {
    let b = name.as_bytes();
    if b.len() >= 5 && b[..5].eq_ignore_ascii_case(b"INBOX") && (b.len() == 5 || b[5] == b'/') {
        format!("INBOX{}", &name[5..])
    } else {
        name
    }
}
