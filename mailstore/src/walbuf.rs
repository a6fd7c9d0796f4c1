//! One `pwrite` per commit for the WAL (issue 21).
//!
//! SQLite writes each WAL frame as two `pwrite`s, a 24-byte header and
//! the page, so a commit of 40 pages is 80 system calls (87,000 a second
//! on the writer under imaptest's stress profile). This module registers,
//! as the process's default, a VFS over SQLite's own ("unix") that differs
//! in one thing: while a thread runs a `COMMIT` through [`commit`], the
//! frames it appends to a WAL file are gathered in memory and written with
//! one `pwrite` (128 KiB at most each, the unix VFS's own limit) when the
//! commit frame is complete, or earlier when SQLite syncs, reads, sizes or
//! truncates the file. Everything else (the database file, reads, the
//! shared-memory index and locks, any write outside [`commit`], such as a
//! transaction's cache spills) goes straight to the unix VFS.
//!
//! Why this is safe:
//! - A `synchronous = FULL` commit syncs the WAL before it publishes the
//!   commit in the WAL index: the sync writes the gathered frames first,
//!   so what is durable, and when, is unchanged.
//! - A `synchronous = NORMAL` commit (the indexer) does not sync: the
//!   frames are written as soon as the commit frame's page is (its header
//!   carries the database size, bytes 4-8, zero in other frames), still
//!   before SQLite publishes the commit, so no other connection can see a
//!   frame that is not in the file.
//! - Frames are only held during a `COMMIT`, under SQLite's WAL write lock.
//!   Whatever a failed `COMMIT` left held is dropped when it returns: it
//!   can never be written later over frames another connection or process
//!   committed meanwhile. (A commit that succeeded has nothing left; should
//!   it have, that is written out before [`commit`] returns.)
//! - A commit bigger than 1 MiB is written out in pieces as it goes; the
//!   commit frame's page is still written out the moment it is gathered.
#![allow(unsafe_code)]

use rusqlite::ffi;
use std::cell::Cell;
use std::os::raw::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Our file object: SQLite allocates `szOsFile` bytes for it, and the unix
/// VFS's own file object follows at [`HDR`].
#[repr(C)]
struct Wrap {
    file: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    /// Set for WAL files only.
    buf: *mut Buf,
}

struct Buf {
    off: i64,
    data: Vec<u8>,
    /// The last write was a commit frame's header: write out after its page.
    commit_next: bool,
}

const HDR: usize = (std::mem::size_of::<Wrap>() + 15) & !15;
/// The unix VFS writes at most 128 KiB - 1 bytes per call (`seekAndWriteFd`).
const CHUNK: usize = 0x1f000;
/// Above this a gathered commit is written out and gathering starts again
/// (so the buffer the writer keeps stays about 1 MiB however big a commit).
const CAP: usize = 1 << 20;

struct Registered {
    methods: *const ffi::sqlite3_io_methods,
}
// SAFETY: the pointers are to leaked, never-mutated tables.
unsafe impl Send for Registered {}
unsafe impl Sync for Registered {}

static REGISTERED: OnceLock<Option<Registered>> = OnceLock::new();
/// WAL writes gathered and `pwrite`s made for them, for tests and metrics.
static GATHERED: AtomicU64 = AtomicU64::new(0);
static WRITTEN: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static COMMITTING: Cell<bool> = const { Cell::new(false) };
    /// A smaller [`CAP`] for this thread's commits (tests).
    #[cfg(test)]
    static CAP_FOR_TEST: Cell<usize> = const { Cell::new(0) };
    /// The WAL file this thread's current commit gathered into.
    static LAST: Cell<*mut Wrap> = const { Cell::new(std::ptr::null_mut()) };
}

/// Make the gathering VFS the default for connections opened after this
/// (once per process; if SQLite has no default VFS, nothing changes).
pub(crate) fn register() {
    REGISTERED.get_or_init(|| {
        // SAFETY: sqlite3_vfs_find/register are thread-safe; the tables
        // handed to SQLite are leaked, so they live as long as the process.
        unsafe {
            let base = ffi::sqlite3_vfs_find(std::ptr::null());
            if base.is_null() || (*base).szOsFile <= 0 {
                return None;
            }
            let methods: &'static ffi::sqlite3_io_methods =
                Box::leak(Box::new(ffi::sqlite3_io_methods {
                    iVersion: 3,
                    xClose: Some(x_close),
                    xRead: Some(x_read),
                    xWrite: Some(x_write),
                    xTruncate: Some(x_truncate),
                    xSync: Some(x_sync),
                    xFileSize: Some(x_file_size),
                    xLock: Some(x_lock),
                    xUnlock: Some(x_unlock),
                    xCheckReservedLock: Some(x_check_reserved_lock),
                    xFileControl: Some(x_file_control),
                    xSectorSize: Some(x_sector_size),
                    xDeviceCharacteristics: Some(x_device_characteristics),
                    xShmMap: Some(x_shm_map),
                    xShmLock: Some(x_shm_lock),
                    xShmBarrier: Some(x_shm_barrier),
                    xShmUnmap: Some(x_shm_unmap),
                    xFetch: Some(x_fetch),
                    xUnfetch: Some(x_unfetch),
                }));
            let mut vfs: ffi::sqlite3_vfs = *base;
            vfs.szOsFile = c_int::try_from(HDR + (*base).szOsFile as usize).ok()?;
            vfs.zName = c"minimail-walbuf".as_ptr();
            vfs.pAppData = base.cast();
            vfs.pNext = std::ptr::null_mut();
            vfs.xOpen = Some(x_open);
            let vfs: &'static mut ffi::sqlite3_vfs = Box::leak(Box::new(vfs));
            if ffi::sqlite3_vfs_register(vfs, 1) != ffi::SQLITE_OK {
                return None;
            }
            Some(Registered { methods })
        }
    });
}

/// Run `f` (a `COMMIT`) with this thread's WAL frames gathered into one
/// write. A commit that succeeded has written everything out (at its sync,
/// or after its commit frame); should anything be left, it is written now.
/// What a failed commit left gathered was never committed and is dropped.
pub(crate) fn commit<T, E>(f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    COMMITTING.with(|c| c.set(true));
    LAST.with(|l| l.set(std::ptr::null_mut()));
    let out = f();
    COMMITTING.with(|c| c.set(false));
    let last = LAST.with(|l| l.replace(std::ptr::null_mut()));
    if !last.is_null() {
        // SAFETY: LAST is cleared when its file closes (x_close), so it
        // points to an open WAL file of this thread's connection.
        unsafe {
            if out.is_ok() {
                let rc = flush(last.cast());
                if rc != ffi::SQLITE_OK {
                    log::error!("mail store: writing out the WAL after a commit failed ({rc})");
                }
            } else if let Some(b) = (*last).buf.as_mut() {
                b.data.clear();
                b.commit_next = false;
            }
        }
    }
    out
}

/// (WAL writes gathered, `pwrite`s made for them) since the process started.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) fn counts() -> (u64, u64) {
    (
        GATHERED.load(Ordering::Relaxed),
        WRITTEN.load(Ordering::Relaxed),
    )
}

fn cap() -> usize {
    #[cfg(test)]
    {
        let c = CAP_FOR_TEST.with(Cell::get);
        if c != 0 {
            return c;
        }
    }
    CAP
}

/// The unix VFS's file object and methods under `f`.
unsafe fn real(
    f: *mut ffi::sqlite3_file,
) -> (*mut ffi::sqlite3_file, &'static ffi::sqlite3_io_methods) {
    let r = (*f.cast::<Wrap>()).real;
    (r, &*(*r).pMethods)
}

/// Write out what `f` gathered.
unsafe fn flush(f: *mut ffi::sqlite3_file) -> c_int {
    let w = &mut *f.cast::<Wrap>();
    let Some(b) = w.buf.as_mut() else {
        return ffi::SQLITE_OK;
    };
    b.commit_next = false;
    if b.data.is_empty() {
        return ffi::SQLITE_OK;
    }
    let (r, m) = real(f);
    let Some(write) = m.xWrite else {
        b.data.clear();
        return ffi::SQLITE_IOERR_WRITE;
    };
    let mut rc = ffi::SQLITE_OK;
    let mut off = b.off;
    for chunk in b.data.chunks(CHUNK) {
        // CHUNK fits a c_int.
        rc = write(r, chunk.as_ptr().cast(), chunk.len() as c_int, off);
        if rc != ffi::SQLITE_OK {
            break;
        }
        off += chunk.len() as i64;
        WRITTEN.fetch_add(1, Ordering::Relaxed);
    }
    b.data.clear();
    rc
}

macro_rules! or_flush {
    ($f:expr) => {
        let rc = flush($f);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
    };
}

unsafe extern "C" fn x_open(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    f: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let base = (*vfs).pAppData.cast::<ffi::sqlite3_vfs>();
    let Some(open) = (*base).xOpen else {
        return ffi::SQLITE_CANTOPEN;
    };
    let Some(reg) = REGISTERED.get().and_then(Option::as_ref) else {
        return ffi::SQLITE_CANTOPEN;
    };
    let w = f.cast::<Wrap>();
    let r = f.cast::<u8>().add(HDR).cast::<ffi::sqlite3_file>();
    (*w).file.pMethods = std::ptr::null();
    (*w).real = r;
    (*w).buf = std::ptr::null_mut();
    let rc = open(base, name, r, flags, out_flags);
    if (*r).pMethods.is_null() {
        return rc;
    }
    if flags & ffi::SQLITE_OPEN_WAL != 0 {
        (*w).buf = Box::into_raw(Box::new(Buf {
            off: 0,
            data: Vec::new(),
            commit_next: false,
        }));
    }
    (*w).file.pMethods = reg.methods;
    rc
}

unsafe extern "C" fn x_close(f: *mut ffi::sqlite3_file) -> c_int {
    let rc = flush(f);
    let w = &mut *f.cast::<Wrap>();
    LAST.with(|l| {
        if std::ptr::eq(l.get(), w) {
            l.set(std::ptr::null_mut());
        }
    });
    if !w.buf.is_null() {
        drop(Box::from_raw(w.buf));
        w.buf = std::ptr::null_mut();
    }
    let (r, m) = real(f);
    let rc2 = m.xClose.map_or(ffi::SQLITE_OK, |close| close(r));
    if rc != ffi::SQLITE_OK {
        rc
    } else {
        rc2
    }
}

unsafe extern "C" fn x_write(
    f: *mut ffi::sqlite3_file,
    p: *const c_void,
    amt: c_int,
    off: i64,
) -> c_int {
    // A raw pointer: flush() below takes its own reference to the file.
    let w = f.cast::<Wrap>();
    let gather = !(*w).buf.is_null() && COMMITTING.with(Cell::get) && amt > 0;
    if !gather {
        or_flush!(f);
        let (r, m) = real(f);
        return m
            .xWrite
            .map_or(ffi::SQLITE_IOERR_WRITE, |write| write(r, p, amt, off));
    }
    LAST.with(|l| l.set(w));
    let buf = (*w).buf;
    // Taken before a write-out below, which forgets it.
    let after_commit_header = std::mem::replace(&mut (*buf).commit_next, false);
    let src = std::slice::from_raw_parts(p.cast::<u8>(), amt as usize);
    let held = (*buf).data.len();
    if held == 0 || (*buf).off + held as i64 != off || held + src.len() > cap() {
        or_flush!(f);
        (*buf).off = off;
    }
    let b = &mut *buf;
    b.data.extend_from_slice(src);
    GATHERED.fetch_add(1, Ordering::Relaxed);
    if src.len() == 24 {
        // A frame header: bytes 4-8 are the database size after a commit
        // frame, zero otherwise.
        b.commit_next = src[4..8] != [0, 0, 0, 0];
        return ffi::SQLITE_OK;
    }
    if after_commit_header {
        return flush(f);
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_read(
    f: *mut ffi::sqlite3_file,
    p: *mut c_void,
    amt: c_int,
    off: i64,
) -> c_int {
    or_flush!(f);
    let (r, m) = real(f);
    m.xRead
        .map_or(ffi::SQLITE_IOERR_READ, |read| read(r, p, amt, off))
}

unsafe extern "C" fn x_truncate(f: *mut ffi::sqlite3_file, size: i64) -> c_int {
    or_flush!(f);
    let (r, m) = real(f);
    m.xTruncate
        .map_or(ffi::SQLITE_IOERR_TRUNCATE, |t| t(r, size))
}

unsafe extern "C" fn x_sync(f: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    or_flush!(f);
    let (r, m) = real(f);
    m.xSync.map_or(ffi::SQLITE_IOERR_FSYNC, |s| s(r, flags))
}

unsafe extern "C" fn x_file_size(f: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
    or_flush!(f);
    let (r, m) = real(f);
    m.xFileSize.map_or(ffi::SQLITE_IOERR_FSTAT, |s| s(r, size))
}

unsafe extern "C" fn x_lock(f: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    let (r, m) = real(f);
    m.xLock.map_or(ffi::SQLITE_IOERR_LOCK, |l| l(r, level))
}

unsafe extern "C" fn x_unlock(f: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    or_flush!(f);
    let (r, m) = real(f);
    m.xUnlock.map_or(ffi::SQLITE_IOERR_UNLOCK, |u| u(r, level))
}

unsafe extern "C" fn x_check_reserved_lock(f: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    let (r, m) = real(f);
    m.xCheckReservedLock
        .map_or(ffi::SQLITE_IOERR_CHECKRESERVEDLOCK, |c| c(r, out))
}

unsafe extern "C" fn x_file_control(
    f: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    let (r, m) = real(f);
    m.xFileControl
        .map_or(ffi::SQLITE_NOTFOUND, |c| c(r, op, arg))
}

unsafe extern "C" fn x_sector_size(f: *mut ffi::sqlite3_file) -> c_int {
    let (r, m) = real(f);
    m.xSectorSize.map_or(4096, |s| s(r))
}

unsafe extern "C" fn x_device_characteristics(f: *mut ffi::sqlite3_file) -> c_int {
    let (r, m) = real(f);
    m.xDeviceCharacteristics.map_or(0, |d| d(r))
}

unsafe extern "C" fn x_shm_map(
    f: *mut ffi::sqlite3_file,
    region: c_int,
    size: c_int,
    extend: c_int,
    pp: *mut *mut c_void,
) -> c_int {
    let (r, m) = real(f);
    m.xShmMap
        .map_or(ffi::SQLITE_IOERR_SHMMAP, |s| s(r, region, size, extend, pp))
}

unsafe extern "C" fn x_shm_lock(
    f: *mut ffi::sqlite3_file,
    ofst: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    let (r, m) = real(f);
    m.xShmLock
        .map_or(ffi::SQLITE_IOERR_SHMLOCK, |s| s(r, ofst, n, flags))
}

unsafe extern "C" fn x_shm_barrier(f: *mut ffi::sqlite3_file) {
    let (r, m) = real(f);
    if let Some(b) = m.xShmBarrier {
        b(r);
    }
}

unsafe extern "C" fn x_shm_unmap(f: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    let (r, m) = real(f);
    m.xShmUnmap.map_or(ffi::SQLITE_OK, |s| s(r, delete))
}

unsafe extern "C" fn x_fetch(
    f: *mut ffi::sqlite3_file,
    off: i64,
    amt: c_int,
    pp: *mut *mut c_void,
) -> c_int {
    or_flush!(f);
    let (r, m) = real(f);
    match m.xFetch {
        Some(fetch) if m.iVersion >= 3 => fetch(r, off, amt, pp),
        _ => {
            *pp = std::ptr::null_mut();
            ffi::SQLITE_OK
        }
    }
}

unsafe extern "C" fn x_unfetch(f: *mut ffi::sqlite3_file, off: i64, p: *mut c_void) -> c_int {
    let (r, m) = real(f);
    match m.xUnfetch {
        Some(unfetch) if m.iVersion >= 3 => unfetch(r, off, p),
        _ => ffi::SQLITE_OK,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    fn open(path: &std::path::Path) -> Connection {
        register();
        let c = Connection::open(path).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;",
        )
        .unwrap();
        c
    }

    fn count(c: &Connection) -> i64 {
        c.query_row("SELECT count(*), sum(length(b)) FROM t", [], |r| r.get(0))
            .unwrap()
    }

    /// Commits through [`commit`] are gathered (fewer `pwrite`s than
    /// writes), durable and visible to another connection at once, with
    /// `synchronous = FULL` and `NORMAL` (where only the commit frame's
    /// header tells the commit is complete).
    #[test]
    fn gathered_commits_are_visible_to_another_connection_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let a = open(&path);
        let b = open(&path);
        a.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB)")
            .unwrap();
        // 20 rows are 600 KB of frames; 100 rows, 3 MB, pass the 1 MiB
        // at which a gathered commit is written out in the middle.
        let mut rows = 0;
        for (sync, n) in [("FULL", 20), ("NORMAL", 20), ("FULL", 100), ("NORMAL", 100)] {
            a.execute_batch(&format!("PRAGMA synchronous = {sync}; BEGIN"))
                .unwrap();
            rows += n;
            for _ in 0..n {
                a.execute("INSERT INTO t(b) VALUES (randomblob(30000))", [])
                    .unwrap();
            }
            let (g0, w0) = counts();
            commit(|| a.execute_batch("COMMIT")).unwrap();
            let (g1, w1) = counts();
            assert!(
                g1 - g0 > 2 * (w1 - w0),
                "{sync}: {} writes gathered into {} pwrites",
                g1 - g0,
                w1 - w0
            );
            assert_eq!(count(&b), rows, "{sync} {n}");
            let ok: String = b.query_row("PRAGMA quick_check", [], |r| r.get(0)).unwrap();
            assert_eq!(ok, "ok");
        }
        drop(a);
        drop(b);
        let c = open(&path);
        assert_eq!(count(&c), 240);
    }

    /// A gathered commit written out in the middle (past the cap) at any
    /// point, the commit frame's page included, still reaches the file
    /// before the commit is published (`synchronous = NORMAL`: no sync
    /// writes it out).
    #[test]
    fn a_commit_written_out_in_the_middle_is_complete() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let a = open(&path);
        let b = open(&path);
        a.execute_batch(
            "CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB); PRAGMA synchronous = NORMAL;",
        )
        .unwrap();
        let mut rows = 0;
        // Frames are 4,120 bytes: caps a few bytes apart over three frames
        // put the write-out at every point of a frame, the commit frame's
        // page among them.
        for cap in (4_000..16_500).step_by(61) {
            CAP_FOR_TEST.with(|c| c.set(cap));
            a.execute_batch("BEGIN").unwrap();
            for _ in 0..3 {
                a.execute("INSERT INTO t(b) VALUES (randomblob(5000))", [])
                    .unwrap();
            }
            commit(|| a.execute_batch("COMMIT")).unwrap();
            rows += 3;
            assert_eq!(count(&b), rows, "cap {cap}");
        }
        CAP_FOR_TEST.with(|c| c.set(0));
        let ok: String = b
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
    }

    /// A transaction that spilled frames and rolled back, and a commit
    /// that failed, leave nothing behind that could later be written over
    /// another connection's commit.
    #[test]
    fn frames_of_a_failed_commit_are_never_written_later() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let a = open(&path);
        let b = open(&path);
        a.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB); PRAGMA cache_size = 10;")
            .unwrap();
        // A spill (outside commit: written through), then a rollback.
        a.execute_batch("BEGIN").unwrap();
        for _ in 0..50 {
            a.execute("INSERT INTO t(b) VALUES (randomblob(8000))", [])
                .unwrap();
        }
        a.execute_batch("ROLLBACK").unwrap();
        // A COMMIT that fails after gathering: a deferred foreign key.
        a.execute_batch(
            "CREATE TABLE p(id INTEGER PRIMARY KEY); \
             CREATE TABLE c(pid INTEGER REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED); \
             PRAGMA foreign_keys = ON;",
        )
        .unwrap();
        a.execute_batch("BEGIN; INSERT INTO c VALUES (7);").unwrap();
        assert!(commit(|| a.execute_batch("COMMIT")).is_err());
        a.execute_batch("ROLLBACK").unwrap();
        // Another connection commits; then the first again.
        b.execute_batch("BEGIN").unwrap();
        for _ in 0..30 {
            b.execute("INSERT INTO t(b) VALUES (randomblob(5000))", [])
                .unwrap();
        }
        commit(|| b.execute_batch("COMMIT")).unwrap();
        a.execute_batch("BEGIN").unwrap();
        a.execute("INSERT INTO t(b) VALUES (randomblob(5000))", [])
            .unwrap();
        commit(|| a.execute_batch("COMMIT")).unwrap();
        assert_eq!(count(&b), 31);
        let ok: String = b
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
    }
}
