//! mailbench: the workspace's load tool. Drives any SMTP or IMAP server over
//! TCP and prints throughput and latency percentiles as a table or JSON,
//! with its own CPU use (and the server's, given `--server-pid`) so a run
//! says when the load tool itself is the bottleneck.

mod e2e;
mod hostile;
mod idle;
mod imap;
mod maildir;
mod outbound;
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
        /// Send MAIL, RCPT and DATA in one write (RFC 2920 PIPELINING), as
        /// Postfix's SMTP client does.
        #[arg(long)]
        pipeline: bool,
    },
    /// Outbound delivery (queue to remote `250`): submit N messages to
    /// recipients in D domains and time their arrival at the domains' MX
    /// host (mailbench's own sink, or smtp-sink's counter).
    Outbound {
        /// The MTA's address to submit to (minimail's submission port,
        /// Postfix's smtpd).
        #[arg(long, default_value = "127.0.0.1:5870")]
        submit: String,
        /// AUTH PLAIN as this user before sending (minimail's submission
        /// port requires AUTH; Postfix relays for mynetworks without).
        #[arg(long)]
        user: Option<String>,
        /// Password for --user.
        #[arg(long, env = "MAILBENCH_PASSWORD", default_value = "bench")]
        password: String,
        /// Envelope sender (minimail wants the --user's own address).
        #[arg(long, default_value = "bench@localhost")]
        from: String,
        /// Messages in total.
        #[arg(long, default_value_t = 10000)]
        messages: u64,
        /// Message size in bytes.
        #[arg(long, default_value_t = 4096)]
        size: usize,
        /// Recipient domains (message n goes to domain n mod D).
        #[arg(long, default_value_t = 100)]
        domains: u32,
        /// Domain names; `{}` is replaced by 0..D-1.
        #[arg(long, default_value = "d{}.test")]
        domain_format: String,
        /// Concurrent submission sessions (one connection each, PIPELINING).
        #[arg(long, default_value_t = 16)]
        sessions: usize,
        /// Offer messages at this rate (per second, all sessions together)
        /// instead of as fast as they are accepted.
        #[arg(long)]
        rate: Option<f64>,
        /// Be the remote host: listen on this IPv4 address and port (and
        /// on the next --sink-ips - 1 addresses, same port) and time every
        /// message's `250`.
        #[arg(long, conflicts_with = "sink_counter")]
        sink: Option<std::net::SocketAddr>,
        /// Consecutive addresses the sink listens on (one per MX host).
        #[arg(long, default_value_t = 1)]
        sink_ips: u32,
        /// Hold the sink's connections before their greeting until every
        /// message is queued: the rate is then a full queue's drain.
        #[arg(long, requires = "sink")]
        hold: bool,
        /// The remote host is smtp-sink run with `-c`, its standard output
        /// in this file: only the time the last message arrived is known.
        #[arg(long, value_name = "FILE")]
        sink_counter: Option<std::path::PathBuf>,
        /// Longest wait for the deliveries, in seconds from the start.
        #[arg(long, default_value_t = 900)]
        timeout: u64,
        /// Without a sink: keep watching --server-pid's memory this many
        /// seconds after the last message is queued.
        #[arg(long, default_value_t = 0)]
        linger: u64,
    },
    /// Write the messages `imap populate` would APPEND as a Maildir folder
    /// (for Maildir servers such as Dovecot: a 100,000-message mailbox
    /// without 100,000 APPENDs).
    Maildir {
        /// The folder (its cur/, new/ and tmp/ are created).
        #[arg(long)]
        dir: std::path::PathBuf,
        /// Messages to write.
        #[arg(long)]
        count: u64,
        /// Message size in bytes.
        #[arg(long, default_value_t = 2048)]
        size: usize,
    },
    /// IMAP workloads against one mailbox.
    Imap {
        #[command(flatten)]
        target: ImapArgs,
        #[command(subcommand)]
        work: ImapWork,
    },
    /// SMTP `250` -> visible over IMAP: delivery rate and delay.
    E2e {
        #[command(flatten)]
        target: ImapArgs,
        /// SMTP server address.
        #[arg(long, default_value = "127.0.0.1:2525")]
        smtp: String,
        /// Recipient over SMTP (defaults to --user).
        #[arg(long)]
        to: Option<String>,
        /// Concurrent SMTP sessions.
        #[arg(long, default_value_t = 16)]
        sessions: usize,
        /// Messages in total.
        #[arg(long, default_value_t = 2000)]
        messages: u64,
        /// Message size in bytes.
        #[arg(long, default_value_t = 1024)]
        size: usize,
    },
    /// N connections in IDLE; time from SMTP `250` to `* n EXISTS` on each.
    Idle {
        #[command(flatten)]
        target: ImapArgs,
        /// SMTP server address.
        #[arg(long, default_value = "127.0.0.1:2525")]
        smtp: String,
        /// Recipient over SMTP (defaults to --user).
        #[arg(long)]
        to: Option<String>,
        /// IMAP connections held in IDLE.
        #[arg(long, default_value_t = 1000)]
        connections: usize,
        /// Messages delivered, one at a time.
        #[arg(long, default_value_t = 5)]
        messages: u64,
    },
    /// Cost versus size of hostile messages (issue 12): parse time and
    /// peak RSS of mailstore's parse on delivery, each case in a fresh
    /// child process; optionally each message delivered over SMTP too.
    Hostile {
        /// Shapes to measure (default: all); repeat or separate by commas.
        #[arg(long = "shape", value_delimiter = ',', value_parser = hostile::parse_shape)]
        shapes: Vec<::hostile::Shape>,
        /// Message sizes (bytes, or with KiB/MiB).
        #[arg(long, value_delimiter = ',', value_parser = hostile::parse_size,
              default_value = hostile::DEFAULT_SIZES)]
        sizes: Vec<usize>,
        /// Also deliver every message to this SMTP server and report the
        /// time from end of DATA to the reply, and the reply.
        #[arg(long)]
        smtp: Option<String>,
        /// Envelope sender for --smtp.
        #[arg(long, default_value = "bench@localhost")]
        from: String,
        /// Recipient for --smtp (must exist on the server).
        #[arg(long, default_value = "bench@localhost")]
        to: String,
    },
    /// One case of `hostile`, measured in this process (run by `hostile`).
    #[command(hide = true)]
    HostileOne {
        shape: String,
        #[arg(value_parser = hostile::parse_size)]
        size: usize,
    },
}

#[derive(clap::Args, Clone)]
struct ImapArgs {
    /// IMAP server address.
    #[arg(long, default_value = "127.0.0.1:1143")]
    addr: String,
    /// Login name.
    #[arg(long, default_value = "bench@localhost")]
    user: String,
    /// Password.
    #[arg(long, env = "MAILBENCH_PASSWORD", default_value = "bench")]
    password: String,
    /// Mailbox to work on.
    #[arg(long, default_value = "INBOX")]
    mailbox: String,
    /// COMPRESS=DEFLATE (RFC 4978) after LOGIN, in the sessions of the
    /// timed workloads (select, fetch-meta, search, store, body, sort,
    /// thread).
    #[arg(long)]
    compress: bool,
}

impl ImapArgs {
    fn target(self) -> imap::Target {
        imap::Target {
            addr: self.addr,
            user: self.user,
            password: self.password,
            mailbox: self.mailbox,
            compress: self.compress,
        }
    }
}

#[derive(Subcommand)]
enum ImapWork {
    /// APPEND N messages, pipelined (LITERAL+ when advertised).
    Populate {
        /// Messages to append.
        count: u64,
        /// Message size in bytes.
        #[arg(long, default_value_t = 2048)]
        size: usize,
        /// APPENDs in flight.
        #[arg(long, default_value_t = 32)]
        window: usize,
        /// Bodies of random words (compressing about as well as mail
        /// text does), instead of one repeated line.
        #[arg(long)]
        varied: bool,
        /// Mixed sizes: each message between --size and this many bytes
        /// (uniform, seeded by its number), like a real mailbox's 4-150 KiB.
        #[arg(long)]
        max_size: Option<usize>,
    },
    /// Connect + LOGIN + SELECT, repeated.
    Select {
        #[arg(long, default_value_t = 20)]
        repeat: usize,
    },
    /// FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE), warm.
    FetchMeta {
        #[arg(long, default_value_t = 5)]
        repeat: usize,
    },
    /// UID SEARCH KEY word, warm (KEY: TEXT, BODY, SUBJECT, FROM, or
    /// "HEADER field").
    Search {
        #[arg(long, default_value = "kumquat")]
        word: String,
        #[arg(long, default_value = "TEXT")]
        key: String,
        #[arg(long, default_value_t = 5)]
        repeat: usize,
        /// Make this session's SELECT the first of the mailbox (no check
        /// of its messages on another connection before it), so that the
        /// first search ("cold ms") is sent right after the mailbox's
        /// first SELECT: the search a server cannot have prepared for.
        #[arg(long)]
        first_select: bool,
    },
    /// FETCH 1:count BODY.PEEK[] over one connection, warm: the bulk body
    /// transfer (octets per second).
    Bodies {
        #[arg(long, default_value_t = 500)]
        count: u64,
        #[arg(long, default_value_t = 5)]
        repeat: usize,
    },
    /// STORE 1:* +FLAGS (\Flagged) then -FLAGS.
    Store {
        #[arg(long, default_value_t = 3)]
        repeat: usize,
    },
    /// Random UID FETCH n BODY.PEEK[] over many sessions.
    Body {
        #[arg(long, default_value_t = 16)]
        sessions: usize,
        #[arg(long, default_value_t = 20000)]
        count: u64,
    },
    /// UID SORT (criteria) UTF-8 ALL (RFC 5256), warm.
    Sort {
        #[arg(long, default_value = "REVERSE ARRIVAL")]
        criteria: String,
        #[arg(long, default_value_t = 5)]
        repeat: usize,
    },
    /// UID THREAD algorithm UTF-8 ALL (RFC 5256), warm.
    Thread {
        #[arg(long, default_value = "REFERENCES")]
        algorithm: String,
        #[arg(long, default_value_t = 5)]
        repeat: usize,
    },
    /// A fresh connection's SELECT (QRESYNC (uidvalidity modseq)) after
    /// another session's flag changes and expunges (RFC 7162 §3.2.5).
    /// Destructive: the expunged messages go.
    Qresync {
        #[arg(long, default_value_t = 100)]
        changes: usize,
        #[arg(long, default_value_t = 10)]
        expunges: usize,
        #[arg(long, default_value_t = 5)]
        repeat: usize,
    },
    /// SELECT of a mailbox that changed since it was last selected: before
    /// each timed SELECT another session changes the flags of N messages,
    /// APPENDs one and expunges the one it APPENDed the round before.
    SelectChanged {
        #[arg(long, default_value_t = 10)]
        changes: usize,
        #[arg(long, default_value_t = 20)]
        repeat: usize,
    },
    /// LIST "" "*" RETURN (STATUS (MESSAGES UNSEEN)) (LIST-STATUS, RFC
    /// 5819) over N mailboxes `<mailbox>-0000`... of one message each
    /// (made first where missing): cold, then warm.
    ListStatus {
        #[arg(long, default_value_t = 1000)]
        mailboxes: usize,
        #[arg(long, default_value_t = 5)]
        repeat: usize,
    },
}

impl ImapWork {
    fn workload(self) -> imap::Workload {
        use imap::Workload as W;
        match self {
            ImapWork::Populate {
                count,
                size,
                window,
                varied,
                max_size,
            } => W::Populate {
                count,
                size,
                window,
                varied,
                max_size,
            },
            ImapWork::Select { repeat } => W::Select { repeat },
            ImapWork::FetchMeta { repeat } => W::FetchMeta { repeat },
            ImapWork::Search {
                word,
                key,
                repeat,
                first_select,
            } => W::Search {
                word,
                key,
                repeat,
                first_select,
            },
            ImapWork::Bodies { count, repeat } => W::Bodies { count, repeat },
            ImapWork::Store { repeat } => W::Store { repeat },
            ImapWork::Body { sessions, count } => W::Body { sessions, count },
            ImapWork::Sort { criteria, repeat } => W::Sort { criteria, repeat },
            ImapWork::Thread { algorithm, repeat } => W::Thread { algorithm, repeat },
            ImapWork::Qresync {
                changes,
                expunges,
                repeat,
            } => W::Qresync {
                changes,
                expunges,
                repeat,
            },
            ImapWork::SelectChanged { changes, repeat } => W::SelectChanged { changes, repeat },
            ImapWork::ListStatus { mailboxes, repeat } => W::ListStatus { mailboxes, repeat },
        }
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let pid = cli.server_pid.map(|p| p.to_string());
    let server_before = pid.as_deref().and_then(stats::cpu_seconds);
    let client_before = stats::cpu_seconds("self").unwrap_or(0.0);
    let wall = std::time::Instant::now();
    let mut report = match cli.cmd {
        Cmd::Maildir { dir, count, size } => {
            let n = maildir::write(&dir, count, size)?;
            println!(
                "mailbench maildir: {n} messages in {} ({:.1} s)",
                dir.display(),
                wall.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        Cmd::Hostile {
            shapes,
            sizes,
            smtp,
            from,
            to,
        } => {
            return hostile::run(hostile::Opts {
                shapes,
                sizes,
                smtp,
                from,
                to,
                json: cli.json,
            })
        }
        Cmd::HostileOne { shape, size } => return hostile::one(&shape, size),
        Cmd::Smtp {
            addr,
            sessions,
            messages,
            size,
            from,
            to,
            reuse,
            pipeline,
        } => smtp::run(smtp::SmtpOpts {
            addr,
            sessions,
            messages,
            size,
            from,
            to,
            reuse,
            pipeline,
            acks: None,
        })?,
        Cmd::Outbound {
            submit,
            user,
            password,
            from,
            messages,
            size,
            domains,
            domain_format,
            sessions,
            rate,
            sink,
            sink_ips,
            hold,
            sink_counter,
            timeout,
            linger,
        } => outbound::run(outbound::Opts {
            plan: outbound::Plan {
                addr: submit,
                auth: user.map(|u| (u, password)),
                from,
                messages,
                size,
                domains,
                domain_format,
                sessions,
                rate,
                run: outbound::run_id(),
            },
            dest: match (sink, sink_counter) {
                (Some(first), _) => outbound::Dest::Own {
                    first,
                    ips: sink_ips,
                    hold,
                },
                (None, Some(file)) => outbound::Dest::Counter(file),
                (None, None) => outbound::Dest::None {
                    linger: std::time::Duration::from_secs(linger),
                },
            },
            timeout: std::time::Duration::from_secs(timeout),
            server_pid: cli.server_pid,
        })?,
        Cmd::Imap { target, work } => imap::run(&target.target(), &work.workload())?,
        Cmd::E2e {
            target,
            smtp,
            to,
            sessions,
            messages,
            size,
        } => {
            let t = target.target();
            let to = to.unwrap_or_else(|| t.user.clone());
            e2e::run(&t, &smtp, &to, sessions, messages, size)?
        }
        Cmd::Idle {
            target,
            smtp,
            to,
            connections,
            messages,
        } => {
            let t = target.target();
            let to = to.unwrap_or_else(|| t.user.clone());
            idle::run(&t, &smtp, &to, connections, messages, cli.server_pid)?
        }
    };
    report.cpu_wall = wall.elapsed();
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
