//! `mailbench imap body`: `sessions` concurrent sessions each EXAMINE the
//! mailbox and fetch whole messages at random with `UID FETCH n BODY.PEEK[]`
//! (RFC 3501 §6.4.5, §6.4.8; PEEK leaves \Seen alone) until `count` fetches
//! are done in total. The UIDs come from one `UID SEARCH ALL` beforehand.

use super::client::{self, Imap};
use super::parse;
use super::Target;
use crate::stats::Report;
use anyhow::{bail, Context, Result};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// xorshift64*: a cheap, good-enough generator for picking UIDs.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from `seed` (never zero internally).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as usize
    }
}

fn all_uids(t: &Target) -> Result<Vec<u32>> {
    let mut c = client::open(&t.addr, &t.user, &t.password, &t.mailbox, true)?;
    let mut uids = Vec::new();
    c.run("UID SEARCH ALL", |u| {
        if let Some(v) = parse::search_numbers(u) {
            uids.extend(v);
        }
    })?;
    c.logout();
    if uids.is_empty() {
        bail!(
            "mailbox {} is empty: run `mailbench imap populate N` first",
            t.mailbox
        );
    }
    Ok(uids)
}

/// One fetch; the bytes of the response, checked to carry a literal.
fn fetch(c: &mut Imap, uid: u32) -> Result<usize> {
    let mut bytes = 0;
    let mut literal = false;
    c.run(&format!("UID FETCH {uid} BODY.PEEK[]"), |u| {
        bytes += u.len();
        // The literal's `{n}` ends the response's first line: look there
        // only (a scan of the whole body would cost the client more than
        // the server spends sending it).
        let first = u.iter().position(|&b| b == b'\n').unwrap_or(u.len());
        literal |= u[..first].ends_with(b"}\r");
    })?;
    if !literal {
        bail!("UID FETCH {uid} BODY.PEEK[] returned no body");
    }
    Ok(bytes)
}

/// Run the workload.
pub fn run(t: &Target, sessions: usize, count: u64) -> Result<Report> {
    let uids = Arc::new(all_uids(t)?);
    let next = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let total_bytes = Arc::new(AtomicU64::new(0));
    let wire_bytes = Arc::new(AtomicU64::new(0));
    let lat = Arc::new(Mutex::new(Vec::with_capacity(count as usize)));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    // Log in every session before the clock starts.
    let mut conns = Vec::new();
    for _ in 0..sessions.max(1) {
        conns.push(client::open_target(t, true)?);
    }
    let start = Instant::now();
    let mut workers = Vec::new();
    for (i, mut c) in conns.into_iter().enumerate() {
        let (uids, next, failed, total_bytes, wire_bytes, lat, errors) = (
            Arc::clone(&uids),
            Arc::clone(&next),
            Arc::clone(&failed),
            Arc::clone(&total_bytes),
            Arc::clone(&wire_bytes),
            Arc::clone(&lat),
            Arc::clone(&errors),
        );
        workers.push(std::thread::spawn(move || {
            let mut rng = Rng::new(i as u64 + 1);
            let mut mine = Vec::new();
            let wire_before = c.wire_in();
            while next.fetch_add(1, Ordering::Relaxed) < count {
                let uid = uids[rng.below(uids.len())];
                let t0 = Instant::now();
                match fetch(&mut c, uid) {
                    Ok(b) => {
                        mine.push(t0.elapsed());
                        total_bytes.fetch_add(b as u64, Ordering::Relaxed);
                    }
                    Err(e) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut errs) = errors.lock() {
                            if errs.len() < 5 {
                                errs.push(format!("{e:#}"));
                            }
                        }
                        break;
                    }
                }
            }
            wire_bytes.fetch_add(c.wire_in() - wire_before, Ordering::Relaxed);
            c.logout();
            if let Ok(mut l) = lat.lock() {
                l.extend(mine);
            }
        }));
    }
    for w in workers {
        let _ = w.join();
    }
    let elapsed = start.elapsed();
    for e in errors.lock().ok().context("poisoned")?.iter() {
        eprintln!("mailbench: error: {e}");
    }
    let latencies: Vec<Duration> = std::mem::take(&mut *lat.lock().ok().context("poisoned")?);
    let mut r = super::report(t, "body", "fetch/s", elapsed, latencies);
    r.failed = failed.load(Ordering::Relaxed);
    r.params.push(("sessions".into(), sessions.to_string()));
    r.params.push(("count".into(), count.to_string()));
    r.extra.push(("messages".into(), uids.len().to_string()));
    let mib = total_bytes.load(Ordering::Relaxed) as f64 / (1024.0 * 1024.0);
    r.extra.push((
        "MiB/s".into(),
        format!("{:.1}", mib / elapsed.as_secs_f64().max(1e-9)),
    ));
    // What crossed the socket: less than the responses with COMPRESS.
    let wire = wire_bytes.load(Ordering::Relaxed) as f64 / (1024.0 * 1024.0);
    r.extra.push(("wire MiB".into(), format!("{wire:.1}")));
    r.extra.push(("response MiB".into(), format!("{mib:.1}")));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_covers_the_range_and_stays_inside() {
        let mut r = Rng::new(3);
        let mut seen = [false; 10];
        for _ in 0..1000 {
            let x = r.below(10);
            assert!(x < 10);
            seen[x] = true;
        }
        assert!(seen.iter().all(|&s| s), "{seen:?}");
    }
}
