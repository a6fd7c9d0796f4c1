#![allow(clippy::unwrap_used)]

//! The inbound checks against a real DNS server (dnsmasq on loopback)
//! serving SPF, DKIM and DMARC records: a message signed by our own
//! signer passes; a changed body fails DKIM; mail from an address outside
//! the sender domain's SPF, unsigned, fails DMARC and gets the domain's
//! policy (reject, quarantine); a dead DNS server gives temperror and the
//! message is accepted; records that loop or exceed RFC 7208's lookup
//! limits give permerror, never a hang.

use mailauth::{Disposition, Envelope, Signer, Verifier};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};
use testkit::dns::Dnsmasq;

fn txt(name: &str, text: &str) -> String {
    let strings: Vec<String> = text
        .as_bytes()
        .chunks(255)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    format!("--txt-record={name},{}", strings.join(","))
}

fn signer(domain: &str, selector: &str) -> (Signer, String) {
    let (private_key, public_key) = mailauth::generate(mailauth::Algorithm::Ed25519).unwrap();
    let record = mailauth::dns_record(mailauth::Algorithm::Ed25519, &public_key);
    let key = mailstore::DkimKey {
        domain: domain.into(),
        selector: selector.into(),
        algorithm: "ed25519".into(),
        private_key,
        public_key,
        created: 0,
        active: true,
    };
    (
        Signer::new(&[key]).unwrap(),
        txt(&format!("{selector}._domainkey.{domain}"), &record),
    )
}

fn message(from: &str, body: &str) -> Vec<u8> {
    format!(
        "From: <{from}>\r\nTo: <bob@b.test>\r\nSubject: check me\r\nMessage-ID: <1@x>\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

fn signed(s: &Signer, domain: &str, raw: Vec<u8>) -> Vec<u8> {
    let mut h = s.sign(domain, &raw).unwrap().unwrap().into_bytes();
    h.extend_from_slice(&raw);
    h
}

fn env(ip: &str, mail_from: &str) -> Envelope {
    Envelope {
        ip: ip.parse::<IpAddr>().unwrap(),
        helo: "mx.sender.test".into(),
        mail_from: mail_from.into(),
    }
}

#[test]
fn spf_dkim_dmarc_verdicts_and_policies() {
    let (a_signer, a_key) = signer("a.test", "e1");
    let dns = Dnsmasq::start(&[
        a_key,
        txt("a.test", "v=spf1 ip4:127.0.0.1 -all"),
        txt("_dmarc.a.test", "v=DMARC1; p=reject"),
        txt("q.test", "v=spf1 ip4:127.0.0.1 -all"),
        txt("_dmarc.q.test", "v=DMARC1; p=quarantine"),
        txt("loop.test", "v=spf1 include:loop.test -all"),
        txt(
            "many.test",
            "v=spf1 a:a1.many.test a:a2.many.test a:a3.many.test a:a4.many.test a:a5.many.test a:a6.many.test a:a7.many.test a:a8.many.test a:a9.many.test a:a10.many.test a:a11.many.test -all",
        ),
    ]);
    let v = Verifier::new("mx.b.test", Some(dns.addr), Duration::from_secs(10)).unwrap();

    // Signed, from an address SPF allows: everything passes.
    let raw = signed(&a_signer, "a.test", message("alice@a.test", "hello"));
    let got = v.check(&raw, &env("127.0.0.1", "alice@a.test"));
    assert_eq!(got.disposition, Disposition::Accept, "{}", got.header);
    assert!(
        got.header.starts_with("Authentication-Results: mx.b.test;"),
        "{}",
        got.header
    );
    for want in ["dkim=pass", "spf=pass", "dmarc=pass", "header.d=a.test"] {
        assert!(got.header.contains(want), "no {want}: {}", got.header);
    }
    assert!(
        got.summary.contains("dkim=pass") && got.summary.contains("dmarc=pass"),
        "{}",
        got.summary
    );

    // One body byte changed in transit: DKIM fails; SPF still aligns.
    let mut tampered = raw.clone();
    let at = tampered.len() - 4;
    tampered[at] ^= 0x20;
    let got = v.check(&tampered, &env("127.0.0.1", "alice@a.test"));
    assert!(got.header.contains("dkim=fail"), "{}", got.header);
    assert_eq!(got.disposition, Disposition::Accept, "{}", got.header);

    // Forged From: @a.test, unsigned, from outside a.test's SPF: p=reject.
    let forged = message("alice@a.test", "pay now");
    let got = v.check(&forged, &env("127.0.0.9", "alice@a.test"));
    assert!(
        got.header.contains("spf=fail") && got.header.contains("dmarc=fail"),
        "{}",
        got.header
    );
    match &got.disposition {
        Disposition::Reject(why) => {
            assert!(why.starts_with("5.7.1") && why.contains("a.test"), "{why}")
        }
        other => panic!("{other:?}: {}", got.header),
    }

    // The same for q.test, whose policy is quarantine.
    let got = v.check(&message("q@q.test", "x"), &env("127.0.0.9", "q@q.test"));
    assert_eq!(got.disposition, Disposition::Quarantine, "{}", got.header);

    // SPF that includes itself, and more than 10 DNS-querying terms: a
    // permanent error (RFC 7208 §4.6.4), quickly.
    for domain in ["loop.test", "many.test"] {
        let t = Instant::now();
        let got = v.check(
            &message(&format!("x@{domain}"), "x"),
            &env("127.0.0.1", &format!("x@{domain}")),
        );
        assert!(
            got.header.contains("spf=permerror"),
            "{domain}: {}",
            got.header
        );
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{domain} took {:?}",
            t.elapsed()
        );
    }

    // 100 signatures (made-up selectors, each a DNS lookup): only the
    // first MAX_SIGNATURES are tried; a verdict comes quickly.
    let mut many = Vec::new();
    for k in 0..100 {
        many.extend_from_slice(
            format!("DKIM-Signature: v=1; a=rsa-sha256; d=a.test; s=x{k}; c=relaxed/relaxed; h=from; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA\r\n")
                .as_bytes(),
        );
    }
    many.extend_from_slice(&message("alice@a.test", "x"));
    let t = Instant::now();
    let got = v.check(&many, &env("127.0.0.1", "alice@a.test"));
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "took {:?}",
        t.elapsed()
    );
    let tried = got.header.matches("dkim=").count();
    assert!(
        (1..=mailauth::verify::MAX_SIGNATURES).contains(&tried),
        "{tried} results: {}",
        got.header
    );
    assert!(!got.header.contains("dkim=pass"), "{}", got.header);

    // A DKIM-Signature that is garbage: a verdict, no crash.
    let mut junk = b"DKIM-Signature: v=1; a=rsa-sha256; d=a.test; s=e1; b=%%%; bh=\r\n".to_vec();
    junk.extend_from_slice(&message("alice@a.test", "x"));
    let got = v.check(&junk, &env("127.0.0.1", "alice@a.test"));
    assert!(got.header.contains("dkim="), "{}", got.header);
    assert!(!got.header.contains("dkim=pass"), "{}", got.header);
}

#[test]
fn a_dead_dns_server_gives_temperror_and_the_message_is_accepted() {
    // A UDP port that answers nothing (bound, never read).
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = silent.local_addr().unwrap();
    let v = Verifier::new("mx.b.test", Some(addr), Duration::from_secs(3)).unwrap();
    let t = Instant::now();
    let got = v.check(
        &message("alice@a.test", "x"),
        &env("127.0.0.1", "alice@a.test"),
    );
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(got.disposition, Disposition::Accept, "{}", got.header);
    assert!(got.header.contains("temperror"), "{}", got.header);
}

#[test]
fn spawn_calls_back_from_the_checker_thread() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let v = Verifier::new(
        "mx.b.test",
        Some(silent.local_addr().unwrap()),
        Duration::from_secs(2),
    )
    .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    v.spawn(
        message("a@a.test", "x"),
        env("127.0.0.1", "a@a.test"),
        move |verdict, raw| {
            assert_eq!(raw, message("a@a.test", "x"));
            let _ = tx.send((std::thread::current().name().map(str::to_owned), verdict));
        },
    );
    let (thread, verdict) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(thread.as_deref(), Some("mailauth"));
    assert!(verdict
        .header
        .starts_with("Authentication-Results: mx.b.test;"));
}
