//! MIME: what delivery computes from a message's bytes besides storing
//! them: the envelope (RFC 5322 §3.6, RFC 3501 §7.4.2), the MIME tree with
//! byte offsets (RFC 2045 §5-6, RFC 2046 §5) and decoded header/body text
//! for search. A message that does not parse still gets minimal metadata:
//! mail is never refused here.
//!
//! # Bounds
//! The cost of parsing is linear in the message's size and bounded per
//! message, whatever the message says (see the README's "hostile input"):
//! - nesting ([`MAX_DEPTH`]) and the number of parts ([`MAX_PARTS`]) are
//!   counted on the structure as parsed, after decoding, not by looking for
//!   text; a part beyond them is described as one opaque leaf (its bytes
//!   are stored and served unchanged, as Dovecot does);
//! - header fields kept per header block ([`MAX_FIELDS`]) and bytes of one
//!   value decoded ([`MAX_VALUE`]); the header's extent is still exact;
//! - decoded search text per message ([`MAX_SEARCH_TEXT`]);
//! - each header is scanned once (`header`), each multipart body once per
//!   nesting level, so at most [`MAX_DEPTH`] times.
//!
//! Recursion depth is [`MAX_DEPTH`], so stack use is bounded too.

mod address;
pub(crate) mod header;

use std::ops::Range;

use memchr::memmem;

use crate::meta::{Envelope, MimePart};
pub(crate) use address::addresses;
use header::Head;

/// Decoded text kept for searching is cut at this many bytes per message.
pub const MAX_SEARCH_TEXT: usize = 2 * 1024 * 1024;
/// Nesting (multipart and message/rfc822) deeper than this is a leaf.
pub const MAX_DEPTH: usize = 32;
/// Parts described per message; the rest of a multipart after this many
/// becomes part of the last described part's body.
pub const MAX_PARTS: usize = 5_000;
/// Header fields kept (indexed, searched) per header block.
pub const MAX_FIELDS: usize = 1_000;
/// Bytes of one header value decoded or kept in the envelope.
pub const MAX_VALUE: usize = 64 * 1024;

/// What delivery stores besides the raw bytes.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub envelope: Envelope,
    pub structure: MimePart,
    /// Top-level headers: (lowercase name, decoded value), in order.
    pub headers: Vec<(String, String)>,
    /// `Name: decoded value` lines of the top-level header.
    pub header_text: String,
    /// Decoded text of all text parts (and embedded messages).
    pub body_text: String,
    /// `Date:` as unix seconds shifted by its own zone offset, so that day
    /// comparisons disregard the time zone (RFC 3501 SENTON etc.).
    pub sent_date: Option<i64>,
    /// The structure was cut at one of the bounds.
    pub truncated: bool,
}

/// Parse `raw`; never fails, never recurses deeper than [`MAX_DEPTH`].
pub(crate) fn parse_message(raw: &[u8]) -> Parsed {
    let head = header::split(raw, MAX_FIELDS);
    let mut p = Parsed {
        envelope: envelope(&head),
        ..Parsed::default()
    };
    let mut header_text = String::new();
    for f in &head.fields {
        let name = header::text(f.name);
        let value = header::decoded_value(f.value, MAX_VALUE);
        if header_text.len() < MAX_SEARCH_TEXT {
            header_text.push_str(&name);
            header_text.push_str(": ");
            header_text.push_str(&value);
            header_text.push('\n');
        }
        let lower = name.to_ascii_lowercase();
        let value = if ADDRESS_FIELDS.contains(&lower.as_str()) {
            with_addresses(value, f.value)
        } else {
            value
        };
        p.headers.push((lower, value));
    }
    p.header_text = truncate(header_text);
    p.sent_date = head
        .first("Date")
        .and_then(|f| local_date(&header::raw_value(f.value, 256)));
    let mut walk = Walk {
        root: raw,
        parts_left: MAX_PARTS,
        text: String::new(),
        truncated: head.cut,
    };
    p.structure = walk.part(0..raw.len(), head, 0, Default::Text);
    p.body_text = walk.text;
    p.truncated = walk.truncated;
    if p.truncated {
        log::info!(
            "message of {} bytes beyond a MIME bound (depth {MAX_DEPTH}, parts {MAX_PARTS}, \
             fields {MAX_FIELDS}): structure cut, bytes kept",
            raw.len()
        );
    }
    p
}

/// Fields whose indexed value also carries their addresses, normalised.
const ADDRESS_FIELDS: [&str; 6] = ["from", "sender", "reply-to", "to", "cc", "bcc"];

/// `value` followed by a tab and the field's addresses as
/// `name <local@domain>, ...` with comments and folding removed, so that
/// SEARCH FROM/TO/CC/BCC match an address however it was written
/// (`<user (c)@ (c) domain.org>` matches `user@domain.org`).
fn with_addresses(mut value: String, raw: &[u8]) -> String {
    let list = addresses(&header::raw_value(raw, MAX_VALUE));
    let mut norm = String::new();
    for a in list.iter().filter(|a| a.host.is_some()) {
        if !norm.is_empty() {
            norm.push_str(", ");
        }
        if let Some(n) = &a.name {
            norm.push_str(&header::decode_words(n));
            norm.push(' ');
        }
        norm.push('<');
        norm.push_str(a.local.as_deref().unwrap_or(""));
        if let Some(h) = a.host.as_deref().filter(|h| !h.is_empty()) {
            norm.push('@');
            norm.push_str(h);
        }
        norm.push('>');
    }
    if !norm.is_empty() {
        value.push('\t');
        value.push_str(&norm);
    }
    value
}

/// The content type a part has when it names none (RFC 2046 §5.1.5).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Default {
    Text,
    Message,
}

struct Walk<'a> {
    root: &'a [u8],
    parts_left: usize,
    text: String,
    truncated: bool,
}

impl<'a> Walk<'a> {
    fn push_text(&mut self, more: &str) {
        if self.text.len() < MAX_SEARCH_TEXT {
            let room = MAX_SEARCH_TEXT - self.text.len();
            self.text.push_str(cut_str(more, room.saturating_sub(1)));
            self.text.push('\n');
        }
    }

    fn search_room(&self) -> usize {
        MAX_SEARCH_TEXT.saturating_sub(self.text.len())
    }

    /// Describe the part at `range` of the root whose header is `head`.
    fn part(
        &mut self,
        range: Range<usize>,
        head: Head<'a>,
        depth: usize,
        dflt: Default,
    ) -> MimePart {
        let start = range.start;
        let body_start = (start + head.len).min(range.end);
        let end = range.end;
        let body = self.root.get(body_start..end).unwrap_or_default();
        let hv = |name: &str| {
            head.first(name)
                .map(|f| header::raw_value(f.value, MAX_VALUE))
        };
        let (mut media_type, mut subtype, mut params) = match hv("Content-Type") {
            Some(v) => {
                let (kind, params) = header::params_value(&v);
                match kind.split_once('/') {
                    Some((t, s)) if !t.trim().is_empty() && !s.trim().is_empty() => {
                        (t.trim().to_owned(), s.trim().to_owned(), params)
                    }
                    // RFC 2045 §5.2: an unreadable type is text/plain.
                    _ => ("text".into(), "plain".into(), Vec::new()),
                }
            }
            None if dflt == Default::Message => ("message".into(), "rfc822".into(), Vec::new()),
            None => ("text".into(), "plain".into(), Vec::new()),
        };
        let encoding = hv("Content-Transfer-Encoding")
            .map(|e| header::strip_comments(&e).trim().to_ascii_lowercase())
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| "7bit".into());
        let disposition = hv("Content-Disposition").map(|v| header::params_value(&v));
        let language = hv("Content-Language")
            .map(|l| {
                header::strip_comments(&l)
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();

        let is_multipart = media_type == "multipart";
        let is_message = media_type == "message" && (subtype == "rfc822" || subtype == "global");
        let deep = depth >= MAX_DEPTH || self.parts_left == 0;
        if (is_multipart || is_message) && deep {
            self.truncated = true;
        }
        let mut children = Vec::new();
        if is_multipart && !deep {
            let boundary = params
                .iter()
                .find(|(k, _)| k == "boundary")
                .map(|(_, v)| v.clone())
                .filter(|b| !b.is_empty() && b.len() <= 200);
            if let Some(b) = boundary {
                children = self.split_multipart(body_start..end, b.as_bytes());
            }
        }
        if is_multipart && children.is_empty() {
            // No usable boundary, or beyond a bound: describe it as text
            // so the structure stays valid (RFC 3501 needs >= 1 body part).
            media_type = "text".into();
            subtype = "plain".into();
            params.clear();
        }
        if media_type == "text" && !params.iter().any(|(k, _)| k == "charset") {
            params.push(("charset".into(), "us-ascii".into()));
        }
        let mut part = MimePart {
            id: hv("Content-ID"),
            description: hv("Content-Description"),
            encoding,
            size: body.len() as u64,
            lines: count_lines(body),
            md5: hv("Content-MD5"),
            disposition,
            language,
            location: hv("Content-Location"),
            header_range: (start as u64, body_start as u64),
            body_range: (body_start as u64, end as u64),
            parts: Vec::new(),
            embedded: None,
            media_type,
            subtype,
            params,
        };
        if !children.is_empty() {
            let child_default = if part.subtype == "digest" {
                Default::Message
            } else {
                Default::Text
            };
            for r in children {
                let h = header::split(self.root.get(r.clone()).unwrap_or_default(), MAX_FIELDS);
                self.truncated |= h.cut;
                part.parts.push(self.part(r, h, depth + 1, child_default));
            }
        } else if is_message {
            let inner = header::split(body, MAX_FIELDS);
            self.truncated |= inner.cut;
            let env = envelope(&inner);
            let st = if deep {
                // Beyond a bound: the enclosed message as one text leaf.
                let hs = body_start + inner.len;
                leaf(self.root, body_start, hs.min(end), end)
            } else {
                self.parts_left = self.parts_left.saturating_sub(1);
                for f in &inner.fields {
                    if self.search_room() == 0 {
                        break;
                    }
                    let line = format!(
                        "{}: {}",
                        header::text(f.name),
                        header::decoded_value(f.value, MAX_VALUE)
                    );
                    self.push_text(&line);
                }
                self.part(body_start..end, inner, depth + 1, Default::Text)
            };
            part.embedded = Some(Box::new((env, st)));
        } else if part.media_type == "text" && self.search_room() > 0 {
            // Decode no more than can still be kept (base64 is 4:3).
            let take = body.len().min(self.search_room().saturating_mul(2) + 16);
            let decoded = header::transfer_decode(&body[..take], &part.encoding);
            let charset = part
                .params
                .iter()
                .find(|(k, _)| k == "charset")
                .map(|(_, v)| v.as_str());
            let s = header::charset_text(&decoded, charset);
            self.push_text(&s);
        }
        part
    }

    /// The body ranges of a multipart's parts (RFC 2046 §5.1.1): between
    /// delimiter lines `--boundary` (the line break before one belongs to
    /// it), up to the close delimiter `--boundary--` or the end. At most
    /// `parts_left` parts; beyond that the last one runs to the end.
    fn split_multipart(&mut self, body: Range<usize>, boundary: &[u8]) -> Vec<Range<usize>> {
        let root = self.root;
        let Some(hay) = root.get(body.clone()) else {
            return Vec::new();
        };
        let mut needle = b"--".to_vec();
        needle.extend_from_slice(boundary);
        let finder = memmem::Finder::new(&needle);
        let mut parts: Vec<Range<usize>> = Vec::new();
        // Start of the current part's content, once the first delimiter is seen.
        let mut open: Option<usize> = None;
        let mut from = 0;
        while let Some(off) = finder.find(&hay[from..]) {
            let at = from + off;
            from = at + needle.len();
            if at > 0 && hay[at - 1] != b'\n' {
                continue;
            }
            let after = &hay[at + needle.len()..];
            let close = after.starts_with(b"--");
            let line_end =
                memchr::memchr(b'\n', after).map_or(hay.len(), |i| at + needle.len() + i + 1);
            let tail = if close { &after[2..] } else { after };
            let rest_of_line = &tail[..tail.iter().position(|&c| c == b'\n').unwrap_or(tail.len())];
            if !rest_of_line.iter().all(|c| c.is_ascii_whitespace()) {
                continue;
            }
            if let Some(s) = open.take() {
                // The line break before the delimiter belongs to it.
                let mut e = at;
                if e > s && hay[e - 1] == b'\n' {
                    e -= 1;
                    if e > s && hay[e - 1] == b'\r' {
                        e -= 1;
                    }
                }
                parts.push(body.start + s..body.start + e.max(s));
            }
            if close {
                return parts;
            }
            if self.parts_left == 0 {
                // Beyond the bound: the last part keeps everything after.
                self.truncated = true;
                if let Some(last) = parts.last_mut() {
                    last.end = body.end;
                }
                return parts;
            }
            self.parts_left -= 1;
            open = Some(line_end.min(hay.len()));
            from = from.max(line_end.min(hay.len()));
        }
        if let Some(s) = open {
            // No close delimiter: the last part runs to the end.
            parts.push(body.start + s..body.end);
        }
        parts
    }
}

/// A text/plain part with the given header and body extents.
fn leaf(root: &[u8], start: usize, body_start: usize, end: usize) -> MimePart {
    let body = root.get(body_start..end).unwrap_or_default();
    MimePart {
        media_type: "text".into(),
        subtype: "plain".into(),
        params: vec![("charset".into(), "us-ascii".into())],
        encoding: "7bit".into(),
        size: body.len() as u64,
        lines: count_lines(body),
        header_range: (start as u64, body_start as u64),
        body_range: (body_start as u64, end as u64),
        ..MimePart::default()
    }
}

fn cut_str(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

fn truncate(mut s: String) -> String {
    let n = cut_str(&s, MAX_SEARCH_TEXT).len();
    s.truncate(n);
    s
}

fn count_lines(body: &[u8]) -> u64 {
    let n = memchr::memchr_iter(b'\n', body).count() as u64;
    if body.last().is_some_and(|&b| b != b'\n') {
        n + 1
    } else {
        n
    }
}

/// Build the envelope from a header block.
fn envelope(head: &Head<'_>) -> Envelope {
    let one = |name: &str| {
        head.first(name)
            .map(|f| header::raw_value(f.value, MAX_VALUE))
    };
    let list = |name: &str| {
        head.first(name)
            .map(|f| addresses(&header::raw_value(f.value, MAX_VALUE)))
            .unwrap_or_default()
    };
    Envelope {
        date: one("Date"),
        subject: one("Subject"),
        from: list("From"),
        sender: list("Sender"),
        reply_to: list("Reply-To"),
        to: list("To"),
        cc: list("Cc"),
        bcc: list("Bcc"),
        in_reply_to: one("In-Reply-To"),
        message_id: one("Message-ID"),
    }
}

/// `Date:` value to unix seconds at the sender's local wall-clock time.
fn local_date(value: &str) -> Option<i64> {
    // dateparse is lenient: demand at least a day and a year.
    if value.chars().filter(char::is_ascii_digit).count() < 3 {
        return None;
    }
    let utc = mailparse::dateparse(value).ok()?;
    let zone = value
        .split_whitespace()
        .rev()
        .find(|t| (t.starts_with('+') || t.starts_with('-')) && t.len() == 5)
        .and_then(|t| {
            let sign = if t.starts_with('-') { -1 } else { 1 };
            let hh: i64 = t.get(1..3)?.parse().ok()?;
            let mm: i64 = t.get(3..5)?.parse().ok()?;
            Some(sign * (hh * 3600 + mm * 60))
        })
        .unwrap_or(0);
    Some(utc + zone)
}

#[cfg(test)]
mod tests;
