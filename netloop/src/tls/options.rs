//! The TLS settings an admin gives beyond the default certificate
//! ([`TlsOptions`]: SNI certificates, lowest version, key-exchange groups,
//! OCSP response), parsed from the forms Postfix and Dovecot admins know,
//! and [`TlsInfo`], what a connection negotiated in OpenSSL's names.

use rustls::crypto::{ring, SupportedKxGroup};
use rustls::{CipherSuite, ProtocolVersion};
use std::path::PathBuf;
use std::str::FromStr;

/// What the `--tls-*` flags set beyond the default certificate.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// Certificates chosen by the name the client asks for (SNI).
    pub sni: Vec<SniCert>,
    /// The lowest TLS version accepted.
    pub min_version: MinVersion,
    /// Key-exchange groups in order of preference (empty: rustls' default,
    /// X25519, P-256, P-384).
    pub groups: Vec<Group>,
    /// A DER OCSP response to staple with the default certificate.
    pub ocsp: Option<PathBuf>,
}

/// `DOMAIN=CERT,KEY`: a certificate presented to clients that ask for
/// DOMAIN by SNI (`*.example.org` covers one label).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SniCert {
    /// Lower-case DNS name, or `*.` and a domain.
    pub name: String,
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

impl FromStr for SniCert {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let usage = || {
            format!("'{s}' is not DOMAIN=CERT,KEY (e.g. mail.example.org=/etc/ssl/mail.pem,/etc/ssl/mail.key)")
        };
        let (name, files) = s.split_once('=').ok_or_else(usage)?;
        let (cert, key) = files.split_once(',').ok_or_else(usage)?;
        let name = name.trim().to_ascii_lowercase();
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        let host = name.strip_prefix("*.").unwrap_or(&name);
        if !host.contains('.') && host != "localhost" || !host.split('.').all(label_ok) {
            return Err(format!("'{name}' is not a DNS name for SNI"));
        }
        if cert.is_empty() || key.is_empty() {
            return Err(usage());
        }
        Ok(SniCert {
            name,
            cert: PathBuf::from(cert),
            key: PathBuf::from(key),
        })
    }
}

/// The lowest TLS version a server accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MinVersion {
    /// TLS 1.2 and 1.3 (the default).
    #[default]
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

impl FromStr for MinVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().trim_start_matches("tlsv") {
            "1.2" => Ok(MinVersion::Tls12),
            "1.3" => Ok(MinVersion::Tls13),
            _ => Err(format!("'{s}': the lowest TLS version is 1.2 or 1.3")),
        }
    }
}

/// A key-exchange group, by the names OpenSSL, Postfix and Dovecot use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// X25519 (RFC 7748).
    X25519,
    /// NIST P-256 (`prime256v1`, `secp256r1`).
    P256,
    /// NIST P-384 (`secp384r1`).
    P384,
}

impl Group {
    pub(crate) fn kx(self) -> &'static dyn SupportedKxGroup {
        match self {
            Group::X25519 => ring::kx_group::X25519,
            Group::P256 => ring::kx_group::SECP256R1,
            Group::P384 => ring::kx_group::SECP384R1,
        }
    }

    /// A list like `X25519:prime256v1` (colons, as Dovecot's
    /// `ssl_curve_list`, or commas or spaces, as Postfix's
    /// `tls_eecdh_auto_curves`).
    ///
    /// # Errors
    /// An unknown name, naming the ones known.
    pub fn parse_list(s: &str) -> Result<Vec<Group>, String> {
        let mut out = Vec::new();
        for name in s.split([':', ',', ' ']).filter(|n| !n.is_empty()) {
            let g = match name.to_ascii_lowercase().as_str() {
                "x25519" => Group::X25519,
                "prime256v1" | "secp256r1" | "p-256" | "p256" => Group::P256,
                "secp384r1" | "p-384" | "p384" => Group::P384,
                _ => {
                    return Err(format!(
                        "unknown key-exchange group '{name}' (known: X25519, prime256v1, secp384r1)"
                    ))
                }
            };
            if !out.contains(&g) {
                out.push(g);
            }
        }
        if out.is_empty() {
            return Err("no key-exchange group given".into());
        }
        Ok(out)
    }
}

/// A list of groups as one flag value (`--tls-groups X25519:prime256v1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Groups(pub Vec<Group>);

impl FromStr for Groups {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Group::parse_list(s).map(Groups)
    }
}

/// What a TLS connection negotiated, named as OpenSSL (and so Postfix's
/// `Received:` header) names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1.2` or `TLSv1.3`.
    pub version: &'static str,
    /// e.g. `TLS_AES_256_GCM_SHA384`, `ECDHE-RSA-AES128-GCM-SHA256`.
    pub cipher: &'static str,
    /// The cipher's key bits (256 for AES-256 and ChaCha20, 128 for AES-128).
    pub bits: u16,
}

impl TlsInfo {
    /// What `conn` negotiated, once its handshake is done.
    pub fn of(conn: &rustls::ServerConnection) -> Option<TlsInfo> {
        let version = match conn.protocol_version()? {
            ProtocolVersion::TLSv1_3 => "TLSv1.3",
            ProtocolVersion::TLSv1_2 => "TLSv1.2",
            _ => "TLS",
        };
        let (cipher, bits) = match conn.negotiated_cipher_suite()?.suite() {
            CipherSuite::TLS13_AES_256_GCM_SHA384 => ("TLS_AES_256_GCM_SHA384", 256),
            CipherSuite::TLS13_AES_128_GCM_SHA256 => ("TLS_AES_128_GCM_SHA256", 128),
            CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => ("TLS_CHACHA20_POLY1305_SHA256", 256),
            CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => {
                ("ECDHE-ECDSA-AES256-GCM-SHA384", 256)
            }
            CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => {
                ("ECDHE-ECDSA-AES128-GCM-SHA256", 128)
            }
            CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => {
                ("ECDHE-ECDSA-CHACHA20-POLY1305", 256)
            }
            CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => {
                ("ECDHE-RSA-AES256-GCM-SHA384", 256)
            }
            CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => {
                ("ECDHE-RSA-AES128-GCM-SHA256", 128)
            }
            CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => {
                ("ECDHE-RSA-CHACHA20-POLY1305", 256)
            }
            _ => ("unknown", 0),
        };
        Some(TlsInfo {
            version,
            cipher,
            bits,
        })
    }
}

impl std::fmt::Display for TlsInfo {
    /// Postfix's words: `TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} with cipher {} ({}/{} bits)",
            self.version, self.cipher, self.bits, self.bits
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sni_flags_parse_and_bad_ones_say_why() {
        let s: SniCert = "Mail.Example.org=/c.pem,/k.pem".parse().unwrap();
        assert_eq!(s.name, "mail.example.org");
        assert_eq!(s.cert, PathBuf::from("/c.pem"));
        assert_eq!(s.key, PathBuf::from("/k.pem"));
        assert!("*.example.org=a,b".parse::<SniCert>().is_ok());
        for bad in [
            "mail.example.org",
            "mail.example.org=a",
            "x y.org=a,b",
            "=a,b",
            "a.org=,b",
        ] {
            assert!(bad.parse::<SniCert>().is_err(), "{bad}");
        }
    }

    #[test]
    fn versions_and_groups_parse() {
        assert_eq!("1.3".parse::<MinVersion>().unwrap(), MinVersion::Tls13);
        assert_eq!("TLSv1.2".parse::<MinVersion>().unwrap(), MinVersion::Tls12);
        assert!("1.1".parse::<MinVersion>().is_err());
        assert_eq!(
            Group::parse_list("X25519:prime256v1").unwrap(),
            vec![Group::X25519, Group::P256]
        );
        assert_eq!(
            Group::parse_list("secp384r1, x25519").unwrap(),
            vec![Group::P384, Group::X25519]
        );
        let e = Group::parse_list("X448").unwrap_err();
        assert!(e.contains("X448") && e.contains("known"), "{e}");
        assert!(Group::parse_list("").is_err());
    }
}
