//! PREVIEW (RFC 8970): FETCH PREVIEW gives at most 256 characters of the
//! first inline text part, plain or HTML, decoded; "" when there is none;
//! it does not set \Seen, and reads a bounded prefix of a large part.

use crate::util::*;

/// APPEND `msg` to INBOX.
fn append(c: &mut Client, msg: &[u8]) {
    c.send(format!("a APPEND INBOX {{{}+}}\r\n", msg.len()).as_bytes());
    c.send(msg);
    c.send(b"\r\n");
    let r = c.until("a");
    assert!(r.last().unwrap().starts_with("a OK"), "{r:?}");
}

#[test]
fn previews_of_plain_html_encoded_and_textless_messages() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let mut c = s.login("bob@localhost");
    let r = c.ok("CAPABILITY");
    assert!(r[0].split(' ').any(|w| w == "PREVIEW"), "{r:?}");
    append(&mut c, MULTIPART);
    append(
        &mut c,
        b"Subject: html\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\
Content-Transfer-Encoding: base64\r\n\r\n\
PGh0bWw+PGhlYWQ+PHN0eWxlPnB7fTwvc3R5bGU+PC9oZWFkPjxib2R5PjxwPkhpIDxiPnRoZXJl\r\n\
PC9iPiAmYW1wOyB5b3U8L3A+PC9ib2R5PjwvaHRtbD4=\r\n",
    );
    append(
        &mut c,
        b"Subject: image\r\nMIME-Version: 1.0\r\nContent-Type: image/png\r\n\
Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n",
    );
    append(
        &mut c,
        b"Subject: latin1\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\r\nGr=FC=DFe \"aus\" K=F6ln\r\n",
    );
    c.ok("SELECT INBOX");
    let r = c.ok("FETCH 1:4 (PREVIEW)");
    assert_eq!(r[0], "* 1 FETCH (PREVIEW \"Hello Bob, this is the text.\")");
    assert_eq!(r[1], "* 2 FETCH (PREVIEW \"Hi there & you\")");
    assert_eq!(r[2], "* 3 FETCH (PREVIEW \"\")");
    // UTF-8 goes as a literal (a quoted string is 7-bit, RFC 3501 §9).
    let text = "Grüße \"aus\" Köln";
    assert_eq!(
        r[3],
        format!("* 4 FETCH (PREVIEW {{{}}}\r\n{text})", text.len())
    );
    // LAZY changes nothing here; PREVIEW does not set \Seen (it is not
    // BODY[]), and UID FETCH works as ever.
    let r = c.ok("UID FETCH 1 (PREVIEW (LAZY) FLAGS)");
    assert_eq!(
        r[0],
        "* 1 FETCH (UID 1 PREVIEW \"Hello Bob, this is the text.\" FLAGS (\\Recent))"
    );
}

#[test]
fn previews_are_short_and_read_a_bounded_prefix() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let mut c = s.login("bob@localhost");
    let read = imapd::limits::PREVIEW_READ as usize;
    // 1: a megabyte of text: 256 characters of it.
    let mut m = b"Subject: long\r\n\r\n".to_vec();
    m.extend("lorem ipsum ".repeat(90_000).as_bytes());
    append(&mut c, &m);
    // 2 and 3: HTML whose visible text starts just within, or just past,
    // the octets a preview reads.
    for (subject, style) in [("within", read - 100), ("past", read + 100)] {
        let mut m =
            format!("Subject: {subject}\r\nContent-Type: text/html\r\n\r\n<style>").into_bytes();
        m.extend(std::iter::repeat_n(b'x', style - "<style>".len()));
        m.extend(b"</style><p>visible text</p>\r\n");
        append(&mut c, &m);
    }
    c.ok("SELECT INBOX");
    let r = c.ok("FETCH 1:3 PREVIEW");
    let long = r[0]
        .strip_prefix("* 1 FETCH (PREVIEW \"")
        .and_then(|s| s.strip_suffix("\")"))
        .unwrap();
    assert_eq!(long.chars().count(), imapd::limits::PREVIEW_CHARS, "{long}");
    assert!(long.starts_with("lorem ipsum lorem"), "{long}");
    assert_eq!(r[1], "* 2 FETCH (PREVIEW \"visible text\")");
    assert_eq!(r[2], "* 3 FETCH (PREVIEW \"\")");
}
