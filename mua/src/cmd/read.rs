//! `mua read UID`: fetch `BODY.PEEK[]` (RFC 3501 §6.4.5) and show it
//! decoded, or print the exact stored bytes with `--raw`.

use crate::cli::Ctx;
use crate::message::Message;
use crate::model::fetch_message;
use clap::Args;

/// Show one message.
#[derive(Debug, Args)]
pub struct ReadCmd {
    /// The message's UID (see `mua list`).
    pub uid: u32,
    /// Mailbox holding it.
    #[arg(long, short, default_value = "INBOX")]
    pub mailbox: String,
    /// Print the exact bytes stored on the server.
    #[arg(long)]
    pub raw: bool,
    /// Do not mark the message \Seen.
    #[arg(long)]
    pub peek: bool,
}

impl ReadCmd {
    /// Runs `mua read`.
    ///
    /// # Errors
    /// No such mailbox or UID (exit 5), connection and auth failures.
    pub fn run(self, ctx: &mut Ctx) -> anyhow::Result<()> {
        let mut c = ctx.imap()?;
        c.select(&self.mailbox, self.raw || self.peek)?;
        let bytes = fetch_message(&mut c, &self.mailbox, self.uid)?;
        if !(self.raw || self.peek) {
            c.uid_store(&self.uid.to_string(), "+FLAGS", &["\\Seen"])?;
        }
        c.logout();
        if self.raw {
            super::emit(&bytes)
        } else {
            super::emit(Message::parse(&bytes)?.render().as_bytes())
        }
    }
}
