//! Delivery-time parsing with mailparse: envelope (RFC 5322 §3.6,
//! RFC 3501 §7.4.2), MIME tree with byte offsets (RFC 2045 §5-6,
//! RFC 2046 §5), decoded header/text for search. A message that does not
//! parse still gets minimal metadata: mail is never refused here.

use mailparse::{MailHeader, MailHeaderMap, ParsedMail};

use crate::meta::{Address, Envelope, MimePart};

/// Decoded text kept for searching is cut at this many bytes per message.
pub const MAX_SEARCH_TEXT: usize = 2 * 1024 * 1024;
/// MIME nesting deeper than this is described as an opaque leaf.
const MAX_DEPTH: usize = 32;

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
}

/// More `multipart/` mentions than this and the MIME tree is not parsed:
/// mailparse recurses once per nesting level without limit, so a hostile
/// message could overflow the writer thread's stack.
const MAX_MULTIPARTS: usize = 256;

fn too_many_multiparts(raw: &[u8]) -> bool {
    let needle = b"multipart/";
    raw.windows(needle.len())
        .filter(|w| w.eq_ignore_ascii_case(needle))
        .nth(MAX_MULTIPARTS)
        .is_some()
}

/// Parse `raw`; never fails.
pub(crate) fn parse_message(raw: &[u8]) -> Parsed {
    if too_many_multiparts(raw) {
        log::warn!("message has over {MAX_MULTIPARTS} multiparts; MIME tree not parsed");
        return match mailparse::parse_headers(raw) {
            Ok((headers, body_start)) => {
                let body = raw.get(body_start..).unwrap_or(&[]);
                let mut p = from_headers(&headers);
                p.structure = leaf_defaults(raw, 0, body_start, raw.len());
                p.body_text = truncate(String::from_utf8_lossy(body).into_owned());
                p
            }
            Err(_) => unparsed(raw),
        };
    }
    match mailparse::parse_mail(raw) {
        Ok(mail) => {
            let mut p = from_headers(&mail.headers);
            p.structure = mime_part(raw, &mail, 0, &mut p.body_text);
            p
        }
        Err(e) => {
            log::warn!("message does not parse ({e}); storing with minimal metadata");
            unparsed(raw)
        }
    }
}

fn unparsed(raw: &[u8]) -> Parsed {
    Parsed {
        structure: fallback_structure(raw),
        body_text: truncate(String::from_utf8_lossy(raw).into_owned()),
        ..Parsed::default()
    }
}

/// Envelope, header index and sent date from the top-level header.
fn from_headers(hs: &[MailHeader]) -> Parsed {
    let mut headers = Vec::new();
    let mut header_text = String::new();
    for h in hs {
        let name = h.get_key().to_ascii_lowercase();
        let value = h.get_value();
        header_text.push_str(&h.get_key());
        header_text.push_str(": ");
        header_text.push_str(&value);
        header_text.push('\n');
        headers.push((name, value));
    }
    Parsed {
        envelope: envelope(hs),
        headers,
        header_text: truncate(header_text),
        sent_date: hs
            .get_first_header("Date")
            .and_then(|h| local_date(&raw_value(h))),
        ..Parsed::default()
    }
}

/// Structure for an unparseable message: header up to the first blank line,
/// the rest as a text/plain body.
fn fallback_structure(raw: &[u8]) -> MimePart {
    let split = find(raw, b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| find(raw, b"\n\n").map(|i| i + 2))
        .unwrap_or(0);
    leaf_defaults(raw, 0, split, raw.len())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn leaf_defaults(raw: &[u8], start: usize, body_start: usize, end: usize) -> MimePart {
    let body = raw.get(body_start..end).unwrap_or(&[]);
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

fn count_lines(body: &[u8]) -> u64 {
    let n = body.iter().filter(|&&b| b == b'\n').count() as u64;
    if body.last().is_some_and(|&b| b != b'\n') {
        n + 1
    } else {
        n
    }
}

/// Byte offset of `part` inside `root`; `part` is always a sub-slice.
fn offset(root: &[u8], part: &[u8]) -> usize {
    (part.as_ptr() as usize).saturating_sub(root.as_ptr() as usize)
}

fn truncate(mut s: String) -> String {
    if s.len() > MAX_SEARCH_TEXT {
        let mut cut = MAX_SEARCH_TEXT;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

fn push_text(text: &mut String, more: &str) {
    if text.len() < MAX_SEARCH_TEXT {
        text.push_str(more);
        text.push('\n');
        let t = std::mem::take(text);
        *text = truncate(t);
    }
}

fn mime_part(root: &[u8], p: &ParsedMail, depth: usize, text: &mut String) -> MimePart {
    let start = offset(root, p.raw_bytes);
    let header_len = p.get_headers().get_raw_bytes().len();
    let body_start = start + header_len;
    let end = start + p.raw_bytes.len();
    let body = root.get(body_start..end).unwrap_or(&[]);
    let (mut media_type, mut subtype) = match p.ctype.mimetype.split_once('/') {
        Some((t, s)) => (t.trim().to_ascii_lowercase(), s.trim().to_ascii_lowercase()),
        None => ("text".to_string(), "plain".to_string()),
    };
    let mut params: Vec<(String, String)> = p
        .ctype
        .params
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if media_type == "multipart" && p.subparts.is_empty() {
        // A multipart whose boundary never appears: describe it as text so
        // the structure stays valid (RFC 3501 needs >= 1 body part).
        media_type = "text".into();
        subtype = "plain".into();
        params.clear();
    }
    if media_type == "text" && !params.iter().any(|(k, _)| k == "charset") {
        params.push(("charset".into(), "us-ascii".into()));
    }
    let hv = |name: &str| p.headers.get_first_header(name).map(raw_value);
    let encoding = hv("Content-Transfer-Encoding")
        .map(|e| e.trim().to_ascii_lowercase())
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| "7bit".into());
    let disposition = p.headers.get_first_value("Content-Disposition").map(|v| {
        let kind = v
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let parsed = mailparse::parse_content_disposition(&v);
        (kind, parsed.params.into_iter().collect::<Vec<_>>())
    });
    let language = hv("Content-Language")
        .map(|l| {
            l.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
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
    if depth >= MAX_DEPTH {
        return part;
    }
    if part.media_type == "multipart" {
        part.parts = p
            .subparts
            .iter()
            .map(|sp| mime_part(root, sp, depth + 1, text))
            .collect();
    } else if part.media_type == "message" && (part.subtype == "rfc822" || part.subtype == "global")
    {
        if let Ok(inner) = mailparse::parse_mail(body) {
            let env = envelope(&inner.headers);
            for h in &inner.headers {
                push_text(text, &format!("{}: {}", h.get_key(), h.get_value()));
            }
            let st = mime_part(root, &inner, depth + 1, text);
            part.embedded = Some(Box::new((env, st)));
        }
    } else if part.media_type == "text" {
        match p.get_body() {
            Ok(s) => push_text(text, &s),
            Err(_) => push_text(text, &String::from_utf8_lossy(body)),
        }
    }
    part
}

/// The header value as sent, unfolded and trimmed (encoded-words kept).
fn raw_value(h: &MailHeader) -> String {
    let v = String::from_utf8_lossy(h.get_value_raw());
    v.replace("\r\n", "").replace('\n', "").trim().to_string()
}

/// Build the envelope from a header block.
fn envelope(headers: &[MailHeader]) -> Envelope {
    let one = |name: &str| headers.get_first_header(name).map(raw_value);
    let list = |name: &str| {
        headers
            .get_first_header(name)
            .map(|h| addresses(&raw_value(h)))
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

fn single(name: Option<String>, addr: &str) -> Address {
    // mailparse 0.16 leaves the ", " after a group's ';' on the next address.
    let addr = addr.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
    let (local, host) = match addr.rsplit_once('@') {
        Some((l, h)) => (l.to_string(), h.to_string()),
        // No domain: keep host present (empty) so it is not a group marker.
        None => (addr.to_string(), String::new()),
    };
    Address {
        name: name.filter(|n| !n.is_empty()),
        local: Some(local),
        host: Some(host),
    }
}

/// Parse an address list; groups become RFC 3501 start/end markers.
pub(crate) fn addresses(value: &str) -> Vec<Address> {
    let Ok(list) = mailparse::addrparse(value) else {
        // Keep something rather than lose e.g. `From: root`.
        let v = value.trim();
        return if v.is_empty() {
            Vec::new()
        } else {
            vec![single(None, v)]
        };
    };
    let mut out = Vec::new();
    for a in list.iter() {
        match a {
            mailparse::MailAddr::Single(s) => out.push(single(s.display_name.clone(), &s.addr)),
            mailparse::MailAddr::Group(g) => {
                out.push(Address {
                    name: None,
                    local: Some(g.group_name.clone()),
                    host: None,
                });
                for s in &g.addrs {
                    out.push(single(s.display_name.clone(), &s.addr));
                }
                out.push(Address::default());
            }
        }
    }
    out
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        let mut raw = String::from("Subject: deep\r\n");
        for i in 0..20_000 {
            raw.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=b{i}x\r\n\r\n--b{i}x\r\n"
            ));
        }
        raw.push_str("\r\nleaf\r\n");
        // Run on a small stack, as a thread would have.
        let p = std::thread::Builder::new()
            .stack_size(512 * 1024)
            .spawn(move || parse_message(raw.as_bytes()))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(p.envelope.subject.as_deref(), Some("deep"));
        assert!(p.structure.parts.is_empty());
    }

    #[test]
    fn moderate_nesting_is_parsed() {
        let mut raw = String::from("Subject: nest\r\n");
        for i in 0..20 {
            raw.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=b{i}x\r\n\r\n--b{i}x\r\n"
            ));
        }
        raw.push_str("\r\nleaf\r\n");
        let p = parse_message(raw.as_bytes());
        let mut depth = 0;
        let mut part = &p.structure;
        while let Some(child) = part.parts.first() {
            depth += 1;
            part = child;
        }
        assert_eq!(depth, 20);
    }

    #[test]
    fn line_counts() {
        for (body, n) in [
            (&b""[..], 0),
            (b"a", 1),
            (b"a\r\n", 1),
            (b"a\r\nb", 2),
            (b"\r\n\r\n", 2),
        ] {
            assert_eq!(count_lines(body), n, "{body:?}");
        }
    }

    #[test]
    fn local_date_disregards_zone() {
        // 23:30 -0500 on the 23rd is 04:30 UTC on the 24th.
        let t = local_date("Mon, 23 Nov 2026 23:30:00 -0500").unwrap();
        assert_eq!(t, 1_795_392_000 + 23 * 3600 + 30 * 60);
        let u = local_date("Tue, 24 Nov 2026 10:00:00 GMT").unwrap();
        assert_eq!(u, 1_795_478_400 + 10 * 3600);
        assert!(local_date("not a date at all").is_none());
    }

    #[test]
    fn headerless_message_is_one_text_part() {
        let raw = b"just text, no header\r\n";
        let p = parse_message(raw);
        assert_eq!(p.structure.media_type, "text");
        assert_eq!(p.structure.body_range.1, raw.len() as u64);
        assert!(p.envelope.from.is_empty());
    }

    #[test]
    fn fallback_splits_at_blank_line() {
        let raw = b"A: b\r\n\r\nbody";
        let s = fallback_structure(raw);
        assert_eq!(s.header_range, (0, 8));
        assert_eq!(s.body_range, (8, 12));
        let s = fallback_structure(b"A: b\n\nxy");
        assert_eq!(s.body_range, (6, 8));
    }

    #[test]
    fn multipart_without_boundary_becomes_text() {
        let raw = b"Content-Type: multipart/mixed; boundary=zz\r\n\r\nno parts here\r\n";
        let p = parse_message(raw);
        assert_eq!(
            (
                p.structure.media_type.as_str(),
                p.structure.subtype.as_str()
            ),
            ("text", "plain")
        );
        assert!(p.structure.parts.is_empty());
    }

    #[test]
    fn address_without_domain_is_not_a_group_marker() {
        let a = addresses("root");
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].local.as_deref(), Some("root"));
        assert_eq!(a[0].host.as_deref(), Some(""));
        assert!(addresses("undisclosed-recipients:;")
            .iter()
            .any(|x| x.host.is_none() && x.local.is_some()));
    }

    #[test]
    fn search_text_is_capped() {
        let mut t = String::new();
        let big = "é".repeat(MAX_SEARCH_TEXT);
        push_text(&mut t, &big);
        assert!(t.len() <= MAX_SEARCH_TEXT);
        push_text(&mut t, "more");
        assert!(!t.ends_with("more\n"));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod bench {
    #[test]
    #[ignore = "benchmark: prints figures"]
    fn bench_parse_realistic() {
        let text = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(60);
        let att =
            "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODkwMTIzNDU2Nzg5MDEyMzQ1Njc4\r\n".repeat(100);
        let raw = format!(
            "From: \"S\" <s@example.org>\r\nTo: a@x\r\nSubject: r\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\n\
             Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n{text}\r\n\
             --b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n{att}--b1--\r\n"
        );
        let t = std::time::Instant::now();
        for _ in 0..1000 {
            let p = super::parse_message(raw.as_bytes());
            std::hint::black_box(serde_json::to_string(&p.structure).unwrap());
        }
        println!(
            "parse + json of a {}-byte message: {:?} each",
            raw.len(),
            t.elapsed() / 1000
        );
    }
}

#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;

    /// Every range lies inside the message, headers precede bodies, and
    /// children lie inside their parent's body.
    fn check(part: &MimePart, lo: u64, hi: u64) -> Result<(), TestCaseError> {
        let (h0, h1) = part.header_range;
        let (b0, b1) = part.body_range;
        prop_assert!(lo <= h0 && h0 <= h1 && h1 == b0 && b0 <= b1 && b1 <= hi);
        prop_assert_eq!(part.size, b1 - b0);
        for child in &part.parts {
            check(child, b0, b1)?;
        }
        if let Some(inner) = &part.embedded {
            check(&inner.1, b0, b1)?;
        }
        Ok(())
    }

    const SEED: &str = "From: a@b\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\n\
        --X\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nhi\r\n\
        --X\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\naGk=\r\n--X--\r\n";

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_stay_in_bounds(raw in proptest::collection::vec(any::<u8>(), 0..600)) {
            let p = parse_message(&raw);
            check(&p.structure, 0, raw.len() as u64)?;
        }

        #[test]
        fn mutated_mime_stays_in_bounds(cut in 0usize..SEED.len(), pos in 0usize..SEED.len(), byte in any::<u8>()) {
            let mut raw = SEED.as_bytes()[..cut.max(1)].to_vec();
            let at = pos.min(raw.len() - 1);
            raw[at] = byte;
            let p = parse_message(&raw);
            check(&p.structure, 0, raw.len() as u64)?;
        }
    }
}
