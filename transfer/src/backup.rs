//! `minimail backup` and `minimail restore`.
//!
//! Backup: a consistent copy of a store that servers go on writing to,
//! taken by [`mailstore::backup_into`] (`VACUUM INTO`: one WAL read
//! snapshot, which blocks no writer; commits made meanwhile go to the WAL
//! and are not in the copy) into a temporary file beside the target, then
//! checked (`PRAGMA integrity_check`, schema version), synced and renamed
//! into place: a backup file is complete or absent.
//!
//! Restore: refuses while any process has the store open (every store
//! opened for service holds `DB.lock` shared; restore must get it
//! exclusively, and holds it until done, so no server starts meanwhile),
//! and refuses a backup that fails the integrity check or comes from a
//! newer schema. The old store (with its `-wal`/`-shm`) is moved aside to
//! `DB.replaced-TIME`, never deleted; the backup is copied to a temporary
//! file, synced and renamed into place.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mailstore::{check_file, schema_version, Check, StoreLock, SCHEMA_VERSION};

use crate::error::{io, Result, TransferError};

/// What a backup made.
#[derive(Debug, Clone)]
pub struct Backup {
    /// Size of the backup file in bytes.
    pub bytes: u64,
    /// Its schema version.
    pub version: i64,
    /// Time taken (copy and check).
    pub elapsed: Duration,
    /// Time of the copy alone.
    pub copy: Duration,
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct Restore {
    /// Where the replaced store went (`None` if there was none).
    pub replaced: Option<PathBuf>,
    /// The schema version restored (the next open migrates an older one).
    pub version: i64,
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn sync_dir(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

/// Check the store file `path`: integrity and a schema version this
/// program can serve.
fn verify(path: &Path) -> Result<i64> {
    let version = match schema_version(path) {
        Ok(v) => v,
        Err(mailstore::StoreError::Corrupt(why)) => {
            return Err(TransferError::Refused(format!(
                "{} fails the integrity check: {why}",
                path.display()
            )))
        }
        Err(e) => return Err(e.into()),
    };
    if version == 0 {
        return Err(TransferError::Refused(format!(
            "{} is not a minimail store (schema version 0)",
            path.display()
        )));
    }
    if version > SCHEMA_VERSION {
        return Err(TransferError::Refused(format!(
            "{} has schema version {version}, newer than this program's {SCHEMA_VERSION}",
            path.display()
        )));
    }
    let damaged = |why: String| {
        TransferError::Refused(format!(
            "{} fails the integrity check: {why}",
            path.display()
        ))
    };
    let found = match check_file(path, Check::Full, None) {
        Ok(found) => found,
        Err(mailstore::StoreError::Corrupt(why)) => return Err(damaged(why)),
        Err(e) => return Err(e.into()),
    };
    if !found.ok() {
        return Err(damaged(found.problems.join("; ")));
    }
    Ok(version)
}

/// Copy the store `db` to the new file `file` while servers run.
///
/// # Errors
/// `file` exists; `db` is no store; the copy fails or does not check.
pub fn backup(db: &Path, file: &Path) -> Result<Backup> {
    let start = Instant::now();
    if file.exists() {
        return Err(TransferError::Refused(format!(
            "{} exists; back up into a new file",
            file.display()
        )));
    }
    if !db.is_file() {
        return Err(TransferError::Refused(format!(
            "no store at {}",
            db.display()
        )));
    }
    let tmp = sibling(file, &format!(".partial-{}", std::process::id()));
    let cleanup = |e: TransferError| {
        for s in ["", "-wal", "-shm"] {
            let _ = fs::remove_file(sibling(&tmp, s));
        }
        e
    };
    mailstore::backup_into(db, &tmp)
        .map_err(TransferError::from)
        .map_err(cleanup)?;
    let copy = start.elapsed();
    let version = verify(&tmp).map_err(cleanup)?;
    fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io(&tmp))
        .map_err(cleanup)?;
    fs::rename(&tmp, file).map_err(io(file)).map_err(cleanup)?;
    sync_dir(file)?;
    let bytes = fs::metadata(file).map_err(io(file))?.len();
    Ok(Backup {
        bytes,
        version,
        elapsed: start.elapsed(),
        copy,
    })
}

/// Replace the store `db` by the backup `file`.
///
/// # Errors
/// A process has `db` open; `file` fails the checks; I/O failures.
pub fn restore(file: &Path, db: &Path) -> Result<Restore> {
    if !file.is_file() {
        return Err(TransferError::Refused(format!(
            "no backup at {}",
            file.display()
        )));
    }
    let version = verify(file)?;
    let Some(lock) = StoreLock::exclusive(db)? else {
        return Err(TransferError::Refused(format!(
            "{} is in use (a server or another minimail command holds {}); stop it first",
            db.display(),
            mailstore::lock_path(db).display()
        )));
    };
    let tmp = sibling(db, &format!(".restoring-{}", std::process::id()));
    fs::copy(file, &tmp).map_err(io(&tmp))?;
    fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io(&tmp))?;
    let mut replaced = None;
    if db.exists() {
        let aside = sibling(db, &format!(".replaced-{}", crate::maildir::now()));
        // The WAL is part of the store: it moves with it.
        for s in ["-wal", "-shm"] {
            let from = sibling(db, s);
            if from.exists() {
                let to = sibling(&aside, s);
                fs::rename(&from, &to).map_err(io(&to))?;
            }
        }
        fs::rename(db, &aside).map_err(io(&aside))?;
        replaced = Some(aside);
    }
    fs::rename(&tmp, db).map_err(io(db))?;
    sync_dir(db)?;
    drop(lock);
    Ok(Restore { replaced, version })
}
