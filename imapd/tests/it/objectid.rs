//! OBJECTID (RFC 8474): MAILBOXID through CREATE, SELECT, STATUS and
//! RENAME; EMAILID through delivery, COPY and MOVE, and as a search key;
//! THREADID by Message-ID/In-Reply-To/References through delivery,
//! APPEND, COPY, MOVE and RENAME, and as a search key. Also driven by Python's imapclient, which parses the
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
    assert_ne!(objectid(&r[0], "THREADID"), objectid(&r[1], "THREADID"));
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

/// A message with these ids (`refs` is the References field, if any).
fn linked(subject: &str, id: &str, in_reply_to: Option<&str>, refs: Option<&str>) -> Vec<u8> {
    let mut m = format!(
        "From: Alice <alice@example.org>\r\nTo: bob@localhost\r\nSubject: {subject}\r\n\
Date: Mon, 13 Nov 2023 10:00:00 +0000\r\nMessage-ID: <{id}>\r\n"
    );
    if let Some(p) = in_reply_to {
        m += &format!("In-Reply-To: <{p}>\r\n");
    }
    if let Some(r) = refs {
        m += &format!("References: {r}\r\n");
    }
    m += "\r\nbody\r\n";
    m.into_bytes()
}

#[test]
fn threads_follow_references_and_survive_copy_move_rename() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    // 1 root; 2 replies by In-Reply-To; 3 unrelated; 4 replies to 2 by
    // References only (with the subject of 3: subjects do not thread);
    // 5 replies to a message not yet here (7); 6 another unrelated one.
    s.deliver(bob, &linked("root", "r@x", None, None));
    s.deliver(bob, &linked("Re: root", "a@x", Some("r@x"), None));
    s.deliver(bob, &linked("other", "o@x", None, None));
    s.deliver(bob, &linked("other", "b@x", None, Some("<r@x>\r\n <a@x>")));
    s.deliver(
        bob,
        &linked("late child", "c@x", Some("p@x"), Some("<p@x>")),
    );
    s.deliver(bob, &linked("solo", "s@x", None, None));
    let mut c = s.login("bob@localhost");
    c.ok("SELECT INBOX");
    let r = c.ok("FETCH 1:6 (THREADID)");
    let t: Vec<String> = r[..6].iter().map(|l| objectid(l, "THREADID")).collect();
    assert_eq!(t[0], t[1], "{r:?}");
    assert_eq!(t[0], t[3], "{r:?}");
    assert_ne!(t[0], t[2], "{r:?}");
    assert_ne!(t[2], t[5], "{r:?}");
    assert_ne!(t[4], t[0], "{r:?}");
    // The parent arriving after its child (APPEND this time) joins it.
    let m = linked("late parent", "p@x", None, None);
    c.send(format!("a APPEND INBOX {{{}+}}\r\n", m.len()).as_bytes());
    c.send(&m);
    c.send(b"\r\n");
    let r = c.until("a");
    assert!(r.last().unwrap().starts_with("a OK"), "{r:?}");
    let r = c.ok("FETCH 7 (THREADID EMAILID)");
    assert_eq!(objectid(&r[0], "THREADID"), t[4], "{r:?}");

    let r = c.ok(&format!("SEARCH THREADID {}", t[0]));
    assert_eq!(r[0], "* SEARCH 1 2 4");
    let r = c.ok(&format!("UID SEARCH THREADID {} NOT UID 5", t[4]));
    assert_eq!(r[0], "* SEARCH 7");
    // Not ours (an EMAILID, an unknown thread): nothing, not an error.
    for other in ["M1", "T999999", "X1"] {
        let r = c.ok(&format!("SEARCH THREADID {other}"));
        assert_eq!(r[0], "* SEARCH", "{other}");
    }
    // Many criteria (evaluated in Rust, not one SQL statement) agree.
    let many = vec![format!("THREADID {}", t[0]); 40].join(" ");
    let r = c.ok(&format!("SEARCH {many}"));
    assert_eq!(r[0], "* SEARCH 1 2 4");

    c.ok("CREATE Work");
    c.ok("COPY 1 Work");
    c.ok("MOVE 4 Work");
    c.ok("RENAME Work Play");
    c.ok("SELECT Play");
    let r = c.ok("FETCH 1:2 (THREADID)");
    assert_eq!(objectid(&r[0], "THREADID"), t[0], "{r:?}");
    assert_eq!(objectid(&r[1], "THREADID"), t[0], "{r:?}");
    let r = c.ok(&format!("SEARCH THREADID {}", t[0]));
    assert_eq!(r[0], "* SEARCH 1 2");
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
assert f[1][b'THREADID'] != f[2][b'THREADID'], f
c.append('ObjA', b'Subject: Re: y\r\nIn-Reply-To: <y@x>\r\nMessage-ID: <ry@x>\r\n\r\nbody\r\n')
c.append('ObjA', b'Subject: y again\r\nMessage-ID: <y@x>\r\n\r\nbody\r\n')
f = c.fetch([3, 4], ['THREADID'])
assert f[3][b'THREADID'] == f[4][b'THREADID'] and len(f[3][b'THREADID']) == 1, f
assert c.search(['THREADID', f[3][b'THREADID'][0]]) == [3, 4]
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
