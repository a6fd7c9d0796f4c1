//! Row-level lookups shared by `Reader` and `Tx`: users, mailboxes, entries.
//! Plain functions over a connection, so both sides use the same SQL.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::error::Result;
use crate::types::{Entry, Flags, Mailbox, MailboxId, User, UserId};

/// Whether an error is a UNIQUE / PRIMARY KEY violation.
pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

fn user_row(r: &Row) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        address: r.get(1)?,
    })
}

/// User by address, ASCII case-insensitive.
/// [`crate::Reader::resolve_recipient`], on any connection.
pub(crate) fn resolve_recipient(conn: &Connection, address: &str) -> Result<Option<User>> {
    if let Some(u) = user(conn, address)? {
        return Ok(Some(u));
    }
    let Some((local, domain)) = address.trim().rsplit_once('@') else {
        return Ok(None);
    };
    match local.split_once('+') {
        Some((base, _tag)) if !base.is_empty() => user(conn, &format!("{base}@{domain}")),
        _ => Ok(None),
    }
}

pub(crate) fn user(conn: &Connection, address: &str) -> Result<Option<User>> {
    Ok(conn
        .prepare_cached("SELECT id, address FROM users WHERE address = ?1")?
        .query_row([address.trim()], user_row)
        .optional()?)
}

/// User by id.
pub(crate) fn user_by_id(conn: &Connection, id: UserId) -> Result<Option<User>> {
    Ok(conn
        .prepare_cached("SELECT id, address FROM users WHERE id = ?1")?
        .query_row([id], user_row)
        .optional()?)
}

/// All users by address.
pub(crate) fn users(conn: &Connection) -> Result<Vec<User>> {
    let mut st = conn.prepare_cached("SELECT id, address FROM users ORDER BY address")?;
    let rows = st.query_map([], user_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// User and password hash.
pub(crate) fn password_hash(conn: &Connection, address: &str) -> Result<Option<(User, String)>> {
    Ok(conn
        .prepare_cached("SELECT id, address, password_hash FROM users WHERE address = ?1")?
        .query_row([address.trim()], |r| Ok((user_row(r)?, r.get(2)?)))
        .optional()?)
}

const MAILBOX_COLS: &str = "m.id, m.user_id, m.name, m.uidvalidity, m.uidnext, m.highestmodseq, \
     m.special_use, EXISTS(SELECT 1 FROM subscriptions s WHERE s.user_id = m.user_id AND s.name = m.name)";

fn mailbox_row(r: &Row) -> rusqlite::Result<Mailbox> {
    Ok(Mailbox {
        id: r.get(0)?,
        user_id: r.get(1)?,
        name: r.get(2)?,
        uidvalidity: r.get::<_, i64>(3)? as u32,
        uidnext: r.get::<_, i64>(4)? as u32,
        highestmodseq: r.get::<_, i64>(5)? as u64,
        special_use: r.get(6)?,
        subscribed: r.get(7)?,
    })
}

/// All mailboxes of a user, by name.
pub(crate) fn mailboxes(conn: &Connection, user: UserId) -> Result<Vec<Mailbox>> {
    let sql =
        format!("SELECT {MAILBOX_COLS} FROM mailboxes m WHERE m.user_id = ?1 ORDER BY m.name");
    let mut st = conn.prepare_cached(&sql)?;
    let rows = st.query_map([user], mailbox_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Mailbox by name; `INBOX` in any case.
pub(crate) fn mailbox(conn: &Connection, user: UserId, name: &str) -> Result<Option<Mailbox>> {
    let name = if name.eq_ignore_ascii_case("INBOX") {
        "INBOX"
    } else {
        name
    };
    let sql =
        format!("SELECT {MAILBOX_COLS} FROM mailboxes m WHERE m.user_id = ?1 AND m.name = ?2");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![user, name], mailbox_row)
        .optional()?)
}

/// Mailbox by id.
pub(crate) fn mailbox_by_id(conn: &Connection, id: MailboxId) -> Result<Option<Mailbox>> {
    let sql = format!("SELECT {MAILBOX_COLS} FROM mailboxes m WHERE m.id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id], mailbox_row)
        .optional()?)
}

/// Decode stored flags.
pub(crate) fn flags_from(system: i64, keywords: &str) -> Flags {
    Flags {
        system: (system as u8) & Flags::ALL_SYSTEM,
        keywords: keywords
            .split(' ')
            .filter(|k| !k.is_empty())
            .map(str::to_string)
            .collect(),
    }
}

/// Entry from columns (uid, flags, keywords, modseq) starting at `at`.
pub(crate) fn entry_at(r: &Row, at: usize) -> rusqlite::Result<Entry> {
    let kw: String = r.get(at + 2)?;
    Ok(Entry {
        uid: r.get::<_, i64>(at)? as u32,
        flags: flags_from(r.get(at + 1)?, &kw),
        modseq: r.get::<_, i64>(at + 3)? as u64,
    })
}

/// All entries of a mailbox by uid.
pub(crate) fn entries(conn: &Connection, mailbox: MailboxId) -> Result<Vec<Entry>> {
    let mut st = conn.prepare_cached(
        "SELECT uid, flags, keywords, modseq FROM entries WHERE mailbox_id = ?1 ORDER BY uid",
    )?;
    let rows = st.query_map([mailbox], |r| entry_at(r, 0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
