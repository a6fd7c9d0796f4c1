//! `mua sieve` against minimail's ManageSieve server (RFC 5804): put,
//! list (text and JSON), get, activate, deactivate, check and delete; a
//! script that does not compile is refused with the server's reason and
//! nothing is stored or activated; STARTTLS with the server's
//! certificate; credentials never in the trace.

use crate::util::{Servers, PASSWORD};

const RULES: &str = "require [\"fileinto\"];\nif header :contains \"Subject\" \"[lists]\" {\n    fileinto \"Lists\";\n}\n";

#[test]
fn put_list_get_activate_check_and_delete() {
    let s = Servers::start();
    let a = "alice@localhost";
    assert_eq!(s.ok(a, &["sieve", "list"], None).stdout, "");
    let out = s.ok(
        a,
        &["sieve", "put", "rules", "-", "--activate"],
        Some(RULES.as_bytes()),
    );
    assert_eq!(out.stdout, "stored \"rules\" (active)\n");
    let file = s.dir.path().join("away.sieve");
    std::fs::write(&file, "require \"vacation\";\nvacation \"I am away.\";\n").unwrap();
    s.ok(a, &["sieve", "put", "away", file.to_str().unwrap()], None);
    assert_eq!(
        s.ok(a, &["sieve", "list"], None).stdout,
        "away\nrules ACTIVE\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(&s.ok(a, &["sieve", "list", "--json"], None).stdout).unwrap();
    assert_eq!(
        json,
        serde_json::json!([{"name": "away", "active": false}, {"name": "rules", "active": true}])
    );
    assert_eq!(s.ok(a, &["sieve", "get", "rules"], None).stdout, RULES);
    // A bad script: exit 6 with the compiler's reason; nothing changes.
    let bad = s.run(
        a,
        &["sieve", "put", "rules", "-", "--activate"],
        Some(b"if true {"),
    );
    assert_eq!(bad.code, 6, "{}", bad.stderr);
    assert!(bad.stderr.contains("Unterminated block"), "{}", bad.stderr);
    assert_eq!(s.ok(a, &["sieve", "get", "rules"], None).stdout, RULES);
    let bad = s.run(
        a,
        &["sieve", "put", "other", "-", "--activate"],
        Some(b"frobnicate;"),
    );
    assert_eq!(bad.code, 6, "{}", bad.stderr);
    assert_eq!(
        s.ok(a, &["sieve", "list"], None).stdout,
        "away\nrules ACTIVE\n"
    );
    // check: on the server, nothing stored.
    assert_eq!(
        s.ok(a, &["sieve", "check", file.to_str().unwrap()], None)
            .stdout,
        format!("{}: ok\n", file.display())
    );
    let bad = s.run(a, &["sieve", "check", "-"], Some(b"if true {"));
    assert_eq!(bad.code, 6, "{}", bad.stderr);
    // activate, deactivate, delete.
    s.ok(a, &["sieve", "activate", "away"], None);
    assert_eq!(
        s.ok(a, &["sieve", "list"], None).stdout,
        "away ACTIVE\nrules\n"
    );
    let active = s.run(a, &["sieve", "delete", "away"], None);
    assert_eq!(active.code, 6, "{}", active.stderr);
    assert!(active.stderr.contains("ACTIVE"), "{}", active.stderr);
    s.ok(a, &["sieve", "deactivate"], None);
    s.ok(a, &["sieve", "delete", "away"], None);
    assert_eq!(s.ok(a, &["sieve", "list"], None).stdout, "rules\n");
    // Missing scripts: exit 5.
    for args in [
        ["sieve", "get", "nope"],
        ["sieve", "activate", "nope"],
        ["sieve", "delete", "nope"],
    ] {
        let missing = s.run(a, &args, None);
        assert_eq!(missing.code, 5, "{args:?}: {}", missing.stderr);
    }
    // Another user sees none of it; a wrong password is exit 4.
    assert_eq!(s.ok("bob@localhost", &["sieve", "list"], None).stdout, "");
    let denied = crate::util::run(
        s.mua(a)
            .env("MUA_PASSWORD", "wrong")
            .args(["sieve", "list"]),
        None,
    );
    assert_eq!(denied.code, 4, "{}", denied.stderr);
}

#[test]
fn starttls_is_used_and_the_trace_hides_the_password() {
    let s = Servers::start_tls();
    let a = "alice@localhost";
    let cafile = s.cafile.to_str().unwrap().to_owned();
    let out = s.ok(
        a,
        &[
            "--tls", "starttls", "--cafile", &cafile, "--trace", "sieve", "put", "r", "-",
        ],
        Some(RULES.as_bytes()),
    );
    assert!(out.stderr.contains("C: STARTTLS"), "{}", out.stderr);
    assert!(out.stderr.contains("established with"), "{}", out.stderr);
    assert!(
        out.stderr.contains("AUTHENTICATE \"PLAIN\" <credentials>"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(PASSWORD), "{}", out.stderr);
    let b64 = testkit::smtp::b64(&format!("\0{a}\0{PASSWORD}"));
    assert!(!out.stderr.contains(&b64), "{}", out.stderr);
    // Without the certificate trusted, starttls fails (exit 3).
    let untrusted = s.run(a, &["--tls", "starttls", "sieve", "list"], None);
    assert_eq!(untrusted.code, 3, "{}", untrusted.stderr);
}
