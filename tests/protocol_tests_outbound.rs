//! protocol-tests' outbound section (issue 15) against a real `minimail
//! up`: minimail sends everything to `--relay-host`, where the tool's
//! scripted remote server listens, and retries every second
//! (`--retry-min 1 --retry-max 1`). The tool submits its messages through
//! minimail's submission port as alice and reads her INBOX over IMAP for
//! the reports. The section runs in-process (the same code as
//! `protocol-tests --outbound-listen ...`); this package builds the
//! `minimail` binary it drives.
//!
//! - every outbound case PASSes against a correctly configured minimail;
//! - a minimail that cannot retry in time (`--retry-min 3600`) and never
//!   uses TLS (`--outbound-tls none`) FAILs the three retry cases and
//!   WARNs on STARTTLS, so the section can fail.

#![allow(clippy::unwrap_used)]

use protocol_tests::exec::Target;
use protocol_tests::outbound::{self, Settings};
use protocol_tests::report::{self, Summary};
use protocol_tests::suite::{CaseResult, Outcome};
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_minimail");

/// A `minimail up` whose outbound mail all goes to `relay`.
struct Host {
    child: Child,
    submission: String,
    imap: String,
    _dir: tempfile::TempDir,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback address with a port nothing listens on (yet).
fn free_addr() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

fn start(relay: &str, retry: &str, extra: &[&str]) -> Host {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let out = testkit::process::run(
        Command::new(BIN)
            .args(["user", "add", "alice@localhost", "--password-stdin", "--db"])
            .arg(&db),
        b"alice-pw\n",
    );
    assert!(out.status.success(), "{out:?}");
    let mut args = vec![
        "--relay-host",
        relay,
        "--retry-min",
        retry,
        "--retry-max",
        retry,
    ];
    args.extend_from_slice(extra);
    let (child, line, _) = testkit::server::minimail_up(BIN, &db, &args, &[]);
    Host {
        child,
        submission: testkit::server::addr_of(&line, "submission"),
        imap: testkit::server::addr_of(&line, "imap"),
        _dir: dir,
    }
}

/// Runs the whole outbound section against `host`; each case's outcome by
/// name, and the run's wall time.
fn run(host: &Host, listen: &str, wait: u64) -> (Vec<CaseResult>, Duration) {
    let target = Target {
        smtp: None,
        imap: Some(host.imap.clone()),
        user: "alice@localhost".into(),
        password: "alice-pw".into(),
        user2: None,
        domain: "localhost".into(),
        timeout: Duration::from_secs(10),
    };
    let settings = Settings {
        listen: listen.to_string(),
        domain: "remote.test".into(),
        submission: host.submission.clone(),
        wait: Duration::from_secs(wait),
        quiet: None,
    };
    let started = Instant::now();
    let results = outbound::run(&target, Some(&settings), &[], &[], |r| {
        eprint!("{}", report::text_line(r));
    })
    .unwrap();
    (results, started.elapsed())
}

fn kind(o: &Outcome) -> &'static str {
    match o {
        Outcome::Pass => "PASS",
        Outcome::Fail(_) => "FAIL",
        Outcome::Known(..) => "KNOWN",
        Outcome::Skip(_) => "SKIP",
        Outcome::Warn(_) => "WARN",
    }
}

#[test]
fn minimail_passes_every_outbound_case() {
    let listen = free_addr();
    let host = start(&listen, "1", &[]);
    let (results, took) = run(&host, &listen, 30);
    let sum = Summary::of(&results);
    eprintln!("minimail outbound: {} in {took:?}", sum.line());
    assert_eq!(results.len(), outbound::cases().len(), "every case ran");
    let bad: Vec<String> = results
        .iter()
        .filter(|r| !matches!(r.outcome, Outcome::Pass))
        .map(report::text_line)
        .collect();
    assert!(bad.is_empty(), "not PASS:\n{}", bad.join(""));
}

#[test]
fn a_minimail_that_does_not_retry_in_time_or_use_tls_fails_and_warns() {
    let listen = free_addr();
    let host = start(&listen, "3600", &["--outbound-tls", "none"]);
    let (results, took) = run(&host, &listen, 4);
    eprintln!("misconfigured minimail: {}", Summary::of(&results).line());
    let got: BTreeMap<&str, &str> = results
        .iter()
        .map(|r| (r.name.as_str(), kind(&r.outcome)))
        .collect();
    let mut want: BTreeMap<&str, &str> =
        outbound::cases().iter().map(|c| (c.name, "PASS")).collect();
    for c in [
        "outbound/5321-4.5.4.1-retry-after-4xx-rcpt",
        "outbound/5321-4.2.5-retry-after-4xx-end-of-data",
        "outbound/5321-6.1-dropped-mid-data-delivered-once",
    ] {
        want.insert(c, "FAIL");
    }
    want.insert("outbound/3207-4-starttls-offered-is-used", "WARN");
    assert_eq!(got, want);
    let text: String = results.iter().map(report::text_line).collect();
    assert!(text.contains("never tried again within 4 s"), "{text}");
    assert!(text.contains("delivered in plaintext"), "{text}");
    // Waited --outbound-wait for the retries, then at most as long again
    // for the quiet period: not the default minute.
    assert!(took < Duration::from_secs(30), "{took:?}");
}
