//! NOTIFY (RFC 5465).

use crate::command::NotifySet;
use crate::response::Status;
use crate::session::{Done, ImapSession};
use mailstore::User;
use netloop::{Io, Step};

/// `NOTIFY SET ...` / `NOTIFY NONE`
pub(crate) fn notify(
    s: &mut ImapSession,
    _io: &mut Io<'_, Done>,
    _user: &User,
    tag: String,
    _set: Option<Box<NotifySet>>,
) -> Step {
    s.cx.status(Some(&tag), Status::Bad, None, "NOTIFY not implemented yet");
    Step::Continue
}
