//! A PostgreSQL server that accepts TCP but never answers (issue 18): the
//! front ends answer temporarily within a bound (`MINIMAIL_PG_TIMEOUT`,
//! here 3 s; 30 s by default) instead of waiting for it forever, and
//! serve again by themselves once it answers.
//!
//! - A real private cluster stopped with `SIGSTOP` (postmaster and every
//!   backend) under a running `minimail up`: Python's smtplib gets `451
//!   4.3.0`, and an imaplib session's STORE `NO [UNAVAILABLE]`; after
//!   `SIGCONT` the same process delivers and stores again.
//! - The same with PgBouncer between the front end and PostgreSQL (the
//!   server's view of the connection is then PgBouncer's socket).
//! - A URL naming a listener that accepts connections and never says a
//!   word: `minimail user list` and `minimail up` fail with "did not
//!   answer" instead of hanging.
//!
//! Needs PostgreSQL's binaries, pgbouncer and python3.

#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use testkit::pg::PgCluster;

const BIN: &str = env!("CARGO_BIN_EXE_minimail");
const BOUND: &str = "3";

fn signal(pids: &[u32], sig: &str) {
    for pid in pids {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status();
    }
}

/// Continues the stopped server however the test ends.
struct Stopped(Vec<u32>);

impl Drop for Stopped {
    fn drop(&mut self) {
        signal(&self.0, "CONT");
    }
}

/// One message to bob@localhost through `smtp`: "ok", or "temp:CODE:TEXT"
/// / "perm:CODE:TEXT" for a refusal.
fn send(smtp: &str, subject: &str) -> String {
    let (h, p) = smtp.rsplit_once(':').unwrap();
    let script = format!(
        "import smtplib\n\
         try:\n\
         \x20   s = smtplib.SMTP('{h}', {p}, local_hostname='client.test', timeout=120)\n\
         \x20   s.sendmail('alice@example.org', ['bob@localhost'], 'Subject: {subject}\\r\\n\\r\\nhello\\r\\n')\n\
         \x20   s.quit()\n\
         \x20   print('ok')\n\
         except smtplib.SMTPRecipientsRefused as e:\n\
         \x20   code, text = list(e.recipients.values())[0]\n\
         \x20   print(('temp' if code < 500 else 'perm') + ':' + str(code) + ':' + text.decode())\n\
         except smtplib.SMTPResponseException as e:\n\
         \x20   print(('temp' if e.smtp_code < 500 else 'perm') + ':' + str(e.smtp_code) + ':' + e.smtp_error.decode())\n"
    );
    testkit::process::python(&script)
}

/// An imaplib session (logged in as bob, INBOX selected) that runs
/// `STORE 1 +FLAGS (\Flagged)` for each line it reads and prints the
/// completion ("OK ...", "NO [UNAVAILABLE] ...").
struct Flagger {
    child: std::process::Child,
    out: std::io::BufReader<std::process::ChildStdout>,
}

impl Flagger {
    fn start(imap: &str) -> Flagger {
        let (h, p) = imap.rsplit_once(':').unwrap();
        let script = format!(
            "import imaplib, sys\n\
             m = imaplib.IMAP4('{h}', {p})\n\
             m.login('bob@localhost', 'pw')\n\
             m.select('INBOX')\n\
             print('ready', flush=True)\n\
             for line in sys.stdin:\n\
             \x20   try:\n\
             \x20       typ, data = m.store('1', '+FLAGS', '(\\\\Flagged)')\n\
             \x20       print(typ, (data[-1] or b'').decode(errors='replace'), flush=True)\n\
             \x20   except imaplib.IMAP4.error as e:\n\
             \x20       print('NO', e, flush=True)\n"
        );
        let mut child = Command::new("python3")
            .args(["-c", &script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut ready = String::new();
        std::io::BufRead::read_line(&mut out, &mut ready).unwrap();
        assert_eq!(ready.trim(), "ready");
        Flagger { child, out }
    }

    /// One STORE; its completion as imaplib saw it.
    fn store(&mut self) -> String {
        let stdin = self.child.stdin.as_mut().unwrap();
        std::io::Write::write_all(stdin, b"go\n").unwrap();
        std::io::Write::flush(stdin).unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut self.out, &mut line).unwrap();
        line.trim().to_owned()
    }
}

impl Drop for Flagger {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_stopped_postgresql_gets_451_within_the_bound_and_the_front_end_recovers() {
    let pg = PgCluster::start();
    stopped_server(&pg, pg.url());
}

/// The same through PgBouncer (session pooling): the server's view of
/// the connection (`inet_client_addr()`) is PgBouncer's socket, not the
/// front end's, so the watchdog finds its socket as the one made to the
/// configured host and port (watch.rs). PgBouncer keeps answering TCP
/// while PostgreSQL behind it is stopped, and has no statement timeout
/// of its own here.
#[test]
fn a_stopped_postgresql_behind_pgbouncer_gets_451_within_the_bound() {
    let pg = PgCluster::start();
    let bouncer = pg.bouncer();
    stopped_server(&pg, bouncer.url());
}

/// bob@localhost added through `url`, a `minimail up --db URL` with a 3 s
/// bound; `pg` stopped, answers checked, continued, recovery checked.
fn stopped_server(pg: &PgCluster, url: &str) {
    let out = testkit::process::run(
        Command::new(BIN)
            .args(["user", "add", "bob@localhost", "--password-stdin"])
            .env("MINIMAIL_DB", url),
        b"pw\n",
    );
    assert!(out.status.success(), "{out:?}");
    let (child, line, _, log) = testkit::server::minimail_up_logged(
        BIN,
        Path::new(url),
        &["--no-outbound"],
        &[("MINIMAIL_PG_TIMEOUT", BOUND), ("RUST_LOG", "warn")],
    );
    // Stopped however the test ends (a failed assertion included).
    let mut child = testkit::process::KillOnDrop(child);
    let smtp = testkit::server::addr_of(&line, "smtp");
    assert_eq!(send(&smtp, "before"), "ok");
    // An imaplib session logged in and in INBOX before the stop; it
    // stores a flag each time it is told to.
    let imap = testkit::server::addr_of(&line, "imap");
    let mut flagger = Flagger::start(&imap);

    let pids = pg.pids();
    assert!(pids.len() > 1, "no server processes found: {pids:?}");
    let stopped = Stopped(pids.clone());
    signal(&pids, "STOP");
    let t = Instant::now();
    let answer = send(&smtp, "during");
    let took = t.elapsed();
    eprintln!("PostgreSQL stopped: {answer:?} after {took:?} (bound {BOUND} s)");
    for l in log.lock().unwrap().lines() {
        eprintln!("  front end: {l}");
    }
    assert!(
        answer.starts_with("temp:451:4.3.0") && answer.contains("temporarily unavailable"),
        "{answer}\n{}",
        log.lock().unwrap()
    );
    // A few store jobs of one SMTP transaction, each bounded (a cut
    // statement, then a connection attempt): far below "forever".
    assert!(took < Duration::from_secs(30), "{took:?}");
    // IMAP: a STORE meanwhile is answered NO [UNAVAILABLE] (RFC 5530).
    let t = Instant::now();
    let answer = flagger.store();
    let took = t.elapsed();
    eprintln!("PostgreSQL stopped: IMAP STORE {answer:?} after {took:?}");
    assert!(
        answer.starts_with("NO") && answer.contains("[UNAVAILABLE]"),
        "{answer}\n{}",
        log.lock().unwrap()
    );
    assert!(took < Duration::from_secs(30), "{took:?}");

    signal(&pids, "CONT");
    drop(stopped);
    let t = Instant::now();
    let mut tries = 0;
    let answer = loop {
        tries += 1;
        let a = send(&smtp, "after");
        if a == "ok" || tries >= 5 {
            break a;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    eprintln!(
        "PostgreSQL continued: {answer:?} at try {tries}, {:?} after SIGCONT",
        t.elapsed()
    );
    assert_eq!(answer, "ok", "{}", log.lock().unwrap());
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "the front end exited"
    );
    // The same IMAP session stores again.
    let mut tries = 0;
    let answer = loop {
        tries += 1;
        let a = flagger.store();
        if a.starts_with("OK") || tries >= 5 {
            break a;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    eprintln!("PostgreSQL continued: IMAP STORE {answer:?} at try {tries}");
    assert!(
        answer.starts_with("OK"),
        "{answer}\n{}",
        log.lock().unwrap()
    );
    drop(flagger);
    assert!(
        log.lock().unwrap().contains("did not answer within 3 s"),
        "{}",
        log.lock().unwrap()
    );
    // Stored: "before" and "after", not "during".
    let subjects: Vec<String> =
        testkit::imap::fetch_all_text(imap.parse().unwrap(), "bob@localhost", "pw", "INBOX")
            .iter()
            .filter_map(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("Subject: "))
                    .map(|s| s.trim().to_owned())
            })
            .collect();
    assert_eq!(subjects, ["before", "after"]);
    drop(child);
}

#[test]
fn a_listener_that_never_answers_fails_at_start_up_instead_of_hanging() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let url = format!("postgres://minimail@127.0.0.1:{port}/mail");
    // Accepted by the kernel (the backlog), never read or answered.
    let t = Instant::now();
    let out = testkit::process::run(
        Command::new(BIN)
            .args(["user", "list"])
            .env("MINIMAIL_DB", &url)
            .env("MINIMAIL_PG_TIMEOUT", BOUND),
        b"",
    );
    let took = t.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("minimail user list: {took:?}: {}", err.trim());
    assert!(!out.status.success());
    assert!(err.contains("did not answer within 3 s"), "{err}");
    assert!(err.contains("unavailable"), "{err}");

    let t = Instant::now();
    let mut up = Command::new(BIN)
        .args(["up", "--smtp", "127.0.0.1:0", "--imap", "127.0.0.1:0"])
        .args(["--submission", "127.0.0.1:0", "--sieve", "127.0.0.1:0"])
        .args(["--no-outbound", "--db", &url])
        .env("MINIMAIL_PG_TIMEOUT", BOUND)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = up.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = up.kill();
            panic!("minimail up still waiting after 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut up.stderr.take().unwrap(), &mut err).unwrap();
    eprintln!(
        "minimail up: {status:?} after {:?}: {}",
        t.elapsed(),
        err.trim()
    );
    assert!(!status.success());
    assert!(err.contains("did not answer within 3 s"), "{err}");
    drop(silent);
}
