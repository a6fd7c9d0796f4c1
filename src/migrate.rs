//! `minimail migrate --from sqlite:PATH --to postgres://...`: copy a
//! single-host SQLite store into an empty PostgreSQL database (one
//! snapshot of the source, one transaction on the target; see mailstore's
//! `pg/migrate.rs`) and print what was copied.

use anyhow::{bail, Context, Result};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

/// `minimail migrate`'s arguments.
#[derive(Args)]
pub struct MigrateArgs {
    /// The SQLite store to copy: `sqlite:PATH` or a bare path (read in
    /// one snapshot; a running `minimail up` may keep writing it).
    #[arg(long, value_name = "sqlite:PATH")]
    from: String,
    /// The PostgreSQL database to copy into,
    /// `postgres://USER[:PASSWORD]@HOST:PORT/DBNAME`: its schema is created
    /// if missing; it must hold no data.
    #[arg(long, value_name = "URL")]
    to: String,
}

/// The path in `--from` (`sqlite:PATH`, `sqlite://PATH` or `PATH`).
fn source_path(from: &str) -> Result<PathBuf> {
    if mailstore::is_postgres_url(from) {
        bail!("--from {from}: migrate copies from a SQLite store (sqlite:PATH) into PostgreSQL");
    }
    let path = from
        .strip_prefix("sqlite://")
        .or_else(|| from.strip_prefix("sqlite:"))
        .unwrap_or(from);
    if path.is_empty() {
        bail!("--from needs a path: sqlite:PATH");
    }
    Ok(PathBuf::from(path))
}

/// Run `minimail migrate`.
pub fn run(a: MigrateArgs) -> Result<()> {
    let from = source_path(&a.from)?;
    if !mailstore::is_postgres_url(&a.to) {
        bail!(
            "--to {}: give a PostgreSQL URL, postgres://USER@HOST:PORT/DBNAME",
            a.to
        );
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "copying {} to PostgreSQL", from.display());
    let report = mailstore::migrate_sqlite_to_postgres(&from, &a.to, |table, rows, took| {
        let _ = writeln!(out, "  {table:<20} {rows:>8}  {:.2} s", took.as_secs_f64());
        let _ = out.flush();
    })
    // The store's refusals are addressed to the operator as they are.
    .map_err(|e| match e {
        mailstore::StoreError::Invalid(why) => anyhow::anyhow!(why),
        other => anyhow::Error::new(other),
    })
    .with_context(|| format!("cannot migrate {} (nothing was copied)", from.display()))?;
    for (table, why) in &report.skipped {
        let _ = writeln!(out, "  {table:<20} {:>8}  ({why})", "-");
    }
    let messages = report
        .tables
        .iter()
        .find(|(t, _)| t == "messages")
        .map_or(0, |(_, n)| *n);
    let secs = report.elapsed.as_secs_f64().max(0.001);
    let _ = writeln!(
        out,
        "copied {messages} messages ({:.1} MiB) in {secs:.1} s ({:.0} messages/s) into {}, schema version {}",
        report.message_bytes as f64 / (1024.0 * 1024.0),
        messages as f64 / secs,
        report.to,
        report.schema_version
    );
    let _ = writeln!(
        out,
        "snapshot at commit counter {}: mail committed to {} after it is not in the copy",
        report.commit_counter,
        from.display()
    );
    if report.nul_stripped > 0 {
        let _ = writeln!(
            out,
            "warning: {} text value(s) had NUL characters, dropped (PostgreSQL text cannot hold them)",
            report.nul_stripped
        );
    }
    Ok(())
}
