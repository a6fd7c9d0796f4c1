//! Isolation between users (RFC 3501 §5.1 mailbox naming, §6.3 commands):
//! bob, logged in, tries every command that takes a mailbox name on
//! alice's mailboxes with every name trick we know (`..`, `../alice/...`,
//! `%`, `*`, case variants of INBOX, modified UTF-7 (§5.1.3) spellings,
//! `INBOX/..`, absolute-looking names, names with alice's address). None
//! may reveal or change alice's data: every command is either refused or
//! acts on bob's own mailboxes, and alice's mailboxes (names, counts,
//! subjects) are byte-for-byte the same afterwards.

use crate::util::*;

const ALICE: &str = "alice@localhost";
const BOB: &str = "bob@localhost";

/// Mailbox names that might, in a careless server, reach alice's data.
const TRICKS: &[&str] = &[
    "..",
    "../alice@localhost/INBOX",
    "../alice/INBOX",
    "../../alice@localhost/Secret",
    "%",
    "*",
    "inbox",
    "InBox",
    "&AGkAbgBiAG8AeA-",
    "&AEkATgBCAE8AWA-",
    "INBOX/..",
    "INBOX/../Secret",
    "/INBOX",
    "/Secret",
    "Secret",
    "secret",
    "alice@localhost",
    "alice@localhost/INBOX",
    "alice@localhost/Secret",
    "/alice@localhost/Secret",
    "~alice@localhost/Secret",
    "#shared/alice@localhost/Secret",
    "Other Users/alice@localhost/Secret",
    "Secret\u{0}",
    "Secret%",
    "Secret*",
];

fn q(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Everything alice could see: mailbox list, each mailbox's counts and
/// message subjects.
fn snapshot(s: &TestServer) -> Vec<String> {
    let mut c = s.login(ALICE);
    let list = c.ok("LIST \"\" *");
    let mut out: Vec<String> = grep(&list, "* LIST").into_iter().cloned().collect();
    out.sort();
    let names: Vec<String> = out
        .iter()
        .map(|l| l.rsplit(" \"/\" ").next().unwrap().to_owned())
        .collect();
    for n in names {
        let r = c.ok(&format!("STATUS {n} (MESSAGES UIDNEXT UIDVALIDITY)"));
        out.push(r[0].clone());
        c.ok(&format!("EXAMINE {n}"));
        let r = c.cmd("FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
        out.extend(r.into_iter().filter(|l| l.starts_with("* ")));
    }
    c.ok("LOGOUT");
    out
}

fn setup() -> TestServer {
    let s = TestServer::start();
    let alice = s.add_user(ALICE);
    let bob = s.add_user(BOB);
    for k in 0..3 {
        s.deliver(
            alice,
            &simple(&format!("alice-secret-{k}"), "for alice only"),
        );
    }
    s.deliver(bob, &simple("bob-own", "bob's"));
    let mut a = s.login(ALICE);
    a.ok("CREATE Secret");
    for k in 0..2 {
        let m = simple(&format!("alice-secret-box-{k}"), "hidden");
        a.send(format!("x{k} APPEND Secret {{{}+}}\r\n", m.len()).as_bytes());
        a.send(&m);
        a.send(b"\r\n");
        assert!(a.until(&format!("x{k}")).last().unwrap().contains("OK"));
    }
    a.ok("SUBSCRIBE Secret");
    s
}

/// No response line carries alice's message data.
fn no_alice(r: &[String], what: &str) {
    for l in r {
        assert!(
            !l.contains("alice-secret"),
            "{what} revealed alice's data: {r:?}"
        );
    }
}

/// No untagged line names alice's mailboxes (bob has no `Secret` and
/// nothing with `alice` in its name while this is checked).
fn no_alice_names(r: &[String], what: &str) {
    no_alice(r, what);
    for l in grep(r, "* ") {
        let lower = l.to_ascii_lowercase();
        assert!(
            !lower.contains("secret") && !lower.contains("alice"),
            "{what} revealed alice's mailbox: {r:?}"
        );
    }
}

/// After a successful SELECT/EXAMINE: only bob's messages are visible.
fn only_bob_messages(c: &mut Client, what: &str) {
    let r = c.cmd("FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    no_alice(&r, what);
    let r = c.cmd("SEARCH TEXT alice-secret");
    assert!(
        grep(&r, "* SEARCH").iter().all(|l| l.trim() == "* SEARCH"),
        "{what}: {r:?}"
    );
}

/// Run `attack` as bob, then check alice's mailboxes are unchanged.
fn as_bob(attack: impl FnOnce(&mut Client)) {
    let s = setup();
    let before = snapshot(&s);
    // The snapshot is not vacuous.
    assert!(
        before.iter().any(|l| l.contains("alice-secret-2")),
        "{before:?}"
    );
    assert!(
        before.iter().any(|l| l.contains("alice-secret-box-1")),
        "{before:?}"
    );
    let mut c = s.login(BOB);
    attack(&mut c);
    c.ok("LOGOUT");
    assert_eq!(before, snapshot(&s), "alice's mailboxes changed");
}

fn append(c: &mut Client, mailbox: &str, subject: &str) -> Vec<String> {
    let m = simple(subject, "x");
    let tag = c.next_tag();
    c.send(format!("{tag} APPEND {mailbox} {{{}+}}\r\n", m.len()).as_bytes());
    c.send(&m);
    c.send(b"\r\n");
    c.until(&tag)
}

#[test]
fn status_never_counts_alice_mailboxes() {
    as_bob(|c| {
        // Bob has 1 message in INBOX and none elsewhere; alice 3 and 2.
        for t in TRICKS {
            let r = c.cmd(&format!("STATUS {} (MESSAGES)", q(t)));
            no_alice(&r, &format!("STATUS {t}"));
            if Client::status_of(&r) == "OK" {
                let st = grep(&r, "* STATUS")[0].clone();
                assert!(
                    st.contains("MESSAGES 0") || st.contains("MESSAGES 1"),
                    "STATUS {t}: {r:?}"
                );
            }
        }
    });
}

#[test]
fn select_examine_fetch_search_never_open_alice_mailboxes() {
    as_bob(|c| {
        for verb in ["SELECT", "EXAMINE"] {
            for t in TRICKS {
                let r = c.cmd(&format!("{verb} {}", q(t)));
                no_alice(&r, &format!("{verb} {t}"));
                if Client::status_of(&r) == "OK" {
                    let exists = grep(&r, "* ")
                        .iter()
                        .find(|l| l.ends_with(" EXISTS"))
                        .map(|l| l.to_string())
                        .unwrap();
                    assert!(exists == "* 1 EXISTS", "{verb} {t}: {r:?}");
                    only_bob_messages(c, &format!("{verb} {t}"));
                }
            }
        }
    });
}

#[test]
fn list_and_lsub_never_show_alice_mailboxes() {
    as_bob(|c| {
        for t in TRICKS {
            for cmd in [
                format!("LIST {} *", q(t)),
                format!("LIST \"\" {}", q(t)),
                format!("LIST {} %", q(t)),
                format!("LSUB {} *", q(t)),
                format!("LSUB \"\" {}", q(t)),
            ] {
                let r = c.cmd(&cmd);
                no_alice_names(&r, &cmd);
            }
        }
    });
}

#[test]
fn append_never_lands_in_alice_mailboxes() {
    as_bob(|c| {
        for t in TRICKS {
            let r = append(c, &q(t), "bob-appended");
            no_alice(&r, &format!("APPEND {t}"));
        }
    });
}

#[test]
fn copy_never_lands_in_alice_mailboxes() {
    as_bob(|c| {
        c.ok("SELECT INBOX");
        for t in TRICKS {
            let r = c.cmd(&format!("COPY 1 {}", q(t)));
            no_alice(&r, &format!("COPY {t}"));
            let r = c.cmd(&format!("UID COPY 1:* {}", q(t)));
            no_alice(&r, &format!("UID COPY {t}"));
        }
    });
}

#[test]
fn move_never_lands_in_alice_mailboxes() {
    as_bob(|c| {
        c.ok("SELECT INBOX");
        for t in TRICKS {
            append(c, "INBOX", "bob-to-move");
            c.ok("NOOP");
            let r = c.cmd(&format!("MOVE * {}", q(t)));
            no_alice(&r, &format!("MOVE {t}"));
        }
        only_bob_messages(c, "bob's INBOX after MOVE");
    });
}

#[test]
fn subscribing_to_alice_names_shows_nothing_of_hers() {
    as_bob(|c| {
        for t in TRICKS {
            let r = c.cmd(&format!("SUBSCRIBE {}", q(t)));
            no_alice(&r, &format!("SUBSCRIBE {t}"));
        }
        let r = c.cmd("LSUB \"\" *");
        for l in grep(&r, "* LSUB") {
            // Subscriptions are bob's own names (RFC 3501 §6.3.6 allows
            // names that do not exist); none may open alice's data.
            let name = l.rsplit(" \"/\" ").next().unwrap().to_owned();
            let st = c.cmd(&format!("STATUS {name} (MESSAGES)"));
            no_alice(&st, &format!("STATUS of subscribed {name}"));
            let sel = c.cmd(&format!("EXAMINE {name}"));
            if Client::status_of(&sel) == "OK" {
                only_bob_messages(c, &format!("EXAMINE subscribed {name}"));
            }
        }
        let r = c.ok("LIST \"\" *");
        no_alice_names(&r, "LIST after SUBSCRIBE");
        for t in TRICKS {
            c.cmd(&format!("UNSUBSCRIBE {}", q(t)));
        }
    });
}

#[test]
fn rename_never_touches_alice_mailboxes() {
    as_bob(|c| {
        for t in TRICKS {
            let r = c.cmd(&format!("RENAME {} \"bob-renamed\"", q(t)));
            no_alice(&r, &format!("RENAME {t}"));
            c.cmd("DELETE \"bob-renamed\"");
            let r = c.cmd(&format!("RENAME \"Drafts\" {}", q(t)));
            no_alice(&r, &format!("RENAME to {t}"));
            if Client::status_of(&r) == "OK" {
                c.cmd(&format!("RENAME {} \"Drafts\"", q(t)));
            }
        }
    });
}

#[test]
fn delete_never_touches_alice_mailboxes() {
    as_bob(|c| {
        for t in TRICKS {
            let r = c.cmd(&format!("DELETE {}", q(t)));
            no_alice(&r, &format!("DELETE {t}"));
        }
    });
}

#[test]
fn alice_sees_none_of_bobs_changes_either() {
    let s = setup();
    let mut b = s.login(BOB);
    b.ok("CREATE Secret");
    // Path-like names are refused outright (and could never reach
    // another user's mailboxes anyway: names are per user, not paths).
    let r = b.cmd("CREATE ../x");
    assert!(r.last().unwrap().contains("NO [CANNOT]"), "{r:?}");
    let mut a = s.login(ALICE);
    let r = a.ok("LIST \"\" *");
    assert!(!r.iter().any(|l| l.contains("../x")), "{r:?}");
    let r = a.ok("STATUS Secret (MESSAGES)");
    assert!(r[0].contains("MESSAGES 2"), "{r:?}");
}
