//! fetchmail (Debian's `fetchmail`, IMAP side) against imapd: STARTTLS
//! with the certificate checked against the test CA, `keep` (messages
//! stay, marked `\Seen`, RFC 3501 §6.4.6), a second poll that finds
//! nothing new (`SEARCH UNSEEN`), a poll without `keep` (`\Deleted` and
//! EXPUNGE, §6.4.3), and `--idle` (RFC 2177) picking up a delivery while it
//! waits. Messages reach fetchmail's MDA byte for byte (line ends aside:
//! fetchmail hands an MDA LF lines). Fails (does not skip) if fetchmail is
//! missing: CI installs it.

use crate::util::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The rc file for one poll of bob's INBOX over STARTTLS into `out/`.
fn rc(s: &TestServer, keep: bool) -> PathBuf {
    let dir = s.dir.path();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &test_cert().cert_pem).unwrap();
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let path = dir.join(if keep {
        "fetchmailrc-keep"
    } else {
        "fetchmailrc"
    });
    std::fs::write(
        &path,
        format!(
            "set no bouncemail\nset invisible\n\
poll 127.0.0.1 service {port} protocol IMAP auth password\n\
  user \"bob@localhost\" password \"{PASSWORD}\" is \"bob\" here\n\
  sslproto \"TLS1.2+\" sslcertck sslcertfile \"{ca}\" sslcommonname localhost\n\
  no rewrite {keep}\n\
  mda \"/bin/sh -c 'cat > {out}/msg.$$'\"\n",
            port = s.addr.port(),
            ca = ca.display(),
            keep = if keep { "keep" } else { "no keep" },
            out = out.display(),
        ),
    )
    .unwrap();
    // fetchmail refuses an rc file others can read.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// fetchmail with its state (and, run as root, its pid file) in `home`;
/// a server silent for 30 s ends its poll (`-t`), so no test hangs.
fn fetchmail(rc: &Path, home: &Path) -> Command {
    let mut c = Command::new("fetchmail");
    c.arg("-f")
        .arg(rc)
        .args(["-v", "-t", "30"])
        .arg("--pidfile")
        .arg(home.join("fetchmail.pid"))
        .env("FETCHMAILHOME", home)
        .env("HOME", home);
    c
}

/// One poll, its output collected.
fn poll(rc: &Path, home: &Path) -> Output {
    testkit::process::run(&mut fetchmail(rc, home), b"")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\n{}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The messages the MDA wrote, sorted, with LF line ends.
fn delivered(s: &TestServer) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(s.dir.path().join("out"))
        .unwrap()
        .flatten()
        .map(|e| String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()).into_owned())
        .collect();
    v.sort();
    v
}

fn lf(b: &[u8]) -> String {
    String::from_utf8_lossy(b).replace("\r\n", "\n")
}

/// The sequence numbers a SEARCH answer lists.
fn found(r: &[String]) -> Vec<String> {
    r.iter()
        .find(|l| l.starts_with("* SEARCH"))
        .map(|l| {
            l.trim_start_matches("* SEARCH")
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

struct Idle(Child);

impl Drop for Idle {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn fetchmail_keeps_deletes_and_idles_over_starttls() {
    let s = TestServer::tls(|_| {});
    let bob = s.add_user("bob@localhost");
    s.deliver(bob, MULTIPART);
    s.deliver(bob, &simple("second", "two"));
    let home = s.dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();

    // keep: both messages reach the MDA and stay on the server, \Seen.
    let keep = rc(&s, true);
    let out = poll(&keep, &home);
    assert!(out.status.success(), "{}", text(&out));
    let log = text(&out);
    assert!(log.contains("STARTTLS"), "no STARTTLS: {log}");
    let got = delivered(&s);
    assert_eq!(got.len(), 2, "{got:?}\n{log}");
    for want in [MULTIPART.to_vec(), simple("second", "two")] {
        assert!(
            got.iter().any(|g| g.trim_end() == lf(&want).trim_end()),
            "not delivered byte for byte: {:?}\n{got:?}",
            lf(&want)
        );
    }
    let mut c = s.login("bob@localhost");
    c.ok("SELECT INBOX");
    assert_eq!(found(&c.ok("SEARCH SEEN")), ["1", "2"]);

    // Nothing unseen: the next poll fetches nothing (fetchmail's status 1).
    let out = poll(&keep, &home);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(delivered(&s).len(), 2);

    // Without keep: the new message is fetched, then deleted and expunged.
    s.deliver(bob, &simple("third", "three"));
    let out = poll(&rc(&s, false), &home);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("EXPUNGE"), "{}", text(&out));
    let got = delivered(&s);
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got.iter().any(|g| g.contains("Subject: third")));
    c.ok("NOOP");
    assert_eq!(found(&c.ok("SEARCH SUBJECT third")), Vec::<String>::new());
    assert_eq!(found(&c.ok("SEARCH ALL")), ["1", "2"]);

    // --idle: fetchmail waits in IDLE; a delivery wakes it, it fetches the
    // message and deletes it.
    let log_path = s.dir.path().join("idle.log");
    let log_file = std::fs::File::create(&log_path).unwrap();
    let child = fetchmail(&rc(&s, false), &home)
        .args(["--idle", "-d", "30", "-N"])
        .stdout(Stdio::from(log_file.try_clone().unwrap()))
        .stderr(Stdio::from(log_file))
        .spawn()
        .expect("fetchmail must be installed for interop tests");
    let _idle = Idle(child);
    let idle_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !idle_log().contains("IMAP< + ") {
        assert!(
            Instant::now() < deadline,
            "fetchmail did not enter IDLE:\n{}",
            idle_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    s.deliver(bob, &simple("pushed", "four"));
    loop {
        if delivered(&s).iter().any(|g| g.contains("Subject: pushed")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "fetchmail --idle did not fetch the pushed message"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        c.ok("NOOP");
        if found(&c.ok("SEARCH SUBJECT pushed")).is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "fetchmail --idle did not delete the pushed message"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(delivered(&s).len(), 4);
    let log = idle_log();
    let idling = log.find("IMAP< + ").unwrap();
    assert!(
        log[idling..].contains("EXISTS") && log[idling..].contains("IMAP> DONE"),
        "the delivery did not reach fetchmail in IDLE:\n{log}"
    );
}
