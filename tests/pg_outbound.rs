//! The outbound queue shared by `minimail up --db postgres://...` front
//! ends (issue 18), end to end: a private PostgreSQL cluster
//! (`testkit::pg`), front ends on 127.0.0.2 and 127.0.0.3 delivering by
//! MX (a real dnsmasq on loopback) to a real receiving MTA, another
//! `minimail up` (on SQLite) for b.test on 127.0.0.4, whose INBOX is read
//! over IMAP.
//!
//! - Mail submitted (AUTH, STARTTLS, Python's smtplib) through both front
//!   ends at once arrives exactly once each, and the queue ends empty.
//! - A front end killed (SIGKILL) while its deliveries hang (the receiver
//!   stopped with SIGSTOP: connections accepted, no greeting) keeps its
//!   leases until they pass; a front end started meanwhile does not take
//!   them early, then delivers them all once they have passed. Nothing
//!   reached the receiver's DATA before the kill, so each message arrives
//!   exactly once.
//! - A front end killed while it waits for the reply to a message's final
//!   dot (a scripted receiver for c.test on 127.0.0.5, `testkit::scripted`,
//!   silent there once and not taking the message) has that message sent
//!   again by another front end after the lease: it arrives once (the
//!   receiver had not taken it; one that had would get it twice, the
//!   duplicate RFC 5321 §6.1 allows).
//!
//! - A front end stopped cleanly (SIGTERM) while its deliveries hang
//!   gives back its leases before it exits: another front end delivers
//!   them at once, long before they would have passed.
//!
//! Needs PostgreSQL's binaries, dnsmasq and python3.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use testkit::dns::Dnsmasq;
use testkit::pg::PgCluster;

const BIN: &str = env!("CARGO_BIN_EXE_minimail");

/// A `minimail up`: continued (if stopped) and killed when dropped.
struct Up {
    child: Child,
    line: String,
    before: String,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Drop for Up {
    fn drop(&mut self) {
        signal(&self.child, "CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Up {
    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The address on `ip` the start-up line lists for `what`.
    fn addr_on(&self, what: &str, ip: &str) -> String {
        self.line
            .split(&format!("{what} on "))
            .nth(1)
            .unwrap()
            .split(", ")
            .map(str::trim)
            .take_while(|a| a.parse::<SocketAddr>().is_ok())
            .find(|a| a.starts_with(ip))
            .unwrap_or_else(|| panic!("no {what} on {ip} in {}", self.line))
            .to_owned()
    }

    /// The lease owner it logged at start.
    fn owner(&self) -> String {
        let at = self
            .before
            .find("sharing the queue as ")
            .unwrap_or_else(|| panic!("no lease owner logged: {}", self.before));
        let rest = &self.before[at + "sharing the queue as ".len()..];
        rest.split(' ').next().unwrap().to_owned()
    }
}

fn signal(child: &Child, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status();
}

fn free_port(ip: &str) -> u16 {
    TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn minimail(url: &str, args: &[&str], input: &str) -> String {
    let out = testkit::process::run(
        Command::new(BIN).args(args).env("MINIMAIL_DB", url),
        input.as_bytes(),
    );
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The world: PostgreSQL with alice@a.test, DNS, the receiving MTA.
struct World {
    pg: PgCluster,
    dns: Dnsmasq,
    mx_port: u16,
    receiver: Up,
    certs: tempfile::TempDir,
    _dir: tempfile::TempDir,
}

fn world() -> World {
    let pg = PgCluster::start();
    minimail(
        pg.url(),
        &["user", "add", "alice@a.test", "--password-stdin"],
        "pw\n",
    );
    let dns = Dnsmasq::start(&[
        "--mx-host=b.test,mx.b.test,10".into(),
        "--host-record=mx.b.test,127.0.0.4".into(),
        "--mx-host=c.test,mx.c.test,10".into(),
        "--host-record=mx.c.test,127.0.0.5".into(),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.test.db");
    let out = testkit::process::run(
        Command::new(BIN)
            .args(["user", "add", "bob@b.test", "--password-stdin", "--db"])
            .arg(&db),
        b"pw\n",
    );
    assert!(out.status.success(), "{out:?}");
    let mx_port = (0..50)
        .map(|_| free_port("127.0.0.4"))
        .find(|p| TcpListener::bind(("127.0.0.5", *p)).is_ok())
        .expect("no port free on 127.0.0.4 and .5");
    let smtp = format!("127.0.0.4:{mx_port}");
    let (child, line, before, log) = testkit::server::minimail_up_logged(
        BIN,
        &db,
        &[
            "--no-outbound",
            "--smtp",
            &smtp,
            "--domain",
            "b.test",
            "--hostname",
            "mx.b.test",
        ],
        &[],
    );
    let receiver = Up {
        child,
        line,
        before,
        log,
    };
    let certs = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["cert", "--out"])
        .arg(certs.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "minimail cert: {out:?}");
    World {
        pg,
        dns,
        mx_port,
        receiver,
        certs,
        _dir: dir,
    }
}

impl World {
    /// A front end for a.test on `ip`, over the PostgreSQL store.
    fn front_end(&self, ip: &str, lease: u64, extra: &[&str]) -> Up {
        self.front_end_env(ip, lease, extra, &[])
    }

    /// [`World::front_end`] with `env` set for it.
    fn front_end_env(&self, ip: &str, lease: u64, extra: &[&str], env: &[(&str, &str)]) -> Up {
        let cert = self.certs.path().join("cert.pem");
        let key = self.certs.path().join("key.pem");
        let (child, line, before, log) = testkit::server::minimail_up_logged(
            BIN,
            Path::new(self.pg.url()),
            &[
                "--smtp",
                &format!("{ip}:0"),
                "--submission",
                &format!("{ip}:0"),
                "--domain",
                "a.test",
                "--hostname",
                "mx.a.test",
                "--dns",
                &self.dns.addr.to_string(),
                "--mx-port",
                &self.mx_port.to_string(),
                "--retry-min",
                "1",
                "--retry-max",
                "2",
                "--outbound-timeout",
                "60",
                "--outbound-lease",
                &lease.to_string(),
                "--tls-cert",
                cert.to_str().unwrap(),
                "--tls-key",
                key.to_str().unwrap(),
            ]
            .into_iter()
            .chain(extra.iter().copied())
            .collect::<Vec<_>>(),
            env,
        );
        Up {
            child,
            line,
            before,
            log,
        }
    }

    /// Subjects in bob@b.test's INBOX at the receiver, with counts.
    fn arrived(&self) -> BTreeMap<String, usize> {
        let imap = testkit::server::addr_of(&self.receiver.line, "imap");
        let mut got = BTreeMap::new();
        for m in testkit::imap::fetch_all_text(imap.parse().unwrap(), "bob@b.test", "pw", "INBOX") {
            let subject = m
                .lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .unwrap_or("?")
                .trim()
                .to_owned();
            *got.entry(subject).or_insert(0) += 1;
        }
        got
    }

    /// Wait (30 s at most) until `n` queued recipients are leased by
    /// `owner`.
    fn wait_leased(&self, owner: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let queue = minimail(self.pg.url(), &["queue", "list"], "");
            if queue.matches(&format!("leased by {owner} ")).count() == n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not all leased by {owner}:\n{queue}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Wait until `n` messages arrived and the shared queue is empty;
    /// the arrivals by subject.
    fn wait_delivered(&self, n: usize, fronts: &[&Up]) -> BTreeMap<String, usize> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let got = self.arrived();
            let total: usize = got.values().sum();
            let queue = minimail(self.pg.url(), &["queue", "list"], "");
            if total >= n && queue.contains("queue is empty") {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{total} of {n} arrived; queue:\n{queue}\nfront ends' logs:\n{}",
                fronts
                    .iter()
                    .map(|f| f.log())
                    .collect::<Vec<_>>()
                    .join("\n----\n")
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

/// Submit `subjects` to bob@b.test through `submission` as alice@a.test
/// (STARTTLS, AUTH), over one connection.
fn submit(submission: &str, subjects: &[String]) {
    let (h, p) = submission.rsplit_once(':').unwrap();
    let list = subjects
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ");
    // A 451 is sent again, as a mail client or MTA does: two front ends
    // writing for one user at once may answer one of them 451 (a job that
    // could not get its owner's lock in time, see mailstore/src/pg/mod.rs),
    // and nothing of that message is kept (the exactly-once checks see a
    // copy kept anyway).
    let script = format!(
        "import smtplib, ssl, time\n\
         from email.message import EmailMessage\n\
         s = smtplib.SMTP('{h}', {p}, local_hostname='client.test')\n\
         s.starttls(context=ssl._create_unverified_context())\n\
         s.login('alice@a.test', 'pw')\n\
         for subject in [{list}]:\n\
         \x20   m = EmailMessage()\n\
         \x20   m['From'] = 'alice@a.test'\n\
         \x20   m['To'] = 'bob@b.test'\n\
         \x20   m['Subject'] = subject\n\
         \x20   m.set_content('hello ' + subject)\n\
         \x20   for attempt in range(10):\n\
         \x20       try:\n\
         \x20           s.send_message(m)\n\
         \x20           break\n\
         \x20       except smtplib.SMTPDataError as e:\n\
         \x20           if e.smtp_code != 451 or attempt == 9:\n\
         \x20               raise\n\
         \x20           time.sleep(0.2)\n\
         s.quit()\n"
    );
    testkit::process::python(&script);
}

/// SIGTERM `up` and wait (30 s at most) for it to exit; its status.
fn terminate(up: &mut Up) -> std::process::ExitStatus {
    signal(&up.child, "TERM");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(s) = up.child.try_wait().unwrap() {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "no exit after SIGTERM:\n{}",
            up.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Each of `subjects` arrived exactly once.
fn arrived_once(got: &BTreeMap<String, usize>, subjects: &[String]) {
    for s in subjects {
        assert_eq!(got.get(s), Some(&1), "{s}: {got:?}");
    }
}

fn sent_by(front: &Up) -> usize {
    front.log().matches("status=sent").count()
}

#[test]
fn a_front_end_killed_at_the_final_dot_has_that_message_sent_once_by_another() {
    use testkit::scripted::{Action, Rule, Script, Scripted, Stage};
    let w = world();
    // The first final dot gets no reply (and the message is not taken).
    let c = Scripted::start(
        SocketAddr::from(([127, 0, 0, 5], w.mx_port)),
        Script::new("mx.c.test").rule(Rule::new(Stage::EndOfData, Action::Silence).times(1)),
    );
    let lease = 6;
    let a = w.front_end("127.0.0.2", lease, &["--per-destination", "1"]);
    let owner_a = a.owner();
    const N: usize = 5;
    let subjects: Vec<String> = (0..N).map(|i| format!("dot-{i:03}")).collect();
    let (h, p) = a
        .addr_on("submission", "127.0.0.2")
        .rsplit_once(':')
        .map(|(h, p)| (h.to_owned(), p.to_owned()))
        .unwrap();
    // To carol@c.test this time.
    let script = format!(
        "import smtplib, ssl\n\
         from email.message import EmailMessage\n\
         s = smtplib.SMTP('{h}', {p}, local_hostname='client.test')\n\
         s.starttls(context=ssl._create_unverified_context())\n\
         s.login('alice@a.test', 'pw')\n\
         for subject in {subjects:?}:\n\
         \x20   m = EmailMessage()\n\
         \x20   m['From'] = 'alice@a.test'\n\
         \x20   m['To'] = 'carol@c.test'\n\
         \x20   m['Subject'] = subject\n\
         \x20   m.set_content('hello ' + subject)\n\
         \x20   s.send_message(m)\n\
         s.quit()\n"
    );
    testkit::process::python(&script);
    // One message waits for the reply to its final dot, in A's hands.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sent_dot = c.count("DATA") >= 1;
        let queue = minimail(w.pg.url(), &["queue", "list"], "");
        if sent_dot && queue.matches(&format!("leased by {owner_a} ")).count() >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "A never got to DATA:\n{queue}");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(c.deliveries().is_empty(), "{:?}", c.deliveries());
    signal(&a.child, "KILL");
    let killed = Instant::now();
    let b = w.front_end("127.0.0.3", 60, &[]);
    let got = c.wait_for(N, Duration::from_secs(60));
    let took = killed.elapsed();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !minimail(w.pg.url(), &["queue", "list"], "").contains("queue is empty") {
        assert!(Instant::now() < deadline, "queue not empty: {}", b.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for d in c.deliveries() {
        *seen
            .entry(d.header("Subject").unwrap_or_default())
            .or_insert(0) += 1;
    }
    arrived_once(&seen, &subjects);
    assert_eq!(got.len(), N);
    assert_eq!(sent_by(&b), N, "{}", b.log());
    eprintln!("the message cut off at the final dot (and the rest) sent by B {took:?} after A was killed (lease {lease} s)");
    assert!(took >= Duration::from_millis(lease * 1000 * 2 / 3));
}

#[test]
fn two_front_ends_deliver_each_message_exactly_once() {
    let w = world();
    // One connection to b.test at a time each: what a front end claimed
    // beyond it goes back to the queue at once, for either to take.
    let a = w.front_end("127.0.0.2", 60, &["--per-destination", "1"]);
    let b = w.front_end("127.0.0.3", 60, &["--per-destination", "1"]);
    assert_ne!(a.owner(), b.owner());
    const N: usize = 40;
    let subjects: Vec<String> = (0..N).map(|i| format!("pgq-{i:03}")).collect();
    let (via_a, via_b) = subjects.split_at(N / 2);
    let (sa, sb) = (
        a.addr_on("submission", "127.0.0.2"),
        b.addr_on("submission", "127.0.0.3"),
    );
    std::thread::scope(|s| {
        s.spawn(|| submit(&sa, via_a));
        s.spawn(|| submit(&sb, via_b));
    });
    let got = w.wait_delivered(N, &[&a, &b]);
    arrived_once(&got, &subjects);
    assert_eq!(got.len(), N, "{got:?}");
    // Every delivery was recorded once, by one front end or the other.
    let (na, nb) = (sent_by(&a), sent_by(&b));
    eprintln!("delivered by front end A: {na}, by B: {nb}");
    assert_eq!(na + nb, N, "A:\n{}\nB:\n{}", a.log(), b.log());
    assert!(!a.log().contains("outcome not recorded"), "{}", a.log());
    assert!(!b.log().contains("outcome not recorded"), "{}", b.log());
}

#[test]
fn a_killed_front_ends_deliveries_pass_to_another_after_its_lease() {
    let w = world();
    // The receiver accepts connections but says nothing.
    signal(&w.receiver.child, "STOP");
    let lease = 8;
    const N: usize = 10;
    // Connections enough for every message at once: all of them in flight
    // (a front end gives back at once what it has no connection for).
    let a = w.front_end("127.0.0.2", lease, &["--per-destination", "10"]);
    let owner_a = a.owner();
    let subjects: Vec<String> = (0..N).map(|i| format!("kill-{i:03}")).collect();
    submit(&a.addr_on("submission", "127.0.0.2"), &subjects);
    // Every recipient in A's hands (claimed, a connection waiting for the
    // greeting).
    w.wait_leased(&owner_a, N);
    // The queue commands work on the URL: `show` prints a message,
    // `retry` makes everything due now and leaves the leases as they are.
    let queue = minimail(w.pg.url(), &["queue", "list"], "");
    let qids: Vec<&str> = queue
        .lines()
        .filter(|l| l.contains(" bytes "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(qids.len(), N, "{queue}");
    let shown = minimail(w.pg.url(), &["queue", "show", qids[0]], "");
    assert!(shown.contains("Subject: kill-"), "{shown}");
    let retried = minimail(w.pg.url(), &["queue", "retry"], "");
    assert_eq!(retried.trim(), format!("{N} recipient(s) due now"));
    let queue = minimail(w.pg.url(), &["queue", "list"], "");
    assert_eq!(
        queue.matches(&format!("leased by {owner_a} ")).count(),
        N,
        "{queue}"
    );
    signal(&a.child, "KILL");
    let killed = Instant::now();
    let b = w.front_end("127.0.0.3", 60, &[]);
    // A's leases are live a while longer: B leaves them alone.
    let queue = minimail(w.pg.url(), &["queue", "list"], "");
    let early = killed.elapsed();
    // Renewed every third of the lease: at the kill it had at least two
    // thirds of it left.
    let sure = Duration::from_millis(lease * 1000 * 2 / 3);
    if early + Duration::from_secs(1) < sure {
        assert_eq!(
            queue.matches(&format!("leased by {owner_a} ")).count(),
            N,
            "B took live leases {early:?} after the kill:\n{queue}"
        );
    } else {
        eprintln!("B took {early:?} to start: live-lease check skipped");
    }
    signal(&w.receiver.child, "CONT");
    let got = w.wait_delivered(N, &[&b]);
    let took = killed.elapsed();
    arrived_once(&got, &subjects);
    assert_eq!(sent_by(&b), N, "{}", b.log());
    eprintln!("delivered by B {took:?} after A was killed (A's lease: {lease} s)");
    assert!(took >= sure, "delivered before A's lease passed: {took:?}");
    // What is gone cannot be shown or deleted: a clear error.
    let out = testkit::process::run(
        Command::new(BIN)
            .args(["queue", "delete", qids[0]])
            .env("MINIMAIL_DB", w.pg.url()),
        b"",
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no message") && err.contains(qids[0]), "{err}");
}

#[test]
fn a_front_end_stopped_with_sigterm_gives_back_its_leases_at_once() {
    let w = world();
    // The receiver accepts connections but says nothing: A's deliveries
    // hang, their leases live.
    signal(&w.receiver.child, "STOP");
    let lease = 60;
    const N: usize = 10;
    let mut a = w.front_end("127.0.0.2", lease, &["--per-destination", "10"]);
    let owner_a = a.owner();
    let subjects: Vec<String> = (0..N).map(|i| format!("term-{i:03}")).collect();
    submit(&a.addr_on("submission", "127.0.0.2"), &subjects);
    w.wait_leased(&owner_a, N);
    // A clean shutdown: A gives its leases back before it exits.
    let termed = Instant::now();
    let status = terminate(&mut a);
    let exited = termed.elapsed();
    assert!(status.success(), "{status:?}\n{}", a.log());
    assert!(
        a.log().contains(&format!(
            "gave back the leases of {N} recipient(s) in flight"
        )),
        "{}",
        a.log()
    );
    let queue = minimail(w.pg.url(), &["queue", "list"], "");
    assert!(!queue.contains(&format!("leased by {owner_a} ")), "{queue}");
    signal(&w.receiver.child, "CONT");
    let b = w.front_end("127.0.0.3", lease, &[]);
    let got = w.wait_delivered(N, &[&b]);
    let took = termed.elapsed();
    arrived_once(&got, &subjects);
    assert_eq!(sent_by(&b), N, "{}", b.log());
    eprintln!(
        "A exited {exited:?} after SIGTERM; its {N} recipients delivered by B {took:?} after it (A's lease: {lease} s)"
    );
    // Renewed every third of the lease, A's leases had at least two
    // thirds of it left at the SIGTERM: B did not wait for them to pass.
    assert!(
        took < Duration::from_secs(lease * 2 / 3),
        "B delivered only after A's leases could have passed: {took:?}"
    );
}

#[test]
fn mail_freed_on_one_front_end_wakes_the_others_outbound_engine_at_once() {
    let w = world();
    signal(&w.receiver.child, "STOP");
    // Both front ends look at the queue by themselves only every 200 s
    // (a third of the 600 s lease; the poll set to 10 minutes): B can
    // take up what A frees within this test only if A's commit wakes it.
    let lease = 600;
    let slow = [("MINIMAIL_OUTBOUND_POLL_MS", "600000")];
    const N: usize = 5;
    let mut a = w.front_end_env("127.0.0.2", lease, &["--per-destination", "10"], &slow);
    let owner_a = a.owner();
    let subjects: Vec<String> = (0..N).map(|i| format!("wake-{i:03}")).collect();
    submit(&a.addr_on("submission", "127.0.0.2"), &subjects);
    w.wait_leased(&owner_a, N);
    // B starts while A holds everything: its first look finds nothing
    // to take, and its next poll is 200 s away.
    let b = w.front_end_env("127.0.0.3", lease, &[], &slow);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(sent_by(&b), 0, "{}", b.log());
    // A's SIGTERM gives its leases back: rows of outq_rcpt without a
    // lease, which NOTIFY minimail_queue at A's commit. The receiver
    // stays stopped until A is gone, so A sends none of them itself.
    let freed = Instant::now();
    terminate(&mut a);
    signal(&w.receiver.child, "CONT");
    let got = w.wait_delivered(N, &[&b]);
    let took = freed.elapsed();
    arrived_once(&got, &subjects);
    assert_eq!(sent_by(&b), N, "{}", b.log());
    eprintln!(
        "B delivered A's {N} given-back recipients {took:?} after A's SIGTERM (B's poll: 200 s)"
    );
    assert!(
        took < Duration::from_secs(100),
        "B waited for its poll, not a NOTIFY: {took:?}"
    );
}
