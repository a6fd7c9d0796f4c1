//! `mailbench maildir --dir D --count N`: write the same N messages that
//! `imap populate` APPENDs as files of a Maildir folder (`D/cur`), so a
//! Maildir server (Dovecot) can be measured on a mailbox far bigger than it
//! could be APPENDed to in reasonable time (~100 msg/s). The server indexes
//! the folder on first access, which `imap select`'s first (cold) round
//! shows.

use anyhow::{Context, Result};
use std::fs;
use std::path::Path;

/// Write `count` messages of `size` bytes into `dir`/cur (creating `cur`,
/// `new` and `tmp`). Returns how many files were written.
pub fn write(dir: &Path, count: u64, size: usize) -> Result<u64> {
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(dir.join(sub))
            .with_context(|| format!("create {}", dir.join(sub).display()))?;
    }
    let cur = dir.join("cur");
    for n in 0..count {
        // Maildir names: unique, then ":2," and the (empty) flags.
        let name = format!(
            "{}.M{n}P{}.mailbench:2,",
            1_767_225_600 + n,
            std::process::id()
        );
        let path = cur.join(name);
        fs::write(&path, crate::imap::message(n, size))
            .with_context(|| format!("write {}", path.display()))?;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_maildir_folder_of_populate_messages() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("m10");
        assert_eq!(write(&dir, 10, 1024).unwrap(), 10);
        let mut names: Vec<String> = fs::read_dir(dir.join("cur"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names.len(), 10);
        assert!(names.iter().all(|n| n.ends_with(":2,")));
        assert!(dir.join("new").is_dir() && dir.join("tmp").is_dir());
        let seven = fs::read_dir(dir.join("cur"))
            .unwrap()
            .map(|e| fs::read(e.unwrap().path()).unwrap())
            .filter(|m| m.windows(7).any(|w| w == b"kumquat"))
            .count();
        assert_eq!(seven, 1, "message 7 mentions the search word");
    }
}
