//! SELECT and EXAMINE fill the header cache's Subject and From values of
//! the mailbox in the background (mailstore/src/search/cache.rs, issue 21),
//! so that the first SUBJECT or FROM search is answered from memory: over
//! a real socket, the fill happens after SELECT without any search, and
//! the searches that follow answer right without filling anything more.

use crate::util::*;

fn wait_for_entries(s: &TestServer, entries: usize) -> (usize, usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let usage = s.store.header_cache_usage();
        if usage.1 >= entries && s.store.header_cache_fills_queued() == 0 {
            return usage;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no fill after SELECT: {usage:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn select_fills_the_header_cache_for_the_first_search() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    for i in 0..40 {
        s.deliver(bob, &simple(&format!("topic {} of {i}", i % 4), "x"));
    }
    let mut c = s.login("bob@localhost");
    c.ok("CREATE Other");
    c.ok("STATUS INBOX (MESSAGES)");
    assert_eq!(s.store.header_cache_usage(), (0, 0), "not before SELECT");
    c.ok("EXAMINE INBOX");
    let (bytes, entries) = wait_for_entries(&s, 2);
    assert_eq!(entries, 2, "Subject and From");
    let r = c.ok("UID SEARCH SUBJECT \"topic 3\"");
    let want: Vec<String> = (0..40)
        .filter(|i| i % 4 == 3)
        .map(|i| (i + 1).to_string())
        .collect();
    assert_eq!(r[0], format!("* SEARCH {}", want.join(" ")));
    assert_eq!(s.store.header_cache_usage(), (bytes, 2), "nothing filled");
    // Another mailbox selected: its own two entries.
    let msg = "From: carol@x\r\nSubject: hello there\r\n\r\nhi\r\n";
    c.ok(&format!("APPEND Other {{{}+}}\r\n{msg}", msg.len()));
    c.ok("SELECT Other");
    let (_, entries) = wait_for_entries(&s, 4);
    assert_eq!(entries, 4);
    assert_eq!(c.ok("UID SEARCH FROM carol")[0], "* SEARCH 1");
    assert_eq!(s.store.header_cache_usage().1, 4);
}
