#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::*;

/// Depth of the first-child chain below `p`, through embedded messages.
fn depth_of(p: &MimePart) -> usize {
    let mut depth = 0;
    let mut part = p;
    loop {
        if let Some(child) = part.parts.first() {
            part = child;
        } else if let Some(inner) = &part.embedded {
            part = &inner.1;
        } else {
            return depth;
        }
        depth += 1;
    }
}

fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn deep_nesting_does_not_overflow_the_stack() {
    let mut raw = String::from("Subject: deep\r\n");
    for i in 0..20_000 {
        raw.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=b{i}x\r\n\r\n--b{i}x\r\n"
        ));
    }
    raw.push_str("\r\nleaf\r\n");
    let p = on_small_stack(move || parse_message(raw.as_bytes()));
    assert_eq!(p.envelope.subject.as_deref(), Some("deep"));
    assert!(p.truncated);
    assert_eq!(depth_of(&p.structure), MAX_DEPTH);
}

#[test]
fn encoded_word_content_types_count_as_nesting() {
    // The issue-12 abort: each Content-Type an RFC 2047 encoded word that
    // decodes to multipart/mixed. The bound is on the parsed structure,
    // not on the text `multipart/`, so whatever the value says, depth
    // stops at MAX_DEPTH.
    let mut raw = String::from("Subject: deep\r\n");
    for i in 0..5_000 {
        raw.push_str(&format!(
            "Content-Type: =?us-ascii?B?bXVsdGlwYXJ0L21peGVk?=; boundary=b{i}x\r\n\r\n--b{i}x\r\n"
        ));
    }
    raw.push_str("\r\nleaf\r\n");
    let p = on_small_stack(move || parse_message(raw.as_bytes()));
    assert!(depth_of(&p.structure) <= MAX_DEPTH);
}

#[test]
fn nested_messages_are_bounded_too() {
    let mut raw = String::new();
    for _ in 0..10_000 {
        raw.push_str("Content-Type: message/rfc822\r\n\r\n");
    }
    raw.push_str("Subject: in\r\n\r\nleaf\r\n");
    let p = on_small_stack(move || parse_message(raw.as_bytes()));
    assert!(p.truncated);
    assert_eq!(depth_of(&p.structure), MAX_DEPTH + 1);
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
    assert_eq!(depth_of(&p.structure), 20);
    assert!(!p.truncated);
}

#[test]
fn flat_multipart_beyond_the_part_bound_keeps_the_rest_in_the_last_part() {
    let mut raw = String::from("Content-Type: multipart/mixed; boundary=x\r\n\r\n");
    for i in 0..(MAX_PARTS + 100) {
        raw.push_str(&format!("--x\r\n\r\n{i}\r\n"));
    }
    raw.push_str("--x--\r\n");
    let p = parse_message(raw.as_bytes());
    assert_eq!(p.structure.parts.len(), MAX_PARTS);
    assert!(p.truncated);
    let last = p.structure.parts.last().unwrap();
    assert_eq!(last.body_range.1, p.structure.body_range.1);
}

#[test]
fn parts_and_offsets() {
    let raw = b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\npreamble\r\n--b\r\n\
Content-Type: text/plain\r\n\r\none\r\n--b \r\n\r\ntwo\r\n--b--\r\nepilogue";
    let p = parse_message(raw);
    let s = &p.structure;
    assert_eq!(s.parts.len(), 2);
    let one = &s.parts[0];
    let r = |x: (u64, u64)| &raw[x.0 as usize..x.1 as usize];
    assert_eq!(r(one.body_range), b"one");
    assert_eq!(r(one.header_range), b"Content-Type: text/plain\r\n\r\n");
    let two = &s.parts[1];
    assert_eq!(r(two.header_range), b"\r\n");
    assert_eq!(r(two.body_range), b"two");
    assert_eq!(p.body_text, "one\ntwo\n");
}

#[test]
fn digest_parts_default_to_message_rfc822() {
    let raw =
        b"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: first\r\n\r\n1\r\n\
--d\r\n\r\nSubject: second\r\n\r\n2\r\n--d--\r\n";
    let p = parse_message(raw);
    assert_eq!(p.structure.parts.len(), 2);
    for (part, subject) in p.structure.parts.iter().zip(["first", "second"]) {
        assert_eq!(
            (part.media_type.as_str(), part.subtype.as_str()),
            ("message", "rfc822")
        );
        let inner = part.embedded.as_deref().unwrap();
        assert_eq!(inner.0.subject.as_deref(), Some(subject));
    }
}

#[test]
fn boundary_must_be_the_whole_line() {
    // `--b10` is not a delimiter of boundary `b1`.
    let raw = b"Content-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\n\r\nx\r\n--b10\r\ny\r\n--b1--\r\n";
    let p = parse_message(raw);
    assert_eq!(p.structure.parts.len(), 1);
    let b = p.structure.parts[0].body_range;
    assert_eq!(&raw[b.0 as usize..b.1 as usize], b"x\r\n--b10\r\ny");
}

#[test]
fn many_header_fields_are_bounded() {
    let mut raw = String::new();
    for i in 0..100_000 {
        raw.push_str(&format!("X-H{i}: v\r\n"));
    }
    raw.push_str("Subject: s\r\n\r\nbody\r\n");
    let p = parse_message(raw.as_bytes());
    assert_eq!(p.headers.len(), MAX_FIELDS);
    assert!(p.truncated);
    // The header's extent is exact all the same.
    assert_eq!(p.structure.body_range.0 as usize, raw.len() - 6);
}

#[test]
fn long_encoded_subject_is_decoded() {
    let subject = "=?utf-8?q?caf=C3=A9?= ".repeat(50_000);
    let raw = format!("Subject: {subject}\r\n\r\nx");
    let p = parse_message(raw.as_bytes());
    let (_, v) = p.headers.iter().find(|(k, _)| k == "subject").unwrap();
    assert!(v.starts_with("cafécafé"));
    assert!(v.len() <= MAX_VALUE * 2);
}

#[test]
fn base64_text_is_searchable() {
    let raw = b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nY2Fmw6k=\r\n";
    let p = parse_message(raw);
    assert_eq!(p.body_text, "café\n");
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
    assert_eq!(p.structure.body_range, (0, raw.len() as u64));
    assert!(p.envelope.from.is_empty());
}

#[test]
fn header_ends_at_blank_line() {
    let p = parse_message(b"A: b\r\n\r\nbody");
    assert_eq!(p.structure.header_range, (0, 8));
    assert_eq!(p.structure.body_range, (8, 12));
    let p = parse_message(b"A: b\n\nxy");
    assert_eq!(p.structure.body_range, (6, 8));
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
fn search_text_is_capped() {
    let big = "é".repeat(MAX_SEARCH_TEXT);
    let raw = format!("Content-Type: text/plain; charset=utf-8\r\n\r\n{big}");
    let p = parse_message(raw.as_bytes());
    assert!(p.body_text.len() <= MAX_SEARCH_TEXT);
}

/// Every range lies inside the message, headers precede bodies, and
/// children lie inside their parent's body.
fn check(part: &MimePart, lo: u64, hi: u64) -> Result<(), TestCaseError> {
    let (h0, h1) = part.header_range;
    let (b0, b1) = part.body_range;
    prop_assert!(lo <= h0 && h0 <= h1 && h1 == b0 && b0 <= b1 && b1 <= hi);
    prop_assert_eq!(part.size, b1 - b0);
    prop_assert!(part.media_type != "multipart" || !part.parts.is_empty());
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

#[test]
fn address_fields_are_indexed_with_their_addresses_normalised() {
    let p =
        parse_message(b"From: <user-from (comment)@ (comment) domain.org>\r\nSubject: s\r\n\r\nx");
    let (_, v) = p.headers.iter().find(|(k, _)| k == "from").unwrap();
    assert!(v.contains("user-from@domain.org"), "{v}");
    let (_, v) = p.headers.iter().find(|(k, _)| k == "subject").unwrap();
    assert_eq!(v, "s");
}
