//! Real third-party TLS clients against imapd (RFC 3501 §6.2.1 STARTTLS,
//! RFC 8314 §3.3 implicit TLS, RFC 3501 §6.2.3 LOGINDISABLED): `openssl
//! s_client` (`-starttls imap` and implicit), curl (`--ssl-reqd imap://`
//! and `imaps://`, `--cacert`), and Python's imaplib (`starttls()` and
//! `IMAP4_SSL` with a CA context). Each test is skipped, with a message,
//! only when its tool is not installed (CI installs curl python3 openssl).

use crate::util::*;
use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use testkit::process::have;

/// Run `cmd` with `input` on stdin; killed after 30 s so no test hangs.
fn run(cmd: &mut Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(stdin);
    let mut out = Vec::new();
    let mut err = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    child.stderr.take().unwrap().read_to_end(&mut err).unwrap();
    Output {
        status: child.wait().unwrap(),
        stdout: out,
        stderr: err,
    }
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ca_file(s: &TestServer) -> std::path::PathBuf {
    let p = s.dir.path().join("ca.pem");
    std::fs::write(&p, &test_cert().cert_pem).unwrap();
    p
}

const SESSION: &[u8] = b"a1 LOGIN bob@localhost \"secret pw\"\na2 SELECT INBOX\na3 LOGOUT\n";

fn s_client(s: &TestServer, args: &[&str]) -> Output {
    let ca = ca_file(s);
    run(
        Command::new("openssl")
            .arg("s_client")
            .args(args)
            .arg("-CAfile")
            .arg(&ca)
            .args(["-verify_return_error", "-quiet", "-crlf"]),
        SESSION,
    )
}

#[test]
fn openssl_s_client_starttls_imap() {
    if !have("openssl", "version") {
        return;
    }
    let s = TestServer::tls(|_| {});
    let bob = s.add_user("bob@localhost");
    s.deliver(bob, &simple("one", "x"));
    let addr = s.addr.to_string();
    let o = s_client(&s, &["-starttls", "imap", "-connect", &addr]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("a1 OK"), "{}", text(&o));
    assert!(out.contains("* 1 EXISTS"), "{}", text(&o));
    assert!(out.contains("a3 OK"), "{}", text(&o));
}

#[test]
fn openssl_s_client_implicit_tls() {
    if !have("openssl", "version") {
        return;
    }
    let s = TestServer::tls(|_| {});
    s.add_user("bob@localhost");
    let addr = s.imaps.unwrap().to_string();
    let o = s_client(&s, &["-connect", &addr]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("* OK [CAPABILITY IMAP4rev1"), "{}", text(&o));
    assert!(
        out.contains("a1 OK") && out.contains("a3 OK"),
        "{}",
        text(&o)
    );
}

fn curl(s: &TestServer, args: &[&str]) -> Output {
    let ca = ca_file(s);
    run(
        Command::new("curl")
            .args([
                "-s",
                "-S",
                "--max-time",
                "20",
                "-u",
                "bob@localhost:secret pw",
            ])
            .arg("--cacert")
            .arg(&ca)
            .args(args),
        b"",
    )
}

#[test]
fn curl_ssl_reqd_starttls_from_a_non_local_address() {
    if !have("curl", "--version") {
        return;
    }
    let s = TestServer::tls(|_| {});
    let bob = s.add_user("bob@localhost");
    s.deliver(bob, MULTIPART);
    let base = format!("imap://127.0.0.1:{}", s.addr.port());
    let o = curl(
        &s,
        &[
            "--ssl-reqd",
            "--interface",
            "127.0.0.2",
            &format!("{base}/INBOX;UID=1"),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(o.stdout, MULTIPART);
    // The same without TLS: the server refuses the plaintext login.
    let o = curl(
        &s,
        &["--interface", "127.0.0.2", &format!("{base}/INBOX;UID=1")],
    );
    assert!(!o.status.success(), "{}", text(&o));
    assert!(o.stdout.is_empty(), "{}", text(&o));
}

#[test]
fn curl_imaps_fetches_and_lists() {
    if !have("curl", "--version") {
        return;
    }
    let s = TestServer::tls(|_| {});
    let bob = s.add_user("bob@localhost");
    s.deliver(bob, MULTIPART);
    let base = format!("imaps://127.0.0.1:{}", s.imaps.unwrap().port());
    let o = curl(&s, &[&format!("{base}/")]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("\"INBOX\""),
        "{}",
        text(&o)
    );
    let o = curl(&s, &[&format!("{base}/INBOX;UID=1")]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(o.stdout, MULTIPART);
    // Without the CA the certificate is not trusted: curl refuses.
    let o = run(
        Command::new("curl").args([
            "-s",
            "--max-time",
            "20",
            "-u",
            "bob@localhost:secret pw",
            &format!("{base}/"),
        ]),
        b"",
    );
    assert!(!o.status.success(), "{}", text(&o));
}

const PY: &str = r#"
import imaplib, socket, ssl, sys
port, imaps, ca = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)

class Remote(imaplib.IMAP4):
    """A client from 127.0.0.2: not local to the server on 127.0.0.1."""
    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout,
                                        source_address=('127.0.0.2', 0))

m = Remote('127.0.0.1', port, timeout=10)
assert 'LOGINDISABLED' in m.capabilities and 'STARTTLS' in m.capabilities, m.capabilities
try:
    m.login('bob@localhost', 'secret pw')
    raise SystemExit('plaintext login was accepted')
except imaplib.IMAP4.error as e:
    assert 'PRIVACYREQUIRED' in str(e), e
m.starttls(ssl_context=ctx)
assert 'LOGINDISABLED' not in m.capabilities and 'STARTTLS' not in m.capabilities, m.capabilities
assert 'AUTH=PLAIN' in m.capabilities, m.capabilities
m.login('bob@localhost', 'secret pw')
typ, data = m.select('INBOX')
assert typ == 'OK' and data == [b'1'], (typ, data)
m.logout()

m = imaplib.IMAP4_SSL('127.0.0.1', imaps, ssl_context=ctx, timeout=10)
m.login('bob@localhost', 'secret pw')
m.select('INBOX')
typ, data = m.fetch('1', '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
assert typ == 'OK' and b'Subject: py' in data[0][1], data
m.logout()
print('ok')
"#;

#[test]
fn python_imaplib_starttls_and_imap4_ssl() {
    if !have("python3", "--version") {
        return;
    }
    let s = TestServer::tls(|_| {});
    let bob = s.add_user("bob@localhost");
    s.deliver(bob, &simple("py", "hello"));
    let ca = ca_file(&s);
    let o = run(
        Command::new("python3")
            .arg("-c")
            .arg(PY)
            .arg(s.addr.port().to_string())
            .arg(s.imaps.unwrap().port().to_string())
            .arg(&ca),
        b"",
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "ok",
        "{}",
        text(&o)
    );
}
