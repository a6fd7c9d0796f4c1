//! QUOTA (RFC 9208): one quota root per user, named `""`, over all their
//! mailboxes, with the resources STORAGE (in units of 1024 octets,
//! rounded down as Dovecot does) and MESSAGE; a resource without a limit
//! is not listed, and a user without any limit has no quota root
//! (`GETQUOTAROOT` lists none, `GETQUOTA ""` is `NO [NONEXISTENT]`).
//! Limits are the administrator's (`minimail user quota`): without the
//! QUOTASET capability `SETQUOTA` is `NO [NOPERM]` (§4.2.3).

use crate::response::{Code, Data, Status};
use crate::session::{or_no, Done, ImapSession};
use mailstore::{Quota, User};
use netloop::{Io, Step};

/// The one quota root every user's mailboxes belong to.
const ROOT: &str = "";

/// The `QUOTA` response's resources for `q` (only those with a limit).
fn resources(q: &Quota) -> Vec<(&'static str, u64, u64)> {
    let mut out = Vec::new();
    if let Some(limit) = q.storage_limit {
        out.push(("STORAGE", q.storage_used / 1024, limit / 1024));
    }
    if let Some(limit) = q.message_limit {
        out.push(("MESSAGE", q.messages_used, limit));
    }
    out
}

/// `GETQUOTA root` (§4.2.1).
pub(crate) fn get_quota(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    user: &User,
    tag: String,
    root: String,
) -> Step {
    let uid = user.id;
    s.cx.read(
        io,
        move |r| r.quota(uid),
        or_no(
            &tag.clone(),
            move |s: &mut ImapSession, io: &mut Io<'_, Done>, q: Quota| {
                if root != ROOT || !q.limited() {
                    s.cx.status(
                        Some(&tag),
                        Status::No,
                        Some(Code::Nonexistent),
                        "No such quota root",
                    );
                    return Step::Continue;
                }
                Data::Quota {
                    root: ROOT,
                    resources: &resources(&q),
                }
                .encode(&mut s.cx.out);
                s.finish(io, &tag, Status::Ok, None, "GETQUOTA completed", true)
            },
        ),
    );
    Step::Continue
}

/// `GETQUOTAROOT mailbox` (§4.2.2): the mailbox's roots, then each
/// root's QUOTA.
pub(crate) fn get_quota_root(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    user: &User,
    tag: String,
    mailbox: String,
) -> Step {
    let uid = user.id;
    s.cx.read(
        io,
        move |r| {
            let Some(mb) = r.mailbox(uid, &mailbox)? else {
                return Ok(None);
            };
            Ok(Some((mb.name, r.quota(uid)?)))
        },
        or_no(
            &tag.clone(),
            move |s: &mut ImapSession, io: &mut Io<'_, Done>, found: Option<(String, Quota)>| {
                let Some((name, q)) = found else {
                    s.cx.status(
                        Some(&tag),
                        Status::No,
                        Some(Code::Nonexistent),
                        "No such mailbox",
                    );
                    return Step::Continue;
                };
                let roots: &[&str] = if q.limited() { &[ROOT] } else { &[] };
                let utf8 = s.cx.utf8_names;
                Data::QuotaRoot {
                    mailbox: &name,
                    roots,
                }
                .encode_as(&mut s.cx.out, utf8);
                if q.limited() {
                    Data::Quota {
                        root: ROOT,
                        resources: &resources(&q),
                    }
                    .encode(&mut s.cx.out);
                }
                s.finish(io, &tag, Status::Ok, None, "GETQUOTAROOT completed", true)
            },
        ),
    );
    Step::Continue
}

/// `SETQUOTA` (§4.2.3): limits are set by the administrator.
pub(crate) fn set_quota(s: &mut ImapSession, io: &mut Io<'_, Done>, tag: &str) -> Step {
    s.finish(
        io,
        tag,
        Status::No,
        Some(Code::NoPerm),
        "Quotas are set by the administrator (minimail user quota)",
        true,
    )
}
