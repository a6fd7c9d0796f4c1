//! Literals: synchronising `{n}` with `+` continuation, LITERAL+ `{n+}`,
//! and the size limit (tagged BAD, session survives, LITERAL+ octets
//! skipped).

use crate::util::*;

#[test]
fn synchronising_literal_gets_continuation() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let mut c = s.client();
    c.send(b"a1 LOGIN {13}\r\n");
    assert!(c.line().starts_with("+ "));
    c.send(format!("bob@localhost {{{}}}\r\n", PASSWORD.len()).as_bytes());
    assert!(c.line().starts_with("+ "));
    c.send(format!("{PASSWORD}\r\n").as_bytes());
    assert!(c.until("a1")[0].starts_with("a1 OK"));
}

#[test]
fn non_synchronising_literal_needs_no_continuation() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let mut c = s.client();
    c.send(
        format!(
            "a1 LOGIN {{13+}}\r\nbob@localhost {{{}+}}\r\n{PASSWORD}\r\n",
            PASSWORD.len()
        )
        .as_bytes(),
    );
    assert!(c.until("a1")[0].starts_with("a1 OK"));
}

#[test]
fn oversized_literals_are_refused_and_session_survives() {
    let s = TestServer::with(|c| c.max_literal = 300);
    s.add_user("bob@localhost");
    let mut c = s.login("bob@localhost");
    c.send(b"b1 APPEND INBOX {301}\r\n");
    let l = c.line();
    assert!(l.starts_with("b1 BAD [TOOBIG]"), "{l}");
    c.ok("NOOP");
    // LITERAL+: the octets arrive anyway and must be skipped.
    let mut cmd = b"b2 APPEND INBOX {400+}\r\n".to_vec();
    cmd.extend(std::iter::repeat_n(b'x', 400));
    cmd.extend(b"\r\nb3 NOOP\r\n");
    c.send(&cmd);
    let l = c.line();
    assert!(l.starts_with("b2 BAD [TOOBIG]"), "{l}");
    assert!(c.until("b3")[0].starts_with("b3 OK"));
    // A literal within the limit still works.
    let msg = simple("small", "hi");
    c.send(format!("b4 APPEND INBOX {{{}+}}\r\n", msg.len()).as_bytes());
    c.send(&msg);
    c.send(b"\r\n");
    let r = c.until("b4");
    assert!(r.last().unwrap().starts_with("b4 OK [APPENDUID"), "{r:?}");
}

#[test]
fn overlong_line_is_refused() {
    let s = TestServer::with(|c| c.max_line = 200);
    let mut c = s.client();
    let mut line = b"a1 NOOP ".to_vec();
    line.extend(std::iter::repeat_n(b'x', 500));
    line.extend(b"\r\n");
    c.send(&line);
    assert!(c.line().contains("BAD [TOOBIG]"));
    c.ok("NOOP");
}
