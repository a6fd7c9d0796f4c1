//! One client connection: blocking `std::net` with a deadline on every read,
//! so a case never hangs.
//!
//! Reads whole response lines (CRLF or LF stripped). For IMAP, a line ending
//! in a literal announcement `{N}` (RFC 3501 §4.3) is joined with the N
//! literal octets and the rest of the response, so a pattern sees one whole
//! response. Lines can be pushed back (used by `NOT`).

use crate::transcript::Proto;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Longest response accepted (a runaway server cannot eat the runner's memory).
pub const MAX_RESPONSE: usize = 64 * 1024 * 1024;

/// Why no line came.
#[derive(Debug)]
pub enum ReadError {
    /// The deadline passed; holds any partial bytes.
    Timeout(Vec<u8>),
    /// The server closed (or reset) the connection; holds any partial bytes.
    Closed(Vec<u8>),
    /// The response grew past [`MAX_RESPONSE`].
    TooLong,
    /// Another I/O error.
    Io(io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Timeout(p) if p.is_empty() => write!(f, "timeout, nothing received"),
            ReadError::Timeout(p) => write!(f, "timeout after partial line {}", show(p)),
            ReadError::Closed(p) if p.is_empty() => write!(f, "connection closed by server"),
            ReadError::Closed(p) => write!(f, "connection closed after partial line {}", show(p)),
            ReadError::TooLong => write!(f, "response longer than {MAX_RESPONSE} bytes"),
            ReadError::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

/// Renders received bytes for a report: printable ASCII as is, the rest
/// escaped, cut at 300 characters.
pub fn show(b: &[u8]) -> String {
    let mut s = String::from("`");
    for (n, &c) in b.iter().enumerate() {
        if n >= 300 {
            s.push_str(&format!("...` ({} bytes)", b.len()));
            return s;
        }
        match c {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s.push('`');
    s
}

/// A client connection.
pub struct Conn {
    stream: TcpStream,
    proto: Proto,
    buf: Vec<u8>,
    pushed: VecDeque<Vec<u8>>,
    eof: bool,
    /// Recent lines, for failure context.
    pub history: VecDeque<Vec<u8>>,
}

impl Conn {
    /// Connects (with a timeout).
    ///
    /// # Errors
    /// Resolution or connection failure.
    pub fn connect(addr: &str, proto: Proto, timeout: Duration) -> io::Result<Self> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, format!("no address for {addr}"));
        for a in addr.to_socket_addrs()? {
            match TcpStream::connect_timeout(&a, timeout) {
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
                    return Ok(Conn {
                        stream,
                        proto,
                        buf: Vec::new(),
                        pushed: VecDeque::new(),
                        eof: false,
                        history: VecDeque::new(),
                    });
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Sends bytes.
    ///
    /// # Errors
    /// Write failures (the server may have closed).
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Closes the client's side completely.
    pub fn close(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// Puts a line back to be read again first.
    pub fn push_back(&mut self, line: Vec<u8>) {
        self.pushed.push_front(line);
    }

    /// Reads one response line before `deadline`.
    ///
    /// # Errors
    /// See [`ReadError`].
    pub fn read_line(&mut self, deadline: Instant) -> Result<Vec<u8>, ReadError> {
        if let Some(l) = self.pushed.pop_front() {
            return Ok(l);
        }
        let mut line = self.raw_line(deadline)?;
        if self.proto == Proto::Imap {
            while let Some(n) = literal_len(&line) {
                if n > MAX_RESPONSE || line.len() + n > MAX_RESPONSE {
                    return Err(ReadError::TooLong);
                }
                line.extend_from_slice(b"\r\n");
                let lit = self.raw_bytes(n, deadline)?;
                line.extend(lit);
                let rest = self.raw_line(deadline)?;
                line.extend(rest);
            }
        }
        if self.history.len() >= 8 {
            self.history.pop_front();
        }
        self.history.push_back(line.clone());
        Ok(line)
    }

    fn fill(&mut self, deadline: Instant) -> Result<(), ReadError> {
        if self.eof {
            return Err(ReadError::Closed(std::mem::take(&mut self.buf)));
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(ReadError::Timeout(self.buf.clone()));
        }
        self.stream
            .set_read_timeout(Some((deadline - now).max(Duration::from_millis(1))))
            .map_err(ReadError::Io)?;
        let mut chunk = [0u8; 65536];
        match self.stream.read(&mut chunk) {
            Ok(0) => {
                self.eof = true;
                Err(ReadError::Closed(std::mem::take(&mut self.buf)))
            }
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Err(ReadError::Timeout(self.buf.clone()))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
                ) =>
            {
                self.eof = true;
                Err(ReadError::Closed(std::mem::take(&mut self.buf)))
            }
            Err(e) => Err(ReadError::Io(e)),
        }
    }

    fn raw_line(&mut self, deadline: Instant) -> Result<Vec<u8>, ReadError> {
        let mut scanned = 0;
        loop {
            if let Some(pos) = self.buf[scanned..].iter().position(|&b| b == b'\n') {
                let end = scanned + pos;
                let mut line: Vec<u8> = self.buf.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            scanned = self.buf.len();
            if scanned > MAX_RESPONSE {
                return Err(ReadError::TooLong);
            }
            self.fill(deadline)?;
        }
    }

    fn raw_bytes(&mut self, n: usize, deadline: Instant) -> Result<Vec<u8>, ReadError> {
        while self.buf.len() < n {
            self.fill(deadline)?;
        }
        Ok(self.buf.drain(..n).collect())
    }
}

/// `Some(N)` when an IMAP response line ends with `{N}` (a literal follows).
pub fn literal_len(line: &[u8]) -> Option<usize> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn literal_announcements() {
        assert_eq!(literal_len(b"* 1 FETCH (BODY[] {12}"), Some(12));
        assert_eq!(literal_len(b"* OK {x}"), None);
        assert_eq!(literal_len(b"* OK"), None);
    }

    #[test]
    fn reads_lines_literals_timeouts_and_close() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let t = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            s.write_all(b"* OK hi\r\n* 1 FETCH (BODY[] {5}\r\na\r\nbc)\r\nbare\n")
                .unwrap();
            std::thread::sleep(Duration::from_millis(300));
        });
        let mut c = Conn::connect(&addr, Proto::Imap, Duration::from_secs(2)).unwrap();
        let dl = Instant::now() + Duration::from_secs(2);
        assert_eq!(c.read_line(dl).unwrap(), b"* OK hi");
        assert_eq!(
            c.read_line(dl).unwrap(),
            b"* 1 FETCH (BODY[] {5}\r\na\r\nbc)"
        );
        assert_eq!(c.read_line(dl).unwrap(), b"bare");
        let short = Instant::now() + Duration::from_millis(50);
        assert!(matches!(c.read_line(short), Err(ReadError::Timeout(_))));
        t.join().unwrap();
        assert!(matches!(c.read_line(dl), Err(ReadError::Closed(_))));
    }
}
