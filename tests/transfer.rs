//! `minimail import`, `export`, `backup` and `restore` as a user runs
//! them (issue 20): the binary over real files, the result read back over
//! IMAP from a real `minimail up`, Dovecot's own Maildirs both ways
//! (`doveadm` with a private configuration and daemon), a backup taken
//! while SMTP sessions deliver, a restore refused while a server runs.

use std::collections::BTreeMap;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use testkit::imap::Client;

const BIN: &str = env!("CARGO_BIN_EXE_minimail");
const PW: &str = "transfer-pw";

fn minimail(args: &[&str], db: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--db")
        .arg(db)
        .output()
        .unwrap()
}

/// Run and insist on exit status 0; its stdout.
fn ok(args: &[&str], db: &Path) -> String {
    let out = minimail(args, db);
    assert!(
        out.status.success(),
        "minimail {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn add_user(db: &Path, user: &str) {
    let out = testkit::process::run(
        Command::new(BIN)
            .args(["user", "add", user, "--password-stdin", "--db"])
            .arg(db),
        format!("{PW}\n").as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `minimail up` over a store, killed when dropped (even on panic).
struct Up {
    child: Child,
    imap: SocketAddr,
    smtp: SocketAddr,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn up(db: &Path) -> Up {
    let (child, line, _) = testkit::server::minimail_up(BIN, db, &["--no-tls"], &[]);
    Up {
        child,
        imap: testkit::server::addr_of(&line, "imap").parse().unwrap(),
        smtp: testkit::server::addr_of(&line, "smtp").parse().unwrap(),
    }
}

/// One message as IMAP shows it: sorted flags, INTERNALDATE, bytes.
type Seen = (Vec<String>, String, Vec<u8>);

fn between<'a>(line: &'a str, open: &str, close: char) -> &'a str {
    let from = line.find(open).map(|i| i + open.len()).unwrap();
    let len = line[from..].find(close).unwrap();
    &line[from..from + len]
}

/// Every message of the given mailboxes over IMAP (nothing changed:
/// EXAMINE and BODY.PEEK).
fn imap_view(addr: SocketAddr, user: &str, mailboxes: &[&str]) -> BTreeMap<String, Vec<Seen>> {
    let mut c = Client::connect(addr);
    c.login(user, PW);
    let mut out = BTreeMap::new();
    for mb in mailboxes {
        let r = c.ok(&format!("EXAMINE \"{mb}\""));
        let n: usize = r
            .iter()
            .find_map(|l| l.strip_suffix(" EXISTS").and_then(|l| l.strip_prefix("* ")))
            .and_then(|n| n.parse().ok())
            .unwrap();
        let mut msgs = Vec::new();
        for k in 1..=n {
            let r = c.ok(&format!("FETCH {k} (FLAGS INTERNALDATE)"));
            let line = r.iter().find(|l| l.contains(" FETCH (")).unwrap();
            let mut flags: Vec<String> = between(line, "FLAGS (", ')')
                .split_whitespace()
                .filter(|f| *f != "\\Recent")
                .map(str::to_string)
                .collect();
            flags.sort();
            let date = between(line, "INTERNALDATE \"", '"').to_string();
            c.send(format!("b{k} FETCH {k} BODY.PEEK[]\r\n").as_bytes());
            let body = c.read_literal_after("BODY[]");
            c.until(&format!("b{k}"));
            msgs.push((flags, date, body));
        }
        out.insert(mb.to_string(), msgs);
    }
    out
}

/// An mbox exactly as `minimail export` writes one (so exporting what it
/// imports gives the same file back): every flag, keywords, quoted
/// `From ` lines at two depths, a message with no body.
const MBOX: &str = "From MAILER-DAEMON Thu Jan  1 00:00:10 2015
Subject: seen, with keywords
Status: RO
X-Keywords: $Forwarded Junk

>From the start of a line
>>From quoted once in the message
plain

From MAILER-DAEMON Fri Dec 31 23:59:59 1999
Subject: every flag
Status: RO
X-Status: AFTD

body

From MAILER-DAEMON Mon Jun 15 12:00:00 2026
Subject: header only
Status: O

From MAILER-DAEMON Sun Sep  9 01:46:40 2001
Subject: unseen
Status: O
X-Keywords: $label1

last line
>From again

";

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// What IMAP must show for [`MBOX`].
fn mbox_expected() -> Vec<Seen> {
    vec![
        (
            s(&["$Forwarded", "Junk", "\\Seen"]),
            "01-Jan-2015 00:00:10 +0000".into(),
            b"Subject: seen, with keywords\r\n\r\nFrom the start of a line\r\n>From quoted once in the message\r\nplain\r\n".to_vec(),
        ),
        (
            s(&["\\Answered", "\\Deleted", "\\Draft", "\\Flagged", "\\Seen"]),
            "31-Dec-1999 23:59:59 +0000".into(),
            b"Subject: every flag\r\n\r\nbody\r\n".to_vec(),
        ),
        (
            vec![],
            "15-Jun-2026 12:00:00 +0000".into(),
            b"Subject: header only\r\n".to_vec(),
        ),
        (
            s(&["$label1"]),
            "09-Sep-2001 01:46:40 +0000".into(),
            b"Subject: unseen\r\n\r\nlast line\r\nFrom again\r\n".to_vec(),
        ),
    ]
}

#[test]
fn mbox_import_keeps_flags_keywords_dates_and_bytes_and_exports_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    add_user(&db, "m@localhost");
    let src = dir.path().join("in.mbox");
    fs::write(&src, MBOX).unwrap();

    let first = ok(
        &["import", "m@localhost", "mbox", src.to_str().unwrap()],
        &db,
    );
    assert!(first.contains("INBOX: 4 added, 0 already there"), "{first}");
    let again = ok(
        &["import", "m@localhost", "mbox", src.to_str().unwrap()],
        &db,
    );
    assert!(again.contains("INBOX: 0 added, 4 already there"), "{again}");
    // Into another mailbox (made on the way) with --mailbox.
    let other = ok(
        &[
            "import",
            "m@localhost",
            "mbox",
            src.to_str().unwrap(),
            "--mailbox",
            "Old/2015",
        ],
        &db,
    );
    assert!(other.contains("Old/2015: 4 added"), "{other}");

    {
        let server = up(&db);
        let view = imap_view(server.imap, "m@localhost", &["INBOX", "Old/2015"]);
        assert_eq!(view["INBOX"], mbox_expected());
        assert_eq!(view["Old/2015"], mbox_expected());
    }

    let out = dir.path().join("out");
    let report = ok(
        &["export", "m@localhost", "mbox", out.to_str().unwrap()],
        &db,
    );
    assert!(report.contains("INBOX: 4 messages"), "{report}");
    assert_eq!(fs::read_to_string(out.join("INBOX")).unwrap(), MBOX);
    assert_eq!(fs::read_to_string(out.join("Old/2015")).unwrap(), MBOX);
    assert_eq!(fs::read_to_string(out.join("Sent")).unwrap(), "");
    // Export refuses to write into a directory that holds something.
    let again = minimail(
        &["export", "m@localhost", "mbox", out.to_str().unwrap()],
        &db,
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("is not empty"));
}

#[test]
fn an_mbox_tree_and_a_maildir_round_trip_through_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    add_user(&db, "a@localhost");
    add_user(&db, "b@localhost");
    // mutt's ~/Mail with a sub-directory, Thunderbird's NAME.sbd.
    let tree = dir.path().join("Mail");
    fs::create_dir_all(tree.join("Lists")).unwrap();
    fs::create_dir_all(tree.join("Archive.sbd")).unwrap();
    fs::write(tree.join("inbox"), MBOX).unwrap();
    fs::write(tree.join("Lists/rust"), MBOX).unwrap();
    fs::write(tree.join("Archive"), MBOX).unwrap();
    fs::write(tree.join("Archive.sbd/2015"), MBOX).unwrap();
    fs::write(tree.join("Archive.msf"), "a Thunderbird index, not mail").unwrap();
    fs::write(tree.join("notes.txt"), "not an mbox\n").unwrap();
    let r = ok(
        &["import", "a@localhost", "mbox", tree.to_str().unwrap()],
        &db,
    );
    assert!(r.contains("imported 16 messages into 4 mailboxes"), "{r}");

    let md = dir.path().join("md");
    ok(
        &["export", "a@localhost", "maildir", md.to_str().unwrap()],
        &db,
    );
    // Maildir++: INBOX at the root, the rest in .A.B; dates as mtimes.
    let cur: Vec<PathBuf> = fs::read_dir(md.join(".Archive.2015/cur"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(cur.len(), 4);
    let seen_kw = cur
        .iter()
        .find(|p| fs::read_to_string(p).unwrap().starts_with("Subject: seen"))
        .unwrap();
    assert!(seen_kw.to_str().unwrap().ends_with(":2,Sab"), "{seen_kw:?}");
    assert_eq!(
        fs::read_to_string(md.join(".Archive.2015/dovecot-keywords")).unwrap(),
        "0 $Forwarded\n1 Junk\n2 $label1\n"
    );
    let mtime = fs::metadata(seen_kw).unwrap().modified().unwrap();
    assert_eq!(
        mtime
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
        1_420_070_410
    );

    let r = ok(
        &["import", "b@localhost", "maildir", md.to_str().unwrap()],
        &db,
    );
    assert!(r.contains("imported 16 messages into 8 mailboxes"), "{r}");
    let r = ok(
        &["import", "b@localhost", "maildir", md.to_str().unwrap()],
        &db,
    );
    assert!(r.contains("imported 0 messages"), "{r}");
    assert!(r.contains("16 already there"), "{r}");

    let (ea, eb) = (dir.path().join("ea"), dir.path().join("eb"));
    ok(
        &["export", "a@localhost", "mbox", ea.to_str().unwrap()],
        &db,
    );
    ok(
        &["export", "b@localhost", "mbox", eb.to_str().unwrap()],
        &db,
    );
    for f in ["INBOX", "Lists/rust", "Archive", "Archive.sbd/2015"] {
        assert_eq!(fs::read_to_string(ea.join(f)).unwrap(), MBOX, "{f}");
        assert_eq!(fs::read_to_string(eb.join(f)).unwrap(), MBOX, "{f}");
    }
}

#[test]
fn mboxo_quoting_and_the_message_size_bound() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    add_user(&db, "o@localhost");
    let src = dir.path().join("o.mbox");
    let mut text =
        String::from("From x@y Thu Jan  1 00:00:10 2015\nSubject: o\n\n>From one\n>>From two\n\n");
    // 2,000 bytes of body: over a bound of 1,999, within one of 2,100.
    text.push_str("From x@y Thu Jan  1 00:00:11 2015\nSubject: big\n\n");
    text.push_str(&"x".repeat(1999 - "Subject: big\n\n".len()));
    text.push_str("\n\n");
    fs::write(&src, &text).unwrap();
    let p = src.to_str().unwrap();
    let out = minimail(
        &[
            "import",
            "o@localhost",
            "mbox",
            p,
            "--mboxo",
            "--max-message-size",
            "1999",
        ],
        &db,
    );
    assert_eq!(out.status.code(), Some(1), "a skipped message is exit 1");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("INBOX: 1 added, 0 already there, 1 skipped"),
        "{said}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("over the bound of 1999 bytes"));
    let r = ok(
        &[
            "import",
            "o@localhost",
            "mbox",
            p,
            "--mboxo",
            "--max-message-size",
            "2000",
        ],
        &db,
    );
    assert!(r.contains("INBOX: 1 added, 1 already there"), "{r}");
    let server = up(&db);
    let view = imap_view(server.imap, "o@localhost", &["INBOX"]);
    assert_eq!(
        view["INBOX"][0].2,
        b"Subject: o\r\n\r\nFrom one\r\n>>From two\r\n"
    );
    assert_eq!(view["INBOX"][1].2.len(), 2000 + 3);
    // Not an mbox: refused, nothing made.
    let bad = dir.path().join("bad");
    fs::write(&bad, "Subject: no From line\n\nx\n").unwrap();
    let out = minimail(
        &[
            "import",
            "o@localhost",
            "mbox",
            bad.to_str().unwrap(),
            "--mailbox",
            "Bad",
        ],
        &db,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an mbox file"));
    let mut c = Client::connect(server.imap);
    c.login("o@localhost", PW);
    let r = c.ok("LIST \"\" Bad");
    assert!(!r.iter().any(|l| l.starts_with("* LIST")), "{r:?}");
}

/// A private Dovecot (no listeners: auth and doveadm only) over a
/// Maildir in a temporary directory; stopped when dropped.
struct Dovecot {
    dir: tempfile::TempDir,
    uid: u32,
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = Command::new("dovecot")
            .arg("-c")
            .arg(self.conf())
            .arg("stop")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

impl Dovecot {
    fn conf(&self) -> PathBuf {
        self.dir.path().join("dovecot.conf")
    }

    fn start() -> Option<Dovecot> {
        if !testkit::process::have("doveadm", "-h")
            || !testkit::process::have("dovecot", "--version")
        {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let me = String::from_utf8(Command::new("id").arg("-u").output().unwrap().stdout).unwrap();
        let me: u32 = me.trim().parse().unwrap();
        let name =
            String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
        // Dovecot refuses mail as root: then mail belongs to nobody.
        let (uid, users) = if me == 0 {
            (65534, ("dovecot", "dovenull"))
        } else {
            (me, (name.trim(), name.trim()))
        };
        for sub in ["run", "state", "home"] {
            fs::create_dir_all(d.join(sub)).unwrap();
        }
        fs::write(
            d.join("users"),
            format!("u:{{PLAIN}}x:{uid}:{uid}::{}\n", d.join("home").display()),
        )
        .unwrap();
        fs::write(
            d.join("dovecot.conf"),
            format!(
                "base_dir = {d}/run\nstate_dir = {d}/state\nlog_path = {d}/dovecot.log\n\
                 instance_name = minimail-transfer-{pid}\nprotocols =\nssl = no\n\
                 default_internal_user = {iu}\ndefault_login_user = {lu}\nfirst_valid_uid = 1\n\
                 mail_location = maildir:{d}/Maildir\n\
                 namespace inbox {{\n  inbox = yes\n  separator = /\n}}\n\
                 passdb {{\n  driver = passwd-file\n  args = {d}/users\n}}\n\
                 userdb {{\n  driver = passwd-file\n  args = {d}/users\n}}\n",
                d = d.display(),
                pid = std::process::id(),
                iu = users.0,
                lu = users.1,
            ),
        )
        .unwrap();
        if me == 0 {
            chown(d, uid);
        }
        let dc = Dovecot { dir, uid };
        // The daemon forks away keeping its stdio: no pipes to wait on.
        let st = Command::new("dovecot")
            .arg("-c")
            .arg(dc.conf())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(
            st.success(),
            "dovecot did not start (its log is in {:?})",
            dc.dir.path()
        );
        Some(dc)
    }

    /// `doveadm -c CONF [-o mail_location=...] ARGS -u u ...` with TZ=UTC.
    fn doveadm(&self, args: &[&str], maildir: Option<&Path>, input: &[u8]) -> String {
        let mut cmd = Command::new("doveadm");
        cmd.env("TZ", "UTC").arg("-c").arg(self.conf());
        if let Some(m) = maildir {
            cmd.arg("-o")
                .arg(format!("mail_location=maildir:{}", m.display()));
        }
        let out = testkit::process::run(cmd.args(args), input);
        assert!(
            out.status.success(),
            "doveadm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Dovecot's view of every message: mailbox -> (uid order) flags,
    /// INTERNALDATE as IMAP writes it, bytes as IMAP sends them (CRLF).
    fn view(&self, maildir: Option<&Path>) -> BTreeMap<String, Vec<Seen>> {
        let table = self.doveadm(
            &[
                "-f",
                "tab",
                "fetch",
                "-u",
                "u",
                "mailbox uid flags date.received",
                "all",
            ],
            maildir,
            b"",
        );
        let mut out: BTreeMap<String, Vec<Seen>> = BTreeMap::new();
        for row in table.lines().skip(1) {
            let cols: Vec<&str> = row.split('\t').collect();
            let mut flags: Vec<String> = cols[2]
                .split_whitespace()
                .filter(|f| *f != "\\Recent")
                .map(str::to_string)
                .collect();
            flags.sort();
            let text = self.doveadm(
                &[
                    "-f", "pager", "fetch", "-u", "u", "text", "mailbox", cols[0], "uid", cols[1],
                ],
                maildir,
                b"",
            );
            let text = text.strip_prefix("text:\n").unwrap();
            let body = text.replace('\n', "\r\n").into_bytes();
            out.entry(cols[0].to_string())
                .or_default()
                .push((flags, imap_date(cols[3]), body));
        }
        out
    }
}

fn chown(path: &Path, uid: u32) {
    let st = Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{uid}"))
        .arg(path)
        .status()
        .unwrap();
    assert!(st.success());
}

/// `2026-12-06 05:28:49` (doveadm, UTC) as `06-Dec-2026 05:28:49 +0000`.
fn imap_date(d: &str) -> String {
    const M: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (date, time) = d.split_once(' ').unwrap();
    let p: Vec<&str> = date.split('-').collect();
    let m: usize = p[1].parse().unwrap();
    format!("{}-{}-{} {time} +0000", p[2], M[m - 1], p[0])
}

#[test]
fn dovecot_maildirs_import_with_every_flag_and_exports_read_back_in_dovecot() {
    let Some(dc) = Dovecot::start() else { return };
    // Dovecot writes a Maildir: deliveries, a folder, every flag.
    let msgs: [&[u8]; 4] = [
        b"Subject: every flag\nFrom: a@example.org\n\nbody one\n",
        b"Subject: a keyword\n\nbody two\n>From quoted\n",
        b"Subject: nothing\n\nbody three\n",
        b"Subject: in a folder\n\nbody four\n",
    ];
    for m in &msgs[..3] {
        dc.doveadm(&["save", "-u", "u", "-m", "INBOX"], None, m);
    }
    dc.doveadm(&["mailbox", "create", "-u", "u", "Lists/rust"], None, b"");
    dc.doveadm(&["save", "-u", "u", "-m", "Lists/rust"], None, msgs[3]);
    let flag = |flags: &str, mb: &str, uid: &str| {
        dc.doveadm(
            &["flags", "add", "-u", "u", flags, "mailbox", mb, "uid", uid],
            None,
            b"",
        );
    };
    flag(
        "\\Seen \\Answered \\Flagged \\Deleted \\Draft $Forwarded Junk NonJunk",
        "INBOX",
        "1",
    );
    flag("$label1", "INBOX", "2");
    flag("\\Seen $Forwarded", "Lists/rust", "1");
    let dovecot = dc.view(None);
    assert_eq!(dovecot["INBOX"].len(), 3);
    assert_eq!(dovecot["INBOX"][0].0.len(), 8, "{:?}", dovecot["INBOX"][0]);

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    add_user(&db, "u@localhost");
    let maildir = dc.dir.path().join("Maildir");
    let r = ok(
        &[
            "import",
            "u@localhost",
            "maildir",
            maildir.to_str().unwrap(),
        ],
        &db,
    );
    assert!(
        r.contains("INBOX: 3 added") && r.contains("Lists/rust: 1 added"),
        "{r}"
    );
    let r = ok(
        &[
            "import",
            "u@localhost",
            "maildir",
            maildir.to_str().unwrap(),
        ],
        &db,
    );
    assert!(r.contains("imported 0 messages"), "{r}");
    {
        let server = up(&db);
        let ours = imap_view(server.imap, "u@localhost", &["INBOX", "Lists/rust"]);
        assert_eq!(ours, dovecot, "minimail's import of Dovecot's Maildir");
    }

    // The other way: our export (old dates, keywords) read by Dovecot.
    add_user(&db, "m@localhost");
    let src = dir.path().join("in.mbox");
    fs::write(&src, MBOX).unwrap();
    ok(
        &[
            "import",
            "m@localhost",
            "mbox",
            src.to_str().unwrap(),
            "--mailbox",
            "A/B",
        ],
        &db,
    );
    let out = dir.path().join("export");
    ok(
        &["export", "m@localhost", "maildir", out.to_str().unwrap()],
        &db,
    );
    ok(
        &[
            "export",
            "u@localhost",
            "maildir",
            dir.path().join("export-u").to_str().unwrap(),
        ],
        &db,
    );
    if dc.uid != 0 {
        chown(dir.path(), dc.uid);
    }
    let seen = dc.view(Some(&out));
    assert_eq!(
        seen["A/B"],
        mbox_expected(),
        "Dovecot's reading of our export"
    );
    assert!(!seen.contains_key("INBOX"), "{seen:?}");
    let seen = dc.view(Some(&dir.path().join("export-u")));
    assert_eq!(seen, dovecot, "Dovecot's Maildir through minimail and back");
}

#[test]
fn a_backup_during_smtp_load_holds_every_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    add_user(&db, "load@localhost");
    let server = up(&db);
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let mut senders = Vec::new();
    for t in 0..4 {
        let (acked, stop, sent, smtp) = (acked.clone(), stop.clone(), sent.clone(), server.smtp);
        senders.push(std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let subject = format!("load {t}-{n}");
                let body = format!("Subject: {subject}\r\n\r\n{}\r\n", "x".repeat(2000));
                let mut c = testkit::smtp::Client::connect(smtp);
                c.expect_reply("220");
                let reply = c.send_mail("s@example.org", &["load@localhost"], body.as_bytes());
                assert!(reply.starts_with("250"), "{reply}");
                acked.lock().unwrap().push(subject);
                sent.fetch_add(1, Ordering::SeqCst);
                n += 1;
            }
        }));
    }
    while sent.load(Ordering::SeqCst) < 200 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let before: Vec<String> = acked.lock().unwrap().clone();
    let backup = dir.path().join("backup.db");
    let said = ok(&["backup", backup.to_str().unwrap()], &db);
    assert!(said.contains("integrity ok"), "{said}");
    let during = sent.load(Ordering::SeqCst);
    std::thread::sleep(std::time::Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    for s in senders {
        s.join().unwrap();
    }
    assert!(
        sent.load(Ordering::SeqCst) > during,
        "the load went on after the backup"
    );
    drop(server);

    // The copy opens, passes the full check, and holds every message
    // acknowledged before the backup started.
    let check = minimail(&["store", "check"], &backup);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let out = dir.path().join("out");
    ok(
        &["export", "load@localhost", "mbox", out.to_str().unwrap()],
        &backup,
    );
    let text = fs::read_to_string(out.join("INBOX")).unwrap();
    let subjects: std::collections::HashSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("Subject: "))
        .collect();
    for s in &before {
        assert!(
            subjects.contains(s.as_str()),
            "{s} acknowledged before the backup, missing"
        );
    }
    assert!(subjects.len() >= before.len());
    // A backup never overwrites.
    let again = minimail(&["backup", backup.to_str().unwrap()], &db);
    assert!(!again.status.success());
}

#[test]
fn restore_refuses_a_live_store_and_bad_backups_and_replaces_a_stopped_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    add_user(&db, "r@localhost");
    let src = dir.path().join("in.mbox");
    fs::write(&src, MBOX).unwrap();
    ok(
        &["import", "r@localhost", "mbox", src.to_str().unwrap()],
        &db,
    );
    let backup = dir.path().join("b.db");
    ok(&["backup", backup.to_str().unwrap()], &db);
    // After the backup: a message the restore takes away again.
    ok(
        &[
            "import",
            "r@localhost",
            "mbox",
            src.to_str().unwrap(),
            "--mailbox",
            "Later",
        ],
        &db,
    );

    let server = up(&db);
    let out = minimail(&["restore", backup.to_str().unwrap()], &db);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is in use"), "{err}");
    // The live store is untouched and still served.
    let view = imap_view(server.imap, "r@localhost", &["INBOX", "Later"]);
    assert_eq!(view["Later"].len(), 4);
    drop(server);

    // A damaged backup and one from a newer schema are refused.
    let broken = dir.path().join("broken.db");
    let mut bytes = fs::read(&backup).unwrap();
    let len = bytes.len();
    bytes[len / 2..].fill(0x5a);
    fs::write(&broken, &bytes).unwrap();
    let out = minimail(&["restore", broken.to_str().unwrap()], &db);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("integrity"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let newer = dir.path().join("newer.db");
    fs::copy(&backup, &newer).unwrap();
    let st = Command::new("python3")
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('PRAGMA user_version=9999'); c.commit()"])
        .arg(&newer)
        .status()
        .unwrap();
    assert!(st.success());
    let out = minimail(&["restore", newer.to_str().unwrap()], &db);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("newer than this program"));

    let said = ok(&["restore", backup.to_str().unwrap()], &db);
    assert!(said.contains("the old store is now"), "{said}");
    let old: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("m.db.replaced-") && !n.ends_with("-wal") && !n.ends_with("-shm"))
        .collect();
    assert_eq!(old.len(), 1, "{old:?}");
    let server = up(&db);
    let view = imap_view(server.imap, "r@localhost", &["INBOX"]);
    assert_eq!(view["INBOX"], mbox_expected());
    let mut c = Client::connect(server.imap);
    c.login("r@localhost", PW);
    let r = c.ok("LIST \"\" Later");
    assert!(!r.iter().any(|l| l.starts_with("* LIST")), "{r:?}");
    drop(server);
    // The replaced store is whole: served, it still has the later mail.
    let kept = dir.path().join(&old[0]);
    let server = up(&kept);
    let view = imap_view(server.imap, "r@localhost", &["Later"]);
    assert_eq!(view["Later"].len(), 4);
}
