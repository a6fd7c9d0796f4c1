//! `minimail sendmail`, and the binary run as `sendmail` through a symlink,
//! as cron, mailx, PHP's mail() and `git send-email --sendmail-cmd` use it:
//! the message reaches the local users' INBOX (read back over IMAP from a
//! running `minimail up` on the same store), `-t` reads and removes Bcc,
//! missing From/Date/Message-ID are added, and the exit codes follow
//! sysexits(3).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_minimail");

fn run(bin: &Path, db: &Path, args: &[&str], input: &str) -> (i32, String) {
    let mut child = Command::new(bin)
        .args(args)
        .env("MINIMAIL_DB", db)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn add_user(db: &Path, addr: &str) {
    let (code, err) = run(
        Path::new(BIN),
        db,
        &["user", "add", addr, "--password-stdin"],
        "pw\n",
    );
    assert_eq!(code, 0, "{err}");
}

/// The messages in `user`'s INBOX, over IMAP.
fn inbox(imap: &str, user: &str) -> Vec<String> {
    testkit::imap::fetch_all_text(imap.parse().unwrap(), user, "pw", "INBOX")
}

#[test]
fn sendmail_delivers_locally_with_the_command_lines_programs_use() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    for u in ["bob@localhost", "carol@localhost", "dave@localhost"] {
        add_user(&db, u);
    }
    let (mut up, line, _) = testkit::server::minimail_up(BIN, &db, &[], &[]);
    let imap = testkit::server::addr_of(&line, "imap");

    // git send-email --sendmail-cmd: -i -f SENDER -- RCPT...
    let msg = "From: Alice <alice@localhost>\nSubject: patch\nMessage-Id: <p1@x>\nDate: Mon, 1 Jan 2024 10:00:00 +0000\n\n.\nline after a dot\n";
    let (code, err) = run(
        Path::new(BIN),
        &db,
        &[
            "sendmail",
            "-i",
            "-f",
            "alice@localhost",
            "--",
            "bob@localhost",
        ],
        msg,
    );
    assert_eq!(code, 0, "{err}");
    let got = inbox(&imap, "bob@localhost");
    assert_eq!(got.len(), 1);
    assert!(
        got[0].starts_with("Return-Path: <alice@localhost>\r\n"),
        "{}",
        got[0]
    );
    assert!(got[0].contains("\r\nSubject: patch\r\n"), "{}", got[0]);
    assert!(
        got[0].ends_with("\r\n\r\n.\r\nline after a dot\r\n"),
        "{}",
        got[0]
    );
    assert_eq!(
        got[0].matches("Message-Id: <p1@x>").count(),
        1,
        "{}",
        got[0]
    );

    // Run as `sendmail` (a symlink), cron style: -FName -i -B8BITMIME -oem,
    // a bare user name; From, Date and Message-ID are added.
    let link = dir.path().join("sendmail");
    std::os::unix::fs::symlink(BIN, &link).unwrap();
    let (code, err) = run(
        &link,
        &db,
        &["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "carol"],
        "Subject: Cron <root@host> backup\n\nall done\n",
    );
    assert_eq!(code, 0, "{err}");
    let got = inbox(&imap, "carol@localhost");
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert!(m.contains("\r\nFrom: \"CronDaemon\" <"), "{m}");
    assert!(
        m.contains("\r\nDate: ") && m.contains("\r\nMessage-ID: <"),
        "{m}"
    );

    // -t: recipients from To/Cc/Bcc; Bcc removed; without -i a lone dot ends.
    let (code, err) = run(
        &link,
        &db,
        &["-t"],
        "To: bob@localhost\nBcc: dave@localhost\nSubject: t\n\nhi\n.\nnot sent\n",
    );
    assert_eq!(code, 0, "{err}");
    let dave = inbox(&imap, "dave@localhost");
    assert_eq!(dave.len(), 1);
    assert!(
        !dave[0].contains("Bcc:") && !dave[0].contains("not sent"),
        "{}",
        dave[0]
    );
    assert_eq!(inbox(&imap, "bob@localhost").len(), 2);

    // sysexits: unknown local user 67, another host 69, no recipient 65,
    // bad option 64; nothing delivered.
    let (code, err) = run(&link, &db, &["nobody@localhost"], "x\n");
    assert_eq!(code, 67, "{err}");
    assert!(err.contains("no such user"), "{err}");
    let (code, err) = run(&link, &db, &["someone@example.org"], "x\n");
    assert_eq!(code, 69, "{err}");
    let (code, _) = run(&link, &db, &[], "x\n");
    assert_eq!(code, 65);
    let (code, _) = run(&link, &db, &["-Z"], "x\n");
    assert_eq!(code, 64);
    assert_eq!(inbox(&imap, "bob@localhost").len(), 2);
    testkit::server::sigterm(&up);
    up.wait().unwrap();
}

/// The real programs, each told to use the `sendmail` symlink: s-nail
/// (mailx, `-S mta=`) and `git send-email --sendmail-cmd`. What they
/// send arrives as they sent it.
#[test]
fn real_mailx_and_git_send_email_use_the_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    // git send-email wants addresses with a dotted domain.
    for u in ["alice@example.org", "bob@example.org"] {
        add_user(&db, u);
    }
    let (mut up, line, _) =
        testkit::server::minimail_up(BIN, &db, &["--domain", "example.org"], &[]);
    let imap = testkit::server::addr_of(&line, "imap");
    let link = dir.path().join("sendmail");
    std::os::unix::fs::symlink(BIN, &link).unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();

    // mailx: no rc files (-:/), our sendmail as the MTA, wait for it.
    let mut mailx = Command::new("s-nail")
        .args([
            "-:/",
            "-S",
            &format!("mta={}", link.display()),
            "-S",
            "sendwait",
        ])
        .args([
            "-r",
            "alice@example.org",
            "-s",
            "from mailx",
            "bob@example.org",
        ])
        .env("MINIMAIL_DB", &db)
        .env("HOME", &home)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("s-nail must be installed (.ci/run installs it)");
    mailx
        .stdin
        .take()
        .unwrap()
        .write_all(b"Hello from mailx.\n")
        .unwrap();
    let out = mailx.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "s-nail: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // git send-email of a real format-patch.
    let repo = dir.path().join("repo");
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(&repo)
            .env("HOME", &home)
            .env("GIT_AUTHOR_NAME", "Alice")
            .env("GIT_AUTHOR_EMAIL", "alice@example.org")
            .env("GIT_COMMITTER_NAME", "Alice")
            .env("GIT_COMMITTER_EMAIL", "alice@example.org")
            .env("MINIMAIL_DB", &db)
            .stdin(Stdio::null())
            .output()
            .expect("git must be installed");
        assert!(
            out.status.success(),
            "git {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    std::fs::create_dir_all(&repo).unwrap();
    git(&["init", "-q"]);
    std::fs::write(repo.join("README"), "minimail\n").unwrap();
    git(&["add", "README"]);
    git(&["commit", "-q", "-m", "Add a README"]);
    let patch = git(&["format-patch", "-1", "-o", "out"]);
    git(&[
        "send-email",
        &format!("--sendmail-cmd={}", link.display()),
        "--from=Alice <alice@example.org>",
        "--to=bob@example.org",
        "--confirm=never",
        "--suppress-cc=all",
        "--quiet",
        patch.trim(),
    ]);

    let got = inbox(&imap, "bob@example.org");
    assert_eq!(got.len(), 2, "{got:?}");
    let mailx_msg = got
        .iter()
        .find(|m| m.contains("Subject: from mailx"))
        .unwrap();
    assert!(mailx_msg.contains("Hello from mailx."), "{mailx_msg}");
    assert!(
        mailx_msg.starts_with("Return-Path: <alice@example.org>\r\n"),
        "{mailx_msg}"
    );
    let patch_msg = got
        .iter()
        .find(|m| m.contains("Subject: [PATCH] Add a README"))
        .unwrap_or_else(|| panic!("no patch: {got:?}"));
    assert!(patch_msg.contains("+minimail\r\n"), "{patch_msg}");
    assert!(patch_msg.contains("\r\nMessage-ID: <") || patch_msg.contains("\r\nMessage-Id: <"));
    testkit::server::sigterm(&up);
    let _ = up.wait();
}

/// The recipient's active Sieve script runs on sendmail delivery too:
/// fileinto files the message (read back over IMAP), reject refuses it
/// with exit 69 and the reason, and nothing is stored.
#[test]
fn sendmail_runs_the_recipients_sieve_script() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    add_user(&db, "bob@localhost");
    let script = "require [\"fileinto\", \"mailbox\", \"reject\"];\n\
        if header :contains \"Subject\" \"[cron]\" { fileinto :create \"Cron\"; stop; }\n\
        if header :contains \"Subject\" \"buy now\" { reject \"No advertising.\"; stop; }\n";
    let (code, err) = run(
        Path::new(BIN),
        &db,
        &["sieve", "put", "bob@localhost", "rules", "-", "--activate"],
        script,
    );
    assert_eq!(code, 0, "{err}");
    let (code, err) = run(
        Path::new(BIN),
        &db,
        &["sendmail", "-i", "bob"],
        "Subject: [cron] backup done\n\nall fine\n",
    );
    assert_eq!(code, 0, "{err}");
    let (code, err) = run(
        Path::new(BIN),
        &db,
        &["sendmail", "-i", "bob"],
        "Subject: buy now\n\ncheap\n",
    );
    assert_eq!(code, 69, "{err}");
    assert!(err.contains("No advertising."), "{err}");
    let (code, err) = run(
        Path::new(BIN),
        &db,
        &["sendmail", "-i", "bob"],
        "Subject: hello\n\nhi\n",
    );
    assert_eq!(code, 0, "{err}");
    let (mut up, line, _) = testkit::server::minimail_up(BIN, &db, &[], &[]);
    let imap = testkit::server::addr_of(&line, "imap");
    let cron = testkit::imap::fetch_all_text(imap.parse().unwrap(), "bob@localhost", "pw", "Cron");
    assert_eq!(cron.len(), 1, "{cron:?}");
    assert!(cron[0].contains("Subject: [cron] backup done"), "{cron:?}");
    let inbox = inbox(&imap, "bob@localhost");
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert!(inbox[0].contains("Subject: hello"), "{inbox:?}");
    testkit::server::sigterm(&up);
    up.wait().unwrap();
}
