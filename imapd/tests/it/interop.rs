//! Interop with real clients: Python's imaplib and curl's imap:// support.
//! These fail (not skip) if python3 or curl is missing.

use crate::util::*;
use std::process::Command;

#[test]
fn python_imaplib_logs_in_selects_fetches_stores_searches() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    s.deliver(bob, MULTIPART);
    s.deliver(bob, &simple("second", "hello imaplib"));
    let script = r#"
import imaplib, sys
port = int(sys.argv[1]); expected = open(sys.argv[2], 'rb').read()
m = imaplib.IMAP4('127.0.0.1', port)
m.login('bob@localhost', 'secret pw')
typ, data = m.select('INBOX')
assert typ == 'OK' and data == [b'2'], (typ, data)
typ, data = m.fetch('1', '(BODY.PEEK[])')
assert typ == 'OK' and data[0][1] == expected, data
typ, data = m.uid('FETCH', '2', '(FLAGS RFC822.SIZE)')
assert typ == 'OK' and b'UID 2' in data[0], data
typ, data = m.store('2', '+FLAGS', '(\\Flagged)')
assert typ == 'OK' and b'\\Flagged' in data[0], data
typ, data = m.search(None, 'FLAGGED')
assert data == [b'2'], data
typ, data = m.uid('SEARCH', None, 'TEXT', 'imaplib')
assert data == [b'2'], data
typ, data = m.list()
assert typ == 'OK' and any(b'"INBOX"' in l for l in data), data
m.create('Py/Sub')
typ, data = m.copy('1:2', 'Py/Sub')
assert typ == 'OK', (typ, data)
typ, data = m.status('Py/Sub', '(MESSAGES)')
assert data == [b'"Py/Sub" (MESSAGES 2)'], data
typ, data = m.append('Py/Sub', '(\\Seen)', None, b'Subject: appended\r\n\r\nhi\r\n')
assert typ == 'OK', (typ, data)
m.close()
m.logout()
print('ok')
"#;
    let expected = s.dir.path().join("expected.eml");
    std::fs::write(&expected, MULTIPART).unwrap();
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(s.addr.port().to_string())
        .arg(&expected)
        .output()
        .expect("python3 must be installed for interop tests");
    assert!(
        out.status.success(),
        "imaplib failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

fn curl(args: &[&str]) -> std::process::Output {
    Command::new("curl")
        .args([
            "-s",
            "-S",
            "--max-time",
            "20",
            "-u",
            "bob@localhost:secret pw",
        ])
        .args(args)
        .output()
        .expect("curl must be installed for interop tests")
}

#[test]
fn curl_lists_mailboxes_and_fetches_a_message() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    s.deliver(bob, MULTIPART);
    let base = format!("imap://127.0.0.1:{}", s.addr.port());
    let out = curl(&[&format!("{base}/")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.contains("\"INBOX\"") && listing.contains("\"Sent\""),
        "{listing}"
    );
    let out = curl(&[&format!("{base}/INBOX;UID=1")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, MULTIPART);
    let out = curl(&[&format!("{base}/INBOX?SUBJECT%20Multi")]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("SEARCH 1"),
        "{:?}",
        out
    );
    // Upload (APPEND with a literal) and read it back.
    let file = s.dir.path().join("up.eml");
    let msg = simple("uploaded", "via curl");
    std::fs::write(&file, &msg).unwrap();
    let out = curl(&["-T", file.to_str().unwrap(), &format!("{base}/Drafts")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = curl(&[&format!("{base}/Drafts;UID=1")]);
    assert_eq!(out.stdout, msg);
}

fn mbsync(cfg: &std::path::Path) -> std::process::Output {
    Command::new("mbsync")
        .arg("-c")
        .arg(cfg)
        .arg("-a")
        .output()
        .expect("mbsync (isync) must be installed for interop tests")
}

fn maildir_files(dir: &std::path::Path) -> Vec<String> {
    let mut v = Vec::new();
    for sub in ["cur", "new"] {
        if let Ok(rd) = std::fs::read_dir(dir.join(sub)) {
            for e in rd.flatten() {
                v.push(format!("{sub}/{}", e.file_name().to_string_lossy()));
            }
        }
    }
    v.sort();
    v
}

#[test]
fn mbsync_syncs_to_maildir_and_flags_go_both_ways() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    s.deliver(bob, MULTIPART);
    s.deliver(bob, &simple("second", "two"));
    let root = s.dir.path().join("maildir");
    std::fs::create_dir_all(&root).unwrap();
    let cfg = s.dir.path().join("mbsyncrc");
    std::fs::write(
        &cfg,
        format!(
            "IMAPAccount t\nHost 127.0.0.1\nPort {port}\nUser bob@localhost\nPass \"secret pw\"\n\
SSLType None\nAuthMechs PLAIN LOGIN\n\nIMAPStore remote\nAccount t\n\n\
MaildirStore local\nPath {root}/\nInbox {root}/INBOX\nSubFolders Verbatim\n\n\
Channel c\nFar :remote:\nNear :local:\nPatterns *\nCreate Both\nExpunge Both\nSyncState *\n",
            port = s.addr.port(),
            root = root.display()
        ),
    )
    .unwrap();
    let out = mbsync(&cfg);
    assert!(
        out.status.success(),
        "mbsync: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inbox = root.join("INBOX");
    let files = maildir_files(&inbox);
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(root.join("Sent").is_dir() && root.join("Trash").is_dir());
    let bodies: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(inbox.join(f)).unwrap())
        .collect();
    // mbsync stores with LF line ends and adds its X-TUID header.
    let normalised: Vec<String> = bodies
        .iter()
        .map(|b| {
            String::from_utf8_lossy(b)
                .lines()
                .filter(|l| !l.starts_with("X-TUID: "))
                .map(|l| format!("{l}\r\n"))
                .collect()
        })
        .collect();
    let want = String::from_utf8_lossy(MULTIPART).into_owned();
    assert!(normalised.contains(&want), "{normalised:?}");

    // Local -> server: flag the first message in the Maildir.
    let first = &files[0];
    let (sub, name) = first.split_once('/').unwrap();
    let base = name.split(":2,").next().unwrap();
    std::fs::rename(
        inbox.join(first),
        inbox.join("cur").join(format!("{base}:2,FS")),
    )
    .unwrap();
    let _ = sub;
    // Server -> local: flag the other one on the server.
    let mut c = s.login("bob@localhost");
    c.ok("SELECT INBOX");
    let out = mbsync(&cfg);
    assert!(
        out.status.success(),
        "mbsync: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = c.ok("FETCH 1:2 FLAGS");
    let flagged = r
        .iter()
        .filter(|l| l.contains("\\Flagged") && l.contains("\\Seen"))
        .count();
    assert_eq!(flagged, 1, "{r:?}");
    let unflagged = if r[0].contains("\\Flagged") { 2 } else { 1 };
    c.ok(&format!("STORE {unflagged} +FLAGS (\\Answered)"));
    let out = mbsync(&cfg);
    assert!(
        out.status.success(),
        "mbsync: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files = maildir_files(&inbox);
    assert!(files.iter().any(|f| f.ends_with(":2,R")), "{files:?}");
}

fn offlineimap(rc: &std::path::Path) -> std::process::Output {
    Command::new("offlineimap")
        .args(["-c", rc.to_str().unwrap(), "-o", "-u", "basic"])
        .output()
        .expect("offlineimap (offlineimap3) must be installed for interop tests")
}

/// offlineimap3 (Debian's Python 3 port) syncs the server to a Maildir and
/// back: messages byte-exact, folders created, a flag set locally reaches
/// the server, a message flagged on the server gets the `F` in its file
/// name, and a message written into the local Maildir is uploaded.
#[test]
fn offlineimap_syncs_to_maildir_and_back() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    s.deliver(bob, MULTIPART);
    s.deliver(bob, &simple("second", "two"));
    let root = s.dir.path().join("oi-mail");
    let meta = s.dir.path().join("oi-meta");
    let rc = s.dir.path().join("offlineimaprc");
    std::fs::write(
        &rc,
        format!(
            "[general]\naccounts = t\nmetadata = {meta}\n\n\
[Account t]\nlocalrepository = local\nremoterepository = remote\n\n\
[Repository local]\ntype = Maildir\nlocalfolders = {root}\n\n\
[Repository remote]\ntype = IMAP\nremotehost = 127.0.0.1\nremoteport = {port}\n\
remoteuser = bob@localhost\nremotepass = secret pw\nssl = no\nstarttls = no\n\
auth_mechanisms = PLAIN, LOGIN\n",
            meta = meta.display(),
            root = root.display(),
            port = s.addr.port()
        ),
    )
    .unwrap();
    let out = offlineimap(&rc);
    assert!(
        out.status.success(),
        "offlineimap: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let inbox = root.join("INBOX");
    let files = maildir_files(&inbox);
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(
        root.join("Sent").is_dir() && root.join("Trash").is_dir(),
        "folders"
    );
    let bodies: Vec<String> = files
        .iter()
        .map(|f| String::from_utf8_lossy(&std::fs::read(inbox.join(f)).unwrap()).into_owned())
        .collect();
    let want = String::from_utf8_lossy(MULTIPART).into_owned();
    let lf = |t: &str| t.replace("\r\n", "\n");
    assert!(
        bodies.iter().any(|b| lf(b) == lf(&want)),
        "the multipart message is not there byte for byte: {bodies:?}"
    );

    // Local: flag the multipart message and add a new message; server:
    // flag the other one.
    let local = files
        .iter()
        .find(|f| {
            lf(&String::from_utf8_lossy(
                &std::fs::read(inbox.join(f)).unwrap(),
            )) == lf(&want)
        })
        .unwrap()
        .clone();
    let base = local
        .split_once('/')
        .unwrap()
        .1
        .split(":2,")
        .next()
        .unwrap()
        .to_owned();
    std::fs::rename(
        inbox.join(&local),
        inbox.join("cur").join(format!("{base}:2,F")),
    )
    .unwrap();
    std::fs::write(
        inbox.join("new").join("1700000000.local.host"),
        simple("written locally", "upload me"),
    )
    .unwrap();
    let mut c = s.login("bob@localhost");
    c.ok("SELECT INBOX");
    let r = c.ok("UID SEARCH SUBJECT second");
    let second = r[0].trim_start_matches("* SEARCH ").trim().to_owned();
    c.ok(&format!("UID STORE {second} +FLAGS (\\Flagged)"));
    let out = offlineimap(&rc);
    assert!(
        out.status.success(),
        "offlineimap: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = c.ok("UID SEARCH FLAGGED");
    let flagged: Vec<&str> = r[0]
        .trim_start_matches("* SEARCH ")
        .split_whitespace()
        .collect();
    assert_eq!(flagged.len(), 2, "both flagged on the server: {r:?}");
    let r = c.ok("UID SEARCH SUBJECT \"written locally\"");
    assert_eq!(
        r[0].trim_start_matches("* SEARCH ")
            .split_whitespace()
            .count(),
        1,
        "{r:?}"
    );
    let files = maildir_files(&inbox);
    assert_eq!(files.len(), 3, "{files:?}");
    assert_eq!(
        files
            .iter()
            .filter(|f| f.rsplit(":2,").next().is_some_and(|fl| fl.contains('F')))
            .count(),
        2,
        "{files:?}"
    );
}
