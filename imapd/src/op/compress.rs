//! `COMPRESS DEFLATE` (RFC 4978): the rest of the connection is raw
//! DEFLATE (RFC 1951) both ways, starting right after the CRLF of the
//! tagged OK (§3). netloop does the compressing ([`netloop::Io::start_compress`],
//! `netloop/src/deflate.rs`), inside TLS when TLS is on; the session goes
//! on seeing plaintext.
//!
//! - Valid in the authenticated and selected states only: the grammar
//!   makes it `command-auth` (§5), so before login the dispatcher answers
//!   BAD, as Dovecot does.
//! - An unknown mechanism is `BAD` (§3: "invalid or unknown argument").
//! - COMPRESS when compression is on already is `NO [COMPRESSIONACTIVE]`
//!   (§3: the server knows the same mechanism is active, and says which
//!   layer).
//! - STARTTLS once compressed is refused: TLS cannot be slid under a
//!   compressed stream (netloop reports TLS unavailable, so STARTTLS is
//!   neither advertised nor accepted).
//! - Limits: on a compressed connection a line over `--max-line` or a
//!   literal over `--max-literal` that would have to be read and thrown
//!   away ends the connection ([`cut_if_compressed`]): skipping it would
//!   mean inflating whatever the client sends, at up to 1032 octets per
//!   octet received (a decompression bomb). Memory is bounded either way
//!   (netloop inflates only into the room its input buffer has).

use crate::response::{Code, Status};
use crate::session::{Done, ImapSession};
use netloop::{Io, Step};

/// `COMPRESS mechanism` (RFC 4978 §3)
pub(crate) fn compress(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    tag: &str,
    mechanism: &str,
) -> Step {
    if mechanism != "DEFLATE" {
        let text = format!("Unknown compression mechanism {mechanism} (only DEFLATE)");
        s.cx.status(Some(tag), Status::Bad, None, &text);
        return Step::Continue;
    }
    if io.compressed() {
        s.cx.status(
            Some(tag),
            Status::No,
            Some(Code::CompressionActive),
            "DEFLATE is active already (COMPRESS)",
        );
        return Step::Continue;
    }
    s.cx.status(Some(tag), Status::Ok, None, "DEFLATE active");
    // The OK goes out uncompressed: it must be queued before the switch.
    s.cx.flush(io);
    if !io.start_compress() {
        // Cannot happen after the check above; fail closed if it does.
        log::error!("imapd conn {}: COMPRESS refused by the loop", s.cx.id);
        s.logout();
        return Step::Close;
    }
    if let Some(t) = &mut s.cx.tracer {
        t.note("-- COMPRESS: DEFLATE from here on, both ways --");
    }
    Step::Continue
}

/// After an overlong line or literal has been answered `BAD`: on a
/// compressed connection, say goodbye and end the session instead of
/// inflating and discarding the rest (see the module docs). `skipping`
/// is whether the framer would go on discarding octets of the refused
/// command.
pub(crate) fn cut_if_compressed(s: &mut ImapSession, io: &Io<'_, Done>, skipping: bool) {
    if !io.compressed() || !skipping {
        return;
    }
    if let Some(t) = &mut s.cx.tracer {
        t.note("-- too much data on a compressed connection; closing --");
    }
    s.cx.status(
        None,
        Status::Bye,
        None,
        "Too much data in one command on a compressed connection",
    );
    s.logout();
}

/// The client's DEFLATE stream is corrupt (netloop's
/// `Session::on_input_error`): nothing more can be read; say why.
pub(crate) fn corrupt_input(s: &mut ImapSession, io: &mut Io<'_, Done>, error: &str) -> Step {
    log::info!("imapd conn {}: {error}", s.cx.id);
    if let Some(t) = &mut s.cx.tracer {
        t.note(&format!("-- {error}; closing --"));
    }
    s.cx.status(
        None,
        Status::Bye,
        None,
        "Corrupt compressed input (RFC 4978)",
    );
    s.cx.flush(io);
    // netloop closes the connection once the goodbye is out.
    Step::Close
}
