//! Modified UTF-7 mailbox names (RFC 3501 §5.1.3).
//!
//! Printable US-ASCII except `&` stands for itself; `&` is written `&-`;
//! everything else is UTF-16BE in a modified BASE64 (`,` instead of `/`, no
//! padding) between `&` and `-`. Names are UTF-8 `String`s everywhere inside
//! the server; these two functions convert at the wire.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/// Why a wire mailbox name could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Utf7Error {
    /// `&` without a closing `-`.
    #[error("unterminated &...- sequence in mailbox name")]
    Unterminated,
    /// A byte outside the modified BASE64 alphabet, or bad padding bits.
    #[error("invalid modified BASE64 in mailbox name")]
    BadBase64,
    /// The UTF-16 inside was not valid (odd length, lone surrogate).
    #[error("invalid UTF-16 in mailbox name")]
    BadUtf16,
    /// The name held bytes that are neither ASCII nor valid UTF-8.
    #[error("mailbox name is not valid UTF-8")]
    BadUtf8,
}

fn b64_value(c: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == c).map(|p| p as u32)
}

/// Decode a wire mailbox name to UTF-8.
///
/// Raw UTF-8 bytes outside `&...-` are accepted as such (some clients send
/// them), which is lenient but unambiguous.
///
/// # Errors
/// [`Utf7Error`] when the encoding is malformed.
pub fn decode(wire: &[u8]) -> Result<String, Utf7Error> {
    let mut out = String::with_capacity(wire.len());
    let mut i = 0;
    while i < wire.len() {
        let c = wire[i];
        if c != b'&' {
            // Copy a run of non-'&' bytes, validating it as UTF-8.
            let end = wire[i..]
                .iter()
                .position(|&b| b == b'&')
                .map_or(wire.len(), |p| i + p);
            let s = std::str::from_utf8(&wire[i..end]).map_err(|_| Utf7Error::BadUtf8)?;
            out.push_str(s);
            i = end;
            continue;
        }
        let close = wire[i + 1..]
            .iter()
            .position(|&b| b == b'-')
            .ok_or(Utf7Error::Unterminated)?;
        let seg = &wire[i + 1..i + 1 + close];
        i += close + 2;
        if seg.is_empty() {
            out.push('&');
            continue;
        }
        let mut bits: u32 = 0;
        let mut nbits = 0;
        let mut units = Vec::new();
        let mut bytes = Vec::new();
        for &b in seg {
            let v = b64_value(b).ok_or(Utf7Error::BadBase64)?;
            bits = (bits << 6) | v;
            nbits += 6;
            if nbits >= 8 {
                nbits -= 8;
                bytes.push(((bits >> nbits) & 0xff) as u8);
            }
        }
        // Leftover bits must be zero padding (fewer than 6 of them).
        if nbits >= 6 || bits & ((1 << nbits) - 1) != 0 {
            return Err(Utf7Error::BadBase64);
        }
        if bytes.len() % 2 != 0 {
            return Err(Utf7Error::BadUtf16);
        }
        for pair in bytes.chunks(2) {
            units.push(u16::from_be_bytes([pair[0], pair[1]]));
        }
        let s = String::from_utf16(&units).map_err(|_| Utf7Error::BadUtf16)?;
        // A shifted run must not encode plain printable ASCII (RFC 3501).
        if s.chars().any(|ch| (' '..='~').contains(&ch)) {
            return Err(Utf7Error::BadBase64);
        }
        out.push_str(&s);
    }
    Ok(out)
}

/// Encode a UTF-8 mailbox name for the wire.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    for ch in name.chars() {
        if (' '..='~').contains(&ch) {
            flush(&mut pending, &mut out);
            if ch == '&' {
                out.push_str("&-");
            } else {
                out.push(ch);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(ch.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

fn flush(units: &mut Vec<u16>, out: &mut String) {
    if units.is_empty() {
        return;
    }
    out.push('&');
    let bytes: Vec<u8> = units.iter().flat_map(|u| u.to_be_bytes()).collect();
    let mut bits: u32 = 0;
    let mut nbits = 0;
    for b in bytes {
        bits = (bits << 8) | u32::from(b);
        nbits += 8;
        while nbits >= 6 {
            nbits -= 6;
            out.push(ALPHABET[((bits >> nbits) & 0x3f) as usize] as char);
        }
    }
    if nbits > 0 {
        out.push(ALPHABET[((bits << (6 - nbits)) & 0x3f) as usize] as char);
    }
    out.push('-');
    units.clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc_examples_and_edge_cases_decode() {
        let table: &[(&str, &str)] = &[
            ("INBOX", "INBOX"),
            ("~peter/mail/&U,BTFw-/&ZeVnLIqe-", "~peter/mail/台北/日本語"),
            ("&-", "&"),
            ("Tom &- Jerry", "Tom & Jerry"),
            ("Entw&APw-rfe", "Entwürfe"),
            ("&2D3eAA-", "😀"),
        ];
        for (wire, name) in table {
            assert_eq!(decode(wire.as_bytes()).as_deref(), Ok(*name), "{wire}");
            assert_eq!(encode(name), *wire, "{name}");
        }
    }

    #[test]
    fn malformed_names_are_rejected() {
        assert_eq!(decode(b"&U,BTFw"), Err(Utf7Error::Unterminated));
        assert_eq!(decode(b"&!!-"), Err(Utf7Error::BadBase64));
        assert_eq!(decode(b"&AGE-"), Err(Utf7Error::BadBase64)); // encodes 'a'
        assert_eq!(decode(b"&2D0-"), Err(Utf7Error::BadUtf16));
        assert_eq!(decode(b"\xff"), Err(Utf7Error::BadUtf8));
    }

    proptest! {
        #[test]
        fn encode_then_decode_is_identity(s in "\\PC{0,20}") {
            prop_assert_eq!(decode(encode(&s).as_bytes()), Ok(s.clone()));
            prop_assert!(encode(&s).bytes().all(|b| (0x20..0x7f).contains(&b)));
        }
    }
}
