//! URLAUTH (RFC 4467) over a real socket: keys belong to a mailbox (a
//! mailbox deleted and created again under the same name does not honour
//! old URLs; RENAME keeps them valid only under the name they were made
//! for), a user cannot sign URLs to another user's mailbox, and CATENATE
//! accepts a URLAUTH-authorized URL to another user's message (RFC 4469
//! §3).

use crate::util::*;

fn genurlauth(c: &mut Client, rump: &str) -> String {
    let r = c.ok(&format!("GENURLAUTH \"{rump}\" INTERNAL"));
    let line = r.iter().find(|l| l.starts_with("* GENURLAUTH ")).unwrap();
    let url = line["* GENURLAUTH ".len()..].trim_matches('"').to_owned();
    assert!(url.starts_with(&format!("{rump}:internal:")), "{url}");
    url
}

fn urlfetch(c: &mut Client, url: &str) -> String {
    let r = c.ok(&format!("URLFETCH \"{url}\""));
    r.iter()
        .find(|l| l.starts_with("* URLFETCH "))
        .unwrap()
        .clone()
}

#[test]
fn keys_belong_to_the_mailbox_not_its_name() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let mut c = s.login("bob@localhost");
    c.ok("CREATE Box");
    c.ok("APPEND Box {9+}\r\nSubject:x");
    let url = genurlauth(
        &mut c,
        "imap://bob@localhost@localhost/Box/;UID=1;URLAUTH=authuser",
    );
    assert!(urlfetch(&mut c, &url).ends_with("Subject:x"));
    // Renamed: the URL names a mailbox that no longer exists.
    c.ok("RENAME Box Box2");
    assert!(urlfetch(&mut c, &url).ends_with(" NIL"));
    c.ok("RENAME Box2 Box");
    assert!(
        urlfetch(&mut c, &url).ends_with("Subject:x"),
        "same mailbox, same key"
    );
    // Deleted and made again, with a message at the same UID: a new key.
    c.ok("DELETE Box");
    c.ok("CREATE Box");
    c.ok("APPEND Box {9+}\r\nSubject:y");
    assert!(urlfetch(&mut c, &url).ends_with(" NIL"));
}

#[test]
fn urls_to_other_users_cannot_be_signed_but_signed_ones_can_be_catenated() {
    let s = TestServer::start();
    let alice = s.add_user("alice@localhost");
    s.add_user("bob@localhost");
    s.deliver(alice, &simple("shared", "for bob"));
    let mut bob = s.login("bob@localhost");
    let r = bob.cmd(
        "GENURLAUTH \"imap://alice@localhost@localhost/INBOX/;UID=1;URLAUTH=anonymous\" INTERNAL",
    );
    assert!(r.last().unwrap().contains(" NO "), "{r:?}");
    let mut alice_c = s.login("alice@localhost");
    let url = genurlauth(
        &mut alice_c,
        "imap://alice@localhost/INBOX/;UID=1/;SECTION=TEXT;URLAUTH=user+bob@localhost",
    );
    // A third user may not use it.
    s.add_user("carol@localhost");
    let mut carol = s.login("carol@localhost");
    assert!(urlfetch(&mut carol, &url).ends_with(" NIL"));
    assert!(urlfetch(&mut bob, &url).contains("for bob"));
    bob.ok("CREATE Mine");
    bob.ok(&format!(
        "APPEND Mine CATENATE (TEXT {{15+}}\r\nSubject: fw\r\n\r\n URL \"{url}\")"
    ));
    bob.ok("SELECT Mine");
    let r = bob.ok("FETCH 1 BODY.PEEK[]");
    assert!(r[0].ends_with("Subject: fw\r\n\r\nfor bob\r\n)"), "{r:?}");
    let r = carol.cmd(&format!("APPEND INBOX CATENATE (URL \"{url}\")"));
    assert!(r.last().unwrap().contains("NO [BADURL"), "{r:?}");
}
