//! Command-line flags the three server binaries share (`minimail up`,
//! `smtpd`, `imapd`; README, "Binaries"), declared once as clap argument
//! structs that each binary takes with `#[command(flatten)]`: the store file
//! ([`DbArg`], `--db`), TLS and plaintext authentication ([`TlsArgs`],
//! `--tls-cert`, `--tls-key`, `--allow-plaintext-auth`) and the connection
//! limit ([`ConnArgs`], `--max-connections`). Also what the binaries do
//! alike with them: [`listeners`] from plain and implicit-TLS addresses, and
//! [`exit_code`] to report how a run ended.
//!
//! The flag names, value types, defaults, environment variables and the
//! rules between flags live here. The help text is each binary's own (it
//! names that binary's listeners and replies), so a binary re-words a flag
//! with `#[command(mut_arg("tls_cert", |a| a.help("...")))]` on its
//! argument struct; the doc comments below are the wording for a binary
//! that does not.
//!
//! Built only with the `cli` feature (it needs clap).
#![cfg(feature = "cli")]

use crate::{tls, Listener, TlsConfig};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// `--db PATH` (or `MINIMAIL_DB`): the store file.
#[derive(clap::Args, Debug, Clone)]
pub struct DbArg {
    /// The store: a SQLite file (created if missing), or a PostgreSQL
    /// database as `postgres://user@host:port/dbname` (migrated on open).
    #[arg(long, env = "MINIMAIL_DB", default_value = "./minimail.db")]
    pub db: PathBuf,
}

/// `--tls-cert PEM --tls-key PEM` (together or not at all) and
/// `--allow-plaintext-auth`: how connections are encrypted, and whether
/// passwords may be sent over connections that are not.
#[derive(clap::Args, Debug, Clone)]
pub struct TlsArgs {
    /// TLS certificate chain (PEM), for STARTTLS and implicit-TLS listeners.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) matching --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Accept passwords over unencrypted connections from non-local clients
    /// (by default only TLS or local connections may authenticate).
    #[arg(long)]
    pub allow_plaintext_auth: bool,
    /// A certificate for clients that ask for DOMAIN by SNI, as
    /// DOMAIN=CERT,KEY (PEM files; `*.example.org` covers one label);
    /// repeatable. Clients asking for another name, or none, get
    /// --tls-cert. Reloaded on SIGHUP like it.
    #[arg(long, value_name = "DOMAIN=CERT,KEY")]
    pub tls_sni: Vec<tls::SniCert>,
    /// The lowest TLS version accepted: 1.2 (default) or 1.3.
    #[arg(long, value_name = "1.2|1.3", default_value = "1.2")]
    pub tls_min_version: tls::MinVersion,
    /// Key-exchange groups in order of preference, e.g. X25519:prime256v1
    /// (known: X25519, prime256v1, secp384r1). Default: all three.
    #[arg(long, value_name = "LIST")]
    pub tls_groups: Option<tls::Groups>,
    /// A DER OCSP response to staple with --tls-cert's certificate (e.g.
    /// from `openssl ocsp ... -respout FILE`, refreshed by cron); re-read
    /// on SIGHUP.
    #[arg(long, value_name = "FILE")]
    pub tls_ocsp: Option<PathBuf>,
}

impl TlsArgs {
    /// The TLS configuration these flags ask for ([`tls::from_flags`]);
    /// `implicit` says whether implicit-TLS listeners were given, and
    /// `listeners` names their flag(s) for the error (e.g. `"--smtps"`).
    ///
    /// # Errors
    /// Those of [`tls::from_flags`].
    pub fn config(&self, implicit: bool, listeners: &str) -> io::Result<Option<TlsConfig>> {
        tls::from_flags_with(
            self.tls_cert.as_deref(),
            self.tls_key.as_deref(),
            implicit,
            listeners,
            &self.options(),
        )
    }

    /// True when flags that only make sense with a certificate were given
    /// (`--tls-sni`, `--tls-ocsp`): a binary with TLS off refuses them
    /// rather than ignore them.
    pub fn wants_cert(&self) -> bool {
        !self.tls_sni.is_empty() || self.tls_ocsp.is_some()
    }

    /// The settings beyond the default pair (`--tls-sni`,
    /// `--tls-min-version`, `--tls-groups`, `--tls-ocsp`).
    pub fn options(&self) -> tls::TlsOptions {
        tls::TlsOptions {
            sni: self.tls_sni.clone(),
            min_version: self.tls_min_version,
            groups: self.tls_groups.clone().map(|g| g.0).unwrap_or_default(),
            ocsp: self.tls_ocsp.clone(),
        }
    }
}

/// `--max-connections N`: connections one server keeps open at once.
#[derive(clap::Args, Debug, Clone)]
pub struct ConnArgs {
    /// Connections open at once; more are refused.
    #[arg(long, default_value_t = 1024)]
    pub max_connections: usize,
}

/// Plain listeners followed by implicit-TLS ones, in the order given.
pub fn listeners(plain: &[SocketAddr], implicit_tls: &[SocketAddr]) -> Vec<Listener> {
    let l = |implicit_tls| move |&addr: &SocketAddr| Listener { addr, implicit_tls };
    plain
        .iter()
        .map(l(false))
        .chain(implicit_tls.iter().map(l(true)))
        .collect()
}

/// How a server binary ends: success, or `program: error` (with its causes,
/// `{:#}`) on stderr and a failure status.
pub fn exit_code<E: fmt::Display>(program: &str, result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{program}: {e:#}");
            ExitCode::FAILURE
        }
    }
}
