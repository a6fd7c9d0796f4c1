//! Aliases and catch-alls end to end: `minimail alias add|del|list` on
//! the command line, mail sent with Python's smtplib to a running
//! `minimail up`, read back over IMAP. An alias fans out to its users;
//! two aliases (and the user's own address) in one transaction reach a
//! user once; a catch-all takes the rest of its domain; targets elsewhere
//! go through the outbound queue to the relay host; loops are refused by
//! `alias add` with the chain; `minimail sendmail` resolves aliases too.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Output;
use std::time::Duration;
use testkit::scripted::{Reserved, Script};

use testkit::process::KillOnDrop as Up;

const BIN: &str = env!("CARGO_BIN_EXE_minimail");

fn minimail(db: &Path, args: &[&str], input: &str) -> Output {
    testkit::process::with_db(BIN, db, args, input)
}

fn ok(db: &Path, args: &[&str]) -> String {
    let out = minimail(db, args, "pw\n");
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Send one message with smtplib; returns what `sendmail` refused
/// (the dict of refused recipients, or the exception).
fn smtplib(smtp: &str, rcpts: &[&str], subject: &str) -> String {
    let (h, p) = smtp.rsplit_once(':').unwrap();
    let list = rcpts
        .iter()
        .map(|r| format!("'{r}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let script = format!(
        "import smtplib\n\
         from email.message import EmailMessage\n\
         m = EmailMessage()\n\
         m['From'] = 'sender@elsewhere.test'\n\
         m['To'] = 'undisclosed-recipients:;'\n\
         m['Subject'] = '{subject}'\n\
         m.set_content('body of {subject}')\n\
         s = smtplib.SMTP('{h}', {p}, local_hostname='client.test')\n\
         try:\n\
         \x20   print(s.send_message(m, 'sender@elsewhere.test', [{list}]))\n\
         except smtplib.SMTPException as e:\n\
         \x20   print('error', e)\n\
         s.quit()\n"
    );
    testkit::process::python(&script)
}

fn inbox(imap: SocketAddr, user: &str) -> Vec<String> {
    testkit::imap::fetch_all_text(imap, user, "pw", "INBOX")
}

#[test]
fn aliases_and_catch_all_deliver_once_per_user_over_smtp() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    for u in ["bob@example.org", "carol@example.org", "dave@example.net"] {
        ok(&db, &["user", "add", u, "--password-stdin"]);
    }
    // The relay host stands for the rest of the world.
    let relay = Reserved::bind("127.0.0.1:0".parse().unwrap())
        .unwrap()
        .listen(Script::new("relay.test"));

    let added = ok(
        &db,
        &[
            "alias",
            "add",
            "sales@example.org",
            "bob@example.org",
            "carol@example.org",
        ],
    );
    assert!(added.contains("sales@example.org -> bob@example.org, carol@example.org"));
    ok(
        &db,
        &["alias", "add", "info@example.org", "sales@example.org"],
    );
    ok(&db, &["alias", "add", "@example.org", "carol@example.org"]);
    ok(
        &db,
        &[
            "alias",
            "add",
            "dave@example.org",
            "dave@example.net",
            "far@outside.test",
        ],
    );
    // Loops are refused, with the chain, and nothing is kept.
    let out = minimail(
        &db,
        &["alias", "add", "sales@example.org", "info@example.org"],
        "",
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("alias loop: sales@example.org -> info@example.org -> sales@example.org"),
        "{err}"
    );
    let listed = ok(&db, &["alias", "list"]);
    assert_eq!(
        listed,
        "@example.org -> carol@example.org\n\
         dave@example.org -> dave@example.net, far@outside.test\n\
         info@example.org -> sales@example.org\n\
         sales@example.org -> bob@example.org, carol@example.org\n"
    );

    let (child, line, _) = testkit::server::minimail_up(
        BIN,
        &db,
        &[
            "--domain",
            "example.org",
            "--domain",
            "example.net",
            "--relay-host",
            &relay.addr().to_string(),
            "--outbound-tls",
            "none",
        ],
        &[],
    );
    let _up = Up(child);
    let smtp = testkit::server::addr_of(&line, "smtp");
    let imap: SocketAddr = testkit::server::addr_of(&line, "imap").parse().unwrap();

    // Two aliases and a user's own address, one transaction: bob and
    // carol get one copy each.
    let refused = smtplib(
        &smtp,
        &["sales@example.org", "info@example.org", "bob@example.org"],
        "fan-out",
    );
    assert_eq!(refused, "{}");
    assert_eq!(inbox(imap, "bob@example.org").len(), 1);
    assert_eq!(inbox(imap, "carol@example.org").len(), 1);

    // The catch-all takes any other address of its domain, +tags too.
    assert_eq!(smtplib(&smtp, &["whoever+x@example.org"], "caught"), "{}");
    let carol = inbox(imap, "carol@example.org");
    assert_eq!(carol.len(), 2);
    assert!(carol[1].contains("Subject: caught"), "{}", carol[1]);
    // Not another domain's.
    let refused = smtplib(&smtp, &["whoever@example.net"], "nobody");
    assert!(
        refused.contains("550") && refused.contains("5.1.1"),
        "{refused}"
    );

    // A target elsewhere goes through the outbound queue; the local one
    // is delivered.
    assert_eq!(smtplib(&smtp, &["dave@example.org"], "forwarded"), "{}");
    assert_eq!(inbox(imap, "dave@example.net").len(), 1);
    let got = relay.wait_for(1, Duration::from_secs(30));
    assert_eq!(got[0].rcpts, ["far@outside.test"]);
    assert_eq!(got[0].from, "sender@elsewhere.test");
    assert!(String::from_utf8_lossy(&got[0].data).contains("Subject: forwarded"));

    // sendmail resolves aliases as SMTP does.
    let out = minimail(
        &db,
        &["sendmail", "-f", "root@example.org", "info@example.org"],
        "Subject: from cron\n\nhello\n",
    );
    assert!(out.status.success(), "{out:?}");
    let bob = inbox(imap, "bob@example.org");
    assert_eq!(bob.len(), 2);
    assert!(bob[1].contains("Subject: from cron"), "{}", bob[1]);
    assert_eq!(inbox(imap, "carol@example.org").len(), 3);

    // Deleting the catch-all: its addresses are unknown again.
    ok(&db, &["alias", "del", "@example.org"]);
    // RCPT answers are cached for two seconds (smtpd recipients.rs).
    std::thread::sleep(Duration::from_millis(2100));
    let refused = smtplib(&smtp, &["whoever@example.org"], "after");
    assert!(refused.contains("550"), "{refused}");
}

#[test]
fn a_forwarding_alias_is_refused_when_outbound_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    ok(&db, &["user", "add", "bob@localhost", "--password-stdin"]);
    ok(
        &db,
        &[
            "alias",
            "add",
            "fwd@localhost",
            "bob@localhost",
            "x@far.test",
        ],
    );
    let (child, line, _) = testkit::server::minimail_up(BIN, &db, &["--no-outbound"], &[]);
    let _up = Up(child);
    let smtp = testkit::server::addr_of(&line, "smtp");
    let imap: SocketAddr = testkit::server::addr_of(&line, "imap").parse().unwrap();
    let refused = smtplib(&smtp, &["fwd@localhost"], "half");
    assert!(
        refused.contains("550") && refused.contains("No outbound relay configured"),
        "{refused}"
    );
    assert!(
        inbox(imap, "bob@localhost").is_empty(),
        "nothing half-delivered"
    );
}
