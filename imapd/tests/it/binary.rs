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
