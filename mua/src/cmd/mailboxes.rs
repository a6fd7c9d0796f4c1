//! `mua mailboxes`: LIST every mailbox and STATUS (MESSAGES UNSEEN) each
//! (RFC 3501 §6.3.8, §6.3.10).

use crate::cli::Ctx;
use crate::model::mailbox_rows;
use clap::Args;
use unicode_width::UnicodeWidthStr;

/// Show mailboxes with total and unseen counts.
#[derive(Debug, Args)]
pub struct MailboxesCmd {
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

impl MailboxesCmd {
    /// Runs `mua mailboxes`.
    ///
    /// # Errors
    /// Connection and auth failures.
    pub fn run(self, ctx: &mut Ctx) -> anyhow::Result<()> {
        let mut c = ctx.imap()?;
        let rows = mailbox_rows(&mut c)?;
        c.logout();
        if self.json {
            return super::emit(format!("{}\n", serde_json::to_string_pretty(&rows)?).as_bytes());
        }
        let w = rows
            .iter()
            .map(|r| r.name.width())
            .max()
            .unwrap_or(7)
            .max(7);
        let mut text = format!("{:w$}  {:>7}  {:>7}\n", "MAILBOX", "TOTAL", "UNSEEN");
        for r in rows {
            let pad = w - r.name.width();
            text.push_str(&format!(
                "{}{}  {:>7}  {:>7}\n",
                r.name,
                " ".repeat(pad),
                r.total,
                r.unseen
            ));
        }
        super::emit(text.as_bytes())
    }
}
