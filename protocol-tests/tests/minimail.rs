//! Runs the whole conformance suite against minimail started in-process:
//! smtpd and imapd on ephemeral loopback ports over a fresh temporary store
//! with two accounts (alice@localhost, bob@localhost). Fails when any case
//! FAILs, listing each failing case with its RFC section and transcript line
//! so the report can be routed to the server's authors.
//!
//! `PROTOCOL_TESTS_ONLY=pattern[,pattern]` narrows the run (as `--only`).

#![allow(clippy::unwrap_used)]

use protocol_tests::exec::Target;
use protocol_tests::report::{self, Summary};
use protocol_tests::suite::{self, Options, Outcome};
use std::net::SocketAddr;
use std::time::Duration;
use testkit::server::{loopback, Running};

struct Minimail {
    /// First, so that the servers stop before their directory goes.
    running: Running,
    smtp: SocketAddr,
    imap: SocketAddr,
    store: mailstore::Store,
    _dir: tempfile::TempDir,
}

fn start() -> Minimail {
    let (dir, store) = testkit::store::temp_store();
    for (user, pw) in [("alice@localhost", "alice-pw"), ("bob@localhost", "bob-pw")] {
        testkit::store::add_user(&store, user, pw);
    }
    // With a certificate, as a real deployment has: STARTTLS is advertised
    // (the runner only checks how it is offered and refused; it speaks TCP).
    let tls = testkit::tls::TestCert::new(&["localhost"]).tls;
    let mut smtp_cfg = smtpd::Config {
        domains: vec!["localhost".into()],
        ..Default::default()
    };
    smtp_cfg.net.tls = Some(tls.clone());
    let mut imap_cfg = imapd::Config::default();
    imap_cfg.net.tls = Some(tls);
    let smtp = smtpd::bind(&[loopback()], smtp_cfg, store.clone()).unwrap();
    let imap = imapd::bind(&[loopback()], imap_cfg, store.clone()).unwrap();
    let mut running = Running::new();
    let smtp = running.spawn(smtp)[0];
    let imap = running.spawn(imap)[0];
    Minimail {
        running,
        smtp,
        imap,
        store,
        _dir: dir,
    }
}

impl Minimail {
    fn stop(mut self) {
        self.running.stop();
        self.store.shutdown();
    }
}

#[test]
fn minimail_passes_every_case() {
    let cases = suite::builtin().unwrap_or_else(|errs| {
        panic!(
            "transcripts do not parse:\n{}",
            errs.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    let m = start();
    let only = std::env::var("PROTOCOL_TESTS_ONLY")
        .map(|s| s.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let opts = Options {
        target: Target {
            smtp: Some(m.smtp.to_string()),
            imap: Some(m.imap.to_string()),
            user: "alice@localhost".into(),
            password: "alice-pw".into(),
            user2: Some(("bob@localhost".into(), "bob-pw".into())),
            domain: "localhost".into(),
            timeout: Duration::from_secs(5),
        },
        only,
        known: Vec::new(),
    };
    let results = suite::run(&cases, &opts, |r| {
        if !matches!(r.outcome, Outcome::Pass) {
            eprint!("{}", report::text_line(r));
        }
    })
    .unwrap();
    m.stop();
    let sum = Summary::of(&results);
    eprintln!("minimail: {}", sum.line());
    let failed: Vec<String> = results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Fail(_)))
        .map(report::text_line)
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} cases FAIL against minimail (server bugs to route to smtpd/imapd \
         unless the transcript is shown wrong):\n{}",
        failed.len(),
        results.len(),
        failed.join("")
    );
    assert!(sum.pass > 0, "no case ran");
}

/// The command line takes the mail domain from `--user` when `--domain` is
/// not given: against a server whose host name (`mx.elsewhere.test`, in its
/// greeting) is not one of its mail domains (`b.test`), the postmaster case
/// asks for `postmaster@b.test` and passes; told a domain the server does
/// not serve, the same case fails (so the case really checks the domain).
#[test]
fn postmaster_domain_comes_from_the_user_not_the_greeting() {
    let (dir, store) = testkit::store::temp_store();
    testkit::store::add_user(&store, "alice@b.test", "alice-pw");
    let cfg = smtpd::Config {
        hostname: "mx.elsewhere.test".into(),
        domains: vec!["b.test".into()],
        ..Default::default()
    };
    let smtp = smtpd::bind(&[loopback()], cfg, store.clone()).unwrap();
    let mut running = Running::new();
    let smtp = running.spawn(smtp)[0];
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_protocol-tests"))
            .args(["--smtp", &smtp.to_string(), "--user", "alice@b.test"])
            .args(["--password", "alice-pw", "--only", "postmaster-at-domain"])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("PASS  smtp/5321-4.5.1-postmaster-at-domain"),
        "{text}"
    );
    let out = run(&["--domain", "elsewhere.test"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("FAIL  smtp/5321-4.5.1-postmaster-at-domain"),
        "{text}"
    );
    running.stop();
    store.shutdown();
    drop(dir);
}

/// The outbound section's command line: `--list` names its cases, without
/// `--outbound-listen` they SKIP (and count in the summary), and its flags
/// are checked before anything runs. (The section itself runs against a
/// real `minimail up` in the workspace's tests/protocol_tests_outbound.rs.)
#[test]
fn outbound_section_command_line() {
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_protocol-tests"))
            .args(args)
            .output()
            .unwrap()
    };
    let n = protocol_tests::outbound::cases().len();
    let out = run(&["--list", "--only", "outbound/"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    assert_eq!(text.lines().count(), n, "{text}");
    assert!(text.lines().all(|l| l.starts_with("outbound/")), "{text}");

    // No server is contacted: no SMTP case is selected.
    let base = [
        "--smtp",
        "127.0.0.1:9",
        "--user",
        "alice@localhost",
        "--password",
        "pw",
        "--only",
        "outbound/",
    ];
    let out = run(&base);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    assert_eq!(
        text.lines()
            .filter(
                |l| l.starts_with("SKIP  outbound/") && l.ends_with("no --outbound-listen given")
            )
            .count(),
        n,
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "summary: 0 passed, 0 failed, 0 known differences, {n} skipped (of {n})"
        )),
        "{text}"
    );

    let usage = |extra: &[&str], says: &str| {
        let out = run(extra);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(says), "{extra:?}: {err}");
    };
    let creds = ["--user", "a@localhost", "--password", "pw"];
    usage(
        &[&creds[..], &["--outbound-listen", "127.0.0.1:0"]].concat(),
        "--outbound-domain",
    );
    usage(
        &[
            &creds[..],
            &[
                "--outbound-listen",
                "127.0.0.1:0",
                "--outbound-domain",
                "d.test",
            ],
        ]
        .concat(),
        "--submission",
    );
    usage(
        &[
            &creds[..],
            &[
                "--submission",
                "127.0.0.1:9",
                "--outbound-listen",
                "127.0.0.1:0",
            ],
            &["--outbound-domain", "d.test", "--outbound-wait", "0"],
        ]
        .concat(),
        "--outbound-wait",
    );
}
