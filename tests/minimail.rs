//! The `minimail` binary end to end, as a user runs it: `user add/list/
//! passwd/del` on a fresh store, `up` on ephemeral ports, a message sent over
//! SMTP and read back over IMAP from the other server in the same process,
//! SIGTERM ending it cleanly, and the start-up errors the README promises.

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use testkit::lines::Conn;
use testkit::process::have;
use testkit::server::{addr_of, sigterm};

const BIN: &str = env!("CARGO_BIN_EXE_minimail");

fn minimail(db: &Path, args: &[&str], stdin: &str) -> (i32, String, String) {
    // The child may exit (e.g. on a bad address) before reading its stdin.
    let out = testkit::process::run(
        Command::new(BIN).args(args).arg("--db").arg(db),
        stdin.as_bytes(),
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Start `minimail up` on port 0 and read the ports from its start-up line
/// ("minimail up: smtp on 127.0.0.1:P, imap on 127.0.0.1:Q, store ...").
fn up(db: &Path) -> (Child, String, String) {
    let (child, line, _) = up_env(db, &[], &[]);
    let (smtp, imap) = (addr_of(&line, "smtp"), addr_of(&line, "imap"));
    (child, smtp, imap)
}

/// A line connection to `addr` that waits up to 20 s for each read.
fn connect(addr: &str) -> Conn {
    Conn::open(addr, Duration::from_secs(20)).unwrap()
}

#[test]
fn user_admin_commands_manage_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let (code, out, _) = minimail(
        &db,
        &["user", "add", "Alice@LOCALHOST", "--password-stdin"],
        "pw1\n",
    );
    assert_eq!(code, 0);
    assert!(
        out.contains("alice@localhost") || out.contains("Alice@localhost"),
        "{out}"
    );
    let (code, _, err) = minimail(
        &db,
        &["user", "add", "alice@localhost", "--password-stdin"],
        "x\n",
    );
    assert_ne!(code, 0, "duplicate user must fail");
    assert!(err.contains("exists"), "{err}");
    let (code, _, err) = minimail(
        &db,
        &["user", "add", "not-an-address", "--password-stdin"],
        "x\n",
    );
    assert_ne!(code, 0);
    assert!(err.contains("not an address"), "{err}");
    minimail(
        &db,
        &["user", "add", "bob@localhost", "--password-stdin"],
        "pw2\n",
    );
    let (code, out, _) = minimail(&db, &["user", "list"], "");
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 2, "{out}");
    let (code, _, _) = minimail(
        &db,
        &["user", "passwd", "bob@localhost", "--password-stdin"],
        "new\n",
    );
    assert_eq!(code, 0);
    let (code, _, err) = minimail(
        &db,
        &["user", "passwd", "carol@localhost", "--password-stdin"],
        "x\n",
    );
    assert_ne!(code, 0);
    assert!(err.contains("no such user"), "{err}");
    let (code, _, _) = minimail(&db, &["user", "del", "bob@localhost"], "");
    assert_eq!(code, 0);
    let (_, out, _) = minimail(&db, &["user", "list"], "");
    assert!(!out.contains("bob@"), "{out}");
    let (code, _, _) = minimail(&db, &["user", "del", "bob@localhost"], "");
    assert_ne!(code, 0, "deleting a missing user fails");
}

#[test]
fn mail_sent_over_smtp_is_read_over_imap_and_sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    minimail(
        &db,
        &["user", "add", "bob@localhost", "--password-stdin"],
        "s3cret\n",
    );
    let (mut child, smtp, imap) = up(&db);

    let mut s = connect(&smtp);
    assert!(s.line().unwrap().starts_with("220 "));
    s.say("EHLO test.example", "250 ");
    s.say("MAIL FROM:<alice@example.org>", "250 ");
    s.say("RCPT TO:<Bob+lists@localhost>", "250 ");
    s.say("DATA", "354 ");
    let reply = s.say(
        "Subject: round trip\r\n\r\nline one\r\n..dot line\r\n.",
        "250 ",
    );
    assert!(reply.starts_with("250 "), "{reply}");
    s.say("QUIT", "221 ");

    let mut i = connect(&imap);
    assert!(i.line().unwrap().starts_with("* OK"));
    assert!(i.say("a LOGIN bob@localhost s3cret", "a ").contains("a OK"));
    let sel = i.say("b SELECT INBOX", "b ");
    assert!(sel.contains("* 1 EXISTS"), "{sel}");
    let f = i.say("c FETCH 1 BODY.PEEK[]", "c ");
    assert!(f.contains("Return-Path: <alice@example.org>"), "{f}");
    assert!(f.contains("Received: from test.example"), "{f}");
    assert!(
        f.contains("Subject: round trip\r\n\r\nline one\r\n.dot line\r\n"),
        "{f}"
    );
    i.say("d LOGOUT", "d ");

    sigterm(&child);
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn unopenable_store_and_busy_port_fail_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = minimail(&dir.path().join("no/such/dir/m.db"), &["up"], "");
    assert_ne!(code, 0);
    assert!(err.contains("store"), "{err}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    let out = Command::new(BIN)
        .args(["up", "--imap", "127.0.0.1:0", "--submission", "127.0.0.1:0"])
        .args(["--sieve", "127.0.0.1:0"])
        .args(["--smtp", &port, "--db"])
        .arg(dir.path().join("m.db"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&port), "{err}");
}

#[test]
fn cert_makes_a_self_signed_pair_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tls");
    let run = |extra: &[&str]| {
        Command::new(BIN)
            .args(["cert", "--out"])
            .arg(&out)
            .args(extra)
            .output()
            .unwrap()
    };
    let o = run(&["--name", "mail.example", "--name", "127.0.0.1"]);
    assert!(o.status.success(), "{o:?}");
    let cert = std::fs::read_to_string(out.join("cert.pem")).unwrap();
    let key = std::fs::read_to_string(out.join("key.pem")).unwrap();
    assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(key.contains("PRIVATE KEY"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(out.join("key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "key readable by others: {mode:o}");
    let again = run(&[]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert_eq!(std::fs::read_to_string(out.join("cert.pem")).unwrap(), cert);
    assert!(run(&["--force"]).status.success());
    assert_ne!(std::fs::read_to_string(out.join("cert.pem")).unwrap(), cert);
}

#[test]
fn implicit_tls_without_any_tls_is_a_clear_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = minimail(
        &dir.path().join("m.db"),
        &[
            "up",
            "--smtp",
            "127.0.0.1:0",
            "--imap",
            "127.0.0.1:0",
            "--submission",
            "127.0.0.1:0",
            "--sieve",
            "127.0.0.1:0",
            "--smtps",
            "127.0.0.1:0",
            "--no-tls",
        ],
        "",
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("--tls-cert") && err.contains("--no-tls"),
        "{err}"
    );
}

#[test]
fn tls_is_on_by_default_with_a_self_signed_pair_beside_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let (mut child, line, _) = up_env(&db, &["--imaps", "127.0.0.1:0"], &[]);
    let cert = dir.path().join("m.db.cert.pem");
    assert!(
        line.contains(&format!("(TLS on, self-signed {})", cert.display())),
        "{line}"
    );
    let key = dir.path().join("m.db.key.pem");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the key must not be readable by others");
    }
    // STARTTLS is offered on the plain port, and implicit TLS works with a
    // client told to trust the made certificate.
    let smtp = addr_of(&line, "smtp");
    let mut s = std::net::TcpStream::connect(&smtp).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = std::io::BufReader::new(s.try_clone().unwrap());
    let mut l = String::new();
    r.read_line(&mut l).unwrap();
    s.write_all(b"EHLO c.example\r\n").unwrap();
    let mut ehlo = String::new();
    loop {
        l.clear();
        r.read_line(&mut l).unwrap();
        ehlo.push_str(&l);
        if !l.starts_with("250-") {
            break;
        }
    }
    assert!(
        ehlo.contains("250-STARTTLS") || ehlo.contains("250 STARTTLS"),
        "{ehlo}"
    );
    let pem = std::fs::read_to_string(&cert).unwrap();
    let tcp = std::net::TcpStream::connect(addr_of(&line, "imaps")).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut tls = std::io::BufReader::new(testkit::tls::client_stream(
        netloop::testing::tls_client_config(&pem),
        "localhost",
        tcp,
    ));
    l.clear();
    tls.read_line(&mut l).unwrap();
    assert!(l.starts_with("* OK"), "{l}");
    sigterm(&child);
    child.wait().unwrap();
    // The next start reuses the pair (clients that accepted it keep it).
    let (mut child, line, _) = up_env(&db, &[], &[]);
    assert_eq!(std::fs::read_to_string(&cert).unwrap(), pem);
    assert!(line.contains("self-signed"), "{line}");
    sigterm(&child);
    child.wait().unwrap();
    // --no-tls: none at all.
    let (mut child, line, _) = up_env(&db, &["--no-tls"], &[]);
    assert!(!line.contains("TLS on"), "{line}");
    sigterm(&child);
    child.wait().unwrap();
}

#[test]
fn curl_sends_over_smtps_and_reads_over_imaps_with_minimail_cert() {
    if !have("curl", "--version") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    minimail(
        &db,
        &["user", "add", "bob@localhost", "--password-stdin"],
        "s3cret\n",
    );
    let o = Command::new(BIN)
        .args(["cert", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let (mut child, line, _) = up_env(
        &db,
        &[
            "--smtps",
            "127.0.0.1:0",
            "--imaps",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[],
    );
    let smtps = addr_of(&line, "smtps");
    let imaps = addr_of(&line, "imaps");
    let imap = addr_of(&line, "imap");
    let msg = dir.path().join("msg.txt");
    std::fs::write(
        &msg,
        "From: bob@localhost\r\nTo: bob@localhost\r\nSubject: over tls\r\n\r\nsecret body\r\n",
    )
    .unwrap();
    let port = |a: &str| a.rsplit(':').next().unwrap().to_string();
    let send = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(&cert)
        .args(["--user", "bob@localhost:s3cret"])
        .args([
            "--mail-from",
            "bob@localhost",
            "--mail-rcpt",
            "bob@localhost",
        ])
        .arg("--upload-file")
        .arg(&msg)
        .arg(format!("smtps://localhost:{}", port(&smtps)))
        .output()
        .unwrap();
    assert!(send.status.success(), "curl smtps: {send:?}");
    let read = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(&cert)
        .args(["--user", "bob@localhost:s3cret"])
        .arg(format!("imaps://localhost:{}/INBOX;UID=1", port(&imaps)))
        .output()
        .unwrap();
    assert!(read.status.success(), "curl imaps: {read:?}");
    let body = String::from_utf8_lossy(&read.stdout);
    assert!(body.contains("Subject: over tls"), "{body}");
    assert!(body.contains("secret body"), "{body}");
    // Same store, same message, over STARTTLS on the plain port.
    let read = Command::new("curl")
        .args(["-sS", "--ssl-reqd", "--cacert"])
        .arg(&cert)
        .args(["--user", "bob@localhost:s3cret"])
        .arg(format!("imap://localhost:{}/INBOX;UID=1", port(&imap)))
        .output()
        .unwrap();
    assert!(read.status.success(), "curl imap STARTTLS: {read:?}");
    assert!(String::from_utf8_lossy(&read.stdout).contains("secret body"));
    sigterm(&child);
    assert!(child.wait().unwrap().success());
}

/// `minimail up` on ephemeral ports with extra arguments and environment;
/// returns the child, its start-up line and the log lines before it.
fn up_env(db: &Path, extra: &[&str], env: &[(&str, &str)]) -> (Child, String, String) {
    testkit::server::minimail_up(BIN, db, extra, env)
}

/// A message of about `kib` KiB whose body lines hold `marker`.
fn big_message(kib: usize, marker: &str) -> Vec<u8> {
    testkit::store::big_message("Subject: big\r\n\r\n", kib, marker)
}

/// EHLO, MAIL, RCPT bob@localhost, DATA with `msg`: the final reply.
fn send_over_smtp(addr: &str, msg: &[u8]) -> String {
    let mut s = connect(addr);
    assert!(s.line().unwrap().starts_with("220 "));
    s.say("EHLO test.example", "250 ");
    s.say("MAIL FROM:<alice@example.org>", "250 ");
    s.say("RCPT TO:<bob@localhost>", "250 ");
    s.say("DATA", "354 ");
    s.send(msg).unwrap();
    let reply = s.say(".", "");
    s.say("QUIT", "221 ");
    reply
}

/// IMAP APPEND of `msg` to INBOX (LITERAL+): the tagged reply.
fn append_over_imap(i: &mut Conn, tag: &str, msg: &[u8]) -> String {
    i.send(format!("{tag} APPEND INBOX {{{}+}}\r\n", msg.len()).as_bytes())
        .unwrap();
    i.send(msg).unwrap();
    i.say("", &format!("{tag} "))
}

#[test]
fn store_check_finds_broken_pages_and_up_refuses_them_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    minimail(
        &db,
        &["user", "add", "bob@localhost", "--password-stdin"],
        "s3cret\n",
    );
    let (code, out, err) = minimail(&db, &["store", "check"], "");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(": ok"), "{out}");
    let (code, _, err) = minimail(&dir.path().join("none.db"), &["store", "check"], "");
    assert_eq!(code, 2, "a missing file cannot be checked: {err}");
    assert!(!dir.path().join("none.db").exists(), "and is not created");

    let (mut child, line, _) = up_env(&db, &[], &[]);
    let reply = send_over_smtp(&addr_of(&line, "smtp"), &big_message(24, "broken-page-"));
    assert!(reply.starts_with("250 "), "{reply}");
    sigterm(&child);
    assert!(child.wait().unwrap().success());
    let n = testkit::store::wreck_pages_holding(&db, b"broken-page-broken-page-");
    assert!(n >= 2, "{n} pages wrecked");

    // The full check says so, with the way out.
    let (code, out, err) = minimail(&db, &["store", "check"], "");
    assert_eq!(code, 1, "{out}{err}");
    assert!(!out.trim().is_empty(), "the problems are listed");
    assert!(err.contains("DAMAGED") && err.contains(".recover"), "{err}");
    // The server does not start on it...
    let (code, _, err) = minimail(
        &db,
        &["up", "--smtp", "127.0.0.1:0", "--imap", "127.0.0.1:0"],
        "",
    );
    assert_eq!(code, 1, "{err}");
    for part in [
        db.to_str().unwrap(),
        "damaged",
        "minimail store check",
        "--allow-corrupt-store",
    ] {
        assert!(err.contains(part), "{part:?} missing from: {err}");
    }
    // ...unless told to; then the damage it meets stops all changes.
    let (mut child, line, before) = up_env(&db, &["--allow-corrupt-store"], &[]);
    assert!(before.contains("MAIL STORE DAMAGED"), "{before}");
    let mut i = connect(&addr_of(&line, "imap"));
    assert!(i.line().unwrap().starts_with("* OK"));
    assert!(i.say("a LOGIN bob@localhost s3cret", "a ").contains("a OK"));
    let sel = i.say("b SELECT INBOX", "b ");
    assert!(sel.contains("* 1 EXISTS"), "{sel}");
    let f = i.say("c FETCH 1 BODY.PEEK[]", "c ");
    assert!(f.contains("c NO [UNAVAILABLE]"), "{f}");
    let reply = send_over_smtp(&addr_of(&line, "smtp"), b"Subject: later\r\n\r\nhi\r\n");
    assert!(reply.starts_with("451 4.3.0 "), "{reply}");
    assert!(reply.contains("damaged"), "{reply}");
    let a = append_over_imap(&mut i, "d", b"Subject: x\r\n\r\ny\r\n");
    assert!(a.contains("d NO [UNAVAILABLE]"), "{a}");
    let st = i.say("e STATUS INBOX (MESSAGES)", "e ");
    assert!(st.contains("MESSAGES 1") && st.contains("e OK"), "{st}");
    sigterm(&child);
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_full_store_answers_452_4_3_1_over_smtp_and_overquota_to_append() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    minimail(
        &db,
        &["user", "add", "bob@localhost", "--password-stdin"],
        "s3cret\n",
    );
    // A page limit below the file's size: no growth, as on a full disk.
    let (mut child, line, _) = up_env(&db, &[], &[("MINIMAIL_MAX_PAGES", "1")]);
    let reply = send_over_smtp(&addr_of(&line, "smtp"), &big_message(300, "full"));
    assert!(reply.starts_with("452 4.3.1 "), "{reply}");
    let mut i = connect(&addr_of(&line, "imap"));
    assert!(i.line().unwrap().starts_with("* OK"));
    assert!(i.say("a LOGIN bob@localhost s3cret", "a ").contains("a OK"));
    let a = append_over_imap(&mut i, "b", &big_message(300, "full"));
    assert!(a.contains("b NO [OVERQUOTA] Not enough disk space"), "{a}");
    let sel = i.say("c SELECT INBOX", "c ");
    assert!(sel.contains("* 0 EXISTS") && sel.contains("c OK"), "{sel}");
    sigterm(&child);
    assert!(child.wait().unwrap().success());
}

/// Unmounts on drop.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_real_full_file_system_answers_452_4_3_1_and_overquota() {
    let dir = tempfile::tempdir().unwrap();
    let fs = dir.path().join("fs");
    std::fs::create_dir(&fs).unwrap();
    let mount = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&fs)
        .stderr(Stdio::piped())
        .output();
    match mount {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            eprintln!(
                "skipped: cannot mount a 2 MiB tmpfs (needs root): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return;
        }
        Err(e) => {
            eprintln!("skipped: cannot run mount: {e}");
            return;
        }
    }
    let _mounted = Mounted(fs.clone());
    let db = fs.join("m.db");
    minimail(
        &db,
        &["user", "add", "bob@localhost", "--password-stdin"],
        "s3cret\n",
    );
    let (mut child, line, _) = up_env(&db, &[], &[]);
    let smtp = addr_of(&line, "smtp");
    let reply = send_over_smtp(&smtp, b"Subject: small\r\n\r\nfits\r\n");
    assert!(reply.starts_with("250 "), "{reply}");
    let reply = send_over_smtp(&smtp, &big_message(3 * 1024, "enospc"));
    assert!(reply.starts_with("452 4.3.1 "), "{reply}");
    let mut i = connect(&addr_of(&line, "imap"));
    assert!(i.line().unwrap().starts_with("* OK"));
    assert!(i.say("a LOGIN bob@localhost s3cret", "a ").contains("a OK"));
    let a = append_over_imap(&mut i, "b", &big_message(3 * 1024, "enospc"));
    assert!(a.contains("b NO [OVERQUOTA] Not enough disk space"), "{a}");
    // What was stored before is served as before.
    let sel = i.say("c SELECT INBOX", "c ");
    assert!(sel.contains("* 1 EXISTS"), "{sel}");
    let f = i.say("d FETCH 1 BODY.PEEK[TEXT]", "d ");
    assert!(f.contains("fits") && f.contains("d OK"), "{f}");
    sigterm(&child);
    assert!(child.wait().unwrap().success());
}

/// `minimail up --idle-keepalive SECS` reaches the IMAP server: an idling
/// client hears `* OK Still here` after that much silence.
#[test]
fn idle_keepalive_flag_sets_the_keepalive_interval() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    minimail(
        &db,
        &["user", "add", "bob@localhost", "--password-stdin"],
        "s3cret\n",
    );
    let (mut child, line, _) = up_env(&db, &["--no-tls", "--idle-keepalive", "1"], &[]);
    let mut i = connect(&addr_of(&line, "imap"));
    assert!(i.line().unwrap().starts_with("* OK"));
    assert!(i.say("a LOGIN bob@localhost s3cret", "a ").contains("a OK"));
    i.say("b SELECT INBOX", "b ");
    assert_eq!(i.say("c IDLE", "+ "), "+ idling\r\n");
    assert_eq!(i.line().unwrap(), "* OK Still here\r\n");
    assert!(i.say("DONE", "c ").contains("c OK"));
    i.say("d LOGOUT", "d ");
    drop(i);
    sigterm(&child);
    assert!(child.wait().unwrap().success());
}
