//! ManageSieve (RFC 5804) on a real `minimail up`, driven by real
//! clients: Debian's `sieve-connect` (Perl, STARTTLS verified against the
//! server's self-signed certificate) and Python's `managesieve` library
//! upload the scripts Roundcube's and Thunderbird's filter editors write,
//! list, activate, download and delete them; a script that does not
//! compile is refused at PUTSCRIPT with the compiler's message and
//! nothing is activated. End to end: a script uploaded over ManageSieve
//! files a message delivered over SMTP into a folder read over IMAP.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_minimail");

/// `minimail up`, killed when dropped (also when a test panics).
struct Up {
    child: Child,
    line: String,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Up {
    fn addr(&self, what: &str) -> SocketAddr {
        testkit::server::addr_of(&self.line, what).parse().unwrap()
    }
}

fn up(db: &Path, extra: &[&str]) -> Up {
    for u in ["alice@localhost", "bob@localhost"] {
        let out = testkit::process::run(
            Command::new(BIN)
                .args(["user", "add", u, "--password-stdin", "--db"])
                .arg(db),
            b"pw\n",
        );
        assert!(out.status.success(), "{out:?}");
    }
    let (child, line, _) = testkit::server::minimail_up(BIN, db, extra, &[]);
    assert!(line.contains(", sieve on 127.0.0.1:"), "{line}");
    Up { child, line }
}

/// What Roundcube's managesieve plugin saves for two rules.
const ROUNDCUBE: &str = "require [\"fileinto\",\"imap4flags\"];\n\
# rule:[lists]\n\
if header :contains \"subject\" \"[lists]\"\n\
{\n\
\taddflag \"\\\\Seen\";\n\
\tfileinto \"Lists\";\n\
\tstop;\n\
}\n\
# rule:[spam]\n\
if anyof (header :contains \"x-spam-flag\" \"yes\", header :contains \"subject\" \"viagra\")\n\
{\n\
\tfileinto \"Junk\";\n\
}\n";

/// What Thunderbird's Sieve add-on writes (CRLF line ends) for a
/// vacation rule.
const THUNDERBIRD: &str = "require [\"vacation\"];\r\n\
\r\n\
# Out of office\r\n\
if true\r\n\
{\r\n\
  vacation :days 7 :addresses [\"alice@localhost\"] :subject \"Out of office\" \"I am away until Monday.\";\r\n\
}\r\n";

/// RFC 5804 §2.6's own example of a script that does not compile.
const BAD: &str = "#comment\nInvalidSieveCommand\n";

fn sieve_connect(up: &Up, db: &Path, args: &[&str]) -> Output {
    let addr = up.addr("sieve");
    let cert = format!("{}.cert.pem", db.display());
    testkit::process::run(
        Command::new("sieve-connect")
            .args(["--server", "localhost", "--4", "--port"])
            .arg(addr.port().to_string())
            .args(["--user", "alice@localhost", "--passwordfd", "0"])
            .args(["--tlscafile", &cert])
            .args(args),
        b"pw\n",
    )
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn sieve_connect_uploads_lists_activates_downloads_and_deletes() {
    if !testkit::process::have("sieve-connect", "--help") {
        eprintln!("SKIPPED: sieve-connect is not installed (Debian package sieve-connect)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let up = up(&db, &[]);
    let roundcube = dir.path().join("roundcube.sieve");
    std::fs::write(&roundcube, ROUNDCUBE).unwrap();
    let tb = dir.path().join("thunderbird.sieve");
    std::fs::write(&tb, THUNDERBIRD).unwrap();
    let bad = dir.path().join("bad.sieve");
    std::fs::write(&bad, BAD).unwrap();
    let r = roundcube.to_str().unwrap();
    for (file, name) in [(r, "roundcube"), (tb.to_str().unwrap(), "out of office")] {
        let o = sieve_connect(
            &up,
            &db,
            &["--upload", "--localsieve", file, "--remotesieve", name],
        );
        assert!(o.status.success(), "{}", text(&o));
    }
    let o = sieve_connect(&up, &db, &["--activate", "--remotesieve", "roundcube"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = sieve_connect(&up, &db, &["--list"]);
    assert!(o.status.success(), "{}", text(&o));
    let listed = String::from_utf8_lossy(&o.stdout);
    assert!(
        listed.contains("roundcube") && listed.contains("out of office"),
        "{}",
        text(&o)
    );
    // sieve-connect prints the LISTSCRIPTS lines as they come.
    assert!(
        listed.lines().any(|l| l == "\"roundcube\" ACTIVE"),
        "{listed}"
    );
    assert!(listed.lines().any(|l| l == "\"out of office\""), "{listed}");
    // Downloaded byte for byte.
    let back = dir.path().join("back.sieve");
    let o = sieve_connect(
        &up,
        &db,
        &[
            "--download",
            "--remotesieve",
            "out of office",
            "--localsieve",
            back.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(&back).unwrap(), THUNDERBIRD);
    // The bad script: refused with the compiler's reason, nothing stored.
    let o = sieve_connect(
        &up,
        &db,
        &[
            "--upload",
            "--localsieve",
            bad.to_str().unwrap(),
            "--remotesieve",
            "bad",
        ],
    );
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).to_lowercase().contains("invalidsievecommand"),
        "{}",
        text(&o)
    );
    let o = sieve_connect(
        &up,
        &db,
        &["--checkscript", "--localsieve", bad.to_str().unwrap()],
    );
    assert!(!o.status.success(), "{}", text(&o));
    let o = sieve_connect(&up, &db, &["--checkscript", "--localsieve", r]);
    assert!(o.status.success(), "{}", text(&o));
    // The active one cannot be deleted; the other can.
    let o = sieve_connect(&up, &db, &["--delete", "--remotesieve", "roundcube"]);
    assert!(!o.status.success(), "{}", text(&o));
    let o = sieve_connect(&up, &db, &["--delete", "--remotesieve", "out of office"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = sieve_connect(&up, &db, &["--list"]);
    let listed = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        !listed.contains("out of office") && !listed.contains("bad"),
        "{listed}"
    );
    // The store agrees (the admin's view).
    let o = testkit::process::run(
        Command::new(BIN)
            .args(["sieve", "list", "alice@localhost", "--db"])
            .arg(&db),
        b"",
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "roundcube ACTIVE\n");
    // A wrong password is refused.
    let o = testkit::process::run(
        Command::new("sieve-connect")
            .args(["--server", "localhost", "--4", "--port"])
            .arg(up.addr("sieve").port().to_string())
            .args([
                "--user",
                "alice@localhost",
                "--passwordfd",
                "0",
                "--notlsverify",
                "--list",
            ]),
        b"wrong\n",
    );
    assert!(!o.status.success(), "{}", text(&o));
}

/// Python's `managesieve` library, over STARTTLS.
const PYTHON: &str = r#"
import managesieve, sys
port, script, bad = int(sys.argv[1]), sys.argv[2], sys.argv[3]
m = managesieve.MANAGESIEVE('127.0.0.1', port, use_tls=True, tls_verify=False)
assert m.login('', 'alice@localhost', 'pw') == 'OK'
print('put', m.putscript('rules', open(script).read()))
print('bad', m.putscript('bad', open(bad).read()), m.response_text)
print('active', m.setactive('rules'))
print('list', m.listscripts())
typ, text = m.getscript('rules')
print('same', typ, text == open(script).read())
print('havespace', m.havespace('rules', 1000))
print('toobig', m.havespace('rules', 10000000), m.response_code)
print('missing', m.getscript('nope')[0], m.response_code)
print('logout', m.logout())
"#;

#[test]
fn python_managesieve_library_and_delivery_by_the_uploaded_script() {
    let have = Command::new("python3")
        .args(["-c", "import managesieve"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        eprintln!("SKIPPED: Python's managesieve is not installed (pip install managesieve)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let up = up(&db, &[]);
    let script = dir.path().join("rules.sieve");
    std::fs::write(&script, ROUNDCUBE).unwrap();
    let bad = dir.path().join("bad.sieve");
    std::fs::write(&bad, BAD).unwrap();
    let o = testkit::process::run(
        Command::new("python3")
            .args(["-c", PYTHON])
            .arg(up.addr("sieve").port().to_string())
            .arg(&script)
            .arg(&bad),
        b"",
    );
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for want in [
        "put OK\n",
        "active OK\n",
        "list ('OK', [('rules', True)])\n",
        "same OK True\n",
        "havespace OK\n",
        "toobig NO QUOTA/MAXSIZE\n",
        "missing NO NONEXISTENT\n",
        "logout OK\n",
    ] {
        assert!(out.contains(want), "{want:?} missing from:\n{out}");
    }
    let bad_line = out.lines().find(|l| l.starts_with("bad ")).unwrap();
    assert!(
        bad_line.starts_with("bad NO") && bad_line.to_lowercase().contains("invalidsievecommand"),
        "{out}"
    );

    // The script just uploaded decides where SMTP mail goes.
    let smtp = up.addr("smtp");
    let imap = up.addr("imap");
    // The folder exists, as the user's client made it (fileinto without
    // :create files into INBOX otherwise).
    let mut i = testkit::imap::Client::connect(imap);
    i.login("alice@localhost", "pw");
    i.ok("CREATE Lists");
    let mut c = testkit::smtp::Client::connect(smtp);
    c.expect_reply("220");
    c.expect("EHLO client.test", "250");
    for subject in ["[lists] weekly digest", "hello alice"] {
        let body = format!(
            "From: bob@localhost\r\nTo: alice@localhost\r\nSubject: {subject}\r\n\r\nbody\r\n"
        );
        let r = c.send_mail("bob@localhost", &["alice@localhost"], body.as_bytes());
        assert!(r.starts_with("250"), "{r}");
    }
    let lists = wait_for(imap, "Lists", 1);
    assert_eq!(lists.len(), 1, "{lists:?}");
    assert!(
        lists[0].contains("Subject: [lists] weekly digest"),
        "{lists:?}"
    );
    let inbox = wait_for(imap, "INBOX", 1);
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert!(inbox[0].contains("Subject: hello alice"), "{inbox:?}");
}

fn wait_for(imap: SocketAddr, mailbox: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = testkit::imap::fetch_all_text(imap, "alice@localhost", "pw", mailbox);
        if got.len() >= n || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_listener_follows_the_flag_and_trace_hides_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    // A second --sieve listener (port 0) and --trace.
    let (child, line, _, log) = {
        let out = testkit::process::run(
            Command::new(BIN)
                .args(["user", "add", "alice@localhost", "--password-stdin", "--db"])
                .arg(&db),
            b"pw\n",
        );
        assert!(out.status.success(), "{out:?}");
        testkit::server::minimail_up_logged(BIN, &db, &["--sieve", "127.0.0.1:0", "--trace"], &[])
    };
    let up = Up { child, line };
    let sieve = up.line.split("sieve on ").nth(1).unwrap();
    let addrs: Vec<&str> = sieve.split(", store").next().unwrap().split(", ").collect();
    assert_eq!(addrs.len(), 2, "{}", up.line);
    for a in addrs {
        let mut s = testkit::net::connect(a.parse().unwrap());
        let greeting = testkit::imap::raw_line(&mut s);
        assert!(greeting.starts_with("\"IMPLEMENTATION\""), "{greeting}");
        use std::io::Write;
        let auth = testkit::smtp::b64("\0alice@localhost\0pw");
        s.write_all(format!("AUTHENTICATE \"PLAIN\" \"{auth}\"\r\nLOGOUT\r\n").as_bytes())
            .unwrap();
        let mut all = String::new();
        loop {
            let l = testkit::imap::raw_line(&mut s);
            all.push_str(&l);
            if l.starts_with("OK \"Logout") {
                break;
            }
        }
        assert!(all.contains("OK \"Logged in\""), "{all}");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let auth = testkit::smtp::b64("\0alice@localhost\0pw");
    loop {
        let logged = log.lock().unwrap().clone();
        if logged.contains("C: LOGOUT") || Instant::now() > deadline {
            assert!(
                logged.contains("C: AUTHENTICATE \"PLAIN\" <credentials elided>"),
                "{logged}"
            );
            assert!(!logged.contains(&auth), "{logged}");
            assert!(logged.contains("S: OK \"Logged in\""), "{logged}");
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
