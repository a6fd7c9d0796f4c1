//! `mua move UID... --to M`: UID MOVE (RFC 6851), or COPY + \Deleted +
//! EXPUNGE where MOVE is not advertised.

use crate::cli::Ctx;
use crate::imap::uid_set;
use clap::Args;

/// Move messages to another mailbox.
#[derive(Debug, Args)]
pub struct MoveCmd {
    /// UIDs of the messages.
    #[arg(required = true)]
    pub uids: Vec<u32>,
    /// Mailbox holding them.
    #[arg(long, short, default_value = "INBOX")]
    pub mailbox: String,
    /// Destination mailbox.
    #[arg(long, value_name = "MAILBOX")]
    pub to: String,
}

impl MoveCmd {
    /// Runs `mua move`.
    ///
    /// # Errors
    /// Missing UIDs or destination (exit 5), connection and auth failures.
    pub fn run(self, ctx: &mut Ctx) -> anyhow::Result<()> {
        let mut c = ctx.imap()?;
        c.select(&self.mailbox, false)?;
        super::require_uids(&mut c, &self.mailbox, &self.uids)?;
        c.uid_move(&uid_set(&self.uids), &self.to)?;
        c.logout();
        Ok(())
    }
}
