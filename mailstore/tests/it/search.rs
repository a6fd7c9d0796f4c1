//! SEARCH: every Query kind, substrings in qp/base64 bodies, combinators.

//! Runs on SQLite (`--test it`) and unchanged on PostgreSQL (`--test pg`),
//! so both backends give the same answers.

use mailstore::{FlagOp, Flags, MailboxId, Query, Store, SystemFlag};

use crate::mime::NESTED;
use crate::util::{deliver, simple, store, user, Db};

const NOV23: i64 = 1_795_392_000; // 2026-11-23 00:00 UTC
const NOV24: i64 = 1_795_478_400;
const SEP21: i64 = 1_789_948_800; // day of util::deliver's internal date

/// uid 1: NESTED, uid 2: simple "hello", uid 3: appended, seen + $Todo,
/// internal date in 2023, no Date header.
fn setup() -> (Db, Store, MailboxId) {
    let (d, s) = store();
    let a = user(&s, "a@x");
    deliver(&s, NESTED.as_bytes().to_vec(), &[a]);
    deliver(&s, simple("hello", "short body ab"), &[a]);
    let mb = s
        .read_sync(move |r| r.mailbox(a, "INBOX"))
        .unwrap()
        .unwrap()
        .id;
    let flags = Flags {
        system: Flags::SEEN,
        keywords: vec!["$Todo".into()],
    };
    s.write_sync(move |tx| {
        tx.append(
            mb,
            b"Subject: third\r\nX-Mailer: MiniTest 1.0\r\n\r\nlast one\r\n",
            &flags,
            1_700_000_000,
        )
    })
    .unwrap();
    (d, s, mb)
}

fn run(s: &Store, mb: MailboxId, q: Query) -> Vec<u32> {
    s.read_sync(move |r| r.search(mb, &q)).unwrap()
}

fn b(q: Query) -> Box<Query> {
    Box::new(q)
}

#[test]
fn all_uids_flags_keywords() {
    let (_d, s, mb) = setup();
    assert_eq!(run(&s, mb, Query::All), [1, 2, 3]);
    assert_eq!(run(&s, mb, Query::Uids(vec![(2, 2)])), [2]);
    assert_eq!(run(&s, mb, Query::Uids(vec![(3, 1)])), [1, 2, 3]);
    let many: Vec<(u32, u32)> = (0..40).map(|i| (i * 10 + 3, i * 10 + 3)).collect();
    assert_eq!(
        run(&s, mb, Query::Uids(many)),
        [3],
        "JSON path for many ranges"
    );
    assert_eq!(run(&s, mb, Query::Uids(vec![])), Vec::<u32>::new());
    assert_eq!(run(&s, mb, Query::Flag(SystemFlag::Seen, true)), [3]);
    assert_eq!(run(&s, mb, Query::Flag(SystemFlag::Seen, false)), [1, 2]);
    assert_eq!(run(&s, mb, Query::Keyword("$todo".into(), true)), [3]);
    assert_eq!(
        run(&s, mb, Query::Keyword("$Tod".into(), true)),
        Vec::<u32>::new()
    );
    assert_eq!(run(&s, mb, Query::Keyword("$Todo".into(), false)), [1, 2]);
}

#[test]
fn header_substrings_case_insensitive_and_presence() {
    let (_d, s, mb) = setup();
    assert_eq!(
        run(&s, mb, Query::Header("subject".into(), "HELL".into())),
        [2]
    );
    assert_eq!(
        run(&s, mb, Query::Header("Subject".into(), "café".into())),
        [1],
        "decoded encoded-word"
    );
    assert_eq!(
        run(&s, mb, Query::Header("X-Mailer".into(), "".into())),
        [3]
    );
    assert_eq!(
        run(&s, mb, Query::Header("from".into(), "alice@EXAMPLE".into())),
        [1, 2]
    );
    assert_eq!(
        run(&s, mb, Query::Header("to".into(), "c@y.org".into())),
        [1]
    );
}

#[test]
fn body_and_text_find_decoded_qp_and_base64() {
    let (_d, s, mb) = setup();
    assert_eq!(run(&s, mb, Query::Body("QPSECRET".into())), [1]);
    assert_eq!(run(&s, mb, Query::Body("base64hiddentext".into())), [1]);
    assert_eq!(
        run(&s, mb, Query::Body("café au".into())),
        [1],
        "qp decoded as utf-8"
    );
    assert_eq!(
        run(&s, mb, Query::Body("embedded body".into())),
        [1],
        "message/rfc822 content"
    );
    assert_eq!(
        run(&s, mb, Query::Body("PHA+YmFz".into())),
        Vec::<u32>::new(),
        "not the encoded form"
    );
    assert_eq!(
        run(&s, mb, Query::Body("hello".into())),
        Vec::<u32>::new(),
        "subject is not body"
    );
    assert_eq!(run(&s, mb, Query::Text("hello".into())), [2]);
    assert_eq!(run(&s, mb, Query::Text("minitest".into())), [3]);
    // Short needles (below the trigram length) still work.
    assert_eq!(run(&s, mb, Query::Body("AB".into())), [2]);
    assert_eq!(run(&s, mb, Query::Text("x-".into())), [3]);
    assert_eq!(
        run(&s, mb, Query::Body("\"quoted\"".into())),
        Vec::<u32>::new()
    );
    assert_eq!(run(&s, mb, Query::Body(String::new())), [1, 2, 3]);
}

#[test]
fn sizes_dates_and_modseq() {
    let (_d, s, mb) = setup();
    let sizes: Vec<u64> = s
        .read_sync(move |r| r.messages(mb, &[1, 2, 3]))
        .unwrap()
        .iter()
        .map(|m| m.size)
        .collect();
    assert_eq!(run(&s, mb, Query::Larger(sizes[1])), [1]);
    assert_eq!(run(&s, mb, Query::Smaller(sizes[1])), [3]);
    assert_eq!(run(&s, mb, Query::Before(SEP21)), [3]);
    assert_eq!(run(&s, mb, Query::On(SEP21)), [1, 2]);
    assert_eq!(run(&s, mb, Query::Since(SEP21 + 86_400)), Vec::<u32>::new());
    // Date: -0500 at 23:30 on the 23rd is the 23rd, disregarding the zone.
    assert_eq!(run(&s, mb, Query::SentOn(NOV23)), [1]);
    assert_eq!(run(&s, mb, Query::SentOn(NOV24)), [2]);
    assert_eq!(
        run(&s, mb, Query::SentBefore(NOV24)),
        [1, 3],
        "no Date: uses internal date"
    );
    assert_eq!(run(&s, mb, Query::SentSince(NOV24)), [2]);
    let hms = s.read_sync(move |r| r.status(mb)).unwrap().highestmodseq;
    s.write_sync(move |tx| {
        tx.store_flags(mb, &[1], FlagOp::Add, &Flags::system(Flags::FLAGGED), None)
    })
    .unwrap();
    assert_eq!(run(&s, mb, Query::ModSeq(hms + 1)), [1]);
    assert_eq!(run(&s, mb, Query::ModSeq(0)), [1, 2, 3]);
}

#[test]
fn not_and_or_combine() {
    let (_d, s, mb) = setup();
    assert_eq!(
        run(&s, mb, Query::Not(b(Query::Flag(SystemFlag::Seen, true)))),
        [1, 2]
    );
    assert_eq!(
        run(
            &s,
            mb,
            Query::And(vec![
                Query::Flag(SystemFlag::Seen, false),
                Query::Text("hello".into())
            ])
        ),
        [2]
    );
    assert_eq!(run(&s, mb, Query::And(vec![])), [1, 2, 3]);
    assert_eq!(
        run(
            &s,
            mb,
            Query::Or(
                b(Query::Uids(vec![(1, 1)])),
                b(Query::Keyword("$todo".into(), true))
            )
        ),
        [1, 3]
    );
    let mut deep = Query::All;
    for _ in 0..100 {
        deep = Query::Not(Box::new(deep));
    }
    let err = s.read_sync(move |r| r.search(mb, &deep));
    assert!(matches!(err, Err(mailstore::StoreError::Invalid(_))));
}

#[test]
fn expunged_messages_leave_the_index() {
    let (_d, s, mb) = setup();
    s.write_sync(move |tx| {
        tx.store_flags(mb, &[1], FlagOp::Add, &Flags::system(Flags::DELETED), None)?;
        tx.expunge(mb, None)
    })
    .unwrap();
    assert_eq!(
        run(&s, mb, Query::Body("qpsecret".into())),
        Vec::<u32>::new()
    );
    let left: i64 = s
        .read_sync(|r| r.stored_messages().map(|n| n as i64))
        .unwrap();
    assert_eq!(left, 2);
}

#[test]
fn body_search_decodes_declared_charset() {
    let (_d, s) = store();
    let a = user(&s, "a@x");
    let raw = b"Subject: latin\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\r\nun caf=E9 cr=E8me\r\n"
        .to_vec();
    deliver(&s, raw, &[a]);
    let raw8 =
        b"Subject: eight\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nna\xefve text\r\n"
            .to_vec();
    deliver(&s, raw8, &[a]);
    let mb = s
        .read_sync(move |r| r.mailbox(a, "INBOX"))
        .unwrap()
        .unwrap()
        .id;
    assert_eq!(
        run(&s, mb, Query::Body("CAFÉ CRÈME".into())),
        [1],
        "unicode case folding in FTS"
    );
    assert_eq!(run(&s, mb, Query::Body("naïve".into())), [2]);
}

/// A mailbox of the given (subject, body) messages, UIDs 1.. in order.
fn mailbox_of(msgs: &[(&str, &str)]) -> (Db, Store, MailboxId) {
    let (d, s) = store();
    let a = user(&s, "a@x");
    for (subject, body) in msgs {
        let raw = format!(
            "Subject: {subject}\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
        );
        deliver(&s, raw.into_bytes(), &[a]);
    }
    let mb = s
        .read_sync(move |r| r.mailbox(a, "INBOX"))
        .unwrap()
        .unwrap()
        .id;
    (d, s, mb)
}

#[test]
fn like_metacharacters_in_needles_are_literal() {
    let (_d, s, mb) = mailbox_of(&[
        ("one", "we are 100% sure"),
        ("two", "snake_case names"),
        ("three", "a back\\slash here"),
        ("four", "plain 100 percent, snakeXcase, backXslash"),
    ]);
    assert_eq!(run(&s, mb, Query::Body("%".into())), [1]);
    assert_eq!(run(&s, mb, Query::Body("100%".into())), [1]);
    assert_eq!(run(&s, mb, Query::Body("0% s".into())), [1]);
    assert_eq!(run(&s, mb, Query::Body("%%".into())), Vec::<u32>::new());
    assert_eq!(run(&s, mb, Query::Body("_".into())), [2]);
    assert_eq!(run(&s, mb, Query::Body("snake_case".into())), [2]);
    assert_eq!(run(&s, mb, Query::Body("e_c".into())), [2]);
    assert_eq!(run(&s, mb, Query::Body("\\".into())), [3]);
    assert_eq!(run(&s, mb, Query::Body("back\\slash".into())), [3]);
    assert_eq!(run(&s, mb, Query::Body("k\\s".into())), [3]);
    assert_eq!(run(&s, mb, Query::Text("\\%".into())), Vec::<u32>::new());
    assert_eq!(run(&s, mb, Query::Text("BACKxSLASH".into())), [4]);
}

#[test]
fn short_needles_match_exactly() {
    let (_d, s, mb) = mailbox_of(&[("alpha", "xy zz"), ("beta", "Q"), ("gamma", "nothing here")]);
    assert_eq!(run(&s, mb, Query::Body("q".into())), [2]);
    assert_eq!(run(&s, mb, Query::Body("XY".into())), [1]);
    assert_eq!(run(&s, mb, Query::Body("y z".into())), [1]);
    assert_eq!(run(&s, mb, Query::Body("yz".into())), Vec::<u32>::new());
    assert_eq!(run(&s, mb, Query::Text("AM".into())), [3]);
    assert_eq!(run(&s, mb, Query::Body("am".into())), Vec::<u32>::new());
    assert_eq!(run(&s, mb, Query::Body("h".into())), [3]);
}

#[test]
fn non_ascii_needles_fold_unicode_case() {
    let (_d, s, mb) = mailbox_of(&[
        ("Grüße aus Köln", "Viele Grüße, Ihr Team"),
        ("Betreff", "ÄRGER im Büro"),
        ("Ärger", "ärger klein geschrieben"),
        ("ascii", "arger ohne Umlaut, GRUSSE"),
        ("Ελληνικά", "ΚΑΛΗΜΕΡΑ κόσμε"),
    ]);
    assert_eq!(run(&s, mb, Query::Body("ärger".into())), [2, 3]);
    assert_eq!(run(&s, mb, Query::Body("ÄRGER".into())), [2, 3]);
    assert_eq!(run(&s, mb, Query::Body("Ärg".into())), [2, 3]);
    assert_eq!(run(&s, mb, Query::Text("ärger".into())), [2, 3]);
    assert_eq!(
        run(&s, mb, Query::Body("ÄR".into())),
        [2, 3],
        "two characters, folded"
    );
    assert_eq!(
        run(&s, mb, Query::Body("ä".into())),
        [2, 3],
        "one character, folded"
    );
    assert_eq!(run(&s, mb, Query::Body("grüße".into())), [1]);
    assert_eq!(
        run(&s, mb, Query::Body("GRÜSSE".into())),
        Vec::<u32>::new(),
        "ß is not ss"
    );
    assert_eq!(run(&s, mb, Query::Text("KÖLN".into())), [1]);
    assert_eq!(run(&s, mb, Query::Body("KÖLN".into())), Vec::<u32>::new());
    assert_eq!(run(&s, mb, Query::Body("büro".into())), [2]);
    assert_eq!(run(&s, mb, Query::Body("buro".into())), Vec::<u32>::new());
    assert_eq!(
        run(&s, mb, Query::Body("καλημέρα".into())),
        Vec::<u32>::new(),
        "accent kept"
    );
    assert_eq!(run(&s, mb, Query::Body("καλημερα".into())), [5]);
    assert_eq!(run(&s, mb, Query::Body("ΚΌΣΜΕ".into())), [5]);
    assert_eq!(run(&s, mb, Query::Text("ελληνικά".into())), [5]);
}
