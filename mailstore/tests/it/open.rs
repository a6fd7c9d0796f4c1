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

#[test]
fn old_schema_is_migrated_and_newer_schema_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let s = Store::open(&path).unwrap();
    let a = crate::util::user(&s, "a@x");
    s.shutdown();
    drop(s);
    {
        // Make it look like a version-1 file.
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("DROP TABLE pending_text; PRAGMA user_version = 1;")
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
    assert_eq!(v, 2);
    let fts: i64 = c
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'message_text' AND sql LIKE '%trigram%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(fts, 1, "FTS5 trigram index present");
}
