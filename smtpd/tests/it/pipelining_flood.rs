//! A client that pipelines about 1 MiB of commands (RFC 2920) and writes
//! them all before reading a single reply must get every reply, promptly:
//! the server holds commands back while its replies are unread (bounded
//! output), and must go on reading once they drain (issue 12, item 2:
//! netloop is edge-triggered, so nothing else would wake it). Writes come
//! from one thread and reads from another, so the test itself cannot
//! deadlock; a read timeout turns a stall into a failure, not a hang.
//!
//! Each test runs with the default input buffer (256 KiB, the reported
//! case) and with a small one, with which every drain of the replies
//! leaves bytes waiting in the socket, so that a missed read shows on
//! every run rather than depending on kernel buffer sizes and timing.

use crate::util::TestServer;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use testkit::lines::Conn;

/// How long to wait for the next reply line before failing.
const PATIENCE: Duration = Duration::from_secs(20);

/// netloop's per-connection input buffer: the default, and a small one.
const INPUT_BUFFERS: [Option<usize>; 2] = [None, Some(16 * 1024)];

fn server(max_input: Option<usize>) -> TestServer {
    TestServer::with(|c| {
        if let Some(m) = max_input {
            c.net.max_input = m;
        }
    })
}

/// Reply codes, one per complete (possibly multiline) reply, until EOF.
fn codes_until_close(r: &mut BufReader<TcpStream>, label: &str) -> Vec<u16> {
    let mut codes = Vec::new();
    loop {
        let mut line = String::new();
        match r.read_line(&mut line) {
            Ok(0) => return codes,
            Ok(_) => {}
            Err(e) => panic!(
                "{label}: no reply within {PATIENCE:?} after {} replies ({e}): \
                 the server stopped answering",
                codes.len()
            ),
        }
        assert!(line.len() >= 4 && line.ends_with("\r\n"), "{line:?}");
        if line.as_bytes()[3] == b' ' {
            codes.push(line[..3].parse().unwrap());
        }
    }
}

/// Connect, read the greeting, write `batch` from another thread, and
/// return the codes of every reply that follows, in order.
fn pipeline(s: &TestServer, batch: Vec<u8>, label: &str) -> Vec<u16> {
    let mut c = Conn::open(s.addr, PATIENCE).unwrap();
    let greeting = c.line().unwrap();
    assert!(greeting.starts_with("220 "), "{greeting}");
    let writer = c.send_in_background(batch).unwrap();
    let codes = codes_until_close(&mut c.r, label);
    writer.join().unwrap().unwrap();
    codes
}

#[test]
fn a_megabyte_of_pipelined_noops_written_before_reading_gets_every_reply() {
    let n = (1 << 20) / b"NOOP\r\n".len();
    let mut batch = b"EHLO flood.example\r\n".to_vec();
    batch.extend(b"NOOP\r\n".repeat(n));
    batch.extend_from_slice(b"QUIT\r\n");
    for max_input in INPUT_BUFFERS {
        let s = server(max_input);
        let t0 = Instant::now();
        let label = format!("input buffer {max_input:?}");
        let codes = pipeline(&s, batch.clone(), &label);
        assert_eq!(codes.len(), n + 2, "{label}: EHLO, {n} NOOPs, QUIT");
        assert!(codes[..=n].iter().all(|&c| c == 250));
        assert_eq!(codes[n + 1], 221);
        eprintln!("{label}: {n} NOOPs answered in {:?}", t0.elapsed());
    }
}

#[test]
fn a_megabyte_of_pipelined_rcpts_in_one_transaction_gets_every_reply() {
    let rcpt = b"RCPT TO:<bob@localhost>\r\n";
    let n = (1 << 20) / rcpt.len();
    let mut batch = b"EHLO flood.example\r\nMAIL FROM:<a@example.org>\r\n".to_vec();
    batch.extend(rcpt.repeat(n));
    batch.extend_from_slice(b"RSET\r\nQUIT\r\n");
    let limit = smtpd::Config::default().max_recipients;
    for max_input in INPUT_BUFFERS {
        let s = server(max_input);
        let t0 = Instant::now();
        let label = format!("input buffer {max_input:?}");
        let codes = pipeline(&s, batch.clone(), &label);
        assert_eq!(
            codes.len(),
            n + 4,
            "{label}: EHLO, MAIL, {n} RCPTs, RSET, QUIT"
        );
        assert_eq!(codes[..2], [250, 250]);
        let rcpts = &codes[2..2 + n];
        assert!(
            rcpts[..limit].iter().all(|&c| c == 250),
            "first {limit} accepted"
        );
        assert!(
            rcpts[limit..].iter().all(|&c| c == 452),
            "the rest: too many"
        );
        assert_eq!(codes[n + 2..], [250, 221]);
        eprintln!("{label}: {n} RCPTs answered in {:?}", t0.elapsed());
    }
}
