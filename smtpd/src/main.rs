//! `smtpd`: the minimail SMTP receiver on its own (RFC 5321 ESMTP).
//!
//! Command line (README, "Binaries"): `smtpd [--listen ADDR]... [--db
//! PATH] [--domain D]... [--hostname NAME]` plus limits and `--trace`;
//! TLS: `--tls-cert PEM --tls-key PEM` enable STARTTLS (RFC 3207) and
//! `--smtps ADDR` implicit-TLS listeners (RFC 8314 §3.3);
//! `--allow-plaintext-auth` allows AUTH without TLS from non-local
//! clients (RFC 4954 §4). Once
//! it accepts connections it prints one line to stderr naming every
//! listening address; when it cannot bind or open the store it exits
//! non-zero with a clear message. SIGTERM/SIGINT: stop accepting, let
//! in-flight commits finish, send 421 to open sessions, then close the store
//! so that no acknowledged message is lost.

use anyhow::{Context, Result};
use clap::Parser;
use netloop::cli::{ConnArgs, DbArg, TlsArgs};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

// `--tls-cert`, `--tls-key`, `--allow-plaintext-auth`, `--db` and
// `--max-connections` are declared in `netloop::cli`; the `mut_arg`s below
// word their help for SMTP where it differs from the wording there (a
// comment, because a doc comment here would become the `--help` text).
/// The minimail SMTP receiver: accepts mail for local users and stores it.
#[derive(Parser, Debug)]
#[command(version)]
#[command(mut_arg("tls_cert", |a| a
    .value_name("PEM")
    .help("TLS certificate chain, PEM (for STARTTLS and --smtps)")))]
#[command(mut_arg("tls_key", |a| a
    .value_name("PEM")
    .help("TLS private key, PEM (PKCS#8, PKCS#1 or SEC1)")))]
#[command(mut_arg("allow_plaintext_auth", |a| a.help(
    "Offer AUTH PLAIN/LOGIN on unencrypted connections from other hosts too \
     (by default only over TLS, or to clients on this host's own address)")))]
#[command(mut_arg("max_connections", |a| a.help("Connections open at once; more get 421")))]
struct Cli {
    /// Address to listen on (repeatable). STARTTLS is offered here when
    /// --tls-cert/--tls-key are given.
    #[arg(long, default_value = "127.0.0.1:2525")]
    listen: Vec<SocketAddr>,
    /// Address for implicit TLS, TLS from the first byte (RFC 8314; port
    /// 465 by convention). Repeatable; needs --tls-cert and --tls-key.
    #[arg(long, value_name = "ADDR")]
    smtps: Vec<SocketAddr>,
    #[command(flatten)]
    tls: TlsArgs,
    #[command(flatten)]
    db: DbArg,
    /// A domain we accept mail for (repeatable); all others are refused.
    #[arg(long = "domain", default_value = "localhost")]
    domains: Vec<String>,
    /// Our name in the greeting and in Received: headers.
    #[arg(long, default_value = "localhost")]
    hostname: String,
    /// Largest message accepted, in bytes (advertised as SIZE).
    #[arg(long, default_value_t = smtpd::limits::MAX_MESSAGE_SIZE)]
    max_message_size: usize,
    /// Longest text line accepted in a message, CRLF included (RFC 5321
    /// asks for at least 1000; longer lines are stored unchanged).
    #[arg(long, default_value_t = smtpd::limits::MAX_TEXT_LINE)]
    max_text_line: usize,
    /// Recipients accepted per message.
    #[arg(long, default_value_t = smtpd::limits::MAX_RECIPIENTS)]
    max_recipients: usize,
    #[command(flatten)]
    conn: ConnArgs,
    /// Connections open at once from one client address (0: no limit);
    /// clients on this host's own address are exempt.
    #[arg(long, default_value_t = smtpd::limits::MAX_PER_IP)]
    max_per_ip: usize,
    /// Seconds a client may take to send one command line once it has
    /// begun (cuts off clients trickling bytes: slow loris).
    #[arg(long, default_value_t = 120)]
    stall_timeout: u64,
    /// Failed AUTH attempts from one address before it is refused for a
    /// while (454 4.7.0).
    #[arg(long, default_value_t = 10)]
    max_auth_failures: u32,
    /// Seconds to wait for the next command (RFC 5321 §4.5.3.2.7).
    #[arg(long, default_value_t = 300)]
    command_timeout: u64,
    /// Seconds to wait for the next block of message data (§4.5.3.2.5).
    #[arg(long, default_value_t = 180)]
    data_timeout: u64,
    /// Seconds the whole content of one DATA (or BDAT chunk) may take
    /// (cuts off clients trickling message bytes).
    #[arg(long, default_value_t = 600)]
    data_total_timeout: u64,
    /// Log every session's dialogue as C:/S: lines (message bodies elided).
    #[arg(long)]
    trace: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    netloop::cli::exit_code("smtpd", run(cli))
}

fn run(cli: Cli) -> Result<()> {
    let tls = cli.tls.config(!cli.smtps.is_empty(), "--smtps")?;
    if tls.is_none() && cli.tls.wants_cert() {
        anyhow::bail!("--tls-sni and --tls-ocsp need --tls-cert and --tls-key");
    }
    let store = mailstore::Store::open(&cli.db.db)
        .with_context(|| format!("cannot open the store {}", cli.db.db.display()))?;
    let mut config = smtpd::Config {
        hostname: cli.hostname,
        domains: cli.domains,
        max_message_size: cli.max_message_size,
        max_text_line: cli.max_text_line,
        max_recipients: cli.max_recipients,
        timeouts: smtpd::limits::Timeouts {
            command: Duration::from_secs(cli.command_timeout),
            data_block: Duration::from_secs(cli.data_timeout),
            data_total: Duration::from_secs(cli.data_total_timeout),
        },
        trace: cli.trace,
        allow_plaintext_auth: cli.tls.allow_plaintext_auth,
        throttle: netloop::Throttle::new(netloop::ThrottleConfig {
            max_failures: cli.max_auth_failures,
            ..netloop::ThrottleConfig::default()
        }),
        ..smtpd::Config::default()
    };
    config.net.max_connections = cli.conn.max_connections;
    config.net.max_per_ip = cli.max_per_ip;
    config.net.command_timeout = Duration::from_secs(cli.stall_timeout);
    config.net.idle_timeout = config.timeouts.command;
    config.net.tls = tls;
    let listeners = netloop::cli::listeners(&cli.listen, &cli.smtps);
    let server = smtpd::bind_listeners(&listeners, config, store.clone())?;
    let res = server.serve("smtpd").context("smtpd failed");
    // Finish every queued commit before exiting.
    store.shutdown();
    log::info!("smtpd stopped");
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
