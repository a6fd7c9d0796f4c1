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

/// Start `bin up` (the `minimail` binary) on ephemeral ports over the store
/// `db`, with `extra` arguments and `env` variables; returns the child, its
/// start-up line (`minimail up: smtp on A, imap on B, ...`) and the log
/// lines before it. Panics if it exits first. Later stderr is drained.
pub fn minimail_up(
    bin: &str,
    db: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (std::process::Child, String, String) {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};
    let mut child = Command::new(bin)
        .args([
            "up",
            "--smtp",
            "127.0.0.1:0",
            "--imap",
            "127.0.0.1:0",
            "--db",
        ])
        .arg(db)
        .args(extra)
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut before = String::new();
    let line = loop {
        let mut line = String::new();
        err.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "exited before it was up: {before}");
        if line.starts_with("minimail up: ") {
            break line;
        }
        before.push_str(&line);
    };
    std::thread::spawn(move || {
        let mut sink = String::new();
        let _ = err.read_to_string(&mut sink);
    });
    (child, line, before)
}

/// The address after `what on ` in a start-up line (`smtp`, `imap`).
pub fn addr_of(line: &str, what: &str) -> String {
    line.split(&format!("{what} on "))
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or_else(|| panic!("no {what} in {line}"))
        .trim()
        .to_string()
}
