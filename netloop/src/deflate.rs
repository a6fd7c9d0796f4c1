//! The DEFLATE layer of a connection (IMAP COMPRESS=DEFLATE, RFC 4978):
//! raw DEFLATE (RFC 1951, no zlib header) between the session's buffers and
//! the transport (the socket, or rustls on a TLS connection), so that, as
//! with TLS, sessions only ever see plaintext.
//!
//! ```text
//!   read:  socket -> [rustls] -> zin (compressed) -> inflate -> InBuf
//!   write: OutBuf -> deflate (sync flush per burst) -> zout -> [rustls] -> socket
//! ```
//!
//! TLS wraps the compressed stream (compression inside TLS), as RFC 4978
//! §6 and every client expect after STARTTLS or on implicit TLS.
//!
//! Every buffer is bounded, so a compressed connection costs a fixed amount
//! of memory whatever the peer sends:
//!
//! - compressed input is read from the transport only while `zin` holds
//!   less than [`ZIN_MAX`] octets, and inflated only into the room the
//!   session's input buffer has left (the loop's `max_input`): a stream that
//!   inflates to gigabytes (a decompression bomb) is inflated a buffer at a
//!   time, as the session consumes it, never into memory at once; the
//!   session's own line and literal limits then apply to the plaintext as
//!   on any connection;
//! - output is compressed [`DEFLATE_CHUNK`] octets at a time, and only once
//!   the previous compressed bytes have gone to the transport, so the
//!   session's output queue (and its back-pressure high-water marks) keeps
//!   measuring what is unsent; each burst ends with a sync flush
//!   (`Z_SYNC_FLUSH`), so every response can be decoded as soon as it
//!   arrives.
//!
//! The compressor and decompressor state (miniz_oxide, flate2's default
//! pure-Rust backend) is the fixed cost: measured by
//! `netloop/tests/deflate_memory.rs`, see [`Deflate::new`].

use crate::buf::{InBuf, OutBuf};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use std::fmt;
use std::io;

/// Compressed input held before it is inflated: reading from the transport
/// stops here until inflating makes room.
pub const ZIN_MAX: usize = 16 * 1024;

/// Plaintext output compressed at a time.
pub const DEFLATE_CHUNK: usize = 32 * 1024;

/// The compression level. Level 1 (miniz_oxide's fast matcher) compresses
/// mail text nearly as well as the default 6 at several times the speed;
/// the memory is the same at every level.
pub const LEVEL: u32 = 1;

/// The peer's DEFLATE stream is corrupt (not valid RFC 1951 data), or goes
/// on after its final block. The loop tells the session
/// ([`crate::Session::on_input_error`]) and closes the connection.
#[derive(Debug)]
pub struct CorruptInput(pub String);

impl fmt::Display for CorruptInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid DEFLATE input: {}", self.0)
    }
}

impl std::error::Error for CorruptInput {}

fn corrupt(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, CorruptInput(why.into()))
}

/// True if `e` came from [`CorruptInput`].
pub fn is_corrupt_input(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|i| i.is::<CorruptInput>())
}

/// One connection's DEFLATE state and its compressed-side buffers.
pub struct Deflate {
    comp: Compress,
    decomp: Decompress,
    /// Compressed octets received and not yet inflated (at most
    /// [`ZIN_MAX`], plus what one TLS read hands over at the end).
    pub(crate) zin: InBuf,
    /// Octets ready for the transport: the uncompressed prefix queued
    /// before compression began (the tagged OK), then compressed output.
    pub(crate) zout: OutBuf,
    /// The last inflate filled all the room it had: the decompressor may
    /// hold more output.
    inflate_more: bool,
    /// The peer's stream ended (a final block); nothing more is inflated.
    finished: bool,
    /// The transport reached end of stream (the peer closed).
    pub(crate) transport_eof: bool,
}

impl fmt::Debug for Deflate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deflate")
            .field("zin", &self.zin.len())
            .field("zout", &self.zout.len())
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl Default for Deflate {
    fn default() -> Self {
        Self::new()
    }
}

impl Deflate {
    /// A fresh compressor (level [`LEVEL`], 32 KiB window: miniz_oxide has
    /// no smaller one) and decompressor (raw DEFLATE both ways). Together
    /// they allocate about 330 KiB, the same at every level; measured by
    /// `netloop/tests/deflate_memory.rs`.
    pub fn new() -> Self {
        Deflate {
            comp: Compress::new(Compression::new(LEVEL), false),
            decomp: Decompress::new(false),
            zin: InBuf::new(),
            zout: OutBuf::new(),
            inflate_more: false,
            finished: false,
            transport_eof: false,
        }
    }

    /// Queue compressed octets received (for tests and for bytes that
    /// arrived before compression began).
    pub fn push_compressed(&mut self, bytes: &[u8]) {
        self.zin.extend(bytes);
    }

    /// Octets ready for the transport.
    pub fn compressed_out(&mut self) -> &mut OutBuf {
        &mut self.zout
    }

    /// Queue octets for the transport as they are (the uncompressed reply
    /// that precedes compression).
    pub fn push_raw(&mut self, bytes: &[u8]) {
        self.zout.push(bytes);
    }

    /// True while more compressed input may be read into `zin`.
    pub fn wants_input(&self) -> bool {
        !self.finished && self.zin.len() < ZIN_MAX
    }

    /// True when inflating could produce more plaintext without reading:
    /// compressed octets are buffered, or the decompressor holds output.
    pub fn has_pending_input(&self) -> bool {
        !self.finished && (!self.zin.is_empty() || self.inflate_more)
    }

    /// True once the peer's stream has ended with a final block.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// Inflate buffered compressed input into `input` until it holds
    /// `max_input` octets or the compressed input runs out. `scratch` is
    /// working space. Returns the plaintext octets added.
    ///
    /// # Errors
    /// [`CorruptInput`] (as [`io::ErrorKind::InvalidData`]) when the data is
    /// not valid DEFLATE, or the stream goes on after its final block.
    pub fn inflate_into(
        &mut self,
        input: &mut InBuf,
        max_input: usize,
        scratch: &mut [u8],
    ) -> io::Result<usize> {
        let mut added = 0;
        while !self.finished && (!self.zin.is_empty() || self.inflate_more) {
            let room = max_input.saturating_sub(input.len()).min(scratch.len());
            if room == 0 {
                break;
            }
            let (in0, out0) = (self.decomp.total_in(), self.decomp.total_out());
            let status = self
                .decomp
                .decompress(
                    self.zin.as_slice(),
                    &mut scratch[..room],
                    FlushDecompress::None,
                )
                .map_err(|e| corrupt(e.to_string()))?;
            let used = usize::try_from(self.decomp.total_in() - in0).unwrap_or(usize::MAX);
            let made = usize::try_from(self.decomp.total_out() - out0).unwrap_or(usize::MAX);
            self.zin.consume(used);
            input.extend(&scratch[..made]);
            added += made;
            self.inflate_more = made == room;
            if status == Status::StreamEnd {
                self.finished = true;
                self.inflate_more = false;
                if !self.zin.is_empty() {
                    return Err(corrupt("data after the final block"));
                }
                break;
            }
            if used == 0 && made == 0 {
                if self.zin.len() >= ZIN_MAX {
                    // A full buffer that yields nothing is not DEFLATE.
                    return Err(corrupt("no progress"));
                }
                self.inflate_more = false;
                break;
            }
        }
        Ok(added)
    }

    /// Compress up to [`DEFLATE_CHUNK`] octets of `out` onto the compressed
    /// queue, ending with a sync flush when that empties `out` (the end of
    /// a burst: the peer can decode all of it now). `scratch` is working
    /// space of at least a few hundred octets.
    ///
    /// # Errors
    /// Only if the compressor reports an internal error.
    pub fn deflate_from(&mut self, out: &mut OutBuf, scratch: &mut [u8]) -> io::Result<()> {
        if out.is_empty() {
            return Ok(());
        }
        let n = out.len().min(DEFLATE_CHUNK);
        let flush = if n == out.len() {
            FlushCompress::Sync
        } else {
            FlushCompress::None
        };
        let input = &out.as_slice()[..n];
        let mut done = 0;
        loop {
            let (in0, out0) = (self.comp.total_in(), self.comp.total_out());
            self.comp
                .compress(&input[done..], scratch, flush)
                .map_err(|e| io::Error::other(format!("DEFLATE: {e}")))?;
            let used = usize::try_from(self.comp.total_in() - in0).unwrap_or(usize::MAX);
            let made = usize::try_from(self.comp.total_out() - out0).unwrap_or(usize::MAX);
            done += used;
            self.zout.push(&scratch[..made]);
            // Done when all input is taken and the output did not fill the
            // scratch space (a full one may mean more flush output waits).
            if done >= n && made < scratch.len() {
                break;
            }
            if used == 0 && made == 0 {
                return Err(io::Error::other("DEFLATE: compressor made no progress"));
            }
        }
        out.advance(n);
        Ok(())
    }
}

/// The client's side of COMPRESS=DEFLATE over any byte stream (a socket,
/// a TLS stream): every `write` is compressed and sync-flushed (one burst),
/// `read` inflates. For tests and the load tool; after the server's tagged
/// OK, wrap the stream, passing any bytes already read past the OK line.
pub struct ClientStream<S> {
    inner: S,
    comp: Compress,
    decomp: Decompress,
    /// Compressed bytes read and not yet inflated.
    rbuf: Vec<u8>,
    rpos: usize,
    wbuf: Vec<u8>,
}

impl<S> ClientStream<S> {
    /// Wrap `inner`; `already_read` are compressed bytes a buffered reader
    /// took from it past the tagged OK (usually none).
    pub fn new(inner: S, already_read: &[u8], level: u32) -> Self {
        ClientStream {
            inner,
            comp: Compress::new(Compression::new(level), false),
            decomp: Decompress::new(false),
            rbuf: already_read.to_vec(),
            rpos: 0,
            wbuf: Vec::new(),
        }
    }

    /// The stream underneath.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The stream underneath (writing to it directly breaks the stream).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Plaintext octets read and written so far, and compressed octets
    /// read and written: `(plain_in, wire_in, plain_out, wire_out)`.
    pub fn totals(&self) -> (u64, u64, u64, u64) {
        (
            self.decomp.total_out(),
            self.decomp.total_in(),
            self.comp.total_in(),
            self.comp.total_out(),
        )
    }
}

impl<S: io::Read> io::Read for ClientStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let (in0, out0) = (self.decomp.total_in(), self.decomp.total_out());
            let status = self
                .decomp
                .decompress(&self.rbuf[self.rpos..], buf, FlushDecompress::None)
                .map_err(|e| corrupt(e.to_string()))?;
            let used = usize::try_from(self.decomp.total_in() - in0).unwrap_or(usize::MAX);
            let made = usize::try_from(self.decomp.total_out() - out0).unwrap_or(usize::MAX);
            self.rpos += used;
            if made > 0 {
                return Ok(made);
            }
            if status == Status::StreamEnd {
                return Ok(0);
            }
            if used > 0 && self.rpos < self.rbuf.len() {
                continue;
            }
            // Need more compressed input.
            self.rbuf.drain(..self.rpos);
            self.rpos = 0;
            let have = self.rbuf.len();
            self.rbuf.resize(have + 16 * 1024, 0);
            let n = match self.inner.read(&mut self.rbuf[have..]) {
                Ok(n) => n,
                Err(e) => {
                    self.rbuf.truncate(have);
                    return Err(e);
                }
            };
            self.rbuf.truncate(have + n);
            if n == 0 {
                return Ok(0);
            }
        }
    }
}

impl<S: io::Write> io::Write for ClientStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.wbuf.clear();
        self.wbuf.reserve(buf.len() + buf.len() / 16 + 64);
        let mut done = 0;
        loop {
            if self.wbuf.capacity() - self.wbuf.len() < 64 {
                self.wbuf.reserve(16 * 1024);
            }
            let (in0, out0) = (self.comp.total_in(), self.comp.total_out());
            let spare = self.wbuf.capacity() - self.wbuf.len();
            self.comp
                .compress_vec(&buf[done..], &mut self.wbuf, FlushCompress::Sync)
                .map_err(|e| io::Error::other(format!("DEFLATE: {e}")))?;
            let used = usize::try_from(self.comp.total_in() - in0).unwrap_or(usize::MAX);
            let made = usize::try_from(self.comp.total_out() - out0).unwrap_or(usize::MAX);
            done += used;
            if done >= buf.len() && made < spare {
                break;
            }
            if used == 0 && made == 0 {
                return Err(io::Error::other("DEFLATE: compressor made no progress"));
            }
        }
        self.inner.write_all(&self.wbuf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Inflate a sync-flushed (unfinished) stream.
    fn inflate_all(bytes: &[u8]) -> Vec<u8> {
        let mut d = Decompress::new(false);
        let mut v = Vec::with_capacity(bytes.len() * 20 + 1024);
        d.decompress_vec(bytes, &mut v, FlushDecompress::Sync)
            .unwrap();
        assert_eq!(d.total_in() as usize, bytes.len());
        v
    }

    fn deflate_all(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), Compression::default());
        e.write_all(bytes).unwrap();
        e.flush().unwrap();
        e.get_mut().clone()
    }

    #[test]
    fn each_burst_is_decodable_at_once() {
        let mut z = Deflate::new();
        let mut scratch = vec![0; 64 * 1024];
        z.push_raw(b"a OK DEFLATE active\r\n");
        let mut out = OutBuf::new();
        out.push(b"* 1 EXISTS\r\nb OK done\r\n");
        z.deflate_from(&mut out, &mut scratch).unwrap();
        assert!(out.is_empty());
        let wire = z.zout.as_slice().to_vec();
        assert!(wire.starts_with(b"a OK DEFLATE active\r\n"));
        let body = &wire[b"a OK DEFLATE active\r\n".len()..];
        // A sync flush ends with an empty stored block: 00 00 FF FF.
        assert!(body.ends_with(&[0, 0, 0xff, 0xff]), "{body:?}");
        let mut d = Decompress::new(false);
        let mut plain = vec![0; 100];
        d.decompress(body, &mut plain, FlushDecompress::Sync)
            .unwrap();
        let n = d.total_out() as usize;
        assert_eq!(&plain[..n], b"* 1 EXISTS\r\nb OK done\r\n");
    }

    #[test]
    fn large_output_goes_in_chunks_and_round_trips() {
        let mut z = Deflate::new();
        let mut scratch = vec![0; 64 * 1024];
        let text: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("line {i}\r\n").into_bytes())
            .collect();
        let mut out = OutBuf::new();
        out.push(&text);
        let mut rounds = 0;
        let mut wire = Vec::new();
        while !out.is_empty() {
            z.deflate_from(&mut out, &mut scratch).unwrap();
            wire.extend_from_slice(z.zout.as_slice());
            let n = z.zout.len();
            // miniz_oxide emits a block when its own buffer fills: a burst
            // may exceed one chunk's input, but not by much.
            assert!(n <= 2 * DEFLATE_CHUNK, "compressed queue stays small: {n}");
            z.zout.advance(n);
            rounds += 1;
        }
        assert!(rounds >= text.len() / DEFLATE_CHUNK, "{rounds}");
        assert_eq!(inflate_all(&wire), text);
    }

    #[test]
    fn inflating_stops_at_the_room_the_session_has() {
        // 8 MiB of one byte in well under 16 KiB of DEFLATE.
        let bomb = deflate_all(&vec![b'A'; 8 << 20]);
        assert!(bomb.len() < ZIN_MAX, "{}", bomb.len());
        let mut z = Deflate::new();
        z.push_compressed(&bomb);
        let mut input = InBuf::new();
        let mut scratch = vec![0; 64 * 1024];
        let added = z.inflate_into(&mut input, 100_000, &mut scratch).unwrap();
        assert_eq!(added, 100_000);
        assert_eq!(input.len(), 100_000);
        assert!(z.has_pending_input());
        // The session consumes; inflating resumes where it stopped.
        let mut total = added;
        while z.has_pending_input() {
            input.consume(input.len());
            total += z.inflate_into(&mut input, 100_000, &mut scratch).unwrap();
            assert!(input.len() <= 100_000);
        }
        assert_eq!(total, 8 << 20);
    }

    #[test]
    fn split_input_inflates_as_it_comes() {
        let wire = deflate_all(b"a NOOP\r\nb LOGOUT\r\n");
        let mut z = Deflate::new();
        let mut input = InBuf::new();
        let mut scratch = vec![0; 1024];
        for b in &wire {
            z.push_compressed(&[*b]);
            z.inflate_into(&mut input, 1000, &mut scratch).unwrap();
        }
        assert_eq!(input.as_slice(), b"a NOOP\r\nb LOGOUT\r\n");
    }

    /// An inner stream that hands over its bytes once, then would block.
    struct Once(Vec<u8>, bool);

    impl std::io::Read for Once {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.1 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0.drain(..n);
            self.1 = self.0.is_empty();
            Ok(n)
        }
    }

    #[test]
    fn client_reads_every_decoded_byte_before_asking_for_more() {
        // miniz_oxide takes all the input it is given and keeps what does
        // not fit the caller's buffer; a reader that waits for more input
        // first (flate2's read::DeflateDecoder does) would wait for ever
        // for the end of a response the server has sent whole.
        let text: Vec<u8> = (0..2000u32)
            .flat_map(|i| format!("* {i} FETCH (UID {i})\r\n").into_bytes())
            .collect();
        let mut z = Deflate::new();
        let mut scratch = vec![0; 64 * 1024];
        let mut out = OutBuf::new();
        out.push(&text);
        while !out.is_empty() {
            z.deflate_from(&mut out, &mut scratch).unwrap();
        }
        let wire = z.zout.as_slice().to_vec();
        let mut c = ClientStream::new(Once(wire, false), &[], 6);
        let mut got = Vec::new();
        let mut buf = [0u8; 100];
        while got.len() < text.len() {
            let n = std::io::Read::read(&mut c, &mut buf).unwrap();
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, text);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut z = Deflate::new();
        // BTYPE 11 (reserved) in the first block header.
        z.push_compressed(&[0xff; 64]);
        let mut input = InBuf::new();
        let mut scratch = vec![0; 1024];
        let e = z.inflate_into(&mut input, 1000, &mut scratch).unwrap_err();
        assert!(is_corrupt_input(&e), "{e}");
    }

    #[test]
    fn data_after_the_final_block_is_an_error() {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), Compression::default());
        e.write_all(b"a NOOP\r\n").unwrap();
        let mut wire = e.finish().unwrap();
        wire.extend_from_slice(b"trailing");
        let mut z = Deflate::new();
        z.push_compressed(&wire);
        let mut input = InBuf::new();
        let mut scratch = vec![0; 1024];
        let err = z.inflate_into(&mut input, 1000, &mut scratch).unwrap_err();
        assert!(is_corrupt_input(&err), "{err}");
        assert_eq!(input.as_slice(), b"a NOOP\r\n");
    }
}
