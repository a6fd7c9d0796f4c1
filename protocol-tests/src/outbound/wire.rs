//! Sockets for the outbound section: a TCP stream that can turn into TLS
//! (STARTTLS, RFC 3207) on either side, read by lines with a deadline on
//! every read, and the two TLS configurations the section uses: the
//! scripted remote server's self-signed certificate (made at start with
//! rcgen) and a submission client that accepts any certificate (the MTA
//! under test is usually run with a self-signed one).

use crate::conn::ReadError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A connection, plain or TLS (client or server side).
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS, we are the client (submission).
    Client(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
    /// TLS, we are the server (the scripted remote).
    Server(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl Stream {
    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Client(s) => &s.sock,
            Stream::Server(s) => &s.sock,
        }
    }

    /// True once TLS is in use.
    pub fn is_tls(&self) -> bool {
        !matches!(self, Stream::Plain(_))
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Client(s) => s.read(buf),
            Stream::Server(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Client(s) => s.write(buf),
            Stream::Server(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Client(s) => s.flush(),
            Stream::Server(s) => s.flush(),
        }
    }
}

/// A [`Stream`] read by lines: every read has a deadline.
pub struct Wire {
    stream: Stream,
    buf: Vec<u8>,
    eof: bool,
}

/// Longest line either side accepts (a runaway peer cannot eat memory).
pub const MAX_LINE: usize = 64 * 1024;

fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn closed(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::BrokenPipe
    )
}

impl Wire {
    /// Wraps a connected socket (writes time out after 30 s).
    ///
    /// # Errors
    /// Socket options that cannot be set.
    pub fn new(tcp: TcpStream) -> io::Result<Wire> {
        tcp.set_nodelay(true)?;
        tcp.set_write_timeout(Some(Duration::from_secs(30)))?;
        Ok(Wire {
            stream: Stream::Plain(tcp),
            buf: Vec::new(),
            eof: false,
        })
    }

    /// True once TLS is in use.
    pub fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }

    /// Bytes read but not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Sends bytes.
    ///
    /// # Errors
    /// Write failures.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Closes both directions.
    pub fn close(&mut self) {
        let _ = self.stream.tcp().shutdown(Shutdown::Both);
    }

    fn fill(&mut self, deadline: Instant) -> Result<(), ReadError> {
        if self.eof {
            return Err(ReadError::Closed(self.buf.clone()));
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(ReadError::Timeout(self.buf.clone()));
        }
        self.stream
            .tcp()
            .set_read_timeout(Some((deadline - now).max(Duration::from_millis(1))))
            .map_err(ReadError::Io)?;
        let mut chunk = [0u8; 16384];
        match self.stream.read(&mut chunk) {
            Ok(0) => {
                self.eof = true;
                Err(ReadError::Closed(self.buf.clone()))
            }
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) if timed_out(&e) => Err(ReadError::Timeout(self.buf.clone())),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(e) if closed(&e) => {
                self.eof = true;
                Err(ReadError::Closed(self.buf.clone()))
            }
            Err(e) => Err(ReadError::Io(e)),
        }
    }

    /// Reads one line, its LF (and any CR before it) included, before
    /// `deadline`. A timeout keeps the partial line for the next call.
    ///
    /// # Errors
    /// See [`ReadError`]; [`ReadError::TooLong`] past [`MAX_LINE`].
    pub fn read_raw_line(&mut self, deadline: Instant) -> Result<Vec<u8>, ReadError> {
        let mut scanned = 0;
        loop {
            if let Some(pos) = self.buf[scanned..].iter().position(|&b| b == b'\n') {
                return Ok(self.buf.drain(..=scanned + pos).collect());
            }
            scanned = self.buf.len();
            if scanned > MAX_LINE {
                return Err(ReadError::TooLong);
            }
            self.fill(deadline)?;
        }
    }

    /// Reads one line without its CRLF (or LF).
    ///
    /// # Errors
    /// As [`Wire::read_raw_line`].
    pub fn read_line(&mut self, deadline: Instant) -> Result<Vec<u8>, ReadError> {
        let mut l = self.read_raw_line(deadline)?;
        l.pop();
        if l.last() == Some(&b'\r') {
            l.pop();
        }
        Ok(l)
    }

    /// Reads one SMTP reply (every line of a multi-line one): the code
    /// and the lines' texts.
    ///
    /// # Errors
    /// A read failure, or a line that is not a reply line.
    pub fn read_reply(&mut self, deadline: Instant) -> Result<Reply, String> {
        let mut lines = Vec::new();
        loop {
            let l = self.read_line(deadline).map_err(|e| e.to_string())?;
            let text = String::from_utf8_lossy(&l).into_owned();
            let code = text
                .get(..3)
                .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|c| c.parse::<u16>().ok())
                .ok_or_else(|| format!("not an SMTP reply line: {}", crate::conn::show(&l)))?;
            let more = text.as_bytes().get(3) == Some(&b'-');
            lines.push(text);
            if !more {
                return Ok(Reply { code, lines });
            }
            if lines.len() > 1000 {
                return Err("reply longer than 1000 lines".into());
            }
        }
    }

    fn handshake(&mut self, deadline: Instant) -> io::Result<()> {
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "TLS handshake did not finish in time",
                ));
            }
            let tcp_timeout = Some((deadline - now).max(Duration::from_millis(1)));
            let res = match &mut self.stream {
                Stream::Plain(_) => return Ok(()),
                Stream::Client(s) => {
                    if !s.conn.is_handshaking() {
                        return Ok(());
                    }
                    s.sock.set_read_timeout(tcp_timeout)?;
                    s.conn.complete_io(&mut s.sock)
                }
                Stream::Server(s) => {
                    if !s.conn.is_handshaking() {
                        return Ok(());
                    }
                    s.sock.set_read_timeout(tcp_timeout)?;
                    s.conn.complete_io(&mut s.sock)
                }
            };
            // rustls reports a close during the handshake as UnexpectedEof.
            match res {
                Ok(_) => {}
                Err(e) if timed_out(&e) || e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Starts TLS as the client (after `220` to STARTTLS). Bytes the
    /// server sent after its `220` are discarded (RFC 3207 §4.2: nothing
    /// from before the handshake counts).
    ///
    /// # Errors
    /// A plain-text wire already in TLS, or a failed handshake.
    pub fn start_tls_client(
        &mut self,
        config: Arc<rustls::ClientConfig>,
        name: &str,
        deadline: Instant,
    ) -> io::Result<()> {
        let server_name = ServerName::try_from(name.to_string())
            .map_err(|e| io::Error::other(format!("TLS server name {name}: {e}")))?;
        let conn = rustls::ClientConnection::new(config, server_name)
            .map_err(|e| io::Error::other(e.to_string()))?;
        let tcp = self.take_plain()?;
        self.stream = Stream::Client(Box::new(rustls::StreamOwned::new(conn, tcp)));
        self.handshake(deadline)
    }

    /// Starts TLS as the server (after sending `220` to STARTTLS). Bytes
    /// the client pipelined after STARTTLS are discarded, as RFC 3207 §4.2
    /// requires (the STARTTLS command injection of CVE-2011-0411).
    ///
    /// # Errors
    /// A wire already in TLS, or a failed handshake.
    pub fn start_tls_server(
        &mut self,
        config: Arc<rustls::ServerConfig>,
        deadline: Instant,
    ) -> io::Result<()> {
        let conn =
            rustls::ServerConnection::new(config).map_err(|e| io::Error::other(e.to_string()))?;
        let tcp = self.take_plain()?;
        self.stream = Stream::Server(Box::new(rustls::StreamOwned::new(conn, tcp)));
        self.handshake(deadline)
    }

    fn take_plain(&mut self) -> io::Result<TcpStream> {
        self.buf.clear();
        let tcp = match &self.stream {
            Stream::Plain(s) => s.try_clone()?,
            _ => {
                return Err(io::Error::other("TLS is already in use"));
            }
        };
        Ok(tcp)
    }
}

/// One SMTP reply.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The three-digit code.
    pub code: u16,
    /// Every line, as received.
    pub lines: Vec<String>,
}

impl Reply {
    /// The lines joined for a report.
    pub fn text(&self) -> String {
        self.lines.join(" / ")
    }

    /// The EHLO keywords (first word of every line but the first),
    /// upper-cased.
    pub fn keywords(&self) -> Vec<String> {
        self.lines
            .iter()
            .skip(1)
            .filter_map(|l| l.get(4..))
            .filter_map(|t| t.split_whitespace().next())
            .map(str::to_ascii_uppercase)
            .collect()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The scripted server's TLS: a self-signed certificate for `names`,
/// made now.
///
/// # Errors
/// A name rcgen cannot put in a certificate, or rustls refusing the key.
pub fn server_config(names: &[String]) -> Result<Arc<rustls::ServerConfig>, String> {
    let certified = rcgen::generate_simple_self_signed(names.to_vec())
        .map_err(|e| format!("cannot make a certificate: {e}"))?;
    let cert: CertificateDer<'static> = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .map_err(|e| format!("TLS key: {e}"))?;
    Ok(Arc::new(config))
}

/// The submission client's TLS: any certificate is accepted (the MTA under
/// test commonly runs with a self-signed one); the handshake signatures
/// are still checked.
///
/// # Errors
/// rustls refusing the protocol versions (not expected).
pub fn client_config() -> Result<Arc<rustls::ClientConfig>, String> {
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider())))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn starttls_both_ways_and_replies() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let cfg = server_config(&["mx.example.test".into()]).unwrap();
        let t = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut w = Wire::new(s).unwrap();
            let dl = Instant::now() + Duration::from_secs(5);
            w.send(b"220-hi\r\n220 there\r\n").unwrap();
            assert_eq!(w.read_line(dl).unwrap(), b"STARTTLS");
            w.send(b"220 go\r\n").unwrap();
            w.start_tls_server(cfg, dl).unwrap();
            assert!(w.is_tls());
            assert_eq!(w.read_raw_line(dl).unwrap(), b"EHLO x\r\n");
            w.send(b"250 ok\r\n").unwrap();
        });
        let mut c = Wire::new(TcpStream::connect(addr).unwrap()).unwrap();
        let dl = Instant::now() + Duration::from_secs(5);
        let r = c.read_reply(dl).unwrap();
        assert_eq!((r.code, r.lines.len()), (220, 2));
        c.send(b"STARTTLS\r\n").unwrap();
        assert_eq!(c.read_reply(dl).unwrap().code, 220);
        c.start_tls_client(client_config().unwrap(), "mx.example.test", dl)
            .unwrap();
        c.send(b"EHLO x\r\n").unwrap();
        assert_eq!(c.read_reply(dl).unwrap().code, 250);
        t.join().unwrap();
        let short = Instant::now() + Duration::from_millis(50);
        assert!(c.read_line(short).is_err());
    }

    #[test]
    fn ehlo_keywords() {
        let r = Reply {
            code: 250,
            lines: vec!["250-mx".into(), "250-dsn".into(), "250 AUTH PLAIN".into()],
        };
        assert_eq!(r.keywords(), ["DSN", "AUTH"]);
    }
}
