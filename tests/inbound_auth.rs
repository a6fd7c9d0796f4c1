//! Inbound checks (issue 17) between two real hosts: a.test
//! (127.0.0.41) signs with a key made by `minimail dkim keygen`, b.test
//! (127.0.0.42) runs with `--verify-inbound`; a real dnsmasq serves the
//! MX, SPF, DKIM and DMARC records. Asserted on what bob reads over IMAP:
//!
//! - a -> b: `dkim=pass`, `spf=pass`, `dmarc=pass` in b's
//!   Authentication-Results field;
//! - the same message with one body byte changed, resent: `dkim=fail`;
//! - a forged `From: @a.test` sent straight to b from 127.0.0.9 (outside
//!   a.test's SPF): refused with 550 5.7.1 (a.test publishes p=reject);
//!   the same for q.test (p=quarantine): delivered into bob's Junk;
//! - an Authentication-Results field in b's name from outside is removed;
//! - a message signed by another implementation (Debian's dkimpy, with an
//!   RSA key made by openssl) verifies: `dkim=pass header.i=@py.test`;
//! - `--auth-policy`: per receiving domain, SPF hard fails into Junk or
//!   refused (550 5.7.23), DMARC p=reject failures into Junk instead of
//!   refused; the strictest recipient's policy decides; a broken policy
//!   file stops `minimail up` with the line named.

mod outbound_sender;

use outbound_sender::reserve_on;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use testkit::dns::Dnsmasq;

const BIN: &str = env!("CARGO_BIN_EXE_minimail");

fn minimail(args: &[&str], db: &Path, stdin: &[u8]) -> String {
    let out = testkit::process::run(Command::new(BIN).args(args).arg("--db").arg(db), stdin);
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

struct Host {
    child: Child,
    smtp: SocketAddr,
    submission: SocketAddr,
    imap: SocketAddr,
}

impl Drop for Host {
    fn drop(&mut self) {
        testkit::server::sigterm(&self.child);
        let _ = self.child.wait();
    }
}

fn host(db: &Path, ip: &str, domain: &str, port: u16, dns: SocketAddr, extra: &[&str]) -> Host {
    let smtp = format!("{ip}:{port}");
    let mut args = vec![
        "--smtp",
        &smtp,
        "--domain",
        domain,
        "--dns",
        "",
        "--mx-port",
        "",
        "--retry-min",
        "1",
    ];
    let dns = dns.to_string();
    let port_s = port.to_string();
    args[5] = &dns;
    args[7] = &port_s;
    let hostname = format!("mx.{domain}");
    args.extend(["--hostname", &hostname]);
    args.extend(extra);
    let (child, line, _) = testkit::server::minimail_up(BIN, db, &args, &[]);
    Host {
        child,
        smtp: smtp.parse().unwrap(),
        submission: testkit::server::addr_of(&line, "submission")
            .parse()
            .unwrap(),
        imap: testkit::server::addr_of(&line, "imap").parse().unwrap(),
    }
}

/// The raw messages in `mailbox` of bob@b.test.
fn mailbox(imap: SocketAddr, name: &str) -> Vec<String> {
    testkit::imap::fetch_all_text(imap, "bob@b.test", "pw", name)
}

fn wait_for(imap: SocketAddr, name: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = mailbox(imap, name);
        if got.len() >= n {
            return got;
        }
        assert!(Instant::now() < deadline, "{name} has {} of {n}", got.len());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The Authentication-Results field b added (the first one), unfolded.
fn results(msg: &str) -> String {
    let start = msg
        .find("Authentication-Results: mx.b.test;")
        .unwrap_or_else(|| panic!("no results from mx.b.test:\n{msg}"));
    let rest = &msg[start..];
    let mut out = String::new();
    for (i, line) in rest.split("\r\n").enumerate() {
        if i > 0 && !line.starts_with([' ', '\t']) {
            break;
        }
        out.push_str(line.trim());
        out.push(' ');
    }
    out
}

/// Send `data` to `to` over SMTP from source address `from_ip`; returns
/// the reply to the final dot.
fn send_from(from_ip: &str, to: SocketAddr, mail_from: &str, data: &str) -> String {
    send_to(from_ip, to, mail_from, &["bob@b.test"], data)
}

/// [`send_from`] to the recipients `rcpts`.
fn send_to(from_ip: &str, to: SocketAddr, mail_from: &str, rcpts: &[&str], data: &str) -> String {
    let ip: IpAddr = from_ip.parse().unwrap();
    let mut c = testkit::smtp::Client::connect_from(ip, to);
    c.expect_reply("220");
    c.expect("EHLO mx.elsewhere.test", "250");
    c.expect(&format!("MAIL FROM:<{mail_from}>"), "250");
    for rcpt in rcpts {
        c.expect(&format!("RCPT TO:<{rcpt}>"), "250");
    }
    c.expect("DATA", "354");
    c.send(data.as_bytes());
    c.send(b".\r\n");
    let reply = c.reply();
    c.send(b"QUIT\r\n");
    reply
}

#[test]
fn two_hosts_sign_and_check_and_dmarc_policies_apply() {
    let dir = tempfile::tempdir().unwrap();
    let a_db = dir.path().join("a.db");
    let b_db = dir.path().join("b.db");
    minimail(
        &["user", "add", "alice@a.test", "--password-stdin"],
        &a_db,
        b"pw\n",
    );
    minimail(
        &["user", "add", "bob@b.test", "--password-stdin"],
        &b_db,
        b"pw\n",
    );
    let key = minimail(
        &["dkim", "keygen", "a.test", "--selector", "s1"],
        &a_db,
        b"",
    );
    let key_text = key.split('"').nth(1).unwrap().to_owned();
    // py.test's key, made by openssl, for dkimpy to sign with.
    let pem = dir.path().join("py.pem");
    let ok = Command::new("openssl")
        .args(["genrsa", "-out"])
        .arg(&pem)
        .arg("2048")
        .output()
        .unwrap();
    assert!(ok.status.success(), "{ok:?}");
    // The public key as PEM: its body is the base64 the record wants.
    let public = Command::new("openssl")
        .args(["rsa", "-pubout", "-in"])
        .arg(&pem)
        .output()
        .unwrap();
    assert!(public.status.success(), "{public:?}");
    let p: String = String::from_utf8(public.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let py_record = format!("v=DKIM1; k=rsa; p={p}");
    let (port, reserved) = reserve_on(&["127.0.0.41", "127.0.0.42"]);
    drop(reserved);
    let dns = Dnsmasq::start(&[
        "--mx-host=a.test,mx.a.test,10".into(),
        "--host-record=mx.a.test,127.0.0.41".into(),
        "--mx-host=b.test,mx.b.test,10".into(),
        "--host-record=mx.b.test,127.0.0.42".into(),
        // a's engine connects from the kernel's choice of source address.
        "--txt-record=a.test,v=spf1 ip4:127.0.0.1 ip4:127.0.0.41 -all".into(),
        "--txt-record=_dmarc.a.test,v=DMARC1; p=reject".into(),
        format!("--txt-record=s1._domainkey.a.test,{key_text}"),
        "--txt-record=q.test,v=spf1 ip4:127.0.0.1 -all".into(),
        "--txt-record=_dmarc.q.test,v=DMARC1; p=quarantine".into(),
        format!(
            "--txt-record=py._domainkey.py.test,{}",
            py_record
                .as_bytes()
                .chunks(255)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join(",")
        ),
    ]);
    let a = host(&a_db, "127.0.0.41", "a.test", port, dns.addr, &[]);
    let b = host(
        &b_db,
        "127.0.0.42",
        "b.test",
        port,
        dns.addr,
        &["--verify-inbound"],
    );

    // a -> b through a's queue: signed by a, checked by b.
    let mut c = testkit::smtp::Client::connect(a.submission);
    c.expect_reply("220");
    c.expect("EHLO client.a.test", "250");
    c.expect(
        &format!("AUTH PLAIN {}", testkit::smtp::plain("alice@a.test", "pw")),
        "235",
    );
    c.expect("MAIL FROM:<alice@a.test>", "250");
    c.expect("RCPT TO:<bob@b.test>", "250");
    c.expect("DATA", "354");
    c.send(b"From: <alice@a.test>\r\nTo: <bob@b.test>\r\nSubject: authentic\r\n\r\nThe original body.\r\n.\r\n");
    c.expect_reply("250");
    c.expect("QUIT", "221");
    let got = wait_for(b.imap, "INBOX", 1);
    let r = results(&got[0]);
    for want in ["dkim=pass", "spf=pass", "dmarc=pass", "header.d=a.test"] {
        assert!(r.contains(want), "no {want} in {r}");
    }

    // The signed message with one body byte changed, resent from the
    // address SPF allows: the signature no longer verifies.
    let original = &got[0];
    let from_dkim = &original[original.find("DKIM-Signature:").unwrap()..];
    let tampered = from_dkim.replace("The original body.", "The original b0dy.");
    assert_eq!(
        &send_from("127.0.0.1", b.smtp, "alice@a.test", &tampered)[..3],
        "250"
    );
    let got = wait_for(b.imap, "INBOX", 2);
    let r = results(&got[1]);
    assert!(r.contains("dkim=fail"), "{r}");

    // Forged From: @a.test from outside a.test's SPF, unsigned: p=reject.
    let reply = send_from(
        "127.0.0.9",
        b.smtp,
        "alice@a.test",
        "From: <alice@a.test>\r\nTo: <bob@b.test>\r\nSubject: forged\r\n\r\npay me\r\n",
    );
    assert!(reply.starts_with("550 5.7.1 "), "{reply}");
    assert!(reply.contains("DMARC"), "{reply}");

    // q.test publishes p=quarantine: delivered, into Junk. It also carries
    // a results field in b's name, which must not survive.
    let reply = send_from(
        "127.0.0.9",
        b.smtp,
        "q@q.test",
        "Authentication-Results: mx.b.test; dkim=pass header.d=q.test\r\nFrom: <q@q.test>\r\nTo: <bob@b.test>\r\nSubject: quarantined\r\n\r\nhello\r\n",
    );
    assert!(reply.starts_with("250"), "{reply}");
    let junk = wait_for(b.imap, "Junk", 1);
    assert!(junk[0].contains("Subject: quarantined"), "{}", junk[0]);
    let r = results(&junk[0]);
    assert!(r.contains("dmarc=fail"), "{r}");
    assert_eq!(
        junk[0].matches("Authentication-Results: mx.b.test").count(),
        1,
        "the forged field survived:\n{}",
        junk[0]
    );
    assert!(
        !junk[0].contains("dkim=pass header.d=q.test"),
        "{}",
        junk[0]
    );
    // Signed by dkimpy: verifies here too.
    let msg_path = dir.path().join("py.eml");
    std::fs::write(
        &msg_path,
        "From: <py@py.test>\r\nTo: <bob@b.test>\r\nSubject: signed by dkimpy\r\n\r\nfrom python\r\n",
    )
    .unwrap();
    let script = format!(
        "import dkim, sys\n\
         msg = open('{m}', 'rb').read()\n\
         key = open('{k}', 'rb').read()\n\
         sig = dkim.sign(msg, b'py', b'py.test', key, include_headers=[b'from', b'to', b'subject'])\n\
         sys.stdout.buffer.write(sig + msg)\n",
        m = msg_path.display(),
        k = pem.display()
    );
    let signed = Command::new("/usr/bin/python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(signed.status.success(), "dkimpy: {signed:?}");
    let signed = String::from_utf8(signed.stdout)
        .unwrap()
        .replace("\r\n", "\n")
        .replace('\n', "\r\n");
    assert_eq!(
        &send_from("127.0.0.1", b.smtp, "py@py.test", &signed)[..3],
        "250"
    );
    let got = wait_for(b.imap, "INBOX", 3);
    let r = results(&got[2]);
    // dkimpy signs with i=@py.test, which the field then names.
    assert!(r.contains("dkim=pass header.i=@py.test"), "{r}");

    // Nothing else reached the INBOX.
    assert_eq!(mailbox(b.imap, "INBOX").len(), 3);
    drop(a);
}

#[test]
fn auth_policy_per_receiving_domain() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    for user in ["bob@b.test", "carol@c.test"] {
        minimail(&["user", "add", user, "--password-stdin"], &db, b"pw\n");
    }
    let policy = dir.path().join("policy");
    std::fs::write(
        &policy,
        "# every domain: SPF hard fails to Junk\n\
         *        spf-fail=junk\n\
         c.test   spf-fail=refuse dmarc-reject=junk   # carol's domain\n",
    )
    .unwrap();
    let (port, reserved) = reserve_on(&["127.0.0.43"]);
    drop(reserved);
    let dns = Dnsmasq::start(&[
        // h.test: SPF -all, no DMARC record; r.test: SPF ~all (a soft
        // fail, never acted on) and p=reject.
        "--txt-record=h.test,v=spf1 ip4:127.0.0.1 -all".into(),
        "--txt-record=r.test,v=spf1 ip4:127.0.0.1 ~all".into(),
        "--txt-record=_dmarc.r.test,v=DMARC1; p=reject".into(),
    ]);
    let policy_arg = policy.to_str().unwrap();
    let b = host(
        &db,
        "127.0.0.43",
        "b.test",
        port,
        dns.addr,
        &[
            "--domain",
            "c.test",
            "--verify-inbound",
            "--auth-policy",
            policy_arg,
        ],
    );
    let msg = |subject: &str, from: &str| {
        format!("From: <{from}>\r\nTo: <x@b.test>\r\nSubject: {subject}\r\n\r\nhello\r\n")
    };
    let carol = |name: &str| testkit::imap::fetch_all_text(b.imap, "carol@c.test", "pw", name);

    // SPF fail from outside h.test's SPF: Junk for b.test, refused for c.test.
    let r = send_to(
        "127.0.0.9",
        b.smtp,
        "h@h.test",
        &["bob@b.test"],
        &msg("spf to bob", "h@h.test"),
    );
    assert!(r.starts_with("250"), "{r}");
    let junk = wait_for(b.imap, "Junk", 1);
    assert!(junk[0].contains("Subject: spf to bob"), "{}", junk[0]);
    assert!(results(&junk[0]).contains("spf=fail"), "{}", junk[0]);
    let r = send_to(
        "127.0.0.9",
        b.smtp,
        "h@h.test",
        &["carol@c.test"],
        &msg("spf to carol", "h@h.test"),
    );
    assert!(
        r.starts_with("550 5.7.23 SPF validation failed: h.test does not designate 127.0.0.9"),
        "{r}"
    );
    // Both at once: the strictest (c.test's refuse) decides.
    let r = send_to(
        "127.0.0.9",
        b.smtp,
        "h@h.test",
        &["bob@b.test", "carol@c.test"],
        &msg("spf to both", "h@h.test"),
    );
    assert!(r.starts_with("550 5.7.23 "), "{r}");

    // DMARC p=reject failure (From: r.test, sent from outside its SPF):
    // refused for b.test (the default), Junk for c.test.
    let r = send_to(
        "127.0.0.9",
        b.smtp,
        "x@r.test",
        &["bob@b.test"],
        &msg("dmarc to bob", "x@r.test"),
    );
    assert!(r.starts_with("550 5.7.1 DMARC policy of r.test"), "{r}");
    let r = send_to(
        "127.0.0.9",
        b.smtp,
        "x@r.test",
        &["carol@c.test"],
        &msg("dmarc to carol", "x@r.test"),
    );
    assert!(r.starts_with("250"), "{r}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let junk = loop {
        let junk = carol("Junk");
        if !junk.is_empty() || Instant::now() > deadline {
            break junk;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(junk.len(), 1);
    assert!(junk[0].contains("Subject: dmarc to carol"), "{}", junk[0]);
    // Mail that passes is untouched by the policy.
    let r = send_to(
        "127.0.0.1",
        b.smtp,
        "h@h.test",
        &["carol@c.test"],
        &msg("fine", "h@h.test"),
    );
    assert!(r.starts_with("250"), "{r}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while carol("INBOX").is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let inbox = carol("INBOX");
    assert_eq!(inbox.len(), 1);
    assert!(inbox[0].contains("Subject: fine"));
    assert_eq!(mailbox(b.imap, "INBOX").len(), 0, "bob's INBOX");
    assert_eq!(mailbox(b.imap, "Junk").len(), 1, "bob's Junk");
    drop(b);

    // A broken file: `minimail up` refuses to start and names the line.
    std::fs::write(&policy, "*  spf-fail=junk\nc.test spf-fail=bounce\n").unwrap();
    let out = Command::new(BIN)
        .args([
            "up",
            "--smtp",
            "127.0.0.1:0",
            "--imap",
            "127.0.0.1:0",
            "--submission",
            "127.0.0.1:0",
            "--sieve",
            "127.0.0.1:0",
        ])
        .args(["--verify-inbound", "--auth-policy", policy_arg, "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 2: spf-fail=\"bounce\": the action is refuse, junk or note"),
        "{err}"
    );
}
