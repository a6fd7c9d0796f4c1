//! `mua send`: compose a MIME message (or take one as is with `--raw`),
//! submit it over SMTP (RFC 5321) and file a copy in Sent over IMAP APPEND.

use crate::cli::Ctx;
use crate::compose::{self, Attachment, Draft};
use crate::error::MuaError;
use clap::Args;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;

/// Send a message.
///
/// The body comes from --body, else standard input when it is not a
/// terminal, else $EDITOR. With --raw, standard input is a complete RFC 5322
/// message sent as is; recipients are taken from its To/Cc/Bcc headers and
/// Bcc is removed before sending (like `sendmail -t`).
#[derive(Debug, Args)]
pub struct SendCmd {
    /// Recipient (repeatable; "Name <addr>" or addr).
    #[arg(long, value_name = "ADDR")]
    pub to: Vec<String>,
    /// Carbon-copy recipient (repeatable).
    #[arg(long, value_name = "ADDR")]
    pub cc: Vec<String>,
    /// Blind carbon-copy recipient (repeatable; never shown to others).
    #[arg(long, value_name = "ADDR")]
    pub bcc: Vec<String>,
    /// Subject line (any Unicode).
    #[arg(long, short, default_value = "")]
    pub subject: String,
    /// Attach a file (repeatable); its type is guessed from the name.
    #[arg(long, short, value_name = "FILE")]
    pub attach: Vec<PathBuf>,
    /// Body text.
    #[arg(long, short)]
    pub body: Option<String>,
    /// Send the message on standard input unchanged.
    #[arg(long, conflicts_with_all = ["to", "cc", "bcc", "subject", "attach", "body"])]
    pub raw: bool,
    /// Do not file a copy in the Sent mailbox.
    #[arg(long)]
    pub no_save: bool,
}

fn read_stdin() -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    std::io::stdin().read_to_end(&mut buf)?;
    Ok(buf)
}

impl SendCmd {
    /// Runs `mua send`.
    ///
    /// # Errors
    /// Usage errors, SMTP refusals (exit 6), connection and auth failures.
    pub fn run(self, ctx: &mut Ctx) -> anyhow::Result<()> {
        let user = ctx.user()?;
        // Ask for the password before reading stdin so --password-stdin's
        // first line is not taken as message text.
        ctx.password()?;
        let (id, from, rcpts, bytes) = if self.raw {
            let bytes = read_stdin()?;
            let (from, rcpts) = compose::raw_envelope(&bytes)?;
            let id = crate::message::Message::parse(&bytes)?
                .header("Message-ID")
                .unwrap_or_default();
            (id, from.unwrap_or(user), rcpts, bytes)
        } else {
            if self.to.is_empty() && self.cc.is_empty() && self.bcc.is_empty() {
                return Err(
                    MuaError::Usage("no recipients: give --to, --cc or --bcc".into()).into(),
                );
            }
            let body = match self.body {
                Some(b) => b,
                None if !std::io::stdin().is_terminal() => String::from_utf8(read_stdin()?)
                    .map_err(|_| MuaError::Usage("the body on stdin is not UTF-8".into()))?,
                None => crate::editor::edit("")?,
            };
            let mut attachments = Vec::new();
            for p in &self.attach {
                attachments.push(Attachment::from_path(p).map_err(|e| {
                    MuaError::Usage(format!("cannot read attachment {}: {e}", p.display()))
                })?);
            }
            let draft = Draft {
                from: ctx.from_header()?,
                to: self.to,
                cc: self.cc,
                bcc: self.bcc,
                subject: self.subject,
                body,
                attachments,
                ..Draft::default()
            };
            let rcpts = draft.recipients()?;
            let (id, bytes) = draft.build()?;
            (id, user, rcpts, bytes)
        };
        if self.no_save {
            let wire = compose::strip_bcc(&bytes);
            let mut smtp = ctx.smtp()?;
            smtp.send(&from, &rcpts, &wire)?;
            smtp.quit();
        } else if let Some(warning) = super::send_and_file(ctx, &from, &rcpts, &bytes)? {
            eprintln!("mua: {warning}");
        }
        super::emit(format!("sent {id} to {}\n", rcpts.join(", ")).as_bytes())
    }
}
