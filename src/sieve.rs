//! `minimail sieve list|get|put|activate|deactivate|del|check`: users'
//! Sieve scripts in the store, for the administrator (users manage their
//! own over ManageSieve). `put` compiles the script first and stores
//! nothing that does not compile.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use netloop::cli::DbArg;
use std::io::Read;
use std::path::PathBuf;

/// `minimail sieve ...`.
#[derive(Subcommand)]
pub enum SieveCmd {
    /// List a user's scripts; the active one is marked `ACTIVE`.
    List {
        /// The user's address.
        user: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Print a user's script.
    Get {
        /// The user's address.
        user: String,
        /// The script's name.
        name: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Store a script (from FILE, or standard input for `-`) after
    /// checking that it compiles; `--activate` makes it the active one.
    Put {
        /// The user's address.
        user: String,
        /// The script's name.
        name: String,
        /// The script file, `-` for standard input.
        file: PathBuf,
        /// Make it the user's active script.
        #[arg(long)]
        activate: bool,
        #[command(flatten)]
        db: DbArg,
    },
    /// Make a script the user's active one.
    Activate {
        /// The user's address.
        user: String,
        /// The script's name.
        name: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Leave the user with no active script.
    Deactivate {
        /// The user's address.
        user: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Delete a (not active) script.
    Del {
        /// The user's address.
        user: String,
        /// The script's name.
        name: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Check that a script file compiles (no store needed).
    Check {
        /// The script file, `-` for standard input.
        file: PathBuf,
    },
}

fn read(file: &PathBuf) -> Result<Vec<u8>> {
    let mut text = Vec::new();
    if file.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut text)?;
    } else {
        text = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    }
    Ok(text)
}

/// Run one `minimail sieve` command.
pub fn run(cmd: SieveCmd) -> Result<()> {
    if let SieveCmd::Check { file } = &cmd {
        let text = read(file)?;
        if let Err(e) = mailsieve::compile(&text) {
            bail!("{}: {e}", file.display());
        }
        println!("{}: ok", file.display());
        return Ok(());
    }
    let (user, db) = match &cmd {
        SieveCmd::List { user, db }
        | SieveCmd::Get { user, db, .. }
        | SieveCmd::Put { user, db, .. }
        | SieveCmd::Activate { user, db, .. }
        | SieveCmd::Deactivate { user, db }
        | SieveCmd::Del { user, db, .. } => (user.clone(), db),
        SieveCmd::Check { .. } => return Ok(()),
    };
    let store = crate::open_store(db)?;
    let result = (|| {
        let u = user.clone();
        let Some(id) = store.read_sync(move |r| r.user(&u))?.map(|u| u.id) else {
            bail!("no such user: {user}");
        };
        match cmd {
            SieveCmd::List { .. } => {
                for s in store.read_sync(move |r| r.sieve_scripts(id))? {
                    println!("{}{}", s.name, if s.active { " ACTIVE" } else { "" });
                }
            }
            SieveCmd::Get { name, .. } => {
                let n = name.clone();
                match store.read_sync(move |r| r.sieve_script(id, &n))? {
                    Some(text) => print!("{}", String::from_utf8_lossy(&text)),
                    None => bail!("{user} has no script {name:?}"),
                }
            }
            SieveCmd::Put {
                name,
                file,
                activate,
                ..
            } => {
                let text = read(&file)?;
                if let Err(e) = mailsieve::compile(&text) {
                    bail!("script {name:?} not stored: {e}");
                }
                let n = name.clone();
                store.write_sync(move |tx| {
                    tx.put_sieve_script(id, &n, &text)?;
                    if activate {
                        tx.activate_sieve_script(id, Some(&n))?;
                    }
                    Ok(())
                })?;
                println!(
                    "stored {name:?} for {user}{}",
                    if activate { " (active)" } else { "" }
                );
            }
            SieveCmd::Activate { name, .. } => {
                let n = name.clone();
                store.write_sync(move |tx| tx.activate_sieve_script(id, Some(&n)))?;
                println!("{name:?} is {user}'s active script");
            }
            SieveCmd::Deactivate { .. } => {
                store.write_sync(move |tx| tx.activate_sieve_script(id, None))?;
                println!("{user} has no active script");
            }
            SieveCmd::Del { name, .. } => {
                let n = name.clone();
                store.write_sync(move |tx| tx.delete_sieve_script(id, &n))?;
                println!("deleted {name:?} of {user}");
            }
            SieveCmd::Check { .. } => {}
        }
        Ok(())
    })();
    store.shutdown();
    result
}
