//! Connection buffers and line framing.
//!
//! [`InBuf`] holds bytes read from the socket until the session consumes
//! them; [`InBuf::take_line`] frames one line, accepting CRLF and bare LF
//! (typed sessions) and reporting which ending it saw, so that SMTP can insist
//! on CRLF for the end-of-DATA dot line. A line longer than the limit is
//! reported once as [`Line::TooLong`] and the rest of it, up to the next LF,
//! is discarded so that the session resynchronises on the next line.
//! No protocol knowledge lives here.

/// How a framed line ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// `\r\n`
    CrLf,
    /// A bare `\n` (typed sessions; never ends SMTP DATA).
    Lf,
}

impl Ending {
    /// The bytes of this line ending.
    pub fn as_bytes(self) -> &'static [u8] {
        match self {
            Ending::CrLf => b"\r\n",
            Ending::Lf => b"\n",
        }
    }
}

/// The result of [`InBuf::take_line`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A complete line without its ending.
    Complete(Vec<u8>, Ending),
    /// The line exceeded the limit. Its bytes up to and including the next
    /// LF are being discarded (now, or as they arrive).
    TooLong,
    /// No complete line buffered yet.
    Incomplete,
}

/// Bytes received and not yet consumed.
#[derive(Debug, Default)]
pub struct InBuf {
    data: ByteQueue,
    /// Discarding the tail of an overlong line until the next LF.
    skipping: bool,
}

impl InBuf {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Drop every unconsumed byte (and any overlong-line skipping).
    pub fn clear(&mut self) {
        self.data.clear();
        self.skipping = false;
    }

    /// The unconsumed bytes.
    pub fn as_slice(&self) -> &[u8] {
        self.data.as_slice()
    }

    /// Number of unconsumed bytes.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Mark the first `n` unconsumed bytes as consumed (clamped to `len`).
    pub fn consume(&mut self, n: usize) {
        self.data.advance(n);
        self.data.compact();
    }

    /// Take and return up to `n` bytes.
    pub fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.len());
        let v = self.as_slice()[..n].to_vec();
        self.consume(n);
        v
    }

    /// Append received bytes (used by the loop and by tests).
    pub fn extend(&mut self, bytes: &[u8]) {
        self.data.push(bytes);
    }

    /// Frame one line of at most `max` bytes (ending excluded). See the
    /// module docs for CRLF / bare-LF handling and overlong lines.
    pub fn take_line(&mut self, max: usize) -> Line {
        if self.skipping {
            match memchr(b'\n', self.as_slice()) {
                Some(i) => {
                    self.consume(i + 1);
                    self.skipping = false;
                }
                None => {
                    let n = self.len();
                    self.consume(n);
                    return Line::Incomplete;
                }
            }
        }
        let buf = self.as_slice();
        match memchr(b'\n', buf) {
            Some(i) => {
                let (content_end, ending) = if i > 0 && buf[i - 1] == b'\r' {
                    (i - 1, Ending::CrLf)
                } else {
                    (i, Ending::Lf)
                };
                if content_end > max {
                    self.consume(i + 1);
                    return Line::TooLong;
                }
                let line = buf[..content_end].to_vec();
                self.consume(i + 1);
                Line::Complete(line, ending)
            }
            // `max + 1` allows for a CR that may still be followed by LF.
            None if buf.len() > max + 1 => {
                let n = self.len();
                self.consume(n);
                self.skipping = true;
                Line::TooLong
            }
            None => Line::Incomplete,
        }
    }
}

/// Buffers bigger than this are freed once empty, so that a connection that
/// once moved a large message does not keep the memory while it idles.
const KEEP_CAPACITY: usize = 16 * 1024;

/// A consumed prefix longer than this (and longer than what is left) is
/// moved out by [`ByteQueue::compact`].
const COMPACT_AFTER: usize = 64 * 1024;

/// The storage under [`InBuf`] and [`OutBuf`]: bytes appended at the back
/// and consumed from the front, the consumed prefix skipped by an offset.
#[derive(Debug, Default)]
struct ByteQueue {
    bytes: Vec<u8>,
    start: usize,
}

impl ByteQueue {
    fn as_slice(&self) -> &[u8] {
        &self.bytes[self.start..]
    }

    fn len(&self) -> usize {
        self.bytes.len() - self.start
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    /// Drop everything, keeping the allocation.
    fn clear(&mut self) {
        self.bytes.clear();
        self.start = 0;
    }

    /// Consume the first `n` bytes (clamped to `len`); once all are
    /// consumed, start over, giving a large allocation back.
    fn advance(&mut self, n: usize) {
        self.start += n.min(self.len());
        if self.start == self.bytes.len() {
            release(&mut self.bytes);
            self.start = 0;
        }
    }

    /// Move out a long consumed prefix that outweighs what is left, so that
    /// a buffer consumed slowly while it keeps filling does not grow without
    /// bound.
    fn compact(&mut self) {
        if self.start > COMPACT_AFTER && self.start * 2 > self.bytes.len() {
            self.bytes.drain(..self.start);
            self.start = 0;
        }
    }
}

/// Empty `v`, returning its memory if it grew large.
fn release(v: &mut Vec<u8>) {
    if v.capacity() > KEEP_CAPACITY {
        *v = Vec::new();
    } else {
        v.clear();
    }
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

/// Bytes queued for sending.
#[derive(Debug, Default)]
pub struct OutBuf {
    data: ByteQueue,
}

impl OutBuf {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queue bytes for sending.
    pub fn push(&mut self, bytes: &[u8]) {
        self.data.push(bytes);
    }

    /// Queue the bytes of `v`, leaving it empty (like [`Vec::append`]).
    /// Large ones, when nothing is queued, are taken as they are, without a
    /// copy: `v` gets the queue's spare allocation back (a bulk FETCH hands
    /// its megabytes over this way, issue 21). Small ones are copied, so an
    /// idle connection keeps no more than it did.
    pub fn append(&mut self, v: &mut Vec<u8>) {
        if self.data.is_empty() && v.len() > KEEP_CAPACITY {
            self.data.start = 0;
            std::mem::swap(&mut self.data.bytes, v);
            v.clear();
        } else {
            self.data.push(v);
            v.clear();
        }
    }

    /// The bytes not yet written.
    pub fn as_slice(&self) -> &[u8] {
        self.data.as_slice()
    }

    /// Number of bytes not yet written.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when everything has been written.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Mark `n` bytes as written.
    pub fn advance(&mut self, n: usize) {
        self.data.advance(n);
    }
}

impl std::io::Write for OutBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.push(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_buffers_give_their_memory_back_once_empty() {
        let mut o = OutBuf::new();
        o.push(&[b'x'; 300_000]);
        o.advance(299_999);
        assert!(
            o.data.bytes.capacity() >= 300_000,
            "kept while bytes remain"
        );
        o.advance(1);
        assert_eq!(o.data.bytes.capacity(), 0);
        let mut i = InBuf::new();
        i.extend(&[b'y'; 100_000]);
        i.consume(100_000);
        assert_eq!(i.data.bytes.capacity(), 0);
        i.extend(b"small\r\n");
        i.consume(7);
        assert!(i.data.bytes.capacity() > 0, "small buffers are reused");
    }

    fn complete(s: &str, e: Ending) -> Line {
        Line::Complete(s.as_bytes().to_vec(), e)
    }

    #[test]
    fn crlf_and_bare_lf_lines_are_framed_with_their_ending() {
        let mut b = InBuf::new();
        b.extend(b"EHLO x\r\nNOOP\npart");
        assert_eq!(b.take_line(512), complete("EHLO x", Ending::CrLf));
        assert_eq!(b.take_line(512), complete("NOOP", Ending::Lf));
        assert_eq!(b.take_line(512), Line::Incomplete);
        b.extend(b"ial\r\n");
        assert_eq!(b.take_line(512), complete("partial", Ending::CrLf));
        assert!(b.is_empty());
    }

    #[test]
    fn bare_cr_does_not_end_a_line() {
        let mut b = InBuf::new();
        b.extend(b"a\rb\r\n");
        assert_eq!(b.take_line(512), complete("a\rb", Ending::CrLf));
    }

    #[test]
    fn overlong_complete_line_is_reported_and_skipped() {
        let mut b = InBuf::new();
        b.extend(b"0123456789\r\nNOOP\r\n");
        assert_eq!(b.take_line(5), Line::TooLong);
        assert_eq!(b.take_line(5), complete("NOOP", Ending::CrLf));
    }

    #[test]
    fn overlong_partial_line_is_discarded_as_it_arrives() {
        let mut b = InBuf::new();
        b.extend(b"0123456789");
        assert_eq!(b.take_line(5), Line::TooLong);
        assert!(b.is_empty());
        b.extend(b"more junk");
        assert_eq!(b.take_line(5), Line::Incomplete);
        b.extend(b"end\nQUIT\r\n");
        assert_eq!(b.take_line(5), complete("QUIT", Ending::CrLf));
    }

    #[test]
    fn line_of_exactly_max_with_crlf_split_is_accepted() {
        let mut b = InBuf::new();
        b.extend(b"12345\r");
        assert_eq!(b.take_line(5), Line::Incomplete);
        b.extend(b"\n");
        assert_eq!(b.take_line(5), complete("12345", Ending::CrLf));
    }

    #[test]
    fn append_takes_the_vector_when_empty_and_copies_behind_queued_bytes() {
        let mut o = OutBuf::new();
        let mut v = vec![b'a'; KEEP_CAPACITY + 1];
        let at = v.as_ptr();
        o.append(&mut v);
        assert!(v.is_empty());
        assert_eq!(o.as_slice().as_ptr(), at, "taken without a copy");
        let mut w = b"second".to_vec();
        o.append(&mut w);
        assert!(w.is_empty());
        assert_eq!(o.len(), KEEP_CAPACITY + 7);
        o.advance(KEEP_CAPACITY + 1);
        assert_eq!(o.as_slice(), b"second");
        o.advance(6);
        let mut x = b"third".to_vec();
        let small = x.as_ptr();
        o.append(&mut x);
        assert!(x.is_empty());
        assert_eq!(o.as_slice(), b"third");
        assert_ne!(o.as_slice().as_ptr(), small, "small ones are copied");
    }

    #[test]
    fn outbuf_advances_and_resets() {
        let mut o = OutBuf::new();
        o.push(b"hello");
        o.advance(2);
        assert_eq!(o.as_slice(), b"llo");
        o.advance(10);
        assert!(o.is_empty());
    }
}
