//! Test helpers: an in-process server with a temporary store, users and
//! deliveries, and a minimal IMAP client that reads responses including
//! literals. Every socket read has a timeout, so no test can hang.

#![allow(dead_code)]

use mailstore::{NewMessage, Store, Uid, UserId};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

pub const PASSWORD: &str = "secret pw";

/// A running server over a temp store.
pub struct TestServer {
    pub addr: SocketAddr,
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
            auth_failure_delay: Duration::from_millis(200),
            ..imapd::Config::default()
        };
        tune(&mut config);
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let server = imapd::bind(&[addr], config, store.clone()).unwrap();
        let addr = server.local_addrs()[0];
        let handle = server.shutdown_handle();
        let thread = std::thread::spawn(move || {
            server.run().unwrap();
        });
        TestServer {
            addr,
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

/// A minimal IMAP client for tests.
pub struct Client {
    pub r: BufReader<TcpStream>,
    pub w: TcpStream,
    n: u32,
    pub greeting: String,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Self {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let w = s.try_clone().unwrap();
        let mut c = Client {
            r: BufReader::new(s),
            w,
            n: 0,
            greeting: String::new(),
        };
        c.greeting = c.line();
        c
    }

    /// Send raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).unwrap();
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
