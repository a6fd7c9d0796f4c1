//! NOTIFY (RFC 5465) end to end through the `minimail` binary: mail sent
//! over SMTP reaches an IMAP session that follows INBOX with NOTIFY while
//! another mailbox is selected — from the same `minimail up` process, and
//! from a second `minimail up` process on the same store (as a separate
//! smtpd would deliver).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_minimail");

struct Client {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Client {
    fn connect(addr: &str) -> Client {
        let w = TcpStream::connect(addr).unwrap();
        w.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let r = BufReader::new(w.try_clone().unwrap());
        Client { w, r }
    }
    fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).unwrap();
        assert!(!l.is_empty(), "connection closed");
        l
    }
    /// Send a line; read until a line starting with `until`.
    fn say(&mut self, line: &str, until: &str) -> String {
        self.w.write_all(line.as_bytes()).unwrap();
        self.w.write_all(b"\r\n").unwrap();
        self.read_until(until)
    }
    /// Read until a line starting with `until`.
    fn read_until(&mut self, until: &str) -> String {
        let mut all = String::new();
        loop {
            let l = self.line();
            all.push_str(&l);
            if l.starts_with(until) {
                return all;
            }
        }
    }
}

fn add_user(db: &Path) {
    let mut child = Command::new(BIN)
        .args(["user", "add", "bob@localhost", "--password-stdin", "--db"])
        .arg(db)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"s3cret\n").unwrap();
    assert!(child.wait().unwrap().success());
}

fn up(db: &Path) -> (Child, String, String) {
    let (child, line, _) = testkit::server::minimail_up(BIN, db, &[], &[]);
    let smtp = testkit::server::addr_of(&line, "smtp");
    let imap = testkit::server::addr_of(&line, "imap");
    (child, smtp, imap)
}

fn send(smtp: &str, subject: &str) {
    let mut s = Client::connect(smtp);
    assert!(s.line().starts_with("220 "));
    s.say("EHLO test.example", "250 ");
    s.say("MAIL FROM:<alice@example.org>", "250 ");
    s.say("RCPT TO:<bob@localhost>", "250 ");
    s.say("DATA", "354 ");
    let reply = s.say(&format!("Subject: {subject}\r\n\r\nhello\r\n."), "");
    assert!(reply.starts_with("250 "), "{reply}");
    s.say("QUIT", "221 ");
}

/// Log in, select Sent, follow INBOX with NOTIFY, and IDLE.
fn notifying(imap: &str) -> Client {
    let mut i = Client::connect(imap);
    assert!(i.line().starts_with("* OK"));
    assert!(i.say("a LOGIN bob@localhost s3cret", "a ").contains("a OK"));
    i.say("b SELECT Sent", "b OK");
    let r = i.say("c NOTIFY SET (inboxes (MessageNew MessageExpunge))", "c ");
    assert!(r.contains("c OK"), "{r}");
    i.say("d IDLE", "+ ");
    i
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn smtp_delivery_reaches_a_notify_session_for_a_mailbox_not_selected() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    add_user(&db);
    let (child, smtp, imap) = up(&db);
    let mut i = notifying(&imap);
    send(&smtp, "first");
    let st = i.read_until("* STATUS");
    assert!(
        st.contains("* STATUS \"INBOX\" (MESSAGES 1 UIDNEXT 2 "),
        "{st}"
    );
    send(&smtp, "second");
    let st = i.line();
    assert!(st.contains("MESSAGES 2 UIDNEXT 3"), "{st}");
    i.say("DONE", "d OK");
    stop(child);
}

#[test]
fn smtp_delivery_by_another_process_reaches_a_notify_session() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    add_user(&db);
    let (a, smtp_a, _) = up(&db);
    let (b, _, imap_b) = up(&db);
    let mut i = notifying(&imap_b);
    send(&smtp_a, "from elsewhere");
    // Process b learns of a's commit by polling the store's commit counter.
    let st = i.read_until("* STATUS");
    assert!(st.contains("* STATUS \"INBOX\" (MESSAGES 1 "), "{st}");
    i.say("DONE", "d OK");
    stop(a);
    stop(b);
}
