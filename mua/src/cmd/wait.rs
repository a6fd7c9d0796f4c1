//! `mua wait`: return as soon as a message matching `--from`/`--subject`
//! is in a mailbox, or fail after `--timeout` — what a CI pipeline that
//! tests its own mail sending wants. The mailbox is examined read-only
//! (nothing is marked \Seen); between searches the server pushes news with
//! IDLE (RFC 2177), so an arrival is seen at once, not at the next poll.

use crate::cli::Ctx;
use crate::error::MuaError;
use crate::imap::Arg;
use clap::Args;
use std::time::{Duration, Instant};

/// Wait for a message to arrive.
#[derive(Debug, Args)]
pub struct WaitCmd {
    /// Mailbox to watch.
    #[arg(long, short, default_value = "INBOX")]
    pub mailbox: String,
    /// The sender's address or name contains this (case-insensitive).
    #[arg(long)]
    pub from: Option<String>,
    /// The subject contains this (case-insensitive).
    #[arg(long)]
    pub subject: Option<String>,
    /// Give up after this long: `10s`, `2m`, `500ms`, or seconds.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Only messages that arrive after mua starts waiting. Without it,
    /// unseen matching messages already there count too (so a message that
    /// arrived just before `mua wait` started is not missed).
    #[arg(long)]
    pub new: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// `10s`, `2m`, `500ms`, `1h` or a number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: want a duration like 10s, 2m or 500ms"))?;
    let d = match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return Err(format!("{s:?}: the unit is ms, s, m or h")),
    };
    Ok(d)
}

impl WaitCmd {
    /// Runs `mua wait`.
    ///
    /// # Errors
    /// Nothing matched in time (exit 5), no such mailbox (5), connection
    /// and auth failures.
    pub fn run(self, ctx: &mut Ctx) -> anyhow::Result<()> {
        let deadline = Instant::now() + self.timeout;
        let mut c = ctx.imap()?;
        let sel = c.select(&self.mailbox, true)?;
        // The first UID a message arriving from now on can have (UIDNEXT;
        // a server that does not say: one past the highest UID there).
        let first_new = match sel.uid_next {
            Some(n) => n.max(1),
            None => c
                .uid_search(vec![Arg::raw("ALL")])?
                .into_iter()
                .max()
                .map_or(1, |u| u.saturating_add(1)),
        };
        let mut criteria = if self.new {
            vec![Arg::raw("UID"), Arg::raw(format!("{first_new}:*"))]
        } else {
            vec![Arg::raw("UNSEEN")]
        };
        if let Some(f) = &self.from {
            criteria.extend([Arg::raw("FROM"), Arg::str(f)]);
        }
        if let Some(s) = &self.subject {
            criteria.extend([Arg::raw("SUBJECT"), Arg::str(s)]);
        }
        loop {
            let mut uids = c.uid_search(criteria.clone())?;
            // `n:*` always names the last message, even below n.
            if self.new {
                uids.retain(|&u| u >= first_new);
            }
            if !uids.is_empty() {
                let rows = crate::model::fetch_rows(&mut c, uids, None)?;
                c.logout();
                return super::list::print_rows(&rows, self.json);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                c.logout();
                return Err(MuaError::NotFound(format!(
                    "no matching message in {} within {:?}",
                    self.mailbox, self.timeout
                ))
                .into());
            }
            // Wake on the server's news, or at the deadline; search again
            // every few seconds anyway, in case news came between the
            // search and the IDLE and a server keeps it until the next.
            c.idle(left.min(Duration::from_secs(5)))?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("10d").is_err());
        assert!(parse_duration("").is_err());
    }
}
