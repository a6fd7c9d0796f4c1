//! `imapd`: the minimail IMAP server on its own (RFC 3501 + extensions).
//!
//! Command line per ../shared/CONTRACT.md: `imapd [--listen ADDR]... [--db
//! PATH]` plus limits and `--trace`. Once it accepts connections it prints
//! one line to stderr naming every listening address; when it cannot bind
//! or open the store it exits non-zero with a clear message.
//! SIGTERM/SIGINT: stop accepting, let in-flight commits finish, send
//! `* BYE` to open sessions, then close the store.

use anyhow::{Context, Result};
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The minimail IMAP server: serves the mailbox store to IMAP clients.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// Address to listen on (repeatable).
    #[arg(long, default_value = "127.0.0.1:1143")]
    listen: Vec<SocketAddr>,
    /// The store file (created if missing).
    #[arg(long, env = "MINIMAIL_DB", default_value = "./minimail.db")]
    db: PathBuf,
    /// Largest literal (e.g. APPENDed message) accepted, in bytes.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    max_literal: u64,
    /// Connections open at once; more get `* BYE`.
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// Minutes of inactivity before autologout (RFC 3501 §5.4: >= 30).
    #[arg(long, default_value_t = 31)]
    autologout_minutes: u64,
    /// Log every session's dialogue as C:/S: lines (credentials masked,
    /// literals elided).
    #[arg(long)]
    trace: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("imapd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let store = mailstore::Store::open(&cli.db)
        .with_context(|| format!("cannot open the store {}", cli.db.display()))?;
    let mut config = imapd::Config {
        trace: cli.trace,
        max_literal: cli.max_literal,
        autologout: Duration::from_secs(cli.autologout_minutes * 60),
        ..imapd::Config::default()
    };
    config.net.max_connections = cli.max_connections;
    config.net.idle_timeout = config.autologout;
    let server = imapd::bind(&cli.listen, config, store.clone())?;
    let res = server.serve("imapd").context("imapd failed");
    store.shutdown();
    log::info!("imapd stopped");
    res
}
