//! A line-oriented SMTP client for tests, over plain TCP or any other
//! stream (TLS included), and the base64 of AUTH exchanges. It panics on
//! anything unexpected; every read times out (see [`crate::net`]).

use crate::net;
use crate::tls::{self, TlsStream};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;

/// A blocking SMTP client over `S` (plain TCP unless said otherwise).
pub struct Client<S: Read + Write = TcpStream> {
    r: BufReader<S>,
}

impl Client<TcpStream> {
    /// Connect to `addr` (no greeting read).
    pub fn connect(addr: SocketAddr) -> Client {
        Client::new(net::connect(addr))
    }

    /// Connect to `addr` from the source address `from`, e.g. 127.0.0.2,
    /// which is not local to a server on 127.0.0.1 (no greeting read).
    pub fn connect_from(from: IpAddr, addr: SocketAddr) -> Client {
        Client::new(net::connect_from(from, addr))
    }

    /// The socket, for raw reads and writes past the client's buffer,
    /// timeouts and shutdowns.
    pub fn stream(&self) -> &TcpStream {
        self.r.get_ref()
    }

    /// STARTTLS: expect the 220, check that the server sent nothing after
    /// it, and hand the connection to rustls (handshake on first use).
    pub fn starttls(mut self, config: Arc<rustls::ClientConfig>) -> Client<TlsStream> {
        self.expect("STARTTLS", "220 2.0.0 ");
        self.starttls_after_220(config)
    }

    /// After a 220 to STARTTLS was read: check that nothing followed it in
    /// plaintext and hand the connection to rustls.
    pub fn starttls_after_220(self, config: Arc<rustls::ClientConfig>) -> Client<TlsStream> {
        assert!(
            self.r.buffer().is_empty(),
            "nothing may follow the 220 in plaintext"
        );
        Client::new(tls_stream(config, self.r.into_inner()))
    }
}

impl<S: Read + Write> Client<S> {
    /// Wrap a connected stream (nothing read yet).
    pub fn new(stream: S) -> Client<S> {
        Client {
            r: BufReader::new(stream),
        }
    }

    /// Send raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        let s = self.r.get_mut();
        s.write_all(bytes).unwrap();
        s.flush().unwrap();
    }

    /// Read one complete (possibly multiline) reply, CRLFs included.
    /// Returns "" (or what came so far) on EOF.
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

    /// Send `line` + CRLF, return the reply.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// Send `line` + CRLF and assert the reply starts with `prefix`.
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
        match self.r.read_line(&mut buf) {
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

/// Wrap `tcp` in TLS for the server name `localhost`, with a
/// [`net::READ_TIMEOUT`].
pub fn tls_stream(config: Arc<rustls::ClientConfig>, tcp: TcpStream) -> TlsStream {
    tcp.set_read_timeout(Some(net::READ_TIMEOUT)).unwrap();
    tls::client_stream(config, "localhost", tcp)
}

/// base64 of `text` (AUTH LOGIN responses).
pub fn b64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// `AUTH PLAIN` initial response for `user` with `password`.
pub fn plain(user: &str, password: &str) -> String {
    b64(&format!("\0{user}\0{password}"))
}
