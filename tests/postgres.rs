//! `minimail` over PostgreSQL, end to end with real clients: a private
//! cluster (`testkit::pg`: initdb + pg_ctl on a loopback port),
//! `minimail user add/list/passwd` with `MINIMAIL_DB=postgres://...`, then
//! two `minimail up --db postgres://...` front ends over the one database:
//! Python's smtplib delivers through front end A, imaplib on A reads it
//! back (SELECT, FETCH, SEARCH, STORE, EXPUNGE, COPY, MOVE), and an IDLE
//! session on front end B sees a message delivered through A.
//! Needs PostgreSQL's binaries (`apt-get install postgresql`).

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use testkit::pg::PgCluster;

use testkit::process::KillOnDrop as Up;

const BIN: &str = env!("CARGO_BIN_EXE_minimail");

fn minimail(url: &str, args: &[&str], input: &str) -> Output {
    testkit::process::with_db(BIN, url, args, input)
}

fn ok(url: &str, args: &[&str], input: &str) -> String {
    testkit::process::with_db_ok(BIN, url, args, input)
}

type Log = std::sync::Arc<std::sync::Mutex<String>>;

/// `minimail up --db URL` with a certificate made in `certs` (without
/// one it would write a self-signed pair into the working directory).
fn up(url: &str, certs: &Path) -> (Up, String, String, Log) {
    let (cert, key) = (certs.join("cert.pem"), certs.join("key.pem"));
    if !cert.exists() {
        let out = Command::new(BIN)
            .args(["cert", "--out"])
            .arg(certs)
            .output()
            .unwrap();
        assert!(out.status.success(), "minimail cert: {out:?}");
    }
    let (child, line, _, log) = testkit::server::minimail_up_logged(
        BIN,
        Path::new(url),
        &[
            "--no-outbound",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[],
    );
    let smtp = testkit::server::addr_of(&line, "smtp");
    let imap = testkit::server::addr_of(&line, "imap");
    (Up(child), smtp, imap, log)
}

fn python(script: &str, logs: &[&Log]) -> Vec<String> {
    let out = testkit::process::run(Command::new("python3").args(["-c", script]), b"");
    assert!(
        out.status.success(),
        "python: {}\n{}\nservers' logs:\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout),
        logs.iter()
            .map(|l| l.lock().unwrap().clone())
            .collect::<Vec<_>>()
            .join("\n----\n")
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn hp(addr: &str) -> (&str, &str) {
    addr.rsplit_once(':').unwrap()
}

#[test]
fn users_smtp_imap_and_idle_across_two_front_ends() {
    let pg = PgCluster::start();
    let url = pg.url();

    // Accounts, over the URL; migrations run on first open.
    let added = ok(
        url,
        &["user", "add", "bob@localhost", "--password-stdin"],
        "old\n",
    );
    assert!(added.contains("bob@localhost"), "{added}");
    ok(
        url,
        &["user", "add", "carol@localhost", "--password-stdin"],
        "pw\n",
    );
    ok(
        url,
        &["user", "passwd", "bob@localhost", "--password-stdin"],
        "pw\n",
    );
    let list = ok(url, &["user", "list"], "");
    assert!(
        list.contains("bob@localhost") && list.contains("carol@localhost"),
        "{list}"
    );
    let dup = minimail(
        url,
        &["user", "add", "BOB@localhost", "--password-stdin"],
        "x\n",
    );
    assert!(!dup.status.success(), "{dup:?}");

    let certs = tempfile::tempdir().unwrap();
    let (_a, smtp_a, imap_a, log_a) = up(url, certs.path());
    let (_b, _smtp_b, imap_b, log_b) = up(url, certs.path());
    let (sh, sp) = hp(&smtp_a);
    let (ah, ap) = hp(&imap_a);
    let (bh, bp) = hp(&imap_b);
    let script = format!(
        r#"
import imaplib, smtplib, socket, time
def send(i, to='bob@localhost'):
    s = smtplib.SMTP('{sh}', {sp}, local_hostname='client.test')
    msg = 'From: alice@example.org\r\nTo: %s\r\nSubject: m%d\r\n\r\nbody number %d Kumquat\r\n' % (to, i, i)
    s.sendmail('alice@example.org', [to, 'carol@localhost'], msg.encode())
    s.quit()
for i in range(3):
    send(i)
m = imaplib.IMAP4('{ah}', {ap})
m.login('bob@localhost', 'pw')
typ, d = m.select('INBOX')
print('exists', d[0].decode())
typ, d = m.uid('FETCH', '1:*', '(FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
print('subjects', ' '.join(p[1].decode().strip() for p in d if isinstance(p, tuple)))
typ, d = m.uid('SEARCH', None, 'TEXT', 'kumquat')
print('text', d[0].decode())
typ, d = m.uid('SEARCH', None, 'SUBJECT', 'm1')
print('subject', d[0].decode())
typ, d = m.uid('FETCH', '2', '(BODY[])')
print('body2', 'body number 1' in d[0][1].decode())
typ, d = m.uid('SEARCH', None, 'SEEN')
print('seen', d[0].decode())
m.uid('STORE', '1', '+FLAGS', '(\\Deleted)')
typ, d = m.expunge()
print('expunged', ' '.join(x.decode() for x in d if x))
typ, d = m.uid('COPY', '2', 'Sent')
print('copy', typ)
typ, d = m.uid('MOVE', '3', 'Trash')
print('move', typ)
for box in ['INBOX', 'Sent', 'Trash']:
    typ, d = m.status(box, '(MESSAGES UIDNEXT)')
    print('status', d[0].decode())
typ, d = m.create('Lists/Rust')
print('create', typ)
typ, d = m.rename('Lists', 'Groups')
print('rename', typ)
typ, d = m.list()
print('list', ' '.join(x.decode().rsplit(' ', 1)[-1] for x in d))
m.logout()

# IDLE on front end B, delivery through front end A.
c = socket.create_connection(('{bh}', {bp}), timeout=10)
f = c.makefile('rb')
def line():
    return f.readline().decode()
line()
c.sendall(b'a LOGIN bob@localhost pw\r\n')
while not line().startswith('a '): pass
c.sendall(b'b SELECT INBOX\r\n')
while not line().startswith('b '): pass
c.sendall(b'c IDLE\r\n')
assert line().startswith('+')
t = time.time()
send(9)
while True:
    l = line()
    if l.endswith('EXISTS\r\n'):
        print('idle', l.strip(), round(time.time() - t, 3))
        break
# A flag change and an expunge through front end A reach the same IDLE.
a = imaplib.IMAP4('{ah}', {ap})
a.login('bob@localhost', 'pw')
a.select('INBOX')
t = time.time()
a.store('2', '+FLAGS', '(\\Flagged)')
while True:
    l = line()
    if 'FETCH' in l and '\\Flagged' in l:
        print('idleflag', l.strip(), round(time.time() - t, 3))
        break
a.store('2', '+FLAGS', '(\\Deleted)')
t = time.time()
a.expunge()
while True:
    l = line()
    if l.endswith('EXPUNGE\r\n'):
        print('idleexpunge', l.strip(), round(time.time() - t, 3))
        break
a.logout()
c.sendall(b'DONE\r\n')
while not line().startswith('c '): pass
c.sendall(b'd LOGOUT\r\n')
"#
    );
    let out = python(&script, &[&log_a, &log_b]);
    let get = |k: &str| -> String {
        out.iter()
            .find_map(|l| l.strip_prefix(&format!("{k} ")))
            .unwrap_or_else(|| panic!("no {k} in {out:?}"))
            .to_owned()
    };
    assert_eq!(get("exists"), "3");
    assert_eq!(get("subjects"), "Subject: m0 Subject: m1 Subject: m2");
    assert_eq!(get("text"), "1 2 3");
    assert_eq!(get("subject"), "2");
    assert_eq!(get("body2"), "True");
    // FETCH BODY[] set \Seen.
    assert_eq!(get("seen"), "2");
    assert_eq!(get("expunged"), "1");
    assert_eq!(get("copy"), "OK");
    assert_eq!(get("move"), "OK");
    let status: Vec<&String> = out.iter().filter(|l| l.starts_with("status ")).collect();
    assert_eq!(status.len(), 3, "{out:?}");
    assert!(
        status[0].contains("MESSAGES 1") && status[0].contains("UIDNEXT 4"),
        "{status:?}"
    );
    assert!(status[1].contains("MESSAGES 1"), "{status:?}");
    assert!(status[2].contains("MESSAGES 1"), "{status:?}");
    assert_eq!(get("create"), "OK");
    assert_eq!(get("rename"), "OK");
    let list = get("list");
    assert!(
        list.contains("Groups/Rust") && !list.contains("Lists"),
        "{list}"
    );
    // Each reached B's IDLE in well under the 5 s safety poll: pushed by
    // LISTEN/NOTIFY (the delay printed is from before the SMTP session or
    // the IMAP command on A to the response on B).
    let delay = |what: &str, line: &str| -> f64 {
        let secs: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        eprintln!("IDLE on front end B saw front end A's {what}: {line}");
        assert!(secs < 2.5, "{what} took {secs} s: {line}");
        secs
    };
    let idle = get("idle");
    assert!(idle.starts_with("* 2 EXISTS"), "{idle}");
    delay("delivery", &idle);
    let flag = get("idleflag");
    assert!(flag.starts_with("* 2 FETCH"), "{flag}");
    delay("flag change", &flag);
    let gone = get("idleexpunge");
    assert!(gone.starts_with("* 2 EXPUNGE"), "{gone}");
    delay("expunge", &gone);

    // Carol got her copies of all four, stored once with bob's.
    let carol = testkit::imap::fetch_all(imap_b.parse().unwrap(), "carol@localhost", "pw", "INBOX");
    assert_eq!(carol.len(), 4);
}

/// A Sieve `fileinto` script works on `minimail up --db postgres://...`
/// as on SQLite (`tests/sieve.rs`): installed with `minimail sieve put`
/// over the URL, a matching message delivered through front end A is
/// filed (folder created, flags set) and read through front end B; one
/// that does not match is kept in INBOX.
#[test]
fn sieve_fileinto_files_across_front_ends() {
    let pg = PgCluster::start();
    let url = pg.url();
    ok(
        url,
        &["user", "add", "bob@localhost", "--password-stdin"],
        "pw\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.sieve");
    std::fs::write(
        &file,
        "require [\"fileinto\", \"imap4flags\", \"mailbox\"];\n\
         if header :contains \"Subject\" \"[lists]\" {\n\
         \x20   fileinto :create :flags \"\\\\Seen $List\" \"Lists/Weekly\";\n\
         \x20   stop;\n\
         }\n",
    )
    .unwrap();
    let put = ok(
        url,
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
    let (_a, smtp_a, _imap_a, log_a) = up(url, dir.path());
    let (_b, _smtp_b, imap_b, log_b) = up(url, dir.path());
    let (sh, sp) = hp(&smtp_a);
    let (bh, bp) = hp(&imap_b);
    let script = format!(
        r#"
import imaplib, smtplib
def send(subject):
    s = smtplib.SMTP('{sh}', {sp}, local_hostname='client.test')
    msg = 'From: list@example.org\r\nTo: bob@localhost\r\nSubject: %s\r\n\r\nnews\r\n' % subject
    s.sendmail('list@example.org', ['bob@localhost'], msg.encode())
    s.quit()
send('[lists] weekly digest')
send('hello bob')
m = imaplib.IMAP4('{bh}', {bp})
m.login('bob@localhost', 'pw')
for box in ['Lists/Weekly', 'INBOX']:
    typ, d = m.select(box)
    print('box', box, typ, d[0].decode())
    typ, d = m.fetch('1:*', '(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
    for p in d:
        if isinstance(p, tuple):
            print('msg', box, p[0].decode(), p[1].decode().strip())
typ, d = m.lsub('""', '*')
print('subscribed', ' '.join(x.decode().rsplit(' ', 1)[-1] for x in d))
m.logout()
"#
    );
    let out = python(&script, &[&log_a, &log_b]);
    let text = out.join("\n");
    assert!(out.contains(&"box Lists/Weekly OK 1".to_owned()), "{text}");
    assert!(out.contains(&"box INBOX OK 1".to_owned()), "{text}");
    let filed = out
        .iter()
        .find(|l| l.starts_with("msg Lists/Weekly"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        filed.contains("\\Seen") && filed.contains("$List") && filed.contains("[lists] weekly"),
        "{filed}"
    );
    let kept = out
        .iter()
        .find(|l| l.starts_with("msg INBOX"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        kept.contains("hello bob") && !kept.contains("\\Seen"),
        "{kept}"
    );
    assert!(
        out.iter()
            .any(|l| l.starts_with("subscribed") && l.contains("Lists/Weekly")),
        "fileinto :create subscribes: {text}"
    );
}

/// SELECT of a mailbox changed since it was last selected is brought up to
/// date from the remembered state and the changes since, on PostgreSQL as
/// on SQLite (`Reader::summary_since`, issue 18/21), also when the changes
/// come through the other front end: after every step of a mixed run of
/// changes made through front end B (flags on and off, keywords added and
/// taken off, APPENDs, expunges, several at once), a session on front end
/// A that re-SELECTs must answer EXISTS, UNSEEN, FLAGS and the sequence
/// -> UID map exactly as B's session reads them from the store.
#[test]
fn select_after_changes_on_the_other_front_end_matches_the_store() {
    let pg = PgCluster::start();
    let url = pg.url();
    ok(
        url,
        &["user", "add", "bob@localhost", "--password-stdin"],
        "pw\n",
    );
    let certs = tempfile::tempdir().unwrap();
    let (_a, _, imap_a, log_a) = up(url, certs.path());
    let (_b, _, imap_b, log_b) = up(url, certs.path());
    let (ah, ap) = hp(&imap_a);
    let (bh, bp) = hp(&imap_b);
    let script = format!(
        r#"
import imaplib, random, re
rng = random.Random(7)
a = imaplib.IMAP4('{ah}', {ap}); a.login('bob@localhost', 'pw')
b = imaplib.IMAP4('{bh}', {bp}); b.login('bob@localhost', 'pw')
def append(n):
    for i in range(n):
        b.append('INBOX', None, None, ('From: x@example.org\r\nSubject: s%d\r\n\r\nbody\r\n' % i).encode())
append(30)
b.select('INBOX')
def truth():
    b.noop()
    typ, d = b.fetch('1:*', '(UID FLAGS)') if int(b.select('INBOX')[1][0]) else ('OK', [])
    rows = []
    for x in d:
        if x is None: continue
        m = re.search(rb'UID (\d+) FLAGS \(([^)]*)\)', x)
        rows.append((int(m.group(1)), sorted(f for f in m.group(2).decode().split() if f != '\\Recent')))
    return rows
def seen_by_a():
    typ, d = a.select('INBOX')
    exists = int(d[0])
    unseen = a.untagged_responses.get('UNSEEN', [None])[0]
    flags = a.untagged_responses.get('FLAGS', [b''])[0].decode()
    rows = []
    if exists:
        typ, d = a.fetch('1:*', '(UID FLAGS)')
        for x in d:
            if x is None: continue
            m = re.search(rb'UID (\d+) FLAGS \(([^)]*)\)', x)
            rows.append((int(m.group(1)), sorted(f for f in m.group(2).decode().split() if f != '\\Recent')))
    a.close()
    return exists, unseen, flags, rows
keywords = ['Kumquat', '$Label1', 'Zeta', 'alpha']
seen_by_a()
steps = 0
for step in range(40):
    rows = truth()
    n = len(rows)
    k = rng.randrange(6)
    if n and k == 0:
        b.store('%d:%d' % (rng.randrange(n) + 1, n), '+FLAGS', '(\\Seen)')
    elif n and k == 1:
        b.store(str(rng.randrange(n) + 1), '-FLAGS', '(\\Seen)')
    elif n and k == 2:
        b.store(str(rng.randrange(n) + 1), '+FLAGS', '(%s)' % rng.choice(keywords))
    elif n and k == 3:
        b.store('1:*', '-FLAGS', '(%s)' % rng.choice(keywords))
    elif k == 4:
        append(rng.randrange(1, 3))
    elif n:
        b.store(str(rng.randrange(n) + 1), '+FLAGS', '(\\Deleted)')
        if rng.randrange(2):
            b.store(str(rng.randrange(n) + 1), '+FLAGS', '(\\Deleted \\Seen)')
        b.expunge()
    rows = truth()
    exists, unseen, flags, arows = seen_by_a()
    want_unseen = next((i + 1 for i, r in enumerate(rows) if '\\Seen' not in r[1]), None)
    used = sorted({{f for r in rows for f in r[1] if not f.startswith('\\')}}, key=str.lower)
    got_kw = sorted([f for f in flags.strip('()').split() if not f.startswith('\\')], key=str.lower)
    assert exists == len(rows), (step, exists, len(rows))
    assert arows == rows, (step, arows, rows)
    assert (int(unseen) if unseen else None) == want_unseen, (step, unseen, want_unseen)
    assert [x.lower() for x in got_kw] == [x.lower() for x in used], (step, flags, used)
    steps += 1
print('steps', steps, 'left', len(rows))
"#
    );
    let out = python(&script, &[&log_a, &log_b]);
    assert!(out.iter().any(|l| l.starts_with("steps 40 ")), "{out:?}");
}
