//! Small encoders and checks for what goes on a command line: envelope
//! addresses, xtext (RFC 3461 §4), base64 for AUTH (RFC 4954).

/// An envelope address must not break the command line it goes into.
pub(super) fn check_path(addr: &str) -> Result<(), &'static str> {
    if addr.len() > 1000 {
        return Err("too long");
    }
    if addr
        .bytes()
        .any(|b| b.is_ascii_control() || b == b' ' || b == b'<' || b == b'>')
    {
        return Err("contains a space, angle bracket or control character");
    }
    Ok(())
}

/// Our HELO name likewise.
pub(super) fn check_text(text: &str) -> Result<(), &'static str> {
    if text.is_empty() {
        return Err("empty");
    }
    if text.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err("contains a space or control character");
    }
    Ok(())
}

/// RFC 3461 §4 xtext: `+` followed by two upper-case hex digits for `+`,
/// `=`, and bytes outside `!`..`~`.
pub(super) fn xtext(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if (b'!'..=b'~').contains(&byte) && byte != b'+' && byte != b'=' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("+{byte:02X}"));
        }
    }
    out
}

pub(super) fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        assert_eq!(xtext("a+b=c d"), "a+2Bb+3Dc+20d");
        assert_eq!(base64(b"\0user\0pass"), "AHVzZXIAcGFzcw==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
        assert_eq!(base64(b""), "");
    }

    #[test]
    fn paths() {
        assert!(check_path("a@b").is_ok());
        assert!(check_path("").is_ok());
        assert!(check_path("a@b> X").is_err());
        assert!(check_path("a@b\r\nRCPT").is_err());
    }
}
