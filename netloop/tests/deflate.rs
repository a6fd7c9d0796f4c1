//! The DEFLATE layer ([`Io::start_compress`], IMAP COMPRESS=DEFLATE) over
//! loopback, plain and inside TLS (STARTTLS and implicit), with a client
//! that compresses its side with flate2 ([`netloop::deflate::ClientStream`]).
//!
//! The test protocol: `hello` on connect; `COMPRESS` answers `ok compress`
//! and turns compression on (`no compress` if it is on already); `TLS`
//! answers `ok tls` and starts TLS (`no tls` when refused); `BIG n`
//! answers `n` lines of 100 octets at once; `QUIT` says `bye` and closes;
//! any other line is echoed as `> line`, while less than [`HIGH`] octets
//! of output are queued (back-pressure, as smtpd and imapd do); an
//! overlong line is answered `! too long` and the session reads on (so a
//! decompression bomb passes through the inflater whole); corrupt DEFLATE
//! input is answered `! corrupt <why>` before the loop closes.

use netloop::deflate::ClientStream;
use netloop::tls::{from_pem, self_signed};
use netloop::{
    Config, ConnInfo, Io, Line, Listener, Server, Service, Session, ShutdownHandle, Step,
};
use rustls::pki_types::ServerName;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

const HIGH: usize = 16 * 1024;
const MAX_INPUT: usize = 64 * 1024;
const MAX_LINE: usize = 1000;
const PATIENCE: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Peak {
    input: AtomicUsize,
    output: AtomicUsize,
}

struct Zed {
    peak: Arc<Peak>,
}

impl Zed {
    fn note(&self, io: &Io<'_, ()>) {
        self.peak.input.fetch_max(io.input.len(), Ordering::Relaxed);
        self.peak.output.fetch_max(io.out.len(), Ordering::Relaxed);
    }
}

impl Session for Zed {
    type Done = ();
    fn on_open(&mut self, io: &mut Io<'_, ()>) -> Step {
        io.out.push(b"hello\r\n");
        Step::Continue
    }
    fn on_input(&mut self, io: &mut Io<'_, ()>) -> Step {
        self.note(io);
        while io.out.len() < HIGH {
            match io.input.take_line(MAX_LINE) {
                Line::Incomplete => break,
                Line::TooLong => io.out.push(b"! too long\r\n"),
                Line::Complete(l, _) => match l.as_slice() {
                    b"QUIT" => {
                        io.out.push(b"bye\r\n");
                        return Step::Close;
                    }
                    b"COMPRESS" if io.compressed() => io.out.push(b"no compress\r\n"),
                    b"COMPRESS" => {
                        io.out.push(b"ok compress\r\n");
                        assert!(io.start_compress());
                        assert!(io.input.is_empty(), "pending input taken");
                        // Stop reading for this callback, as the API asks.
                        return Step::Continue;
                    }
                    b"TLS" if io.tls() == netloop::TlsState::Available => {
                        io.out.push(b"ok tls\r\n");
                        assert!(io.start_tls());
                        return Step::Continue;
                    }
                    b"TLS" => {
                        assert!(!io.start_tls());
                        io.out.push(b"no tls\r\n");
                    }
                    l if l.starts_with(b"BIG ") => {
                        let n: usize = String::from_utf8_lossy(&l[4..]).parse().unwrap();
                        for i in 0..n {
                            io.out
                                .push(format!("{i:>10} {}\r\n", "x".repeat(88)).as_bytes());
                        }
                        io.out.push(b"done\r\n");
                    }
                    l => {
                        io.out.push(b"> ");
                        io.out.push(l);
                        io.out.push(b"\r\n");
                    }
                },
            }
        }
        self.note(io);
        Step::Continue
    }
    fn on_done(&mut self, _: (), _: &mut Io<'_, ()>) -> Step {
        Step::Continue
    }
    fn on_timeout(&mut self, io: &mut Io<'_, ()>) {
        io.out.push(b"timeout\r\n");
    }
    fn on_shutdown(&mut self, io: &mut Io<'_, ()>) -> Step {
        io.out.push(b"shutdown\r\n");
        Step::Close
    }
    fn on_input_error(&mut self, io: &mut Io<'_, ()>, error: &str) -> Step {
        io.out.push(format!("! corrupt {error}\r\n").as_bytes());
        Step::Close
    }
}

struct ZedService {
    peak: Arc<Peak>,
}

impl Service for ZedService {
    type Session = Zed;
    fn open(&mut self, _: &ConnInfo) -> Zed {
        Zed {
            peak: Arc::clone(&self.peak),
        }
    }
    fn busy_reply(&self) -> Vec<u8> {
        b"busy\r\n".to_vec()
    }
}

struct Fixture {
    plain: SocketAddr,
    implicit: SocketAddr,
    cert_pem: String,
    peak: Arc<Peak>,
    stop: ShutdownHandle,
    join: Option<thread::JoinHandle<()>>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.stop.shutdown();
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

fn start() -> Fixture {
    let cert = self_signed(&["localhost".into(), "127.0.0.1".into()]).unwrap();
    let config = Config {
        max_input: MAX_INPUT,
        tls: Some(from_pem(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes()).unwrap()),
        ..Config::default()
    };
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let listen = [
        Listener {
            addr: any,
            implicit_tls: false,
        },
        Listener {
            addr: any,
            implicit_tls: true,
        },
    ];
    let peak = Arc::new(Peak::default());
    let service = ZedService {
        peak: Arc::clone(&peak),
    };
    let server = Server::bind_listeners(&listen, service, config).unwrap();
    let addrs = server.local_addrs();
    let stop = server.shutdown_handle();
    let join = thread::spawn(move || server.run().unwrap());
    Fixture {
        plain: addrs[0],
        implicit: addrs[1],
        cert_pem: cert.cert_pem,
        peak,
        stop,
        join: Some(join),
    }
}

fn tcp(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s
}

/// One line read byte by byte, so that nothing after it is buffered.
fn raw_line(s: &mut impl Read) -> String {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while !line.ends_with(b"\n") {
        assert_eq!(s.read(&mut b).unwrap(), 1, "closed after {line:?}");
        line.push(b[0]);
    }
    String::from_utf8(line).unwrap()
}

type Rustls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn tls_over(f: &Fixture, tcp: TcpStream) -> Rustls {
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn =
        rustls::ClientConnection::new(netloop::testing::tls_client_config(&f.cert_pem), name)
            .unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

/// Send `COMPRESS` (plus `extra` raw bytes in the same write), expect the
/// uncompressed `ok compress`, and wrap the stream.
fn compress<S: Read + Write>(mut s: S, extra: &[u8]) -> BufReader<ClientStream<S>> {
    let mut first = b"COMPRESS\r\n".to_vec();
    first.extend_from_slice(extra);
    s.write_all(&first).unwrap();
    s.flush().unwrap();
    assert_eq!(raw_line(&mut s), "ok compress\r\n");
    BufReader::new(ClientStream::new(s, &[], 6))
}

fn send<S: Read + Write>(z: &mut BufReader<ClientStream<S>>, text: &str) {
    z.get_mut().write_all(text.as_bytes()).unwrap();
    z.get_mut().flush().unwrap();
}

fn line<R: BufRead>(r: &mut R) -> String {
    let mut l = String::new();
    if let Err(e) = r.read_line(&mut l) {
        panic!("no answer within {PATIENCE:?} ({e})");
    }
    l
}

/// The common dialogue once compressed: echo, COMPRESS refused, TLS
/// refused, a large answer, QUIT.
fn converse<S: Read + Write>(z: &mut BufReader<ClientStream<S>>) {
    send(z, "one\r\ntwo\r\n");
    assert_eq!(line(z), "> one\r\n");
    assert_eq!(line(z), "> two\r\n");
    send(z, "COMPRESS\r\n");
    assert_eq!(line(z), "no compress\r\n");
    send(z, "TLS\r\n");
    assert_eq!(line(z), "no tls\r\n");
    // 4 MiB in one burst: compressed in chunks as the socket takes them.
    send(z, "BIG 40000\r\n");
    for i in 0..40000 {
        assert_eq!(line(z), format!("{i:>10} {}\r\n", "x".repeat(88)));
    }
    assert_eq!(line(z), "done\r\n");
    let (plain_in, wire_in, _, _) = z.get_ref().totals();
    assert!(
        wire_in * 10 < plain_in,
        "the answers were compressed: {wire_in} octets for {plain_in}"
    );
    send(z, "QUIT\r\n");
    assert_eq!(line(z), "bye\r\n");
    assert_eq!(line(z), "", "closed after bye");
}

#[test]
fn plain_connection_compresses_both_ways() {
    let f = start();
    let mut s = tcp(f.plain);
    assert_eq!(raw_line(&mut s), "hello\r\n");
    let mut z = compress(s, b"");
    converse(&mut z);
}

#[test]
fn compression_inside_starttls() {
    let f = start();
    let mut s = tcp(f.plain);
    assert_eq!(raw_line(&mut s), "hello\r\n");
    s.write_all(b"TLS\r\n").unwrap();
    assert_eq!(raw_line(&mut s), "ok tls\r\n");
    let mut z = compress(tls_over(&f, s), b"");
    converse(&mut z);
}

#[test]
fn compression_inside_implicit_tls() {
    let f = start();
    let mut t = tls_over(&f, tcp(f.implicit));
    assert_eq!(raw_line(&mut t), "hello\r\n");
    let mut z = compress(t, b"");
    converse(&mut z);
}

/// A client that sends its first compressed command in the same write
/// (and so, on TLS, the same record) as COMPRESS: those bytes were read
/// as plaintext before compression began and must be inflated, not lost
/// or taken as plaintext.
#[test]
fn compressed_bytes_in_the_same_read_as_the_command_are_inflated() {
    let f = start();
    let mut early = ClientStream::new(Vec::new(), &[], 6);
    early.write_all(b"early\r\n").unwrap();
    let early = early.get_ref().clone();
    for tls in [false, true] {
        let mut z = if tls {
            let mut t = tls_over(&f, tcp(f.implicit));
            assert_eq!(raw_line(&mut t), "hello\r\n");
            let z = compress(t, &early);
            Box::new(z) as Box<dyn BufRead>
        } else {
            let mut s = tcp(f.plain);
            assert_eq!(raw_line(&mut s), "hello\r\n");
            Box::new(compress(s, &early))
        };
        assert_eq!(line(&mut z), "> early\r\n", "tls: {tls}");
    }
}

#[test]
fn starttls_is_refused_once_compressed() {
    let f = start();
    let mut s = tcp(f.plain);
    assert_eq!(raw_line(&mut s), "hello\r\n");
    let mut z = compress(s, b"");
    send(&mut z, "TLS\r\nafter\r\n");
    assert_eq!(line(&mut z), "no tls\r\n");
    assert_eq!(line(&mut z), "> after\r\n");
}

#[test]
fn a_large_compressed_batch_written_before_reading_is_answered_completely() {
    // 1 MiB of commands (about 2 KiB compressed) arrive at once; the
    // session holds input back while output piles up; the inflater must
    // resume when it takes input again, with the socket long drained.
    let f = start();
    let mut s = tcp(f.plain);
    assert_eq!(raw_line(&mut s), "hello\r\n");
    let mut z = compress(s.try_clone().unwrap(), b"");
    let n = (1 << 20) / 34;
    let writer = thread::spawn(move || {
        let mut w = ClientStream::new(s, &[], 6);
        let batch = "0123456789abcdef0123456789abcdef\r\n".repeat(n);
        w.write_all(batch.as_bytes()).unwrap();
        w.write_all(b"QUIT\r\n").unwrap();
    });
    for i in 0..n {
        assert_eq!(
            line(&mut z),
            "> 0123456789abcdef0123456789abcdef\r\n",
            "answer {i}"
        );
    }
    assert_eq!(line(&mut z), "bye\r\n");
    writer.join().unwrap();
    assert!(f.peak.input.load(Ordering::Relaxed) <= MAX_INPUT);
    assert!(f.peak.output.load(Ordering::Relaxed) < HIGH + 1024);
}

/// 64 MiB of one byte with no line end, in 64 KiB of DEFLATE: inflated a
/// buffer at a time as the session discards it, never all at once.
#[test]
fn a_decompression_bomb_is_inflated_only_as_fast_as_it_is_consumed() {
    let f = start();
    let mut s = tcp(f.plain);
    assert_eq!(raw_line(&mut s), "hello\r\n");
    let mut z = compress(s.try_clone().unwrap(), b"");
    let writer = thread::spawn(move || {
        let bomb = bomb(64);
        assert!(bomb.len() < 128 * 1024, "{}", bomb.len());
        s.write_all(&bomb).unwrap();
        // The rest of the stream, after the bomb's own sync points.
        let mut w = ClientStream::new(s, &[], 6);
        w.write_all(b"\r\nafter\r\nQUIT\r\n").unwrap();
    });
    assert_eq!(line(&mut z), "! too long\r\n");
    assert_eq!(line(&mut z), "> after\r\n");
    assert_eq!(line(&mut z), "bye\r\n");
    writer.join().unwrap();
    let peak = f.peak.input.load(Ordering::Relaxed);
    assert!(peak <= MAX_INPUT, "input buffer peaked at {peak}");
}

/// Raw DEFLATE for `mib` MiB of `A`: one 1 MiB block (full flush: byte
/// aligned, no references back), repeated.
fn bomb(mib: usize) -> Vec<u8> {
    let mut c = flate2::Compress::new(flate2::Compression::best(), false);
    let mut block = Vec::with_capacity(64 * 1024);
    c.compress_vec(
        &vec![b'A'; 1 << 20],
        &mut block,
        flate2::FlushCompress::Full,
    )
    .unwrap();
    assert_eq!(c.total_in(), 1 << 20);
    block.repeat(mib)
}

#[test]
fn corrupt_deflate_input_gets_a_goodbye_and_the_server_goes_on() {
    let f = start();
    let mut s = tcp(f.plain);
    assert_eq!(raw_line(&mut s), "hello\r\n");
    let mut z = compress(s.try_clone().unwrap(), b"");
    send(&mut z, "fine\r\n");
    assert_eq!(line(&mut z), "> fine\r\n");
    // A block header of the reserved type 3.
    s.write_all(&[0xff; 32]).unwrap();
    let bye = line(&mut z);
    assert!(
        bye.starts_with("! corrupt invalid DEFLATE input"),
        "{bye:?}"
    );
    assert_eq!(line(&mut z), "", "closed after the goodbye");
    // Others are served as before.
    let mut s = tcp(f.plain);
    assert_eq!(raw_line(&mut s), "hello\r\n");
    let mut z = compress(s, b"");
    send(&mut z, "still here\r\n");
    assert_eq!(line(&mut z), "> still here\r\n");
}

#[test]
fn a_client_that_closes_mid_stream_is_closed_quietly() {
    let f = start();
    let mut s = tcp(f.plain);
    assert_eq!(raw_line(&mut s), "hello\r\n");
    let mut z = compress(s.try_clone().unwrap(), b"");
    send(&mut z, "one\r\n");
    assert_eq!(line(&mut z), "> one\r\n");
    // Half a line, then the end of the stream: the session sees its EOF.
    send(&mut z, "half");
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(line(&mut z), "");
}
