//! netloop over loopback with TLS and the abuse limits: implicit TLS,
//! STARTTLS with pre-handshake injection discarded (RFC 3207 §4.2, the
//! CVE-2011-0411 class), large output through rustls, a handshake failure
//! closing only that connection, `Io::complete_after` timers, and the
//! per-command deadline that cuts off a client trickling bytes (slow loris).
//! The test protocol: lines echoed as `> line`; `STARTTLS` answers `go` and
//! switches; `TLS?` answers whether TLS is on; `LATER ms x` answers `later x`
//! after ms milliseconds; `BIG n` sends n × 64 KiB then `end`.

use netloop::tls::{from_pem, self_signed};
use netloop::{
    Config, ConnInfo, Io, Line, Listener, Server, Service, Session, ShutdownHandle, Step,
};
use rustls::pki_types::ServerName;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

struct Echo;

impl Session for Echo {
    type Done = String;
    fn on_open(&mut self, io: &mut Io<'_, String>) -> Step {
        io.out.push(b"hello\r\n");
        Step::Continue
    }
    fn on_input(&mut self, io: &mut Io<'_, String>) -> Step {
        loop {
            match io.input.take_line(128) {
                Line::Incomplete => return Step::Continue,
                Line::TooLong => io.out.push(b"! too long\r\n"),
                Line::Complete(l, _) => {
                    let l = String::from_utf8_lossy(&l).to_string();
                    if l == "STARTTLS" {
                        io.out.push(b"go\r\n");
                        if !io.start_tls() {
                            io.out.push(b"no tls\r\n");
                        }
                        return Step::Continue;
                    } else if l == "TLS?" {
                        let t = if io.is_tls() {
                            "tls on\r\n"
                        } else {
                            "tls off\r\n"
                        };
                        io.out.push(t.as_bytes());
                    } else if let Some(rest) = l.strip_prefix("LATER ") {
                        let (ms, x) = rest.split_once(' ').unwrap_or((rest, ""));
                        let ms = ms.parse().unwrap_or(0);
                        io.complete_after(Duration::from_millis(ms), x.to_string());
                    } else if let Some(n) = l.strip_prefix("BIG ") {
                        for _ in 0..n.parse().unwrap_or(1) {
                            io.out.push(&[b'x'; 65536]);
                        }
                        io.out.push(b"\r\nend\r\n");
                    } else {
                        io.out.push(format!("> {l}\r\n").as_bytes());
                    }
                }
            }
        }
    }
    fn on_done(&mut self, done: String, io: &mut Io<'_, String>) -> Step {
        io.out.push(format!("later {done}\r\n").as_bytes());
        Step::Continue
    }
    fn on_timeout(&mut self, io: &mut Io<'_, String>) {
        io.out.push(b"timeout\r\n");
    }
    fn on_shutdown(&mut self, io: &mut Io<'_, String>) -> Step {
        io.out.push(b"shutdown\r\n");
        Step::Close
    }
}

struct EchoService;
impl Service for EchoService {
    type Session = Echo;
    fn open(&mut self, _: &ConnInfo) -> Echo {
        Echo
    }
    fn busy_reply(&self) -> Vec<u8> {
        b"busy\r\n".to_vec()
    }
}

struct Fixture {
    plain: SocketAddr,
    implicit: SocketAddr,
    cert_pem: String,
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

fn start(mut config: Config) -> Fixture {
    let cert = self_signed(&["localhost".into(), "127.0.0.1".into()]).unwrap();
    config.tls = Some(from_pem(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes()).unwrap());
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
    let server = Server::bind_listeners(&listen, EchoService, config).unwrap();
    let addrs = server.local_addrs();
    let stop = server.shutdown_handle();
    let join = thread::spawn(move || server.run().unwrap());
    Fixture {
        plain: addrs[0],
        implicit: addrs[1],
        cert_pem: cert.cert_pem,
        stop,
        join: Some(join),
    }
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn wrap(f: &Fixture, tcp: TcpStream) -> BufReader<Tls> {
    let name = ServerName::try_from("localhost").unwrap();
    let conn =
        rustls::ClientConnection::new(netloop::testing::tls_client_config(&f.cert_pem), name)
            .unwrap();
    BufReader::new(rustls::StreamOwned::new(conn, tcp))
}

fn tcp(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn line<R: BufRead>(r: &mut R) -> String {
    let mut l = String::new();
    let _ = r.read_line(&mut l);
    l
}

fn send(r: &mut BufReader<Tls>, bytes: &[u8]) {
    r.get_mut().write_all(bytes).unwrap();
    r.get_mut().flush().unwrap();
}

#[test]
fn implicit_tls_listener_speaks_tls_from_the_first_byte() {
    let f = start(Config::default());
    let mut r = wrap(&f, tcp(f.implicit));
    assert_eq!(line(&mut r), "hello\r\n");
    send(&mut r, b"TLS?\r\nabc\r\n");
    assert_eq!(line(&mut r), "tls on\r\n");
    assert_eq!(line(&mut r), "> abc\r\n");
    send(&mut r, b"STARTTLS\r\n");
    assert_eq!(line(&mut r), "go\r\n");
    assert_eq!(line(&mut r), "no tls\r\n", "STARTTLS inside TLS is refused");
}

#[test]
fn plaintext_on_the_implicit_tls_port_fails_the_handshake_only_for_that_client() {
    let f = start(Config::default());
    let mut s = tcp(f.implicit);
    s.write_all(b"EHLO me\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(!buf.starts_with(b"hello"), "no plaintext greeting: {buf:?}");
    // The server is still fine.
    let mut r = wrap(&f, tcp(f.implicit));
    assert_eq!(line(&mut r), "hello\r\n");
}

#[test]
fn starttls_discards_bytes_sent_before_the_handshake() {
    let f = start(Config::default());
    let mut s = tcp(f.plain);
    let mut r = BufReader::new(s.try_clone().unwrap());
    assert_eq!(line(&mut r), "hello\r\n");
    s.write_all(b"TLS?\r\n").unwrap();
    assert_eq!(line(&mut r), "tls off\r\n");
    // The injected line rides in the same packet as STARTTLS.
    s.write_all(b"STARTTLS\r\ninjected\r\n").unwrap();
    assert_eq!(line(&mut r), "go\r\n");
    assert!(
        r.buffer().is_empty(),
        "nothing after the go-ahead in plaintext"
    );
    let mut t = wrap(&f, s);
    send(&mut t, b"TLS?\r\n");
    assert_eq!(line(&mut t), "tls on\r\n", "no '> injected' before this");
    send(&mut t, b"after\r\n");
    assert_eq!(line(&mut t), "> after\r\n");
}

#[test]
fn large_output_streams_through_tls() {
    let f = start(Config::default());
    let mut r = wrap(&f, tcp(f.implicit));
    line(&mut r);
    send(&mut r, b"BIG 48\r\n");
    thread::sleep(Duration::from_millis(200));
    let mut body = vec![0u8; 48 * 65536];
    r.read_exact(&mut body).unwrap();
    assert!(body.iter().all(|&b| b == b'x'));
    assert_eq!(line(&mut r), "\r\n");
    assert_eq!(line(&mut r), "end\r\n");
}

#[test]
fn complete_after_answers_later_without_blocking_other_clients() {
    let f = start(Config::default());
    let mut a = tcp(f.plain);
    let mut ra = BufReader::new(a.try_clone().unwrap());
    line(&mut ra);
    let mut b = tcp(f.plain);
    let mut rb = BufReader::new(b.try_clone().unwrap());
    line(&mut rb);
    let t0 = Instant::now();
    a.write_all(b"LATER 400 slow\r\nLATER 100 quick\r\n")
        .unwrap();
    b.write_all(b"ping\r\n").unwrap();
    assert_eq!(line(&mut rb), "> ping\r\n", "b is answered while a waits");
    assert_eq!(line(&mut ra), "later quick\r\n", "timers fire in due order");
    assert_eq!(line(&mut ra), "later slow\r\n");
    assert!(
        t0.elapsed() >= Duration::from_millis(400),
        "not before its delay"
    );
}

#[test]
fn a_client_trickling_a_command_is_cut_off_by_the_command_deadline() {
    let f = start(Config {
        command_timeout: Duration::from_millis(600),
        idle_timeout: Duration::from_secs(60),
        ..Config::default()
    });
    let mut s = tcp(f.plain);
    let mut r = BufReader::new(s.try_clone().unwrap());
    line(&mut r);
    // Complete commands arriving slowly are progress: never cut off.
    for i in 0..4 {
        s.write_all(format!("c{i}\r\n").as_bytes()).unwrap();
        assert_eq!(line(&mut r), format!("> c{i}\r\n"));
        thread::sleep(Duration::from_millis(250));
    }
    // One byte every 100 ms of a line that never ends: the idle timeout
    // (60 s) keeps resetting, the command deadline does not.
    let writer = thread::spawn(move || {
        for _ in 0..40 {
            if s.write_all(b"a").is_err() {
                return true;
            }
            thread::sleep(Duration::from_millis(100));
        }
        false
    });
    assert_eq!(line(&mut r), "timeout\r\n");
    assert_eq!(line(&mut r), "", "closed");
    let _ = writer.join();
}
