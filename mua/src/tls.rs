//! TLS policy and trust for the SMTP and IMAP clients (rustls, ring provider).
//!
//! Covers when to secure a connection — implicit TLS from the first byte
//! (RFC 8314 §3, ports 465/993), STARTTLS on SMTP (RFC 3207 §4) and IMAP
//! (RFC 3501 §6.2.1), or neither — and whom to trust: the system's roots
//! (`rustls-native-certs`) plus the certificates of `--cafile`. The server
//! name checked against the certificate (RFC 6125; IP addresses as IP SANs)
//! is the host part of `--smtp`/`--imap`. The handshake itself is in `net`.

use crate::error::{MuaError, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// How a connection is secured (`--tls`, `MUA_TLS`, `tls = "..."`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// STARTTLS when the server offers it and is not on a loopback address;
    /// plaintext otherwise.
    #[default]
    Auto,
    /// STARTTLS required: fail if the server does not offer it.
    Starttls,
    /// TLS from the first byte (smtps 465, imaps 993).
    Implicit,
    /// Never TLS.
    None,
}

impl std::fmt::Display for TlsMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsMode::Auto => "auto",
            TlsMode::Starttls => "starttls",
            TlsMode::Implicit => "implicit",
            TlsMode::None => "none",
        })
    }
}

/// Whether to issue STARTTLS on a plaintext connection.
///
/// `offered`: the server advertised it (SMTP EHLO keyword, IMAP capability).
/// `loopback`: the server's address is a loopback address, where nothing
/// crosses a network.
///
/// # Errors
/// `Tls` when `--tls starttls` is asked of a server that does not offer it.
pub fn want_starttls(mode: TlsMode, offered: bool, loopback: bool, server: &str) -> Result<bool> {
    match mode {
        TlsMode::Auto => Ok(offered && !loopback),
        TlsMode::Starttls if offered => Ok(true),
        TlsMode::Starttls => Err(MuaError::Tls(format!(
            "{server} does not offer STARTTLS, and --tls starttls requires it \
             (use --tls implicit for a TLS port, or --tls none)"
        ))),
        TlsMode::Implicit | TlsMode::None => Ok(false),
    }
}

/// True for loopback addresses, IPv4-mapped IPv6 ones included.
pub fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// The host part of `host:port`, `[v6]:port`, or a bare host.
pub fn host_of(addr: &str) -> &str {
    if let Some(rest) = addr.strip_prefix('[') {
        if let Some((host, _)) = rest.split_once(']') {
            return host;
        }
    }
    match addr.rsplit_once(':') {
        // A bare IPv6 address has several colons and no port to strip.
        Some((host, _)) if !host.contains(':') => host,
        _ => addr,
    }
}

/// The name the certificate must carry: a DNS name or an IP address.
///
/// # Errors
/// `Usage` when the host is neither.
pub fn server_name(addr: &str) -> Result<ServerName<'static>> {
    let host = host_of(addr);
    ServerName::try_from(host.to_string()).map_err(|e| {
        MuaError::Usage(format!(
            "{host:?} (from {addr}) is not a valid host name for TLS: {e}"
        ))
    })
}

/// Reads the PEM certificates of a `--cafile`.
///
/// # Errors
/// `Usage` when the file is unreadable or holds no certificate.
pub fn load_cafile(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let bad = |why: String| MuaError::Usage(format!("--cafile {}: {why}", path.display()));
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| bad(format!("bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(bad(
            "no certificate in it (expected PEM \"BEGIN CERTIFICATE\")".into(),
        ));
    }
    Ok(certs)
}

/// Whom to trust: the system roots plus extra certificates. Cloning shares
/// the client configuration, built on first use (reading the system store
/// costs a few milliseconds, and loopback sessions never need it).
#[derive(Debug, Clone, Default)]
pub struct Trust {
    cafile: Option<PathBuf>,
    extra: Arc<Vec<CertificateDer<'static>>>,
    config: Arc<OnceLock<std::result::Result<Arc<rustls::ClientConfig>, String>>>,
    /// How many system roots were usable (known once `config` is built).
    system_roots: Arc<OnceLock<usize>>,
}

impl Trust {
    /// The system roots plus the certificates in `cafile`, if given.
    ///
    /// # Errors
    /// `Usage` for an unreadable or empty cafile.
    pub fn new(cafile: Option<&Path>) -> Result<Trust> {
        let extra = match cafile {
            Some(p) => load_cafile(p)?,
            None => Vec::new(),
        };
        Ok(Trust {
            cafile: cafile.map(Path::to_path_buf),
            extra: Arc::new(extra),
            config: Arc::default(),
            system_roots: Arc::default(),
        })
    }

    /// The `--cafile` in use, for error messages.
    pub fn cafile(&self) -> Option<&Path> {
        self.cafile.as_deref()
    }

    /// The shared client configuration.
    ///
    /// # Errors
    /// `Tls` when no root at all is trusted or rustls refuses the set-up.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>> {
        self.config
            .get_or_init(|| self.build())
            .clone()
            .map_err(MuaError::Tls)
    }

    fn build(&self) -> std::result::Result<Arc<rustls::ClientConfig>, String> {
        let mut roots = rustls::RootCertStore::empty();
        // Unreadable system certificates are skipped, as curl does: the
        // store is often partly broken, and --cafile still works.
        let native = rustls_native_certs::load_native_certs();
        let (system, _) = roots.add_parsable_certificates(native.certs);
        // Only read after `config` is set; a race would merely skip a hint.
        let _ = self.system_roots.set(system);
        for cert in self.extra.iter() {
            roots
                .add(cert.clone())
                .map_err(|e| format!("cannot trust a certificate of --cafile: {e}"))?;
        }
        // An empty store is no error here: the handshake then fails with
        // the usual advice (--cafile), which `handshake_error` completes.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }

    /// Turns a failed handshake into a message that says what to do;
    /// `implicit` says TLS was tried from the first byte.
    pub fn handshake_error(&self, server: &str, err: &std::io::Error, implicit: bool) -> MuaError {
        let rustls_err = err
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        let hint = match rustls_err {
            Some(rustls::Error::InvalidCertificate(_)) if self.system_roots.get() == Some(&0) => {
                match self.cafile() {
                    Some(p) => format!(
                        "; the certificate is not signed by --cafile {} (the system has \
                         no CA certificates: install ca-certificates), or does not name \
                         this host",
                        p.display()
                    ),
                    None => "; the system has no CA certificates (install \
                             ca-certificates), and no --cafile PEM (or MUA_CAFILE, or \
                             cafile = \"...\" in the config file) was given"
                        .into(),
                }
            }
            Some(rustls::Error::InvalidCertificate(_)) => match self.cafile() {
                Some(p) => format!(
                    "; the certificate is not signed by the system roots nor by --cafile {}, \
                     or does not name this host",
                    p.display()
                ),
                None => "; if the server uses a self-signed certificate (e.g. from \
                         `minimail cert`), trust it with --cafile PEM (or MUA_CAFILE, \
                         or cafile = \"...\" in the config file)"
                    .into(),
            },
            Some(rustls::Error::InvalidMessage(_)) if implicit => format!(
                "; the server did not answer in TLS: is {server} a plaintext port? \
                 --tls implicit is for TLS ports (465, 993); use --tls starttls or auto"
            ),
            None if matches!(
                err.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
            {
                "; the server did not answer the TLS handshake in time".into()
            }
            _ => String::new(),
        };
        MuaError::Tls(format!("TLS handshake with {server} failed: {err}{hint}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_uses_starttls_only_when_offered_and_not_loopback() {
        let d = |mode, offered, lo| want_starttls(mode, offered, lo, "s:25");
        assert!(d(TlsMode::Auto, true, false).unwrap());
        assert!(!d(TlsMode::Auto, true, true).unwrap());
        assert!(!d(TlsMode::Auto, false, false).unwrap());
        assert!(d(TlsMode::Starttls, true, true).unwrap());
        let e = d(TlsMode::Starttls, false, true).unwrap_err();
        assert!(e.to_string().contains("does not offer STARTTLS"), "{e}");
        assert_eq!(e.exit_code(), crate::error::EXIT_CONNECT);
        assert!(!d(TlsMode::None, true, false).unwrap());
        assert!(!d(TlsMode::Implicit, true, false).unwrap());
    }

    #[test]
    fn loopback_covers_v4_v6_and_mapped() {
        for lo in ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback(lo.parse().unwrap()), "{lo}");
        }
        for remote in ["192.0.2.1", "10.0.0.1", "2001:db8::1", "::ffff:192.0.2.1"] {
            assert!(!is_loopback(remote.parse().unwrap()), "{remote}");
        }
    }

    #[test]
    fn host_part_of_server_addresses() {
        assert_eq!(host_of("mail.example.org:993"), "mail.example.org");
        assert_eq!(host_of("127.0.0.1:25"), "127.0.0.1");
        assert_eq!(host_of("[::1]:143"), "::1");
        assert_eq!(host_of("::1"), "::1");
        assert_eq!(host_of("localhost"), "localhost");
        assert!(matches!(
            server_name("127.0.0.1:25").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("[::1]:25").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("mail.example.org:25").unwrap(),
            ServerName::DnsName(_)
        ));
        assert!(server_name("bad host!:25").is_err());
    }

    #[test]
    fn modes_parse_from_the_config_file_and_display_back() {
        #[derive(serde::Deserialize)]
        struct T {
            tls: TlsMode,
        }
        for m in ["auto", "starttls", "implicit", "none"] {
            let t: T = toml::from_str(&format!("tls = \"{m}\"")).unwrap();
            assert_eq!(t.tls.to_string(), m);
        }
        assert!(toml::from_str::<T>("tls = \"yes\"").is_err());
    }

    #[test]
    fn cafile_must_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let e = Trust::new(Some(&missing)).unwrap_err();
        assert!(e.to_string().contains("nope.pem"), "{e}");
        assert_eq!(e.exit_code(), crate::error::EXIT_USAGE);
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a pem\n").unwrap();
        let e = Trust::new(Some(&empty)).unwrap_err();
        assert!(e.to_string().contains("no certificate"), "{e}");
        let good = dir.path().join("ca.pem");
        let ss = netloop::tls::self_signed(&["localhost".into()]).unwrap();
        std::fs::write(&good, ss.cert_pem).unwrap();
        let t = Trust::new(Some(&good)).unwrap();
        assert_eq!(t.cafile(), Some(good.as_path()));
        t.client_config().unwrap();
    }
}
