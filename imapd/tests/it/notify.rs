//! Notifications between sessions (RFC 3501 §5.2, §7.4.1): new mail,
//! flag changes and expunges reach other sessions with the mailbox
//! selected, EXPUNGE never during FETCH/STORE/SEARCH; IDLE pushes new mail
//! from in-process deliveries and from another process's commits.

use crate::util::*;

#[test]
fn flag_changes_and_new_mail_reach_other_session_at_noop() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    s.deliver(bob, &simple("a", "1"));
    let mut a = s.login("bob@localhost");
    let mut b = s.login("bob@localhost");
    a.ok("SELECT INBOX");
    b.ok("SELECT INBOX");
    b.ok("STORE 1 +FLAGS (\\Flagged)");
    s.deliver(bob, &simple("b", "2"));
    let r = a.ok("NOOP");
    assert!(
        r.contains(&"* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))".to_owned()),
        "{r:?}"
    );
    assert!(r.contains(&"* 2 EXISTS".to_owned()), "{r:?}");
    assert!(r.contains(&"* 2 RECENT".to_owned()), "{r:?}");
    // Nothing new: NOOP is quiet.
    assert_eq!(a.ok("NOOP").len(), 1);
}

#[test]
fn expunge_is_held_back_during_fetch_store_search() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    for i in 0..3 {
        s.deliver(bob, &simple(&format!("m{i}"), "x"));
    }
    let mut a = s.login("bob@localhost");
    let mut b = s.login("bob@localhost");
    a.ok("SELECT INBOX");
    b.ok("SELECT INBOX");
    b.ok("STORE 2 +FLAGS.SILENT (\\Deleted)");
    b.ok("EXPUNGE");
    // Sequence numbers in A still include the expunged message.
    let r = a.ok("FETCH 3 UID");
    assert_eq!(r[0], "* 3 FETCH (UID 3)");
    assert!(!r.iter().any(|l| l.contains("EXPUNGE")), "{r:?}");
    let r = a.ok("SEARCH ALL");
    assert!(!r.iter().any(|l| l.contains("EXPUNGE")), "{r:?}");
    let r = a.ok("STORE 1 +FLAGS (\\Seen)");
    assert!(!r.iter().any(|l| l.contains("EXPUNGE")), "{r:?}");
    let r = a.ok("NOOP");
    assert!(r.contains(&"* 2 EXPUNGE".to_owned()), "{r:?}");
    let r = a.ok("FETCH 2 UID");
    assert_eq!(r[0], "* 2 FETCH (UID 3)");
}

fn idle_until(c: &mut Client, want: &str) -> Vec<String> {
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

#[test]
fn idle_pushes_new_mail_and_expunges() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    s.deliver(bob, &simple("a", "1"));
    let mut a = s.login("bob@localhost");
    a.ok("SELECT INBOX");
    a.send(b"i1 IDLE\r\n");
    assert_eq!(a.line(), "+ idling");
    s.deliver(bob, &simple("b", "2"));
    idle_until(&mut a, "* 2 EXISTS");
    let mut b = s.login("bob@localhost");
    b.ok("SELECT INBOX");
    b.ok("STORE 1 +FLAGS.SILENT (\\Deleted)");
    b.ok("EXPUNGE");
    idle_until(&mut a, "* 1 EXPUNGE");
    a.send(b"DONE\r\n");
    assert_eq!(a.until("i1").last().unwrap(), "i1 OK IDLE terminated");
}

#[test]
fn idle_sees_commits_from_another_process() {
    // A second Store handle on the same file stands in for another process
    // (its commits do not go through this server's commit listener).
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    let other = mailstore::Store::open(s.dir.path().join("mail.db")).unwrap();
    let mut a = s.login("bob@localhost");
    a.ok("SELECT INBOX");
    a.send(b"i1 IDLE\r\n");
    assert_eq!(a.line(), "+ idling");
    let msg = mailstore::NewMessage {
        raw: simple("ext", "x"),
        internal_date: 1,
    };
    other
        .write_sync(move |tx| tx.deliver(&msg, &[bob]))
        .unwrap();
    idle_until(&mut a, "* 1 EXISTS");
    // Flag changes and expunges from the other process are pushed too.
    let inbox = other
        .read_sync(|r| r.mailbox(bob, "INBOX"))
        .unwrap()
        .unwrap()
        .id;
    other
        .write_sync(move |tx| {
            let flags = mailstore::Flags::system(mailstore::Flags::FLAGGED);
            tx.store_flags(inbox, &[1], mailstore::FlagOp::Add, &flags, None)
        })
        .unwrap();
    idle_until(&mut a, "* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))");
    other
        .write_sync(move |tx| {
            let flags = mailstore::Flags::system(mailstore::Flags::DELETED);
            tx.store_flags(inbox, &[1], mailstore::FlagOp::Add, &flags, None)?;
            tx.expunge(inbox, None)
        })
        .unwrap();
    idle_until(&mut a, "* 1 EXPUNGE");
    a.send(b"DONE\r\n");
    a.until("i1");
    other.shutdown();
}

#[test]
fn idle_reports_a_burst_of_deliveries() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    let mut a = s.login("bob@localhost");
    a.ok("SELECT INBOX");
    a.send(b"i1 IDLE\r\n");
    assert_eq!(a.line(), "+ idling");
    for i in 0..20 {
        s.deliver(bob, &simple(&format!("burst{i}"), "x"));
    }
    idle_until(&mut a, "* 20 EXISTS");
    a.send(b"DONE\r\n");
    a.until("i1");
}

#[test]
fn recent_is_given_to_one_session_only() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    s.deliver(bob, &simple("a", "1"));
    let mut a = s.login("bob@localhost");
    let mut b = s.login("bob@localhost");
    assert!(a.ok("EXAMINE INBOX").contains(&"* 1 RECENT".to_owned()));
    assert!(a.ok("SELECT INBOX").contains(&"* 1 RECENT".to_owned()));
    assert!(b.ok("SELECT INBOX").contains(&"* 0 RECENT".to_owned()));
    assert_eq!(a.ok("SEARCH RECENT")[0], "* SEARCH 1");
    assert_eq!(b.ok("SEARCH RECENT")[0], "* SEARCH");
    s.deliver(bob, &simple("b", "2"));
    let r = b.ok("NOOP");
    assert!(r.contains(&"* 1 RECENT".to_owned()), "{r:?}");
    let r = a.ok("NOOP");
    assert!(
        r.contains(&"* 2 EXISTS".to_owned()) && r.contains(&"* 1 RECENT".to_owned()),
        "{r:?}"
    );
    assert_eq!(b.ok("FETCH 2 FLAGS")[0], "* 2 FETCH (FLAGS (\\Recent))");
}
