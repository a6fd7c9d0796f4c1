//! Test helpers specific to imapd: an in-process server over a temporary
//! store (optionally with the test certificate and an implicit-TLS
//! listener), its users and deliveries, and sample messages. The IMAP
//! client, connections from other source addresses and TLS come from
//! `testkit` and are re-exported here for the test modules.

#![allow(dead_code)]

use mailstore::{Store, Uid, UserId};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use testkit::imap::{grep, raw_line, starttls_with, tls_stream, Client};
pub use testkit::net::connect_from;
pub use testkit::tls::test_cert;

pub const PASSWORD: &str = "secret pw";

/// Failed logins answered quickly in tests (the default delay is 500 ms).
pub fn fast_throttle() -> Arc<netloop::Throttle> {
    netloop::Throttle::new(netloop::ThrottleConfig {
        base_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
        ..netloop::ThrottleConfig::default()
    })
}

/// A running server over a temp store.
pub struct TestServer {
    /// First, so that the server stops before the store and its directory
    /// go.
    running: testkit::server::Running,
    pub addr: SocketAddr,
    /// The implicit-TLS listener, when started with [`TestServer::tls`].
    pub imaps: Option<SocketAddr>,
    pub store: Store,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    pub fn start() -> Self {
        Self::with(|_| {})
    }

    pub fn with(tune: impl FnOnce(&mut imapd::Config)) -> Self {
        let (dir, store) = testkit::store::temp_store();
        Self::over(dir, store, tune)
    }

    pub fn over(
        dir: tempfile::TempDir,
        store: Store,
        tune: impl FnOnce(&mut imapd::Config),
    ) -> Self {
        Self::build(false, dir, store, tune)
    }

    /// A server with the test certificate: STARTTLS on `addr`, implicit
    /// TLS on `imaps`.
    pub fn tls(tune: impl FnOnce(&mut imapd::Config)) -> Self {
        let (dir, store) = testkit::store::temp_store();
        Self::build(true, dir, store, tune)
    }

    fn build(
        tls: bool,
        dir: tempfile::TempDir,
        store: Store,
        tune: impl FnOnce(&mut imapd::Config),
    ) -> Self {
        let mut config = imapd::Config {
            throttle: fast_throttle(),
            ..imapd::Config::default()
        };
        if tls {
            config.net.tls = Some(Arc::clone(&test_cert().tls));
        }
        tune(&mut config);
        let listen = testkit::server::listeners(tls);
        let server = imapd::bind_listeners(&listen, config, store.clone()).unwrap();
        let mut running = testkit::server::Running::new();
        let addrs = running.spawn(server);
        TestServer {
            running,
            addr: addrs[0],
            imaps: addrs.get(1).copied(),
            store,
            dir,
        }
    }

    pub fn add_user(&self, address: &str) -> UserId {
        testkit::store::add_user(&self.store, address, PASSWORD)
    }

    pub fn deliver(&self, user: UserId, raw: &[u8]) -> Uid {
        testkit::store::deliver(&self.store, user, raw)
    }

    /// Ask the server to shut down (it finishes in the background).
    pub fn shutdown(&self) {
        self.running.shutdown();
    }

    pub fn client(&self) -> Client {
        Client::connect(self.addr)
    }

    /// A plain client from 127.0.0.2: not local to a server on 127.0.0.1.
    pub fn remote_client(&self) -> Client {
        Client::connect_from("127.0.0.2".parse().unwrap(), self.addr)
    }

    /// A client logged in as `user`.
    pub fn login(&self, user: &str) -> Client {
        let mut c = self.client();
        c.login(user, PASSWORD);
        c
    }
}

/// A message with a multipart body used by several tests.
pub const MULTIPART: &[u8] = b"From: Alice <alice@example.org>\r\n\
To: bob@localhost, \"Carol C\" <carol@localhost>\r\n\
Subject: Multi part\r\n\
Date: Mon, 13 Nov 2023 10:00:00 +0000\r\n\
Message-ID: <m1@example.org>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"XX\"\r\n\
\r\n\
preamble\r\n\
--XX\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Hello Bob,\r\nthis is the text.\r\n\
--XX\r\n\
Content-Type: application/octet-stream; name=\"a.bin\"\r\n\
Content-Disposition: attachment; filename=\"a.bin\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
AAECAwQ=\r\n\
--XX--\r\n";

/// Run a Python client `script` (argv: port, user, password) against `s`
/// as bob@localhost; it must exit 0 and print `ok`. `what` names the
/// client in the failure message.
pub fn python_client_ok(s: &TestServer, script: &str, what: &str) {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(s.addr.port().to_string())
        .arg("bob@localhost")
        .arg(PASSWORD)
        .output()
        .expect("python3 must be installed for interop tests");
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

pub fn simple(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Alice <alice@example.org>\r\nTo: bob@localhost\r\nSubject: {subject}\r\n\
Date: Mon, 13 Nov 2023 10:00:00 +0000\r\nMessage-ID: <{subject}@x>\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}
