//! `APPEND` (RFC 3501 §6.3.11, APPENDUID RFC 4315 §3), pipelined.
//!
//! Clients that upload many messages (mbsync, a mail migration) send
//! APPEND after APPEND without waiting, with LITERAL+ (RFC 7888) or after
//! each continuation. Each APPEND is handed to the store's writer at once,
//! without waiting for the previous one to commit, so a burst shares group
//! commits instead of paying one fsync per message. The tagged answers
//! still come in command order: the writer commits jobs in the order they
//! were queued and answers them in that order, and any other command that
//! arrives meanwhile waits (`ImapSession::deferred`) until every APPEND in
//! flight has been answered. The mailbox named by a run of APPENDs is
//! looked up once; the id is forgotten as soon as any other command runs,
//! and every insert checks that the mailbox still has the UIDVALIDITY seen
//! at lookup (UIDVALIDITY is unique store-wide), so a mailbox deleted
//! meanwhile — even one whose row id SQLite has since given to another
//! mailbox, of any user — gets `NO [TRYCREATE]`, never the message.
//! Small messages are parsed on the loop thread (tens of microseconds),
//! larger ones by the writer.

use super::message::store_flags_from;
use crate::command::{DateTime, Flag};
use crate::response::{Code, Status};
use crate::session::{or_no, AppendTarget, Busy, Done, ImapSession};
use mailstore::{
    Appended, Flags, Mailbox, MailboxId, NewMessage, PreparedMessage, StoreError, User,
};
use netloop::{Io, Step};
use std::sync::atomic::Ordering;

/// Messages up to this size are parsed on the loop thread.
const PARSE_INLINE_MAX: usize = 64 * 1024;

/// The message as handed to the writer.
enum Upload {
    Raw(Vec<u8>, i64),
    Prepared(PreparedMessage),
}

/// `APPEND mailbox [flags] [date] literal`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn append(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    user: &User,
    tag: String,
    name: String,
    flags: Vec<Flag>,
    date: Option<DateTime>,
    message: Vec<u8>,
) -> Step {
    let flags = match store_flags_from(&flags) {
        Ok(f) => f,
        Err(why) => {
            s.cx.status(Some(&tag), Status::Bad, None, &why);
            return Step::Continue;
        }
    };
    let when = date.map_or_else(now_unix, |d| d.unix);
    let upload = if message.len() <= PARSE_INLINE_MAX {
        let raw = NewMessage {
            raw: message,
            internal_date: when,
        };
        match s.cx.shared.store.prepare(raw) {
            Ok(p) => Upload::Prepared(p),
            Err(e) => {
                s.cx.store_error(&tag, &e);
                return Step::Continue;
            }
        }
    } else {
        Upload::Raw(message, when)
    };
    if let Some(t) = &s.cx.append_target {
        if t.name == name {
            let (id, validity) = (t.id, t.uidvalidity);
            start(s, io, tag, (id, validity), upload, flags);
            return Step::Continue;
        }
    }
    let uid = user.id;
    let lookup = name.clone();
    s.cx.read(
        io,
        move |r| r.mailbox(uid, &lookup),
        or_no(
            &tag.clone(),
            move |s: &mut ImapSession, io: &mut Io<'_, Done>, found: Option<Mailbox>| {
                match found {
                    Some(mb) => {
                        s.cx.append_target = Some(AppendTarget {
                            name,
                            id: mb.id,
                            uidvalidity: mb.uidvalidity,
                        });
                        start(s, io, tag, (mb.id, mb.uidvalidity), upload, flags);
                    }
                    None => no_such_mailbox(s, &tag),
                }
                Step::Continue
            },
        ),
    );
    Step::Continue
}

/// Seconds since the epoch, now.
fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn no_such_mailbox(s: &mut ImapSession, tag: &str) {
    s.cx.status(
        Some(tag),
        Status::No,
        Some(Code::TryCreate),
        "No such mailbox",
    );
}

/// Queue the insert without making the session wait for it.
fn start(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    tag: String,
    (mailbox, validity): (MailboxId, u32),
    upload: Upload,
    flags: Flags,
) {
    s.cx.busy = match s.cx.busy {
        Busy::Appending(n) => Busy::Appending(n + 1),
        _ => Busy::Appending(1),
    };
    // Our own commit changes what the client must hear about.
    s.cx.pending.store(true, Ordering::SeqCst);
    let c = io.completer();
    // Rerunnable (it only reads its input): on PostgreSQL a batch of
    // APPENDs then runs without a savepoint per APPEND.
    s.cx.shared.store.write_rerunnable(
        move |tx| {
            let a = match &upload {
                Upload::Prepared(p) => tx.append_prepared(mailbox, p, &flags)?,
                Upload::Raw(raw, when) => tx.append(mailbox, raw, &flags, *when)?,
            };
            if a.uidvalidity != validity {
                // Another mailbox now: the error rolls this insert back.
                return Err(StoreError::NotFound("mailbox".into()));
            }
            Ok(a)
        },
        move |r| {
            c.complete(Done::Apply(Box::new(move |s, io| appended(s, io, &tag, r))));
        },
    );
}

/// One APPEND committed (or failed): answer it; the last one in flight
/// also brings the selected mailbox up to date (§6.3.11: the normal new
/// message actions).
fn appended(
    s: &mut ImapSession,
    io: &mut Io<'_, Done>,
    tag: &str,
    r: mailstore::Result<Appended>,
) -> Step {
    let last = match s.cx.busy {
        Busy::Appending(n) if n > 1 => {
            s.cx.busy = Busy::Appending(n - 1);
            false
        }
        _ => {
            s.cx.busy = Busy::Ready;
            true
        }
    };
    match r {
        Ok(a) => {
            let code = Some(Code::AppendUid(a.uidvalidity, a.uid));
            if last {
                return s.finish(io, tag, Status::Ok, code, "APPEND completed", true);
            }
            s.cx.status(Some(tag), Status::Ok, code, "APPEND completed");
        }
        Err(StoreError::NotFound(_)) => {
            // Deleted meanwhile by another session: look it up again next time.
            s.cx.append_target = None;
            no_such_mailbox(s, tag);
        }
        Err(e) => s.cx.store_error(tag, &e),
    }
    Step::Continue
}
