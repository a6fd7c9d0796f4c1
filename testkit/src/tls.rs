//! TLS for tests: self-signed certificates the servers are given, and
//! rustls client streams that trust only such a certificate.

use std::net::TcpStream;
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// A self-signed certificate, its key, and the server configuration made
/// of them.
pub struct TestCert {
    /// The certificate, PEM: what clients are told to trust.
    pub cert_pem: String,
    /// The private key, PEM.
    pub key_pem: String,
    /// The server side, for `netloop::Config::tls`.
    pub tls: netloop::TlsConfig,
}

impl TestCert {
    /// A fresh certificate for `names` (host names or IP addresses).
    pub fn new(names: &[&str]) -> TestCert {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let s = netloop::tls::self_signed(&names).unwrap();
        let tls = netloop::tls::from_pem(s.cert_pem.as_bytes(), s.key_pem.as_bytes()).unwrap();
        TestCert {
            cert_pem: s.cert_pem,
            key_pem: s.key_pem,
            tls,
        }
    }

    /// A rustls client configuration trusting only this certificate.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        netloop::testing::tls_client_config(&self.cert_pem)
    }

    /// Write the certificate (PEM) to `path`, for clients given a CA file.
    pub fn write_cert(&self, path: &Path) {
        std::fs::write(path, &self.cert_pem).unwrap();
    }

    /// Write the certificate and its key (PEM) to `cert` and `key`, for a
    /// server binary given `--tls-cert` and `--tls-key`.
    pub fn write_pair(&self, cert: &Path, key: &Path) {
        self.write_cert(cert);
        std::fs::write(key, &self.key_pem).unwrap();
    }
}

/// The test certificate for `localhost` and `127.0.0.1`, made once per
/// test binary.
pub fn test_cert() -> &'static TestCert {
    static CERT: OnceLock<TestCert> = OnceLock::new();
    CERT.get_or_init(|| TestCert::new(&["localhost", "127.0.0.1"]))
}

/// A rustls client stream over TCP.
pub type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// Wrap a connected socket in a TLS client session for the server name
/// `name` (the handshake happens on first use).
pub fn client_stream(config: Arc<rustls::ClientConfig>, name: &str, tcp: TcpStream) -> TlsStream {
    let name = rustls::pki_types::ServerName::try_from(name.to_owned()).unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}
