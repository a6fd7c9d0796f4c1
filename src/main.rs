//! `minimail`: the workspace's root binary.
//!
//! `minimail up` (also what `cargo run --release` runs) serves SMTP and IMAP
//! from one process over one store; `minimail user ...` administers accounts
//! in that store; `minimail store check` runs SQLite's integrity check over
//! it; `minimail import`/`export`/`backup`/`restore` move mail and the
//! store in and out (src/transfer.rs over the `transfer` crate);
//! `minimail migrate` copies a SQLite store into PostgreSQL
//! (src/migrate.rs over mailstore's `pg/migrate.rs`);
//! `minimail cert` makes a self-signed TLS certificate for
//! development. Command lines are those of the README ("Binaries").

use anyhow::{bail, Context, Result};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use mailstore::Store;
use netloop::cli::{ConnArgs, DbArg, TlsArgs};
use std::ffi::OsString;
use std::io::{BufRead, IsTerminal};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

mod alias;
mod config;
mod dkim;
mod logging;
mod migrate;
mod notify;
mod queue;
mod quota;
mod report;
mod sendmail;
mod sieve;
mod tls;
mod transfer;
mod up;
use tls::{cert, snakeoil_pair, CertArgs};

#[derive(Parser)]
#[command(
    version,
    about = "minimail: a small, real email system (SMTP + IMAP over one SQLite store)",
    after_help = "With no command, `minimail` runs `minimail up`."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the SMTP receiver and the IMAP server over one store.
    Up(Box<UpArgs>),
    /// Administer user accounts.
    #[command(subcommand)]
    User(UserCmd),
    /// Aliases and catch-alls: add, del, list.
    #[command(subcommand)]
    Alias(alias::AliasCmd),
    /// Users' Sieve scripts: list, get, put, activate, deactivate, del, check.
    #[command(subcommand)]
    Sieve(sieve::SieveCmd),
    /// Make a self-signed TLS certificate and key (for development and tests).
    Cert(CertArgs),
    /// Look after the store file.
    #[command(subcommand)]
    Store(StoreCmd),
    /// DKIM signing keys: make one, show the DNS records to publish.
    #[command(subcommand)]
    Dkim(dkim::DkimCmd),
    /// The outbound queue: list, show, retry, delete.
    #[command(subcommand)]
    Queue(queue::QueueCmd),
    /// Summarise the DMARC aggregate / TLS reports other domains mailed to a user.
    #[command(subcommand)]
    Report(report::ReportCmd),
    /// The settings file of `minimail up` (--config PATH, MINIMAIL_CONFIG).
    #[command(subcommand)]
    Config(ConfigCmd),
    /// sendmail(1): deliver the message on standard input to local users
    /// (`minimail sendmail [-t] [-i] [-f ADDR] [-F NAME] [RCPT...]`; also
    /// run as `sendmail` through a symlink). See src/sendmail.rs.
    #[command(disable_help_flag = true)]
    Sendmail {
        /// sendmail's own options and the recipients.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Import mail into a user's mailboxes from an mbox file, a directory
    /// of mbox files or a Maildir, with flags, keywords and dates; a second
    /// import of the same source adds nothing.
    Import(transfer::ImportArgs),
    /// Export a user's mailboxes to a new directory as mbox files or a
    /// Maildir, with flags, keywords and dates.
    Export(transfer::ExportArgs),
    /// Copy the store to a new file while the servers run (a consistent
    /// snapshot, integrity-checked).
    Backup(transfer::BackupArgs),
    /// Replace the store by a backup; refused while anything has the store
    /// open. The old store is kept as STORE.replaced-TIME.
    Restore(transfer::RestoreArgs),
    /// Copy a SQLite store into an empty PostgreSQL database (users,
    /// mailboxes, messages, UIDs, flags, MODSEQs, tombstones, aliases,
    /// Sieve, DKIM keys), so clients need no resync.
    Migrate(migrate::MigrateArgs),
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Print the settings `minimail up` would run with (the file named by
    /// --config or MINIMAIL_CONFIG, then any `up` flags given here, then
    /// the defaults) as a TOML file; exit 1 with the reason (file and
    /// line) if the file is wrong.
    #[command(disable_help_flag = true)]
    Check {
        /// `--config PATH` and any flags of `minimail up`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

#[derive(Subcommand)]
enum StoreCmd {
    /// Run SQLite's full integrity check (PRAGMA integrity_check) over the
    /// store and print what it finds; exit status 0 if the file is sound,
    /// 1 if it is damaged, 2 if it could not be checked. Safe while a
    /// server runs (it reads one snapshot).
    Check {
        /// The store file to check (never created).
        #[arg(long, env = "MINIMAIL_DB", default_value = "./minimail.db")]
        db: PathBuf,
    },
}

// `--db`, `--tls-cert`, `--tls-key`, `--allow-plaintext-auth` and
// `--max-connections` are declared in `netloop::cli` (shared with the
// `smtpd` and `imapd` binaries); the `mut_arg`s below word their help for
// `minimail up` where it differs from the wording there.
#[derive(Args)]
#[command(mut_arg("tls_cert", |a| a.help("TLS certificate chain (PEM); enables STARTTLS on both servers")))]
#[command(mut_arg("tls_key", |a| a.help("TLS private key (PEM)")))]
#[command(mut_arg("max_connections", |a| a.help("Connections open at once, per server")))]
struct UpArgs {
    /// Read settings from this TOML file: every flag here is a key without
    /// its dashes (`max-message-size = 1048576`, `trace = true`, repeatable
    /// ones take arrays: `domain = ["a.example", "b.example"]`); flags on
    /// the command line win over the file. Re-read on SIGHUP.
    #[arg(long, env = "MINIMAIL_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    /// SMTP listen address.
    #[arg(long, default_value = "127.0.0.1:2525")]
    smtp: Vec<SocketAddr>,
    /// IMAP listen address.
    #[arg(long, default_value = "127.0.0.1:1143")]
    imap: Vec<SocketAddr>,
    /// Submission listen address (RFC 6409: AUTH required; mail to other
    /// domains is queued and delivered). Give port 0 for any free port.
    #[arg(long, default_value = "127.0.0.1:5870")]
    submission: Vec<SocketAddr>,
    /// ManageSieve listen address (RFC 5804: users manage their Sieve
    /// scripts; STARTTLS and AUTH as IMAP). Repeatable; port 0 for any
    /// free port.
    #[arg(long, default_value = "127.0.0.1:4190")]
    sieve: Vec<SocketAddr>,
    #[command(flatten)]
    db: DbArg,
    /// A domain we accept mail for (repeatable).
    #[arg(long = "domain", default_value = "localhost")]
    domains: Vec<String>,
    /// Our name in the SMTP greeting and Received: headers.
    #[arg(long, default_value = "localhost")]
    hostname: String,
    /// Largest message accepted over SMTP, in bytes (advertised as SIZE).
    #[arg(long, default_value_t = 25 * 1024 * 1024)]
    max_message_size: usize,
    /// Longest text line accepted in a message over SMTP, CRLF included
    /// (RFC 5321 asks for at least 1000; longer lines are stored unchanged).
    #[arg(long, default_value_t = smtpd::limits::MAX_TEXT_LINE)]
    max_text_line: usize,
    #[command(flatten)]
    conn: ConnArgs,
    /// Connections open at once from one client address, per server
    /// (clients on the server's own address are exempt; 0 = no limit).
    /// Default: SMTP 20, IMAP 50.
    #[arg(long)]
    max_per_ip: Option<usize>,
    /// Implicit-TLS submission listen address (RFC 8314), AUTH required, e.g. 127.0.0.1:465 (repeatable).
    #[arg(long)]
    smtps: Vec<SocketAddr>,
    /// Implicit-TLS IMAP listen address, e.g. 127.0.0.1:993 (repeatable).
    #[arg(long)]
    imaps: Vec<SocketAddr>,
    #[command(flatten)]
    tls: TlsArgs,
    /// Offer no TLS at all. Without this and without --tls-cert, a
    /// self-signed certificate is made beside the store on first start
    /// (STORE.cert.pem, STORE.key.pem), as Debian's Postfix and Dovecot ship
    /// a snakeoil pair, and STARTTLS is offered.
    #[arg(long, conflicts_with = "tls_cert")]
    no_tls: bool,
    /// Accept no mail for other domains (no queue, no delivery engine):
    /// authenticated mail to them gets 550 5.7.1.
    #[arg(long)]
    no_outbound: bool,
    /// Check mail from other hosts (SPF, DKIM, ARC, DMARC; DNS from --dns
    /// or /etc/resolv.conf): an Authentication-Results field on delivery,
    /// DMARC p=reject refused (550 5.7.1), p=quarantine into Junk.
    #[arg(long)]
    verify_inbound: bool,
    /// Give up on a message's inbound checks after this many seconds
    /// (results temperror; the message is accepted).
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    verify_timeout: u64,
    /// Per-domain actions for failed inbound checks, one line per domain
    /// of ours (`*` for the rest): `DOMAIN [dmarc-reject=A]
    /// [dmarc-quarantine=A] [spf-fail=A]`, A = refuse|junk|note. Default:
    /// dmarc-reject=refuse dmarc-quarantine=junk spf-fail=note.
    #[arg(long, value_name = "FILE", requires = "verify_inbound")]
    auth_policy: Option<PathBuf>,
    #[command(flatten)]
    outbound: queue::OutboundArgs,
    /// Seconds of silence during IMAP IDLE after which `* OK Still here`
    /// is sent, so NAT boxes keep the connection (0 = never).
    #[arg(long, value_name = "SECS", default_value_t = imapd::limits::IDLE_KEEPALIVE.as_secs())]
    idle_keepalive: u64,
    /// Log every session's dialogue as C:/S: lines (bodies and credentials
    /// elided), the outbound queue's deliveries included.
    #[arg(long)]
    trace: bool,
    /// Serve Prometheus metrics (text format) at http://ADDR/metrics, e.g.
    /// 127.0.0.1:9225: connections by protocol, messages accepted and
    /// refused by reason, commit and delivery latency, queue size, IDLE
    /// sessions, IMAP commands.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// Serve the store even if the start-up integrity check finds it
    /// damaged (not advised; also MINIMAIL_ALLOW_CORRUPT_STORE=1). Damage
    /// met while serving still makes the store refuse writes.
    #[arg(long)]
    allow_corrupt_store: bool,
    /// How logs look on stderr: `text` (time, level, message), `journal`
    /// (`<N>` syslog priorities, no time: systemd's journal), `json` (one
    /// object per line); `auto` is `journal` when systemd's JOURNAL_STREAM
    /// names our stderr, else `text`.
    #[arg(long, value_enum, default_value = "auto")]
    log_format: logging::LogFormat,
}

#[derive(Subcommand)]
enum UserCmd {
    /// Create a user with INBOX, Sent, Drafts, Trash and Junk.
    Add {
        /// The user's address, which is also the IMAP login name.
        address: String,
        #[command(flatten)]
        db: DbArg,
        /// Read the password from the first line of stdin instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List {
        #[command(flatten)]
        db: DbArg,
    },
    /// Delete a user and all their mail.
    Del {
        /// The user's address.
        address: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Show or set a user's quota (RFC 9208): `SIZE` is octets with an
    /// optional K, M, G or T (powers of 1024), or `none`.
    Quota {
        /// The user's address.
        address: String,
        /// The storage limit to set (e.g. `1G`, `500M`, `none`); without
        /// it (and without --messages) the quota is shown.
        size: Option<String>,
        /// The message-count limit to set (a number or `none`).
        #[arg(long)]
        messages: Option<String>,
        #[command(flatten)]
        db: DbArg,
    },
    /// Change a user's password.
    Passwd {
        /// The user's address.
        address: String,
        #[command(flatten)]
        db: DbArg,
        /// Read the password from the first line of stdin instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
}

fn main() {
    // Invoked as `sendmail` (a symlink): sendmail's command line, not ours.
    let argv: Vec<String> = std::env::args().collect();
    let invoked = argv
        .first()
        .and_then(|a| Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("");
    if invoked == "sendmail" {
        std::process::exit(sendmail::run(&argv[1..]));
    }
    let argv_os: Vec<OsString> = std::env::args_os().collect();
    let cli = Cli::parse();
    let res = match cli.cmd {
        // `up`'s settings also come from a file: parsed again with it.
        None | Some(Cmd::Up(_)) => start_up(argv_os.get(2..).unwrap_or_default().to_vec()),
        Some(Cmd::Config(ConfigCmd::Check { args })) => std::process::exit(config_check(&args)),
        cmd => {
            logging::init(logging::LogFormat::Text);
            match cmd {
                Some(Cmd::User(u)) => user(u),
                Some(Cmd::Alias(a)) => alias::run(a),
                Some(Cmd::Sieve(s)) => sieve::run(s),
                Some(Cmd::Cert(c)) => cert(c),
                Some(Cmd::Store(StoreCmd::Check { db })) => std::process::exit(store_check(&db)),
                Some(Cmd::Queue(q)) => queue::run(q),
                Some(Cmd::Dkim(d)) => dkim::run(d),
                Some(Cmd::Report(r)) => report::run(r),
                Some(Cmd::Sendmail { args }) => std::process::exit(sendmail::run(&args)),
                Some(Cmd::Import(a)) => transfer::import(a).map(|code| {
                    if code != 0 {
                        std::process::exit(code)
                    }
                }),
                Some(Cmd::Export(a)) => transfer::export(a),
                Some(Cmd::Backup(a)) => transfer::backup(a),
                Some(Cmd::Restore(a)) => transfer::restore(a),
                Some(Cmd::Migrate(a)) => migrate::run(a),
                None | Some(Cmd::Up(_)) | Some(Cmd::Config(_)) => Ok(()),
            }
        }
    };
    if let Err(e) = res {
        eprintln!("minimail: {e:#}");
        std::process::exit(1);
    }
}

/// `minimail up`'s own command (its flags are the keys of the file).
fn up_command() -> clap::Command {
    Cli::command()
        .find_subcommand("up")
        .cloned()
        .unwrap_or_else(|| clap::Command::new("up"))
}

/// `minimail up` with `argv` (what follows `up`): the settings from the
/// command line and the file, then logging in the format they ask for.
fn start_up(argv: Vec<OsString>) -> Result<()> {
    let loaded = match config::load(&up_command(), &argv) {
        Ok(l) => l,
        Err(config::Error::Clap(e)) => e.exit(),
        Err(e) => bail!("{e}"),
    };
    let format = loaded
        .matches
        .get_one::<logging::LogFormat>("log_format")
        .copied()
        .unwrap_or(logging::LogFormat::Auto);
    logging::init(format);
    up::run(argv, loaded)
}

/// `minimail config check [--config PATH] [UP FLAGS]`: the exit status
/// (0 the settings are sound and printed, 1 they are not, 2 usage).
fn config_check(argv: &[OsString]) -> i32 {
    if argv.iter().any(|a| a == "--help" || a == "-h") {
        println!(
            "Usage: minimail config check [--config PATH] [FLAGS OF minimail up]\n\n\
             Prints the settings `minimail up` would run with, as a TOML file `--config` \
             reads back; exit status 1 (with the file and line) when they are wrong."
        );
        return 0;
    }
    let loaded = match config::load(&up_command(), argv) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("minimail config check: {e}");
            return if matches!(e, config::Error::Clap(_)) {
                2
            } else {
                1
            };
        }
    };
    let checked = UpArgs::from_arg_matches(&loaded.matches)
        .map_err(anyhow::Error::from)
        .and_then(|a| up::check(&a));
    if let Err(e) = checked {
        eprintln!("minimail config check: {e:#}");
        return 1;
    }
    print!("{}", config::effective(&up_command(), &loaded));
    0
}

fn open_store(db: &DbArg) -> Result<Store> {
    open_store_with(db, &mailstore::OpenOptions::from_env())
}

fn open_store_with(db: &DbArg, options: &mailstore::OpenOptions) -> Result<Store> {
    Store::open_with(&db.db, options)
        .with_context(|| format!("cannot open the store {}", db.db.display()))
}

/// `minimail store check`: the exit status (0 sound, 1 damaged, 2 not
/// checked).
fn store_check(db: &Path) -> i32 {
    let p = db.display();
    let found = match mailstore::check_file(db, mailstore::Check::Full, None) {
        Ok(found) => found,
        Err(mailstore::StoreError::Corrupt(why)) => mailstore::Integrity {
            problems: vec![why],
            complete: true,
        },
        Err(e) => {
            eprintln!("minimail store check: cannot check {p}: {e}");
            return 2;
        }
    };
    if found.ok() {
        println!("{p}: ok (PRAGMA integrity_check found no problem)");
        return 0;
    }
    for problem in &found.problems {
        println!("{problem}");
    }
    eprintln!(
        "minimail store check: {p} is DAMAGED ({} problem{} listed above; SQLite lists at \
         most 100).\n\
         To salvage it: stop every program using it, copy it with its -wal and -shm files \
         somewhere safe, then copy what SQLite can still read into a new file:\n  \
         sqlite3 {p} .recover | sqlite3 recovered.db\n\
         set recovered.db's `PRAGMA user_version` to {p}'s, rebuild its search index, run \
         `minimail store check --db recovered.db` and move it into place. The README \
         (\"Damage and a full disk\") has the steps.",
        found.problems.len(),
        if found.problems.len() == 1 { "" } else { "s" }
    );
    1
}

fn read_password(from_stdin: bool) -> Result<String> {
    let pw = if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else {
        let p = rpassword::prompt_password("Password: ").context("cannot read the password")?;
        let again = rpassword::prompt_password("Again: ").context("cannot read the password")?;
        if p != again {
            bail!("the passwords differ");
        }
        p
    };
    if pw.is_empty() {
        bail!("empty password refused");
    }
    Ok(pw)
}

fn valid_address(address: &str) -> Result<String> {
    let a = address.trim();
    match a.rsplit_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && !domain.is_empty()
                && !a.contains(char::is_whitespace)
                && !a.contains(['<', '>', '"', ',']) =>
        {
            Ok(format!("{local}@{}", domain.to_ascii_lowercase()))
        }
        _ => bail!("'{address}' is not an address like user@example.org"),
    }
}

fn user(cmd: UserCmd) -> Result<()> {
    match cmd {
        UserCmd::Add {
            address,
            db,
            password_stdin,
        } => {
            let address = valid_address(&address)?;
            let store = open_store(&db)?;
            if store.read_sync(|r| r.user(&address))?.is_some() {
                bail!("user {address} already exists");
            }
            let hash = mailstore::hash_password(&read_password(password_stdin)?)?;
            let a = address.clone();
            store
                .write_sync(move |tx| tx.create_user(&a, &hash))
                .with_context(|| format!("cannot add {address}"))?;
            store.shutdown();
            println!("added {address}");
        }
        UserCmd::List { db } => {
            let store = open_store(&db)?;
            for u in store.read_sync(|r| r.users())? {
                println!("{}", u.address);
            }
            store.shutdown();
        }
        UserCmd::Del { address, db } => {
            let store = open_store(&db)?;
            let a = address.clone();
            store
                .write_sync(move |tx| tx.delete_user(&a))
                .with_context(|| format!("cannot delete {address}"))?;
            store.shutdown();
            println!("deleted {address}");
        }
        UserCmd::Quota {
            address,
            size,
            messages,
            db,
        } => {
            let store = open_store(&db)?;
            let result = quota::run(&store, &address, size.as_deref(), messages.as_deref());
            store.shutdown();
            println!("{}", result?);
        }
        UserCmd::Passwd {
            address,
            db,
            password_stdin,
        } => {
            let store = open_store(&db)?;
            if store.read_sync(|r| r.user(&address))?.is_none() {
                bail!("no such user: {address}");
            }
            let hash = mailstore::hash_password(&read_password(password_stdin)?)?;
            let a = address.clone();
            store.write_sync(move |tx| tx.set_password_hash(&a, &hash))?;
            store.shutdown();
            println!("password changed for {address}");
        }
    }
    Ok(())
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
