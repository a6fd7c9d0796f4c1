//! Sieve on delivery, end to end: scripts stored with `minimail sieve
//! put`, mail sent with Python's smtplib to a running `minimail up`, the
//! outcome read over IMAP. fileinto files into a folder an IDLE session
//! watches (with imap4flags' flags); vacation answers a sender once per
//! period and never `<>` or bulk mail; reject answers the SMTP
//! transaction with 550 and stores nothing; a script that fails at run
//! time keeps mail in INBOX and tells the user once; a script that does
//! not compile is refused by `put` with its error, nothing stored.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use testkit::process::KillOnDrop as Up;

const BIN: &str = env!("CARGO_BIN_EXE_minimail");

fn minimail(db: &Path, args: &[&str], input: &str) -> Output {
    testkit::process::with_db(BIN, db, args, input)
}

fn ok(db: &Path, args: &[&str], input: &str) -> String {
    testkit::process::with_db_ok(BIN, db, args, input)
}

/// Send `message` (headers and body, `\n` line ends) from `from` to
/// `to` with smtplib; returns "" or the error smtplib raised.
fn send(smtp: &str, from: &str, to: &str, message: &str) -> String {
    let (h, p) = smtp.rsplit_once(':').unwrap();
    let script = format!(
        "import smtplib, sys\n\
         msg = sys.stdin.read()\n\
         s = smtplib.SMTP('{h}', {p}, local_hostname='client.test')\n\
         try:\n\
         \x20   s.sendmail('{from}', ['{to}'], msg.encode())\n\
         except smtplib.SMTPException as e:\n\
         \x20   print('error', e)\n\
         s.quit()\n"
    );
    let out = testkit::process::run(
        Command::new("python3").args(["-c", &script]),
        message.as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn mailbox(imap: SocketAddr, user: &str, name: &str) -> Vec<String> {
    testkit::imap::fetch_all_text(imap, user, "pw", name)
}

/// Wait until `user`'s `name` holds `n` messages (deliveries to other
/// users finish in their own commit).
fn wait_for(imap: SocketAddr, user: &str, name: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = mailbox(imap, user, name);
        if got.len() >= n || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

const SCRIPT: &str = r#"require ["fileinto", "imap4flags", "vacation", "reject", "mailbox", "envelope"];
# As a client's filter editor writes them.
if header :contains "Subject" "[lists]" {
    fileinto :flags "\\Seen $List" "Lists";
    stop;
}
if allof (envelope :is "from" "boss@localhost", header :contains "Subject" "urgent") {
    addflag "\\Flagged";
    keep;
    stop;
}
if header :contains "Subject" "buy now" {
    reject "I do not take advertising.";
    stop;
}
vacation :days 7 :subject "Away" "I am away until Monday.";
"#;

fn user_add(db: &Path, u: &str) {
    ok(db, &["user", "add", u, "--password-stdin"], "pw\n");
}

#[test]
fn scripts_file_flag_answer_and_reject_over_smtp_and_imap() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    for u in ["bob@localhost", "alice@localhost", "boss@localhost"] {
        user_add(&db, u);
    }
    let file = dir.path().join("rules.sieve");
    std::fs::write(&file, SCRIPT).unwrap();
    let put = ok(
        &db,
        &[
            "sieve",
            "put",
            "bob@localhost",
            "rules",
            file.to_str().unwrap(),
            "--activate",
        ],
        "",
    );
    assert_eq!(put, "stored \"rules\" for bob@localhost (active)\n");
    assert_eq!(
        ok(&db, &["sieve", "list", "bob@localhost"], ""),
        "rules ACTIVE\n"
    );

    let (child, line, _) = testkit::server::minimail_up(BIN, &db, &["--no-outbound"], &[]);
    let _up = Up(child);
    let smtp = testkit::server::addr_of(&line, "smtp");
    let imap: SocketAddr = testkit::server::addr_of(&line, "imap").parse().unwrap();

    // fileinto: an IDLE session on "Lists" sees the message arrive.
    let mut idle = testkit::imap::Client::connect(imap);
    idle.login("bob@localhost", "pw");
    idle.ok("CREATE Lists");
    idle.ok("SELECT Lists");
    idle.send(b"i1 IDLE\r\n");
    assert!(idle.line().starts_with("+ "));
    let r = send(
        &smtp,
        "list@localhost",
        "bob@localhost",
        "From: list@localhost\nTo: bob@localhost\nSubject: [lists] weekly digest\n\nnews\n",
    );
    assert_eq!(r, "");
    // (A new keyword may come first as an untagged FLAGS.)
    loop {
        let l = idle.line();
        if l == "* 1 EXISTS" {
            break;
        }
        assert!(l.starts_with("* FLAGS") || l.starts_with("* OK"), "{l}");
    }
    idle.send(b"DONE\r\n");
    idle.until("i1");
    let fetched = idle.ok("FETCH 1 (FLAGS)");
    assert!(
        fetched[0].contains("\\Seen") && fetched[0].contains("$List"),
        "{fetched:?}"
    );
    assert!(
        mailbox(imap, "bob@localhost", "INBOX").is_empty(),
        "filed, not kept"
    );

    // Envelope test and addflag: kept in INBOX, flagged.
    let r = send(
        &smtp,
        "boss@localhost",
        "bob@localhost",
        "From: boss@localhost\nTo: bob@localhost\nSubject: urgent: call me\n\nnow\n",
    );
    assert_eq!(r, "");
    let mut c = testkit::imap::Client::connect(imap);
    c.login("bob@localhost", "pw");
    c.ok("SELECT INBOX");
    let f = c.ok("FETCH 1 (FLAGS)");
    assert!(f[0].contains("\\Flagged"), "{f:?}");

    // reject: the SMTP transaction gets 550 with the reason; nothing stored.
    let r = send(
        &smtp,
        "shop@localhost",
        "bob@localhost",
        "From: shop@localhost\nTo: bob@localhost\nSubject: buy now!\n\noffer\n",
    );
    assert!(
        r.contains("550") && r.contains("I do not take advertising."),
        "{r}"
    );
    assert_eq!(mailbox(imap, "bob@localhost", "INBOX").len(), 1);

    // vacation: alice is answered once within the period.
    let hello = "From: Alice <alice@localhost>\nTo: bob@localhost\nSubject: lunch?\nMessage-ID: <l1@localhost>\n\nshall we?\n";
    assert_eq!(send(&smtp, "alice@localhost", "bob@localhost", hello), "");
    let replies = wait_for(imap, "alice@localhost", "INBOX", 1);
    assert_eq!(replies.len(), 1, "{replies:?}");
    let reply = &replies[0];
    assert!(reply.contains("Subject: Away"), "{reply}");
    assert!(reply.contains("I am away until Monday."), "{reply}");
    assert!(reply.contains("In-Reply-To: <l1@localhost>"), "{reply}");
    assert!(
        reply
            .to_ascii_lowercase()
            .contains("auto-submitted: auto-replied"),
        "{reply}"
    );
    let again = hello.replace("l1@", "l2@");
    assert_eq!(send(&smtp, "alice@localhost", "bob@localhost", &again), "");
    // Bulk mail and the null sender are never answered.
    let bulk =
        "From: boss@localhost\nTo: bob@localhost\nSubject: all staff\nPrecedence: bulk\n\nhi\n";
    assert_eq!(send(&smtp, "boss@localhost", "bob@localhost", bulk), "");
    let bounce = "From: MAILER-DAEMON@localhost\nTo: bob@localhost\nSubject: failure notice\n\nx\n";
    assert_eq!(send(&smtp, "", "bob@localhost", bounce), "");
    assert_eq!(wait_for(imap, "bob@localhost", "INBOX", 5).len(), 5);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        mailbox(imap, "alice@localhost", "INBOX").len(),
        1,
        "answered once"
    );
    assert!(
        mailbox(imap, "boss@localhost", "INBOX").is_empty(),
        "bulk mail answered"
    );
}

#[test]
fn a_failing_script_keeps_mail_and_tells_the_user_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    user_add(&db, "bob@localhost");
    // Compiles, fails at run time: the included script does not exist.
    let file = dir.path().join("broken.sieve");
    std::fs::write(
        &file,
        "require [\"include\", \"fileinto\"];\ninclude :personal \"missing\";\nfileinto \"Elsewhere\";\n",
    )
    .unwrap();
    ok(
        &db,
        &[
            "sieve",
            "put",
            "bob@localhost",
            "broken",
            file.to_str().unwrap(),
            "--activate",
        ],
        "",
    );
    // A script that does not compile is refused with its error.
    let out = minimail(
        &db,
        &["sieve", "put", "bob@localhost", "bad", "-"],
        "if true {\n",
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("script \"bad\" not stored"), "{err}");
    assert_eq!(
        ok(&db, &["sieve", "list", "bob@localhost"], ""),
        "broken ACTIVE\n"
    );

    let (child, line, _) = testkit::server::minimail_up(BIN, &db, &["--no-outbound"], &[]);
    let _up = Up(child);
    let smtp = testkit::server::addr_of(&line, "smtp");
    let imap: SocketAddr = testkit::server::addr_of(&line, "imap").parse().unwrap();
    for i in 0..3 {
        let m = format!("From: a@localhost\nTo: bob@localhost\nSubject: msg {i}\n\nx\n");
        assert_eq!(send(&smtp, "a@localhost", "bob@localhost", &m), "");
    }
    let inbox = mailbox(imap, "bob@localhost", "INBOX");
    let notices: Vec<_> = inbox
        .iter()
        .filter(|m| m.contains("Subject: Your Sieve script \"broken\" failed"))
        .collect();
    assert_eq!(notices.len(), 1, "{inbox:#?}");
    assert!(notices[0].contains("missing"), "{}", notices[0]);
    assert_eq!(inbox.len(), 4, "three kept and one notice: {inbox:#?}");
}

#[test]
fn a_script_past_the_instruction_bound_still_delivers() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    user_add(&db, "bob@localhost");
    // 10,000 rules: under the script size limit, over the per-message
    // instruction bound.
    let mut script = String::new();
    for _ in 0..10_000 {
        script.push_str("if size :over 9M {stop;}\n");
    }
    assert!(script.len() < mailstore::MAX_SCRIPT_SIZE);
    let file = dir.path().join("big.sieve");
    std::fs::write(&file, &script).unwrap();
    ok(
        &db,
        &[
            "sieve",
            "put",
            "bob@localhost",
            "big",
            file.to_str().unwrap(),
            "--activate",
        ],
        "",
    );
    let (child, line, _) = testkit::server::minimail_up(BIN, &db, &["--no-outbound"], &[]);
    let _up = Up(child);
    let smtp = testkit::server::addr_of(&line, "smtp");
    let imap: SocketAddr = testkit::server::addr_of(&line, "imap").parse().unwrap();
    let started = Instant::now();
    let m = "From: a@localhost\nTo: bob@localhost\nSubject: hello\n\nx\n";
    assert_eq!(send(&smtp, "a@localhost", "bob@localhost", m), "");
    eprintln!("delivered in {:?}", started.elapsed());
    let inbox = mailbox(imap, "bob@localhost", "INBOX");
    assert_eq!(inbox.len(), 2, "{inbox:#?}");
    assert!(inbox.iter().any(|m| m.contains("Subject: hello")));
    assert!(
        inbox
            .iter()
            .any(|m| m.contains("maximum number of instructions")),
        "{inbox:#?}"
    );
}

#[test]
fn redirect_goes_to_local_users_and_through_the_queue() {
    use testkit::scripted::{Reserved, Script};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    // (sieve-rs ignores redirects to a domain without a dot, such as
    // localhost.)
    for u in ["bob@example.org", "carol@example.org"] {
        user_add(&db, u);
    }
    let relay = Reserved::bind("127.0.0.1:0".parse().unwrap())
        .unwrap()
        .listen(Script::new("relay.test"));
    ok(
        &db,
        &["sieve", "put", "bob@example.org", "fwd", "-", "--activate"],
        "require [\"copy\"];\nredirect :copy \"carol@example.org\";\nredirect \"far@outside.test\";\n",
    );
    let (child, line, _) = testkit::server::minimail_up(
        BIN,
        &db,
        &[
            "--domain",
            "example.org",
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
    let m = "From: a@elsewhere.test\nTo: bob@example.org\nSubject: pass it on\n\nx\n";
    assert_eq!(send(&smtp, "a@elsewhere.test", "bob@example.org", m), "");
    // The last redirect cancels the implicit keep; :copy keeps nothing.
    assert!(mailbox(imap, "bob@example.org", "INBOX").is_empty());
    let carol = mailbox(imap, "carol@example.org", "INBOX");
    assert_eq!(carol.len(), 1);
    assert!(carol[0].contains("Subject: pass it on"), "{}", carol[0]);
    let got = relay.wait_for(1, Duration::from_secs(30));
    assert_eq!(got[0].rcpts, ["far@outside.test"]);
    assert_eq!(got[0].from, "a@elsewhere.test", "the original sender");
}

/// `send` to several recipients in one transaction.
fn send_all(smtp: &str, from: &str, to: &[&str], message: &str) -> String {
    let (h, p) = smtp.rsplit_once(':').unwrap();
    let rcpts = to
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let script = format!(
        "import smtplib, sys\n\
         msg = sys.stdin.read()\n\
         s = smtplib.SMTP('{h}', {p}, local_hostname='client.test')\n\
         s.sendmail('{from}', [{rcpts}], msg.encode())\n\
         s.quit()\n"
    );
    let out = testkit::process::run(
        Command::new("python3").args(["-c", &script]),
        message.as_bytes(),
    );
    String::from_utf8_lossy(&out.stderr).trim().to_owned()
}

/// Mail for users without a script goes straight to the commit, which
/// checks for an active script in its own transaction: a script
/// activated (by another process) while the server runs applies to the
/// very next message, also in a transaction shared with a user without
/// one, and once deactivated mail is kept in INBOX again.
#[test]
fn a_script_activated_or_deactivated_while_serving_applies_to_the_next_message() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    for u in ["bob@localhost", "carol@localhost"] {
        user_add(&db, u);
    }
    let (child, line, _) = testkit::server::minimail_up(BIN, &db, &["--no-outbound"], &[]);
    let _up = Up(child);
    let smtp = testkit::server::addr_of(&line, "smtp");
    let imap: SocketAddr = testkit::server::addr_of(&line, "imap").parse().unwrap();
    let msg = |n: u32| format!("From: a@localhost\nTo: bob@localhost\nSubject: m{n}\n\nx\n");
    let subjects = |user: &str, name: &str| -> Vec<String> {
        let mut s: Vec<String> = mailbox(imap, user, name)
            .iter()
            .filter_map(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("Subject: ").map(str::to_owned))
            })
            .collect();
        s.sort();
        s
    };
    assert_eq!(send(&smtp, "a@localhost", "bob@localhost", &msg(1)), "");
    assert_eq!(subjects("bob@localhost", "INBOX"), ["m1"]);

    ok(
        &db,
        &["sieve", "put", "bob@localhost", "file", "-", "--activate"],
        "require [\"fileinto\", \"mailbox\"];\nfileinto :create \"Filed\";\n",
    );
    assert_eq!(
        send_all(
            &smtp,
            "a@localhost",
            &["bob@localhost", "carol@localhost"],
            &msg(2)
        ),
        ""
    );
    assert_eq!(send(&smtp, "a@localhost", "bob@localhost", &msg(3)), "");
    assert_eq!(subjects("bob@localhost", "Filed"), ["m2", "m3"]);
    assert_eq!(subjects("bob@localhost", "INBOX"), ["m1"]);
    assert_eq!(subjects("carol@localhost", "INBOX"), ["m2"]);

    ok(&db, &["sieve", "deactivate", "bob@localhost"], "");
    assert_eq!(send(&smtp, "a@localhost", "bob@localhost", &msg(4)), "");
    assert_eq!(send(&smtp, "a@localhost", "bob@localhost", &msg(5)), "");
    assert_eq!(subjects("bob@localhost", "INBOX"), ["m1", "m4", "m5"]);
    assert_eq!(subjects("bob@localhost", "Filed"), ["m2", "m3"]);
}
