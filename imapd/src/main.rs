//! `imapd`: the minimail IMAP server on its own (RFC 3501 + extensions).
//!
//! Command line (README, "Binaries"): `imapd [--listen ADDR]... [--db
//! PATH]` plus implicit-TLS listeners (`--imaps ADDR`, RFC 8314 §3.3), the
//! certificate for them and STARTTLS (`--tls-cert`, `--tls-key`; RFC 3501
//! §6.2.1), `--allow-plaintext-auth` (§6.2.3), limits and `--trace`. Once
//! it accepts connections it prints
//! one line to stderr naming every listening address; when it cannot bind
//! or open the store it exits non-zero with a clear message.
//! SIGTERM/SIGINT: stop accepting, let in-flight commits finish, send
//! `* BYE` to open sessions, then close the store.

use anyhow::{Context, Result};
use clap::Parser;
use netloop::cli::{ConnArgs, DbArg, TlsArgs};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

// `--tls-cert`, `--tls-key`, `--allow-plaintext-auth`, `--db` and
// `--max-connections` are declared in `netloop::cli`; the `mut_arg`s below
// word their help for IMAP where it differs from the wording there (a
// comment, because a doc comment here would become the `--help` text).
/// The minimail IMAP server: serves the mailbox store to IMAP clients.
#[derive(Parser, Debug)]
#[command(version)]
#[command(mut_arg("tls_cert", |a| a.help("TLS certificate chain (PEM) for STARTTLS and --imaps")))]
#[command(mut_arg("allow_plaintext_auth", |a| a.help(
    "Accept LOGIN/AUTHENTICATE without TLS from non-local clients \
     (otherwise LOGINDISABLED until STARTTLS)")))]
#[command(mut_arg("max_connections", |a| a.help("Connections open at once; more get `* BYE`")))]
struct Cli {
    /// Address to listen on (repeatable); STARTTLS is offered there when a
    /// certificate is given.
    #[arg(long, default_value = "127.0.0.1:1143")]
    listen: Vec<SocketAddr>,
    /// Address for implicit TLS (IMAPS, port 993 by convention; repeatable).
    /// Needs --tls-cert and --tls-key.
    #[arg(long)]
    imaps: Vec<SocketAddr>,
    #[command(flatten)]
    tls: TlsArgs,
    #[command(flatten)]
    db: DbArg,
    /// Largest literal (e.g. APPENDed message) accepted, in bytes;
    /// advertised as APPENDLIMIT=N (RFC 7889).
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    max_literal: u64,
    #[command(flatten)]
    conn: ConnArgs,
    /// Connections open at once from one client address (0 = no limit;
    /// clients on the server's own address are exempt).
    #[arg(long, default_value_t = imapd::limits::MAX_PER_IP)]
    max_per_ip: usize,
    /// Longest command line in bytes (literals excluded).
    #[arg(long, default_value_t = imapd::limits::MAX_LINE)]
    max_line: usize,
    /// Mailboxes one user may have.
    #[arg(long, default_value_t = imapd::limits::MAX_MAILBOXES)]
    max_mailboxes: usize,
    /// Seconds a started command may sit incomplete without progress
    /// before the connection is closed (slow senders).
    #[arg(long, default_value_t = imapd::limits::COMMAND_TIMEOUT.as_secs())]
    stall_timeout: u64,
    /// Bytes per second a command with literals must average once it has
    /// taken longer than --stall-timeout.
    #[arg(long, default_value_t = imapd::limits::MIN_UPLOAD_RATE)]
    min_upload_rate: u64,
    /// Minutes of inactivity before autologout (RFC 3501 §5.4: >= 30).
    #[arg(long, default_value_t = 31)]
    autologout_minutes: u64,
    /// Seconds of silence during IDLE after which `* OK Still here` is
    /// sent, so NAT boxes keep the connection (0 = never).
    #[arg(long, value_name = "SECS", default_value_t = imapd::limits::IDLE_KEEPALIVE.as_secs())]
    idle_keepalive: u64,
    /// Log every session's dialogue as C:/S: lines (credentials masked,
    /// literals elided).
    #[arg(long)]
    trace: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    netloop::cli::exit_code("imapd", run(cli))
}

fn run(cli: Cli) -> Result<()> {
    let tls = cli.tls.config(!cli.imaps.is_empty(), "--imaps")?;
    if tls.is_none() && cli.tls.wants_cert() {
        anyhow::bail!("--tls-sni and --tls-ocsp need --tls-cert and --tls-key");
    }
    let store = mailstore::Store::open(&cli.db.db)
        .with_context(|| format!("cannot open the store {}", cli.db.db.display()))?;
    let mut config = imapd::Config {
        trace: cli.trace,
        max_literal: cli.max_literal,
        max_line: cli.max_line,
        max_mailboxes: cli.max_mailboxes,
        min_upload_rate: cli.min_upload_rate,
        allow_plaintext_auth: cli.tls.allow_plaintext_auth,
        autologout: Duration::from_secs(cli.autologout_minutes.saturating_mul(60)),
        idle_keepalive: Duration::from_secs(cli.idle_keepalive),
        ..imapd::Config::default()
    };
    config.net.max_connections = cli.conn.max_connections;
    config.net.max_per_ip = cli.max_per_ip;
    config.net.command_timeout = Duration::from_secs(cli.stall_timeout);
    config.net.idle_timeout = config.autologout;
    config.net.tls = tls;
    let listen = netloop::cli::listeners(&cli.listen, &cli.imaps);
    let server = imapd::bind_listeners(&listen, config, store.clone())?;
    let res = server.serve("imapd").context("imapd failed");
    store.shutdown();
    log::info!("imapd stopped");
    res
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// The flag definitions are consistent, and every help re-wording
    /// above names a flag that exists.
    #[test]
    fn command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
