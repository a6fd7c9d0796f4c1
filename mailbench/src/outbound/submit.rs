//! The submitting side of `mailbench outbound`: N sessions, each one
//! connection kept for all its messages (reconnecting after an error),
//! AUTH PLAIN when given credentials, MAIL, RCPT and DATA in one write
//! (RFC 2920), then the content; the time of each message's `250` is
//! noted by sequence number. With a rate, message n is not started before
//! n / rate seconds (an open load, the same for every server, below what
//! either accepts, so that queue delays compare); otherwise each session
//! sends its next message as soon as the last one is accepted.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use base64::Engine as _;

/// What to submit, and where.
#[derive(Clone, Debug)]
pub struct Plan {
    pub addr: String,
    pub auth: Option<(String, String)>,
    pub from: String,
    pub messages: u64,
    pub size: usize,
    pub domains: u32,
    /// `{}` is replaced by the domain number.
    pub domain_format: String,
    pub sessions: usize,
    /// Offered load in messages per second over all sessions (message n
    /// is not started before n / rate seconds); `None`: as fast as the
    /// server takes them.
    pub rate: Option<f64>,
    /// This run's stamp (the first word of each `X-Mailbench:` header).
    pub run: String,
}

impl Plan {
    /// The recipient of message `seq`: domains in turn.
    pub fn rcpt(&self, seq: u64) -> String {
        let d = seq % u64::from(self.domains.max(1));
        format!(
            "u{seq}@{}",
            self.domain_format.replace("{}", &d.to_string())
        )
    }

    /// Message `seq`: about `size` bytes, stamped `X-Mailbench: RUN SEQ`,
    /// 76-character lines (no dot-stuffing needed), ending in CRLF.
    pub fn message(&self, seq: u64) -> Vec<u8> {
        let mut m = format!(
            "From: <{from}>\r\nTo: <{to}>\r\nSubject: mailbench outbound {seq}\r\n\
             Message-ID: <{seq}.{run}@mailbench.test>\r\nDate: Thu, 1 Jan 2026 00:00:00 +0000\r\n\
             X-Mailbench: {run} {seq}\r\n\r\n",
            from = self.from,
            to = self.rcpt(seq),
            run = self.run,
        )
        .into_bytes();
        let line =
            b"The quick brown fox jumps over the lazy dog; pack my box with five dozen j\r\n";
        while m.len() < self.size {
            m.extend_from_slice(line);
        }
        m
    }
}

/// The outcome of the submission.
pub struct Submitted {
    /// Per sequence number: nanoseconds after the base of its `250`, plus
    /// one (0 = not accepted).
    pub acks: Arc<Vec<AtomicU64>>,
    /// Per sequence number: when the content with its final dot had been
    /// written (handed to the kernel), the same way.
    pub dots: Arc<Vec<AtomicU64>>,
    pub ok: u64,
    pub failed: u64,
    /// When the first session started, and when the last one ended
    /// (nanoseconds after the base).
    pub started: u64,
    pub ended: u64,
}

impl Submitted {
    /// When message `seq` was accepted (nanoseconds after the base).
    pub fn ack(&self, seq: u64) -> Option<u64> {
        let v = self.acks.get(seq as usize)?.load(Ordering::Acquire);
        v.checked_sub(1)
    }

    /// When message `seq`'s final dot was written (nanoseconds after the base).
    pub fn dot(&self, seq: u64) -> Option<u64> {
        let v = self.dots.get(seq as usize)?.load(Ordering::Acquire);
        v.checked_sub(1)
    }
}

struct Conn {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Conn {
    fn open(p: &Plan) -> Result<Conn> {
        let s = TcpStream::connect(&p.addr).with_context(|| format!("connect {}", p.addr))?;
        s.set_read_timeout(Some(Duration::from_secs(120)))?;
        s.set_nodelay(true)?;
        let r = BufReader::new(s.try_clone()?);
        let mut c = Conn { w: s, r };
        c.expect(220)?;
        c.w.write_all(b"EHLO mailbench.test\r\n")?;
        c.expect(250)?;
        if let Some((user, pass)) = &p.auth {
            let token = base64::engine::general_purpose::STANDARD
                .encode(format!("\0{user}\0{pass}").as_bytes());
            c.w.write_all(format!("AUTH PLAIN {token}\r\n").as_bytes())?;
            c.expect(235).context("AUTH PLAIN")?;
        }
        Ok(c)
    }

    /// Read one (possibly multi-line) reply; error unless its code is `want`.
    fn expect(&mut self, want: u16) -> Result<()> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.r.read_line(&mut line)? == 0 {
                bail!("connection closed");
            }
            if line.as_bytes().get(3) == Some(&b'-') {
                continue;
            }
            let code: u16 = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
            if code != want {
                bail!("expected {want}, got {}", line.trim_end());
            }
            return Ok(());
        }
    }

    /// Send message `seq`; when its final dot was written (after `base`).
    fn send(&mut self, p: &Plan, seq: u64, base: Instant) -> Result<u64> {
        let head = format!(
            "MAIL FROM:<{}>\r\nRCPT TO:<{}>\r\nDATA\r\n",
            p.from,
            p.rcpt(seq)
        );
        self.w.write_all(head.as_bytes())?;
        self.expect(250)?;
        self.expect(250)?;
        self.expect(354)?;
        let mut content = p.message(seq);
        content.extend_from_slice(b".\r\n");
        self.w.write_all(&content)?;
        let dot = base.elapsed().as_nanos() as u64 + 1;
        self.expect(250)?;
        Ok(dot)
    }
}

/// Submit every message of `p`; times are taken against `base`.
pub fn run(p: &Plan, base: Instant) -> Result<Submitted> {
    let next = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let slots = || -> Arc<Vec<AtomicU64>> {
        Arc::new((0..p.messages).map(|_| AtomicU64::new(0)).collect())
    };
    let (acks, dots) = (slots(), slots());
    let started = base.elapsed().as_nanos() as u64;
    let mut workers = Vec::new();
    for _ in 0..p.sessions.max(1) {
        let (p, next, failed, errors, acks, dots) = (
            p.clone(),
            Arc::clone(&next),
            Arc::clone(&failed),
            Arc::clone(&errors),
            Arc::clone(&acks),
            Arc::clone(&dots),
        );
        workers.push(std::thread::spawn(move || {
            let mut conn: Option<Conn> = None;
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= p.messages {
                    break;
                }
                if let Some(rate) = p.rate.filter(|r| *r > 0.0) {
                    let due =
                        Duration::from_nanos(started) + Duration::from_secs_f64(seq as f64 / rate);
                    if let Some(wait) = due.checked_sub(base.elapsed()) {
                        std::thread::sleep(wait);
                    }
                }
                let res = (|| -> Result<u64> {
                    if conn.is_none() {
                        conn = Some(Conn::open(&p)?);
                    }
                    conn.as_mut().context("no connection")?.send(&p, seq, base)
                })();
                match res {
                    Ok(dot) => {
                        let t = base.elapsed().as_nanos() as u64 + 1;
                        if let (Some(a), Some(d)) = (acks.get(seq as usize), dots.get(seq as usize))
                        {
                            d.store(dot, Ordering::Release);
                            a.store(t, Ordering::Release);
                        }
                    }
                    Err(e) => {
                        conn = None;
                        failed.fetch_add(1, Ordering::Relaxed);
                        let mut errs = errors.lock().unwrap_or_else(PoisonError::into_inner);
                        if errs.len() < 5 {
                            errs.push(format!("{e:#}"));
                        }
                    }
                }
            }
            if let Some(mut c) = conn {
                let _ = c.w.write_all(b"QUIT\r\n");
                let _ = c.expect(221);
            }
        }));
    }
    for w in workers {
        let _ = w.join();
    }
    let ended = base.elapsed().as_nanos() as u64;
    for e in errors.lock().unwrap_or_else(PoisonError::into_inner).iter() {
        eprintln!("mailbench: submission error: {e}");
    }
    let ok = acks
        .iter()
        .filter(|a| a.load(Ordering::Acquire) != 0)
        .count() as u64;
    Ok(Submitted {
        acks,
        dots,
        ok,
        failed: failed.load(Ordering::Relaxed),
        started,
        ended,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            addr: String::new(),
            auth: None,
            from: "load@bench.test".into(),
            messages: 10,
            size: 4096,
            domains: 100,
            domain_format: "d{}.test".into(),
            sessions: 1,
            rate: None,
            run: "r1".into(),
        }
    }

    #[test]
    fn recipients_cycle_through_the_domains() {
        let p = plan();
        assert_eq!(p.rcpt(0), "u0@d0.test");
        assert_eq!(p.rcpt(199), "u199@d99.test");
        assert_eq!(p.rcpt(200), "u200@d0.test");
    }

    #[test]
    fn message_is_stamped_and_sized() {
        let p = plan();
        let m = p.message(42);
        assert!(m.len() >= 4096 && m.len() < 4096 + 80, "{}", m.len());
        let text = String::from_utf8_lossy(&m);
        assert!(text.contains("\r\nX-Mailbench: r1 42\r\n"));
        assert!(text.contains("To: <u42@d42.test>"));
        assert!(!m.windows(3).any(|w| w == b"\n.\r"));
    }
}
