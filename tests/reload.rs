//! SIGHUP on `minimail up`: the process stays up (a closed terminal used to
//! kill it silently), open sessions go on, and new TLS connections get the
//! certificate now in the `--tls-cert`/`--tls-key` files (certbot's
//! `--deploy-hook 'kill -HUP'`); a broken new pair is refused and the old
//! certificate kept.

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
