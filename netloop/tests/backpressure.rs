//! netloop over loopback with a session that, like smtpd and imapd, stops
//! taking commands while too much output is queued (output back-pressure):
//! a client that writes a large pipelined batch before reading must get
//! every answer (plain and TLS), and a client that never reads must not
//! make the server buffer without bound.
//!
//! The test protocol: each line is answered `> line`, but only while less
//! than [`HIGH`] bytes of output are queued; `QUIT` says bye and closes.

use netloop::tls::{from_pem, self_signed};
use netloop::{
    Config, ConnInfo, Io, Line, Listener, Server, Service, Session, ShutdownHandle, Step,
};
use rustls::pki_types::ServerName;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Output queued past which the session holds input back.
const HIGH: usize = 16 * 1024;
/// The loop's input buffer per connection.
const MAX_INPUT: usize = 64 * 1024;
/// Longest line the session frames (longer ones are refused).
const MAX_LINE: usize = 64;
/// How long a test waits for the next answer before it fails (instead of
/// hanging until the server's idle timeout).
const PATIENCE: Duration = Duration::from_secs(20);

const LINE: &[u8] = b"0123456789abcdef0123456789abcdef\r\n";
const ANSWER: &str = "> 0123456789abcdef0123456789abcdef\r\n";

/// The most the server ever held for one connection, seen from the session.
#[derive(Default)]
struct Peak {
    input: AtomicUsize,
    output: AtomicUsize,
}

impl Peak {
    fn note(&self, io: &Io<'_, ()>) {
        self.input.fetch_max(io.input.len(), Ordering::Relaxed);
        self.output.fetch_max(io.out.len(), Ordering::Relaxed);
    }
}

struct Capped {
    peak: Arc<Peak>,
}

impl Session for Capped {
    type Done = ();
    fn on_open(&mut self, io: &mut Io<'_, ()>) -> Step {
        io.out.push(b"hello\r\n");
        Step::Continue
    }
    fn on_input(&mut self, io: &mut Io<'_, ()>) -> Step {
        self.peak.note(io);
        while io.out.len() < HIGH {
            match io.input.take_line(MAX_LINE) {
                Line::Incomplete => break,
                Line::TooLong => io.out.push(b"! too long\r\n"),
                Line::Complete(l, _) => {
                    if l == b"QUIT" {
                        io.out.push(b"bye\r\n");
                        self.peak.note(io);
                        return Step::Close;
                    }
                    io.out.push(b"> ");
                    io.out.push(&l);
                    io.out.push(b"\r\n");
                }
            }
        }
        self.peak.note(io);
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
}

struct CappedService {
    peak: Arc<Peak>,
}

impl Service for CappedService {
    type Session = Capped;
    fn open(&mut self, _: &ConnInfo) -> Capped {
        Capped {
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
    let service = CappedService {
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

fn connect(addr: SocketAddr) -> (TcpStream, BufReader<TcpStream>) {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let r = BufReader::new(s.try_clone().unwrap());
    (s, r)
}

fn line(r: &mut BufReader<TcpStream>) -> String {
    let mut l = String::new();
    if let Err(e) = r.read_line(&mut l) {
        panic!("no answer within {PATIENCE:?} ({e}): the server stopped answering");
    }
    l
}

/// Read `> …` answers until `bye`; returns how many.
fn count_answers_until_bye(r: &mut BufReader<TcpStream>) -> usize {
    let mut n = 0;
    loop {
        let l = line(r);
        if l == "bye\r\n" {
            return n;
        }
        assert_eq!(l, ANSWER, "after {n} answers");
        n += 1;
    }
}

#[test]
fn a_pipelined_batch_written_before_reading_is_answered_completely() {
    // 1 MiB of lines, written before the first answer is read: the session
    // holds input back while output piles up, the loop stops reading when
    // its input buffer is full, and must read again once output drains.
    let f = start();
    let (mut s, mut r) = connect(f.plain);
    assert_eq!(line(&mut r), "hello\r\n");
    let n = (1 << 20) / LINE.len();
    let mut batch = LINE.repeat(n);
    batch.extend_from_slice(b"QUIT\r\n");
    let writer = thread::spawn(move || {
        s.write_all(&batch).unwrap();
        s
    });
    let t0 = Instant::now();
    assert_eq!(count_answers_until_bye(&mut r), n);
    assert_eq!(line(&mut r), "", "closed after bye");
    writer.join().unwrap();
    assert!(t0.elapsed() < PATIENCE, "took {:?}", t0.elapsed());
}

#[test]
fn a_client_that_never_reads_is_held_back_and_later_answered_completely() {
    let f = start();
    let (mut s, mut r) = connect(f.plain);
    assert_eq!(line(&mut r), "hello\r\n");
    s.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    // Write and read nothing until our writes block. Kernel socket buffers
    // on loopback hold a few MiB; a server that kept reading (buffering
    // the input or the answers) would take all 64 MiB.
    let chunk = LINE.repeat(1000);
    let cap = 64 << 20;
    let mut sent = 0usize;
    let blocked = loop {
        if sent >= cap {
            break false;
        }
        // Go on where a short write stopped: the stream stays whole lines.
        match s.write(&chunk[sent % chunk.len()..]) {
            Ok(n) => sent += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break true
            }
            Err(e) => panic!("write failed after {sent} bytes: {e}"),
        }
    };
    assert!(blocked, "the server kept reading: {sent} bytes taken");
    let held_in = f.peak.input.load(Ordering::Relaxed);
    let held_out = f.peak.output.load(Ordering::Relaxed);
    assert!(held_in <= MAX_INPUT, "{held_in} bytes of input buffered");
    assert!(
        held_out < HIGH + MAX_LINE + 8,
        "{held_out} bytes of output queued"
    );
    // Finish the line cut by the blocked write, then QUIT; now read: every
    // line is answered.
    let partial = sent % LINE.len();
    let lines = sent.div_ceil(LINE.len());
    let writer = thread::spawn(move || {
        s.set_write_timeout(None).unwrap();
        if partial > 0 {
            s.write_all(&LINE[partial..]).unwrap();
        }
        s.write_all(b"QUIT\r\n").unwrap();
        s
    });
    assert_eq!(count_answers_until_bye(&mut r), lines);
    writer.join().unwrap();
}

#[test]
fn a_pipelined_batch_over_tls_is_answered_completely() {
    // The same 1 MiB batch through rustls: one thread drives a
    // non-blocking client that writes whenever the socket takes bytes and
    // reads whatever arrives.
    let f = start();
    let n = (1 << 20) / LINE.len();
    let mut batch = LINE.repeat(n);
    batch.extend_from_slice(b"QUIT\r\n");
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls =
        rustls::ClientConnection::new(netloop::testing::tls_client_config(&f.cert_pem), name)
            .unwrap();
    tls.set_buffer_limit(None);
    tls.writer().write_all(&batch).unwrap();
    let mut tcp = TcpStream::connect(f.implicit).unwrap();
    tcp.set_nonblocking(true).unwrap();

    let mut text = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut last_progress = Instant::now();
    let mut eof = false;
    while !eof {
        let mut progressed = false;
        while tls.wants_write() {
            match tls.write_tls(&mut tcp) {
                Ok(_) => progressed = true,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("write: {e}"),
            }
        }
        match tls.read_tls(&mut tcp) {
            Ok(0) => eof = true,
            Ok(_) => {
                progressed = true;
                tls.process_new_packets().unwrap();
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("read: {e}"),
        }
        loop {
            match tls.reader().read(&mut buf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(k) => text.extend_from_slice(&buf[..k]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("plaintext: {e}"),
            }
        }
        if text.ends_with(b"bye\r\n") {
            break;
        }
        if progressed {
            last_progress = Instant::now();
        } else {
            let answered = text.split(|&b| b == b'\n').count().saturating_sub(2);
            assert!(
                last_progress.elapsed() < PATIENCE,
                "stalled after {answered} of {n} answers"
            );
            thread::sleep(Duration::from_millis(1));
        }
    }
    let text = String::from_utf8(text).unwrap();
    let mut lines = text.split_inclusive("\r\n");
    assert_eq!(lines.next(), Some("hello\r\n"));
    let mut answered = 0;
    for l in lines {
        if l == "bye\r\n" {
            break;
        }
        assert_eq!(l, ANSWER, "after {answered} answers");
        answered += 1;
    }
    assert_eq!(answered, n);
}
