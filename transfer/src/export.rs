//! `minimail export`: a user's mailboxes into a new directory, as a tree
//! of mbox files (`DIR/INBOX`, `DIR/Lists/rust`; a mailbox that is also a
//! parent puts its children in `NAME.sbd/`, as Thunderbird does) or as a
//! Maildir++ root (INBOX in `DIR`, the others in `DIR/.A.B`), with flags,
//! keywords and internal dates. Messages are read from the store one at a
//! time (metadata in chunks), so memory does not grow with the mailbox.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use mailstore::{MetaParts, Store};

use crate::error::{io, Result, TransferError};
use crate::import::Format;
use crate::maildir::{folder_dir, FolderWriter};
use crate::mbox;

/// UIDs whose metadata is read at once.
const CHUNK: usize = 512;

/// What an export wrote: (mailbox, messages) in mailbox order.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Messages written per mailbox.
    pub mailboxes: Vec<(String, u64)>,
    /// Keywords a Maildir folder could not name (past 26), per mailbox.
    pub dropped_keywords: Vec<(String, Vec<String>)>,
}

/// Export `user`'s mailboxes to `dir` (which must not exist or be empty).
///
/// # Errors
/// An unknown user, a non-empty `dir`, I/O and store failures.
pub fn export(store: &Store, user: &str, format: Format, dir: &Path) -> Result<Report> {
    let owner = store
        .read_sync(|r| r.user(user))?
        .ok_or_else(|| TransferError::Refused(format!("no such user: {user}")))?;
    if let Ok(mut entries) = fs::read_dir(dir) {
        if entries.next().is_some() {
            return Err(TransferError::Refused(format!(
                "{} is not empty; export into a new directory",
                dir.display()
            )));
        }
    }
    fs::create_dir_all(dir).map_err(io(dir))?;
    let mailboxes = store.read_sync(|r| r.mailboxes(owner.id))?;
    let names: HashSet<String> = mailboxes.iter().map(|m| m.name.clone()).collect();
    let mut report = Report::default();
    for mb in &mailboxes {
        let entries = store.read_sync(|r| r.entries(mb.id))?;
        let mut written = 0u64;
        match format {
            Format::Mbox => {
                let path = mbox_path(dir, &mb.name, &names);
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent).map_err(io(parent))?;
                }
                let f = File::create(&path).map_err(io(&path))?;
                let mut w = BufWriter::with_capacity(1 << 16, f);
                each_message(store, mb.id, &entries, |raw, flags, date| {
                    mbox::write_message(&mut w, raw, flags, date).map_err(io(&path))
                })?;
                let f = w.into_inner().map_err(|e| io(&path)(e.into_error()))?;
                f.sync_all().map_err(io(&path))?;
                written = entries.len() as u64;
            }
            Format::Maildir => {
                let mut w = FolderWriter::create(&folder_dir(dir, &mb.name))?;
                each_message(store, mb.id, &entries, |raw, flags, date| {
                    written += 1;
                    w.write(raw, flags, date)
                })?;
                let dropped = w.finish()?;
                if !dropped.is_empty() {
                    report.dropped_keywords.push((mb.name.clone(), dropped));
                }
            }
        }
        report.mailboxes.push((mb.name.clone(), written));
    }
    Ok(report)
}

/// Call `f` with each message of `mailbox` (raw CRLF bytes, flags,
/// internal date), UID ascending.
fn each_message(
    store: &Store,
    mailbox: mailstore::MailboxId,
    entries: &[mailstore::Entry],
    mut f: impl FnMut(&[u8], &mailstore::Flags, i64) -> Result<()>,
) -> Result<()> {
    let uids: Vec<mailstore::Uid> = entries.iter().map(|e| e.uid).collect();
    let none = MetaParts {
        envelope: false,
        structure: false,
    };
    for chunk in uids.chunks(CHUNK) {
        let metas = store.read_sync(|r| r.messages_with(mailbox, chunk, none))?;
        for m in metas {
            // Expunged since the entries were read: not there any more.
            let raw = match store.read_sync(|r| r.raw(mailbox, m.uid)) {
                Ok(raw) => raw,
                Err(mailstore::StoreError::NotFound(_)) => continue,
                Err(e) => return Err(e.into()),
            };
            f(&raw, &m.flags, m.internal_date)?;
        }
    }
    Ok(())
}

/// The mbox file of mailbox `name` under `dir`: a parent that is itself
/// a mailbox becomes the directory `PARENT.sbd`.
fn mbox_path(dir: &Path, name: &str, names: &HashSet<String>) -> PathBuf {
    let parts: Vec<&str> = name.split('/').collect();
    let mut path = dir.to_path_buf();
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            path.push(part);
        } else if names.contains(&parts[..=i].join("/")) {
            path.push(format!("{part}.sbd"));
        } else {
            path.push(part);
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_that_are_mailboxes_become_sbd_directories() {
        let names: HashSet<String> = ["INBOX", "A", "A/B", "A/B/C", "X/Y"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let d = Path::new("/e");
        assert_eq!(mbox_path(d, "INBOX", &names), PathBuf::from("/e/INBOX"));
        assert_eq!(
            mbox_path(d, "A/B/C", &names),
            PathBuf::from("/e/A.sbd/B.sbd/C")
        );
        assert_eq!(mbox_path(d, "X/Y", &names), PathBuf::from("/e/X/Y"));
    }
}
