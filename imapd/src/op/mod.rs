//! Command execution, one module per group of commands (RFC 3501 §6):
//! `auth` (any state and not-authenticated), `mailbox` (authenticated),
//! `message` (selected), `fetch` (streamed FETCH), `search`, `tls`
//! (STARTTLS, §6.2.1).
//! [`dispatch`] checks the state each command needs (§3) and routes it.

pub(crate) mod append;
pub(crate) mod auth;
pub(crate) mod fetch;
pub(crate) mod fetch_encode;
pub(crate) mod list;
pub(crate) mod mailbox;
pub(crate) mod message;
pub(crate) mod search;
pub(crate) mod tls;

use crate::command::{Command, CommandBody};
use crate::response::Status as St;
use crate::session::{Done, ImapSession};
use netloop::{Io, Step};

/// Which state a command needs.
enum Needs {
    Any,
    NotAuthenticated,
    Authenticated,
    /// Authenticated with no mailbox selected (ENABLE, RFC 5161 §3.1).
    AuthenticatedOnly,
    Selected,
}

fn needs(body: &CommandBody) -> Needs {
    use CommandBody::*;
    match body {
        Capability | Noop | Logout | Id(_) => Needs::Any,
        Login { .. } | Authenticate { .. } | StartTls => Needs::NotAuthenticated,
        Select { .. }
        | Examine { .. }
        | Create { .. }
        | Delete(_)
        | Rename(..)
        | Subscribe(_)
        | Unsubscribe(_)
        | List { .. }
        | Lsub { .. }
        | Status { .. }
        | Append { .. }
        | Namespace
        | Idle => Needs::Authenticated,
        Enable(_) => Needs::AuthenticatedOnly,
        Check
        | Close
        | Unselect
        | Expunge { .. }
        | Search { .. }
        | Fetch { .. }
        | Store { .. }
        | Copy { .. }
        | Move { .. } => Needs::Selected,
    }
}

/// Execute one parsed command.
pub(crate) fn dispatch(s: &mut ImapSession, cmd: Command, io: &mut Io<'_, Done>) -> Step {
    let ok_state = match needs(&cmd.body) {
        Needs::Any => true,
        Needs::NotAuthenticated => s.user.is_none(),
        Needs::Authenticated => s.user.is_some(),
        Needs::AuthenticatedOnly => s.user.is_some() && s.selected.is_none(),
        Needs::Selected => s.selected.is_some(),
    };
    if !ok_state {
        let text = match needs(&cmd.body) {
            Needs::NotAuthenticated => "Already authenticated",
            Needs::Authenticated => "Log in first",
            Needs::AuthenticatedOnly if s.user.is_some() => "only valid with no mailbox selected",
            _ if s.user.is_none() => "Log in first",
            _ => "No mailbox selected",
        };
        let text = format!("{} not allowed now: {text}", cmd.body.name());
        s.status(Some(&cmd.tag), St::Bad, None, &text);
        return Step::Continue;
    }
    let tag = cmd.tag;
    use CommandBody::*;
    match cmd.body {
        Capability => auth::capability(s, io, &tag),
        // NOOP and CHECK always look for changes (clients poll with them).
        Noop => {
            s.pending.store(true, std::sync::atomic::Ordering::SeqCst);
            s.finish(io, &tag, St::Ok, None, "NOOP completed", true)
        }
        Check => {
            s.pending.store(true, std::sync::atomic::Ordering::SeqCst);
            s.finish(io, &tag, St::Ok, None, "CHECK completed", true)
        }
        Logout => auth::logout(s, &tag),
        Id(_) => auth::id(s, io, &tag),
        StartTls => tls::starttls(s, io, &tag),
        Login { user, password } => auth::login(s, io, tag, user, password),
        Authenticate { mechanism, initial } => auth::authenticate(s, io, tag, &mechanism, initial),
        Namespace => auth::namespace(s, io, &tag),
        Enable(caps) => auth::enable(s, io, &tag, &caps),
        Select { mailbox, condstore } => mailbox::select(s, io, tag, mailbox, false, condstore),
        Examine { mailbox, condstore } => mailbox::select(s, io, tag, mailbox, true, condstore),
        Create {
            mailbox,
            special_use,
        } => mailbox::create(s, io, tag, mailbox, special_use),
        Delete(name) => mailbox::delete(s, io, tag, name),
        Rename(from, to) => mailbox::rename(s, io, tag, from, to),
        Subscribe(name) => mailbox::subscribe(s, io, tag, name, true),
        Unsubscribe(name) => mailbox::subscribe(s, io, tag, name, false),
        List { reference, pattern } => list::list(s, io, tag, reference, pattern, false),
        Lsub { reference, pattern } => list::list(s, io, tag, reference, pattern, true),
        Status { mailbox, items } => mailbox::status(s, io, tag, mailbox, items),
        Append {
            mailbox,
            flags,
            date,
            message,
        } => append::append(s, io, tag, mailbox, flags, date, message),
        Idle => message::idle(s, io, tag),
        Close => message::close(s, io, tag, true),
        Unselect => message::close(s, io, tag, false),
        Expunge { uids } => message::expunge(s, io, tag, uids),
        Search {
            uid,
            key,
            has_modseq,
        } => search::search(s, io, tag, uid, key, has_modseq),
        Fetch {
            uid,
            set,
            atts,
            changed_since,
        } => fetch::fetch(s, io, tag, uid, set, atts, changed_since),
        Store {
            uid,
            set,
            mode,
            silent,
            flags,
            unchanged_since,
        } => message::store(s, io, tag, uid, set, mode, silent, flags, unchanged_since),
        Copy { uid, set, mailbox } => message::copy(s, io, tag, uid, set, mailbox, false),
        Move { uid, set, mailbox } => message::copy(s, io, tag, uid, set, mailbox, true),
    }
}
