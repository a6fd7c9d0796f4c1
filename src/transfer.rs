//! `minimail import`, `export`, `backup` and `restore`: the command lines
//! over the `transfer` crate, which does the work.

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use netloop::cli::DbArg;
use std::path::PathBuf;
use std::time::Instant;
use transfer::mbox::Quoting;
use transfer::Format;

/// The formats on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FormatArg {
    /// An mbox file (or a directory of mbox files).
    Mbox,
    /// A Maildir++ directory (Dovecot's, Courier's, mutt's layout).
    Maildir,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Mbox => Format::Mbox,
            FormatArg::Maildir => Format::Maildir,
        }
    }
}

#[derive(Args)]
pub struct ImportArgs {
    /// The user whose mailboxes receive the mail.
    user: String,
    /// mbox (a file, or a directory of them) or maildir (a Maildir++ root).
    format: FormatArg,
    /// The file or directory to read.
    path: PathBuf,
    /// For one mbox file: the mailbox it goes to (made if missing).
    #[arg(long, default_value = None)]
    mailbox: Option<String>,
    /// The mbox is mboxo: only `>From ` lines are unquoted (default mboxrd:
    /// one `>` comes off every `>...>From ` line).
    #[arg(long)]
    mboxo: bool,
    /// Skip (and report) messages larger than this many bytes.
    #[arg(long, default_value_t = transfer::import::MAX_MESSAGE)]
    max_message_size: usize,
    #[command(flatten)]
    db: DbArg,
}

#[derive(Args)]
pub struct ExportArgs {
    /// The user whose mailboxes are written.
    user: String,
    /// mbox (one file per mailbox) or maildir (a Maildir++ root).
    format: FormatArg,
    /// A new (or empty) directory to write into.
    dir: PathBuf,
    #[command(flatten)]
    db: DbArg,
}

#[derive(Args)]
pub struct BackupArgs {
    /// The backup file to make (must not exist).
    file: PathBuf,
    #[command(flatten)]
    db: DbArg,
}

#[derive(Args)]
pub struct RestoreArgs {
    /// The backup file to restore.
    file: PathBuf,
    #[command(flatten)]
    db: DbArg,
}

/// `minimail import`: exit status 0 when everything was imported or was
/// there already, 1 when some message was skipped (too big, unreadable).
pub fn import(a: ImportArgs) -> Result<i32> {
    let store = super::open_store(&a.db)?;
    let opts = transfer::import::Options {
        mailbox: a.mailbox,
        quoting: if a.mboxo { Quoting::O } else { Quoting::Rd },
        max_message: a.max_message_size,
    };
    let start = Instant::now();
    let res = transfer::import::import(&store, &a.user, a.format.into(), &a.path, &opts);
    store.shutdown();
    let report = res.with_context(|| format!("cannot import {}", a.path.display()))?;
    let secs = start.elapsed().as_secs_f64();
    for m in &report.mailboxes {
        println!(
            "{}: {} added, {} already there{}",
            m.name,
            m.added,
            m.present,
            if m.skipped > 0 {
                format!(", {} skipped", m.skipped)
            } else {
                String::new()
            }
        );
    }
    let added = report.added();
    println!(
        "imported {added} messages into {} mailboxes in {secs:.1} s ({:.0} messages/s); {} already there, {} skipped",
        report.mailboxes.len(),
        added as f64 / secs.max(1e-6),
        report.present(),
        report.skipped()
    );
    Ok(i32::from(report.skipped() > 0))
}

/// `minimail export`.
pub fn export(a: ExportArgs) -> Result<()> {
    let store = super::open_store(&a.db)?;
    let res = transfer::export::export(&store, &a.user, a.format.into(), &a.dir);
    store.shutdown();
    let report = res.with_context(|| format!("cannot export to {}", a.dir.display()))?;
    let mut total = 0;
    for (name, n) in &report.mailboxes {
        println!("{name}: {n} messages");
        total += n;
    }
    for (name, kws) in &report.dropped_keywords {
        eprintln!(
            "minimail export: {name}: a Maildir folder names at most 26 keywords; not written: {}",
            kws.join(" ")
        );
    }
    println!(
        "exported {total} messages from {} mailboxes to {}",
        report.mailboxes.len(),
        a.dir.display()
    );
    Ok(())
}

/// Backup and restore copy SQLite files; a PostgreSQL store has its own
/// tools.
fn refuse_postgres(db: &std::path::Path, what: &str, tool: &str) -> Result<()> {
    if db.to_str().is_some_and(mailstore::is_postgres_url) {
        bail!("not supported on PostgreSQL yet: minimail {what} (use {tool})");
    }
    Ok(())
}

/// `minimail backup`.
pub fn backup(a: BackupArgs) -> Result<()> {
    refuse_postgres(&a.db.db, "backup", "pg_dump")?;
    let b = transfer::backup::backup(&a.db.db, &a.file)
        .with_context(|| format!("cannot back up {}", a.db.db.display()))?;
    println!(
        "backed up {} to {} ({} bytes, schema version {}, integrity ok) in {:.1} s",
        a.db.db.display(),
        a.file.display(),
        b.bytes,
        b.version,
        b.elapsed.as_secs_f64()
    );
    Ok(())
}

/// `minimail restore`.
pub fn restore(a: RestoreArgs) -> Result<()> {
    refuse_postgres(&a.db.db, "restore", "pg_restore")?;
    if a.file == a.db.db {
        bail!("the backup and the store are the same file");
    }
    let r = transfer::backup::restore(&a.file, &a.db.db)
        .with_context(|| format!("cannot restore {}", a.db.db.display()))?;
    println!(
        "restored {} from {} (schema version {}, integrity ok){}",
        a.db.db.display(),
        a.file.display(),
        r.version,
        match r.replaced {
            Some(p) => format!("; the old store is now {}", p.display()),
            None => String::new(),
        }
    );
    Ok(())
}
