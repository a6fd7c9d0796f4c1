//! Command framing with literals (RFC 3501 §4.3 and §7.5, LITERAL+ RFC 7888).
//!
//! An IMAP command is one line, unless a line ends in a literal announcement
//! `{n}` (synchronising: the server must answer `+` before the client sends
//! the octets) or `{n+}` (non-synchronising: the octets follow at once). The
//! framer reads lines through netloop's [`InBuf::take_line`], collects literal
//! octets, and hands back one complete command (lines joined with CRLF,
//! literal octets inline, final CRLF removed) for the parser.
//!
//! Limits: each line is capped at `max_line`, each literal at `max_literal`,
//! and the whole command at `max_command`. A synchronising literal over the
//! limit is refused before the client sends it; a non-synchronising one is
//! read and discarded (with the rest of its command) so that the session
//! stays in step. No parsing beyond the literal announcement happens here.

use netloop::{InBuf, Line};

/// Framer limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest line (without CRLF).
    pub max_line: usize,
    /// Largest single literal.
    pub max_literal: u64,
    /// Largest complete command, literals included.
    pub max_command: usize,
}

/// What the framer produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete command.
    Command(Vec<u8>),
    /// The client announced a synchronising literal we accept: send `+`.
    Continue,
    /// A line exceeded `max_line`; the command was dropped.
    LineTooLong {
        /// Tag of the dropped command, if it was readable.
        tag: Option<String>,
    },
    /// A literal (or the command as a whole) exceeded the limit; the command
    /// was dropped (its octets are being skipped if they were announced
    /// non-synchronising).
    LiteralTooBig {
        /// Tag of the dropped command, if readable.
        tag: Option<String>,
    },
    /// Nothing complete yet: wait for more input.
    Incomplete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a command line.
    Line,
    /// Reading `n` more literal octets into the command.
    Literal(usize),
    /// Discarding `n` literal octets of a refused command, then its rest.
    Skip(usize),
    /// Discarding the remaining lines of a refused command.
    DiscardRest,
}

/// Assembles commands from the input buffer. See the module docs.
#[derive(Debug)]
pub struct Framer {
    limits: Limits,
    buf: Vec<u8>,
    state: State,
    /// Octets consumed for the command in progress (kept or skipped).
    taken: u64,
}

/// A literal announced at the end of a line: size and whether it was `{n+}`.
fn literal_at_end(line: &[u8]) -> Option<(u64, bool)> {
    let body = line.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    let inner = &body[open + 1..];
    let (digits, plus) = match inner.strip_suffix(b"+") {
        Some(d) => (d, true),
        None => (inner, false),
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = std::str::from_utf8(digits).ok()?.parse::<u64>().ok()?;
    Some((n, plus))
}

/// The tag at the start of a command, if it looks like one.
pub fn tag_of(cmd: &[u8]) -> Option<String> {
    let end = cmd.iter().position(|&b| b == b' ').unwrap_or(cmd.len());
    let tag = &cmd[..end];
    if !tag.is_empty() && tag.iter().all(|&c| crate::parse_is_tag_char(c)) {
        Some(String::from_utf8_lossy(tag).into_owned())
    } else {
        None
    }
}

impl Framer {
    /// A framer with the given limits.
    pub fn new(limits: Limits) -> Self {
        Framer {
            limits,
            buf: Vec::new(),
            state: State::Line,
            taken: 0,
        }
    }

    /// Change the limits from the next command on (e.g. after login:
    /// unauthenticated clients get smaller literals).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Octets consumed so far for the command in progress (0 between
    /// commands): the session checks slow senders against it.
    pub fn taken(&self) -> u64 {
        if self.in_progress() {
            self.taken
        } else {
            0
        }
    }

    /// True when a command has been started but not finished (or a refused
    /// one is being skipped).
    pub fn in_progress(&self) -> bool {
        !self.buf.is_empty() || self.state != State::Line
    }

    /// Consume input until something happens; see [`Frame`].
    pub fn poll(&mut self, input: &mut InBuf) -> Frame {
        let before = input.len();
        let was_idle = !self.in_progress();
        let frame = self.poll_inner(input);
        if was_idle {
            self.taken = 0;
        }
        self.taken = self
            .taken
            .saturating_add(before.saturating_sub(input.len()) as u64);
        frame
    }

    fn poll_inner(&mut self, input: &mut InBuf) -> Frame {
        loop {
            match self.state {
                State::Literal(n) => {
                    let take = n.min(input.len());
                    if take == 0 {
                        return Frame::Incomplete;
                    }
                    self.buf.extend_from_slice(&input.as_slice()[..take]);
                    input.consume(take);
                    self.state = if take == n {
                        State::Line
                    } else {
                        State::Literal(n - take)
                    };
                }
                State::Skip(n) => {
                    let take = n.min(input.len());
                    if take == 0 {
                        return Frame::Incomplete;
                    }
                    input.consume(take);
                    self.state = if take == n {
                        State::DiscardRest
                    } else {
                        State::Skip(n - take)
                    };
                }
                State::DiscardRest => match input.take_line(self.limits.max_line) {
                    Line::Incomplete => return Frame::Incomplete,
                    Line::TooLong => {}
                    Line::Complete(line, _) => match literal_at_end(&line) {
                        Some((n, true)) => self.state = State::Skip(clamp(n)),
                        _ => self.state = State::Line,
                    },
                },
                State::Line => match input.take_line(self.limits.max_line) {
                    Line::Incomplete => return Frame::Incomplete,
                    Line::TooLong => {
                        let tag = tag_of(&self.buf);
                        self.buf.clear();
                        return Frame::LineTooLong { tag };
                    }
                    Line::Complete(line, _) => {
                        self.buf.extend_from_slice(&line);
                        let Some((n, plus)) = literal_at_end(&line) else {
                            return Frame::Command(std::mem::take(&mut self.buf));
                        };
                        let total = self.buf.len() as u64 + 2 + n;
                        if n > self.limits.max_literal || total > self.limits.max_command as u64 {
                            let tag = tag_of(&self.buf);
                            self.buf.clear();
                            if plus {
                                self.state = State::Skip(clamp(n));
                            }
                            return Frame::LiteralTooBig { tag };
                        }
                        self.buf.extend_from_slice(b"\r\n");
                        // `{0}` has no octets: the command goes on at once.
                        self.state = if n == 0 {
                            State::Line
                        } else {
                            State::Literal(clamp(n))
                        };
                        if !plus {
                            return Frame::Continue;
                        }
                    }
                },
            }
        }
    }

    /// Forget a partly assembled command (after the session refused it).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.state = State::Line;
        self.taken = 0;
    }
}

fn clamp(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framer() -> Framer {
        Framer::new(Limits {
            max_line: 100,
            max_literal: 10,
            max_command: 200,
        })
    }

    fn feed(f: &mut Framer, input: &mut InBuf, bytes: &[u8]) -> Vec<Frame> {
        input.extend(bytes);
        let mut out = Vec::new();
        loop {
            let fr = f.poll(input);
            if fr == Frame::Incomplete {
                return out;
            }
            out.push(fr);
        }
    }

    #[test]
    fn zero_length_literal_continues_the_command() {
        let (mut f, mut i) = (framer(), InBuf::new());
        assert_eq!(
            feed(&mut f, &mut i, b"a LIST \"\" {0}\r\n"),
            vec![Frame::Continue]
        );
        assert_eq!(
            feed(&mut f, &mut i, b"\r\n"),
            vec![Frame::Command(b"a LIST \"\" {0}\r\n".to_vec())]
        );
        assert_eq!(
            feed(&mut f, &mut i, b"b LIST \"\" {0+}\r\n\r\n"),
            vec![Frame::Command(b"b LIST \"\" {0+}\r\n".to_vec())]
        );
    }

    #[test]
    fn simple_lines_are_commands() {
        let (mut f, mut i) = (framer(), InBuf::new());
        let got = feed(&mut f, &mut i, b"a1 NOOP\r\na2 CAPABILITY\n");
        assert_eq!(
            got,
            vec![
                Frame::Command(b"a1 NOOP".to_vec()),
                Frame::Command(b"a2 CAPABILITY".to_vec())
            ]
        );
    }

    #[test]
    fn synchronising_literal_asks_for_continuation_then_assembles() {
        let (mut f, mut i) = (framer(), InBuf::new());
        assert_eq!(
            feed(&mut f, &mut i, b"a1 LOGIN {5}\r\n"),
            vec![Frame::Continue]
        );
        assert!(f.in_progress());
        assert_eq!(feed(&mut f, &mut i, b"al"), vec![]);
        assert_eq!(
            feed(&mut f, &mut i, b"ice pw\r\n"),
            vec![Frame::Command(b"a1 LOGIN {5}\r\nalice pw".to_vec())]
        );
    }

    #[test]
    fn non_synchronising_literal_needs_no_continuation() {
        let (mut f, mut i) = (framer(), InBuf::new());
        assert_eq!(
            feed(&mut f, &mut i, b"a1 LOGIN {5+}\r\nalice {2+}\r\npw\r\n"),
            vec![Frame::Command(
                b"a1 LOGIN {5+}\r\nalice {2+}\r\npw".to_vec()
            )]
        );
    }

    #[test]
    fn oversized_sync_literal_is_refused_before_data() {
        let (mut f, mut i) = (framer(), InBuf::new());
        assert_eq!(
            feed(&mut f, &mut i, b"a1 APPEND INBOX {11}\r\na2 NOOP\r\n"),
            vec![
                Frame::LiteralTooBig {
                    tag: Some("a1".into())
                },
                Frame::Command(b"a2 NOOP".to_vec())
            ]
        );
    }

    #[test]
    fn oversized_non_sync_literal_is_skipped_with_the_rest_of_its_command() {
        let (mut f, mut i) = (framer(), InBuf::new());
        let got = feed(
            &mut f,
            &mut i,
            b"a1 APPEND INBOX {12+}\r\nhello\r\nworld tail {3+}\r\nabc\r\na2 NOOP\r\n",
        );
        assert_eq!(
            got,
            vec![
                Frame::LiteralTooBig {
                    tag: Some("a1".into())
                },
                Frame::Command(b"a2 NOOP".to_vec())
            ]
        );
    }

    #[test]
    fn overlong_line_is_reported_and_next_command_works() {
        let (mut f, mut i) = (framer(), InBuf::new());
        let mut long = b"a1 NOOP ".to_vec();
        long.extend(std::iter::repeat_n(b'x', 200));
        long.extend(b"\r\na2 NOOP\r\n");
        assert_eq!(
            feed(&mut f, &mut i, &long),
            vec![
                Frame::LineTooLong { tag: None },
                Frame::Command(b"a2 NOOP".to_vec())
            ]
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_input_in_arbitrary_chunks_never_panics(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
            cut in 1usize..50,
        ) {
            let (mut f, mut i) = (framer(), InBuf::new());
            for chunk in bytes.chunks(cut) {
                feed(&mut f, &mut i, chunk);
            }
            // Whatever state it is in, a fresh command after a reset works.
            f.reset();
            let mut i = InBuf::new();
            proptest::prop_assert_eq!(
                feed(&mut f, &mut i, b"z NOOP\r\n"),
                vec![Frame::Command(b"z NOOP".to_vec())]
            );
        }
    }

    #[test]
    fn literal_announcement_is_only_recognised_at_line_end() {
        assert_eq!(literal_at_end(b"a {12}"), Some((12, false)));
        assert_eq!(literal_at_end(b"a {0+}"), Some((0, true)));
        assert_eq!(literal_at_end(b"a {x}"), None);
        assert_eq!(literal_at_end(b"a {}"), None);
        assert_eq!(literal_at_end(b"a {12} b"), None);
    }
}
