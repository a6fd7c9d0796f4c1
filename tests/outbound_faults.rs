//! Outbound delivery against remote servers that misbehave (issue 15): a
//! real `minimail up` for a.test routes by MX through a real dnsmasq to
//! scripted SMTP servers on loopback ([`testkit::scripted`]), which fail
//! on cue and record every message they accept. Each test asserts what
//! really happened: how many times the message arrived and with which
//! recipients, the sender's bounce (an RFC 3464 report in alice's INBOX,
//! read over IMAP) or its absence, `minimail queue list`, and the
//! per-attempt log lines.
//!
//! - 421 greeting, then 451 to MAIL, then success: delivered once.
//! - 550 to one RCPT of three: two delivered in one transaction, a report
//!   naming only the third.
//! - connection dropped in the middle of the message data: retried,
//!   delivered once, complete.
//! - a greeting that never comes: the client gives up after
//!   `--outbound-timeout`, retries, delivers once.
//! - nothing listening for a while, then a server: queued (connection
//!   refused), then delivered once.
//! - DNS SERVFAIL: stays queued, no report, delivered once DNS answers
//!   again; NXDOMAIN: reported at once.
//! - the remote hanging up right after accepting the first of several
//!   messages on one connection: each arrives once.
//! - outcomes that cannot be recorded: a report that does not fit on a
//!   full disk, a store refusing every write; what was delivered is not
//!   sent again.

mod outbound_sender;

use outbound_sender::{final_recipients, mx, queued_attempts, reserve_on, Sender, ALICE};
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use testkit::dns::Dnsmasq;
use testkit::scripted::{Action, Rule, Script, Stage};

/// Long enough for any wait here on a loaded two-core machine.
const WAIT: Duration = Duration::from_secs(30);

#[test]
fn temporary_failures_then_success_deliver_once_without_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let (port, mut r) = reserve_on(&["127.0.0.11"]);
    let dns = Dnsmasq::start(&mx("b.test", "127.0.0.11"));
    let b = r.remove(0).listen(
        Script::new("mx.b.test")
            .rule(
                Rule::new(
                    Stage::Connect,
                    Action::ReplyAndClose("421 4.3.2 mx.b.test busy, closing".into()),
                )
                .times(1),
            )
            .rule(Rule::reply(Stage::Mail, "451 4.3.0 Temporary failure, try again").times(1)),
    );
    let a = Sender::start(dir.path(), dns.addr, port, &[]);
    a.submit(&["bob@b.test"], "retry-me", "hello\r\n");

    let got = b.wait_for(1, WAIT);
    a.wait_queue_empty(WAIT);
    assert_eq!(b.delivered(), 1, "delivered exactly once: {got:?}");
    assert_eq!(got[0].rcpts, ["bob@b.test"]);
    assert_eq!(got[0].from, "alice@a.test");
    assert_eq!(
        got[0].header("Message-ID").as_deref(),
        Some("<retry-me@a.test>")
    );
    // Three connections: 421 greeting, 451 to MAIL, success.
    assert_eq!(b.connections(), 3, "{:?}", b.commands());
    assert_eq!(b.count("MAIL"), 2, "{:?}", b.commands());
    assert_eq!(got[0].conn, 3);
    let log = a.wait_log("status=sent", WAIT);
    let tries = a.attempts("bob@b.test");
    assert_eq!(tries.len(), 3, "{log}");
    assert!(
        tries[0].contains("status=deferred attempt=1") && tries[0].contains("421 4.3.2"),
        "{}",
        tries[0]
    );
    assert!(
        tries[1].contains("status=deferred attempt=2") && tries[1].contains("451 4.3.0"),
        "{}",
        tries[1]
    );
    assert!(tries[2].contains("status=sent attempt=3"), "{}", tries[2]);
    // No report: the INBOX is empty once the queue is.
    assert_eq!(a.inbox().len(), 0);
}

#[test]
fn one_recipient_of_three_refused_is_bounced_the_others_delivered_together() {
    let dir = tempfile::tempdir().unwrap();
    let (port, mut r) = reserve_on(&["127.0.0.12"]);
    let dns = Dnsmasq::start(&mx("b.test", "127.0.0.12"));
    let b = r.remove(0).listen(Script::new("mx.b.test").rule(
        Rule::reply(Stage::Rcpt, "550 5.1.1 <carol@b.test>: no such user").matching("carol@"),
    ));
    let a = Sender::start(dir.path(), dns.addr, port, &[]);
    a.submit(
        &["bob@b.test", "carol@b.test", "dave@b.test"],
        "three",
        "to three\r\n",
    );

    let dsn = a.wait_inbox(1, WAIT).remove(0);
    a.wait_queue_empty(WAIT);
    let got = b.deliveries();
    assert_eq!(got.len(), 1, "one transaction: {got:?}");
    assert_eq!(got[0].rcpts, ["bob@b.test", "dave@b.test"]);
    assert_eq!(b.count("MAIL"), 1);
    assert_eq!(b.count("RCPT"), 3);
    assert!(dsn.contains("multipart/report"), "{dsn}");
    assert!(
        dsn.contains("report-type=delivery-status")
            || dsn.contains("report-type=\"delivery-status\""),
        "{dsn}"
    );
    assert_eq!(final_recipients(&dsn), ["carol@b.test"], "{dsn}");
    assert!(dsn.contains("Action: failed"), "{dsn}");
    assert!(dsn.contains("Status: 5.1.1"), "{dsn}");
    assert!(
        dsn.contains("Diagnostic-Code: smtp; 550 5.1.1 <carol@b.test>: no such user"),
        "{dsn}"
    );
    assert!(dsn.contains("Remote-MTA: dns; mx.b.test"), "{dsn}");
    assert!(dsn.contains("Subject: three"), "the original: {dsn}");
    // Only carol's attempt bounced; bob and dave were sent.
    for (rcpt, status) in [
        ("bob@b.test", "status=sent attempt=1"),
        ("carol@b.test", "status=bounced attempt=1"),
        ("dave@b.test", "status=sent attempt=1"),
    ] {
        let tries = a.attempts(rcpt);
        assert_eq!(tries.len(), 1, "{rcpt}: {tries:?}");
        assert!(tries[0].contains(status), "{}", tries[0]);
    }
    assert_eq!(a.inbox().len(), 1, "one report");
}

#[test]
fn connection_dropped_mid_data_is_retried_and_delivered_once_complete() {
    let dir = tempfile::tempdir().unwrap();
    let (port, mut r) = reserve_on(&["127.0.0.13"]);
    let dns = Dnsmasq::start(&mx("b.test", "127.0.0.13"));
    // Dropped after 64 KiB of a 512 KiB message: the client is still
    // writing when the connection goes.
    let b = r.remove(0).listen(
        Script::new("mx.b.test")
            .rule(Rule::new(Stage::Data, Action::DropMidData(64 << 10)).times(1)),
    );
    let a = Sender::start(dir.path(), dns.addr, port, &[]);
    let body: String = (0..7000)
        .map(|i| format!("line {i:06} {}\r\n", "x".repeat(60)))
        .collect();
    a.submit(&["bob@b.test"], "big", &body);

    let got = b.wait_for(1, WAIT);
    a.wait_queue_empty(WAIT);
    assert_eq!(b.delivered(), 1, "delivered exactly once");
    let data = String::from_utf8_lossy(&got[0].data);
    assert!(data.ends_with(&body), "the whole message arrived");
    assert_eq!(b.count("DATA"), 2, "{:?}", b.commands());
    assert_eq!(b.connections(), 2);
    let tries = a.attempts("bob@b.test");
    assert_eq!(tries.len(), 2, "{tries:?}");
    assert!(
        tries[0].contains("status=deferred attempt=1"),
        "{}",
        tries[0]
    );
    assert!(tries[1].contains("status=sent attempt=2"), "{}", tries[1]);
    assert_eq!(a.inbox().len(), 0, "no report");
}

#[test]
fn greeting_that_never_comes_times_out_and_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let (port, mut r) = reserve_on(&["127.0.0.14"]);
    let dns = Dnsmasq::start(&mx("b.test", "127.0.0.14"));
    let b = r
        .remove(0)
        .listen(Script::new("mx.b.test").rule(Rule::new(Stage::Connect, Action::Silence).times(1)));
    let a = Sender::start(dir.path(), dns.addr, port, &["--outbound-timeout", "2"]);
    a.submit(&["bob@b.test"], "patient", "hello\r\n");

    let got = b.wait_for(1, WAIT);
    a.wait_queue_empty(WAIT);
    assert_eq!(b.delivered(), 1);
    assert_eq!(got[0].conn, 2, "the silent connection carried nothing");
    assert_eq!(b.connections(), 2);
    let tries = a.attempts("bob@b.test");
    assert_eq!(tries.len(), 2, "{tries:?}");
    assert!(
        tries[0].contains("status=deferred attempt=1")
            && tries[0].contains("greeting: no complete reply within 2 s"),
        "{}",
        tries[0]
    );
    // The client gave up after its 2 s, not at once and not after minutes.
    let ms: u64 = tries[0]
        .split("elapsed=")
        .nth(1)
        .and_then(|s| s.split("ms").next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no elapsed= in {}", tries[0]));
    assert!((1900..10_000).contains(&ms), "gave up after {ms} ms");
    assert!(tries[1].contains("status=sent attempt=2"), "{}", tries[1]);
    assert_eq!(a.inbox().len(), 0, "no report");
}

#[test]
fn remote_down_for_a_while_then_up_gets_the_message_once() {
    let dir = tempfile::tempdir().unwrap();
    let (port, mut r) = reserve_on(&["127.0.0.15"]);
    let dns = Dnsmasq::start(&mx("b.test", "127.0.0.15"));
    let down = r.remove(0); // bound, not listening: refused
    let a = Sender::start(dir.path(), dns.addr, port, &[]);
    a.submit(&["bob@b.test"], "later", "hello\r\n");

    // Refused at least twice, still queued, no report.
    let listed = a.wait_queue("two refused attempts", WAIT, |l| {
        queued_attempts(l, "bob@b.test").is_some_and(|n| n >= 2)
    });
    assert!(listed.contains("Connection refused"), "{listed}");
    assert!(listed.contains("1 message(s), 1 recipient(s)"), "{listed}");
    assert_eq!(a.inbox().len(), 0);

    let b = down.listen(Script::new("mx.b.test"));
    let got = b.wait_for(1, WAIT);
    a.wait_queue_empty(WAIT);
    assert_eq!(b.delivered(), 1);
    assert_eq!(got[0].rcpts, ["bob@b.test"]);
    let tries = a.attempts("bob@b.test");
    let sent: Vec<&String> = tries.iter().filter(|l| l.contains("status=sent")).collect();
    assert_eq!(sent.len(), 1, "{tries:?}");
    assert!(tries.len() >= 3, "{tries:?}");
    assert!(
        tries[..tries.len() - 1]
            .iter()
            .all(|l| l.contains("status=deferred") && l.contains("Connection refused")),
        "{tries:?}"
    );
    assert_eq!(a.inbox().len(), 0, "no report");
}

/// A name server in front of another that answers SERVFAIL while
/// `failing` is set and otherwise relays every UDP query to `backend`
/// and its answer back. The thread ends with the test process.
fn switchable_upstream(backend: std::net::SocketAddr, failing: Arc<AtomicBool>) -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok((len, from)) = socket.recv_from(&mut buf) {
            if len < 12 {
                continue;
            }
            if failing.load(Ordering::SeqCst) {
                buf[2] |= 0x80; // QR: a response
                buf[3] = (buf[3] & 0xf0) | 2; // RCODE: SERVFAIL
                let _ = socket.send_to(&buf[..len], from);
                continue;
            }
            let Ok(relay) = UdpSocket::bind("127.0.0.1:0") else {
                continue;
            };
            let _ = relay.set_read_timeout(Some(Duration::from_secs(2)));
            let mut answer = [0u8; 4096];
            if relay.send_to(&buf[..len], backend).is_ok() {
                if let Ok((n, _)) = relay.recv_from(&mut answer) {
                    let _ = socket.send_to(&answer[..n], from);
                }
            }
        }
    });
    port
}

#[test]
fn dns_servfail_stays_queued_nxdomain_bounces() {
    let dir = tempfile::tempdir().unwrap();
    let (port, mut r) = reserve_on(&["127.0.0.16"]);
    // fail.test's records live on a second dnsmasq, reached through an
    // upstream that answers SERVFAIL until told otherwise; every other
    // name under .test does not exist (NXDOMAIN).
    let backend = Dnsmasq::start(&mx("fail.test", "127.0.0.16"));
    let failing = Arc::new(AtomicBool::new(true));
    let upstream = switchable_upstream(backend.addr, Arc::clone(&failing));
    let dns = Dnsmasq::start(&[format!("--server=/fail.test/127.0.0.1#{upstream}")]);
    let b = r.remove(0).listen(Script::new("mx.fail.test"));
    let a = Sender::start(dir.path(), dns.addr, port, &[]);
    a.submit(&["ghost@nxdomain.test"], "nowhere", "hello\r\n");
    a.submit(&["bob@fail.test"], "servfail", "hello\r\n");

    // NXDOMAIN: a report at once, naming the recipient.
    let dsn = a.wait_inbox(1, WAIT).remove(0);
    assert_eq!(final_recipients(&dsn), ["ghost@nxdomain.test"], "{dsn}");
    assert!(dsn.contains("Action: failed"), "{dsn}");
    assert!(dsn.contains("Status: 5.1.2"), "{dsn}");
    assert!(dsn.contains("no such domain"), "{dsn}");
    assert!(dsn.contains("Subject: nowhere"), "{dsn}");
    let tries = a.attempts("ghost@nxdomain.test");
    assert_eq!(tries.len(), 1, "{tries:?}");
    assert!(
        tries[0].contains("status=bounced attempt=1"),
        "{}",
        tries[0]
    );

    // SERVFAIL: tried again and again, kept, not reported.
    let listed = a.wait_queue("two SERVFAIL attempts", WAIT, |l| {
        queued_attempts(l, "bob@fail.test").is_some_and(|n| n >= 2)
    });
    assert!(
        listed.contains("4.4.3 fail.test: temporary DNS failure"),
        "{listed}"
    );
    assert!(!listed.contains("ghost@"), "{listed}");
    assert_eq!(a.inbox().len(), 1, "no report for a SERVFAIL");
    assert_eq!(b.connections(), 0);

    // DNS answers again: delivered once, still no report.
    failing.store(false, Ordering::SeqCst);
    let got = b.wait_for(1, WAIT);
    a.wait_queue_empty(WAIT);
    assert_eq!(b.delivered(), 1);
    assert_eq!(got[0].rcpts, ["bob@fail.test"]);
    let tries = a.attempts("bob@fail.test");
    assert!(tries.len() >= 3, "{tries:?}");
    assert!(
        tries[..tries.len() - 1]
            .iter()
            .all(|l| l.contains("status=deferred") && l.contains("temporary DNS failure")),
        "{tries:?}"
    );
    assert!(tries[tries.len() - 1].contains("status=sent"), "{tries:?}");
    assert_eq!(a.inbox().len(), 1, "still only the NXDOMAIN report");
}

#[test]
fn remote_closing_after_the_first_of_several_messages_gets_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let (port, mut r) = reserve_on(&["127.0.0.17"]);
    let dns = Dnsmasq::start(&mx("b.test", "127.0.0.17"));
    let down = r.remove(0);
    let a = Sender::start(dir.path(), dns.addr, port, &["--per-destination", "1"]);
    for i in 0..3 {
        a.submit(&["bob@b.test"], &format!("several-{i}"), "hello\r\n");
    }
    a.wait_queue("three queued, refused", WAIT, |l| {
        l.contains("3 message(s)") && l.matches("attempts 1").count() == 3
    });
    // Up: it accepts the first message of the connection, then hangs up
    // without waiting for QUIT.
    let b = down.listen(
        Script::new("mx.b.test").rule(
            Rule::new(
                Stage::EndOfData,
                Action::ReplyAndClose("250 2.0.0 OK, and goodbye".into()),
            )
            .times(1),
        ),
    );
    b.wait_for(3, WAIT);
    a.wait_queue_empty(WAIT);
    let got = b.deliveries();
    let mut ids: Vec<String> = got
        .iter()
        .map(|d| d.header("Message-ID").unwrap_or_default())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "<several-0@a.test>",
            "<several-1@a.test>",
            "<several-2@a.test>"
        ],
        "each exactly once"
    );
    assert_eq!(got[0].conn, 1);
    assert!(got[1..].iter().all(|d| d.conn == 2), "{got:?}");
    assert_eq!(a.inbox().len(), 0, "no report");
}

#[test]
fn a_report_that_cannot_be_stored_does_not_resend_what_was_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let (port, mut r) = reserve_on(&["127.0.0.18"]);
    let dns = Dnsmasq::start(&mx("b.test", "127.0.0.18"));
    let down = r.remove(0);
    let mut a = Sender::start(dir.path(), dns.addr, port, &[]);
    let body: String = (0..2000)
        .map(|i| format!("line {i:06} {}\r\n", "y".repeat(60)))
        .collect();
    a.submit(&["bob@b.test", "carol@b.test"], "full", &body);
    a.wait_queue("refused once", WAIT, |l| {
        queued_attempts(l, "carol@b.test").is_some_and(|n| n >= 1)
    });
    // The store may not grow any more (a full disk): carol's report,
    // bigger than the message it carries, cannot be stored.
    a.stop();
    a.restart_with_env(&[("MINIMAIL_MAX_PAGES", "1")]);
    let b = down.listen(Script::new("mx.b.test").rule(
        Rule::reply(Stage::Rcpt, "550 5.1.1 <carol@b.test>: no such user").matching("carol@"),
    ));
    // carol is refused again and again while the report cannot be stored...
    let deadline = std::time::Instant::now() + WAIT;
    while b.count("RCPT TO:<carol@b.test>") < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "carol tried {} times; log:\n{}",
            b.count("RCPT TO:<carol@b.test>"),
            a.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // ...but bob, who has the message, does not get it again.
    assert_eq!(
        b.delivered(),
        1,
        "bob got it {} times; log:\n{}",
        b.delivered(),
        a.log_text()
    );
    // Room again: carol is reported, bob still has one copy.
    a.stop();
    a.restart();
    let dsn = a.wait_inbox(1, WAIT).remove(0);
    assert_eq!(final_recipients(&dsn), ["carol@b.test"], "{dsn}");
    a.wait_queue_empty(WAIT);
    assert_eq!(b.delivered(), 1);
    assert_eq!(b.deliveries()[0].rcpts, ["bob@b.test"]);
}

#[test]
fn a_store_refusing_every_write_does_not_resend_what_was_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let (port, mut r) = reserve_on(&["127.0.0.19", "127.0.0.20"]);
    let mut dns_records = mx("b.test", "127.0.0.19").to_vec();
    dns_records.extend(mx("c.test", "127.0.0.20"));
    let dns = Dnsmasq::start(&dns_records);
    let (b_down, c_down) = (r.remove(0), r.remove(0));
    // Retries an hour apart: only `minimail queue retry` makes mail due.
    let flags = [
        "--retry-min",
        "3600",
        "--retry-max",
        "3600",
        "--outbound-timeout",
        "3",
    ];
    let mut a = Sender::start(dir.path(), dns.addr, port, &flags);
    // A local message whose pages will be wrecked, and one message each
    // for b.test and c.test, both refused once (their MX are down).
    a.submit(&["alice@a.test"], "local", "WRECK-THIS-PAGE\r\n");
    a.submit(&["bob@b.test"], "to-b", "hello\r\n");
    a.submit(&["dan@c.test"], "to-c", "hello\r\n");
    a.wait_queue("both refused once", WAIT, |l| {
        queued_attempts(l, "bob@b.test") == Some(1) && queued_attempts(l, "dan@c.test") == Some(1)
    });
    a.stop();
    let wrecked = testkit::store::wreck_pages_holding(&a.db, b"WRECK-THIS-PAGE");
    assert!(wrecked > 0);
    let allow = [("MINIMAIL_ALLOW_CORRUPT_STORE", "1")];
    a.restart_with_env(&allow);
    // Reading the wrecked message makes the store refuse every write.
    let mut imap = testkit::imap::Client::connect(a.imap);
    imap.login(ALICE, "pw");
    imap.send(b"s SELECT INBOX\r\nf FETCH 1 BODY.PEEK[]\r\n");
    imap.until("s");
    imap.until("f");
    a.wait_log("MAIL STORE DAMAGED", WAIT);

    // b.test takes its message, but it cannot be marked sent; c.test's MX
    // never greets, so its attempt ends after --outbound-timeout, seconds
    // after b.test's, with scheduler rounds in between.
    let b = b_down.listen(Script::new("mx.b.test"));
    let c =
        c_down.listen(Script::new("mx.c.test").rule(Rule::new(Stage::Connect, Action::Silence)));
    a.queue(&["retry"], &allow);
    b.wait_for(1, WAIT);
    a.wait_log("cannot record results for", WAIT);
    let deadline = std::time::Instant::now() + WAIT;
    while !a
        .attempts("dan@c.test")
        .iter()
        .any(|l| l.contains("greeting: no complete reply"))
    {
        assert!(std::time::Instant::now() < deadline, "{}", a.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(c.connections(), 1);
    assert_eq!(
        b.delivered(),
        1,
        "bob's message went out again; log:\n{}",
        a.log_text()
    );
    // After a restart it goes out again (the store still says queued): the
    // duplicate RFC 5321 §6.1 allows, once.
    a.stop();
    a.restart_with_env(&allow);
    a.queue(&["retry"], &allow);
    b.wait_for(2, WAIT);
}
