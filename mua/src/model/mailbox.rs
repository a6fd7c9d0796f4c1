//! One mailbox as `mua mailboxes` and the TUI's mailbox pane show it:
//! its decoded name with total and unseen counts, from LIST and STATUS
//! (MESSAGES UNSEEN) (RFC 3501 §6.3.8, §6.3.10).

use crate::imap::Client;

/// One mailbox with its counts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MailboxRow {
    /// Decoded name.
    pub name: String,
    /// Messages in it.
    pub total: u64,
    /// Messages without \Seen.
    pub unseen: u64,
}

/// Every selectable mailbox with counts, INBOX first, then by name.
///
/// # Errors
/// IMAP failures.
pub fn mailbox_rows(c: &mut Client) -> crate::error::Result<Vec<MailboxRow>> {
    let mut boxes = c.list()?;
    boxes.retain(|b| b.selectable());
    boxes.sort_by_key(|b| (!b.name.eq_ignore_ascii_case("INBOX"), b.name.clone()));
    let mut rows = Vec::new();
    for b in boxes {
        let (total, unseen) = c.status(&b.name)?;
        rows.push(MailboxRow {
            name: b.name,
            total,
            unseen,
        });
    }
    Ok(rows)
}
