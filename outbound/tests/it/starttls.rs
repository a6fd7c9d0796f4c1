//! STARTTLS against a scripted server that really does TLS (rustls, with a
//! self-signed rcgen certificate for "mx.test").

use std::io::Write;
use std::sync::Arc;

use crate::util::{config, ehlo, send, Server, Step};
use outbound::client::{Envelope, Failure, Rcpt, RcptResult, Session, TlsMode};

/// Greeting, EHLO offering STARTTLS, STARTTLS, handshake.
fn up_to_tls(tls: Arc<rustls::ServerConfig>) -> Vec<Step> {
    vec![
        send(&["220 mx.test ESMTP"]),
        Step::Recv(1),
        ehlo(&["PIPELINING", "STARTTLS"]),
        Step::Recv(1),
        send(&["220 2.0.0 ready to start TLS"]),
        Step::StartTls(tls),
    ]
}

/// After the handshake: EHLO again, one message, QUIT.
fn after_tls() -> Vec<Step> {
    vec![
        Step::Recv(1),
        ehlo(&["PIPELINING", "AUTH PLAIN"]),
        Step::Recv(2),
        send(&["250 ok", "250 ok"]),
        Step::Recv(1),
        send(&["354 go"]),
        Step::Data,
        send(&["250 2.0.0 queued"]),
        Step::Recv(1),
        send(&["221 bye"]),
    ]
}

fn deliver_one(session: &mut Session) -> Vec<RcptResult> {
    let rcpts = [Rcpt {
        addr: "one@mx.test",
        notify: None,
        orcpt: None,
    }];
    let env = Envelope {
        from: "a@client.test",
        rcpts: &rcpts,
        body: b"Subject: over TLS\r\n\r\nsecret\r\n",
        ret: None,
        envid: None,
    };
    session.send(&env).expect("send")
}

#[test]
fn opportunistic_accepts_a_self_signed_certificate() {
    let (_cert, tls) = crate::util::tls_server("mx.test");
    let server = Server::start(vec![[up_to_tls(tls), after_tls()]
        .into_iter()
        .flatten()
        .collect()]);
    let mut cfg = config();
    cfg.tls = TlsMode::Opportunistic;
    let mut session = Session::connect(server.addr, "mx.test", &cfg).expect("connect");
    assert!(session.is_tls());
    let results = deliver_one(&mut session);
    assert!(
        matches!(results[0], RcptResult::Delivered(_)),
        "{results:?}"
    );
    session.quit();
    let transcript = server.finish_one();
    assert_eq!(
        &transcript.lines[..3],
        ["EHLO client.test", "STARTTLS", "EHLO client.test"]
    );
    assert_eq!(
        transcript.data,
        vec![b"Subject: over TLS\r\n\r\nsecret\r\n.\r\n".to_vec()]
    );
}

#[test]
fn opportunistic_without_starttls_stays_plain() {
    let server = Server::start(vec![vec![
        send(&["220 mx.test ESMTP"]),
        Step::Recv(1),
        ehlo(&["PIPELINING"]),
        Step::Recv(1),
        send(&["221 bye"]),
    ]]);
    let mut cfg = config();
    cfg.tls = TlsMode::Opportunistic;
    let session = Session::connect(server.addr, "mx.test", &cfg).expect("connect");
    assert!(!session.is_tls());
    session.quit();
    server.finish_one();
}

#[test]
fn opportunistic_falls_back_to_plaintext_when_the_handshake_fails() {
    let server = Server::start(vec![
        vec![
            send(&["220 mx.test ESMTP"]),
            Step::Recv(1),
            ehlo(&["STARTTLS"]),
            Step::Recv(1),
            send(&["220 2.0.0 go"]),
            // The client's hello arrives; the answer is not TLS at all.
            Step::Drain(1),
            send(&["this is not a TLS record"]),
            Step::Close,
        ],
        vec![
            send(&["220 mx.test ESMTP"]),
            Step::Recv(1),
            ehlo(&["STARTTLS"]),
            Step::Recv(1),
            send(&["221 bye"]),
        ],
    ]);
    let mut cfg = config();
    cfg.tls = TlsMode::Opportunistic;
    let session = Session::connect(server.addr, "mx.test", &cfg).expect("connect");
    assert!(!session.is_tls());
    session.quit();
    let transcripts = server.finish();
    assert!(
        transcripts.iter().all(|t| t.errors.is_empty()),
        "{transcripts:?}"
    );
    assert_eq!(transcripts[1].lines, ["EHLO client.test", "QUIT"]);
}

#[test]
fn required_rejects_an_unknown_certificate() {
    let (_cert, tls) = crate::util::tls_server("mx.test");
    let server = Server::start(vec![up_to_tls(tls)]);
    let mut cfg = config();
    cfg.tls = TlsMode::Required;
    let err = Session::connect(server.addr, "mx.test", &cfg).expect_err("unverified");
    match &err {
        Failure::Temporary(text) => assert!(text.contains("certificate"), "{text}"),
        other => panic!("expected Temporary, got {other:?}"),
    }
    let transcripts = server.finish();
    assert!(
        !transcripts[0].errors.is_empty(),
        "the server's handshake failed too"
    );
}

#[test]
fn required_accepts_a_certificate_from_extra_ca() {
    let (cert, tls) = crate::util::tls_server("mx.test");
    let mut ca = tempfile::NamedTempFile::new().expect("temp file");
    ca.write_all(cert.as_bytes()).expect("write CA");
    let server = Server::start(vec![[up_to_tls(tls), after_tls()]
        .into_iter()
        .flatten()
        .collect()]);
    let mut cfg = config();
    cfg.tls = TlsMode::Required;
    cfg.extra_ca = Some(ca.path().to_path_buf());
    // AUTH is allowed now that the session is encrypted (it is on loopback
    // anyway; the point here is that the post-TLS EHLO is what counts).
    let mut session = Session::connect(server.addr, "mx.test", &cfg).expect("connect");
    assert!(session.is_tls());
    let results = deliver_one(&mut session);
    assert!(
        matches!(results[0], RcptResult::Delivered(_)),
        "{results:?}"
    );
    session.quit();
    server.finish_one();
}

#[test]
fn required_checks_the_mx_host_name() {
    let (cert, tls) = crate::util::tls_server("mx.test");
    let mut ca = tempfile::NamedTempFile::new().expect("temp file");
    ca.write_all(cert.as_bytes()).expect("write CA");
    let server = Server::start(vec![up_to_tls(tls)]);
    let mut cfg = config();
    cfg.tls = TlsMode::Required;
    cfg.extra_ca = Some(ca.path().to_path_buf());
    let err = Session::connect(server.addr, "other.test", &cfg).expect_err("wrong name");
    assert!(matches!(err, Failure::Temporary(_)), "{err:?}");
    server.finish();
}

#[test]
fn required_fails_when_starttls_is_not_offered() {
    let server = Server::start(vec![vec![
        send(&["220 mx.test ESMTP"]),
        Step::Recv(1),
        ehlo(&["PIPELINING"]),
        Step::Recv(1),
        send(&["221 bye"]),
    ]]);
    let mut cfg = config();
    cfg.tls = TlsMode::Required;
    let err = Session::connect(server.addr, "mx.test", &cfg).expect_err("no STARTTLS");
    match &err {
        Failure::Temporary(text) => assert!(text.contains("STARTTLS not offered"), "{text}"),
        other => panic!("expected Temporary, got {other:?}"),
    }
    assert_eq!(server.finish_one().lines, ["EHLO client.test", "QUIT"]);
}

#[test]
fn plaintext_injected_after_starttls_is_refused() {
    let server = Server::start(vec![vec![
        send(&["220 mx.test ESMTP"]),
        Step::Recv(1),
        ehlo(&["STARTTLS"]),
        Step::Recv(1),
        // The 220 and a forged reply in the same packet.
        send(&["220 2.0.0 go", "250 injected"]),
        Step::Hang,
    ]]);
    let mut cfg = config();
    cfg.tls = TlsMode::Required;
    let err = Session::connect(server.addr, "mx.test", &cfg).expect_err("injection");
    match &err {
        Failure::Temporary(text) => assert!(text.contains("after the STARTTLS reply"), "{text}"),
        other => panic!("expected Temporary, got {other:?}"),
    }
    server.finish_one();
}
