//! mua over TLS against minimail with a self-signed certificate: STARTTLS
//! (RFC 3207 §4, RFC 3501 §6.2.1) and implicit TLS (RFC 8314 §3) with
//! `--cafile`; the settings' precedence (flag, env, config file); and the
//! failures: STARTTLS required but not offered, an untrusted certificate,
//! a certificate for another name (all exit 3), a bad mode (exit 2).

use super::util::{run, Output, Servers, PASSWORD};

fn send(s: &Servers, extra: &[&str], subject: &str) -> Output {
    let mut args = extra.to_vec();
    args.extend([
        "send",
        "--to",
        "bob@localhost",
        "--subject",
        subject,
        "--body",
        "over TLS",
    ]);
    run(s.mua("alice@localhost").args(&args), None)
}

/// Bob lists and reads his newest message with `extra` settings; returns
/// both outputs.
fn list_and_read(s: &Servers, extra: &[&str]) -> (Output, Output) {
    let mut args = extra.to_vec();
    args.extend(["list", "--json", "--limit", "1"]);
    let list = run(s.mua("bob@localhost").args(&args), None);
    assert_eq!(list.code, 0, "{}", list.stderr);
    let rows: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    let uid = rows[0]["uid"].as_u64().unwrap().to_string();
    let mut args = extra.to_vec();
    args.extend(["read", &uid]);
    let read = run(s.mua("bob@localhost").args(&args), None);
    assert_eq!(read.code, 0, "{}", read.stderr);
    (list, read)
}

#[test]
fn starttls_send_list_read_with_cafile() {
    let s = Servers::start_tls();
    let ca = s.cafile.to_str().unwrap().to_string();
    let tls = ["--tls", "starttls", "--cafile", &ca, "--trace"];
    let out = send(&s, &tls, "Secure lunch");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let t = &out.stderr;
    // SMTP: STARTTLS, 220, handshake, EHLO again without STARTTLS, AUTH.
    let starttls = t.find("C: STARTTLS").expect(t);
    let ready = t[starttls..].find("S: 220").expect(t) + starttls;
    let est = t.find("[TLS 1.3 established with 127.0.0.1]").expect(t);
    let ehlo2 = t[est..].find("C: EHLO").expect(t) + est;
    let auth = t.find("C: AUTH PLAIN ****").expect(t);
    assert!(
        starttls < ready && ready < est && est < ehlo2 && ehlo2 < auth,
        "{t}"
    );
    assert!(!t[est..].contains("S: 250-STARTTLS"), "{t}");
    assert!(!t.contains(PASSWORD), "password in trace: {t}");
    // IMAP (the Sent copy): STARTTLS, handshake, CAPABILITY, then LOGIN.
    let imap_start = t.find("C: a1 STARTTLS").expect(t);
    let imap_tls = t.rfind("[TLS 1.3 established with 127.0.0.1]").expect(t);
    let login = t.find(" LOGIN \"alice@localhost\" ****").expect(t);
    assert!(
        est < imap_start && imap_start < imap_tls && imap_tls < login,
        "{t}"
    );
    assert!(t[imap_tls..login].contains(" CAPABILITY"), "{t}");

    let (list, read) = list_and_read(&s, &tls);
    assert!(list.stdout.contains("Secure lunch"), "{}", list.stdout);
    assert!(
        list.stderr.contains("[TLS 1.3 established"),
        "{}",
        list.stderr
    );
    assert!(read.stdout.contains("over TLS"), "{}", read.stdout);
    // A DNS name is checked against the certificate's DNS SAN.
    let by_name = format!("localhost:{}", s.imap.port());
    let out = run(
        s.mua("bob@localhost")
            .args(["--imap", &by_name])
            .args(tls)
            .arg("mailboxes"),
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("established with localhost]"),
        "{}",
        out.stderr
    );
    // After TLS the server no longer offers STARTTLS nor LOGINDISABLED.
    let after = &list.stderr[list.stderr.find("established").unwrap()..];
    let caps = after
        .lines()
        .find(|l| l.starts_with("S: * CAPABILITY"))
        .expect(after);
    assert!(
        !caps.contains("STARTTLS") && !caps.contains("LOGINDISABLED"),
        "{caps}"
    );
}

#[test]
fn implicit_tls_send_list_read() {
    let s = Servers::start_tls();
    let smtps = s.smtps.unwrap().to_string();
    let imaps = s.imaps.unwrap().to_string();
    let ca = s.cafile.to_str().unwrap().to_string();
    let tls = [
        "--tls", "implicit", "--cafile", &ca, "--smtp", &smtps, "--imap", &imaps, "--trace",
    ];
    let out = send(&s, &tls, "Implicit hello");
    assert_eq!(out.code, 0, "{}", out.stderr);
    // TLS before the greeting, and no STARTTLS anywhere.
    let est = out.stderr.find("[TLS 1.3 established").expect(&out.stderr);
    let greeting = out.stderr.find("S: 220").expect(&out.stderr);
    assert!(est < greeting, "{}", out.stderr);
    assert!(!out.stderr.contains("STARTTLS"), "{}", out.stderr);
    let (list, read) = list_and_read(&s, &tls);
    assert!(list.stdout.contains("Implicit hello"), "{}", list.stdout);
    assert!(read.stdout.contains("over TLS"), "{}", read.stdout);
    // Implicit TLS against a plaintext port: a clear exit 3, no LOGIN.
    let out = run(
        s.mua("bob@localhost")
            .args(["--tls", "implicit", "--cafile", &ca, "list"]),
        None,
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("plaintext port"), "{}", out.stderr);
}

#[test]
fn auto_stays_plaintext_on_loopback_and_settings_come_from_env_and_file() {
    let s = Servers::start_tls();
    // auto (the default) on 127.0.0.1: STARTTLS is offered but not used.
    let out = send(&s, &["--trace"], "Loopback");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("S: 250-STARTTLS"), "{}", out.stderr);
    assert!(!out.stderr.contains("C: STARTTLS"), "{}", out.stderr);
    assert!(!out.stderr.contains("established"), "{}", out.stderr);
    // The environment: MUA_TLS / MUA_CAFILE.
    let out = run(
        s.mua("bob@localhost")
            .env("MUA_TLS", "starttls")
            .env("MUA_CAFILE", &s.cafile)
            .args(["--trace", "mailboxes"]),
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("[TLS 1.3 established"),
        "{}",
        out.stderr
    );
    // A flag beats the environment.
    let out = run(
        s.mua("bob@localhost").env("MUA_TLS", "starttls").args([
            "--tls",
            "none",
            "--trace",
            "mailboxes",
        ]),
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("established"), "{}", out.stderr);
    // The config file: tls = / cafile =.
    let cfg = s.dir.path().join("mua.toml");
    std::fs::write(
        &cfg,
        format!(
            "tls = \"starttls\"\ncafile = {:?}\n",
            s.cafile.to_str().unwrap()
        ),
    )
    .unwrap();
    let out = run(
        s.mua("bob@localhost")
            .args(["--config", cfg.to_str().unwrap(), "--trace", "mailboxes"]),
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("[TLS 1.3 established"),
        "{}",
        out.stderr
    );
}

#[test]
fn starttls_required_but_not_offered_exits_3() {
    let s = Servers::start();
    for args in [
        &["--tls", "starttls", "mailboxes"][..],
        &[
            "--tls",
            "starttls",
            "send",
            "--to",
            "bob@localhost",
            "--body",
            "x",
        ],
    ] {
        let out = run(s.mua("alice@localhost").args(args), None);
        assert_eq!(out.code, 3, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("does not offer STARTTLS"),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn untrusted_certificate_exits_3_and_names_cafile() {
    let s = Servers::start_tls();
    // No --cafile: the self-signed certificate is unknown.
    let out = run(
        s.mua("bob@localhost")
            .args(["--tls", "starttls", "--trace", "list"]),
        None,
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("--cafile"), "{}", out.stderr);
    assert!(
        out.stderr.contains("TLS handshake with 127.0.0.1"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains(" LOGIN \""),
        "no login without TLS: {}",
        out.stderr
    );
    // With no system CA store at all the advice says so too.
    let out = run(
        s.mua("bob@localhost")
            .env("SSL_CERT_FILE", s.dir.path().join("no-such-store.pem"))
            .args(["--tls", "starttls", "list"]),
        None,
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("no CA certificates") && out.stderr.contains("--cafile"),
        "{}",
        out.stderr
    );
    let imaps = s.imaps.unwrap().to_string();
    let out = run(
        s.mua("bob@localhost")
            .args(["--tls", "implicit", "--imap", &imaps, "list"]),
        None,
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("--cafile"), "{}", out.stderr);
    // A cafile with some other certificate: still refused, and named.
    let other = s.dir.path().join("other.pem");
    let cert = netloop::tls::self_signed(&["127.0.0.1".into()]).unwrap();
    std::fs::write(&other, cert.cert_pem).unwrap();
    let out = run(
        s.mua("alice@localhost").args([
            "--tls",
            "starttls",
            "--cafile",
            other.to_str().unwrap(),
            "send",
            "--to",
            "bob@localhost",
            "--body",
            "x",
        ]),
        None,
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("other.pem"), "{}", out.stderr);
}

#[test]
fn certificate_for_another_name_exits_3() {
    // Trusted (it is the cafile) but issued to another host than 127.0.0.1.
    let s = Servers::start_tls_for(&["mail.example.org"]);
    let out = run(
        s.mua("bob@localhost")
            .env("MUA_CAFILE", &s.cafile)
            .args(["--tls", "starttls", "list"]),
        None,
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("not valid for name"), "{}", out.stderr);
    assert!(
        out.stderr.contains("does not name this host"),
        "{}",
        out.stderr
    );
}

#[test]
fn bad_mode_or_cafile_exits_2() {
    let s = Servers::start();
    let out = run(
        s.mua("bob@localhost").args(["--tls", "always", "list"]),
        None,
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    let out = run(
        s.mua("bob@localhost").env("MUA_TLS", "yes").arg("list"),
        None,
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    let out = run(
        s.mua("bob@localhost")
            .args(["--cafile", "/nonexistent/ca.pem", "list"]),
        None,
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("/nonexistent/ca.pem"), "{}", out.stderr);
}
