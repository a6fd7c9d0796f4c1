//! The destination of `mailbench outbound`: a tiny SMTP server that takes
//! every message and says `250`, like Postfix's smtp-sink, and notes when
//! it said `250` to each message stamped by this run (its `X-Mailbench:
//! RUN SEQ` header). Because the submitter runs in the same process, the
//! two times share one clock: the delay from the submitting `250` to the
//! remote `250` is exact per message.
//!
//! It listens on one or more consecutive IPv4 addresses (the same port),
//! so that each recipient domain can have an MX host of its own, and
//! serves each connection on its own thread (blocking I/O; an MTA opens
//! at most a few hundred). It offers PIPELINING, 8BITMIME, SIZE and
//! ENHANCEDSTATUSCODES, no STARTTLS, AUTH, DSN or CHUNKING; replies to
//! pipelined commands go out in one write once the client's input is
//! consumed. `hold` keeps every connection before its greeting until
//! [`Sink::release`], so a queue can fill first and then drain.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Instant;

use anyhow::{bail, Context, Result};

/// What the sink saw, shared with its connection threads.
pub struct Sink {
    base: Instant,
    run: String,
    /// Per sequence number: nanoseconds after `base` of its `250`, plus
    /// one (0 = not arrived).
    arrivals: Vec<AtomicU64>,
    /// Distinct stamped messages of this run that arrived.
    pub delivered: AtomicU64,
    /// Stamped messages that arrived a second time.
    pub duplicates: AtomicU64,
    /// Messages without this run's stamp (e.g. left from an earlier run).
    pub foreign: AtomicU64,
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Mail transactions (MAIL FROM commands).
    pub transactions: AtomicU64,
    held: Mutex<bool>,
    gate: Condvar,
}

impl Sink {
    /// Listen on `ips` consecutive IPv4 addresses from `first` (its port)
    /// for messages `0..messages` of `run`; with `hold`, connections wait
    /// for [`Sink::release`] before their greeting.
    pub fn start(
        first: SocketAddr,
        ips: u32,
        base: Instant,
        run: &str,
        messages: u64,
        hold: bool,
    ) -> Result<Arc<Sink>> {
        let SocketAddr::V4(first) = first else {
            bail!("--sink must be an IPv4 address");
        };
        let sink = Arc::new(Sink {
            base,
            run: run.to_owned(),
            arrivals: (0..messages).map(|_| AtomicU64::new(0)).collect(),
            delivered: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            foreign: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            transactions: AtomicU64::new(0),
            held: Mutex::new(hold),
            gate: Condvar::new(),
        });
        let start = u32::from(*first.ip());
        for i in 0..ips.max(1) {
            let ip = Ipv4Addr::from(start.wrapping_add(i));
            let addr = SocketAddrV4::new(ip, first.port());
            let listener = TcpListener::bind(addr)
                .with_context(|| format!("sink: cannot listen on {addr}"))?;
            let s = Arc::clone(&sink);
            std::thread::Builder::new()
                .name("sink-accept".into())
                .spawn(move || s.accept(&listener))?;
        }
        Ok(sink)
    }

    /// Let held connections greet.
    pub fn release(&self) {
        *self.held.lock().unwrap_or_else(PoisonError::into_inner) = false;
        self.gate.notify_all();
    }

    /// When message `seq` got its `250` (nanoseconds after the base), if
    /// it did.
    pub fn arrival(&self, seq: u64) -> Option<u64> {
        let v = self.arrivals.get(seq as usize)?.load(Ordering::Acquire);
        v.checked_sub(1)
    }

    fn accept(self: Arc<Sink>, listener: &TcpListener) {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            self.connections.fetch_add(1, Ordering::Relaxed);
            let s = Arc::clone(&self);
            let spawned = std::thread::Builder::new()
                .name("sink-conn".into())
                .stack_size(256 * 1024)
                .spawn(move || {
                    // A client that goes away is no concern of ours.
                    let _ = s.serve(stream);
                });
            if let Err(e) = spawned {
                eprintln!("mailbench: sink: cannot start a thread: {e}");
            }
        }
    }

    fn wait_gate(&self) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        while *held {
            held = self.gate.wait(held).unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn serve(&self, stream: TcpStream) -> std::io::Result<()> {
        self.wait_gate();
        stream.set_nodelay(true)?;
        let mut r = BufReader::with_capacity(64 * 1024, stream.try_clone()?);
        let mut w = stream;
        let mut out: Vec<u8> = b"220 sink.mailbench.test ESMTP mailbench sink\r\n".to_vec();
        let mut line = Vec::with_capacity(1024);
        loop {
            // Pipelined commands (RFC 2920) get their replies in one write.
            if r.buffer().is_empty() && !out.is_empty() {
                w.write_all(&out)?;
                out.clear();
            }
            line.clear();
            if r.read_until(b'\n', &mut line)? == 0 {
                return Ok(());
            }
            let verb = line.get(..4).map(|v| v.to_ascii_uppercase());
            match verb.as_deref() {
                Some(b"EHLO") => out.extend_from_slice(
                    b"250-sink.mailbench.test\r\n250-PIPELINING\r\n250-SIZE 104857600\r\n\
                      250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n",
                ),
                Some(b"HELO") => out.extend_from_slice(b"250 sink.mailbench.test\r\n"),
                Some(b"MAIL") => {
                    self.transactions.fetch_add(1, Ordering::Relaxed);
                    out.extend_from_slice(b"250 2.1.0 Ok\r\n");
                }
                Some(b"RCPT") => out.extend_from_slice(b"250 2.1.5 Ok\r\n"),
                Some(b"DATA") => {
                    out.extend_from_slice(b"354 End data with <CR><LF>.<CR><LF>\r\n");
                    w.write_all(&out)?;
                    out.clear();
                    let stamp = read_data(&mut r, &mut line)?;
                    self.record(stamp.as_deref());
                    w.write_all(b"250 2.0.0 Ok: queued\r\n")?;
                }
                Some(b"RSET") | Some(b"NOOP") => out.extend_from_slice(b"250 2.0.0 Ok\r\n"),
                Some(b"QUIT") => {
                    out.extend_from_slice(b"221 2.0.0 Bye\r\n");
                    w.write_all(&out)?;
                    return Ok(());
                }
                _ => out.extend_from_slice(b"502 5.5.2 Command not recognized\r\n"),
            }
        }
    }

    /// Note the `250` of a message with header value `stamp`.
    fn record(&self, stamp: Option<&str>) {
        let now = self.base.elapsed().as_nanos() as u64 + 1;
        let seq = stamp
            .and_then(|s| s.split_once(' '))
            .filter(|(run, _)| *run == self.run)
            .and_then(|(_, n)| n.trim().parse::<u64>().ok());
        match seq.and_then(|n| self.arrivals.get(n as usize)) {
            Some(slot) => {
                if slot
                    .compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    self.delivered.fetch_add(1, Ordering::Release);
                } else {
                    self.duplicates.fetch_add(1, Ordering::Relaxed);
                }
            }
            None => {
                self.foreign.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Read message content up to the lone dot; the value of its
/// `X-Mailbench:` header, if any.
fn read_data(r: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<Option<String>> {
    let mut in_header = true;
    let mut stamp = None;
    loop {
        line.clear();
        if r.read_until(b'\n', line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok(stamp);
        }
        if in_header {
            if line == b"\r\n" || line == b"\n" {
                in_header = false;
            } else if line.len() > 12 && line[..12].eq_ignore_ascii_case(b"X-Mailbench:") {
                stamp = Some(String::from_utf8_lossy(&line[12..]).trim().to_owned());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn data_ends_at_the_dot_and_finds_the_stamp() {
        let mut r = std::io::Cursor::new(
            b"Received: x\r\nx-mailbench: r1 7\r\n\r\nbody\r\n..stuffed\r\n.\r\nQUIT\r\n".to_vec(),
        );
        let mut line = Vec::new();
        let stamp = read_data(&mut r, &mut line).expect("data");
        assert_eq!(stamp.as_deref(), Some("r1 7"));
        let mut rest = String::new();
        r.read_to_string(&mut rest).expect("rest");
        assert_eq!(rest, "QUIT\r\n");
        let mut cut = std::io::Cursor::new(b"Subject: x\r\n\r\nno end\r\n".to_vec());
        assert!(read_data(&mut cut, &mut line).is_err());
    }

    #[test]
    fn pipelined_session_records_each_message_once() -> Result<()> {
        let probe = TcpListener::bind("127.0.0.1:0")?;
        let addr = probe.local_addr()?;
        drop(probe);
        let base = Instant::now();
        let sink = Sink::start(addr, 1, base, "run9", 3, false)?;
        let mut c = TcpStream::connect(addr)?;
        let msg = |n: u64| {
            format!(
                "MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n\
                 X-Mailbench: run9 {n}\r\n\r\nhello\r\n.\r\n"
            )
        };
        let all = format!(
            "EHLO me\r\n{}{}{}{}MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n\
             X-Mailbench: other 1\r\n\r\nx\r\n.\r\nQUIT\r\n",
            msg(0),
            msg(2),
            msg(2),
            msg(5)
        );
        c.write_all(all.as_bytes())?;
        let mut replies = String::new();
        c.read_to_string(&mut replies)?;
        assert_eq!(replies.matches("250 2.0.0 Ok: queued").count(), 5);
        assert!(replies.starts_with("220 "), "{replies}");
        assert!(replies.ends_with("221 2.0.0 Bye\r\n"), "{replies}");
        assert_eq!(sink.delivered.load(Ordering::Acquire), 2);
        assert_eq!(sink.duplicates.load(Ordering::Relaxed), 1);
        // Sequence 5 is outside the run's 3 messages; "other" is not our run.
        assert_eq!(sink.foreign.load(Ordering::Relaxed), 2);
        assert_eq!(sink.transactions.load(Ordering::Relaxed), 5);
        assert!(sink.arrival(0).is_some() && sink.arrival(1).is_none());
        Ok(())
    }
}
