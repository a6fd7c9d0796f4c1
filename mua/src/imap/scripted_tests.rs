//! The IMAP client against a scripted server on loopback: paths the real
//! servers we test with never take (no LITERAL+, no MOVE, no UIDPLUS,
//! untagged data between commands, refusals).

use super::args::Arg;
use super::client::Client;
use crate::error::MuaError;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::thread::JoinHandle;

/// Serves one connection: greets with `caps`, then answers each command
/// line with `answer(tag, line)`. Synchronising literals get `+ go` and
/// their bytes are recorded. Returns every line received.
fn serve(
    caps: &'static str,
    mut answer: impl FnMut(&str, &str) -> String + Send + 'static,
) -> (String, JoinHandle<Vec<String>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let h = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        write!(w, "* OK [CAPABILITY {caps}] scripted\r\n").unwrap();
        let mut seen = Vec::new();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return seen;
            }
            let mut line = line.trim_end().to_string();
            // Assemble synchronising literals.
            while let Some(n) = super::parse::literal_len(line.as_bytes()) {
                assert!(
                    !line.ends_with("+}"),
                    "LITERAL+ used without being advertised"
                );
                write!(w, "+ go\r\n").unwrap();
                let mut buf = vec![0; n];
                r.read_exact(&mut buf).unwrap();
                line.push_str(&format!("[{}]", String::from_utf8_lossy(&buf)));
                let mut rest = String::new();
                r.read_line(&mut rest).unwrap();
                line.push_str(rest.trim_end());
            }
            let (tag, cmd) = line.split_once(' ').unwrap_or((&line, ""));
            let reply = answer(tag, cmd);
            seen.push(cmd.to_string());
            w.write_all(reply.as_bytes()).unwrap();
            if cmd.starts_with("LOGOUT") {
                return seen;
            }
        }
    });
    (addr, h)
}

#[test]
fn synchronising_literals_wait_for_continuation() {
    let (addr, h) = serve("IMAP4rev1", |tag, cmd| {
        if cmd.starts_with("LOGIN") {
            format!("{tag} OK logged in\r\n")
        } else if cmd.starts_with("CAPABILITY") {
            format!("* CAPABILITY IMAP4rev1\r\n{tag} OK done\r\n")
        } else {
            format!("{tag} OK done\r\n")
        }
    });
    let mut c = Client::connect(&addr, &crate::net::Options::default()).unwrap();
    c.login("jürgen@x", "pa\"ss").unwrap();
    c.append("Entwürfe", &["\\Seen"], b"Subject: x\r\n\r\nhi\r\n")
        .unwrap();
    c.logout();
    let seen = h.join().unwrap();
    assert_eq!(seen[0], "LOGIN {9}[jürgen@x] \"pa\\\"ss\"");
    assert_eq!(
        seen[2],
        "APPEND \"Entw&APw-rfe\" (\\Seen) {18}[Subject: x\r\n\r\nhi\r\n]"
    );
}

#[test]
fn move_falls_back_to_copy_store_expunge() {
    let (addr, h) = serve("IMAP4rev1 LITERAL+", |tag, _| format!("{tag} OK done\r\n"));
    let mut c = Client::connect(&addr, &crate::net::Options::default()).unwrap();
    c.uid_move("4:5", "Archive").unwrap();
    c.logout();
    let seen = h.join().unwrap();
    assert_eq!(
        &seen[..3],
        &[
            "UID COPY 4:5 \"Archive\"".to_string(),
            "UID STORE 4:5 +FLAGS.SILENT (\\Deleted)".to_string(),
            "EXPUNGE".to_string()
        ]
    );
}

#[test]
fn move_uses_move_and_refusals_map_to_errors() {
    let (addr, h) = serve("IMAP4rev1 MOVE UIDPLUS", |tag, cmd| {
        if cmd.contains("Nope") {
            format!("{tag} NO [TRYCREATE] no such mailbox\r\n")
        } else if cmd.starts_with("LOGIN") {
            format!("{tag} NO [AUTHENTICATIONFAILED] bad\r\n")
        } else if cmd.starts_with("SELECT") {
            format!("* 3 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT 10] ok\r\n{tag} OK [READ-WRITE] done\r\n")
        } else {
            format!("{tag} OK done\r\n")
        }
    });
    let mut c = Client::connect(&addr, &crate::net::Options::default()).unwrap();
    assert!(matches!(c.login("a", "b"), Err(MuaError::Auth(_))));
    let sel = c.select("INBOX", false).unwrap();
    assert_eq!(
        (sel.exists, sel.uid_validity, sel.uid_next),
        (3, Some(7), Some(10))
    );
    c.uid_move("1", "Trash").unwrap();
    assert!(matches!(
        c.uid_move("1", "Nope"),
        Err(MuaError::NotFound(_))
    ));
    c.uid_expunge("2").unwrap();
    c.logout();
    let seen = h.join().unwrap();
    assert!(
        seen.contains(&"UID MOVE 1 \"Trash\"".to_string()),
        "{seen:?}"
    );
    assert!(seen.contains(&"UID EXPUNGE 2".to_string()), "{seen:?}");
}

#[test]
fn fetch_literals_and_interleaved_untagged_data() {
    let (addr, h) = serve("IMAP4rev1", |tag, cmd| {
        if cmd.starts_with("UID FETCH") {
            format!(
                "* 9 EXISTS\r\n* 1 FETCH (UID 7 BODY[] {{9}}\r\nab\r\n\r\n.cd FLAGS (\\Seen))\r\n* 2 FETCH (FLAGS ())\r\n{tag} OK done\r\n"
            )
        } else if cmd.starts_with("UID SEARCH") {
            format!("* SEARCH 3 1 2\r\n{tag} OK done\r\n")
        } else {
            format!("{tag} OK done\r\n")
        }
    });
    let mut c = Client::connect(&addr, &crate::net::Options::default()).unwrap();
    let data = c.uid_fetch("7", "(UID BODY.PEEK[])").unwrap();
    assert_eq!(
        data.len(),
        1,
        "the unsolicited FETCH without UID is dropped"
    );
    assert_eq!(data[0].body.as_deref(), Some(&b"ab\r\n\r\n.cd"[..]));
    assert_eq!(data[0].flags, Some(vec!["\\Seen".to_string()]));
    let uids = c.uid_search(vec![Arg::raw("FROM"), Arg::str("ö")]).unwrap();
    assert_eq!(uids, vec![3, 1, 2]);
    c.logout();
    let seen = h.join().unwrap();
    assert_eq!(seen[1], "UID SEARCH CHARSET UTF-8 FROM {2}[ö]");
}

#[test]
fn bye_greeting_is_refused() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let h = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.write_all(b"* BYE too busy\r\n").unwrap();
    });
    assert!(matches!(
        Client::connect(&addr, &crate::net::Options::default()),
        Err(MuaError::Refused(_))
    ));
    h.join().unwrap();
}
