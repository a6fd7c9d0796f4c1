//! Keepalives during IDLE: an untagged `* OK Still here` (Dovecot's words)
//! after every `Config::idle_keepalive` of silence while a client idles,
//! so NAT boxes and stateful firewalls do not forget a quiet connection,
//! and a dead peer is noticed when the write fails. RFC 2177 lets the
//! server send untagged responses at any time during IDLE.
//!
//! Driven by netloop's timers ([`Io::complete_after`] delivering
//! [`Done::Keepalive`]): no thread, nothing blocks. A session has at most
//! one keepalive timer pending, however often it enters and leaves IDLE:
//! when it fires, the session works out from the times it keeps here
//! whether a keepalive is due now or when, and asks for one more timer
//! only while it is still idling.
//!
//! The timer's deliveries count as activity to netloop (they restart its
//! idle deadline), so the autologout of an idling client (RFC 3501 §5.4;
//! RFC 2177 §3: clients re-issue IDLE at least every 29 minutes) is kept
//! here: once `Config::autologout` has passed since the IDLE began with
//! nothing from the client, the session says `* BYE` and closes.

use crate::response::Status;
use crate::session::{Conn, Done, ImapSession, Mode, State};
use netloop::{Io, Step};
use std::time::{Duration, Instant};

/// What a session remembers for its keepalives.
#[derive(Debug, Default)]
pub(crate) struct Keepalive {
    /// A timer is pending (at most one per session).
    armed: bool,
    /// When the current IDLE began: the client's last input.
    idle_since: Option<Instant>,
    /// When output last went to the client during this IDLE.
    last_out: Option<Instant>,
}

impl Keepalive {
    /// Output went to the client now.
    pub(crate) fn wrote(&mut self, now: Instant) {
        if self.idle_since.is_some() {
            self.last_out = Some(now);
        }
    }
}

/// Keepalive timers that fire this early still count as due (timers are
/// not exact; waiting again for a few milliseconds would be silly).
const SLACK: Duration = Duration::from_millis(20);

impl Conn {
    /// The session has just entered IDLE (its continuation is queued).
    pub(crate) fn idle_started(&mut self, io: &mut Io<'_, Done>) {
        let every = self.shared.config.idle_keepalive;
        if every.is_zero() {
            return;
        }
        let now = Instant::now();
        let k = &mut self.keepalive;
        k.idle_since = Some(now);
        k.last_out = Some(now);
        if !k.armed {
            k.armed = true;
            io.complete_after(every, Done::Keepalive);
        }
    }

    /// The IDLE ended (DONE, or anything else the client sent).
    pub(crate) fn idle_ended(&mut self) {
        let k = &mut self.keepalive;
        k.idle_since = None;
        k.last_out = None;
    }
}

impl ImapSession {
    /// The keepalive timer fired: send a keepalive if one is due, log out
    /// a client idle for too long, and wait again while still idling.
    pub(crate) fn keepalive_timer(&mut self, io: &mut Io<'_, Done>) -> Step {
        let config = &self.cx.shared.config;
        let (every, autologout) = (config.idle_keepalive, config.autologout);
        let k = &mut self.cx.keepalive;
        k.armed = false;
        let (Some(since), Some(last_out)) = (k.idle_since, k.last_out) else {
            return Step::Continue;
        };
        if !matches!(self.cx.mode, Mode::Idle { .. }) || matches!(self.state, State::Logout) {
            return Step::Continue;
        }
        let now = Instant::now();
        let logout_at = since + autologout;
        if now + SLACK >= logout_at {
            self.cx
                .status(None, Status::Bye, None, "Autologout; idle for too long");
            self.logout();
            return self.step(io);
        }
        let mut due = last_out + every;
        if now + SLACK >= due {
            self.cx.status(None, Status::Ok, None, "Still here");
            self.cx.flush(io);
            due = now + every;
        }
        let k = &mut self.cx.keepalive;
        k.armed = true;
        let next = due.min(logout_at).saturating_duration_since(now);
        io.complete_after(next.max(SLACK), Done::Keepalive);
        Step::Continue
    }
}
