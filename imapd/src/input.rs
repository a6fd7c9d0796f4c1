//! Reading a session's input: commands through the literal framer,
//! AUTHENTICATE response lines, IDLE's `DONE`, as the session's [`Mode`]
//! allows — and the pace a command must arrive at. Parsed commands go to
//! `op::dispatch`.

use crate::command::{Command, CommandBody};
use crate::framer::Frame;
use crate::parse::{parse_command_as, ParseMode, SyntaxKind};
use crate::response::{Code, Status};
use crate::session::{Busy, Done, ImapSession, Mode, State};
use netloop::{Io, Line, Step};
use std::sync::atomic::Ordering;
use std::time::Instant;

impl ImapSession {
    /// Handle as much buffered input as the current mode allows.
    pub(crate) fn process_input(&mut self, io: &mut Io<'_, Done>) -> Step {
        let max_line = self.cx.shared.config.max_line;
        let ending = |s: &Self| matches!(s.state, State::Logout);
        // A client that pipelines commands without reading the answers
        // must not make us queue output without bound: stop at the high
        // water mark and go on once the output has drained (netloop calls
        // on_input again then; meanwhile its input buffer fills and it
        // stops reading from the socket).
        if matches!(self.cx.busy, Busy::Ready) && !ending(self) {
            if let Some(cmd) = self.cx.deferred.take() {
                let step = self.execute(cmd, io);
                if step == Step::Close {
                    self.cx.flush(io);
                    return Step::Close;
                }
            }
        }
        while matches!(self.cx.busy, Busy::Ready | Busy::Appending(_))
            && !ending(self)
            && self.cx.deferred.is_none()
            && io.out.len() < crate::limits::HIGH_WATER
        {
            match &self.cx.mode {
                Mode::Command => match self.cx.framer.poll(io.input) {
                    Frame::Incomplete => break,
                    Frame::Continue => {
                        crate::response::continuation(&mut self.cx.out, "Ready for literal data");
                    }
                    Frame::LineTooLong { tag } => {
                        if let Some(t) = &mut self.cx.tracer {
                            t.note("C: <line too long>");
                        }
                        let text = format!("Line too long (limit {max_line} octets)");
                        self.cx
                            .status(tag.as_deref(), Status::Bad, Some(Code::TooBig), &text);
                        crate::op::compress::cut_if_compressed(self, io, true);
                    }
                    Frame::LiteralTooBig { tag } => {
                        if let Some(t) = &mut self.cx.tracer {
                            t.note("C: <literal too large>");
                        }
                        let text = format!(
                            "Literal too large (limit {} octets{})",
                            self.cx.framer.limits().max_literal,
                            if self.state.user().is_none() {
                                " before login"
                            } else {
                                ""
                            }
                        );
                        self.cx
                            .status(tag.as_deref(), Status::Bad, Some(Code::TooBig), &text);
                        let skipping = self.cx.framer.in_progress();
                        crate::op::compress::cut_if_compressed(self, io, skipping);
                    }
                    Frame::Command(bytes) => {
                        let mode = ParseMode {
                            utf8_names: self.cx.utf8_names,
                            utf8_accept: self.cx.utf8_accept,
                        };
                        let parsed = parse_command_as(&bytes, mode);
                        if let Some(t) = &mut self.cx.tracer {
                            t.client_command(&bytes, parsed.as_ref().ok());
                        }
                        match parsed {
                            Ok(cmd) => {
                                // Only an APPEND to the mailbox the APPENDs in
                                // flight target may join them (op/append.rs).
                                let joins = match &cmd.body {
                                    CommandBody::Append { mailbox, .. } => self
                                        .cx
                                        .append_target
                                        .as_ref()
                                        .is_some_and(|t| t.name == *mailbox),
                                    _ => {
                                        self.cx.append_target = None;
                                        false
                                    }
                                };
                                if matches!(self.cx.busy, Busy::Appending(_)) && !joins {
                                    self.cx.deferred = Some(cmd);
                                    break;
                                }
                                let step = self.execute(cmd, io);
                                if step == Step::Close {
                                    self.cx.flush(io);
                                    return Step::Close;
                                }
                            }
                            Err(e) => {
                                // A SEARCH ... SAVE refused with NO empties
                                // `$` (RFC 5182 §2.1); a BAD leaves it.
                                if e.kind != SyntaxKind::Bad && crate::parse::search_saves(&bytes) {
                                    if let Some(sel) = self.state.selection_mut() {
                                        sel.search.forget_saved();
                                    }
                                }
                                let (status, code) = match e.kind {
                                    SyntaxKind::Bad => (Status::Bad, None),
                                    SyntaxKind::BadCharset => (Status::No, Some(Code::BadCharset)),
                                    SyntaxKind::Limit => (Status::No, Some(Code::Limit)),
                                };
                                self.cx.status(e.tag.as_deref(), status, code, &e.reason);
                            }
                        }
                    }
                },
                Mode::Auth { tag, step } => {
                    let (tag, step) = (tag.clone(), step.clone());
                    match io.input.take_line(max_line) {
                        Line::Incomplete => break,
                        Line::TooLong => {
                            self.cx.mode = Mode::Command;
                            self.cx
                                .status(Some(&tag), Status::Bad, None, "Response too long");
                        }
                        Line::Complete(line, _) => {
                            if let Some(t) = &mut self.cx.tracer {
                                t.note("C: <credentials masked>");
                            }
                            self.cx.mode = Mode::Command;
                            crate::op::auth::sasl_response(&mut self.cx, io, tag, step, &line);
                        }
                    }
                }
                Mode::Idle { tag, .. } => {
                    let tag = tag.clone();
                    match io.input.take_line(max_line) {
                        Line::Incomplete => break,
                        Line::TooLong => {
                            self.cx.mode = Mode::Command;
                            self.cx.idle_ended();
                            self.cx
                                .status(Some(&tag), Status::Bad, None, "Expected DONE");
                        }
                        Line::Complete(line, _) => {
                            if let Some(t) = &mut self.cx.tracer {
                                t.note(&format!("C: {}", String::from_utf8_lossy(&line)));
                            }
                            self.cx.mode = Mode::Command;
                            self.cx.idle_ended();
                            io.set_timeout(self.cx.shared.config.autologout);
                            if line.eq_ignore_ascii_case(b"DONE") {
                                let step = self.finish(
                                    io,
                                    &tag,
                                    Status::Ok,
                                    None,
                                    "IDLE terminated",
                                    true,
                                );
                                if step == Step::Close {
                                    return step;
                                }
                            } else {
                                self.cx
                                    .status(Some(&tag), Status::Bad, None, "Expected DONE");
                            }
                        }
                    }
                }
            }
            // Keep output flowing even while pipelined commands pile up.
            self.cx.flush(io);
        }
        self.check_pace(io);
        self.step(io)
    }

    /// Slow senders inside a command. netloop cuts off a client whose
    /// unconsumed bytes sit without progress, but literal octets are
    /// consumed as they arrive (so a slow, steady APPEND is never cut off),
    /// which would let a client trickle a literal one byte at a time. So
    /// while a command is being received: silence ends the connection
    /// after `net.command_timeout`, and after that grace period the
    /// command must have averaged `min_upload_rate` octets per second.
    fn check_pace(&mut self, io: &mut Io<'_, Done>) {
        let cx = &mut self.cx;
        let grace = cx.shared.config.net.command_timeout;
        if !matches!(cx.mode, Mode::Command)
            || !cx.framer.in_progress()
            || matches!(self.state, State::Logout)
        {
            if cx.cmd_started.take().is_some() && matches!(cx.mode, Mode::Command) {
                io.set_timeout(cx.shared.config.autologout);
            }
            return;
        }
        let now = Instant::now();
        let Some(started) = cx.cmd_started else {
            cx.cmd_started = Some(now);
            io.set_timeout(grace);
            return;
        };
        let Some(over) = now.saturating_duration_since(started).checked_sub(grace) else {
            return;
        };
        let need = over.as_secs_f64() * cx.shared.config.min_upload_rate as f64;
        if (cx.framer.taken() as f64) < need {
            if let Some(t) = &mut cx.tracer {
                t.note("-- command arriving too slowly; closing --");
            }
            cx.status(None, Status::Bye, None, "Command arriving too slowly");
            self.logout();
        }
    }

    /// In IDLE, report pending changes now (RFC 2177). Also re-checked
    /// after every store result, because a wake-up that arrives while a
    /// sync is in flight is otherwise only remembered in `pending`.
    pub(crate) fn idle_push(&mut self, io: &mut Io<'_, Done>) -> Step {
        if !matches!(self.cx.busy, Busy::Ready) || matches!(self.state, State::Logout) {
            return Step::Continue;
        }
        let pending = self.cx.pending.load(Ordering::SeqCst);
        // NOTIFY (RFC 5465 §4): events for other mailboxes go out at once,
        // in IDLE or between commands; with a `selected` group, so do the
        // selected mailbox's (EXPUNGE only with plain `selected`).
        let (notify_dirty, selected_now, delayed) = match &self.cx.notify {
            Some(n) if !n.overflowed => {
                let sel = n.set.selected.as_ref();
                (
                    n.dirty.is_dirty(),
                    sel.is_some_and(|s| s.events.message_new) && pending,
                    sel.is_none_or(|s| s.delayed),
                )
            }
            _ => (false, false, true),
        };
        let step = match self.cx.mode {
            Mode::Idle { .. } if pending || notify_dirty => self.sync(io, true, |cx, sel, io| {
                cx.notify_report(io, sel, |cx, _, io| {
                    cx.flush(io);
                    Step::Continue
                })
            }),
            Mode::Command if notify_dirty || selected_now => {
                let expunge_ok = !delayed;
                let sel = if selected_now {
                    self.state.selection_mut()
                } else {
                    None
                };
                self.cx.sync(io, sel, expunge_ok, |cx, sel, io| {
                    cx.notify_report(io, sel, |cx, _, io| {
                        cx.flush(io);
                        Step::Continue
                    })
                })
            }
            _ => Step::Continue,
        };
        self.cx.flush(io);
        step
    }

    fn execute(&mut self, cmd: Command, io: &mut Io<'_, Done>) -> Step {
        metrics::imap_command(cmd.body.name());
        crate::op::dispatch(self, cmd, io)
    }
}
