//! Maildir and Maildir++ (the layout Dovecot, Courier and mutt use): the
//! folder tree, the flags in file names, Dovecot's keyword letters, and a
//! writer.
//!
//! A Maildir root holds the INBOX (`cur/`, `new/`, `tmp/`) and one
//! directory per other folder, `.A.B` for `A/B` (names in modified UTF-7,
//! RFC 3501 §5.1.3, as Dovecot keeps them). A message is one file in `new/`
//! or `cur/`; after `:2,` its name lists flags: `D` `\Draft`, `F`
//! `\Flagged`, `P` passed (`$Forwarded`), `R` `\Answered`, `S` `\Seen`,
//! `T` `\Deleted`, and lower-case letters, keywords numbered by the
//! folder's `dovecot-keywords` file (`0 $Forwarded` = `a`). The file's
//! modification time is the message's internal date (Dovecot's received
//! date). Order: Dovecot's `dovecot-uidlist` where there is one, else
//! the file names (the time they start with, then the rest).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mailstore::{Flags, SystemFlag};

use crate::error::{io, Result};
use crate::message::{to_lf, valid_keyword};

/// Dovecot's keyword file: line `N name` gives keyword N the letter
/// `a` + N.
pub const KEYWORDS_FILE: &str = "dovecot-keywords";
/// Dovecot's UID list (the order of the messages).
pub const UIDLIST_FILE: &str = "dovecot-uidlist";
/// Keywords a Maildir folder can carry (`a` to `z`).
pub const MAX_KEYWORDS: usize = 26;

/// One folder of a Maildir tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    /// The store's name (`INBOX`, `A/B`).
    pub name: String,
    /// Its directory.
    pub dir: PathBuf,
}

fn is_maildir(dir: &Path) -> bool {
    dir.join("cur").is_dir() || dir.join("new").is_dir()
}

/// The folders under the Maildir++ root `root`, INBOX first.
///
/// # Errors
/// I/O errors; a root that is no Maildir and holds no `.Folder` is
/// `Format`.
pub fn folders(root: &Path) -> Result<Vec<Folder>> {
    let mut out = Vec::new();
    if is_maildir(root) {
        out.push(Folder {
            name: "INBOX".into(),
            dir: root.to_path_buf(),
        });
    }
    let mut subs = Vec::new();
    for e in fs::read_dir(root).map_err(io(root))? {
        let e = e.map_err(io(root))?;
        let name = e.file_name();
        let Some(name) = name.to_str() else {
            log::warn!("{}: name is not UTF-8; skipped", e.path().display());
            continue;
        };
        let Some(rest) = name.strip_prefix('.') else {
            continue;
        };
        if rest.is_empty() || rest == "." || !is_maildir(&e.path()) {
            continue;
        }
        match imapd::utf7::decode(rest.as_bytes()) {
            Ok(decoded) => {
                let store_name = decoded.replace('.', "/");
                subs.push(Folder {
                    name: store_name,
                    dir: e.path(),
                });
            }
            Err(err) => log::warn!("{}: {err}; skipped", e.path().display()),
        }
    }
    subs.sort_by(|a, b| a.name.cmp(&b.name));
    out.extend(subs);
    if out.is_empty() {
        return Err(crate::TransferError::Format(format!(
            "{} is not a Maildir: no cur/ or new/ and no .Folder directories",
            root.display()
        )));
    }
    Ok(out)
}

/// The keyword letters of a folder (`dovecot-keywords`), by index.
fn keyword_letters(dir: &Path) -> Vec<Option<String>> {
    let mut out = vec![None; MAX_KEYWORDS];
    let Ok(text) = fs::read_to_string(dir.join(KEYWORDS_FILE)) else {
        return out;
    };
    for line in text.lines() {
        let mut it = line.splitn(2, ' ');
        if let (Some(n), Some(kw)) = (it.next(), it.next()) {
            if let Ok(n) = n.parse::<usize>() {
                if n < MAX_KEYWORDS && valid_keyword(kw) {
                    out[n] = Some(kw.to_string());
                }
            }
        }
    }
    out
}

/// A message file of a folder, in order.
#[derive(Debug, Clone)]
pub struct MessageFile {
    /// Its path.
    pub path: PathBuf,
    /// Its flags, from the name.
    pub flags: Flags,
}

/// The flags in a Maildir file name (after `:2,`), keywords through
/// `letters`.
pub fn name_flags(name: &str, letters: &[Option<String>]) -> Flags {
    let mut flags = Flags::empty();
    let Some((_, info)) = name.rsplit_once(":2,") else {
        return flags;
    };
    for c in info.chars() {
        match c {
            'D' => flags.set(SystemFlag::Draft, true),
            'F' => flags.set(SystemFlag::Flagged, true),
            'P' => flags.add_keyword("$Forwarded"),
            'R' => flags.set(SystemFlag::Answered, true),
            'S' => flags.set(SystemFlag::Seen, true),
            'T' => flags.set(SystemFlag::Deleted, true),
            'a'..='z' => {
                if let Some(Some(kw)) = letters.get((c as u8 - b'a') as usize) {
                    flags.add_keyword(kw);
                }
            }
            _ => {}
        }
    }
    flags
}

/// The part of a file name before its info (`:2,...`): what
/// `dovecot-uidlist` names.
fn base_name(name: &str) -> &str {
    name.split_once(':').map_or(name, |(b, _)| b)
}

/// The order of files without a UID: the time the name starts with, then
/// the name.
fn name_key(name: &str) -> (u64, String) {
    let digits: String = name.chars().take_while(char::is_ascii_digit).collect();
    (digits.parse().unwrap_or(u64::MAX), name.to_string())
}

/// Dovecot's UIDs by base name (`dovecot-uidlist`: a header line, then
/// `UID [EXT...] :BASE` in version 3, `UID BASE` in version 1).
fn uidlist(dir: &Path) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    let Ok(text) = fs::read_to_string(dir.join(UIDLIST_FILE)) else {
        return out;
    };
    for line in text.lines().skip(1) {
        let mut tokens = line.split(' ');
        let Some(Ok(uid)) = tokens.next().map(str::parse::<u64>) else {
            continue;
        };
        let rest: Vec<&str> = tokens.collect();
        let base = match line.find(" :") {
            Some(i) => &line[i + 2..],
            None => rest.last().copied().unwrap_or(""),
        };
        if !base.is_empty() {
            out.insert(base.to_string(), uid);
        }
    }
    out
}

/// The message files of one folder (`new/` and `cur/`), in order.
///
/// # Errors
/// I/O errors reading the directories.
pub fn message_files(dir: &Path) -> Result<Vec<MessageFile>> {
    let letters = keyword_letters(dir);
    let uids = uidlist(dir);
    let mut found: Vec<(Option<u64>, (u64, String), MessageFile)> = Vec::new();
    for sub in ["new", "cur"] {
        let d = dir.join(sub);
        if !d.is_dir() {
            continue;
        }
        for e in fs::read_dir(&d).map_err(io(&d))? {
            let e = e.map_err(io(&d))?;
            let name = e.file_name();
            let Some(name) = name.to_str() else {
                log::warn!("{}: name is not UTF-8; skipped", e.path().display());
                continue;
            };
            if name.starts_with('.') || !e.file_type().map_err(io(&d))?.is_file() {
                continue;
            }
            let uid = uids.get(base_name(name)).copied();
            found.push((
                uid,
                name_key(name),
                MessageFile {
                    path: e.path(),
                    flags: name_flags(name, &letters),
                },
            ));
        }
    }
    // Files Dovecot numbered first, by UID; the rest after, by name.
    found.sort_by(|a, b| match (a.0, b.0) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.1.cmp(&b.1),
    });
    Ok(found.into_iter().map(|f| f.2).collect())
}

/// The internal date of a message file: its modification time, else the
/// time its name starts with, else 0.
pub fn file_date(path: &Path, meta: &fs::Metadata) -> i64 {
    if let Ok(t) = meta.modified() {
        if let Ok(d) = t.duration_since(UNIX_EPOCH) {
            return d.as_secs() as i64;
        }
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let (t, _) = name_key(name);
    if t == u64::MAX {
        0
    } else {
        t as i64
    }
}

/// The directory of folder `name` under the Maildir++ root `root`.
pub fn folder_dir(root: &Path, name: &str) -> PathBuf {
    if name == "INBOX" {
        return root.to_path_buf();
    }
    let parts: Vec<String> = name.split('/').map(imapd::utf7::encode).collect();
    root.join(format!(".{}", parts.join(".")))
}

/// Writes one folder: files into `tmp/`, then renamed into `cur/` with
/// their flags and the internal date as modification time; the keyword
/// letters into `dovecot-keywords` at [`FolderWriter::finish`].
pub struct FolderWriter {
    dir: PathBuf,
    keywords: Vec<String>,
    seq: u64,
    pid: u32,
    started: i64,
    /// Keywords past the 26 a folder can name, dropped.
    pub dropped_keywords: Vec<String>,
}

impl FolderWriter {
    /// Make the folder's `cur/`, `new/`, `tmp/`.
    ///
    /// # Errors
    /// I/O errors.
    pub fn create(dir: &Path) -> Result<FolderWriter> {
        for sub in ["cur", "new", "tmp"] {
            let d = dir.join(sub);
            fs::create_dir_all(&d).map_err(io(&d))?;
        }
        Ok(FolderWriter {
            dir: dir.to_path_buf(),
            keywords: Vec::new(),
            seq: 0,
            pid: std::process::id(),
            started: now(),
            dropped_keywords: Vec::new(),
        })
    }

    fn letter(&mut self, kw: &str) -> Option<char> {
        let i = match self
            .keywords
            .iter()
            .position(|k| k.eq_ignore_ascii_case(kw))
        {
            Some(i) => i,
            None if self.keywords.len() < MAX_KEYWORDS => {
                self.keywords.push(kw.to_string());
                self.keywords.len() - 1
            }
            None => {
                if !self.dropped_keywords.iter().any(|k| k == kw) {
                    self.dropped_keywords.push(kw.to_string());
                }
                return None;
            }
        };
        Some((b'a' + i as u8) as char)
    }

    /// Write one message (CRLF, as the store keeps it) as a file.
    ///
    /// # Errors
    /// I/O errors.
    pub fn write(&mut self, raw: &[u8], flags: &Flags, date: i64) -> Result<()> {
        let lf = to_lf(raw);
        let mut info: Vec<char> = [
            (SystemFlag::Draft, 'D'),
            (SystemFlag::Flagged, 'F'),
            (SystemFlag::Answered, 'R'),
            (SystemFlag::Seen, 'S'),
            (SystemFlag::Deleted, 'T'),
        ]
        .iter()
        .filter(|(f, _)| flags.has(*f))
        .map(|(_, c)| *c)
        .collect();
        for kw in &flags.keywords {
            if let Some(c) = self.letter(kw) {
                info.push(c);
            }
        }
        info.sort_unstable();
        info.dedup();
        self.seq += 1;
        // The name starts with the export's time and a zero-padded
        // sequence number, so name order is UID order (the date is the
        // file's modification time).
        let base = format!(
            "{}.M{:08}P{}.minimail,S={},W={}",
            self.started,
            self.seq,
            self.pid,
            lf.len(),
            raw.len()
        );
        let name = format!("{base}:2,{}", info.iter().collect::<String>());
        let tmp = self.dir.join("tmp").join(&base);
        fs::write(&tmp, &lf).map_err(io(&tmp))?;
        let mtime = UNIX_EPOCH + Duration::from_secs(date.max(0) as u64);
        fs::File::options()
            .write(true)
            .open(&tmp)
            .and_then(|f| f.set_modified(mtime))
            .map_err(io(&tmp))?;
        let dest = self.dir.join("cur").join(name);
        fs::rename(&tmp, &dest).map_err(io(&dest))?;
        Ok(())
    }

    /// Write `dovecot-keywords` (if any keyword was used).
    ///
    /// # Errors
    /// I/O errors.
    pub fn finish(self) -> Result<Vec<String>> {
        if !self.keywords.is_empty() {
            let text: String = self
                .keywords
                .iter()
                .enumerate()
                .map(|(i, k)| format!("{i} {k}\n"))
                .collect();
            let path = self.dir.join(KEYWORDS_FILE);
            fs::write(&path, text).map_err(io(&path))?;
        }
        Ok(self.dropped_keywords)
    }
}

/// Unix seconds now.
pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_give_flags_and_keywords() {
        let letters = vec![
            Some("$Forwarded".to_string()),
            None,
            Some("Junk".to_string()),
        ];
        let f = name_flags("1.M1P1.host,S=10:2,DFRSTac", &letters);
        assert_eq!(f.system, Flags::ALL_SYSTEM);
        assert!(f.has_keyword("$Forwarded") && f.has_keyword("Junk"));
        assert_eq!(f.keywords.len(), 2);
        assert_eq!(name_flags("1.M1P1.host", &letters), Flags::empty());
        let p = name_flags("1.x:2,PS", &[]);
        assert!(p.has(SystemFlag::Seen) && p.has_keyword("$Forwarded"));
        // A letter with no keyword behind it is nothing.
        assert_eq!(name_flags("1.x:2,b", &letters), Flags::empty());
    }

    #[test]
    fn folder_names_map_both_ways() {
        let root = Path::new("/m");
        assert_eq!(folder_dir(root, "INBOX"), PathBuf::from("/m"));
        assert_eq!(folder_dir(root, "A/B"), PathBuf::from("/m/.A.B"));
        assert_eq!(
            folder_dir(root, "Entw\u{fc}rfe"),
            PathBuf::from("/m/.Entw&APw-rfe")
        );
    }

    #[test]
    fn written_folders_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let mut w = FolderWriter::create(&folder_dir(root, "INBOX")).unwrap();
        let mut flags = Flags::system(Flags::SEEN);
        flags.add_keyword("Junk");
        w.write(b"Subject: 1\r\n\r\nx\r\n", &flags, 1_000_000)
            .unwrap();
        w.write(b"Subject: 2\r\n\r\ny\r\n", &Flags::empty(), 999)
            .unwrap();
        assert!(w.finish().unwrap().is_empty());
        let mut w = FolderWriter::create(&folder_dir(root, "Lists/r\u{fc}st")).unwrap();
        w.write(b"S: 3\r\n", &Flags::empty(), 5).unwrap();
        w.finish().unwrap();
        let f = folders(root).unwrap();
        let names: Vec<&str> = f.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["INBOX", "Lists/r\u{fc}st"]);
        let files = message_files(root).unwrap();
        assert_eq!(files.len(), 2);
        // In the order written, dates in the modification times.
        assert_eq!(fs::read(&files[1].path).unwrap(), b"Subject: 2\n\ny\n");
        assert!(files[0].flags.same_as(&flags));
        let meta = fs::metadata(&files[0].path).unwrap();
        assert_eq!(file_date(&files[0].path, &meta), 1_000_000);
    }
}
