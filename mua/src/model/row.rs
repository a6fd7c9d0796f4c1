//! One listed message as `mua list`/`mua search` and the TUI's message
//! list show it (UID, flags, `YYYY-MM-DD HH:MM` UTC date, sender, subject),
//! built from FETCH data; plus `fit`, which pads or cuts a column to a
//! terminal width.

use crate::dates;
use crate::imap::{uid_set, Client, FetchData};
use unicode_width::UnicodeWidthChar;

/// One listed message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_handles_wide_characters() {
        assert_eq!(fit("日本語", 4), "日本");
        assert_eq!(fit("ab", 4), "ab  ");
    }
}
