//! The sending side of the outbound fault and crash tests
//! (tests/outbound_faults.rs, tests/outbound_crash.rs): a real `minimail
//! up` for a.test (user alice@a.test, host name mx.a.test) routing by MX
//! through a real dnsmasq to scripted remote servers
//! ([`testkit::scripted`]) on loopback addresses that share one port (its
//! `--mx-port`); mail submitted with AUTH on its submission port; its
//! queue read with `minimail queue list`, its log kept, alice's INBOX
//! read over IMAP. Every wait polls with a deadline.

#![allow(dead_code)] // each test file uses its own part

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::scripted::Reserved;

pub const BIN: &str = env!("CARGO_BIN_EXE_minimail");
pub const ALICE: &str = "alice@a.test";

/// Reserved ports (bound, nothing listening: connections refused), one
/// on each of `ips`, all with the same port number.
pub fn reserve_on(ips: &[&str]) -> (u16, Vec<Reserved>) {
    for _ in 0..50 {
        let first: IpAddr = ips[0].parse().unwrap();
        let r0 = Reserved::bind(SocketAddr::new(first, 0)).unwrap();
        let port = r0.addr().port();
        let mut all = vec![r0];
        for ip in &ips[1..] {
            match Reserved::bind(SocketAddr::new(ip.parse().unwrap(), port)) {
                Ok(r) => all.push(r),
                Err(_) => break,
            }
        }
        if all.len() == ips.len() {
            return (port, all);
        }
    }
    panic!("no port free on all of {ips:?}");
}

/// dnsmasq options: `domain`'s MX is `mx.DOMAIN` at `ip`.
pub fn mx(domain: &str, ip: &str) -> [String; 2] {
    [
        format!("--mx-host={domain},mx.{domain},10"),
        format!("--host-record=mx.{domain},{ip}"),
    ]
}

/// A running sending host.
pub struct Sender {
    pub child: Child,
    pub db: PathBuf,
    args: Vec<String>,
    pub submission: SocketAddr,
    pub imap: SocketAddr,
    /// What it logged since its (last) start.
    pub log: Arc<Mutex<String>>,
}

impl Drop for Sender {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            testkit::server::sigterm(&self.child);
        }
        let _ = self.child.wait();
    }
}

impl Sender {
    /// Create alice@a.test in `dir`'s store and start `minimail up` with
    /// `dns` as its resolver, `mx_port` for every MX, retries every
    /// second (unless `extra` sets `--retry-min`), and `extra` flags.
    pub fn start(dir: &Path, dns: SocketAddr, mx_port: u16, extra: &[&str]) -> Sender {
        let db = dir.join("a.test.db");
        let out = testkit::process::run(
            Command::new(BIN)
                .args(["user", "add", ALICE, "--password-stdin", "--db"])
                .arg(&db),
            b"pw\n",
        );
        assert!(out.status.success(), "{out:?}");
        let mut args: Vec<String> = [
            "--domain",
            "a.test",
            "--hostname",
            "mx.a.test",
            "--dns",
            &dns.to_string(),
            "--mx-port",
            &mx_port.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if !extra.contains(&"--retry-min") {
            args.extend(["--retry-min", "1", "--retry-max", "1"].map(String::from));
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let (child, submission, imap, log) = launch(&db, &args, &[]);
        Sender {
            child,
            db,
            args,
            submission,
            imap,
            log,
        }
    }

    /// SIGKILL it and wait until it is gone.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Stop it with SIGTERM, as an operator does, and wait until it is gone.
    pub fn stop(&mut self) {
        testkit::server::sigterm(&self.child);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status}; log:\n{}", self.log_text());
    }

    /// Start it again (after [`Sender::kill9`] or [`Sender::stop`]) over
    /// the same store with the same flags; its log starts afresh.
    pub fn restart(&mut self) {
        self.restart_with_env(&[]);
    }

    /// [`Sender::restart`] with these environment variables.
    pub fn restart_with_env(&mut self, env: &[(&str, &str)]) {
        let (child, submission, imap, log) = launch(&self.db, &self.args, env);
        self.child = child;
        self.submission = submission;
        self.imap = imap;
        self.log = log;
    }

    /// An authenticated submission session (EHLO and AUTH PLAIN done; a
    /// client on the server's own address may authenticate without TLS).
    pub fn session(&self) -> testkit::smtp::Client {
        let mut c = testkit::smtp::Client::connect(self.submission);
        c.expect_reply("220");
        c.expect("EHLO client.a.test", "250");
        c.expect(
            &format!("AUTH PLAIN {}", testkit::smtp::plain(ALICE, "pw")),
            "235",
        );
        c
    }

    /// Submit one message from alice to `to`; `body` has CRLF line ends
    /// and no line starting with a dot. Panics unless it is accepted.
    pub fn submit(&self, to: &[&str], subject: &str, body: &str) {
        let mut c = self.session();
        c.expect(&format!("MAIL FROM:<{ALICE}>"), "250");
        for t in to {
            c.expect(&format!("RCPT TO:<{t}>"), "250");
        }
        c.expect("DATA", "354");
        let msg = format!(
            "From: {ALICE}\r\nTo: {}\r\nSubject: {subject}\r\nMessage-ID: <{subject}@a.test>\r\n\r\n{body}",
            to.join(", ")
        );
        c.send(msg.as_bytes());
        c.send(b".\r\n");
        c.expect_reply("250");
        c.expect("QUIT", "221");
    }

    /// `minimail queue list` of its store.
    pub fn queue_list(&self) -> String {
        self.queue(&["list"], &[])
    }

    /// `minimail queue ARGS` of its store with `env`; its standard output.
    pub fn queue(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = Command::new(BIN)
            .arg("queue")
            .args(args)
            .arg("--db")
            .arg(&self.db)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Poll `minimail queue list` until `ok` says yes; returns that listing.
    pub fn wait_queue(&self, what: &str, timeout: Duration, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let listed = self.queue_list();
            if ok(&listed) {
                return listed;
            }
            assert!(
                Instant::now() < deadline,
                "queue: {what} not seen in {timeout:?}:\n{listed}\nlog:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Wait until the queue is empty.
    pub fn wait_queue_empty(&self, timeout: Duration) {
        self.wait_queue("empty", timeout, |l| l.contains("queue is empty"));
    }

    /// Everything it logged since its (last) start.
    pub fn log_text(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Wait until its log contains `needle`; returns the log.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log_text();
            if log.contains(needle) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in the log after {timeout:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The per-attempt log lines (`outbound: id=… status=…`) about `rcpt`.
    pub fn attempts(&self, rcpt: &str) -> Vec<String> {
        let to = format!("to=<{rcpt}>");
        self.log_text()
            .lines()
            .filter(|l| l.contains("outbound: id=") && l.contains(&to))
            .map(str::to_owned)
            .collect()
    }

    /// The messages in alice's INBOX, over IMAP.
    pub fn inbox(&self) -> Vec<String> {
        testkit::imap::fetch_all_text(self.imap, ALICE, "pw", "INBOX")
    }

    /// Wait until alice's INBOX holds at least `n` messages; returns them.
    pub fn wait_inbox(&self, n: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.inbox();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "INBOX has {} of {n} messages after {timeout:?}; log:\n{}",
                got.len(),
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn launch(
    db: &Path,
    args: &[String],
    env: &[(&str, &str)],
) -> (Child, SocketAddr, SocketAddr, Arc<Mutex<String>>) {
    let extra: Vec<&str> = args.iter().map(String::as_str).collect();
    let (child, line, _, log) = testkit::server::minimail_up_logged(BIN, db, &extra, env);
    let submission = testkit::server::addr_of(&line, "submission")
        .parse()
        .unwrap();
    let imap = testkit::server::addr_of(&line, "imap").parse().unwrap();
    (child, submission, imap, log)
}

/// The `Final-Recipient:` addresses of a delivery status report.
pub fn final_recipients(report: &str) -> Vec<String> {
    report
        .lines()
        .filter_map(|l| l.strip_prefix("Final-Recipient: rfc822;"))
        .map(|a| a.trim().to_owned())
        .collect()
}

/// The attempt count `minimail queue list` shows for `rcpt`, if queued.
pub fn queued_attempts(listing: &str, rcpt: &str) -> Option<u32> {
    let prefix = format!("to <{rcpt}>  attempts ");
    listing.lines().find_map(|l| {
        l.trim_start()
            .strip_prefix(&prefix)?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}
