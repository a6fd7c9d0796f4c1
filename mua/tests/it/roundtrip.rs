//! Send → list → read round trips through minimail: plain, UTF-8 subject
//! and body, attachments saved byte-exact, Sent copies, replies with
//! threading headers, `--raw` sending with Bcc, flags/move/delete, search.

use super::util::{Servers, PASSWORD};
use serde_json::Value;

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

#[test]
fn plain_message_round_trips_and_is_filed_in_sent() {
    let s = Servers::start();
    let sent = s.ok(
        "alice@localhost",
        &[
            "send",
            "--to",
            "bob@localhost",
            "--subject",
            "Lunch",
            "--body",
            "Noon at the usual place?",
        ],
        None,
    );
    assert!(sent.stdout.starts_with("sent <"), "{}", sent.stdout);
    let list = s.ok("bob@localhost", &["list"], None);
    assert!(list.stdout.contains("Lunch"), "{}", list.stdout);
    assert!(list.stdout.contains("alice@localhost"), "{}", list.stdout);
    let rows = json(&s.ok("bob@localhost", &["list", "--json"], None).stdout);
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["subject"], "Lunch");
    let uid = rows[0]["uid"].as_u64().unwrap().to_string();
    let read = s.ok("bob@localhost", &["read", &uid], None);
    assert!(read.stdout.contains("Subject: Lunch"), "{}", read.stdout);
    assert!(
        read.stdout.contains("Noon at the usual place?"),
        "{}",
        read.stdout
    );
    // Reading marked it seen; the sender's copy sits in Sent, already seen.
    let boxes = json(&s.ok("bob@localhost", &["mailboxes", "--json"], None).stdout);
    let inbox = boxes
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "INBOX")
        .unwrap();
    assert_eq!(
        (inbox["total"].as_u64(), inbox["unseen"].as_u64()),
        (Some(1), Some(0))
    );
    let sent_rows = json(
        &s.ok(
            "alice@localhost",
            &["list", "--json", "--mailbox", "Sent"],
            None,
        )
        .stdout,
    );
    assert_eq!(sent_rows[0]["subject"], "Lunch");
    assert!(sent_rows[0]["flags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f == "\\Seen"));
}

#[test]
fn utf8_subject_and_body_survive_the_trip() {
    let s = Servers::start();
    let subject = "Grüße aus Köln ☕ — 日本語";
    let body = "Schöne Grüße!\nÜmlaute, emoji 🎉 and a line\n.starting with a dot\n";
    s.ok(
        "alice@localhost",
        &[
            "send",
            "--to",
            "Bob Bär <bob@localhost>",
            "--subject",
            subject,
        ],
        Some(body.as_bytes()),
    );
    let rows = json(&s.ok("bob@localhost", &["list", "--json"], None).stdout);
    assert_eq!(rows[0]["subject"], subject);
    let uid = rows[0]["uid"].as_u64().unwrap().to_string();
    let read = s.ok("bob@localhost", &["read", &uid], None);
    assert!(
        read.stdout.contains(&format!("Subject: {subject}")),
        "{}",
        read.stdout
    );
    assert!(
        read.stdout
            .contains("Schöne Grüße!\nÜmlaute, emoji 🎉 and a line\n.starting with a dot"),
        "{}",
        read.stdout
    );
    assert!(
        read.stdout.contains("To: Bob Bär <bob@localhost>"),
        "{}",
        read.stdout
    );
    // The headers on the wire are 7-bit (RFC 2047 encoded words).
    let raw = s
        .ok("bob@localhost", &["read", &uid, "--raw"], None)
        .stdout_bytes;
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..head_end]);
    // Only our own header lines matter: a server may add trace fields.
    let ours: Vec<&str> = head
        .lines()
        .filter(|l| {
            ["Subject:", "To:", "From:"]
                .iter()
                .any(|k| l.starts_with(k))
        })
        .collect();
    assert_eq!(ours.len(), 3, "{head}");
    assert!(ours.iter().all(|l| l.is_ascii()), "{head}");
}

#[test]
fn attachments_are_listed_and_saved_byte_exact() {
    let s = Servers::start();
    let dir = s.dir.path();
    let blob: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(dir.join("data.bin"), &blob).unwrap();
    std::fs::write(dir.join("notes.txt"), "line one\r\nline two\n").unwrap();
    let a = dir.join("data.bin");
    let b = dir.join("notes.txt");
    s.ok(
        "alice@localhost",
        &[
            "send",
            "--to",
            "bob@localhost",
            "--subject",
            "files",
            "--body",
            "two files",
            "--attach",
            a.to_str().unwrap(),
            "--attach",
            b.to_str().unwrap(),
        ],
        None,
    );
    let uid = s.newest_uid("bob@localhost", "INBOX").to_string();
    let read = s.ok("bob@localhost", &["read", &uid], None);
    assert!(
        read.stdout
            .contains("[1] data.bin  application/octet-stream  195.3 KB"),
        "{}",
        read.stdout
    );
    assert!(
        read.stdout.contains("[2] notes.txt  text/plain"),
        "{}",
        read.stdout
    );
    let out1 = dir.join("out1.bin");
    s.ok(
        "bob@localhost",
        &["save", &uid, "1", "--out", out1.to_str().unwrap()],
        None,
    );
    assert_eq!(std::fs::read(&out1).unwrap(), blob);
    let out2 = dir.join("out2.txt");
    s.ok(
        "bob@localhost",
        &["save", &uid, "notes.txt", "--out", out2.to_str().unwrap()],
        None,
    );
    assert_eq!(std::fs::read(&out2).unwrap(), b"line one\r\nline two\n");
    let missing = s.run(
        "bob@localhost",
        &["save", &uid, "3", "--out", "/dev/null"],
        None,
    );
    assert_eq!(missing.code, 5, "{}", missing.stderr);
}

#[test]
fn reply_carries_threading_headers() {
    let s = Servers::start();
    s.ok(
        "alice@localhost",
        &[
            "send",
            "--to",
            "bob@localhost",
            "--subject",
            "Plans",
            "--body",
            "Friday?",
        ],
        None,
    );
    let uid = s.newest_uid("bob@localhost", "INBOX").to_string();
    let original = s
        .ok("bob@localhost", &["read", &uid, "--raw"], None)
        .stdout_bytes;
    let orig_id = mua::message::Message::parse(&original)
        .unwrap()
        .header("Message-ID")
        .unwrap();
    let draft = mua::compose::reply(&original, "bob@localhost", false).unwrap();
    let (_, bytes) = draft.build().unwrap();
    s.ok("bob@localhost", &["send", "--raw"], Some(&bytes));
    let reply_uid = s.newest_uid("alice@localhost", "INBOX").to_string();
    let raw = s
        .ok("alice@localhost", &["read", &reply_uid, "--raw"], None)
        .stdout_bytes;
    let m = mua::message::Message::parse(&raw).unwrap();
    assert_eq!(m.header("Subject").as_deref(), Some("Re: Plans"));
    assert_eq!(m.header("In-Reply-To").as_deref(), Some(orig_id.as_str()));
    assert_eq!(m.header("References").as_deref(), Some(orig_id.as_str()));
    assert!(m.text().contains("> Friday?"), "{}", m.text());
}

#[test]
fn raw_send_takes_recipients_from_headers_and_strips_bcc() {
    let s = Servers::start();
    let msg = b"From: alice@localhost\r\nTo: bob@localhost\r\nBcc: alice@localhost\r\nSubject: raw one\r\nMessage-ID: <raw-1@localhost>\r\n\r\nsent raw\r\n";
    let out = s.ok("alice@localhost", &["send", "--raw"], Some(msg));
    assert!(out.stdout.contains("<raw-1@localhost>"), "{}", out.stdout);
    for user in ["bob@localhost", "alice@localhost"] {
        let uid = s.newest_uid(user, "INBOX").to_string();
        let raw = s.ok(user, &["read", &uid, "--raw"], None).stdout;
        assert!(raw.contains("Subject: raw one"), "{raw}");
        assert!(
            !raw.to_ascii_lowercase().contains("\nbcc:"),
            "Bcc leaked to {user}: {raw}"
        );
    }
}

#[test]
fn flag_move_and_delete_change_the_mailbox() {
    let s = Servers::start();
    for n in 1..=3 {
        s.ok(
            "alice@localhost",
            &[
                "send",
                "--to",
                "bob@localhost",
                "--subject",
                &format!("m{n}"),
                "--body",
                "x",
            ],
            None,
        );
    }
    let rows = json(&s.ok("bob@localhost", &["list", "--json"], None).stdout);
    let uids: Vec<String> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uid"].to_string())
        .collect();
    assert_eq!(rows[0]["subject"], "m3", "newest first");
    s.ok(
        "bob@localhost",
        &["flag", &uids[0], "--flagged", "--seen"],
        None,
    );
    let unread = json(
        &s.ok("bob@localhost", &["list", "--json", "--unread"], None)
            .stdout,
    );
    assert_eq!(unread.as_array().unwrap().len(), 2);
    let flagged = json(
        &s.ok("bob@localhost", &["search", "--json", "flagged"], None)
            .stdout,
    );
    assert_eq!(flagged[0]["subject"], "m3");
    s.ok("bob@localhost", &["move", &uids[1], "--to", "Trash"], None);
    s.ok("bob@localhost", &["delete", &uids[2]], None);
    let left = json(&s.ok("bob@localhost", &["list", "--json"], None).stdout);
    assert_eq!(left.as_array().unwrap().len(), 1);
    assert_eq!(left[0]["subject"], "m3");
    let trash = json(
        &s.ok(
            "bob@localhost",
            &["list", "--json", "--mailbox", "Trash"],
            None,
        )
        .stdout,
    );
    assert_eq!(trash[0]["subject"], "m2");
}

#[test]
fn search_language_runs_on_the_server() {
    let s = Servers::start();
    s.ok(
        "alice@localhost",
        &[
            "send",
            "--to",
            "bob@localhost",
            "--subject",
            "quarterly report",
            "--body",
            "numbers inside",
        ],
        None,
    );
    s.ok(
        "bob@localhost",
        &[
            "send",
            "--to",
            "bob@localhost",
            "--subject",
            "note to self",
            "--body",
            "buy milk",
        ],
        None,
    );
    let subjects = |q: &[&str]| -> Vec<String> {
        let mut args = vec!["search", "--json"];
        args.extend_from_slice(q);
        json(&s.ok("bob@localhost", &args, None).stdout)
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["subject"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(subjects(&["from:alice"]), vec!["quarterly report"]);
    assert_eq!(subjects(&["subject:note"]), vec!["note to self"]);
    assert_eq!(subjects(&["milk"]), vec!["note to self"]);
    assert_eq!(subjects(&["--", "-from:alice"]), vec!["note to self"]);
    assert_eq!(subjects(&["from:alice", "or", "milk"]).len(), 2);
    assert_eq!(subjects(&["since:2000-01-01", "unseen"]).len(), 2);
    assert!(subjects(&["before:2000-01-01"]).is_empty());
    let text = s.ok("bob@localhost", &["search", "report"], None).stdout;
    assert!(text.contains("quarterly report"), "{text}");
}

#[test]
fn trace_shows_the_dialogue_with_credentials_masked() {
    let s = Servers::start();
    let out = s.ok(
        "alice@localhost",
        &[
            "--trace",
            "send",
            "--to",
            "bob@localhost",
            "--subject",
            "t",
            "--body",
            "b",
        ],
        None,
    );
    assert!(
        out.stderr.contains("C: MAIL FROM:<alice@localhost>"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("S: 250"), "{}", out.stderr);
    assert!(
        out.stderr.contains("LOGIN \"alice@localhost\" ****"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains(PASSWORD),
        "password leaked: {}",
        out.stderr
    );
    use base64::Engine;
    let plain =
        base64::engine::general_purpose::STANDARD.encode(format!("\0alice@localhost\0{PASSWORD}"));
    assert!(!out.stderr.contains(&plain), "AUTH token leaked");
}
