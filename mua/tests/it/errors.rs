//! Every error path has its own exit code (see `mua --help`): 2 usage,
//! 3 cannot connect, 4 authentication refused, 5 no such mailbox/UID,
//! 6 refused by the server (with its reply).

use super::util::{run, Servers};

#[test]
fn unreachable_server_exits_3() {
    let s = Servers::start();
    // A port that was free a moment ago: nobody listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = run(
        s.mua("alice@localhost")
            .args(["--imap", &format!("127.0.0.1:{port}"), "list"]),
        None,
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("cannot connect"), "{}", out.stderr);
    let out = run(
        s.mua("alice@localhost")
            .env("MUA_SMTP", format!("127.0.0.1:{port}"))
            .args(["send", "--to", "bob@localhost", "--body", "x"]),
        None,
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
}

#[test]
fn wrong_password_exits_4() {
    let s = Servers::start();
    let out = run(
        s.mua("alice@localhost")
            .env("MUA_PASSWORD", "wrong")
            .arg("mailboxes"),
        None,
    );
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(
        out.stderr.contains("authentication refused"),
        "{}",
        out.stderr
    );
    let out = run(s.mua("nobody@localhost").arg("list"), None);
    assert_eq!(out.code, 4, "{}", out.stderr);
}

#[test]
fn missing_uid_or_mailbox_exits_5() {
    let s = Servers::start();
    s.ok(
        "alice@localhost",
        &[
            "send",
            "--to",
            "bob@localhost",
            "--subject",
            "one",
            "--body",
            "x",
        ],
        None,
    );
    let uid = s.newest_uid("bob@localhost", "INBOX");
    let missing = (uid + 100).to_string();
    for args in [
        vec!["read", missing.as_str()],
        vec!["read", "1", "--mailbox", "NoSuchBox"],
        vec!["list", "--mailbox", "NoSuchBox"],
        vec!["flag", missing.as_str(), "--seen"],
        vec!["delete", missing.as_str()],
        vec!["move", missing.as_str(), "--to", "Trash"],
        vec!["save", missing.as_str(), "1", "--out", "/dev/null"],
    ] {
        let out = s.run("bob@localhost", &args, None);
        assert_eq!(out.code, 5, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("not found"), "{args:?}: {}", out.stderr);
    }
    let uid = uid.to_string();
    let out = s.run("bob@localhost", &["move", &uid, "--to", "NoSuchBox"], None);
    assert_eq!(out.code, 5, "{}", out.stderr);
    // Nothing was lost on the failed move.
    assert_eq!(s.newest_uid("bob@localhost", "INBOX").to_string(), uid);
}

#[test]
fn refused_recipient_exits_6_and_shows_the_reply() {
    let s = Servers::start();
    let out = s.run(
        "alice@localhost",
        &["send", "--to", "nosuchuser@localhost", "--body", "x"],
        None,
    );
    assert_eq!(out.code, 6, "{}", out.stderr);
    assert!(
        out.stderr.contains("refused by server: 5"),
        "{}",
        out.stderr
    );
}

#[test]
fn usage_errors_exit_2() {
    let s = Servers::start();
    let out = run(
        s.mua("alice@localhost").env_remove("MUA_USER").arg("list"),
        None,
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("no user configured"), "{}", out.stderr);
    let out = s.run("alice@localhost", &["flag", "1"], None);
    assert_eq!(out.code, 2, "flag needs a change: {}", out.stderr);
    let out = s.run("alice@localhost", &["search", "since:yesterday"], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let out = s.run("alice@localhost", &["send", "--body", "x"], None);
    assert_eq!(out.code, 2, "no recipients: {}", out.stderr);
    let help = s.ok("alice@localhost", &["--help"], None);
    assert!(help.stdout.contains("Exit codes:"), "{}", help.stdout);
}

#[test]
fn config_file_supplies_settings_and_password_comes_from_stdin() {
    let s = Servers::start();
    let cfg = s.dir.path().join("config").join("mua");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(
        cfg.join("config.toml"),
        format!(
            "smtp = \"{}\"\nimap = \"{}\"\nuser = \"alice@localhost\"\n",
            s.smtp, s.imap
        ),
    )
    .unwrap();
    let mut cmd = s.mua("ignored");
    cmd.env_remove("MUA_SMTP")
        .env_remove("MUA_IMAP")
        .env_remove("MUA_USER")
        .env_remove("MUA_PASSWORD");
    let pw = format!("{}\n", super::util::PASSWORD);
    let out = run(
        cmd.args(["--password-stdin", "mailboxes"]),
        Some(pw.as_bytes()),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("INBOX"), "{}", out.stdout);
    // A flag beats the file: a dead IMAP port given on the command line wins.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = s.mua("ignored");
    cmd.env_remove("MUA_IMAP").env_remove("MUA_USER");
    let out = run(
        cmd.args(["--imap", &format!("127.0.0.1:{port}"), "mailboxes"]),
        None,
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
}
