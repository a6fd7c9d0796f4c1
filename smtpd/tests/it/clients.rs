//! Real third-party clients over TLS and AUTH (RFC 3207 STARTTLS, RFC 8314
//! implicit TLS, RFC 4954 AUTH PLAIN/LOGIN), each trusting only the test
//! server's self-signed certificate: `openssl s_client -starttls smtp`,
//! curl `--ssl-reqd` (smtp:// with STARTTLS and smtps://), Python's
//! smtplib (`starttls()` and `SMTP_SSL`) and swaks (`--tls`, `--auth`).
//! Clients connect from 127.0.0.2 where they can, so that AUTH is only
//! available after TLS. A test is skipped, saying so, only when its tool is
//! not installed (`.ci/run` installs openssl curl python3 swaks
//! libnet-ssleay-perl libio-socket-ssl-perl).

use crate::util::{strip_trace, TestServer, PASSWORD};
use std::process::{Command, Output};
use testkit::process::have;

/// Run `cmd` with `input` on stdin; fail with its output unless it succeeds.
fn run(cmd: &mut Command, input: &[u8], tool: &str) -> Output {
    testkit::process::succeeded(testkit::process::run(cmd, input), tool)
}

fn find(msgs: &[Vec<u8>], needle: &str) -> String {
    msgs.iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .find(|m| m.contains(needle))
        .unwrap_or_else(|| panic!("no message containing {needle:?}"))
}

#[test]
fn openssl_s_client_starttls_and_implicit_tls_authenticate() {
    if !have("openssl", "--version") {
        return;
    }
    let s = TestServer::with_tls(|_| {});
    let plain = crate::util::plain("bob@localhost", PASSWORD);
    let script = format!(
        "EHLO openssl.test\nAUTH PLAIN {plain}\nMAIL FROM:<bob@localhost>\nRCPT TO:<alice@localhost>\n\
DATA\nFrom: bob@localhost\nSubject: via s_client\n\nhello\n.\nQUIT\n"
    );
    for (starttls, addr) in [(true, s.addr), (false, s.smtps.unwrap())] {
        let mut cmd = Command::new("openssl");
        cmd.args(["s_client", "-connect", &addr.to_string()])
            .arg("-CAfile")
            .arg(&s.ca_file)
            .args(["-verify_return_error", "-verify_hostname", "localhost"])
            .args(["-quiet", "-crlf"]);
        if starttls {
            cmd.args(["-starttls", "smtp"]);
        }
        let out = run(&mut cmd, script.as_bytes(), "openssl");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("235 2.7.0 "), "{text}");
        assert!(text.contains("250 2.0.0 OK: message"), "{text}");
        assert!(text.contains("221 2.0.0 "), "{text}");
        assert!(!text.contains("STARTTLS"), "not offered again: {text}");
    }
    let msgs = s.inbox("alice@localhost");
    assert_eq!(msgs.len(), 2);
    assert!(find(&msgs, "via s_client").contains(" with ESMTPSA id "));
}

#[test]
fn curl_ssl_reqd_over_starttls_and_smtps() {
    if !have("curl", "--version") {
        return;
    }
    let s = TestServer::with_tls(|_| {});
    let urls = [
        (
            format!("smtp://127.0.0.1:{}", s.addr.port()),
            "AUTH=PLAIN",
            "curl starttls",
        ),
        (
            format!("smtps://127.0.0.1:{}", s.smtps.unwrap().port()),
            "AUTH=LOGIN",
            "curl smtps",
        ),
    ];
    for (url, login, subject) in &urls {
        let msg = format!("From: bob@localhost\r\nSubject: {subject}\r\n\r\nvia curl\r\n");
        run(
            Command::new("curl")
                .args(["--silent", "--show-error", "--ssl-reqd"])
                .arg("--cacert")
                .arg(&s.ca_file)
                .args(["--interface", "127.0.0.2", "--max-time", "20"])
                .args(["--url", url])
                .args(["--user", &format!("bob@localhost:{PASSWORD}")])
                .args(["--login-options", login])
                .args([
                    "--mail-from",
                    "bob@localhost",
                    "--mail-rcpt",
                    "alice@localhost",
                ])
                .args(["--upload-file", "-"]),
            msg.as_bytes(),
            "curl",
        );
    }
    let msgs = s.inbox("alice@localhost");
    assert_eq!(msgs.len(), 2);
    for (_, _, subject) in &urls {
        let m = find(&msgs, subject);
        assert!(m.contains(" with ESMTPSA id "), "{m}");
        assert!(m.contains("[127.0.0.2]"), "{m}");
    }
    // Without TLS curl --ssl-reqd refuses to go on: no STARTTLS offered.
    let plain = TestServer::start();
    let out = Command::new("curl")
        .args(["--silent", "--ssl-reqd", "--max-time", "20"])
        .args(["--url", &format!("smtp://127.0.0.1:{}", plain.addr.port())])
        .args([
            "--mail-from",
            "x@example.org",
            "--mail-rcpt",
            "bob@localhost",
        ])
        .args(["--upload-file", "/dev/null"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(plain.inbox("bob@localhost").is_empty());
}

const PYTHON: &str = r#"
import smtplib, ssl, sys
from email.message import EmailMessage
port, smtps, cafile = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=cafile)

def msg(subject):
    m = EmailMessage()
    m["From"] = "bob@localhost"
    m["To"] = "alice@localhost"
    m["Subject"] = subject
    m.set_content("from python\n")
    return m

with smtplib.SMTP("127.0.0.1", port, timeout=10, source_address=("127.0.0.2", 0)) as s:
    s.ehlo()
    assert s.has_extn("starttls"), s.esmtp_features
    assert not s.has_extn("auth"), s.esmtp_features
    try:
        s.login("bob@localhost", "pw")
        raise SystemExit("login without TLS was possible")
    except smtplib.SMTPNotSupportedError:
        pass
    code, _ = s.docmd("AUTH", "LOGIN")
    assert code == 538, code
    s.starttls(context=ctx)
    s.ehlo()
    assert not s.has_extn("starttls"), s.esmtp_features
    assert s.has_extn("auth"), s.esmtp_features
    try:
        s.login("bob@localhost", "wrong")
        raise SystemExit("wrong password accepted")
    except smtplib.SMTPAuthenticationError as e:
        assert e.smtp_code == 535, e
    s.login("bob@localhost", sys.argv[4])
    assert s.send_message(msg("python starttls")) == {}
    try:
        s.sendmail("alice@localhost", ["alice@localhost"], "From: alice@localhost\r\n\r\nx\r\n")
        raise SystemExit("foreign sender accepted")
    except smtplib.SMTPSenderRefused as e:
        assert e.smtp_code == 550, e

with smtplib.SMTP_SSL("127.0.0.1", smtps, context=ctx, timeout=10) as s:
    s.ehlo()
    s.user, s.password = "bob@localhost", sys.argv[4]
    code, _ = s.auth("LOGIN", s.auth_login)
    assert code == 235, code
    assert s.send_message(msg("python smtps")) == {}
print("ok")
"#;

#[test]
fn python_smtplib_starttls_and_smtp_ssl_with_a_ca_context() {
    if !have("python3", "--version") {
        return;
    }
    let s = TestServer::with_tls(|_| {});
    let out = run(
        Command::new("python3")
            .arg("-c")
            .arg(PYTHON)
            .arg(s.addr.port().to_string())
            .arg(s.smtps.unwrap().port().to_string())
            .arg(&s.ca_file)
            .arg(PASSWORD),
        b"",
        "python3",
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    let msgs = s.inbox("alice@localhost");
    assert_eq!(msgs.len(), 2);
    let m = find(&msgs, "python starttls");
    assert!(m.contains(" with ESMTPSA id "), "{m}");
    assert!(find(&msgs, "python smtps").contains(" with ESMTPSA id "));
}

#[test]
fn swaks_tls_with_auth_plain_and_login() {
    if !have("swaks", "--version") {
        return;
    }
    let s = TestServer::with_tls(|_| {});
    for (mech, tls) in [("PLAIN", "--tls"), ("LOGIN", "--tls-on-connect")] {
        let server = if tls == "--tls" {
            s.addr
        } else {
            s.smtps.unwrap()
        };
        let out = run(
            Command::new("swaks")
                .args(["--server", &server.to_string(), tls, "--tls-verify"])
                .arg("--tls-ca-path")
                .arg(&s.ca_file)
                .args(["--auth", mech, "--auth-user", "bob@localhost"])
                .args(["--auth-password", PASSWORD])
                .args(["--from", "bob@localhost", "--to", "alice@localhost"])
                .args(["--header", &format!("Subject: swaks {mech}")])
                .args(["--timeout", "20"]),
            b"",
            "swaks (TLS needs libnet-ssleay-perl libio-socket-ssl-perl)",
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("<~  235 2.7.0 "), "{text}");
        assert!(text.contains("<~  250 2.0.0 OK: message"), "{text}");
    }
    let msgs = s.inbox("alice@localhost");
    assert_eq!(msgs.len(), 2);
    let m = find(&msgs, "swaks PLAIN");
    assert!(m.contains(" with ESMTPSA id "), "{m}");
    let body =
        String::from_utf8_lossy(strip_trace(find(&msgs, "swaks LOGIN").as_bytes())).into_owned();
    assert!(body.contains("Subject: swaks LOGIN"), "{body}");
}
