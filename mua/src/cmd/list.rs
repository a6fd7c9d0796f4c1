//! `mua list`: one line per message (UID, flags, date, from, subject),
//! newest first, aligned for a terminal or as JSON; shared with `search`.

use crate::cli::Ctx;
use crate::imap::Arg;
use crate::model::{fetch_rows, fit, Row};
use clap::Args;
use unicode_width::UnicodeWidthStr;

/// List messages in a mailbox, newest first.
#[derive(Debug, Args)]
pub struct ListCmd {
    /// Mailbox to list.
    #[arg(long, short, default_value = "INBOX")]
    pub mailbox: String,
    /// Only messages without \Seen.
    #[arg(long)]
    pub unread: bool,
    /// At most N messages (the newest).
    #[arg(long, short = 'n', value_name = "N")]
    pub limit: Option<usize>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// Say on stderr how the listing was obtained (from the cache with
    /// QRESYNC, or whole) and how many octets the server sent.
    #[arg(long)]
    pub stats: bool,
}

/// Formats rows as aligned text lines.
pub fn format_rows(rows: &[Row]) -> String {
    let uid_w = rows
        .iter()
        .map(|r| r.uid.to_string().len())
        .max()
        .unwrap_or(1);
    let from_w = rows
        .iter()
        .map(|r| r.from.width())
        .max()
        .unwrap_or(4)
        .clamp(4, 24);
    let mut out = String::new();
    for r in rows {
        out.push_str(&format!(
            "{:>uid_w$}  {}  {:16}  {}  {}\n",
            r.uid,
            r.flag_letters(),
            r.date,
            fit(&r.from, from_w),
            r.subject.replace(['\r', '\n'], " ")
        ));
    }
    out
}

/// Prints rows as text or JSON.
///
/// # Errors
/// JSON serialisation failure (not expected).
pub fn print_rows(rows: &[Row], json: bool) -> anyhow::Result<()> {
    if json {
        super::emit(format!("{}\n", serde_json::to_string_pretty(rows)?).as_bytes())
    } else {
        super::emit(format_rows(rows).as_bytes())
    }
}

impl ListCmd {
    /// Runs `mua list`.
    ///
    /// # Errors
    /// No such mailbox, connection or auth failures.
    pub fn run(self, ctx: &mut Ctx) -> anyhow::Result<()> {
        let mut c = ctx.imap()?;
        let Some(dir) = ctx.cache_dir() else {
            // No cache: only the rows shown are fetched.
            let start = c.received();
            c.select(&self.mailbox, true)?;
            let key = if self.unread { "UNSEEN" } else { "ALL" };
            let uids = c.uid_search(vec![Arg::raw(key)])?;
            let rows = fetch_rows(&mut c, uids, self.limit)?;
            if self.stats {
                eprintln!(
                    "mua: {} octets received (no cache)",
                    c.received().saturating_sub(start)
                );
            }
            c.logout();
            return print_rows(&rows, self.json);
        };
        let user = ctx.user()?;
        let path = crate::cache::file(&dir, &user, &ctx.imap_addr()?, &self.mailbox);
        let synced = crate::cache::sync(&mut c, &self.mailbox, true, Some(&path))?;
        c.logout();
        if self.stats {
            let how = match synced.how {
                crate::cache::How::Full => "fetched whole".to_string(),
                crate::cache::How::Resync => format!(
                    "cache resynchronised with QRESYNC: {} flag changes, {} expunged, {} new",
                    synced.changed, synced.vanished, synced.new
                ),
            };
            eprintln!(
                "mua: {} octets received for {} messages ({how})",
                synced.received,
                synced.entries.len()
            );
        }
        let seen = |r: &Row| r.flags.iter().any(|f| f.eq_ignore_ascii_case("\\Seen"));
        let mut rows: Vec<Row> = synced
            .entries
            .into_values()
            .rev()
            .map(|e| e.row)
            .filter(|r| !self.unread || !seen(r))
            .collect();
        if let Some(n) = self.limit {
            rows.truncate(n);
        }
        print_rows(&rows, self.json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(uid: u32, from: &str, flags: &[&str]) -> Row {
        Row {
            uid,
            flags: flags.iter().map(|s| s.to_string()).collect(),
            date: "2024-01-02 03:04".into(),
            from: from.into(),
            from_addr: "x@y".into(),
            subject: "Hi".into(),
            size: 1,
            message_id: None,
        }
    }

    #[test]
    fn rows_align_in_columns() {
        let text = format_rows(&[
            row(100, "Bob", &["\\Seen"]),
            row(7, "Jürgen Ünïcode", &["\\Flagged"]),
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "100        2024-01-02 03:04  Bob             Hi");
        assert_eq!(lines[1], "  7  NF    2024-01-02 03:04  Jürgen Ünïcode  Hi");
    }
}
