//! The RFCs' own example scripts as test data, run by [`Filter::plan`]
//! over a real store, with the outcomes the RFCs describe.
#![allow(clippy::unwrap_used)]

use mailsieve::{Delivery, Filter, Plan};
use mailstore::{Flags, Store};

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    user: mailstore::UserId,
    filter: Filter,
}

fn fixture(script: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("m.db")).unwrap();
    let user = store
        .write_sync(|tx| tx.create_user("me@example.com", "$argon2id$dummy"))
        .unwrap();
    mailsieve::compile(script.as_bytes()).unwrap();
    let text = script.as_bytes().to_vec();
    store
        .write_sync(move |tx| {
            tx.put_sieve_script(user, "main", &text)?;
            tx.activate_sieve_script(user, Some("main"))
        })
        .unwrap();
    Fixture {
        _dir: dir,
        store,
        user,
        filter: Filter::new("mx.example.com"),
    }
}

impl Fixture {
    fn plan(&self, sender: &str, message: &str) -> Plan {
        let d = Delivery {
            user: self.user,
            user_address: "me@example.com".into(),
            rcpt: "me@example.com".into(),
            sender: sender.into(),
        };
        let raw = message.replace('\n', "\r\n").into_bytes();
        self.store
            .read_sync(|r| Ok(self.filter.plan(r, &raw, &d)))
            .unwrap()
    }
}

/// The mailboxes a plan files the original into.
fn boxes(p: &Plan) -> Vec<String> {
    assert!(p.error.is_none(), "{:?}", p.error);
    p.filings.iter().map(|(_, f)| f.mailbox.clone()).collect()
}

/// RFC 5228 §9, the example script (its spam tests abridged to the two
/// subject patterns).
#[test]
fn rfc5228_section_9() {
    let f = fixture(
        r#"require "fileinto";
if header :is "Sender" "owner-ietf-mtg@ietf.org" {
    fileinto "ietf";
} elsif address :DOMAIN :is ["From", "To"] "example.com" {
    keep;
} elsif anyof (not address :all :contains ["To", "Cc", "Bcc"] "me@example.com",
               header :matches "subject" ["*make*money*fast*", "*university*dipl*mas*"]) {
    fileinto "spam";
} else {
    fileinto "personal";
}
"#,
    );
    let ietf =
        "Sender: owner-ietf-mtg@ietf.org\nFrom: a@ietf.org\nTo: me@example.com\nSubject: x\n\nx\n";
    assert_eq!(boxes(&f.plan("a@ietf.org", ietf)), ["ietf"]);
    let local = "From: boss@example.com\nTo: me@example.com\nSubject: x\n\nx\n";
    assert_eq!(boxes(&f.plan("boss@example.com", local)), ["INBOX"]);
    let spam = "From: x@spam.test\nTo: me@other.test\nSubject: hi\n\nx\n";
    assert_eq!(boxes(&f.plan("x@spam.test", spam)), ["spam"]);
    let money = "From: x@spam.test\nTo: me@example.net\nCc: me@example.com\nSubject: make big money fast\n\nx\n";
    assert_eq!(boxes(&f.plan("x@spam.test", money)), ["spam"]);
    // To the user (in Cc: the domain test looks at From and To only).
    let friend =
        "From: pal@friends.test\nTo: Me <me@home.test>\nCc: me@example.com\nSubject: dinner\n\nx\n";
    assert_eq!(boxes(&f.plan("pal@friends.test", friend)), ["personal"]);
}

/// RFC 5229 §3 (match variables): list mail filed by its List-ID.
#[test]
fn rfc5229_match_variables() {
    let f = fixture(
        r#"require ["fileinto", "variables"];
if header :matches "List-ID" "*<*@*" {
    fileinto "INBOX.lists.${2}"; stop;
}
"#,
    );
    let m = "From: list-sales@example.org\nTo: me@example.com\nList-ID: Sales <sales@example.org>\nSubject: s\n\nx\n";
    assert_eq!(
        boxes(&f.plan("list-sales@example.org", m)),
        ["INBOX.lists.sales"]
    );
}

/// RFC 5232 §6's example: flags set by the script go with keep.
#[test]
fn rfc5232_flags_go_with_keep() {
    let f = fixture(
        r#"require ["imap4flags", "relational", "comparator-i;ascii-numeric"];
if header :value "ge" :comparator "i;ascii-numeric" "X-Priority" "3" {
    addflag "\\Flagged";
}
addflag "$Reviewed";
keep;
"#,
    );
    let m = "From: a@b.test\nTo: me@example.com\nX-Priority: 4\nSubject: s\n\nx\n";
    let p = f.plan("a@b.test", m);
    assert_eq!(boxes(&p), ["INBOX"]);
    assert_eq!(p.filings[0].1.flags.system, Flags::FLAGGED);
    assert_eq!(p.filings[0].1.flags.keywords, ["$Reviewed"]);
    let m = "From: a@b.test\nTo: me@example.com\nX-Priority: 1\nSubject: s\n\nx\n";
    let p = f.plan("a@b.test", m);
    assert_eq!(p.filings[0].1.flags.system, 0);
}

/// RFC 5230 §4.1's example: a reply to mail addressed to the user, none
/// to `<>` or to list mail; the reply goes to the sender.
#[test]
fn rfc5230_vacation() {
    let f = fixture(
        r#"require "vacation";
if header :contains "subject" "cyrus" {
    vacation "I'm out -- send mail to cyrus-bugs";
} else {
    vacation "I'm out -- call me at 321-1234";
}
"#,
    );
    let m = "From: a@b.test\nTo: me@example.com\nSubject: cyrus question\nMessage-ID: <q@b.test>\n\nx\n";
    let p = f.plan("a@b.test", m);
    assert_eq!(boxes(&p), ["INBOX"], "vacation keeps the message");
    assert_eq!(p.sends.len(), 1, "{p:?}");
    assert!(p.sends[0].vacation);
    assert_eq!(p.sends[0].to, "a@b.test");
    let reply = String::from_utf8_lossy(&p.created[p.sends[0].message.unwrap()]).into_owned();
    assert!(reply.contains("send mail to cyrus-bugs"), "{reply}");
    assert!(p.remember.iter().any(|(id, _)| id.starts_with("_v")));
    assert!(f.plan("", m).sends.is_empty(), "never to <>");
    let list = "From: a@b.test\nTo: me@example.com\nList-Id: <l.b.test>\nSubject: s\n\nx\n";
    assert!(f.plan("a@b.test", list).sends.is_empty(), "never to lists");
    let bcc = "From: a@b.test\nTo: other@b.test\nSubject: s\n\nx\n";
    assert!(
        f.plan("a@b.test", bcc).sends.is_empty(),
        "not addressed to me"
    );
}

/// RFC 5429 §2.2's example: reject with a reason, nothing kept.
#[test]
fn rfc5429_reject() {
    let f = fixture(
        r#"require ["reject"];
if size :over 100K {
    reject text:
Your message is too big.  If you want to send me a big attachment,
put it on a public web site and send me a URL.
.
;
}
"#,
    );
    let big = format!(
        "From: a@b.test\nTo: me@example.com\nSubject: s\n\n{}\n",
        "x".repeat(120 * 1024)
    );
    let p = f.plan("a@b.test", &big);
    assert!(p.reject.as_deref().unwrap().contains("too big"), "{p:?}");
    let small = "From: a@b.test\nTo: me@example.com\nSubject: s\n\nx\n";
    assert!(f.plan("a@b.test", small).reject.is_none());
}

/// RFC 6609 include: personal scripts are included; recursion is bounded
/// and ends in an error (the message is kept).
#[test]
fn rfc6609_include_and_its_bound() {
    let f = fixture("require [\"include\"];\ninclude :personal \"lists\";\n");
    let user = f.user;
    f.store
        .write_sync(move |tx| {
            tx.put_sieve_script(
                user,
                "lists",
                b"require [\"fileinto\"];\nif exists \"List-Id\" { fileinto \"Lists\"; }\n",
            )
        })
        .unwrap();
    let m = "From: a@b.test\nTo: me@example.com\nList-Id: <x.b.test>\nSubject: s\n\nx\n";
    assert_eq!(boxes(&f.plan("a@b.test", m)), ["Lists"]);
    // "lists" now includes itself.
    f.store
        .write_sync(move |tx| {
            tx.put_sieve_script(
                user,
                "lists",
                b"require [\"include\"];\ninclude :personal \"lists\";\n",
            )
        })
        .unwrap();
    let p = f.plan("a@b.test", m);
    assert!(p.error.is_some(), "{p:?}");
    assert_eq!(p.filings.len(), 1);
    assert_eq!(p.filings[0].1.mailbox, "INBOX");
}

/// RFC 5228 §4.2 redirect and RFC 3894 :copy.
#[test]
fn redirect_and_copy() {
    let f = fixture("require [\"copy\"];\nredirect :copy \"carol@example.com\";\nredirect \"far@outside.test\";\n");
    let m = "From: a@b.test\nTo: me@example.com\nSubject: s\n\nx\n";
    let p = f.plan("a@b.test", m);
    assert!(p.error.is_none(), "{p:?}");
    let to: Vec<&str> = p.sends.iter().map(|s| s.to.as_str()).collect();
    assert_eq!(to, ["carol@example.com", "far@outside.test"], "{p:?}");
    assert!(p.sends.iter().all(|s| !s.vacation && s.message.is_none()));
    assert!(
        p.filings.is_empty(),
        "redirect cancels the implicit keep: {p:?}"
    );
}
