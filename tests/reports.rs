//! `minimail report dmarc|tls` over reports as they arrive: Python's
//! smtplib mails a running `minimail up` two DMARC aggregate reports (RFC
//! 7489 §7.2: one gzipped, one zipped), a TLS report (RFC 8460 §5.3:
//! multipart/report with a gzipped JSON part; the RFC's own example data),
//! an ordinary message and a report whose attachment is damaged
//! (tests/report-data/send.py); then the command, run while the server is
//! up, must list each report and add them up per domain.

use std::path::Path;
use std::process::{Command, Output};

use testkit::process::KillOnDrop as Up;

const BIN: &str = env!("CARGO_BIN_EXE_minimail");

fn minimail(args: &[&str], db: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--db")
        .arg(db)
        .output()
        .unwrap()
}

fn stdout_ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn setup() -> (tempfile::TempDir, Up, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let add = Command::new(BIN)
        .args(["user", "add", "dmarc@localhost", "--password-stdin", "--db"])
        .arg(&db)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"pw\n")?;
            c.wait()
        })
        .unwrap();
    assert!(add.success());
    let (child, line, _) = testkit::server::minimail_up(BIN, &db, &["--no-tls"], &[]);
    let up = Up(child);
    let smtp = testkit::server::addr_of(&line, "smtp");
    let (host, port) = smtp.rsplit_once(':').unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/report-data/send.py");
    let sent = Command::new("python3")
        .arg(&script)
        .args([host, port, "dmarc@localhost"])
        .output()
        .unwrap();
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    (dir, up, db)
}

#[test]
fn dmarc_and_tls_reports_are_listed_and_added_up() {
    let (_dir, _up, db) = setup();

    let out = minimail(&["report", "dmarc", "--user", "dmarc@localhost"], &db);
    let text = stdout_ok(&out);
    assert!(
        text.starts_with(
            "DMARC aggregate reports: 2 reports in dmarc@localhost/INBOX \
             (2 other messages skipped, 1 unreadable)\n"
        ),
        "{text}"
    );
    // Each report: who sent it, its id, period and published policy.
    assert!(text.contains("\nacme.example, report 9391651994964116463 (dmarc@localhost/INBOX UID 1), 2025-12-01 00:00 to 2025-12-01 23:59 UTC\n"), "{text}");
    assert!(
        text.contains("\nbigmail.example, report bm-2026-12-01-77 (dmarc@localhost/INBOX UID 2),"),
        "{text}"
    );
    assert!(
        text.contains("  policy for example.org: p=reject sp=reject adkim=r aspf=r\n"),
        "{text}"
    );
    // Rows with the receiver's evaluation and the raw auth results.
    let row = text
        .lines()
        .find(|l| l.trim_start().starts_with("198.51.100.7") && l.contains("reject"))
        .unwrap_or_else(|| panic!("no reject row: {text}"));
    assert!(
        row.contains(" 2 ") && row.contains("spf forger.example=fail"),
        "{row}"
    );
    assert!(text.contains("spf lists.example.net=pass"), "{text}");
    // The totals: 3+2 from acme, 4+1 from bigmail; DMARC passes when
    // aligned DKIM or aligned SPF passes.
    assert!(
        text.contains(
            "  example.org: 10 messages, 7 pass (70.0%), 3 fail; aligned dkim 7, aligned spf 3; \
             disposition none 7, quarantine 1, reject 2; reported by acme.example, bigmail.example\n\
             \x20   failing sources: 198.51.100.7 (3)\n"
        ),
        "{text}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("dmarc@localhost/INBOX UID 5: cannot decompress"),
        "{err}"
    );

    let tls = stdout_ok(&minimail(
        &["report", "tls", "--user", "dmarc@localhost"],
        &db,
    ));
    assert!(
        tls.starts_with(
            "TLS reports: 1 report in dmarc@localhost/INBOX (4 other messages skipped)\n"
        ),
        "{tls}"
    );
    assert!(tls.contains("\nCompany-X, report 5065427c-23d3-47ca-b6e0-946ea0e8c4be (dmarc@localhost/INBOX UID 3), 2026-12-01T00:00:00Z to 2026-12-01T23:59:59Z\n"), "{tls}");
    assert!(tls.contains("  sts policy for example.org (mx: *.mail.example.org): 5326 successful, 303 failed sessions\n"), "{tls}");
    assert!(tls.contains("    starttls-not-supported x200: 2001:db8:abcd:13::1 -> mx2.mail.example.org (https://reports.company-x.example/report_info?id=5065427c-23d3#StarttlsNotSupported)\n"), "{tls}");
    assert!(
        tls.contains(
            "  example.org: 5629 sessions, 5326 successful, 303 failed (5.4%): certificate-expired 100, \
             starttls-not-supported 200, validation-failure 3; reported by Company-X\n"
        ),
        "{tls}"
    );
}

#[test]
fn json_output_and_errors() {
    let (_dir, _up, db) = setup();
    let out = stdout_ok(&minimail(&["report", "dmarc", "--json"], &db));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["reports"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v["totals"]["example.org"]["messages"], 10, "{v}");
    assert_eq!(v["totals"]["example.org"]["reject"], 2, "{v}");
    assert_eq!(v["other_messages"], 2, "{v}");
    assert_eq!(v["malformed"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(
        v["reports"][0]["report"]["report_metadata"]["org_name"],
        "acme.example"
    );

    let tls = stdout_ok(&minimail(
        &["report", "tls", "--json", "--user", "dmarc@localhost"],
        &db,
    ));
    let v: serde_json::Value = serde_json::from_str(&tls).unwrap();
    assert_eq!(v["totals"]["example.org"]["failure"], 303, "{v}");
    assert_eq!(
        v["totals"]["example.org"]["failures_by_type"]["starttls-not-supported"],
        200
    );

    // A user or mailbox that is not there is an error, not an empty report.
    let nobody = minimail(&["report", "dmarc", "--user", "nobody@localhost"], &db);
    assert_eq!(nobody.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("no user nobody@localhost"));
    let nobox = minimail(
        &[
            "report",
            "tls",
            "--user",
            "dmarc@localhost",
            "--mailbox",
            "Reports",
        ],
        &db,
    );
    assert_eq!(nobox.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&nobox.stderr).contains("has no mailbox Reports"));
}
