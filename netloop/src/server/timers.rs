//! Time and handed-back work: the idle / per-command deadline scan, the
//! timers behind [`Io::complete_after`], and delivering a session's
//! completions (from its [`Completer`] or a timer) to [`Session::on_done`].
//!
//! [`Io::complete_after`]: crate::Io::complete_after
//! [`Completer`]: crate::Completer

use super::Server;
use crate::{ConnId, Service, Session, Step};
use std::cmp::Ordering as CmpOrdering;
use std::time::{Duration, Instant};

/// A session value due at a time (from [`Io::complete_after`]).
///
/// [`Io::complete_after`]: crate::Io::complete_after
pub(super) struct Timer<D> {
    at: Instant,
    seq: u64,
    id: ConnId,
    value: D,
}

impl<D> PartialEq for Timer<D> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<D> Eq for Timer<D> {}
impl<D> PartialOrd for Timer<D> {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl<D> Ord for Timer<D> {
    /// Reversed, so that `BinaryHeap` pops the earliest first.
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl<S: Service> Server<S> {
    /// When the earliest pending timer is due, if any.
    pub(super) fn next_timer_due(&self) -> Option<Instant> {
        self.timers.peek().map(|t| t.at)
    }

    /// Queue the values a session passed to [`Io::complete_after`] during
    /// one callback, each due `delay` from now.
    ///
    /// [`Io::complete_after`]: crate::Io::complete_after
    pub(super) fn schedule(
        &mut self,
        id: ConnId,
        timers: Vec<(Duration, <S::Session as Session>::Done)>,
    ) {
        if timers.is_empty() {
            return;
        }
        let now = Instant::now();
        for (delay, value) in timers {
            self.timer_seq += 1;
            self.timers.push(Timer {
                at: now + delay,
                seq: self.timer_seq,
                id,
                value,
            });
        }
    }

    /// Hand what other threads sent through [`Completer`]s to their sessions.
    ///
    /// [`Completer`]: crate::Completer
    pub(super) fn completions(&mut self) {
        self.wake.clear();
        while let Ok((id, done)) = self.done_rx.try_recv() {
            self.deliver(id, done);
        }
    }

    /// Hand due [`Io::complete_after`] values to their sessions.
    ///
    /// [`Io::complete_after`]: crate::Io::complete_after
    pub(super) fn fire_timers(&mut self) {
        let now = Instant::now();
        while self.timers.peek().is_some_and(|t| t.at <= now) {
            if let Some(t) = self.timers.pop() {
                self.deliver(t.id, t.value);
            }
        }
    }

    /// Give `done` to connection `id`'s [`Session::on_done`] (dropped if the
    /// connection is gone), then restart its deadline (not a closing
    /// connection's: a timer firing while its goodbye drains must not hold
    /// it open another [`LINGER`](super::LINGER)), re-ask a pending
    /// [`Session::on_shutdown`], and let it take buffered input.
    fn deliver(&mut self, id: ConnId, done: <S::Session as Session>::Done) {
        let Some(&key) = self.by_id.get(&id) else {
            return;
        };
        self.with_session(key, |s, io| s.on_done(done, io));
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        // A session that closed in this very call got its LINGER then.
        if !c.closing {
            c.deadline = Instant::now() + c.timeout;
        }
        if c.stalled_since.is_some() {
            c.stalled_since = Some(Instant::now());
        }
        if c.shutdown_pending && !c.closing {
            c.shutdown_pending = false;
            self.with_session(key, |s, io| s.on_shutdown(io));
            if let Some(c) = self.conns.get_mut(key) {
                if !c.closing {
                    c.shutdown_pending = true;
                }
            }
        }
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        if !c.input.is_empty() && !c.closing && !c.tls_pending {
            self.with_session(key, |s, io| s.on_input(io));
        }
        self.process(key);
    }

    /// Time out connections past their idle deadline or whose input has
    /// stalled for [`Config::command_timeout`] (slow loris), and remove
    /// closing ones whose linger or drain time is over.
    ///
    /// [`Config::command_timeout`]: super::Config::command_timeout
    pub(super) fn scan_deadlines(&mut self) {
        let now = Instant::now();
        let expired: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.deadline <= now
                    || (!c.closing
                        && c.stalled_since
                            .is_some_and(|s| now.duration_since(s) >= self.config.command_timeout))
            })
            .map(|(k, _)| k)
            .collect();
        for key in expired {
            let Some(c) = self.conns.get_mut(key) else {
                continue;
            };
            if c.closing {
                self.remove(key);
                continue;
            }
            log::debug!("conn {}: idle or command timeout", c.info.id);
            self.with_session(key, |s, io| {
                s.on_timeout(io);
                Step::Close
            });
            self.flush(key);
        }
    }
}
