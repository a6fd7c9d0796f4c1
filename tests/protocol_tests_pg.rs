//! protocol-tests' SMTP and IMAP transcripts (the whole built-in suite,
//! the same one `protocol-tests/tests/minimail.rs` runs in-process over
//! SQLite) against a real `minimail up --db postgres://...` over a
//! private PostgreSQL cluster (`testkit::pg`), and, for comparison, the
//! same binary over a SQLite file started the same way. Both run at once
//! (each on its own ports; see [`run`]); the test fails when a case FAILs on
//! PostgreSQL, or passes on SQLite but not on PostgreSQL, except the
//! cases in [`NOT_ON_POSTGRES`], which are not run there and are printed
//! with their reason. Prints both summaries.
//!
//! Needs PostgreSQL's binaries (`apt-get install postgresql`).

#![allow(clippy::unwrap_used)]

use protocol_tests::exec::Target;
use protocol_tests::report::{self, Summary};
use protocol_tests::suite::{self, CaseResult, Options, Outcome};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_minimail");

/// Cases not run on PostgreSQL, with the reason (printed by the test).
/// Empty while every case passes there; a case that needs what the
/// PostgreSQL backend lacks so far (the outbound queue: the front ends run
/// with `--no-outbound`) goes here, never silently.
const NOT_ON_POSTGRES: &[(&str, &str)] = &[];

/// A `minimail up`, killed when dropped.
struct Up {
    child: Child,
    smtp: String,
    imap: String,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `minimail up --db DB` with alice and bob (the suite's two accounts).
fn up(db: &str, certs: &Path) -> Up {
    for (user, pw) in [("alice@localhost", "alice-pw"), ("bob@localhost", "bob-pw")] {
        let out = testkit::process::run(
            Command::new(BIN).args(["user", "add", user, "--password-stdin", "--db", db]),
            format!("{pw}\n").as_bytes(),
        );
        assert!(out.status.success(), "user add {user}: {out:?}");
    }
    let (cert, key) = (certs.join("cert.pem"), certs.join("key.pem"));
    let (child, line, _, log) = testkit::server::minimail_up_logged(
        BIN,
        Path::new(db),
        &[
            // The same flags on both backends: PostgreSQL has no outbound
            // queue yet (README), and every case delivers locally.
            "--no-outbound",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[("RUST_LOG", "warn")],
    );
    Up {
        smtp: testkit::server::addr_of(&line, "smtp"),
        imap: testkit::server::addr_of(&line, "imap"),
        child,
        log,
    }
}

/// Runs `cases` against `up`: the IMAP and the SMTP transcripts at the
/// same time (they are independent: IMAP cases work in mailboxes of their
/// own, SMTP cases only deliver), then the mixed ones (delivered over SMTP,
/// read over IMAP, so not beside `imap/3501-6.3.5-rename-inbox`). Most
/// cases wait on purpose (silence checks, timeouts), so this halves the
/// time; the results in case order.
fn run(up: &Up, cases: &[protocol_tests::transcript::Case]) -> (Vec<CaseResult>, Duration) {
    let started = Instant::now();
    let part = |prefix: &str| -> Vec<protocol_tests::transcript::Case> {
        cases
            .iter()
            .filter(|c| c.name.starts_with(prefix))
            .cloned()
            .collect()
    };
    let (imap, smtp, mixed) = (part("imap/"), part("smtp/"), part("mixed/"));
    assert_eq!(imap.len() + smtp.len() + mixed.len(), cases.len());
    let mut results = std::thread::scope(|s| {
        let i = s.spawn(|| run_part(up, &imap));
        let mut r = run_part(up, &smtp);
        r.extend(i.join().unwrap());
        r
    });
    results.extend(run_part(up, &mixed));
    results.sort_by(|a, b| a.name.cmp(&b.name));
    (results, started.elapsed())
}

fn run_part(up: &Up, cases: &[protocol_tests::transcript::Case]) -> Vec<CaseResult> {
    if cases.is_empty() {
        return Vec::new();
    }
    let opts = Options {
        target: Target {
            smtp: Some(up.smtp.clone()),
            imap: Some(up.imap.clone()),
            user: "alice@localhost".into(),
            password: "alice-pw".into(),
            user2: Some(("bob@localhost".into(), "bob-pw".into())),
            domain: "localhost".into(),
            timeout: Duration::from_secs(5),
        },
        only: Vec::new(),
        known: Vec::new(),
    };
    suite::run(cases, &opts, |_| {}).unwrap()
}

fn passed(results: &[CaseResult]) -> BTreeMap<&str, bool> {
    results
        .iter()
        .map(|r| (r.name.as_str(), matches!(r.outcome, Outcome::Pass)))
        .collect()
}

#[test]
fn protocol_tests_pass_on_postgres_as_on_sqlite() {
    let cases = suite::builtin().unwrap_or_else(|errs| panic!("transcripts: {errs:?}"));
    for (name, _) in NOT_ON_POSTGRES {
        assert!(
            cases.iter().any(|c| c.name == *name),
            "NOT_ON_POSTGRES names {name}, which is no case"
        );
    }
    let on_pg: Vec<_> = cases
        .iter()
        .filter(|c| !NOT_ON_POSTGRES.iter().any(|(n, _)| *n == c.name))
        .cloned()
        .collect();

    let certs = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["cert", "--out"])
        .arg(certs.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "minimail cert: {out:?}");
    let pg = testkit::pg::fresh_db();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.db");
    let pg_up = up(pg.url(), certs.path());
    let sqlite_up = up(file.to_str().unwrap(), certs.path());

    let ((pg_res, pg_took), (sq_res, sq_took)) = std::thread::scope(|s| {
        let sq = s.spawn(|| run(&sqlite_up, &cases));
        let pgr = run(&pg_up, &on_pg);
        (pgr, sq.join().unwrap())
    });
    let pg_sum = Summary::of(&pg_res);
    let sq_sum = Summary::of(&sq_res);
    eprintln!(
        "protocol-tests on SQLite ({sq_took:.1?}): {}",
        sq_sum.line()
    );
    eprintln!(
        "protocol-tests on PostgreSQL ({pg_took:.1?}): {}",
        pg_sum.line()
    );
    for (name, why) in NOT_ON_POSTGRES {
        eprintln!("not run on PostgreSQL: {name}: {why}");
    }

    let failed: Vec<String> = pg_res
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Fail(_)))
        .map(report::text_line)
        .collect();
    let pg_pass = passed(&pg_res);
    let lost: Vec<&str> = passed(&sq_res)
        .into_iter()
        .filter(|(name, ok)| *ok && pg_pass.get(name).is_some_and(|p| !p))
        .map(|(name, _)| name)
        .collect();
    assert!(
        failed.is_empty() && lost.is_empty(),
        "on PostgreSQL, {} cases FAIL:\n{}\npassing on SQLite but not on PostgreSQL: {lost:?}\n\
         PostgreSQL front end's log:\n{}",
        failed.len(),
        failed.join(""),
        pg_up.log.lock().unwrap()
    );
    assert!(pg_sum.pass > 300, "{}", pg_sum.line());
}
