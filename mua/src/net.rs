//! Blocking line-oriented transport shared by the SMTP and IMAP clients.
//!
//! Connects with a timeout, reads CRLF lines and exact byte counts (IMAP
//! literals, RFC 3501 §4.3) with a read timeout, and echoes the dialogue to
//! stderr as `C:`/`S:` lines when `--trace` is on. Callers mask credentials
//! by passing a display form of secret lines.

use crate::error::{MuaError, Result};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// How long to wait for a TCP connection to be established.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for any server reply before giving up.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest reply line we accept (guards against a runaway server). A
/// `* SEARCH` answer for a million messages is about 7 MiB.
pub const MAX_LINE: usize = 16 << 20;

/// A connected socket with buffered reads and optional tracing.
pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    trace: bool,
}

impl Conn {
    /// Connects to `addr` (`host:port`), trying each resolved address.
    ///
    /// # Errors
    /// `MuaError::Connect` when no address accepts the connection.
    pub fn connect(addr: &str, trace: bool) -> Result<Conn> {
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
                    let writer = s.try_clone().map_err(conn_err)?;
                    return Ok(Conn {
                        reader: BufReader::new(s),
                        writer,
                        trace,
                    });
                }
                Err(e) => last = e,
            }
        }
        Err(conn_err(last))
    }

    /// Changes the read timeout (IDLE waits longer than a command).
    ///
    /// # Errors
    /// Fails if the socket is closed.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> Result<()> {
        self.writer.set_read_timeout(t)?;
        Ok(())
    }

    /// A second handle to the socket, for shutting it down from another thread.
    ///
    /// # Errors
    /// Fails if the OS cannot duplicate the descriptor.
    pub fn try_clone_stream(&self) -> Result<TcpStream> {
        Ok(self.writer.try_clone()?)
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
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if self.trace {
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
        if self.trace {
            eprintln!("S: [{n} bytes of literal data]");
        }
        Ok(buf)
    }

    /// Sends one line, appending CRLF; `shown` replaces it in the trace.
    ///
    /// # Errors
    /// The socket failed.
    pub fn send_line(&mut self, line: &[u8], shown: Option<&str>) -> Result<()> {
        if self.trace {
            match shown {
                Some(s) => eprintln!("C: {s}"),
                None => eprintln!("C: {}", String::from_utf8_lossy(line)),
            }
        }
        let mut buf = Vec::with_capacity(line.len() + 2);
        buf.extend_from_slice(line);
        buf.extend_from_slice(b"\r\n");
        self.writer.write_all(&buf)?;
        Ok(())
    }

    /// Sends raw bytes (a literal or a DATA body); traced as a byte count.
    ///
    /// # Errors
    /// The socket failed.
    pub fn send_raw(&mut self, data: &[u8]) -> Result<()> {
        if self.trace {
            eprintln!("C: [{} bytes of message data]", data.len());
        }
        self.writer.write_all(data)?;
        Ok(())
    }
}
