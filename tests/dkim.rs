//! DKIM signing (issue 17) checked by an independent verifier: keys made
//! with `minimail dkim keygen` (ed25519 for a.test, RSA for c.test), their
//! TXT records served by a real dnsmasq on loopback, mail submitted by
//! authenticated users, and Python's dkimpy (Debian's python3-dkim, asking
//! dnsmasq through dnspython) verifying what arrived: in a local INBOX
//! (read over IMAP) and at another host (a scripted remote server reached
//! through the outbound queue). The same bytes with one body byte changed
//! must fail verification.

mod outbound_sender;

use outbound_sender::reserve_on;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use testkit::dns::Dnsmasq;
use testkit::scripted::Script;

const BIN: &str = env!("CARGO_BIN_EXE_minimail");

fn minimail(args: &[&str], db: &Path, stdin: &[u8]) -> String {
    let out = testkit::process::run(Command::new(BIN).args(args).arg("--db").arg(db), stdin);
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// `minimail dkim keygen` for `domain`: the dnsmasq option serving its
/// record (the zone-file strings of the printed line, comma separated).
fn keygen(db: &Path, domain: &str, selector: &str, algorithm: &str) -> String {
    let out = minimail(
        &[
            "dkim",
            "keygen",
            domain,
            "--selector",
            selector,
            "--algorithm",
            algorithm,
        ],
        db,
        b"",
    );
    let line = out.lines().next().unwrap();
    let name = format!("{selector}._domainkey.{domain}.");
    assert!(line.starts_with(&name), "{out}");
    let strings: Vec<&str> = line.split('"').skip(1).step_by(2).collect::<Vec<_>>();
    assert!(!strings.is_empty(), "{out}");
    format!(
        "--txt-record={}._domainkey.{domain},{}",
        selector,
        strings.join(",")
    )
}

fn dkim_verify(msg: &[u8], dns: SocketAddr) -> bool {
    testkit::dkim::dkimpy_verifies(msg, dns)
}

/// Submit with AUTH on the submission port (a loopback client may
/// authenticate without TLS).
fn submit(sub: SocketAddr, from: &str, to: &str, subject: &str) {
    let mut c = testkit::smtp::Client::connect(sub);
    c.expect_reply("220");
    c.expect("EHLO client.test", "250");
    c.expect(
        &format!("AUTH PLAIN {}", testkit::smtp::plain(from, "pw")),
        "235",
    );
    c.expect(&format!("MAIL FROM:<{from}>"), "250");
    c.expect(&format!("RCPT TO:<{to}>"), "250");
    c.expect("DATA", "354");
    c.send(
        format!(
            "From: <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n\r\nSigned body line one.\r\nand two.\r\n.\r\n"
        )
        .as_bytes(),
    );
    c.expect_reply("250");
    c.expect("QUIT", "221");
}

/// The raw messages in `user`'s INBOX.
fn inbox(imap: SocketAddr, user: &str) -> Vec<Vec<u8>> {
    testkit::imap::fetch_all(imap, user, "pw", "INBOX")
}

fn tamper(msg: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(msg).replace("line one", "line 0ne");
    assert_ne!(text.as_bytes(), msg);
    text.into_bytes()
}

#[test]
fn mail_of_authenticated_users_is_signed_and_verifies_with_dkimpy() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    for user in ["alice@a.test", "bob@a.test", "carol@c.test"] {
        minimail(&["user", "add", user, "--password-stdin"], &db, b"pw\n");
    }
    let a_key = keygen(&db, "a.test", "e1", "ed25519");
    let c_key = keygen(&db, "c.test", "r1", "rsa");
    let (port, mut r) = reserve_on(&["127.0.0.31"]);
    let remote = r.remove(0).listen(Script::new("mx.b.test"));
    let dns = Dnsmasq::start(&[
        a_key,
        c_key,
        "--mx-host=b.test,mx.b.test,10".into(),
        "--host-record=mx.b.test,127.0.0.31".into(),
    ]);
    let (mut up, line, _) = testkit::server::minimail_up(
        BIN,
        &db,
        &[
            "--domain",
            "a.test",
            "--domain",
            "c.test",
            "--dns",
            &dns.addr.to_string(),
            "--mx-port",
            &port.to_string(),
        ],
        &[],
    );
    let sub: SocketAddr = testkit::server::addr_of(&line, "submission")
        .parse()
        .unwrap();
    let imap: SocketAddr = testkit::server::addr_of(&line, "imap").parse().unwrap();

    // Local delivery, ed25519 (RFC 8463) and RSA.
    submit(sub, "alice@a.test", "bob@a.test", "ed25519 signed");
    submit(sub, "carol@c.test", "bob@a.test", "rsa signed");
    let got = inbox(imap, "bob@a.test");
    assert_eq!(got.len(), 2);
    for (msg, want) in got.iter().zip(["a=ed25519-sha256", "a=rsa-sha256"]) {
        let text = String::from_utf8_lossy(msg);
        assert!(text.contains("DKIM-Signature:"), "{text}");
        assert!(text.contains(want), "{text}");
        assert!(dkim_verify(msg, dns.addr), "dkimpy rejects:\n{text}");
        assert!(
            !dkim_verify(&tamper(msg), dns.addr),
            "a changed body still verifies"
        );
    }

    // Through the outbound queue to another host.
    submit(sub, "alice@a.test", "x@b.test", "signed for b");
    let arrived = remote.wait_for(1, Duration::from_secs(30));
    let data = &arrived[0].data;
    let text = String::from_utf8_lossy(data);
    assert!(text.contains("d=a.test") && text.contains("s=e1"), "{text}");
    assert!(dkim_verify(data, dns.addr), "dkimpy rejects:\n{text}");

    // `dkim show` prints what keygen printed.
    let shown = minimail(&["dkim", "show", "a.test"], &db, b"");
    assert!(
        shown.starts_with("e1._domainkey.a.test. IN TXT \"v=DKIM1; k=ed25519; p="),
        "{shown}"
    );

    testkit::server::sigterm(&up);
    up.wait().unwrap();

    // Rotation: a new selector becomes the active key, the old one stays
    // listed (its record must stay published while signed mail is in
    // flight); a selector already used is refused.
    keygen(&db, "a.test", "e2", "ed25519");
    let shown = minimail(&["dkim", "show", "a.test"], &db, b"");
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.len(), 2, "{shown}");
    assert!(lines[0].starts_with("e2._domainkey") && lines[0].ends_with("; active"));
    assert!(lines[1].starts_with("e1._domainkey") && !lines[1].contains("active"));
    let again = testkit::process::run(
        Command::new(BIN)
            .args(["dkim", "keygen", "a.test", "--selector", "e2", "--db"])
            .arg(&db),
        b"",
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already has a key with selector e2"));
}
