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
use std::thread::JoinHandle;
use std::time::Duration;

struct Minimail {
    smtp: SocketAddr,
    imap: SocketAddr,
    handles: Vec<netloop::ShutdownHandle>,
    threads: Vec<JoinHandle<std::io::Result<()>>>,
    store: mailstore::Store,
    _dir: tempfile::TempDir,
}

fn start() -> Minimail {
    let dir = tempfile::tempdir().unwrap();
    let store = mailstore::Store::open(dir.path().join("minimail.db")).unwrap();
    for (user, pw) in [("alice@localhost", "alice-pw"), ("bob@localhost", "bob-pw")] {
        let hash = mailstore::hash_password(pw).unwrap();
        store
            .write_sync(move |tx| tx.create_user(user, &hash))
            .unwrap();
    }
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    // With a certificate, as a real deployment has: STARTTLS is advertised
    // (the runner only checks how it is offered and refused; it speaks TCP).
    let cert = netloop::tls::self_signed(&["localhost".into()]).unwrap();
    let tls = netloop::tls::from_pem(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes()).unwrap();
    let mut smtp_cfg = smtpd::Config {
        domains: vec!["localhost".into()],
        ..Default::default()
    };
    smtp_cfg.net.tls = Some(tls.clone());
    let mut imap_cfg = imapd::Config::default();
    imap_cfg.net.tls = Some(tls);
    let smtp = smtpd::bind(&[any], smtp_cfg, store.clone()).unwrap();
    let imap = imapd::bind(&[any], imap_cfg, store.clone()).unwrap();
    let smtp_addr = smtp.local_addrs()[0];
    let imap_addr = imap.local_addrs()[0];
    let handles = vec![smtp.shutdown_handle(), imap.shutdown_handle()];
    let threads = vec![
        std::thread::spawn(move || smtp.run()),
        std::thread::spawn(move || imap.run()),
    ];
    Minimail {
        smtp: smtp_addr,
        imap: imap_addr,
        handles,
        threads,
        store,
        _dir: dir,
    }
}

impl Minimail {
    fn stop(self) {
        for h in &self.handles {
            h.shutdown();
        }
        for t in self.threads {
            t.join().unwrap().unwrap();
        }
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
