//! STARTTLS in the SMTP (RFC 3207 §4-§6) and IMAP (RFC 3501 §6.2.1)
//! clients: against scripted peers for what a real server never does
//! (bytes injected after the go-ahead, STARTTLS refused, PREAUTH), and
//! against minimail's servers with a self-signed certificate for `auto`
//! from a "remote" address (mua cannot bind a non-loopback source itself,
//! so the loopback test knob stands in for one).

use crate::error::MuaError;
use crate::imap::Client;
use crate::net::Options;
use crate::smtp::SmtpClient;
use crate::tls::{TlsMode, Trust};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::thread::JoinHandle;
use std::time::Duration;

/// A peer that greets, then answers each line with `answer(line)`;
/// returns the lines it received.
fn scripted(
    greeting: &'static str,
    answer: impl Fn(&str) -> String + Send + 'static,
) -> (String, JoinHandle<Vec<String>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let h = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        w.write_all(greeting.as_bytes()).unwrap();
        let mut seen = Vec::new();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return seen;
            }
            let line = line.trim_end().to_string();
            // One write: the reply and anything injected after it arrive together.
            if w.write_all(answer(&line).as_bytes()).is_err() {
                return seen;
            }
            seen.push(line);
        }
    });
    (addr, h)
}

fn mode(tls: TlsMode) -> Options {
    Options {
        tls,
        ..Options::default()
    }
}

#[test]
fn smtp_bytes_after_the_starttls_go_ahead_are_refused() {
    let (addr, h) = scripted("220 hi\r\n", |l| match l {
        l if l.starts_with("EHLO") => "250-hi\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n".into(),
        "STARTTLS" => "220 go ahead\r\n250-injected\r\n250 AUTH PLAIN\r\n".into(),
        _ => "500 what\r\n".into(),
    });
    let e = SmtpClient::connect(&addr, &mode(TlsMode::Starttls))
        .err()
        .unwrap();
    assert!(
        matches!(&e, MuaError::Protocol(m) if m.contains("injection")),
        "{e}"
    );
    let seen = h.join().unwrap();
    assert_eq!(
        seen.last().map(String::as_str),
        Some("STARTTLS"),
        "{seen:?}"
    );
}

#[test]
fn imap_bytes_after_the_starttls_ok_are_refused() {
    let (addr, h) = scripted("* OK [CAPABILITY IMAP4rev1 STARTTLS] hi\r\n", |l| {
        let (tag, cmd) = l.split_once(' ').unwrap_or((l, ""));
        match cmd {
            "STARTTLS" => format!("{tag} OK begin\r\n* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n"),
            _ => format!("{tag} BAD what\r\n"),
        }
    });
    let e = Client::connect(&addr, &mode(TlsMode::Starttls))
        .err()
        .unwrap();
    assert!(
        matches!(&e, MuaError::Protocol(m) if m.contains("injection")),
        "{e}"
    );
    let seen = h.join().unwrap();
    assert_eq!(seen, ["a1 STARTTLS"]);
}

#[test]
fn starttls_refused_by_the_server_is_a_tls_error() {
    let (addr, h) = scripted("220 hi\r\n", |l| match l {
        l if l.starts_with("EHLO") => "250-hi\r\n250 STARTTLS\r\n".into(),
        "STARTTLS" => "454 4.7.0 TLS not available due to temporary reason\r\n".into(),
        _ => "221 bye\r\n".into(),
    });
    let e = SmtpClient::connect(&addr, &mode(TlsMode::Starttls))
        .err()
        .unwrap();
    assert!(
        matches!(&e, MuaError::Tls(m) if m.contains("454 4.7.0")),
        "{e}"
    );
    assert_eq!(e.exit_code(), crate::error::EXIT_CONNECT);
    h.join().unwrap();

    let (addr, h) = scripted("* OK [CAPABILITY IMAP4rev1 STARTTLS] hi\r\n", |l| {
        let tag = l.split(' ').next().unwrap_or("*");
        format!("{tag} NO [UNAVAILABLE] no certificate\r\n")
    });
    let e = Client::connect(&addr, &mode(TlsMode::Starttls))
        .err()
        .unwrap();
    assert!(
        matches!(&e, MuaError::Tls(m) if m.contains("no certificate")),
        "{e}"
    );
    h.join().unwrap();
}

#[test]
fn preauth_and_helo_only_servers_cannot_do_starttls() {
    // PREAUTH: already authenticated, STARTTLS is no longer allowed.
    let (addr, h) = scripted("* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS] hi\r\n", |l| {
        let tag = l.split(' ').next().unwrap_or("*");
        format!("{tag} OK done\r\n")
    });
    let e = Client::connect(&addr, &mode(TlsMode::Starttls))
        .err()
        .unwrap();
    assert!(
        matches!(&e, MuaError::Tls(m) if m.contains("does not offer STARTTLS")),
        "{e}"
    );
    drop(h);
    // auto and none carry on in plaintext, saying nothing.
    for tls in [TlsMode::Auto, TlsMode::None] {
        let (addr, h) = scripted("* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS] hi\r\n", |l| {
            let tag = l.split(' ').next().unwrap_or("*");
            format!("{tag} OK done\r\n")
        });
        let c = Client::connect(&addr, &mode(tls)).unwrap();
        assert!(!c.is_tls());
        c.logout();
        assert_eq!(h.join().unwrap(), ["a1 LOGOUT"]);
    }
    // An SMTP server that refuses EHLO has no extensions, so no STARTTLS.
    let (addr, h) = scripted("220 hi\r\n", |l| match l {
        l if l.starts_with("EHLO") => "502 5.5.1 no\r\n".into(),
        _ => "250 ok\r\n".into(),
    });
    let e = SmtpClient::connect(&addr, &mode(TlsMode::Starttls))
        .err()
        .unwrap();
    assert!(
        matches!(&e, MuaError::Tls(m) if m.contains("does not offer STARTTLS")),
        "{e}"
    );
    assert_eq!(
        h.join().unwrap(),
        ["EHLO mua.localhost", "HELO mua.localhost"]
    );
}

#[test]
fn logindisabled_stops_login_before_the_password_is_sent() {
    let (addr, h) = scripted("* OK [CAPABILITY IMAP4rev1 LOGINDISABLED] hi\r\n", |l| {
        let tag = l.split(' ').next().unwrap_or("*");
        format!("{tag} OK done\r\n")
    });
    let mut c = Client::connect(&addr, &mode(TlsMode::Auto)).unwrap();
    let e = c.login("a@x", "pw").unwrap_err();
    assert!(
        matches!(&e, MuaError::Auth(m) if m.contains("LOGINDISABLED")),
        "{e}"
    );
    c.logout();
    assert_eq!(h.join().unwrap(), ["a1 LOGOUT"]);
}

/// smtpd and imapd with STARTTLS over an empty store; the cafile path.
struct Real {
    smtp: SocketAddr,
    imap: SocketAddr,
    trust: Trust,
    handles: Vec<netloop::ShutdownHandle>,
    _dir: tempfile::TempDir,
}

impl Real {
    fn start() -> Real {
        let dir = tempfile::tempdir().unwrap();
        let store = mailstore::Store::open(dir.path().join("mail.db")).unwrap();
        store
            .write_sync(|tx| tx.create_user("a@localhost", &mailstore::hash_password("pw")?))
            .unwrap();
        let cert = netloop::tls::self_signed(&["127.0.0.1".into()]).unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, &cert.cert_pem).unwrap();
        let net = netloop::Config {
            tls: Some(
                netloop::tls::from_pem(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes()).unwrap(),
            ),
            ..Default::default()
        };
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let smtp = smtpd::bind(
            &[any],
            smtpd::Config {
                domains: vec!["localhost".into()],
                net: net.clone(),
                ..Default::default()
            },
            store.clone(),
        )
        .unwrap();
        let imap = imapd::bind(
            &[any],
            imapd::Config {
                net,
                ..Default::default()
            },
            store,
        )
        .unwrap();
        let r = Real {
            smtp: smtp.local_addrs()[0],
            imap: imap.local_addrs()[0],
            trust: Trust::new(Some(&ca)).unwrap(),
            handles: vec![smtp.shutdown_handle(), imap.shutdown_handle()],
            _dir: dir,
        };
        std::thread::spawn(move || smtp.run());
        std::thread::spawn(move || imap.run());
        r
    }

    fn opts(&self, tls: TlsMode, remote: bool) -> Options {
        Options {
            tls,
            trust: self.trust.clone(),
            loopback_is_remote: remote,
            ..Options::default()
        }
    }
}

impl Drop for Real {
    fn drop(&mut self) {
        for h in &self.handles {
            h.shutdown();
        }
    }
}

#[test]
fn auto_uses_starttls_with_a_remote_server_and_not_on_loopback() {
    let r = Real::start();
    let remote = r.opts(TlsMode::Auto, true);
    let c = SmtpClient::connect(&r.smtp.to_string(), &remote).unwrap();
    assert!(c.is_tls());
    // RFC 3207 §4.2: the second EHLO's keywords replace the first's.
    assert!(c.extension("STARTTLS").is_none(), "{:?}", c.extensions);
    assert!(c.extension("AUTH").is_some(), "{:?}", c.extensions);
    c.quit();
    let c = Client::connect(&r.imap.to_string(), &remote).unwrap();
    assert!(c.is_tls());
    assert!(!c.has("STARTTLS") && c.has("IMAP4REV1"), "{:?}", c.caps);
    c.logout();

    let local = r.opts(TlsMode::Auto, false);
    let c = SmtpClient::connect(&r.smtp.to_string(), &local).unwrap();
    assert!(!c.is_tls());
    assert!(c.extension("STARTTLS").is_some(), "{:?}", c.extensions);
    c.quit();
    let c = Client::connect(&r.imap.to_string(), &local).unwrap();
    assert!(!c.is_tls() && c.has("STARTTLS"), "{:?}", c.caps);
    c.logout();
}

#[test]
fn a_tls_session_can_be_shut_down_from_another_thread() {
    let r = Real::start();
    let mut c = Client::connect(&r.imap.to_string(), &r.opts(TlsMode::Starttls, false)).unwrap();
    assert!(c.is_tls());
    c.login("a@localhost", "pw").unwrap();
    c.select("INBOX", true).unwrap();
    let sock = c.socket().unwrap();
    // IDLE blocks reading through TLS; were the shutdown not to reach it,
    // the wait would end quietly (Ok) after two minutes instead.
    let idler = std::thread::spawn(move || c.idle(Duration::from_secs(120)));
    std::thread::sleep(Duration::from_millis(200));
    sock.shutdown(std::net::Shutdown::Both).unwrap();
    assert!(idler.join().unwrap().is_err());
}
