//! `mua list`: one line per message (UID, flags, date, from, subject),
//! newest first, aligned for a terminal or as JSON; shared with `search`.

use crate::cli::Ctx;
use crate::dates;
use crate::imap::{uid_set, Arg, Client, FetchData};
use clap::Args;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

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
}

/// One listed message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Row {
    /// The message's UID.
    pub uid: u32,
    /// IMAP flags.
    pub flags: Vec<String>,
    /// `YYYY-MM-DD HH:MM` UTC.
    pub date: String,
    /// Sender (name or address).
    pub from: String,
    /// Sender address.
    pub from_addr: String,
    /// Decoded subject.
    pub subject: String,
    /// Size in octets.
    pub size: u64,
    /// Message-ID.
    pub message_id: Option<String>,
}

/// FETCH items needed for a row.
pub const ROW_ITEMS: &str = "(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)";

impl Row {
    /// Builds a row from FETCH data.
    pub fn from_fetch(d: &FetchData) -> Row {
        let env = d.envelope.clone().unwrap_or_default();
        let date = env
            .date
            .as_deref()
            .and_then(dates::epoch_of)
            .or_else(|| {
                d.internal_date
                    .as_deref()
                    .and_then(dates::epoch_of_internal)
            })
            .map(dates::format_epoch)
            .unwrap_or_default();
        let from = env.from.first().cloned().unwrap_or_default();
        Row {
            uid: d.uid.unwrap_or(0),
            flags: d.flags.clone().unwrap_or_default(),
            date,
            from: from.short().to_string(),
            from_addr: from.email,
            subject: env.subject.unwrap_or_default(),
            size: d.size.unwrap_or(0),
            message_id: env.message_id,
        }
    }

    /// Compact flag letters: N unseen, F flagged, A answered, D deleted.
    pub fn flag_letters(&self) -> String {
        let has = |f: &str| self.flags.iter().any(|x| x.eq_ignore_ascii_case(f));
        let mut s = String::new();
        s.push(if has("\\Seen") { ' ' } else { 'N' });
        s.push(if has("\\Flagged") { 'F' } else { ' ' });
        s.push(if has("\\Answered") { 'A' } else { ' ' });
        s.push(if has("\\Deleted") { 'D' } else { ' ' });
        s
    }
}

/// Fetches rows for `uids`, newest (highest UID) first, at most `limit`.
///
/// # Errors
/// IMAP failures.
pub fn fetch_rows(
    c: &mut Client,
    mut uids: Vec<u32>,
    limit: Option<usize>,
) -> crate::error::Result<Vec<Row>> {
    uids.sort_unstable_by(|a, b| b.cmp(a));
    if let Some(n) = limit {
        uids.truncate(n);
    }
    if uids.is_empty() {
        return Ok(Vec::new());
    }
    let mut rows: Vec<Row> = c
        .uid_fetch(&uid_set(&uids), ROW_ITEMS)?
        .iter()
        .map(Row::from_fetch)
        .filter(|r| uids.contains(&r.uid))
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.uid));
    Ok(rows)
}

/// Pads or cuts `s` to exactly `width` terminal columns.
pub fn fit(s: &str, width: usize) -> String {
    let mut out = String::new();
    let mut w = 0;
    for ch in s.chars() {
        let cw = ch.width().unwrap_or(0);
        if w + cw > width {
            break;
        }
        out.push(if ch.is_control() { ' ' } else { ch });
        w += cw;
    }
    if w < width {
        out.push_str(&" ".repeat(width - w));
    }
    out
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
        c.select(&self.mailbox, true)?;
        let key = if self.unread { "UNSEEN" } else { "ALL" };
        let uids = c.uid_search(vec![Arg::raw(key)])?;
        let rows = fetch_rows(&mut c, uids, self.limit)?;
        c.logout();
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

    #[test]
    fn fit_handles_wide_characters() {
        assert_eq!(fit("日本語", 4), "日本");
        assert_eq!(fit("ab", 4), "ab  ");
    }
}
