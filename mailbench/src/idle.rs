//! `mailbench idle`: hold N IMAP connections in IDLE (RFC 2177) on one mio
//! poll thread (LOGIN, SELECT, IDLE per RFC 3501 §6.2.3, §6.3.1), then
//! deliver K messages over SMTP one at a time and time each connection's
//! `* n EXISTS` push from the `250`. Reports the server's RSS (VmRSS from
//! /proc/PID/status) before and with all connections idle.

use crate::e2e::delays;
use crate::imap::parse::{self, Kind};
use crate::imap::Target;
use crate::smtp::{self, SmtpOpts};
use crate::stats::Report;
use anyhow::{bail, Context, Result};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Handshakes in progress at once (keeps the server's accept queue sane).
const MAX_OPENING: usize = 200;

#[derive(PartialEq, Eq, Clone, Copy, Debug)]
enum St {
    Greeting,
    Login,
    Select,
    Idle,
    Idling,
    Dead,
}

struct Conn {
    s: TcpStream,
    st: St,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    base: u32,
    seen: Vec<(u32, Instant)>,
}

/// Raise RLIMIT_NOFILE's soft limit to the hard limit; the new soft limit.
fn raise_nofile() -> u64 {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read/write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) != 0 {
            return 0;
        }
        rl.rlim_cur = rl.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) != 0 {
            return 0;
        }
    }
    rl.rlim_cur
}

/// VmRSS of `pid` in MiB.
pub fn rss_mib(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

impl Conn {
    fn queue(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    fn flush(&mut self) -> std::io::Result<()> {
        while !self.out.is_empty() {
            match self.s.write(&self.out) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Advance the state machine on one response line.
    fn on_line(&mut self, line: &[u8], t: &Target) {
        let (st, send, exists) = step(self.st, line, t);
        if let Some(cmd) = send {
            self.queue(cmd.as_bytes());
        }
        if let Some(n) = exists {
            match self.st {
                St::Select => self.base = n,
                _ => self.seen.push((n, Instant::now())),
            }
        }
        self.st = st;
    }

    /// Read what is there and process whole lines; false when the
    /// connection is finished.
    fn on_readable(&mut self, t: &Target) -> bool {
        let mut chunk = [0u8; 4096];
        loop {
            match self.s.read(&mut chunk) {
                Ok(0) => return false,
                Ok(n) => self.inbuf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        while let Some(nl) = self.inbuf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.inbuf.drain(..=nl).collect();
            self.on_line(&line, t);
        }
        self.st != St::Dead && self.flush().is_ok()
    }
}

/// One step of a connection's life: the next state, what to send, and
/// the EXISTS count the line carried.
fn step(st: St, line: &[u8], t: &Target) -> (St, Option<String>, Option<u32>) {
    let kind = parse::classify(line);
    let exists = match kind {
        Kind::Untagged(u) => parse::exists(u),
        _ => None,
    };
    match (st, kind) {
        (St::Greeting, Kind::Untagged(u)) if u.starts_with(b"OK") => {
            let cmd = format!(
                "l LOGIN {} {}\r\n",
                parse::quote(&t.user),
                parse::quote(&t.password)
            );
            (St::Login, Some(cmd), None)
        }
        (St::Login, Kind::Tagged { ok: true, .. }) => {
            let cmd = format!("s SELECT {}\r\n", parse::quote(&t.mailbox));
            (St::Select, Some(cmd), None)
        }
        (St::Select, Kind::Tagged { ok: true, .. }) => (St::Idle, Some("i IDLE\r\n".into()), None),
        (St::Idle, Kind::Continue) => (St::Idling, None, None),
        (St::Greeting, _) | (_, Kind::Tagged { .. }) | (_, Kind::Continue) => {
            (St::Dead, None, None)
        }
        (st, Kind::Untagged(_)) => (st, None, exists),
    }
}

/// Run the workload.
pub fn run(
    t: &Target,
    smtp_addr: &str,
    to: &str,
    connections: usize,
    messages: u64,
    server_pid: Option<u32>,
) -> Result<Report> {
    let limit = raise_nofile();
    if (limit as usize) < connections + 64 {
        bail!("RLIMIT_NOFILE is {limit}: too low for {connections} connections");
    }
    let addr = t.addr.parse().context("--addr must be IP:port for idle")?;
    let rss_before = server_pid.and_then(rss_mib);
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut conns: Vec<Conn> = Vec::with_capacity(connections);
    let (mut opening, mut failed_open) = (0usize, 0u64);
    let t0 = Instant::now();
    // Phase 1: open every connection and bring it to IDLE.
    while conns.len() < connections || opening > 0 {
        while conns.len() < connections && opening < MAX_OPENING {
            let mut s = TcpStream::connect(addr)?;
            let tok = Token(conns.len());
            poll.registry()
                .register(&mut s, tok, Interest::READABLE | Interest::WRITABLE)?;
            conns.push(Conn {
                s,
                st: St::Greeting,
                inbuf: Vec::new(),
                out: Vec::new(),
                base: 0,
                seen: Vec::new(),
            });
            opening += 1;
        }
        poll.poll(&mut events, Some(Duration::from_secs(30)))?;
        if events.is_empty() {
            bail!("no progress for 30 s with {opening} handshakes pending");
        }
        for ev in events.iter() {
            let c = &mut conns[ev.token().0];
            let before = c.st;
            if before == St::Dead {
                continue;
            }
            let alive = if ev.is_readable() {
                c.on_readable(t)
            } else {
                c.flush().is_ok()
            };
            if !alive {
                c.st = St::Dead;
                failed_open += 1;
            }
            if before != St::Idling && matches!(c.st, St::Idling | St::Dead) {
                opening -= 1;
            }
        }
    }
    let connect_secs = t0.elapsed().as_secs_f64();
    let ready = conns.iter().filter(|c| c.st == St::Idling).count();
    let rss_idle = server_pid.and_then(rss_mib);

    // Phase 2: deliver one message at a time; wait for every push (or 10 s).
    let acks = Arc::new(Mutex::new(Vec::new()));
    let reached: Arc<Vec<AtomicUsize>> =
        Arc::new((0..messages).map(|_| AtomicUsize::new(0)).collect());
    let done = Arc::new(AtomicBool::new(false));
    let sender = {
        let (acks, reached, done) = (Arc::clone(&acks), Arc::clone(&reached), Arc::clone(&done));
        let (smtp_addr, to) = (smtp_addr.to_string(), to.to_string());
        std::thread::spawn(move || -> Result<()> {
            let res = (|| -> Result<()> {
                for k in 0..messages as usize {
                    smtp::run(SmtpOpts {
                        addr: smtp_addr.clone(),
                        sessions: 1,
                        messages: 1,
                        size: 1024,
                        from: "bench@localhost".into(),
                        to: to.clone(),
                        reuse: false,
                        pipeline: false,
                        acks: Some(Arc::clone(&acks)),
                    })?;
                    let until = Instant::now() + Duration::from_secs(10);
                    while reached[k].load(Ordering::Relaxed) < ready && Instant::now() < until {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
                Ok(())
            })();
            done.store(true, Ordering::Relaxed);
            res
        })
    };
    let phase2 = Instant::now();
    while !done.load(Ordering::Relaxed) {
        poll.poll(&mut events, Some(Duration::from_millis(20)))?;
        for ev in events.iter() {
            let c = &mut conns[ev.token().0];
            if c.st != St::Idling {
                continue;
            }
            let had = c.seen.last().map_or(c.base, |s| s.0);
            if !c.on_readable(t) {
                c.st = St::Dead;
            }
            let now = c.seen.last().map_or(c.base, |s| s.0);
            for k in had.saturating_sub(c.base)..now.saturating_sub(c.base) {
                if let Some(r) = reached.get(k as usize) {
                    r.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
    let elapsed = phase2.elapsed();
    sender
        .join()
        .map_err(|_| anyhow::anyhow!("sender panicked"))??;
    let acks = std::mem::take(&mut *acks.lock().ok().context("poisoned")?);
    let mut lat = Vec::new();
    let mut missing = 0u64;
    for c in conns.iter().filter(|c| c.st == St::Idling) {
        for d in delays(c.base, &acks, &c.seen) {
            match d {
                Some(d) => lat.push(d),
                None => missing += 1,
            }
        }
    }
    let mut r = Report {
        mode: "idle".into(),
        params: vec![
            ("imap".into(), t.addr.clone()),
            ("smtp".into(), smtp_addr.into()),
            ("connections".into(), connections.to_string()),
            ("messages".into(), messages.to_string()),
        ],
        ok: lat.len() as u64,
        failed: failed_open + missing,
        elapsed,
        latencies: lat,
        extra: vec![],
        cpu_wall: Duration::ZERO,
        client_cpu: 0.0,
        server_cpu: None,
        unit: "push/s".into(),
    };
    r.extra.push(("idling".into(), ready.to_string()));
    r.extra
        .push(("connect s".into(), format!("{connect_secs:.2}")));
    if let Some(m) = rss_before {
        r.extra.push(("rss before MiB".into(), format!("{m:.1}")));
    }
    if let Some(m) = rss_idle {
        r.extra.push(("rss idle MiB".into(), format!("{m:.1}")));
    }
    if let Some(m) = server_pid.and_then(rss_mib) {
        r.extra.push(("rss after MiB".into(), format!("{m:.1}")));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            addr: "127.0.0.1:1".into(),
            user: "u@x".into(),
            password: "pw".into(),
            mailbox: "INBOX".into(),
            compress: false,
        }
    }

    #[test]
    fn handshake_steps_to_idling_and_counts_exists() {
        let t = target();
        let (st, cmd, _) = step(St::Greeting, b"* OK [CAPABILITY IMAP4rev1] hi\r\n", &t);
        assert_eq!(
            (st, cmd.as_deref()),
            (St::Login, Some("l LOGIN \"u@x\" \"pw\"\r\n"))
        );
        let (st, cmd, _) = step(st, b"* CAPABILITY IMAP4rev1 IDLE\r\n", &t);
        assert_eq!((st, cmd), (St::Login, None));
        let (st, cmd, _) = step(st, b"l OK in\r\n", &t);
        assert_eq!(
            (st, cmd.as_deref()),
            (St::Select, Some("s SELECT \"INBOX\"\r\n"))
        );
        assert_eq!(
            step(st, b"* 12 EXISTS\r\n", &t),
            (St::Select, None, Some(12))
        );
        let (st, cmd, _) = step(st, b"s OK [READ-WRITE] done\r\n", &t);
        assert_eq!((st, cmd.as_deref()), (St::Idle, Some("i IDLE\r\n")));
        let (st, _, _) = step(st, b"+ idling\r\n", &t);
        assert_eq!(st, St::Idling);
        assert_eq!(
            step(st, b"* 13 EXISTS\r\n", &t),
            (St::Idling, None, Some(13))
        );
        assert_eq!(step(st, b"* 1 RECENT\r\n", &t), (St::Idling, None, None));
    }

    #[test]
    fn refusals_and_bad_greetings_end_the_connection() {
        let t = target();
        assert_eq!(step(St::Greeting, b"* BYE busy\r\n", &t).0, St::Dead);
        assert_eq!(step(St::Login, b"l NO wrong\r\n", &t).0, St::Dead);
        assert_eq!(step(St::Select, b"s NO nope\r\n", &t).0, St::Dead);
        assert_eq!(step(St::Idle, b"i BAD no idle\r\n", &t).0, St::Dead);
        assert_eq!(step(St::Idling, b"i OK idle done\r\n", &t).0, St::Dead);
    }

    #[test]
    fn own_rss_is_read() {
        let m = rss_mib(std::process::id()).unwrap_or(0.0);
        assert!(m > 0.1 && m < 10_000.0, "{m}");
        assert_eq!(rss_mib(u32::MAX), None);
    }

    #[test]
    fn nofile_limit_is_raised_to_the_hard_limit() {
        let got = raise_nofile();
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes only the struct we pass.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) }, 0);
        assert_eq!(got, rl.rlim_max);
        assert_eq!(rl.rlim_cur, rl.rlim_max);
    }
}
