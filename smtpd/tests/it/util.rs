//! Test helpers specific to smtpd: a temporary store with the test users,
//! the test configuration, an in-process server on an ephemeral port
//! (optionally with a self-signed certificate and an implicit-TLS
//! listener), and reading what was delivered. The SMTP client, TLS and
//! the AUTH encodings come from `testkit` and are re-exported here for the
//! test modules.

use mailstore::Store;
use smtpd::Config;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tempfile::TempDir;
use testkit::tls::TlsStream;

pub use testkit::smtp::{b64, plain, tls_stream, Client};

/// The password of every test user.
pub const PASSWORD: &str = "pw";

/// Users every test store has.
pub const USERS: &[&str] = &["bob@localhost", "alice@localhost", "carol@example.test"];

/// A temporary directory with a store holding [`USERS`].
pub fn temp_store() -> (TempDir, Store) {
    let (dir, store) = testkit::store::temp_store();
    add_users(&store);
    (dir, store)
}

/// Create [`USERS`] in `store`.
pub fn add_users(store: &Store) {
    for u in USERS {
        testkit::store::add_user(store, u, PASSWORD);
    }
}

/// The test configuration: domains `localhost` and `example.test`.
pub fn test_config() -> Config {
    Config {
        hostname: "mx.test".into(),
        domains: vec!["localhost".into(), "example.test".into()],
        ..Config::default()
    }
}

/// Raw messages in `user`'s INBOX, by UID.
pub fn inbox(store: &Store, user: &str) -> Vec<Vec<u8>> {
    let user = user.to_string();
    store
        .read_sync(move |r| {
            let u = r.user(&user)?.expect("user exists");
            let Some(mb) = r.mailbox(u.id, "INBOX")? else {
                return Ok(Vec::new());
            };
            let mut out = Vec::new();
            for e in r.entries(mb.id)? {
                out.push(r.raw(mb.id, e.uid)?);
            }
            Ok(out)
        })
        .unwrap()
}

/// The message body after the Return-Path and Received headers we add.
pub fn strip_trace(raw: &[u8]) -> &[u8] {
    assert!(raw.starts_with(b"Return-Path: "), "starts with Return-Path");
    let mut rest = &raw[raw.iter().position(|&b| b == b'\n').unwrap() + 1..];
    assert!(rest.starts_with(b"Received: "), "then Received");
    // Received ends at the first line that is not a continuation.
    loop {
        let nl = rest.iter().position(|&b| b == b'\n').unwrap();
        rest = &rest[nl + 1..];
        if !rest.starts_with(b"\t") {
            return rest;
        }
    }
}

/// An in-process server on 127.0.0.1:0 over a store.
pub struct TestServer {
    /// First, so that the server stops before the store and its directory
    /// go.
    running: testkit::server::Running,
    pub addr: SocketAddr,
    /// The implicit-TLS listener ([`TestServer::with_tls`] only).
    pub smtps: Option<SocketAddr>,
    /// The self-signed certificate (PEM) and a file holding it, for
    /// clients to trust ([`TestServer::with_tls`] only).
    pub ca_pem: String,
    pub ca_file: PathBuf,
    pub store: Store,
    _dir: Option<TempDir>,
}

impl TestServer {
    /// Start with [`test_config`].
    pub fn start() -> TestServer {
        TestServer::with(|_| {})
    }

    /// Start with [`test_config`] changed by `f`.
    pub fn with(f: impl FnOnce(&mut Config)) -> TestServer {
        TestServer::build(false, f)
    }

    /// Start with a self-signed certificate for `localhost`/127.0.0.1
    /// (STARTTLS on [`TestServer::addr`]) and an implicit-TLS listener
    /// ([`TestServer::smtps`]); `f` may change the configuration.
    pub fn with_tls(f: impl FnOnce(&mut Config)) -> TestServer {
        TestServer::build(true, f)
    }

    fn build(tls: bool, f: impl FnOnce(&mut Config)) -> TestServer {
        let (dir, store) = temp_store();
        let mut config = test_config();
        let ca_file = dir.path().join("ca.pem");
        let mut ca_pem = String::new();
        if tls {
            let cert = testkit::tls::TestCert::new(&["localhost", "127.0.0.1"]);
            config.net.tls = Some(cert.tls.clone());
            cert.write_cert(&ca_file);
            ca_pem = cert.cert_pem;
        }
        f(&mut config);
        let mut s = TestServer::serve(store, config, tls);
        s.ca_pem = ca_pem;
        s.ca_file = ca_file;
        s._dir = Some(dir);
        s
    }

    /// Start with [`test_config`] over `store` (opened as a test needs).
    pub fn over(store: Store) -> TestServer {
        TestServer::serve(store, test_config(), false)
    }

    /// Serve `store` with `config`, on an implicit-TLS listener too if
    /// `implicit_tls`.
    fn serve(store: Store, config: Config, implicit_tls: bool) -> TestServer {
        let listeners = testkit::server::listeners(implicit_tls);
        let server = smtpd::bind_listeners(&listeners, config, store.clone()).unwrap();
        let mut running = testkit::server::Running::new();
        let addrs = running.spawn(server);
        TestServer {
            running,
            addr: addrs[0],
            smtps: addrs.get(1).copied(),
            ca_pem: String::new(),
            ca_file: PathBuf::new(),
            store,
            _dir: None,
        }
    }

    /// A connected client from `source` (e.g. 127.0.0.2, which is not
    /// local to a server on 127.0.0.1) that has read the greeting.
    pub fn client_from(&self, source: &str) -> Client {
        let mut c = Client::connect_from(source.parse().unwrap(), self.addr);
        let greeting = c.reply();
        assert!(greeting.starts_with("220 mx.test "), "{greeting}");
        c
    }

    /// A rustls client configuration trusting the test certificate.
    pub fn tls_config(&self) -> Arc<rustls::ClientConfig> {
        netloop::testing::tls_client_config(&self.ca_pem)
    }

    /// A TLS client on the implicit-TLS listener, greeting read.
    pub fn smtps_client(&self) -> Client<TlsStream> {
        let tcp = std::net::TcpStream::connect(self.smtps.expect("with_tls server")).unwrap();
        let mut w = Client::new(tls_stream(self.tls_config(), tcp));
        w.expect_reply("220 mx.test ");
        w
    }

    /// A connected client that has read the greeting.
    pub fn client(&self) -> Client {
        let mut c = Client::connect(self.addr);
        let greeting = c.reply();
        assert!(greeting.starts_with("220 mx.test "), "{greeting}");
        c
    }

    /// Messages in `user`'s INBOX.
    pub fn inbox(&self, user: &str) -> Vec<Vec<u8>> {
        inbox(&self.store, user)
    }

    /// Ask the server to shut down and wait for its loop to end.
    pub fn stop(&mut self) {
        self.running.stop();
    }

    /// Ask the server to shut down without waiting.
    pub fn begin_stop(&self) {
        self.running.shutdown();
    }
}
