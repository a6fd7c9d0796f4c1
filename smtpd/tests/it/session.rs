//! The session state machine driven without sockets (netloop's test
//! Driver) over a real temporary store: command order (RFC 5321 §4.1.4),
//! replies only after the commit, input left unread while waiting,
//! timeouts and shutdown.

use crate::util::{inbox, temp_store, test_config};
use mailstore::Store;
use netloop::testing::Driver;
use netloop::{ConnInfo, Step};
use smtpd::{SmtpService, SmtpSession};
use std::time::Duration;
use tempfile::TempDir;

const WAIT: Duration = Duration::from_secs(10);

struct T {
    d: Driver<SmtpSession>,
    store: Store,
    _dir: TempDir,
}

fn open() -> T {
    open_with(test_config())
}

fn open_with(config: smtpd::Config) -> T {
    let (dir, store) = temp_store();
    let svc = SmtpService::new(config, store.clone());
    let info = ConnInfo {
        id: 1,
        peer: "127.0.0.1:40000".parse().unwrap(),
        local: "127.0.0.1:25".parse().unwrap(),
    };
    let mut d = Driver::new(svc.session(&info));
    assert_eq!(d.open(), Step::Continue);
    let greeting = String::from_utf8(d.take_output()).unwrap();
    assert!(greeting.starts_with("220 mx.test "), "{greeting}");
    T {
        d,
        store,
        _dir: dir,
    }
}

impl T {
    /// Send `input`; collect output, waiting for store completions until
    /// something was said.
    fn say(&mut self, input: &str) -> String {
        self.d.send(input.as_bytes());
        let mut out = self.d.take_output();
        while out.is_empty() {
            assert!(self.d.wait_done(WAIT).is_some(), "no reply to {input:?}");
            out = self.d.take_output();
        }
        String::from_utf8(out).unwrap()
    }

    fn expect(&mut self, input: &str, prefix: &str) -> String {
        let r = self.say(input);
        assert!(
            r.starts_with(prefix),
            "{input:?}: want {prefix:?}, got {r:?}"
        );
        r
    }
}

#[test]
fn commands_out_of_order_get_503() {
    let mut t = open();
    t.expect("MAIL FROM:<a@b.example>\r\n", "503 5.5.1 ");
    t.expect("RCPT TO:<bob@localhost>\r\n", "503 5.5.1 ");
    t.expect("DATA\r\n", "503 5.5.1 ");
    t.expect(
        "EHLO c.example\r\n",
        "250-mx.test Hello c.example [127.0.0.1]",
    );
    t.expect("RCPT TO:<bob@localhost>\r\n", "503 5.5.1 ");
    t.expect("DATA\r\n", "503 5.5.1 ");
    t.expect("MAIL FROM:<a@b.example>\r\n", "250 2.1.0 ");
    t.expect("MAIL FROM:<a@b.example>\r\n", "503 5.5.1 ");
    t.expect("DATA\r\n", "554 5.5.1 ");
    t.expect("RSET\r\n", "250 2.0.0 ");
    t.expect("RCPT TO:<bob@localhost>\r\n", "503 5.5.1 ");
    t.expect("MAIL FROM:<>\r\n", "250 2.1.0 ");
    t.expect("RCPT TO:<bob@localhost>\r\n", "250 2.1.5 ");
    // EHLO in a transaction resets it.
    t.expect("EHLO c.example\r\n", "250-");
    t.expect("DATA\r\n", "503 5.5.1 ");
}

#[test]
fn ehlo_advertises_the_extensions_and_helo_does_not() {
    let mut t = open();
    let r = t.say("ehlo c.example\r\n");
    for ext in [
        "250-PIPELINING\r\n",
        "250-SIZE 26214400\r\n",
        "250-8BITMIME\r\n",
        "250-SMTPUTF8\r\n",
        "250-CHUNKING\r\n",
        "250-ENHANCEDSTATUSCODES\r\n",
        // A local client (127.0.0.1 to 127.0.0.1) may use plaintext AUTH.
        "250 AUTH PLAIN LOGIN\r\n",
    ] {
        assert!(r.contains(ext), "{ext:?} in {r:?}");
    }
    assert!(!r.contains("STARTTLS"), "no certificate, no STARTTLS: {r}");
    let r = t.say("HELO c.example\r\n");
    assert_eq!(r, "250 mx.test Hello c.example [127.0.0.1]\r\n");
    t.expect("NOOP\r\n", "250 2.0.0 ");
    t.expect("VRFY bob\r\n", "252 2.0.0 ");
    let help = t.say("HELP\r\n");
    assert!(help.starts_with("214-"), "{help}");
    assert!(help.contains("EHLO HELO STARTTLS AUTH MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP"));
    t.expect("QUIT\r\n", "221 2.0.0 ");
    assert_eq!(t.d.last_step, Step::Close);
}

#[test]
fn bare_lf_commands_are_accepted() {
    let mut t = open();
    t.expect("EHLO typed.example\n", "250-");
    t.expect("MAIL FROM:<a@b.example>\n", "250 2.1.0 ");
    t.expect("RCPT TO:<bob@localhost>\n", "250 2.1.5 ");
    t.expect("DATA\n", "354 ");
    // A bare-LF dot line does not end the message; CRLF.CRLF does.
    let out = {
        t.d.send(b"Subject: typed\n\nhello\n.\n");
        t.d.take_output()
    };
    assert!(out.is_empty(), "{:?}", String::from_utf8_lossy(&out));
    t.expect("more\r\n.\r\n", "250 2.0.0 ");
    let msgs = inbox(&t.store, "bob@localhost");
    assert_eq!(msgs.len(), 1);
    assert!(msgs[0].ends_with(b"Subject: typed\n\nhello\n.\nmore\r\n"));
}

#[test]
fn reply_waits_for_commit_and_pipelined_input_waits_too() {
    let mut t = open();
    t.expect("EHLO c\r\n", "250-");
    t.expect("MAIL FROM:<a@b.example>\r\n", "250");
    t.expect("RCPT TO:<bob@localhost>\r\n", "250");
    t.expect("DATA\r\n", "354");
    assert_eq!(t.d.current_timeout(), Duration::from_secs(180));
    t.d.send(b"Subject: x\r\n\r\nbody\r\n.\r\nNOOP\r\n");
    // Nothing is said before the commit; NOOP stays unread.
    assert!(t.d.take_output().is_empty());
    assert_eq!(t.d.input.as_slice(), b"NOOP\r\n");
    assert!(t.d.wait_done(WAIT).is_some());
    let out = String::from_utf8(t.d.take_output()).unwrap();
    assert!(out.starts_with("250 2.0.0 "), "{out}");
    assert!(out.ends_with("\r\n250 2.0.0 OK\r\n"), "{out}");
    assert!(t.d.input.is_empty());
    assert_eq!(t.d.current_timeout(), Duration::from_secs(300));
    assert_eq!(inbox(&t.store, "bob@localhost").len(), 1);
}

#[test]
fn shutdown_waits_for_the_commit_then_says_421() {
    let mut t = open();
    t.expect("EHLO c\r\n", "250-");
    t.expect("MAIL FROM:<a@b.example>\r\n", "250 2.1.0");
    t.expect("RCPT TO:<bob@localhost>\r\n", "250 2.1.5");
    t.expect("DATA\r\n", "354");
    t.d.send(b"x\r\n.\r\n");
    assert_eq!(t.d.shutdown(), Step::Continue, "commit in flight");
    assert!(t.d.wait_done(WAIT).is_some());
    let out = String::from_utf8(t.d.take_output()).unwrap();
    assert!(out.starts_with("250 2.0.0 "), "{out}");
    assert_eq!(t.d.shutdown(), Step::Close);
    let out = String::from_utf8(t.d.take_output()).unwrap();
    assert!(out.starts_with("421 4.3.2 "), "{out}");
    assert_eq!(inbox(&t.store, "bob@localhost").len(), 1);
}

#[test]
fn timeout_says_421() {
    let mut t = open();
    t.d.timeout();
    let out = String::from_utf8(t.d.take_output()).unwrap();
    assert!(out.starts_with("421 4.4.2 "), "{out}");
}

#[test]
fn trace_mode_survives_any_input() {
    let mut t = open_with(smtpd::Config {
        trace: true,
        ..test_config()
    });
    t.expect("AUT\u{e9}x\r\n", "500 5.5.2");
    t.expect("AUTH PLAIN c2VjcmV0\r\n", "503 5.5.1");
    t.d.send(b"\xff\xfe\r\n");
    assert!(t.d.take_output().starts_with(b"500 "));
    t.expect("EHLO c\r\n", "250-");
    t.expect("MAIL FROM:<a@b.example>\r\n", "250");
    t.expect("RCPT TO:<bob@localhost>\r\n", "250");
    t.expect("BDAT 3 LAST\r\nabc", "250 2.0.0");
    assert_eq!(inbox(&t.store, "bob@localhost").len(), 1);
}

#[test]
fn store_failures_give_451_and_nothing_is_acknowledged() {
    let mut t = open();
    t.expect("EHLO c\r\n", "250-");
    t.expect("MAIL FROM:<a@b.example>\r\n", "250");
    t.expect("RCPT TO:<bob@localhost>\r\n", "250 2.1.5");
    t.expect("DATA\r\n", "354");
    t.store.shutdown();
    t.expect("x\r\n.\r\n", "451 4.3.0 ");
    t.expect("MAIL FROM:<a@b.example>\r\n", "250");
    // (bob@ was just resolved and may be answered from the RCPT cache;
    // a recipient not looked up before needs the store.)
    t.expect("RCPT TO:<postmaster@localhost>\r\n", "451 4.3.0 ");
}

/// RCPT answers are cached for a short time (recipients.rs); a hit must not
/// extend an entry's life, or a deleted user would be accepted for as long
/// as mail to them keeps coming.
#[test]
fn a_deleted_user_is_refused_once_the_cached_lookup_expires_despite_traffic() {
    let mut t = open();
    t.expect("EHLO c\r\n", "250-");
    t.expect("MAIL FROM:<a@b.example>\r\n", "250");
    t.expect("RCPT TO:<bob@localhost>\r\n", "250 2.1.5");
    let looked_up = std::time::Instant::now();
    t.store
        .write_sync(|tx| tx.delete_user("bob@localhost"))
        .unwrap();
    // Keep asking (cache hits) until well past the TTL.
    let ttl = std::time::Duration::from_secs(2);
    let mut last = String::new();
    while looked_up.elapsed() < ttl + std::time::Duration::from_millis(500) {
        t.expect("RSET\r\n", "250");
        t.expect("MAIL FROM:<a@b.example>\r\n", "250");
        last = t.say("RCPT TO:<bob@localhost>\r\n");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(last.starts_with("550 5.1.1"), "still accepted: {last:?}");
}
