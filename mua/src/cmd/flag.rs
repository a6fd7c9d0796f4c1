//! `mua flag UID...`: set or clear \Seen and \Flagged with UID STORE
//! (RFC 3501 §6.4.6).

use crate::cli::Ctx;
use crate::imap::uid_set;
use clap::Args;

/// Change flags on messages.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("change").required(true).multiple(true))]
pub struct FlagCmd {
    /// UIDs of the messages.
    #[arg(required = true)]
    pub uids: Vec<u32>,
    /// Mailbox holding them.
    #[arg(long, short, default_value = "INBOX")]
    pub mailbox: String,
    /// Mark read.
    #[arg(long, group = "change", conflicts_with = "unseen")]
    pub seen: bool,
    /// Mark unread.
    #[arg(long, group = "change")]
    pub unseen: bool,
    /// Set \Flagged.
    #[arg(long, group = "change", conflicts_with = "unflagged")]
    pub flagged: bool,
    /// Clear \Flagged.
    #[arg(long, group = "change")]
    pub unflagged: bool,
}

impl FlagCmd {
    /// Runs `mua flag`.
    ///
    /// # Errors
    /// Missing UIDs (exit 5), connection and auth failures.
    pub fn run(self, ctx: &mut Ctx) -> anyhow::Result<()> {
        let mut c = ctx.imap()?;
        c.select(&self.mailbox, false)?;
        super::require_uids(&mut c, &self.mailbox, &self.uids)?;
        let set = uid_set(&self.uids);
        let changes = [
            (self.seen, "+FLAGS", "\\Seen"),
            (self.unseen, "-FLAGS", "\\Seen"),
            (self.flagged, "+FLAGS", "\\Flagged"),
            (self.unflagged, "-FLAGS", "\\Flagged"),
        ];
        for (on, op, flag) in changes {
            if on {
                c.uid_store(&set, op, &[flag])?;
            }
        }
        c.logout();
        Ok(())
    }
}
