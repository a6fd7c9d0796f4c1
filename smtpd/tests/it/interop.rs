//! Real third-party clients deliver to the server: Python's smtplib,
//! swaks and curl. These tests fail (not skip) when a tool is missing;
//! `.ci/run` installs them (`apt-get install python3 swaks curl`).

use crate::util::{strip_trace, TestServer};
use std::process::{Command, Output};

fn run(cmd: &mut Command, tool: &str) -> Output {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {tool} ({e}); install it: apt-get install -y {tool}")
    });
    testkit::process::succeeded(out, tool)
}

fn find<'a>(msgs: &'a [Vec<u8>], needle: &str) -> &'a [u8] {
    msgs.iter()
        .find(|m| String::from_utf8_lossy(m).contains(needle))
        .unwrap_or_else(|| panic!("no message containing {needle:?}"))
}

const PYTHON: &str = r#"
import smtplib, sys
from email.message import EmailMessage
port = int(sys.argv[1])
m = EmailMessage()
m["From"] = "py@client.example"
m["To"] = "bob@localhost"
m["Subject"] = "from smtplib"
m["Message-ID"] = "<py-1@client.example>"
m.set_content("Hello from Python\n.leading dot\n")
with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
    code, caps = s.ehlo()
    assert code == 250, code
    assert s.has_extn("pipelining") and s.has_extn("size") and s.has_extn("8bitmime")
    assert s.send_message(m) == {}
    try:
        s.sendmail("py@client.example", ["nobody@localhost"], "Subject: x\r\n\r\nx\r\n")
        raise SystemExit("unknown user was accepted")
    except smtplib.SMTPRecipientsRefused as e:
        code = e.recipients["nobody@localhost"][0]
        assert code == 550, code
print("ok")
"#;

#[test]
fn python_smtplib_delivers() {
    let s = TestServer::start();
    let out = run(
        Command::new("python3")
            .arg("-c")
            .arg(PYTHON)
            .arg(s.addr.port().to_string()),
        "python3",
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    let msgs = s.inbox("bob@localhost");
    assert_eq!(msgs.len(), 1);
    let body =
        String::from_utf8_lossy(strip_trace(find(&msgs, "<py-1@client.example>"))).into_owned();
    assert!(body.contains("Subject: from smtplib\r\n"), "{body}");
    assert!(
        body.contains("\r\n\r\nHello from Python\r\n.leading dot\r\n"),
        "{body}"
    );
}

#[test]
fn swaks_delivers_with_pipelining() {
    let s = TestServer::start();
    run(
        Command::new("swaks")
            .args(["--server", &s.addr.to_string()])
            .args(["--from", "sw@client.example", "--to", "alice@localhost"])
            .args(["--header", "Subject: from swaks"])
            .args(["--header", "Message-Id: <swaks-1@client.example>"])
            .args(["--body", "Hello from swaks"])
            .args(["--pipeline", "--timeout", "10"]),
        "swaks",
    );
    let msgs = s.inbox("alice@localhost");
    assert_eq!(msgs.len(), 1);
    let body =
        String::from_utf8_lossy(strip_trace(find(&msgs, "<swaks-1@client.example>"))).into_owned();
    assert!(body.contains("Subject: from swaks\r\n"), "{body}");
    assert!(body.contains("Hello from swaks"), "{body}");
}

#[test]
fn curl_delivers() {
    let s = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("msg.eml");
    let msg = "From: curl@client.example\r\nTo: carol@example.test\r\nSubject: from curl\r\nMessage-ID: <curl-1@client.example>\r\n\r\nHello from curl\r\n.dot line\r\n";
    std::fs::write(&file, msg).unwrap();
    run(
        Command::new("curl")
            .arg("-sS")
            .arg(format!("smtp://{}/client.example", s.addr))
            .args(["--mail-from", "curl@client.example"])
            .args(["--mail-rcpt", "carol@example.test"])
            .arg("--upload-file")
            .arg(&file)
            .args(["--max-time", "10"]),
        "curl",
    );
    let msgs = s.inbox("carol@example.test");
    assert_eq!(msgs.len(), 1);
    assert_eq!(strip_trace(&msgs[0]), msg.as_bytes());
    // curl reports a refused recipient as a failure.
    let out = Command::new("curl")
        .arg("-sS")
        .arg(format!("smtp://{}", s.addr))
        .args(["--mail-from", "curl@client.example"])
        .args(["--mail-rcpt", "nobody@example.test"])
        .arg("--upload-file")
        .arg(&file)
        .args(["--max-time", "10"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("550"),
        "{out:?}"
    );
}
