//! `mua sieve list|get|put|activate|deactivate|check|delete`: the
//! account's Sieve filters over ManageSieve (RFC 5804), as Thunderbird's
//! Sieve add-on or `sieve-connect` manage them. The server is `--sieve`
//! (`MUA_SIEVE`, `sieve = ...`), else the IMAP host on port 4190.

use crate::cli::Ctx;
use crate::error::MuaError;
use clap::{Args, Subcommand};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Manage the account's Sieve filters.
#[derive(Debug, Args)]
pub struct SieveCmd {
    /// What to do.
    #[command(subcommand)]
    pub action: SieveAction,
}

/// The `mua sieve` actions.
#[derive(Debug, Subcommand)]
pub enum SieveAction {
    /// List the scripts; the active one is marked ACTIVE.
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Print a script.
    Get {
        /// The script's name.
        name: String,
    },
    /// Upload a script (from FILE, `-` for standard input); the server
    /// refuses one that does not compile.
    Put {
        /// The script's name.
        name: String,
        /// The script file, `-` for standard input.
        file: PathBuf,
        /// Also make it the active script.
        #[arg(long)]
        activate: bool,
    },
    /// Make a script the active one.
    Activate {
        /// The script's name.
        name: String,
    },
    /// Leave no script active.
    Deactivate,
    /// Check that a script compiles on the server (nothing is stored).
    Check {
        /// The script file, `-` for standard input.
        file: PathBuf,
    },
    /// Delete a script (not the active one).
    Delete {
        /// The script's name.
        name: String,
    },
}

fn read(file: &Path) -> anyhow::Result<Vec<u8>> {
    let mut text = Vec::new();
    if file.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut text)?;
    } else {
        text = std::fs::read(file)
            .map_err(|e| MuaError::Usage(format!("cannot read {}: {e}", file.display())))?;
    }
    Ok(text)
}

impl SieveCmd {
    /// Runs `mua sieve ...`.
    ///
    /// # Errors
    /// Connection, auth and server refusals.
    pub fn run(self, ctx: &mut Ctx) -> anyhow::Result<()> {
        // Read the file before asking for a password or connecting.
        let script = match &self.action {
            SieveAction::Put { file, .. } | SieveAction::Check { file } => Some(read(file)?),
            _ => None,
        };
        let mut c = ctx.sieve()?;
        let out = match self.action {
            SieveAction::List { json } => {
                let list = c.list()?;
                if json {
                    let rows: Vec<_> = list
                        .iter()
                        .map(|(name, active)| serde_json::json!({"name": name, "active": active}))
                        .collect();
                    format!("{}\n", serde_json::to_string_pretty(&rows)?)
                } else {
                    list.iter()
                        .map(|(n, a)| format!("{n}{}\n", if *a { " ACTIVE" } else { "" }))
                        .collect()
                }
            }
            SieveAction::Get { name } => {
                let text = c.get(&name)?;
                c.logout();
                return super::emit(&text);
            }
            SieveAction::Put { name, activate, .. } => {
                c.put(&name, &script.unwrap_or_default())?;
                if activate {
                    c.activate(&name)?;
                }
                format!(
                    "stored {name:?}{}\n",
                    if activate { " (active)" } else { "" }
                )
            }
            SieveAction::Activate { name } => {
                c.activate(&name)?;
                format!("{name:?} is the active script\n")
            }
            SieveAction::Deactivate => {
                c.activate("")?;
                "no script is active\n".to_owned()
            }
            SieveAction::Check { file } => {
                c.check(&script.unwrap_or_default())?;
                format!("{}: ok\n", file.display())
            }
            SieveAction::Delete { name } => {
                c.delete(&name)?;
                format!("deleted {name:?}\n")
            }
        };
        c.logout();
        super::emit(out.as_bytes())
    }
}
