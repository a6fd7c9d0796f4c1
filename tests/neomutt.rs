//! neomutt, as a person runs it (in a terminal: tmux), against `minimail
//! up`: it opens the INBOX over IMAP and lists it, and after another client
//! has changed the mailbox while it was away it comes back through its
//! header cache with CONDSTORE/QRESYNC (RFC 7162: `ENABLE QRESYNC`, then
//! `UID FETCH ... (CHANGEDSINCE m VANISHED)`, §3.2.6) and shows the new message
//! and the new flag. It talks STARTTLS with `ssl_force_tls`, trusting the
//! self-signed certificate `minimail up` made beside the store, as the
//! README's mutt example does. Fails if neomutt or tmux is missing
//! (`.ci/run` installs both).

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use testkit::imap::Client;

const BIN: &str = env!("CARGO_BIN_EXE_minimail");

/// A tmux session running one program; killed when dropped.
struct Tmux(String);

impl Tmux {
    fn start(name: &str, cmd: &str) -> Tmux {
        let ok = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                name,
                "-x",
                "160",
                "-y",
                "40",
                cmd,
            ])
            .status()
            .expect("tmux must be installed for this test");
        assert!(ok.success(), "tmux new-session failed");
        Tmux(name.to_owned())
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.0])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Wait (at most 20 s) until the screen satisfies `ok`; the last screen.
    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "neomutt never showed {what}:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn keys(&self, keys: &str) {
        let _ = Command::new("tmux")
            .args(["send-keys", "-t", &self.0, keys])
            .status();
    }

    /// Quit neomutt (`q`) and wait for the session to end.
    fn quit(self) {
        self.keys("q");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let alive = Command::new("tmux")
                .args(["has-session", "-t", &self.0])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !alive {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .stderr(Stdio::null())
            .status();
    }
}

fn append(c: &mut Client, subject: &str) {
    let m = format!(
        "From: Alice <alice@example.org>\r\nTo: u@localhost\r\nSubject: {subject}\r\n\
         Date: Thu, 1 Jan 2026 10:00:00 +0000\r\nMessage-ID: <{subject}@example.org>\r\n\r\nhi\r\n"
    );
    c.ok(&format!("APPEND INBOX {{{}+}}\r\n{m}", m.len()));
}

/// The line of the index that shows `subject`.
fn row<'a>(screen: &'a str, subject: &str) -> Option<&'a str> {
    screen.lines().find(|l| l.contains(subject))
}

#[test]
fn neomutt_lists_the_inbox_and_resynchronises_with_qresync() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let mut add = Command::new(BIN)
        .args(["user", "add", "u@localhost", "--password-stdin", "--db"])
        .arg(&db)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        add.stdin.take().unwrap().write_all(b"neo-pw\n").unwrap();
    }
    assert!(add.wait().unwrap().success());
    // Our own start, to keep the --trace log: it shows what neomutt sent.
    let log = dir.path().join("trace.log");
    let mut up = Command::new(BIN)
        .args([
            "up",
            "--smtp",
            "127.0.0.1:0",
            "--imap",
            "127.0.0.1:0",
            "--submission",
            "127.0.0.1:0",
            "--sieve",
            "127.0.0.1:0",
            "--trace",
            "--db",
        ])
        .arg(&db)
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let imap = wait_up(&log);
    let mut c = Client::connect(imap.parse().unwrap());
    c.login("u@localhost", "neo-pw");
    append(&mut c, "first-subject");

    let rc = dir.path().join("neomuttrc");
    let hcache = dir.path().join("hcache");
    fs::write(
        &rc,
        format!(
            "set folder=\"imap://u%40localhost@{imap}/\"\nset spoolfile=\"+INBOX\"\n\
             set imap_pass=\"neo-pw\"\nset ssl_starttls=yes\nset ssl_force_tls=yes\n\
             set certificate_file=\"{}\"\n\
             set imap_condstore=yes\nset imap_qresync=yes\nset header_cache=\"{}\"\n\
             set mail_check=1\nset timeout=1\nset sort=date\nset record=\"\"\n\
             set postponed=\"\"\nset mbox=\"\"\nset move=no\nset quit=yes\n",
            dir.path().join("m.db.cert.pem").display(),
            hcache.display()
        ),
    )
    .unwrap();
    let cmd = format!("neomutt -n -F {}", rc.display());
    let which = Command::new("neomutt").arg("-v").output();
    assert!(
        which.is_ok_and(|o| o.status.success()),
        "neomutt must be installed for this test"
    );
    let name = format!("mm-neomutt-{}", std::process::id());

    let t = Tmux::start(&name, &cmd);
    t.wait_for("the first message", |s| row(s, "first-subject").is_some());
    t.quit();
    assert!(hcache.exists(), "neomutt kept no header cache");

    // While neomutt is away: a new message, and a flag on the first one.
    append(&mut c, "second-subject");
    c.ok("SELECT INBOX");
    c.ok("STORE 1 +FLAGS (\\Flagged)");
    c.ok("LOGOUT");

    let t = Tmux::start(&name, &cmd);
    let s = t.wait_for("the new message and the flag", |s| {
        row(s, "second-subject").is_some()
            && row(s, "first-subject").is_some_and(|r| r.contains('!'))
    });
    t.quit();
    assert!(
        row(&s, "first-subject").is_some_and(|r| r.contains('!')),
        "{s}"
    );

    let trace = fs::read_to_string(&log).unwrap();
    let _ = Command::new("kill").arg(up.id().to_string()).status();
    let _ = up.wait();
    assert!(
        trace.contains(" STARTTLS"),
        "neomutt did not use STARTTLS:\n{trace}"
    );
    assert!(
        trace.contains("ENABLE QRESYNC"),
        "neomutt did not enable QRESYNC:\n{trace}"
    );
    // Its second visit resynchronised from its header cache with QRESYNC's
    // UID FETCH ... (CHANGEDSINCE m VANISHED) (RFC 7162 §3.2.6) instead of
    // fetching every message's flags again.
    assert!(
        trace
            .lines()
            .any(|l| l.contains(" C: ") && l.contains("CHANGEDSINCE") && l.contains("VANISHED)")),
        "neomutt did not resynchronise with CHANGEDSINCE/VANISHED:\n{trace}"
    );
}

/// Wait for `minimail up`'s start-up line in `log`; the IMAP address.
fn wait_up(log: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = fs::read_to_string(log).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.starts_with("minimail up: ")) {
            return testkit::server::addr_of(line, "imap");
        }
        assert!(
            Instant::now() < deadline,
            "minimail up did not start:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
