//! Opening: fresh file, reopen, corrupt file, unwritable path.

use mailstore::{Store, StoreError};

#[test]
fn fresh_file_is_created_and_reopens_with_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    {
        let store = Store::open(&path).unwrap();
        crate::util::user(&store, "a@x");
        store.shutdown();
    }
    let store = Store::open(&path).unwrap();
    let users = store.read_sync(|r| r.users()).unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].address, "a@x");
}

#[test]
fn corrupt_file_gives_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.db");
    let junk: Vec<u8> = (0..8192u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(&path, junk).unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("junk.db"), "{msg}");
    assert!(msg.contains("not a database"), "{msg}");
}

#[test]
fn unwritable_path_gives_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/m.db");
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("no/such/dir/m.db"), "{msg}");
    assert!(msg.contains("unable to open"), "{msg}");
}

#[test]
fn directory_as_path_gives_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains(&dir.path().display().to_string()));
}

/// A store file `m.db` in a new directory with user a@x, closed again so
/// a test can rewrite it to look like an older version.
fn closed_store_with_user() -> (tempfile::TempDir, mailstore::UserId) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path().join("m.db")).unwrap();
    let a = crate::util::user(&s, "a@x");
    s.shutdown();
    drop(s);
    (dir, a)
}

/// What migrations v4 (URLAUTH mailbox keys), v5 (bounded expunge
/// tombstones) and v9 (save dates) added, undone to make a file look
/// older (with v6 to v8's outbound queue and DKIM tables).
/// Take a current file back to version 11 (threads, schema v12).
/// Take a current file back to version 13 (binary envelopes, schema v20;
/// queue leases, schema v15; header index, schema v14).
pub(crate) const UNDO_V14: &str = "ALTER TABLE messages DROP COLUMN envelope_bin;
    ALTER TABLE outq_rcpt DROP COLUMN lease_owner;
    ALTER TABLE outq_rcpt DROP COLUMN lease_until; DROP TRIGGER entries_header_index_add;
    DROP TRIGGER entries_header_index_del; DROP TABLE header_index;";

/// Take a current file back to version 12 (quotas, schema v13).
const UNDO_V13: &str = "DROP TRIGGER entries_usage_add; DROP TRIGGER entries_usage_del;
    ALTER TABLE users DROP COLUMN quota_storage; ALTER TABLE users DROP COLUMN quota_messages;
    ALTER TABLE users DROP COLUMN used_storage; ALTER TABLE users DROP COLUMN used_messages;";

const UNDO_V12: &str = "DROP INDEX messages_thread; ALTER TABLE messages DROP COLUMN thread_id;
    DROP TABLE thread_refs;";

const UNDO_V4: &str = "DROP TABLE outq_body; DROP TABLE outq_rcpt; DROP TABLE outq_msg;
    DROP TABLE dkim_keys;
    DROP TABLE mailbox_keys;
    ALTER TABLE mailboxes DROP COLUMN tombstones;
    ALTER TABLE mailboxes DROP COLUMN tombstone_floor;
    DELETE FROM meta WHERE key = 'max_tombstones';
    ALTER TABLE entries DROP COLUMN saved;
    DROP TABLE aliases; DROP TABLE sieve_scripts; DROP TABLE sieve_seen;";

/// Migration v9 (save dates) undone.
const UNDO_V9: &str = "ALTER TABLE entries DROP COLUMN saved; DROP TABLE aliases;
    DROP TABLE sieve_scripts; DROP TABLE sieve_seen;";

#[test]
fn version_3_tombstones_are_counted_by_the_migration() {
    let (dir, a) = closed_store_with_user();
    let path = dir.path().join("m.db");
    let mb = {
        let s = Store::open(&path).unwrap();
        for i in 0..6 {
            crate::util::deliver(&s, crate::util::simple(&format!("m{i}"), "x"), &[a]);
        }
        let mb = s
            .read_sync(move |r| r.mailbox(a, "INBOX"))
            .unwrap()
            .unwrap()
            .id;
        for uid in [1, 2] {
            s.write_sync(move |tx| {
                tx.store_flags(
                    mb,
                    &[uid],
                    mailstore::FlagOp::Add,
                    &mailstore::Flags::system(mailstore::Flags::DELETED),
                    None,
                )?;
                tx.expunge(mb, None)
            })
            .unwrap();
        }
        s.shutdown();
        mb
    };
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(&format!(
            "{UNDO_V14} {UNDO_V13} {UNDO_V12} {UNDO_V4} PRAGMA user_version = 3;"
        ))
        .unwrap();
    }
    let s = Store::open(&path).unwrap();
    assert_eq!(s.read_sync(move |r| r.tombstones(mb)).unwrap(), 2);
    s.write_sync(|tx| tx.set_max_tombstones(3)).unwrap();
    let expunge = |uid: u32| {
        s.write_sync(move |tx| {
            tx.store_flags(
                mb,
                &[uid],
                mailstore::FlagOp::Add,
                &mailstore::Flags::system(mailstore::Flags::DELETED),
                None,
            )?;
            tx.expunge(mb, None)
        })
        .unwrap();
    };
    // The two old tombstones were counted: the third keeps within the
    // bound, the fourth goes past it and the oldest are dropped.
    expunge(3);
    assert_eq!(s.read_sync(move |r| r.tombstone_floor(mb)).unwrap(), 0);
    expunge(4);
    assert!(s.read_sync(move |r| r.tombstone_floor(mb)).unwrap() > 0);
    assert!(s.read_sync(move |r| r.tombstones(mb)).unwrap() <= 3);
}

#[test]
fn old_schema_is_migrated_and_newer_schema_refused() {
    let (dir, a) = closed_store_with_user();
    let path = dir.path().join("m.db");
    {
        // Make it look like a version-1 file.
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(&format!(
            "DROP TABLE pending_text; {UNDO_V14} {UNDO_V13} {UNDO_V12} {UNDO_V4} PRAGMA user_version = 1;"
        ))
        .unwrap();
    }
    let s = Store::open(&path).unwrap();
    crate::util::deliver(&s, crate::util::simple("after", "migrated text"), &[a]);
    let mb = s
        .read_sync(move |r| r.mailbox(a, "INBOX"))
        .unwrap()
        .unwrap()
        .id;
    let hits = s
        .read_sync(move |r| r.search(mb, &mailstore::Query::Body("migrated".into())))
        .unwrap();
    assert_eq!(hits, [1]);
    s.shutdown();
    drop(s);
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("PRAGMA user_version = 99;").unwrap();
    }
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    assert!(err.to_string().contains("newer"), "{err}");
}

#[test]
fn version_2_pending_text_is_still_searched_and_indexed() {
    let (dir, a) = closed_store_with_user();
    let path = dir.path().join("m.db");
    {
        // A version-2 file with a message whose search text still waits,
        // stored inline (v2 had no body_at).
        let c = rusqlite::Connection::open(&path).unwrap();
        let raw = crate::util::simple("old", "kumquat from version two");
        c.execute_batch("BEGIN").unwrap();
        c.execute(
            "INSERT INTO messages(size, internal_date, sent_date, envelope, structure)
             VALUES (?1, 1, NULL, '{}', '{}')",
            [raw.len() as i64],
        )
        .unwrap();
        let id = c.last_insert_rowid();
        c.execute(
            "INSERT INTO message_raw(id, raw) VALUES (?1, ?2)",
            rusqlite::params![id, raw],
        )
        .unwrap();
        c.execute(
            "INSERT INTO pending_text(id, headers, body) VALUES (?1, 'Subject: old', 'kumquat from version two')",
            [id],
        )
        .unwrap();
        c.execute(
            "INSERT INTO entries(mailbox_id, uid, message_id, modseq)
             SELECT id, 1, ?1, 1 FROM mailboxes WHERE user_id = ?2 AND name = 'INBOX'",
            rusqlite::params![id, a],
        )
        .unwrap();
        c.execute_batch(&format!(
            "UPDATE mailboxes SET uidnext = 2, highestmodseq = 1 WHERE name = 'INBOX';
             ALTER TABLE pending_text DROP COLUMN body_at; {UNDO_V14} {UNDO_V13} {UNDO_V12} {UNDO_V4} PRAGMA user_version = 2; COMMIT;",
        ))
        .unwrap();
    }
    let s = Store::open(&path).unwrap();
    crate::util::deliver(
        &s,
        crate::util::simple("new", "kumquat from version three"),
        &[a],
    );
    let mb = s
        .read_sync(move |r| r.mailbox(a, "INBOX"))
        .unwrap()
        .unwrap()
        .id;
    let search = |s: &Store, word: &'static str| {
        s.read_sync(move |r| r.search(mb, &mailstore::Query::Body(word.into())))
            .unwrap()
    };
    // Whether or not the idle writer has indexed them yet.
    assert_eq!(search(&s, "kumquat"), [1, 2]);
    assert_eq!(search(&s, "two"), [1]);
    assert_eq!(search(&s, "three"), [2]);
    s.shutdown();
    drop(s);
    // Reopened and given time to index everything: the same answers.
    let s = Store::open(&path).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let c = rusqlite::Connection::open(&path).unwrap();
        let n: i64 = c
            .query_row("SELECT count(*) FROM pending_text", [], |r| r.get(0))
            .unwrap();
        if n == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not indexed");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(search(&s, "kumquat"), [1, 2]);
    assert_eq!(search(&s, "two"), [1]);
    assert_eq!(search(&s, "three"), [2]);
    assert_eq!(search(&s, "ku"), [1, 2], "short needles scan the text");
}

#[test]
fn file_is_in_wal_mode_at_current_schema_version() {
    let (dir, s) = crate::util::store();
    s.shutdown();
    let c = rusqlite::Connection::open(dir.path().join("mail.db")).unwrap();
    let mode: String = c
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let v: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        v, 20,
        "v6 added the outbound queue, v7 DKIM keys, v8 outq_body, v9 save dates, v10 message ids, v11 aliases and Sieve, v12 threads, v13 quotas, v14 the header index, v15 queue leases, v16 to v19 nothing on SQLite (PostgreSQL's trigram index, then over the body's words, then the queue NOTIFY, then its message side tables without foreign keys and lz4), v20 binary envelopes"
    );
    let saved: i64 = c
        .query_row(
            "SELECT count(*) FROM pragma_table_info('entries') WHERE name = 'saved'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(saved, 1, "entries.saved (RFC 8514 save date)");
    let outq: i64 = c
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name IN ('outq_msg', 'outq_rcpt', 'outq_body')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(outq, 3);
    let fts: i64 = c
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'message_text' AND sql LIKE '%trigram%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(fts, 1, "FTS5 trigram index present");
}

/// A version-8 file's entries have no save date: after the migration
/// they read as unknown (`None`) and the SAVED* search keys fall back to
/// their internal date (RFC 8514); entries saved since have one.
#[test]
fn version_8_entries_get_an_unknown_save_date() {
    let (dir, a) = closed_store_with_user();
    let path = dir.path().join("m.db");
    let mb = {
        let s = Store::open(&path).unwrap();
        let mb = s
            .read_sync(move |r| r.mailbox(a, "INBOX"))
            .unwrap()
            .unwrap()
            .id;
        // INTERNALDATE 2001-09-09 (1,000,000,000).
        s.write_sync(move |tx| {
            tx.append(
                mb,
                b"Subject: old\r\n\r\nx\r\n",
                &mailstore::Flags::empty(),
                1_000_000_000,
            )
        })
        .unwrap();
        s.shutdown();
        mb
    };
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(&format!(
            "{UNDO_V14} {UNDO_V13} {UNDO_V12} {UNDO_V9} PRAGMA user_version = 8;"
        ))
        .unwrap();
    }
    let s = Store::open(&path).unwrap();
    s.write_sync(move |tx| {
        tx.append(
            mb,
            b"Subject: new\r\n\r\ny\r\n",
            &mailstore::Flags::empty(),
            1_000_000_000,
        )
    })
    .unwrap();
    let metas = s.read_sync(move |r| r.messages(mb, &[1, 2])).unwrap();
    assert_eq!(metas[0].save_date, None);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let saved = metas[1].save_date.unwrap();
    assert!((now - saved).abs() < 60, "{saved} vs {now}");
    let day = 1_000_000_000 / 86_400 * 86_400;
    let search = |q: mailstore::Query| s.read_sync(move |r| r.search(mb, &q)).unwrap();
    assert_eq!(search(mailstore::Query::SavedOn(day)), [1]);
    assert_eq!(search(mailstore::Query::SavedBefore(now - 3600)), [1]);
    assert_eq!(search(mailstore::Query::SavedSince(now - 3600)), [2]);
}

#[test]
fn version_7_queued_bodies_move_to_their_own_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let body = b"Subject: queued before v8\r\n\r\nstill here\r\n".to_vec();
    {
        let s = Store::open(&path).unwrap();
        let msg = mailstore::OutMessage {
            qid: "Q7".into(),
            sender: "a@x".into(),
            raw: body.clone(),
            ret: None,
            envid: None,
            rcpts: vec![mailstore::OutRcpt {
                addr: "b@y.test".into(),
                notify: None,
                orcpt: None,
            }],
        };
        s.write_sync(move |tx| tx.enqueue(&msg)).unwrap();
        s.shutdown();
    }
    {
        // The v7 layout: the body in outq_msg.raw, no size, no outq_body,
        // no save dates.
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(&format!("{UNDO_V14} {UNDO_V13} {UNDO_V12}"))
            .unwrap();
        c.execute_batch(
            "BEGIN;
             ALTER TABLE outq_msg ADD COLUMN raw BLOB NOT NULL DEFAULT x'';
             UPDATE outq_msg SET raw = (SELECT raw FROM outq_body WHERE msg_id = outq_msg.id);
             DROP TABLE outq_body;
             ALTER TABLE outq_msg DROP COLUMN size;
             ALTER TABLE entries DROP COLUMN saved;
             PRAGMA user_version = 7; COMMIT;",
        )
        .unwrap();
    }
    let s = Store::open(&path).unwrap();
    assert_eq!(
        s.read_sync(|r| r.queue_raw_by_qid("Q7")).unwrap(),
        Some(body.clone())
    );
    let listed = s.read_sync(|r| r.queue_list()).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].size, body.len() as u64);
}

/// Migration v10 (RFC 8474 EMAILID): a version-9 file's message id
/// high-water mark starts at its newest message, so a message delivered
/// after the migration never gets the id of one deleted before it.
#[test]
fn version_9_message_ids_continue_past_the_newest() {
    let (dir, a) = closed_store_with_user();
    let path = dir.path().join("m.db");
    let (mb, newest) = {
        let s = Store::open(&path).unwrap();
        let mb = s
            .read_sync(move |r| r.mailbox(a, "INBOX"))
            .unwrap()
            .unwrap()
            .id;
        crate::util::deliver(&s, crate::util::simple("one", "x"), &[a]);
        let two = crate::util::deliver(&s, crate::util::simple("two", "y"), &[a]);
        s.shutdown();
        (mb, two.message_id)
    };
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(&format!("{UNDO_V14} {UNDO_V13} {UNDO_V12}"))
            .unwrap();
        c.execute_batch("DELETE FROM meta WHERE key = 'last_message_id'; PRAGMA user_version = 9;")
            .unwrap();
    }
    let s = Store::open(&path).unwrap();
    // Expunge the newest: its row goes, and its id must not come back.
    s.write_sync(move |tx| {
        tx.store_flags(
            mb,
            &[2],
            mailstore::FlagOp::Add,
            &mailstore::Flags::system(mailstore::Flags::DELETED),
            None,
        )?;
        tx.expunge(mb, None)
    })
    .unwrap();
    let three = crate::util::deliver(&s, crate::util::simple("three", "z"), &[a]);
    assert!(
        three.message_id > newest,
        "{} reused {}",
        three.message_id,
        newest
    );
}

/// A version-9 file gets the aliases table; its users resolve as before
/// and aliases work at once.
#[test]
fn version_9_gains_aliases() {
    let (dir, a) = closed_store_with_user();
    let path = dir.path().join("m.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(&format!("{UNDO_V14} {UNDO_V13} {UNDO_V12}"))
            .unwrap();
        c.execute_batch(
            "DROP TABLE aliases; DROP TABLE sieve_scripts; DROP TABLE sieve_seen;
             PRAGMA user_version = 9;",
        )
        .unwrap();
    }
    let s = Store::open(&path).unwrap();
    let user = s.read_sync(move |r| r.user_by_id(a)).unwrap().unwrap();
    let addr = user.address.clone();
    assert_eq!(
        s.read_sync(move |r| r.route(&addr)).unwrap(),
        mailstore::Resolution::Route(mailstore::Route {
            users: vec![a],
            forward: vec![]
        })
    );
    let target = user.address.clone();
    let domain = target.rsplit_once('@').unwrap().1.to_owned();
    let alias = format!("info@{domain}");
    let al = alias.clone();
    s.write_sync(move |tx| tx.add_alias(&al, &[target]))
        .unwrap();
    assert!(matches!(
        s.read_sync(move |r| r.route(&alias)).unwrap(),
        mailstore::Resolution::Route(r) if r.users == [a]
    ));
}

/// Every store opened for service holds `DB.lock` shared: an exclusive
/// lock (what `minimail restore` takes) is refused while one lives, and a
/// store will not open while someone holds it exclusively.
#[test]
fn open_stores_hold_the_lock_file_shared() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let a = mailstore::Store::open(&path).unwrap();
    let b = mailstore::Store::open(&path).unwrap();
    assert!(mailstore::StoreLock::exclusive(&path).unwrap().is_none());
    a.shutdown();
    drop(a);
    assert!(mailstore::StoreLock::exclusive(&path).unwrap().is_none());
    b.shutdown();
    drop(b);
    let held = mailstore::StoreLock::exclusive(&path).unwrap();
    assert!(held.is_some());
    let err = mailstore::Store::open(&path).unwrap_err();
    assert!(err.to_string().contains("is being replaced"), "{err}");
    drop(held);
    mailstore::Store::open(&path).unwrap().shutdown();
    assert_eq!(
        mailstore::schema_version(&path).unwrap(),
        mailstore::SCHEMA_VERSION
    );
}

/// A version-11 file gains threads: its messages are each their own
/// thread, and a reply delivered after the migration joins its parent's.
#[test]
fn version_11_messages_are_threaded_by_later_replies() {
    let (dir, a) = closed_store_with_user();
    let path = dir.path().join("m.db");
    {
        let s = Store::open(&path).unwrap();
        crate::util::deliver(&s, crate::util::simple("parent", "x"), &[a]);
        crate::util::deliver(&s, crate::util::simple("other", "y"), &[a]);
        s.shutdown();
    }
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(&format!(
            "{UNDO_V14} {UNDO_V13} {UNDO_V12} PRAGMA user_version = 11;"
        ))
        .unwrap();
    }
    let s = Store::open(&path).unwrap();
    let reply = b"From: b@example.org\r\nSubject: Re: parent\r\n\
Message-ID: <reply@example.org>\r\nIn-Reply-To: <parent@example.org>\r\n\r\nz\r\n"
        .to_vec();
    crate::util::deliver(&s, reply, &[a]);
    let mb = s
        .read_sync(move |r| r.mailbox(a, "INBOX"))
        .unwrap()
        .unwrap()
        .id;
    let metas = s.read_sync(move |r| r.messages(mb, &[1, 2, 3])).unwrap();
    let t: Vec<i64> = metas.iter().map(|m| m.thread_id).collect();
    assert_eq!(t[0], metas[0].message_id, "{t:?}");
    assert_eq!(t[1], metas[1].message_id, "{t:?}");
    assert_eq!(t[2], t[0], "{t:?}");
}
