//! A minimal IMAP client for tests: tagged commands, responses read line
//! by line with literal octets inline, over plain TCP (optionally from
//! another source address) or TLS trusting [`crate::tls::test_cert`].
//! It panics on anything unexpected; every read times out.

use crate::net;
use crate::tls::{self, TlsStream};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};

/// What a test client talks over: plain TCP or TLS.
pub trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// Wrap a connected socket in a TLS client session for `127.0.0.1` that
/// trusts only [`tls::test_cert`].
pub fn tls_stream(tcp: TcpStream) -> TlsStream {
    tls::client_stream(tls::test_cert().client_config(), "127.0.0.1", tcp)
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
    let mut tcp = net::connect_from(from, addr);
    let greeting = raw_line(&mut tcp);
    tcp.write_all(first).unwrap();
    let ok = raw_line(&mut tcp);
    assert!(ok.starts_with("s OK"), "{ok}");
    (greeting, Client::without_greeting(tls_stream(tcp)))
}

/// A minimal IMAP client for tests.
pub struct Client {
    pub r: BufReader<Box<dyn Stream>>,
    n: u32,
    pub greeting: String,
}

impl Client {
    /// Plain TCP to `addr`; reads the greeting.
    pub fn connect(addr: SocketAddr) -> Self {
        Self::from_stream(net::connect(addr))
    }

    /// Plain TCP to `addr` from `from` (e.g. 127.0.0.2, not local to a
    /// server on 127.0.0.1); reads the greeting.
    pub fn connect_from(from: IpAddr, addr: SocketAddr) -> Self {
        Self::from_stream(net::connect_from(from, addr))
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
        Self::from_stream(tls_stream(net::connect(addr)))
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

    /// The next tag: `a1`, `a2`, ...
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

    /// `COMPRESS DEFLATE` (RFC 4978), asserting OK; from then on the client
    /// compresses what it sends (a sync flush per write) and inflates what
    /// it reads. Returns the response lines.
    pub fn compress(&mut self) -> Vec<String> {
        let r = self.ok("COMPRESS DEFLATE");
        let placeholder: Box<dyn Stream> = Box::new(std::io::Cursor::new(Vec::new()));
        let old = std::mem::replace(&mut self.r, BufReader::new(placeholder));
        // Bytes read past the OK are already compressed (normally none).
        let early = old.buffer().to_vec();
        let inner = old.into_inner();
        self.r = BufReader::new(Box::new(netloop::deflate::ClientStream::new(
            inner, &early, 6,
        )));
        r
    }

    /// LOGIN as `user` with `password`, asserting OK.
    pub fn login(&mut self, user: &str, password: &str) {
        let r = self.cmd(&format!("LOGIN {user} \"{password}\""));
        assert!(r.last().unwrap().contains("OK"), "{r:?}");
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

/// Every message in `mailbox` of `user`, exact bytes, read over IMAP
/// without changing anything (SELECT, then `BODY.PEEK[]` one by one).
pub fn fetch_all(addr: SocketAddr, user: &str, password: &str, mailbox: &str) -> Vec<Vec<u8>> {
    let mut c = Client::connect(addr);
    c.login(user, password);
    let r = c.ok(&format!("SELECT {mailbox}"));
    let n: usize = r
        .iter()
        .find_map(|l| l.strip_suffix(" EXISTS").and_then(|l| l.strip_prefix("* ")))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (1..=n)
        .map(|k| {
            c.send(format!("f{k} FETCH {k} BODY.PEEK[]\r\n").as_bytes());
            let body = c.read_literal_after("BODY[]");
            c.until(&format!("f{k}"));
            body
        })
        .collect()
}

/// [`fetch_all`] as text (lossy UTF-8), for assertions on headers.
pub fn fetch_all_text(addr: SocketAddr, user: &str, password: &str, mailbox: &str) -> Vec<String> {
    fetch_all(addr, user, password, mailbox)
        .into_iter()
        .map(|m| String::from_utf8_lossy(&m).into_owned())
        .collect()
}

/// The length `n` of a line that ends in a literal announcement `{n}`.
pub fn literal_len(line: &[u8]) -> Option<usize> {
    let body = line.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&body[open + 1..]).ok()?.parse().ok()
}

/// Lines that start with `prefix`.
pub fn grep<'a>(lines: &'a [String], prefix: &str) -> Vec<&'a String> {
    lines.iter().filter(|l| l.starts_with(prefix)).collect()
}
