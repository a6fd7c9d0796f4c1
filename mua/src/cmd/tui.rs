//! `mua tui`: starts the interactive client (see `tui/`).

use crate::cli::Ctx;
use clap::Args;

/// The interactive client: mailboxes, message list, reader, compose.
#[derive(Debug, Args)]
pub struct TuiCmd {
    /// Mailbox to open first.
    #[arg(long, short, default_value = "INBOX")]
    pub mailbox: String,
}

impl TuiCmd {
    /// Runs the TUI until the user quits.
    ///
    /// # Errors
    /// Connection/auth failures before the screen opens; terminal errors.
    pub fn run(self, ctx: &mut Ctx) -> anyhow::Result<()> {
        crate::tui::run(ctx, &self.mailbox)
    }
}
