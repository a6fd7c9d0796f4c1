//! Helpers shared by the integration tests of the server crates (smtpd,
//! imapd, the `minimail` binary): one copy instead of one per harness.
//! A dev-dependency only; nothing here ships in a server.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Make sure everything of the closed SQLite store at `path` is in the main
/// file: the last connection to close checkpoints the WAL, unless it is a
/// read-only reader's (they close just after shutdown returns, in any
/// order), so checkpoint it here until the WAL is empty. Panics after 20 s.
pub fn checkpoint_closed_store(path: &Path) {
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    let waited = Instant::now();
    while std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0)
        && waited.elapsed() < Duration::from_secs(20)
    {
        std::thread::sleep(Duration::from_millis(20));
        if let Ok(conn) = rusqlite::Connection::open(path) {
            let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
    }
    assert!(
        std::fs::metadata(&wal).map_or(true, |m| m.len() == 0),
        "the WAL was checkpointed into the file"
    );
}

/// Write garbage over every page (but the header page) of the closed
/// store file at `path` that holds `marker`; returns how many. The
/// damage SQLite's `quick_check` and queries then meet is real.
pub fn wreck_pages_holding(path: &Path, marker: &[u8]) -> usize {
    checkpoint_closed_store(path);
    let mut bytes = std::fs::read(path).unwrap();
    let page_size = match u16::from_be_bytes([bytes[16], bytes[17]]) {
        1 => 65536,
        n => usize::from(n),
    };
    let mut wrecked = 0;
    for page in bytes.chunks_mut(page_size).skip(1) {
        if page.windows(marker.len()).any(|w| w == marker) {
            for (i, b) in page.iter_mut().enumerate() {
                *b = (i * 7919 % 251) as u8;
            }
            wrecked += 1;
        }
    }
    std::fs::write(path, &bytes).unwrap();
    wrecked
}
