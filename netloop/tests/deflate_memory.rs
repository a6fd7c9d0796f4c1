//! What a compressed connection costs in memory, measured with a counting
//! allocator (its own test binary, one test, so nothing else allocates
//! meanwhile): the DEFLATE state per connection (the figure README states),
//! and the peak while a decompression bomb goes through a real server over
//! loopback (it must stay near the loop's input limit, not grow with what
//! the bomb inflates to).

use netloop::deflate::{ClientStream, Deflate};
use netloop::{Config, ConnInfo, Io, Line, Server, Service, Session, Step};
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static A: Counting = Counting;

const MAX_INPUT: usize = 256 * 1024;

/// Discards every line, answers `QUIT` with `bye`.
struct Sink;

impl Session for Sink {
    type Done = ();
    fn on_open(&mut self, io: &mut Io<'_, ()>) -> Step {
        io.out.push(b"hello\r\n");
        Step::Continue
    }
    fn on_input(&mut self, io: &mut Io<'_, ()>) -> Step {
        loop {
            match io.input.take_line(1000) {
                Line::Incomplete => return Step::Continue,
                Line::TooLong => {}
                Line::Complete(l, _) if l == b"COMPRESS" => {
                    io.out.push(b"ok\r\n");
                    io.start_compress();
                    return Step::Continue;
                }
                Line::Complete(l, _) if l == b"QUIT" => {
                    io.out.push(b"bye\r\n");
                    return Step::Close;
                }
                Line::Complete(..) => {}
            }
        }
    }
    fn on_done(&mut self, _: (), _: &mut Io<'_, ()>) -> Step {
        Step::Continue
    }
    fn on_timeout(&mut self, _: &mut Io<'_, ()>) {}
    fn on_shutdown(&mut self, _: &mut Io<'_, ()>) -> Step {
        Step::Close
    }
}

struct SinkService;

impl Service for SinkService {
    type Session = Sink;
    fn open(&mut self, _: &ConnInfo) -> Sink {
        Sink
    }
    fn busy_reply(&self) -> Vec<u8> {
        Vec::new()
    }
}

fn kib(n: usize) -> usize {
    n.div_ceil(1024)
}

#[test]
fn deflate_state_is_bounded_and_a_bomb_does_not_grow_the_server() {
    // 1. The fixed cost of one connection's DEFLATE layer.
    let before = LIVE.load(Ordering::Relaxed);
    let z = Deflate::new();
    let state = LIVE.load(Ordering::Relaxed) - before;
    drop(z);
    println!(
        "DEFLATE state per connection: {} KiB (compressor + decompressor)",
        kib(state)
    );
    assert!(state > 32 * 1024, "at least a window: {state}");
    assert!(state < 400 * 1024, "{} KiB", kib(state));

    // 2. A bomb through a real server: 1 GiB of `A` in about 1 MiB.
    let mut c = flate2::Compress::new(flate2::Compression::best(), false);
    let mut block = Vec::with_capacity(64 * 1024);
    c.compress_vec(
        &vec![b'A'; 1 << 20],
        &mut block,
        flate2::FlushCompress::Full,
    )
    .unwrap();
    drop(c);
    let bomb = block.repeat(1024);
    println!("bomb: {} KiB of DEFLATE for 1 GiB of text", kib(bomb.len()));

    let config = Config {
        max_input: MAX_INPUT,
        ..Config::default()
    };
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = Server::bind(&[any], SinkService, config).unwrap();
    let addr = server.local_addrs()[0];
    let stop = server.shutdown_handle();
    let join = thread::spawn(move || server.run().unwrap());

    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut hello = [0u8; 7];
    s.read_exact(&mut hello).unwrap();
    s.write_all(b"COMPRESS\r\n").unwrap();
    let mut ok = [0u8; 4];
    s.read_exact(&mut ok).unwrap();
    assert_eq!(&ok, b"ok\r\n");
    let mut r = BufReader::new(ClientStream::new(s.try_clone().unwrap(), &[], 6));
    let mut w = ClientStream::new(s.try_clone().unwrap(), &[], 6);
    // Settle: the server's connection with its DEFLATE state exists now.
    w.write_all(b"warm up\r\n").unwrap();

    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    s.write_all(&bomb).unwrap();
    w.write_all(b"\r\nQUIT\r\n").unwrap();
    let mut bye = String::new();
    r.read_line(&mut bye).unwrap();
    assert_eq!(bye, "bye\r\n");
    let peak = PEAK.load(Ordering::Relaxed) - base;
    println!(
        "peak growth while 1 GiB inflated through the server: {} KiB",
        kib(peak)
    );
    // The input buffer: at most `max_input` octets, in a Vec that grows by
    // doubling (so up to twice that, and the old one while it moves: 768
    // KiB here, as on any connection), and a few small buffers. Inflating
    // the bomb into memory would take 1 GiB.
    assert!(peak < 4 * MAX_INPUT, "{} KiB", kib(peak));
    drop((r, w, s, bomb));
    stop.shutdown();
    join.join().unwrap();
}
