//! Authenticated-state mailbox commands (RFC 3501 §6.3): SELECT, EXAMINE
//! (with CONDSTORE, RFC 7162 §3.1.8), CREATE (with USE, RFC 6154 §3),
//! DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, STATUS and APPEND (APPENDUID,
//! RFC 4315). LIST/LSUB live in `list.rs`.

use crate::command::{Flag, StatusItem};
use crate::response::{mailbox_name, untagged, untagged_values, Code, Status, Value};
use crate::select_cache::Opened;
use crate::selection::{flags_lines, Selection};
use crate::session::{Done, ImapSession};
use mailstore::{Mailbox, StoreError, Tx, UserId};
use netloop::{Io, Step};

pub(crate) fn user_id(s: &ImapSession) -> UserId {
    s.user.as_ref().map_or(0, |u| u.id)
}

/// `SELECT` / `EXAMINE` (§6.3.1, §6.3.2)
pub(crate) fn select(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    tag: String,
    name: String,
    read_only: bool,
    condstore: bool,
) -> Step {
    // Selecting (even unsuccessfully) leaves the current mailbox (§6.3.1).
    s.deselect();
    if condstore {
        s.condstore = true;
    }
    let uid = user_id(s);
    let hub = std::sync::Arc::clone(&s.shared.hub);
    s.read(
        io,
        move |r| {
            let Some(mb) = r.mailbox(uid, &name)? else {
                return Ok(None);
            };
            // The same state selected before: nothing to read
            // (select_cache.rs). The mailbox row and the entries are read
            // in one snapshot (Store::read runs each job in one).
            let (uidvalidity, modseq) = (mb.uidvalidity, mb.highestmodseq);
            let mut opened = match hub.selects.get(mb.id, uidvalidity, modseq) {
                Some(cached) => cached,
                None => {
                    // Boil the entries down here, on the store thread.
                    let summary = r.mailbox_summary(mb.id)?;
                    Opened {
                        uidvalidity,
                        modseq,
                        uids: summary.uids.into(),
                        keywords: summary.keywords,
                        first_unseen: summary.first_unseen,
                    }
                }
            };
            // The session keeps only the UID map, shared with the other
            // sessions that see the mailbox at this modseq (views.rs).
            hub.views
                .intern(mb.id, uidvalidity, modseq, &mut opened.uids);
            hub.selects.put(mb.id, opened.clone());
            Ok(Some((mb, opened)))
        },
        move |s, io, res| {
            match res {
                Ok(Some((mb, opened))) => selected(s, &tag, mb, opened, read_only),
                Ok(None) => s.status(
                    Some(&tag),
                    Status::No,
                    Some(Code::Nonexistent),
                    "No such mailbox",
                ),
                Err(e) => s.store_error(&tag, &e),
            }
            let _ = io;
            Step::Continue
        },
    );
    Step::Continue
}

fn selected(s: &mut ImapSession, tag: &str, mb: Mailbox, opened: Opened, read_only: bool) {
    let Opened {
        uids,
        keywords,
        first_unseen,
        ..
    } = opened;
    // EXAMINE must not take \Recent away from others (§6.3.2).
    let last_uid = uids.last().copied().unwrap_or(0);
    let recent_above = if read_only {
        s.shared.hub.recent_mark(mb.id, mb.uidvalidity)
    } else {
        s.shared.hub.claim_recent(mb.id, mb.uidvalidity, last_uid)
    };
    let sel = Selection::new(
        mb.id,
        mb.name,
        mb.uidvalidity,
        read_only,
        uids,
        mb.highestmodseq,
        keywords,
        recent_above,
    );
    let out = &mut s.out;
    flags_lines(out, &sel.keywords, read_only);
    untagged(out, &format!("{} EXISTS", sel.len()));
    untagged(out, &format!("{} RECENT", sel.recent_count()));
    if let Some(u) = first_unseen {
        crate::response::StatusLine::untagged(Status::Ok, Some(Code::Unseen(u)), "First unseen")
            .encode(out);
    }
    for (code, text) in [
        (Code::UidValidity(mb.uidvalidity), "UIDs valid"),
        (Code::UidNext(mb.uidnext), "Predicted next UID"),
        (Code::HighestModSeq(mb.highestmodseq), "Highest"),
    ] {
        crate::response::StatusLine::untagged(Status::Ok, Some(code), text).encode(out);
    }
    let (code, verb) = if read_only {
        (Code::ReadOnly, "EXAMINE")
    } else {
        (Code::ReadWrite, "SELECT")
    };
    s.status(
        Some(tag),
        Status::Ok,
        Some(code),
        &format!("{verb} completed"),
    );
    s.enter_selected(sel);
}

/// Create the missing superiors of `name` (§6.3.3: SHOULD), ignoring ones
/// that exist.
fn create_parents(tx: &mut Tx, user: UserId, name: &str) -> mailstore::Result<()> {
    let levels: Vec<&str> = name.split('/').collect();
    for k in 1..levels.len() {
        match tx.create_mailbox(user, &levels[..k].join("/"), None) {
            Ok(_) | Err(StoreError::Exists(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

const SPECIAL_USES: [&str; 7] = [
    "\\All",
    "\\Archive",
    "\\Drafts",
    "\\Flagged",
    "\\Junk",
    "\\Sent",
    "\\Trash",
];

/// `CREATE` (§6.3.3, RFC 6154 §3)
pub(crate) fn create(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    tag: String,
    name: String,
    special_use: Option<Flag>,
) -> Step {
    let name = name.trim_end_matches('/').to_owned();
    if name == "INBOX" {
        s.status(
            Some(&tag),
            Status::No,
            Some(Code::AlreadyExists),
            "INBOX always exists",
        );
        return Step::Continue;
    }
    let special = match special_use {
        None => None,
        Some(u) => match SPECIAL_USES.iter().find(|k| k.eq_ignore_ascii_case(&u)) {
            Some(k) => Some((*k).to_owned()),
            None => {
                s.status(
                    Some(&tag),
                    Status::No,
                    Some(Code::Cannot),
                    "Unknown special-use attribute",
                );
                return Step::Continue;
            }
        },
    };
    if !name_within_limits(s, &tag, &name) {
        return Step::Continue;
    }
    let uid = user_id(s);
    within_count_limit(s, io, tag, name.clone(), true, move |s, io, tag| {
        s.write(
            io,
            move |tx| {
                create_parents(tx, uid, &name)?;
                tx.create_mailbox(uid, &name, special.as_deref())
            },
            move |s, io, res| match res {
                Ok(_) => s.finish(io, &tag, Status::Ok, None, "CREATE completed", true),
                Err(e) => {
                    s.store_error(&tag, &e);
                    Step::Continue
                }
            },
        );
        Step::Continue
    })
}

/// Refuse a new mailbox name that is too long or too deep (`NO [LIMIT]`,
/// RFC 5530 §3). True if the name is acceptable.
fn name_within_limits(s: &mut ImapSession, tag: &str, name: &str) -> bool {
    if let Some(why) = unusable_name(name) {
        s.status(Some(tag), Status::No, Some(Code::Cannot), why);
        return false;
    }
    let cfg = &s.shared.config;
    let text = if name.len() > cfg.max_mailbox_name {
        format!(
            "Mailbox name too long (limit {} octets)",
            cfg.max_mailbox_name
        )
    } else if name.split('/').count() > cfg.max_mailbox_depth {
        format!(
            "Mailbox hierarchy too deep (limit {} levels)",
            cfg.max_mailbox_depth
        )
    } else {
        return true;
    };
    s.status(Some(tag), Status::No, Some(Code::Limit), &text);
    false
}

/// Why a new mailbox may not be called `name`, if it may not: not valid
/// modified UTF-7, an empty, `.` or `..` hierarchy level, or a leading `/`
/// or `~` (names that confuse tools mapping them to paths; Dovecot refuses
/// them too).
fn unusable_name(name: &str) -> Option<&'static str> {
    if name.contains(crate::parse::INVALID_UTF7) {
        Some("Mailbox name is not valid modified UTF-7")
    } else if name.starts_with('/') || name.starts_with('~') {
        Some("Mailbox name may not start with / or ~")
    } else if name
        .split('/')
        .any(|l| l.is_empty() || l == "." || l == "..")
    {
        Some("Mailbox name has an empty, . or .. level")
    } else if name.chars().any(char::is_control) {
        Some("Mailbox name has a control character")
    } else {
        None
    }
}

/// Run `then` only if creating `name` (when `itself`) and its missing
/// parents keeps the user within `max_mailboxes`; else `NO [LIMIT]`.
/// (Checked by a read before the write: concurrent sessions of one user
/// may overshoot by a few, never without bound.)
fn within_count_limit(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    tag: String,
    name: String,
    itself: bool,
    then: impl FnOnce(&mut ImapSession, &mut Io<'_, Done>, String) -> Step + Send + 'static,
) -> Step {
    let uid = user_id(s);
    let max = s.shared.config.max_mailboxes;
    s.read(
        io,
        move |r| {
            let have = r.mailboxes(uid)?;
            let levels: Vec<&str> = name.split('/').collect();
            let upto = if itself {
                levels.len()
            } else {
                levels.len() - 1
            };
            let missing = (1..=upto)
                .map(|k| levels[..k].join("/"))
                .filter(|n| {
                    !have.iter().any(|m| {
                        m.name == *n || (m.name == "INBOX" && n.eq_ignore_ascii_case("INBOX"))
                    })
                })
                .count();
            Ok(have.len().saturating_add(missing) <= max)
        },
        move |s, io, res| match res {
            Ok(true) => then(s, io, tag),
            Ok(false) => {
                let text = format!("Too many mailboxes (limit {max})");
                s.status(Some(&tag), Status::No, Some(Code::Limit), &text);
                Step::Continue
            }
            Err(e) => {
                s.store_error(&tag, &e);
                Step::Continue
            }
        },
    );
    Step::Continue
}

/// `DELETE` (§6.3.4)
pub(crate) fn delete(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    tag: String,
    name: String,
) -> Step {
    if name == "INBOX" {
        s.status(
            Some(&tag),
            Status::No,
            Some(Code::Cannot),
            "INBOX cannot be deleted",
        );
        return Step::Continue;
    }
    let uid = user_id(s);
    s.read(
        io,
        move |r| r.mailbox(uid, &name),
        move |s, io, res| match res {
            Ok(Some(mb)) => {
                let id = mb.id;
                s.write(
                    io,
                    move |tx| tx.delete_mailbox(id),
                    move |s, io, res| match res {
                        Ok(()) => {
                            if s.selected.as_ref().is_some_and(|sel| sel.mailbox == id) {
                                s.deselect();
                            }
                            s.finish(io, &tag, Status::Ok, None, "DELETE completed", true)
                        }
                        Err(e) => {
                            s.store_error(&tag, &e);
                            Step::Continue
                        }
                    },
                );
                Step::Continue
            }
            Ok(None) => {
                s.status(
                    Some(&tag),
                    Status::No,
                    Some(Code::Nonexistent),
                    "No such mailbox",
                );
                Step::Continue
            }
            Err(e) => {
                s.store_error(&tag, &e);
                Step::Continue
            }
        },
    );
    Step::Continue
}

/// `RENAME` (§6.3.5; renaming INBOX moves its messages, the store does it)
pub(crate) fn rename(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    tag: String,
    from: String,
    to: String,
) -> Step {
    let to = to.trim_end_matches('/').to_owned();
    if !name_within_limits(s, &tag, &to) {
        return Step::Continue;
    }
    let uid = user_id(s);
    // Renaming INBOX creates the new name; any other rename only its parents.
    let itself = from.eq_ignore_ascii_case("INBOX");
    within_count_limit(s, io, tag, to.clone(), itself, move |s, io, tag| {
        s.write(
            io,
            move |tx| {
                create_parents(tx, uid, &to)?;
                tx.rename_mailbox(uid, &from, &to)
            },
            move |s, io, res| match res {
                Ok(()) => s.finish(io, &tag, Status::Ok, None, "RENAME completed", true),
                Err(e) => {
                    s.store_error(&tag, &e);
                    Step::Continue
                }
            },
        );
        Step::Continue
    })
}

/// `SUBSCRIBE` / `UNSUBSCRIBE` (§6.3.6, §6.3.7)
pub(crate) fn subscribe(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    tag: String,
    name: String,
    on: bool,
) -> Step {
    let uid = user_id(s);
    let probe = name.clone();
    let write = move |s: &mut ImapSession, io: &mut Io<'_, Done>, tag: String| {
        s.write(
            io,
            move |tx| tx.set_subscribed(uid, &name, on),
            move |s, io, res| match res {
                Ok(()) => {
                    let text = if on {
                        "SUBSCRIBE completed"
                    } else {
                        "UNSUBSCRIBE completed"
                    };
                    s.finish(io, &tag, Status::Ok, None, text, true)
                }
                Err(e) => {
                    s.store_error(&tag, &e);
                    Step::Continue
                }
            },
        );
        Step::Continue
    };
    if !on {
        return write(s, io, tag);
    }
    // Subscriptions may name mailboxes that do not exist (§6.3.6), so they
    // get the same bounds as mailboxes: name, depth and count.
    if !name_within_limits(s, &tag, &probe) {
        return Step::Continue;
    }
    let max = s.shared.config.max_mailboxes;
    s.read(
        io,
        move |r| {
            let subs = r.subscriptions(uid)?;
            Ok(subs.len() < max || subs.contains(&probe))
        },
        move |s, io, res| match res {
            Ok(true) => write(s, io, tag),
            Ok(false) => {
                let text = format!("Too many subscriptions (limit {max})");
                s.status(Some(&tag), Status::No, Some(Code::Limit), &text);
                Step::Continue
            }
            Err(e) => {
                s.store_error(&tag, &e);
                Step::Continue
            }
        },
    );
    Step::Continue
}

/// `STATUS` (§6.3.10)
pub(crate) fn status(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    tag: String,
    name: String,
    items: Vec<StatusItem>,
) -> Step {
    let uid = user_id(s);
    s.read(
        io,
        move |r| {
            let Some(mb) = r.mailbox(uid, &name)? else {
                return Ok(None);
            };
            Ok(Some((mb.name.clone(), mb.id, r.status(mb.id)?)))
        },
        move |s, io, res| match res {
            Ok(Some((name, id, st))) => {
                let mut vals = Vec::new();
                for item in &items {
                    let (k, v) = match item {
                        StatusItem::Messages => ("MESSAGES", u64::from(st.messages)),
                        StatusItem::Recent => {
                            let mark = s.shared.hub.recent_mark(id, st.uidvalidity);
                            let above =
                                u64::from(st.uidnext.saturating_sub(1).saturating_sub(mark));
                            ("RECENT", above.min(u64::from(st.messages)))
                        }
                        StatusItem::UidNext => ("UIDNEXT", u64::from(st.uidnext)),
                        StatusItem::UidValidity => ("UIDVALIDITY", u64::from(st.uidvalidity)),
                        StatusItem::Unseen => ("UNSEEN", u64::from(st.unseen)),
                        StatusItem::HighestModSeq => ("HIGHESTMODSEQ", st.highestmodseq),
                    };
                    vals.push(Value::Atom(k.into()));
                    vals.push(Value::Num(v));
                }
                untagged_values(
                    &mut s.out,
                    "STATUS",
                    &[mailbox_name(&name), Value::List(vals)],
                );
                s.finish(io, &tag, Status::Ok, None, "STATUS completed", true)
            }
            Ok(None) => {
                s.status(
                    Some(&tag),
                    Status::No,
                    Some(Code::Nonexistent),
                    "No such mailbox",
                );
                Step::Continue
            }
            Err(e) => {
                s.store_error(&tag, &e);
                Step::Continue
            }
        },
    );
    Step::Continue
}

/// Seconds since the epoch, now.
pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
