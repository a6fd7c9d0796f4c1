//! A client that pipelines about 1 MiB of tagged commands and writes them
//! all before reading a single response must get every tagged response,
//! promptly: the server holds commands back while its responses are unread
//! (bounded output), and must go on reading once they drain (issue 12,
//! item 2: netloop is edge-triggered, so nothing else would wake it).
//! Writes come from one thread and reads from another, so the test itself
//! cannot deadlock; a read timeout turns a stall into a failure.
//!
//! The test runs with the default input buffer (256 KiB, the reported
//! case) and with a smaller one, with which every drain of the responses
//! leaves bytes waiting in the socket, so that a missed read shows on
//! every run rather than depending on kernel buffer sizes and timing.

use crate::util::TestServer;
use std::io::{BufRead, Write};
use std::time::{Duration, Instant};
use testkit::lines::Conn;

/// How long to wait for the next response line before failing.
const PATIENCE: Duration = Duration::from_secs(20);

#[test]
fn a_megabyte_of_pipelined_noops_written_before_reading_gets_every_response() {
    let mut batch = Vec::with_capacity((1 << 20) + 64);
    let mut n = 0usize;
    while batch.len() < 1 << 20 {
        n += 1;
        write!(batch, "n{n} NOOP\r\n").unwrap();
    }
    batch.extend_from_slice(b"bye LOGOUT\r\n");
    for max_input in [None, Some(64 * 1024)] {
        let s = TestServer::with(|c| {
            if let Some(m) = max_input {
                c.net.max_input = m;
            }
        });
        let label = format!("input buffer {max_input:?}");
        let t0 = Instant::now();
        let answered = pipeline(&s, batch.clone(), n, &label);
        assert_eq!(answered, n, "{label}: every NOOP answered, in order");
        eprintln!("{label}: {n} NOOPs answered in {:?}", t0.elapsed());
    }
}

/// Connect, read the greeting, write `batch` (`n` NOOPs tagged `n1`… then
/// LOGOUT) from another thread, check the responses until the server
/// closes, and return how many NOOPs were answered.
fn pipeline(s: &TestServer, batch: Vec<u8>, n: usize, label: &str) -> usize {
    let mut c = Conn::open(s.addr, PATIENCE).unwrap();
    let greeting = c.line().unwrap();
    assert!(greeting.starts_with("* OK"), "{greeting}");
    let writer = c.send_in_background(batch).unwrap();
    let r = &mut c.r;

    let mut next = 1usize;
    let (mut bye, mut logged_out) = (false, false);
    loop {
        let mut line = String::new();
        match r.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => panic!(
                "{label}: no response within {PATIENCE:?} after {} of {n} NOOPs ({e}): \
                 the server stopped answering",
                next - 1
            ),
        }
        if line.starts_with("* ") {
            bye |= line.starts_with("* BYE");
            continue;
        }
        if line.starts_with("bye OK") {
            logged_out = true;
            continue;
        }
        assert_eq!(line, format!("n{next} OK NOOP completed\r\n"), "{label}");
        next += 1;
    }
    writer.join().unwrap().unwrap();
    assert!(bye && logged_out, "{label}: LOGOUT answered");
    next - 1
}
