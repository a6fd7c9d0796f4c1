//! TLS set-up (rustls): server configuration from PEM files, and a
//! self-signed certificate for development (`minimail cert`) and tests.
//!
//! The loop itself ([`crate::Server`]) runs the rustls state machine over
//! the non-blocking socket; this module only builds the configuration.
//! Implicit TLS (RFC 8314 §3.3, ports 465/993) and STARTTLS (RFC 3207,
//! RFC 3501 §6.2.1) share the same [`TlsConfig`].
//!
//! The certificate sits in a slot the configuration reads at every
//! handshake, so it can be replaced while the servers run: [`reload_all`]
//! (SIGHUP, see `signals.rs`; what certbot's `--deploy-hook 'kill -HUP'`
//! expects) re-reads every certificate loaded from files with
//! [`load_pem`]. Connections already open keep the certificate they
//! started with; a new file that does not load is refused with the reason
//! and the old certificate stays.
//!
//! What an admin configures beyond the default pair ([`TlsOptions`]):
//! further certificates chosen by the name the client asks for (SNI, as
//! Postfix's `tls_server_sni_maps` and Dovecot's `local_name { ssl_cert }`),
//! the lowest TLS version, the key-exchange groups, and an OCSP response to
//! staple. Each server gets its own copy of the configuration
//! ([`per_server`]): its own session cache (a session made with IMAP cannot
//! be resumed on SMTP) and its ALPN ids, so a client naming only another
//! protocol's id (`http/1.1`, say) is refused (the ALPACA cross-protocol
//! class). [`TlsInfo`] names what a connection negotiated, as Postfix's
//! `smtpd_tls_received_header` does.

use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, ServerSessionMemoryCache};
use rustls::sign::CertifiedKey;
use rustls::SupportedProtocolVersion;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

/// A server-side TLS configuration, shared by every connection.
pub type TlsConfig = Arc<rustls::ServerConfig>;

mod options;
pub use options::{Group, Groups, MinVersion, SniCert, TlsInfo, TlsOptions};

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Build a configuration from a PEM certificate chain and a PEM private key
/// (PKCS#8, PKCS#1 or SEC1).
///
/// # Errors
/// Unreadable files, no certificate or key in them, or a key that does not
/// match the certificate — each with the file named.
pub fn load_pem(cert: &Path, key: &Path) -> io::Result<TlsConfig> {
    load_pem_with(cert, key, &TlsOptions::default())
}

/// [`load_pem`] with the admin's [`TlsOptions`]: the SNI certificates are
/// loaded (and reloaded on SIGHUP) like the default pair, the OCSP
/// response is stapled with the default certificate.
///
/// # Errors
/// Those of [`load_pem`] for any pair, an unreadable OCSP file, or a
/// configuration rustls refuses (no group left, say).
pub fn load_pem_with(cert: &Path, key: &Path, options: &TlsOptions) -> io::Result<TlsConfig> {
    let mut loaded = Vec::new();
    let mut add = |cert: &Path, key: &Path, ocsp: Option<&Path>| -> io::Result<Arc<CertSlot>> {
        let certified = read_pair(cert, key, ocsp)?;
        let slot = Arc::new(CertSlot(RwLock::new(Arc::new(certified))));
        loaded.push(FromFiles {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            ocsp: ocsp.map(Path::to_path_buf),
            slot: Arc::clone(&slot),
        });
        Ok(slot)
    };
    let default = add(cert, key, options.ocsp.as_deref())?;
    let mut by_name = Vec::new();
    for sni in &options.sni {
        by_name.push((sni.name.clone(), add(&sni.cert, &sni.key, None)?));
    }
    let config = config_with(Arc::new(Resolver { default, by_name }), options)?;
    FROM_FILES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .extend(loaded);
    Ok(config)
}

/// Read and check a certificate chain and key from PEM files, and the
/// DER OCSP response to staple with it.
fn read_pair(cert: &Path, key: &Path, ocsp: Option<&Path>) -> io::Result<CertifiedKey> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))
    };
    let (cert_pem, key_pem) = (read(cert)?, read(key)?);
    let mut certified = certified_key(&cert_pem, &key_pem).map_err(|e| {
        invalid(format!(
            "TLS certificate {} / key {}: {e}",
            cert.display(),
            key.display()
        ))
    })?;
    if let Some(ocsp) = ocsp {
        let der = read(ocsp)?;
        // An OCSPResponse is a DER SEQUENCE (RFC 6960 §4.2.1); anything
        // else (a PEM file, say) would be stapled as garbage.
        if der.first() != Some(&0x30) {
            return Err(invalid(format!(
                "{}: not a DER OCSP response (make one with `openssl ocsp ... -respout FILE`)",
                ocsp.display()
            )));
        }
        certified.ocsp = Some(der);
    }
    Ok(certified)
}

/// The default certificate, and those chosen by SNI.
#[derive(Debug)]
struct Resolver {
    default: Arc<CertSlot>,
    /// Lower-case DNS names, or `*.` wildcards for one label.
    by_name: Vec<(String, Arc<CertSlot>)>,
}

impl Resolver {
    /// The slot for the name a client asked for: an exact match first,
    /// then a wildcard for its first label, else the default.
    fn slot(&self, name: Option<&str>) -> &CertSlot {
        let Some(name) = name.map(str::to_ascii_lowercase) else {
            return &self.default;
        };
        let wild = name.split_once('.').map(|(_, rest)| format!("*.{rest}"));
        self.by_name
            .iter()
            .find(|(n, _)| *n == name)
            .or_else(|| self.by_name.iter().find(|(n, _)| Some(n) == wild.as_ref()))
            .map_or(&self.default, |(_, slot)| slot)
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.slot(hello.server_name()).resolve(hello)
    }
}

/// The certificate a configuration presents, replaceable while it runs.
#[derive(Debug)]
struct CertSlot(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for CertSlot {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.0.read().unwrap_or_else(PoisonError::into_inner),
        ))
    }
}

/// A certificate loaded from files, and where it is presented.
struct FromFiles {
    cert: PathBuf,
    key: PathBuf,
    ocsp: Option<PathBuf>,
    slot: Arc<CertSlot>,
}

impl FromFiles {
    /// (Re)read the files into the slot; on failure the slot is unchanged.
    fn load(&self) -> io::Result<()> {
        let new = read_pair(&self.cert, &self.key, self.ocsp.as_deref())?;
        *self.slot.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(new);
        Ok(())
    }
}

/// Every certificate [`load_pem`] loaded in this process.
static FROM_FILES: Mutex<Vec<FromFiles>> = Mutex::new(Vec::new());

/// Re-read every certificate loaded from files and present the new ones
/// to new connections. A pair that fails to load keeps its old certificate.
/// Returns, per pair, the certificate file and the error if it failed.
pub fn reload_all() -> Vec<(PathBuf, io::Result<()>)> {
    let all = FROM_FILES.lock().unwrap_or_else(PoisonError::into_inner);
    all.iter().map(|f| (f.cert.clone(), f.load())).collect()
}

/// The TLS configuration a server's command line asks for, as every
/// minimail binary takes it: `--tls-cert` and `--tls-key` together or not
/// at all, and implicit-TLS listeners (`listeners`, e.g. `"--smtps"`, when
/// `implicit` is true) only with them.
///
/// # Errors
/// Only one of the two files, implicit TLS without them, or [`load_pem`]'s.
pub fn from_flags(
    cert: Option<&Path>,
    key: Option<&Path>,
    implicit: bool,
    listeners: &str,
) -> io::Result<Option<TlsConfig>> {
    from_flags_with(cert, key, implicit, listeners, &TlsOptions::default())
}

/// [`from_flags`] with the admin's [`TlsOptions`] ([`load_pem_with`]).
///
/// # Errors
/// Those of [`from_flags`] and [`load_pem_with`].
pub fn from_flags_with(
    cert: Option<&Path>,
    key: Option<&Path>,
    implicit: bool,
    listeners: &str,
    options: &TlsOptions,
) -> io::Result<Option<TlsConfig>> {
    let usage = |msg: String| io::Error::new(io::ErrorKind::InvalidInput, msg);
    match (cert, key) {
        (Some(cert), Some(key)) => load_pem_with(cert, key, options).map(Some),
        (None, None) if implicit => {
            Err(usage(format!("{listeners} needs --tls-cert and --tls-key")))
        }
        (None, None) => Ok(None),
        _ => Err(usage("--tls-cert and --tls-key go together".into())),
    }
}

/// Build a configuration from PEM bytes (see [`load_pem`]).
///
/// # Errors
/// No certificate or key found, or they do not match.
pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> io::Result<TlsConfig> {
    let certified = certified_key(cert_pem, key_pem)?;
    config_with(
        Arc::new(CertSlot(RwLock::new(Arc::new(certified)))),
        &TlsOptions::default(),
    )
}

/// A certificate chain and its key from PEM bytes, checked to match.
fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> io::Result<CertifiedKey> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(format!("bad certificate PEM: {e}")))?;
    if certs.is_empty() {
        return Err(invalid("no certificate found in the PEM data".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| invalid(format!("no usable private key in the PEM data: {e}")))?;
    CertifiedKey::from_der(certs, key, &rustls::crypto::ring::default_provider())
        .map_err(|e| invalid(e.to_string()))
}

/// The server configuration every listener uses, presenting what
/// `resolver` chooses, with the versions and groups `options` allow.
fn config_with(
    resolver: Arc<dyn ResolvesServerCert>,
    options: &TlsOptions,
) -> io::Result<TlsConfig> {
    let mut provider = ring::default_provider();
    if !options.groups.is_empty() {
        provider.kx_groups = options.groups.iter().map(|g| g.kx()).collect();
    }
    let versions: &[&'static SupportedProtocolVersion] = match options.min_version {
        MinVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        MinVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .map_err(|e| invalid(format!("TLS settings refused: {e}")))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    Ok(Arc::new(config))
}

/// One server's own copy of `base`: a session cache of its own (no
/// resumption across protocols) and `alpn` as its ALPN ids (RFC 7301;
/// empty = no ALPN). A client that offers ALPN ids, none of them in
/// `alpn`, is refused with the `no_application_protocol` alert; a client
/// that offers none is served.
pub fn per_server(base: &TlsConfig, alpn: &[&[u8]]) -> TlsConfig {
    let mut c = rustls::ServerConfig::clone(base);
    c.session_storage = ServerSessionMemoryCache::new(256);
    c.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    Arc::new(c)
}

/// A self-signed certificate and its key, both PEM.
pub struct SelfSigned {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key (PKCS#8), PEM.
    pub key_pem: String,
}

/// Make a self-signed certificate for `names` (DNS names or IP addresses),
/// for development and tests. Clients must be told to trust it explicitly.
///
/// # Errors
/// A name rcgen cannot encode, or key generation failing.
pub fn self_signed(names: &[String]) -> io::Result<SelfSigned> {
    let certified = rcgen::generate_simple_self_signed(names.to_vec())
        .map_err(|e| invalid(format!("cannot make a certificate: {e}")))?;
    Ok(SelfSigned {
        cert_pem: certified.cert.pem(),
        key_pem: certified.signing_key.serialize_pem(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_pem_loads_back() {
        let s = self_signed(&["localhost".into(), "127.0.0.1".into()]).unwrap();
        assert!(s.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        from_pem(s.cert_pem.as_bytes(), s.key_pem.as_bytes()).unwrap();
    }

    #[test]
    fn mismatched_or_missing_pem_is_a_clear_error() {
        let a = self_signed(&["a.example".into()]).unwrap();
        let b = self_signed(&["b.example".into()]).unwrap();
        let e = from_pem(a.cert_pem.as_bytes(), b.key_pem.as_bytes())
            .err()
            .unwrap();
        assert!(!e.to_string().is_empty());
        let e = from_pem(b"nothing here", a.key_pem.as_bytes())
            .err()
            .unwrap();
        assert!(e.to_string().contains("no certificate"), "{e}");
        let e = from_pem(a.cert_pem.as_bytes(), b"").err().unwrap();
        assert!(e.to_string().contains("private key"), "{e}");
        let c = Path::new("/nonexistent/cert.pem");
        let e = from_flags(Some(c), None, false, "--x").err().unwrap();
        assert!(e.to_string().contains("go together"), "{e}");
        let e = from_flags(None, None, true, "--smtps").err().unwrap();
        assert!(e.to_string().contains("--smtps needs --tls-cert"), "{e}");
        assert!(from_flags(None, None, false, "--smtps").unwrap().is_none());
        let e = load_pem(Path::new("/nonexistent/cert.pem"), Path::new("/x"))
            .err()
            .unwrap();
        assert!(e.to_string().contains("/nonexistent/cert.pem"), "{e}");
    }
}
