//! Per-domain routes (`--transport-map`, issue 15) and NOTIFY=SUCCESS
//! against next hops with and without DSN: a real `minimail up` for
//! a.test, a real dnsmasq on loopback, and scripted remote servers
//! ([`testkit::scripted`]) that record what arrives.
//!
//! - `b.test [127.0.0.21]:PORT` wins over b.test's MX (127.0.0.22, which
//!   gets nothing); that host offers no DSN, so bob's NOTIFY=SUCCESS earns
//!   alice a "relayed" report (RFC 3461 §5.2.2).
//! - `.sub.test relay.test` delivers x@deep.sub.test to relay.test's MX
//!   (127.0.0.23), which offers DSN: NOTIFY and ORCPT are passed on in its
//!   RCPT, and alice gets no report from us (the next hop's job).
//! - `gone.test error:5.1.2 ...` bounces at once with that text.
//! - `tls.test [127.0.0.24]:PORT tls=required` to a host without STARTTLS:
//!   nothing is sent in plaintext; the mail stays queued.

mod outbound_sender;

use outbound_sender::{mx, reserve_on, Sender, ALICE};
use std::time::Duration;
use testkit::dns::Dnsmasq;
use testkit::scripted::Script;

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn transport_map_routes_per_domain_and_success_notices_follow_the_next_hop() {
    let dir = tempfile::tempdir().unwrap();
    let (port, mut r) = reserve_on(&["127.0.0.21", "127.0.0.22", "127.0.0.23", "127.0.0.24"]);
    let mut dns_args = Vec::new();
    dns_args.extend(mx("b.test", "127.0.0.22"));
    dns_args.extend(mx("relay.test", "127.0.0.23"));
    let dns = Dnsmasq::start(&dns_args);
    let tls_host = r.pop().unwrap().listen(Script::new("mx.tls.test"));
    let relay = r
        .pop()
        .unwrap()
        .listen(Script::new("mx.relay.test").extensions(&[
            "PIPELINING",
            "DSN",
            "ENHANCEDSTATUSCODES",
        ]));
    let b_mx = r.pop().unwrap().listen(Script::new("mx.b.test"));
    let b_direct = r.pop().unwrap().listen(Script::new("direct.b.test"));
    let map = dir.path().join("transport");
    std::fs::write(
        &map,
        format!(
            "# routes for the test\n\
             b.test      [127.0.0.21]:{port}\n\
             .sub.test   relay.test\n\
             gone.test   error:5.1.2 gone.test moved to new.test\n\
             tls.test    [127.0.0.24]:{port}   tls=required\n"
        ),
    )
    .unwrap();
    let a = Sender::start(
        dir.path(),
        dns.addr,
        port,
        &["--transport-map", map.to_str().unwrap()],
    );

    // One transaction per destination, each recipient asking for success
    // notices.
    for (to, subject) in [
        ("bob@b.test", "direct"),
        ("x@deep.sub.test", "via relay"),
        ("y@gone.test", "gone"),
        ("z@tls.test", "tls only"),
    ] {
        let mut c = a.session();
        c.expect(&format!("MAIL FROM:<{ALICE}> ENVID=E-{}", to.len()), "250");
        c.expect(
            &format!("RCPT TO:<{to}> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;{to}"),
            "250",
        );
        c.expect("DATA", "354");
        c.send(
            format!("From: {ALICE}\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nhello\r\n.\r\n")
                .as_bytes(),
        );
        c.expect_reply("250");
        c.expect("QUIT", "221");
    }

    let got = b_direct.wait_for(1, WAIT);
    assert_eq!(got[0].rcpts, vec!["bob@b.test".to_string()]);
    let got = relay.wait_for(1, WAIT);
    assert_eq!(got[0].rcpts, vec!["x@deep.sub.test".to_string()]);
    let rcpt_line = relay
        .commands()
        .into_iter()
        .map(|(_, l)| l)
        .find(|l| l.starts_with("RCPT"))
        .unwrap();
    assert!(
        rcpt_line.contains("NOTIFY=SUCCESS,FAILURE")
            && rcpt_line.contains("ORCPT=rfc822;x@deep.sub.test"),
        "DSN parameters not passed on: {rcpt_line}"
    );

    // The reports: the bounce for gone.test and the "relayed" notice for
    // bob (b.test's host offers no DSN); none for the relay's recipient.
    let inbox = a.wait_inbox(2, WAIT);
    let bounce = inbox
        .iter()
        .find(|m| m.contains("Action: failed"))
        .unwrap_or_else(|| panic!("no bounce: {inbox:#?}"));
    assert!(
        bounce.contains("Final-Recipient: rfc822; y@gone.test"),
        "{bounce}"
    );
    assert!(bounce.contains("moved to new.test"), "{bounce}");
    assert!(bounce.contains("Status: 5.1.2"), "{bounce}");
    let relayed = inbox
        .iter()
        .find(|m| m.contains("Action: relayed"))
        .unwrap_or_else(|| panic!("no relayed notice: {inbox:#?}"));
    assert!(
        relayed.contains("Final-Recipient: rfc822; bob@b.test"),
        "{relayed}"
    );
    assert!(relayed.contains("Status: 2."), "{relayed}");
    assert!(relayed.contains("text/rfc822-headers"), "{relayed}");

    // tls.test: never sent in plaintext, still queued with the reason.
    let listed = a.wait_queue("tls.test deferred", WAIT, |l| {
        l.contains("to <z@tls.test>") && l.contains("TLS required but STARTTLS not offered")
    });
    assert!(!listed.contains("bob@b.test"), "{listed}");
    assert_eq!(tls_host.delivered(), 0);
    assert_eq!(tls_host.count("MAIL"), 0, "mail sent without TLS");

    // Nothing went to b.test's MX, and no other report came.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(b_mx.connections(), 0);
    assert_eq!(a.inbox().len(), 2, "{:#?}", a.inbox());
}
