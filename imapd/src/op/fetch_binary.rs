//! BINARY (RFC 3516): a message part with its content transfer encoding
//! undone, read from the stored raw message on a store thread.
//!
//! A part's binary content is described as [`Piece`]s: raw byte ranges,
//! ranges to decode ([`crate::cte`]) and a few literal octets. A leaf part
//! is one piece (its body, decoded). For a multipart, a message/rfc822 part
//! or the whole message, every leaf inside is decoded and its MIME header's
//! `Content-Transfer-Encoding` field is replaced by `binary` (the rest is
//! copied byte for byte), as Dovecot does — so `BINARY[]` of a message
//! without encoded parts equals `BODY[]`.
//!
//! Memory: decoded data is never held whole. The size (needed before the
//! literal, and for `BINARY.SIZE`) comes from one pass over the pieces in
//! [`CHUNK`]-sized reads; a window up to `STREAM_MIN` is then produced
//! inline, a larger one becomes a [`BinaryStream`] that the FETCH pump
//! (`fetch.rs`) advances one chunk at a time, holding at most one chunk
//! read, its decoded output and the decoder's bounded carry
//! ([`crate::cte::MAX_QP_CARRY`]). A large BINARY is therefore read twice
//! (size, then data). Rewritten headers are at most [`MAX_HEADER_REWRITE`]
//! octets read transiently; a larger header is sent unchanged.

use crate::command::FetchAtt;
use crate::cte::{Cte, Decoder};
use crate::limits::{CHUNK, STREAM_MIN};
use crate::structure::find_part;
use mailstore::{MailboxId, MessageMeta, MimePart, Reader, Uid};
use std::collections::VecDeque;

/// Largest MIME header read to rewrite its Content-Transfer-Encoding.
pub const MAX_HEADER_REWRITE: u64 = 1 << 20;

/// One piece of a part's binary content.
#[derive(Debug, Clone)]
pub(crate) enum Piece {
    /// Raw octets of the message, sent as they are.
    Raw(u64, u64),
    /// Raw octets of the message, to decode.
    Decode(u64, u64, Cte),
    /// Octets made here (a rewritten header field).
    Bytes(Vec<u8>),
}

/// A part we cannot decode: the encoding's name (`NO [UNKNOWN-CTE]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnknownCte(pub(crate) String);

fn ordered((a, b): (u64, u64)) -> (u64, u64) {
    (a, b.max(a))
}

/// The pieces of part `path` (empty: the whole message) of `meta`;
/// `Ok(None)` if there is no such part.
pub(crate) fn pieces(
    r: &Reader,
    mailbox: MailboxId,
    meta: &MessageMeta,
    path: &[u32],
) -> mailstore::Result<Result<Option<Vec<Piece>>, UnknownCte>> {
    if path.is_empty() {
        let root = &meta.structure;
        return build(r, mailbox, meta.uid, |b| {
            b.header(root)?;
            b.body(root)?;
            // Anything after the root body (there should be nothing).
            b.raw(ordered(root.body_range).1, meta.size);
            Ok(())
        })
        .map(|p| p.map(Some));
    }
    match find_part(&meta.structure, path) {
        Some(part) => body_pieces(r, mailbox, meta.uid, part).map(|p| p.map(Some)),
        None => Ok(Ok(None)),
    }
}

/// The pieces of the body of `part` (of message `uid`).
pub(crate) fn body_pieces(
    r: &Reader,
    mailbox: MailboxId,
    uid: Uid,
    part: &MimePart,
) -> mailstore::Result<Result<Vec<Piece>, UnknownCte>> {
    build(r, mailbox, uid, |b| b.body(part))
}

fn build(
    r: &Reader,
    mailbox: MailboxId,
    uid: Uid,
    f: impl FnOnce(&mut Builder<'_>) -> Result<(), Fail>,
) -> mailstore::Result<Result<Vec<Piece>, UnknownCte>> {
    let mut b = Builder {
        r,
        mailbox,
        uid,
        out: Vec::new(),
    };
    match f(&mut b) {
        Ok(()) => Ok(Ok(b.out)),
        Err(Fail::Store(e)) => Err(e),
        Err(Fail::Cte(c)) => Ok(Err(c)),
    }
}

enum Fail {
    Store(mailstore::StoreError),
    Cte(UnknownCte),
}

impl From<mailstore::StoreError> for Fail {
    fn from(e: mailstore::StoreError) -> Self {
        Fail::Store(e)
    }
}

struct Builder<'a> {
    r: &'a Reader,
    mailbox: MailboxId,
    uid: Uid,
    out: Vec<Piece>,
}

fn is_leaf(p: &MimePart) -> bool {
    let multipart = p.media_type.eq_ignore_ascii_case("multipart") && !p.parts.is_empty();
    !multipart && p.embedded.is_none()
}

fn cte_of(p: &MimePart) -> Result<Cte, Fail> {
    Cte::from_name(&p.encoding).ok_or_else(|| Fail::Cte(UnknownCte(p.encoding.clone())))
}

impl Builder<'_> {
    fn raw(&mut self, a: u64, b: u64) {
        if b <= a {
            return;
        }
        if let Some(Piece::Raw(pa, pl)) = self.out.last_mut() {
            if *pa + *pl == a {
                *pl += b - a;
                return;
            }
        }
        self.out.push(Piece::Raw(a, b - a));
    }

    /// The MIME header of `p`, its CTE field rewritten if its body is decoded.
    fn header(&mut self, p: &MimePart) -> Result<(), Fail> {
        let (a, b) = ordered(p.header_range);
        if !is_leaf(p) || cte_of(p)? == Cte::Identity || b - a > MAX_HEADER_REWRITE {
            self.raw(a, b);
            return Ok(());
        }
        let header = self.r.raw_range(self.mailbox, self.uid, a, b - a)?;
        match cte_field(&header) {
            Some((fa, fb)) => {
                self.raw(a, a + fa as u64);
                self.out.push(Piece::Bytes(
                    b"Content-Transfer-Encoding: binary\r\n".to_vec(),
                ));
                self.raw(a + fb as u64, b);
            }
            None => self.raw(a, b),
        }
        Ok(())
    }

    /// The body of `p`: decoded if a leaf, else walked.
    fn body(&mut self, p: &MimePart) -> Result<(), Fail> {
        let (a, b) = ordered(p.body_range);
        if let Some(inner) = p.embedded.as_deref().map(|(_, m)| m) {
            let ia = ordered(inner.header_range).0.clamp(a, b);
            self.raw(a, ia);
            self.header(inner)?;
            self.body(inner)?;
            let ib = ordered(inner.body_range).1.clamp(a, b);
            self.raw(ib, b);
            return Ok(());
        }
        if !is_leaf(p) {
            let mut at = a;
            for child in &p.parts {
                let ca = ordered(child.header_range).0.clamp(at, b);
                self.raw(at, ca);
                self.header(child)?;
                self.body(child)?;
                at = ordered(child.body_range).1.clamp(ca, b);
            }
            self.raw(at, b);
            return Ok(());
        }
        match cte_of(p)? {
            Cte::Identity => self.raw(a, b),
            cte if b > a => self.out.push(Piece::Decode(a, b - a, cte)),
            _ => {}
        }
        Ok(())
    }
}

/// Where the `Content-Transfer-Encoding` field (with its continuation
/// lines and line break) lies in `header`.
fn cte_field(header: &[u8]) -> Option<(usize, usize)> {
    let name = b"content-transfer-encoding";
    let mut i = 0;
    while i < header.len() {
        let mut end = i;
        loop {
            match header[end..].iter().position(|&c| c == b'\n') {
                Some(p) => end += p + 1,
                None => {
                    end = header.len();
                    break;
                }
            }
            if end >= header.len() || !matches!(header[end], b' ' | b'\t') {
                break;
            }
        }
        let field = &header[i..end];
        if let Some(colon) = field.iter().position(|&c| c == b':') {
            if field[..colon].trim_ascii().eq_ignore_ascii_case(name) {
                return Some((i, end));
            }
        }
        i = end;
    }
    None
}

/// A part's binary content being produced: the pieces left, the decoder
/// of the piece in progress, and the window `[start, end)` of decoded
/// octets wanted.
#[derive(Debug, Clone)]
pub(crate) struct BinaryStream {
    pub(crate) uid: Uid,
    pub(crate) pieces: VecDeque<Piece>,
    dec: Option<Decoder>,
    pos: u64,
    start: u64,
    end: u64,
    /// Octets handed out so far.
    sent: u64,
    /// A read failed: the rest of the window is sent as spaces (its length
    /// is already on the wire).
    failed: bool,
}

impl BinaryStream {
    pub(crate) fn new(uid: Uid, pieces: Vec<Piece>, start: u64, end: u64) -> Self {
        BinaryStream {
            uid,
            pieces: pieces.into(),
            dec: None,
            pos: 0,
            start,
            end,
            sent: 0,
            failed: false,
        }
    }

    /// Give up reading: the rest of the window will be spaces.
    pub(crate) fn fail(&mut self) {
        self.failed = true;
        self.pieces.clear();
        self.dec = None;
    }

    /// Octets of the window still to come.
    pub(crate) fn remaining(&self) -> u64 {
        (self.end - self.start).saturating_sub(self.sent)
    }

    /// Produce decoded octets, reading at most about `budget` raw octets,
    /// and hand each decoded run to `f` with its position.
    pub(crate) fn run(
        &mut self,
        r: &Reader,
        mailbox: MailboxId,
        budget: u64,
        f: &mut dyn FnMut(u64, &[u8]),
    ) -> mailstore::Result<()> {
        let mut read = 0u64;
        while read < budget && self.pos < self.end {
            let Some(front) = self.pieces.front_mut() else {
                break;
            };
            let mut buf = Vec::new();
            let done = match front {
                Piece::Bytes(b) => {
                    buf = std::mem::take(b);
                    true
                }
                Piece::Raw(off, len) => {
                    let n = (*len).min(CHUNK);
                    buf = read_range(r, mailbox, self.uid, *off, n)?;
                    read += n;
                    *off += n;
                    *len -= n;
                    *len == 0
                }
                Piece::Decode(off, len, cte) => {
                    let n = (*len).min(CHUNK);
                    let raw = read_range(r, mailbox, self.uid, *off, n)?;
                    read += n;
                    *off += n;
                    *len -= n;
                    let dec = self.dec.get_or_insert_with(|| Decoder::new(*cte));
                    dec.feed(&raw, &mut buf);
                    if *len == 0 {
                        dec.finish(&mut buf);
                        self.dec = None;
                    }
                    *len == 0
                }
            };
            if done {
                self.pieces.pop_front();
            }
            f(self.pos, &buf);
            self.pos += buf.len() as u64;
        }
        Ok(())
    }

    /// The next run of the window (empty when done), reading about one
    /// [`CHUNK`]. Called by the FETCH pump on a store thread.
    pub(crate) fn next_chunk(
        &mut self,
        r: &Reader,
        mailbox: MailboxId,
    ) -> mailstore::Result<Vec<u8>> {
        let (start, end) = (self.start, self.end);
        let mut out = Vec::new();
        if self.failed {
            out.resize(self.remaining().min(CHUNK) as usize, b' ');
            self.sent += out.len() as u64;
            return Ok(out);
        }
        while out.is_empty() && self.pos < end && !self.pieces.is_empty() {
            self.run(r, mailbox, CHUNK, &mut |pos, data| {
                out.extend_from_slice(window(pos, data, start, end));
            })?;
        }
        if out.is_empty() && self.remaining() > 0 {
            // The pieces ran out early (a message shorter than its
            // structure): fill the window.
            self.fail();
            return self.next_chunk(r, mailbox);
        }
        self.sent += out.len() as u64;
        Ok(out)
    }
}

/// `n` raw octets at `off` (padded if the message is shorter than its
/// structure says, so positions stay honest).
fn read_range(
    r: &Reader,
    mailbox: MailboxId,
    uid: Uid,
    off: u64,
    n: u64,
) -> mailstore::Result<Vec<u8>> {
    let mut v = r.raw_range(mailbox, uid, off, n)?;
    v.resize(n as usize, b' ');
    Ok(v)
}

/// The part of `data` (at decoded position `pos`) inside `[start, end)`.
fn window(pos: u64, data: &[u8], start: u64, end: u64) -> &[u8] {
    let a = start.saturating_sub(pos).min(data.len() as u64) as usize;
    let b = end.saturating_sub(pos).min(data.len() as u64) as usize;
    &data[a..b.max(a)]
}

/// Decoded size of `pieces`, and whether `[start, end)` holds a NUL.
fn scan(
    r: &Reader,
    mailbox: MailboxId,
    uid: Uid,
    pieces: &[Piece],
    (start, end): (u64, u64),
) -> mailstore::Result<(u64, bool)> {
    let mut s = BinaryStream::new(uid, pieces.to_vec(), 0, u64::MAX);
    let mut nul = false;
    s.run(r, mailbox, u64::MAX, &mut |pos, data| {
        nul |= window(pos, data, start, end).contains(&0);
    })?;
    Ok((s.pos, nul))
}

/// How one BINARY item is sent.
pub(crate) enum BinaryValue {
    /// Pre-encoded octets (name, value).
    Ready(Vec<u8>),
    /// The literal's header; then the stream.
    Stream(Vec<u8>, BinaryStream),
}

/// Encode `BINARY[...]` or `BINARY.SIZE[...]` for one message; returns the
/// value and the body octets read inline.
pub(crate) fn encode(
    r: &Reader,
    mailbox: MailboxId,
    meta: &MessageMeta,
    att: &FetchAtt,
) -> mailstore::Result<Result<(BinaryValue, u64), UnknownCte>> {
    let (path, partial, size_only) = match att {
        FetchAtt::Binary { part, partial, .. } => (part, *partial, false),
        FetchAtt::BinarySize(part) => (part, None, true),
        _ => return Ok(Err(UnknownCte(String::new()))),
    };
    let spec = path
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(".");
    let mut out = Vec::new();
    let pieces = match pieces(r, mailbox, meta, path)? {
        Ok(p) => p,
        Err(e) => return Ok(Err(e)),
    };
    if size_only {
        out.extend_from_slice(format!("BINARY.SIZE[{spec}] ").as_bytes());
        let size = match &pieces {
            None => 0,
            Some(p) if p.iter().all(|p| !matches!(p, Piece::Decode(..))) => p
                .iter()
                .map(|p| match p {
                    Piece::Raw(_, n) | Piece::Decode(_, n, _) => *n,
                    Piece::Bytes(b) => b.len() as u64,
                })
                .sum(),
            Some(p) => scan(r, mailbox, meta.uid, p, (0, 0))?.0,
        };
        out.extend_from_slice(size.to_string().as_bytes());
        return Ok(Ok((BinaryValue::Ready(out), 0)));
    }
    out.extend_from_slice(format!("BINARY[{spec}]").as_bytes());
    if let Some((o, _)) = partial {
        out.extend_from_slice(format!("<{o}>").as_bytes());
    }
    out.push(b' ');
    let Some(pieces) = pieces else {
        out.extend_from_slice(b"NIL");
        return Ok(Ok((BinaryValue::Ready(out), 0)));
    };
    let want = |total: u64| match partial {
        Some((o, n)) => {
            let a = u64::from(o).min(total);
            (a, (a + u64::from(n)).min(total))
        }
        None => (0, total),
    };
    // Small parts: decode at once.
    let raw_len: u64 = pieces
        .iter()
        .map(|p| match p {
            Piece::Raw(_, n) | Piece::Decode(_, n, _) => *n,
            Piece::Bytes(b) => b.len() as u64,
        })
        .sum();
    if raw_len < STREAM_MIN {
        let mut s = BinaryStream::new(meta.uid, pieces, 0, u64::MAX);
        let mut all = Vec::new();
        s.run(r, mailbox, u64::MAX, &mut |_, d| all.extend_from_slice(d))?;
        let (a, b) = want(all.len() as u64);
        let data = &all[a as usize..b as usize];
        literal8_header(data.len() as u64, data.contains(&0), &mut out);
        out.extend_from_slice(data);
        return Ok(Ok((BinaryValue::Ready(out), raw_len)));
    }
    let (total, nul_anywhere) = scan(r, mailbox, meta.uid, &pieces, (0, u64::MAX))?;
    let (a, b) = want(total);
    let nul = if partial.is_none() || !nul_anywhere {
        nul_anywhere
    } else {
        scan(r, mailbox, meta.uid, &pieces, (a, b))?.1
    };
    literal8_header(b - a, nul, &mut out);
    Ok(Ok((
        BinaryValue::Stream(out, BinaryStream::new(meta.uid, pieces, a, b)),
        0,
    )))
}

/// `{n}` CRLF, or `~{n}` CRLF (RFC 3516 `literal8`) when the data holds a
/// NUL, which a `literal` may not (RFC 3501 §9 `CHAR8`).
pub(crate) fn literal8_header(n: u64, nul: bool, out: &mut Vec<u8>) {
    if nul {
        out.push(b'~');
    }
    crate::response::literal_header(n, out);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cte_field_is_found_with_continuations() {
        let h =
            b"Content-Type: text/plain\r\nContent-Transfer-Encoding:\r\n base64\r\nX: y\r\n\r\n";
        let (a, b) = cte_field(h).unwrap();
        assert_eq!(&h[a..b], b"Content-Transfer-Encoding:\r\n base64\r\n");
        assert_eq!(cte_field(b"X: y\r\n\r\n"), None);
    }

    /// The bound: a streamed BINARY value is produced one chunk at a time,
    /// each from at most one CHUNK of raw octets, and between chunks the
    /// stream holds only its remaining piece list and the decoder's carry.
    #[test]
    fn a_large_part_is_decoded_one_chunk_at_a_time() {
        use base64::Engine as _;
        let dir = tempfile::tempdir().unwrap();
        let store = mailstore::Store::open(dir.path().join("m.db")).unwrap();
        let data: Vec<u8> = (0..6u32 << 20)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&data);
        let mut raw = b"Subject: big\r\nContent-Transfer-Encoding: base64\r\n\r\n".to_vec();
        for line in b64.as_bytes().chunks(76) {
            raw.extend_from_slice(line);
            raw.extend_from_slice(b"\r\n");
        }
        let (mb, uid) = store
            .write_sync(move |tx| {
                let u = tx.create_user("a@x", "$argon2id$dummy")?;
                let mb = tx.create_mailbox(u, "Big", None)?;
                let a = tx.append(mb, &raw, &mailstore::Flags::empty(), 0)?;
                Ok((mb, a.uid))
            })
            .unwrap();
        let chunks = store
            .read_sync(move |r| {
                let parts = mailstore::MetaParts {
                    envelope: false,
                    structure: true,
                };
                let meta = r.messages_with(mb, &[uid], parts)?.remove(0);
                let att = FetchAtt::Binary {
                    part: vec![1],
                    partial: None,
                    peek: true,
                };
                let Ok((BinaryValue::Stream(head, mut s), inline)) = encode(r, mb, &meta, &att)?
                else {
                    panic!("not streamed")
                };
                assert_eq!(inline, 0);
                assert_eq!(
                    head,
                    format!("BINARY[1] ~{{{}}}\r\n", data.len()).into_bytes()
                );
                let mut at = 0;
                let mut n = 0;
                loop {
                    let c = s.next_chunk(r, mb)?;
                    if c.is_empty() {
                        break;
                    }
                    assert!(c.len() as u64 <= CHUNK, "chunk of {}", c.len());
                    assert!(s.pieces.len() <= 1 && s.dec.as_ref().map_or(0, Decoder::carried) < 4);
                    assert!(c == data[at..at + c.len()], "at {at}");
                    at += c.len();
                    n += 1;
                }
                assert_eq!((at, s.remaining()), (data.len(), 0));
                Ok(n)
            })
            .unwrap();
        assert!(chunks >= 24, "{chunks} chunks");
    }

    #[test]
    fn window_clips() {
        assert_eq!(window(10, b"abcdef", 12, 14), b"cd");
        assert_eq!(window(10, b"abcdef", 0, 100), b"abcdef");
        assert_eq!(window(10, b"abcdef", 20, 30), b"");
        assert_eq!(window(10, b"abcdef", 0, 5), b"");
    }
}
