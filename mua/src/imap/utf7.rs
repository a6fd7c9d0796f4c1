//! Modified UTF-7 for IMAP mailbox names (RFC 3501 §5.1.3).
//!
//! Printable ASCII except `&` stands for itself, `&` is written `&-`, and any
//! other run of characters is UTF-16BE in modified base64 (`,` for `/`, no
//! padding) between `&` and `-`.

use base64::alphabet::Alphabet;
use base64::engine::{GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

fn engine() -> Option<GeneralPurpose> {
    let alphabet =
        Alphabet::new("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").ok()?;
    let config = GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent);
    Some(GeneralPurpose::new(&alphabet, config))
}

/// Encodes a Unicode mailbox name for the wire.
pub fn encode(name: &str) -> String {
    let Some(eng) = engine() else {
        return name.to_string();
    };
    let mut out = String::new();
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        out.push_str(&eng.encode(bytes));
        out.push('-');
        pending.clear();
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// Decodes a wire mailbox name; malformed input is returned unchanged.
pub fn decode(name: &str) -> String {
    decode_strict(name).unwrap_or_else(|| name.to_string())
}

fn decode_strict(name: &str) -> Option<String> {
    let eng = engine()?;
    let mut out = String::new();
    let mut rest = name;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let dash = after.find('-')?;
        let b64 = &after[..dash];
        if b64.is_empty() {
            out.push('&');
        } else {
            let bytes = eng.decode(b64).ok()?;
            if bytes.len() % 2 != 0 {
                return None;
            }
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            out.push_str(&String::from_utf16(&units).ok()?);
        }
        rest = &after[dash + 1..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3501_example_round_trips() {
        // RFC 3501 §5.1.3: "~peter/mail/台北/日本語"
        let wire = "~peter/mail/&U,BTFw-/&ZeVnLIqe-";
        assert_eq!(decode(wire), "~peter/mail/台北/日本語");
        assert_eq!(encode("~peter/mail/台北/日本語"), wire);
    }

    #[test]
    fn ampersand_and_plain_ascii() {
        assert_eq!(encode("R&D"), "R&-D");
        assert_eq!(decode("R&-D"), "R&D");
        assert_eq!(encode("INBOX"), "INBOX");
        assert_eq!(decode("Entw&APw-rfe"), "Entwürfe");
        assert_eq!(encode("Entwürfe"), "Entw&APw-rfe");
    }

    #[test]
    fn malformed_names_are_left_alone() {
        assert_eq!(decode("bad&name"), "bad&name");
    }
}
