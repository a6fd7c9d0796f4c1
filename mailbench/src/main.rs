//! mailbench: the workspace's load tool. Drives any SMTP or IMAP server over
//! TCP and prints throughput and latency percentiles as a table or JSON,
//! with its own CPU use (and the server's, given `--server-pid`) so a run
//! says when the load tool itself is the bottleneck.

mod smtp;
mod stats;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    version,
    about = "Load generator for SMTP/IMAP servers (minimail, Postfix, Dovecot...)"
)]
struct Cli {
    /// Print one JSON object instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// PID of the server, to report its CPU use beside ours.
    #[arg(long, global = true)]
    server_pid: Option<u32>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Deliver messages over SMTP; latency is end-of-data dot to `250`.
    Smtp {
        /// Server address.
        #[arg(long, default_value = "127.0.0.1:2525")]
        addr: String,
        /// Concurrent sessions.
        #[arg(long, default_value_t = 16)]
        sessions: usize,
        /// Messages in total.
        #[arg(long, default_value_t = 5000)]
        messages: u64,
        /// Message size in bytes.
        #[arg(long, default_value_t = 1024)]
        size: usize,
        /// Envelope sender.
        #[arg(long, default_value = "bench@localhost")]
        from: String,
        /// Recipient (must exist on the server).
        #[arg(long, default_value = "bench@localhost")]
        to: String,
        /// Send every message of a session over one connection (default:
        /// a new connection per message, like smtp-source).
        #[arg(long)]
        reuse: bool,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let pid = cli.server_pid.map(|p| p.to_string());
    let server_before = pid.as_deref().and_then(stats::cpu_seconds);
    let client_before = stats::cpu_seconds("self").unwrap_or(0.0);
    let mut report = match cli.cmd {
        Cmd::Smtp {
            addr,
            sessions,
            messages,
            size,
            from,
            to,
            reuse,
        } => smtp::run(smtp::SmtpOpts {
            addr,
            sessions,
            messages,
            size,
            from,
            to,
            reuse,
        })?,
    };
    report.client_cpu = stats::cpu_seconds("self").unwrap_or(0.0) - client_before;
    if let (Some(p), Some(b)) = (pid.as_deref(), server_before) {
        report.server_cpu = stats::cpu_seconds(p).map(|a| a - b);
    }
    let failed = report.failed;
    report.print(cli.json);
    if failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}
