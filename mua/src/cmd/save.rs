//! `mua save UID PART --out FILE`: write one attachment's decoded bytes
//! (base64/quoted-printable undone, RFC 2045 §6) exactly.

use crate::cli::Ctx;
use crate::error::MuaError;
use crate::message::Message;
use clap::Args;
use std::path::PathBuf;

/// Save an attachment.
///
/// PART is the attachment number shown by `mua read` ([1], [2], ...) or
/// its file name.
#[derive(Debug, Args)]
pub struct SaveCmd {
    /// The message's UID.
    pub uid: u32,
    /// Attachment number (from `mua read`) or file name.
    pub part: String,
    /// Where to write it ("-" for standard output).
    #[arg(long, short)]
    pub out: PathBuf,
    /// Mailbox holding the message.
    #[arg(long, short, default_value = "INBOX")]
    pub mailbox: String,
}

impl SaveCmd {
    /// Runs `mua save`.
    ///
    /// # Errors
    /// Missing UID or attachment (exit 5), file write failures.
    pub fn run(self, ctx: &mut Ctx) -> anyhow::Result<()> {
        let mut c = ctx.imap()?;
        c.select(&self.mailbox, true)?;
        let bytes = crate::model::fetch_message(&mut c, &self.mailbox, self.uid)?;
        c.logout();
        let msg = Message::parse(&bytes)?;
        let atts = msg.attachments();
        let found = match self.part.parse::<usize>() {
            Ok(n) => atts.into_iter().find(|a| a.index == n),
            Err(_) => atts.into_iter().find(|a| a.filename == self.part),
        };
        let att = found.ok_or_else(|| {
            MuaError::NotFound(format!(
                "message {} has no attachment {}",
                self.uid, self.part
            ))
        })?;
        if self.out.as_os_str() == "-" {
            super::emit(&att.data)?;
        } else {
            std::fs::write(&self.out, &att.data)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", self.out.display()))?;
            eprintln!(
                "saved {} ({} bytes) to {}",
                att.filename,
                att.data.len(),
                self.out.display()
            );
        }
        Ok(())
    }
}
