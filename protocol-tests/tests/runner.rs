//! The runner's step semantics checked against tiny scripted TCP servers:
//! strict and anchored expectations, `S~`/`S!` blocks, captures, IMAP
//! literal joining, `QUIET`, `NOT` (with lines kept for later), `CLOSED`,
//! several connections, and that failures name the right transcript line.

#![allow(clippy::unwrap_used)]

use protocol_tests::exec::{run_steps, Failure, Target};
use protocol_tests::template::Vars;
use protocol_tests::transcript::{parse, Proto};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// Serves every accepted connection with `script` on its own thread.
fn serve(script: fn(BufReader<TcpStream>, TcpStream)) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let r = BufReader::new(s.try_clone().unwrap());
            std::thread::spawn(move || script(r, s));
        }
    });
    addr
}

fn line(r: &mut BufReader<TcpStream>) -> String {
    let mut s = String::new();
    r.read_line(&mut s).unwrap();
    s
}

fn run(proto: Proto, addr: &str, text: &str) -> Result<Vars, Failure> {
    let case = parse("t.txt", "t", proto, text).unwrap();
    let target = Target {
        smtp: Some(addr.to_string()),
        imap: Some(addr.to_string()),
        user: "u@example.org".into(),
        password: "pw".into(),
        user2: None,
        domain: "example.org".into(),
        timeout: Duration::from_secs(3),
    };
    let mut vars = Vars::default();
    vars.set("CRLF", "\r\n");
    vars.set("addr", "u@example.org");
    run_steps(&case, &target, &mut vars).map(|_| vars)
}

/// A little SMTP-shaped server: greeting, multi-line EHLO, 503 for RCPT,
/// 250 for anything else, 221 and close for QUIT.
fn smtp_like(mut r: BufReader<TcpStream>, mut w: TcpStream) {
    w.write_all(b"220-first\r\n220 ready\r\n").unwrap();
    loop {
        let l = line(&mut r);
        let reply: &[u8] = match l.split_whitespace().next() {
            None => return,
            Some("EHLO") => b"250-host\r\n250-PIPELINING\r\n250 SIZE 1000\r\n",
            Some("RCPT") => b"503 5.5.1 need MAIL\r\n",
            Some("QUIT") => {
                w.write_all(b"221 bye\r\n").unwrap();
                return;
            }
            Some("LATE") => {
                std::thread::sleep(Duration::from_millis(300));
                b"250 late\r\n"
            }
            _ => b"250 ok\r\n",
        };
        w.write_all(reply).unwrap();
    }
}

#[test]
fn anchored_and_block_expectations_pass() {
    let a = serve(smtp_like);
    let vars = run(
        Proto::Smtp,
        &a,
        "# rfc: 1\nS>: 220 *\nC: EHLO x\nS~: 250-PIPELINING\nS~: 250 SIZE ${size:=\\d+}\n\
         S!: 250-CHUNKING\nS: 250 *\nC: RCPT TO:<${addr}>\nS: 503*\nC: QUIT\nS: 221*\nCLOSED\n",
    )
    .unwrap();
    assert_eq!(vars.get("size"), Some(&b"1000"[..]));
}

#[test]
fn a_mismatch_fails_at_its_line_with_what_came() {
    let a = serve(smtp_like);
    let f = run(
        Proto::Smtp,
        &a,
        "# rfc: 1\nS>: 220 *\nC: RCPT TO:<x@y>\nS: 250*\n",
    )
    .unwrap_err();
    assert_eq!(f.line, 4);
    assert_eq!(f.expected.as_deref(), Some("250*"));
    assert_eq!(f.got, vec!["`503 5.5.1 need MAIL`".to_string()]);
}

#[test]
fn a_missing_required_line_fails() {
    let a = serve(smtp_like);
    let f = run(
        Proto::Smtp,
        &a,
        "# rfc: 1\nS>: 220 *\nC: EHLO x\nS~: 250-CHUNKING\nS>: 250 *\n",
    )
    .unwrap_err();
    assert_eq!(f.line, 5);
    assert!(f.msg.contains("missing"), "{}", f.msg);
}

#[test]
fn a_forbidden_line_fails() {
    let a = serve(smtp_like);
    let f = run(
        Proto::Smtp,
        &a,
        "# rfc: 1\nS>: 220 *\nC: EHLO x\nS!: 250-PIPELINING\nS>: 250 *\n",
    )
    .unwrap_err();
    assert!(f.msg.contains("forbidden"), "{}", f.msg);
}

#[test]
fn an_anchor_stops_at_a_non_matching_completion() {
    let a = serve(smtp_like);
    let f = run(
        Proto::Smtp,
        &a,
        "# rfc: 1\nS>: 220 *\nC: RCPT TO:<x@y>\nS>: 250 *\n",
    )
    .unwrap_err();
    assert!(f.msg.contains("completed without"), "{}", f.msg);
}

#[test]
fn quiet_fails_when_a_line_arrives_and_not_keeps_other_lines() {
    let a = serve(smtp_like);
    let f = run(Proto::Smtp, &a, "# rfc: 1\nS>: 220 *\nC: LATE\nQUIET 2s\n").unwrap_err();
    assert_eq!(f.line, 4);
    run(
        Proto::Smtp,
        &a,
        "# rfc: 1\nS>: 220 *\nC: LATE\nNOT 1s 5*\nS: 250 late\nQUIET 200ms\n",
    )
    .unwrap();
    let f = run(
        Proto::Smtp,
        &a,
        "# rfc: 1\nS>: 220 *\nC: LATE\nNOT 2s 250 *\n",
    )
    .unwrap_err();
    assert!(f.msg.contains("forbidden"), "{}", f.msg);
}

#[test]
fn closed_requires_the_server_to_close() {
    let a = serve(smtp_like);
    run(
        Proto::Smtp,
        &a,
        "# rfc: 1\nS>: 220 *\nC: QUIT\nS: 221*\nCLOSED\n",
    )
    .unwrap();
    let f = run(Proto::Smtp, &a, "# rfc: 1\nS>: 220 *\nC: NOOP\nCLOSED\n").unwrap_err();
    assert_eq!(f.got, vec!["`250 ok`".to_string()]);
}

#[test]
fn named_connections_are_separate_sessions() {
    let a = serve(smtp_like);
    run(
        Proto::Smtp,
        &a,
        "# rfc: 1\nS[x]>: 220 *\nS[y]>: 220 *\nC[y]: RCPT TO:<a@b>\nC[x]: NOOP\n\
         S[x]: 250 ok\nS[y]: 503*\nC[x]: QUIT\nS[x]: 221*\nCLOSED[x]\nC[y]: NOOP\nS[y]: 250*\n",
    )
    .unwrap();
}

/// Answers any command with a FETCH carrying a literal, then the tagged OK.
fn imap_like(mut r: BufReader<TcpStream>, mut w: TcpStream) {
    w.write_all(b"* OK ready\r\n").unwrap();
    loop {
        let l = line(&mut r);
        let Some(tag) = l.split_whitespace().next() else {
            return;
        };
        let out =
            format!("* 1 FETCH (BODY[] {{7}}\r\nab\r\ncd\r FLAGS (\\Seen))\r\n{tag} OK done\r\n");
        w.write_all(out.as_bytes()).unwrap();
    }
}

#[test]
fn imap_literals_are_joined_into_one_response() {
    let a = serve(imap_like);
    let vars = run(
        Proto::Imap,
        &a,
        "# rfc: 1\nS: * OK*\nLET body = ab\\r\\ncd\\r\nC: a1 FETCH 1 BODY[]\n\
         S~: * 1 FETCH (BODY[] {${len:body}}${CRLF}${body} FLAGS (${f:=[^)]*}))\nS>: a1 OK*\n",
    )
    .unwrap();
    assert_eq!(vars.get("f"), Some(&br"\Seen"[..]));
}

#[test]
fn an_unreachable_server_fails_cleanly() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    drop(l);
    let f = run(Proto::Smtp, &addr, "# rfc: 1\nS: 220*\n").unwrap_err();
    assert!(f.msg.contains("cannot connect"), "{}", f.msg);
}

#[test]
fn suite_skips_what_is_not_advertised_and_reports_known_differences() {
    use protocol_tests::report::{junit, tap, Summary};
    use protocol_tests::suite::{run as run_suite, Options, Outcome};
    let a = serve(smtp_like);
    let mk = |name: &str, text: &str| parse("t.txt", name, Proto::Smtp, text).unwrap();
    let cases = vec![
        mk("smtp/a-pipelining", "# rfc: 2920 3.1\n# requires: PIPELINING\nS>: 220 *\n"),
        mk("smtp/b-chunking", "# rfc: 3030 2\n# requires: CHUNKING\nS>: 220 *\n"),
        mk("smtp/c-user2", "# rfc: 5321 3.3\n# user: 2\nS>: 220 *\n"),
        mk(
            "smtp/d-known",
            "# rfc: 5321 4.1.4\n# differs: fake — answers 503 <odd>\nS>: 220 *\nC: RCPT TO:<a@b>\nS: 250*\n",
        ),
        mk("smtp/e-fails", "# rfc: 5321 4.1.4\nS>: 220 *\nC: RCPT TO:<a@b>\nS: 250*\n"),
    ];
    let opts = Options {
        target: Target {
            smtp: Some(a),
            imap: None,
            user: "u@example.org".into(),
            password: "pw".into(),
            user2: None,
            domain: "example.org".into(),
            timeout: Duration::from_secs(3),
        },
        only: Vec::new(),
        known: vec!["fake".into()],
    };
    let results = run_suite(&cases, &opts, |_| {}).unwrap();
    assert!(matches!(results[0].outcome, Outcome::Pass));
    assert!(matches!(&results[1].outcome, Outcome::Skip(w) if w.contains("CHUNKING")));
    assert!(matches!(&results[2].outcome, Outcome::Skip(w) if w.contains("user2")));
    assert!(matches!(&results[3].outcome, Outcome::Known(_, n) if n.contains("answers 503")));
    assert!(matches!(results[4].outcome, Outcome::Fail(_)));
    let sum = Summary::of(&results);
    assert_eq!((sum.pass, sum.fail, sum.known, sum.skip), (1, 1, 1, 2));
    let t = tap(&results);
    assert!(t.starts_with("TAP version 13\n1..5\n"), "{t}");
    assert!(t.contains("not ok 5 - smtp/e-fails"), "{t}");
    assert!(t.contains("# SKIP not advertised: CHUNKING"), "{t}");
    let j = junit(&results);
    assert!(
        j.contains("tests=\"5\" failures=\"1\" skipped=\"3\""),
        "{j}"
    );
    assert!(j.contains("&lt;odd&gt;"), "{j}");
}
