//! OBJECTID (RFC 8474): MAILBOXID through CREATE, SELECT, STATUS and
//! RENAME; EMAILID through delivery, COPY and MOVE, and as a search key;
//! THREADID NIL. Also driven by Python's imapclient, which parses the
//! new items as any client library would.

use crate::util::*;

/// The objectid inside `NAME (id)` in a response line.
fn objectid(line: &str, name: &str) -> String {
    let at = line
        .find(&format!("{name} ("))
        .unwrap_or_else(|| panic!("{name} in {line}"))
        + name.len()
        + 2;
    let rest = &line[at..];
    rest[..rest.find(')').unwrap()].to_owned()
}

#[test]
fn ids_stay_with_their_mailbox_and_message() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    s.deliver(bob, &simple("one", "1"));
    s.deliver(bob, &simple("two", "2"));
    let mut c = s.login("bob@localhost");
    let r = c.ok("CAPABILITY");
    assert!(r[0].split(' ').any(|w| w == "OBJECTID"), "{r:?}");

    let r = c.ok("CREATE Work");
    let work = objectid(r.last().unwrap(), "MAILBOXID");
    let r = c.ok("STATUS Work (MAILBOXID MESSAGES)");
    assert_eq!(objectid(&r[0], "MAILBOXID"), work);
    let r = c.ok("SELECT INBOX");
    let inbox = objectid(&grep(&r, "* OK [MAILBOXID")[0].clone(), "MAILBOXID");
    assert_ne!(inbox, work);

    let r = c.ok("FETCH 1:2 (EMAILID THREADID)");
    let (e1, e2) = (objectid(&r[0], "EMAILID"), objectid(&r[1], "EMAILID"));
    assert_ne!(e1, e2);
    assert!(r[0].contains("THREADID NIL"), "{r:?}");
    let r = c.ok(&format!("SEARCH EMAILID {e2}"));
    assert_eq!(r[0], "* SEARCH 2");

    // COPY and MOVE keep the EMAILID; RENAME keeps the MAILBOXID.
    c.ok("COPY 1 Work");
    c.ok("MOVE 2 Work");
    c.ok("RENAME Work Play");
    let r = c.ok("SELECT Play");
    assert_eq!(
        objectid(&grep(&r, "* OK [MAILBOXID")[0].clone(), "MAILBOXID"),
        work
    );
    let r = c.ok("FETCH 1:2 (EMAILID)");
    assert_eq!(objectid(&r[0], "EMAILID"), e1);
    assert_eq!(objectid(&r[1], "EMAILID"), e2);
    let r = c.ok(&format!("UID SEARCH EMAILID {e1}"));
    assert_eq!(r[0], "* SEARCH 1");

    // A mailbox made again under the old name is another mailbox.
    let r = c.ok("CREATE Work");
    assert_ne!(objectid(r.last().unwrap(), "MAILBOXID"), work);
    // The id of an expunged message is not handed to the next one: the
    // newest (the moved one) is gone from every mailbox now.
    c.ok("STORE 1:2 +FLAGS (\\Deleted)");
    c.ok("EXPUNGE");
    c.ok("SELECT INBOX");
    let r = c.ok("FETCH 1:* (EMAILID)");
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!(objectid(&r[0], "EMAILID"), e1);
    let e3 = s.deliver(bob, &simple("three", "3"));
    c.ok("NOOP");
    let r = c.ok(&format!("UID FETCH {e3} (EMAILID)"));
    let e3 = objectid(grep(&r, "* 2 FETCH")[0], "EMAILID");
    assert!(e3 != e1 && e3 != e2, "{e3} reused");
}

#[test]
fn malformed_object_ids_are_bad() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let mut c = s.login("bob@localhost");
    c.ok("SELECT INBOX");
    for bad in [
        "SEARCH EMAILID".to_owned(),
        "SEARCH EMAILID (M1)".to_owned(),
        "SEARCH THREADID a.b".to_owned(),
        format!("SEARCH EMAILID {}", "M".repeat(256)),
    ] {
        let r = c.cmd(&bad);
        assert!(r.last().unwrap().contains(" BAD "), "{bad}: {r:?}");
    }
    c.ok("NOOP");
}

const SCRIPT: &str = r#"
import sys, imapclient
port = int(sys.argv[1]); user = sys.argv[2]; pw = sys.argv[3]
c = imapclient.IMAPClient('127.0.0.1', port=port, ssl=False)
c.login(user, pw)
assert b'OBJECTID' in c.capabilities()
c.create_folder('ObjA')
st = c.folder_status('ObjA', ['MAILBOXID', 'MESSAGES'])
mbid = st[b'MAILBOXID']
assert isinstance(mbid, tuple) and len(mbid) == 1, st
c.append('ObjA', b'Subject: x\r\n\r\nbody\r\n')
c.append('ObjA', b'Subject: y\r\n\r\nbody\r\n')
c.select_folder('ObjA')
f = c.fetch([1, 2], ['EMAILID', 'THREADID'])
e1 = f[1][b'EMAILID']; e2 = f[2][b'EMAILID']
assert e1 != e2, f
assert f[1][b'THREADID'] is None, f
assert c.search(['EMAILID', e2[0]]) == [2]
c.create_folder('ObjB')
c.move([1], 'ObjB')
c.close_folder()
c.rename_folder('ObjA', 'ObjC')
assert c.folder_status('ObjC', ['MAILBOXID'])[b'MAILBOXID'] == mbid
c.select_folder('ObjB')
assert c.fetch([1], ['EMAILID'])[1][b'EMAILID'] == e1
c.logout()
# The ENABLE-chosen modes, as imapclient's enable() reports them.
c = imapclient.IMAPClient('127.0.0.1', port=port, ssl=False)
c.login(user, pw)
got = c.enable('IMAP4rev2', 'UTF8=ACCEPT', 'UIDONLY', 'X-UNKNOWN')
assert got == [b'IMAP4rev2', b'UTF8=ACCEPT', b'UIDONLY'], got
c.logout()
print('ok')
"#;

#[test]
fn python_imapclient_reads_object_ids_and_enables_the_modes() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    python_client_ok(&s, SCRIPT, "imapclient");
}
