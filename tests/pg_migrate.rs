//! `minimail migrate --from sqlite:PATH --to postgres://...`, end to end
//! with real clients and a real PostgreSQL (`testkit::pg`): a SQLite
//! store is filled through a real `minimail up` (smtplib deliveries, an
//! alias, a Sieve script filing, imaplib APPEND with flags and keywords,
//! STORE, EXPUNGE, CREATE/RENAME/SUBSCRIBE, a quota); what imaplib sees is
//! recorded; the store is migrated while that server still runs; then
//! `minimail up --db postgres://...` must show imaplib exactly the same
//! (UIDVALIDITY, UIDs, flags, MODSEQs, QRESYNC answers, STATUS, quota),
//! resync by QRESYNC from the old HIGHESTMODSEQ with only later changes,
//! and give new mail UIDs and MODSEQs above the old ones. Plus the
//! refusals: not a store, a schema version mismatch, a URL that does not
//! connect, a target that is not empty or that another client holds a
//! lock on, a queue that is not empty, and a copy failing midway leaving
//! nothing behind.
//! Needs PostgreSQL's binaries (`apt-get install postgresql`) and python3.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use testkit::process::KillOnDrop as Up;

const BIN: &str = env!("CARGO_BIN_EXE_minimail");

type Log = std::sync::Arc<std::sync::Mutex<String>>;

fn ok(db: &str, args: &[&str], input: &str) -> String {
    testkit::process::with_db_ok(BIN, db, args, input)
}

/// `minimail migrate --from FROM --to TO`.
fn migrate(from: &str, to: &str) -> Output {
    testkit::process::run(
        Command::new(BIN).args(["migrate", "--from", from, "--to", to]),
        b"",
    )
}

/// Its failure message (asserting it failed).
fn refused(from: &str, to: &str) -> String {
    let out = migrate(from, to);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "migrate {from} {to} succeeded: {out:?}"
    );
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// `minimail up --db DB`; on PostgreSQL with a certificate made once in
/// a temporary directory (without one it would write a self-signed pair
/// into the working directory, the checkout).
fn up(db: &str) -> (Up, String, String, Log) {
    static CERTS: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let mut extra = vec!["--no-outbound".to_string()];
    if db.starts_with("postgres") {
        let certs = CERTS.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let out = Command::new(BIN)
                .args(["cert", "--out"])
                .arg(dir.path())
                .output()
                .unwrap();
            assert!(out.status.success(), "minimail cert: {out:?}");
            dir
        });
        for (flag, file) in [("--tls-cert", "cert.pem"), ("--tls-key", "key.pem")] {
            extra.push(flag.to_string());
            extra.push(certs.path().join(file).to_string_lossy().into_owned());
        }
    }
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let (child, line, _, log) =
        testkit::server::minimail_up_logged(BIN, Path::new(db), &extra, &[]);
    let smtp = testkit::server::addr_of(&line, "smtp");
    let imap = testkit::server::addr_of(&line, "imap");
    (Up(child), smtp, imap, log)
}

/// Run a Python script with `args`; its stdout lines.
fn python(script: &str, args: &[&str], log: &Log) -> Vec<String> {
    let out = testkit::process::run(
        Command::new("python3").arg("-c").arg(script).args(args),
        b"",
    );
    assert!(
        out.status.success(),
        "python: {}\n{}\nserver's log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout),
        log.lock().unwrap()
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn get(out: &[String], key: &str) -> String {
    out.iter()
        .find_map(|l| l.strip_prefix(&format!("{key} ")))
        .unwrap_or_else(|| panic!("no {key} in {out:?}"))
        .to_owned()
}

/// Python helpers shared by the scripts: `send`, `login`, and the
/// QRESYNC SELECT that prints its untagged answers.
const PY_COMMON: &str = r#"
import hashlib, imaplib, smtplib, sys
SMTP = sys.argv[1].rsplit(':', 1)
IMAP = sys.argv[2].rsplit(':', 1)
def send(to, subject, body):
    s = smtplib.SMTP(SMTP[0], int(SMTP[1]), local_hostname='client.test')
    msg = 'From: alice@example.org\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@example.org>\r\n\r\n%s\r\n' % (to, subject, subject.replace(' ', '.'), body)
    s.sendmail('alice@example.org', [to], msg.encode())
    s.quit()
def login(user='bob@localhost', pw='old-secret'):
    m = imaplib.IMAP4(IMAP[0], int(IMAP[1]))
    m.login(user, pw)
    return m
def qresync(m, box, uidvalidity, modseq):
    m.untagged_responses.clear()
    typ, d = m._simple_command('SELECT', '"%s" (QRESYNC (%s %s))' % (box, uidvalidity, modseq))
    assert typ == 'OK', (typ, d)
    out = []
    for k in ('VANISHED', 'FETCH', 'EXISTS', 'HIGHESTMODSEQ'):
        for v in m.untagged_responses.get(k, []):
            out.append('%s %s' % (k, v.decode() if isinstance(v, bytes) else v))
    ok = [v.decode() for v in m.untagged_responses.get('OK', []) if b'HIGHESTMODSEQ' in v or b'UIDVALIDITY' in v]
    return sorted(out) + sorted(ok)
"#;

/// Fill the SQLite store through the running server; prints `m0 N`
/// (INBOX's HIGHESTMODSEQ before the expunge) and `uidvalidity N`.
const PY_FILL: &str = r#"
m = login()
m.create('Work'); m.create('Reports'); m.create('Old'); m.create('Old/2025')
m.rename('Old', 'Archive')
m.subscribe('Work'); m.subscribe('Archive/2025'); m.unsubscribe('Trash')
for i in range(6):
    send('bob@localhost', 'note %d' % i, 'body %d with a Kumquat inside' % i)
send('bob@localhost', 'weekly report', 'filed by sieve')
send('info@localhost', 'via alias', 'for info')
send('carol@localhost', 'for carol', 'hello carol')
typ, _ = m.append('INBOX', '(\\Seen $Important project-x)', imaplib.Time2Internaldate(1700000000),
    b'From: me@example.org\r\nSubject: appended\r\n\r\nappended body\r\n')
assert typ == 'OK'
m.append('Work', '(\\Flagged)', None, b'Subject: work\r\n\r\nwork body\r\n')
m.append('Work', None, None, b'Subject: work 2\r\n\r\nwork body 2\r\n')
typ, d = m.select('INBOX')
m.uid('STORE', '1,3', '+FLAGS', '(\\Flagged)')
typ, d = m.status('INBOX', '(HIGHESTMODSEQ UIDVALIDITY)')
print('status0', d[0].decode())
m.uid('STORE', '2', '+FLAGS', '(\\Deleted)')
m.expunge()
m.uid('STORE', '4', '+FLAGS', '($Label1)')
m.uid('STORE', '5', '+FLAGS', '(\\Deleted)')
m.uid('EXPUNGE', '5')
m.select('Work')
m.uid('STORE', '1', '+FLAGS', '(\\Deleted \\Seen)')
m.expunge()
m.logout()
"#;

/// Everything imaplib sees of a user; argv[3] is a modseq to QRESYNC
/// INBOX from, argv[4] the user.
const PY_RECORD: &str = r#"
m = login(sys.argv[4], 'old-secret')
m.enable('QRESYNC')
typ, d = m.list()
boxes = []
for x in sorted(d):
    print('list', x.decode())
    boxes.append(x.decode().rsplit(' ', 1)[-1].strip('"'))
typ, d = m.lsub()
for x in sorted(d):
    print('lsub', x.decode())
for b in boxes:
    typ, d = m.status('"%s"' % b, '(MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ UNSEEN SIZE)')
    print('status', d[0].decode())
    typ, d = m.select('"%s"' % b, readonly=True)
    print('examine', b, d[0].decode(), [x.decode() for x in m.untagged_responses.get('FLAGS', [])])
    typ, d = m.uid('FETCH', '1:*', '(FLAGS MODSEQ INTERNALDATE RFC822.SIZE EMAILID THREADID SAVEDATE BODY.PEEK[])')
    for p in d:
        if isinstance(p, tuple):
            print('fetch', b, p[0].decode(), hashlib.sha1(p[1]).hexdigest())
        elif p is not None:
            print('fetch', b, p.decode())
    typ, d = m.uid('SEARCH', 'TEXT', 'kumquat')
    print('search', b, d[0].decode())
    typ, d = m.uid('SEARCH', 'HEADER', 'Subject', 'note')
    print('search-subject', b, d[0].decode())
typ, d = m.getquotaroot('INBOX')
print('quota', [x.decode() if isinstance(x, bytes) else x for y in d for x in y])
typ, d = m.select('INBOX')
uv = m.untagged_responses.get('UIDVALIDITY', [b'0'])[0].decode()
for line in qresync(m, 'INBOX', uv, sys.argv[3]):
    print('qresync', line)
for line in qresync(m, 'INBOX', uv, 1):
    print('qresync-all', line)
m.logout()
"#;

#[test]
fn a_live_store_moves_to_postgresql_and_clients_need_no_resync() {
    let pg = testkit::pg::fresh_db();
    let url = pg.url();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("minimail.db");
    let db = path.to_str().unwrap();

    ok(
        db,
        &["user", "add", "bob@localhost", "--password-stdin"],
        "old-secret\n",
    );
    ok(
        db,
        &["user", "add", "carol@localhost", "--password-stdin"],
        "old-secret\n",
    );
    ok(
        db,
        &["user", "quota", "bob@localhost", "10M", "--messages", "500"],
        "",
    );
    ok(db, &["alias", "add", "info@localhost", "bob@localhost"], "");
    ok(
        db,
        &["sieve", "put", "bob@localhost", "filing", "-", "--activate"],
        "require \"fileinto\";\nif header :contains \"subject\" \"report\" { fileinto \"Reports\"; }\n",
    );

    ok(
        db,
        &["dkim", "keygen", "example.org", "--selector", "s1"],
        "",
    );
    let dkim_before = ok(db, &["dkim", "show", "example.org"], "");

    let (sqlite_up, smtp, imap, log) = up(db);
    let fill = python(&format!("{PY_COMMON}{PY_FILL}"), &[&smtp, &imap], &log);
    // INBOX's HIGHESTMODSEQ before its expunges: a QRESYNC from it must
    // report them as VANISHED, on SQLite and on PostgreSQL alike.
    let status0 = get(&fill, "status0");
    let m0 = status0
        .split("HIGHESTMODSEQ ")
        .nth(1)
        .and_then(|s| s.split([' ', ')']).next())
        .unwrap()
        .to_owned();
    let record = |smtp: &str, imap: &str, log: &Log, user: &str| {
        python(
            &format!("{PY_COMMON}{PY_RECORD}"),
            &[smtp, imap, &m0, user],
            log,
        )
    };
    let before_bob = record(&smtp, &imap, &log, "bob@localhost");
    let before_carol = record(&smtp, &imap, &log, "carol@localhost");
    // What the fill made: the Sieve filing, the alias, the expunges.
    assert!(
        before_bob.iter().any(|l| l.starts_with("fetch Reports ")),
        "{before_bob:?}"
    );
    assert!(
        before_bob
            .iter()
            .any(|l| l.starts_with("qresync VANISHED (EARLIER)")),
        "{before_bob:?}"
    );
    assert!(
        before_bob
            .iter()
            .any(|l| l.starts_with("status \"Archive/2025\"")
                || l.starts_with("status Archive/2025")),
        "{before_bob:?}"
    );

    // Copied while the SQLite front end still runs (one snapshot).
    let out = migrate(&format!("sqlite:{db}"), url);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{out:?}");
    eprintln!("{text}");
    for (table, rows) in [
        ("users", 2),
        ("aliases", 1),
        ("sieve_scripts", 1),
        ("outq_msg", 0),
    ] {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(table))
            .unwrap_or_else(|| panic!("no {table} in {text}"));
        assert_eq!(
            line.split_whitespace().nth(1),
            Some(rows.to_string().as_str()),
            "{line}"
        );
    }
    assert!(text.contains("copied 9 messages"), "{text}");
    assert!(text.contains("snapshot at commit counter "), "{text}");
    drop(sqlite_up);

    // The same on PostgreSQL, to the byte.
    let (_pg_up, smtp, imap, log) = up(url);
    let after_bob = record(&smtp, &imap, &log, "bob@localhost");
    let after_carol = record(&smtp, &imap, &log, "carol@localhost");
    assert_eq!(without_recent(&before_bob), without_recent(&after_bob));
    assert_eq!(without_recent(&before_carol), without_recent(&after_carol));

    // Resync from the old HIGHESTMODSEQ: only what changed since; new
    // mail above the old UIDs and MODSEQs; the alias, the Sieve script
    // and quota accounting still at work; new ids after the copied ones.
    let inbox_status = get(&before_bob, "status \"INBOX\"");
    let num = |s: &str, k: &str| -> u64 {
        s.split(&format!("{k} "))
            .nth(1)
            .and_then(|s| s.trim_start_matches('(').split([' ', ')']).next())
            .unwrap()
            .parse()
            .unwrap()
    };
    let (old_uidnext, old_modseq, uidvalidity) = (
        num(&inbox_status, "UIDNEXT"),
        num(&inbox_status, "HIGHESTMODSEQ"),
        num(&inbox_status, "UIDVALIDITY"),
    );
    let after = python(
        &format!(
            "{PY_COMMON}{}",
            r#"
m = login()
m.enable('QRESYNC')
typ, d = m.getquotaroot('INBOX')
print('quota0', d[1][0].decode())
m.select('INBOX')
m.uid('STORE', '1', '+FLAGS', '(\\Answered)')
m.uid('STORE', '3', '+FLAGS', '(\\Deleted)')
m.uid('EXPUNGE', '3')
send('bob@localhost', 'after move', 'new mail')
send('info@localhost', 'after move alias', 'new mail')
send('bob@localhost', 'another report', 'sieve files it')
for line in qresync(m, 'INBOX', sys.argv[3], sys.argv[4]):
    print('resync', line)
typ, d = m.status('Reports', '(MESSAGES)')
print('reports', d[0].decode())
typ, d = m.getquotaroot('INBOX')
print('quota1', d[1][0].decode())
typ, d = m.create('Brand/New')
print('create', typ)
m.logout()
"#
        ),
        &[
            &smtp,
            &imap,
            &uidvalidity.to_string(),
            &old_modseq.to_string(),
        ],
        &log,
    );
    let resync: Vec<&String> = after.iter().filter(|l| l.starts_with("resync ")).collect();
    let vanished: Vec<&&String> = resync.iter().filter(|l| l.contains("VANISHED")).collect();
    assert_eq!(vanished.len(), 1, "{resync:?}");
    assert_eq!(
        vanished[0].as_str(),
        "resync VANISHED (EARLIER) 3",
        "{resync:?}"
    );
    let fetched: Vec<(u64, u64)> = resync
        .iter()
        .filter(|l| l.starts_with("resync FETCH "))
        .map(|l| (num(l, "UID"), num(l, "MODSEQ")))
        .collect();
    // UID 1 (flag change) and the two new INBOX messages, nothing older.
    assert_eq!(fetched.len(), 3, "{resync:?}");
    assert!(fetched.iter().all(|&(_, ms)| ms > old_modseq), "{resync:?}");
    assert!(fetched.iter().any(|&(uid, _)| uid == 1), "{resync:?}");
    let new_uids: Vec<u64> = fetched.iter().map(|f| f.0).filter(|&u| u != 1).collect();
    assert!(
        new_uids.iter().all(|&u| u >= old_uidnext),
        "{new_uids:?} vs {old_uidnext}"
    );
    // The second Sieve-filed report arrived in Reports.
    assert!(get(&after, "reports").contains("MESSAGES 2"), "{after:?}");
    // Quota usage kept by the trigger again: +3 messages (INBOX x2,
    // Reports), -1 expunged.
    let (q0, q1) = (get(&after, "quota0"), get(&after, "quota1"));
    let messages = |q: &str| -> i64 {
        q.split("MESSAGE ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(messages(&q1), messages(&q0) + 2, "{q0} / {q1}");
    assert_eq!(get(&after, "create"), "OK");
    // A new user gets an id of its own (not a copied one).
    ok(
        url,
        &["user", "add", "dave@localhost", "--password-stdin"],
        "pw\n",
    );
    let list = ok(url, &["user", "list"], "");
    assert_eq!(list.lines().count(), 3, "{list}");
    // Sieve script and alias listed from PostgreSQL.
    assert!(ok(url, &["sieve", "list", "bob@localhost"], "").contains("filing"));
    assert!(ok(url, &["alias", "list"], "").contains("info@localhost"));
    // The DKIM key, byte for byte (its public half is in the record).
    assert_eq!(ok(url, &["dkim", "show", "example.org"], ""), dkim_before);
}

/// Deliveries go on while migrate copies: the copy is one snapshot, so
/// PostgreSQL holds exactly the first N messages (UIDs 1..N, no gap, no
/// half-copied delivery: quota usage counts N), N being the count migrate
/// printed; the rest stayed behind in SQLite, as documented.
#[test]
fn a_copy_taken_during_deliveries_is_one_consistent_snapshot() {
    let pg = testkit::pg::fresh_db();
    let url = pg.url();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("minimail.db");
    let db = path.to_str().unwrap();
    ok(
        db,
        &["user", "add", "bob@localhost", "--password-stdin"],
        "old-secret\n",
    );
    ok(
        db,
        &[
            "user",
            "quota",
            "bob@localhost",
            "none",
            "--messages",
            "100000",
        ],
        "",
    );
    let (sqlite_up, smtp, imap, log) = up(db);
    let sender = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "{PY_COMMON}\nfor i in range(400):\n    send('bob@localhost', 'load %d' % i, 'x' * 2000)\n"
        ))
        .args([&smtp, &imap])
        .spawn()
        .unwrap();
    let mut sender = Up(sender);
    // Some mail first, then the copy in the middle of the stream.
    let first = python(
        &format!(
            "{PY_COMMON}\nimport time\nm = login()\nwhile True:\n    typ, d = m.status('INBOX', '(MESSAGES)')\n    if int(d[0].split()[2].strip(b')')) >= 50: break\n    time.sleep(0.05)\nprint('ok')\n"
        ),
        &[&smtp, &imap],
        &log,
    );
    assert_eq!(first, ["ok"]);
    let out = migrate(db, url);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{out:?}");
    let status = sender.0.wait().unwrap();
    assert!(status.success());
    drop(sqlite_up);
    let copied: u64 = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some("messages"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap();
    eprintln!("copied {copied} of 400 messages delivered meanwhile");
    assert!((50..=400).contains(&copied), "{text}");

    let (_pg_up, smtp, imap, log) = up(url);
    let seen = python(
        &format!(
            "{PY_COMMON}\nm = login()\nm.select('INBOX')\ntyp, d = m.uid('SEARCH', 'ALL')\nprint('uids', d[0].decode())\ntyp, d = m.getquotaroot('INBOX')\nprint('quota', d[1][0].decode())\ntyp, d = m.status('INBOX', '(UIDNEXT HIGHESTMODSEQ)')\nprint('status', d[0].decode())\n"
        ),
        &[&smtp, &imap],
        &log,
    );
    let uids: Vec<u64> = get(&seen, "uids")
        .split_whitespace()
        .map(|u| u.parse().unwrap())
        .collect();
    assert_eq!(uids, (1..=copied).collect::<Vec<_>>());
    assert!(
        get(&seen, "quota").contains(&format!("MESSAGE {copied} ")),
        "{seen:?}"
    );
    let status = get(&seen, "status");
    assert!(
        status.contains(&format!("UIDNEXT {} ", copied + 1)),
        "{status}"
    );
}

#[test]
fn migrate_refuses_what_it_cannot_copy_and_leaves_nothing_behind() {
    let pg = testkit::pg::fresh_db();
    let url = pg.url();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store.db");
    let store_s = store.to_str().unwrap();
    ok(
        store_s,
        &["user", "add", "bob@localhost", "--password-stdin"],
        "pw\n",
    );
    let from = format!("sqlite:{store_s}");

    // Not a store.
    let missing = dir.path().join("missing.db");
    let err = refused(missing.to_str().unwrap(), url);
    assert!(err.contains("no such file"), "{err}");
    assert!(!missing.exists(), "migrate created {missing:?}");
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello, not a database\n".repeat(200)).unwrap();
    let err = refused(&format!("sqlite:{}", text.display()), url);
    assert!(err.contains("is not a minimail store"), "{err}");
    let other = dir.path().join("other.db");
    sqlite(&other, "CREATE TABLE t(x); INSERT INTO t VALUES (1);");
    let err = refused(other.to_str().unwrap(), url);
    assert!(err.contains("is not a minimail store"), "{err}");
    let err = refused(url, url);
    assert!(err.contains("from a SQLite store"), "{err}");
    let err = refused(&from, other.to_str().unwrap());
    assert!(err.contains("give a PostgreSQL URL"), "{err}");

    // A schema version this minimail is not at.
    let old = dir.path().join("old.db");
    std::fs::copy(&store, &old).unwrap();
    sqlite(&old, "PRAGMA user_version = 12;");
    let err = refused(old.to_str().unwrap(), url);
    assert!(err.contains("schema version 12"), "{err}");

    // A URL that does not connect (a port nobody listens on).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = refused(&from, &format!("postgres://minimail@127.0.0.1:{port}/mail"));
    assert!(err.contains("cannot connect"), "{err}");

    // A queue the PostgreSQL backend would not deliver.
    let queued = dir.path().join("queued.db");
    std::fs::copy(&store, &queued).unwrap();
    sqlite(
        &queued,
        "INSERT INTO outq_msg(id, qid, sender, created, size) VALUES (1, 'q1', 'a@b', 0, 3);
         INSERT INTO outq_body(msg_id, raw) VALUES (1, x'616263');",
    );
    let err = refused(queued.to_str().unwrap(), url);
    assert!(err.contains("outbound queue"), "{err}");

    // A row PostgreSQL cannot take midway (after users and mailboxes
    // went in): the transaction is rolled back, nothing stays.
    let bad = dir.path().join("bad.db");
    std::fs::copy(&store, &bad).unwrap();
    sqlite(
        &bad,
        "INSERT INTO expunged(mailbox_id, uid, modseq) VALUES (1, 99, 'not a number');",
    );
    let err = refused(bad.to_str().unwrap(), url);
    assert!(err.contains("expunged.modseq"), "{err}");
    assert_eq!(
        ok(url, &["user", "list"], ""),
        "",
        "a failed copy left users behind"
    );

    // Now the real copy (into the schema the failed attempts left, with
    // no data in it), then a second one into the same database.
    let out = migrate(&from, url);
    assert!(out.status.success(), "{out:?}");
    let err = refused(&from, url);
    assert!(err.contains("is not empty"), "{err}");

    // A database where minimail already made a user is not empty either.
    let pg2 = testkit::pg::fresh_db();
    ok(
        pg2.url(),
        &["user", "add", "x@localhost", "--password-stdin"],
        "pw\n",
    );
    let err = refused(&from, pg2.url());
    assert!(err.contains("is not empty (table users has rows)"), "{err}");
}

/// `lines` without the `\\Recent` flag: it is session state (the first
/// session of a process to see a message), kept by no store and so not
/// copied; the new front end's first session sees every message as
/// recent again (IMAP4rev2 dropped the flag).
fn without_recent(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            l.replace("(\\Recent)", "()")
                .replace(" \\Recent", "")
                .replace("\\Recent ", "")
        })
        .collect()
}

/// Run SQL on a SQLite file with Python's sqlite3 (another real client).
fn sqlite(path: &Path, sql: &str) {
    let out = testkit::process::run(
        Command::new("python3").args([
            "-c",
            "import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\nc.executescript(sys.argv[2])\nc.commit()",
            path.to_str().unwrap(),
            sql,
        ]),
        b"",
    );
    assert!(out.status.success(), "sqlite3: {out:?}");
}

/// A target some other client is writing (here `psql` holding the lock
/// an INSERT takes on `users`) is not waited for forever: migrate gives
/// up after its lock timeout (10 s) with the reason, and nothing is
/// copied.
#[test]
fn a_target_in_use_is_refused_after_the_lock_timeout() {
    let pg = testkit::pg::fresh_db();
    let url = pg.url();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store.db");
    let store_s = store.to_str().unwrap();
    ok(
        store_s,
        &["user", "add", "bob@localhost", "--password-stdin"],
        "pw\n",
    );
    // The schema, made by minimail as any front end would.
    assert_eq!(ok(url, &["user", "list"], ""), "");
    let psql = testkit::pg::bindir().unwrap().join("psql");
    let (hostport, db) = url
        .strip_prefix("postgres://minimail@")
        .unwrap()
        .split_once('/')
        .unwrap();
    let port = hostport.rsplit_once(':').unwrap().1;
    let psql_args = |sql: &str| -> Vec<String> {
        [
            "-h",
            "127.0.0.1",
            "-p",
            port,
            "-U",
            "minimail",
            "-d",
            db,
            "-X",
            "-At",
            "-c",
            sql,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    };
    let holder = Command::new(&psql)
        .args(psql_args(
            "BEGIN; LOCK TABLE users IN ROW EXCLUSIVE MODE; SELECT pg_sleep(60); COMMIT;",
        ))
        .env("PGAPPNAME", "lock-holder")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _holder = Up(holder);
    let held = (0..100).any(|_| {
        let out = testkit::process::run(
            Command::new(&psql).args(psql_args(
                "SELECT count(*) FROM pg_locks WHERE relation = 'users'::regclass \
                 AND mode = 'RowExclusiveLock' AND granted",
            )),
            b"",
        );
        let n = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if n == "1" {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        false
    });
    assert!(held, "psql never took its lock");
    let err = refused(store_s, url);
    assert!(err.contains("cannot lock table users"), "{err}");
    assert!(err.contains("lock timeout"), "{err}");
    // The server notices a vanished client only when it next talks to
    // it: end the sleeping backend itself.
    drop(_holder);
    testkit::process::run(
        Command::new(&psql).args(psql_args(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = 'lock-holder'",
        )),
        b"",
    );
    assert_eq!(
        ok(url, &["user", "list"], ""),
        "",
        "a refused copy left users behind"
    );
    // Once the other client is gone, the copy goes through.
    let out = migrate(store_s, url);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(ok(url, &["user", "list"], "").trim(), "bob@localhost");
}
