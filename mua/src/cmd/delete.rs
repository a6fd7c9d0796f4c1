//! `mua delete UID...`: mark \Deleted and expunge just those messages
//! (UID EXPUNGE, RFC 4315, when available), or move them to Trash.

use crate::cli::Ctx;
use crate::imap::uid_set;
use clap::Args;

/// Delete messages.
#[derive(Debug, Args)]
pub struct DeleteCmd {
    /// UIDs of the messages.
    #[arg(required = true)]
    pub uids: Vec<u32>,
    /// Mailbox holding them.
    #[arg(long, short, default_value = "INBOX")]
    pub mailbox: String,
    /// Move to this mailbox instead of removing (e.g. --trash Trash).
    #[arg(long, value_name = "MAILBOX", num_args = 0..=1, default_missing_value = "Trash")]
    pub trash: Option<String>,
}

impl DeleteCmd {
    /// Runs `mua delete`.
    ///
    /// # Errors
    /// Missing UIDs (exit 5), connection and auth failures.
    pub fn run(self, ctx: &mut Ctx) -> anyhow::Result<()> {
        let mut c = ctx.imap()?;
        c.select(&self.mailbox, false)?;
        super::require_uids(&mut c, &self.mailbox, &self.uids)?;
        let set = uid_set(&self.uids);
        match &self.trash {
            Some(t) if !t.eq_ignore_ascii_case(&self.mailbox) => c.uid_move(&set, t)?,
            _ => {
                c.uid_store(&set, "+FLAGS", &["\\Deleted"])?;
                c.uid_expunge(&set)?;
            }
        }
        c.logout();
        Ok(())
    }
}
