//! Single timed IMAP commands over a selected mailbox, repeated for
//! percentiles (RFC 3501 §6.3.1 SELECT, §6.4.5 FETCH, §6.4.4 SEARCH,
//! §6.4.6 STORE, §6.4.8 UID). The first run of FETCH and SEARCH is an
//! untimed warm-up reported separately as "cold ms".

use super::client::{self, Imap};
use super::populate::require_messages;
use super::Target;
use crate::stats::Report;
use anyhow::Result;
use std::time::{Duration, Instant};

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// Connect + greeting + LOGIN + SELECT, `repeat` times (LOGOUT untimed).
pub fn select(t: &Target, repeat: usize) -> Result<Report> {
    let n = require_messages(t)?;
    let mut lat = Vec::with_capacity(repeat);
    let mut work = Duration::ZERO;
    for _ in 0..repeat.max(1) {
        let t0 = Instant::now();
        let c = client::open_target(t, false)?;
        let d = t0.elapsed();
        work += d;
        lat.push(d);
        c.logout();
    }
    let mut r = super::report(t, "select", "select/s", work, lat);
    r.extra.push(("messages".into(), n.to_string()));
    Ok(r)
}

/// Time `cmd` on a session that has the mailbox selected: one untimed
/// warm-up run, then `repeat` timed runs; the report names the number of
/// untagged responses of the last run.
fn repeated(
    t: &Target,
    name: &str,
    cmds: &[String],
    repeat: usize,
    read_only: bool,
) -> Result<Report> {
    let n = require_messages(t)?;
    let mut c = client::open_target(t, read_only)?;
    let mut untagged = 0usize;
    let run_all = |c: &mut Imap, untagged: &mut usize| -> Result<Duration> {
        let t0 = Instant::now();
        *untagged = 0;
        for cmd in cmds {
            c.run(cmd, |_| *untagged += 1)?;
        }
        Ok(t0.elapsed())
    };
    let cold = run_all(&mut c, &mut untagged)?;
    let mut lat = Vec::with_capacity(repeat);
    let mut work = Duration::ZERO;
    let mut wire = 0;
    for _ in 0..repeat.max(1) {
        let before = c.wire_in();
        let d = run_all(&mut c, &mut untagged)?;
        wire = c.wire_in() - before;
        work += d;
        lat.push(d);
    }
    c.logout();
    let mut r = super::report(t, name, "cmd/s", work, lat);
    r.extra.push(("messages".into(), n.to_string()));
    r.extra.push(("cold ms".into(), ms(cold)));
    r.extra.push(("untagged".into(), untagged.to_string()));
    // Octets over the wire for one run (compressed ones with --compress).
    r.extra
        .push(("wire KiB".into(), format!("{:.0}", wire as f64 / 1024.0)));
    Ok(r)
}

/// `FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)`, warm.
pub fn fetch_meta(t: &Target, repeat: usize) -> Result<Report> {
    let cmd = "FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)".to_string();
    repeated(t, "fetch-meta", &[cmd], repeat, true)
}

/// `FETCH 1:count BODY.PEEK[]` on one connection, warm: the time to
/// move many whole messages, and the octets per second.
pub fn bodies(t: &Target, count: u64, repeat: usize) -> Result<Report> {
    // At most the messages there are (1:N past the last one is an error).
    let count = count.clamp(1, require_messages(t)?.max(1) as u64);
    let cmd = format!("FETCH 1:{count} BODY.PEEK[]");
    let mut r = repeated(t, "bodies", &[cmd], repeat, true)?;
    let mean_s = r.elapsed.as_secs_f64() / repeat.max(1) as f64;
    let wire_kib: f64 = r
        .extra
        .iter()
        .find(|(k, _)| k == "wire KiB")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0.0);
    if mean_s > 0.0 {
        r.extra.push((
            "MB/s".into(),
            format!("{:.0}", wire_kib * 1024.0 / mean_s / 1e6),
        ));
    }
    r.params.push(("count".into(), count.to_string()));
    Ok(r)
}

/// `UID SEARCH key word`, warm; the hit count is reported. With
/// `first_select`, the messages are not checked on a connection of their
/// own first: the session's EXAMINE is then the mailbox's first (when no
/// one else opened it), and the first search, sent right after it, is the
/// one reported as "cold ms".
pub fn search(
    t: &Target,
    key: &str,
    word: &str,
    repeat: usize,
    first_select: bool,
) -> Result<Report> {
    let cmd = format!("UID SEARCH {key} {}", super::parse::quote(word));
    let (n, mut c) = if first_select {
        let (c, n) = client::open_target_counted(t, true)?;
        if n == 0 {
            anyhow::bail!("mailbox {} is empty", t.mailbox);
        }
        (n, c)
    } else {
        (require_messages(t)?, client::open_target(t, true)?)
    };
    let mut hits = 0usize;
    let mut once = |c: &mut Imap| -> Result<Duration> {
        let t0 = Instant::now();
        c.run(&cmd, |u| {
            if let Some(v) = super::parse::search_numbers(u) {
                hits = v.len();
            }
        })?;
        Ok(t0.elapsed())
    };
    let cold = once(&mut c)?;
    let mut lat = Vec::new();
    let mut work = Duration::ZERO;
    for _ in 0..repeat.max(1) {
        let d = once(&mut c)?;
        work += d;
        lat.push(d);
    }
    c.logout();
    let mut r = super::report(t, "search", "cmd/s", work, lat);
    r.params.push(("key".into(), key.into()));
    r.params.push(("word".into(), word.into()));
    r.extra.push(("messages".into(), n.to_string()));
    r.extra.push(("cold ms".into(), ms(cold)));
    r.extra.push(("hits".into(), hits.to_string()));
    Ok(r)
}

/// `STORE 1:* +FLAGS (\Flagged)` then `STORE 1:* -FLAGS (\Flagged)`: each
/// command is one latency sample (the warm-up pair is untimed).
pub fn store(t: &Target, repeat: usize) -> Result<Report> {
    let add = "STORE 1:* +FLAGS (\\Flagged)".to_string();
    let del = "STORE 1:* -FLAGS (\\Flagged)".to_string();
    let n = require_messages(t)?;
    let mut c = client::open_target(t, false)?;
    let mut lat = Vec::new();
    let mut work = Duration::ZERO;
    for i in 0..=repeat.max(1) {
        for cmd in [&add, &del] {
            let t0 = Instant::now();
            c.run(cmd, |_| {})?;
            if i > 0 {
                let d = t0.elapsed();
                work += d;
                lat.push(d);
            }
        }
    }
    c.logout();
    let mut r = super::report(t, "store", "cmd/s", work, lat);
    r.extra.push(("messages".into(), n.to_string()));
    Ok(r)
}
