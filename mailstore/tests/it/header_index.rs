//! Header SEARCH through schema v14's `header_index` (issue 21): the same
//! answers as the scan of `message_headers` it replaced, on tricky headers
//! (encoded-words, folding, case, repeated fields, address comments), kept
//! right through COPY, MOVE, EXPUNGE and DELETE, and built by the
//! migration for messages stored before it.

use mailstore::{FlagOp, Flags, MailboxId, Query, Store, UserId};

use crate::util::{deliver, simple, store, user};

/// Messages whose headers are hard to search (uid order).
const TRICKY: &[&str] = &[
    // 1: encoded-word subject and sender name.
    "From: =?UTF-8?Q?Zo=C3=AB_Smith?= <zoe@Example.ORG>\r\nTo: a@x\r\n\
     Subject: =?UTF-8?B?Q2Fmw6kgcmVwb3J0?=\r\n\r\nbody\r\n",
    // 2: a folded subject, mixed case.
    "From: Bob <BOB@example.org>\r\nTo: a@x, Carol <carol@example.net>\r\n\
     Subject: A Long\r\n Folded SUBJECT\r\n\tline\r\n\r\nbody\r\n",
    // 3: two Subject fields, a Cc with a comment inside the address.
    "From: dave@example.org\r\nCc: <eve (work) @ (dept) example.com>\r\n\
     Subject: first subject\r\nSubject: Second Topic\r\nList-Id: <dev.lists.example.org>\r\n\r\nbody\r\n",
    // 4: no Subject, an X- field (not indexed) and a Reply-To.
    "From: frank@example.org\r\nReply-To: Team <team@example.org>\r\n\
     X-Custom: Topic of interest\r\n\r\nbody\r\n",
    // 5: empty Subject, bcc, Message-ID.
    "From: grace@example.org\r\nBcc: hidden@example.org\r\nSubject:\r\n\
     Message-ID: <m5@example.org>\r\n\r\nbody\r\n",
];

/// (field, needle) pairs asked of every mailbox.
const ASKS: &[(&str, &str)] = &[
    ("subject", "café"),
    ("SUBJECT", "CAFÉ"),
    ("Subject", "report"),
    ("subject", "long folded subject"),
    ("subject", "subject\tline"),
    ("subject", "long  folded"),
    ("subject", "long folded"),
    ("subject", "second topic"),
    ("subject", "first"),
    ("subject", ""),
    ("subject", "t"),
    (" Subject ", "TOPIC"),
    ("from", "zoë"),
    ("from", "ZOE@EXAMPLE.org"),
    ("from", "bob@"),
    ("to", "carol"),
    ("cc", "eve@example.com"),
    ("cc", "(work)"),
    ("bcc", "hidden"),
    ("reply-to", "team"),
    ("list-id", "dev.lists"),
    ("message-id", "<m5@"),
    ("sender", ""),
    ("x-custom", "topic"),
    ("x-custom", ""),
    ("date", ""),
];

/// The answer of the scan SEARCH used before v14: `message_headers`,
/// SQLite's `lower()` on both sides.
fn scan(db: &std::path::Path, mb: MailboxId, field: &str, needle: &str) -> Vec<u32> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut st = c
        .prepare(
            "SELECT e.uid FROM entries e WHERE e.mailbox_id = ?1 AND EXISTS (
               SELECT 1 FROM message_headers h WHERE h.message_id = e.message_id
               AND h.name = lower(?2) AND instr(lower(h.value), lower(?3)) > 0)
             ORDER BY e.uid",
        )
        .unwrap();
    st.query_map(rusqlite::params![mb, field.trim(), needle], |r| r.get(0))
        .unwrap()
        .map(|u| u.unwrap())
        .collect()
}

fn search(s: &Store, mb: MailboxId, field: &str, needle: &str) -> Vec<u32> {
    let q = Query::Header(field.into(), needle.into());
    s.read_sync(move |r| r.search(mb, &q)).unwrap()
}

fn inbox(s: &Store, a: UserId) -> MailboxId {
    s.read_sync(move |r| r.mailbox(a, "INBOX"))
        .unwrap()
        .unwrap()
        .id
}

/// Rows of `header_index` for a mailbox.
fn index_rows(db: &std::path::Path, mb: MailboxId) -> i64 {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row(
        "SELECT count(*) FROM header_index WHERE mailbox_id = ?1",
        [mb],
        |r| r.get(0),
    )
    .unwrap()
}

/// Every ask answered through the index equals the old scan, in one
/// statement and in the Rust evaluation of a large query.
fn assert_same_as_scan(s: &Store, db: &std::path::Path, mb: MailboxId) {
    for (field, needle) in ASKS {
        let want = scan(db, mb, field, needle);
        assert_eq!(search(s, mb, field, needle), want, "{field}: {needle:?}");
        // 40 criteria: past the one-statement limit, evaluated in Rust.
        let mut many: Vec<Query> = (0..39)
            .map(|i| Query::Header("subject".into(), format!("no such {i}")))
            .collect();
        many.push(Query::Header((*field).into(), (*needle).into()));
        let q = Query::Any(many);
        assert_eq!(
            s.read_sync(move |r| r.search(mb, &q)).unwrap(),
            want,
            "Rust evaluation, {field}: {needle:?}"
        );
    }
}

#[test]
fn tricky_headers_answer_as_the_scan_did() {
    let (d, s) = store();
    let db = d.path().join("mail.db");
    let a = user(&s, "a@x");
    for m in TRICKY {
        deliver(&s, m.as_bytes().to_vec(), &[a]);
    }
    let mb = inbox(&s, a);
    // Not a vacuous comparison: the index finds what the cases are about.
    assert_eq!(search(&s, mb, "subject", "café"), [1]);
    assert_eq!(search(&s, mb, "subject", "long folded subject"), [2]);
    assert_eq!(search(&s, mb, "subject", "second topic"), [3]);
    assert_eq!(search(&s, mb, "subject", ""), [1, 2, 3, 5]);
    assert_eq!(search(&s, mb, "cc", "eve@example.com"), [3]);
    assert_eq!(search(&s, mb, "from", "zoë"), [1]);
    assert_eq!(search(&s, mb, "x-custom", "topic"), [4]);
    assert_same_as_scan(&s, &db, mb);
    // Combined with criteria on messages' columns and flags.
    s.write_sync(move |tx| {
        tx.store_flags(mb, &[2, 3], FlagOp::Add, &Flags::system(Flags::SEEN), None)
    })
    .unwrap();
    let q = Query::And(vec![
        Query::Header("subject".into(), "t".into()),
        Query::Flag(mailstore::SystemFlag::Seen, false),
        Query::Smaller(1_000_000),
    ]);
    assert_eq!(s.read_sync(move |r| r.search(mb, &q)).unwrap(), [1]);
    let q = Query::Not(Box::new(Query::Header("subject".into(), "".into())));
    assert_eq!(s.read_sync(move |r| r.search(mb, &q)).unwrap(), [4]);
}

#[test]
fn copy_move_expunge_and_delete_keep_the_index() {
    let (d, s) = store();
    let db = d.path().join("mail.db");
    let a = user(&s, "a@x");
    for i in 0..4 {
        deliver(&s, simple(&format!("note {i}"), "x"), &[a]);
    }
    let mb = inbox(&s, a);
    let other = s
        .write_sync(move |tx| tx.create_mailbox(a, "Other", None))
        .unwrap();
    s.write_sync(move |tx| tx.copy(mb, &[1, 2], other)).unwrap();
    s.write_sync(move |tx| tx.move_messages(mb, &[3], other))
        .unwrap();
    assert_eq!(search(&s, other, "subject", "note"), [1, 2, 3]);
    assert_eq!(search(&s, other, "subject", "note 2"), [3]);
    assert_eq!(search(&s, mb, "subject", "note"), [1, 2, 4]);
    s.write_sync(move |tx| {
        tx.store_flags(mb, &[1], FlagOp::Add, &Flags::system(Flags::DELETED), None)?;
        tx.expunge(mb, None)
    })
    .unwrap();
    assert_eq!(search(&s, mb, "subject", "note"), [2, 4]);
    assert_eq!(search(&s, other, "subject", "note 0"), [1]);
    assert_same_as_scan(&s, &db, mb);
    assert_same_as_scan(&s, &db, other);
    // util::simple has From, To, Subject and Message-ID: four rows each.
    assert_eq!(index_rows(&db, mb), 2 * 4);
    assert_eq!(index_rows(&db, other), 3 * 4);
    s.write_sync(move |tx| tx.delete_mailbox(other)).unwrap();
    assert_eq!(index_rows(&db, other), 0);
}

#[test]
fn messages_stored_before_v14_are_indexed_by_the_migration() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let (a, mb) = {
        let s = Store::open(&db).unwrap();
        let a = user(&s, "a@x");
        for m in TRICKY {
            deliver(&s, m.as_bytes().to_vec(), &[a]);
        }
        let mb = inbox(&s, a);
        s.shutdown();
        (a, mb)
    };
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch(&format!(
            "{} PRAGMA user_version = 13;",
            crate::open::UNDO_V14
        ))
        .unwrap();
    }
    let s = Store::open(&db).unwrap();
    assert!(index_rows(&db, mb) > 0);
    assert_eq!(search(&s, mb, "subject", "café"), [1]);
    assert_same_as_scan(&s, &db, mb);
    // And new mail after the migration is indexed by its trigger.
    deliver(&s, simple("after the migration", "x"), &[a]);
    assert_eq!(search(&s, mb, "subject", "MIGRATION"), [6]);
}
