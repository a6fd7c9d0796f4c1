//! The row models `cmd/*` (one-shot subcommands) and `tui/*` (the
//! interactive client) both show, and the IMAP queries that fill them:
//! `row` (one listed message: UID, flags, date, sender, subject; column
//! fitting), `mailbox` (one mailbox with its counts) and `fetch_message`
//! (a whole message by UID). They live below both front ends so neither
//! reaches into the other.

pub mod mailbox;
pub mod row;

pub use mailbox::{mailbox_rows, MailboxRow};
pub use row::{fetch_rows, fit, Row, ROW_ITEMS};

use crate::error::MuaError;
use crate::imap::Client;

/// Fetches the full bytes of one message (without setting \Seen).
///
/// # Errors
/// `NotFound` if the UID does not exist.
pub fn fetch_message(c: &mut Client, mailbox: &str, uid: u32) -> crate::error::Result<Vec<u8>> {
    c.uid_fetch(&uid.to_string(), "(UID BODY.PEEK[])")?
        .into_iter()
        .find(|d| d.uid == Some(uid))
        .and_then(|d| d.body)
        .ok_or_else(|| MuaError::NotFound(format!("no message with UID {uid} in {mailbox}")))
}
