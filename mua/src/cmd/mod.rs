//! One module per subcommand, plus helpers they share: writing output, UID
//! existence checks and the send-and-file path of `mua send`. The rows they
//! list (shared with the TUI) are in `crate::model`.

pub mod delete;
pub mod flag;
pub mod list;
pub mod mailboxes;
pub mod mv;
pub mod read;
pub mod save;
pub mod search;
pub mod send;
pub mod sieve;
pub mod tui;
pub mod wait;

use crate::cli::{Command, Ctx};
use crate::error::{MuaError, Result};
use crate::imap::{uid_set, Arg, Client};

/// Dispatches a parsed command.
///
/// # Errors
/// Whatever the command fails with; `MuaError` keeps its exit code.
pub fn run(cmd: Command, ctx: &mut Ctx) -> anyhow::Result<()> {
    match cmd {
        Command::Send(c) => c.run(ctx),
        Command::Mailboxes(c) => c.run(ctx),
        Command::List(c) => c.run(ctx),
        Command::Read(c) => c.run(ctx),
        Command::Search(c) => c.run(ctx),
        Command::Flag(c) => c.run(ctx),
        Command::Move(c) => c.run(ctx),
        Command::Delete(c) => c.run(ctx),
        Command::Save(c) => c.run(ctx),
        Command::Tui(c) => c.run(ctx),
        Command::Wait(c) => c.run(ctx),
        Command::Sieve(c) => c.run(ctx),
    }
}

/// Writes command output to stdout; a closed pipe (`mua list | head`) is
/// not an error.
///
/// # Errors
/// Any other write failure.
pub fn emit(bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Fails with `NotFound` unless every UID exists in the selected mailbox.
///
/// # Errors
/// `NotFound` listing the missing UIDs.
pub fn require_uids(c: &mut Client, mailbox: &str, uids: &[u32]) -> Result<()> {
    let found = c.uid_search(vec![Arg::raw("UID"), Arg::raw(uid_set(uids))])?;
    let missing: Vec<String> = uids
        .iter()
        .filter(|u| !found.contains(u))
        .map(u32::to_string)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(MuaError::NotFound(format!(
            "no message with UID {} in {mailbox}",
            missing.join(", ")
        )))
    }
}

/// Sends a built message over SMTP and files a `\Seen` copy in Sent.
/// Returns a warning if filing failed (the message was still sent).
///
/// # Errors
/// SMTP connection, auth or refusal errors.
pub fn send_and_file(
    ctx: &mut Ctx,
    from: &str,
    rcpts: &[String],
    bytes: &[u8],
) -> Result<Option<String>> {
    let wire = crate::compose::strip_bcc(bytes);
    let mut smtp = ctx.smtp()?;
    smtp.send(from, rcpts, &wire)?;
    smtp.quit();
    let sent = ctx.sent_mailbox();
    let filed = ctx.imap().and_then(|mut c| {
        let r = c.append(&sent, &["\\Seen"], bytes);
        c.logout();
        r
    });
    Ok(filed
        .err()
        .map(|e| format!("sent, but could not file a copy in {sent}: {e}")))
}
