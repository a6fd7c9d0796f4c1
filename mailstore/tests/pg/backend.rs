//! What the PostgreSQL backend does on its own terms: SEARCH compiled to
//! its dialect, raw ranges, migrations on reopen, clear errors for what
//! it does not do yet and for a server it cannot reach.

use mailstore::{FlagOp, Flags, MailboxId, Query, Store, StoreError, SystemFlag};

use crate::util::{deliver, simple, store, user};

fn run(s: &Store, mb: MailboxId, q: Query) -> Vec<u32> {
    s.read_sync(move |r| r.search(mb, &q)).unwrap()
}

#[test]
fn search_flags_headers_text_dates_and_sizes() {
    let (_db, s) = store();
    let a = user(&s, "a@x");
    deliver(&s, simple("Hello World", "the Quick brown fox"), &[a]);
    deliver(&s, simple("second", "nothing here"), &[a]);
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
    assert_eq!(run(&s, mb, Query::All), [1, 2, 3]);
    assert_eq!(run(&s, mb, Query::Uids(vec![(3, 2)])), [2, 3]);
    assert_eq!(run(&s, mb, Query::Flag(SystemFlag::Seen, true)), [3]);
    assert_eq!(run(&s, mb, Query::Flag(SystemFlag::Seen, false)), [1, 2]);
    assert_eq!(run(&s, mb, Query::Keyword("$TODO".into(), true)), [3]);
    assert_eq!(run(&s, mb, Query::Keyword("$Todo".into(), false)), [1, 2]);
    assert_eq!(
        run(&s, mb, Query::Header("subject".into(), "WORLD".into())),
        [1]
    );
    assert_eq!(
        run(&s, mb, Query::Header("X-Mailer".into(), "".into())),
        [3]
    );
    assert_eq!(run(&s, mb, Query::Body("quick BROWN".into())), [1]);
    assert_eq!(run(&s, mb, Query::Body("second".into())), Vec::<u32>::new());
    assert_eq!(run(&s, mb, Query::Text("second".into())), [2]);
    assert_eq!(run(&s, mb, Query::Before(1_700_100_000)), [3]);
    assert_eq!(run(&s, mb, Query::Since(1_700_100_000)), [1, 2]);
    assert_eq!(run(&s, mb, Query::Larger(1_000_000)), Vec::<u32>::new());
    assert_eq!(run(&s, mb, Query::Smaller(1_000_000)), [1, 2, 3]);
    assert_eq!(
        run(
            &s,
            mb,
            Query::Not(Box::new(Query::Or(
                Box::new(Query::Uids(vec![(1, 1)])),
                Box::new(Query::Flag(SystemFlag::Seen, true))
            )))
        ),
        [2]
    );
    let many: Vec<Query> = (0..100)
        .map(|i| Query::Uids(vec![(i * 10 + 2, i * 10 + 2)]))
        .collect();
    assert_eq!(run(&s, mb, Query::Any(many)), [2]);
    assert_eq!(run(&s, mb, Query::And(vec![])), [1, 2, 3]);
    assert_eq!(run(&s, mb, Query::Any(vec![])), Vec::<u32>::new());
    // Flags changed later are searched as they are now.
    s.write_sync(move |tx| {
        tx.store_flags(mb, &[1], FlagOp::Add, &Flags::system(Flags::FLAGGED), None)
    })
    .unwrap();
    assert_eq!(run(&s, mb, Query::Flag(SystemFlag::Flagged, true)), [1]);
}

#[test]
fn raw_ranges_and_lengths() {
    let (_db, s) = store();
    let a = user(&s, "a@x");
    let raw = simple("r", "0123456789");
    let d = deliver(&s, raw.clone(), &[a]);
    let (mb, uid) = d.entries[0];
    let (all, part, past, len) = s
        .read_sync(move |r| {
            Ok((
                r.raw(mb, uid)?,
                r.raw_range(mb, uid, 3, 5)?,
                r.raw_range(mb, uid, 10_000, 5)?,
                r.raw_len(mb, uid)?,
            ))
        })
        .unwrap();
    assert_eq!(all, raw);
    assert_eq!(part, raw[3..8]);
    assert!(past.is_empty());
    assert_eq!(len, raw.len() as u64);
    let missing = s.read_sync(move |r| r.raw(mb, 99));
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

#[test]
fn reopening_keeps_everything_and_migrates_once() {
    let (db, s) = store();
    let a = user(&s, "a@x");
    deliver(&s, simple("kept", "body"), &[a]);
    s.shutdown();
    drop(s);
    let s = Store::open(db.url()).unwrap();
    let mb = s
        .read_sync(move |r| r.mailbox(a, "INBOX"))
        .unwrap()
        .unwrap();
    assert_eq!(mb.uidnext, 2);
    assert_eq!(s.read_sync(|r| r.stored_messages()).unwrap(), 1);
    // A second user gets a new id and new UIDVALIDITYs.
    let b = user(&s, "b@x");
    assert!(b > a);
    let mb2 = s
        .read_sync(move |r| r.mailbox(b, "INBOX"))
        .unwrap()
        .unwrap();
    assert!(mb2.uidvalidity > mb.uidvalidity);
}

#[test]
fn what_is_not_there_yet_says_so() {
    let (db, s) = store();
    let a = user(&s, "a@x");
    let e = mailstore::schema_version(std::path::Path::new(db.url())).unwrap_err();
    assert!(
        matches!(&e, StoreError::Unsupported(m) if m.contains("not supported on PostgreSQL yet")),
        "{e:?}"
    );
    // A failed job (a queue id in use) leaves the batch usable for the
    // next ones.
    let out = |qid: &str| mailstore::OutMessage {
        qid: qid.into(),
        sender: "a@x".into(),
        raw: b"Subject: out\r\n\r\nx\r\n".to_vec(),
        ret: None,
        envid: None,
        rcpts: vec![mailstore::OutRcpt {
            addr: "z@elsewhere.test".into(),
            notify: None,
            orcpt: None,
        }],
    };
    let m = out("Q1");
    s.write_sync(move |tx| tx.enqueue(&m)).unwrap();
    let m = out("Q1");
    let e = s.write_sync(move |tx| tx.enqueue(&m)).unwrap_err();
    assert!(matches!(e, StoreError::Exists(_)), "{e:?}");
    let d = deliver(&s, simple("after", "x"), &[a]);
    assert_eq!(d.entries[0].1, 1);
    assert_eq!(s.read_sync(|r| r.queue_size()).unwrap(), (1, 1));
}

#[test]
fn quotas_are_kept_exact_and_enforced() {
    let (_db, s) = store();
    let a = user(&s, "a@x");
    let q = s.read_sync(move |r| r.quota(a)).unwrap();
    assert!(!q.limited());
    let raw = simple("q", "0123456789");
    let size = raw.len() as u64;
    let d = deliver(&s, raw.clone(), &[a]);
    let inbox = d.entries[0].0;
    let q = s.read_sync(move |r| r.quota(a)).unwrap();
    assert_eq!((q.storage_used, q.messages_used), (size, 1));
    s.write_sync(move |tx| tx.set_quota(a, Some(2 * size), Some(10)))
        .unwrap();
    // A copy counts again; a third does not fit (temporary), nor does a
    // message larger than the limit (permanent).
    let trash = s
        .read_sync(move |r| r.mailbox(a, "Trash"))
        .unwrap()
        .unwrap()
        .id;
    s.write_sync(move |tx| tx.copy(inbox, &[1], trash)).unwrap();
    let e = s
        .write_sync(move |tx| tx.copy(inbox, &[1], trash))
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::OverQuota {
                permanent: false,
                ..
            }
        ),
        "{e:?}"
    );
    let big = vec![b'x'; 3 * size as usize];
    let e = s
        .write_sync(move |tx| tx.append(inbox, &big, &Flags::empty(), 1))
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::OverQuota {
                permanent: true,
                ..
            }
        ),
        "{e:?}"
    );
    let over = s.write_sync(move |tx| tx.over_quota(&[a], 1)).unwrap();
    assert_eq!(over.len(), 1);
    // EXPUNGE frees the room at once; MOVE neither adds nor frees.
    s.write_sync(move |tx| {
        tx.store_flags(
            trash,
            &[1],
            FlagOp::Add,
            &Flags::system(Flags::DELETED),
            None,
        )?;
        tx.expunge(trash, None)
    })
    .unwrap();
    let q = s.read_sync(move |r| r.quota(a)).unwrap();
    assert_eq!((q.storage_used, q.messages_used), (size, 1));
    s.write_sync(move |tx| tx.move_messages(inbox, &[1], trash))
        .unwrap();
    let q = s.read_sync(move |r| r.quota(a)).unwrap();
    assert_eq!((q.storage_used, q.messages_used), (size, 1));
    assert_eq!(q.storage_limit, Some(2 * size));
    // Deleting the mailbox frees it too.
    s.write_sync(move |tx| tx.delete_mailbox(trash)).unwrap();
    let q = s.read_sync(move |r| r.quota(a)).unwrap();
    assert_eq!((q.storage_used, q.messages_used), (0, 0));
}

#[test]
fn dkim_keys_are_stored_one_active_per_domain() {
    let (_db, s) = store();
    let key = |sel: &str, created: i64| mailstore::DkimKey {
        domain: "Example.org".into(),
        selector: sel.into(),
        algorithm: "ed25519".into(),
        private_key: vec![1, 2, 3],
        public_key: vec![4, 5],
        created,
        active: false,
    };
    let (k1, k2, k1b) = (key("s1", 1), key("s2", 2), key("S1", 3));
    assert!(s.write_sync(move |tx| tx.add_dkim_key(&k1)).unwrap());
    assert!(s.write_sync(move |tx| tx.add_dkim_key(&k2)).unwrap());
    assert!(!s.write_sync(move |tx| tx.add_dkim_key(&k1b)).unwrap());
    let keys = s.read_sync(|r| r.dkim_keys(Some("example.ORG"))).unwrap();
    let got: Vec<(&str, bool)> = keys
        .iter()
        .map(|k| (k.selector.as_str(), k.active))
        .collect();
    assert_eq!(got, [("s2", true), ("s1", false)]);
    assert_eq!(s.read_sync(|r| r.dkim_keys(None)).unwrap().len(), 2);
    assert!(s
        .read_sync(|r| r.dkim_keys(Some("other.org")))
        .unwrap()
        .is_empty());
}

#[test]
fn constraint_errors_do_not_break_the_transaction() {
    let (_db, s) = store();
    let a = user(&s, "a@x");
    // Exists inside a job that goes on: the rest of it is still stored.
    let (first, second) = s
        .write_sync(move |tx| {
            let first = tx.create_mailbox(a, "Sent", None);
            let second = tx.create_mailbox(a, "Other", None)?;
            Ok((first, second))
        })
        .unwrap();
    assert!(matches!(first, Err(StoreError::Exists(_))), "{first:?}");
    let other = s
        .read_sync(move |r| r.mailbox(a, "Other"))
        .unwrap()
        .unwrap();
    assert_eq!(other.id, second);
    let dup = s.write_sync(|tx| tx.create_user("A@X", "h"));
    assert!(matches!(dup, Err(StoreError::Exists(_))), "{dup:?}");
}

#[test]
fn an_unreachable_server_is_an_error_not_a_hang() {
    // Port 1 on loopback: nothing listens there.
    let e = Store::open("postgres://minimail@127.0.0.1:1/mail").unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("cannot connect"), "{msg}");
    let e = Store::open("postgres://minimail@127.0.0.1:notaport/mail").unwrap_err();
    assert!(e.to_string().contains("bad PostgreSQL URL"), "{e}");
}

#[test]
fn sort_and_thread_fields_and_urlauth_keys() {
    let (_db, s) = store();
    let a = user(&s, "a@x");
    let raw: &[u8] = b"From: =?iso-8859-1?q?J=F6rg?= <j@x.org>\r\nTo: team: a@b.c, d@e.f;\r\n\
              Subject: =?utf-8?q?Re:_caf=C3=A9?=\r\nDate: Fri, 22 Feb 2008 02:00:00 +0200\r\n\
              Message-ID: <m1@x>\r\nReferences: <r1@x>\r\n <r2@x>\r\nIn-Reply-To: <r2@x>\r\n\r\nbody\r\n";
    let d = deliver(&s, raw.to_vec(), &[a]);
    deliver(&s, simple("plain", "b"), &[a]);
    let mb = d.entries[0].0;
    let all = mailstore::FieldSet {
        sent_date: true,
        subject: true,
        addresses: true,
        thread: true,
    };
    let f = s
        .read_sync(move |r| r.message_fields(mb, &[1, 9], all))
        .unwrap();
    assert_eq!(f.len(), 1);
    let m = &f[0];
    assert_eq!(m.sent_date, Some(1_203_638_400));
    assert_eq!(m.subject.as_deref(), Some("Re: caf\u{e9}"));
    assert_eq!(m.from.as_ref().unwrap().name.as_deref(), Some("J\u{f6}rg"));
    assert!(m.to.as_ref().unwrap().group);
    assert_eq!(m.message_id.as_deref(), Some("<m1@x>"));
    assert_eq!(m.references.as_deref(), Some("<r1@x> <r2@x>"));
    let f = s
        .read_sync(move |r| r.message_fields(mb, &[2], mailstore::FieldSet::default()))
        .unwrap();
    assert_eq!((f[0].uid, f[0].subject.is_none()), (2, true));

    // A reply threads with its parent (THREADID, RFC 8474).
    let reply = b"Subject: re\r\nIn-Reply-To: <m1@x>\r\n\r\nr\r\n".to_vec();
    deliver(&s, reply, &[a]);
    let metas = s.read_sync(move |r| r.messages(mb, &[1, 2, 3])).unwrap();
    assert_eq!(metas[2].thread_id, metas[0].thread_id);
    assert_ne!(metas[1].thread_id, metas[0].thread_id);

    // URLAUTH keys: none, then made once and kept, then reset.
    assert_eq!(s.read_sync(move |r| r.mailbox_key(mb)).unwrap(), None);
    let k1 = s.write_sync(move |tx| tx.mailbox_key(mb)).unwrap();
    let k2 = s.write_sync(move |tx| tx.mailbox_key(mb)).unwrap();
    assert_eq!(k1, k2);
    assert_eq!(k1.len(), mailstore::MAILBOX_KEY_LEN);
    assert_eq!(
        s.read_sync(move |r| r.mailbox_key(mb)).unwrap(),
        Some(k1.clone())
    );
    assert!(s
        .write_sync(move |tx| tx.reset_mailbox_keys(a, Some("INBOX")))
        .unwrap());
    let k3 = s.write_sync(move |tx| tx.mailbox_key(mb)).unwrap();
    assert_ne!(k3, k1);
}

#[test]
fn a_restarted_server_is_reconnected_to_without_restarting_the_store() {
    let pg = testkit::pg::PgCluster::start();
    let s = Store::open(pg.url()).unwrap();
    let a = user(&s, "a@x");
    deliver(&s, simple("before", "x"), &[a]);
    pg.restart();
    // The first job on each connection may meet the cut connection and
    // fail with an error (never hang or panic); the connections are then
    // opened again, and nothing committed is lost.
    let mut failures = 0;
    let delivered = loop {
        let to = [a];
        let r = s.write_sync(move |tx| {
            tx.deliver(
                &mailstore::NewMessage {
                    raw: simple("after", "y"),
                    internal_date: 1,
                },
                &to,
            )
        });
        match r {
            Ok(d) => break d,
            Err(e) => {
                failures += 1;
                assert!(failures <= 2, "still failing: {e}");
                eprintln!("write after restart: {e}");
            }
        }
    };
    assert_eq!(delivered.entries[0].1, 2);
    let mut uids = None;
    for _ in 0..(mailstore::READERS + mailstore::SYNC_READERS + 2) {
        let mb = delivered.entries[0].0;
        match s.read_sync(move |r| r.uids(mb)) {
            Ok(u) => uids = Some(u),
            Err(e) => eprintln!("read after restart: {e}"),
        }
    }
    assert_eq!(uids.unwrap(), [1, 2]);
    // Reads on the pool threads come back too.
    let (tx, rx) = std::sync::mpsc::channel();
    for _ in 0..(2 * mailstore::READERS) {
        let tx = tx.clone();
        s.read(|r| r.stored_messages(), move |n| tx.send(n.ok()).unwrap());
    }
    drop(tx);
    let got: Vec<Option<u64>> = rx.iter().collect();
    assert!(got.contains(&Some(2)), "{got:?}");
}

/// Schema version 19: a message's raw bytes, header rows and search text
/// have no foreign keys to `messages` any more; they go with their
/// message when its last entry does (expunge, deleting a mailbox), and a
/// message still held by another mailbox keeps them.
#[test]
fn a_collected_message_leaves_no_raw_headers_or_text_behind() {
    let (db, s) = store();
    let a = user(&s, "a@x");
    let b = user(&s, "b@x");
    deliver(&s, simple("one", "first body"), &[a, b]);
    deliver(&s, simple("two", "second body"), &[a]);
    let inbox = |u| {
        s.read_sync(move |r| r.mailbox(u, "INBOX"))
            .unwrap()
            .unwrap()
            .id
    };
    let (ia, ib) = (inbox(a), inbox(b));
    let mut c = postgres::Client::connect(db.url(), postgres::NoTls).unwrap();
    let mut counts = || -> [i64; 4] {
        let r = c
            .query_one(
                "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM message_raw),
                        (SELECT count(DISTINCT message_id) FROM message_headers),
                        (SELECT count(*) FROM message_text)",
                &[],
            )
            .unwrap();
        [r.get(0), r.get(1), r.get(2), r.get(3)]
    };
    assert_eq!(counts(), [2, 2, 2, 2]);
    // a's copies go; "one" stays for b, "two" has no entry left.
    s.write_sync(move |tx| {
        tx.store_flags(
            ia,
            &[1, 2],
            FlagOp::Add,
            &Flags::system(Flags::DELETED),
            None,
        )?;
        tx.expunge(ia, None)
    })
    .unwrap();
    assert_eq!(counts(), [1, 1, 1, 1]);
    assert_eq!(
        run(&s, ib, Query::Text("first".into())),
        [1],
        "the message b still holds keeps its search text"
    );
    // Deleting b's last mailbox holding it (b's user) collects it too.
    s.write_sync(move |tx| tx.delete_user("b@x")).unwrap();
    assert_eq!(counts(), [0, 0, 0, 0]);
}

/// Schema version 19: large raw messages and search bodies are stored
/// with lz4 (cheaper to compress than pglz) on a server that has it, and
/// come back byte for byte, also in ranges; BODY search still finds text
/// near the end of the compressed body.
#[test]
fn large_messages_are_stored_with_lz4_and_read_back_exactly() {
    let (db, s) = store();
    let a = user(&s, "a@x");
    let mut body = String::new();
    for i in 0..4000 {
        body.push_str(&format!(
            "line {i} of a long and varied body text {}\r\n",
            i * 7919 % 10007
        ));
    }
    body.push_str("the closing needle-word\r\n");
    let raw = simple("big", &body);
    let d = deliver(&s, raw.clone(), &[a]);
    let (mb, uid) = d.entries[0];
    let (all, part) = s
        .read_sync(move |r| Ok((r.raw(mb, uid)?, r.raw_range(mb, uid, 100_000, 64)?)))
        .unwrap();
    assert_eq!(all, raw);
    assert_eq!(part, raw[100_000..100_064]);
    assert_eq!(
        run(&s, mb, Query::Body("closing NEEDLE-word".into())),
        [uid]
    );
    let mut c = postgres::Client::connect(db.url(), postgres::NoTls).unwrap();
    let lz4: bool = c
        .query_one(
            "SELECT count(*) > 0 FROM pg_attribute WHERE attrelid = 'message_raw'::regclass
             AND attname = 'raw' AND attcompression = 'l'",
            &[],
        )
        .unwrap()
        .get(0);
    let server_has_lz4 = c
        .batch_execute("CREATE TEMP TABLE lz4_probe(v text COMPRESSION lz4)")
        .is_ok();
    assert_eq!(
        lz4, server_has_lz4,
        "raw is lz4 exactly where the server has lz4"
    );
    if server_has_lz4 {
        let r = c
            .query_one(
                "SELECT pg_column_compression(r.raw), pg_column_compression(t.body)
                 FROM message_raw r JOIN message_text t ON t.id = r.id",
                &[],
            )
            .unwrap();
        let (raw_c, body_c): (Option<String>, Option<String>) = (r.get(0), r.get(1));
        assert_eq!(raw_c.as_deref(), Some("lz4"));
        assert_eq!(body_c.as_deref(), Some("lz4"));
    }
}

/// Deliveries and APPENDs store the binary envelope (schema v20) on
/// PostgreSQL too, and the metadata FETCH (`each_message`) reads it: the
/// envelopes the JSON holds, also for rows without one (from before:
/// read from the JSON), and a damaged one is an error, not a panic.
#[test]
fn binary_envelopes_are_written_and_read_as_the_json() {
    use crate::messages::{each_message_envelopes, messages_envelopes, ENVELOPES};
    let (db, s) = store();
    let a = user(&s, "a@x");
    for m in ENVELOPES {
        deliver(&s, m.as_bytes().to_vec(), &[a]);
    }
    let mb = s
        .read_sync(move |r| r.mailbox(a, "INBOX"))
        .unwrap()
        .unwrap()
        .id;
    s.write_sync(move |tx| tx.append(mb, ENVELOPES[0].as_bytes(), &Flags::empty(), 1_790_000_000))
        .unwrap();
    for i in 0..3 {
        deliver(&s, simple(&format!("plain {i}"), "x"), &[a]);
    }
    let uids: Vec<u32> = (1..=7).collect();
    let json = || messages_envelopes(&s, mb, &uids);
    let want = json();
    assert_eq!(want.len(), 7);
    assert_eq!(want[0].1.to.len(), 5, "{:?}", want[0].1.to);
    assert_eq!(want[3].1, want[0].1, "the APPENDed copy");
    let mut c = postgres::Client::connect(db.url(), postgres::NoTls).unwrap();
    let nulls = |c: &mut postgres::Client| -> i64 {
        c.query_one(
            "SELECT count(*) FROM messages WHERE envelope_bin IS NULL",
            &[],
        )
        .unwrap()
        .get(0)
    };
    assert_eq!(nulls(&mut c), 0, "every message has its binary envelope");
    assert_eq!(each_message_envelopes(&s, mb, &uids).unwrap(), want);
    assert_eq!(
        each_message_envelopes(&s, mb, &[1, 7]).unwrap(),
        [want[0].clone(), want[6].clone()]
    );
    // Rows without one are read from the JSON.
    c.batch_execute("UPDATE messages SET envelope_bin = NULL WHERE id % 2 = 0")
        .unwrap();
    assert!(nulls(&mut c) > 0);
    assert_eq!(each_message_envelopes(&s, mb, &uids).unwrap(), want);
    // A damaged one is refused as corrupt.
    c.batch_execute(
        "UPDATE messages SET envelope_bin = '\\x01ff'::bytea
         WHERE id = (SELECT message_id FROM entries WHERE uid = 3)",
    )
    .unwrap();
    let err = each_message_envelopes(&s, mb, &uids).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    assert_eq!(each_message_envelopes(&s, mb, &[1, 2]).unwrap().len(), 2);
}
