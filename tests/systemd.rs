//! `minimail up` under a service manager, without systemd: the readiness
//! protocol of `Type=notify` (sd_notify(3): READY=1 once listening,
//! RELOADING=1 with MONOTONIC_USEC and READY=1 around a SIGHUP reload,
//! STOPPING=1 on SIGTERM) read from the datagram socket named in
//! NOTIFY_SOCKET, and the log formats: `<N>` priorities without time
//! stamps when stderr is the JOURNAL_STREAM, one JSON object per line with
//! `--log-format json`.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_minimail");

/// Kills `minimail up` however the test ends.
struct Up(Child);

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Up {
    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Wait for the exit status after SIGTERM.
    fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.0.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `minimail up` on free ports over a store in `dir`, stderr into `log`.
fn start(dir: &Path, extra: &[&str], env: &[(&str, String)], log: &Path) -> Up {
    let err = std::fs::File::create(log).unwrap();
    Up(Command::new(BIN)
        .args(["up", "--smtp", "127.0.0.1:0", "--imap", "127.0.0.1:0"])
        .args(["--submission", "127.0.0.1:0", "--sieve", "127.0.0.1:0"])
        .args(["--no-outbound", "--db"])
        .arg(dir.join("m.db"))
        .args(extra)
        .env_remove("MINIMAIL_CONFIG")
        .env_remove("JOURNAL_STREAM")
        .env_remove("NOTIFY_SOCKET")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stderr(err)
        .spawn()
        .unwrap())
}

/// The log once it holds `what` (within 30 s).
fn log_with(log: &Path, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(what) {
            return text;
        }
        assert!(Instant::now() < deadline, "no {what:?} in the log:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The next datagram on the notify socket.
fn next(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("a notification within 30 s");
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

/// The value of `key` in a notification.
fn field<'a>(msg: &'a str, key: &str) -> Option<&'a str> {
    msg.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

#[test]
fn readiness_reload_and_stopping_are_notified() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let log = dir.path().join("stderr");
    let mut up = start(
        dir.path(),
        &[],
        &[("NOTIFY_SOCKET", path.to_str().unwrap().to_owned())],
        &log,
    );

    // READY=1 first, and only then do we connect: the listeners are up.
    let ready = next(&sock);
    assert_eq!(field(&ready, "READY"), Some("1"), "{ready}");
    let status = field(&ready, "STATUS").unwrap_or_default();
    let imap = testkit::server::addr_of(status, "imap");
    let s = TcpStream::connect(&imap).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut greeting = String::new();
    r.read_line(&mut greeting).unwrap();
    assert!(greeting.starts_with("* OK"), "{greeting}");

    // SIGHUP: RELOADING=1 with the monotonic clock, then READY=1.
    up.signal("-HUP");
    let reloading = next(&sock);
    assert_eq!(field(&reloading, "RELOADING"), Some("1"), "{reloading}");
    let usec: u64 = field(&reloading, "MONOTONIC_USEC")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC in {reloading}"));
    assert!(usec > 0);
    let ready = next(&sock);
    assert_eq!(field(&ready, "READY"), Some("1"), "{ready}");
    // The session opened before the reload goes on.
    (&s).write_all(b"a NOOP\r\n").unwrap();
    let mut noop = String::new();
    r.read_line(&mut noop).unwrap();
    assert!(noop.starts_with("a OK"), "{noop}");

    // SIGTERM: STOPPING=1, then a clean exit.
    up.signal("-TERM");
    let stopping = next(&sock);
    assert_eq!(field(&stopping, "STOPPING"), Some("1"), "{stopping}");
    assert!(up.wait().success());
}

#[test]
fn under_the_journal_lines_carry_priorities_and_no_time() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr");
    // systemd sets JOURNAL_STREAM to the device and inode of the stream
    // it gives as stderr: here, the file.
    std::fs::File::create(&log).unwrap();
    let meta = std::fs::metadata(&log).unwrap();
    let stream = format!("{}:{}", meta.dev(), meta.ino());
    let err = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let mut up = Up(Command::new(BIN)
        .args(["up", "--smtp", "127.0.0.1:0", "--imap", "127.0.0.1:0"])
        .args(["--submission", "127.0.0.1:0", "--sieve", "127.0.0.1:0"])
        .args(["--no-outbound", "--db"])
        .arg(dir.path().join("m.db"))
        .env("JOURNAL_STREAM", &stream)
        .env_remove("NOTIFY_SOCKET")
        .env_remove("MINIMAIL_CONFIG")
        .stderr(err)
        .spawn()
        .unwrap());
    log_with(&log, "minimail up: ");
    up.signal("-HUP");
    log_with(&log, "reloaded the configuration");
    up.signal("-TERM");
    assert!(up.wait().success());
    let text = std::fs::read_to_string(&log).unwrap();
    for line in text.lines() {
        let prio = line
            .strip_prefix('<')
            .and_then(|l| l.split_once('>'))
            .and_then(|(n, _)| n.parse::<u8>().ok());
        assert!(
            matches!(prio, Some(3..=7)),
            "no syslog priority: {line:?} in\n{text}"
        );
        assert!(
            !line.contains(&format!("[{}", &now_year())),
            "a time stamp: {line}"
        );
    }
    assert!(
        text.contains("<5>minimail up: smtp on 127.0.0.1:"),
        "{text}"
    );
    assert!(
        text.contains("<6>SIGHUP: reloaded the configuration"),
        "{text}"
    );
    assert!(text.contains("<6>signal 15: shutting down"), "{text}");

    // JOURNAL_STREAM naming another stream (inherited by a child whose
    // stderr went elsewhere): the text format, with time stamps.
    let log2 = dir.path().join("stderr2");
    let mut up = start(dir.path(), &[], &[("JOURNAL_STREAM", stream)], &log2);
    log_with(&log2, "minimail up: ");
    up.signal("-TERM");
    assert!(up.wait().success());
    let text = std::fs::read_to_string(&log2).unwrap();
    assert!(
        text.contains("\nminimail up: smtp on") || text.starts_with("minimail up: smtp on"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with(&format!("[{}", now_year()))),
        "{text}"
    );
}

/// This year, as log time stamps start.
fn now_year() -> String {
    let out = Command::new("date").args(["-u", "+%Y"]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("minimail.toml");
    std::fs::write(&conf, "log-format = \"json\"\n").unwrap();
    let log = dir.path().join("stderr");
    let mut up = start(dir.path(), &["--config", conf.to_str().unwrap()], &[], &log);
    log_with(&log, "minimail up: ");
    std::fs::write(&conf, "log-format = \"json\"\nno-such-key = 1\n").unwrap();
    up.signal("-HUP");
    log_with(&log, "no-such-key");
    up.signal("-TERM");
    assert!(up.wait().success());
    let text = std::fs::read_to_string(&log).unwrap();
    let mut levels = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        let ts = v["ts"].as_str().unwrap_or_default();
        assert!(
            ts.len() == 24 && ts.ends_with('Z') && ts.contains('T'),
            "{line}"
        );
        assert!(v["msg"].is_string(), "{line}");
        levels.push((
            v["level"].as_str().unwrap().to_owned(),
            v["msg"].as_str().unwrap().to_owned(),
        ));
    }
    assert!(
        levels
            .iter()
            .any(|(l, m)| l == "INFO" && m.starts_with("minimail up: smtp on")),
        "{text}"
    );
    assert!(
        levels
            .iter()
            .any(|(l, m)| l == "ERROR" && m.contains("minimail.toml:2: unknown key `no-such-key`")),
        "{text}"
    );
    assert!(
        levels.iter().any(|(_, m)| m == "minimail: stopped cleanly"),
        "{text}"
    );
}

/// contrib/minimail.service: the directives the code relies on and the
/// sandbox are there, and systemd itself finds nothing wrong with it
/// (`systemd-analyze verify`, where systemd is installed).
#[test]
fn the_unit_file_is_sound() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/contrib/minimail.service"
    ))
    .unwrap();
    for want in [
        "Type=notify\n",
        "ExecReload=/bin/kill -HUP $MAINPID\n",
        "ProtectSystem=strict\n",
        "NoNewPrivileges=yes\n",
        "PrivateTmp=yes\n",
        "ReadWritePaths=/var/lib/minimail\n",
        "Environment=MINIMAIL_DB=/var/lib/minimail/minimail.db\n",
    ] {
        assert!(unit.contains(want), "no {want:?} in the unit");
    }
    if !testkit::process::have("systemd-analyze", "--version") {
        eprintln!("skipped systemd-analyze verify: systemd-analyze is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("minimail.service");
    std::fs::write(&copy, unit.replace("/usr/local/bin/minimail", BIN)).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("minimail.service"), "systemd-analyze: {err}");
}

/// contrib/minimail.toml, the example the README points to, passes
/// `minimail config check`.
#[test]
fn the_example_config_checks() {
    let out = Command::new(BIN)
        .args(["config", "check", "--config"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/contrib/minimail.toml"
        ))
        .env_remove("MINIMAIL_DB")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains("hostname = \"mail.example.org\"  # file, line"),
        "{text}"
    );
    assert!(
        text.contains("smtps = [\"0.0.0.0:465\"]  # file, line"),
        "{text}"
    );
}
