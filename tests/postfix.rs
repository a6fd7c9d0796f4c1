//! Postfix as the other MTA, both ways (issue 15): a real Postfix (Debian's
//! package, started with `postfix -c DIR start` over a configuration and
//! queue of its own in a temporary directory, the unprivileged set-up of
//! `bench/compare.sh`; nothing in /etc is touched) serves p.test on
//! 127.0.0.4, with carol@p.test a virtual Maildir user, and a `minimail up`
//! serves a.test on 127.0.0.2. Both listen on the same port, so
//! minimail's `--mx-port` reaches Postfix by ordinary MX routing: a real
//! DNS server on loopback (dnsmasq) gives p.test the MX mx.p.test at
//! 127.0.0.4 (no `--relay-host`). Postfix reaches minimail through its
//! `transport` map (`a.test smtp:[127.0.0.2]:PORT`, a.test in
//! `relay_domains`). Both sides offer STARTTLS and use it
//! opportunistically (Postfix with a certificate from `minimail cert`).
//!
//! - minimail -> Postfix: alice@a.test sends with `mua send` through
//!   minimail's submission port to carol@p.test; the message lands in
//!   carol's Maildir with its subject and body intact, under a Received
//!   header of Postfix's saying ESMTPS.
//! - Postfix -> minimail: a message injected into Postfix over SMTP for
//!   alice@a.test is relayed by Postfix's transport map to minimail (over
//!   TLS, says Postfix's log) and read over IMAP from alice's INBOX.
//! - a bounce: mail from alice to an unknown user of p.test gets Postfix's
//!   550 5.1.1, and minimail puts an RFC 3464 report in alice's INBOX.
//!
//! Skipped, saying so, only when the `postfix` binary is missing (`.ci/run`
//! installs it). Every wait has a deadline; a failure prints Postfix's log
//! and minimail's. Postfix is stopped (`postfix -c DIR stop`) when the test
//! ends, also when it panics.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::dns::Dnsmasq;

const BIN: &str = env!("CARGO_BIN_EXE_minimail");
/// How long any one thing may take to happen.
const DEADLINE: Duration = Duration::from_secs(60);

/// Postfix's `postfix` command, if installed (it lives in /usr/sbin, which
/// is not on every PATH).
fn postfix_bin() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join("postfix"))
        .find(|p| p.is_file())
}

/// A port free on 127.0.0.2 (minimail) and 127.0.0.4 (Postfix).
fn shared_port() -> u16 {
    for _ in 0..50 {
        let a = TcpListener::bind("127.0.0.2:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.4", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free on both 127.0.0.2 and 127.0.0.4");
}

fn check(out: Output, what: &str) -> Output {
    assert!(
        out.status.success(),
        "{what} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A running Postfix with its own configuration directory, queue, data
/// directory, Maildirs and log file under `root`. Dropping it stops it
/// (and, when the test is panicking, prints its log first).
struct Postfix {
    bin: PathBuf,
    root: PathBuf,
    addr: SocketAddr,
}

impl Postfix {
    fn start(bin: PathBuf, root: &Path, addr: SocketAddr, transport: &str) -> Postfix {
        let etc = root.join("etc");
        for d in ["etc", "spool", "data", "vmail", "tls"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        // Postfix's daemons run as the user postfix, its virtual(8)
        // delivery as nobody: they must reach their directories.
        std::fs::set_permissions(root, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        check(
            Command::new("chown")
                .args(["postfix"])
                .arg(root.join("data"))
                .output()
                .unwrap(),
            "chown postfix data",
        );
        check(
            Command::new("chown")
                .args(["nobody:nogroup"])
                .arg(root.join("vmail"))
                .output()
                .unwrap(),
            "chown nobody vmail",
        );
        // A certificate for its STARTTLS (smtpd reads the key as root).
        check(
            Command::new(BIN)
                .args(["cert", "--name", "mx.p.test", "--out"])
                .arg(root.join("tls"))
                .output()
                .unwrap(),
            "minimail cert",
        );
        let r = root.display();
        let (ip, port) = (addr.ip(), addr.port());
        // master.cf names the listening address; inet_interfaces may only
        // name addresses of interfaces (127.0.0.4 is not one, lo has
        // 127.0.0.1/8).
        std::fs::write(
            etc.join("main.cf"),
            format!(
                "compatibility_level = 3.6
queue_directory = {r}/spool
data_directory = {r}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.p.test
mydomain = p.test
myorigin = p.test
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
virtual_mailbox_domains = p.test
virtual_mailbox_base = {r}/vmail
virtual_mailbox_maps = texthash:{r}/etc/vmailbox
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
relay_domains = a.test
transport_maps = texthash:{r}/etc/transport
default_transport = error:this Postfix relays to a.test only
alias_maps =
alias_database =
smtpd_tls_security_level = may
smtpd_tls_cert_file = {r}/tls/cert.pem
smtpd_tls_key_file = {r}/tls/key.pem
smtpd_tls_loglevel = 1
smtp_tls_security_level = may
smtp_tls_loglevel = 1
maillog_file = {r}/postfix.log
maillog_file_prefixes = {r}
biff = no
"
            ),
        )
        .unwrap();
        std::fs::write(etc.join("vmailbox"), "carol@p.test p.test/carol/\n").unwrap();
        std::fs::write(etc.join("transport"), format!("a.test {transport}\n")).unwrap();
        std::fs::write(
            etc.join("master.cf"),
            format!(
                "{ip}:{port} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
local     unix  - n n - - local
virtual   unix  - n n - - virtual
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"
            ),
        )
        .unwrap();
        let pf = Postfix {
            bin,
            root: root.to_owned(),
            addr,
        };
        // Postfix tells why it fails only on a terminal or in its log.
        check(
            pf.postfix("check"),
            "postfix check (on a terminal it says why)",
        );
        check(pf.postfix("start"), "postfix start");
        let deadline = Instant::now() + DEADLINE;
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "Postfix does not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        pf
    }

    fn postfix(&self, what: &str) -> Output {
        Command::new(&self.bin)
            .arg("-c")
            .arg(self.root.join("etc"))
            .arg(what)
            .output()
            .unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("postfix.log")).unwrap_or_default()
    }

    /// Wait until Postfix's log has a line containing all of `parts`.
    fn wait_log(&self, parts: &[&str]) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let log = self.log();
            if let Some(line) = log.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
                return line.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "no line with {parts:?} in Postfix's log"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The messages delivered to `user`'s Maildir (`new/`), oldest first.
    fn maildir(&self, user: &str) -> Vec<String> {
        let new = self.root.join("vmail/p.test").join(user).join("new");
        let mut files: Vec<_> = match std::fs::read_dir(&new) {
            Ok(d) => d.map(|e| e.unwrap().path()).collect(),
            Err(_) => return Vec::new(),
        };
        files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        files
            .iter()
            .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned())
            .collect()
    }

    fn wait_maildir(&self, user: &str, n: usize) -> Vec<String> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let got = self.maildir(user);
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{user}@p.test's Maildir has {} of {n} messages",
                got.len()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- Postfix's log ({}):\n{}---- end of Postfix's log",
                self.root.join("postfix.log").display(),
                self.log()
            );
        }
        let pid = std::fs::read_to_string(self.root.join("spool/pid/master.pid"))
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok());
        let out = self.postfix("stop");
        if !out.status.success() {
            eprintln!(
                "postfix stop failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // `postfix stop` only signals the master: wait for it to go, so
        // the temporary directory is not removed under it.
        if let Some(pid) = pid {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// `minimail up` for a.test on 127.0.0.2, with `--trace`; prints its log
/// when dropped during a panic.
struct Host {
    child: Child,
    db: PathBuf,
    /// Submission on 127.0.0.1, where a local client may log in without TLS.
    submission: String,
    imap: String,
    log: Arc<Mutex<String>>,
}

impl Host {
    fn start(dir: &Path, port: u16, dns: SocketAddr) -> Host {
        let db = dir.join("a.test.db");
        let out = testkit::process::run(
            Command::new(BIN)
                .args(["user", "add", "alice@a.test", "--password-stdin", "--db"])
                .arg(&db),
            b"pw\n",
        );
        check(out, "minimail user add");
        let (child, line, _, log) = testkit::server::minimail_up_logged(
            BIN,
            &db,
            &[
                "--trace",
                "--smtp",
                &format!("127.0.0.2:{port}"),
                "--domain",
                "a.test",
                "--hostname",
                "mx.a.test",
                "--dns",
                &dns.to_string(),
                "--mx-port",
                &port.to_string(),
                "--retry-min",
                "1",
                "--retry-max",
                "1",
            ],
            &[],
        );
        Host {
            child,
            db,
            submission: testkit::server::addr_of(&line, "submission"),
            imap: testkit::server::addr_of(&line, "imap"),
            log,
        }
    }

    fn log(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Wait until the log has a line containing all of `parts`.
    fn wait_log(&self, parts: &[&str]) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let log = self.log();
            if let Some(line) = log.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
                return line.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "no line with {parts:?} in minimail's log"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The messages in `user`'s INBOX, over IMAP.
    fn inbox(&self, user: &str) -> Vec<String> {
        testkit::imap::fetch_all_text(self.imap.parse().unwrap(), user, "pw", "INBOX")
    }

    fn wait_inbox(&self, user: &str, n: usize) -> Vec<String> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let got = self.inbox(user);
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{user} has {} of {n} messages\nqueue: {}",
                got.len(),
                self.queue_list()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn queue_list(&self) -> String {
        let out = Command::new(BIN)
            .args(["queue", "list", "--db"])
            .arg(&self.db)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        testkit::server::sigterm(&self.child);
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "---- minimail's log:\n{}---- end of minimail's log",
                self.log()
            );
        }
    }
}

/// The `mua` binary, beside `minimail`'s. `cargo test -p minimail` builds
/// only minimail's own binaries, so ask the cargo running us to build
/// mua's too (a no-op when it is fresh).
fn mua() -> PathBuf {
    let dir = Path::new(BIN).parent().unwrap();
    if let Some(cargo) = std::env::var_os("CARGO") {
        let mut build = Command::new(cargo);
        // Not the variables cargo set for this test: build scripts (ring's)
        // watch some, and seeing them changed would rebuild their crates
        // here and again in the next `cargo test`.
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k == "OUT_DIR"
                || [
                    "CARGO_MANIFEST_",
                    "CARGO_PKG_",
                    "CARGO_CRATE_",
                    "CARGO_BIN_",
                    "CARGO_PRIMARY_",
                    "CARGO_TARGET_TMPDIR",
                    "CARGO_RUSTC_CURRENT_DIR",
                    "CARGO_CFG_",
                ]
                .iter()
                .any(|p| k.starts_with(p))
            {
                build.env_remove(&*k);
            }
        }
        build
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["build", "-q", "-p", "mua", "--bin", "mua", "--target-dir"])
            .arg(dir.parent().unwrap());
        match dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => {}
            Some(profile) => {
                build.args(["--profile", profile]);
            }
        }
        check(build.output().unwrap(), "cargo build -p mua");
    }
    let mua = dir.join("mua");
    assert!(mua.is_file(), "no mua at {}", mua.display());
    mua
}

/// The values of header `name` in `msg`'s header section, unfolded, in
/// order.
fn headers(msg: &str, name: &str) -> Vec<String> {
    let head = msg.split("\r\n\r\n").next().unwrap_or(msg);
    let head = head.split("\n\n").next().unwrap_or(head);
    let mut out: Vec<String> = Vec::new();
    let prefix = format!("{}:", name.to_ascii_lowercase());
    let mut current: Option<String> = None;
    for line in head.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some(c) = current.as_mut() {
                c.push(' ');
                c.push_str(line.trim());
            }
            continue;
        }
        if let Some(c) = current.take() {
            out.push(c);
        }
        if line.to_ascii_lowercase().starts_with(&prefix) {
            current = Some(line[prefix.len()..].trim().to_owned());
        }
    }
    out.extend(current);
    out
}

#[test]
fn minimail_and_postfix_exchange_mail_both_ways() {
    let Some(postfix) = postfix_bin() else {
        eprintln!("SKIP: postfix is not installed (.ci/run installs it)");
        return;
    };
    let mua = mua();
    let dir = tempfile::tempdir().unwrap();
    let port = shared_port();
    // a.test signs its mail (issue 17); the key's record is in the DNS.
    let keygen = Command::new(BIN)
        .args(["dkim", "keygen", "a.test", "--selector", "pf", "--db"])
        .arg(dir.path().join("a.test.db"))
        .output()
        .unwrap();
    let keygen = check(keygen, "minimail dkim keygen");
    let record = String::from_utf8_lossy(&keygen.stdout)
        .split('"')
        .nth(1)
        .unwrap()
        .to_owned();
    let dns = Dnsmasq::start(&[
        "--mx-host=a.test,mx.a.test,10".into(),
        "--host-record=mx.a.test,127.0.0.2".into(),
        "--mx-host=p.test,mx.p.test,10".into(),
        "--host-record=mx.p.test,127.0.0.4".into(),
        format!("--txt-record=pf._domainkey.a.test,{record}"),
    ]);
    let pf = Postfix::start(
        postfix,
        &dir.path().join("postfix"),
        SocketAddr::from(([127, 0, 0, 4], port)),
        &format!("smtp:[127.0.0.2]:{port}"),
    );
    let a = Host::start(dir.path(), port, dns.addr);

    // minimail -> Postfix: `mua send` through the submission port.
    let out = Command::new(&mua)
        .args(["send", "--smtp", &a.submission, "--imap", &a.imap])
        .args(["--user", "alice@a.test", "--to", "carol@p.test"])
        .args([
            "--subject",
            "hello Postfix",
            "--body",
            "from minimail to p.test",
        ])
        .env("MUA_PASSWORD", "pw")
        .env("XDG_CONFIG_HOME", dir.path())
        .output()
        .unwrap();
    check(out, "mua send");
    let got = pf.wait_maildir("carol", 1);
    let msg = &got[0];
    assert_eq!(headers(msg, "Subject"), ["hello Postfix"], "{msg}");
    assert!(msg.contains("from minimail to p.test"), "{msg}");
    // The signature minimail made still verifies after Postfix's hop and
    // delivery (dkimpy, keys from the DNS).
    assert!(
        testkit::dkim::dkimpy_verifies(msg.as_bytes(), dns.addr),
        "DKIM broken in transit:\n{msg}"
    );
    let received = headers(msg, "Received");
    // The newest Received is Postfix's, for the hop from minimail, which
    // used STARTTLS; below it minimail's own from the submission.
    assert!(
        received[0].contains("from mx.a.test")
            && received[0].contains("by mx.p.test (Postfix) with ESMTPS"),
        "{received:#?}"
    );
    assert!(
        received.iter().skip(1).any(|r| r.contains("by mx.a.test")),
        "{received:#?}"
    );
    a.wait_log(&[
        "to=<carol@p.test>",
        &format!("relay=mx.p.test[127.0.0.4]:{port}"),
        "status=sent",
    ]);
    let log = a.log();
    assert!(
        log.contains(&format!("mx.p.test[127.0.0.4]:{port} C: STARTTLS")),
        "{log}"
    );
    pf.wait_log(&["to=<carol@p.test>", "relay=virtual", "status=sent"]);

    // Postfix -> minimail: injected into Postfix over SMTP, relayed by its
    // transport map.
    let mut s = testkit::smtp::Client::connect(pf.addr);
    s.expect_reply("220 mx.p.test ESMTP");
    let r = s.send_mail(
        "dave@p.test",
        &["alice@a.test"],
        b"From: dave@p.test\r\nTo: alice@a.test\r\nSubject: hello minimail\r\n\r\nfrom Postfix to a.test\r\n",
    );
    assert!(r.starts_with("250 2.0.0 Ok: queued"), "{r}");
    s.expect("QUIT", "221");
    let got = a.wait_inbox("alice@a.test", 1);
    let msg = &got[0];
    assert_eq!(headers(msg, "Subject"), ["hello minimail"], "{msg}");
    assert!(msg.contains("from Postfix to a.test"), "{msg}");
    let received = headers(msg, "Received");
    // minimail's, for the hop from Postfix, over STARTTLS; below it
    // Postfix's, for the injection.
    assert!(
        received[0].contains("from mx.p.test") && received[0].contains("by mx.a.test with ESMTPS"),
        "{received:#?}"
    );
    assert!(
        received[1].contains("by mx.p.test (Postfix)"),
        "{received:#?}"
    );
    let line = pf.wait_log(&[
        "to=<alice@a.test>",
        &format!("relay=127.0.0.2[127.0.0.2]:{port}"),
        "status=sent",
    ]);
    assert!(line.contains("(250 2.0.0"), "{line}");
    pf.wait_log(&["TLS connection established to 127.0.0.2[127.0.0.2]"]);

    // A user Postfix does not know: 550 5.1.1 at RCPT, and minimail
    // bounces to alice (RFC 3464).
    let out = Command::new(&mua)
        .args(["send", "--smtp", &a.submission, "--imap", &a.imap])
        .args(["--user", "alice@a.test", "--to", "nobody@p.test"])
        .args(["--subject", "lost", "--body", "to nobody"])
        .env("MUA_PASSWORD", "pw")
        .env("XDG_CONFIG_HOME", dir.path())
        .output()
        .unwrap();
    check(out, "mua send");
    let got = a.wait_inbox("alice@a.test", 2);
    let dsn = &got[1];
    assert!(dsn.contains("multipart/report"), "{dsn}");
    assert!(
        dsn.contains("Final-Recipient: rfc822; nobody@p.test"),
        "{dsn}"
    );
    assert!(
        dsn.contains("Action: failed") && dsn.contains("Status: 5.1.1"),
        "{dsn}"
    );
    assert!(
        dsn.contains("User unknown in virtual mailbox table"),
        "{dsn}"
    );
    assert!(
        dsn.contains("Subject: lost"),
        "the original is attached: {dsn}"
    );
    a.wait_log(&["to=<nobody@p.test>", "status=bounced"]);
    pf.wait_log(&["NOQUEUE: reject: RCPT", "<nobody@p.test>"]);
    // Nothing else arrived at carol's, and minimail's queue is empty.
    assert_eq!(pf.maildir("carol").len(), 1);
    assert!(
        a.queue_list().contains("queue is empty"),
        "{}",
        a.queue_list()
    );
}
