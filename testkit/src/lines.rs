//! A fallible line client for text protocols (SMTP and IMAP alike), for
//! tests that must survive a server going away (load senders, probes)
//! and for driving the `minimail` binary: every call returns an
//! [`io::Result`] instead of panicking, and the caller decides.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::thread::JoinHandle;
use std::time::Duration;

/// A TCP connection read line by line.
pub struct Conn {
    /// The socket, for writes (clone it to write from another thread).
    pub w: TcpStream,
    /// The socket's buffered reading side.
    pub r: BufReader<TcpStream>,
}

impl Conn {
    /// Connect to `addr`; every read fails after `timeout`.
    pub fn open(addr: impl ToSocketAddrs, timeout: Duration) -> io::Result<Conn> {
        let w = TcpStream::connect(addr)?;
        w.set_read_timeout(Some(timeout))?;
        let r = BufReader::new(w.try_clone()?);
        Ok(Conn { w, r })
    }

    /// One line, line end included; an error once the connection closed.
    pub fn line(&mut self) -> io::Result<String> {
        let mut l = String::new();
        if self.r.read_line(&mut l)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        Ok(l)
    }

    /// Send raw bytes.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.w.write_all(bytes)
    }

    /// Write `bytes` from another thread, so that the caller can read
    /// the answers meanwhile (a pipelined flood cannot then deadlock on
    /// full socket buffers); join the thread for the outcome.
    pub fn send_in_background(&self, bytes: Vec<u8>) -> io::Result<JoinHandle<io::Result<()>>> {
        let mut w = self.w.try_clone()?;
        Ok(std::thread::spawn(move || w.write_all(&bytes)))
    }

    /// Lines until one starts with `until` (included), or an error that
    /// says what came so far.
    pub fn until(&mut self, until: &str) -> io::Result<String> {
        let mut all = String::new();
        loop {
            let l = self
                .line()
                .map_err(|e| io::Error::new(e.kind(), format!("{e}; got so far: {all}")))?;
            all.push_str(&l);
            if l.starts_with(until) {
                return Ok(all);
            }
        }
    }

    /// Send `line` and CRLF, then read [`Conn::until`] a line starts with
    /// `until`. Panics on any error.
    pub fn say(&mut self, line: &str, until: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes())
            .and_then(|()| self.until(until))
            .unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }

    /// One SMTP reply (all its lines); the last line's code (0 if none).
    pub fn reply(&mut self) -> io::Result<(u16, String)> {
        let mut all = String::new();
        loop {
            let l = self.line()?;
            all.push_str(&l);
            if l.as_bytes().get(3) != Some(&b'-') {
                let code = l.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
                return Ok((code, all));
            }
        }
    }

    /// Send `data` (if any), read one SMTP reply and require that its last
    /// line start with `prefix`; otherwise an error holding that line.
    pub fn expect(&mut self, data: &str, prefix: &str) -> io::Result<()> {
        if !data.is_empty() {
            self.send(data.as_bytes())?;
        }
        let (_, all) = self.reply()?;
        let last = all.lines().last().unwrap_or("");
        if last.starts_with(prefix) {
            Ok(())
        } else {
            Err(io::Error::other(last.to_owned()))
        }
    }
}
