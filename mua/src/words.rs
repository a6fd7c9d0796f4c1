//! Header text for the wire (RFC 2047 §5(1)): only the words that need it
//! become encoded words, as Python's email package and mutt write them, so
//! the ASCII words of a Subject stay readable and greppable in the raw
//! message (`Re: =?utf-8?q?Gr=C3=BC=C3=9Fe?= from the team`). Adjacent
//! words that need encoding share one encoded word (the space between them
//! goes inside as `_`, because white space between two encoded words is
//! not part of the text, §6.2). mail-builder folds the result.

/// The longest encoded word (RFC 2047 §2).
const MAX_WORD: usize = 75;
/// `=?utf-8?q?` + `?=`.
const OVERHEAD: usize = "=?utf-8?q??=".len();

/// Whether `word` can stand as is in an unstructured header: printable
/// ASCII and not something a reader would take for an encoded word.
fn plain(word: &str) -> bool {
    word.bytes().all(|b| (0x21..0x7f).contains(&b))
        && !(word.starts_with("=?") && word.ends_with("?="))
}

/// `text` with the words that need it as Q-encoded UTF-8 encoded words.
pub fn encode_unstructured(text: &str) -> String {
    let words: Vec<&str> = text.split(' ').collect();
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    let mut k = 0;
    while k < words.len() {
        if plain(words[k]) || words[k].is_empty() {
            out.push(words[k].to_owned());
            k += 1;
            continue;
        }
        // A run of words that need encoding (empty words between them
        // are the extra spaces of the run).
        let start = k;
        let mut end = k + 1;
        while end < words.len() && !plain(words[end]) {
            end += 1;
        }
        // Trailing empty words belong after the run, not inside it.
        while end > start + 1 && words[end - 1].is_empty() {
            end -= 1;
        }
        out.extend(encoded_words(&words[start..end].join(" ")));
        k = end;
    }
    out.join(" ")
}

/// One or more encoded words carrying `run`, none longer than
/// [`MAX_WORD`], split only between characters.
fn encoded_words(run: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    for c in run.chars() {
        let mut buf = [0u8; 4];
        let mut q = String::new();
        for &b in c.encode_utf8(&mut buf).as_bytes() {
            match b {
                b' ' => q.push('_'),
                b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z' | b'!' | b'*' | b'+' | b'-' | b'/' => {
                    q.push(b as char)
                }
                _ => q.push_str(&format!("={b:02X}")),
            }
        }
        if !cur.is_empty() && OVERHEAD + cur.len() + q.len() > MAX_WORD {
            words.push(format!("=?utf-8?q?{cur}?="));
            cur.clear();
        }
        cur.push_str(&q);
    }
    if !cur.is_empty() {
        words.push(format!("=?utf-8?q?{cur}?="));
    }
    words
}

#[cfg(test)]
mod tests {
    use super::encode_unstructured as enc;

    /// What a reader makes of it: RFC 2047 §6 decoding, by mailparse.
    fn decoded(value: &str) -> String {
        let raw = format!("Subject: {value}\r\n\r\n");
        let (h, _) = mailparse::parse_header(raw.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        h.get_value()
    }

    #[test]
    fn only_the_words_that_need_it_are_encoded() {
        assert_eq!(enc("Hello world"), "Hello world");
        assert_eq!(
            enc("Grüße aus Köln ☕"),
            "=?utf-8?q?Gr=C3=BC=C3=9Fe?= aus =?utf-8?q?K=C3=B6ln_=E2=98=95?="
        );
        assert_eq!(enc("Re: café"), "Re: =?utf-8?q?caf=C3=A9?=");
        // Something that looks like an encoded word is encoded itself.
        assert_eq!(enc("=?x?q?y?="), "=?utf-8?q?=3D=3Fx=3Fq=3Fy=3F=3D?=");
    }

    #[test]
    fn every_text_decodes_back_exactly() {
        for text in [
            "Grüße aus Köln ☕",
            "a  b   é  c",
            "é ",
            " leading and trailing ",
            "日本語のテキストはとても長いので複数のエンコードされた単語に分割されなければならない",
            "tab\tinside é",
            "",
        ] {
            let e = enc(text);
            assert!(e.is_ascii(), "{e}");
            for w in e.split(' ') {
                assert!(w.len() <= 75 || !w.starts_with("=?"), "{w}");
            }
            // Readers drop the white space at the ends of a header value.
            assert_eq!(decoded(&e).trim(), text.trim(), "{e}");
        }
    }
}
