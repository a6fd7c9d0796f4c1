//! Command execution, one module per group of commands (RFC 3501 §6):
//! `any` (valid in every state), `auth` (LOGIN, AUTHENTICATE), `tls`
//! (STARTTLS, §6.2.1), `select` (SELECT, EXAMINE, STATUS), `mailbox`
//! (CREATE, DELETE, RENAME, SUBSCRIBE),
//! `list` (LIST, LSUB), `append`, `message` (selected: STORE, COPY, MOVE,
//! EXPUNGE, CLOSE; and IDLE), `fetch` + `fetch_encode` (streamed FETCH),
//! `search`, `esearch` (SEARCH RETURN, CANCELUPDATE), `sort` (SORT,
//! THREAD), `compress` (COMPRESS=DEFLATE, RFC 4978).
//!
//! [`dispatch`] checks the state each command needs (§3) once, and hands
//! the command what that state guarantees: an authenticated command gets
//! the [`User`], a selected-state command the connection half of the
//! session and the mailbox view (`&mut Selection`) apart, so no command
//! looks at the state again.

pub(crate) mod any;
pub(crate) mod append;
pub(crate) mod auth;
pub(crate) mod compress;
pub(crate) mod esearch;
pub(crate) mod esort;
pub(crate) mod fetch;
pub(crate) mod fetch_binary;
pub(crate) mod fetch_encode;
pub(crate) mod list;
pub(crate) mod list_ext;
pub(crate) mod mailbox;
pub(crate) mod message;
pub(crate) mod multiappend;
pub(crate) mod notify;
pub(crate) mod preview;
pub(crate) mod qresync;
pub(crate) mod quota;
pub(crate) mod search;
pub(crate) mod select;
pub(crate) mod sort;
pub(crate) mod status_items;
pub(crate) mod tls;
pub(crate) mod unauthenticate;
pub(crate) mod urlauth;
pub(crate) mod urlfetch_binary;
pub(crate) mod urlpart;

use crate::command::{Command, CommandBody};
use crate::response::Status as St;
use crate::session::{Done, ImapSession, State};
use mailstore::User;
use netloop::{Io, Step};

/// Which state a command needs.
#[derive(Clone, Copy)]
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
        | AppendMulti { .. }
        | GenUrlAuth(_)
        | ResetKey { .. }
        | UrlFetch(_)
        | Namespace
        | ListExtended(_)
        | Notify(_)
        | Unauthenticate
        | GetQuota(_)
        | GetQuotaRoot(_)
        | SetQuota(..)
        | Compress(_)
        | Idle => Needs::Authenticated,
        Enable(_) => Needs::AuthenticatedOnly,
        Check
        | Close
        | Unselect
        | Expunge { .. }
        | Search { .. }
        | Sort { .. }
        | Thread { .. }
        | Fetch { .. }
        | Store { .. }
        | Copy { .. }
        | Move { .. }
        | CancelUpdate(_) => Needs::Selected,
    }
}

/// Why `state` does not allow a command that `needs` it (None: allowed).
fn refusal(needs: Needs, state: &State) -> Option<&'static str> {
    use State as S;
    match (needs, state) {
        (Needs::Any, _)
        | (Needs::NotAuthenticated, S::NotAuthenticated)
        | (Needs::Authenticated, S::Authenticated { .. } | S::Selected { .. })
        | (Needs::AuthenticatedOnly, S::Authenticated { .. })
        | (Needs::Selected, S::Selected { .. }) => None,
        (Needs::NotAuthenticated, _) => Some("Already authenticated"),
        (Needs::AuthenticatedOnly, S::Selected { .. }) => {
            Some("only valid with no mailbox selected")
        }
        (_, S::NotAuthenticated | S::Logout) => Some("Log in first"),
        (_, S::Authenticated { .. }) => Some("No mailbox selected"),
    }
}

/// Execute one parsed command.
pub(crate) fn dispatch(s: &mut ImapSession, cmd: Command, io: &mut Io<'_, Done>) -> Step {
    if let Some(why) = refusal(needs(&cmd.body), &s.state) {
        let text = format!("{} not allowed now: {why}", cmd.body.name());
        s.cx.status(Some(&cmd.tag), St::Bad, None, &text);
        return Step::Continue;
    }
    // A sync read left by a command that ended without its sync (an
    // error answer) is older than this command: drop it, and let this
    // command read what it covered and everything since.
    s.cx.drop_presynced();
    let tag = cmd.tag;
    use CommandBody::*;
    match cmd.body {
        Capability => any::capability(s, io, &tag),
        // NOOP and CHECK always look for changes (clients poll with them).
        Noop => any::poll(s, io, &tag, "NOOP completed"),
        Check => any::poll(s, io, &tag, "CHECK completed"),
        Logout => any::logout(s, &tag),
        Id(_) => any::id(s, io, &tag),
        StartTls => tls::starttls(s, io, &tag),
        Compress(mechanism) => compress::compress(s, io, &tag, &mechanism),
        Login { user, password } => auth::login(&mut s.cx, io, tag, user, password),
        Authenticate { mechanism, initial } => {
            auth::authenticate(&mut s.cx, io, tag, &mechanism, initial)
        }
        Close => message::close(s, io, tag, true),
        Unselect => message::close(s, io, tag, false),
        Idle => message::idle(s, io, tag),
        Unauthenticate => unauthenticate::unauthenticate(s, &tag),
        body @ (Expunge { .. }
        | CancelUpdate(_)
        | Search { .. }
        | Sort { .. }
        | Thread { .. }
        | Fetch { .. }
        | Store { .. }
        | Copy { .. }
        | Move { .. }) => selected(s, io, tag, body),
        body => {
            let Some(user) = s.state.user().cloned() else {
                return Step::Continue;
            };
            authenticated(s, io, tag, &user, body)
        }
    }
}

/// The commands of the Authenticated state (also valid when Selected).
fn authenticated(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    tag: String,
    user: &User,
    body: CommandBody,
) -> Step {
    use CommandBody::*;
    match body {
        Namespace => any::namespace(s, io, &tag),
        GetQuota(root) => quota::get_quota(s, io, user, tag, root),
        GetQuotaRoot(mailbox) => quota::get_quota_root(s, io, user, tag, mailbox),
        SetQuota(..) => quota::set_quota(s, io, &tag),
        Enable(caps) => any::enable(s, io, &tag, &caps),
        Select {
            mailbox,
            condstore,
            qresync,
        } => select::select(s, io, user, tag, mailbox, false, condstore, qresync),
        Examine {
            mailbox,
            condstore,
            qresync,
        } => select::select(s, io, user, tag, mailbox, true, condstore, qresync),
        Create {
            mailbox,
            special_use,
        } => mailbox::create(s, io, user, tag, mailbox, special_use),
        Delete(name) => mailbox::delete(s, io, user, tag, name),
        Rename(from, to) => mailbox::rename(s, io, user, tag, from, to),
        Subscribe(name) => mailbox::subscribe(s, io, user, tag, name, true),
        Unsubscribe(name) => mailbox::subscribe(s, io, user, tag, name, false),
        List { reference, pattern } => list::list(s, io, user, tag, reference, pattern, false),
        Lsub { reference, pattern } => list::list(s, io, user, tag, reference, pattern, true),
        Status { mailbox, items } => select::status(s, io, user, tag, mailbox, items),
        ListExtended(args) => list_ext::list(s, io, user, tag, *args),
        Notify(set) => notify::notify(s, io, user, tag, set),
        Append {
            mailbox,
            flags,
            date,
            message,
        } => append::append(s, io, user, tag, mailbox, flags, date, message),
        AppendMulti { mailbox, messages } => {
            multiappend::append_multi(s, io, user, tag, mailbox, messages)
        }
        GenUrlAuth(items) => urlauth::genurlauth(s, io, user, tag, items),
        ResetKey {
            mailbox,
            mechanisms,
        } => urlauth::resetkey(s, io, user, tag, mailbox, mechanisms),
        UrlFetch(items) => urlauth::urlfetch(s, io, user, tag, items),
        other => {
            // Routed by `dispatch`; nothing else reaches here.
            s.cx.status(
                Some(&tag),
                St::Bad,
                None,
                &format!("{} not allowed now", other.name()),
            );
            Step::Continue
        }
    }
}

/// The commands of the Selected state: each gets the connection half of
/// the session and the mailbox view.
fn selected(s: &mut ImapSession, io: &mut Io<'_, Done>, tag: String, body: CommandBody) -> Step {
    let ImapSession { cx, state } = s;
    let State::Selected { user, sel } = state else {
        return Step::Continue;
    };
    if cx.uidonly && uses_message_numbers(&body) {
        // RFC 9586 §3: "the server MUST return tagged BAD response if the
        // client uses message sequence numbers", with UIDREQUIRED.
        cx.status(
            Some(&tag),
            St::Bad,
            Some(crate::response::Code::UidRequired),
            "Message numbers cannot be used with UIDONLY enabled",
        );
        return Step::Continue;
    }
    use CommandBody::*;
    match body {
        Expunge { uids } => message::expunge(cx, io, sel, tag, uids),
        // RFC 9051 §6.4.4: an IMAP4rev2 SEARCH without RETURN is
        // RETURN (ALL), answered with ESEARCH.
        Search {
            uid,
            ret: None,
            key,
            has_modseq,
        } if cx.rev2 => {
            let ret = crate::command::SearchReturn {
                all: true,
                ..Default::default()
            };
            esearch::esearch(cx, io, sel, tag, uid, ret, key, has_modseq)
        }
        Search {
            uid,
            ret: None,
            key,
            has_modseq,
        } => search::search(cx, io, sel, tag, uid, key, has_modseq),
        Sort {
            uid,
            ret: None,
            criteria,
            key,
            has_modseq,
        } => sort::sort(cx, io, sel, tag, uid, criteria, key, has_modseq),
        Sort {
            uid,
            ret: Some(ret),
            criteria,
            key,
            has_modseq,
        } => esort::esort(cx, io, sel, tag, uid, ret, (criteria, key), has_modseq),
        Thread {
            uid,
            algorithm,
            key,
        } => sort::thread(cx, io, sel, tag, uid, algorithm, key),
        Search {
            uid,
            ret: Some(ret),
            key,
            has_modseq,
        } => esearch::esearch(cx, io, sel, tag, uid, ret, key, has_modseq),
        CancelUpdate(tags) => esearch::cancelupdate(cx, io, sel, tag, tags),
        Fetch {
            uid,
            set,
            atts,
            changed_since,
            vanished,
        } => fetch::fetch(cx, io, sel, tag, uid, set, atts, changed_since, vanished),
        Store {
            uid,
            set,
            mode,
            silent,
            flags,
            unchanged_since,
        } => message::store(
            cx,
            io,
            sel,
            tag,
            uid,
            set,
            mode,
            silent,
            flags,
            unchanged_since,
        ),
        Copy { uid, set, mailbox } => {
            message::copy(cx, io, user, sel, tag, uid, set, mailbox, false)
        }
        Move { uid, set, mailbox } => {
            message::copy(cx, io, user, sel, tag, uid, set, mailbox, true)
        }
        other => {
            // Routed by `dispatch`; nothing else reaches here.
            cx.status(
                Some(&tag),
                St::Bad,
                None,
                &format!("{} not allowed now", other.name()),
            );
            Step::Continue
        }
    }
}

/// Whether a Selected-state command names messages by sequence number
/// (refused under UIDONLY, RFC 9586 §3): the non-UID forms of FETCH,
/// STORE, COPY, MOVE, SEARCH, SORT and THREAD, and any search key that is
/// a sequence set (`$`, the saved result, is UIDs).
fn uses_message_numbers(body: &CommandBody) -> bool {
    use CommandBody::*;
    match body {
        Fetch { uid, .. } | Store { uid, .. } | Copy { uid, .. } | Move { uid, .. } => !uid,
        Search { uid, key, .. } | Sort { uid, key, .. } | Thread { uid, key, .. } => {
            !uid || key_uses_message_numbers(key)
        }
        _ => false,
    }
}

/// Whether a search key holds a sequence set of message numbers. The
/// parser bounds the nesting (`MAX_SEARCH_DEPTH`); the walk uses a stack.
fn key_uses_message_numbers(key: &crate::command::SearchKey) -> bool {
    use crate::command::SearchKey as K;
    let mut stack = vec![key];
    while let Some(k) = stack.pop() {
        match k {
            K::Seq(set) if !set.is_saved() => return true,
            K::Not(a) => stack.push(a),
            K::Or(a, b) => {
                stack.push(a);
                stack.push(b);
            }
            K::And(v) => stack.extend(v.iter()),
            _ => {}
        }
    }
    false
}
