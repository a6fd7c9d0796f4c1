//! Shared helpers: a temporary store with users, an in-process server on
//! an ephemeral port (optionally with a self-signed certificate and an
//! implicit-TLS listener), and line-oriented SMTP clients with read
//! timeouts: [`Client`] over plain TCP (optionally from another source
//! address), [`Wire`] over any stream, TLS (rustls) included.

use mailstore::Store;
use smtpd::Config;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tempfile::TempDir;

/// The password of every test user.
pub const PASSWORD: &str = "pw";

/// Users every test store has.
pub const USERS: &[&str] = &["bob@localhost", "alice@localhost", "carol@example.test"];

/// A temporary directory with a store holding [`USERS`].
pub fn temp_store() -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("mail.db")).unwrap();
    add_users(&store);
    (dir, store)
}

/// Create [`USERS`] in `store`.
pub fn add_users(store: &Store) {
    // argon2 is slow in debug builds: hash once for all tests.
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    for u in USERS {
        let hash = HASH
            .get_or_init(|| mailstore::hash_password(PASSWORD).unwrap())
            .clone();
        let addr = u.to_string();
        store
            .write_sync(move |tx| tx.create_user(&addr, &hash))
            .unwrap();
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

/// An in-process server on 127.0.0.1:0 over a temporary store.
pub struct TestServer {
    pub addr: SocketAddr,
    /// The implicit-TLS listener ([`TestServer::with_tls`] only).
    pub smtps: Option<SocketAddr>,
    /// The self-signed certificate (PEM) and a file holding it, for
    /// clients to trust ([`TestServer::with_tls`] only).
    pub ca_pem: String,
    pub ca_file: PathBuf,
    pub store: Store,
    handle: netloop::ShutdownHandle,
    thread: Option<JoinHandle<io::Result<()>>>,
    _dir: TempDir,
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
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let mut listeners = vec![netloop::Listener {
            addr: any,
            implicit_tls: false,
        }];
        let ca_file = dir.path().join("ca.pem");
        let mut ca_pem = String::new();
        if tls {
            let cert =
                netloop::tls::self_signed(&["localhost".into(), "127.0.0.1".into()]).unwrap();
            config.net.tls = Some(
                netloop::tls::from_pem(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes()).unwrap(),
            );
            std::fs::write(&ca_file, &cert.cert_pem).unwrap();
            ca_pem = cert.cert_pem;
            listeners.push(netloop::Listener {
                addr: any,
                implicit_tls: true,
            });
        }
        f(&mut config);
        let server = smtpd::bind_listeners(&listeners, config, store.clone()).unwrap();
        let addrs = server.local_addrs();
        let handle = server.shutdown_handle();
        let thread = std::thread::spawn(move || server.run());
        TestServer {
            addr: addrs[0],
            smtps: addrs.get(1).copied(),
            ca_pem,
            ca_file,
            store,
            handle,
            thread: Some(thread),
            _dir: dir,
        }
    }

    /// A connected client from `source` (e.g. 127.0.0.2, which is not
    /// local to a server on 127.0.0.1) that has read the greeting.
    pub fn client_from(&self, source: &str) -> Client {
        let mut c = Client::connect_from(self.addr, source);
        let greeting = c.reply();
        assert!(greeting.starts_with("220 mx.test "), "{greeting}");
        c
    }

    /// A rustls client configuration trusting the test certificate.
    pub fn tls_config(&self) -> Arc<rustls::ClientConfig> {
        netloop::testing::tls_client_config(&self.ca_pem)
    }

    /// A TLS client on the implicit-TLS listener, greeting read.
    pub fn smtps_client(&self) -> Wire<TlsStream> {
        let tcp = TcpStream::connect(self.smtps.expect("with_tls server")).unwrap();
        let mut w = Wire::new(tls_stream(self.tls_config(), tcp));
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
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            t.join().unwrap().unwrap();
        }
    }

    /// Ask the server to shut down without waiting.
    pub fn begin_stop(&self) {
        self.handle.shutdown();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A blocking SMTP client for tests; every read times out after 10 s.
pub struct Client {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    /// Connect (no greeting read).
    pub fn connect(addr: SocketAddr) -> Client {
        Client::from_stream(TcpStream::connect(addr).unwrap())
    }

    /// Connect from the source address `source` (no greeting read).
    pub fn connect_from(addr: SocketAddr, source: &str) -> Client {
        Client::from_stream(connect_from(addr, source))
    }

    fn from_stream(stream: TcpStream) -> Client {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Client { stream, reader }
    }

    /// Send raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Read one complete (possibly multiline) reply, CRLFs included.
    /// Returns "" on EOF.
    pub fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).unwrap();
            if n == 0 {
                return all;
            }
            assert!(line.ends_with("\r\n"), "reply line ends in CRLF: {line:?}");
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    /// Send `line` + CRLF, return the reply.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// Send `line` and assert the reply starts with `prefix`.
    pub fn expect(&mut self, line: &str, prefix: &str) -> String {
        let r = self.cmd(line);
        assert!(
            r.starts_with(prefix),
            "{line:?}: want {prefix:?}, got {r:?}"
        );
        r
    }

    /// Read a reply and assert its prefix.
    pub fn expect_reply(&mut self, prefix: &str) -> String {
        let r = self.reply();
        assert!(r.starts_with(prefix), "want {prefix:?}, got {r:?}");
        r
    }

    /// STARTTLS: expect the 220, check that the server sent nothing after
    /// it, and hand the connection to rustls (handshake on first use).
    pub fn starttls(mut self, config: Arc<rustls::ClientConfig>) -> Wire<TlsStream> {
        self.expect("STARTTLS", "220 2.0.0 ");
        assert!(
            self.reader.buffer().is_empty(),
            "nothing may follow the 220 in plaintext"
        );
        Wire::new(tls_stream(config, self.stream))
    }

    /// After a 220 to STARTTLS was read: check that nothing followed it in
    /// plaintext and hand the connection to rustls.
    pub fn starttls_after_220(self, config: Arc<rustls::ClientConfig>) -> Wire<TlsStream> {
        assert!(
            self.reader.buffer().is_empty(),
            "nothing may follow the 220 in plaintext"
        );
        Wire::new(tls_stream(config, self.stream))
    }

    /// True once the server has closed the connection: EOF, or a reset
    /// (a close with unread input makes the kernel send RST).
    pub fn closed(&mut self) -> bool {
        let mut buf = String::new();
        match self.reader.read_line(&mut buf) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
            ),
        }
    }

    /// EHLO, MAIL, RCPT(s), DATA with `body` (already dot-stuffed and
    /// ending in CRLF); returns the final reply.
    pub fn send_mail(&mut self, from: &str, to: &[&str], body: &[u8]) -> String {
        self.expect("EHLO client.test", "250");
        self.expect(&format!("MAIL FROM:<{from}>"), "250 2.1.0");
        for t in to {
            self.expect(&format!("RCPT TO:<{t}>"), "250 2.1.5");
        }
        self.expect("DATA", "354");
        self.send(body);
        self.send(b".\r\n");
        self.reply()
    }
}

/// A TCP connection to `addr` from the source address `source`.
pub fn connect_from(addr: SocketAddr, source: &str) -> TcpStream {
    let ip: IpAddr = source.parse().unwrap();
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&SocketAddr::new(ip, 0).into()).unwrap();
    sock.connect(&addr.into()).unwrap();
    sock.into()
}

/// A rustls client stream over TCP.
pub type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// Wrap `tcp` in TLS for the server name `localhost`.
pub fn tls_stream(config: Arc<rustls::ClientConfig>, tcp: TcpStream) -> TlsStream {
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

/// An SMTP client over any stream (used for TLS).
pub struct Wire<S: Read + Write> {
    r: BufReader<S>,
}

impl<S: Read + Write> Wire<S> {
    /// Wrap a connected stream (nothing read yet).
    pub fn new(stream: S) -> Wire<S> {
        Wire {
            r: BufReader::new(stream),
        }
    }

    /// Send raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        let s = self.r.get_mut();
        s.write_all(bytes).unwrap();
        s.flush().unwrap();
    }

    /// Read one complete reply ("" on EOF).
    pub fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            match self.r.read_line(&mut line) {
                Ok(0) => return all,
                Ok(_) => {}
                // rustls reports a close without close_notify this way.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return all,
                Err(e) => panic!("read failed after {all:?}: {e}"),
            }
            assert!(line.ends_with("\r\n"), "reply line ends in CRLF: {line:?}");
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    /// Send `line` + CRLF and assert the reply starts with `prefix`.
    pub fn expect(&mut self, line: &str, prefix: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        let r = self.reply();
        assert!(
            r.starts_with(prefix),
            "{line:?}: want {prefix:?}, got {r:?}"
        );
        r
    }

    /// Read a reply and assert its prefix.
    pub fn expect_reply(&mut self, prefix: &str) -> String {
        let r = self.reply();
        assert!(r.starts_with(prefix), "want {prefix:?}, got {r:?}");
        r
    }
}

/// `AUTH PLAIN` initial response for `user` with `password`.
pub fn plain(user: &str, password: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"))
}

/// base64 of `text` (LOGIN responses).
pub fn b64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}
