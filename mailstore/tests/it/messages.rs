//! Delivery and APPEND: single storage, UIDs, modseqs.

use mailstore::{Flags, StoreError};

use crate::util::{deliver, simple, store, user};

#[test]
fn deliver_to_two_users_stores_once() {
    let (_d, s) = store();
    let a = user(&s, "a@x");
    let b = user(&s, "b@x");
    let d = deliver(&s, simple("hello", "body"), &[a, b, a]);
    assert_eq!(d.entries.len(), 2, "duplicate recipient deduped");
    assert_eq!(s.read_sync(|r| r.stored_messages()).unwrap(), 1);
    for (mb, uid) in &d.entries {
        assert_eq!(*uid, 1);
        let mb = *mb;
        let st = s.read_sync(move |r| r.status(mb)).unwrap();
        assert_eq!((st.messages, st.unseen, st.uidnext), (1, 1, 2));
    }
}

#[test]
fn uids_and_modseqs_increase() {
    let (_d, s) = store();
    let a = user(&s, "a@x");
    let inbox = s
        .read_sync(move |r| r.mailbox(a, "INBOX"))
        .unwrap()
        .unwrap();
    let d1 = deliver(&s, simple("1", "x"), &[a]);
    let d2 = deliver(&s, simple("2", "x"), &[a]);
    assert_eq!(d1.entries[0].1, 1);
    assert_eq!(d2.entries[0].1, 2);
    let app = s
        .write_sync(move |tx| {
            tx.append(
                inbox.id,
                b"Subject: x\r\n\r\nhi\r\n",
                &Flags::system(Flags::SEEN),
                5,
            )
        })
        .unwrap();
    assert_eq!(app.uid, 3);
    assert_eq!(app.uidvalidity, inbox.uidvalidity);
    let entries = s.read_sync(move |r| r.entries(inbox.id)).unwrap();
    assert_eq!(entries.iter().map(|e| e.uid).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(entries.windows(2).all(|w| w[0].modseq < w[1].modseq));
    assert!(entries[2].flags.has(mailstore::SystemFlag::Seen));
    let st = s.read_sync(move |r| r.status(inbox.id)).unwrap();
    assert_eq!((st.messages, st.unseen, st.uidnext), (3, 2, 4));
    assert_eq!(st.highestmodseq, entries[2].modseq);
}

#[test]
fn deliver_to_unknown_user_stores_nothing() {
    let (_d, s) = store();
    let a = user(&s, "a@x");
    let raw = simple("x", "y");
    let err = s
        .write_sync(move |tx| {
            tx.deliver(
                &mailstore::NewMessage {
                    raw,
                    internal_date: 0,
                },
                &[a, 9999],
            )
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(s.read_sync(|r| r.stored_messages()).unwrap(), 0);
    let inbox = s
        .read_sync(move |r| r.mailbox(a, "INBOX"))
        .unwrap()
        .unwrap();
    assert_eq!(inbox.uidnext, 1, "savepoint rolled back the failed job");
}

#[test]
fn unparseable_message_is_still_stored() {
    let (_d, s) = store();
    let a = user(&s, "a@x");
    let raw = b"\xff\xfe no headers at all \x00\x01".to_vec();
    let d = deliver(&s, raw, &[a]);
    assert_eq!(d.entries.len(), 1);
    assert_eq!(s.read_sync(|r| r.stored_messages()).unwrap(), 1);
}

#[test]
fn prepared_messages_store_the_same_metadata() {
    let (_d, s) = store();
    let a = user(&s, "a@x");
    let raw = simple("prep", "prepared body text");
    let plain = deliver(&s, raw.clone(), &[a]);
    let p = mailstore::PreparedMessage::new(mailstore::NewMessage {
        raw: raw.clone(),
        internal_date: 1_790_000_000,
    })
    .unwrap();
    assert_eq!(p.raw(), &raw[..]);
    let p2 = p.clone();
    let d = s
        .write_sync(move |tx| tx.deliver_prepared(&p, &[a]))
        .unwrap();
    let (mb, _) = d.entries[0];
    let app = s
        .write_sync(move |tx| tx.append_prepared(mb, &p2, &Flags::system(Flags::DRAFT)))
        .unwrap();
    assert_eq!(app.uid, 3);
    let metas = s.read_sync(move |r| r.messages(mb, &[1, 2, 3])).unwrap();
    assert_eq!(metas[0].envelope, metas[1].envelope);
    assert_eq!(metas[0].structure, metas[2].structure);
    assert_eq!(metas[2].flags, Flags::system(Flags::DRAFT));
    assert_ne!(metas[0].message_id, metas[1].message_id);
    assert_eq!(plain.entries[0].0, mb);
    let hits = s
        .read_sync(move |r| r.search(mb, &mailstore::Query::Body("prepared body".into())))
        .unwrap();
    assert_eq!(hits, [1, 2, 3]);
}

#[test]
fn messages_with_decodes_only_the_parts_asked_for() {
    let (_d, s) = store();
    let a = user(&s, "a@x");
    let d = deliver(&s, simple("parts", "some body"), &[a]);
    let mb = d.entries[0].0;
    let all = s.read_sync(move |r| r.messages(mb, &[1])).unwrap();
    assert_eq!(all[0].envelope.subject.as_deref(), Some("parts"));
    assert!(!all[0].structure.media_type.is_empty());
    for (envelope, structure) in [(true, false), (false, true), (false, false)] {
        let parts = mailstore::MetaParts {
            envelope,
            structure,
        };
        let got = s
            .read_sync(move |r| r.messages_with(mb, &[1], parts))
            .unwrap();
        let m = &got[0];
        assert_eq!(
            (m.uid, m.size, m.modseq),
            (all[0].uid, all[0].size, all[0].modseq)
        );
        assert_eq!(m.flags, all[0].flags);
        assert_eq!(m.envelope == all[0].envelope, envelope, "{parts:?}");
        assert_eq!(m.structure == all[0].structure, structure, "{parts:?}");
        if !envelope {
            assert_eq!(m.envelope, mailstore::Envelope::default());
        }
    }
}

/// RFC 8438 STATUS SIZE: the sum of the sizes of a mailbox's messages;
/// a copy counts in each mailbox that holds it, an expunged one no more.
#[test]
fn mailbox_size_sums_the_messages_it_holds() {
    let (_d, s) = store();
    let a = user(&s, "a@x");
    let inbox = s
        .read_sync(move |r| r.mailbox(a, "INBOX"))
        .unwrap()
        .unwrap()
        .id;
    let size = |mb| s.read_sync(move |r| r.mailbox_size(mb)).unwrap();
    assert_eq!(size(inbox), 0);
    let (m1, m2) = (simple("one", "x"), simple("two", "a longer body"));
    let total = (m1.len() + m2.len()) as u64;
    deliver(&s, m1, &[a]);
    deliver(&s, m2, &[a]);
    assert_eq!(size(inbox), total);
    let other = s
        .write_sync(move |tx| {
            let mb = tx.create_mailbox(a, "Other", None)?;
            tx.copy(inbox, &[2], mb)?;
            Ok(mb)
        })
        .unwrap();
    let two = size(other);
    assert!(two > 0 && two < total);
    assert_eq!(size(inbox), total, "a copy counts in both");
    s.write_sync(move |tx| {
        tx.store_flags(
            inbox,
            &[2],
            mailstore::FlagOp::Add,
            &Flags::system(Flags::DELETED),
            None,
        )?;
        tx.expunge(inbox, None)
    })
    .unwrap();
    assert_eq!(size(inbox), total - two);
    assert_eq!(size(other), two);
}

/// Message ids are never reused (RFC 8474 EMAILID is built from them):
/// deleting the newest message does not hand its id to the next one.
#[test]
fn message_ids_are_not_reused_after_the_newest_is_deleted() {
    let (_d, s) = store();
    let a = user(&s, "a@x");
    let inbox = s
        .read_sync(move |r| r.mailbox(a, "INBOX"))
        .unwrap()
        .unwrap()
        .id;
    deliver(&s, simple("one", "x"), &[a]);
    let two = deliver(&s, simple("two", "y"), &[a]);
    s.write_sync(move |tx| {
        tx.store_flags(
            inbox,
            &[2],
            mailstore::FlagOp::Add,
            &Flags::system(Flags::DELETED),
            None,
        )?;
        tx.expunge(inbox, None)
    })
    .unwrap();
    assert_eq!(s.read_sync(|r| r.stored_messages()).unwrap(), 1);
    let three = deliver(&s, simple("three", "z"), &[a]);
    assert!(three.message_id > two.message_id);
    let metas = s.read_sync(move |r| r.messages(inbox, &[1, 3])).unwrap();
    assert_eq!(metas[1].message_id, three.message_id);
}

/// `each_message` (metadata FETCH) hands over just the UIDs asked for,
/// ascending, with the envelope `messages` decodes, whether the UIDs are
/// read as one range (dense) or as a list (sparse).
#[test]
fn each_message_gives_the_asked_uids_with_their_envelopes() {
    let (_d, s) = store();
    let a = user(&s, "a@x");
    for i in 0..10 {
        deliver(
            &s,
            simple(&format!("m{i} \"q\" \\ =?UTF-8?Q?Gr=C3=BC=C3=9Fe?="), "x"),
            &[a],
        );
    }
    let mb = s
        .read_sync(move |r| r.mailbox(a, "INBOX"))
        .unwrap()
        .unwrap()
        .id;
    for uids in [
        vec![1, 3],
        vec![2, 3, 4, 5],
        vec![1, 9],
        vec![10],
        vec![4, 11, 12],
    ] {
        let want = messages_envelopes(&s, mb, &uids);
        let got = each_message_envelopes(&s, mb, &uids).unwrap();
        assert_eq!(got, want, "{uids:?}");
        assert!(got.iter().all(|(u, _)| uids.contains(u)));
    }
}

/// The envelopes `messages` decodes for `uids`, with their UIDs.
pub(crate) fn messages_envelopes(
    s: &mailstore::Store,
    mb: mailstore::MailboxId,
    uids: &[u32],
) -> Vec<(u32, mailstore::Envelope)> {
    let u = uids.to_vec();
    s.read_sync(move |r| r.messages(mb, &u))
        .unwrap()
        .into_iter()
        .map(|m| (m.uid, m.envelope))
        .collect()
}

/// The envelopes `each_message` hands over for `uids`, owned.
pub(crate) fn each_message_envelopes(
    s: &mailstore::Store,
    mb: mailstore::MailboxId,
    uids: &[u32],
) -> mailstore::Result<Vec<(u32, mailstore::Envelope)>> {
    let u = uids.to_vec();
    s.read_sync(move |r| {
        let mut got = Vec::new();
        r.each_message(mb, &u, |m, e| {
            let addrs = |v: &[mailstore::AddressRef<'_>]| -> Vec<mailstore::Address> {
                v.iter()
                    .map(|a| mailstore::Address {
                        name: a.name.as_deref().map(Into::into),
                        adl: a.adl.as_deref().map(Into::into),
                        local: a.local.as_deref().map(Into::into),
                        host: a.host.as_deref().map(Into::into),
                    })
                    .collect()
            };
            let s = |v: &Option<std::borrow::Cow<'_, str>>| v.as_deref().map(Into::into);
            got.push((
                m.uid,
                mailstore::Envelope {
                    date: s(&e.date),
                    subject: s(&e.subject),
                    from: addrs(&e.from),
                    sender: addrs(&e.sender),
                    reply_to: addrs(&e.reply_to),
                    to: addrs(&e.to),
                    cc: addrs(&e.cc),
                    bcc: addrs(&e.bcc),
                    in_reply_to: s(&e.in_reply_to),
                    message_id: s(&e.message_id),
                },
            ));
            Ok(())
        })?;
        Ok(got)
    })
}

/// Envelopes whose fields are hard to carry: groups, a source route,
/// quotes and backslashes, 8-bit text, empty and missing fields.
pub(crate) const ENVELOPES: &[&str] = &[
    "Date: Mon, 7 Dec 2026 05:00:00 +0000\r\nFrom: \"A \\\"B\\\"\" <a@example.org>\r\n\
     To: group: x@y.test, <@relay,@r2:z@w.test>;, plain@example.net\r\n\
     Cc: \"\" <c@d>\r\nSubject: caf\u{e9} =?UTF-8?Q?caf=C3=A9?= \\ end\r\n\
     In-Reply-To: <p@example.org>\r\nMessage-ID: <m1@example.org>\r\n\r\nbody\r\n",
    "Subject:\r\nSender: s@example.org\r\nReply-To: r@example.org\r\nBcc: b@example.org\r\n\r\nx\r\n",
    "\r\nno header at all\r\n",
];

/// Schema v20's binary envelope gives `each_message` the envelopes the
/// JSON holds: for mail delivered now, for rows without one (read from
/// the JSON), and for a file of v19 whose rows the migration converts.
/// A damaged one is an error, not a panic.
#[test]
fn binary_envelopes_read_as_the_json_and_are_made_for_older_files() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("m.db");
    let uids: Vec<u32> = (1..=7).collect();
    let json_envelopes = |s: &mailstore::Store, mb| -> Vec<(u32, mailstore::Envelope)> {
        let u = uids.clone();
        s.read_sync(move |r| r.messages(mb, &u))
            .unwrap()
            .into_iter()
            .map(|m| (m.uid, m.envelope))
            .collect()
    };
    let sql = |q: &str| {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch(q).unwrap();
    };
    let count = |q: &str| -> i64 {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.query_row(q, [], |r| r.get(0)).unwrap()
    };
    let (a, mb) = {
        let s = mailstore::Store::open(&db).unwrap();
        let a = user(&s, "a@x");
        for m in ENVELOPES {
            deliver(&s, m.as_bytes().to_vec(), &[a]);
        }
        for i in 0..4 {
            deliver(&s, simple(&format!("plain {i}"), "x"), &[a]);
        }
        let mb = s
            .read_sync(move |r| r.mailbox(a, "INBOX"))
            .unwrap()
            .unwrap()
            .id;
        let want = json_envelopes(&s, mb);
        assert_eq!(want.len(), 7);
        assert_eq!(want[0].1.to.len(), 5, "{:?}", want[0].1.to);
        assert_eq!(each_message_envelopes(&s, mb, &uids).unwrap(), want);
        assert_eq!(
            each_message_envelopes(&s, mb, &[1, 7]).unwrap(),
            [want[0].clone(), want[6].clone()]
        );
        s.shutdown();
        (a, mb)
    };
    assert_eq!(
        count("SELECT count(*) FROM messages WHERE envelope_bin IS NULL"),
        0
    );

    // Rows without a binary envelope are read from the JSON.
    sql("UPDATE messages SET envelope_bin = NULL WHERE id % 2 = 0");
    {
        let s = mailstore::Store::open(&db).unwrap();
        assert_eq!(
            each_message_envelopes(&s, mb, &uids).unwrap(),
            json_envelopes(&s, mb)
        );
        s.shutdown();
    }

    // A file of v19: the migration makes the column and fills it.
    sql("ALTER TABLE messages DROP COLUMN envelope_bin; PRAGMA user_version = 19;");
    {
        let s = mailstore::Store::open(&db).unwrap();
        let want = json_envelopes(&s, mb);
        assert_eq!(each_message_envelopes(&s, mb, &uids).unwrap(), want);
        // Mail after the migration too.
        deliver(&s, ENVELOPES[0].as_bytes().to_vec(), &[a]);
        let got = each_message_envelopes(&s, mb, &[8]).unwrap();
        assert_eq!(got[0].1, want[0].1);
        s.shutdown();
    }
    assert_eq!(
        count("SELECT count(*) FROM messages WHERE envelope_bin IS NULL"),
        0
    );
    assert_eq!(count("PRAGMA user_version"), mailstore::SCHEMA_VERSION);

    // A damaged one is refused as corrupt.
    sql("UPDATE messages SET envelope_bin = x'01ff' WHERE id = 3");
    let s = mailstore::Store::open(&db).unwrap();
    let err = each_message_envelopes(&s, mb, &uids).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    assert_eq!(each_message_envelopes(&s, mb, &[1, 2]).unwrap().len(), 2);
}
