//! mbox files (RFC 4155; the `From `-line family mutt, Dovecot and
//! Thunderbird write): a streaming reader that hands out one message at a
//! time and a writer.
//!
//! Separators: a line `From SENDER DATE` at the start of the file or after
//! an empty line, whose date parses (as mutt decides); the empty line
//! before it belongs to the file, not the message. Quoting: mboxrd (the
//! writer's form: any `>*From ` line gets one more `>`, and the reader
//! takes one away) or, with [`Quoting::O`], mboxo (only `>From ` loses its
//! `>`). Flags live in `Status:` (`R` = `\Seen`), `X-Status:` (`A`
//! `\Answered`, `F` `\Flagged`, `T` `\Draft`, `D` `\Deleted`) and
//! `X-Keywords:` header fields, which the reader takes out of the message
//! (with Dovecot's `X-UID:`, `X-IMAP:` and `X-IMAPbase:`) and the writer
//! adds at the end of the header. Messages are handed out CRLF (as the
//! store keeps them) and written LF.

use std::io::{BufRead, Write};

use mailstore::{Flags, SystemFlag};

use crate::message::{asctime, from_line_date, to_crlf, to_lf, valid_keyword};

/// How `>From ` lines are unquoted when reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quoting {
    /// mboxrd: `>`*n*`From ` becomes `>`*(n-1)*`From `.
    Rd,
    /// mboxo: only `>From ` becomes `From ` (deeper quoting is kept).
    O,
}

/// One message read from an mbox.
#[derive(Debug)]
pub enum Item {
    /// A message: CRLF bytes, flags, the `From ` line's date.
    Message {
        /// The message as the store keeps it (CRLF).
        raw: Vec<u8>,
        /// From `Status:`, `X-Status:`, `X-Keywords:`.
        flags: Flags,
        /// Unix seconds.
        date: i64,
    },
    /// A message larger than the reader's bound, skipped.
    TooBig {
        /// Its size in the file.
        size: u64,
        /// Its `From ` line's date.
        date: i64,
    },
}

/// A streaming mbox reader: memory is one message (bounded by `max`).
pub struct Reader<R> {
    input: R,
    quoting: Quoting,
    max: usize,
    line: Vec<u8>,
    /// The date of the message being read (`None` before the first line).
    next_date: Option<i64>,
    started: bool,
    done: bool,
}

/// Header fields the reader takes out: their content is flags or
/// Dovecot's bookkeeping, which the writer adds back.
const STRIPPED: [&[u8]; 6] = [
    b"status:",
    b"x-status:",
    b"x-keywords:",
    b"x-uid:",
    b"x-imap:",
    b"x-imapbase:",
];

fn is_blank(line: &[u8]) -> bool {
    line == b"\n" || line == b"\r\n"
}

fn separator_date(line: &[u8]) -> Option<i64> {
    let rest = line.strip_prefix(b"From ")?;
    from_line_date(std::str::from_utf8(rest).ok()?)
}

/// The mboxrd/mboxo quoting depth: `Some(n)` when `line` is `>`*n*`From `.
fn from_depth(line: &[u8]) -> Option<usize> {
    let n = line.iter().take_while(|&&b| b == b'>').count();
    line[n..].starts_with(b"From ").then_some(n)
}

impl<R: BufRead> Reader<R> {
    /// A reader of `input`; messages over `max` bytes are reported as
    /// [`Item::TooBig`] and not kept.
    pub fn new(input: R, quoting: Quoting, max: usize) -> Reader<R> {
        Reader {
            input,
            quoting,
            max,
            line: Vec::new(),
            next_date: None,
            started: false,
            done: false,
        }
    }

    fn read_line(&mut self) -> std::io::Result<bool> {
        self.line.clear();
        Ok(self.input.read_until(b'\n', &mut self.line)? > 0)
    }

    /// The next message, `Ok(None)` at the end.
    ///
    /// # Errors
    /// Read errors; `InvalidData` when the file does not start with a
    /// `From ` line (it is not an mbox).
    pub fn next_item(&mut self) -> std::io::Result<Option<Item>> {
        if self.done {
            return Ok(None);
        }
        if !self.started {
            self.started = true;
            // Empty lines before the first separator are allowed.
            loop {
                if !self.read_line()? {
                    self.done = true;
                    return Ok(None);
                }
                if !is_blank(&self.line) {
                    break;
                }
            }
            match separator_date(&self.line) {
                Some(d) => self.next_date = Some(d),
                None => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "not an mbox file: it does not start with a `From SENDER DATE` line",
                    ))
                }
            }
        }
        let date = self.next_date.unwrap_or(0);
        let mut body: Vec<u8> = Vec::new();
        let mut size: u64 = 0;
        let mut flags = Flags::empty();
        let mut in_header = true;
        let mut stripping: Option<&[u8]> = None;
        let mut prev_blank = false;
        loop {
            if !self.read_line()? {
                self.done = true;
                break;
            }
            if prev_blank {
                if let Some(d) = separator_date(&self.line) {
                    self.next_date = Some(d);
                    break;
                }
            }
            prev_blank = is_blank(&self.line);
            if in_header {
                if prev_blank {
                    in_header = false;
                    stripping = None;
                } else if let (Some(field), Some(b' ' | b'\t')) = (stripping, self.line.first()) {
                    // A folded continuation of a field taken out.
                    status_flags(field, &self.line, &mut flags);
                    continue;
                } else if let Some(field) = STRIPPED.iter().find(|f| {
                    self.line.len() >= f.len() && self.line[..f.len()].eq_ignore_ascii_case(f)
                }) {
                    status_flags(field, &self.line[field.len()..], &mut flags);
                    stripping = Some(field);
                    continue;
                } else {
                    stripping = None;
                }
            }
            let line = match from_depth(&self.line) {
                Some(n) if n >= 1 && (self.quoting == Quoting::Rd || n == 1) => &self.line[1..],
                _ => &self.line[..],
            };
            size += line.len() as u64;
            // Two bytes of room: the empty line that may end the entry.
            if size <= self.max as u64 + 2 {
                body.extend_from_slice(line);
            } else if !body.is_empty() {
                body = Vec::new(); // too big: stop keeping it
            }
        }
        // The empty line before a separator (or at the end) is the file's.
        if prev_blank {
            let cut = if body.ends_with(b"\r\n") { 2 } else { 1 };
            body.truncate(body.len().saturating_sub(cut));
            size = size.saturating_sub(cut as u64);
        }
        if size > self.max as u64 {
            return Ok(Some(Item::TooBig { size, date }));
        }
        Ok(Some(Item::Message {
            raw: to_crlf(&body),
            flags,
            date,
        }))
    }
}

/// Read the flags one stripped header field carries into `flags`.
fn status_flags(field: &[u8], value: &[u8], flags: &mut Flags) {
    let text = String::from_utf8_lossy(value);
    match field {
        b"status:" if text.contains('R') => flags.set(SystemFlag::Seen, true),
        b"x-status:" => {
            for (c, f) in [
                ('A', SystemFlag::Answered),
                ('F', SystemFlag::Flagged),
                ('T', SystemFlag::Draft),
                ('D', SystemFlag::Deleted),
            ] {
                if text.contains(c) {
                    flags.set(f, true);
                }
            }
        }
        b"x-keywords:" => {
            for kw in text.split([' ', '\t', ',', '\r', '\n']) {
                if valid_keyword(kw) {
                    flags.add_keyword(kw);
                } else if !kw.is_empty() {
                    log::warn!("keyword {kw:?} is not an IMAP atom; dropped");
                }
            }
        }
        _ => {}
    }
}

/// Write one message (CRLF bytes as the store keeps them) as an mboxrd
/// entry: `From MAILER-DAEMON DATE`, the header with `Status:`,
/// `X-Status:` and `X-Keywords:` added at its end, the body, one empty
/// line. A message not ending in a newline gets one (mbox cannot say
/// otherwise).
///
/// # Errors
/// Write errors.
pub fn write_message(
    w: &mut impl Write,
    raw: &[u8],
    flags: &Flags,
    date: i64,
) -> std::io::Result<()> {
    let lf = to_lf(raw);
    writeln!(w, "From MAILER-DAEMON {}", asctime(date))?;
    // The header ends before the first empty line (or at the end).
    let split = if lf.starts_with(b"\n") {
        0
    } else {
        memchr::memmem::find(&lf, b"\n\n").map_or(lf.len(), |i| i + 1)
    };
    let (header, rest) = lf.split_at(split);
    write_quoted(w, header)?;
    if !header.is_empty() && !header.ends_with(b"\n") {
        w.write_all(b"\n")?;
    }
    let seen = flags.has(SystemFlag::Seen);
    writeln!(w, "Status: {}", if seen { "RO" } else { "O" })?;
    let x: String = [
        (SystemFlag::Answered, 'A'),
        (SystemFlag::Flagged, 'F'),
        (SystemFlag::Draft, 'T'),
        (SystemFlag::Deleted, 'D'),
    ]
    .iter()
    .filter(|(f, _)| flags.has(*f))
    .map(|(_, c)| *c)
    .collect();
    if !x.is_empty() {
        writeln!(w, "X-Status: {x}")?;
    }
    if !flags.keywords.is_empty() {
        writeln!(w, "X-Keywords: {}", flags.keywords.join(" "))?;
    }
    write_quoted(w, rest)?;
    if !rest.is_empty() && !rest.ends_with(b"\n") {
        w.write_all(b"\n")?;
    }
    w.write_all(b"\n")
}

/// `text` with every `>*From ` line quoted once more (mboxrd).
fn write_quoted(w: &mut impl Write, text: &[u8]) -> std::io::Result<()> {
    for line in text.split_inclusive(|&b| b == b'\n') {
        if from_depth(line).is_some() {
            w.write_all(b">")?;
        }
        w.write_all(line)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(file: &[u8], quoting: Quoting, max: usize) -> Vec<Item> {
        let mut r = Reader::new(file, quoting, max);
        let mut out = Vec::new();
        while let Some(i) = r.next_item().unwrap() {
            out.push(i);
        }
        out
    }

    fn message(i: &Item) -> (&[u8], &Flags, i64) {
        match i {
            Item::Message { raw, flags, date } => (raw, flags, *date),
            Item::TooBig { .. } => panic!("too big"),
        }
    }

    #[test]
    fn messages_split_at_from_lines_after_empty_lines() {
        let file = b"From a@b Thu Jan  1 00:00:10 1970\nSubject: one\n\nFrom me, hi\n\nFrom b@c Thu Jan  1 00:00:20 1970\nSubject: two\n\nbody\n";
        let items = read_all(file, Quoting::Rd, 1 << 20);
        assert_eq!(items.len(), 2);
        let (raw, _, date) = message(&items[0]);
        assert_eq!(raw, b"Subject: one\r\n\r\nFrom me, hi\r\n");
        assert_eq!(date, 10);
        let (raw, _, date) = message(&items[1]);
        assert_eq!(raw, b"Subject: two\r\n\r\nbody\r\n");
        assert_eq!(date, 20);
    }

    #[test]
    fn mboxrd_and_mboxo_unquote_differently() {
        let file =
            b"From a@b Thu Jan  1 00:00:10 1970\nS: x\n\n>From a\n>>From b\n>>>From c\n>Fromage\n";
        let rd = read_all(file, Quoting::Rd, 1 << 20);
        assert_eq!(
            message(&rd[0]).0,
            b"S: x\r\n\r\nFrom a\r\n>From b\r\n>>From c\r\n>Fromage\r\n"
        );
        let o = read_all(file, Quoting::O, 1 << 20);
        assert_eq!(
            message(&o[0]).0,
            b"S: x\r\n\r\nFrom a\r\n>>From b\r\n>>>From c\r\n>Fromage\r\n"
        );
    }

    #[test]
    fn status_fields_become_flags_and_leave_the_message() {
        let file = b"From a@b Thu Jan  1 00:00:10 1970\nSubject: s\nStatus: RO\nX-Status: AFD\nX-Keywords: $Forwarded, Junk\n  later\nX-UID: 7\n\nStatus: body text stays\n";
        let items = read_all(file, Quoting::Rd, 1 << 20);
        let (raw, flags, _) = message(&items[0]);
        assert_eq!(raw, b"Subject: s\r\n\r\nStatus: body text stays\r\n");
        assert_eq!(
            flags.system,
            Flags::SEEN | Flags::ANSWERED | Flags::FLAGGED | Flags::DELETED
        );
        assert!(
            flags.has_keyword("$Forwarded")
                && flags.has_keyword("Junk")
                && flags.has_keyword("later")
        );
    }

    #[test]
    fn written_messages_read_back_the_same() {
        let raws: [&[u8]; 4] = [
            b"Subject: a\r\n\r\nFrom the start\r\n>From quoted\r\n\r\n",
            b"Subject: header only\r\n",
            b"\r\nno header\r\n",
            b"Subject: no final newline\r\n\r\ntext",
        ];
        let mut flags = Flags::system(Flags::SEEN | Flags::DRAFT);
        flags.add_keyword("$label1");
        let mut file = Vec::new();
        for (i, raw) in raws.iter().enumerate() {
            write_message(&mut file, raw, &flags, 1000 + i as i64).unwrap();
        }
        let items = read_all(&file, Quoting::Rd, 1 << 20);
        assert_eq!(items.len(), 4);
        for (i, item) in items.iter().enumerate() {
            let (raw, f, date) = message(item);
            let want: Vec<u8> = if i == 3 {
                b"Subject: no final newline\r\n\r\ntext\r\n".to_vec()
            } else {
                raws[i].to_vec()
            };
            assert_eq!(raw, want, "message {i}");
            assert!(f.same_as(&flags));
            assert_eq!(date, 1000 + i as i64);
        }
    }

    #[test]
    fn a_message_over_the_bound_is_skipped_not_kept() {
        let mut file = b"From a@b Thu Jan  1 00:00:10 1970\nS: big\n\n".to_vec();
        file.extend(std::iter::repeat_n(b"0123456789\n", 100).flatten());
        file.extend_from_slice(b"\nFrom a@b Thu Jan  1 00:00:11 1970\nS: small\n\nx\n");
        let items = read_all(&file, Quoting::Rd, 200);
        assert!(matches!(
            items[0],
            Item::TooBig {
                size: 1108,
                date: 10
            }
        ));
        assert_eq!(message(&items[1]).0, b"S: small\r\n\r\nx\r\n");
        // Just within: the same bound holds the small one exactly.
        let items = read_all(&file, Quoting::Rd, 1108);
        assert!(matches!(items[0], Item::Message { .. }));
    }

    #[test]
    fn a_file_not_starting_with_from_is_refused() {
        let mut r = Reader::new(&b"Subject: x\n\nbody\n"[..], Quoting::Rd, 1 << 20);
        assert!(r.next_item().is_err());
        assert!(read_all(b"", Quoting::Rd, 10).is_empty());
    }
}
