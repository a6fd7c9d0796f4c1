//! Command-line definition (clap derive) and the per-run context that turns
//! account settings into connected, authenticated SMTP and IMAP clients.

use crate::cmd;
use crate::config::{self, FileConfig};
use crate::error::{MuaError, Result, EXIT_CODES_HELP};
use crate::imap::Client;
use crate::net::Options;
use crate::smtp::SmtpClient;
use crate::tls::{TlsMode, Trust};
use clap::{Args, Parser, Subcommand};
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

/// mua: a terminal mail client for any SMTP/IMAP server.
///
/// Settings come from flags, else the environment (MUA_SMTP, MUA_IMAP,
/// MUA_USER, MUA_PASSWORD, MUA_TLS, MUA_CAFILE), else
/// $XDG_CONFIG_HOME/mua/config.toml.
/// The password comes from MUA_PASSWORD, else the first line of stdin with
/// --password-stdin, else a no-echo prompt.
#[derive(Debug, Parser)]
#[command(name = "mua", version, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// Account and diagnostics options.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub cmd: Command,
}

/// Options every subcommand takes.
#[derive(Debug, Args, Clone, Default)]
pub struct Global {
    /// SMTP server as HOST:PORT.
    #[arg(long, env = "MUA_SMTP", global = true, value_name = "HOST:PORT")]
    pub smtp: Option<String>,
    /// IMAP server as HOST:PORT.
    #[arg(long, env = "MUA_IMAP", global = true, value_name = "HOST:PORT")]
    pub imap: Option<String>,
    /// ManageSieve server as HOST:PORT (default: the IMAP host, port 4190).
    #[arg(long, env = "MUA_SIEVE", global = true, value_name = "HOST:PORT")]
    pub sieve: Option<String>,
    /// Account address (login name and sender).
    #[arg(long, env = "MUA_USER", global = true, value_name = "ADDRESS")]
    pub user: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long, global = true)]
    pub password_stdin: bool,
    /// When to use TLS (default: auto).
    #[arg(long, env = "MUA_TLS", global = true, value_enum, value_name = "MODE")]
    pub tls: Option<TlsMode>,
    /// Also trust the certificates in this PEM file (e.g. a self-signed
    /// server's, from `minimail cert`), besides the system's roots.
    #[arg(long, env = "MUA_CAFILE", global = true, value_name = "PEM")]
    pub cafile: Option<PathBuf>,
    /// Print the SMTP/IMAP dialogue to stderr (credentials masked).
    #[arg(long, global = true)]
    pub trace: bool,
    /// Config file to use instead of $XDG_CONFIG_HOME/mua/config.toml.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Keep no local cache of mailbox listings (by default `list` and the
    /// TUI keep one in $XDG_CACHE_HOME/mua and resynchronise it with
    /// QRESYNC instead of fetching every header again).
    #[arg(long, env = "MUA_NO_CACHE", global = true)]
    pub no_cache: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compose and send a message (or send one as is with --raw).
    Send(cmd::send::SendCmd),
    /// List mailboxes with total and unseen counts.
    Mailboxes(cmd::mailboxes::MailboxesCmd),
    /// List messages, newest first.
    List(cmd::list::ListCmd),
    /// Show a message decoded for reading (or its exact bytes with --raw).
    Read(cmd::read::ReadCmd),
    /// Search on the server; output like `list`.
    Search(cmd::search::SearchCmd),
    /// Set or clear \Seen / \Flagged on messages.
    Flag(cmd::flag::FlagCmd),
    /// Move messages to another mailbox.
    Move(cmd::mv::MoveCmd),
    /// Delete messages (expunged; with --trash moved to Trash instead).
    Delete(cmd::delete::DeleteCmd),
    /// Write an attachment to a file.
    Save(cmd::save::SaveCmd),
    /// The interactive client.
    Tui(cmd::tui::TuiCmd),
    /// Wait until a matching message arrives (exit 5 if none in time).
    Wait(cmd::wait::WaitCmd),
    /// Manage Sieve filters over ManageSieve: list, get, put, activate,
    /// deactivate, check, delete.
    Sieve(cmd::sieve::SieveCmd),
}

/// Per-run state: settings and the password once asked.
pub struct Ctx {
    /// Flags and environment.
    pub global: Global,
    /// The config file.
    pub file: FileConfig,
    password: Option<String>,
    net: Option<Options>,
}

impl Ctx {
    /// Builds the context, loading the config file.
    ///
    /// # Errors
    /// `Usage` on a bad config file.
    pub fn new(global: Global) -> Result<Ctx> {
        let file = config::load(global.config.as_ref())?;
        Ok(Ctx {
            global,
            file,
            password: None,
            net: None,
        })
    }

    fn setting(
        &self,
        flag: &Option<String>,
        file: &Option<String>,
        what: &str,
        env: &str,
    ) -> Result<String> {
        flag.clone().or_else(|| file.clone()).ok_or_else(|| {
            MuaError::Usage(format!(
                "no {what} configured: pass --{what}, set {env}, or put `{what} = ...` in {}",
                config::default_path()
                    .map_or("the config file".into(), |p| p.display().to_string())
            ))
        })
    }

    /// The account address.
    ///
    /// # Errors
    /// `Usage` if not configured.
    pub fn user(&self) -> Result<String> {
        self.setting(&self.global.user, &self.file.user, "user", "MUA_USER")
    }

    /// The From header value (`Name <user>` when a name is configured).
    ///
    /// # Errors
    /// `Usage` if no user is configured.
    pub fn from_header(&self) -> Result<String> {
        let user = self.user()?;
        Ok(match &self.file.name {
            Some(n) => format!("\"{}\" <{user}>", n.replace('"', "")),
            None => user,
        })
    }

    /// Where mailbox listings are cached, unless `--no-cache`.
    pub fn cache_dir(&self) -> Option<PathBuf> {
        if self.global.no_cache {
            None
        } else {
            crate::cache::dir()
        }
    }

    /// The IMAP server address.
    ///
    /// # Errors
    /// `Usage` if not configured.
    pub fn imap_addr(&self) -> Result<String> {
        self.setting(&self.global.imap, &self.file.imap, "imap", "MUA_IMAP")
    }

    /// The ManageSieve server address: `--sieve`, `MUA_SIEVE`, `sieve`
    /// in the file, else the IMAP server's host on port 4190 (RFC 5804
    /// §1.8).
    ///
    /// # Errors
    /// `Usage` if neither is configured.
    pub fn sieve_addr(&self) -> Result<String> {
        if let Some(a) = self
            .global
            .sieve
            .clone()
            .or_else(|| self.file.sieve.clone())
        {
            return Ok(a);
        }
        let imap = self.imap_addr().map_err(|_| {
            MuaError::Usage(
                "no sieve server configured: pass --sieve, set MUA_SIEVE, or put `sieve = ...` (or `imap = ...`) in the config file"
                    .into(),
            )
        })?;
        let host = match imap.rsplit_once(':') {
            Some((host, _)) => host.to_owned(),
            None => imap,
        };
        Ok(format!("{host}:4190"))
    }

    /// The SMTP server address.
    ///
    /// # Errors
    /// `Usage` if not configured.
    pub fn smtp_addr(&self) -> Result<String> {
        self.setting(&self.global.smtp, &self.file.smtp, "smtp", "MUA_SMTP")
    }

    /// How to connect: `--tls`/`MUA_TLS`/`tls`, `--cafile`/`MUA_CAFILE`/
    /// `cafile`, and `--trace`. The cafile is read once per run.
    ///
    /// # Errors
    /// `Usage` for an unreadable cafile.
    pub fn net_options(&mut self) -> Result<Options> {
        if let Some(o) = &self.net {
            return Ok(o.clone());
        }
        let cafile = match (&self.global.cafile, &self.file.cafile) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(p)) => Some(config::expand_home(p)),
            (None, None) => None,
        };
        let o = Options {
            trace: self.global.trace,
            tls: self.global.tls.or(self.file.tls).unwrap_or_default(),
            trust: Trust::new(cafile.as_deref())?,
            ..Options::default()
        };
        self.net = Some(o.clone());
        Ok(o)
    }

    /// The mailbox for sent copies.
    pub fn sent_mailbox(&self) -> String {
        self.file.sent.clone().unwrap_or_else(|| "Sent".into())
    }

    /// The password: MUA_PASSWORD, else stdin's first line with
    /// --password-stdin, else a no-echo prompt. Asked once per run.
    ///
    /// # Errors
    /// `Usage` if there is no way to get one.
    pub fn password(&mut self) -> Result<String> {
        if let Some(p) = &self.password {
            return Ok(p.clone());
        }
        let p = if let Ok(p) = std::env::var("MUA_PASSWORD") {
            p
        } else if self.global.password_stdin {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| MuaError::Usage(format!("cannot read password from stdin: {e}")))?;
            line.trim_end_matches(['\r', '\n']).to_string()
        } else if std::io::stdin().is_terminal() {
            rpassword::prompt_password(format!("Password for {}: ", self.user()?))
                .map_err(|e| MuaError::Usage(format!("cannot read password: {e}")))?
        } else {
            return Err(MuaError::Usage(
                "no password: set MUA_PASSWORD or use --password-stdin".into(),
            ));
        };
        self.password = Some(p.clone());
        Ok(p)
    }

    /// A logged-in IMAP session.
    ///
    /// # Errors
    /// `Usage`, `Connect` or `Auth`.
    pub fn imap(&mut self) -> Result<Client> {
        let addr = self.imap_addr()?;
        let user = self.user()?;
        let pass = self.password()?;
        let net = self.net_options()?;
        let mut c = Client::connect(&addr, &net)?;
        c.login(&user, &pass)?;
        Ok(c)
    }

    /// A logged-in ManageSieve session.
    ///
    /// # Errors
    /// `Usage`, `Connect`, `Tls` or `Auth`.
    pub fn sieve(&mut self) -> Result<crate::sieve::SieveClient> {
        let addr = self.sieve_addr()?;
        let user = self.user()?;
        let pass = self.password()?;
        let net = self.net_options()?;
        let mut c = crate::sieve::SieveClient::connect(&addr, &net)?;
        c.login(&user, &pass)?;
        Ok(c)
    }

    /// An SMTP session, authenticated when the server offers AUTH.
    ///
    /// # Errors
    /// `Usage`, `Connect` or `Auth`.
    pub fn smtp(&mut self) -> Result<SmtpClient> {
        let addr = self.smtp_addr()?;
        let user = self.user()?;
        let pass = self.password()?;
        let net = self.net_options()?;
        let mut c = SmtpClient::connect(&addr, &net)?;
        if c.extension("AUTH").is_some() {
            c.auth(&user, &pass)?;
        }
        Ok(c)
    }
}

/// Parses arguments and runs the command; returns the exit status.
pub fn main() -> u8 {
    let cli = Cli::parse();
    let result = Ctx::new(cli.global.clone())
        .map_err(anyhow::Error::from)
        .and_then(|mut ctx| cmd::run(cli.cmd, &mut ctx));
    match result {
        Ok(()) => crate::error::EXIT_OK,
        Err(e) => {
            eprintln!("mua: {e:#}");
            crate::error::exit_code_of(&e)
        }
    }
}
