//! `mailbench smtp`: N concurrent SMTP sessions deliver M messages of S bytes
//! and the latency from the end-of-data dot to the `250` is recorded (that
//! `250` means "durable" for minimail). By default every message uses a new
//! connection, as Postfix's smtp-source does; `--reuse` keeps one per session.
//! `--pipeline` sends MAIL, RCPT and DATA in one write (RFC 2920), as
//! Postfix's own SMTP client does with a server offering PIPELINING.
//! Every command (and the body with its final dot) goes out in one write,
//! so the server is not woken for half a line.

use crate::stats::Report;
use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Options of one SMTP run.
#[derive(Clone, Debug)]
pub struct SmtpOpts {
    pub addr: String,
    pub sessions: usize,
    pub messages: u64,
    pub size: usize,
    pub from: String,
    pub to: String,
    pub reuse: bool,
    /// Pipeline MAIL, RCPT and DATA (RFC 2920).
    pub pipeline: bool,
    /// When set, the time of every `250` after DATA is pushed here.
    pub acks: Option<Arc<Mutex<Vec<Instant>>>>,
}

struct Conn {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Conn {
    fn open(addr: &str) -> Result<Conn> {
        let s = TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        s.set_nodelay(true)?;
        let r = BufReader::new(s.try_clone()?);
        let mut c = Conn { w: s, r };
        c.expect(220)?;
        c.cmd("EHLO mailbench.localhost", 250)?;
        Ok(c)
    }

    /// Read one (possibly multi-line) reply; error unless its code is `want`.
    fn expect(&mut self, want: u16) -> Result<()> {
        loop {
            let mut line = String::new();
            if self.r.read_line(&mut line)? == 0 {
                bail!("connection closed");
            }
            let code: u16 = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
            if line.as_bytes().get(3) == Some(&b'-') {
                continue;
            }
            if code != want {
                bail!("expected {want}, got {}", line.trim_end());
            }
            return Ok(());
        }
    }

    fn cmd(&mut self, line: &str, want: u16) -> Result<()> {
        self.w.write_all(format!("{line}\r\n").as_bytes())?;
        self.expect(want)
    }

    fn send(&mut self, o: &SmtpOpts, body: &[u8]) -> Result<Duration> {
        let mail = format!("MAIL FROM:<{}>\r\n", o.from);
        let rcpt = format!("RCPT TO:<{}>\r\n", o.to);
        if o.pipeline {
            self.w
                .write_all(format!("{mail}{rcpt}DATA\r\n").as_bytes())?;
            self.expect(250)?;
            self.expect(250)?;
            self.expect(354)?;
        } else {
            self.w.write_all(mail.as_bytes())?;
            self.expect(250)?;
            self.w.write_all(rcpt.as_bytes())?;
            self.expect(250)?;
            self.cmd("DATA", 354)?;
        }
        let mut content = Vec::with_capacity(body.len() + 3);
        content.extend_from_slice(body);
        content.extend_from_slice(b".\r\n");
        let t = Instant::now();
        self.w.write_all(&content)?;
        self.expect(250)?;
        Ok(t.elapsed())
    }
}

/// A message of about `size` bytes with a unique Message-ID; lines are
/// 76 characters so no dot-stuffing is needed.
pub fn message(n: u64, size: usize, from: &str, to: &str) -> Vec<u8> {
    let mut m = format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: mailbench {n}\r\n\
         Message-ID: <{n}.{}@mailbench>\r\nDate: Thu, 1 Jan 2026 00:00:00 +0000\r\n\r\n",
        std::process::id()
    )
    .into_bytes();
    let line = b"The quick brown fox jumps over the lazy dog; pack my box with five dozen j\r\n";
    while m.len() < size {
        m.extend_from_slice(line);
    }
    m
}

/// Run the load and collect the report.
pub fn run(o: SmtpOpts) -> Result<Report> {
    let next = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let lat = Arc::new(Mutex::new(Vec::with_capacity(o.messages as usize)));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..o.sessions {
        let (o, next, failed, lat, errors) = (
            o.clone(),
            Arc::clone(&next),
            Arc::clone(&failed),
            Arc::clone(&lat),
            Arc::clone(&errors),
        );
        workers.push(std::thread::spawn(move || {
            let mut conn: Option<Conn> = None;
            let mut mine = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= o.messages {
                    break;
                }
                let body = message(n, o.size, &o.from, &o.to);
                let res = (|| -> Result<Duration> {
                    if conn.is_none() {
                        conn = Some(Conn::open(&o.addr)?);
                    }
                    let c = conn.as_mut().context("no connection")?;
                    let d = c.send(&o, &body)?;
                    if !o.reuse {
                        let _ = c.cmd("QUIT", 221);
                        conn = None;
                    }
                    Ok(d)
                })();
                match res {
                    Ok(d) => {
                        if let Some(acks) = &o.acks {
                            if let Ok(mut a) = acks.lock() {
                                a.push(Instant::now());
                            }
                        }
                        mine.push(d)
                    }
                    Err(e) => {
                        conn = None;
                        failed.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut errs) = errors.lock() {
                            if errs.len() < 5 {
                                errs.push(format!("{e:#}"));
                            }
                        }
                    }
                }
            }
            if let Some(mut c) = conn {
                let _ = c.cmd("QUIT", 221);
            }
            if let Ok(mut l) = lat.lock() {
                l.extend(mine);
            }
        }));
    }
    for w in workers {
        let _ = w.join();
    }
    let elapsed = start.elapsed();
    let latencies = std::mem::take(&mut *lat.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    for e in errors
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .iter()
    {
        eprintln!("mailbench: error: {e}");
    }
    Ok(Report {
        mode: "smtp".into(),
        params: vec![
            ("addr".into(), o.addr.clone()),
            ("sessions".into(), o.sessions.to_string()),
            ("messages".into(), o.messages.to_string()),
            ("size".into(), o.size.to_string()),
            ("reuse".into(), o.reuse.to_string()),
            ("pipeline".into(), o.pipeline.to_string()),
        ],
        ok: latencies.len() as u64,
        failed: failed.load(Ordering::Relaxed),
        elapsed,
        latencies,
        extra: vec![],
        cpu_wall: Duration::ZERO,
        client_cpu: 0.0,
        server_cpu: None,
        unit: "msg/s".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_has_requested_size_within_one_line() {
        for size in [1024usize, 65536] {
            let m = message(7, size, "a@x", "b@y");
            assert!(
                m.len() >= size && m.len() < size + 80,
                "{} vs {size}",
                m.len()
            );
            assert!(m.ends_with(b"\r\n"));
            assert!(!m.windows(3).any(|w| w == b"\n.\r"));
        }
    }
}
