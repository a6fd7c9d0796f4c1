//! Every reply path of RFC 5321 §4.2-4.3 over a real socket: a full
//! transaction stored with its trace headers, unknown users, relay refusal,
//! postmaster, `user+tag`, parameters, syntax errors, recipient limit.

use crate::util::{strip_trace, TestServer};

#[test]
fn full_transaction_is_stored_with_trace_headers() {
    let s = TestServer::start();
    let mut c = s.client();
    let body = b"From: a@b.example\r\nSubject: hi\r\n\r\nHello Bob.\r\n";
    let r = c.send_mail("a@b.example", &["bob@localhost"], body);
    assert!(r.starts_with("250 2.0.0 "), "{r}");
    c.expect("QUIT", "221 2.0.0 ");
    assert!(c.closed());
    let msgs = s.inbox("bob@localhost");
    assert_eq!(msgs.len(), 1);
    let raw = String::from_utf8(msgs[0].clone()).unwrap();
    assert!(raw.starts_with("Return-Path: <a@b.example>\r\nReceived: from client.test ([127.0.0.1])\r\n\tby mx.test with ESMTP id "), "{raw}");
    assert!(raw.contains("\r\n\tfor <bob@localhost>; "), "{raw}");
    assert_eq!(strip_trace(&msgs[0]), body);
    assert!(s.inbox("alice@localhost").is_empty());
}

#[test]
fn one_copy_for_several_recipients_and_helo_protocol() {
    let s = TestServer::start();
    let mut c = s.client();
    c.expect("HELO old.example", "250 mx.test");
    c.expect("MAIL FROM:<>", "250 2.1.0");
    c.expect("RCPT TO:<bob@localhost>", "250 2.1.5");
    c.expect("RCPT TO:<carol@example.test>", "250 2.1.5");
    c.expect("DATA", "354 ");
    c.send(b"Subject: two\r\n\r\nx\r\n.\r\n");
    c.expect_reply("250 2.0.0 ");
    let b = s.inbox("bob@localhost");
    let cm = s.inbox("carol@example.test");
    assert_eq!(b, cm);
    let raw = String::from_utf8(b[0].clone()).unwrap();
    assert!(raw.starts_with("Return-Path: <>\r\n"), "{raw}");
    assert!(raw.contains("with SMTP id "), "{raw}");
    assert!(
        !raw.contains("\tfor <"),
        "no `for` with two recipients: {raw}"
    );
}

#[test]
fn unknown_users_and_other_domains_are_refused() {
    let s = TestServer::start();
    let mut c = s.client();
    c.expect("EHLO c", "250");
    c.expect("MAIL FROM:<a@b.example>", "250");
    c.expect("RCPT TO:<nobody@localhost>", "550 5.1.1 ");
    c.expect("RCPT TO:<bob@elsewhere.example>", "550 5.7.1 ");
    c.expect("RCPT TO:<bob@[127.0.0.1]>", "550 5.7.1 ");
    c.expect("RCPT TO:<bob@localhost.evil.example>", "550 5.7.1 ");
    c.expect(
        "RCPT TO:<@relay.example:bob@elsewhere.example>",
        "550 5.7.1 ",
    );
    c.expect("DATA", "554 5.5.1 ");
    c.expect("RCPT TO:<BOB@LocalHost>", "250 2.1.5");
}

#[test]
fn tags_case_postmaster_and_source_routes_resolve() {
    let s = TestServer::start();
    let mut c = s.client();
    c.expect("EHLO c", "250");
    c.expect("MAIL FROM:<a@b.example>", "250");
    c.expect("RCPT TO:<bob+lists@localhost>", "250 2.1.5");
    c.expect(
        "RCPT TO:<@hop.example,@hop2.example:Alice@LOCALHOST>",
        "250 2.1.5",
    );
    // No postmaster user exists: postmaster mail goes to the first user of
    // the domain (alice@localhost), bare <Postmaster> likewise.
    c.expect("RCPT TO:<Postmaster@localhost>", "250 2.1.5");
    c.expect("RCPT TO:<postmaster>", "250 2.1.5");
    c.expect("RCPT TO:<postmaster@example.test>", "250 2.1.5");
    c.expect("RCPT TO:<\"bob\"@localhost>", "250 2.1.5");
    c.expect("DATA", "354");
    c.send(b"Subject: t\r\n\r\n.\r\n");
    c.expect_reply("250 2.0.0");
    assert_eq!(s.inbox("bob@localhost").len(), 1);
    assert_eq!(s.inbox("alice@localhost").len(), 1);
    assert_eq!(s.inbox("carol@example.test").len(), 1);
}

#[test]
fn syntax_and_parameter_errors() {
    let s = TestServer::start();
    let mut c = s.client();
    c.expect("FOO bar", "500 5.5.2 ");
    c.expect("", "500 5.5.2 ");
    c.expect("EHLO", "501 5.5.4 ");
    c.expect("STARTTLS", "502 5.5.1 ");
    c.expect("EXPN staff", "502 5.5.1 ");
    c.expect("VRFY <bob@localhost>", "252 ");
    c.expect("EHLO c", "250");
    c.expect("MAIL FROM:bob@localhost", "501 5.1.7 ");
    c.expect("MAIL FROM:<a@b> XFOO=1", "555 5.5.4 ");
    c.expect("MAIL FROM:<a@b> RET=ALL", "501 5.5.4 ");
    c.expect("MAIL FROM:<a@b> SIZE=abc", "501 5.5.4 ");
    c.expect("MAIL FROM:<a@b> SIZE=999999999999", "552 5.3.4 ");
    c.expect("MAIL FROM:<jösé@b.example>", "553 5.6.7 ");
    c.expect(
        "MAIL FROM:<jösé@b.example> SMTPUTF8 BODY=8BITMIME",
        "250 2.1.0",
    );
    c.expect("RCPT TO:<bob@localhost> XFOO", "555 5.5.4 ");
    c.expect("RCPT TO:<bob@localhost> NOTIFY=NEVER,DELAY", "501 5.5.4 ");
    c.expect("RCPT TO:bob@localhost", "501 5.1.3 ");
    c.expect("RCPT TO:<bob@localhost>", "250 2.1.5");
    c.expect("DATA extra", "501 5.5.4 ");
    c.expect("DATA", "354");
    c.send("Subject: ü\r\n\r\n.\r\n".as_bytes());
    c.expect_reply("250 2.0.0");
    let raw = String::from_utf8(s.inbox("bob@localhost")[0].clone()).unwrap();
    assert!(
        raw.starts_with("Return-Path: <jösé@b.example>\r\n"),
        "{raw}"
    );
    assert!(raw.contains("with UTF8SMTP id"), "{raw}");
}

#[test]
fn more_than_100_recipients_get_452_and_one_copy_is_delivered() {
    let s = TestServer::start();
    let mut c = s.client();
    c.expect("EHLO c", "250");
    c.expect("MAIL FROM:<a@b.example>", "250");
    // Pipelined: 101 RCPTs in one write.
    let mut batch = String::new();
    for i in 0..101 {
        batch.push_str(&format!("RCPT TO:<bob+{i}@localhost>\r\n"));
    }
    c.send(batch.as_bytes());
    for _ in 0..100 {
        c.expect_reply("250 2.1.5");
    }
    c.expect_reply("452 4.5.3 ");
    c.expect("DATA", "354");
    c.send(b"Subject: many\r\n\r\n.\r\n");
    c.expect_reply("250 2.0.0");
    assert_eq!(s.inbox("bob@localhost").len(), 1);
}

#[test]
fn configured_recipient_limit_and_resync() {
    let s = TestServer::with(|c| c.max_recipients = 2);
    let mut c = s.client();
    c.expect("EHLO c", "250");
    c.expect("MAIL FROM:<a@b.example>", "250");
    c.expect("RCPT TO:<bob@localhost>", "250");
    c.expect("RCPT TO:<alice@localhost>", "250");
    c.expect("RCPT TO:<carol@example.test>", "452 4.5.3 ");
    c.expect("RSET", "250");
    c.expect("MAIL FROM:<a@b.example>", "250");
    c.expect("RCPT TO:<carol@example.test>", "250");
}
