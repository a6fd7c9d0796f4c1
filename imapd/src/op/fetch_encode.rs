//! Encoding FETCH responses on a store thread (RFC 3501 §7.4.2): data
//! items from mailstore's metadata, body sections by slicing the raw message
//! with the MIME byte ranges recorded at delivery (byte-exact by
//! construction). Bodies up to [`crate::limits::STREAM_MIN`] are read inline; larger ones
//! become [`Seg::Raw`] ranges that the pump in `fetch.rs` reads in chunks.

use crate::command::{FetchAtt, SectionText};
use crate::response::{
    fetch_close, fetch_open, flags_value, literal_header, push_num, uidfetch_open, Value,
};
use crate::structure::{body, envelope, envelope_into, find_part};
use crate::view::selection::{flag_atoms, write_flags};
use mailstore::{
    EnvelopeRef, MailboxId, MessageId, MessageMeta, MetaParts, MimePart, RawReader, Reader, Uid,
};
use std::collections::VecDeque;

use crate::limits::{FETCH_BATCH_BYTES as BATCH_BYTES, STREAM_MIN};

/// One message of a batch: what the loop thread knows about it.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub(crate) seq: u32,
    pub(crate) uid: Uid,
    pub(crate) recent: bool,
    /// Include FLAGS even if not asked (\Seen was just set).
    pub(crate) add_flags: bool,
    /// UIDONLY (RFC 9586 §3.3): answer `uid UIDFETCH`, not `seq FETCH`.
    pub(crate) uidonly: bool,
}

/// A piece of encoded output.
#[derive(Debug)]
pub(crate) enum Seg {
    /// Ready bytes.
    Bytes(Vec<u8>),
    /// Raw message bytes still to read (its literal header is already in
    /// the preceding `Bytes`).
    Raw {
        /// Message.
        uid: Uid,
        /// Its stored message (read by id, no UID lookup per chunk).
        message: MessageId,
        /// Offset in the raw message.
        off: u64,
        /// Octets to send.
        len: u64,
    },
    /// A BINARY value still to produce (its literal header is already in
    /// the preceding `Bytes`).
    Binary(Box<super::fetch_binary::BinaryStream>),
}

/// A data item's value: encoded now, or a byte range to stream.
enum Part {
    V(Value),
    /// A small body range, read straight into the output as a literal
    /// when the response is serialized (offset, length).
    Inline(u64, u64),
    Raw(u64, u64),
    /// Octets already encoded (a BINARY item, maybe a `literal8`).
    Ready(Vec<u8>),
    /// A BINARY item's name and literal header, then its stream.
    Stream(Vec<u8>, Box<super::fetch_binary::BinaryStream>),
}

/// (UID, modseq) of the flags the client was just sent.
type SeenFlags = Vec<(Uid, u64)>;

/// The result of encoding one batch.
pub(crate) struct Encoded {
    /// Output segments in order.
    pub(crate) segs: VecDeque<Seg>,
    /// Items of the batch handled (a prefix).
    pub(crate) handled: usize,
    /// Flags sent, so the session's next sync does not repeat them.
    pub(crate) seen: SeenFlags,
    /// Keywords the batch's FLAGS show (each once): the session announces
    /// any it has not yet in a `* FLAGS` response before the batch goes out
    /// (RFC 3501 §7.2.6).
    pub(crate) keywords: Vec<String>,
    /// A BINARY item met an encoding we cannot undo (its name): the batch
    /// stops before that message and the FETCH fails with
    /// `NO [UNKNOWN-CTE]` (RFC 3516 §4.2).
    pub(crate) unknown_cte: Option<String>,
    /// The highest MODSEQ sent (0 if none).
    pub(crate) max_modseq: u64,
}

/// Which stored metadata `atts` need decoded: the envelope only for
/// ENVELOPE; the MIME structure for BODY/BODYSTRUCTURE and every item that
/// sends part of the message (its header/body offsets) -- but not for the
/// whole message (`BODY[]`, `BODY[]<o.n>`, `RFC822`), which needs only its
/// size: decoding the structure was a few per cent of a bulk
/// `BODY.PEEK[]`'s CPU (issue 21).
fn parts_needed(atts: &[FetchAtt]) -> MetaParts {
    MetaParts {
        envelope: atts.contains(&FetchAtt::Envelope),
        structure: atts.iter().any(|a| match a {
            FetchAtt::Section { section, .. } => {
                !(section.part.is_empty() && section.text == SectionText::Full)
            }
            _ => !matches!(
                a,
                FetchAtt::Envelope
                    | FetchAtt::Flags
                    | FetchAtt::InternalDate
                    | FetchAtt::Rfc822Size
                    | FetchAtt::Uid
                    | FetchAtt::ModSeq
                    | FetchAtt::SaveDate
                    | FetchAtt::EmailId
                    | FetchAtt::ThreadId
                    | FetchAtt::Rfc822
            ),
        }),
    }
}

/// Read and encode FETCH responses for (a prefix of) `batch`.
pub(crate) fn encode_batch(
    r: &Reader,
    mailbox: MailboxId,
    batch: &[Item],
    atts: &[FetchAtt],
) -> mailstore::Result<Encoded> {
    if atts.iter().all(is_meta_att) {
        return encode_meta_batch(r, mailbox, batch, atts);
    }
    let sends_flags = atts.contains(&FetchAtt::Flags);
    let uids: Vec<Uid> = batch.iter().map(|i| i.uid).collect();
    let metas = r.messages_with(mailbox, &uids, parts_needed(atts))?;
    let mut enc = Encoded {
        segs: VecDeque::new(),
        handled: 0,
        seen: Vec::new(),
        keywords: Vec::new(),
        unknown_cte: None,
        max_modseq: 0,
    };
    let mut out = Vec::new();
    let mut raw = r.raw_reader();
    let mut budget = 0u64;
    let mut metas = metas.into_iter().peekable();
    for item in batch {
        if budget >= BATCH_BYTES && enc.handled > 0 {
            break;
        }
        // Metas come back uid-ascending like the batch; skip expunged ones.
        while metas.peek().is_some_and(|m| m.uid < item.uid) {
            metas.next();
        }
        let Some(meta) = metas.next_if(|m| m.uid == item.uid) else {
            enc.handled += 1;
            continue;
        };
        let mut parts = Vec::with_capacity(atts.len() * 2);
        for a in atts {
            if let FetchAtt::Binary { .. } | FetchAtt::BinarySize(_) = a {
                match super::fetch_binary::encode(r, mailbox, &meta, a)? {
                    Ok((super::fetch_binary::BinaryValue::Ready(b), n)) => {
                        parts.push(Part::Ready(b));
                        budget += n;
                    }
                    Ok((super::fetch_binary::BinaryValue::Stream(h, s), _)) => {
                        parts.push(Part::Stream(h, Box::new(s)));
                    }
                    Err(cte) => {
                        enc.unknown_cte = Some(cte.0);
                        break;
                    }
                }
                continue;
            }
            budget += encode_att(r, mailbox, &meta, item, a, &mut parts)?;
        }
        if enc.unknown_cte.is_some() {
            break;
        }
        enc.handled += 1;
        if item.add_flags {
            parts.push(Part::V(Value::Atom("FLAGS".into())));
            parts.push(Part::V(flags_value(&flag_atoms(&meta.flags, item.recent))));
        }
        match item.uidonly {
            true => uidfetch_open(&mut out, item.uid),
            false => fetch_open(&mut out, item.seq),
        }
        for (k, p) in parts.into_iter().enumerate() {
            if k > 0 {
                out.push(b' ');
            }
            match p {
                Part::V(v) => v.encode(&mut out),
                Part::Inline(off, len) => {
                    literal_header(len, &mut out);
                    inline_body(&mut raw, meta.message_id, off, len, &mut out)?;
                }
                Part::Ready(b) => out.extend_from_slice(&b),
                Part::Stream(h, s) => {
                    out.extend_from_slice(&h);
                    enc.segs.push_back(Seg::Bytes(std::mem::take(&mut out)));
                    enc.segs.push_back(Seg::Binary(s));
                }
                Part::Raw(off, len) => {
                    literal_header(len, &mut out);
                    enc.segs.push_back(Seg::Bytes(std::mem::take(&mut out)));
                    enc.segs.push_back(Seg::Raw {
                        uid: meta.uid,
                        message: meta.message_id,
                        off,
                        len,
                    });
                }
            }
        }
        fetch_close(&mut out);
        note_sent(&mut enc, &meta, sends_flags || item.add_flags, atts);
    }
    if !out.is_empty() {
        enc.segs.push_back(Seg::Bytes(out));
    }
    Ok(enc)
}

/// [`encode_batch`] of metadata items only ([`is_meta_att`]: a client's
/// message list): each response written straight onto the output, the
/// envelope from the stored text without copying its strings.
fn encode_meta_batch(
    r: &Reader,
    mailbox: MailboxId,
    batch: &[Item],
    atts: &[FetchAtt],
) -> mailstore::Result<Encoded> {
    let flags_shown = atts.contains(&FetchAtt::Flags);
    let uids: Vec<Uid> = batch.iter().map(|i| i.uid).collect();
    let mut enc = Encoded {
        segs: VecDeque::new(),
        // Metadata has no size bound: the whole batch (expunged ones
        // skipped).
        handled: batch.len(),
        seen: Vec::new(),
        keywords: Vec::new(),
        unknown_cte: None,
        max_modseq: 0,
    };
    let mut out = Vec::with_capacity(batch.len() * 128);
    // Rows come back uid-ascending like the batch; expunged ones are missing.
    let mut items = batch.iter().peekable();
    let mut write = |meta: &MessageMeta, env: &EnvelopeRef<'_>, enc: &mut Encoded| {
        while items.next_if(|i| i.uid < meta.uid).is_some() {}
        let Some(item) = items.next_if(|i| i.uid == meta.uid) else {
            return;
        };
        match item.uidonly {
            true => uidfetch_open(&mut out, item.uid),
            false => fetch_open(&mut out, item.seq),
        }
        for (k, a) in atts.iter().enumerate() {
            if k > 0 {
                out.push(b' ');
            }
            write_meta_att(meta, env, item, a, &mut out);
        }
        if item.add_flags {
            out.extend_from_slice(b" FLAGS ");
            write_flags(&mut out, &meta.flags, item.recent);
        }
        fetch_close(&mut out);
        note_sent(enc, meta, flags_shown || item.add_flags, atts);
    };
    if atts.contains(&FetchAtt::Envelope) {
        r.each_message(mailbox, &uids, |meta, env| {
            write(meta, env, &mut enc);
            Ok(())
        })?;
    } else {
        let none = MetaParts {
            envelope: false,
            structure: false,
        };
        let empty = EnvelopeRef::default();
        for meta in r.messages_with(mailbox, &uids, none)? {
            write(&meta, &empty, &mut enc);
        }
    }
    if !out.is_empty() {
        enc.segs.push_back(Seg::Bytes(out));
    }
    Ok(enc)
}

/// Record what a message's response showed: its flags (the session's
/// next sync need not repeat them; keywords it may have to announce) and
/// its MODSEQ.
fn note_sent(enc: &mut Encoded, meta: &MessageMeta, flags_shown: bool, atts: &[FetchAtt]) {
    if flags_shown {
        enc.seen.push((meta.uid, meta.modseq));
        for k in &meta.flags.keywords {
            if !enc.keywords.iter().any(|x| x.eq_ignore_ascii_case(k)) {
                enc.keywords.push(k.clone());
            }
        }
    }
    if atts.contains(&FetchAtt::ModSeq) {
        enc.max_modseq = enc.max_modseq.max(meta.modseq);
    }
}

/// Items [`write_meta_att`] writes: answered from the metadata row alone.
fn is_meta_att(a: &FetchAtt) -> bool {
    matches!(
        a,
        FetchAtt::Uid
            | FetchAtt::Flags
            | FetchAtt::InternalDate
            | FetchAtt::Rfc822Size
            | FetchAtt::ModSeq
            | FetchAtt::Envelope
            | FetchAtt::SaveDate
            | FetchAtt::EmailId
            | FetchAtt::ThreadId
    )
}

/// `NAME value` of a metadata item ([`is_meta_att`]) onto `out`: the same
/// octets as [`encode_att`] produces for it, without a value tree.
fn write_meta_att(
    meta: &MessageMeta,
    env: &EnvelopeRef<'_>,
    item: &Item,
    att: &FetchAtt,
    out: &mut Vec<u8>,
) {
    use std::io::Write;
    let _ = match att {
        FetchAtt::Uid => {
            out.extend_from_slice(b"UID ");
            push_num(out, u64::from(meta.uid));
            Ok(())
        }
        FetchAtt::Flags => {
            out.extend_from_slice(b"FLAGS ");
            write_flags(out, &meta.flags, item.recent);
            Ok(())
        }
        FetchAtt::InternalDate => {
            out.extend_from_slice(b"INTERNALDATE \"");
            internal_date_into(meta.internal_date, out);
            out.push(b'"');
            Ok(())
        }
        FetchAtt::Rfc822Size => {
            out.extend_from_slice(b"RFC822.SIZE ");
            push_num(out, meta.size);
            Ok(())
        }
        FetchAtt::ModSeq => write!(out, "MODSEQ ({})", meta.modseq),
        FetchAtt::Envelope => {
            out.extend_from_slice(b"ENVELOPE ");
            envelope_into(env, out);
            Ok(())
        }
        FetchAtt::SaveDate => match meta.save_date {
            Some(t) => write!(out, "SAVEDATE \"{}\"", internal_date(t)),
            None => write!(out, "SAVEDATE NIL"),
        },
        FetchAtt::EmailId => write!(out, "EMAILID ({})", crate::objectid::email(meta.message_id)),
        FetchAtt::ThreadId => write!(
            out,
            "THREADID ({})",
            crate::objectid::thread(meta.thread_id)
        ),
        // Not a metadata item: the caller checked `is_meta_att`.
        _ => Ok(()),
    };
}

/// A body range as a value: read into the output as the response is
/// serialized if small, streamed later in chunks if large.
fn body_part(off: u64, len: u64) -> (Part, u64) {
    if len >= STREAM_MIN {
        return (Part::Raw(off, len), 0);
    }
    (Part::Inline(off, len), len)
}

/// Append `len` octets from `off` of stored message `message` to `out`,
/// whose literal header (`{len}`) is already there: read straight from
/// the store into it (one copy), NUL made 0x80 in place. The range comes
/// from the message's size read in the same transaction, so it is there
/// whole; were it not, the rest is spaces (the length is written).
fn inline_body(
    raw: &mut RawReader<'_>,
    message: MessageId,
    off: u64,
    len: u64,
    out: &mut Vec<u8>,
) -> mailstore::Result<()> {
    let at = out.len();
    if len > 0 {
        raw.read_into(message, off, len, out)?;
    }
    out.resize(at + len as usize, b' ');
    no_nul(&mut out[at..]);
    Ok(())
}

/// Append `NAME value` for one attribute; returns body bytes read inline.
fn encode_att(
    r: &Reader,
    mailbox: MailboxId,
    meta: &MessageMeta,
    item: &Item,
    att: &FetchAtt,
    parts: &mut Vec<Part>,
) -> mailstore::Result<u64> {
    let (name, value): (String, Value) = match att {
        FetchAtt::Uid => ("UID".into(), Value::Num(u64::from(meta.uid))),
        FetchAtt::Flags => (
            "FLAGS".into(),
            flags_value(&flag_atoms(&meta.flags, item.recent)),
        ),
        FetchAtt::InternalDate => (
            "INTERNALDATE".into(),
            Value::str(internal_date(meta.internal_date)),
        ),
        FetchAtt::Rfc822Size => ("RFC822.SIZE".into(), Value::Num(meta.size)),
        // RFC 8514 §4.2: NIL for an entry saved before the store kept it.
        FetchAtt::SaveDate => (
            "SAVEDATE".into(),
            meta.save_date
                .map_or(Value::Nil, |t| Value::str(internal_date(t))),
        ),
        // RFC 8474 §5: EMAILID and THREADID, each an objectid in parentheses.
        FetchAtt::EmailId => (
            "EMAILID".into(),
            Value::List(vec![Value::Atom(crate::objectid::email(meta.message_id))]),
        ),
        FetchAtt::ThreadId => (
            "THREADID".into(),
            Value::List(vec![Value::Atom(crate::objectid::thread(meta.thread_id))]),
        ),
        FetchAtt::ModSeq => ("MODSEQ".into(), Value::List(vec![Value::Num(meta.modseq)])),
        FetchAtt::Envelope => ("ENVELOPE".into(), envelope(&meta.envelope)),
        FetchAtt::Body => ("BODY".into(), body(&meta.structure, false)),
        FetchAtt::BodyStructure => ("BODYSTRUCTURE".into(), body(&meta.structure, true)),
        FetchAtt::Rfc822 | FetchAtt::Rfc822Header | FetchAtt::Rfc822Text => {
            let (name, (a, b)) = match att {
                FetchAtt::Rfc822 => ("RFC822", (0, meta.size)),
                FetchAtt::Rfc822Header => ("RFC822.HEADER", meta.structure.header_range),
                _ => ("RFC822.TEXT", meta.structure.body_range),
            };
            parts.push(Part::V(Value::Atom(name.into())));
            let (p, n) = body_part(a, b.saturating_sub(a));
            parts.push(p);
            return Ok(n);
        }
        // RFC 8970 §3: never NIL; "" when there is no text to show.
        FetchAtt::Preview => {
            let (text, read) = super::preview::preview(r, mailbox, meta)?;
            parts.push(Part::V(Value::Atom("PREVIEW".into())));
            parts.push(Part::V(Value::str(text)));
            return Ok(read);
        }
        // Encoded by `fetch_binary` in `encode_batch`.
        FetchAtt::Binary { .. } | FetchAtt::BinarySize(_) => return Ok(0),
        FetchAtt::Section {
            section,
            partial,
            peek: _,
        } => {
            let mut name = format!("BODY[{}]", section.spec());
            if let Some((o, _)) = partial {
                name.push_str(&format!("<{o}>"));
            }
            parts.push(Part::V(Value::Atom(name)));
            let (p, n) = match section_range(meta, &section.part, &section.text) {
                None => (Part::V(Value::Nil), 0),
                Some(Range::Empty) => (Part::V(Value::Literal(Vec::new())), 0),
                Some(Range::Fields(a, b, names, keep)) => {
                    let header = r.raw_range(mailbox, meta.uid, a, b - a)?;
                    let mut data = slice_partial(filter_header(&header, names, keep), *partial);
                    no_nul(&mut data);
                    let n = data.len() as u64;
                    (Part::V(Value::Literal(data)), n)
                }
                Some(Range::Bytes(a, b)) => {
                    let (off, len) = match partial {
                        Some((o, n)) => {
                            let o = u64::from(*o).min(b - a);
                            (a + o, u64::from(*n).min(b - a - o))
                        }
                        None => (a, b - a),
                    };
                    body_part(off, len)
                }
            };
            parts.push(p);
            return Ok(n);
        }
    };
    parts.push(Part::V(Value::Atom(name)));
    parts.push(Part::V(value));
    Ok(0)
}

/// A `literal` may not hold NUL (RFC 3501 §9 `CHAR8`): in BODY data a NUL
/// (only a message APPENDed as `literal8`, RFC 3516 §4.4, can hold one) is
/// sent as 0x80, as Dovecot does; BINARY sends it as is, in a `literal8`.
pub(crate) fn no_nul(data: &mut [u8]) {
    // Almost never there: look for one with memchr's vector search (a
    // byte-at-a-time scan was a third of a bulk body FETCH's CPU).
    let mut at = 0;
    while let Some(i) = memchr::memchr(0, &data[at..]) {
        data[at + i] = 0x80;
        at += i + 1;
    }
}

/// Where a section's data comes from.
pub(crate) enum Range<'a> {
    /// This byte range of the raw message.
    Bytes(u64, u64),
    /// Header fields filtered from this header range (names, keep?).
    Fields(u64, u64, &'a [String], bool),
    /// Nothing (e.g. HEADER of a part that is not a message).
    Empty,
}

/// Locate a body section (§6.4.5); `None` if the part does not exist.
pub(crate) fn section_range<'a>(
    meta: &MessageMeta,
    path: &[u32],
    text: &'a SectionText,
) -> Option<Range<'a>> {
    let root = &meta.structure;
    let part = if path.is_empty() {
        root
    } else {
        find_part(root, path)?
    };
    // HEADER/TEXT of a part address the message inside a message/rfc822.
    let msg: Option<&MimePart> = if path.is_empty() {
        Some(root)
    } else {
        part.embedded.as_deref().map(|(_, inner)| inner)
    };
    let ordered = |(a, b): (u64, u64)| (a, b.max(a));
    Some(match text {
        SectionText::Full if path.is_empty() => Range::Bytes(0, meta.size),
        SectionText::Full => {
            let (a, b) = ordered(part.body_range);
            Range::Bytes(a, b)
        }
        SectionText::Mime => {
            let (a, b) = ordered(part.header_range);
            Range::Bytes(a, b)
        }
        SectionText::Text => match msg {
            Some(m) => {
                let (a, b) = ordered(m.body_range);
                Range::Bytes(a, b)
            }
            None => Range::Empty,
        },
        SectionText::Header | SectionText::HeaderFields(_) | SectionText::HeaderFieldsNot(_) => {
            let Some(m) = msg else {
                return Some(Range::Empty);
            };
            let (a, b) = ordered(m.header_range);
            match text {
                SectionText::HeaderFields(names) => Range::Fields(a, b, names, true),
                SectionText::HeaderFieldsNot(names) => Range::Fields(a, b, names, false),
                _ => Range::Bytes(a, b),
            }
        }
    })
}

fn slice_partial(data: Vec<u8>, partial: Option<(u32, u32)>) -> Vec<u8> {
    match partial {
        None => data,
        Some((o, n)) => {
            let o = (o as usize).min(data.len());
            let e = o.saturating_add(n as usize).min(data.len());
            data[o..e].to_vec()
        }
    }
}

/// Keep (or drop, with `keep == false`) the header fields named, each with
/// its continuation lines, then the blank line (§6.4.5 HEADER.FIELDS).
pub fn filter_header(header: &[u8], names: &[String], keep: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < header.len() {
        // One field: a line plus the following lines starting with SP/HT.
        let mut end = i;
        loop {
            match header[end..].iter().position(|&b| b == b'\n') {
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
        i = end;
        if field == b"\r\n" || field == b"\n" {
            break; // the blank separator line
        }
        let name_end = field.iter().position(|&b| b == b':').unwrap_or(0);
        let name = field[..name_end].trim_ascii();
        let listed = names
            .iter()
            .any(|n| n.as_bytes().eq_ignore_ascii_case(name));
        if listed == keep && name_end > 0 {
            out.extend_from_slice(field);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// [`internal_date`] onto `out` (no `String` per message of a metadata
/// FETCH), years outside 0..=9999 as `internal_date` writes them.
pub fn internal_date_into(unix: i64, out: &mut Vec<u8>) {
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = mailstore::date::civil_from_days(unix.div_euclid(86_400));
    if !(0..=9999).contains(&y) {
        out.extend_from_slice(internal_date(unix).as_bytes());
        return;
    }
    let two = |out: &mut Vec<u8>, v: i64| {
        out.push(b'0' + (v / 10 % 10) as u8);
        out.push(b'0' + (v % 10) as u8);
    };
    two(out, i64::from(d));
    out.push(b'-');
    out.extend_from_slice(mailstore::date::MONTHS[(m - 1) as usize].as_bytes());
    out.push(b'-');
    two(out, y / 100);
    two(out, y % 100);
    out.push(b' ');
    two(out, secs / 3600);
    out.push(b':');
    two(out, secs % 3600 / 60);
    out.push(b':');
    two(out, secs % 60);
    out.extend_from_slice(b" +0000");
}

/// INTERNALDATE as `dd-Mon-yyyy hh:mm:ss +0000`.
pub fn internal_date(unix: i64) -> String {
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = mailstore::date::civil_from_days(unix.div_euclid(86_400));
    format!(
        "{:02}-{}-{:04} {:02}:{:02}:{:02} +0000",
        d,
        mailstore::date::MONTHS[(m - 1) as usize],
        y,
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailstore::{Address, Envelope, Flags};

    fn addr(name: Option<&str>, local: Option<&str>, host: Option<&str>) -> Address {
        Address {
            name: name.map(Into::into),
            adl: None,
            local: local.map(Into::into),
            host: host.map(Into::into),
        }
    }

    /// `e` as the borrowed form the metadata FETCH reads.
    fn borrowed(e: &Envelope) -> EnvelopeRef<'_> {
        fn s(v: &Option<String>) -> Option<std::borrow::Cow<'_, str>> {
            v.as_deref().map(std::borrow::Cow::Borrowed)
        }
        fn list(v: &[Address]) -> Vec<mailstore::AddressRef<'_>> {
            v.iter()
                .map(|a| mailstore::AddressRef {
                    name: s(&a.name),
                    adl: s(&a.adl),
                    local: s(&a.local),
                    host: s(&a.host),
                })
                .collect()
        }
        EnvelopeRef {
            date: s(&e.date),
            subject: s(&e.subject),
            from: list(&e.from),
            sender: list(&e.sender),
            reply_to: list(&e.reply_to),
            to: list(&e.to),
            cc: list(&e.cc),
            bcc: list(&e.bcc),
            in_reply_to: s(&e.in_reply_to),
            message_id: s(&e.message_id),
        }
    }

    /// Metadata the fast path must render as the value path does: quotes,
    /// backslashes, 8-bit and CR (literals), groups, absent fields,
    /// Sender/Reply-To falling back to From, keywords, \Recent.
    fn metas() -> Vec<(MessageMeta, bool)> {
        let full = Envelope {
            date: Some("Tue, 24 Nov 2026 10:00:00 +0100".into()),
            subject: Some("Re: \"quoted\" \\ back\\slash".into()),
            from: vec![addr(Some("Zoë"), Some("zoe"), Some("example.org"))],
            sender: vec![addr(None, Some("list"), Some("lists.example.org"))],
            reply_to: vec![],
            to: vec![
                addr(None, Some("team"), None),
                addr(Some("Bob"), Some("bob"), Some("x.test")),
                addr(None, None, None),
            ],
            cc: vec![addr(Some("line\r\nbreak"), Some("c"), Some("d"))],
            bcc: vec![],
            in_reply_to: Some("<a@b>".into()),
            message_id: Some("<m@x>".into()),
        };
        let meta = |envelope: Envelope, flags: Flags, save: Option<i64>| MessageMeta {
            uid: 42,
            flags,
            modseq: 7,
            size: 12_345,
            internal_date: 1_700_000_000,
            save_date: save,
            envelope,
            structure: MimePart::default(),
            message_id: 99,
            thread_id: 12,
        };
        vec![
            (
                meta(
                    full,
                    Flags::system(Flags::SEEN | Flags::DRAFT),
                    Some(1_800_000_000),
                ),
                true,
            ),
            (
                meta(
                    Envelope::default(),
                    Flags {
                        system: 0,
                        keywords: vec!["$Todo".into(), "Work".into()],
                    },
                    None,
                ),
                false,
            ),
            (meta(Envelope::default(), Flags::empty(), None), true),
        ]
    }

    #[test]
    fn metadata_items_written_directly_match_the_value_path() {
        let atts = [
            FetchAtt::Uid,
            FetchAtt::Flags,
            FetchAtt::InternalDate,
            FetchAtt::Rfc822Size,
            FetchAtt::ModSeq,
            FetchAtt::Envelope,
            FetchAtt::SaveDate,
            FetchAtt::EmailId,
            FetchAtt::ThreadId,
        ];
        for (meta, recent) in metas() {
            let item = Item {
                seq: 3,
                uid: meta.uid,
                recent,
                add_flags: false,
                uidonly: false,
            };
            for a in &atts {
                assert!(is_meta_att(a));
                let value = match a {
                    FetchAtt::Uid => Value::Num(u64::from(meta.uid)),
                    FetchAtt::Flags => flags_value(&flag_atoms(&meta.flags, recent)),
                    FetchAtt::InternalDate => Value::str(internal_date(meta.internal_date)),
                    FetchAtt::Rfc822Size => Value::Num(meta.size),
                    FetchAtt::ModSeq => Value::List(vec![Value::Num(meta.modseq)]),
                    FetchAtt::Envelope => envelope(&meta.envelope),
                    FetchAtt::SaveDate => meta
                        .save_date
                        .map_or(Value::Nil, |t| Value::str(internal_date(t))),
                    FetchAtt::EmailId => {
                        Value::List(vec![Value::Atom(crate::objectid::email(meta.message_id))])
                    }
                    _ => Value::List(vec![Value::Atom(crate::objectid::thread(meta.thread_id))]),
                };
                let name = match a {
                    FetchAtt::Uid => "UID",
                    FetchAtt::Flags => "FLAGS",
                    FetchAtt::InternalDate => "INTERNALDATE",
                    FetchAtt::Rfc822Size => "RFC822.SIZE",
                    FetchAtt::ModSeq => "MODSEQ",
                    FetchAtt::Envelope => "ENVELOPE",
                    FetchAtt::SaveDate => "SAVEDATE",
                    FetchAtt::EmailId => "EMAILID",
                    _ => "THREADID",
                };
                let mut want = format!("{name} ").into_bytes();
                value.encode(&mut want);
                let env = borrowed(&meta.envelope);
                let mut got = Vec::new();
                write_meta_att(&meta, &env, &item, a, &mut got);
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&want),
                    "{a:?}"
                );
            }
        }
        assert!(!is_meta_att(&FetchAtt::Body));
        assert!(!is_meta_att(&FetchAtt::Rfc822));
    }

    #[test]
    fn header_fields_are_filtered_with_continuations() {
        let h = b"From: a@b\r\nSubject: hi\r\n  there\r\nTo: c@d\r\n\r\n";
        assert_eq!(
            filter_header(h, &["subject".into()], true),
            b"Subject: hi\r\n  there\r\n\r\n".to_vec()
        );
        assert_eq!(
            filter_header(h, &["Subject".into()], false),
            b"From: a@b\r\nTo: c@d\r\n\r\n".to_vec()
        );
        assert_eq!(filter_header(h, &["X".into()], true), b"\r\n".to_vec());
    }

    #[test]
    fn internal_dates_format_like_rfc_3501() {
        assert_eq!(internal_date(0), "01-Jan-1970 00:00:00 +0000");
        for t in [
            0,
            1_700_000_000,
            -1,
            -86_400 * 365 * 3000,
            253_402_300_799,
            253_402_300_800,
            i64::from(i32::MAX) * 40,
        ] {
            let mut out = Vec::new();
            internal_date_into(t, &mut out);
            assert_eq!(String::from_utf8_lossy(&out), internal_date(t), "{t}");
        }
        assert_eq!(internal_date(1_700_000_000), "14-Nov-2023 22:13:20 +0000");
        assert_eq!(
            internal_date(mailstore::date::days_from_civil(2024, 2, 29) * 86_400 + 3661),
            "29-Feb-2024 01:01:01 +0000"
        );
    }
}
