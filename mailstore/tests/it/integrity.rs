//! Damage and a full disk: the start-up check refuses a store with broken
//! pages, `check_file` reports them, damage met while serving degrades the
//! store (writes refused, reads go on), and `SQLITE_FULL` (here from a page
//! limit) fails the write with `Full` and nothing else.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use mailstore::{check_file, Check, FlagOp, Flags, OpenOptions, Store, StoreError, SystemFlag};

use crate::util::{deliver, simple, user};

/// A closed store `m.db` holding user a@x and three messages.
fn closed_store_with_mail() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let s = Store::open(&path).unwrap();
    let a = user(&s, "a@x");
    for i in 0..3 {
        deliver(&s, simple(&format!("m{i}"), "some text"), &[a]);
    }
    s.shutdown();
    drop(s);
    (dir, path)
}

/// Write garbage over the root page of `table` (a b-tree page, not the
/// header page, so the file still opens as a database).
fn wreck_table(path: &Path, table: &str) {
    let (root, page_size) = {
        let c = rusqlite::Connection::open(path).unwrap();
        // Everything into the main file, so the WAL cannot mask the damage.
        c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
        let root: u64 = c
            .query_row(
                "SELECT rootpage FROM sqlite_schema WHERE name = ?1",
                [table],
                |r| r.get(0),
            )
            .unwrap();
        let size: u64 = c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
        (root, size)
    };
    assert!(root > 1, "{table} lives on page {root}");
    let garbage: Vec<u8> = (0..page_size).map(|i| (i * 7919 % 251) as u8).collect();
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start((root - 1) * page_size)).unwrap();
    f.write_all(&garbage).unwrap();
    f.sync_all().unwrap();
}

fn allow_corrupt() -> OpenOptions {
    OpenOptions {
        allow_corrupt: true,
        ..OpenOptions::default()
    }
}

#[test]
fn a_healthy_store_passes_both_checks() {
    let (_dir, path) = closed_store_with_mail();
    for kind in [Check::Quick, Check::Full] {
        let found = check_file(&path, kind, None).unwrap();
        assert!(found.ok(), "{kind:?}: {found:?}");
        assert!(found.complete, "{kind:?}");
    }
}

#[test]
fn broken_pages_are_refused_at_open_and_reported_by_the_checks() {
    let (_dir, path) = closed_store_with_mail();
    wreck_table(&path, "message_raw");
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    let msg = err.to_string();
    for part in [
        path.to_str().unwrap(),
        "quick_check",
        "minimail store check",
        ".recover",
        "--allow-corrupt-store",
    ] {
        assert!(msg.contains(part), "{part:?} missing from: {msg}");
    }
    for kind in [Check::Quick, Check::Full] {
        let found = check_file(&path, kind, None).unwrap();
        assert!(!found.ok(), "{kind:?} found nothing");
        assert!(found.complete, "{kind:?}");
    }
    // Refused before anything was written: still exactly as damaged.
    assert!(!check_file(&path, Check::Quick, None).unwrap().ok());
    // The check can be skipped, then the file opens (and reads work).
    let s = Store::open_with(
        &path,
        &OpenOptions {
            check_time: None,
            ..OpenOptions::default()
        },
    )
    .unwrap();
    assert_eq!(s.read_sync(|r| r.users()).unwrap().len(), 1);
}

#[test]
fn a_file_that_is_no_database_is_corrupt_for_the_check_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.db");
    std::fs::write(&path, vec![0x5a; 8192]).unwrap();
    let err = check_file(&path, Check::Full, None).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    // And a missing file is not created by checking it.
    let missing = dir.path().join("missing.db");
    let err = check_file(&missing, Check::Full, None).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(!missing.exists());
}

#[test]
fn damage_a_reader_meets_degrades_the_store_to_reads_only() {
    let (_dir, path) = closed_store_with_mail();
    wreck_table(&path, "message_raw");
    let s = Store::open_with(&path, &allow_corrupt()).unwrap();
    assert_eq!(s.damaged(), None, "nothing met yet");
    let a = s.read_sync(|r| r.user("a@x")).unwrap().unwrap().id;
    let inbox = s
        .read_sync(move |r| r.mailbox(a, "INBOX"))
        .unwrap()
        .unwrap()
        .id;
    // A reader thread fetches a message body from the broken page.
    let (tx, rx) = std::sync::mpsc::channel();
    s.read(move |r| r.raw(inbox, 1), move |res| tx.send(res).unwrap());
    let err = rx.recv().unwrap().unwrap_err();
    assert!(matches!(err, StoreError::Damaged(_)), "{err:?}");
    assert!(s.damaged().is_some());
    // Writes are refused from now on, even ones that touch no broken page.
    let err = s
        .write_sync(|tx| tx.create_user("b@x", "$argon2id$dummy"))
        .unwrap_err();
    assert!(matches!(err, StoreError::Damaged(_)), "{err:?}");
    assert!(err.to_string().contains("writes refused"), "{err}");
    // Reads go on.
    let users = s.read_sync(|r| r.users()).unwrap();
    assert_eq!(users.len(), 1, "b@x was not created");
    assert_eq!(s.read_sync(move |r| r.entries(inbox)).unwrap().len(), 3);
}

#[test]
fn damage_the_writer_meets_fails_that_write_and_every_later_one() {
    let (_dir, path) = closed_store_with_mail();
    wreck_table(&path, "message_raw");
    let s = Store::open_with(&path, &allow_corrupt()).unwrap();
    let a = s.read_sync(|r| r.user("a@x")).unwrap().unwrap().id;
    let raw = simple("new", "into a broken table");
    let err = s
        .write_sync(move |tx| {
            tx.deliver(
                &mailstore::NewMessage {
                    raw,
                    internal_date: 1,
                },
                &[a],
            )
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::Damaged(_)), "{err:?}");
    assert!(s.damaged().is_some());
    let err = s
        .write_sync(|tx| tx.create_user("b@x", "$argon2id$dummy"))
        .unwrap_err();
    assert!(matches!(err, StoreError::Damaged(_)), "{err:?}");
    let inbox = s
        .read_sync(move |r| r.mailbox(a, "INBOX"))
        .unwrap()
        .unwrap()
        .id;
    assert_eq!(s.read_sync(move |r| r.entries(inbox)).unwrap().len(), 3);
}

#[test]
fn a_full_database_fails_the_write_with_full_and_goes_on_serving() {
    let (_dir, path) = closed_store_with_mail();
    // No growth at all: any write that needs a new page is a full disk.
    let s = Store::open_with(
        &path,
        &OpenOptions {
            max_pages: Some(1),
            ..OpenOptions::default()
        },
    )
    .unwrap();
    let a = s.read_sync(|r| r.user("a@x")).unwrap().unwrap().id;
    let inbox = s
        .read_sync(move |r| r.mailbox(a, "INBOX"))
        .unwrap()
        .unwrap()
        .id;
    let big = simple("big", &"x".repeat(200 * 1024));
    let err = s
        .write_sync(move |tx| {
            tx.deliver(
                &mailstore::NewMessage {
                    raw: big,
                    internal_date: 1,
                },
                &[a],
            )
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::Full(_)), "{err:?}");
    assert!(err.to_string().contains("full"), "{err}");
    // Not damage: nothing degraded, reads and writes that fit go on.
    assert_eq!(s.damaged(), None);
    assert_eq!(s.read_sync(move |r| r.entries(inbox)).unwrap().len(), 3);
    assert_eq!(
        s.read_sync(move |r| r.raw(inbox, 1)).unwrap(),
        simple("m0", "some text")
    );
    let mut seen = Flags::default();
    seen.set(SystemFlag::Seen, true);
    s.write_sync(move |tx| tx.store_flags(inbox, &[1], FlagOp::Add, &seen, None))
        .unwrap();
    s.shutdown();
    drop(s);
    assert!(check_file(&path, Check::Full, None).unwrap().ok());
}

#[test]
fn a_check_stopped_by_its_time_limit_says_it_is_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.db");
    drop(Store::open(&path).unwrap());
    {
        // Enough pages that checking them takes far longer than the limit.
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE filler(b BLOB);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
             INSERT INTO filler SELECT randomblob(3000) FROM n;",
        )
        .unwrap();
    }
    let started = std::time::Instant::now();
    let whole = check_file(&path, Check::Quick, None).unwrap();
    let took = started.elapsed();
    assert!(whole.ok() && whole.complete, "{whole:?}");
    // A few tries, so a loaded machine that delays the timer thread past
    // the whole check does not fail the test; a limit that never works does.
    let cut = (0..3)
        .map(|_| check_file(&path, Check::Quick, Some(Duration::from_millis(1))).unwrap())
        .find(|c| !c.complete);
    let cut = cut.unwrap_or_else(|| panic!("never cut short; the whole check takes {took:?}"));
    assert!(cut.ok(), "an interrupted check is no damage: {cut:?}");
}
