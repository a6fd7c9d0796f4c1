//! `mua wait`: returns as soon as a matching message arrives (sent by
//! another `mua send` while it waits in IDLE), counts an unseen match
//! already there unless `--new`, ignores messages that do not match, and
//! gives up with exit 5 after `--timeout`.

use super::util::Servers;
use std::time::{Duration, Instant};

fn send(s: &Servers, subject: &str) {
    s.ok(
        "alice@localhost",
        &[
            "send",
            "--to",
            "bob@localhost",
            "--subject",
            subject,
            "--body",
            "hi",
        ],
        None,
    );
}

#[test]
fn wait_returns_when_a_matching_message_arrives() {
    let s = Servers::start();
    // Already there and unseen: found at once, unless --new.
    send(&s, "build 41 passed");
    let found = s.ok(
        "bob@localhost",
        &["wait", "--subject", "build 41", "--timeout", "5s", "--json"],
        None,
    );
    let rows: serde_json::Value = serde_json::from_str(&found.stdout).unwrap();
    assert_eq!(rows[0]["subject"], "build 41 passed");

    // --new: the old one does not count; a non-matching arrival does not
    // end the wait; the matching one does, well before the timeout.
    let mut waiting = s.mua("bob@localhost");
    waiting.args([
        "wait",
        "--new",
        "--from",
        "alice@",
        "--subject",
        "build 42",
        "--timeout",
        "60s",
    ]);
    waiting.stdout(std::process::Stdio::piped());
    let started = Instant::now();
    let child = waiting.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    send(&s, "build 41 passed");
    send(&s, "unrelated");
    std::thread::sleep(Duration::from_millis(300));
    send(&s, "build 42 passed");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("build 42 passed"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );

    // Nothing matching: exit 5 after the timeout, with a message.
    let t0 = Instant::now();
    let none = s.run(
        "bob@localhost",
        &[
            "wait",
            "--new",
            "--subject",
            "never sent",
            "--timeout",
            "1500ms",
        ],
        None,
    );
    assert_eq!(none.code, 5, "{}", none.stderr);
    assert!(
        none.stderr.contains("no matching message in INBOX"),
        "{}",
        none.stderr
    );
    assert!(t0.elapsed() >= Duration::from_millis(1500));

    // A bad duration is a usage error.
    let bad = s.run("bob@localhost", &["wait", "--timeout", "soon"], None);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
}
