//! Managing a user's mailboxes (RFC 3501 §6.3): CREATE (with USE, RFC 6154
//! §3), DELETE, RENAME, SUBSCRIBE and UNSUBSCRIBE, with the bounds on
//! mailbox names, depth and count. SELECT/EXAMINE/STATUS are `select.rs`,
//! LIST/LSUB `list.rs`, APPEND `append.rs`.

use crate::command::Flag;
use crate::response::{Code, Status};
use crate::session::{or_no, Done, ImapSession, State};
use mailstore::{Mailbox, StoreError, Tx, User, UserId};
use netloop::{Io, Step};

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

/// `CREATE` (§6.3.3; CREATE-SPECIAL-USE, RFC 6154 §3: a mailbox holds at
/// most one special use, one of [`SPECIAL_USES`]; anything else is
/// refused with `NO [USEATTR]` and nothing is created)
pub(crate) fn create(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    user: &User,
    tag: String,
    name: String,
    special_use: Vec<Flag>,
) -> Step {
    let name = name.trim_end_matches('/').to_owned();
    if name == "INBOX" {
        s.cx.status(
            Some(&tag),
            Status::No,
            Some(Code::AlreadyExists),
            "INBOX always exists",
        );
        return Step::Continue;
    }
    let special = match special_use.as_slice() {
        [] => None,
        [u] => match SPECIAL_USES.iter().find(|k| k.eq_ignore_ascii_case(u)) {
            Some(k) => Some((*k).to_owned()),
            None => {
                s.cx.status(
                    Some(&tag),
                    Status::No,
                    Some(Code::UseAttr),
                    "Unknown special-use attribute",
                );
                return Step::Continue;
            }
        },
        _ => {
            s.cx.status(
                Some(&tag),
                Status::No,
                Some(Code::UseAttr),
                "A mailbox can have only one special use",
            );
            return Step::Continue;
        }
    };
    if !name_within_limits(s, &tag, &name) {
        return Step::Continue;
    }
    let uid = user.id;
    within_count_limit(s, io, uid, tag, name.clone(), true, move |s, io, tag| {
        s.cx.write(
            io,
            move |tx| {
                create_parents(tx, uid, &name)?;
                let id = tx.create_mailbox(uid, &name, special.as_deref())?;
                Ok(tx
                    .mailbox_by_id(id)?
                    .map(|mb| crate::objectid::mailbox(mb.id, mb.uidvalidity)))
            },
            or_no(
                &tag.clone(),
                move |s: &mut ImapSession, io: &mut Io<'_, Done>, id: Option<String>| {
                    // RFC 8474 §4: the new mailbox's MAILBOXID.
                    let code = id.map(Code::MailboxId);
                    s.finish(io, &tag, Status::Ok, code, "CREATE completed", true)
                },
            ),
        );
        Step::Continue
    })
}

/// Refuse a new mailbox name that is too long or too deep (`NO [LIMIT]`,
/// RFC 5530 §3). True if the name is acceptable.
fn name_within_limits(s: &mut ImapSession, tag: &str, name: &str) -> bool {
    if let Some(why) = unusable_name(name) {
        s.cx.status(Some(tag), Status::No, Some(Code::Cannot), why);
        return false;
    }
    let cfg = &s.cx.shared.config;
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
    s.cx.status(Some(tag), Status::No, Some(Code::Limit), &text);
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
    uid: UserId,
    tag: String,
    name: String,
    itself: bool,
    then: impl FnOnce(&mut ImapSession, &mut Io<'_, Done>, String) -> Step + Send + 'static,
) -> Step {
    let max = s.cx.shared.config.max_mailboxes;
    s.cx.read(
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
        or_no(
            &tag.clone(),
            move |s: &mut ImapSession, io: &mut Io<'_, Done>, ok: bool| {
                if ok {
                    return then(s, io, tag);
                }
                let text = format!("Too many mailboxes (limit {max})");
                s.cx.status(Some(&tag), Status::No, Some(Code::Limit), &text);
                Step::Continue
            },
        ),
    );
    Step::Continue
}

/// `DELETE` (§6.3.4)
pub(crate) fn delete(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    user: &User,
    tag: String,
    name: String,
) -> Step {
    if name == "INBOX" {
        s.cx.status(
            Some(&tag),
            Status::No,
            Some(Code::Cannot),
            "INBOX cannot be deleted",
        );
        return Step::Continue;
    }
    let uid = user.id;
    s.cx.read(
        io,
        move |r| r.mailbox(uid, &name),
        or_no(
            &tag.clone(),
            move |s: &mut ImapSession, io: &mut Io<'_, Done>, found: Option<Mailbox>| {
                let Some(mb) = found else {
                    s.cx.status(
                        Some(&tag),
                        Status::No,
                        Some(Code::Nonexistent),
                        "No such mailbox",
                    );
                    return Step::Continue;
                };
                let id = mb.id;
                s.cx.write(
                    io,
                    move |tx| tx.delete_mailbox(id),
                    or_no(
                        &tag.clone(),
                        move |s: &mut ImapSession, io: &mut Io<'_, Done>, ()| {
                            if matches!(&s.state, State::Selected { sel, .. } if sel.mailbox == id)
                            {
                                s.deselect();
                            }
                            s.finish(io, &tag, Status::Ok, None, "DELETE completed", true)
                        },
                    ),
                );
                Step::Continue
            },
        ),
    );
    Step::Continue
}

/// `RENAME` (§6.3.5; renaming INBOX moves its messages, the store does it)
pub(crate) fn rename(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    user: &User,
    tag: String,
    from: String,
    to: String,
) -> Step {
    let to = to.trim_end_matches('/').to_owned();
    if !name_within_limits(s, &tag, &to) {
        return Step::Continue;
    }
    let uid = user.id;
    // Renaming INBOX creates the new name; any other rename only its parents.
    let itself = from.eq_ignore_ascii_case("INBOX");
    within_count_limit(s, io, uid, tag, to.clone(), itself, move |s, io, tag| {
        s.cx.write(
            io,
            move |tx| {
                create_parents(tx, uid, &to)?;
                tx.rename_mailbox(uid, &from, &to)
            },
            or_no(
                &tag.clone(),
                move |s: &mut ImapSession, io: &mut Io<'_, Done>, ()| {
                    s.finish(io, &tag, Status::Ok, None, "RENAME completed", true)
                },
            ),
        );
        Step::Continue
    })
}

/// `SUBSCRIBE` / `UNSUBSCRIBE` (§6.3.6, §6.3.7)
pub(crate) fn subscribe(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    user: &User,
    tag: String,
    name: String,
    on: bool,
) -> Step {
    let uid = user.id;
    let probe = name.clone();
    let write = move |s: &mut ImapSession, io: &mut Io<'_, Done>, tag: String| {
        s.cx.write(
            io,
            move |tx| tx.set_subscribed(uid, &name, on),
            or_no(
                &tag.clone(),
                move |s: &mut ImapSession, io: &mut Io<'_, Done>, ()| {
                    let text = if on {
                        "SUBSCRIBE completed"
                    } else {
                        "UNSUBSCRIBE completed"
                    };
                    s.finish(io, &tag, Status::Ok, None, text, true)
                },
            ),
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
    let max = s.cx.shared.config.max_mailboxes;
    s.cx.read(
        io,
        move |r| {
            let subs = r.subscriptions(uid)?;
            Ok(subs.len() < max || subs.contains(&probe))
        },
        or_no(
            &tag.clone(),
            move |s: &mut ImapSession, io: &mut Io<'_, Done>, ok: bool| {
                if ok {
                    return write(s, io, tag);
                }
                let text = format!("Too many subscriptions (limit {max})");
                s.cx.status(Some(&tag), Status::No, Some(Code::Limit), &text);
                Step::Continue
            },
        ),
    );
    Step::Continue
}
