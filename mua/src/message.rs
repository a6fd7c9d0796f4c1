//! Reading received mail with `mailparse`: decoded headers (RFC 2047),
//! charset and transfer decoding (RFC 2045 §6), the best text of a
//! multipart/alternative (RFC 2046 §5.1.4, HTML reduced to text when there
//! is no plain part) and the attachment list (RFC 2183 dispositions).

use crate::error::{MuaError, Result};
use mailparse::{DispositionType, ParsedMail};

/// A decoded attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentData {
    /// 1-based number, as shown by `mua read` and taken by `mua save`.
    pub index: usize,
    /// File name (or a made-up one).
    pub filename: String,
    /// MIME type.
    pub content_type: String,
    /// Decoded bytes.
    pub data: Vec<u8>,
}

/// A parsed message.
pub struct Message<'a> {
    mail: ParsedMail<'a>,
}

fn is_attachment(p: &ParsedMail<'_>) -> bool {
    if !p.subparts.is_empty() {
        return false;
    }
    let disp = p.get_content_disposition();
    let ct = p.ctype.mimetype.to_ascii_lowercase();
    disp.disposition == DispositionType::Attachment
        || disp.params.contains_key("filename")
        || (p.ctype.params.contains_key("name") && !ct.starts_with("text/"))
        || !(ct.starts_with("text/") || ct.starts_with("multipart/"))
}

fn filename_of(p: &ParsedMail<'_>, index: usize) -> String {
    let disp = p.get_content_disposition();
    disp.params
        .get("filename")
        .or_else(|| p.ctype.params.get("name"))
        .cloned()
        .unwrap_or_else(|| {
            let ext = mime_guess::get_mime_extensions_str(&p.ctype.mimetype)
                .and_then(|e| e.first())
                .copied()
                .unwrap_or("bin");
            format!("part{index}.{ext}")
        })
}

/// The readable text of a part tree, or None if it has none.
fn best_text(p: &ParsedMail<'_>) -> Option<String> {
    let ct = p.ctype.mimetype.to_ascii_lowercase();
    if ct == "multipart/alternative" {
        let plain = p
            .subparts
            .iter()
            .find(|s| s.ctype.mimetype.eq_ignore_ascii_case("text/plain"));
        if let Some(t) = plain.and_then(best_text) {
            return Some(t);
        }
        return p.subparts.iter().rev().find_map(best_text);
    }
    if ct.starts_with("multipart/") {
        let texts: Vec<String> = p
            .subparts
            .iter()
            .filter(|s| !is_attachment(s))
            .filter_map(best_text)
            .collect();
        return (!texts.is_empty()).then(|| texts.join("\n"));
    }
    if is_attachment(p) {
        return None;
    }
    let body = p.get_body().ok()?;
    if ct == "text/html" {
        Some(crate::html::to_text(&body))
    } else {
        Some(body)
    }
}

impl<'a> Message<'a> {
    /// Parses raw RFC 5322 bytes.
    ///
    /// # Errors
    /// `Protocol` if the message is malformed beyond repair.
    pub fn parse(raw: &'a [u8]) -> Result<Message<'a>> {
        let mail = mailparse::parse_mail(raw)
            .map_err(|e| MuaError::Protocol(format!("cannot parse message: {e}")))?;
        Ok(Message { mail })
    }

    /// A top-level header, decoded, if present.
    pub fn header(&self, name: &str) -> Option<String> {
        self.mail
            .headers
            .iter()
            .find(|h| h.get_key_ref().eq_ignore_ascii_case(name))
            .map(|h| h.get_value())
    }

    /// The best readable text of the message.
    /// Line endings are normalised to `\n` for the terminal.
    pub fn text(&self) -> String {
        best_text(&self.mail)
            .unwrap_or_default()
            .replace("\r\n", "\n")
    }

    /// Every attachment, decoded, numbered from 1.
    pub fn attachments(&self) -> Vec<AttachmentData> {
        let mut out = Vec::new();
        fn walk(p: &ParsedMail<'_>, out: &mut Vec<AttachmentData>, top: bool) {
            if !p.subparts.is_empty() {
                for s in &p.subparts {
                    walk(s, out, false);
                }
                return;
            }
            // A single-part message is its own body, never an attachment,
            // unless it says so.
            let explicit = p.get_content_disposition().disposition == DispositionType::Attachment;
            if is_attachment(p) && (!top || explicit) {
                let index = out.len() + 1;
                out.push(AttachmentData {
                    index,
                    filename: filename_of(p, index),
                    content_type: p.ctype.mimetype.to_ascii_lowercase(),
                    data: p.get_body_raw().unwrap_or_default(),
                });
            }
        }
        walk(&self.mail, &mut out, true);
        out
    }

    /// The message rendered for reading: headers, text, attachment list.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for h in ["Date", "From", "To", "Cc", "Subject"] {
            if let Some(v) = self.header(h) {
                out.push_str(&format!("{h}: {v}\n"));
            }
        }
        out.push('\n');
        let text = self.text();
        out.push_str(text.trim_end());
        out.push('\n');
        let atts = self.attachments();
        if !atts.is_empty() {
            out.push_str("\nAttachments:\n");
            for a in atts {
                out.push_str(&format!(
                    "  [{}] {}  {}  {}\n",
                    a.index,
                    a.filename,
                    a.content_type,
                    human_size(a.data.len() as u64)
                ));
            }
        }
        out
    }
}

/// Sizes for people: `512 B`, `1.5 KB`, `3.2 MB`.
pub fn human_size(n: u64) -> String {
    if n < 1024 {
        format!("{n} B")
    } else if n < 1024 * 1024 {
        format!("{:.1} KB", n as f64 / 1024.0)
    } else {
        format!("{:.1} MB", n as f64 / (1024.0 * 1024.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternative_prefers_plain_text() {
        let raw = b"Subject: t\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain one\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>html one</p>\r\n--b--\r\n";
        let m = Message::parse(raw).unwrap();
        assert_eq!(m.text().trim(), "plain one");
        assert!(m.attachments().is_empty());
    }

    #[test]
    fn html_only_is_reduced_to_text_and_charsets_decoded() {
        let raw = b"Subject: =?ISO-8859-1?Q?caf=E9?=\r\nContent-Type: text/html; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<p>Caf=E9 &amp; cr=E8me</p><p>2</p>\r\n";
        let m = Message::parse(raw).unwrap();
        assert_eq!(m.header("subject").as_deref(), Some("café"));
        assert_eq!(m.text(), "Café & crème\n\n2");
    }

    #[test]
    fn mixed_lists_attachments_with_sizes() {
        let raw = b"Subject: a\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--z\r\nContent-Type: application/pdf; name=r.pdf\r\nContent-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n--z--\r\n";
        let m = Message::parse(raw).unwrap();
        assert_eq!(m.text().trim(), "see attached");
        let a = m.attachments();
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].filename, "report.pdf");
        assert_eq!(a[0].data, vec![0, 1, 2, 3]);
        let r = m.render();
        assert!(r.contains("[1] report.pdf  application/pdf  4 B"), "{r}");
    }

    #[test]
    fn sizes_for_people() {
        assert_eq!(human_size(10), "10 B");
        assert_eq!(human_size(1536), "1.5 KB");
        assert_eq!(human_size(3 * 1024 * 1024), "3.0 MB");
    }
}
