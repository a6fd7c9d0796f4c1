//! RFC 3461 DSN parameters end to end: a user submits with Python's
//! smtplib giving RET/ENVID on MAIL and NOTIFY/ORCPT on RCPT (minimail
//! advertises DSN), and the reports that land in the sender's INBOX follow
//! them: a failure report with the original's header only (RET=HDRS), the
//! Original-Envelope-Id and Original-Recipient fields; nothing for
//! NOTIFY=NEVER; one delay warning (RFC 3464 "delayed") for mail still
//! queued after `--delay-warning`, and none for a recipient whose NOTIFY
//! leaves DELAY out; a "delivered" notice for a local recipient with
//! NOTIFY=SUCCESS, into the INBOX of a local sender and queued from `<>`
//! for a sender elsewhere. Routing by MX from a real dnsmasq on loopback.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use testkit::dns::Dnsmasq;

const BIN: &str = env!("CARGO_BIN_EXE_minimail");

/// Submit one message with smtplib: STARTTLS, AUTH, then
/// `sendmail(..., mail_options, rcpt_options)`.
fn submit(addr: &str, to: &str, subject: &str, mail_options: &[&str], rcpt_options: &[&str]) {
    let (h, p) = addr.rsplit_once(':').unwrap();
    let list = |o: &[&str]| {
        o.iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let script = format!(
        "import smtplib, ssl\n\
         from email.message import EmailMessage\n\
         m = EmailMessage()\n\
         m['From'] = 'alice@localhost'\n\
         m['To'] = '{to}'\n\
         m['Subject'] = '{subject}'\n\
         m.set_content('body of {subject}')\n\
         s = smtplib.SMTP('{h}', {p}, local_hostname='client.test')\n\
         s.starttls(context=ssl._create_unverified_context())\n\
         s.login('alice@localhost', 'pw')\n\
         assert s.has_extn('dsn'), s.esmtp_features\n\
         s.sendmail('alice@localhost', ['{to}'], m.as_bytes(), mail_options=[{mo}], rcpt_options=[{ro}])\n\
         s.quit()\n",
        mo = list(mail_options),
        ro = list(rcpt_options),
    );
    testkit::process::python(&script);
}

/// The messages in alice's INBOX, over IMAP.
fn inbox(imap: SocketAddr) -> Vec<String> {
    testkit::imap::fetch_all_text(imap, "alice@localhost", "pw", "INBOX")
}

fn wait_for(imap: SocketAddr, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = inbox(imap);
        if got.len() >= n {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "alice has {} of {n} messages",
            got.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn queue_list(db: &Path) -> String {
    let out = Command::new(BIN)
        .args(["queue", "list", "--db"])
        .arg(db)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn dsn_parameters_shape_the_reports_the_sender_gets() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    for user in ["alice@localhost", "bob@localhost"] {
        let out = testkit::process::run(
            Command::new(BIN)
                .args(["user", "add", user, "--password-stdin", "--db"])
                .arg(&db),
            b"pw\n",
        );
        assert!(out.status.success(), "{out:?}");
    }
    // down.test's MX is an address where nothing listens on the MX port.
    let port = {
        let l = TcpListener::bind("127.0.0.5:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dns = Dnsmasq::start(&[
        "--dns-rr=null.test,15,000000".into(),
        "--mx-host=down.test,mx.down.test,10".into(),
        "--host-record=mx.down.test,127.0.0.5".into(),
    ]);
    let (mut up, line, _, log) = testkit::server::minimail_up_logged(
        BIN,
        &db,
        &[
            "--dns",
            &dns.addr.to_string(),
            "--mx-port",
            &port.to_string(),
            "--retry-min",
            "1",
            "--retry-max",
            "1",
            "--delay-warning",
            "2",
        ],
        &[],
    );
    let sub = testkit::server::addr_of(&line, "submission");
    let imap: SocketAddr = testkit::server::addr_of(&line, "imap").parse().unwrap();

    // NOTIFY=NEVER first: if it earned a report, it would come first.
    submit(&sub, "never@null.test", "quiet", &[], &["NOTIFY=NEVER"]);
    submit(
        &sub,
        "x@null.test",
        "headers only",
        &["RET=HDRS", "ENVID=env-A+2B1"],
        &["NOTIFY=FAILURE", "ORCPT=rfc822;orig+2Bx@null.test"],
    );
    let got = wait_for(imap, 1);
    let bounce = &got[0];
    assert!(bounce.contains("Action: failed"), "{bounce}");
    assert!(
        bounce.contains("Final-Recipient: rfc822; x@null.test"),
        "the NOTIFY=NEVER recipient got a report, or another did: {bounce}"
    );
    assert!(bounce.contains("Original-Envelope-Id: env-A+1"), "{bounce}");
    assert!(
        bounce.contains("Original-Recipient: rfc822;orig+x@null.test"),
        "{bounce}"
    );
    assert!(bounce.contains("text/rfc822-headers"), "{bounce}");
    assert!(bounce.contains("Subject: headers only"), "{bounce}");
    assert!(
        !bounce.contains("body of headers only"),
        "RET=HDRS returned the body: {bounce}"
    );

    // Both to a host that is down: one wants delay warnings (and gets
    // exactly one), the other only failures (and gets none).
    submit(
        &sub,
        "y@down.test",
        "failure only",
        &[],
        &["NOTIFY=FAILURE"],
    );
    submit(
        &sub,
        "z@down.test",
        "warn me",
        &["ENVID=env-C"],
        &["NOTIFY=DELAY,FAILURE"],
    );
    let got = wait_for(imap, 2);
    let warning = &got[1];
    assert!(warning.contains("Action: delayed"), "{warning}");
    assert!(
        warning.contains("Final-Recipient: rfc822; z@down.test"),
        "{warning}"
    );
    assert!(warning.contains("Original-Envelope-Id: env-C"), "{warning}");
    assert!(warning.contains("Status: 4."), "{warning}");
    assert!(warning.contains("Subject: warn me"), "{warning}");
    // Several more attempts later: still only the one warning, and both
    // messages still queued (a warning is not a give-up).
    std::thread::sleep(Duration::from_secs(4));
    let got = inbox(imap);
    assert_eq!(got.len(), 2, "{:#?}", got);
    let listed = queue_list(&db);
    assert!(
        listed.contains("to <y@down.test>") && listed.contains("to <z@down.test>"),
        "{listed}"
    );
    assert!(!listed.contains("null.test"), "{listed}");

    // A local recipient with NOTIFY=SUCCESS: alice hears it was delivered.
    submit(
        &sub,
        "bob@localhost",
        "for bob",
        &["ENVID=env-D"],
        &["NOTIFY=SUCCESS"],
    );
    let got = wait_for(imap, 3);
    let notice = &got[2];
    assert!(notice.contains("Action: delivered"), "{notice}");
    assert!(
        notice.contains("Final-Recipient: rfc822; bob@localhost"),
        "{notice}"
    );
    assert!(notice.contains("Original-Envelope-Id: env-D"), "{notice}");
    assert!(notice.contains("Subject: for bob"), "{notice}");
    assert!(!notice.contains("body of for bob"), "{notice}");

    // The same asked by another MTA on port 25: the notice goes back from
    // the null sender through the queue (far.test does not exist, so it is
    // dropped there, a report about a report being never sent).
    let smtp: SocketAddr = testkit::server::addr_of(&line, "smtp").parse().unwrap();
    let mut c = testkit::smtp::Client::connect(smtp);
    c.expect_reply("220");
    c.expect("EHLO mx.far.test", "250");
    c.expect("MAIL FROM:<carol@far.test>", "250");
    c.expect("RCPT TO:<bob@localhost> NOTIFY=SUCCESS,FAILURE", "250");
    c.expect("DATA", "354");
    c.send(b"Subject: from far\r\n\r\nhi\r\n.\r\n");
    c.expect_reply("250");
    c.expect("QUIT", "221");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = log.lock().unwrap().clone();
        if let Some(l) = text
            .lines()
            .find(|l| l.contains("outbound: id=") && l.contains("to=<carol@far.test>"))
        {
            assert!(l.contains(".L to=<carol@far.test>"), "{l}");
            break;
        }
        assert!(Instant::now() < deadline, "no notice to carol:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(inbox(imap).len(), 3);

    testkit::server::sigterm(&up);
    up.wait().unwrap();
}
