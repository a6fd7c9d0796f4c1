//! `mailbench outbound`: how fast an MTA gets queued mail to other hosts.
//! N messages (10,000 of 4 KiB by default) to recipients in D domains
//! (`d0.test` .. `d99.test`, in turn) are submitted over SMTP (AUTH PLAIN
//! when given credentials, as minimail's submission port wants; Postfix
//! relays for `mynetworks` without), and the MTA delivers them to the
//! domains' MX hosts, which the benchmark's DNS (or transport map) points
//! at a sink on loopback. Three kinds of destination:
//!
//! - `--sink ADDR` (the default set-up of bench/compare.sh): mailbench
//!   itself is the sink (`sink.rs`), on `--sink-ips` consecutive addresses
//!   so each domain can have an MX host of its own. It notes when it said
//!   `250` to each message, on the submitter's clock, so the *queue delay*
//!   (submitting `250` to remote `250`) is exact for every message, and the
//!   rate is messages over the time from the start of submission to the
//!   last remote `250`. An MTA may deliver a message before the submitting
//!   session has read its `250` (its thread not scheduled yet): that
//!   message counts 0 and is counted as `early`; `from_dot_*` are the same
//!   delays counted from the moment the final dot was written instead
//!   (which includes the MTA's accepting the message). With `--hold` it
//!   keeps every connection waiting before its greeting until the last
//!   message is queued: the rate is then the drain of a full queue (from
//!   the release), and the delays are counted from the release.
//! - `--sink-counter FILE`: the destination is Postfix's smtp-sink run
//!   with `-c` and its standard output in FILE (where it prints `sess=N
//!   quit=N mesg=N` after every message); mailbench polls the count every
//!   20 ms, so it gets the time the last message arrived (the rate) but no
//!   per-message delay.
//! - neither: only submit, then keep watching `--server-pid`'s memory for
//!   `--linger` seconds (the RSS check: a big queue for a destination that
//!   does not answer).
//!
//! By default each of the `--sessions` sends its next message as soon as
//! the last is accepted, so the rate is bounded by how fast the server
//! accepts as well as by how fast it delivers, and the delays grow with
//! whatever backlog that builds. `--rate R` offers R messages a second
//! instead (message n not before n / R s): at a load both servers keep up
//! with, their queue delays compare directly.
//!
//! With `--server-pid`, the server's VmRSS (/proc/PID/status) is sampled
//! every 100 ms throughout and its peak reported, with the anonymous, file
//! and shared-memory parts at that moment.

mod sink;
mod submit;

use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;

use crate::stats::{self, Report};
pub use submit::Plan;

/// Where the MTA delivers.
#[derive(Debug, Clone)]
pub enum Dest {
    /// mailbench's own sink on `ips` addresses from `first`.
    Own {
        first: SocketAddr,
        ips: u32,
        hold: bool,
    },
    /// smtp-sink -c, its output in this file.
    Counter(PathBuf),
    /// Nowhere mailbench can see: submit, then watch the server's memory.
    None { linger: Duration },
}

/// Options of one run.
#[derive(Debug, Clone)]
pub struct Opts {
    pub plan: Plan,
    pub dest: Dest,
    /// Longest wait for the deliveries, from the start of submission.
    pub timeout: Duration,
    pub server_pid: Option<u32>,
}

/// A fresh stamp for this run's messages.
pub fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}{:x}", std::process::id(), nanos & 0xffff_ffff_ffff)
}

/// Run the workload and collect the report.
pub fn run(o: Opts) -> Result<Report> {
    let base = Instant::now();
    let p = &o.plan;
    let own = match &o.dest {
        Dest::Own { first, ips, hold } => Some(sink::Sink::start(
            *first, *ips, base, &p.run, p.messages, *hold,
        )?),
        _ => None,
    };
    let counter_start = match &o.dest {
        Dest::Counter(f) => Some(sink_count(f).unwrap_or(0)),
        _ => None,
    };
    let watch = o.server_pid.map(MemWatch::start);
    let sub = submit::run(p, base)?;
    let deadline = Duration::from_nanos(sub.started) + o.timeout;
    let ns = |d: Duration| d.as_nanos() as u64;

    let mut extra: Vec<(String, String)> = vec![
        ("submitted".into(), sub.ok.to_string()),
        ("submit_failed".into(), sub.failed.to_string()),
        (
            "submit_seconds".into(),
            format!("{:.3}", secs(sub.ended - sub.started)),
        ),
        (
            "submit_rate".into(),
            format!(
                "{:.1}",
                sub.ok as f64 / secs(sub.ended - sub.started).max(1e-9)
            ),
        ),
    ];
    let mut latencies = Vec::new();
    let (ok, failed, elapsed_ns, kind) = match (&o.dest, own) {
        (Dest::Own { hold, ips, .. }, Some(sink)) => {
            let release = base.elapsed().as_nanos() as u64;
            if *hold {
                sink.release();
            }
            wait(&deadline, base, sub.ok, || {
                sink.delivered.load(Ordering::Acquire)
            });
            let from = |ack: u64| if *hold { ack.max(release) } else { ack };
            let (mut last, mut early) = (0u64, 0u64);
            let mut from_dot = Vec::new();
            for seq in 0..p.messages {
                let Some(at) = sink.arrival(seq) else {
                    continue;
                };
                last = last.max(at);
                if let Some(ack) = sub.ack(seq) {
                    if at < ack {
                        early += 1;
                    }
                    latencies.push(Duration::from_nanos(at.saturating_sub(from(ack))));
                }
                if let Some(dot) = sub.dot(seq) {
                    from_dot.push(Duration::from_nanos(at.saturating_sub(from(dot))));
                }
            }
            from_dot.sort();
            let delivered = sink.delivered.load(Ordering::Acquire);
            let conns = sink.connections.load(Ordering::Relaxed);
            let txns = sink.transactions.load(Ordering::Relaxed);
            extra.extend([
                (
                    "drain_seconds".into(),
                    format!("{:.3}", secs(last.saturating_sub(sub.ended))),
                ),
                ("sink_connections".into(), conns.to_string()),
                (
                    "msgs_per_connection".into(),
                    format!("{:.1}", txns as f64 / conns.max(1) as f64),
                ),
                (
                    "duplicates".into(),
                    sink.duplicates.load(Ordering::Relaxed).to_string(),
                ),
                (
                    "foreign".into(),
                    sink.foreign.load(Ordering::Relaxed).to_string(),
                ),
                ("early".into(), early.to_string()),
                (
                    "from_dot_p50_ms".into(),
                    format!("{:.2}", stats::pct(&from_dot, 0.50)),
                ),
                (
                    "from_dot_p99_ms".into(),
                    format!("{:.2}", stats::pct(&from_dot, 0.99)),
                ),
            ]);
            let start = if *hold { release } else { sub.started };
            let kind = format!(
                "mailbench sink on {ips} address(es){}",
                if *hold { ", held until all queued" } else { "" }
            );
            (
                delivered,
                p.messages - delivered.min(p.messages),
                last.saturating_sub(start),
                kind,
            )
        }
        (Dest::Counter(file), _) => {
            let c0 = counter_start.unwrap_or(0);
            let target = sub.ok;
            let mut at = 0u64;
            let mut got = 0u64;
            while base.elapsed() < deadline {
                got = sink_count(file).map_or(0, |c| c.saturating_sub(c0));
                if got >= target {
                    at = ns(base.elapsed());
                    break;
                }
                progress(base, got, target);
                std::thread::sleep(Duration::from_millis(20));
            }
            if at == 0 {
                at = ns(base.elapsed());
            }
            extra.push((
                "drain_seconds".into(),
                format!("{:.3}", secs(at.saturating_sub(sub.ended))),
            ));
            (
                got.min(p.messages),
                p.messages - got.min(p.messages),
                at - sub.started,
                "smtp-sink -c (count polled every 20 ms; no per-message delay)".to_owned(),
            )
        }
        (Dest::None { linger }, _) => {
            std::thread::sleep(*linger);
            (
                sub.ok,
                sub.failed,
                sub.ended - sub.started,
                format!(
                    "none (submit only, then {} s of watching)",
                    linger.as_secs()
                ),
            )
        }
        (Dest::Own { .. }, None) => anyhow::bail!("sink not started"),
    };
    if let Some(w) = watch {
        extra.extend(w.finish());
    }
    Ok(Report {
        mode: "outbound".into(),
        params: vec![
            ("submit".into(), p.addr.clone()),
            ("auth".into(), p.auth.is_some().to_string()),
            ("messages".into(), p.messages.to_string()),
            ("size".into(), p.size.to_string()),
            ("domains".into(), p.domains.to_string()),
            ("sessions".into(), p.sessions.to_string()),
            (
                "offered".into(),
                p.rate
                    .map_or_else(|| "max".to_owned(), |r| format!("{r} msg/s")),
            ),
            ("destination".into(), kind),
        ],
        ok,
        failed,
        elapsed: Duration::from_nanos(elapsed_ns.max(1)),
        latencies,
        extra,
        cpu_wall: Duration::ZERO,
        client_cpu: 0.0,
        server_cpu: None,
        unit: "msg/s".into(),
    })
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// Wait until `count()` reaches `target` or the deadline passes.
fn wait(deadline: &Duration, base: Instant, target: u64, count: impl Fn() -> u64) {
    loop {
        let got = count();
        if got >= target || base.elapsed() >= *deadline {
            return;
        }
        progress(base, got, target);
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A line on stderr about every ten seconds.
fn progress(base: Instant, got: u64, target: u64) {
    thread_local!(static LAST: std::cell::Cell<u64> = const { std::cell::Cell::new(0) });
    let tick = base.elapsed().as_secs() / 10;
    if LAST.with(|l| l.replace(tick)) != tick {
        eprintln!(
            "mailbench outbound: {got} of {target} delivered after {} s",
            base.elapsed().as_secs()
        );
    }
}

/// The last `mesg=N` smtp-sink -c wrote to `file`.
fn sink_count(file: &Path) -> Option<u64> {
    let mut f = std::fs::File::open(file).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(256))).ok()?;
    let mut tail = String::new();
    f.read_to_string(&mut tail).ok()?;
    last_mesg(&tail)
}

fn last_mesg(text: &str) -> Option<u64> {
    let at = text.rfind("mesg=")?;
    let digits: String = text[at + 5..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The server's memory, sampled every 100 ms on a thread of its own.
struct MemWatch {
    pid: u32,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Option<Mem>>,
}

/// One /proc/PID/status sample, KiB.
#[derive(Clone, Copy, Default, Debug, PartialEq)]
struct Mem {
    rss: u64,
    anon: u64,
    file: u64,
    shmem: u64,
    hwm: u64,
}

fn mem_of(pid: u32) -> Option<Mem> {
    parse_status(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

fn parse_status(text: &str) -> Option<Mem> {
    let field = |name: &str| -> Option<u64> {
        text.lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some(Mem {
        rss: field("VmRSS:")?,
        anon: field("RssAnon:").unwrap_or(0),
        file: field("RssFile:").unwrap_or(0),
        shmem: field("RssShmem:").unwrap_or(0),
        hwm: field("VmHWM:").unwrap_or(0),
    })
}

impl MemWatch {
    fn start(pid: u32) -> MemWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut peak: Option<Mem> = None;
            loop {
                if let Some(m) = mem_of(pid) {
                    if peak.is_none_or(|p| m.rss > p.rss) {
                        peak = Some(m);
                    }
                }
                if s.load(Ordering::Relaxed) {
                    return peak;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        MemWatch { pid, stop, thread }
    }

    /// Stop sampling; the figures, in MiB.
    fn finish(self) -> Vec<(String, String)> {
        self.stop.store(true, Ordering::Relaxed);
        let peak = self.thread.join().ok().flatten();
        let end = mem_of(self.pid);
        let mib = |kb: u64| format!("{:.1}", kb as f64 / 1024.0);
        let mut out = Vec::new();
        if let Some(p) = peak {
            out.push(("rss_peak_mib".into(), mib(p.rss)));
            out.push(("rss_peak_anon_mib".into(), mib(p.anon)));
            out.push(("rss_peak_file_mib".into(), mib(p.file)));
            out.push(("rss_peak_shmem_mib".into(), mib(p.shmem)));
        }
        if let Some(e) = end {
            out.push(("rss_end_mib".into(), mib(e.rss)));
            out.push(("hwm_mib".into(), mib(e.hwm)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_sink_counter_is_read() {
        assert_eq!(
            last_mesg("sess=0 quit=0 mesg=1\rsess=1 quit=1 mesg=12\r"),
            Some(12)
        );
        assert_eq!(last_mesg(""), None);
    }

    #[test]
    fn proc_status_is_parsed() {
        let text = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nRssAnon:\t 512 kB\n\
                    RssFile:\t 256 kB\nRssShmem:\t 256 kB\n";
        assert_eq!(
            parse_status(text),
            Some(Mem {
                rss: 1024,
                anon: 512,
                file: 256,
                shmem: 256,
                hwm: 2048
            })
        );
        assert!(mem_of(std::process::id()).is_some_and(|m| m.rss > 0));
    }
}
