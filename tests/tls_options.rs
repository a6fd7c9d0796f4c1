//! TLS as admins configure it, checked with `openssl s_client`, curl and
//! Python against a real `minimail up`: certificates chosen by SNI
//! (`--tls-sni`), `--tls-min-version 1.3` refusing TLS 1.2, `--tls-groups`,
//! ALPN ids of another protocol refused (ALPACA) and counted in the
//! metrics, TLS sessions not resumable across protocols, an OCSP response
//! stapled (`--tls-ocsp`), and the `Received:` header naming the TLS
//! version and cipher the client negotiated, read back over IMAP.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use testkit::process::{have, run};

const BIN: &str = env!("CARGO_BIN_EXE_minimail");

/// `minimail up` with TLS listeners; killed when dropped, even on panic.
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
    fn start(db: &Path, extra: &[&str]) -> Up {
        let mut args = vec!["--imaps", "127.0.0.1:0", "--smtps", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let (child, line, _) = testkit::server::minimail_up(BIN, db, &args, &[]);
        Up { child, line }
    }

    fn addr(&self, what: &str) -> String {
        testkit::server::addr_of(&self.line, what)
    }
}

/// A self-signed pair for `name` in `dir/sub` (cert.pem, key.pem).
fn pair(dir: &Path, sub: &str, name: &str) -> (PathBuf, PathBuf) {
    let out = dir.join(sub);
    let o = run(
        Command::new(BIN)
            .args(["cert", "--name", name, "--out"])
            .arg(&out),
        b"",
    );
    assert!(o.status.success(), "{o:?}");
    (out.join("cert.pem"), out.join("key.pem"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `openssl s_client -connect ADDR ARGS` with nothing to send.
fn s_client(addr: &str, args: &[&str]) -> (bool, String) {
    let o = run(
        Command::new("openssl")
            .args(["s_client", "-connect", addr])
            .args(args),
        b"",
    );
    let t = text(&o);
    // A refused handshake prints no cipher (s_client's exit status is not
    // reliable across versions for every failure).
    let ok = o.status.success() && !t.contains("Cipher is (NONE)") && t.contains("Cipher is ");
    (ok, t)
}

/// The base64 of the first PEM certificate in `s`.
fn first_cert(s: &str) -> String {
    let start = s
        .find("-----BEGIN CERTIFICATE-----")
        .expect("no certificate");
    let rest = &s[start + 27..];
    let end = rest
        .find("-----END CERTIFICATE-----")
        .expect("no certificate end");
    rest[..end].split_whitespace().collect()
}

fn cert_of(path: &Path) -> String {
    first_cert(&std::fs::read_to_string(path).unwrap())
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

#[test]
fn sni_picks_the_certificate_and_alpn_of_another_protocol_is_refused() {
    if !have("openssl", "version") || !have("curl", "--version") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (c0, k0) = pair(d, "default", "localhost");
    let (c1, k1) = pair(d, "mail", "mail.example.org");
    let (c2, k2) = pair(d, "wild", "x.example.net");
    let db = d.join("m.db");
    add_user(&db, "bob@localhost");
    let sni1 = format!("mail.example.org={},{}", c1.display(), k1.display());
    let sni2 = format!("*.example.net={},{}", c2.display(), k2.display());
    let up = Up::start(
        &db,
        &[
            "--tls-cert",
            c0.to_str().unwrap(),
            "--tls-key",
            k0.to_str().unwrap(),
            "--tls-sni",
            &sni1,
            "--tls-sni",
            &sni2,
            "--metrics",
            "127.0.0.1:0",
        ],
    );
    let imaps = up.addr("imaps");
    let smtps = up.addr("smtps");
    let imap = up.addr("imap");

    // SNI: each name its certificate; another name, or none, the default.
    for (args, want, what) in [
        (
            vec!["-servername", "mail.example.org"],
            &c1,
            "mail.example.org",
        ),
        (vec!["-servername", "MAIL.example.org"], &c1, "upper case"),
        (vec!["-servername", "imap.example.net"], &c2, "wildcard"),
        (
            vec!["-servername", "a.b.example.net"],
            &c0,
            "wildcard is one label",
        ),
        (vec!["-servername", "other.example"], &c0, "unknown name"),
        (vec!["-noservername"], &c0, "no SNI"),
    ] {
        let (ok, out) = s_client(&imaps, &args);
        assert!(ok, "{what}: {out}");
        assert_eq!(first_cert(&out), cert_of(want), "{what}");
    }
    // The same over STARTTLS.
    let (ok, out) = s_client(
        &imap,
        &["-starttls", "imap", "-servername", "mail.example.org"],
    );
    assert!(ok, "{out}");
    assert_eq!(first_cert(&out), cert_of(&c1));
    // An SNI certificate renewed in place is presented after SIGHUP.
    let old = cert_of(&c1);
    let o = run(
        Command::new(BIN)
            .args(["cert", "--force", "--name", "mail.example.org", "--out"])
            .arg(d.join("mail")),
        b"",
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_ne!(cert_of(&c1), old);
    let hup = Command::new("kill")
        .args(["-HUP", &up.child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (ok, out) = s_client(&imaps, &["-servername", "mail.example.org"]);
        assert!(ok, "{out}");
        if first_cert(&out) == cert_of(&c1) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still the old certificate after SIGHUP"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // ALPN: our own id is accepted and confirmed, another protocol's
    // refused with the no_application_protocol alert.
    let (ok, out) = s_client(&imaps, &["-alpn", "imap"]);
    assert!(ok && out.contains("ALPN protocol: imap"), "{out}");
    let (ok, out) = s_client(&smtps, &["-alpn", "smtp"]);
    assert!(ok && out.contains("ALPN protocol: smtp"), "{out}");
    for (addr, alpn) in [
        (&imaps, "http/1.1"),
        (&imaps, "smtp"),
        (&smtps, "imap"),
        (&smtps, "h2,http/1.1"),
    ] {
        let (ok, out) = s_client(addr, &["-alpn", alpn]);
        assert!(!ok, "{addr} accepted ALPN {alpn}: {out}");
        assert!(
            out.contains("no application protocol"),
            "{addr} {alpn}: {out}"
        );
    }
    // Clients that send no ALPN (curl for IMAP) are served.
    let o = run(
        Command::new("curl")
            .args(["-sS", "--cacert"])
            .arg(&c0)
            .args([
                "--user",
                "bob@localhost:pw",
                &format!("imaps://localhost:{}/", imaps.rsplit(':').next().unwrap()),
            ]),
        b"",
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("INBOX"),
        "{}",
        text(&o)
    );
    // The refusals are counted.
    let metrics = testkit::server::addr_of(&up.line, "metrics")
        .trim_start_matches("http://")
        .to_string();
    let o = run(
        Command::new("curl").args(["-sS", &format!("http://{metrics}")]),
        b"",
    );
    let scrape = String::from_utf8_lossy(&o.stdout);
    assert!(
        scrape.contains("minimail_tls_refused_total{protocol=\"imaps\",reason=\"alpn\"} 2"),
        "{scrape}"
    );
    assert!(
        scrape.contains("minimail_tls_refused_total{protocol=\"smtps\",reason=\"alpn\"} 2"),
        "{scrape}"
    );
}

#[test]
fn min_version_groups_and_session_caches() {
    if !have("openssl", "version") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (c0, k0) = pair(d, "default", "localhost");
    let tls = [
        "--tls-cert",
        c0.to_str().unwrap(),
        "--tls-key",
        k0.to_str().unwrap(),
    ];

    // Defaults: TLS 1.2 and 1.3; a TLS 1.2 session resumes on the listener
    // that made it, never on another protocol's.
    let up = Up::start(&d.join("a.db"), &tls);
    let (imaps, smtps) = (up.addr("imaps"), up.addr("smtps"));
    let sess = d.join("sess.pem");
    let sess = sess.to_str().unwrap();
    let (ok, out) = s_client(&imaps, &["-tls1_2", "-sess_out", sess]);
    assert!(ok && out.contains("New, TLSv1.2"), "{out}");
    let (ok, out) = s_client(&imaps, &["-tls1_2", "-sess_in", sess]);
    assert!(
        ok && out.contains("Reused, TLSv1.2"),
        "the session does not resume at all: {out}"
    );
    let (ok, out) = s_client(&smtps, &["-tls1_2", "-sess_in", sess]);
    assert!(
        ok && out.contains("New, TLSv1.2"),
        "an IMAP session resumed on SMTP: {out}"
    );
    let (ok, out) = s_client(&imaps, &["-tls1_3"]);
    assert!(ok && out.contains("TLSv1.3"), "{out}");
    drop(up);

    // --tls-min-version 1.3: TLS 1.2 refused, 1.3 served.
    let mut args = tls.to_vec();
    args.extend(["--tls-min-version", "1.3", "--tls-groups", "secp384r1"]);
    let up = Up::start(&d.join("b.db"), &args);
    let imaps = up.addr("imaps");
    let (ok, out) = s_client(&imaps, &["-tls1_2"]);
    assert!(!ok, "TLS 1.2 accepted at min 1.3: {out}");
    assert!(out.contains("protocol version"), "{out}");
    let (ok, out) = s_client(&imaps, &["-tls1_3"]);
    assert!(ok && out.contains("TLSv1.3"), "{out}");
    // --tls-groups secp384r1: a client offering only X25519 is refused.
    let (ok, out) = s_client(&imaps, &["-groups", "X25519"]);
    assert!(!ok, "X25519 accepted with only secp384r1 configured: {out}");
    let (ok, out) = s_client(&imaps, &["-groups", "P-384"]);
    assert!(ok, "{out}");
    drop(up);

    // Bad values are refused at start with a clear message.
    for (flag, value, says) in [
        ("--tls-min-version", "1.1", "1.2 or 1.3"),
        ("--tls-groups", "X448", "unknown key-exchange group"),
        ("--tls-sni", "mail.example.org", "DOMAIN=CERT,KEY"),
    ] {
        let o = run(
            Command::new(BIN)
                .args(["up", "--db"])
                .arg(d.join("c.db"))
                .args([flag, value]),
            b"",
        );
        assert!(!o.status.success());
        assert!(text(&o).contains(says), "{flag} {value}: {}", text(&o));
    }
    let o = run(
        Command::new(BIN)
            .args(["up", "--db"])
            .arg(d.join("c.db"))
            .args([
                "--tls-sni",
                "mail.example.org=/nonexistent/c.pem,/nonexistent/k.pem",
            ]),
        b"",
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("/nonexistent/c.pem"), "{}", text(&o));
    // SNI certificates with TLS turned off are refused, not ignored.
    let sni = format!("mail.example.org={},{}", c0.display(), k0.display());
    let o = run(
        Command::new(BIN)
            .args(["up", "--no-tls", "--tls-sni", &sni, "--db"])
            .arg(d.join("c.db")),
        b"",
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("drop --no-tls"), "{}", text(&o));
}

/// Python's smtplib submits over STARTTLS, capped at `max` ("TLSv1_2" or
/// "TLSv1_3"), and prints what `ssl` says it negotiated: version, cipher, bits.
const SUBMIT: &str = r#"
import smtplib, ssl, sys
host, port, cap = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.maximum_version = getattr(ssl.TLSVersion, cap)
s = smtplib.SMTP(host, port, timeout=30)
s.starttls(context=ctx)
s.login('bob@localhost', 'pw')
name, version, bits = s.sock.cipher()
s.sendmail('bob@localhost', ['bob@localhost'], ('From: bob@localhost\r\nSubject: ' + cap + '\r\n\r\nhi\r\n').encode())
s.quit()
print(version, name, bits)
"#;

#[test]
fn received_header_names_the_tls_version_and_cipher() {
    if !have("python3", "--version") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    add_user(&db, "bob@localhost");
    // TLS by default (the snakeoil pair), no extra flags.
    let up = Up::start(&db, &[]);
    let sub = up.addr("submission");
    let (host, port) = sub.rsplit_once(':').unwrap();
    let mut want = Vec::new();
    for cap in ["TLSv1_2", "TLSv1_3"] {
        let o = run(
            Command::new("python3").args(["-c", SUBMIT, host, port, cap]),
            b"",
        );
        assert!(o.status.success(), "{}", text(&o));
        let said = String::from_utf8_lossy(&o.stdout).trim().to_string();
        let [version, cipher, bits] = said.split(' ').collect::<Vec<_>>()[..] else {
            panic!("python said {said:?}");
        };
        want.push((
            cap,
            format!("(using {version} with cipher {cipher} ({bits}/{bits} bits))"),
        ));
    }
    let imap = up.addr("imap").parse().unwrap();
    let msgs = testkit::imap::fetch_all_text(imap, "bob@localhost", "pw", "INBOX");
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    for (cap, comment) in want {
        let m = msgs
            .iter()
            .find(|m| m.contains(&format!("Subject: {cap}")))
            .unwrap_or_else(|| panic!("no {cap} message in {msgs:?}"));
        // Postfix's form: the comment after the from clause, before `by`.
        let received = m.split("\r\nby ").next().unwrap_or(m);
        assert!(
            m.contains(&format!("\r\n\t{comment}\r\n\tby ")),
            "{cap}: want {comment} in\n{received}\n---\n{m}"
        );
        assert!(m.contains("with ESMTPSA id"), "{m}");
    }
}

/// An OCSP response made with `openssl ocsp` from a small CA is stapled:
/// `openssl s_client -status` shows it.
#[test]
fn ocsp_response_is_stapled() {
    if !have("openssl", "version") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sh = r#"
set -e
cd "$1"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem -out req.csr -subj /CN=localhost -addext subjectAltName=DNS:localhost 2>/dev/null
printf 'subjectAltName=DNS:localhost\n' > ext.cnf
openssl x509 -req -in req.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cert.pem -days 2 -extfile ext.cnf 2>/dev/null
serial=$(openssl x509 -in cert.pem -noout -serial | cut -d= -f2)
expiry=$(date -u -d '+2 days' +%y%m%d%H%M%SZ)
printf 'V\t%s\t\t%s\tunknown\t/CN=localhost\n' "$expiry" "$serial" > index.txt
openssl ocsp -index index.txt -rsigner ca.pem -rkey ca.key -CA ca.pem -issuer ca.pem -cert cert.pem -respout ocsp.der -ndays 1 >/dev/null 2>&1
"#;
    let o = run(Command::new("sh").args(["-c", sh, "sh"]).arg(d), b"");
    assert!(o.status.success(), "making the OCSP response: {}", text(&o));
    let up = Up::start(
        &d.join("m.db"),
        &[
            "--tls-cert",
            d.join("cert.pem").to_str().unwrap(),
            "--tls-key",
            d.join("key.pem").to_str().unwrap(),
            "--tls-ocsp",
            d.join("ocsp.der").to_str().unwrap(),
        ],
    );
    let (ok, out) = s_client(&up.addr("imaps"), &["-status"]);
    assert!(ok, "{out}");
    assert!(out.contains("OCSP Response Status: successful"), "{out}");
    assert!(out.contains("Cert Status: good"), "{out}");
    drop(up);
    // Without it, nothing is stapled; a file that is not DER is refused.
    let (c, k) = (d.join("cert.pem"), d.join("key.pem"));
    let up = Up::start(
        &d.join("n.db"),
        &[
            "--tls-cert",
            c.to_str().unwrap(),
            "--tls-key",
            k.to_str().unwrap(),
        ],
    );
    let (ok, out) = s_client(&up.addr("imaps"), &["-status"]);
    assert!(ok && out.contains("no response sent"), "{out}");
    let o = run(
        Command::new(BIN)
            .args(["up", "--db"])
            .arg(d.join("o.db"))
            .args([
                "--tls-cert",
                c.to_str().unwrap(),
                "--tls-key",
                k.to_str().unwrap(),
            ])
            .args(["--tls-ocsp", c.to_str().unwrap()]),
        b"",
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("not a DER OCSP response"), "{}", text(&o));
}
