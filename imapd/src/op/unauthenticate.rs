//! `UNAUTHENTICATE` (RFC 8437): back to the Not Authenticated state on the
//! same connection, so a client can log in again (as another user, say)
//! without a new TLS handshake.
//!
//! §3: the server drops everything the authentication brought. Here that
//! is the selected mailbox (closed as UNSELECT does: nothing expunged, no
//! `[CLOSED]`), its change watch, the NOTIFY registration and events,
//! SEARCH/SORT contexts (they live in the selection), what ENABLE turned on
//! (CONDSTORE, QRESYNC), the APPEND run's target, and the larger literal
//! limit of a logged-in session: the pre-login bound applies again. TLS
//! stays as it is.

use crate::response::Status;
use crate::session::{ImapSession, State};
use netloop::Step;

/// `UNAUTHENTICATE` (RFC 8437 §3), valid in the Authenticated and
/// Selected states.
pub(crate) fn unauthenticate(s: &mut ImapSession, tag: &str) -> Step {
    s.deselect();
    let cx = &mut s.cx;
    cx.notify = None;
    cx.shared.hub.unwatch_notify(cx.id);
    cx.condstore = false;
    cx.qresync = false;
    cx.append_target = None;
    let limits = cx.shared.config.framer_limits(false);
    cx.framer.set_limits(limits);
    s.state = State::NotAuthenticated;
    s.cx.status(Some(tag), Status::Ok, None, "UNAUTHENTICATE completed");
    Step::Continue
}
