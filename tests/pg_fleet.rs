//! Three front ends over one PostgreSQL, with real clients (issue 18): a
//! private cluster (`testkit::pg`), `minimail up --db postgres://...` on
//! 127.0.0.2, 127.0.0.3 and 127.0.0.4 (each on its own ports), and a
//! Python driver (`tests/pg_fleet/load.py`: smtplib senders, imaplib
//! checks, IDLE over raw sockets) that prints what it saw:
//!
//! - 16 SMTP senders spread over the three (a connection per message, or
//!   four per connection), one to three recipients among four users, and
//!   an IDLE session per user on every front end: every acknowledged
//!   message is in each recipient's INBOX exactly once (by Message-ID, on
//!   every front end), UIDs are unique, ascending and gapless, and IDLE
//!   on each front end sees every arrival;
//! - the same load with one front end killed (SIGKILL) a third of the
//!   way in: nothing acknowledged is lost, a message whose connection
//!   broke before the `250` is there at most once, the two others keep
//!   acknowledging, and IMAP on them agrees;
//! - PostgreSQL stopped (fast shutdown) under running front ends: SMTP
//!   answers 4xx with a 4.3.x code, IMAP `NO [UNAVAILABLE]` (RFC 5530)
//!   for LOGIN, SELECT, FETCH and APPEND, each within a bound; started
//!   again, the same processes deliver and serve at the first attempt,
//!   also after a restart (`pg_ctl restart -m fast`) that no job saw;
//! - a server that is not there is "unavailable" (temporary), a database
//!   that does not exist an error of its own.
//!
//! Needs PostgreSQL's binaries (`apt-get install postgresql`) and python3.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};

use testkit::pg::PgCluster;

const BIN: &str = env!("CARGO_BIN_EXE_minimail");
const DRIVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pg_fleet/load.py");
const USERS: [&str; 4] = [
    "u0@localhost",
    "u1@localhost",
    "u2@localhost",
    "u3@localhost",
];

type Log = Arc<Mutex<String>>;

/// One `minimail up` front end, killed when dropped.
struct Front {
    child: Child,
    smtp: String,
    imap: String,
    log: Log,
}

impl Drop for Front {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn split(addr: &str) -> (String, u16) {
    let (h, p) = addr.rsplit_once(':').unwrap();
    (h.to_owned(), p.parse().unwrap())
}

/// A cluster with the four users, and front ends on 127.0.0.2.. (`n`).
fn fleet(n: u8) -> (PgCluster, Vec<Front>, tempfile::TempDir) {
    let pg = PgCluster::start();
    for u in USERS {
        let out = testkit::process::run(
            Command::new(BIN)
                .args(["user", "add", u, "--password-stdin"])
                .env("MINIMAIL_DB", pg.url()),
            b"pw\n",
        );
        assert!(out.status.success(), "user add {u}: {out:?}");
    }
    let certs = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["cert", "--out"])
        .arg(certs.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "minimail cert: {out:?}");
    let cert = certs.path().join("cert.pem");
    let key = certs.path().join("key.pem");
    let fronts = (0..n)
        .map(|i| {
            let host = format!("127.0.0.{}", i + 2);
            let (child, line, _, log) = testkit::server::minimail_up_at(
                BIN,
                Path::new(pg.url()),
                &host,
                &[
                    // No outbound queue on PostgreSQL yet (README).
                    "--no-outbound",
                    // The clients connect from 127.0.0.1, another address
                    // than the front end's, so not "local": LOGIN in
                    // plaintext must be allowed explicitly.
                    "--allow-plaintext-auth",
                    "--tls-cert",
                    cert.to_str().unwrap(),
                    "--tls-key",
                    key.to_str().unwrap(),
                ],
                &[("RUST_LOG", "warn")],
            );
            let smtp = testkit::server::addr_of(&line, "smtp");
            let imap = testkit::server::addr_of(&line, "imap");
            assert!(smtp.starts_with(&host), "{line}");
            Front {
                child,
                smtp,
                imap,
                log,
            }
        })
        .collect();
    (pg, fronts, certs)
}

/// The driver's JSON configuration.
fn config(mode: &str, fronts: &[Front], extra: &str) -> String {
    let fronts: Vec<String> = fronts
        .iter()
        .map(|f| {
            let (sh, sp) = split(&f.smtp);
            let (ih, ip) = split(&f.imap);
            format!(r#"{{"smtp": ["{sh}", {sp}], "imap": ["{ih}", {ip}]}}"#)
        })
        .collect();
    let users: Vec<String> = USERS.iter().map(|u| format!("\"{u}\"")).collect();
    format!(
        r#"{{"mode": "{mode}", "fronts": [{}], "users": [{}]{extra}}}"#,
        fronts.join(", "),
        users.join(", ")
    )
}

/// The driver, running: its stdin, and its stdout line by line.
struct Driver {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    seen: Vec<String>,
}

impl Driver {
    fn start(cfg: &str) -> Driver {
        let mut child = Command::new("python3")
            .arg(DRIVER)
            .arg(cfg)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 (apt-get install python3)");
        let stdin = child.stdin.take();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Driver {
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    /// The next line (kept), or None at the end.
    fn next(&mut self) -> Option<String> {
        let l = self.lines.next()?.unwrap();
        self.seen.push(l.clone());
        Some(l)
    }

    /// Read up to the line `want`; panics (with everything seen and the
    /// servers' logs) if the driver ends first.
    fn until(&mut self, want: &str, fronts: &[Front]) {
        while let Some(l) = self.next() {
            if l == want {
                return;
            }
        }
        self.fail(&format!("driver ended before {want:?}"), fronts);
    }

    fn say(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Everything else it prints; panics if it failed.
    fn finish(mut self, fronts: &[Front]) -> Vec<String> {
        self.stdin = None;
        while self.next().is_some() {}
        let status = self.child.wait().unwrap();
        if !status.success() {
            self.fail(&format!("driver failed: {status}"), fronts);
        }
        self.seen
    }

    fn fail(&self, why: &str, fronts: &[Front]) -> ! {
        let logs: Vec<String> = fronts
            .iter()
            .map(|f| f.log.lock().unwrap().clone())
            .collect();
        panic!(
            "{why}\ndriver printed:\n{}\nfront ends' logs:\n{}",
            self.seen.join("\n"),
            logs.join("\n----\n")
        );
    }
}

/// One `sent` line.
#[derive(Debug)]
struct Sent {
    front: usize,
    msgid: String,
    rcpts: Vec<String>,
    outcome: String,
    code: String,
    after_kill: bool,
}

fn sent(lines: &[String]) -> Vec<Sent> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("sent "))
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            assert_eq!(f.len(), 7, "{l}");
            Sent {
                front: f[1].parse().unwrap(),
                msgid: f[2].to_owned(),
                rcpts: f[3].split(',').map(str::to_owned).collect(),
                outcome: f[4].to_owned(),
                code: f[5].to_owned(),
                after_kill: f[6] == "1",
            }
        })
        .collect()
}

/// `mailbox` lines: (front, user) -> [(uid, msgid)].
type Boxes = BTreeMap<(usize, String), Vec<(u32, String)>>;

fn mailboxes(lines: &[String]) -> Boxes {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("mailbox "))
        .map(|l| {
            let mut f = l.split(' ');
            let front = f.next().unwrap().parse().unwrap();
            let user = f.next().unwrap().to_owned();
            let ids = f
                .map(|x| {
                    let (uid, id) = x.split_once(':').unwrap();
                    (uid.parse().unwrap(), id.to_owned())
                })
                .collect();
            ((front, user), ids)
        })
        .collect()
}

/// `idle` lines: (front, user, max EXISTS, target, outcome, seconds).
fn idles(lines: &[String]) -> Vec<(usize, String, u32, u32, String, String)> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("idle "))
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (
                f[0].parse().unwrap(),
                f[1].to_owned(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap_or(u32::MAX),
                f[4].to_owned(),
                f[5].to_owned(),
            )
        })
        .collect()
}

/// Checks every surviving front end's view of every mailbox against what
/// the senders were told: acknowledged messages each exactly once,
/// broken ones at most once, refused ones never; UIDs unique and
/// ascending (gapless when `gapless`); every front end shows the same.
fn check_mailboxes(sent: &[Sent], boxes: &Boxes, alive: &[usize], gapless: bool) {
    for &front in alive {
        for user in USERS {
            let ids = boxes
                .get(&(front, user.to_owned()))
                .unwrap_or_else(|| panic!("no mailbox line for {user} on front end {front}"));
            let uids: Vec<u32> = ids.iter().map(|x| x.0).collect();
            assert!(
                uids.windows(2).all(|w| w[0] < w[1]),
                "{user} on front end {front}: UIDs not strictly ascending: {uids:?}"
            );
            if gapless {
                let want: Vec<u32> = (1..=u32::try_from(uids.len()).unwrap()).collect();
                assert_eq!(uids, want, "{user} on front end {front}: UIDs with gaps");
            }
            let mut count: BTreeMap<&str, usize> = BTreeMap::new();
            for (_, id) in ids {
                *count.entry(id.as_str()).or_default() += 1;
            }
            for s in sent.iter().filter(|s| s.rcpts.iter().any(|r| r == user)) {
                let n = count.remove(s.msgid.as_str()).unwrap_or(0);
                match s.outcome.as_str() {
                    "ack" => assert_eq!(
                        n, 1,
                        "{} acknowledged for {user} but {n} times in the INBOX on front end {front}",
                        s.msgid
                    ),
                    "broken" => assert!(
                        n <= 1,
                        "{} (connection broke) {n} times for {user} on front end {front}",
                        s.msgid
                    ),
                    _ => assert_eq!(
                        n, 0,
                        "{} was refused ({} {}) but is stored for {user} on front end {front}",
                        s.msgid, s.outcome, s.code
                    ),
                }
            }
            assert!(
                count.is_empty(),
                "{user} on front end {front}: messages nobody sent to {user}: {count:?}"
            );
        }
    }
    // Every front end shows each mailbox the same.
    for user in USERS {
        let views: BTreeSet<&Vec<(u32, String)>> = alive
            .iter()
            .map(|&f| &boxes[&(f, user.to_owned())])
            .collect();
        assert_eq!(views.len(), 1, "{user}: front ends disagree: {views:?}");
    }
}

fn check_idle(lines: &[String], alive: &[usize], boxes: &Boxes) {
    let idles = idles(lines);
    for &front in alive {
        for user in USERS {
            let (_, _, max, target, outcome, secs) = idles
                .iter()
                .find(|i| i.0 == front && i.1 == user)
                .unwrap_or_else(|| panic!("no idle line for {user} on {front}"));
            let total = boxes[&(front, user.to_owned())].len();
            assert_eq!(
                (*max as usize, *target as usize, outcome.as_str()),
                (total, total, "complete"),
                "IDLE for {user} on front end {front} saw EXISTS up to {max} of {total} ({outcome}, at {secs} s)"
            );
        }
    }
}

#[test]
fn three_front_ends_sixteen_senders_idle_everywhere() {
    let (_pg, fronts, _certs) = fleet(3);
    let d = Driver::start(&config(
        "load",
        &fronts,
        r#", "senders": 16, "per_sender": 16"#,
    ));
    let lines = d.finish(&fronts);
    let sent = sent(&lines);
    assert_eq!(sent.len(), 16 * 16, "{lines:?}");
    let bad: Vec<&Sent> = sent.iter().filter(|s| s.outcome != "ack").collect();
    if !bad.is_empty() {
        let logs: Vec<String> = fronts
            .iter()
            .map(|f| f.log.lock().unwrap().clone())
            .collect();
        panic!(
            "not acknowledged: {bad:?}\nfront ends' logs:\n{}",
            logs.join("\n----\n")
        );
    }
    let boxes = mailboxes(&lines);
    check_mailboxes(&sent, &boxes, &[0, 1, 2], true);
    check_idle(&lines, &[0, 1, 2], &boxes);
    let done = lines
        .iter()
        .find(|l| l.starts_with("senders-done"))
        .unwrap();
    let retried = lines.iter().find(|l| l.starts_with("retried")).unwrap();
    // Why a job failed temporarily, if one did (the front ends' logs).
    for f in &fronts {
        for l in f.log.lock().unwrap().lines() {
            if l.contains("40P01") || l.contains("busy") || l.contains("4.3.0") {
                eprintln!("front end log: {l}");
            }
        }
    }
    eprintln!(
        "3 front ends: {} messages acknowledged ({done} s, {retried} after a 451); every one in each recipient's INBOX once",
        sent.len()
    );
    // A delivery that would lock users out of order (or that PostgreSQL
    // picks as a deadlock's victim) is run again, not failed: no 451.
    assert_eq!(
        retried.split_whitespace().nth(1),
        Some("0"),
        "deliveries answered 451: {retried}"
    );
}

#[test]
fn a_front_end_killed_under_load_loses_nothing_acknowledged() {
    let (_pg, mut fronts, _certs) = fleet(3);
    let mut d = Driver::start(&config(
        "load",
        &fronts,
        r#", "senders": 16, "per_sender": 12, "kill": 1"#,
    ));
    // Front end 1's senders go on until it is killed; the others send
    // half of their 12 messages, then wait for the kill. SIGKILL it once
    // 60 messages were acknowledged.
    loop {
        let Some(l) = d.next() else {
            d.fail("driver ended before the kill", &fronts)
        };
        if let Some(n) = l.strip_prefix("acked ") {
            if n.parse::<usize>().unwrap() >= 60 {
                break;
            }
        }
    }
    fronts[1].child.kill().unwrap();
    fronts[1].child.wait().unwrap();
    d.say("killed 1");
    let lines = d.finish(&fronts);
    let sent = sent(&lines);
    // The survivors' senders were all acknowledged, also after the kill.
    let survivors: Vec<&Sent> = sent.iter().filter(|s| s.front != 1).collect();
    let on_survivors = (0..16).filter(|i| i % 3 != 1).count();
    assert_eq!(survivors.len(), on_survivors * 12, "{lines:?}");
    let refused: Vec<&&Sent> = survivors.iter().filter(|s| s.outcome != "ack").collect();
    assert!(refused.is_empty(), "survivors refused: {refused:?}");
    let after = survivors.iter().filter(|s| s.after_kill).count();
    assert!(
        after > 0,
        "no survivor acknowledged anything after the kill"
    );
    // The killed one's senders: acknowledged, broken, or not attempted.
    let killed: Vec<&Sent> = sent.iter().filter(|s| s.front == 1).collect();
    for s in &killed {
        assert!(
            matches!(s.outcome.as_str(), "ack" | "broken" | "noconn"),
            "{s:?}"
        );
    }
    let boxes = mailboxes(&lines);
    check_mailboxes(&sent, &boxes, &[0, 2], false);
    check_idle(&lines, &[0, 2], &boxes);
    let count = |o: &str| killed.iter().filter(|s| s.outcome == o).count();
    // How many of those cut before their `250` were committed anyway.
    let stored = killed
        .iter()
        .filter(|s| s.outcome == "broken")
        .filter(|s| {
            boxes[&(0, s.rcpts[0].clone())]
                .iter()
                .any(|(_, id)| *id == s.msgid)
        })
        .count();
    eprintln!(
        "kill -9 of front end 1: survivors acknowledged {} ({after} after the kill); \
         front end 1: {} acknowledged, {} broken mid-session ({stored} of them stored), {} not connected",
        survivors.len(),
        count("ack"),
        count("broken"),
        count("noconn"),
    );
}

/// The `op` lines: (what, front) -> (seconds, result).
fn ops(lines: &[String]) -> BTreeMap<(String, usize), (f64, String)> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("op "))
        .map(|l| {
            let f: Vec<&str> = l.splitn(4, ' ').collect();
            (
                (f[0].to_owned(), f[1].parse().unwrap()),
                (f[2].parse().unwrap(), f[3].to_owned()),
            )
        })
        .collect()
}

#[test]
fn postgres_stopped_and_started_under_running_front_ends() {
    let (pg, fronts, _certs) = fleet(3);
    let mut d = Driver::start(&config("outage", &fronts, ""));
    d.until("ready", &fronts);
    pg.stop();
    d.say("down");
    d.until("checked", &fronts);
    pg.start_again();
    d.say("up");
    d.until("serving", &fronts);
    pg.restart();
    d.say("restarted");
    let lines = d.finish(&fronts);
    let ops = ops(&lines);
    let op = |what: &str, f: usize| -> &(f64, String) {
        ops.get(&(what.to_owned(), f))
            .unwrap_or_else(|| panic!("no {what} for front end {f}: {lines:?}"))
    };
    for f in 0..3 {
        assert_eq!(op("smtp-before", f).1, "250");
        // SMTP: 451 4.3.0 (at RCPT, or at the end of DATA when the
        // recipient was cached), never 5xx, never 250.
        let smtp = &op("smtp-down", f).1;
        assert!(
            smtp.starts_with("temp:451:4.3.0_") && smtp.contains("temporarily_unavailable"),
            "SMTP with PostgreSQL down on front end {f}: {smtp}"
        );
        for what in ["fetch-down", "append-down", "select-down", "login-down"] {
            let res = &op(what, f).1;
            assert!(
                res.starts_with("NO:") && res.contains("[UNAVAILABLE]"),
                "{what} on front end {f}: {res}"
            );
        }
        // Back: the same processes, at the first attempt.
        assert_eq!(op("smtp-up", f).1, "250", "front end {f}");
        for what in ["select-up", "append-up", "login-up"] {
            let res = &op(what, f).1;
            assert!(res.starts_with("OK:"), "{what} on front end {f}: {res}");
        }
        // After a restart nobody saw (every connection dead unnoticed):
        // the first jobs find out and go on, on new connections.
        assert_eq!(op("smtp-restarted", f).1, "250", "front end {f}");
        for what in ["fetch-restarted", "append-restarted", "login-restarted"] {
            let res = &op(what, f).1;
            assert!(res.starts_with("OK:"), "{what} on front end {f}: {res}");
        }
    }
    // Nothing from the outage stored; everything acknowledged, once.
    let boxes = mailboxes(&lines);
    for f in 0..3 {
        let ids: Vec<&str> = boxes[&(f, USERS[0].to_owned())]
            .iter()
            .map(|x| x.1.as_str())
            .collect();
        let mut want: Vec<String> = Vec::new();
        for g in 0..3 {
            want.push(format!("<before.{g}@fleet.test>"));
        }
        for g in 0..3 {
            for what in ["up", "append-up", "restarted", "append-restarted"] {
                want.push(format!("<{what}.{g}@fleet.test>"));
            }
        }
        let mut sorted: Vec<&str> = ids.clone();
        sorted.sort_unstable();
        let mut want: Vec<&str> = want.iter().map(String::as_str).collect();
        want.sort_unstable();
        assert_eq!(sorted, want, "INBOX on front end {f}");
    }
    // The IDLE sessions opened before the outage saw everything after it.
    for (f, user, max, target, outcome, _) in idles(&lines) {
        assert_eq!(
            (max, target, outcome.as_str()),
            (15, 15, "complete"),
            "IDLE of {user} on front end {f}"
        );
    }
    let mut worst = 0f64;
    for ((what, f), (secs, res)) in &ops {
        eprintln!("{what} on front end {f}: {res} in {secs:.2} s");
        if what.ends_with("-down") {
            worst = worst.max(*secs);
        }
    }
    eprintln!("slowest answer while PostgreSQL was down: {worst:.2} s");
}

/// What the store says when it cannot connect: a server that is not
/// there is "unavailable" (temporary: the front ends answer 451 / `NO
/// [UNAVAILABLE]` for it), a database that does not exist is an error
/// of its own (the URL is wrong; no retry helps).
#[test]
fn a_server_that_is_not_there_is_unavailable_a_wrong_database_is_not() {
    let pg = PgCluster::start();
    let run = |url: &str| {
        let out = Command::new(BIN)
            .args(["user", "list", "--db", url])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{url}: {out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gone = run(&format!("postgres://minimail@127.0.0.1:{free}/mail"));
    assert!(
        gone.contains("mail store unavailable: cannot connect to"),
        "{gone}"
    );
    let port = pg.port();
    let wrong = run(&format!("postgres://minimail@127.0.0.1:{port}/nope"));
    assert!(
        wrong.contains("database error: cannot connect to")
            && wrong.contains("3D000")
            && !wrong.contains("unavailable"),
        "{wrong}"
    );
}
