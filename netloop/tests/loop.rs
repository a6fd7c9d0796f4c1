//! netloop over loopback: framing across partial reads, pipelining, limits,
//! timeouts, completions from other threads, streaming and shutdown.
//! The test protocol: each line is echoed as `> line`; `SLOW x` answers from
//! another thread after 50 ms (in order); `BIG n` streams n chunks through
//! `on_drained`; `QUIT` says bye and closes.

use netloop::{Config, ConnInfo, Io, Line, Server, Service, Session, ShutdownHandle, Step};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

struct Echo {
    waiting: bool,
    chunks_left: usize,
}

impl Session for Echo {
    type Done = String;
    fn on_open(&mut self, io: &mut Io<'_, String>) -> Step {
        io.out.push(b"hello\r\n");
        Step::Continue
    }
    fn on_input(&mut self, io: &mut Io<'_, String>) -> Step {
        while !self.waiting && self.chunks_left == 0 {
            match io.input.take_line(64) {
                Line::Incomplete => break,
                Line::TooLong => io.out.push(b"! too long\r\n"),
                Line::Complete(l, _) => {
                    let l = String::from_utf8_lossy(&l).to_string();
                    if l == "QUIT" {
                        io.out.push(b"bye\r\n");
                        return Step::Close;
                    } else if let Some(rest) = l.strip_prefix("SLOW ") {
                        self.waiting = true;
                        let c = io.completer();
                        let rest = rest.to_string();
                        thread::spawn(move || {
                            thread::sleep(Duration::from_millis(50));
                            c.complete(rest);
                        });
                    } else if let Some(n) = l.strip_prefix("BIG ") {
                        self.chunks_left = n.parse().unwrap_or(1);
                        io.out.push(&[b'x'; 65536]);
                        self.chunks_left -= 1;
                        if self.chunks_left == 0 {
                            io.out.push(b"\r\nend\r\n");
                        }
                    } else if l == "LATER" {
                        io.complete_after(Duration::from_millis(300), "later".into());
                    } else if let Some(t) = l.strip_prefix("TIMEOUT ") {
                        io.set_timeout(Duration::from_millis(t.parse().unwrap_or(100)));
                        io.out.push(b"> ok\r\n");
                    } else {
                        io.out.push(format!("> {l}\r\n").as_bytes());
                    }
                }
            }
        }
        Step::Continue
    }
    fn on_done(&mut self, done: String, io: &mut Io<'_, String>) -> Step {
        self.waiting = false;
        io.out.push(format!("slow {done}\r\n").as_bytes());
        Step::Continue
    }
    fn on_drained(&mut self, io: &mut Io<'_, String>) -> Step {
        if self.chunks_left > 0 {
            io.out.push(&[b'x'; 65536]);
            self.chunks_left -= 1;
            if self.chunks_left == 0 {
                io.out.push(b"\r\nend\r\n");
            }
        }
        Step::Continue
    }
    fn on_timeout(&mut self, io: &mut Io<'_, String>) {
        io.out.push(b"timeout\r\n");
    }
    fn on_shutdown(&mut self, io: &mut Io<'_, String>) -> Step {
        if self.waiting {
            return Step::Continue;
        }
        io.out.push(b"shutdown\r\n");
        Step::Close
    }
}

struct EchoService;
impl Service for EchoService {
    type Session = Echo;
    fn open(&mut self, _: &ConnInfo) -> Echo {
        Echo {
            waiting: false,
            chunks_left: 0,
        }
    }
    fn busy_reply(&self) -> Vec<u8> {
        b"busy\r\n".to_vec()
    }
}

fn start(config: Config) -> (SocketAddr, ShutdownHandle, thread::JoinHandle<()>) {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = Server::bind(&[addr], EchoService, config).unwrap();
    let addr = server.local_addrs()[0];
    let h = server.shutdown_handle();
    let j = thread::spawn(move || server.run().unwrap());
    (addr, h, j)
}

fn connect(addr: SocketAddr) -> (TcpStream, BufReader<TcpStream>) {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let r = BufReader::new(s.try_clone().unwrap());
    (s, r)
}

/// Connect from a chosen loopback source address (127.0.0.2 is not "local"
/// to a server on 127.0.0.1).
fn connect_from(addr: SocketAddr, src: [u8; 4]) -> (TcpStream, BufReader<TcpStream>) {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&SocketAddr::from((src, 0)).into()).unwrap();
    sock.connect(&addr.into()).unwrap();
    let s: TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let r = BufReader::new(s.try_clone().unwrap());
    (s, r)
}

fn line(r: &mut BufReader<TcpStream>) -> String {
    let mut l = String::new();
    r.read_line(&mut l).unwrap();
    l
}

#[test]
fn lines_split_across_writes_and_pipelined_lines_are_answered_in_order() {
    let (addr, h, j) = start(Config::default());
    let (mut s, mut r) = connect(addr);
    assert_eq!(line(&mut r), "hello\r\n");
    s.write_all(b"ab").unwrap();
    thread::sleep(Duration::from_millis(30));
    s.write_all(b"c\r\nSLOW 1\r\nd\nSLOW 2\r\ne\r\n").unwrap();
    for want in [
        "> abc\r\n",
        "slow 1\r\n",
        "> d\r\n",
        "slow 2\r\n",
        "> e\r\n",
    ] {
        assert_eq!(line(&mut r), want);
    }
    s.write_all(b"QUIT\r\n").unwrap();
    assert_eq!(line(&mut r), "bye\r\n");
    assert_eq!(line(&mut r), "", "closed after bye");
    h.shutdown();
    j.join().unwrap();
}

#[test]
fn overlong_line_is_refused_and_the_session_resynchronises() {
    let (addr, h, j) = start(Config::default());
    let (mut s, mut r) = connect(addr);
    line(&mut r);
    let long = vec![b'a'; 10_000];
    s.write_all(&long).unwrap();
    s.write_all(b"\r\nnext\r\n").unwrap();
    assert_eq!(line(&mut r), "! too long\r\n");
    assert_eq!(line(&mut r), "> next\r\n");
    h.shutdown();
    j.join().unwrap();
}

#[test]
fn connection_limit_gets_the_busy_reply() {
    let config = Config {
        max_connections: 2,
        ..Config::default()
    };
    let (addr, h, j) = start(config);
    let (_s1, mut r1) = connect(addr);
    let (_s2, mut r2) = connect(addr);
    assert_eq!(line(&mut r1), "hello\r\n");
    assert_eq!(line(&mut r2), "hello\r\n");
    let (_s3, mut r3) = connect(addr);
    assert_eq!(line(&mut r3), "busy\r\n");
    assert_eq!(line(&mut r3), "");
    h.shutdown();
    j.join().unwrap();
}

#[test]
fn per_address_limit_gets_the_busy_reply() {
    let config = Config {
        max_per_ip: 1,
        ..Config::default()
    };
    let (addr, h, j) = start(config);
    let (_s1, mut r1) = connect_from(addr, [127, 0, 0, 2]);
    assert_eq!(line(&mut r1), "hello\r\n");
    let (_s2, mut r2) = connect_from(addr, [127, 0, 0, 2]);
    assert_eq!(line(&mut r2), "busy\r\n");
    let (_s3, mut r3) = connect_from(addr, [127, 0, 0, 3]);
    assert_eq!(line(&mut r3), "hello\r\n", "another address is unaffected");
    // Clients on the server's own address are exempt (like Postfix's mynetworks).
    let (_s4, mut r4) = connect(addr);
    assert_eq!(line(&mut r4), "hello\r\n");
    let (_s5, mut r5) = connect(addr);
    assert_eq!(line(&mut r5), "hello\r\n");
    h.shutdown();
    j.join().unwrap();
}

#[test]
fn idle_connection_times_out() {
    let config = Config {
        idle_timeout: Duration::from_millis(300),
        ..Config::default()
    };
    let (addr, h, j) = start(config);
    let (_s, mut r) = connect(addr);
    line(&mut r);
    assert_eq!(line(&mut r), "timeout\r\n");
    assert_eq!(line(&mut r), "");
    h.shutdown();
    j.join().unwrap();
}

#[test]
fn session_can_shorten_its_own_idle_timeout() {
    let (addr, h, j) = start(Config::default());
    let (mut s, mut r) = connect(addr);
    line(&mut r);
    s.write_all(b"TIMEOUT 300\r\n").unwrap();
    assert_eq!(line(&mut r), "> ok\r\n");
    assert_eq!(line(&mut r), "timeout\r\n");
    h.shutdown();
    j.join().unwrap();
}

#[test]
fn large_output_is_streamed_through_on_drained_to_a_slow_reader() {
    let (addr, h, j) = start(Config::default());
    let (mut s, mut r) = connect(addr);
    line(&mut r);
    s.write_all(b"BIG 64\r\n").unwrap();
    thread::sleep(Duration::from_millis(200)); // let the socket buffers fill
    let mut body = vec![0u8; 64 * 65536];
    r.read_exact(&mut body).unwrap();
    assert!(body.iter().all(|&b| b == b'x'));
    assert_eq!(line(&mut r), "\r\n");
    assert_eq!(line(&mut r), "end\r\n");
    h.shutdown();
    j.join().unwrap();
}

/// A timer that fires after its connection said goodbye does not keep the
/// connection (and its slot) for another linger period: with room for one
/// connection, a second client is served once the first one's goodbye has
/// drained, though the first never closes its end.
#[test]
fn a_timer_firing_after_close_does_not_hold_the_connection() {
    let (addr, h, j) = start(Config {
        max_connections: 1,
        ..Config::default()
    });
    let (mut a, mut ar) = connect(addr);
    line(&mut ar);
    a.write_all(b"LATER\r\nQUIT\r\n").unwrap();
    assert_eq!(line(&mut ar), "bye\r\n");
    // The timer fires 300 ms in, the drain period (2 s) ends soon after.
    thread::sleep(Duration::from_millis(3500));
    let (_b, mut br) = connect(addr);
    assert_eq!(line(&mut br), "hello\r\n", "the slot was freed");
    h.shutdown();
    j.join().unwrap();
    drop(a);
}

#[test]
fn shutdown_waits_for_in_flight_work_then_says_goodbye() {
    let (addr, h, j) = start(Config::default());
    let (mut s, mut r) = connect(addr);
    line(&mut r);
    let (_idle, mut idle_r) = connect(addr);
    line(&mut idle_r);
    s.write_all(b"SLOW done\r\n").unwrap();
    thread::sleep(Duration::from_millis(10));
    h.shutdown();
    assert_eq!(line(&mut r), "slow done\r\n");
    assert_eq!(line(&mut r), "shutdown\r\n");
    assert_eq!(line(&mut idle_r), "shutdown\r\n");
    j.join().unwrap();
    assert!(TcpStream::connect(addr).is_err(), "listener closed");
}

#[test]
fn flood_without_reading_replies_keeps_memory_bounded_and_completes() {
    // The client writes 4 MiB of lines without reading; the server must
    // neither buffer it all nor deadlock once the client starts reading.
    let config = Config {
        max_input: 16 * 1024,
        ..Config::default()
    };
    let (addr, h, j) = start(config);
    let (mut s, mut r) = connect(addr);
    line(&mut r);
    let writer = thread::spawn(move || {
        let chunk = b"0123456789abcdef0123456789abcdef\r\n".repeat(1000);
        for _ in 0..120 {
            s.write_all(&chunk).unwrap();
        }
        s.write_all(b"QUIT\r\n").unwrap();
        s
    });
    let mut n = 0;
    loop {
        let l = line(&mut r);
        if l == "bye\r\n" {
            break;
        }
        assert_eq!(l, "> 0123456789abcdef0123456789abcdef\r\n");
        n += 1;
    }
    assert_eq!(n, 120_000);
    writer.join().unwrap();
    h.shutdown();
    j.join().unwrap();
}

#[test]
fn output_still_in_flight_survives_unread_client_bytes_at_close() {
    // The client sends BIG, QUIT and junk the session never reads, and reads
    // nothing for a while: when the server closes, its last 4 MiB are still
    // in kernel buffers. Closing with unread input must not reset the
    // connection (which would drop them); the client gets everything.
    let (addr, h, j) = start(Config::default());
    let (mut s, mut r) = connect(addr);
    line(&mut r);
    let mut burst = b"BIG 64\r\nQUIT\r\n".to_vec();
    burst.extend(std::iter::repeat_n(b'j', 2_000_000));
    let w = thread::spawn(move || {
        let _ = s.write_all(&burst);
    });
    thread::sleep(Duration::from_millis(300));
    let mut body = vec![0u8; 64 * 65536];
    r.read_exact(&mut body).unwrap();
    assert_eq!(line(&mut r), "\r\n");
    assert_eq!(line(&mut r), "end\r\n");
    assert_eq!(line(&mut r), "bye\r\n");
    w.join().unwrap();
    h.shutdown();
    j.join().unwrap();
}
