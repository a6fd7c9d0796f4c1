//! NOTIFY (RFC 5465) over real sockets: one session NOTIFYs, another (or
//! a delivery, or another process) changes mailboxes; the first hears it
//! in IDLE, between commands and before its tagged replies.

use crate::util::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Lines until one equal to `want` (panics on the client's read timeout).
fn until_line(c: &mut Client, want: &str) -> Vec<String> {
    let mut got = Vec::new();
    loop {
        let l = c.line();
        let done = l == want;
        got.push(l);
        if done {
            return got;
        }
    }
}

/// Lines until one starting with `prefix`.
fn until_prefix(c: &mut Client, prefix: &str) -> String {
    loop {
        let l = c.line();
        if l.starts_with(prefix) {
            return l;
        }
    }
}

const ALL: &str = "(MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange)";

#[test]
fn idle_hears_status_and_list_for_other_mailboxes() {
    // RFC 5465 §5.2-§5.5: STATUS for new mail, flag changes and expunges
    // in a mailbox that is not selected; LIST for created, renamed,
    // deleted mailboxes and subscription changes.
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let mut a = s.login("bob@localhost");
    let mut b = s.login("bob@localhost");
    a.ok("SELECT INBOX");
    a.ok(&format!(
        "NOTIFY SET (selected-delayed NONE) (personal {ALL})"
    ));
    a.send(b"i1 IDLE\r\n");
    assert_eq!(a.line(), "+ idling");

    b.ok("CREATE work");
    assert_eq!(a.line(), "* LIST (\\HasNoChildren) \"/\" \"work\"");
    b.send(b"b1 APPEND work {18}\r\n");
    assert!(b.line().starts_with('+'));
    b.send(b"Subject: s\r\n\r\nbody\r\n");
    b.until("b1");
    let st = until_prefix(&mut a, "* STATUS \"work\"");
    assert!(
        st.contains("MESSAGES 1") && st.contains("UIDNEXT 2"),
        "{st}"
    );
    assert!(
        st.contains("UNSEEN 1") && st.contains("HIGHESTMODSEQ"),
        "{st}"
    );

    b.ok("SUBSCRIBE work");
    assert_eq!(
        a.line(),
        "* LIST (\\HasNoChildren \\Subscribed) \"/\" \"work\""
    );
    b.ok("RENAME work play");
    assert_eq!(
        a.line(),
        "* LIST (\\HasNoChildren \\Subscribed) \"/\" \"play\" (\"OLDNAME\" (\"work\"))"
    );
    b.ok("SELECT play");
    b.ok("STORE 1 +FLAGS (\\Seen)");
    let st = until_prefix(&mut a, "* STATUS \"play\"");
    assert!(st.contains("UNSEEN 0"), "{st}");
    b.ok("STORE 1 +FLAGS.SILENT (\\Deleted)");
    until_prefix(&mut a, "* STATUS \"play\"");
    b.ok("EXPUNGE");
    let st = until_prefix(&mut a, "* STATUS \"play\"");
    assert!(st.contains("MESSAGES 0"), "{st}");
    b.ok("UNSELECT");
    b.ok("DELETE play");
    until_line(&mut a, "* LIST (\\NonExistent) \"/\" \"play\"");
    a.send(b"DONE\r\n");
    assert_eq!(a.until("i1").last().unwrap(), "i1 OK IDLE terminated");
}

#[test]
fn notifications_arrive_between_commands_without_idle() {
    // §4: the server sends notifications when no command is in progress.
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    let mut a = s.login("bob@localhost");
    a.ok("SELECT Sent");
    a.ok("NOTIFY SET (inboxes (MessageNew MessageExpunge))");
    // A delivery to INBOX (in-process, as smtpd would) while A sits idle
    // between commands, not in IDLE.
    s.deliver(bob, &simple("hello", "x"));
    let st = until_prefix(&mut a, "* STATUS \"INBOX\"");
    assert!(
        st.contains("MESSAGES 1") && st.contains("UIDNEXT 2"),
        "{st}"
    );
    // Only INBOX is an inbox: nothing for Drafts.
    let mut b = s.login("bob@localhost");
    b.send(b"b1 APPEND Drafts {14}\r\n");
    assert!(b.line().starts_with('+'));
    b.send(b"Subject: d\r\n\r\n\r\n");
    b.until("b1");
    let r = a.ok("NOOP");
    assert_eq!(r.len(), 1, "{r:?}");
}

#[test]
fn status_option_reports_every_followed_mailbox_at_once() {
    // §3.1 NOTIFY SET STATUS; and without STATUS, nothing at once.
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    s.deliver(bob, &simple("a", "1"));
    let mut a = s.login("bob@localhost");
    a.ok("CREATE x/y");
    let r = a.ok(
        "NOTIFY SET STATUS (subtree x (MessageNew MessageExpunge)) (mailboxes INBOX (MessageNew))",
    );
    let statuses: Vec<&String> = r.iter().filter(|l| l.starts_with("* STATUS")).collect();
    assert_eq!(statuses.len(), 3, "{r:?}");
    assert!(
        r.iter()
            .any(|l| l.starts_with("* STATUS \"INBOX\" (MESSAGES 1 ")),
        "{r:?}"
    );
    // FlagChange asked for: HIGHESTMODSEQ too (as Dovecot).
    let r = a.ok("NOTIFY SET STATUS (mailboxes x (FlagChange))");
    assert!(r[0].contains("HIGHESTMODSEQ"), "{r:?}");
    let r = a.ok("NOTIFY SET (personal (MessageNew MessageExpunge))");
    assert_eq!(r.len(), 1, "{r:?}");
}

#[test]
fn selected_message_new_fetches_the_new_message() {
    // §5.2: MessageNew with fetch attributes for the selected mailbox: the
    // EXISTS, then a FETCH of the new message, no \Seen set.
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    s.deliver(bob, &simple("old", "1"));
    let mut a = s.login("bob@localhost");
    a.ok("SELECT INBOX");
    a.ok("NOTIFY SET (selected (MessageNew (UID BODY[HEADER.FIELDS (SUBJECT)]) MessageExpunge))");
    s.deliver(bob, &simple("fresh news", "2"));
    until_line(&mut a, "* 2 EXISTS");
    let f = until_prefix(&mut a, "* 2 FETCH");
    assert!(
        f.starts_with("* 2 FETCH (UID 2 BODY[HEADER.FIELDS (SUBJECT)] {"),
        "{f}"
    );
    assert!(f.contains("Subject: fresh news"), "{f}");
    let r = a.ok("FETCH 2 FLAGS");
    assert!(!r[0].contains("\\Seen"), "{r:?}");
    // The one old message got no FETCH: only what is new.
    s.deliver(bob, &simple("third", "3"));
    let f = until_prefix(&mut a, "* 3 FETCH");
    assert!(f.contains("Subject: third"), "{f}");
}

#[test]
fn notify_none_stops_and_bad_events_are_refused() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    let mut a = s.login("bob@localhost");
    a.ok("SELECT Sent");
    // §3.2: events we cannot deliver, and unknown ones: NO [BADEVENT
    // (what we support)].
    for ev in [
        "AnnotationChange",
        "MailboxMetadataChange",
        "ServerMetadataChange",
        "NoSuchEvent",
    ] {
        let r = a.cmd(&format!("NOTIFY SET (personal ({ev}))"));
        let last = r.last().unwrap();
        assert!(
            last.contains("NO [BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange)]"),
            "{r:?}"
        );
    }
    // §5.1: MessageNew without MessageExpunge for selected: BAD.
    let r = a.cmd("NOTIFY SET (selected (MessageNew))");
    assert_eq!(Client::status_of(&r), "BAD", "{r:?}");
    a.ok("NOTIFY SET (inboxes (MessageNew MessageExpunge))");
    a.ok("NOTIFY NONE");
    s.deliver(bob, &simple("quiet", "x"));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let r = a.ok("NOOP");
    assert_eq!(r.len(), 1, "{r:?}");
}

#[test]
fn notify_limits_are_enforced() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let mut a = s.login("bob@localhost");
    let names = vec!["m"; imapd::limits::MAX_NOTIFY_NAMES].join(" ");
    let r = a.cmd(&format!("NOTIFY SET (mailboxes ({names}) (MessageNew))"));
    assert!(r.last().unwrap().contains("NO [LIMIT]"), "{r:?}");
    let pats = vec!["m"; imapd::limits::MAX_LIST_PATTERNS + 1].join(" ");
    let r = a.cmd(&format!("LIST \"\" ({pats})"));
    assert!(r.last().unwrap().contains("NO [LIMIT]"), "{r:?}");
}

#[test]
fn another_process_commit_reaches_notify() {
    // A second Store handle on the same file stands in for another process
    // (e.g. a separate smtpd): its commits do not pass our commit
    // listener, the watcher thread notices them.
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    let other = mailstore::Store::open(s.dir.path().join("mail.db")).unwrap();
    let mut a = s.login("bob@localhost");
    a.ok("NOTIFY SET (personal (MessageNew MessageExpunge MailboxName))");
    a.send(b"i1 IDLE\r\n");
    assert_eq!(a.line(), "+ idling");
    let msg = mailstore::NewMessage {
        raw: simple("ext", "x"),
        internal_date: 1,
    };
    other
        .write_sync(move |tx| tx.deliver(&msg, &[bob]))
        .unwrap();
    let st = until_prefix(&mut a, "* STATUS \"INBOX\"");
    assert!(st.contains("MESSAGES 1"), "{st}");
    other
        .write_sync(move |tx| tx.create_mailbox(bob, "elsewhere", None))
        .unwrap();
    until_line(&mut a, "* LIST (\\HasNoChildren) \"/\" \"elsewhere\"");
    a.send(b"DONE\r\n");
    a.until("i1");
}

#[test]
fn a_commit_wakes_only_the_sessions_of_its_user() {
    // 10,000 NOTIFY registrations of other users cost a commit nothing:
    // the hub routes by user (and by mailbox for selected sessions).
    let dir = tempfile::tempdir().unwrap();
    let store = mailstore::Store::open(dir.path().join("m.db")).unwrap();
    let hub = imapd::view::hub::Hub::start(&store);
    let hash = mailstore::hash_password("pw").unwrap();
    let (h1, h2) = (hash.clone(), hash);
    let bob = store
        .write_sync(move |t| t.create_user("bob@x", &h1))
        .unwrap();
    let carol = store
        .write_sync(move |t| t.create_user("carol@x", &h2))
        .unwrap();
    // The users' own commits reach the listener just after write_sync
    // returns: let them pass before registering.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let woken_other = Arc::new(AtomicUsize::new(0));
    for i in 0..10_000u64 {
        let w = woken_other.clone();
        hub.watch_notify(
            i + 10,
            carol,
            Box::new(move || {
                w.fetch_add(1, Ordering::SeqCst);
            }),
            Arc::default(),
        );
    }
    let woken_bob = Arc::new(AtomicUsize::new(0));
    let w = woken_bob.clone();
    let dirty: Arc<imapd::view::hub::Dirty> = Arc::default();
    hub.watch_notify(
        1,
        bob,
        Box::new(move || {
            w.fetch_add(1, Ordering::SeqCst);
        }),
        dirty.clone(),
    );
    let t = std::time::Instant::now();
    for i in 0..200 {
        let msg = mailstore::NewMessage {
            raw: simple(&format!("m{i}"), "x"),
            internal_date: 1,
        };
        store
            .write_sync(move |tx| tx.deliver(&msg, &[bob]))
            .unwrap();
    }
    eprintln!(
        "200 commits with 10,001 NOTIFY sessions registered: {:?}",
        t.elapsed()
    );
    // Past two polls of the watcher thread, which must not take our own
    // commits for another process's (that would wake everyone).
    std::thread::sleep(imapd::limits::POLL_EVERY * 3);
    assert_eq!(woken_other.load(Ordering::SeqCst), 0);
    // Coalesced: one wake-up while the set stays unread.
    assert_eq!(woken_bob.load(Ordering::SeqCst), 1);
    let d = dirty.take();
    assert_eq!(d.mailboxes.len(), 1);
    assert_eq!(hub.notify_sessions(), 10_001);
    hub.stop();
}
