//! Streaming Content-Transfer-Encoding decoders (RFC 2045 §6) for BINARY
//! (RFC 3516) and URLFETCH's BINARY (RFC 5524).
//!
//! A [`Decoder`] is fed the encoded body in pieces of any size and appends
//! the decoded octets to an output buffer; what it carries between pieces
//! is bounded (at most three base64 characters, or one incomplete
//! quoted-printable line of at most [`MAX_QP_CARRY`] octets), so a part of
//! any size is decoded in fixed memory, one chunk at a time.
//!
//! - base64 (§6.8) uses the `base64` crate on the characters of the
//!   alphabet; every other character is ignored ("Any characters outside
//!   of the base64 alphabet are to be ignored"), and `=` ends a group, so
//!   concatenated encodings decode too.
//! - quoted-printable (§6.7) is decoded line by line: trailing white space
//!   is deleted (rule 3), a line ending in `=` is a soft line break
//!   (rule 5), `=XX` is an octet (hex digits of either case), a `=` not
//!   followed by two hex digits is kept as it is, and 8-bit octets pass
//!   through (robustness, as Dovecot). Hard line breaks decode to CRLF.

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;

/// Longest quoted-printable line carried between pieces; a longer "line"
/// (no line break for this long: not quoted-printable as RFC 2045 knows it,
/// whose lines are at most 76 characters) is decoded as far as it goes.
pub const MAX_QP_CARRY: usize = 64 * 1024;

/// A content transfer encoding we can undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cte {
    /// `7bit`, `8bit`, `binary` (or none): the octets are the content.
    Identity,
    /// `base64`
    Base64,
    /// `quoted-printable`
    QuotedPrintable,
}

impl Cte {
    /// The encoding named by a (lowercased) `Content-Transfer-Encoding`
    /// value; `None` for one we do not know (RFC 3516 §4.3: `UNKNOWN-CTE`).
    pub fn from_name(name: &str) -> Option<Cte> {
        match name.trim().to_ascii_lowercase().as_str() {
            "" | "7bit" | "8bit" | "binary" => Some(Cte::Identity),
            "base64" => Some(Cte::Base64),
            "quoted-printable" => Some(Cte::QuotedPrintable),
            _ => None,
        }
    }
}

/// A decoder in the middle of a body. See the module docs.
#[derive(Debug, Clone)]
pub struct Decoder {
    cte: Cte,
    /// base64: alphabet characters of an incomplete group (< 4);
    /// quoted-printable: the incomplete last line.
    carry: Vec<u8>,
}

fn engine() -> GeneralPurpose {
    GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::RequireNone)
            .with_decode_allow_trailing_bits(true),
    )
}

fn is_b64(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'+' || c == b'/'
}

impl Decoder {
    /// A decoder at the start of a body.
    pub fn new(cte: Cte) -> Decoder {
        Decoder {
            cte,
            carry: Vec::new(),
        }
    }

    /// Octets carried between pieces (bounded: see the module docs).
    pub fn carried(&self) -> usize {
        self.carry.len()
    }

    /// Decode the next piece of the body onto `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        match self.cte {
            Cte::Identity => out.extend_from_slice(input),
            Cte::Base64 => self.feed_base64(input, out),
            Cte::QuotedPrintable => self.feed_qp(input, out),
        }
    }

    /// The body ended: decode what is carried.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        match self.cte {
            Cte::Identity => {}
            Cte::Base64 => flush_b64(&mut self.carry, out, true),
            Cte::QuotedPrintable => {
                let line = std::mem::take(&mut self.carry);
                qp_line(&line, false, out);
            }
        }
    }

    fn feed_base64(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &c in input {
            if is_b64(c) {
                self.carry.push(c);
                // Decode in runs of 4 KiB characters, keeping whole groups.
                if self.carry.len() >= 4096 {
                    flush_b64(&mut self.carry, out, false);
                }
            } else if c == b'=' {
                flush_b64(&mut self.carry, out, true);
            }
        }
        flush_b64(&mut self.carry, out, false);
    }

    fn feed_qp(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        while let Some(nl) = memchr_lf(input) {
            let (line, rest) = input.split_at(nl);
            input = &rest[1..];
            if self.carry.is_empty() {
                qp_line(line, true, out);
            } else {
                self.carry.extend_from_slice(line);
                let whole = std::mem::take(&mut self.carry);
                qp_line(&whole, true, out);
            }
        }
        self.carry.extend_from_slice(input);
        if self.carry.len() > MAX_QP_CARRY {
            // No line break in sight: decode what we have; a soft break
            // or an `=XX` cut here costs at most a few octets of fidelity
            // in input that is not quoted-printable anyway.
            let line = std::mem::take(&mut self.carry);
            qp_line(&line, false, out);
        }
    }
}

fn memchr_lf(s: &[u8]) -> Option<usize> {
    s.iter().position(|&b| b == b'\n')
}

/// Decode the whole groups of `carry` (all of it when `end`: a final group
/// of 2 or 3 characters is a partial group; a lone character carries no
/// whole octet and is dropped).
fn flush_b64(carry: &mut Vec<u8>, out: &mut Vec<u8>, end: bool) {
    let mut n = carry.len() - carry.len() % 4;
    if end {
        n = if carry.len() % 4 == 1 {
            carry.len() - 1
        } else {
            carry.len()
        };
    }
    if n > 0 {
        // Only alphabet characters and no lone trailing character: cannot fail.
        if engine().decode_vec(&carry[..n], out).is_err() {
            log::debug!("base64: undecodable group skipped");
        }
    }
    if end {
        carry.clear();
    } else {
        carry.drain(..n);
    }
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Decode one quoted-printable line (without its LF); `hard` if a line
/// break followed it in the input.
fn qp_line(line: &[u8], hard: bool, out: &mut Vec<u8>) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b' ' | b'\t') {
        end -= 1;
    }
    let line = &line[..end];
    let mut soft = false;
    let mut i = 0;
    while i < line.len() {
        let c = line[i];
        if c == b'=' {
            if i + 1 == line.len() {
                soft = true;
                break;
            }
            let pair = line.get(i + 1..i + 3).unwrap_or(&[]);
            if let [h, l] = *pair {
                if let (Some(h), Some(l)) = (hex(h), hex(l)) {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
            }
            // Not `=XX`: kept as it is, with what follows (as the
            // `quoted_printable` crate's robust mode does).
            let end = (i + 3).min(line.len());
            out.extend_from_slice(&line[i..end]);
            i = end;
            continue;
        }
        out.push(c);
        i += 1;
    }
    if hard && !soft {
        out.extend_from_slice(b"\r\n");
    }
}

/// Decode a whole body at once (small parts).
pub fn decode_all(cte: Cte, input: &[u8]) -> Vec<u8> {
    let mut d = Decoder::new(cte);
    let mut out = Vec::with_capacity(input.len());
    d.feed(input, &mut out);
    d.finish(&mut out);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn chunked(cte: Cte, input: &[u8], cut: usize) -> Vec<u8> {
        let mut d = Decoder::new(cte);
        let mut out = Vec::new();
        for c in input.chunks(cut.max(1)) {
            d.feed(c, &mut out);
        }
        d.finish(&mut out);
        out
    }

    #[test]
    fn base64_ignores_white_space_and_other_characters() {
        // The parts of imaptest's fetch-binary-mime-base64 (RFC 2045 §6.8).
        assert_eq!(
            decode_all(Cte::Base64, b"aGVs\r\nbG8gd29y\r\nbGQ=\r\n"),
            b"hello world"
        );
        assert_eq!(
            decode_all(
                Cte::Base64,
                b"  aGVs    \r\n bG8g  \r\n   d29y  \t \r\n    bGQ= \r\n\r\n"
            ),
            b"hello world"
        );
        assert_eq!(
            decode_all(Cte::Base64, b"aGVsbG8g\r\ndG8geW91IHRv\r\nbw==\r\n"),
            b"hello to you too"
        );
        assert_eq!(decode_all(Cte::Base64, b"aGk=aGk="), b"hihi");
        assert_eq!(decode_all(Cte::Base64, b"a"), b"");
        assert_eq!(decode_all(Cte::Base64, b"!!**"), b"");
    }

    #[test]
    fn quoted_printable_follows_rfc_2045_rules() {
        let body = b"hello  \r\nbar=\r\n\r\nfoo\t=\r\nbar\r\nfoo\t \t= \r\n=62\r\nfoo = \t\r\nbar\r\nfoo =\r\n=62\r\nfoo  \r\nbar=\r\n\r\nfoo_bar\r\n";
        let want = b"hello\r\nbar\r\nfoo\tbar\r\nfoo\t \tb\r\nfoo bar\r\nfoo b\r\nfoo\r\nbar\r\nfoo_bar\r\n";
        assert_eq!(decode_all(Cte::QuotedPrintable, body), want.to_vec());
        assert_eq!(want.len(), 65);
        assert_eq!(
            decode_all(Cte::QuotedPrintable, b"a=3Db=3d=ZZ=\xe4"),
            b"a=b==ZZ=\xe4".to_vec()
        );
        assert_eq!(decode_all(Cte::QuotedPrintable, b"x=\r\n"), b"x".to_vec());
    }

    proptest::proptest! {
        /// Feeding in pieces of any size gives what feeding at once gives.
        #[test]
        fn chunking_does_not_change_the_result(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
            cut in 1usize..40,
        ) {
            for cte in [Cte::Base64, Cte::QuotedPrintable, Cte::Identity] {
                proptest::prop_assert_eq!(chunked(cte, &bytes, cut), decode_all(cte, &bytes));
            }
        }

        /// On 7-bit input our quoted-printable decoder agrees with the
        /// `quoted_printable` crate (which drops 8-bit octets; we keep them).
        #[test]
        fn quoted_printable_agrees_with_the_crate(s in "[a-f0-9A-F= \t\n]{0,200}") {
            let s = s.replace('\n', "\r\n");
            let want = quoted_printable::decode(s.as_bytes(), quoted_printable::ParseMode::Robust)
                .unwrap_or_default();
            proptest::prop_assert_eq!(decode_all(Cte::QuotedPrintable, s.as_bytes()), want);
        }

        /// Our base64 undoes the crate's encoding with line breaks anywhere.
        #[test]
        fn base64_round_trips(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
            width in 1usize..80,
        ) {
            let enc = base64::engine::general_purpose::STANDARD.encode(&data);
            let wrapped: Vec<u8> = enc.as_bytes().chunks(width).flat_map(|l| l.iter().copied().chain(*b"\r\n")).collect();
            proptest::prop_assert_eq!(chunked(Cte::Base64, &wrapped, 7), data);
        }
    }
}
