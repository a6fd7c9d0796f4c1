//! Composing outgoing mail (RFC 5322, MIME RFC 2045-2049, RFC 2047) with
//! the `mail-builder` crate, plus reply/forward helpers (RFC 5322 §3.6.4:
//! In-Reply-To, References, "Re: ") and the header-block draft format used
//! when composing in `$EDITOR`.

use crate::error::{MuaError, Result};
use crate::message;
use mail_builder::headers::address::Address;
use mail_builder::headers::message_id::MessageId;
use mail_builder::MessageBuilder;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

/// A file to attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// File name shown to the recipient.
    pub filename: String,
    /// MIME type, e.g. `application/pdf`.
    pub content_type: String,
    /// Exact bytes.
    pub data: Vec<u8>,
}

impl Attachment {
    /// Reads a file and guesses its content type from the extension.
    ///
    /// # Errors
    /// The file cannot be read.
    pub fn from_path(path: &Path) -> std::io::Result<Attachment> {
        let data = std::fs::read(path)?;
        let filename = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "attachment".into());
        let content_type = mime_guess::from_path(path)
            .first_or_octet_stream()
            .essence_str()
            .to_string();
        Ok(Attachment {
            filename,
            content_type,
            data,
        })
    }
}

/// A message being written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Draft {
    /// Sender (`Name <addr>` or `addr`).
    pub from: String,
    /// To recipients.
    pub to: Vec<String>,
    /// Cc recipients.
    pub cc: Vec<String>,
    /// Bcc recipients (never transmitted in headers).
    pub bcc: Vec<String>,
    /// Subject (any Unicode).
    pub subject: String,
    /// Body text (any Unicode).
    pub body: String,
    /// Attachments.
    pub attachments: Vec<Attachment>,
    /// Message-ID this replies to (with angle brackets).
    pub in_reply_to: Option<String>,
    /// Thread ancestry (with angle brackets).
    pub references: Vec<String>,
}

/// A parsed mailbox: optional display name and bare address.
pub type Mailbox = (Option<String>, String);

/// Parses comma-separated address lists (`A <a@x>, b@y`).
///
/// # Errors
/// `Usage` naming the bad input.
pub fn parse_addresses(items: &[String]) -> Result<Vec<Mailbox>> {
    let mut out = Vec::new();
    for item in items {
        if item.trim().is_empty() {
            continue;
        }
        let list = mailparse::addrparse(item)
            .map_err(|e| MuaError::Usage(format!("bad address {item:?}: {e}")))?;
        for a in list.iter() {
            match a {
                mailparse::MailAddr::Single(s) => {
                    out.push((s.display_name.clone(), s.addr.clone()));
                }
                mailparse::MailAddr::Group(g) => {
                    out.extend(
                        g.addrs
                            .iter()
                            .map(|s| (s.display_name.clone(), s.addr.clone())),
                    );
                }
            }
        }
    }
    for (_, addr) in &out {
        if !addr.contains('@') || addr.contains(char::is_whitespace) {
            return Err(MuaError::Usage(format!("bad address {addr:?}")));
        }
    }
    Ok(out)
}

fn to_address(list: &[Mailbox]) -> Address<'static> {
    Address::new_list(
        list.iter()
            .map(|(n, a)| Address::new_address(n.clone(), a.clone()))
            .collect(),
    )
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh Message-ID (without brackets) in the sender's domain.
pub fn new_message_id(from_addr: &str) -> String {
    let domain = from_addr.rsplit_once('@').map_or("localhost", |(_, d)| d);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{nanos:x}.{:x}.{n}.mua@{domain}", std::process::id())
}

fn strip_brackets(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_string()
}

impl Draft {
    /// Every envelope recipient (To, Cc, Bcc), bare addresses.
    ///
    /// # Errors
    /// `Usage` on a malformed address.
    pub fn recipients(&self) -> Result<Vec<String>> {
        let mut all = parse_addresses(&self.to)?;
        all.extend(parse_addresses(&self.cc)?);
        all.extend(parse_addresses(&self.bcc)?);
        Ok(all.into_iter().map(|(_, a)| a).collect())
    }

    /// Builds the RFC 5322 message. Returns (Message-ID with brackets, bytes).
    /// The bytes include Bcc (for the Sent copy); strip it before SMTP.
    ///
    /// # Errors
    /// `Usage` on malformed addresses.
    pub fn build(&self) -> Result<(String, Vec<u8>)> {
        let from = parse_addresses(std::slice::from_ref(&self.from))?;
        let Some(sender) = from.first() else {
            return Err(MuaError::Usage("no sender address (set --user)".into()));
        };
        let id = new_message_id(&sender.1);
        let mut b = MessageBuilder::new()
            .from(to_address(&from[..1]))
            // Only the words that need it are encoded (words.rs).
            .header(
                "Subject",
                mail_builder::headers::raw::Raw::new(crate::words::encode_unstructured(
                    &self.subject,
                )),
            )
            .message_id(MessageId::new(id.clone()))
            .text_body(self.body.clone());
        let to = parse_addresses(&self.to)?;
        if !to.is_empty() {
            b = b.to(to_address(&to));
        }
        let cc = parse_addresses(&self.cc)?;
        if !cc.is_empty() {
            b = b.cc(to_address(&cc));
        }
        let bcc = parse_addresses(&self.bcc)?;
        if !bcc.is_empty() {
            b = b.bcc(to_address(&bcc));
        }
        if let Some(irt) = &self.in_reply_to {
            b = b.in_reply_to(MessageId::new(strip_brackets(irt)));
        }
        if !self.references.is_empty() {
            let refs: Vec<String> = self.references.iter().map(|r| strip_brackets(r)).collect();
            b = b.references(MessageId::from(refs));
        }
        for a in &self.attachments {
            b = b.attachment(a.content_type.clone(), a.filename.clone(), a.data.clone());
        }
        let bytes = b
            .write_to_vec()
            .map_err(|e| MuaError::Protocol(format!("cannot build message: {e}")))?;
        Ok((format!("<{id}>"), bytes))
    }

    /// The draft as editable text: header lines, a blank line, the body.
    pub fn to_editor_text(&self) -> String {
        format!(
            "From: {}\nTo: {}\nCc: {}\nBcc: {}\nSubject: {}\nAttach: \n\n{}",
            self.from,
            self.to.join(", "),
            self.cc.join(", "),
            self.bcc.join(", "),
            self.subject,
            self.body
        )
    }

    /// Reads back text written by `to_editor_text` (after editing).
    /// Threading fields and attachments are kept from `self`.
    pub fn from_editor_text(&self, text: &str) -> Draft {
        let mut d = Draft {
            in_reply_to: self.in_reply_to.clone(),
            references: self.references.clone(),
            attachments: self.attachments.clone(),
            from: self.from.clone(),
            ..Draft::default()
        };
        let text = text.replace("\r\n", "\n");
        let (head, body) = text.split_once("\n\n").unwrap_or((text.as_str(), ""));
        d.body = body.to_string();
        for line in head.lines() {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let v = v.trim();
            let list = || -> Vec<String> {
                if v.is_empty() {
                    Vec::new()
                } else {
                    vec![v.to_string()]
                }
            };
            match k.trim().to_ascii_lowercase().as_str() {
                "from" if !v.is_empty() => d.from = v.to_string(),
                "to" => d.to = list(),
                "cc" => d.cc = list(),
                "bcc" => d.bcc = list(),
                "subject" => d.subject = v.to_string(),
                _ => {}
            }
        }
        d
    }
}

/// Paths named on `Attach:` lines of an edited draft's header block.
pub fn attach_lines(text: &str) -> Vec<String> {
    let text = text.replace("\r\n", "\n");
    let head = text.split_once("\n\n").map_or(text.as_str(), |(h, _)| h);
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, v)| k.trim().eq_ignore_ascii_case("attach") && !v.trim().is_empty())
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

/// Removes every Bcc header field (with continuation lines) from a message.
pub fn strip_bcc(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut in_bcc = false;
    let mut rest = raw;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |p| p + 1);
        let line = &rest[..end];
        rest = &rest[end..];
        if line == b"\r\n" || line == b"\n" {
            out.extend_from_slice(line);
            out.extend_from_slice(rest);
            return out;
        }
        let continuation = line.first().is_some_and(|&b| b == b' ' || b == b'\t');
        if !continuation {
            in_bcc = line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"bcc:");
        }
        if !in_bcc {
            out.extend_from_slice(line);
        }
    }
    out
}

/// Recipients of a raw message from its To/Cc/Bcc headers, and its From.
///
/// # Errors
/// `Usage` if the message has no parsable header or no recipients.
pub fn raw_envelope(raw: &[u8]) -> Result<(Option<String>, Vec<String>)> {
    let (headers, _) = mailparse::parse_headers(raw)
        .map_err(|e| MuaError::Usage(format!("cannot parse message headers: {e}")))?;
    let mut rcpts = Vec::new();
    let mut from = None;
    for h in &headers {
        let key = h.get_key().to_ascii_lowercase();
        if matches!(key.as_str(), "to" | "cc" | "bcc" | "from") {
            let list = mailparse::addrparse_header(h)
                .map_err(|e| MuaError::Usage(format!("bad {} header: {e}", h.get_key())))?;
            let addrs: Vec<String> = list
                .iter()
                .flat_map(|a| match a {
                    mailparse::MailAddr::Single(s) => vec![s.addr.clone()],
                    mailparse::MailAddr::Group(g) => {
                        g.addrs.iter().map(|s| s.addr.clone()).collect()
                    }
                })
                .collect();
            if key == "from" {
                from = addrs.into_iter().next();
            } else {
                rcpts.extend(addrs);
            }
        }
    }
    if rcpts.is_empty() {
        return Err(MuaError::Usage(
            "the message has no To, Cc or Bcc recipients".into(),
        ));
    }
    Ok((from, rcpts))
}

/// Prefixes a subject once: `Re: x` stays `Re: x`.
pub fn prefixed(prefix: &str, subject: &str) -> String {
    let lower = subject.trim_start().to_ascii_lowercase();
    if lower.starts_with(&prefix.to_ascii_lowercase()) {
        subject.trim_start().to_string()
    } else {
        format!("{prefix} {}", subject.trim())
    }
}

/// A reply to `orig` (raw bytes) from `me`; `all` adds the other recipients.
///
/// # Errors
/// `Protocol` if the original cannot be parsed.
pub fn reply(orig: &[u8], me: &str, all: bool) -> Result<Draft> {
    let m = message::Message::parse(orig)?;
    let to = m
        .header("Reply-To")
        .or_else(|| m.header("From"))
        .unwrap_or_default();
    let mut draft = Draft {
        from: me.to_string(),
        to: vec![to.clone()],
        subject: prefixed("Re:", &m.header("Subject").unwrap_or_default()),
        ..Draft::default()
    };
    if all {
        let me_addr = parse_addresses(&[me.to_string()])?
            .first()
            .map(|(_, a)| a.to_ascii_lowercase())
            .unwrap_or_default();
        let already: Vec<String> = parse_addresses(&draft.to)
            .unwrap_or_default()
            .into_iter()
            .map(|(_, a)| a.to_ascii_lowercase())
            .collect();
        for field in ["To", "Cc"] {
            if let Some(v) = m.header(field) {
                for (name, addr) in parse_addresses(&[v]).unwrap_or_default() {
                    let l = addr.to_ascii_lowercase();
                    if l != me_addr && !already.contains(&l) {
                        draft.cc.push(match name {
                            Some(n) => format!("\"{n}\" <{addr}>"),
                            None => addr,
                        });
                    }
                }
            }
        }
    }
    if let Some(id) = m.header("Message-ID") {
        let id = id.trim().to_string();
        let mut refs: Vec<String> = m
            .header("References")
            .or_else(|| m.header("In-Reply-To"))
            .map(|r| r.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        refs.push(id.clone());
        draft.references = refs;
        draft.in_reply_to = Some(id);
    }
    let who = m.header("From").unwrap_or_else(|| "someone".into());
    let date = m.header("Date").unwrap_or_default();
    let quoted: String = m
        .text()
        .lines()
        .map(|l| {
            if l.is_empty() {
                ">\n".to_string()
            } else {
                format!("> {l}\n")
            }
        })
        .collect();
    draft.body = if date.is_empty() {
        format!("\n\n{who} wrote:\n{quoted}")
    } else {
        format!("\n\nOn {date}, {who} wrote:\n{quoted}")
    };
    Ok(draft)
}

/// A forward of `orig` from `me`: "Fwd:" subject, the original's headers
/// and text inline, its attachments carried along.
///
/// # Errors
/// `Protocol` if the original cannot be parsed.
pub fn forward(orig: &[u8], me: &str) -> Result<Draft> {
    let m = message::Message::parse(orig)?;
    let mut body = String::from("\n\n---------- Forwarded message ----------\n");
    for h in ["From", "Date", "Subject", "To", "Cc"] {
        if let Some(v) = m.header(h) {
            body.push_str(&format!("{h}: {v}\n"));
        }
    }
    body.push('\n');
    body.push_str(&m.text());
    let attachments = m
        .attachments()
        .into_iter()
        .map(|a| Attachment {
            filename: a.filename,
            content_type: a.content_type,
            data: a.data,
        })
        .collect();
    Ok(Draft {
        from: me.to_string(),
        subject: prefixed("Fwd:", &m.header("Subject").unwrap_or_default()),
        body,
        attachments,
        ..Draft::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> Draft {
        Draft {
            from: "Alice <alice@localhost>".into(),
            to: vec!["bob@localhost".into()],
            subject: "Hello".into(),
            body: "Hi Bob\n".into(),
            ..Draft::default()
        }
    }

    #[test]
    fn plain_message_has_required_headers() {
        let (id, bytes) = draft().build().unwrap();
        let m = mailparse::parse_mail(&bytes).unwrap();
        let h = |k: &str| {
            m.headers
                .iter()
                .find(|h| h.get_key_ref().eq_ignore_ascii_case(k))
                .map(|h| h.get_value())
        };
        assert!(h("Date").is_some());
        assert_eq!(h("MIME-Version").as_deref(), Some("1.0"));
        assert_eq!(h("Message-ID").as_deref(), Some(id.as_str()));
        assert!(id.ends_with("@localhost>"));
        assert_eq!(h("Subject").as_deref(), Some("Hello"));
        assert_eq!(m.get_body().unwrap().trim_end(), "Hi Bob");
    }

    #[test]
    fn non_ascii_subject_uses_encoded_words_and_body_round_trips() {
        let mut d = draft();
        d.subject = "Grüße aus Köln ☕".into();
        d.body = "Schöne Grüße — ünïcödé\n".into();
        let (_, bytes) = d.build().unwrap();
        let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        assert!(bytes[..head_end].is_ascii(), "headers must be 7-bit");
        let text = String::from_utf8_lossy(&bytes[..head_end]);
        assert!(text.contains("=?utf-8?"), "{text}");
        // Only the words that need it are encoded: "aus" stays greppable.
        assert!(text.contains("?= aus =?"), "{text}");
        let m = mailparse::parse_mail(&bytes).unwrap();
        let subject = m
            .headers
            .iter()
            .find(|h| h.get_key_ref() == "Subject")
            .unwrap()
            .get_value();
        assert_eq!(subject, "Grüße aus Köln ☕");
        assert_eq!(m.get_body().unwrap().trim_end(), "Schöne Grüße — ünïcödé");
    }

    #[test]
    fn attachment_round_trips_byte_exact() {
        let mut d = draft();
        let data: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        d.attachments.push(Attachment {
            filename: "blob.bin".into(),
            content_type: "application/octet-stream".into(),
            data: data.clone(),
        });
        let (_, bytes) = d.build().unwrap();
        let m = message::Message::parse(&bytes).unwrap();
        let atts = m.attachments();
        assert_eq!(atts.len(), 1);
        assert_eq!(atts[0].filename, "blob.bin");
        assert_eq!(atts[0].data, data);
        assert_eq!(m.text().trim_end(), "Hi Bob");
    }

    #[test]
    fn bcc_is_stripped_with_continuations() {
        let raw = b"From: a@x\r\nBcc: secret@x,\r\n  other@x\r\nTo: b@x\r\n\r\nBcc: body stays\r\n";
        assert_eq!(
            strip_bcc(raw),
            b"From: a@x\r\nTo: b@x\r\n\r\nBcc: body stays\r\n"
        );
        let (from, rcpts) = raw_envelope(raw).unwrap();
        assert_eq!(from.as_deref(), Some("a@x"));
        assert_eq!(rcpts, vec!["secret@x", "other@x", "b@x"]);
        assert!(raw_envelope(b"From: a@x\r\n\r\nhi").is_err());
    }

    #[test]
    fn reply_threads_and_quotes() {
        let orig = b"From: Bob <bob@x>\r\nTo: alice@localhost, carol@x\r\nCc: dave@x\r\nSubject: Plans\r\nMessage-ID: <m2@x>\r\nReferences: <m1@x>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nLet's meet.\r\n";
        let d = reply(orig, "alice@localhost", false).unwrap();
        assert_eq!(d.subject, "Re: Plans");
        assert_eq!(d.to, vec!["Bob <bob@x>"]);
        assert!(d.cc.is_empty());
        assert_eq!(d.in_reply_to.as_deref(), Some("<m2@x>"));
        assert_eq!(d.references, vec!["<m1@x>", "<m2@x>"]);
        assert!(d.body.contains("> Let's meet."));
        let all = reply(orig, "alice@localhost", true).unwrap();
        assert_eq!(all.cc, vec!["carol@x", "dave@x"]);
        let (_, bytes) = all.build().unwrap();
        let s = String::from_utf8_lossy(&bytes);
        assert!(s.contains("In-Reply-To: <m2@x>"), "{s}");
        assert!(s.contains("References: <m1@x> <m2@x>"), "{s}");
        assert_eq!(prefixed("Re:", "RE: x"), "RE: x");
    }

    #[test]
    fn editor_text_round_trips() {
        let d = draft();
        let edited = d
            .to_editor_text()
            .replace("Subject: Hello", "Subject: Changed");
        let back = d.from_editor_text(&edited);
        assert_eq!(back.subject, "Changed");
        assert_eq!(back.to, d.to);
        assert!(back.cc.is_empty());
        assert_eq!(back.body, d.body);
        let with = edited.replace("Attach: ", "Attach: /tmp/a.pdf\nAttach: b c.txt");
        assert_eq!(attach_lines(&with), vec!["/tmp/a.pdf", "b c.txt"]);
        assert!(attach_lines(&d.to_editor_text()).is_empty());
    }
}
