//! `minimail up --metrics ADDR`: the Prometheus endpoint scraped with curl
//! while Python's smtplib and an IMAP client use the servers. The counters
//! move as the traffic says they must, every scrape passes Debian's
//! `promtool check metrics`, and bad HTTP to the metrics port gets
//! 400/404/405/408/431 without disturbing mail.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use testkit::process::{have, run};

const BIN: &str = env!("CARGO_BIN_EXE_minimail");

/// `minimail up` with metrics on; killed when dropped, even on panic.
struct Up {
    child: Child,
    line: String,
    metrics: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Up {
    fn start(extra: &[&str]) -> Up {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("m.db");
        add_user(&db, "bob@localhost");
        let mut args = vec!["--metrics", "127.0.0.1:0", "--no-tls"];
        args.extend_from_slice(extra);
        let (child, line, _) = testkit::server::minimail_up(BIN, &db, &args, &[]);
        let metrics = line
            .split("metrics on http://")
            .nth(1)
            .and_then(|s| s.split("/metrics").next())
            .unwrap_or_else(|| panic!("no metrics address in {line}"))
            .parse()
            .unwrap();
        Up {
            child,
            line,
            metrics,
            _dir: dir,
        }
    }

    fn addr(&self, what: &str) -> String {
        testkit::server::addr_of(&self.line, what)
    }

    /// A scrape with curl, checked by promtool.
    fn scrape(&self) -> String {
        let url = format!("http://{}/metrics", self.metrics);
        let out = run(Command::new("curl").args(["-sS", "--fail", &url]), b"");
        assert!(out.status.success(), "curl: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        let check = run(
            Command::new("promtool").args(["check", "metrics"]),
            text.as_bytes(),
        );
        assert!(
            check.status.success(),
            "promtool check metrics failed:\n{}{}\n--- the scrape:\n{text}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        text
    }
}

fn add_user(db: &Path, address: &str) {
    let out = run(
        Command::new(BIN)
            .args(["user", "add", address, "--password-stdin", "--db"])
            .arg(db),
        b"pw\n",
    );
    assert!(out.status.success(), "{out:?}");
}

/// The value of one series (`name{labels}` exactly as exposed).
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{series} not in the scrape:\n{text}"))
        .parse()
        .unwrap()
}

fn tools() -> bool {
    have("curl", "--version") && have("promtool", "--version") && have("python3", "--version")
}

/// Python's smtplib: one message accepted, one unknown user, one relay
/// denied, one refused as too big at MAIL (SIZE), then a submission to
/// another domain (queued). Prints one result line each.
const SMTP_SCRIPT: &str = r#"
import smtplib, sys
smtp, sub = sys.argv[1], sys.argv[2]
def conn(a):
    h, p = a.rsplit(':', 1)
    return smtplib.SMTP(h, int(p), timeout=30)
s = conn(smtp)
s.sendmail('alice@example.org', ['bob@localhost'], b'Subject: hi\r\n\r\nhello\r\n')
for rcpt in ['nobody@localhost', 'carol@example.net']:
    try:
        s.sendmail('alice@example.org', [rcpt], b'Subject: no\r\n\r\nno\r\n')
        print('accepted?', rcpt)
    except smtplib.SMTPRecipientsRefused as e:
        print('refused', rcpt, list(e.recipients.values())[0][0])
try:
    s.sendmail('alice@example.org', ['bob@localhost'], b'Subject: big\r\n\r\n' + b'x' * 5000 + b'\r\n')
    print('accepted? big')
except smtplib.SMTPSenderRefused as e:
    print('refused big', e.smtp_code)
s.quit()
s = conn(sub)
s.login('bob@localhost', 'pw')
s.sendmail('bob@localhost', ['dave@example.com'], b'From: bob@localhost\r\nSubject: out\r\n\r\nout\r\n')
s.quit()
print('done')
"#;

#[test]
fn counters_move_with_real_smtp_and_imap_traffic() {
    if !tools() {
        return;
    }
    // Mail to other domains goes to a relay that refuses connections, so
    // it stays queued (retried in an hour).
    let up = Up::start(&[
        "--max-message-size",
        "2000",
        "--relay-host",
        "127.0.0.1:1",
        "--retry-min",
        "3600",
    ]);
    let before = up.scrape();
    let out = run(
        Command::new("python3")
            .args(["-c", SMTP_SCRIPT])
            .arg(up.addr("smtp"))
            .arg(up.addr("submission")),
        b"",
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("refused nobody@localhost 550"), "{said}");
    assert!(said.contains("refused carol@example.net 5"), "{said}");
    assert!(said.contains("refused big 552"), "{said}");

    // IMAP: log in and IDLE.
    let imap: SocketAddr = up.addr("imap").parse().unwrap();
    let mut c = testkit::imap::Client::connect(imap);
    c.login("bob@localhost", "pw");
    c.ok("SELECT INBOX");
    c.send(b"i1 IDLE\r\n");
    assert!(c.line().starts_with("+ "), "no IDLE continuation");

    let during = up.scrape();
    let d = |s: &str| value(&during, s) - value(&before, s);
    assert_eq!(
        d("minimail_smtp_messages_accepted_total{service=\"smtp\"}"),
        1.0
    );
    assert_eq!(
        d("minimail_smtp_messages_accepted_total{service=\"submission\"}"),
        1.0
    );
    assert_eq!(
        d("minimail_smtp_refused_total{reason=\"unknown_user\"}"),
        1.0
    );
    assert_eq!(
        d("minimail_smtp_refused_total{reason=\"relay_denied\"}"),
        1.0
    );
    assert_eq!(d("minimail_smtp_refused_total{reason=\"too_big\"}"), 1.0);
    assert_eq!(
        d("minimail_smtp_refused_total{reason=\"dmarc_reject\"}"),
        0.0
    );
    assert_eq!(d("minimail_connections_total{protocol=\"smtp\"}"), 1.0);
    assert_eq!(
        d("minimail_connections_total{protocol=\"submission\"}"),
        1.0
    );
    assert_eq!(d("minimail_connections_total{protocol=\"imap\"}"), 1.0);
    assert_eq!(
        value(&during, "minimail_connections_open{protocol=\"imap\"}"),
        1.0
    );
    assert_eq!(
        value(&during, "minimail_connections_open{protocol=\"smtp\"}"),
        0.0
    );
    assert_eq!(value(&during, "minimail_imap_idle_sessions"), 1.0);
    assert_eq!(d("minimail_imap_commands_total{command=\"LOGIN\"}"), 1.0);
    assert_eq!(d("minimail_imap_commands_total{command=\"SELECT\"}"), 1.0);
    assert_eq!(d("minimail_imap_commands_total{command=\"IDLE\"}"), 1.0);
    // Two messages delivered, each timed once; the writer committed them.
    assert_eq!(d("minimail_smtp_delivery_seconds_count"), 2.0);
    assert!(d("minimail_smtp_delivery_seconds_sum") > 0.0);
    assert!(d("minimail_store_commit_seconds_count") >= 2.0);
    assert!(d("minimail_store_commit_seconds_bucket{le=\"+Inf\"}") >= 2.0);
    // The submission to another domain waits in the queue.
    assert_eq!(value(&during, "minimail_outbound_queue_messages"), 1.0);
    assert_eq!(value(&during, "minimail_outbound_queue_recipients"), 1.0);

    // DONE ends the IDLE; closing the connection closes it in the gauge.
    c.send(b"DONE\r\n");
    c.until("i1");
    let after_idle = up.scrape();
    assert_eq!(value(&after_idle, "minimail_imap_idle_sessions"), 0.0);
    c.ok("LOGOUT");
    drop(c);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = up.scrape();
        if value(&now, "minimail_connections_open{protocol=\"imap\"}") == 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the IMAP connection stays open:\n{now}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Send `req` raw to the metrics port; the whole answer.
fn raw(addr: SocketAddr, req: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // The server may answer (431) and close before it read everything.
    let _ = s.write_all(req);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn curl_code(args: &[&str]) -> String {
    let out = run(
        Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
            .args(args),
        b"",
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn bad_http_on_the_metrics_port_gets_clear_errors() {
    if !tools() {
        return;
    }
    let up = Up::start(&[]);
    let m = up.metrics;
    let url = format!("http://{m}/metrics");
    assert_eq!(curl_code(&[&url]), "200");
    assert_eq!(curl_code(&["-I", &url]), "200");
    assert_eq!(curl_code(&["-X", "POST", "-d", "x=1", &url]), "405");
    assert_eq!(curl_code(&[&format!("http://{m}/")]), "404");
    assert_eq!(
        curl_code(&[&format!("http://{m}/metrics/../etc/passwd")]),
        "404"
    );
    let r = raw(m, b"PUT /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        r.starts_with("HTTP/1.1 405 ") && r.contains("Allow: GET, HEAD"),
        "{r}"
    );
    let r = raw(m, b"hello there\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 400 "), "{r}");
    let r = raw(m, b"GET /metrics HTTP/3\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 505 "), "{r}");
    // A head over the bound: 431, whatever else is sent.
    let mut big = b"GET /metrics HTTP/1.1\r\nX-Pad: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 64 * 1024));
    let r = raw(m, &big);
    assert!(r.starts_with("HTTP/1.1 431 "), "{r}");
    // A client that sends half a request and waits is cut off (408) at the
    // deadline; meanwhile another scrape and an SMTP session are served.
    let started = Instant::now();
    let mut slow = TcpStream::connect(m).unwrap();
    slow.write_all(b"GET /metr").unwrap();
    assert!(up.scrape().contains("minimail_connections_total"));
    let smtp: SocketAddr = up.addr("smtp").parse().unwrap();
    let mut s = testkit::smtp::Client::connect(smtp);
    s.expect_reply("220");
    s.expect("EHLO t", "250");
    s.expect("QUIT", "221");
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut out = String::new();
    let _ = slow.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 408 "), "{out}");
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(4), "cut off after {took:?}");
}
