//! PREVIEW (RFC 8970): a short plain-text preview of a message for FETCH
//! PREVIEW, made on a store thread from the MIME structure recorded at
//! delivery and a bounded read of one body part.
//!
//! The text comes from the first part that is `text/plain` or `text/html`
//! and not an attachment, in MIME order (a multipart/alternative usually
//! puts its plain text first); encapsulated messages are attachments here
//! and are not looked into. At most [`PREVIEW_READ`] octets of the part are
//! read, its transfer encoding is undone (`cte.rs`) and its charset decoded
//! as the search index does. HTML loses its tags, comments, `<style>`,
//! `<script>` and `<head>` contents, and its common character references
//! are decoded; plain text loses quoted lines (`> ...`, the text replied
//! to). Runs of white space become one space, control characters go, and
//! the result is cut to [`PREVIEW_CHARS`] characters (§3: at most 256).
//! A message with no such part, or whose part holds no text, gets the empty
//! string (§3), never NIL: the preview is always available, so `(LAZY)`
//! (§3.1) changes nothing. Every step is linear in the octets read.

use crate::cte::{decode_all, Cte};
use crate::limits::{PREVIEW_CHARS, PREVIEW_READ};
use mailstore::{MailboxId, MessageMeta, MimePart, Reader};

/// The preview of a message and the octets read to make it.
///
/// # Errors
/// Store errors reading the part.
pub(crate) fn preview(
    r: &Reader,
    mailbox: MailboxId,
    meta: &MessageMeta,
) -> mailstore::Result<(String, u64)> {
    let Some(part) = text_part(&meta.structure) else {
        return Ok((String::new(), 0));
    };
    let (a, b) = part.body_range;
    let len = b.saturating_sub(a).min(PREVIEW_READ);
    if len == 0 {
        return Ok((String::new(), 0));
    }
    let raw = r.raw_range(mailbox, meta.uid, a, len)?;
    Ok((text_of(&raw, part, len < b.saturating_sub(a)), len))
}

/// The first non-attachment `text/plain` or `text/html` leaf, depth first
/// in MIME order (an explicit stack: the tree is at most 32 deep).
fn text_part(root: &MimePart) -> Option<&MimePart> {
    let mut stack = vec![root];
    while let Some(p) = stack.pop() {
        if !p.parts.is_empty() {
            stack.extend(p.parts.iter().rev());
            continue;
        }
        let attachment = p
            .disposition
            .as_ref()
            .is_some_and(|(d, _)| d.eq_ignore_ascii_case("attachment"));
        if p.media_type.eq_ignore_ascii_case("text")
            && (p.subtype.eq_ignore_ascii_case("plain") || p.subtype.eq_ignore_ascii_case("html"))
            && !attachment
        {
            return Some(p);
        }
    }
    None
}

/// The preview of a part whose (first `PREVIEW_READ`, when `cut`) body
/// octets are `raw`.
fn text_of(raw: &[u8], part: &MimePart, cut: bool) -> String {
    // An encoding we do not know: read the octets as they are.
    let decoded = match Cte::from_name(&part.encoding) {
        Some(Cte::Identity) | None => raw.to_vec(),
        Some(cte) => decode_all(cte, raw),
    };
    let charset = part
        .params
        .iter()
        .find(|(k, _)| k == "charset")
        .map(|(_, v)| v.as_str());
    let mut text = mailstore::charset_text(&decoded, charset);
    if cut {
        // A character cut in two at the end of what was read.
        while text.ends_with('\u{FFFD}') {
            text.pop();
        }
    }
    let text = if part.subtype.eq_ignore_ascii_case("html") {
        html_text(&text)
    } else {
        unquoted(&text)
    };
    squeeze(&text)
}

/// Plain text without its quoted lines (those starting with `>`).
fn unquoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split('\n') {
        if !line.trim_start().starts_with('>') {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// White space runs as one space, no control characters, trimmed, at most
/// [`PREVIEW_CHARS`] characters.
fn squeeze(text: &str) -> String {
    let mut out = String::new();
    let (mut n, mut space) = (0, false);
    for c in text.chars() {
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if c.is_control() {
            continue;
        }
        if space {
            if n + 1 >= PREVIEW_CHARS {
                break;
            }
            out.push(' ');
            n += 1;
            space = false;
        }
        if n >= PREVIEW_CHARS {
            break;
        }
        out.push(c);
        n += 1;
    }
    out
}

/// Elements whose content is not text to show.
const HIDDEN: [&str; 4] = ["style", "script", "head", "title"];

/// Elements after which the text breaks (a space).
const BREAKS: [&str; 16] = [
    "br",
    "p",
    "div",
    "li",
    "tr",
    "td",
    "th",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "blockquote",
    "hr",
];

/// The visible text of HTML: tags and comments dropped, hidden elements'
/// content skipped, character references decoded. One pass; skipping
/// searches forward from where it is, so the cost is linear.
fn html_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len().min(4096));
    let lower = html.to_ascii_lowercase();
    let mut i = 0;
    let b = html.as_bytes();
    while i < b.len() {
        match b[i] {
            b'<' => {
                if lower[i..].starts_with("<!--") {
                    i = lower[i + 4..]
                        .find("-->")
                        .map_or(b.len(), |e| i + 4 + e + 3);
                    continue;
                }
                let end = lower[i..].find('>').map_or(b.len(), |e| i + e + 1);
                let name: String = lower[i + 1..end.min(b.len())]
                    .trim_start_matches('/')
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .collect();
                let closing = lower[i + 1..].starts_with('/');
                i = end;
                if !closing && HIDDEN.contains(&name.as_str()) {
                    let close = format!("</{name}");
                    i = lower[i..].find(&close).map_or(b.len(), |e| i + e);
                } else if BREAKS.contains(&name.as_str()) {
                    out.push(' ');
                }
            }
            b'&' => {
                let (c, len) = entity(&html[i..]);
                match c {
                    Some(c) => out.push(c),
                    None => out.push('&'),
                }
                i += len;
            }
            _ => {
                // A whole character (the text is UTF-8).
                let ch = html[i..].chars().next().unwrap_or(' ');
                out.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    out
}

/// The character reference at the start of `s` (`&amp;`, `&#38;`,
/// `&#x26;`...) and its length; `(None, 1)` when `&` starts none we know.
fn entity(s: &str) -> (Option<char>, usize) {
    // Names and numbers we know are short: look no further than this, so
    // a run of `&` without `;` costs nothing.
    let head = &s.as_bytes()[..s.len().min(12)];
    let Some(semi) = head.iter().position(|&c| c == b';') else {
        return (None, 1);
    };
    let name = &s[1..semi];
    let c = match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some(' '),
        _ => match name.strip_prefix('#') {
            Some(n) => match n.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok(),
                None => n.parse().ok(),
            }
            .and_then(char::from_u32),
            None => None,
        },
    };
    match c {
        Some(c) => (Some(c), semi + 1),
        None => (None, 1),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn part(subtype: &str, encoding: &str, charset: Option<&str>) -> MimePart {
        MimePart {
            media_type: "text".into(),
            subtype: subtype.into(),
            params: charset
                .map(|c| vec![("charset".to_owned(), c.to_owned())])
                .unwrap_or_default(),
            encoding: encoding.into(),
            ..MimePart::default()
        }
    }

    #[test]
    fn plain_text_is_squeezed_and_loses_quoted_lines() {
        let p = part("plain", "7bit", None);
        let t = text_of(
            b"Hello   world,\r\n  this is\tthe body.\r\n> quoted\r\n  >> more\r\nend\r\n",
            &p,
            false,
        );
        assert_eq!(t, "Hello world, this is the body. end");
        assert_eq!(text_of(b"\r\n \r\n", &p, false), "");
    }

    #[test]
    fn transfer_encodings_and_charsets_are_undone() {
        let qp = part("plain", "quoted-printable", Some("iso-8859-1"));
        assert_eq!(
            text_of(b"Gr=FC=DFe aus K=F6ln=\r\n!\r\n", &qp, false),
            "Grüße aus Köln!"
        );
        let b64 = part("plain", "base64", Some("utf-8"));
        // "héllo wörld" in base64.
        assert_eq!(
            text_of(b"aMOpbGxvIHfDtnJsZA==\r\n", &b64, false),
            "héllo wörld"
        );
        let unknown = part("plain", "x-uuencode", None);
        assert_eq!(text_of(b"as is", &unknown, false), "as is");
    }

    #[test]
    fn a_cut_read_drops_a_split_character() {
        let p = part("plain", "8bit", Some("utf-8"));
        let text = "ab€".as_bytes();
        assert_eq!(text_of(&text[..4], &p, true), "ab");
    }

    #[test]
    fn html_shows_its_visible_text() {
        let p = part("html", "7bit", None);
        let html = b"<html><head><title>T</title><style>p {color: red}</style></head>\
            <body><!-- note --><p>Hi <b>there</b> &amp; you</p><script>x()</script>\
            <div>caf&#233; &#x263A;&nbsp;&bogus; &</div></body></html>";
        assert_eq!(text_of(html, &p, false), "Hi there & you café ☺ &bogus; &");
        // Unclosed constructs end the text, not the world.
        assert_eq!(text_of(b"text <style>never closed", &p, false), "text");
        assert_eq!(text_of(b"a <!-- never closed", &p, false), "a");
        assert_eq!(text_of(b"a <b", &p, false), "a");
    }

    #[test]
    fn at_most_256_characters() {
        let p = part("plain", "8bit", Some("utf-8"));
        let long = "ü".repeat(300);
        let t = text_of(long.as_bytes(), &p, false);
        assert_eq!(t.chars().count(), PREVIEW_CHARS);
        let words = "word ".repeat(100);
        let t = text_of(words.as_bytes(), &p, false);
        assert!(t.chars().count() <= PREVIEW_CHARS);
        assert!(!t.ends_with(' '));
    }

    #[test]
    fn the_first_inline_text_part_is_chosen() {
        let mut att = part("plain", "7bit", None);
        att.disposition = Some(("attachment".into(), vec![]));
        att.body_range = (1, 2);
        let mut html = part("html", "7bit", None);
        html.body_range = (3, 4);
        let image = MimePart {
            media_type: "image".into(),
            subtype: "png".into(),
            ..MimePart::default()
        };
        let inner = MimePart {
            media_type: "multipart".into(),
            subtype: "alternative".into(),
            parts: vec![image.clone(), html],
            ..MimePart::default()
        };
        let root = MimePart {
            media_type: "multipart".into(),
            subtype: "mixed".into(),
            parts: vec![att, inner],
            ..MimePart::default()
        };
        assert_eq!(text_part(&root).unwrap().body_range, (3, 4));
        assert!(text_part(&image).is_none());
    }
}
