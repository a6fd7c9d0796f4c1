//! `minimail up`'s outbound side: the flags of the delivery engine
//! (outbound/src/engine.rs) and `minimail queue list|show|retry|delete`,
//! the queue administration Postfix users know as `postqueue -p`,
//! `postcat -q`, `postqueue -f` and `postsuper -d`.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use mailstore::Store;
use netloop::cli::DbArg;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// TLS towards other hosts.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutboundTls {
    /// Never STARTTLS.
    None,
    /// STARTTLS when offered, any certificate (RFC 3207; the default, as Postfix's `may`).
    Opportunistic,
    /// STARTTLS with a certificate valid for the MX host name, or no delivery (Postfix's `verify`).
    Required,
}

/// The delivery engine's flags (`minimail up`).
#[derive(Args, Debug, Clone)]
pub struct OutboundArgs {
    /// Port MX hosts are reached on (25; tests run every host on one machine with another).
    #[arg(long, default_value_t = 25)]
    pub mx_port: u16,
    /// DNS resolver to ask (e.g. 127.0.0.1:5353) instead of /etc/resolv.conf.
    #[arg(long, value_name = "ADDR")]
    pub dns: Option<SocketAddr>,
    /// Send all outbound mail through this host (a smarthost) instead of MX routing.
    #[arg(long, value_name = "HOST:PORT")]
    pub relay_host: Option<String>,
    /// File whose first line is `user:password` for AUTH at the relay host.
    #[arg(long, value_name = "FILE", requires = "relay_host")]
    pub relay_auth_file: Option<PathBuf>,
    /// Per-domain routes, one per line: `DOMAIN|.DOMAIN|*  [host]:port|host:port|mx|error:TEXT
    /// [tls=none|may|required] [auth=FILE]` (like Postfix's transport map; see the README).
    #[arg(long, value_name = "FILE")]
    pub transport_map: Option<PathBuf>,
    /// TLS towards other hosts.
    #[arg(long, value_enum, default_value = "opportunistic")]
    pub outbound_tls: OutboundTls,
    /// Extra CA certificates (PEM) trusted for --outbound-tls required.
    #[arg(long, value_name = "PEM")]
    pub outbound_ca: Option<PathBuf>,
    /// Give up on (and bounce) a message still undelivered after this many seconds (5 days).
    #[arg(long, default_value_t = 5 * 24 * 3600, value_name = "SECS")]
    pub queue_lifetime: u64,
    /// First retry after this many seconds; the delay doubles per attempt.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub retry_min: u64,
    /// Longest delay between two attempts, in seconds.
    #[arg(long, default_value_t = 3600, value_name = "SECS")]
    pub retry_max: u64,
    /// Outbound connections at once (in total).
    #[arg(long, default_value_t = 20)]
    pub outbound_connections: usize,
    /// Outbound connections at once to one domain.
    #[arg(long, default_value_t = 4)]
    pub per_destination: usize,
    /// Seconds to wait for a remote host's reply (RFC 5321 §4.5.3.2: 5 minutes).
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub outbound_timeout: u64,
    /// Send the sender a delay warning (RFC 3464 "delayed", once per
    /// recipient) when mail is still queued after this many seconds (4
    /// hours); 0 turns warnings off.
    #[arg(long, default_value_t = 4 * 3600, value_name = "SECS")]
    pub delay_warning: u64,
    /// With a PostgreSQL store (a queue front ends share): how many seconds
    /// a front end's claim on a queued recipient holds unless renewed (it
    /// renews every third of that while it delivers); the deliveries of a
    /// front end that died pass to the others after this (2 to 86400).
    #[arg(long, default_value_t = 60, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(2..=86400))]
    pub outbound_lease: u64,
}

impl OutboundArgs {
    /// The engine's configuration.
    pub fn config(&self, hostname: &str, domains: &[String]) -> Result<outbound::Config> {
        let relay = match &self.relay_host {
            None => None,
            Some(hp) => {
                let (host, port) = hp
                    .rsplit_once(':')
                    .and_then(|(h, p)| Some((h.trim_matches(['[', ']']), p.parse::<u16>().ok()?)))
                    .with_context(|| format!("--relay-host {hp}: want HOST:PORT"))?;
                let auth = match &self.relay_auth_file {
                    None => None,
                    Some(f) => {
                        let text = std::fs::read_to_string(f)
                            .with_context(|| format!("cannot read {}", f.display()))?;
                        let line = text.lines().next().unwrap_or("");
                        match line.split_once(':') {
                            Some((u, p)) if !u.is_empty() => Some((u.to_owned(), p.to_owned())),
                            _ => bail!("{}: want one line user:password", f.display()),
                        }
                    }
                };
                Some(outbound::Relay {
                    host: host.to_owned(),
                    port,
                    auth,
                })
            }
        };
        let transport = match &self.transport_map {
            None => outbound::TransportMap::default(),
            Some(f) => outbound::TransportMap::load(f).map_err(anyhow::Error::msg)?,
        };
        Ok(outbound::Config {
            transport,
            hostname: hostname.to_owned(),
            domains: domains.to_vec(),
            mx_port: self.mx_port,
            dns: self.dns,
            relay,
            tls: match self.outbound_tls {
                OutboundTls::None => outbound::TlsMode::None,
                OutboundTls::Opportunistic => outbound::TlsMode::Opportunistic,
                OutboundTls::Required => outbound::TlsMode::Required,
            },
            extra_ca: self.outbound_ca.clone(),
            lifetime: Duration::from_secs(self.queue_lifetime),
            retry_min: Duration::from_secs(self.retry_min.max(1)),
            retry_max: Duration::from_secs(self.retry_max.max(self.retry_min).max(1)),
            max_connections: self.outbound_connections.max(1),
            per_destination: self.per_destination.max(1),
            command_timeout: Duration::from_secs(self.outbound_timeout.max(1)),
            delay_warning: Duration::from_secs(self.delay_warning),
            lease: Duration::from_secs(self.outbound_lease),
            ..outbound::Config::default()
        })
    }
}

/// This front end's name among those sharing a queue: the machine's host
/// name and the first address it listens on (two live front ends cannot
/// listen on one address, so a lease of another process under this name
/// is one of an earlier run, taken back at start).
pub fn lease_node(listening: Option<SocketAddr>) -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at
    // most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let host = if rc == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    };
    let host = if host.is_empty() {
        "localhost".into()
    } else {
        host
    };
    match listening {
        Some(a) => format!("{host}[{a}]"),
        None => host,
    }
}

/// `minimail queue ...`
#[derive(Subcommand, Debug)]
pub enum QueueCmd {
    /// Messages waiting for delivery to other hosts, one line per recipient (like `postqueue -p`).
    List {
        #[command(flatten)]
        db: DbArg,
    },
    /// Print a queued message (like `postcat -q ID`).
    Show {
        /// The queue id.
        id: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Try now: one message, or all (like `postqueue -f`).
    Retry {
        /// The queue id (all messages without it).
        id: Option<String>,
        #[command(flatten)]
        db: DbArg,
    },
    /// Delete a message from the queue without delivering it (like `postsuper -d ID`).
    Delete {
        /// The queue id.
        id: String,
        #[command(flatten)]
        db: DbArg,
    },
}

fn open(db: &DbArg) -> Result<Store> {
    Store::open(&db.db).with_context(|| format!("cannot open the store {}", db.db.display()))
}

fn when(unix: i64) -> String {
    outbound::dsn::rfc5322_date(unix)
}

/// Run a queue command.
pub fn run(cmd: QueueCmd) -> Result<()> {
    match cmd {
        QueueCmd::List { db } => {
            let store = open(&db)?;
            let all = store.read_sync(|r| r.queue_list())?;
            store.shutdown();
            if all.is_empty() {
                println!("queue is empty");
                return Ok(());
            }
            let mut msgs = 0;
            let mut last = None;
            for q in &all {
                if last != Some(q.msg_id) {
                    msgs += 1;
                    last = Some(q.msg_id);
                    println!(
                        "{}  {} bytes  {}  from <{}>",
                        q.qid,
                        q.size,
                        when(q.created),
                        q.sender
                    );
                }
                // A queue shared by front ends (PostgreSQL): who has
                // the recipient in hand, and until when unless renewed.
                let lease = match (&q.lease_owner, q.lease_until) {
                    (Some(owner), Some(until)) => {
                        format!("  leased by {owner} until {}", when(until.div_euclid(1000)))
                    }
                    _ => String::new(),
                };
                println!(
                    "    to <{}>  attempts {}  next {}{}{lease}",
                    q.addr,
                    q.attempts,
                    when(q.next_try),
                    q.last_error
                        .as_deref()
                        .map(|e| format!("  ({e})"))
                        .unwrap_or_default()
                );
            }
            println!("{msgs} message(s), {} recipient(s)", all.len());
        }
        QueueCmd::Show { id, db } => {
            let store = open(&db)?;
            let raw = store.read_sync(|r| r.queue_raw_by_qid(&id))?;
            store.shutdown();
            match raw {
                Some(raw) => {
                    use std::io::Write;
                    std::io::stdout().write_all(&raw)?;
                }
                None => bail!("no message {id} in the queue"),
            }
        }
        QueueCmd::Retry { id, db } => {
            let store = open(&db)?;
            let q = id.clone();
            let n = store.write_sync(move |tx| tx.queue_retry(q.as_deref()))?;
            store.shutdown();
            if id.is_some() && n == 0 {
                bail!("no message {} in the queue", id.unwrap_or_default());
            }
            println!("{n} recipient(s) due now");
        }
        QueueCmd::Delete { id, db } => {
            let store = open(&db)?;
            let q = id.clone();
            let found = store.write_sync(move |tx| tx.queue_delete(&q))?;
            store.shutdown();
            if !found {
                bail!("no message {id} in the queue");
            }
            println!("deleted {id}");
        }
    }
    Ok(())
}
