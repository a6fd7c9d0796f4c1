//! The `imapd` binary: the listening line on stderr, `--trace` output with
//! credentials masked, a clear non-zero exit when it cannot bind, and a
//! clean exit on SIGTERM.

use crate::util::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn binary_serves_traces_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    {
        let store = mailstore::Store::open(&db).unwrap();
        testkit::store::add_user(&store, "bob@localhost", PASSWORD);
        store.shutdown();
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_imapd"))
        .args(["--listen", "127.0.0.1:0", "--trace", "--db"])
        .arg(&db)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    err.read_line(&mut first).unwrap();
    assert!(
        first.starts_with("imapd: listening on 127.0.0.1:"),
        "{first}"
    );
    let addr = first.trim().rsplit(' ').next().unwrap().parse().unwrap();
    let mut c = Client::connect(addr);
    let r = c.cmd(&format!("LOGIN bob@localhost \"{PASSWORD}\""));
    assert!(r[0].contains("OK"));
    c.ok("SELECT INBOX");
    c.ok("LOGOUT");
    testkit::server::sigterm(&child);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let mut log = String::new();
    std::io::Read::read_to_string(&mut err, &mut log).unwrap();
    assert!(
        log.contains("C: a1 LOGIN bob@localhost <password masked>"),
        "{log}"
    );
    assert!(
        log.contains("S: a2 OK [READ-WRITE] SELECT completed"),
        "{log}"
    );
    assert!(!log.contains(PASSWORD), "password leaked: {log}");
}

#[test]
fn binary_exits_non_zero_when_it_cannot_bind() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_imapd"))
        .args(["--listen", &addr, "--db"])
        .arg(dir.path().join("m.db"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("imapd:") && err.contains(&addr), "{err}");
}

#[test]
fn binary_serves_imaps_and_starttls_with_a_pem_pair() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let pair = testkit::tls::TestCert::new(&["127.0.0.1"]);
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    pair.write_pair(&cert, &key);
    let mut child = Command::new(env!("CARGO_BIN_EXE_imapd"))
        .args(["--listen", "127.0.0.1:0", "--imaps", "127.0.0.1:0", "--db"])
        .arg(&db)
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    err.read_line(&mut first).unwrap();
    let addrs: Vec<std::net::SocketAddr> = first
        .trim()
        .split([' ', ','])
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(addrs.len(), 2, "{first}");
    // The plain listener offers STARTTLS; the other one is TLS at once.
    let c = Client::connect(addrs[0]);
    assert!(c.greeting.contains(" STARTTLS"), "{}", c.greeting);
    // Trust this binary's own certificate.
    let config = netloop::testing::tls_client_config(&pair.cert_pem);
    let tcp = testkit::net::connect(addrs[1]);
    let mut c = Client::from_stream(testkit::tls::client_stream(config, "127.0.0.1", tcp));
    assert!(c.greeting.starts_with("* OK [CAPABILITY"), "{}", c.greeting);
    c.ok("LOGOUT");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
}

#[test]
fn binary_refuses_incomplete_tls_flags() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_imapd"))
            .args(["--listen", "127.0.0.1:0", "--db"])
            .arg(&db)
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["--imaps", "127.0.0.1:0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--tls-cert"), "{err}");
    let out = run(&["--tls-cert", "/nonexistent/c.pem"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--tls-key"), "{err}");
    let out = run(&["--tls-cert", "/nonexistent/c.pem", "--tls-key", "/x/k.pem"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/c.pem"), "{err}");
}
