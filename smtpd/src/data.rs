//! Reading message content: DATA with dot-unstuffing (RFC 5321 §4.1.1.4,
//! §4.5.2) and BDAT chunks (RFC 3030).
//!
//! [`DataReader`] is a byte-level state machine fed whatever has arrived. It
//! ends the message only at `CRLF "." CRLF`: the dot line must end in CRLF
//! and the line before it must have ended in CRLF too. A bare LF or bare CR
//! never ends a line for that purpose, so `"\n.\r\n"`, `"\r\n.\n"` and
//! `"\r.\r\n"` stay part of the message (no SMTP smuggling). A leading dot
//! is removed only from lines that follow a CRLF; everything else is kept
//! exactly as received, CR and LF included.
//!
//! Limits are checked while reading, never by buffering: text lines over
//! the limit (`limits::MAX_TEXT_LINE`, above RFC 5321 §4.5.3.1.6's 1000
//! octets including CRLF, as Postfix and Dovecot accept) and messages
//! over the size limit are flagged, the body stops growing once it is too
//! big, and reading continues to the terminator so the session stays in step.

/// Where the reader is within the current line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line; `after_crlf` if the previous line ended in
    /// CRLF (or this is the first line).
    LineStart { after_crlf: bool },
    /// Read a `.` at the start of a line after CRLF.
    Dot,
    /// Read `.` CR at the start of a line after CRLF.
    DotCr,
    /// Inside a line.
    Middle,
    /// Read a CR inside a line (or after `.` CR that was not followed by LF).
    Cr,
}

/// What a finished DATA or BDAT transfer produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    /// The message bytes (unstuffed), empty if `too_big`.
    pub body: Vec<u8>,
    /// Size of the message in octets, even if not all were kept.
    pub size: u64,
    /// A text line exceeded the line limit.
    pub line_too_long: bool,
    /// The message exceeded the size limit.
    pub too_big: bool,
}

/// Incremental DATA reader; see the module docs.
#[derive(Debug)]
pub struct DataReader {
    state: State,
    line_len: usize,
    max_line: usize,
    max_size: usize,
    content: Content,
}

impl DataReader {
    /// A reader for one message. `max_line` includes the CRLF.
    pub fn new(max_line: usize, max_size: usize) -> DataReader {
        DataReader {
            state: State::LineStart { after_crlf: true },
            line_len: 0,
            max_line,
            max_size,
            content: Content {
                body: Vec::new(),
                size: 0,
                line_too_long: false,
                too_big: false,
            },
        }
    }

    fn emit(&mut self, bytes: &[u8]) {
        self.content.size += bytes.len() as u64;
        if self.content.too_big {
            return;
        }
        if self.content.size > self.max_size as u64 {
            self.content.too_big = true;
            self.content.body = Vec::new();
        } else {
            self.content.body.extend_from_slice(bytes);
        }
    }

    fn end_line(&mut self, after_crlf: bool) {
        self.line_len = 0;
        self.state = State::LineStart { after_crlf };
    }

    /// Consume bytes from `input`. Returns how many were consumed and
    /// whether the end-of-data line was among them (then nothing after it
    /// was consumed). Without the end, all of `input` is consumed.
    pub fn feed(&mut self, input: &[u8]) -> (usize, bool) {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                State::LineStart { after_crlf } => {
                    if after_crlf && b == b'.' {
                        i += 1;
                        self.line_len += 1;
                        self.state = State::Dot;
                    } else {
                        self.state = State::Middle;
                    }
                }
                State::Dot => {
                    if b == b'\r' {
                        i += 1;
                        self.line_len += 1;
                        self.state = State::DotCr;
                    } else if b == b'\n' {
                        // "." then a bare LF: not a stuffed line, not an
                        // end; keep the dot exactly as sent.
                        self.emit(b".");
                        self.state = State::Middle;
                    } else {
                        // A stuffed dot: drop it, keep the rest of the line.
                        self.state = State::Middle;
                    }
                }
                State::DotCr => {
                    if b == b'\n' {
                        return (i + 1, true);
                    }
                    // ".\r" then something else: the dot was stuffing, the
                    // CR is content; let the Cr state decide about `b`.
                    self.state = State::Cr;
                }
                State::Middle => {
                    let rest = &input[i..];
                    let n = rest
                        .iter()
                        .position(|&c| c == b'\r' || c == b'\n')
                        .unwrap_or(rest.len());
                    self.emit(&rest[..n]);
                    self.line_len += n;
                    i += n;
                    if let Some(&t) = input.get(i) {
                        i += 1;
                        self.line_len += 1;
                        if t == b'\r' {
                            self.state = State::Cr;
                        } else {
                            self.emit(b"\n");
                            self.check_line();
                            self.end_line(false);
                        }
                    }
                }
                State::Cr => {
                    if b == b'\n' {
                        i += 1;
                        self.line_len += 1;
                        self.emit(b"\r\n");
                        self.check_line();
                        self.end_line(true);
                    } else if b == b'\r' {
                        i += 1;
                        self.line_len += 1;
                        self.emit(b"\r");
                    } else {
                        self.emit(b"\r");
                        self.state = State::Middle;
                    }
                }
            }
            self.check_line();
        }
        (i, false)
    }

    fn check_line(&mut self) {
        if self.line_len > self.max_line {
            self.content.line_too_long = true;
        }
    }

    /// The result; call after `feed` reported the end.
    pub fn finish(self) -> Content {
        self.content
    }
}

/// Accumulates the chunks of one BDAT transaction (RFC 3030 §2): chunk
/// bytes are taken verbatim, with no line or dot processing.
#[derive(Debug)]
pub struct BdatBody {
    max_size: usize,
    content: Content,
}

impl BdatBody {
    /// An empty message with a size limit.
    pub fn new(max_size: usize) -> BdatBody {
        BdatBody {
            max_size,
            content: Content {
                body: Vec::new(),
                size: 0,
                line_too_long: false,
                too_big: false,
            },
        }
    }

    /// Add chunk bytes as they arrive.
    pub fn push(&mut self, bytes: &[u8]) {
        self.content.size += bytes.len() as u64;
        if self.content.too_big {
            return;
        }
        if self.content.size > self.max_size as u64 {
            self.content.too_big = true;
            self.content.body = Vec::new();
        } else {
            self.content.body.extend_from_slice(bytes);
        }
    }

    /// True once the size limit was passed.
    pub fn too_big(&self) -> bool {
        self.content.too_big
    }

    /// The message so far.
    pub fn finish(self) -> Content {
        self.content
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Feed `input` in pieces of `step` bytes; returns the content and the
    /// number of bytes consumed, or None if the end was not seen.
    fn read(input: &[u8], step: usize) -> Option<(Content, usize)> {
        let mut r = DataReader::new(1000, 1 << 20);
        let mut pos = 0;
        while pos < input.len() {
            let end = (pos + step).min(input.len());
            let (n, done) = r.feed(&input[pos..end]);
            pos += n;
            if done {
                return Some((r.finish(), pos));
            }
            assert_eq!(pos, end, "all input consumed when not done");
        }
        None
    }

    fn body(input: &[u8]) -> Option<Vec<u8>> {
        read(input, input.len().max(1)).map(|(c, _)| c.body)
    }

    #[test]
    fn ends_only_at_crlf_dot_crlf() {
        assert_eq!(body(b"Hi\r\n.\r\n"), Some(b"Hi\r\n".to_vec()));
        assert_eq!(body(b".\r\n"), Some(Vec::new()));
        assert_eq!(
            body(b"a\r\n.\r\nMAIL FROM:<x@y>\r\n"),
            Some(b"a\r\n".to_vec())
        );
        // Smuggling attempts: none of these ends the message.
        assert_eq!(body(b"a\n.\r\n"), None);
        assert_eq!(body(b"a\r\n.\n"), None);
        assert_eq!(body(b"a\r.\r\n"), None);
        assert_eq!(body(b"a\n.\n"), None);
        assert_eq!(
            body(b"a\n.\r\nMAIL FROM:<x@y>\r\n\r\n.\r\n"),
            Some(b"a\n.\r\nMAIL FROM:<x@y>\r\n\r\n".to_vec())
        );
        assert_eq!(
            body(b"a\r\n.\nb\r.\r\nc\r\n.\r\n"),
            Some(b"a\r\n.\nb\r.\r\nc\r\n".to_vec())
        );
    }

    #[test]
    fn dot_unstuffing() {
        assert_eq!(body(b"..\r\n.\r\n"), Some(b".\r\n".to_vec()));
        assert_eq!(body(b"..x\r\n...\r\n.\r\n"), Some(b".x\r\n..\r\n".to_vec()));
        assert_eq!(body(b".x\r\n.\r\n"), Some(b"x\r\n".to_vec()));
        assert_eq!(body(b".\rx\r\n.\r\n"), Some(b"\rx\r\n".to_vec()));
        // A dot after a bare LF is not at the start of a CRLF line: kept.
        assert_eq!(body(b"a\n..\r\n.\r\n"), Some(b"a\n..\r\n".to_vec()));
    }

    #[test]
    fn consumes_nothing_after_the_end() {
        let (c, n) = read(b"x\r\n.\r\nQUIT\r\n", 100).unwrap();
        assert_eq!(c.body, b"x\r\n");
        assert_eq!(n, 6);
    }

    #[test]
    fn long_lines_are_flagged_not_cut() {
        let mut msg = vec![b'a'; 998];
        msg.extend_from_slice(b"\r\n.\r\n");
        let (c, _) = read(&msg, 7).unwrap();
        assert!(!c.line_too_long);
        let mut msg = vec![b'a'; 999];
        msg.extend_from_slice(b"\r\n.\r\n");
        let (c, _) = read(&msg, 7).unwrap();
        assert!(c.line_too_long);
        assert_eq!(c.size, 1001);
    }

    #[test]
    fn size_limit_stops_buffering_but_reads_to_the_end() {
        let mut r = DataReader::new(1000, 10);
        let (n, done) = r.feed(b"0123456789\r\nmore\r\n");
        assert!(!done);
        assert_eq!(n, 18);
        let (_, done) = r.feed(b".\r\n");
        assert!(done);
        let c = r.finish();
        assert!(c.too_big);
        assert!(c.body.is_empty());
        assert_eq!(c.size, 18);
    }

    #[test]
    fn bdat_body_keeps_bytes_verbatim() {
        let mut b = BdatBody::new(8);
        b.push(b"a\r\n.\r\n");
        assert!(!b.too_big());
        b.push(b"xyz");
        assert!(b.too_big());
        let c = b.finish();
        assert_eq!(c.size, 9);
        assert!(c.body.is_empty());
    }

    /// Dot-stuff `lines` the way a conforming client does.
    fn stuff(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for line in body.split_inclusive(|&b| b == b'\n') {
            if line.starts_with(b".") {
                out.push(b'.');
            }
            out.extend_from_slice(line);
        }
        out.extend_from_slice(b".\r\n");
        out
    }

    proptest! {
        #[test]
        fn stuffed_crlf_messages_round_trip(
            lines in proptest::collection::vec("[.a-z \r]{0,20}", 0..20),
            step in 1usize..50,
        ) {
            // Lines built from CRLF-terminated text (bare CR allowed inside).
            let mut msg = Vec::new();
            for l in &lines {
                msg.extend_from_slice(l.as_bytes());
                msg.extend_from_slice(b"\r\n");
            }
            let wire = stuff(&msg);
            let (c, n) = read(&wire, step).unwrap();
            prop_assert_eq!(n, wire.len());
            prop_assert_eq!(c.body, msg);
        }

        #[test]
        fn never_ends_without_crlf_dot_crlf(
            data in proptest::collection::vec(prop::sample::select(vec![b'.', b'\r', b'\n', b'a']), 0..60),
        ) {
            let ends = data.windows(5).any(|w| w == b"\r\n.\r\n") || data.starts_with(b".\r\n");
            let got = read(&data, 3);
            if let Some((_, n)) = got {
                prop_assert!(ends);
                // What was consumed ends with the terminator.
                prop_assert!(data[..n].ends_with(b".\r\n"));
                let prefix = &data[..n];
                prop_assert!(prefix == b".\r\n" || prefix.ends_with(b"\r\n.\r\n"));
            } else {
                prop_assert!(!ends);
            }
        }
    }
}
