//! Test helpers: an in-process server with a temporary store, users and
//! deliveries, and a minimal IMAP client that reads responses including
//! literals, over plain TCP (optionally from another source address, e.g.
//! 127.0.0.2 to be non-local) or TLS (rustls, trusting a self-signed test
//! certificate). Every socket read has a timeout, so no test can hang.

#![allow(dead_code)]

use mailstore::{NewMessage, Store, Uid, UserId};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

pub const PASSWORD: &str = "secret pw";

/// The test certificate (for localhost and 127.0.0.1), made once.
pub struct TestCert {
    pub cert_pem: String,
    pub tls: netloop::TlsConfig,
}

pub fn test_cert() -> &'static TestCert {
    static CERT: OnceLock<TestCert> = OnceLock::new();
    CERT.get_or_init(|| {
        let s = netloop::tls::self_signed(&["localhost".into(), "127.0.0.1".into()]).unwrap();
        let tls = netloop::tls::from_pem(s.cert_pem.as_bytes(), s.key_pem.as_bytes()).unwrap();
        TestCert {
            cert_pem: s.cert_pem,
            tls,
        }
    })
}

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
    pub addr: SocketAddr,
    /// The implicit-TLS listener, when started with [`TestServer::tls`].
    pub imaps: Option<SocketAddr>,
    pub store: Store,
    pub dir: tempfile::TempDir,
    handle: netloop::ShutdownHandle,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    pub fn start() -> Self {
        Self::with(|_| {})
    }

    pub fn with(tune: impl FnOnce(&mut imapd::Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("mail.db")).unwrap();
        Self::over(dir, store, tune)
    }

    pub fn over(
        dir: tempfile::TempDir,
        store: Store,
        tune: impl FnOnce(&mut imapd::Config),
    ) -> Self {
        let mut config = imapd::Config {
            throttle: fast_throttle(),
            ..imapd::Config::default()
        };
        tune(&mut config);
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let server = imapd::bind(&[addr], config, store.clone()).unwrap();
        Self::running(server, None, dir, store)
    }

    /// A server with the test certificate: STARTTLS on `addr`, implicit
    /// TLS on `imaps`.
    pub fn tls(tune: impl FnOnce(&mut imapd::Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("mail.db")).unwrap();
        let mut config = imapd::Config {
            throttle: fast_throttle(),
            ..imapd::Config::default()
        };
        config.net.tls = Some(Arc::clone(&test_cert().tls));
        tune(&mut config);
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let listen = [
            netloop::Listener {
                addr: any,
                implicit_tls: false,
            },
            netloop::Listener {
                addr: any,
                implicit_tls: true,
            },
        ];
        let server = imapd::bind_listeners(&listen, config, store.clone()).unwrap();
        let imaps = server.local_addrs()[1];
        Self::running(server, Some(imaps), dir, store)
    }

    fn running(
        server: netloop::Server<imapd::ImapService>,
        imaps: Option<SocketAddr>,
        dir: tempfile::TempDir,
        store: Store,
    ) -> Self {
        let addr = server.local_addrs()[0];
        let handle = server.shutdown_handle();
        let thread = std::thread::spawn(move || {
            server.run().unwrap();
        });
        TestServer {
            addr,
            imaps,
            store,
            dir,
            handle,
            thread: Some(thread),
        }
    }

    pub fn add_user(&self, address: &str) -> UserId {
        let hash = mailstore::hash_password(PASSWORD).unwrap();
        let a = address.to_owned();
        self.store
            .write_sync(move |tx| tx.create_user(&a, &hash))
            .unwrap()
    }

    pub fn deliver(&self, user: UserId, raw: &[u8]) -> Uid {
        let msg = NewMessage {
            raw: raw.to_vec(),
            internal_date: 1_700_000_000,
        };
        let d = self
            .store
            .write_sync(move |tx| tx.deliver(&msg, &[user]))
            .unwrap();
        d.entries[0].1
    }

    /// Ask the server to shut down (it finishes in the background).
    pub fn shutdown(&self) {
        self.handle.shutdown();
    }

    pub fn client(&self) -> Client {
        Client::connect(self.addr)
    }

    /// A plain client from 127.0.0.2: not local to a server on 127.0.0.1.
    pub fn remote_client(&self) -> Client {
        Client::from_stream(connect_from("127.0.0.2".parse().unwrap(), self.addr))
    }

    /// A client logged in as `user`.
    pub fn login(&self, user: &str) -> Client {
        let mut c = self.client();
        let r = c.cmd(&format!("LOGIN {user} \"{PASSWORD}\""));
        assert!(r.last().unwrap().contains("OK"), "{r:?}");
        c
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

pub fn simple(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Alice <alice@example.org>\r\nTo: bob@localhost\r\nSubject: {subject}\r\n\
Date: Mon, 13 Nov 2023 10:00:00 +0000\r\nMessage-ID: <{subject}@x>\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// A TCP connection to `to` from the address `from` (port chosen by the
/// kernel), with a read timeout.
pub fn connect_from(from: IpAddr, to: SocketAddr) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&SocketAddr::new(from, 0).into()).unwrap();
    sock.connect(&to.into()).unwrap();
    let s: TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// A rustls client configuration trusting only the test certificate.
pub fn tls_client_config() -> Arc<rustls::ClientConfig> {
    netloop::testing::tls_client_config(&test_cert().cert_pem)
}

/// Wrap a connected socket in a TLS client session for `127.0.0.1`.
pub fn tls_stream(tcp: TcpStream) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(tls_client_config(), name).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

/// Read one line from a raw socket byte by byte (so nothing after it is
/// buffered: the TLS handshake may follow).
pub fn raw_line(s: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while !line.ends_with(b"\n") {
        let n = s.read(&mut b).expect("read (timeout?)");
        assert!(
            n == 1,
            "closed; so far {:?}",
            String::from_utf8_lossy(&line)
        );
        line.push(b[0]);
    }
    String::from_utf8_lossy(&line).trim_end().to_owned()
}

/// Connect (from `from`, e.g. 127.0.0.2), send `first` (which must start
/// with `s STARTTLS\r\n`, possibly followed by injected bytes), expect the
/// go-ahead, then switch to TLS. Returns the greeting and a TLS client.
pub fn starttls_with(from: IpAddr, addr: SocketAddr, first: &[u8]) -> (String, Client) {
    let mut tcp = connect_from(from, addr);
    let greeting = raw_line(&mut tcp);
    tcp.write_all(first).unwrap();
    let ok = raw_line(&mut tcp);
    assert!(ok.starts_with("s OK"), "{ok}");
    (greeting, Client::without_greeting(tls_stream(tcp)))
}

/// What a test client talks over: plain TCP or TLS.
pub trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// A minimal IMAP client for tests.
pub struct Client {
    pub r: BufReader<Box<dyn Stream>>,
    n: u32,
    pub greeting: String,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Self {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Self::from_stream(s)
    }

    /// A client over any stream; reads the greeting.
    pub fn from_stream(s: impl Stream + 'static) -> Self {
        let mut c = Self::without_greeting(s);
        c.greeting = c.line();
        c
    }

    /// A client over any stream, greeting not read yet.
    pub fn without_greeting(s: impl Stream + 'static) -> Self {
        Client {
            r: BufReader::new(Box::new(s)),
            n: 0,
            greeting: String::new(),
        }
    }

    /// Implicit TLS to `addr`.
    pub fn connect_tls(addr: SocketAddr) -> Self {
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Self::from_stream(tls_stream(tcp))
    }

    /// Send raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        let w = self.r.get_mut();
        w.write_all(bytes).unwrap();
        w.flush().unwrap();
    }

    /// True once the server has closed the connection (EOF or reset),
    /// reading past at most 8 more lines (a goodbye) first.
    pub fn closed(&mut self) -> bool {
        let mut l = Vec::new();
        for _ in 0..8 {
            l.clear();
            match self.r.read_until(b'\n', &mut l) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) => {
                    return e.kind() != std::io::ErrorKind::WouldBlock
                        && e.kind() != std::io::ErrorKind::TimedOut
                }
            }
        }
        false
    }

    /// One response line, with literal octets inline. Panics on timeout.
    pub fn line(&mut self) -> String {
        let mut out = Vec::new();
        loop {
            let mut l = Vec::new();
            let n = self.r.read_until(b'\n', &mut l).expect("read (timeout?)");
            assert!(
                n > 0,
                "connection closed; so far: {:?}",
                String::from_utf8_lossy(&out)
            );
            out.extend_from_slice(&l);
            let t = l.strip_suffix(b"\r\n").unwrap_or(&l);
            if let Some(len) = literal_len(t) {
                let mut data = vec![0u8; len];
                self.r.read_exact(&mut data).unwrap();
                out.extend_from_slice(&data);
                continue;
            }
            return String::from_utf8_lossy(&out)
                .trim_end_matches("\r\n")
                .to_owned();
        }
    }

    /// Lines up to and including the one tagged `tag`.
    pub fn until(&mut self, tag: &str) -> Vec<String> {
        let mut v = Vec::new();
        loop {
            let l = self.line();
            let done = l.starts_with(&format!("{tag} "));
            v.push(l);
            if done {
                return v;
            }
        }
    }

    pub fn next_tag(&mut self) -> String {
        self.n += 1;
        format!("a{}", self.n)
    }

    /// Run a command with a fresh tag; all lines through the tagged one.
    pub fn cmd(&mut self, text: &str) -> Vec<String> {
        let tag = self.next_tag();
        self.send(format!("{tag} {text}\r\n").as_bytes());
        self.until(&tag)
    }

    /// Like `cmd`, asserting the tagged response is OK.
    pub fn ok(&mut self, text: &str) -> Vec<String> {
        let r = self.cmd(text);
        let last = r.last().unwrap();
        assert!(last.split(' ').nth(1) == Some("OK"), "{text}: {r:?}");
        r
    }

    /// The tagged line's status word (`OK`, `NO`, `BAD`).
    pub fn status_of(r: &[String]) -> &str {
        r.last().unwrap().split(' ').nth(1).unwrap()
    }

    /// Raw bytes of a response, for byte-exact checks: reads one line and
    /// returns the literal it announces.
    pub fn read_literal_after(&mut self, prefix_contains: &str) -> Vec<u8> {
        loop {
            let mut l = Vec::new();
            self.r.read_until(b'\n', &mut l).unwrap();
            let t = l.strip_suffix(b"\r\n").unwrap_or(&l).to_vec();
            if String::from_utf8_lossy(&t).contains(prefix_contains) {
                let len = literal_len(&t).expect("literal");
                let mut data = vec![0u8; len];
                self.r.read_exact(&mut data).unwrap();
                return data;
            }
        }
    }
}

pub fn literal_len(line: &[u8]) -> Option<usize> {
    let body = line.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&body[open + 1..]).ok()?.parse().ok()
}

/// Lines that start with `prefix`.
pub fn grep<'a>(lines: &'a [String], prefix: &str) -> Vec<&'a String> {
    lines.iter().filter(|l| l.starts_with(prefix)).collect()
}
