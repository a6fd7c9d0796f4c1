//! FETCH: byte-exact bodies and sections sliced from the stored message,
//! partials, HEADER.FIELDS, ENVELOPE, BODYSTRUCTURE, macros, \Seen rules,
//! and a many-message FETCH that is streamed in batches.

use crate::util::*;

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).position(|w| w == needle).unwrap()
}

fn fetch_bytes(c: &mut Client, cmd: &str, item: &str) -> Vec<u8> {
    let tag = c.next_tag();
    c.send(format!("{tag} {cmd}\r\n").as_bytes());
    let data = c.read_literal_after(item);
    let rest = c.until(&tag);
    assert!(rest.last().unwrap().contains("OK"), "{rest:?}");
    data
}

#[test]
fn body_sections_are_byte_exact() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    s.deliver(bob, MULTIPART);
    let mut c = s.login("bob@localhost");
    c.ok("SELECT INBOX");
    let m = MULTIPART;
    let body_start = find(m, b"\r\n\r\n") + 4;
    assert_eq!(fetch_bytes(&mut c, "FETCH 1 BODY.PEEK[]", "BODY[]"), m);
    assert_eq!(fetch_bytes(&mut c, "FETCH 1 RFC822", "RFC822"), m);
    assert_eq!(
        fetch_bytes(&mut c, "FETCH 1 BODY.PEEK[HEADER]", "BODY[HEADER]"),
        &m[..body_start]
    );
    assert_eq!(
        fetch_bytes(&mut c, "FETCH 1 BODY.PEEK[TEXT]", "BODY[TEXT]"),
        &m[body_start..]
    );
    assert_eq!(
        fetch_bytes(&mut c, "FETCH 1 BODY.PEEK[1]", "BODY[1]"),
        b"Hello Bob,\r\nthis is the text."
    );
    let mime = fetch_bytes(&mut c, "FETCH 1 BODY.PEEK[2.MIME]", "BODY[2.MIME]");
    assert!(
        mime.starts_with(b"Content-Type: application/octet-stream") && mime.ends_with(b"\r\n\r\n")
    );
    assert_eq!(
        fetch_bytes(&mut c, "FETCH 1 BODY.PEEK[2]", "BODY[2]"),
        b"AAECAwQ="
    );
    assert_eq!(
        fetch_bytes(&mut c, "FETCH 1 BODY.PEEK[]<6.5>", "BODY[]<6>"),
        b"Alice"
    );
    assert_eq!(
        fetch_bytes(
            &mut c,
            "FETCH 1 BODY.PEEK[HEADER.FIELDS (subject TO)]",
            "HEADER.FIELDS"
        ),
        b"To: bob@localhost, \"Carol C\" <carol@localhost>\r\nSubject: Multi part\r\n\r\n"
    );
    let not = fetch_bytes(
        &mut c,
        "FETCH 1 BODY.PEEK[HEADER.FIELDS.NOT (Content-Type)]",
        "HEADER.FIELDS.NOT",
    );
    assert!(!String::from_utf8_lossy(&not).contains("Content-Type"));
    assert!(String::from_utf8_lossy(&not).contains("Message-ID"));
    let r = c.ok("FETCH 1 BODY.PEEK[3]");
    assert!(r[0].contains("BODY[3] NIL"), "{r:?}");
    let r = c.ok("FETCH 1 RFC822.SIZE");
    assert_eq!(r[0], format!("* 1 FETCH (RFC822.SIZE {})", m.len()));
}

#[test]
fn envelope_and_bodystructure() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    s.deliver(bob, MULTIPART);
    let mut c = s.login("bob@localhost");
    c.ok("SELECT INBOX");
    let r = c.ok("FETCH 1 ENVELOPE");
    assert_eq!(
        r[0],
        "* 1 FETCH (ENVELOPE (\"Mon, 13 Nov 2023 10:00:00 +0000\" \"Multi part\" \
((\"Alice\" NIL \"alice\" \"example.org\")) ((\"Alice\" NIL \"alice\" \"example.org\")) \
((\"Alice\" NIL \"alice\" \"example.org\")) ((NIL NIL \"bob\" \"localhost\")\
(\"Carol C\" NIL \"carol\" \"localhost\")) NIL NIL NIL \"<m1@example.org>\"))"
    );
    let r = c.ok("FETCH 1 BODYSTRUCTURE");
    assert!(
        r[0].starts_with("* 1 FETCH (BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 29 2 NIL NIL NIL NIL)"),
        "{r:?}"
    );
    assert!(r[0].contains("(\"APPLICATION\" \"OCTET-STREAM\" (\"NAME\" \"a.bin\") NIL NIL \"BASE64\" 8 NIL (\"ATTACHMENT\" (\"FILENAME\" \"a.bin\")) NIL NIL)"), "{r:?}");
    assert!(
        r[0].contains(" \"MIXED\" (\"BOUNDARY\" \"XX\") NIL NIL NIL))"),
        "{r:?}"
    );
    // body-type-mpart = 1*body SP media-subtype: no space between parts.
    assert!(r[0].contains("NIL NIL)(\"APPLICATION\""), "{r:?}");
    let r = c.ok("FETCH 1 BODY");
    assert!(
        r[0].starts_with(
            "* 1 FETCH (BODY ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 29 2)"
        ),
        "{r:?}"
    );
    let r = c.ok("FETCH 1 FULL");
    assert!(
        r[0].contains("FLAGS (\\Recent)")
            && r[0].contains("INTERNALDATE")
            && r[0].contains("ENVELOPE")
            && r[0].contains("BODY (")
    );
}

#[test]
fn body_without_peek_sets_seen_and_peek_does_not() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    s.deliver(bob, &simple("a", "1"));
    s.deliver(bob, &simple("b", "2"));
    let mut c = s.login("bob@localhost");
    c.ok("SELECT INBOX");
    c.ok("FETCH 1 BODY.PEEK[]");
    assert_eq!(c.ok("FETCH 1 FLAGS")[0], "* 1 FETCH (FLAGS (\\Recent))");
    let r = c.ok("FETCH 2 BODY[TEXT]");
    assert!(r[0].contains("FLAGS (\\Seen \\Recent)"), "{r:?}");
    assert_eq!(c.ok("SEARCH SEEN")[0], "* SEARCH 2");
    // EXAMINE never sets \Seen.
    c.ok("EXAMINE INBOX");
    c.ok("FETCH 1 RFC822.TEXT");
    c.ok("SELECT INBOX");
    assert_eq!(c.ok("SEARCH UNSEEN")[0], "* SEARCH 1");
}

#[test]
fn uid_fetch_includes_uid_and_handles_star_and_changedsince() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    for i in 0..3 {
        s.deliver(bob, &simple(&format!("m{i}"), "x"));
    }
    let mut c = s.login("bob@localhost");
    c.ok("SELECT INBOX");
    let r = c.ok("UID FETCH 2:* FLAGS");
    assert_eq!(
        &r[..2],
        &[
            "* 2 FETCH (UID 2 FLAGS (\\Recent))",
            "* 3 FETCH (UID 3 FLAGS (\\Recent))"
        ]
    );
    let r = c.ok("UID FETCH 10:* FLAGS");
    assert_eq!(r[0], "* 3 FETCH (UID 3 FLAGS (\\Recent))");
    let r = c.ok("FETCH 3 MODSEQ");
    // (After `* OK [HIGHESTMODSEQ]`: the first CONDSTORE-enabling command.)
    let ms: u64 = grep(&r, "* 3 FETCH")[0]
        .split("MODSEQ (")
        .nth(1)
        .unwrap()
        .trim_end_matches("))")
        .parse()
        .unwrap();
    c.ok("STORE 2 +FLAGS.SILENT (\\Answered)");
    let r = c.ok(&format!("FETCH 1:* (FLAGS) (CHANGEDSINCE {ms})"));
    assert_eq!(r.len(), 2, "{r:?}");
    assert!(
        r[0].starts_with("* 2 FETCH (FLAGS (\\Answered \\Recent) MODSEQ ("),
        "{r:?}"
    );
    let r = c.cmd("FETCH 4 FLAGS");
    assert_eq!(Client::status_of(&r), "BAD");
    c.ok("SELECT Trash");
    assert_eq!(c.ok("FETCH 1:* FLAGS").len(), 1);
    assert_eq!(c.ok("UID FETCH 1:* FLAGS").len(), 1);
    assert_eq!(Client::status_of(&c.cmd("FETCH 1 FLAGS")), "BAD");
}

#[test]
fn large_fetch_is_streamed_completely() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    let big = "y".repeat(20_000);
    for i in 0..600 {
        s.deliver(bob, &simple(&format!("m{i}"), &big));
    }
    let mut c = s.login("bob@localhost");
    c.ok("SELECT INBOX");
    let r = c.ok("FETCH 1:* (UID RFC822.SIZE BODY.PEEK[TEXT])");
    assert_eq!(r.len(), 601);
    assert!(r[599].starts_with("* 600 FETCH (UID 600 "));
    assert!(r.iter().take(600).all(|l| l.contains(&big)));
}

#[test]
fn pipelined_command_waits_for_a_streamed_fetch() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    let body = "z".repeat(300_000);
    for i in 0..8 {
        s.deliver(bob, &simple(&format!("m{i}"), &body));
    }
    let mut c = s.login("bob@localhost");
    c.ok("SELECT INBOX");
    c.send(b"p1 FETCH 1:* BODY.PEEK[]\r\np2 NOOP\r\n");
    let r = c.until("p1");
    assert_eq!(r.len(), 9, "tagged p1 must follow all 8 FETCH responses");
    assert!(r[..8].iter().all(|l| l.contains(&body)));
    assert!(c.until("p2")[0].starts_with("p2 OK"));
}

#[test]
fn huge_message_is_streamed_in_chunks_byte_exact() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    let mut msg = b"Subject: big\r\n\r\n".to_vec();
    for i in 0..120_000u32 {
        msg.extend_from_slice(format!("line {i:08} of a big body\r\n").as_bytes());
    }
    s.deliver(bob, &msg);
    let mut c = s.login("bob@localhost");
    c.ok("SELECT INBOX");
    assert_eq!(fetch_bytes(&mut c, "FETCH 1 BODY.PEEK[]", "BODY[]"), msg);
    let part = fetch_bytes(
        &mut c,
        "FETCH 1 BODY.PEEK[TEXT]<300000.700000>",
        "BODY[TEXT]<300000>",
    );
    assert_eq!(part, &msg[16 + 300_000..16 + 1_000_000]);
    let r = c.ok("FETCH 1 (RFC822.SIZE RFC822.HEADER)");
    assert!(r[0].contains(&format!("RFC822.SIZE {}", msg.len())));
}

/// RFC 3501 §6.4.5 on a message whose body is message/rfc822 (a forward
/// as the whole message): part 1 is the encapsulated message, 1.HEADER and
/// 1.TEXT its header and body, 1.1 its (single) part; nested multiparts
/// number their children directly.
#[test]
fn sections_of_encapsulated_messages() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    let inner = "From: sub@domain.org\r\nSubject: submsg\r\n\r\nHello world\r\n";
    s.deliver(
        bob,
        format!("From: user@domain.org\r\nContent-Type: message/rfc822\r\n\r\n{inner}").as_bytes(),
    );
    s.deliver(
        bob,
        b"Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n\
Content-Type: multipart/alternative; boundary=i\r\n\r\n--i\r\n\r\none\r\n--i\r\n\r\ntwo\r\n--i--\r\n\
--o--\r\n",
    );
    let mut c = s.login("bob@localhost");
    c.ok("SELECT INBOX");
    let r = c.ok("FETCH 1 BODY.PEEK[1]").join("");
    assert!(r.contains(&format!("{{{}}}", inner.len())), "{r}");
    let r = c.ok("FETCH 1 BODY.PEEK[1.1]").join("");
    assert!(r.contains("Hello world") && !r.contains("submsg"), "{r}");
    let r = c.ok("FETCH 1 BODY.PEEK[1.HEADER]").join("");
    assert!(r.contains("Subject: submsg") && !r.contains("Hello"), "{r}");
    let r = c.ok("FETCH 1 BODY.PEEK[1.TEXT]").join("");
    assert!(r.contains("Hello world") && !r.contains("submsg"), "{r}");
    let r = c.ok("FETCH 2 BODY.PEEK[1.2]").join("");
    assert!(r.contains("two") && !r.contains("one"), "{r}");
}
