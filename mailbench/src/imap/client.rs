//! A small blocking IMAP client for load generation (RFC 3501 §6 commands
//! LOGIN, SELECT, CREATE, APPEND, LOGOUT; IDLE RFC 2177; LITERAL+ RFC 7888;
//! COMPRESS=DEFLATE RFC 4978 with flate2).
//! It shares nothing with minimail's servers, so it measures any server.

use super::parse::{self, Kind};
use anyhow::{bail, Context, Result};
use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The socket's read side, counting the octets that came over the wire.
struct Counted {
    s: TcpStream,
    n: Arc<AtomicU64>,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.s.read(buf)?;
        self.n.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Inflates a raw DEFLATE stream read from `inner` (the responses after
/// COMPRESS). Unlike flate2's `read::DeflateDecoder`, it hands over what the
/// decompressor already holds before it reads more: miniz_oxide takes all
/// the input it is given and keeps the output that did not fit, so a reader
/// that waits for more input first would wait for ever for the end of a
/// response the server has sent whole.
struct Inflate<R> {
    inner: R,
    d: flate2::Decompress,
    buf: Vec<u8>,
    pos: usize,
}

impl<R: Read> Read for Inflate<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            let (i0, o0) = (self.d.total_in(), self.d.total_out());
            let status = self
                .d
                .decompress(&self.buf[self.pos..], out, flate2::FlushDecompress::None)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            self.pos += (self.d.total_in() - i0) as usize;
            let made = (self.d.total_out() - o0) as usize;
            if made > 0 || status == flate2::Status::StreamEnd {
                return Ok(made);
            }
            if self.pos < self.buf.len() && self.d.total_in() > i0 {
                continue;
            }
            self.buf.drain(..self.pos);
            self.pos = 0;
            let have = self.buf.len();
            self.buf.resize(have + 64 * 1024, 0);
            let n = self.inner.read(&mut self.buf[have..]);
            self.buf.truncate(have + *n.as_ref().unwrap_or(&0));
            if n? == 0 {
                return Ok(0);
            }
        }
    }
}

/// One IMAP connection.
pub struct Imap {
    /// The socket, for its settings.
    sock: TcpStream,
    /// Where commands go: the socket, or a DEFLATE encoder over it.
    w: Box<dyn Write + Send>,
    /// Where responses come from: the socket, or a DEFLATE decoder over it.
    r: BufReader<Box<dyn Read + Send>>,
    /// Octets read from the socket (compressed ones, once compressed).
    wire_in: Arc<AtomicU64>,
    next_tag: u64,
    /// Capabilities from the greeting, login or CAPABILITY (upper case).
    pub caps: Vec<String>,
    /// Reused response buffer.
    buf: Vec<u8>,
}

/// The outcome of a tagged command.
pub struct Done {
    /// Whether the server said OK.
    pub ok: bool,
    /// The status text after the tag.
    pub text: String,
}

impl Imap {
    /// Connect and read the greeting (which must be `* OK` or `* PREAUTH`).
    pub fn connect(addr: &str) -> Result<Imap> {
        let s = TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?;
        s.set_read_timeout(Some(Duration::from_secs(120)))?;
        s.set_nodelay(true)?;
        let wire_in = Arc::new(AtomicU64::new(0));
        let counted: Box<dyn Read + Send> = Box::new(Counted {
            s: s.try_clone()?,
            n: Arc::clone(&wire_in),
        });
        let r = BufReader::with_capacity(64 * 1024, counted);
        let mut c = Imap {
            w: Box::new(s.try_clone()?),
            sock: s,
            r,
            wire_in,
            next_tag: 0,
            caps: Vec::new(),
            buf: Vec::with_capacity(64 * 1024),
        };
        c.read()?;
        let greeting = c.buf.clone();
        match parse::classify(&greeting) {
            Kind::Untagged(t) if t.starts_with(b"OK") || t.starts_with(b"PREAUTH") => {
                if let Some(caps) = parse::capabilities(t) {
                    c.caps = caps;
                }
            }
            _ => bail!(
                "bad greeting: {}",
                String::from_utf8_lossy(&greeting).trim_end()
            ),
        }
        Ok(c)
    }

    /// Change the read timeout (default two minutes).
    pub fn set_timeout(&self, d: Duration) -> Result<()> {
        self.sock.set_read_timeout(Some(d))?;
        Ok(())
    }

    /// A fresh tag.
    pub fn tag(&mut self) -> String {
        self.next_tag += 1;
        format!("b{}", self.next_tag)
    }

    /// Write bytes as they are (compressed and sync-flushed once COMPRESS
    /// is on).
    pub fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.w.write_all(bytes)?;
        self.w.flush()?;
        Ok(())
    }

    /// Octets read from the socket so far: what came over the wire
    /// (compressed octets once COMPRESS is on).
    pub fn wire_in(&self) -> u64 {
        self.wire_in.load(Ordering::Relaxed)
    }

    /// `COMPRESS DEFLATE` (RFC 4978): from the tagged OK on, commands are
    /// compressed (a sync flush per command, zlib's default level, as
    /// clients do) and responses inflated.
    pub fn compress(&mut self) -> Result<()> {
        if !self.has("COMPRESS=DEFLATE") {
            bail!("the server does not advertise COMPRESS=DEFLATE");
        }
        self.run("COMPRESS DEFLATE", |_| {})?;
        // Anything buffered past the OK is compressed already.
        let early = self.r.buffer().to_vec();
        let empty: Box<dyn Read + Send> = Box::new(std::io::empty());
        let old = std::mem::replace(&mut self.r, BufReader::new(empty));
        let inflate: Box<dyn Read + Send> = Box::new(Inflate {
            inner: old.into_inner(),
            d: flate2::Decompress::new(false),
            buf: early,
            pos: 0,
        });
        self.r = BufReader::with_capacity(64 * 1024, inflate);
        let w = std::mem::replace(&mut self.w, Box::new(std::io::sink()));
        self.w = Box::new(flate2::write::DeflateEncoder::new(
            w,
            flate2::Compression::default(),
        ));
        Ok(())
    }

    /// Read one whole response.
    pub fn read(&mut self) -> Result<Kind<'_>> {
        parse::read_response(&mut self.r, &mut self.buf)?;
        Ok(parse::classify(&self.buf))
    }

    /// Send `tag cmd` and read responses until its tagged status, handing
    /// every untagged response (text after `* `) to `each`.
    pub fn run_with(&mut self, cmd: &str, mut each: impl FnMut(&[u8])) -> Result<Done> {
        let tag = self.tag();
        self.send(format!("{tag} {cmd}\r\n").as_bytes())?;
        loop {
            match self.read()? {
                Kind::Untagged(t) => each(t),
                Kind::Continue => bail!("unexpected continuation after {cmd}"),
                Kind::Tagged { tag: t, ok, text } => {
                    if t == tag.as_bytes() {
                        return Ok(Done {
                            ok,
                            text: String::from_utf8_lossy(text).into_owned(),
                        });
                    }
                }
            }
        }
    }

    /// Like [`Imap::run_with`], but an error unless the server says OK.
    pub fn run(&mut self, cmd: &str, each: impl FnMut(&[u8])) -> Result<()> {
        let d = self.run_with(cmd, each)?;
        if !d.ok {
            let verb = cmd.split(' ').next().unwrap_or(cmd);
            bail!("{verb} failed: {}", d.text);
        }
        Ok(())
    }

    /// LOGIN, then learn the capabilities (they may change after login).
    pub fn login(&mut self, user: &str, password: &str) -> Result<()> {
        let cmd = format!("LOGIN {} {}", parse::quote(user), parse::quote(password));
        let d = self.run_with(&cmd, |_| {})?;
        if !d.ok {
            bail!("LOGIN failed: {}", d.text);
        }
        match parse::capabilities(d.text.as_bytes()) {
            Some(c) => self.caps = c,
            None => {
                let mut caps = Vec::new();
                self.run("CAPABILITY", |t| {
                    if let Some(c) = parse::capabilities(t) {
                        caps = c;
                    }
                })?;
                self.caps = caps;
            }
        }
        Ok(())
    }

    /// Whether the server advertised `cap` (case-insensitive).
    pub fn has(&self, cap: &str) -> bool {
        self.caps.iter().any(|c| c.eq_ignore_ascii_case(cap))
    }

    /// SELECT (or EXAMINE when `read_only`) a mailbox; the EXISTS count.
    pub fn select(&mut self, mailbox: &str, read_only: bool) -> Result<u32> {
        let verb = if read_only { "EXAMINE" } else { "SELECT" };
        let mut n = 0;
        self.run(&format!("{verb} {}", parse::quote(mailbox)), |t| {
            if let Some(e) = parse::exists(t) {
                n = e;
            }
        })?;
        Ok(n)
    }

    /// Say LOGOUT and read the answer; errors are ignored (we are leaving).
    pub fn logout(mut self) {
        let _ = self.run_with("LOGOUT", |_| {});
    }
}

/// Connect, LOGIN and SELECT (or EXAMINE): a session ready for work.
pub fn open(addr: &str, user: &str, password: &str, mailbox: &str, ro: bool) -> Result<Imap> {
    let mut c = Imap::connect(addr)?;
    c.login(user, password)?;
    c.select(mailbox, ro)?;
    Ok(c)
}

/// [`open`] for a target: LOGIN, COMPRESS DEFLATE when `t.compress`, then
/// SELECT (or EXAMINE).
pub fn open_target(t: &super::Target, ro: bool) -> Result<Imap> {
    Ok(open_target_counted(t, ro)?.0)
}

/// [`open_target`], with the EXISTS count of the SELECT (or EXAMINE).
pub fn open_target_counted(t: &super::Target, ro: bool) -> Result<(Imap, u32)> {
    let mut c = Imap::connect(&t.addr)?;
    c.login(&t.user, &t.password)?;
    if t.compress {
        c.compress()?;
    }
    let n = c.select(&t.mailbox, ro)?;
    Ok((c, n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, Write};
    use std::net::TcpListener;

    /// A scripted server: answers each tagged command line with the canned
    /// responses for its verb, rewriting TAG to the client's tag.
    fn scripted(script: &'static [(&'static str, &'static str)]) -> String {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr").to_string();
        std::thread::spawn(move || {
            let (s, _) = l.accept().expect("accept");
            let mut w = s.try_clone().expect("clone");
            let mut r = std::io::BufReader::new(s);
            w.write_all(b"* OK [CAPABILITY IMAP4rev1 LITERAL+] hi\r\n")
                .expect("greet");
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                let mut parts = line.trim_end().splitn(3, ' ');
                let tag = parts.next().unwrap_or("").to_string();
                let verb = parts.next().unwrap_or("").to_ascii_uppercase();
                for (v, resp) in script {
                    if *v == verb {
                        w.write_all(resp.replace("TAG", &tag).as_bytes())
                            .expect("write");
                    }
                }
                line.clear();
            }
        });
        addr
    }

    #[test]
    fn login_select_and_capabilities() {
        let addr = scripted(&[
            ("LOGIN", "TAG OK [CAPABILITY IMAP4rev1 IDLE MOVE] in\r\n"),
            (
                "SELECT",
                "* FLAGS (\\Seen)\r\n* 42 EXISTS\r\n* 0 RECENT\r\nTAG OK [READ-WRITE] done\r\n",
            ),
            ("LOGOUT", "* BYE bye\r\nTAG OK out\r\n"),
        ]);
        let mut c = Imap::connect(&addr).expect("connect");
        assert!(c.has("literal+"));
        c.login("u@x", "p\"w").expect("login");
        assert!(c.has("IDLE") && !c.has("LITERAL+"));
        assert_eq!(c.select("INBOX", false).expect("select"), 42);
        c.logout();
    }

    #[test]
    fn refusal_is_an_error_naming_the_verb() {
        let addr = scripted(&[
            ("LOGIN", "TAG NO [AUTHENTICATIONFAILED] wrong\r\n"),
            ("EXAMINE", "TAG NO no such mailbox\r\n"),
        ]);
        let mut c = Imap::connect(&addr).expect("connect");
        let e = c.login("u", "bad").err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("LOGIN failed: NO [AUTHENTICATIONFAILED] wrong")
        );
        let e = c.select("Nope", true).err().map(|e| e.to_string());
        assert_eq!(e.as_deref(), Some("EXAMINE failed: NO no such mailbox"));
    }

    #[test]
    fn compress_deflates_both_ways_after_the_ok() {
        use std::io::BufRead;
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr").to_string();
        let server = std::thread::spawn(move || {
            let (s, _) = l.accept().expect("accept");
            let mut w = s.try_clone().expect("clone");
            let mut r = std::io::BufReader::new(s.try_clone().expect("clone"));
            w.write_all(b"* OK [CAPABILITY IMAP4rev1 COMPRESS=DEFLATE] hi\r\n")
                .expect("greet");
            let mut line = String::new();
            r.read_line(&mut line).expect("read");
            assert_eq!(line, "b1 COMPRESS DEFLATE\r\n");
            w.write_all(b"b1 OK DEFLATE active\r\n").expect("ok");
            assert!(r.buffer().is_empty());
            let mut zr = std::io::BufReader::new(flate2::read::DeflateDecoder::new(r));
            let mut zw = flate2::write::DeflateEncoder::new(w, flate2::Compression::fast());
            line.clear();
            zr.read_line(&mut line).expect("read compressed");
            assert_eq!(line, "b2 NOOP\r\n");
            let text = "x".repeat(10_000);
            zw.write_all(format!("* OK {text}\r\nb2 OK done\r\n").as_bytes())
                .expect("write");
            zw.flush().expect("flush");
        });
        let mut c = Imap::connect(&addr).expect("connect");
        c.compress().expect("compress");
        let before = c.wire_in();
        let mut got = Vec::new();
        c.run("NOOP", |t| got.push(t.len())).expect("noop");
        assert_eq!(got, vec![10_003], "the text after `* `");
        assert!(c.wire_in() - before < 1000, "{}", c.wire_in() - before);
        server.join().expect("server");
    }

    #[test]
    fn inflate_hands_over_what_it_holds_before_reading_more() {
        // A response sent whole, then a socket with nothing more (would
        // block): every line must come out first.
        struct Once(Vec<u8>);
        impl Read for Once {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0.is_empty() {
                    return Err(std::io::ErrorKind::WouldBlock.into());
                }
                let n = buf.len().min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0.drain(..n);
                Ok(n)
            }
        }
        let text: Vec<u8> = (0..5000u32)
            .flat_map(|i| format!("* {i} FETCH (UID {i} FLAGS ())\r\n").into_bytes())
            .collect();
        let mut c = flate2::Compress::new(flate2::Compression::fast(), false);
        let mut wire = Vec::with_capacity(text.len());
        c.compress_vec(&text, &mut wire, flate2::FlushCompress::Sync)
            .expect("deflate");
        let mut r = std::io::BufReader::new(Inflate {
            inner: Once(wire),
            d: flate2::Decompress::new(false),
            buf: Vec::new(),
            pos: 0,
        });
        let mut got = Vec::new();
        let mut line = Vec::new();
        while got.len() < text.len() {
            line.clear();
            std::io::BufRead::read_until(&mut r, b'\n', &mut line).expect("line");
            got.extend_from_slice(&line);
        }
        assert_eq!(got, text);
    }

    #[test]
    fn compress_needs_the_capability() {
        let addr = scripted(&[]);
        let mut c = Imap::connect(&addr).expect("connect");
        let e = c.compress().err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("the server does not advertise COMPRESS=DEFLATE")
        );
    }

    #[test]
    fn fetch_with_literal_reaches_the_callback_whole() {
        let addr = scripted(&[(
            "FETCH",
            "* 1 FETCH (UID 9 BODY[] {5}\r\nb1 OK) \r\n* 2 FETCH (UID 10)\r\nTAG OK fetched\r\n",
        )]);
        let mut c = Imap::connect(&addr).expect("connect");
        let mut got = Vec::new();
        c.run("FETCH 1:* (UID BODY.PEEK[])", |t| got.push(t.to_vec()))
            .expect("fetch");
        assert_eq!(
            got.len(),
            2,
            "the literal's tagged-looking text is not the end"
        );
        assert!(got[0].ends_with(b"b1 OK) "), "{:?}", got[0]);
    }
}
