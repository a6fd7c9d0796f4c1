//! Blocking line-oriented transport shared by the SMTP and IMAP clients,
//! plaintext or TLS.
//!
//! Connects with a timeout, reads CRLF lines and exact byte counts (IMAP
//! literals, RFC 3501 §4.3) with a read timeout, and echoes the dialogue to
//! stderr as `C:`/`S:` lines when `--trace` is on. Callers mask credentials
//! by passing a display form of secret lines. TLS (rustls) starts either
//! at once (implicit TLS, RFC 8314 §3) or when the protocol client has
//! negotiated STARTTLS (RFC 3207 §4, RFC 3501 §6.2.1); then any reply bytes
//! already buffered are refused as a plaintext injection (RFC 3207 §6,
//! CVE-2011-0411). One socket clone stays outside the TLS layer so timeouts
//! can be changed and the socket shut down from another thread.

use crate::error::{MuaError, Result};
use crate::tls::{self, TlsMode, Trust};
use rustls::{ClientConnection, StreamOwned};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// How long to wait for a TCP connection to be established.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for any server reply before giving up.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest reply line we accept (guards against a runaway server). A
/// `* SEARCH` answer for a million messages is about 7 MiB.
pub const MAX_LINE: usize = 16 << 20;

/// How to connect: tracing, TLS mode and trust. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Echo the dialogue to stderr.
    pub trace: bool,
    /// When to use TLS.
    pub tls: TlsMode,
    /// Whom to trust.
    pub trust: Trust,
    /// Tests only: treat a loopback server as remote (for `auto`).
    pub(crate) loopback_is_remote: bool,
}

impl Options {
    /// Plaintext-capable defaults (`auto`, system roots) with optional trace.
    pub fn traced(trace: bool) -> Options {
        Options {
            trace,
            ..Options::default()
        }
    }
}

/// The byte stream under the line reader.
enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// A connected socket with buffered reads and optional tracing.
pub struct Conn {
    reader: BufReader<Stream>,
    /// The raw socket (a clone): timeouts and shutdown.
    sock: TcpStream,
    /// `host:port` as configured (names the server in messages and TLS).
    addr: String,
    peer: SocketAddr,
    opts: Options,
    /// Octets read from the server so far (lines and literals).
    received: u64,
}

impl Conn {
    /// Connects to `addr` (`host:port`), trying each resolved address; with
    /// `--tls implicit` also completes the TLS handshake.
    ///
    /// # Errors
    /// `Connect` when no address accepts the connection; `Tls` when the
    /// handshake fails.
    pub fn connect(addr: &str, opts: &Options) -> Result<Conn> {
        let conn_err = |reason| MuaError::Connect {
            addr: addr.to_string(),
            reason,
        };
        let addrs: Vec<_> = addr.to_socket_addrs().map_err(conn_err)?.collect();
        let mut last = io::Error::new(io::ErrorKind::NotFound, "address resolved to nothing");
        for a in addrs {
            match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
                Ok(s) => {
                    s.set_read_timeout(Some(READ_TIMEOUT)).map_err(conn_err)?;
                    s.set_nodelay(true).map_err(conn_err)?;
                    let sock = s.try_clone().map_err(conn_err)?;
                    let mut conn = Conn {
                        reader: BufReader::new(Stream::Plain(s)),
                        sock,
                        addr: addr.to_string(),
                        peer: a,
                        opts: opts.clone(),
                        received: 0,
                    };
                    if opts.tls == TlsMode::Implicit {
                        conn.handshake()?;
                    }
                    return Ok(conn);
                }
                Err(e) => last = e,
            }
        }
        Err(conn_err(last))
    }

    /// Octets read from the server so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// True once TLS protects the connection.
    pub fn is_tls(&self) -> bool {
        matches!(self.reader.get_ref(), Stream::Tls(_))
    }

    /// The server as configured (`host:port`).
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Whether to negotiate STARTTLS now, given whether the server offers it
    /// (see [`tls::want_starttls`]). False when TLS is already on.
    ///
    /// # Errors
    /// `Tls` when `--tls starttls` is set and the server does not offer it.
    pub fn want_starttls(&self, offered: bool) -> Result<bool> {
        if self.is_tls() {
            return Ok(false);
        }
        let loopback = tls::is_loopback(self.peer.ip()) && !self.opts.loopback_is_remote;
        tls::want_starttls(self.opts.tls, offered, loopback, &self.addr)
    }

    /// Starts TLS after the server accepted STARTTLS.
    ///
    /// # Errors
    /// `Protocol` if the server already sent more bytes (they were written
    /// in plaintext and could be an attacker's injection); `Tls` when the
    /// handshake fails.
    pub fn start_tls(&mut self) -> Result<()> {
        if !self.reader.buffer().is_empty() {
            return Err(MuaError::Protocol(format!(
                "{} sent {} bytes after accepting STARTTLS, before the TLS handshake \
                 (possible plaintext injection); refusing to continue",
                self.addr,
                self.reader.buffer().len()
            )));
        }
        self.handshake()
    }

    /// Runs the TLS handshake on the raw socket and puts TLS under the reader.
    fn handshake(&mut self) -> Result<()> {
        let config = self.opts.trust.client_config()?;
        let name = tls::server_name(&self.addr)?;
        let mut tls = ClientConnection::new(config, name)
            .map_err(|e| MuaError::Tls(format!("cannot start TLS with {}: {e}", self.addr)))?;
        let mut sock = self.sock.try_clone()?;
        while tls.is_handshaking() {
            tls.complete_io(&mut sock).map_err(|e| {
                let implicit = self.opts.tls == TlsMode::Implicit;
                self.opts.trust.handshake_error(&self.addr, &e, implicit)
            })?;
        }
        if self.opts.trace {
            let version = match tls.protocol_version() {
                Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3".to_string(),
                Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2".to_string(),
                Some(v) => format!("{v:?}"),
                None => "TLS".to_string(),
            };
            eprintln!("[{version} established with {}]", tls::host_of(&self.addr));
        }
        // The old plaintext reader (empty, checked above) and its socket
        // handle go; the socket itself stays open through `self.sock`.
        self.reader = BufReader::new(Stream::Tls(Box::new(StreamOwned::new(tls, sock))));
        Ok(())
    }

    /// Changes the read timeout (IDLE waits longer than a command).
    ///
    /// # Errors
    /// Fails if the socket is closed.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> Result<()> {
        self.sock.set_read_timeout(t)?;
        Ok(())
    }

    /// A second handle to the socket, for shutting it down from another thread.
    ///
    /// # Errors
    /// Fails if the OS cannot duplicate the descriptor.
    pub fn try_clone_stream(&self) -> Result<TcpStream> {
        Ok(self.sock.try_clone()?)
    }

    /// Reads one line, without its CRLF (or bare LF).
    ///
    /// # Errors
    /// Timeout, EOF or an overlong line.
    pub fn read_line(&mut self) -> Result<Vec<u8>> {
        let mut line = Vec::new();
        let n = (&mut self.reader)
            .take(MAX_LINE as u64 + 2)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Err(MuaError::Protocol("server closed the connection".into()));
        }
        if line.last() != Some(&b'\n') {
            return Err(MuaError::Protocol(
                "reply line too long or truncated".into(),
            ));
        }
        self.received += n as u64;
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if self.opts.trace {
            eprintln!("S: {}", String::from_utf8_lossy(&line));
        }
        Ok(line)
    }

    /// Reads exactly `n` bytes (an IMAP literal).
    ///
    /// # Errors
    /// Timeout or EOF.
    pub fn read_exact(&mut self, n: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0; n];
        self.reader.read_exact(&mut buf)?;
        self.received += n as u64;
        if self.opts.trace {
            eprintln!("S: [{n} bytes of literal data]");
        }
        Ok(buf)
    }

    /// Sends one line, appending CRLF; `shown` replaces it in the trace.
    ///
    /// # Errors
    /// The socket failed.
    pub fn send_line(&mut self, line: &[u8], shown: Option<&str>) -> Result<()> {
        if self.opts.trace {
            match shown {
                Some(s) => eprintln!("C: {s}"),
                None => eprintln!("C: {}", String::from_utf8_lossy(line)),
            }
        }
        let mut buf = Vec::with_capacity(line.len() + 2);
        buf.extend_from_slice(line);
        buf.extend_from_slice(b"\r\n");
        self.write(&buf)
    }

    /// Sends raw bytes (a literal or a DATA body); traced as a byte count.
    ///
    /// # Errors
    /// The socket failed.
    pub fn send_raw(&mut self, data: &[u8]) -> Result<()> {
        if self.opts.trace {
            eprintln!("C: [{} bytes of message data]", data.len());
        }
        self.write(data)
    }

    fn write(&mut self, data: &[u8]) -> Result<()> {
        let stream = self.reader.get_mut();
        stream.write_all(data)?;
        stream.flush()?;
        Ok(())
    }
}
