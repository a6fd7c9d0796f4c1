//! APPEND of several messages (MULTIAPPEND, RFC 3502) or of messages built
//! with CATENATE (RFC 4469), all or none: the messages (URL parts fetched
//! from the user's own mailboxes on a store thread) are inserted in one
//! write job, which the store runs in its own savepoint, so a failure on
//! any of them stores none (RFC 3502 §6.3.11). `APPENDUID` carries the
//! UID set (RFC 4315 §3).
//!
//! Answers: no target mailbox `NO [TRYCREATE]` (checked first, RFC 3502
//! §6.3.11 / RFC 4469 §5); a URL that is not a valid IMAP URL of the
//! user's own messages (or a URLAUTH-authorized one the user may use,
//! RFC 4469 §3), or names nothing, `NO [BADURL url]` (RFC 4469 §6);
//! a message over `--max-literal`, or messages together over it plus
//! [`crate::limits::COMMAND_SLACK`], `NO [TOOBIG]` (RFC 4469 §6 and RFC
//! 7889 §3); more than [`MAX_MULTIAPPEND`] messages or parts `NO [LIMIT]`.

use super::message::store_flags_from;
use super::urlpart::{now_unix, section_data, url_message, UrlData};
use crate::command::{AppendData, AppendMessage, CatPart};
use crate::limits::{COMMAND_SLACK, MAX_MULTIAPPEND};
use crate::parse::imapurl::parse_url;
use crate::response::{compact_set, Code, Status};
use crate::session::{or_no, Done, ImapSession};
use mailstore::{Flags, StoreError, User};
use netloop::{Io, Step};

/// One message as the writer gets it.
struct Ready {
    raw: Vec<u8>,
    flags: Flags,
    when: i64,
}

/// The messages built (on a store thread), or why not.
enum Built {
    Ready(mailstore::MailboxId, u32, Vec<Ready>),
    NoMailbox,
    BadUrl(String),
    TooBig,
}

/// `APPEND mailbox append-message...` with MULTIAPPEND or CATENATE.
pub(crate) fn append_multi(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    user: &User,
    tag: String,
    mailbox: String,
    messages: Vec<AppendMessage>,
) -> Step {
    let parts: usize = messages
        .iter()
        .map(|m| match &m.data {
            AppendData::Catenate(p) => p.len(),
            AppendData::Literal(_) => 1,
        })
        .max()
        .unwrap_or(0);
    if messages.len() > MAX_MULTIAPPEND || parts > MAX_MULTIAPPEND {
        let text = format!(
            "Too many messages or CATENATE parts in one APPEND (limit {MAX_MULTIAPPEND} each)"
        );
        s.cx.status(Some(&tag), Status::No, Some(Code::Limit), &text);
        return Step::Continue;
    }
    let mut items = Vec::with_capacity(messages.len());
    for m in messages {
        match store_flags_from(&m.flags) {
            Ok(f) => items.push((f, m.date.map_or_else(now_unix, |d| d.unix), m.data)),
            Err(why) => {
                s.cx.status(Some(&tag), Status::Bad, None, &why);
                return Step::Continue;
            }
        }
    }
    let max_one = s.cx.shared.config.max_literal;
    let max_all = max_one.saturating_add(COMMAND_SLACK as u64);
    let (owner, me, now) = (user.id, user.clone(), now_unix());
    let t = tag.clone();
    s.cx.read(
        io,
        move |r| {
            let Some(mb) = r.mailbox(owner, &mailbox)? else {
                return Ok(Built::NoMailbox);
            };
            let mut total = 0u64;
            let mut out = Vec::with_capacity(items.len());
            for (flags, when, data) in items {
                let raw = match data {
                    AppendData::Literal(b) => b,
                    AppendData::Catenate(parts) => {
                        let mut raw = Vec::new();
                        for p in parts {
                            let room = max_one
                                .saturating_sub(raw.len() as u64)
                                .min(max_all.saturating_sub(total + raw.len() as u64));
                            match p {
                                CatPart::Text(t) => raw.extend_from_slice(&t),
                                CatPart::Url(u) => {
                                    let Some(url) = parse_url(&u) else {
                                        return Ok(Built::BadUrl(u));
                                    };
                                    let Some((id, meta)) = url_message(r, &url, &me, now)? else {
                                        return Ok(Built::BadUrl(u));
                                    };
                                    match section_data(r, id, &meta, &url, room)? {
                                        UrlData::Found(d) => raw.extend_from_slice(&d),
                                        UrlData::Missing => return Ok(Built::BadUrl(u)),
                                        UrlData::TooBig => return Ok(Built::TooBig),
                                    }
                                }
                            }
                        }
                        raw
                    }
                };
                total += raw.len() as u64;
                if raw.len() as u64 > max_one || total > max_all {
                    return Ok(Built::TooBig);
                }
                out.push(Ready { raw, flags, when });
            }
            Ok(Built::Ready(mb.id, mb.uidvalidity, out))
        },
        or_no(
            &t,
            move |s: &mut ImapSession, io: &mut Io<'_, Done>, built| {
                match built {
                    Built::Ready(id, validity, msgs) => insert(s, io, tag, id, validity, msgs),
                    Built::NoMailbox => no_such_mailbox(s, &tag),
                    Built::BadUrl(u) => {
                        let text = "URL is not an IMAP URL of one of your messages";
                        s.cx.status(Some(&tag), Status::No, Some(Code::BadUrl(u)), text);
                    }
                    Built::TooBig => {
                        let text = format!(
                        "Message too large (limit {max_one} octets each, {max_all} in one APPEND)"
                    );
                        s.cx.status(Some(&tag), Status::No, Some(Code::TooBig), &text);
                    }
                }
                Step::Continue
            },
        ),
    );
    Step::Continue
}

fn no_such_mailbox(s: &mut ImapSession, tag: &str) {
    s.cx.status(
        Some(tag),
        Status::No,
        Some(Code::TryCreate),
        "No such mailbox",
    );
}

/// Insert all of `msgs` in one write job (all or nothing).
fn insert(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    tag: String,
    mailbox: mailstore::MailboxId,
    validity: u32,
    msgs: Vec<Ready>,
) {
    let t = tag.clone();
    s.cx.write(
        io,
        move |tx| {
            let mut uids = Vec::with_capacity(msgs.len());
            for m in &msgs {
                let a = tx.append(mailbox, &m.raw, &m.flags, m.when)?;
                if a.uidvalidity != validity {
                    // Deleted and another mailbox now: roll back.
                    return Err(StoreError::NotFound("mailbox".into()));
                }
                uids.push(a.uid);
            }
            Ok(uids)
        },
        move |s: &mut ImapSession, io: &mut Io<'_, Done>, r: mailstore::Result<Vec<u32>>| match r {
            Ok(uids) => {
                let code = Code::AppendUids(validity, compact_set(&uids));
                s.finish(io, &t, Status::Ok, Some(code), "APPEND completed", true)
            }
            Err(StoreError::NotFound(_)) => {
                no_such_mailbox(s, &t);
                Step::Continue
            }
            Err(e) => {
                s.cx.store_error(&t, &e);
                Step::Continue
            }
        },
    );
}
