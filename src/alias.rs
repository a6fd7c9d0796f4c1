//! `minimail alias add|del|list`: aliases and per-domain catch-alls in
//! the store (see mailstore's aliases.rs for how they resolve). Loops and
//! targets that lead nowhere are refused when added, with the reason.

use anyhow::{Context, Result};
use clap::Subcommand;
use netloop::cli::DbArg;

/// `minimail alias ...`.
#[derive(Subcommand)]
pub enum AliasCmd {
    /// Point ADDRESS (or @DOMAIN, that domain's catch-all) at one or more
    /// targets: users, other aliases, or addresses elsewhere (sent on by
    /// the outbound queue). Adding to an existing alias adds targets.
    Add {
        /// The alias, e.g. info@example.org, or @example.org for a catch-all.
        address: String,
        /// Where its mail goes.
        #[arg(required = true)]
        targets: Vec<String>,
        #[command(flatten)]
        db: DbArg,
    },
    /// Remove the given targets of ADDRESS, or the whole alias.
    Del {
        /// The alias (or @DOMAIN).
        address: String,
        /// Targets to remove (all if none given).
        targets: Vec<String>,
        #[command(flatten)]
        db: DbArg,
    },
    /// List aliases, one `ADDRESS -> TARGET, ...` line each.
    List {
        #[command(flatten)]
        db: DbArg,
    },
}

/// Run one `minimail alias` command.
pub fn run(cmd: AliasCmd) -> Result<()> {
    match cmd {
        AliasCmd::Add {
            address,
            targets,
            db,
        } => {
            let store = crate::open_store(&db)?;
            let (a, t) = (address.clone(), targets.clone());
            let added = store.write_sync(move |tx| tx.add_alias(&a, &t));
            store.shutdown();
            let added = added.with_context(|| format!("cannot add alias {address}"))?;
            println!("{address} -> {} ({added} new)", targets.join(", "));
        }
        AliasCmd::Del {
            address,
            targets,
            db,
        } => {
            let store = crate::open_store(&db)?;
            let a = address.clone();
            let removed = store.write_sync(move |tx| tx.delete_alias(&a, &targets));
            store.shutdown();
            let removed = removed.with_context(|| format!("cannot delete alias {address}"))?;
            println!("deleted {removed} target(s) of {address}");
        }
        AliasCmd::List { db } => {
            let store = crate::open_store(&db)?;
            let rows = store.read_sync(|r| r.aliases());
            store.shutdown();
            let mut lines: Vec<(String, Vec<String>)> = Vec::new();
            for row in rows? {
                match lines.last_mut() {
                    Some((a, t)) if a.eq_ignore_ascii_case(&row.address) => t.push(row.target),
                    _ => lines.push((row.address, vec![row.target])),
                }
            }
            for (a, t) in lines {
                println!("{a} -> {}", t.join(", "));
            }
        }
    }
    Ok(())
}
