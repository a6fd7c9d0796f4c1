//! Message content over real sockets: a 5 MiB message byte-exact, dot
//! stuffing, SMTP smuggling attempts, the line, command and size limits
//! with resynchronisation, and BDAT (RFC 3030).

use crate::util::{strip_trace, Client, TestServer};

fn begin(c: &mut Client, to: &str) {
    c.expect("EHLO c", "250");
    c.expect("MAIL FROM:<a@b.example>", "250");
    c.expect(&format!("RCPT TO:<{to}>"), "250");
}

#[test]
fn five_mib_message_is_stored_byte_exact() {
    let s = TestServer::start();
    let mut c = s.client();
    // 5 MiB of lines of varied length and content, CRLF, some dot-leading.
    let mut body = b"Subject: big\r\n\r\n".to_vec();
    let mut i = 0u64;
    while body.len() < 5 * 1024 * 1024 {
        let len = (i * 7919 % 997) as usize;
        let lead = if i.is_multiple_of(13) { "." } else { "" };
        let line: String = (0..len)
            .map(|k| (b'!' + ((i as usize + k) % 90) as u8) as char)
            .collect();
        body.extend_from_slice(format!("{lead}{line}\r\n").as_bytes());
        i += 1;
    }
    let mut wire = Vec::with_capacity(body.len() + 1024);
    for line in body.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            wire.push(b'.');
        }
        wire.extend_from_slice(line);
    }
    begin(&mut c, "bob@localhost");
    c.expect("DATA", "354");
    c.send(&wire);
    c.send(b".\r\n");
    c.expect_reply("250 2.0.0");
    let msgs = s.inbox("bob@localhost");
    assert_eq!(msgs.len(), 1);
    assert!(strip_trace(&msgs[0]) == body.as_slice(), "body differs");
}

#[test]
fn smuggling_attempts_do_not_yield_a_second_message() {
    for trick in [&b"\n.\r\n"[..], b"\r\n.\n", b"\r.\r\n", b"\n.\n"] {
        let s = TestServer::start();
        let mut c = s.client();
        begin(&mut c, "bob@localhost");
        c.expect("DATA", "354");
        let mut msg = b"Subject: first\r\n\r\nhello".to_vec();
        msg.extend_from_slice(trick);
        msg.extend_from_slice(
            b"MAIL FROM:<evil@b.example>\r\nRCPT TO:<alice@localhost>\r\nDATA\r\nSubject: smuggled\r\n\r\nboo\r\n.\r\n",
        );
        c.send(&msg);
        // Exactly one reply: the whole thing was one message for bob.
        c.expect_reply("250 2.0.0");
        c.expect("NOOP", "250 2.0.0 OK");
        assert_eq!(s.inbox("bob@localhost").len(), 1, "trick {trick:?}");
        assert!(s.inbox("alice@localhost").is_empty(), "trick {trick:?}");
        let stored = s.inbox("bob@localhost").remove(0);
        let mut want = b"Subject: first\r\n\r\nhello".to_vec();
        want.extend_from_slice(trick);
        assert!(strip_trace(&stored).starts_with(&want));
    }
}

#[test]
fn dot_stuffed_lines_are_unstuffed() {
    let s = TestServer::start();
    let mut c = s.client();
    begin(&mut c, "bob@localhost");
    c.expect("DATA", "354");
    c.send(b"Subject: dots\r\n\r\n..\r\n...x\r\n.y\r\n.\r\n");
    c.expect_reply("250");
    let m = s.inbox("bob@localhost").remove(0);
    assert_eq!(strip_trace(&m), b"Subject: dots\r\n\r\n.\r\n..x\r\ny\r\n");
}

#[test]
fn text_lines_longer_than_1000_octets_are_stored_unchanged() {
    // A cron job's output through `msmtp -t`: Postfix takes it, so do we.
    let s = TestServer::start();
    let mut c = s.client();
    begin(&mut c, "bob@localhost");
    c.expect("DATA", "354");
    let line = "c".repeat(1500);
    let long = "d".repeat(200_000);
    c.send(format!("Subject: cron\r\n\r\n{line}\r\n{long}\r\n.\r\n").as_bytes());
    c.expect_reply("250 2.0.0");
    let m = s.inbox("bob@localhost").remove(0);
    assert_eq!(
        strip_trace(&m),
        format!("Subject: cron\r\n\r\n{line}\r\n{long}\r\n").as_bytes()
    );
}

#[test]
fn overlong_text_line_is_refused_after_the_data_and_session_resyncs() {
    // The bound exists (--max-text-line); here RFC 5321's 1000 octets.
    let s = TestServer::with(|c| c.max_text_line = 1000);
    let mut c = s.client();
    begin(&mut c, "bob@localhost");
    c.expect("DATA", "354");
    let mut msg = b"Subject: long\r\n\r\n".to_vec();
    msg.extend(std::iter::repeat_n(b'x', 999)); // 999 + CRLF = 1001 octets
    msg.extend_from_slice(b"\r\nMAIL FROM:<x@y.example>\r\n.\r\n");
    c.send(&msg);
    c.expect_reply("500 5.5.2 ");
    assert!(s.inbox("bob@localhost").is_empty());
    // A line of exactly 1000 octets is fine, in the same session.
    begin_again(&mut c);
    c.expect("DATA", "354");
    let mut msg = vec![b'y'; 998];
    msg.extend_from_slice(b"\r\n.\r\n");
    c.send(&msg);
    c.expect_reply("250 2.0.0");
    assert_eq!(s.inbox("bob@localhost").len(), 1);
}

fn begin_again(c: &mut Client) {
    c.expect("MAIL FROM:<a@b.example>", "250");
    c.expect("RCPT TO:<bob@localhost>", "250");
}

#[test]
fn overlong_command_line_gets_500_and_the_session_continues() {
    let s = TestServer::start();
    let mut c = s.client();
    let long = format!("NOOP {}", "z".repeat(600));
    c.expect(&long, "500 5.5.2 ");
    // Exactly 512 octets with CRLF is accepted.
    let max = format!("NOOP {}", "z".repeat(512 - 2 - 5));
    c.expect(&max, "250 2.0.0");
    begin(&mut c, "bob@localhost");
}

#[test]
fn message_over_size_limit_gets_552_after_the_data() {
    let s = TestServer::with(|c| c.max_message_size = 10_000);
    let mut c = s.client();
    let r = c.expect("EHLO c", "250");
    assert!(r.contains("250-SIZE 10000\r\n"), "{r}");
    c.expect("MAIL FROM:<a@b.example> SIZE=10001", "552 5.3.4 ");
    begin_again(&mut c);
    c.expect("DATA", "354");
    let line = format!("{}\r\n", "q".repeat(98));
    for _ in 0..200 {
        c.send(line.as_bytes());
    }
    c.send(b".\r\n");
    c.expect_reply("552 5.3.4 ");
    c.expect("NOOP", "250");
    assert!(s.inbox("bob@localhost").is_empty());
    // Within the limit: accepted.
    begin_again(&mut c);
    c.expect("DATA", "354");
    c.send(b"small\r\n.\r\n");
    c.expect_reply("250 2.0.0");
}

#[test]
fn bdat_chunks_make_one_message() {
    let s = TestServer::start();
    let mut c = s.client();
    begin(&mut c, "bob@localhost");
    let part1 = b"Subject: chunky\r\n\r\n.leading dot kept\r\n";
    let part2 = b"\r\n.\r\nend\r\n";
    c.send(format!("BDAT {}\r\n", part1.len()).as_bytes());
    c.send(part1);
    c.expect_reply("250 2.0.0 ");
    c.send(format!("BDAT {} LAST\r\n", part2.len()).as_bytes());
    c.send(part2);
    c.expect_reply("250 2.0.0 OK: message");
    c.expect("DATA", "503 5.5.1");
    let m = s.inbox("bob@localhost").remove(0);
    let mut want = part1.to_vec();
    want.extend_from_slice(part2);
    assert_eq!(strip_trace(&m), want.as_slice());
}

#[test]
fn bdat_pipelined_with_errors_stays_in_sync() {
    let s = TestServer::with(|c| c.max_message_size = 100);
    let mut c = s.client();
    c.expect("EHLO c", "250");
    // BDAT without a transaction: the chunk is read and discarded.
    c.send(b"BDAT 6\r\nQUIT\r\n");
    c.expect_reply("503 5.5.1");
    c.expect("NOOP", "250");
    begin_again(&mut c);
    // Too big: 552 after the chunk, the transaction is gone, the rest of
    // the pipeline is discarded chunk by chunk.
    let big = vec![b'b'; 150];
    let mut pipe = format!("BDAT {}\r\n", big.len()).into_bytes();
    pipe.extend_from_slice(&big);
    pipe.extend_from_slice(b"BDAT 3 LAST\r\nabcNOOP\r\n");
    c.send(&pipe);
    c.expect_reply("552 5.3.4");
    c.expect_reply("503 5.5.1");
    c.expect_reply("250 2.0.0 OK");
    begin_again(&mut c);
    c.send(b"BDAT 0 LAST\r\n");
    c.expect_reply("250 2.0.0 OK: message");
    assert_eq!(s.inbox("bob@localhost").len(), 1);
}
