//! A scripted SMTP server for the client tests: a loopback listener whose
//! thread plays one transcript per accepted connection and records what the
//! client sent. Every read has a timeout, so a test that goes wrong fails
//! instead of hanging.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use outbound::client::{ClientConfig, TlsMode};

/// How long the server waits for the client at any point.
const PATIENCE: Duration = Duration::from_secs(10);

/// One step of a transcript.
pub enum Step {
    /// Send these lines, each followed by CRLF, in one write.
    Send(Vec<String>),
    /// Read this many command lines from the client (recorded).
    Recv(usize),
    /// Read a DATA body up to and including the final ".\r\n" (recorded raw).
    Data,
    /// Read this many bytes of whatever comes, then go on.
    Drain(usize),
    /// The client must send nothing for this long (it waits for our reply).
    Quiet(Duration),
    /// TLS handshake as the server (after our "220" to STARTTLS).
    StartTls(Arc<rustls::ServerConfig>),
    /// Close the connection now.
    Close,
    /// Say nothing; wait until the client hangs up.
    Hang,
    /// Send these bytes again and again until the client stops reading.
    Flood(Vec<u8>),
    /// Send these bytes one at a time, `Duration` apart.
    Trickle(Vec<u8>, Duration),
}

/// Shorthand: `send(&["250 ok"])`.
pub fn send(lines: &[&str]) -> Step {
    Step::Send(lines.iter().map(|l| l.to_string()).collect())
}

/// A multi-line EHLO reply with these extensions.
pub fn ehlo(extensions: &[&str]) -> Step {
    let mut lines = vec![format!(
        "250{}mx.test Hello client.test",
        if extensions.is_empty() { ' ' } else { '-' }
    )];
    for (i, ext) in extensions.iter().enumerate() {
        let sep = if i + 1 == extensions.len() { ' ' } else { '-' };
        lines.push(format!("250{sep}{ext}"));
    }
    Step::Send(lines)
}

/// What the client sent on one connection.
#[derive(Debug, Default)]
pub struct Transcript {
    /// Command lines, without CRLF.
    pub lines: Vec<String>,
    /// Each DATA body as received, dot-stuffed, final dot included.
    pub data: Vec<Vec<u8>>,
    /// Where the script could not be followed.
    pub errors: Vec<String>,
}

pub struct Server {
    pub addr: SocketAddr,
    thread: JoinHandle<Vec<Transcript>>,
}

impl Server {
    /// Serve one script per connection, in order, then stop.
    pub fn start(scripts: Vec<Vec<Step>>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let thread = std::thread::spawn(move || {
            let mut transcripts = Vec::new();
            for script in scripts {
                let mut transcript = Transcript::default();
                match accept(&listener) {
                    Ok(tcp) => play(tcp, script, &mut transcript),
                    Err(e) => transcript.errors.push(format!("accept: {e}")),
                }
                transcripts.push(transcript);
            }
            transcripts
        });
        Server { addr, thread }
    }

    /// The transcripts, once the server has played every script.
    pub fn finish(self) -> Vec<Transcript> {
        self.thread.join().expect("server thread")
    }

    /// The one transcript of a one-connection server, which must have gone
    /// by the script.
    pub fn finish_one(self) -> Transcript {
        let mut transcripts = self.finish();
        assert_eq!(transcripts.len(), 1);
        let transcript = transcripts.remove(0);
        assert!(transcript.errors.is_empty(), "{:?}", transcript);
        transcript
    }
}

fn accept(listener: &TcpListener) -> io::Result<TcpStream> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match listener.accept() {
            Ok((tcp, _)) => {
                tcp.set_nonblocking(false)?;
                tcp.set_read_timeout(Some(PATIENCE))?;
                tcp.set_write_timeout(Some(PATIENCE))?;
                return Ok(tcp);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e),
        }
    }
}

enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
    Gone,
}

impl Conn {
    fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Conn::Plain(tcp) => Some(tcp),
            Conn::Tls(tls) => Some(&tls.sock),
            Conn::Gone => None,
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(tcp) => tcp.read(buf),
            Conn::Tls(tls) => tls.read(buf),
            Conn::Gone => Ok(0),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(tcp) => tcp.write(buf),
            Conn::Tls(tls) => tls.write(buf),
            Conn::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(tcp) => tcp.flush(),
            Conn::Tls(tls) => tls.flush(),
            Conn::Gone => Ok(()),
        }
    }
}

struct Player {
    conn: Conn,
    buf: Vec<u8>,
}

impl Player {
    fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 8192];
        let n = self.conn.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    fn line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(at) = self.buf.iter().position(|&b| b == b'\n') {
                return Ok(self.buf.drain(..=at).collect());
            }
            self.fill()?;
        }
    }
}

fn play(tcp: TcpStream, script: Vec<Step>, transcript: &mut Transcript) {
    let mut player = Player {
        conn: Conn::Plain(tcp),
        buf: Vec::new(),
    };
    for step in script {
        if let Err(e) = step_once(&mut player, step, transcript) {
            transcript.errors.push(e);
            return;
        }
    }
}

fn step_once(player: &mut Player, step: Step, transcript: &mut Transcript) -> Result<(), String> {
    match step {
        Step::Send(lines) => {
            let mut out = String::new();
            for line in lines {
                out.push_str(&line);
                out.push_str("\r\n");
            }
            player
                .conn
                .write_all(out.as_bytes())
                .and_then(|()| player.conn.flush())
                .map_err(|e| format!("send: {e}"))
        }
        Step::Recv(n) => {
            for _ in 0..n {
                let line = player.line().map_err(|e| format!("recv: {e}"))?;
                let text = String::from_utf8_lossy(&line);
                if !text.ends_with("\r\n") {
                    return Err(format!("line without CRLF: {text:?}"));
                }
                transcript
                    .lines
                    .push(text.trim_end_matches("\r\n").to_string());
            }
            Ok(())
        }
        Step::Data => {
            let mut data = Vec::new();
            loop {
                let line = player.line().map_err(|e| format!("data: {e}"))?;
                data.extend_from_slice(&line);
                if line == b".\r\n" {
                    break;
                }
            }
            transcript.data.push(data);
            Ok(())
        }
        Step::Drain(n) => {
            while player.buf.len() < n {
                player.fill().map_err(|e| format!("drain: {e}"))?;
            }
            player.buf.clear();
            Ok(())
        }
        Step::Quiet(time) => {
            if !player.buf.is_empty() {
                return Err("client sent before our reply".into());
            }
            let tcp = player.conn.tcp().ok_or("gone")?;
            tcp.set_read_timeout(Some(time))
                .map_err(|e| e.to_string())?;
            let result = player.fill();
            let tcp = player.conn.tcp().ok_or("gone")?;
            tcp.set_read_timeout(Some(PATIENCE))
                .map_err(|e| e.to_string())?;
            match result {
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    Ok(())
                }
                Ok(()) => Err(format!(
                    "client sent before our reply: {:?}",
                    String::from_utf8_lossy(&player.buf)
                )),
                Err(e) => Err(format!("quiet: {e}")),
            }
        }
        Step::StartTls(config) => {
            if !player.buf.is_empty() {
                return Err("client sent plaintext after STARTTLS".into());
            }
            let Conn::Plain(tcp) = std::mem::replace(&mut player.conn, Conn::Gone) else {
                return Err("TLS already on".into());
            };
            let conn = rustls::ServerConnection::new(config).map_err(|e| e.to_string())?;
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            while tls.conn.is_handshaking() {
                match tls.conn.complete_io(&mut tls.sock) {
                    Ok((0, 0)) => return Err("handshake: connection closed".into()),
                    Ok(_) => {}
                    Err(e) => return Err(format!("handshake: {e}")),
                }
            }
            player.conn = Conn::Tls(Box::new(tls));
            Ok(())
        }
        Step::Close => {
            if let Some(tcp) = player.conn.tcp() {
                let _ = tcp.shutdown(std::net::Shutdown::Both);
            }
            player.conn = Conn::Gone;
            Ok(())
        }
        Step::Hang => {
            // Until the client closes (EOF or error) or we run out of patience.
            loop {
                match player.fill() {
                    Ok(()) => player.buf.clear(),
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) =>
                    {
                        return Err("client never hung up".into())
                    }
                    Err(_) => return Ok(()),
                }
            }
        }
        Step::Flood(bytes) => {
            let deadline = Instant::now() + PATIENCE;
            while Instant::now() < deadline {
                if player.conn.write_all(&bytes).is_err() {
                    return Ok(());
                }
            }
            Err("client kept reading the flood".into())
        }
        Step::Trickle(bytes, gap) => {
            for byte in bytes {
                if player.conn.write_all(&[byte]).is_err() {
                    return Ok(());
                }
                std::thread::sleep(gap);
            }
            Ok(())
        }
    }
}

/// Client settings for tests: no TLS, short timeouts.
pub fn config() -> ClientConfig {
    let mut cfg = ClientConfig::new("client.test");
    cfg.tls = TlsMode::None;
    cfg.connect_timeout = Duration::from_secs(5);
    cfg.command_timeout = Duration::from_secs(5);
    cfg.data_timeout = Duration::from_secs(5);
    cfg
}

/// A self-signed certificate for `name`: (certificate PEM, server config).
pub fn tls_server(name: &str) -> (String, Arc<rustls::ServerConfig>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certified =
        rcgen::generate_simple_self_signed(vec![name.to_string()]).expect("self-signed cert");
    let cert_pem = certified.cert.pem();
    let key_pem = certified.signing_key.serialize_pem();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .expect("cert pem");
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key pem");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
    (cert_pem, Arc::new(config))
}
