//! STATUS=SIZE (RFC 8438): the SIZE status item, the total octets of a
//! mailbox's messages, in STATUS and in LIST-STATUS (RFC 5819).

use crate::util::*;

#[test]
fn status_size_is_the_sum_of_the_message_sizes() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    let (m1, m2) = (simple("one", "1"), simple("two", "a longer body, two"));
    s.deliver(bob, &m1);
    s.deliver(bob, &m2);
    let total = m1.len() + m2.len();
    let mut c = s.login("bob@localhost");
    let r = c.ok("CAPABILITY");
    assert!(r[0].split(' ').any(|w| w == "STATUS=SIZE"), "{r:?}");
    // §3: SIZE alone, and among other items in the order asked.
    let r = c.ok("STATUS INBOX (SIZE)");
    assert_eq!(r[0], format!("* STATUS \"INBOX\" (SIZE {total})"));
    let r = c.ok("STATUS INBOX (MESSAGES size UNSEEN)");
    assert_eq!(
        r[0],
        format!("* STATUS \"INBOX\" (MESSAGES 2 SIZE {total} UNSEEN 2)")
    );
    c.ok("CREATE Empty");
    let r = c.ok("STATUS Empty (SIZE)");
    assert_eq!(r[0], "* STATUS \"Empty\" (SIZE 0)");
    // A copy counts in its new mailbox too; an expunged message no more.
    c.ok("SELECT INBOX");
    c.ok("COPY 2 Empty");
    let r = c.ok("STATUS Empty (SIZE)");
    assert_eq!(r[0], format!("* STATUS \"Empty\" (SIZE {})", m2.len()));
    c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)");
    c.ok("EXPUNGE");
    let r = c.ok("STATUS INBOX (SIZE MESSAGES)");
    assert_eq!(
        r[0],
        format!("* STATUS \"INBOX\" (SIZE {} MESSAGES 1)", m2.len())
    );
    // The same values after each mailbox's LIST response (RFC 5819 §2).
    let r = c.ok("LIST \"\" \"*\" RETURN (STATUS (SIZE))");
    let at = r
        .iter()
        .position(|l| l.starts_with("* LIST") && l.ends_with("\"Empty\""))
        .unwrap();
    assert_eq!(r[at + 1], format!("* STATUS \"Empty\" (SIZE {})", m2.len()));
    let at = r
        .iter()
        .position(|l| l.starts_with("* LIST") && l.ends_with("\"INBOX\""))
        .unwrap();
    assert_eq!(r[at + 1], format!("* STATUS \"INBOX\" (SIZE {})", m2.len()));
}

#[test]
fn status_size_in_a_bad_place_is_refused() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let mut c = s.login("bob@localhost");
    // SIZE is a STATUS item, not a FETCH item or an argument with a value.
    let r = c.cmd("STATUS INBOX (SIZE 5)");
    assert_eq!(Client::status_of(&r), "BAD", "{r:?}");
    let r = c.cmd("STATUS INBOX (SIZES)");
    assert_eq!(Client::status_of(&r), "BAD", "{r:?}");
    let r = c.cmd("STATUS nosuch (SIZE)");
    assert!(r.last().unwrap().contains("NO [NONEXISTENT]"), "{r:?}");
}
