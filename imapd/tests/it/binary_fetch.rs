//! BINARY (RFC 3516) over a real socket on parts large enough to be
//! streamed: decoded octets exact, BINARY.SIZE, partial windows across the
//! pump's chunk boundaries, literal8 when the data holds NUL, and
//! UNKNOWN-CTE ending a FETCH cleanly after earlier messages were sent.

use crate::util::*;
use base64::Engine as _;

/// Deterministic bytes, NULs included.
fn data(n: usize) -> Vec<u8> {
    let mut x = 0x2545_f491_u32;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

fn wrap(text: &[u8], width: usize) -> Vec<u8> {
    text.chunks(width)
        .flat_map(|l| l.iter().copied().chain(*b"\r\n"))
        .collect()
}

fn message(parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut m =
        b"Subject: big\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=BB\r\n\r\n"
            .to_vec();
    for (cte, body) in parts {
        m.extend_from_slice(
            format!("--BB\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: {cte}\r\n\r\n").as_bytes(),
        );
        m.extend_from_slice(body);
        m.extend_from_slice(b"\r\n");
    }
    m.extend_from_slice(b"--BB--\r\n");
    m
}

#[test]
fn large_base64_and_qp_parts_stream_decoded_with_partial_windows() {
    let s = TestServer::start();
    let u = s.add_user("bob@localhost");
    let raw = data(3 << 20);
    let b64 = wrap(
        base64::engine::general_purpose::STANDARD
            .encode(&raw)
            .as_bytes(),
        76,
    );
    let text: Vec<u8> = (0..40_000)
        .flat_map(|i| format!("line {i} caf\u{e9} = tab\there  \r\n").into_bytes())
        .collect();
    let qp = quoted_printable::encode(&text);
    s.deliver(u, &message(&[("base64", &b64), ("quoted-printable", &qp)]));
    let mut c = s.login("bob@localhost");
    c.ok("SELECT INBOX");

    let r = c.ok("FETCH 1 (BINARY.SIZE[1] BINARY.SIZE[2])");
    // The encoded part ends with a line break of its own (the CRLF before
    // the boundary belongs to the boundary): decoded, a CRLF.
    let want_text = &text[..];
    assert!(
        r[0].contains(&format!(
            "BINARY.SIZE[1] {} BINARY.SIZE[2] {}",
            raw.len(),
            want_text.len()
        )),
        "{}",
        &r[0]
    );
    let tag = c.next_tag();
    c.send(format!("{tag} FETCH 1 BINARY.PEEK[1]\r\n").as_bytes());
    let got = c.read_literal_after("BINARY[1] ~{");
    assert!(got == raw, "decoded base64 differs ({} octets)", got.len());
    c.until(&tag);
    let tag = c.next_tag();
    c.send(format!("{tag} FETCH 1 BINARY.PEEK[2]\r\n").as_bytes());
    let got = c.read_literal_after("BINARY[2] {");
    assert!(got == want_text, "decoded quoted-printable differs");
    c.until(&tag);
    // Windows across the chunks the pump decodes (256 KiB of base64 each).
    for (o, n) in [
        (0usize, 10usize),
        (196_600, 200),
        (262_100, 300),
        (1_000_000, 400_000),
        (raw.len() - 5, 100),
    ] {
        let tag = c.next_tag();
        c.send(format!("{tag} FETCH 1 BINARY.PEEK[1]<{o}.{n}>\r\n").as_bytes());
        let got = c.read_literal_after(&format!("BINARY[1]<{o}> "));
        let end = (o + n).min(raw.len());
        assert!(got == raw[o..end], "window {o}.{n}");
        c.until(&tag);
    }
    // BINARY[] of the whole message: the decoded parts' headers say binary.
    let tag = c.next_tag();
    c.send(format!("{tag} FETCH 1 BINARY.PEEK[]\r\n").as_bytes());
    let whole = c.read_literal_after("BINARY[] ~{");
    c.until(&tag);
    let needle = b"Content-Transfer-Encoding: binary\r\n\r\n";
    assert_eq!(
        whole.windows(needle.len()).filter(|w| w == needle).count(),
        2
    );
    assert!(whole.windows(raw.len()).any(|w| w == raw));
    // BINARY (not PEEK) sets \Seen.
    let r = c.ok("FETCH 1 BINARY[2]<0.4>");
    assert!(r[0].contains("\\Seen"), "{}", &r[0]);
}

#[test]
fn unknown_encoding_ends_the_fetch_with_no_after_earlier_messages() {
    let s = TestServer::start();
    let u = s.add_user("bob@localhost");
    s.deliver(u, &message(&[("base64", b"aGk=")]));
    s.deliver(u, &message(&[("x-uuencode", b"begin 644 x\r\nend")]));
    s.deliver(u, &message(&[("7bit", b"plain")]));
    let mut c = s.login("bob@localhost");
    c.ok("SELECT INBOX");
    let r = c.cmd("FETCH 1:3 BINARY.PEEK[1]");
    assert!(r[0].starts_with("* 1 FETCH (BINARY[1] {2}\r\nhi)"), "{r:?}");
    assert!(
        !r.iter()
            .any(|l| l.starts_with("* 2 FETCH") || l.starts_with("* 3 FETCH")),
        "{r:?}"
    );
    assert!(r.last().unwrap().contains("NO [UNKNOWN-CTE]"), "{r:?}");
    // BODY of it works, and the session goes on.
    let r = c.ok("FETCH 2 BODY.PEEK[1]");
    assert!(r[0].contains("begin 644 x"), "{r:?}");
    let r = c.ok("FETCH 3 BINARY.PEEK[1]");
    assert!(r[0].contains("plain"), "{r:?}");
}
