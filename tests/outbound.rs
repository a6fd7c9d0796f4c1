//! Outbound delivery between two real `minimail up` hosts on different
//! loopback addresses (a.test on 127.0.0.2, b.test on 127.0.0.3), routed
//! by MX records from a real DNS server (dnsmasq) on loopback: a user of
//! a.test submits with Python's smtplib (AUTH on the submission port), the
//! message crosses to b.test over SMTP (opportunistic STARTTLS), b reads it
//! over IMAP and replies the same way; mail to an unknown user of b.test is
//! bounced (RFC 3464 report in the sender's INBOX); mail to a domain whose
//! MX does not answer stays queued (`minimail queue list`) and is
//! delivered once the host is up.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use testkit::dns::Dnsmasq;

const BIN: &str = env!("CARGO_BIN_EXE_minimail");

/// A port free on both 127.0.0.2 and 127.0.0.3 (hosts share the MX port).
fn shared_port() -> u16 {
    for _ in 0..50 {
        let a = TcpListener::bind("127.0.0.2:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.3", port)).is_ok()
            && TcpListener::bind(("127.0.0.4", port)).is_ok()
        {
            return port;
        }
    }
    panic!("no port free on 127.0.0.2-4");
}

fn add_user(db: &Path, addr: &str) {
    let out = testkit::process::run(
        Command::new(BIN)
            .args(["user", "add", addr, "--password-stdin", "--db"])
            .arg(db),
        b"pw\n",
    );
    assert!(out.status.success(), "{out:?}");
}

struct Host {
    child: Child,
    submission: String,
    imap: String,
    /// What the host logged after start-up (it runs with `--trace`).
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Drop for Host {
    fn drop(&mut self) {
        testkit::server::sigterm(&self.child);
        let _ = self.child.wait();
    }
}

fn host(dir: &Path, ip: &str, domain: &str, port: u16, dns: SocketAddr) -> Host {
    let db = dir.join(format!("{domain}.db"));
    let (child, line, _, log) = testkit::server::minimail_up_logged(
        BIN,
        &db,
        &[
            "--trace",
            "--smtp",
            &format!("{ip}:{port}"),
            "--submission",
            &format!("{ip}:0"),
            "--imap",
            &format!("{ip}:0"),
            "--domain",
            domain,
            "--hostname",
            &format!("mx.{domain}"),
            "--dns",
            &dns.to_string(),
            "--mx-port",
            &port.to_string(),
            "--retry-min",
            "1",
            "--retry-max",
            "1",
        ],
        &[],
    );
    Host {
        child,
        submission: addr_on(&line, "submission", ip),
        // Read from 127.0.0.1 (a local client may log in without TLS).
        imap: addr_on(&line, "imap", "127.0.0.1"),
        log,
    }
}

/// The address on `ip` that the start-up line lists for `what` (it lists
/// minimail_up's 127.0.0.1 ones too).
fn addr_on(line: &str, what: &str, ip: &str) -> String {
    line.split(&format!("{what} on "))
        .nth(1)
        .unwrap()
        .split(", ")
        .map(|a| a.trim())
        .take_while(|a| a.parse::<SocketAddr>().is_ok())
        .find(|a| a.starts_with(ip))
        .unwrap_or_else(|| panic!("no {what} on {ip} in {line}"))
        .to_owned()
}

/// Submit with Python's smtplib: STARTTLS (the host's self-signed
/// certificate), AUTH, send.
fn submit(addr: &str, user: &str, to: &str, subject: &str) {
    let (h, p) = addr.rsplit_once(':').unwrap();
    let script = format!(
        "import smtplib, ssl\n\
         from email.message import EmailMessage\n\
         m = EmailMessage()\n\
         m['From'] = '{user}'\n\
         m['To'] = '{to}'\n\
         m['Subject'] = '{subject}'\n\
         m.set_content('hello from {user}')\n\
         s = smtplib.SMTP('{h}', {p}, local_hostname='client.test')\n\
         s.starttls(context=ssl._create_unverified_context())\n\
         s.login('{user}', 'pw')\n\
         s.send_message(m)\n\
         s.quit()\n"
    );
    testkit::process::python(&script);
}

/// The messages in `user`'s INBOX, over IMAP.
fn inbox(imap: &str, user: &str) -> Vec<String> {
    testkit::imap::fetch_all_text(imap.parse().unwrap(), user, "pw", "INBOX")
}

fn wait_for(imap: &str, user: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = inbox(imap, user);
        if got.len() >= n {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{user} has {} of {n} messages",
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
fn two_hosts_exchange_mail_by_mx_and_bounce_what_cannot_be_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let dns = Dnsmasq::start(&[
        "--mx-host=a.test,mx.a.test,10".into(),
        "--host-record=mx.a.test,127.0.0.2".into(),
        "--mx-host=b.test,mx.b.test,10".into(),
        "--host-record=mx.b.test,127.0.0.3".into(),
        "--mx-host=c.test,mx.c.test,10".into(),
        "--host-record=mx.c.test,127.0.0.4".into(),
        "--dns-rr=null.test,15,000000".into(),
    ]);
    add_user(&dir.path().join("a.test.db"), "alice@a.test");
    add_user(&dir.path().join("b.test.db"), "bob@b.test");
    add_user(&dir.path().join("c.test.db"), "carol@c.test");
    let port = shared_port();
    let a = host(dir.path(), "127.0.0.2", "a.test", port, dns.addr);
    let b = host(dir.path(), "127.0.0.3", "b.test", port, dns.addr);

    // a -> b, and b's reply -> a.
    submit(&a.submission, "alice@a.test", "bob@b.test", "hello b");
    let got = wait_for(&b.imap, "bob@b.test", 1);
    assert!(got[0].contains("Subject: hello b"), "{}", got[0]);
    assert!(got[0].contains("hello from alice@a.test"), "{}", got[0]);
    assert!(got[0].contains("by mx.b.test"), "{}", got[0]);
    // `--trace` shows the queue's side of that delivery: a's dialogue with
    // b's MX, the content counted, not shown.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !a.log.lock().unwrap().contains("status=sent") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = a.log.lock().unwrap().clone();
    let peer = format!("mx.b.test[127.0.0.3]:{port}");
    for want in [
        format!("{peer} S: 220 "),
        format!("{peer} C: EHLO mx.a.test"),
        format!("{peer} C: STARTTLS"),
        format!("{peer} C: MAIL FROM:<alice@a.test>"),
        format!("{peer} C: RCPT TO:<bob@b.test>"),
        format!("{peer} S: 250 2.0.0 OK"),
    ] {
        assert!(log.contains(&want), "no {want:?} in a's trace:\n{log}");
    }
    assert!(log.contains("bytes of message data>"), "{log}");
    assert!(
        log.contains(&format!("to=<bob@b.test> relay={peer} status=sent")),
        "no delivery log line:\n{log}"
    );
    assert!(!log.contains("hello from alice"), "content traced:\n{log}");
    submit(&b.submission, "bob@b.test", "alice@a.test", "re: hello b");
    let got = wait_for(&a.imap, "alice@a.test", 1);
    assert!(got[0].contains("Subject: re: hello b"), "{}", got[0]);

    // Unknown user at b.test: b says 550, a bounces to alice's INBOX.
    submit(&a.submission, "alice@a.test", "nobody@b.test", "lost");
    let got = wait_for(&a.imap, "alice@a.test", 2);
    let dsn = &got[1];
    assert!(dsn.contains("multipart/report"), "{dsn}");
    assert!(
        dsn.contains("Final-Recipient: rfc822; nobody@b.test"),
        "{dsn}"
    );
    assert!(
        dsn.contains("Action: failed") && dsn.contains("Status: 5."),
        "{dsn}"
    );
    assert!(
        dsn.contains("Subject: lost"),
        "the original is attached: {dsn}"
    );

    // Null MX (RFC 7505): bounced at once, nothing sent anywhere.
    submit(&a.submission, "alice@a.test", "x@null.test", "null");
    let got = wait_for(&a.imap, "alice@a.test", 3);
    assert!(
        got[2].contains("Final-Recipient: rfc822; x@null.test"),
        "{}",
        got[2]
    );

    // c.test's MX is down: the message stays queued, then arrives once up.
    submit(&a.submission, "alice@a.test", "carol@c.test", "patience");
    std::thread::sleep(Duration::from_millis(1500));
    let listed = queue_list(&dir.path().join("a.test.db"));
    assert!(
        listed.contains("to <carol@c.test>") && listed.contains("1 message(s)"),
        "{listed}"
    );
    let c = host(dir.path(), "127.0.0.4", "c.test", port, dns.addr);
    let got = wait_for(&c.imap, "carol@c.test", 1);
    assert!(got[0].contains("Subject: patience"), "{}", got[0]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !queue_list(&dir.path().join("a.test.db")).contains("queue is empty") {
        assert!(Instant::now() < deadline, "queue not emptied");
        std::thread::sleep(Duration::from_millis(100));
    }
    // No bounce for it: alice still has the reply and two reports.
    assert_eq!(inbox(&a.imap, "alice@a.test").len(), 3);
}

#[test]
fn submission_port_wants_auth_and_port_25_is_no_open_relay() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    add_user(&db, "alice@localhost");
    let (mut up, line, _) = testkit::server::minimail_up(BIN, &db, &[], &[]);
    let sub: SocketAddr = testkit::server::addr_of(&line, "submission")
        .parse()
        .unwrap();
    let smtp: SocketAddr = testkit::server::addr_of(&line, "smtp").parse().unwrap();
    let mut s = testkit::smtp::Client::connect(sub);
    s.expect_reply("220");
    s.expect("EHLO c.test", "250");
    s.expect("MAIL FROM:<alice@localhost>", "530 5.7.0");
    let mut s = testkit::smtp::Client::connect(smtp);
    s.expect_reply("220");
    s.expect("EHLO c.test", "250");
    s.expect("MAIL FROM:<x@elsewhere.test>", "250");
    s.expect("RCPT TO:<y@elsewhere.test>", "550 5.7.1");
    testkit::server::sigterm(&up);
    up.wait().unwrap();
}
