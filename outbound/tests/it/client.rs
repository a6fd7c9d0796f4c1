//! The SMTP client against scripted servers on loopback: each test's server
//! plays a transcript and records what the client sent.

use std::time::{Duration, Instant};

use crate::util::{config, ehlo, send, Server, Step};
use outbound::client::{Envelope, Failure, Rcpt, RcptResult, Reply, Session};

fn rcpt(addr: &str) -> Rcpt<'_> {
    Rcpt {
        addr,
        notify: None,
        orcpt: None,
    }
}

fn envelope<'a>(from: &'a str, rcpts: &'a [Rcpt<'a>], body: &'a [u8]) -> Envelope<'a> {
    Envelope {
        from,
        rcpts,
        body,
        ret: None,
        envid: None,
    }
}

fn reply(code: u16, enhanced: Option<&str>, text: &str) -> Reply {
    Reply {
        code,
        enhanced: enhanced.map(str::to_string),
        text: text.to_string(),
    }
}

const BODY: &[u8] = b"Subject: test\r\n\r\nHello.\r\n";

/// Greeting and EHLO with these extensions.
fn hello(extensions: &[&str]) -> Vec<Step> {
    vec![
        send(&["220 mx.test ESMTP ready"]),
        Step::Recv(1),
        ehlo(extensions),
    ]
}

fn quit() -> Vec<Step> {
    vec![Step::Recv(1), send(&["221 2.0.0 bye"])]
}

fn script(parts: Vec<Vec<Step>>) -> Vec<Step> {
    parts.into_iter().flatten().collect()
}

#[test]
fn a_result_per_recipient() {
    let server = Server::start(vec![script(vec![
        hello(&["SIZE 1000000", "ENHANCEDSTATUSCODES"]),
        vec![
            Step::Recv(1),
            // Without PIPELINING the client waits for each reply.
            Step::Quiet(Duration::from_millis(100)),
            send(&["250 2.1.0 sender ok"]),
            Step::Recv(1),
            send(&["250 2.1.5 ok"]),
            Step::Recv(1),
            send(&["450 4.2.0 mailbox busy"]),
            Step::Recv(1),
            send(&["550-5.1.1 no such", "550 5.1.1 user here"]),
            Step::Recv(1),
            send(&["354 go ahead"]),
            Step::Data,
            send(&["250 2.0.0 queued as 42"]),
        ],
        quit(),
    ])]);
    let mut session = Session::connect(server.addr, "mx.test", &config()).expect("connect");
    assert_eq!(session.remote_greeting_host(), "mx.test");
    assert_eq!(session.ehlo_line(), "mx.test Hello client.test");
    assert!(!session.is_tls());
    let rcpts = [
        rcpt("one@mx.test"),
        rcpt("two@mx.test"),
        rcpt("three@mx.test"),
    ];
    let results = session
        .send(&envelope("a@client.test", &rcpts, BODY))
        .expect("send");
    assert_eq!(
        results,
        vec![
            RcptResult::Delivered(reply(250, Some("2.0.0"), "queued as 42")),
            RcptResult::Temporary(reply(450, Some("4.2.0"), "mailbox busy")),
            RcptResult::Permanent(reply(550, Some("5.1.1"), "no such user here")),
        ]
    );
    assert_eq!(
        results[2].reply().to_string(),
        "550 5.1.1 no such user here"
    );
    assert!(session.reusable());
    session.quit();
    let transcript = server.finish_one();
    assert_eq!(
        transcript.lines,
        vec![
            "EHLO client.test".to_string(),
            format!("MAIL FROM:<a@client.test> SIZE={}", BODY.len()),
            "RCPT TO:<one@mx.test>".into(),
            "RCPT TO:<two@mx.test>".into(),
            "RCPT TO:<three@mx.test>".into(),
            "DATA".into(),
            "QUIT".into(),
        ]
    );
    assert_eq!(transcript.data, vec![[BODY, b".\r\n"].concat()]);
}

#[test]
fn temporary_failure_on_mail_then_the_session_carries_on() {
    let server = Server::start(vec![script(vec![
        hello(&[]),
        vec![
            Step::Recv(1),
            send(&["451 4.3.0 try later"]),
            Step::Recv(1), // RSET
            send(&["250 2.0.0 reset"]),
            Step::Recv(1),
            send(&["250 ok"]),
            Step::Recv(1),
            send(&["250 ok"]),
            Step::Recv(1),
            send(&["354 go"]),
            Step::Data,
            send(&["250 done"]),
        ],
        quit(),
    ])]);
    let mut session = Session::connect(server.addr, "mx.test", &config()).expect("connect");
    let rcpts = [rcpt("one@mx.test"), rcpt("two@mx.test")];
    let results = session
        .send(&envelope("a@client.test", &rcpts, BODY))
        .expect("send");
    let refusal = reply(451, Some("4.3.0"), "try later");
    assert_eq!(
        results,
        vec![
            RcptResult::Temporary(refusal.clone()),
            RcptResult::Temporary(refusal)
        ]
    );
    assert!(session.reusable());
    let again = session
        .send(&envelope("a@client.test", &rcpts[..1], BODY))
        .expect("second send");
    assert_eq!(again, vec![RcptResult::Delivered(reply(250, None, "done"))]);
    session.quit();
    let lines = server.finish_one().lines;
    assert_eq!(
        lines,
        vec![
            "EHLO client.test",
            "MAIL FROM:<a@client.test>",
            "RSET",
            "MAIL FROM:<a@client.test>",
            "RCPT TO:<one@mx.test>",
            "DATA",
            "QUIT"
        ]
    );
}

#[test]
fn permanent_failure_after_the_final_dot() {
    let server = Server::start(vec![script(vec![
        hello(&[]),
        vec![
            Step::Recv(1),
            send(&["250 ok"]),
            Step::Recv(1),
            send(&["250 ok"]),
            Step::Recv(1),
            send(&["550 5.1.1 unknown"]),
            Step::Recv(1),
            send(&["354 go"]),
            Step::Data,
            send(&["554 5.6.0 content rejected"]),
        ],
        quit(),
    ])]);
    let mut session = Session::connect(server.addr, "mx.test", &config()).expect("connect");
    let rcpts = [rcpt("one@mx.test"), rcpt("two@mx.test")];
    let results = session.send(&envelope("", &rcpts, BODY)).expect("send");
    assert_eq!(
        results,
        vec![
            RcptResult::Permanent(reply(554, Some("5.6.0"), "content rejected")),
            RcptResult::Permanent(reply(550, Some("5.1.1"), "unknown")),
        ]
    );
    assert!(session.reusable());
    session.quit();
    let lines = server.finish_one().lines;
    assert_eq!(lines[1], "MAIL FROM:<>", "null sender");
}

#[test]
fn no_recipient_accepted_means_no_data() {
    let server = Server::start(vec![script(vec![
        hello(&["PIPELINING"]),
        vec![
            Step::Recv(3),
            send(&["250 ok", "550 5.1.1 no", "450 4.2.1 later"]),
            Step::Recv(1),
            send(&["250 reset"]),
        ],
        quit(),
    ])]);
    let mut session = Session::connect(server.addr, "mx.test", &config()).expect("connect");
    let rcpts = [rcpt("one@mx.test"), rcpt("two@mx.test")];
    let results = session
        .send(&envelope("a@client.test", &rcpts, BODY))
        .expect("send");
    assert!(matches!(results[0], RcptResult::Permanent(ref r) if r.code == 550));
    assert!(matches!(results[1], RcptResult::Temporary(ref r) if r.code == 450));
    session.quit();
    let lines = server.finish_one().lines;
    assert_eq!(&lines[4..], ["RSET", "QUIT"]);
}

#[test]
fn pipelining_with_dsn_size_and_8bitmime() {
    let server = Server::start(vec![script(vec![
        hello(&[
            "PIPELINING",
            "SIZE",
            "DSN",
            "8BITMIME",
            "ENHANCEDSTATUSCODES",
        ]),
        vec![
            // MAIL and all three RCPTs arrive before any reply is sent.
            Step::Recv(4),
            Step::Quiet(Duration::from_millis(100)),
            send(&[
                "250 2.1.0 ok",
                "250 2.1.5 ok",
                "250 2.1.5 ok",
                "250 2.1.5 ok",
            ]),
            Step::Recv(1),
            send(&["354 go"]),
            Step::Data,
            send(&["250 2.0.0 ok"]),
        ],
        quit(),
    ])]);
    let mut session = Session::connect(server.addr, "mx.test", &config()).expect("connect");
    let body = "Subject: caf\u{e9}\r\n\r\n8-bit body\r\n".as_bytes();
    let rcpts = [
        Rcpt {
            addr: "one@mx.test",
            notify: Some("SUCCESS,FAILURE"),
            orcpt: Some("rfc822;one+tag@mx.test"),
        },
        Rcpt {
            addr: "two@mx.test",
            notify: Some("NEVER"),
            orcpt: Some("two@mx.test"),
        },
        rcpt("three@mx.test"),
    ];
    let env = Envelope {
        from: "",
        rcpts: &rcpts,
        body,
        ret: Some("HDRS"),
        envid: Some("id+1 x"),
    };
    let results = session.send(&env).expect("send");
    assert!(results
        .iter()
        .all(|r| matches!(r, RcptResult::Delivered(_))));
    session.quit();
    let lines = server.finish_one().lines;
    assert_eq!(
        &lines[1..5],
        [
            format!(
                "MAIL FROM:<> SIZE={} BODY=8BITMIME RET=HDRS ENVID=id+2B1+20x",
                body.len()
            ),
            "RCPT TO:<one@mx.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;one+2Btag@mx.test".into(),
            "RCPT TO:<two@mx.test> NOTIFY=NEVER ORCPT=rfc822;two@mx.test".into(),
            "RCPT TO:<three@mx.test>".into(),
        ]
    );
}

#[test]
fn dot_stuffing_and_line_ends_byte_for_byte() {
    let server = Server::start(vec![script(vec![
        hello(&["PIPELINING"]),
        vec![
            Step::Recv(2),
            send(&["250 ok", "250 ok"]),
            Step::Recv(1),
            send(&["354 go"]),
            Step::Data,
            send(&["250 ok"]),
        ],
        quit(),
    ])]);
    let mut session = Session::connect(server.addr, "mx.test", &config()).expect("connect");
    let body: &[u8] = b"Subject: dots\r\n\r\n.leading\r\n..two\r\n.\r\nbare LF\n.\nbare CR\rmid . dot\r\n.\r\nno newline at the end";
    let wire: &[u8] = b"Subject: dots\r\n\r\n..leading\r\n...two\r\n..\r\nbare LF\r\n..\r\nbare CR\r\nmid . dot\r\n..\r\nno newline at the end\r\n.\r\n";
    let rcpts = [rcpt("one@mx.test")];
    let results = session
        .send(&envelope("a@client.test", &rcpts, body))
        .expect("send");
    assert!(matches!(results[0], RcptResult::Delivered(_)));
    session.quit();
    let transcript = server.finish_one();
    assert_eq!(transcript.data.len(), 1);
    assert_eq!(
        String::from_utf8_lossy(&transcript.data[0]),
        String::from_utf8_lossy(wire)
    );
    assert_eq!(transcript.data[0], wire);
}

#[test]
fn connection_dropped_mid_data_is_temporary() {
    let server = Server::start(vec![script(vec![
        hello(&["PIPELINING"]),
        vec![
            Step::Recv(2),
            send(&["250 ok", "250 ok"]),
            Step::Recv(1),
            send(&["354 go"]),
            Step::Drain(1000),
            Step::Close,
        ],
    ])]);
    let mut session = Session::connect(server.addr, "mx.test", &config()).expect("connect");
    let mut body = b"Subject: big\r\n\r\n".to_vec();
    while body.len() < 4 << 20 {
        body.extend_from_slice(b"a line of a large message, long enough to take a while\r\n");
    }
    let rcpts = [rcpt("one@mx.test")];
    let err = session
        .send(&envelope("a@client.test", &rcpts, &body))
        .expect_err("dropped connection");
    assert!(matches!(err, Failure::Temporary(_)), "{err:?}");
    assert!(err.to_string().contains("mx.test[127.0.0.1]"), "{err}");
    assert!(!session.reusable());
    session.quit();
    server.finish_one();
}

#[test]
fn greeting_never_sent_times_out() {
    let server = Server::start(vec![vec![Step::Hang]]);
    let mut cfg = config();
    cfg.command_timeout = Duration::from_millis(300);
    let started = Instant::now();
    let err = Session::connect(server.addr, "mx.test", &cfg).expect_err("no greeting");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    match &err {
        Failure::Temporary(text) => assert!(text.contains("greeting"), "{text}"),
        other => panic!("expected Temporary, got {other:?}"),
    }
    server.finish_one();
}

#[test]
fn a_trickling_server_cannot_stretch_the_timeout() {
    // One byte every 50 ms never lets a read time out, but the reply as a
    // whole has to arrive within the command timeout.
    let server = Server::start(vec![vec![Step::Trickle(
        b"220 mx.test "
            .iter()
            .chain([b'x'; 200].iter())
            .copied()
            .collect(),
        Duration::from_millis(50),
    )]]);
    let mut cfg = config();
    cfg.command_timeout = Duration::from_millis(500);
    let started = Instant::now();
    let err = Session::connect(server.addr, "mx.test", &cfg).expect_err("too slow");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, Failure::Temporary(_)), "{err:?}");
    server.finish();
}

#[test]
fn endless_reply_lines_are_cut_off() {
    let server = Server::start(vec![vec![
        send(&["220 mx.test ready"]),
        Step::Recv(1),
        Step::Flood(b"250-ENDLESS CAPABILITY LINE\r\n".to_vec()),
    ]]);
    let started = Instant::now();
    let err = Session::connect(server.addr, "mx.test", &config()).expect_err("endless reply");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    match &err {
        Failure::Temporary(text) => assert!(text.contains("100 lines"), "{text}"),
        other => panic!("expected Temporary, got {other:?}"),
    }
    server.finish_one();
}

#[test]
fn an_endless_line_is_cut_off() {
    let server = Server::start(vec![vec![
        send(&["220 mx.test ready"]),
        Step::Recv(1),
        Step::Flood(b"250-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_vec()),
    ]]);
    let err = Session::connect(server.addr, "mx.test", &config()).expect_err("endless line");
    match &err {
        Failure::Temporary(text) => assert!(text.contains("4096 bytes"), "{text}"),
        other => panic!("expected Temporary, got {other:?}"),
    }
    server.finish_one();
}

#[test]
fn garbage_reply_is_temporary() {
    let server = Server::start(vec![vec![send(&["HTTP/1.1 400 Bad Request"]), Step::Hang]]);
    let err = Session::connect(server.addr, "mx.test", &config()).expect_err("garbage");
    assert!(matches!(err, Failure::Temporary(_)), "{err:?}");
    server.finish_one();
}

#[test]
fn service_closing_on_rcpt_is_temporary_and_ends_the_session() {
    let server = Server::start(vec![script(vec![
        hello(&[]),
        vec![
            Step::Recv(1),
            send(&["250 ok"]),
            Step::Recv(1),
            send(&["421 4.3.2 shutting down"]),
            Step::Hang,
        ],
    ])]);
    let mut session = Session::connect(server.addr, "mx.test", &config()).expect("connect");
    let rcpts = [rcpt("one@mx.test"), rcpt("two@mx.test")];
    let err = session
        .send(&envelope("a@client.test", &rcpts, BODY))
        .expect_err("421");
    match &err {
        Failure::Temporary(text) => assert!(text.contains("421 4.3.2 shutting down"), "{text}"),
        other => panic!("expected Temporary, got {other:?}"),
    }
    assert!(!session.reusable());
    session.quit(); // sends nothing more: the server hangs up on its own
    server.finish_one();
}

#[test]
fn greeting_refused() {
    let server = Server::start(vec![vec![
        send(&["554 5.7.1 go away"]),
        Step::Recv(1),
        send(&["221 bye"]),
    ]]);
    let err = Session::connect(server.addr, "mx.test", &config()).expect_err("554");
    match &err {
        Failure::Temporary(text) => assert!(text.contains("554 5.7.1 go away"), "{text}"),
        other => panic!("expected Temporary, got {other:?}"),
    }
    assert_eq!(server.finish_one().lines, ["QUIT"]);
}

#[test]
fn helo_when_ehlo_is_not_understood() {
    let server = Server::start(vec![script(vec![
        vec![
            send(&["220 old.test SMTP"]),
            Step::Recv(1),
            send(&["502 5.5.1 command not implemented"]),
            Step::Recv(1),
            send(&["250 old.test"]),
            Step::Recv(1),
            send(&["250 ok"]),
            Step::Recv(1),
            send(&["250 ok"]),
            Step::Recv(1),
            send(&["354 go"]),
            Step::Data,
            send(&["250 ok"]),
        ],
        quit(),
    ])]);
    let mut session = Session::connect(server.addr, "old.test", &config()).expect("connect");
    assert_eq!(session.ehlo_line(), "old.test");
    let rcpts = [rcpt("one@old.test")];
    let results = session
        .send(&envelope("a@client.test", &rcpts, BODY))
        .expect("send");
    assert!(matches!(results[0], RcptResult::Delivered(_)));
    session.quit();
    let lines = server.finish_one().lines;
    assert_eq!(
        &lines[..3],
        [
            "EHLO client.test",
            "HELO client.test",
            "MAIL FROM:<a@client.test>"
        ]
    );
}

#[test]
fn non_ascii_address_needs_smtputf8() {
    let server = Server::start(vec![
        script(vec![hello(&["8BITMIME"]), quit()]),
        script(vec![
            hello(&["SMTPUTF8", "8BITMIME"]),
            vec![
                Step::Recv(1),
                send(&["250 ok"]),
                Step::Recv(1),
                send(&["250 ok"]),
                Step::Recv(1),
                send(&["354 go"]),
                Step::Data,
                send(&["250 ok"]),
            ],
            quit(),
        ]),
    ]);
    let rcpts = [rcpt("j\u{f6}rg@mx.test")];
    let env = envelope("a@client.test", &rcpts, BODY);

    let mut session = Session::connect(server.addr, "mx.test", &config()).expect("connect");
    let results = session.send(&env).expect("send");
    match &results[0] {
        RcptResult::Permanent(reply) => assert_eq!(reply.enhanced.as_deref(), Some("5.6.7")),
        other => panic!("expected Permanent, got {other:?}"),
    }
    assert!(session.reusable(), "nothing was sent");
    session.quit();

    let mut session = Session::connect(server.addr, "mx.test", &config()).expect("connect");
    let results = session.send(&env).expect("send");
    assert!(matches!(results[0], RcptResult::Delivered(_)));
    session.quit();

    let transcripts = server.finish();
    assert!(
        transcripts.iter().all(|t| t.errors.is_empty()),
        "{transcripts:?}"
    );
    assert_eq!(transcripts[0].lines, ["EHLO client.test", "QUIT"]);
    assert_eq!(
        &transcripts[1].lines[1..3],
        [
            "MAIL FROM:<a@client.test> SMTPUTF8",
            "RCPT TO:<j\u{f6}rg@mx.test>"
        ]
    );
}

#[test]
fn addresses_that_would_break_the_command_line_are_refused() {
    let server = Server::start(vec![script(vec![
        hello(&[]),
        vec![
            Step::Recv(1),
            send(&["250 ok"]),
            Step::Recv(1),
            send(&["250 ok"]),
            Step::Recv(1),
            send(&["354 go"]),
            Step::Data,
            send(&["250 ok"]),
        ],
        quit(),
    ])]);
    let mut session = Session::connect(server.addr, "mx.test", &config()).expect("connect");
    let rcpts = [rcpt("evil@mx.test>\r\nRSET"), rcpt("good@mx.test")];
    let results = session
        .send(&envelope("a@client.test", &rcpts, BODY))
        .expect("send");
    assert!(matches!(results[0], RcptResult::Permanent(ref r) if r.code == 553));
    assert!(matches!(results[1], RcptResult::Delivered(_)));
    session.quit();
    let lines = server.finish_one().lines;
    assert_eq!(lines[2], "RCPT TO:<good@mx.test>");
}

#[test]
fn auth_plain_and_login_on_loopback() {
    let server = Server::start(vec![
        script(vec![
            hello(&["AUTH LOGIN PLAIN"]),
            vec![Step::Recv(1), send(&["235 2.7.0 ok"])],
            quit(),
        ]),
        script(vec![
            hello(&["AUTH=LOGIN"]),
            vec![
                Step::Recv(1),
                send(&["334 VXNlcm5hbWU6"]),
                Step::Recv(1),
                send(&["334 UGFzc3dvcmQ6"]),
                Step::Recv(1),
                send(&["235 2.7.0 ok"]),
            ],
            quit(),
        ]),
        script(vec![
            hello(&["AUTH PLAIN"]),
            vec![Step::Recv(1), send(&["535 5.7.8 bad credentials"])],
            quit(),
        ]),
    ]);
    let mut cfg = config();
    cfg.auth = Some(("user".into(), "pass".into()));
    Session::connect(server.addr, "mx.test", &cfg)
        .expect("plain")
        .quit();
    Session::connect(server.addr, "mx.test", &cfg)
        .expect("login")
        .quit();
    let err = Session::connect(server.addr, "mx.test", &cfg).expect_err("refused");
    match &err {
        Failure::Temporary(text) => {
            assert!(text.contains("535 5.7.8"), "{text}");
            assert!(!text.contains("pass"), "no credentials in messages: {text}");
        }
        other => panic!("expected Temporary, got {other:?}"),
    }
    let transcripts = server.finish();
    assert!(
        transcripts.iter().all(|t| t.errors.is_empty()),
        "{transcripts:?}"
    );
    assert_eq!(transcripts[0].lines[1], "AUTH PLAIN AHVzZXIAcGFzcw==");
    assert_eq!(
        &transcripts[1].lines[1..4],
        ["AUTH LOGIN", "dXNlcg==", "cGFzcw=="]
    );
}

#[test]
fn connection_refused_is_temporary() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let err = Session::connect(addr, "mx.test", &config()).expect_err("refused");
    assert!(matches!(err, Failure::Temporary(_)), "{err:?}");
}
