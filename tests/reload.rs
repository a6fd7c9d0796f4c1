//! SIGHUP on `minimail up`: the process stays up (a closed terminal used to
//! kill it silently), open sessions go on, and new TLS connections get the
//! certificate now in the `--tls-cert`/`--tls-key` files (certbot's
//! `--deploy-hook 'kill -HUP'`); a broken new pair is refused and the old
//! certificate kept. The configuration file is re-read too, under load,
//! with nothing dropped.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};
use testkit::tls::{client_stream, TestCert};

const BIN: &str = env!("CARGO_BIN_EXE_minimail");

fn hup(pid: u32) {
    let ok = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// An IMAPS session trusting only `cert`: its greeting line, or the error.
fn imaps(addr: &str, cert: &TestCert) -> Result<BufReader<testkit::tls::TlsStream>, String> {
    let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(client_stream(cert.client_config(), "localhost", tcp));
    let mut greeting = String::new();
    r.read_line(&mut greeting).map_err(|e| e.to_string())?;
    if greeting.starts_with("* OK") {
        Ok(r)
    } else {
        Err(greeting)
    }
}

fn noop_ok(s: &mut BufReader<testkit::tls::TlsStream>) -> bool {
    if s.get_mut().write_all(b"n1 NOOP\r\n").is_err() {
        return false;
    }
    let mut line = String::new();
    while s.read_line(&mut line).is_ok_and(|n| n > 0) {
        if line.starts_with("n1 ") {
            return line.starts_with("n1 OK");
        }
        line.clear();
    }
    false
}

#[test]
fn sighup_reloads_certificates_and_keeps_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let old = TestCert::new(&["localhost"]);
    let new = TestCert::new(&["localhost"]);
    old.write_pair(&cert, &key);
    let (mut child, line, _) = testkit::server::minimail_up(
        BIN,
        &dir.path().join("m.db"),
        &[
            "--imaps",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[],
    );
    let addr = testkit::server::addr_of(&line, "imaps");
    let mut kept = imaps(&addr, &old).expect("the first certificate is served");
    assert!(
        imaps(&addr, &new).is_err(),
        "the new certificate is not served yet"
    );

    new.write_pair(&cert, &key);
    hup(child.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    while imaps(&addr, &new).is_err() {
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not bring in the new certificate"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGHUP ended the process"
    );
    assert!(
        noop_ok(&mut kept),
        "the session open before SIGHUP was dropped"
    );

    // A broken pair is refused; the last good certificate stays.
    std::fs::write(&cert, "not a certificate").unwrap();
    hup(child.id());
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGHUP ended the process"
    );
    let mut s = imaps(&addr, &new).expect("the last good certificate is still served");
    assert!(noop_ok(&mut s));
    testkit::server::sigterm(&child);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}

/// Kills `minimail up` however the test ends.
struct Up(std::process::Child);

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Wait until `log` holds `what` `n` times (within 30 s).
fn wait_for(log: &std::sync::Mutex<String>, what: &str, n: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = log.lock().unwrap().clone();
        if text.matches(what).count() >= n {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{n} × {what:?} not in the log:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The SIZE an SMTP server advertises to a new EHLO on `c`.
fn size_of(c: &mut testkit::smtp::Client) -> String {
    let ehlo = c.expect("EHLO client.test", "250");
    ehlo.lines()
        .find_map(|l| l.strip_prefix("250-SIZE "))
        .unwrap_or_else(|| panic!("no SIZE in {ehlo}"))
        .to_owned()
}

/// `systemctl reload` under load: 8 IMAP sessions (four in IDLE) and four
/// SMTP clients delivering stay up through reloads of the configuration
/// file; every message sent is acknowledged and stored; the changed
/// settings are in effect for new connections (open ones keep theirs); a
/// broken file is refused with a log line and the old settings kept; a
/// listener change is logged as needing a restart.
#[test]
fn config_reload_under_load_drops_nothing() {
    const SENDERS: usize = 4;
    const EACH: usize = 30;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let mut add = Command::new(BIN)
        .args(["user", "add", "bob@localhost", "--password-stdin", "--db"])
        .arg(&db)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    add.stdin.take().unwrap().write_all(b"pw\n").unwrap();
    assert!(add.wait().unwrap().success());
    let conf = dir.path().join("minimail.toml");
    let settings = |size: usize, extra: &str| {
        std::fs::write(&conf, format!("max-message-size = {size}\n{extra}")).unwrap();
    };
    settings(100_000, "");
    let (child, line, _, log) = testkit::server::minimail_up_logged(
        BIN,
        &db,
        &["--config", conf.to_str().unwrap(), "--no-outbound"],
        &[],
    );
    let up = Up(child);
    let smtp: std::net::SocketAddr = testkit::server::addr_of(&line, "smtp").parse().unwrap();
    let imap: std::net::SocketAddr = testkit::server::addr_of(&line, "imap").parse().unwrap();

    // Eight IMAP sessions, four of them in IDLE.
    let mut sessions: Vec<testkit::imap::Client> = (0..8)
        .map(|i| {
            let mut c = testkit::imap::Client::connect(imap);
            c.login("bob@localhost", "pw");
            c.ok("SELECT INBOX");
            if i % 2 == 0 {
                c.send(b"idle IDLE\r\n");
                assert!(c.line().starts_with("+ "));
            }
            c
        })
        .collect();
    // An SMTP session opened before any reload.
    let mut early = testkit::smtp::Client::connect(smtp);
    early.expect_reply("220");
    assert_eq!(size_of(&mut early), "100000");

    // The SMTP load, running through the reloads below.
    let senders: Vec<_> = (0..SENDERS)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = testkit::smtp::Client::connect(smtp);
                c.expect_reply("220");
                let mut acked = 0;
                for i in 0..EACH {
                    let body = format!("Subject: load {t}.{i}\r\n\r\nmessage {t}.{i}\r\n");
                    let r = c.send_mail("alice@localhost", &["bob@localhost"], body.as_bytes());
                    assert!(r.starts_with("250 "), "message {t}.{i}: {r}");
                    acked += 1;
                    std::thread::sleep(Duration::from_millis(10));
                }
                acked
            })
        })
        .collect();

    // Reloads: changed limits, trace on and off, one broken file, one
    // listener change.
    for (n, size) in [200_000, 300_000, 400_000].into_iter().enumerate() {
        settings(size, if n % 2 == 0 { "trace = true\n" } else { "" });
        hup(up.0.id());
        wait_for(&log, "SIGHUP: reloaded the configuration", n + 1);
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::write(&conf, "max-message-size = \"huge\"\n").unwrap();
    hup(up.0.id());
    let text = wait_for(&log, "SIGHUP: new configuration refused", 1);
    assert!(
        text.contains("minimail.toml:1: invalid value 'huge' for '--max-message-size"),
        "{text}"
    );
    let mut c = testkit::smtp::Client::connect(smtp);
    c.expect_reply("220");
    assert_eq!(size_of(&mut c), "400000", "the old settings stay");
    settings(500_000, "smtps = [\"127.0.0.1:0\"]\n");
    hup(up.0.id());
    let text = wait_for(&log, "SIGHUP: reloaded the configuration", 4);
    assert!(
        text.contains("smtps changed, which needs a restart"),
        "{text}"
    );
    assert!(
        text.contains("now in effect for new connections: max-message-size"),
        "{text}"
    );

    let acked: usize = senders.into_iter().map(|s| s.join().unwrap()).sum();
    assert_eq!(acked, SENDERS * EACH);

    // New connections have the last settings; the one opened before the
    // reloads still has its own.
    let mut c = testkit::smtp::Client::connect(smtp);
    c.expect_reply("220");
    assert_eq!(size_of(&mut c), "500000");
    assert_eq!(size_of(&mut early), "100000");
    // The trace setting reached new sessions (reload 1 and 3 turned it on).
    assert!(log.lock().unwrap().contains("C: EHLO client.test"));

    // Every IMAP session is still there and sees every message.
    for (i, s) in sessions.iter_mut().enumerate() {
        if i % 2 == 0 {
            s.send(b"DONE\r\n");
            let done = s.until("idle");
            assert!(done.last().unwrap().starts_with("idle OK"), "{done:?}");
        }
        s.ok("NOOP");
        let search = s.ok("SEARCH ALL");
        let hits = search
            .iter()
            .find(|l| l.starts_with("* SEARCH"))
            .map(|l| l.split_whitespace().count() - 2)
            .unwrap_or(0);
        assert_eq!(hits, SENDERS * EACH, "session {i}");
    }
    let mut up = up;
    testkit::server::sigterm(&up.0);
    assert!(up.0.wait().unwrap().success());
}

/// A DKIM key made while `minimail up` runs signs mail after SIGHUP,
/// without a restart.
#[test]
fn sighup_brings_in_new_dkim_keys() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let minimail = |args: &[&str], input: &[u8]| {
        let mut c = Command::new(BIN)
            .args(args)
            .arg("--db")
            .arg(&db)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(input).unwrap();
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
    };
    minimail(
        &["user", "add", "alice@localhost", "--password-stdin"],
        b"pw\n",
    );
    let (child, line, _, log) =
        testkit::server::minimail_up_logged(BIN, &db, &["--no-outbound"], &[]);
    let up = Up(child);
    let smtp: std::net::SocketAddr = testkit::server::addr_of(&line, "smtp").parse().unwrap();
    let imap: std::net::SocketAddr = testkit::server::addr_of(&line, "imap").parse().unwrap();
    let send = |subject: &str| {
        let mut c = testkit::smtp::Client::connect(smtp);
        c.expect_reply("220");
        c.expect("EHLO client.test", "250");
        c.expect(
            &format!(
                "AUTH PLAIN {}",
                testkit::smtp::plain("alice@localhost", "pw")
            ),
            "235",
        );
        let body = format!(
            "From: alice@localhost\r\nTo: alice@localhost\r\nSubject: {subject}\r\n\r\nhi\r\n"
        );
        let r = c.send_mail("alice@localhost", &["alice@localhost"], body.as_bytes());
        assert!(r.starts_with("250 "), "{r}");
    };
    send("before");
    minimail(&["dkim", "keygen", "localhost", "--selector", "s1"], b"");
    hup(up.0.id());
    wait_for(&log, "DKIM: signing as localhost with selector s1", 1);
    wait_for(&log, "SIGHUP: reloaded the configuration", 1);
    send("after");
    let texts = testkit::imap::fetch_all_text(imap, "alice@localhost", "pw", "INBOX");
    assert_eq!(texts.len(), 2);
    let signed = |t: &String| t.contains("DKIM-Signature:") && t.contains("s=s1");
    assert!(!signed(&texts[0]), "{}", texts[0]);
    assert!(
        texts[1].contains("Subject: after") && signed(&texts[1]),
        "{}",
        texts[1]
    );
    let mut up = up;
    testkit::server::sigterm(&up.0);
    assert!(up.0.wait().unwrap().success());
}

/// The transport map named in the configuration file is read again on
/// SIGHUP: a changed route applies to the next message.
#[test]
fn sighup_reads_the_transport_map_again() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let mut add = Command::new(BIN)
        .args(["user", "add", "alice@localhost", "--password-stdin", "--db"])
        .arg(&db)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    add.stdin.take().unwrap().write_all(b"pw\n").unwrap();
    assert!(add.wait().unwrap().success());
    let map = dir.path().join("transport");
    std::fs::write(&map, "gone.test  error:5.1.2 first route says no\n").unwrap();
    let conf = dir.path().join("minimail.toml");
    std::fs::write(
        &conf,
        format!(
            "transport-map = {:?}\ndns = \"127.0.0.1:9\"\nretry-min = 1\n",
            map.to_str().unwrap()
        ),
    )
    .unwrap();
    let (child, line, _, log) =
        testkit::server::minimail_up_logged(BIN, &db, &["--config", conf.to_str().unwrap()], &[]);
    let up = Up(child);
    let submission: std::net::SocketAddr = testkit::server::addr_of(&line, "submission")
        .parse()
        .unwrap();
    let imap: std::net::SocketAddr = testkit::server::addr_of(&line, "imap").parse().unwrap();
    let send = |to: &str| {
        let mut c = testkit::smtp::Client::connect(submission);
        c.expect_reply("220");
        c.expect("EHLO client.test", "250");
        c.expect(
            &format!(
                "AUTH PLAIN {}",
                testkit::smtp::plain("alice@localhost", "pw")
            ),
            "235",
        );
        let body = format!("From: alice@localhost\r\nTo: {to}\r\nSubject: to {to}\r\n\r\nhi\r\n");
        let r = c.send_mail("alice@localhost", &[to], body.as_bytes());
        assert!(r.starts_with("250 "), "{r}");
    };
    // The bounce reports (into alice's INBOX) carry the route's text.
    let wait_inbox = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let texts = testkit::imap::fetch_all_text(imap, "alice@localhost", "pw", "INBOX");
            if texts.len() >= n {
                return texts;
            }
            assert!(
                Instant::now() < deadline,
                "{} reports: {texts:?}",
                texts.len()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    send("x@gone.test");
    let texts = wait_inbox(1);
    assert!(texts[0].contains("first route says no"), "{}", texts[0]);

    std::fs::write(&map, "gone.test  error:5.1.2 second route says no\n").unwrap();
    hup(up.0.id());
    wait_for(&log, "SIGHUP: reloaded the configuration", 1);
    send("y@gone.test");
    let texts = wait_inbox(2);
    assert!(texts[1].contains("second route says no"), "{}", texts[1]);

    // A map that no longer loads is refused; the last good one stays.
    std::fs::write(&map, "gone.test  nonsense=\n").unwrap();
    hup(up.0.id());
    let text = wait_for(&log, "SIGHUP: new configuration refused", 1);
    assert!(text.contains("transport"), "{text}");
    send("z@gone.test");
    let texts = wait_inbox(3);
    assert!(texts[2].contains("second route says no"), "{}", texts[2]);
    let mut up = up;
    testkit::server::sigterm(&up.0);
    assert!(up.0.wait().unwrap().success());
}
