//! `minimail import`: messages from an mbox file, a directory of mbox
//! files or a Maildir++ tree into a user's mailboxes, through the store's
//! ordinary write path ([`mailstore::Tx::append_prepared`]: UIDs
//! ascending, a modseq each, search text staged for the index, usage
//! counted), a batch of messages per write job so the writer commits them
//! in groups, at most [`IN_FLIGHT`] batches queued while the next is read.
//!
//! Idempotent: a message is skipped when its mailbox already holds one with
//! the same size, internal date and bytes (compared byte for byte with the
//! stored copy), each stored message matching at most one imported, so a
//! second import of the same source adds nothing, and a source holding the
//! same message twice gives two. Memory: one batch being read and the
//! batches queued (bounded by [`BATCH_BYTES`] each), plus the size and date
//! of each message already in the mailbox being filled (about 40 bytes a
//! message) and, for a Maildir folder, its file names.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, Sender};

use mailstore::{Flags, MailboxId, MetaParts, NewMessage, PreparedMessage, Store, Uid};

use crate::error::{io, Result, TransferError};
use crate::maildir;
use crate::mbox::{self, Quoting};
use crate::message::to_crlf;

/// Messages in one write job at most.
pub const BATCH: usize = 256;
/// Bytes of messages in one write job at most (a bigger message goes
/// alone).
pub const BATCH_BYTES: usize = 8 << 20;
/// Write jobs queued on the store's writer at once.
pub const IN_FLIGHT: usize = 2;
/// The largest message imported by default (a bigger one is skipped and
/// reported): the store's own bound for APPEND is of this order.
pub const MAX_MESSAGE: usize = 64 << 20;

/// The source formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// An mbox file, or a directory tree of them.
    Mbox,
    /// A Maildir++ root.
    Maildir,
}

/// How to import.
#[derive(Clone, Debug)]
pub struct Options {
    /// For a single mbox file: the mailbox it goes to (default INBOX).
    pub mailbox: Option<String>,
    /// mbox `>From ` unquoting.
    pub quoting: Quoting,
    /// Messages larger than this are skipped and reported.
    pub max_message: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            mailbox: None,
            quoting: Quoting::Rd,
            max_message: MAX_MESSAGE,
        }
    }
}

/// What happened to one mailbox.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MailboxReport {
    /// The store's name.
    pub name: String,
    /// Messages added.
    pub added: u64,
    /// Messages the mailbox already held (skipped).
    pub present: u64,
    /// Messages skipped as too big or unreadable.
    pub skipped: u64,
    /// Bytes added.
    pub bytes: u64,
}

/// What an import did, mailbox by mailbox.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// One entry per mailbox in the source.
    pub mailboxes: Vec<MailboxReport>,
}

impl Report {
    /// Messages added in all.
    pub fn added(&self) -> u64 {
        self.mailboxes.iter().map(|m| m.added).sum()
    }
    /// Messages skipped because they were there already.
    pub fn present(&self) -> u64 {
        self.mailboxes.iter().map(|m| m.present).sum()
    }
    /// Messages skipped as too big or unreadable.
    pub fn skipped(&self) -> u64 {
        self.mailboxes.iter().map(|m| m.skipped).sum()
    }
}

/// Import `path` in `format` into `user`'s mailboxes (created as needed).
///
/// # Errors
/// An unknown user, an unreadable or malformed source, a store failure
/// (what was committed before stays; importing again adds the rest).
pub fn import(
    store: &Store,
    user: &str,
    format: Format,
    path: &Path,
    opts: &Options,
) -> Result<Report> {
    let owner = store
        .read_sync(|r| r.user(user))?
        .ok_or_else(|| TransferError::Refused(format!("no such user: {user}")))?;
    let meta = fs::metadata(path).map_err(io(path))?;
    if opts.mailbox.is_some() && !(format == Format::Mbox && meta.is_file()) {
        return Err(TransferError::Refused(
            "--mailbox is for importing one mbox file".into(),
        ));
    }
    let mut report = Report::default();
    match format {
        Format::Mbox if meta.is_file() => {
            let name = opts.mailbox.clone().unwrap_or_else(|| "INBOX".into());
            report
                .mailboxes
                .push(import_mbox(store, owner.id, &name, path, opts)?);
        }
        Format::Mbox => {
            for (name, file) in mbox_tree(path)? {
                match import_mbox(store, owner.id, &name, &file, opts) {
                    Ok(r) => report.mailboxes.push(r),
                    Err(TransferError::Format(why)) => {
                        log::warn!("{}: {why}; skipped", file.display())
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Format::Maildir => {
            for folder in maildir::folders(path)? {
                report
                    .mailboxes
                    .push(import_maildir(store, owner.id, &folder, opts)?);
            }
        }
    }
    Ok(report)
}

/// The mbox files under `dir` with their mailbox names: `inbox` (any
/// case) is INBOX, `a/b` is `a/b`; a directory `x.sbd` (Thunderbird) holds
/// the children of `x`. Dot files, `.msf` indexes and Dovecot's files are
/// left out.
fn mbox_tree(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((d, prefix)) = stack.pop() {
        for e in fs::read_dir(&d).map_err(io(&d))? {
            let e = e.map_err(io(&d))?;
            let name = e.file_name();
            let Some(name) = name.to_str() else {
                log::warn!("{}: name is not UTF-8; skipped", e.path().display());
                continue;
            };
            if name.starts_with('.')
                || name.ends_with(".msf")
                || name.ends_with(".lock")
                || name.starts_with("dovecot")
                || name == "subscriptions"
            {
                continue;
            }
            let ft = e.file_type().map_err(io(&d))?;
            if ft.is_dir() {
                let base = name.strip_suffix(".sbd").unwrap_or(name);
                stack.push((e.path(), format!("{prefix}{base}/")));
            } else if ft.is_file() {
                let full = format!("{prefix}{name}");
                let full = if full.eq_ignore_ascii_case("inbox") {
                    "INBOX".to_string()
                } else {
                    full
                };
                out.push((full, e.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn import_mbox(
    store: &Store,
    user: mailstore::UserId,
    name: &str,
    file: &Path,
    opts: &Options,
) -> Result<MailboxReport> {
    let f = File::open(file).map_err(io(file))?;
    let mut reader = mbox::Reader::new(
        BufReader::with_capacity(1 << 16, f),
        opts.quoting,
        opts.max_message,
    );
    // Read the first message before creating the mailbox: a file that is
    // no mbox creates nothing.
    let first = reader.next_item().map_err(|e| read_error(file, e))?;
    let mut sink = Sink::open(store, user, name)?;
    let mut item = first;
    while let Some(i) = item {
        match i {
            mbox::Item::Message { raw, flags, date } => sink.add(raw, flags, date)?,
            mbox::Item::TooBig { size, date } => {
                log::warn!(
                    "{}: a message of {size} bytes (From line {}) is over the bound of {} bytes; skipped",
                    file.display(),
                    crate::message::asctime(date),
                    opts.max_message
                );
                sink.report.skipped += 1;
            }
        }
        item = reader.next_item().map_err(|e| read_error(file, e))?;
    }
    sink.finish()
}

fn read_error(file: &Path, e: std::io::Error) -> TransferError {
    if e.kind() == std::io::ErrorKind::InvalidData {
        TransferError::Format(format!("{}: {e}", file.display()))
    } else {
        TransferError::Io {
            path: file.to_path_buf(),
            err: e,
        }
    }
}

fn import_maildir(
    store: &Store,
    user: mailstore::UserId,
    folder: &maildir::Folder,
    opts: &Options,
) -> Result<MailboxReport> {
    let files = maildir::message_files(&folder.dir)?;
    let mut sink = Sink::open(store, user, &folder.name)?;
    for f in files {
        let meta = match fs::metadata(&f.path) {
            Ok(m) => m,
            // Moved away meanwhile (a live Maildir): not an error.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(&f.path)(e)),
        };
        if meta.len() > opts.max_message as u64 {
            log::warn!(
                "{}: {} bytes is over the bound of {} bytes; skipped",
                f.path.display(),
                meta.len(),
                opts.max_message
            );
            sink.report.skipped += 1;
            continue;
        }
        let raw = match fs::read(&f.path) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(&f.path)(e)),
        };
        let date = maildir::file_date(&f.path, &meta);
        sink.add(to_crlf(&raw), f.flags, date)?;
    }
    sink.finish()
}

/// One mailbox being filled: the duplicate index, the batch being built,
/// the batches queued on the writer.
struct Sink<'s> {
    store: &'s Store,
    mailbox: MailboxId,
    /// (size, internal date) -> stored UIDs not yet matched.
    present: HashMap<(u64, i64), Vec<Uid>>,
    batch: Vec<(PreparedMessage, Flags)>,
    batch_bytes: usize,
    queued: usize,
    done_tx: Sender<mailstore::Result<u64>>,
    done_rx: Receiver<mailstore::Result<u64>>,
    report: MailboxReport,
}

impl<'s> Sink<'s> {
    fn open(store: &'s Store, user: mailstore::UserId, name: &str) -> Result<Sink<'s>> {
        let mailbox = match store.read_sync(|r| r.mailbox(user, name))? {
            Some(mb) => mb.id,
            None => {
                let n = name.to_string();
                store.write_sync(move |tx| tx.create_mailbox(user, &n, None))?
            }
        };
        let present = store.read_sync(|r| {
            let uids: Vec<Uid> = r.entries(mailbox)?.iter().map(|e| e.uid).collect();
            let mut map: HashMap<(u64, i64), Vec<Uid>> = HashMap::new();
            for chunk in uids.chunks(4096) {
                let none = MetaParts {
                    envelope: false,
                    structure: false,
                };
                for m in r.messages_with(mailbox, chunk, none)? {
                    map.entry((m.size, m.internal_date))
                        .or_default()
                        .push(m.uid);
                }
            }
            Ok(map)
        })?;
        let (done_tx, done_rx) = channel();
        Ok(Sink {
            store,
            mailbox,
            present,
            batch: Vec::new(),
            batch_bytes: 0,
            queued: 0,
            done_tx,
            done_rx,
            report: MailboxReport {
                name: name.to_string(),
                ..MailboxReport::default()
            },
        })
    }

    /// Whether the mailbox holds this message already (then that stored
    /// copy is used up).
    fn already_there(&mut self, raw: &[u8], date: i64) -> Result<bool> {
        let Some(uids) = self.present.get_mut(&(raw.len() as u64, date)) else {
            return Ok(false);
        };
        let mailbox = self.mailbox;
        for i in 0..uids.len() {
            let uid = uids[i];
            let same = self.store.read_sync(|r| Ok(r.raw(mailbox, uid)? == raw))?;
            if same {
                uids.swap_remove(i);
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn add(&mut self, raw: Vec<u8>, flags: Flags, date: i64) -> Result<()> {
        if raw.is_empty() {
            self.report.skipped += 1;
            return Ok(());
        }
        if self.already_there(&raw, date)? {
            self.report.present += 1;
            return Ok(());
        }
        self.batch_bytes += raw.len();
        let msg = PreparedMessage::new(NewMessage {
            raw,
            internal_date: date,
        })?;
        self.batch.push((msg, flags));
        if self.batch.len() >= BATCH || self.batch_bytes >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Wait for one queued batch.
    fn wait_one(&mut self) -> Result<()> {
        let n = self
            .done_rx
            .recv()
            .unwrap_or(Err(mailstore::StoreError::Closed))?;
        self.queued -= 1;
        self.report.added += n;
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        while self.queued >= IN_FLIGHT {
            self.wait_one()?;
        }
        let batch = std::mem::take(&mut self.batch);
        self.report.bytes += self.batch_bytes as u64;
        self.batch_bytes = 0;
        let mailbox = self.mailbox;
        let done = self.done_tx.clone();
        self.queued += 1;
        self.store.write(
            move |tx| {
                for (msg, flags) in &batch {
                    tx.append_prepared(mailbox, msg, flags)?;
                }
                Ok(batch.len() as u64)
            },
            move |r| {
                let _ = done.send(r);
            },
        );
        Ok(())
    }

    fn finish(mut self) -> Result<MailboxReport> {
        self.flush()?;
        while self.queued > 0 {
            self.wait_one()?;
        }
        Ok(self.report)
    }
}
