//! AUTH (RFC 4954) and STARTTLS (RFC 3207) in the session state machine,
//! driven without sockets (netloop's test Driver) over a real store:
//! PLAIN and LOGIN with and without initial responses, cancel, bad base64,
//! order rules (§4), plaintext policy (538 5.7.11, §6), delayed failures
//! and the throttle, sender ownership after AUTH, the no-relay refusal,
//! and STARTTLS's state reset (§4.2).

use crate::util::{b64, inbox, plain, temp_store, test_config, PASSWORD};
use mailstore::Store;
use netloop::testing::Driver;
use netloop::{ConnInfo, Step, ThrottleConfig, TlsState};
use smtpd::{SmtpService, SmtpSession};
use std::time::Duration;
use tempfile::TempDir;

const WAIT: Duration = Duration::from_secs(20);

struct T {
    d: Driver<SmtpSession>,
    store: Store,
    _dir: TempDir,
}

/// A session from `peer` to 127.0.0.1:25.
fn open_from(peer: &str, config: smtpd::Config) -> T {
    let (dir, store) = temp_store();
    let svc = SmtpService::new(config, store.clone());
    let info = ConnInfo {
        id: 1,
        peer: format!("{peer}:40000").parse().unwrap(),
        local: "127.0.0.1:25".parse().unwrap(),
    };
    let mut d = Driver::with_addrs(svc.session(&info), info.peer, info.local);
    d.open();
    assert!(d.take_output().starts_with(b"220 "));
    T {
        d,
        store,
        _dir: dir,
    }
}

fn local() -> T {
    open_from("127.0.0.1", test_config())
}

impl T {
    /// Send `input`; wait for store completions (and fire delay timers)
    /// until something was said.
    fn say(&mut self, input: &str) -> String {
        self.d.send(input.as_bytes());
        self.output()
    }

    fn output(&mut self) -> String {
        let mut out = self.d.take_output();
        while out.is_empty() {
            if !self.d.timers.is_empty() {
                self.d.fire_timers();
            } else {
                assert!(self.d.wait_done(WAIT).is_some(), "no reply");
            }
            out = self.d.take_output();
        }
        String::from_utf8(out).unwrap()
    }

    fn expect(&mut self, input: &str, prefix: &str) -> String {
        let r = self.say(&format!("{input}\r\n"));
        assert!(
            r.starts_with(prefix),
            "{input:?}: want {prefix:?}, got {r:?}"
        );
        r
    }
}

#[test]
fn plain_with_initial_response_authenticates_once() {
    let mut t = local();
    t.expect("EHLO c", "250-");
    let r = t.expect(
        &format!("AUTH PLAIN {}", plain("bob@localhost", PASSWORD)),
        "235 ",
    );
    assert_eq!(r, "235 2.7.0 Authentication successful\r\n");
    t.expect(
        &format!("AUTH PLAIN {}", plain("bob@localhost", PASSWORD)),
        "503 5.5.1 ",
    );
    // authzid equal to the login name is fine; "=" is an empty response.
    let mut t = local();
    t.expect("EHLO c", "250-");
    let authz = b64(&format!("alice@localhost\0alice@localhost\0{PASSWORD}"));
    t.expect(&format!("auth plain {authz}"), "235 2.7.0 ");
}

#[test]
fn plain_and_login_with_challenges() {
    let mut t = local();
    t.expect("EHLO c", "250-");
    assert_eq!(t.say("AUTH PLAIN\r\n"), "334 \r\n");
    t.expect(&plain("bob@localhost", PASSWORD), "235 2.7.0 ");

    let mut t = local();
    t.expect("EHLO c", "250-");
    assert_eq!(t.say("AUTH LOGIN\r\n"), "334 VXNlcm5hbWU6\r\n");
    assert_eq!(
        t.say(&format!("{}\r\n", b64("bob@localhost"))),
        "334 UGFzc3dvcmQ6\r\n"
    );
    t.expect(&b64(PASSWORD), "235 2.7.0 ");

    // LOGIN with the user name as initial response.
    let mut t = local();
    t.expect("EHLO c", "250-");
    let r = t.say(&format!("AUTH LOGIN {}\r\n", b64("alice@localhost")));
    assert_eq!(r, "334 UGFzc3dvcmQ6\r\n");
    t.expect(&b64(PASSWORD), "235 2.7.0 ");
}

#[test]
fn cancel_bad_base64_and_malformed_responses_get_501() {
    let mut t = local();
    t.expect("EHLO c", "250-");
    t.expect("AUTH PLAIN", "334 ");
    t.expect("*", "501 5.7.0 ");
    t.expect("AUTH LOGIN", "334 ");
    t.expect(&b64("bob@localhost"), "334 ");
    t.expect("*", "501 5.7.0 ");
    t.expect("AUTH PLAIN !!!notbase64", "501 5.5.2 ");
    t.expect("AUTH PLAIN", "334 ");
    t.expect("@@@", "501 5.5.2 ");
    t.expect(&format!("AUTH PLAIN {}", b64("no-nuls-here")), "501 5.5.2 ");
    t.expect("AUTH LOGIN =", "501 5.5.2 ");
    // After all that the session still works and can authenticate.
    t.expect("NOOP", "250 ");
    t.expect(
        &format!("AUTH PLAIN {}", plain("bob@localhost", PASSWORD)),
        "235 ",
    );
}

#[test]
fn auth_order_and_mechanism_rules() {
    let mut t = local();
    t.expect("AUTH PLAIN", "503 5.5.1 ");
    t.expect("EHLO c", "250-");
    t.expect("AUTH CRAM-MD5", "504 5.5.4 ");
    t.expect("AUTH", "501 ");
    t.expect("MAIL FROM:<x@example.org>", "250 ");
    t.expect("AUTH PLAIN", "503 5.5.1 ");
    t.expect("RSET", "250 ");
    t.expect("AUTH PLAIN", "334 ");
    t.expect("*", "501 ");
}

#[test]
fn wrong_password_is_answered_after_the_delay_then_the_address_is_throttled() {
    let config = smtpd::Config {
        throttle: netloop::Throttle::new(ThrottleConfig {
            max_failures: 3,
            base_delay: Duration::from_millis(50),
            ..ThrottleConfig::default()
        }),
        ..test_config()
    };
    let mut t = open_from("127.0.0.1", config);
    t.expect("EHLO c", "250-");
    for _ in 0..3 {
        t.d.send(format!("AUTH PLAIN {}\r\n", plain("bob@localhost", "wrong")).as_bytes());
        // Nothing is said until the password check and the delay are over.
        assert!(t.d.take_output().is_empty());
        t.d.wait_done(WAIT).expect("password checked");
        assert!(t.d.take_output().is_empty(), "failure not answered at once");
        assert_eq!(t.d.timers.len(), 1);
        assert!(t.d.timers[0].0 >= Duration::from_millis(50));
        t.d.fire_timers();
        let r = String::from_utf8(t.d.take_output()).unwrap();
        assert_eq!(r, "535 5.7.8 Authentication credentials invalid\r\n");
    }
    // Blocked now, even with the right password, which is not checked.
    let r = t.say(&format!(
        "AUTH PLAIN {}\r\n",
        plain("bob@localhost", PASSWORD)
    ));
    assert!(r.starts_with("454 4.7.0 "), "{r}");
    // An unknown user fails the same way as a wrong password.
    let mut t = local();
    t.expect("EHLO c", "250-");
    t.expect(
        &format!("AUTH PLAIN {}", plain("nobody@localhost", PASSWORD)),
        "535 5.7.8 ",
    );
    // Acting for another user is refused.
    let authz = b64(&format!("alice@localhost\0bob@localhost\0{PASSWORD}"));
    t.expect(&format!("AUTH PLAIN {authz}"), "535 5.7.8 ");
}

#[test]
fn plaintext_auth_needs_tls_a_local_client_or_the_operator() {
    // 127.0.0.2 talking to 127.0.0.1 is not local.
    let mut t = open_from("127.0.0.2", test_config());
    let r = t.expect("EHLO c", "250-");
    assert!(!r.contains("AUTH"), "{r}");
    t.expect(
        &format!("AUTH PLAIN {}", plain("bob@localhost", PASSWORD)),
        "538 5.7.11 ",
    );
    t.expect("AUTH LOGIN", "538 5.7.11 ");
    t.expect("AUTH FOO", "504 5.5.4 ");

    // Over TLS it is offered.
    let mut t = open_from("127.0.0.2", test_config());
    t.d.tls = TlsState::Active;
    let r = t.expect("EHLO c", "250-");
    assert!(r.contains("250 AUTH PLAIN LOGIN\r\n"), "{r}");
    t.expect(
        &format!("AUTH PLAIN {}", plain("bob@localhost", PASSWORD)),
        "235 ",
    );

    // And when the operator allows it.
    let config = smtpd::Config {
        allow_plaintext_auth: true,
        ..test_config()
    };
    let mut t = open_from("127.0.0.2", config);
    let r = t.expect("EHLO c", "250-");
    assert!(r.contains("AUTH PLAIN LOGIN"), "{r}");
    t.expect("AUTH LOGIN", "334 ");
}

#[test]
fn starttls_resets_the_session() {
    let mut t = local();
    t.expect("STARTTLS", "502 5.5.1 ");
    assert!(!t.d.started_tls);
    let mut t = open_from("127.0.0.2", test_config());
    t.d.tls = TlsState::Available;
    let r = t.expect("EHLO c", "250-");
    assert!(r.contains("STARTTLS\r\n"), "{r}");
    t.expect("MAIL FROM:<x@example.org>", "250 ");
    t.expect("STARTTLS now", "501 ");
    // Pipelined input after STARTTLS is never executed.
    let r = t.say("STARTTLS\r\nRSET\r\n");
    assert_eq!(r, "220 2.0.0 Ready to start TLS\r\n");
    assert!(t.d.started_tls);
    assert!(t.d.input.is_empty(), "the rest was discarded");
    assert!(t.d.take_output().is_empty());
    // Everything is forgotten: EHLO is needed again, and it no longer
    // offers STARTTLS but offers AUTH.
    t.expect("MAIL FROM:<x@example.org>", "503 5.5.1 ");
    let r = t.expect("EHLO c", "250-");
    assert!(!r.contains("STARTTLS"), "{r}");
    assert!(r.contains("AUTH PLAIN LOGIN"), "{r}");
    t.expect("MAIL FROM:<x@example.org>", "250 ");
    t.expect("STARTTLS", "503 5.5.1 ");
}

#[test]
fn authenticated_senders_use_only_their_own_addresses() {
    let mut t = local();
    t.expect("EHLO c", "250-");
    t.expect(
        &format!("AUTH PLAIN {}", plain("bob@localhost", PASSWORD)),
        "235 ",
    );
    let r = t.expect("MAIL FROM:<alice@localhost>", "550 5.7.1 ");
    assert_eq!(
        r,
        "550 5.7.1 Sender address not owned by the authenticated user\r\n"
    );
    t.expect("MAIL FROM:<bob@example.test>", "550 5.7.1 ");
    t.expect("MAIL FROM:<bob@[127.0.0.1]>", "550 5.7.1 ");
    t.expect("MAIL FROM:<>", "250 ");
    t.expect("RSET", "250 ");
    t.expect("MAIL FROM:<BOB+lists@LOCALHOST>", "250 ");
    let r = t.expect("RCPT TO:<someone@example.org>", "550 5.7.1 ");
    assert_eq!(
        r,
        "550 5.7.1 No outbound relay configured: cannot deliver to example.org\r\n"
    );
    t.expect("RCPT TO:<alice@localhost>", "250 ");
    // Header From of someone else: refused after the data, nothing stored.
    t.expect("DATA", "354");
    let r = t.say("From: Alice <alice@localhost>\r\nSubject: x\r\n\r\nforged\r\n.\r\n");
    assert!(r.starts_with("550 5.7.1 "), "{r}");
    assert!(r.contains("alice@localhost"), "{r}");
    assert!(inbox(&t.store, "alice@localhost").is_empty());
    // No From at all: refused too.
    t.expect("MAIL FROM:<bob@localhost>", "250 ");
    t.expect("RCPT TO:<alice@localhost>", "250 ");
    let r = t.say("BDAT 17 LAST\r\nSubject: x\r\n\r\nx\r\n");
    assert!(r.starts_with("550 5.7.1 "), "{r}");
    // Own address (a tag of it) in From: delivered, marked ESMTPA.
    t.expect("MAIL FROM:<bob@localhost>", "250 ");
    t.expect("RCPT TO:<alice@localhost>", "250 ");
    t.expect("DATA", "354");
    let r = t.say("From: Bob <bob+x@localhost>\r\nSubject: ok\r\n\r\nmine\r\n.\r\n");
    assert!(r.starts_with("250 2.0.0 "), "{r}");
    let msgs = inbox(&t.store, "alice@localhost");
    assert_eq!(msgs.len(), 1);
    let m = String::from_utf8_lossy(&msgs[0]);
    assert!(m.contains(" with ESMTPA id "), "{m}");
    // Submission (RFC 6409 §8.2, §8.3): the missing Date and Message-ID
    // are added, once each.
    assert_eq!(m.matches("\r\nDate: ").count(), 1, "{m}");
    assert_eq!(m.matches("\r\nMessage-ID: <").count(), 1, "{m}");
    assert!(m.contains("@localhost>\r\n"), "{m}");
    // A message that has both keeps its own.
    t.expect("MAIL FROM:<bob@localhost>", "250 ");
    t.expect("RCPT TO:<alice@localhost>", "250 ");
    t.expect("DATA", "354");
    let r = t.say(
        "From: bob@localhost\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\
         Message-Id: <own@x>\r\n\r\nmine\r\n.\r\n",
    );
    assert!(r.starts_with("250 2.0.0 "), "{r}");
    let msgs = inbox(&t.store, "alice@localhost");
    let m = String::from_utf8_lossy(&msgs[1]);
    assert_eq!(m.matches("\r\nDate: ").count(), 1, "{m}");
    assert!(
        m.contains("\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n"),
        "{m}"
    );
    assert!(!m.contains("Message-ID: <"), "{m}");
}

#[test]
fn unauthenticated_sessions_are_unchanged() {
    let mut t = open_from("127.0.0.2", test_config());
    t.expect("EHLO c", "250-");
    t.expect("MAIL FROM:<alice@localhost>", "250 ");
    let r = t.expect("RCPT TO:<someone@example.org>", "550 5.7.1 ");
    assert!(r.contains("relay access denied"), "{r}");
    t.expect("RCPT TO:<bob@localhost>", "250 ");
    t.expect("DATA", "354");
    let r = t.say("From: someone@example.org\r\n\r\nhi\r\n.\r\n");
    assert!(r.starts_with("250 2.0.0 "), "{r}");
    let m = inbox(&t.store, "bob@localhost");
    assert!(String::from_utf8_lossy(&m[0]).contains(" with ESMTP id "));
    // Relayed mail is not touched: no Date or Message-ID added.
    assert!(!String::from_utf8_lossy(&m[0]).contains("\r\nDate: "));
    assert!(!String::from_utf8_lossy(&m[0]).contains("Message-ID:"));
    t.expect("QUIT", "221 ");
    assert_eq!(t.d.last_step, Step::Close);
}
