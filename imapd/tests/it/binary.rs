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
        let hash = mailstore::hash_password(PASSWORD).unwrap();
        store
            .write_sync(move |tx| tx.create_user("bob@localhost", &hash))
            .unwrap();
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
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
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
    let pair = netloop::tls::self_signed(&["127.0.0.1".into()]).unwrap();
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    std::fs::write(&cert, &pair.cert_pem).unwrap();
    std::fs::write(&key, &pair.key_pem).unwrap();
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
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject as _;
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(pair.cert_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let tcp = std::net::TcpStream::connect(addrs[1]).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut c = Client::from_stream(rustls::StreamOwned::new(conn, tcp));
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
