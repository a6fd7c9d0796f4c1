//! FETCH and UID FETCH (RFC 3501 §6.4.5, §7.4.2; CONDSTORE RFC 7162
//! §3.1.4), streamed: messages are fetched in batches bounded by count and
//! bytes, each batch is read *and encoded* on a store thread (only the
//! needed byte ranges are read, via `raw_range`), and the next batch is
//! asked for only when netloop reports the output queue drained, so a
//! 100,000-message FETCH never sits in memory at once.
//!
//! Body sections are served by slicing the raw message with the MIME byte
//! ranges mailstore recorded at delivery: byte-exact by construction.
//! Non-PEEK body fetches set `\Seen` first (one write), and FLAGS are then
//! included in the response for the messages that changed.

use crate::command::{FetchAtt, SectionText, SequenceSet};
use crate::response::{flags_value, Status, Value};
use crate::selection::flag_atoms;
use crate::session::{Done, ImapSession};
use crate::structure::{body, envelope, find_part};
use mailstore::{FlagOp, Flags, MailboxId, MessageMeta, MimePart, Reader, SystemFlag, Uid};
use netloop::{Io, Step};
use std::collections::HashSet;
use std::sync::Arc;

/// Most messages per batch.
const BATCH_MESSAGES: usize = 256;
/// Body bytes per batch before it is cut short (at least one message).
const BATCH_BYTES: u64 = 1 << 20;

/// One message of a batch: what the loop thread knows about it.
#[derive(Debug, Clone)]
struct Item {
    seq: u32,
    uid: Uid,
    recent: bool,
    /// Include FLAGS even if not asked (\Seen was just set).
    add_flags: bool,
}

/// A FETCH in progress.
pub(crate) struct FetchJob {
    tag: String,
    mailbox: MailboxId,
    atts: Arc<Vec<FetchAtt>>,
    items: Vec<Item>,
    next: usize,
}

/// Whether fetching `a` implicitly sets `\Seen` (§6.4.5).
fn sets_seen(a: &FetchAtt) -> bool {
    matches!(
        a,
        FetchAtt::Rfc822 | FetchAtt::Rfc822Text | FetchAtt::Section { peek: false, .. }
    )
}

/// `FETCH` / `UID FETCH`
pub(crate) fn fetch(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    tag: String,
    uid: bool,
    set: SequenceSet,
    mut atts: Vec<FetchAtt>,
    changed_since: Option<u64>,
) -> Step {
    let Some(pairs) = super::message::resolve(s, &tag, &set, uid) else {
        return Step::Continue;
    };
    let Some(sel) = &s.selected else {
        return Step::Continue;
    };
    if atts.contains(&FetchAtt::ModSeq) {
        s.condstore = true;
    }
    // UID FETCH always reports UIDs (§6.4.8); put it first.
    if uid && !atts.contains(&FetchAtt::Uid) {
        atts.insert(0, FetchAtt::Uid);
    }
    let items: Vec<Item> = pairs
        .into_iter()
        .filter_map(|(seq, u)| {
            let m = sel.msg(seq)?;
            if changed_since.is_some_and(|c| m.modseq <= c) {
                return None;
            }
            Some(Item {
                seq,
                uid: u,
                recent: m.recent,
                add_flags: false,
            })
        })
        .collect();
    let unseen: Vec<Uid> = if !sel.read_only && atts.iter().any(sets_seen) {
        items
            .iter()
            .filter(|it| {
                sel.msg(it.seq)
                    .is_some_and(|m| !m.flags.has(SystemFlag::Seen))
            })
            .map(|it| it.uid)
            .collect()
    } else {
        Vec::new()
    };
    let mut job = FetchJob {
        tag,
        mailbox: sel.mailbox,
        atts: Arc::new(atts),
        items,
        next: 0,
    };
    if unseen.is_empty() {
        s.streaming = Some(job);
        return next_batch(s, io);
    }
    let mailbox = job.mailbox;
    s.write(
        io,
        move |tx| {
            tx.store_flags(
                mailbox,
                &unseen,
                FlagOp::Add,
                &Flags::system(Flags::SEEN),
                None,
            )
        },
        move |s, io, res| {
            match res {
                Ok(outcome) => {
                    let changed: HashSet<Uid> = outcome.updated.iter().map(|e| e.uid).collect();
                    if let Some(sel) = &mut s.selected {
                        for e in outcome.updated {
                            if let Some(seq) = sel.seq_of(e.uid) {
                                let m = &mut sel.msgs[(seq - 1) as usize];
                                m.flags = e.flags;
                                m.modseq = e.modseq;
                            }
                        }
                    }
                    let has_flags = job.atts.contains(&FetchAtt::Flags);
                    for it in &mut job.items {
                        it.add_flags = !has_flags && changed.contains(&it.uid);
                    }
                }
                Err(e) => log::warn!("imapd conn {}: setting \\Seen: {e}", s.conn),
            }
            s.streaming = Some(job);
            next_batch(s, io)
        },
    );
    Step::Continue
}

/// Ask the store for the next batch, or finish the command.
pub(crate) fn next_batch(s: &mut ImapSession, io: &mut Io<'_, Done>) -> Step {
    let Some(job) = &mut s.streaming else {
        return Step::Continue;
    };
    if job.next >= job.items.len() {
        let tag = job.tag.clone();
        s.streaming = None;
        return s.finish(io, &tag, Status::Ok, None, "FETCH completed", false);
    }
    let end = (job.next + BATCH_MESSAGES).min(job.items.len());
    let batch: Vec<Item> = job.items[job.next..end].to_vec();
    let atts = Arc::clone(&job.atts);
    let mailbox = job.mailbox;
    s.read(
        io,
        move |r| encode_batch(r, mailbox, &batch, &atts),
        move |s, io, res| {
            let (bytes, done, seen) = match res {
                Ok(v) => v,
                Err(e) => {
                    let tag = s.streaming.take().map(|j| j.tag).unwrap_or_default();
                    s.store_error(&tag, &e);
                    return Step::Continue;
                }
            };
            if let Some(job) = &mut s.streaming {
                job.next += done.max(1);
            }
            // The client now knows these flags: no need to repeat them as
            // unsolicited FETCH responses at the next sync.
            if let Some(sel) = &mut s.selected {
                for (uid, flags, modseq) in seen {
                    if let Some(seq) = sel.seq_of(uid) {
                        let m = &mut sel.msgs[(seq - 1) as usize];
                        m.flags = flags;
                        m.modseq = m.modseq.max(modseq);
                    }
                }
            }
            s.out.extend_from_slice(&bytes);
            if s.out.is_empty() {
                // Nothing to send means no drain event: go on at once.
                return next_batch(s, io);
            }
            // Otherwise continue from on_drained once this is written.
            Step::Continue
        },
    );
    Step::Continue
}

/// Flags (with modseq) the client was just sent, per UID.
type SeenFlags = Vec<(Uid, Flags, u64)>;

/// Read and encode FETCH responses for (a prefix of) `batch`; returns the
/// bytes, how many items were handled and the flags sent.
fn encode_batch(
    r: &Reader,
    mailbox: MailboxId,
    batch: &[Item],
    atts: &[FetchAtt],
) -> mailstore::Result<(Vec<u8>, usize, SeenFlags)> {
    let sends_flags = atts.contains(&FetchAtt::Flags);
    let mut seen = Vec::new();
    let uids: Vec<Uid> = batch.iter().map(|i| i.uid).collect();
    let metas = r.messages(mailbox, &uids)?;
    let mut out = Vec::new();
    let mut budget = 0u64;
    let mut handled = 0;
    let mut metas = metas.into_iter().peekable();
    for item in batch {
        if budget >= BATCH_BYTES && handled > 0 {
            break;
        }
        handled += 1;
        // Metas come back uid-ascending like the batch; skip expunged ones.
        while metas.peek().is_some_and(|m| m.uid < item.uid) {
            metas.next();
        }
        let Some(meta) = metas.next_if(|m| m.uid == item.uid) else {
            continue;
        };
        let mut values = Vec::with_capacity(atts.len() * 2);
        for a in atts {
            budget += encode_att(r, mailbox, &meta, item, a, &mut values)?;
        }
        if item.add_flags {
            values.push(Value::Atom("FLAGS".into()));
            values.push(flags_value(&flag_atoms(&meta.flags, item.recent)));
        }
        crate::selection::fetch_line(&mut out, item.seq, &values);
        if sends_flags || item.add_flags {
            seen.push((meta.uid, meta.flags.clone(), meta.modseq));
        }
    }
    Ok((out, handled, seen))
}

/// Append `NAME value` for one attribute; returns body bytes read.
fn encode_att(
    r: &Reader,
    mailbox: MailboxId,
    meta: &MessageMeta,
    item: &Item,
    att: &FetchAtt,
    v: &mut Vec<Value>,
) -> mailstore::Result<u64> {
    let mut atom = |s: &str| v.push(Value::Atom(s.to_owned()));
    match att {
        FetchAtt::Uid => {
            atom("UID");
            v.push(Value::Num(u64::from(meta.uid)));
        }
        FetchAtt::Flags => {
            atom("FLAGS");
            v.push(flags_value(&flag_atoms(&meta.flags, item.recent)));
        }
        FetchAtt::InternalDate => {
            atom("INTERNALDATE");
            v.push(Value::str(internal_date(meta.internal_date)));
        }
        FetchAtt::Rfc822Size => {
            atom("RFC822.SIZE");
            v.push(Value::Num(meta.size));
        }
        FetchAtt::ModSeq => {
            atom("MODSEQ");
            v.push(Value::List(vec![Value::Num(meta.modseq)]));
        }
        FetchAtt::Envelope => {
            atom("ENVELOPE");
            v.push(envelope(&meta.envelope));
        }
        FetchAtt::Body => {
            atom("BODY");
            v.push(body(&meta.structure, false));
        }
        FetchAtt::BodyStructure => {
            atom("BODYSTRUCTURE");
            v.push(body(&meta.structure, true));
        }
        FetchAtt::Rfc822 | FetchAtt::Rfc822Header | FetchAtt::Rfc822Text => {
            let (name, range) = match att {
                FetchAtt::Rfc822 => ("RFC822", (0, meta.size)),
                FetchAtt::Rfc822Header => ("RFC822.HEADER", meta.structure.header_range),
                _ => ("RFC822.TEXT", meta.structure.body_range),
            };
            atom(name);
            let bytes = r.raw_range(mailbox, meta.uid, range.0, range.1.saturating_sub(range.0))?;
            let n = bytes.len() as u64;
            v.push(Value::Literal(bytes));
            return Ok(n);
        }
        FetchAtt::Section {
            section,
            partial,
            peek: _,
        } => {
            let mut name = format!("BODY[{}]", section.spec());
            if let Some((o, _)) = partial {
                name.push_str(&format!("<{o}>"));
            }
            v.push(Value::Atom(name));
            let data = section_bytes(r, mailbox, meta, &section.part, &section.text, *partial)?;
            let n = data.as_ref().map_or(0, |d| d.len() as u64);
            v.push(match data {
                Some(d) => Value::Literal(d),
                None => Value::Nil,
            });
            return Ok(n);
        }
    }
    Ok(0)
}

/// The bytes of a body section (§6.4.5), `None` if the part does not
/// exist. Only the needed range is read from the store.
fn section_bytes(
    r: &Reader,
    mailbox: MailboxId,
    meta: &MessageMeta,
    path: &[u32],
    text: &SectionText,
    partial: Option<(u32, u32)>,
) -> mailstore::Result<Option<Vec<u8>>> {
    let root = &meta.structure;
    let Some(part) = (if path.is_empty() {
        Some(root)
    } else {
        find_part(root, path)
    }) else {
        return Ok(None);
    };
    // HEADER/TEXT of a part address the message inside a message/rfc822.
    let msg: Option<&MimePart> = if path.is_empty() {
        Some(root)
    } else {
        part.embedded.as_deref().map(|(_, inner)| inner)
    };
    let range = match text {
        SectionText::Full if path.is_empty() => (0, meta.size),
        SectionText::Full => part.body_range,
        SectionText::Mime => part.header_range,
        SectionText::Header | SectionText::HeaderFields(_) | SectionText::HeaderFieldsNot(_) => {
            match msg {
                Some(m) => m.header_range,
                None => return Ok(Some(Vec::new())),
            }
        }
        SectionText::Text => match msg {
            Some(m) => m.body_range,
            None => return Ok(Some(Vec::new())),
        },
    };
    let (start, end) = (range.0, range.1.max(range.0));
    let filtered = match text {
        SectionText::HeaderFields(names) => Some((names, true)),
        SectionText::HeaderFieldsNot(names) => Some((names, false)),
        _ => None,
    };
    if let Some((names, keep)) = filtered {
        let header = r.raw_range(mailbox, meta.uid, start, end - start)?;
        return Ok(Some(slice_partial(
            filter_header(&header, names, keep),
            partial,
        )));
    }
    // Read only the partial window when one is given.
    let (off, len) = match partial {
        Some((o, n)) => {
            let o = u64::from(o).min(end - start);
            (start + o, u64::from(n).min(end - start - o))
        }
        None => (start, end - start),
    };
    if len == 0 {
        return Ok(Some(Vec::new()));
    }
    Ok(Some(r.raw_range(mailbox, meta.uid, off, len)?))
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

/// INTERNALDATE as `dd-Mon-yyyy hh:mm:ss +0000`.
pub fn internal_date(unix: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // civil_from_days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{:02}-{}-{:04} {:02}:{:02}:{:02} +0000",
        d,
        MONTHS[(m - 1) as usize],
        y,
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(internal_date(1_700_000_000), "14-Nov-2023 22:13:20 +0000");
        assert_eq!(
            internal_date(crate::parse::days_from_civil(2024, 2, 29) * 86_400 + 3661),
            "29-Feb-2024 01:01:01 +0000"
        );
    }
}
