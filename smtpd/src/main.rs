//! `smtpd`: the minimail SMTP receiver on its own (RFC 5321 ESMTP).
//!
//! Command line per ../shared/CONTRACT.md: `smtpd [--listen ADDR]... [--db
//! PATH] [--domain D]... [--hostname NAME]` plus limits and `--trace`. Once
//! it accepts connections it prints one line to stderr naming every
//! listening address; when it cannot bind or open the store it exits
//! non-zero with a clear message. SIGTERM/SIGINT: stop accepting, let
//! in-flight commits finish, send 421 to open sessions, then close the store
//! so that no acknowledged message is lost.

use anyhow::{Context, Result};
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The minimail SMTP receiver: accepts mail for local users and stores it.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// Address to listen on (repeatable).
    #[arg(long, default_value = "127.0.0.1:2525")]
    listen: Vec<SocketAddr>,
    /// The store file (created if missing).
    #[arg(long, env = "MINIMAIL_DB", default_value = "./minimail.db")]
    db: PathBuf,
    /// A domain we accept mail for (repeatable); all others are refused.
    #[arg(long = "domain", default_value = "localhost")]
    domains: Vec<String>,
    /// Our name in the greeting and in Received: headers.
    #[arg(long, default_value = "localhost")]
    hostname: String,
    /// Largest message accepted, in bytes (advertised as SIZE).
    #[arg(long, default_value_t = smtpd::limits::MAX_MESSAGE_SIZE)]
    max_message_size: usize,
    /// Recipients accepted per message.
    #[arg(long, default_value_t = smtpd::limits::MAX_RECIPIENTS)]
    max_recipients: usize,
    /// Connections open at once; more get 421.
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// Seconds to wait for the next command (RFC 5321 §4.5.3.2.7).
    #[arg(long, default_value_t = 300)]
    command_timeout: u64,
    /// Seconds to wait for the next block of message data (§4.5.3.2.5).
    #[arg(long, default_value_t = 180)]
    data_timeout: u64,
    /// Log every session's dialogue as C:/S: lines (message bodies elided).
    #[arg(long)]
    trace: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("smtpd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let store = mailstore::Store::open(&cli.db)
        .with_context(|| format!("cannot open the store {}", cli.db.display()))?;
    let mut config = smtpd::Config {
        hostname: cli.hostname,
        domains: cli.domains,
        max_message_size: cli.max_message_size,
        max_recipients: cli.max_recipients,
        timeouts: smtpd::limits::Timeouts {
            command: Duration::from_secs(cli.command_timeout),
            data_block: Duration::from_secs(cli.data_timeout),
        },
        trace: cli.trace,
        ..smtpd::Config::default()
    };
    config.net.max_connections = cli.max_connections;
    config.net.idle_timeout = config.timeouts.command;
    let server = smtpd::bind(&cli.listen, config, store.clone())?;
    let res = server.serve("smtpd").context("smtpd failed");
    // Finish every queued commit before exiting.
    store.shutdown();
    log::info!("smtpd stopped");
    res
}
