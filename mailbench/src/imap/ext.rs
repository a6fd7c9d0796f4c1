//! Workloads for the extensions clients lean on for big mailboxes:
//! server-side `UID SORT` and `UID THREAD` (RFC 5256) and a QRESYNC
//! re-SELECT after changes (RFC 7162 §3.2.5). Each is timed like the other
//! single-command workloads (one untimed warm-up, then `repeat` samples);
//! the QRESYNC one also reports the bytes the server sent for the SELECT.

use super::client::{self, Imap};
use super::parse::{self, quote};
use super::populate::require_messages;
use super::Target;
use crate::stats::Report;
use anyhow::{bail, Result};
use std::time::{Duration, Instant};

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// Time one command (after a warm-up) `repeat` times on a session that
/// has the mailbox selected, counting the untagged bytes of the last run.
fn timed(t: &Target, name: &str, cmd: &str, need: &str, repeat: usize) -> Result<Report> {
    let n = require_messages(t)?;
    let mut c = client::open_target(t, true)?;
    if !c.has(need) {
        bail!("the server does not advertise {need}");
    }
    let mut bytes = 0usize;
    let once = |c: &mut Imap, bytes: &mut usize| -> Result<Duration> {
        *bytes = 0;
        let t0 = Instant::now();
        c.run(cmd, |u| *bytes += u.len())?;
        Ok(t0.elapsed())
    };
    let cold = once(&mut c, &mut bytes)?;
    let mut lat = Vec::with_capacity(repeat);
    let mut work = Duration::ZERO;
    for _ in 0..repeat.max(1) {
        let d = once(&mut c, &mut bytes)?;
        work += d;
        lat.push(d);
    }
    c.logout();
    let mut r = super::report(t, name, "cmd/s", work, lat);
    r.params.push(("command".into(), cmd.into()));
    r.extra.push(("messages".into(), n.to_string()));
    r.extra.push(("cold ms".into(), ms(cold)));
    r.extra.push(("bytes".into(), bytes.to_string()));
    Ok(r)
}

/// `UID SORT (criteria) UTF-8 ALL`.
pub fn sort(t: &Target, criteria: &str, repeat: usize) -> Result<Report> {
    let cmd = format!("UID SORT ({criteria}) UTF-8 ALL");
    timed(t, "sort", &cmd, "SORT", repeat)
}

/// `UID THREAD algorithm UTF-8 ALL`.
pub fn thread(t: &Target, algorithm: &str, repeat: usize) -> Result<Report> {
    let cmd = format!("UID THREAD {algorithm} UTF-8 ALL");
    timed(t, "thread", &cmd, &format!("THREAD={algorithm}"), repeat)
}

/// The number after `[NAME ` in an untagged response, if any.
fn code_number(untagged: &[u8], name: &str) -> Option<u64> {
    let s = String::from_utf8_lossy(untagged);
    let at = s.find(&format!("[{name} "))? + name.len() + 2;
    s[at..].split(']').next()?.trim().parse().ok()
}

/// Log in, `ENABLE QRESYNC`, and SELECT with `qresync` parameters (or
/// plainly); the UIDVALIDITY, HIGHESTMODSEQ and untagged bytes seen.
fn qresync_select(t: &Target, qresync: Option<(u64, u64)>) -> Result<(Imap, u64, u64, usize)> {
    let mut c = Imap::connect(&t.addr)?;
    c.login(&t.user, &t.password)?;
    if !c.has("QRESYNC") {
        bail!("the server does not advertise QRESYNC");
    }
    c.run("ENABLE QRESYNC", |_| {})?;
    let mut cmd = format!("SELECT {}", quote(&t.mailbox));
    if let Some((uv, m)) = qresync {
        cmd.push_str(&format!(" (QRESYNC ({uv} {m}))"));
    }
    let (mut uv, mut modseq, mut bytes) = (0, 0, 0);
    c.run(&cmd, |u| {
        bytes += u.len();
        uv = code_number(u, "UIDVALIDITY").unwrap_or(uv);
        modseq = code_number(u, "HIGHESTMODSEQ").unwrap_or(modseq);
    })?;
    Ok((c, uv, modseq, bytes))
}

/// A client that was away: note the mailbox state, make `changes` flag
/// changes and `expunges` expunges from another session, then time a fresh
/// connection's `SELECT ... (QRESYNC (uidvalidity modseq))` (LOGIN and
/// ENABLE untimed) `repeat` times. Destructive: `expunges` messages go.
pub fn qresync(t: &Target, changes: usize, expunges: usize, repeat: usize) -> Result<Report> {
    let n = require_messages(t)?;
    let (c, uv, modseq, full_bytes) = qresync_select(t, None)?;
    c.logout();
    // The other session's changes, spread over the mailbox.
    let mut w = client::open(&t.addr, &t.user, &t.password, &t.mailbox, false)?;
    let mut uids = Vec::new();
    w.run("UID SEARCH ALL", |u| {
        if let Some(v) = parse::search_numbers(u) {
            uids = v;
        }
    })?;
    if uids.len() < changes + expunges {
        bail!(
            "the mailbox has {} messages; need {}",
            uids.len(),
            changes + expunges
        );
    }
    let step = uids.len() / (changes + expunges).max(1);
    let picked: Vec<u32> = (0..changes + expunges).map(|k| uids[k * step]).collect();
    let (flagged, gone) = picked.split_at(changes);
    for u in flagged {
        w.run(
            &format!("UID STORE {u} +FLAGS.SILENT ($MailbenchSeen)"),
            |_| {},
        )?;
    }
    if !gone.is_empty() {
        let set: Vec<String> = gone.iter().map(u32::to_string).collect();
        let set = set.join(",");
        w.run(
            &format!("UID STORE {set} +FLAGS.SILENT (\\Deleted)"),
            |_| {},
        )?;
        w.run(&format!("UID EXPUNGE {set}"), |_| {})?;
    }
    w.logout();
    let mut lat = Vec::with_capacity(repeat);
    let mut work = Duration::ZERO;
    let mut bytes = 0;
    for k in 0..=repeat.max(1) {
        let t0 = Instant::now();
        let (c, _, _, b) = qresync_select(t, Some((uv, modseq)))?;
        let d = t0.elapsed();
        c.logout();
        bytes = b;
        if k > 0 {
            work += d;
            lat.push(d);
        }
    }
    let mut r = super::report(t, "qresync", "select/s", work, lat);
    r.params.push(("changes".into(), changes.to_string()));
    r.params.push(("expunges".into(), expunges.to_string()));
    r.extra.push(("messages".into(), n.to_string()));
    r.extra.push(("bytes".into(), bytes.to_string()));
    r.extra
        .push(("full select bytes".into(), full_bytes.to_string()));
    Ok(r)
}

/// SELECT of a mailbox that changed since it was last selected (issue 21):
/// one session keeps re-SELECTing the mailbox; before each timed SELECT
/// another session makes `changes` flag changes spread over the mailbox
/// (`UID STORE +FLAGS.SILENT (\Flagged)`, taken off again the next round),
/// APPENDs one message and expunges the one it APPENDed the round before
/// (so the mailbox keeps its size). `repeat` timed SELECTs after one
/// untimed one. Needs UIDPLUS and LITERAL+.
pub fn select_changed(t: &Target, changes: usize, repeat: usize) -> Result<Report> {
    let n = require_messages(t)?;
    let mut w = client::open_target(t, false)?;
    if !w.has("UIDPLUS") || !w.has("LITERAL+") {
        bail!("the server does not advertise UIDPLUS and LITERAL+");
    }
    let mut uids = Vec::new();
    w.run("UID SEARCH ALL", |u| {
        if let Some(v) = parse::search_numbers(u) {
            uids = v;
        }
    })?;
    if uids.len() < changes.max(1) {
        bail!("the mailbox has {} messages; need {changes}", uids.len());
    }
    let mut c = client::open_target(t, false)?;
    let mb = quote(&t.mailbox);
    let step = uids.len() / changes.max(1);
    let mut appended: Option<u32> = None;
    let mut lat = Vec::with_capacity(repeat);
    let mut work = Duration::ZERO;
    for round in 0..=repeat.max(1) {
        let sign = if round % 2 == 0 { '+' } else { '-' };
        if changes > 0 {
            let set: Vec<String> = (0..changes)
                .map(|k| uids[(k * step + round / 2) % uids.len()].to_string())
                .collect();
            w.run(
                &format!("UID STORE {} {sign}FLAGS.SILENT (\\Flagged)", set.join(",")),
                |_| {},
            )?;
        }
        let msg = format!(
            "From: bench@example.org\r\nTo: bench@example.org\r\nSubject: select-changed {round}\r\n\r\nround {round}\r\n"
        );
        let d = w.run_with(&format!("APPEND {mb} {{{}+}}\r\n{msg}", msg.len()), |_| {})?;
        if !d.ok {
            bail!("APPEND failed: {}", d.text);
        }
        let new_uid = d
            .text
            .split("APPENDUID ")
            .nth(1)
            .and_then(|r| r.split([' ', ']']).nth(1))
            .and_then(|u| u.parse::<u32>().ok());
        if let Some(p) = appended {
            w.run(&format!("UID STORE {p} +FLAGS.SILENT (\\Deleted)"), |_| {})?;
            w.run(&format!("UID EXPUNGE {p}"), |_| {})?;
        }
        appended = new_uid;
        let t0 = Instant::now();
        c.select(&t.mailbox, false)?;
        let d = t0.elapsed();
        if round > 0 {
            work += d;
            lat.push(d);
        }
    }
    if let Some(p) = appended {
        w.run(&format!("UID STORE {p} +FLAGS.SILENT (\\Deleted)"), |_| {})?;
        w.run(&format!("UID EXPUNGE {p}"), |_| {})?;
    }
    w.logout();
    c.logout();
    let mut r = super::report(t, "select-changed", "select/s", work, lat);
    r.params.push(("changes".into(), changes.to_string()));
    r.extra.push(("messages".into(), n.to_string()));
    Ok(r)
}

/// The name of LIST-STATUS mailbox `k` (flat, so any delimiter does).
fn list_box(t: &Target, k: usize) -> String {
    format!("{}-{k:04}", t.mailbox)
}

/// Bring the account to `mailboxes` mailboxes in all (servers start
/// accounts with different sets) by making mailboxes `<mailbox>-0000`...,
/// each holding one message (APPEND with LITERAL+, RFC 7888), every
/// other one read; then time `LIST "" "*" RETURN (STATUS (MESSAGES
/// UNSEEN))` (LIST-STATUS, RFC 5819): the first on a fresh connection
/// (cold), then `repeat` more (warm). Reports the mailboxes listed and
/// the untagged bytes of one LIST.
pub fn list_status(t: &Target, mailboxes: usize, repeat: usize) -> Result<Report> {
    let mut c = Imap::connect(&t.addr)?;
    c.login(&t.user, &t.password)?;
    if !c.has("LIST-STATUS") || !c.has("LITERAL+") {
        bail!("the server does not advertise LIST-STATUS and LITERAL+");
    }
    let mut have = std::collections::HashSet::new();
    c.run("LIST \"\" \"*\"", |u| {
        let s = String::from_utf8_lossy(u);
        if let Some(name) = s.rsplit(' ').next() {
            have.insert(name.trim().trim_matches('"').to_owned());
        }
    })?;
    let t0 = Instant::now();
    let mut made = 0usize;
    for k in 0..mailboxes {
        if have.len() + made >= mailboxes {
            break;
        }
        let name = list_box(t, k);
        if have.contains(&name) {
            continue;
        }
        c.run(&format!("CREATE {}", quote(&name)), |_| {})?;
        let flags = if k % 2 == 0 { "(\\Seen) " } else { "" };
        let msg = format!(
            "From: a@example.org\r\nTo: b@example.org\r\nSubject: box {k}\r\n\
             Message-ID: <ls{k}@mailbench>\r\n\r\nbody {k}\r\n"
        );
        c.run(
            &format!("APPEND {} {flags}{{{}+}}\r\n{msg}", quote(&name), msg.len()),
            |_| {},
        )?;
        made += 1;
    }
    let populate = t0.elapsed();
    c.logout();
    let cmd = "LIST \"\" \"*\" RETURN (STATUS (MESSAGES UNSEEN))";
    let mut c = Imap::connect(&t.addr)?;
    c.login(&t.user, &t.password)?;
    let (mut bytes, mut listed, mut statuses) = (0usize, 0usize, 0usize);
    let mut once = |c: &mut Imap| -> Result<Duration> {
        (bytes, listed, statuses) = (0, 0, 0);
        let t0 = Instant::now();
        c.run(cmd, |u| {
            bytes += u.len();
            if u.starts_with(b"LIST ") {
                listed += 1;
            } else if u.starts_with(b"STATUS ") {
                statuses += 1;
            }
        })?;
        Ok(t0.elapsed())
    };
    let cold = once(&mut c)?;
    let mut lat = Vec::with_capacity(repeat);
    let mut work = Duration::ZERO;
    for _ in 0..repeat.max(1) {
        let d = once(&mut c)?;
        work += d;
        lat.push(d);
    }
    c.logout();
    if statuses < listed.min(mailboxes) {
        bail!("LIST-STATUS gave {statuses} STATUS responses for {listed} mailboxes");
    }
    let mut r = super::report(t, "list-status", "list/s", work, lat);
    r.params.push(("command".into(), cmd.into()));
    r.extra.push(("mailboxes".into(), listed.to_string()));
    r.extra.push(("created".into(), made.to_string()));
    r.extra.push((
        "populate s".into(),
        format!("{:.1}", populate.as_secs_f64()),
    ));
    r.extra.push(("cold ms".into(), ms(cold)));
    r.extra.push(("bytes".into(), bytes.to_string()));
    Ok(r)
}

#[cfg(test)]
mod tests {
    #[test]
    fn response_codes_are_read() {
        assert_eq!(
            super::code_number(b"OK [UIDVALIDITY 1234] UIDs valid\r\n", "UIDVALIDITY"),
            Some(1234)
        );
        assert_eq!(
            super::code_number(b"OK [HIGHESTMODSEQ 99] Highest\r\n", "HIGHESTMODSEQ"),
            Some(99)
        );
        assert_eq!(super::code_number(b"3 EXISTS\r\n", "UIDVALIDITY"), None);
    }
}
