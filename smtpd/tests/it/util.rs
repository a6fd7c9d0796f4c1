//! Shared helpers: a temporary store with users, an in-process server on
//! an ephemeral port, and a line-oriented SMTP client with read timeouts.

use mailstore::Store;
use smtpd::Config;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;
use tempfile::TempDir;

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
            .get_or_init(|| mailstore::hash_password("pw").unwrap())
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
        let (dir, store) = temp_store();
        let mut config = test_config();
        f(&mut config);
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let server = smtpd::bind(&[addr], config, store.clone()).unwrap();
        let addr = server.local_addrs()[0];
        let handle = server.shutdown_handle();
        let thread = std::thread::spawn(move || server.run());
        TestServer {
            addr,
            store,
            handle,
            thread: Some(thread),
            _dir: dir,
        }
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
        let stream = TcpStream::connect(addr).unwrap();
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
