//! Limits under abuse, each tried with the offending input over a socket:
//! connections in total and per address (local clients exempt), command
//! line length, literal size (RFC 7888 §4 LITERAL+ included, and small
//! literals before login), mailboxes per user, mailbox name length and
//! depth (`NO [LIMIT]`, RFC 5530 §3), autologout (RFC 3501 §5.4), a client
//! trickling a command (slow loris) and a slow but steady APPEND that must
//! not be cut off.

use crate::util::*;
use std::io::Write;
use std::net::IpAddr;
use std::time::Duration;

fn remote() -> IpAddr {
    "127.0.0.2".parse().unwrap()
}

/// Connect from `from` and return the first line the server sends.
fn first_line(s: &TestServer, from: IpAddr) -> (std::net::TcpStream, String) {
    let mut t = connect_from(from, s.addr);
    let l = raw_line(&mut t);
    (t, l)
}

#[test]
fn per_address_limit_refuses_non_local_clients_only() {
    let s = TestServer::with(|c| c.net.max_per_ip = 2);
    let (_a, l) = first_line(&s, remote());
    assert!(l.starts_with("* OK"), "{l}");
    let (_b, l) = first_line(&s, remote());
    assert!(l.starts_with("* OK"), "{l}");
    let (_c, l) = first_line(&s, remote());
    assert!(l.starts_with("* BYE"), "{l}");
    // Local clients (127.0.0.1 to 127.0.0.1) are exempt.
    let local: IpAddr = "127.0.0.1".parse().unwrap();
    let conns: Vec<_> = (0..4).map(|_| first_line(&s, local)).collect();
    for (_, l) in &conns {
        assert!(l.starts_with("* OK"), "{l}");
    }
}

#[test]
fn total_connection_limit_says_bye() {
    let s = TestServer::with(|c| c.net.max_connections = 2);
    let _a = s.client();
    let _b = s.client();
    let (_c, l) = first_line(&s, "127.0.0.1".parse().unwrap());
    assert!(l.starts_with("* BYE"), "{l}");
}

#[test]
fn megabyte_without_a_line_end_is_refused_and_session_survives() {
    let s = TestServer::start();
    let mut c = s.client();
    let mut junk = b"a1 NOOP ".to_vec();
    junk.extend(std::iter::repeat_n(b'x', 1 << 20));
    junk.extend(b"\r\n");
    c.send(&junk);
    let l = c.line();
    assert!(l.contains("BAD [TOOBIG]"), "{l}");
    c.ok("NOOP");
}

#[test]
fn literals_before_login_are_small() {
    let s = TestServer::start();
    let mut c = s.client();
    c.send(b"a1 LOGIN {100000}\r\n");
    let l = c.line();
    assert!(l.starts_with("a1 BAD [TOOBIG]"), "{l}");
    // LITERAL+: the octets come anyway and are skipped, not buffered.
    let mut cmd = b"a2 LOGIN {100000+}\r\n".to_vec();
    cmd.extend(std::iter::repeat_n(b'y', 100_000));
    cmd.extend(b" x\r\na3 NOOP\r\n");
    c.send(&cmd);
    let l = c.line();
    assert!(l.starts_with("a2 BAD [TOOBIG]"), "{l}");
    assert!(c.until("a3")[0].starts_with("a3 OK"));
}

#[test]
fn huge_literal_plus_after_login_is_refused_and_skipped() {
    let s = TestServer::with(|c| c.max_literal = 64 * 1024);
    s.add_user("bob@localhost");
    let mut c = s.login("bob@localhost");
    let mut cmd = b"b1 APPEND INBOX {1000000+}\r\n".to_vec();
    cmd.extend(std::iter::repeat_n(b'z', 1_000_000));
    cmd.extend(b"\r\nb2 NOOP\r\n");
    c.send(&cmd);
    assert!(c.line().starts_with("b1 BAD [TOOBIG]"));
    assert!(c.until("b2")[0].starts_with("b2 OK"));
    let r = c.ok("STATUS INBOX (MESSAGES)");
    assert!(r[0].contains("MESSAGES 0"), "{r:?}");
}

#[test]
fn mailboxes_per_user_are_limited() {
    let s = TestServer::with(|c| c.max_mailboxes = 8);
    s.add_user("bob@localhost");
    let mut c = s.login("bob@localhost");
    let have = grep(&c.ok("LIST \"\" *"), "* LIST").len();
    assert!(have < 8, "{have}");
    for k in have..8 {
        c.ok(&format!("CREATE box{k}"));
    }
    let r = c.cmd("CREATE one-too-many");
    assert!(r[0].contains("NO [LIMIT]"), "{r:?}");
    // Parents count too; nothing is created half-way.
    c.ok("DELETE box7");
    let r = c.cmd("CREATE p/q");
    assert!(r[0].contains("NO [LIMIT]"), "{r:?}");
    let r = c.cmd("RENAME box6 x/y/er");
    assert!(r[0].contains("NO [LIMIT]"), "{r:?}");
    let list = c.ok("LIST \"\" *");
    assert_eq!(grep(&list, "* LIST").len(), 7, "{list:?}");
    c.ok("CREATE last");
}

#[test]
fn mailbox_name_length_and_depth_are_limited() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let mut c = s.login("bob@localhost");
    let ok_name = "n".repeat(255);
    c.ok(&format!("CREATE {ok_name}"));
    let long = "n".repeat(256);
    let r = c.cmd(&format!("CREATE {long}"));
    assert!(r[0].contains("NO [LIMIT]"), "{r:?}");
    let r = c.cmd(&format!("RENAME {ok_name} {long}"));
    assert!(r[0].contains("NO [LIMIT]"), "{r:?}");
    let deep = vec!["d"; 17].join("/");
    let r = c.cmd(&format!("CREATE {deep}"));
    assert!(r[0].contains("NO [LIMIT]"), "{r:?}");
    c.ok(&format!("CREATE {}", vec!["d"; 16].join("/")));
}

#[test]
fn autologout_after_idle_time() {
    let s = TestServer::with(|c| {
        c.autologout = Duration::from_millis(700);
        c.net.idle_timeout = c.autologout;
    });
    let mut c = s.client();
    let l = c.line();
    assert!(l.starts_with("* BYE"), "{l}");
    assert!(c.closed());
}

#[test]
fn slow_but_steady_append_is_not_cut_off() {
    let s = TestServer::with(|c| c.net.command_timeout = Duration::from_secs(1));
    s.add_user("bob@localhost");
    let mut c = s.login("bob@localhost");
    let mut msg = simple("slow", "");
    msg.extend(std::iter::repeat_n(b'.', 40_000));
    msg.extend(b"\r\n");
    c.send(format!("s1 APPEND INBOX {{{}}}\r\n", msg.len()).as_bytes());
    assert!(c.line().starts_with("+ "));
    // 8 chunks, 400 ms apart: 3.2 s in all, over the 1 s command deadline,
    // but every chunk is progress.
    for chunk in msg.chunks(msg.len() / 8 + 1) {
        std::thread::sleep(Duration::from_millis(400));
        c.send(chunk);
    }
    c.send(b"\r\n");
    let r = c.until("s1");
    assert!(r.last().unwrap().starts_with("s1 OK [APPENDUID"), "{r:?}");
}

/// Send `bytes` one at a time, 200 ms apart; true once the server has
/// closed the connection (it may say BYE first).
fn trickle_until_cut(t: &mut std::net::TcpStream, bytes: &[u8]) -> bool {
    t.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    for b in bytes {
        if t.write_all(&[*b]).is_err() {
            return true;
        }
        let mut buf = [0u8; 512];
        loop {
            match std::io::Read::read(t, &mut buf) {
                Ok(0) => return true,
                Ok(_) => continue, // `+` or the goodbye; look again
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => break,
                Err(_) => return true,
            }
        }
    }
    false
}

#[test]
fn trickling_a_literal_byte_by_byte_is_cut_off() {
    let s = TestServer::with(|c| {
        c.net.command_timeout = Duration::from_secs(1);
        c.min_upload_rate = 1000;
    });
    s.add_user("bob@localhost");
    let mut t = connect_from("127.0.0.1".parse().unwrap(), s.addr);
    raw_line(&mut t);
    t.write_all(format!("t0 LOGIN bob@localhost \"{PASSWORD}\"\r\n").as_bytes())
        .unwrap();
    assert!(raw_line(&mut t).starts_with("t0 OK"));
    t.write_all(b"t1 APPEND INBOX {100000}\r\n").unwrap();
    assert!(raw_line(&mut t).starts_with("+ "));
    // Each byte is consumed (progress for the loop), but 5 bytes a second
    // is far below the 1000 octets/s the command must average.
    assert!(trickle_until_cut(&mut t, &[b'x'; 50]));
}

#[test]
fn silence_in_the_middle_of_a_literal_ends_the_connection() {
    let s = TestServer::with(|c| c.net.command_timeout = Duration::from_millis(700));
    s.add_user("bob@localhost");
    let mut c = s.login("bob@localhost");
    c.send(b"t1 APPEND INBOX {1000}\r\n");
    assert!(c.line().starts_with("+ "));
    c.send(b"Subject: half\r\n");
    // Autologout is 31 minutes; mid-command the deadline is 700 ms.
    let l = c.line();
    assert!(l.starts_with("* BYE"), "{l}");
    assert!(c.closed());
}

#[test]
fn slow_loris_trickling_a_command_line_is_cut_off() {
    let s = TestServer::with(|c| c.net.command_timeout = Duration::from_secs(1));
    let mut t = connect_from(remote(), s.addr);
    raw_line(&mut t);
    let mut bytes = b"a1 LIST \"\" ".to_vec();
    bytes.extend([b'x'; 50]);
    assert!(trickle_until_cut(&mut t, &bytes));
}

#[test]
fn output_for_unread_pipelined_commands_stays_bounded() {
    use netloop::Service as _;
    let dir = tempfile::tempdir().unwrap();
    let store = mailstore::Store::open(dir.path().join("m.db")).unwrap();
    let mut svc = imapd::ImapService::new(imapd::Config::default(), store.clone());
    let info = netloop::ConnInfo {
        id: 1,
        peer: "127.0.0.1:40000".parse().unwrap(),
        local: "127.0.0.1:143".parse().unwrap(),
    };
    let mut d = netloop::testing::Driver::new(svc.open(&info));
    d.open();
    // 1 MiB of pipelined commands, each answered with ~10 times its size,
    // from a client that reads nothing.
    let n = (1 << 20) / 14;
    let cmds = b"a CAPABILITY\r\n".repeat(n);
    d.send(&cmds);
    let queued = d.out.len();
    assert!(
        queued < 512 * 1024,
        "{queued} bytes queued for a client that reads nothing"
    );
    assert!(!d.input.is_empty(), "the rest of the input must wait");
    // As the client reads, the rest is answered, in order, completely.
    let mut answered = 0;
    for _ in 0..1000 {
        let out = d.take_output();
        answered += out.windows(6).filter(|w| w == b"\na OK ").count();
        if d.input.is_empty() && out.is_empty() {
            break;
        }
        d.send(b"");
    }
    assert_eq!(answered, n);
    drop(d);
    drop(svc);
    store.shutdown();
}

#[test]
fn subscriptions_are_bounded_like_mailboxes() {
    let s = TestServer::with(|c| c.max_mailboxes = 8);
    s.add_user("bob@localhost");
    let mut c = s.login("bob@localhost");
    let have = grep(&c.ok("LSUB \"\" *"), "* LSUB").len();
    assert!(have < 8, "{have}");
    for k in have..8 {
        c.ok(&format!("SUBSCRIBE ghost{k}"));
    }
    let r = c.cmd("SUBSCRIBE one-more");
    assert!(r[0].contains("NO [LIMIT]"), "{r:?}");
    // Re-subscribing an existing one is fine; unsubscribing frees a slot.
    c.ok("SUBSCRIBE ghost7");
    c.ok("UNSUBSCRIBE ghost7");
    c.ok("SUBSCRIBE one-more");
    let r = c.cmd(&format!("SUBSCRIBE {}", "n".repeat(256)));
    assert!(r[0].contains("NO [LIMIT]"), "{r:?}");
}
