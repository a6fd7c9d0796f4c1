//! URLAUTH (RFC 4467) with URLAUTH=BINARY (RFC 5524): GENURLAUTH signs
//! URLs to the user's own messages, RESETKEY invalidates them, URLFETCH
//! returns what URLs name (the session's own messages, or anybody's with a
//! valid URLAUTH; `op/urlpart.rs` decides). Mechanism INTERNAL only: the
//! token is an HMAC-SHA256 under a per-mailbox key kept in the store.
//!
//! Bounds: URLFETCH holds what it answers in memory, at most `--max-literal`
//! octets for the whole command (more is `NO [LIMIT]`); a URL that names
//! nothing, or that the user may not read, answers NIL (RFC 4467 §7.3).

use super::fetch_binary::pieces;
use super::fetch_encode::no_nul;
use super::urlfetch_binary::{converted, materialize};
use super::urlpart::{internal_token, names_account, now_unix, section_data, url_message, UrlData};
use crate::command::{SectionText, UrlFetchItem};
use crate::op::fetch_binary::literal8_header;
use crate::parse::imapurl::parse_url;
use crate::response::{encode_string, Code, Status, Value};
use crate::session::{or_no, Done, ImapSession};
use crate::structure::{body, find_part};
use mailstore::{MailboxId, User};
use netloop::{Io, Step};

/// `GENURLAUTH url-rump mechanism ...` (RFC 4467 §7.1): each rump must be
/// an absolute IMAP URL of one of the user's own mailboxes with
/// `;URLAUTH=access` and no token yet; the answer is each URL with
/// `:internal:token` appended. The mailbox's key is made on first use.
pub(crate) fn genurlauth(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    user: &User,
    tag: String,
    items: Vec<(String, String)>,
) -> Step {
    let mut rumps = Vec::with_capacity(items.len());
    for (rump, mech) in items {
        if mech != "INTERNAL" {
            let text = format!("Unknown URLAUTH mechanism {mech} (only INTERNAL)");
            s.cx.status(Some(&tag), Status::No, None, &text);
            return Step::Continue;
        }
        let ok = parse_url(&rump).filter(|u| {
            u.server.is_some()
                && names_account(u, &user.address)
                && u.auth.as_ref().is_some_and(|a| a.verifier.is_none())
        });
        match ok {
            Some(u) => rumps.push((rump, u.mailbox)),
            None => {
                let text =
                    "Not an absolute IMAP URL of your own messages with ;URLAUTH= and no token";
                s.cx.status(Some(&tag), Status::No, Some(Code::BadUrl(rump)), text);
                return Step::Continue;
            }
        }
    }
    let owner = user.id;
    let t = tag.clone();
    s.cx.read(
        io,
        move |r| {
            let mut ids = Vec::with_capacity(rumps.len());
            for (rump, name) in rumps {
                match r.mailbox(owner, &name)? {
                    Some(mb) => ids.push((rump, mb.id)),
                    None => return Ok(Err(rump)),
                }
            }
            Ok(Ok(ids))
        },
        or_no(
            &t,
            move |s: &mut ImapSession, io: &mut Io<'_, Done>, found| {
                match found {
                    Ok(ids) => sign(s, io, tag, ids),
                    Err(rump) => {
                        let text = "No such mailbox";
                        s.cx.status(Some(&tag), Status::No, Some(Code::BadUrl(rump)), text);
                    }
                }
                Step::Continue
            },
        ),
    );
    Step::Continue
}

fn sign(s: &mut ImapSession, io: &mut Io<'_, Done>, tag: String, ids: Vec<(String, MailboxId)>) {
    let t = tag.clone();
    s.cx.write(
        io,
        move |tx| {
            let mut out = Vec::with_capacity(ids.len());
            for (rump, id) in ids {
                let key = tx.mailbox_key(id)?;
                let token = internal_token(&key, &rump);
                out.push(format!("{rump}:internal:{token}"));
            }
            Ok(out)
        },
        or_no(
            &t,
            move |s: &mut ImapSession, io: &mut Io<'_, Done>, urls: Vec<String>| {
                let out = &mut s.cx.out;
                out.extend_from_slice(b"* GENURLAUTH");
                for u in urls {
                    out.push(b' ');
                    encode_string(u.as_bytes(), out);
                }
                out.extend_from_slice(b"\r\n");
                s.finish(io, &tag, Status::Ok, None, "GENURLAUTH completed", true)
            },
        ),
    );
}

/// `RESETKEY [mailbox [mechanism...]]` (RFC 4467 §7.2): new keys for the
/// mailbox (or all the user's), so every URL signed before stops working.
pub(crate) fn resetkey(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    user: &User,
    tag: String,
    mailbox: Option<String>,
    mechanisms: Vec<String>,
) -> Step {
    if let Some(m) = mechanisms.iter().find(|m| *m != "INTERNAL") {
        let text = format!("Unknown URLAUTH mechanism {m} (only INTERNAL)");
        s.cx.status(Some(&tag), Status::No, None, &text);
        return Step::Continue;
    }
    let owner = user.id;
    let t = tag.clone();
    s.cx.write(
        io,
        move |tx| tx.reset_mailbox_keys(owner, mailbox.as_deref()),
        or_no(
            &t,
            move |s: &mut ImapSession, io: &mut Io<'_, Done>, ok: bool| {
                if !ok {
                    let code = Some(Code::Nonexistent);
                    s.cx.status(Some(&tag), Status::No, code, "No such mailbox");
                    return Step::Continue;
                }
                s.finish(io, &tag, Status::Ok, None, "RESETKEY completed", true)
            },
        ),
    );
    Step::Continue
}

/// One URL's answer (RFC 4467 §7.3, RFC 5524 §4).
struct Answer {
    structure: Option<Value>,
    /// The data, and whether it is decoded (BINARY).
    data: Option<(Vec<u8>, bool)>,
}

/// `URLFETCH url...` (RFC 4467 §7.3) with RFC 5524's `(url args)`.
pub(crate) fn urlfetch(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    user: &User,
    tag: String,
    items: Vec<UrlFetchItem>,
) -> Step {
    let me = user.clone();
    let max = s.cx.shared.config.max_literal;
    let t = tag.clone();
    s.cx.read(
        io,
        move |r| {
            let now = now_unix();
            let mut budget = Budget {
                left: max,
                over: false,
            };
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                // Only URLAUTH-authorized URLs (RFC 4467 §7.3).
                let answer = match parse_url(&item.url) {
                    Some(url) if url.auth.is_some() => match url_message(r, &url, &me, now)? {
                        Some((mb, meta)) => answer(r, mb, &meta, &url, &item, &mut budget)?,
                        None => None,
                    },
                    _ => None,
                };
                if budget.over {
                    return Ok(None);
                }
                out.push((item, answer));
            }
            Ok(Some(out))
        },
        or_no(
            &t,
            move |s: &mut ImapSession, io: &mut Io<'_, Done>, res| {
                let Some(answers): Option<Vec<(UrlFetchItem, Option<Answer>)>> = res else {
                    let text = format!("URLFETCH data over {max} octets in one command");
                    s.cx.status(Some(&tag), Status::No, Some(Code::Limit), &text);
                    return Step::Continue;
                };
                for (item, a) in answers {
                    write_answer(&mut s.cx.out, &item, a);
                }
                s.finish(io, &tag, Status::Ok, None, "URLFETCH completed", true)
            },
        ),
    );
    Step::Continue
}

/// Octets a URLFETCH may still return; `over` once it ran out.
struct Budget {
    left: u64,
    over: bool,
}

/// What `item` asks of `meta`; `None` for NIL.
fn answer(
    r: &mailstore::Reader,
    mailbox: MailboxId,
    meta: &mailstore::MessageMeta,
    url: &crate::parse::imapurl::ImapUrl,
    item: &UrlFetchItem,
    budget: &mut Budget,
) -> mailstore::Result<Option<Answer>> {
    let (path, whole_part) = match &url.section {
        None => (&[][..], true),
        Some(s) => (s.part.as_slice(), s.text == SectionText::Full),
    };
    let structure = if item.structure {
        let part = if path.is_empty() {
            Some(&meta.structure)
        } else {
            find_part(&meta.structure, path)
        };
        match part.filter(|_| whole_part) {
            // With BINARY, the structure of the converted data (RFC 5524 §3.2).
            Some(p) if item.binary => match converted(r, mailbox, meta.uid, p)? {
                Ok(c) => Some(body(&c, true)),
                Err(_) => return Ok(None),
            },
            Some(p) => Some(body(p, true)),
            None => return Ok(None),
        }
    } else {
        None
    };
    let data = if item.binary && whole_part {
        let Ok(Some(pieces)) = pieces(r, mailbox, meta, path)? else {
            return Ok(None);
        };
        let Some(all) = materialize(r, mailbox, meta.uid, pieces, budget.left)? else {
            budget.over = true;
            return Ok(None);
        };
        let (o, n) = match url.partial {
            Some((o, n)) => {
                let o = (o as usize).min(all.len());
                let n = n.map_or(all.len() - o, |n| (n as usize).min(all.len() - o));
                (o, n)
            }
            None => (0, all.len()),
        };
        Some((all[o..o + n].to_vec(), true))
    } else if item.binary || item.body {
        match section_data(r, mailbox, meta, url, budget.left)? {
            UrlData::Found(mut d) => {
                if !item.binary {
                    no_nul(&mut d);
                }
                Some((d, item.binary))
            }
            UrlData::Missing => return Ok(None),
            UrlData::TooBig => {
                budget.over = true;
                return Ok(None);
            }
        }
    } else {
        None
    };
    if let Some((d, _)) = &data {
        budget.left = budget.left.saturating_sub(d.len() as u64);
    }
    Ok(Some(Answer { structure, data }))
}

/// `* URLFETCH url data` (RFC 4467 §9 `urlfetch-data`), or RFC 5524's
/// `* URLFETCH url (BODYPARTSTRUCTURE body BINARY data)`.
fn write_answer(out: &mut Vec<u8>, item: &UrlFetchItem, a: Option<Answer>) {
    out.extend_from_slice(b"* URLFETCH ");
    encode_string(item.url.as_bytes(), out);
    out.push(b' ');
    let Some(a) = a else {
        out.extend_from_slice(b"NIL\r\n");
        return;
    };
    if !item.extended {
        match a.data {
            Some((d, _)) => Value::Literal(d).encode(out),
            None => out.extend_from_slice(b"NIL"),
        }
        out.extend_from_slice(b"\r\n");
        return;
    }
    let mut first = true;
    out.push(b'(');
    if let Some(v) = a.structure {
        out.extend_from_slice(b"BODYPARTSTRUCTURE ");
        v.encode(out);
        first = false;
    }
    if let Some((d, binary)) = a.data {
        if !first {
            out.push(b' ');
        }
        out.extend_from_slice(if binary { b"BINARY " } else { b"BODY " });
        literal8_header(d.len() as u64, d.contains(&0), out);
        out.extend_from_slice(&d);
    }
    out.extend_from_slice(b")\r\n");
}
