//! Account settings: flags, else environment (MUA_SMTP, MUA_IMAP, MUA_USER,
//! MUA_PASSWORD, MUA_TLS, MUA_CAFILE), else `$XDG_CONFIG_HOME/mua/config.toml`
//! (`~/.config/mua/config.toml` when XDG_CONFIG_HOME is unset).
//!
//! ```toml
//! smtp = "127.0.0.1:2525"
//! imap = "127.0.0.1:1143"
//! sieve = "127.0.0.1:4190"  # ManageSieve (optional; default the IMAP host, port 4190)
//! user = "alice@localhost"
//! name = "Alice Example"    # display name for From (optional)
//! sent = "Sent"             # mailbox for sent copies (optional)
//! tls = "auto"              # auto | starttls | implicit | none (RFC 3207, RFC 8314)
//! cafile = "~/server.pem"   # extra trusted certificates, PEM (optional)
//! ```

use crate::error::{MuaError, Result};
use crate::tls::TlsMode;
use std::path::{Path, PathBuf};

/// The config file's contents; every key optional.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// SMTP server `host:port`.
    pub smtp: Option<String>,
    /// IMAP server `host:port`.
    pub imap: Option<String>,
    /// ManageSieve server `host:port` (default: the IMAP host, port 4190).
    pub sieve: Option<String>,
    /// Login and sender address.
    pub user: Option<String>,
    /// Display name for the From header.
    pub name: Option<String>,
    /// Mailbox that receives copies of sent mail (default "Sent").
    pub sent: Option<String>,
    /// When to use TLS.
    pub tls: Option<TlsMode>,
    /// PEM file of extra trusted certificates.
    pub cafile: Option<PathBuf>,
}

/// Expands a leading `~/` to `$HOME/` (config files are written by hand).
pub fn expand_home(p: &Path) -> PathBuf {
    match (p.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => p.to_path_buf(),
    }
}

/// Where the config file lives by default.
pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("mua").join("config.toml"))
}

/// Loads the config file; a missing default file is an empty config.
///
/// # Errors
/// `Usage` if an explicitly named file is missing or any file is malformed.
pub fn load(explicit: Option<&PathBuf>) -> Result<FileConfig> {
    let path = match explicit {
        Some(p) => p.clone(),
        None => match default_path() {
            Some(p) if p.exists() => p,
            _ => return Ok(FileConfig::default()),
        },
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| MuaError::Usage(format!("cannot read {}: {e}", path.display())))?;
    parse(&text).map_err(|e| MuaError::Usage(format!("{}: {e}", path.display())))
}

/// Parses config text.
///
/// # Errors
/// The TOML error message.
pub fn parse(text: &str) -> std::result::Result<FileConfig, String> {
    toml::from_str(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_keys_and_rejects_unknown() {
        let c = parse("smtp = \"h:25\"\nuser = \"a@b\"\n").unwrap();
        assert_eq!(c.smtp.as_deref(), Some("h:25"));
        assert_eq!(c.user.as_deref(), Some("a@b"));
        assert!(c.imap.is_none());
        assert!(parse("smpt = \"typo\"").is_err());
        let c = parse("tls = \"implicit\"\ncafile = \"/etc/ca.pem\"\n").unwrap();
        assert_eq!(c.tls, Some(TlsMode::Implicit));
        assert_eq!(c.cafile, Some(PathBuf::from("/etc/ca.pem")));
        assert!(parse("tls = \"always\"").is_err());
    }
}
