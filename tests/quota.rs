//! Per-user quotas (RFC 9208 limits, enforced by the store), the way a
//! user meets them: `minimail user quota` sets and shows them; SMTP
//! (Python's smtplib) gets `452 4.2.2` for a full mailbox and `552 5.2.2`
//! for a message larger than the quota; 16 concurrent deliveries never
//! together overshoot the limit and every one acknowledged is stored; a
//! recipient over quota beside one with room is left out with a DSN to
//! the sender; IMAP APPEND and COPY get `NO [OVERQUOTA]`, and room freed
//! by EXPUNGE is usable again at once.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use testkit::process::KillOnDrop as Up;

const BIN: &str = env!("CARGO_BIN_EXE_minimail");

fn minimail(db: &Path, args: &[&str], input: &str) -> Output {
    testkit::process::with_db(BIN, db, args, input)
}

fn ok(db: &Path, args: &[&str], input: &str) -> String {
    testkit::process::with_db_ok(BIN, db, args, input)
}

/// Send `count` messages of about `size` octets from `from` to `to` (a
/// comma list) with smtplib, `parallel` at once; one line per message:
/// `ok` or the error smtplib raised.
fn send(
    smtp: &str,
    from: &str,
    to: &str,
    size: usize,
    count: usize,
    parallel: bool,
) -> Vec<String> {
    let (h, p) = smtp.rsplit_once(':').unwrap();
    let script = format!(
        "import smtplib, threading\n\
         res = []\n\
         def one(i):\n\
         \x20   msg = ('From: {from}\\nSubject: m%d\\n\\n' % i) + ('x' * 70 + '\\n') * ({size} // 71)\n\
         \x20   try:\n\
         \x20       s = smtplib.SMTP('{h}', {p}, local_hostname='client.test')\n\
         \x20       s.sendmail('{from}', '{to}'.split(','), msg.encode())\n\
         \x20       s.quit()\n\
         \x20       res.append('ok')\n\
         \x20   except smtplib.SMTPException as e:\n\
         \x20       res.append('error %r' % (e,))\n\
         ts = [threading.Thread(target=one, args=(i,)) for i in range({count})]\n\
         for t in ts:\n\
         \x20   t.start()\n\
         \x20   {join}\n\
         for t in ts:\n\
         \x20   t.join()\n\
         print('\\n'.join(res))\n",
        join = if parallel { "pass" } else { "t.join()" },
    );
    let out = testkit::process::run(Command::new("python3").args(["-c", &script]), b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `user quota USER` parsed: (octets used, messages used) from its line.
fn usage(db: &Path, user: &str) -> String {
    ok(db, &["user", "quota", user], "")
}

fn messages(imap: SocketAddr, user: &str, mailbox: &str) -> usize {
    testkit::imap::fetch_all(imap, user, "pw", mailbox).len()
}

fn start(db: &Path) -> (Up, String, SocketAddr) {
    let (child, line, _) = testkit::server::minimail_up(BIN, db, &["--no-outbound"], &[]);
    let smtp = testkit::server::addr_of(&line, "smtp");
    let imap: SocketAddr = testkit::server::addr_of(&line, "imap").parse().unwrap();
    (Up(child), smtp, imap)
}

#[test]
fn quota_command_sets_shows_and_refuses_bad_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    ok(
        &db,
        &["user", "add", "bob@localhost", "--password-stdin"],
        "pw\n",
    );
    assert_eq!(
        usage(&db, "bob@localhost"),
        "bob@localhost: storage 0 B (no limit), messages 0 (no limit)\n"
    );
    assert_eq!(
        ok(
            &db,
            &["user", "quota", "bob@localhost", "1G", "--messages", "100"],
            ""
        ),
        "bob@localhost: storage 0 B of 1 GiB (0%), messages 0 of 100 (0%)\n"
    );
    // --messages alone keeps the storage limit; `none` clears.
    assert_eq!(
        ok(
            &db,
            &["user", "quota", "bob@localhost", "--messages", "none"],
            ""
        ),
        "bob@localhost: storage 0 B of 1 GiB (0%), messages 0 (no limit)\n"
    );
    for bad in ["1X", "lots", "5.5G"] {
        let out = minimail(&db, &["user", "quota", "bob@localhost", bad], "");
        assert!(!out.status.success(), "{bad}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("is not a size"),
            "{out:?}"
        );
    }
    let out = minimail(&db, &["user", "quota", "nobody@localhost", "1M"], "");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such user"));
}

#[test]
fn smtp_answers_452_and_552_and_concurrent_deliveries_never_overshoot() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    for u in ["bob@localhost", "carol@localhost", "alice@localhost"] {
        ok(&db, &["user", "add", u, "--password-stdin"], "pw\n");
    }
    ok(&db, &["user", "quota", "bob@localhost", "10K"], "");
    let (_up, smtp, imap) = start(&db);

    // 16 at once, about 1.4 KiB each with the trace header: only some fit.
    let res = send(&smtp, "carol@localhost", "bob@localhost", 1000, 16, true);
    assert_eq!(res.len(), 16, "{res:?}");
    let accepted = res.iter().filter(|r| *r == "ok").count();
    assert!((1..16).contains(&accepted), "{res:?}");
    for r in res.iter().filter(|r| *r != "ok") {
        assert!(r.contains("452") && r.contains("4.2.2"), "{r}");
    }
    // Every acknowledged message is there, and the limit holds.
    assert_eq!(messages(imap, "bob@localhost", "INBOX"), accepted);
    let shown = usage(&db, "bob@localhost");
    assert!(
        shown.contains(&format!("messages {accepted} (no limit)")),
        "{shown}"
    );
    let used: f64 = shown
        .split("storage ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(used <= 10.0, "{shown}");

    // Larger than the whole quota: 552 5.2.2 (at RCPT, from SIZE=).
    let big = send(&smtp, "carol@localhost", "bob@localhost", 20_000, 1, false);
    assert!(
        big[0].contains("552") && big[0].contains("5.2.2"),
        "{big:?}"
    );

    // Full, beside a recipient with room: alice gets it, bob is left out
    // and carol (the sender) gets a DSN naming bob.
    ok(&db, &["user", "quota", "bob@localhost", "1K"], "");
    let res = send(
        &smtp,
        "carol@localhost",
        "bob@localhost,alice@localhost",
        500,
        1,
        false,
    );
    assert_eq!(res, ["ok"]);
    assert_eq!(messages(imap, "alice@localhost", "INBOX"), 1);
    assert_eq!(messages(imap, "bob@localhost", "INBOX"), accepted);
    // Full and alone: refused, temporary.
    let res = send(&smtp, "carol@localhost", "bob@localhost", 500, 1, false);
    assert!(
        res[0].contains("452") && res[0].contains("4.2.2"),
        "{res:?}"
    );
}

#[test]
fn a_full_recipient_beside_others_is_left_out_with_a_dsn() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    for u in ["bob@localhost", "carol@localhost", "alice@localhost"] {
        ok(&db, &["user", "add", u, "--password-stdin"], "pw\n");
    }
    // Room for one message of ~1.3 KiB: the RCPT check (one octet) passes,
    // the commit finds no room for the second.
    ok(&db, &["user", "quota", "bob@localhost", "2K"], "");
    let (_up, smtp, imap) = start(&db);
    assert_eq!(
        send(&smtp, "carol@localhost", "bob@localhost", 1000, 1, false),
        ["ok"]
    );
    // smtplib sends SIZE=; a raw session without it reaches the commit.
    let mut c = testkit::lines::Conn::open(smtp.as_str(), Duration::from_secs(10)).unwrap();
    c.until("220 ").unwrap();
    c.say("EHLO client.test", "250 ");
    assert!(c.say("MAIL FROM:<carol@localhost>", "250 ").contains("250"));
    assert!(c.say("RCPT TO:<bob@localhost>", "250 ").contains("250"));
    assert!(c.say("RCPT TO:<alice@localhost>", "250 ").contains("250"));
    c.say("DATA", "354 ");
    let body = format!("Subject: both\r\n\r\n{}\r\n.", "y".repeat(1500));
    let reply = c.say(&body, "250 ");
    assert!(reply.contains("250"), "{reply}");
    assert_eq!(messages(imap, "alice@localhost", "INBOX"), 1);
    assert_eq!(messages(imap, "bob@localhost", "INBOX"), 1);
    let dsn = testkit::imap::fetch_all_text(imap, "carol@localhost", "pw", "INBOX");
    assert_eq!(dsn.len(), 1, "{dsn:?}");
    assert!(dsn[0].contains("Action: failed"), "{}", dsn[0]);
    assert!(dsn[0].contains("Status: 5.2.2"), "{}", dsn[0]);
    assert!(dsn[0].contains("bob@localhost"), "{}", dsn[0]);
    // Alone and without SIZE=: 452 4.2.2 after the data, nothing stored.
    c.say("MAIL FROM:<carol@localhost>", "250 ");
    c.say("RCPT TO:<bob@localhost>", "250 ");
    c.say("DATA", "354 ");
    let reply = c.say(&body, "452 ");
    assert!(reply.contains("452 4.2.2"), "{reply}");
    assert_eq!(messages(imap, "bob@localhost", "INBOX"), 1);
}

#[test]
fn imap_append_and_copy_get_overquota_and_expunge_frees_room() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    ok(
        &db,
        &["user", "add", "bob@localhost", "--password-stdin"],
        "pw\n",
    );
    ok(
        &db,
        &["user", "quota", "bob@localhost", "none", "--messages", "2"],
        "",
    );
    let (_up, _smtp, imap) = start(&db);
    let mut c = testkit::imap::Client::connect(imap);
    c.login("bob@localhost", "pw");
    let msg = "Subject: hi\r\n\r\nhello\r\n";
    let append = format!("APPEND INBOX {{{}+}}\r\n{msg}", msg.len());
    c.ok(&append);
    c.ok(&append);
    let r = c.cmd(&append);
    assert!(r.last().unwrap().contains("NO [OVERQUOTA]"), "{r:?}");
    c.ok("SELECT INBOX");
    let r = c.cmd("COPY 1 Trash");
    assert!(r.last().unwrap().contains("NO [OVERQUOTA]"), "{r:?}");
    // MOVE never changes usage: allowed.
    c.ok("MOVE 2 Trash");
    c.ok("STORE 1 +FLAGS (\\Deleted)");
    c.ok("EXPUNGE");
    c.ok(&append);
    assert!(usage(&db, "bob@localhost").contains("messages 2 of 2 (100%)"));
    let r = c.cmd(&append);
    assert!(r.last().unwrap().contains("NO [OVERQUOTA]"), "{r:?}");
    c.ok("LOGOUT");
}

#[test]
fn getquota_getquotaroot_setquota_and_status_deleted_storage() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    ok(
        &db,
        &["user", "add", "bob@localhost", "--password-stdin"],
        "pw\n",
    );
    let (_up, _smtp, imap) = start(&db);
    let mut c = testkit::imap::Client::connect(imap);
    c.login("bob@localhost", "pw");
    let caps = c.ok("CAPABILITY");
    assert!(
        caps[0].contains(" QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE"),
        "{caps:?}"
    );
    // No limits: no quota root (RFC 9208 §4.2.2), GETQUOTA finds none.
    let r = c.ok("GETQUOTAROOT INBOX");
    assert_eq!(r[0], "* QUOTAROOT \"INBOX\"");
    let r = c.cmd("GETQUOTA \"\"");
    assert!(r.last().unwrap().contains("NO [NONEXISTENT]"), "{r:?}");
    let msg = "Subject: hi\r\n\r\n".to_owned() + &"z".repeat(3000) + "\r\n";
    let append = format!("APPEND Trash (\\Deleted) {{{}+}}\r\n{msg}", msg.len());
    c.ok(&append);
    ok(
        &db,
        &["user", "quota", "bob@localhost", "1M", "--messages", "10"],
        "",
    );
    let r = c.ok("GETQUOTAROOT Trash");
    assert_eq!(r[0], "* QUOTAROOT \"Trash\" \"\"");
    assert_eq!(r[1], "* QUOTA \"\" (STORAGE 2 1024 MESSAGE 1 10)");
    let r = c.ok("GETQUOTA \"\"");
    assert_eq!(r[0], "* QUOTA \"\" (STORAGE 2 1024 MESSAGE 1 10)");
    let r = c.cmd("GETQUOTAROOT Nowhere");
    assert!(r.last().unwrap().contains("NO [NONEXISTENT]"), "{r:?}");
    let r = c.cmd("SETQUOTA \"\" (STORAGE 99999)");
    assert!(r.last().unwrap().contains("NO [NOPERM]"), "{r:?}");
    let r = c.cmd("SETQUOTA \"\" STORAGE");
    assert!(r.last().unwrap().contains("BAD"), "{r:?}");
    // DELETED-STORAGE: what EXPUNGE would free, in KiB, rounded up.
    let r = c.ok("STATUS Trash (DELETED DELETED-STORAGE)");
    assert_eq!(r[0], "* STATUS \"Trash\" (DELETED 1 DELETED-STORAGE 3)");
    c.ok("LOGOUT");

    // Python's imapclient reads the same through its own parser.
    let (h, p) = (imap.ip(), imap.port());
    let script = format!(
        "import imapclient\n\
         c = imapclient.IMAPClient('{h}', port={p}, ssl=False)\n\
         c.login('bob@localhost', 'pw')\n\
         roots, quotas = c.get_quota_root('INBOX')\n\
         print(roots.quota_roots)\n\
         for q in quotas: print(q.quota_root, q.resource, q.usage, q.limit)\n\
         c.logout()\n"
    );
    let out = testkit::process::run(Command::new("python3").args(["-c", &script]), b"");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "['']\n STORAGE 2 1024\n MESSAGE 1 10\n"
    );
}

#[test]
fn sendmail_refuses_a_full_mailbox_with_tempfail_and_a_too_big_message_with_69() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    ok(
        &db,
        &["user", "add", "bob@localhost", "--password-stdin"],
        "pw\n",
    );
    ok(
        &db,
        &["user", "quota", "bob@localhost", "none", "--messages", "1"],
        "",
    );
    let msg = "From: cron@localhost\nSubject: job\n\nok\n";
    ok(&db, &["sendmail", "bob@localhost"], msg);
    let out = minimail(&db, &["sendmail", "bob@localhost"], msg);
    assert_eq!(out.status.code(), Some(75), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("mailbox is full"));
    ok(
        &db,
        &["user", "quota", "bob@localhost", "1K", "--messages", "none"],
        "",
    );
    let big = format!("Subject: big\n\n{}\n", "x".repeat(4000));
    let out = minimail(&db, &["sendmail", "bob@localhost"], &big);
    assert_eq!(out.status.code(), Some(69), "{out:?}");
    assert!(usage(&db, "bob@localhost").contains("messages 1 (no limit)"));
}
