//! `mailbench e2e`: SMTP `250` (RFC 5321 §4.1.1.4) to visible over IMAP.
//! One IMAP session watches the mailbox with IDLE (RFC 2177), or NOOP
//! polling every 5 ms when IDLE is not advertised (RFC 3501 §6.1.2), while
//! the SMTP load runs. The k-th message counts as visible when EXISTS first
//! reaches base + k; its delay is measured from the k-th `250`.

use crate::imap::client::Imap;
use crate::imap::parse::{self, Kind};
use crate::imap::Target;
use crate::smtp::{self, SmtpOpts};
use crate::stats::Report;
use anyhow::{bail, Context, Result};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// EXISTS counts seen, with when.
type Seen = Vec<(u32, Instant)>;

/// Watch until EXISTS reaches `want` or nothing new arrives for 30 s.
fn watch(mut c: Imap, want: u32) -> Result<Seen> {
    let mut seen = Vec::new();
    c.set_timeout(Duration::from_secs(30))?;
    let note = |u: &[u8], seen: &mut Seen| {
        if let Some(n) = parse::exists(u) {
            seen.push((n, Instant::now()));
        }
    };
    let reached = |seen: &Seen| seen.last().is_some_and(|(n, _)| *n >= want);
    if c.has("IDLE") {
        let tag = c.tag();
        c.send(format!("{tag} IDLE\r\n").as_bytes())?;
        loop {
            match c.read()? {
                Kind::Continue => break,
                Kind::Untagged(u) => {
                    let u = u.to_vec();
                    note(&u, &mut seen);
                }
                Kind::Tagged { text, .. } => {
                    bail!("IDLE refused: {}", String::from_utf8_lossy(text))
                }
            }
        }
        while !reached(&seen) {
            if let Kind::Untagged(u) = c.read()? {
                let u = u.to_vec();
                note(&u, &mut seen);
            }
        }
        c.send(b"DONE\r\n")?;
        loop {
            if let Kind::Tagged { .. } = c.read()? {
                break;
            }
        }
    } else {
        let deadline = Instant::now() + Duration::from_secs(600);
        while !reached(&seen) && Instant::now() < deadline {
            c.run("NOOP", |u| note(u, &mut seen))?;
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    c.logout();
    Ok(seen)
}

/// For each k in 1..=acks.len(): the delay from the k-th ack to the first
/// time EXISTS reached base + k (zero if it was seen first), or None if
/// it never did.
pub fn delays(base: u32, acks: &[Instant], seen: &Seen) -> Vec<Option<Duration>> {
    let mut out = Vec::with_capacity(acks.len());
    let mut i = 0;
    for (k, ack) in acks.iter().enumerate() {
        let want = base + k as u32 + 1;
        while i < seen.len() && seen[i].0 < want {
            i += 1;
        }
        out.push(
            seen.get(i)
                .map(|(_, at)| at.saturating_duration_since(*ack)),
        );
    }
    out
}

/// Run the workload.
pub fn run(
    t: &Target,
    smtp_addr: &str,
    to: &str,
    sessions: usize,
    messages: u64,
    size: usize,
) -> Result<Report> {
    let mut c = Imap::connect(&t.addr)?;
    c.login(&t.user, &t.password)?;
    let base = c.select(&t.mailbox, true)?;
    let idle = c.has("IDLE");
    let want = base + messages as u32;
    let watcher = std::thread::spawn(move || watch(c, want));
    let acks = Arc::new(Mutex::new(Vec::with_capacity(messages as usize)));
    let start = Instant::now();
    let sent = smtp::run(SmtpOpts {
        addr: smtp_addr.into(),
        sessions,
        messages,
        size,
        from: "bench@localhost".into(),
        to: to.into(),
        reuse: false,
        pipeline: false,
        acks: Some(Arc::clone(&acks)),
    })?;
    let smtp_secs = start.elapsed().as_secs_f64();
    let seen = watcher
        .join()
        .map_err(|_| anyhow::anyhow!("watcher panicked"))?;
    let seen = match seen {
        Ok(s) => s,
        Err(e) => {
            eprintln!("mailbench: watcher: {e:#}");
            Vec::new()
        }
    };
    let mut acks = std::mem::take(&mut *acks.lock().ok().context("poisoned")?);
    acks.sort();
    let d = delays(base, &acks, &seen);
    let missing = d.iter().filter(|x| x.is_none()).count() as u64;
    let last_visible = seen
        .iter()
        .find(|(n, _)| *n >= want)
        .or(seen.last())
        .map(|(_, at)| at.saturating_duration_since(start))
        .unwrap_or_else(|| start.elapsed());
    let mut r = Report {
        mode: "e2e".into(),
        params: vec![
            ("smtp".into(), smtp_addr.into()),
            ("imap".into(), t.addr.clone()),
            ("sessions".into(), sessions.to_string()),
            ("messages".into(), messages.to_string()),
            ("size".into(), size.to_string()),
        ],
        ok: d.iter().flatten().count() as u64,
        failed: sent.failed + missing,
        elapsed: last_visible,
        latencies: d.into_iter().flatten().collect(),
        extra: vec![],
        cpu_wall: Duration::ZERO,
        client_cpu: 0.0,
        server_cpu: None,
        unit: "visible/s".into(),
    };
    r.extra.push((
        "smtp msg/s".into(),
        format!("{:.1}", sent.ok as f64 / smtp_secs.max(1e-9)),
    ));
    r.extra
        .push(("watch".into(), if idle { "IDLE" } else { "NOOP" }.into()));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_match_kth_ack_to_first_count_reaching_base_plus_k() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let acks = [ms(10), ms(20), ms(30), ms(40)];
        // EXISTS 5 (base) then 7 at 25 ms (covers two), 8 at 28 ms (before its
        // ack at 30: zero delay), never 9.
        let seen = vec![(5, ms(0)), (7, ms(25)), (8, ms(28))];
        let d = delays(5, &acks, &seen);
        assert_eq!(
            d,
            vec![
                Some(Duration::from_millis(15)),
                Some(Duration::from_millis(5)),
                Some(Duration::ZERO),
                None
            ]
        );
    }
}
