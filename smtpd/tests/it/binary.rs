//! The real `smtpd` binary: kill -9 during a load of 8 concurrent senders
//! must lose no acknowledged message and duplicate none; SIGTERM ends it
//! cleanly with every acknowledged message on disk; start-up failures
//! (address in use, unusable store) exit non-zero with a clear message.

use crate::util::{add_users, b64, inbox, plain, tls_stream, Client, PASSWORD};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::lines::Conn;

const BIN: &str = env!("CARGO_BIN_EXE_smtpd");

/// Start the binary on an ephemeral port; returns it and its address once
/// it has announced that it listens. Its stderr keeps being drained.
fn start(db: &Path) -> (Child, SocketAddr) {
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--domain", "localhost"])
        .arg("--db")
        .arg(db)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.strip_prefix("smtpd: listening on ") {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(rest.to_string());
                }
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("smtpd announces its address");
    (child, addr.parse().unwrap())
}

fn message_ids(raws: &[Vec<u8>]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for raw in raws {
        let text = String::from_utf8_lossy(raw);
        let id = text
            .lines()
            .find_map(|l| l.strip_prefix("Message-ID: "))
            .expect("every message has a Message-ID")
            .to_string();
        *counts.entry(id).or_insert(0) += 1;
    }
    counts
}

/// One sender: messages on one connection until the server goes away.
fn sender(addr: SocketAddr, n: usize, acked: Arc<Mutex<Vec<String>>>, total: Arc<AtomicUsize>) {
    // Fallible throughout: the senders must survive the server vanishing
    // (resets are expected, panics are not).
    let Ok(mut c) = Conn::open(addr, Duration::from_secs(10)) else {
        return;
    };
    if c.expect("", "220").is_err() || c.expect("EHLO load.test\r\n", "250").is_err() {
        return;
    }
    for i in 0.. {
        let id = format!("<s{n}-m{i}@load.test>");
        let body = format!(
            "Message-ID: {id}\r\nSubject: load {n} {i}\r\n\r\n{}\r\n.\r\n",
            "x".repeat(500)
        );
        let sent = c
            .expect("MAIL FROM:<load@load.test>\r\n", "250")
            .and_then(|_| c.expect("RCPT TO:<bob@localhost>\r\n", "250"))
            .and_then(|_| c.expect("DATA\r\n", "354"))
            .and_then(|_| c.expect(&body, "250 "));
        if sent.is_err() {
            return;
        }
        acked.lock().unwrap().push(id);
        total.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn kill_9_under_load_loses_no_acknowledged_message_and_duplicates_none() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mail.db");
    {
        let store = mailstore::Store::open(&db).unwrap();
        add_users(&store);
        store.shutdown();
    }
    let (mut child, addr) = start(&db);
    let acked = Arc::new(Mutex::new(Vec::new()));
    let total = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..8)
        .map(|n| {
            let (acked, total) = (Arc::clone(&acked), Arc::clone(&total));
            std::thread::spawn(move || sender(addr, n, acked, total))
        })
        .collect();
    // Let the load run until a good number of messages are acknowledged.
    let deadline = Instant::now() + Duration::from_secs(20);
    while total.load(Ordering::SeqCst) < 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    for t in threads {
        t.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(!acked.is_empty(), "the load got some messages through");

    // Restart on the same store: it must come up and take mail.
    let (mut child, addr) = start(&db);
    let mut c = Client::connect(addr);
    c.expect_reply("220");
    let r = c.send_mail(
        "a@b.test",
        &["bob@localhost"],
        b"Message-ID: <after-restart@load.test>\r\n\r\nx\r\n",
    );
    assert!(r.starts_with("250 "), "{r}");
    c.expect("QUIT", "221");
    // SIGTERM: a clean exit.
    testkit::server::sigterm(&child);
    let exit = child.wait().unwrap();
    assert!(exit.success(), "smtpd exits 0 on SIGTERM: {exit}");

    let store = mailstore::Store::open(&db).unwrap();
    let counts = message_ids(&inbox(&store, "bob@localhost"));
    for id in &acked {
        assert_eq!(
            counts.get(id),
            Some(&1),
            "acknowledged {id} stored exactly once"
        );
    }
    for (id, n) in &counts {
        assert_eq!(*n, 1, "{id} stored {n} times");
    }
    assert_eq!(counts.get("<after-restart@load.test>"), Some(&1));
    println!(
        "kill -9 test: {} acknowledged, {} stored",
        acked.len(),
        counts.len()
    );
}

#[test]
fn address_in_use_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let out = Command::new(BIN)
        .arg("--listen")
        .arg(taken.local_addr().unwrap().to_string())
        .arg("--db")
        .arg(dir.path().join("m.db"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot listen on 127.0.0.1:"), "{err}");
}

#[test]
fn unusable_store_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("not-a-db");
    std::fs::write(&bad, b"this is not sqlite, not at all, definitely not").unwrap();
    for db in [dir.path().join("missing/dir/m.db"), bad] {
        let out = Command::new(BIN)
            .args(["--listen", "127.0.0.1:0", "--db"])
            .arg(&db)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("cannot open the store"), "{err}");
    }
}

#[test]
fn trace_logs_the_dialogue_with_the_body_elided() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mail.db");
    {
        let store = mailstore::Store::open(&db).unwrap();
        add_users(&store);
        store.shutdown();
    }
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--trace"])
        .arg("--db")
        .arg(&db)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr: SocketAddr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("smtpd: listening on ").map(str::to_owned))
        .expect("announces its address")
        .parse()
        .unwrap();
    let mut c = Client::connect(addr);
    c.expect_reply("220");
    let r = c.send_mail(
        "a@b.test",
        &["bob@localhost"],
        b"Subject: secret\r\n\r\nthe secret body\r\n",
    );
    assert!(r.starts_with("250 "), "{r}");
    c.expect("QUIT", "221");
    // Credentials: AUTH PLAIN with an initial response, and LOGIN's
    // continuation lines.
    let mut c = Client::connect(addr);
    c.expect_reply("220");
    c.expect("EHLO client.test", "250");
    c.expect(
        &format!("AUTH PLAIN {}", plain("bob@localhost", PASSWORD)),
        "235",
    );
    let mut c = Client::connect(addr);
    c.expect_reply("220");
    c.expect("EHLO client.test", "250");
    c.expect("AUTH LOGIN", "334");
    c.expect(&b64("alice@localhost"), "334");
    c.expect(&b64(PASSWORD), "235");
    c.expect("QUIT", "221");
    testkit::server::sigterm(&child);
    let log: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(child.wait().unwrap().success());
    let log = log.join("\n");
    for want in [
        "C: EHLO client.test",
        "S: 250-PIPELINING",
        "C: MAIL FROM:<a@b.test>",
        "S: 354 ",
        "bytes of message data>",
        "S: 250 2.0.0 OK: message",
        "accepted message id=",
        "to=<bob@localhost>",
        "C: QUIT",
        "S: 221 2.0.0",
    ] {
        assert!(log.contains(want), "{want:?} missing from trace:\n{log}");
    }
    assert!(!log.contains("secret"), "the body is not logged:\n{log}");
    for want in [
        "C: AUTH PLAIN <credentials elided>",
        "S: 235 2.7.0 Authentication successful",
        "C: AUTH LOGIN",
        "S: 334 VXNlcm5hbWU6",
        "C: <credentials elided>",
    ] {
        assert!(log.contains(want), "{want:?} missing from trace:\n{log}");
    }
    for secret in [
        plain("bob@localhost", PASSWORD),
        b64("alice@localhost"),
        b64(PASSWORD),
    ] {
        assert!(!log.contains(&secret), "{secret} in the trace:\n{log}");
    }
}

#[test]
fn tls_flags_are_checked_and_serve_starttls_and_smtps() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mail.db");
    let cert = testkit::tls::TestCert::new(&["localhost"]);
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    cert.write_pair(&cert_file, &key_file);
    let fails = |args: &[&std::ffi::OsStr], want: &str| {
        let out = Command::new(BIN)
            .args(["--listen", "127.0.0.1:0"])
            .arg("--db")
            .arg(&db)
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    };
    fails(
        &["--smtps".as_ref(), "127.0.0.1:0".as_ref()],
        "--smtps needs --tls-cert",
    );
    fails(&["--tls-cert".as_ref(), cert_file.as_os_str()], "--tls-key");
    fails(
        &[
            "--tls-cert".as_ref(),
            "/nonexistent/cert.pem".as_ref(),
            "--tls-key".as_ref(),
            key_file.as_os_str(),
        ],
        "/nonexistent/cert.pem",
    );
    {
        let store = mailstore::Store::open(&db).unwrap();
        add_users(&store);
        store.shutdown();
    }
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--smtps", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(&cert_file)
        .arg("--tls-key")
        .arg(&key_file)
        .arg("--db")
        .arg(&db)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addrs: Vec<SocketAddr> = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("smtpd: listening on ").map(str::to_owned))
        .expect("announces its addresses")
        .split(", ")
        .map(|a| a.parse().unwrap())
        .collect();
    assert_eq!(addrs.len(), 2, "{addrs:?}");
    std::thread::spawn(move || lines.for_each(drop));
    let config = netloop::testing::tls_client_config(&cert.cert_pem);
    // STARTTLS on --listen.
    let mut c = Client::connect(addrs[0]);
    c.expect_reply("220");
    let r = c.expect("EHLO c", "250");
    assert!(r.contains("STARTTLS"), "{r}");
    let mut t = c.starttls(config.clone());
    t.expect("EHLO c", "250-");
    t.expect(
        &format!("AUTH PLAIN {}", plain("bob@localhost", PASSWORD)),
        "235",
    );
    t.expect("QUIT", "221");
    // Implicit TLS on --smtps.
    let mut t = Client::new(tls_stream(config, TcpStream::connect(addrs[1]).unwrap()));
    t.expect_reply("220 localhost ");
    t.expect("EHLO c", "250-");
    t.expect("QUIT", "221");
    testkit::server::sigterm(&child);
    assert!(child.wait().unwrap().success());
}
