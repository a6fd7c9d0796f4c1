//! `Reader`: read-only queries on a connection of its own (a reader thread's
//! or the blocking one). This file: users, recipients, authentication,
//! mailboxes, subscriptions, STATUS counts (RFC 3501 §6.3.10), entries.
//! Message metadata, raw bytes and changes live in `reader_msgs.rs`,
//! SEARCH in `search/`.

use rusqlite::{Connection, OptionalExtension};

use crate::error::Result;
use crate::password::verify_password;
use crate::query;
use crate::types::{Entry, Flags, Mailbox, MailboxId, Status, Uid, User, UserId};
use crate::writer::run_cached;

/// See [`Reader::summary_since`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SummaryDelta {
    /// Entries added or changed after the modseq, UID ascending: the UID,
    /// whether it has `\Seen`, its keywords as stored (space-separated).
    pub changed: Vec<(Uid, bool, String)>,
    /// UIDs expunged after the modseq, ascending.
    pub expunged: Vec<Uid>,
}

/// Read access; every job sees one consistent snapshot.
pub struct Reader {
    conn: Connection,
    /// Set on the PostgreSQL backend (then `conn` is an empty in-memory
    /// SQLite database): every method dispatches to `pg/reader.rs`.
    pg: Option<crate::pg::PgConn>,
    /// The store's header cache (header SEARCH, `search/cache.rs`); none
    /// on PostgreSQL and on readers of their own (tests).
    headers: Option<std::sync::Arc<crate::search::HeaderCache>>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reader")
    }
}

/// See [`Reader::mailbox_summary`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailboxSummary {
    /// UIDs ascending (sequence number = index + 1).
    pub uids: Vec<Uid>,
    /// Sequence number of the first message without `\Seen`.
    pub first_unseen: Option<u32>,
    /// Keywords in use.
    pub keywords: Vec<String>,
}

impl Reader {
    /// Wrap a connection; it is made read-only (`query_only`) so a reader
    /// can never write behind the writer thread's back. Its page cache is
    /// kept smaller than the writer's: every reader has its own, the
    /// kernel's page cache holds the file anyway, and a long-running server
    /// should not keep tens of MiB per thread after one big FETCH.
    ///
    /// The file is read with `pread`, not through a memory map: a map
    /// made a bulk body FETCH ~25% cheaper in CPU (issue 21), but every
    /// mapped page counts in the process's RSS (VmRSS grew from 66 to
    /// 490 MiB over one FETCH of a 100,000-message mailbox, where the
    /// issue asks for it to stay flat), and an I/O error or a file cut
    /// short under a map is a SIGBUS that kills every session instead of
    /// an error the store reports and degrades on.
    pub(crate) fn new(conn: Connection) -> Result<Reader> {
        conn.execute_batch("PRAGMA query_only = 1; PRAGMA cache_size = -8192;")?;
        Ok(Reader {
            conn,
            pg: None,
            headers: None,
        })
    }

    /// A reader on PostgreSQL.
    pub(crate) fn new_pg(pg: crate::pg::PgConn) -> Result<Reader> {
        Ok(Reader {
            conn: Connection::open_in_memory()?,
            pg: Some(pg),
            headers: None,
        })
    }

    /// The same reader, answering header SEARCH from `cache`.
    pub(crate) fn with_header_cache(
        mut self,
        cache: std::sync::Arc<crate::search::HeaderCache>,
    ) -> Reader {
        self.headers = Some(cache);
        self
    }

    /// The store's header cache, if this reader has it.
    pub(crate) fn header_cache(&self) -> Option<&crate::search::HeaderCache> {
        self.headers.as_deref()
    }

    /// The PostgreSQL connection, on that backend.
    pub(crate) fn pg(&self) -> Option<&crate::pg::PgConn> {
        self.pg.as_ref()
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Run `f` inside one read transaction.
    pub(crate) fn snapshot<T>(&self, f: impl FnOnce(&Reader) -> Result<T>) -> Result<T> {
        if let Some(pg) = &self.pg {
            return pg.snapshot(|| f(self));
        }
        // Cached statements: `execute_batch` compiled BEGIN and COMMIT
        // again for every read job.
        run_cached(&self.conn, "BEGIN")?;
        let res = f(self);
        if let Err(e) = run_cached(&self.conn, "COMMIT") {
            let _ = self.conn.execute_batch("ROLLBACK");
            if res.is_ok() {
                return Err(e.into());
            }
        }
        res
    }

    /// User by address (ASCII case-insensitive).
    ///
    /// # Errors
    /// Only database errors.
    pub fn user(&self, address: &str) -> Result<Option<User>> {
        if let Some(pg) = &self.pg {
            return pg.user(address);
        }
        query::user(&self.conn, address)
    }

    /// User by id.
    ///
    /// # Errors
    /// Only database errors.
    pub fn user_by_id(&self, id: UserId) -> Result<Option<User>> {
        if let Some(pg) = &self.pg {
            return pg.user_by_id(id);
        }
        query::user_by_id(&self.conn, id)
    }

    /// The user mail to `address` goes to: exact (case-insensitive) match,
    /// else with a `+tag` suffix of the local part removed
    /// (`bob+lists@x` -> `bob@x`).
    ///
    /// # Errors
    /// Only database errors.
    pub fn resolve_recipient(&self, address: &str) -> Result<Option<User>> {
        if let Some(pg) = &self.pg {
            return pg.resolve_recipient(address);
        }
        query::resolve_recipient(&self.conn, address)
    }

    /// All users, by address.
    ///
    /// # Errors
    /// Only database errors.
    pub fn users(&self) -> Result<Vec<User>> {
        if let Some(pg) = &self.pg {
            return pg.users();
        }
        query::users(&self.conn)
    }

    /// A user and their PHC password hash.
    ///
    /// # Errors
    /// Only database errors.
    pub fn password_hash(&self, address: &str) -> Result<Option<(User, String)>> {
        if let Some(pg) = &self.pg {
            return pg.password_hash(address);
        }
        query::password_hash(&self.conn, address)
    }

    /// The user if `password` matches (argon2 verify: slow, by design).
    ///
    /// # Errors
    /// Only database errors; a wrong password or unknown user is `Ok(None)`.
    pub fn authenticate(&self, address: &str, password: &str) -> Result<Option<User>> {
        Ok(match self.password_hash(address)? {
            Some((user, phc)) if verify_password(&phc, password) => Some(user),
            _ => None,
        })
    }

    /// All mailboxes of a user, by name.
    ///
    /// # Errors
    /// Only database errors.
    pub fn mailboxes(&self, user: UserId) -> Result<Vec<Mailbox>> {
        if let Some(pg) = &self.pg {
            return pg.mailboxes(user);
        }
        query::mailboxes(&self.conn, user)
    }

    /// Mailbox by name (`INBOX` matched in any case).
    ///
    /// # Errors
    /// Only database errors.
    pub fn mailbox(&self, user: UserId, name: &str) -> Result<Option<Mailbox>> {
        if let Some(pg) = &self.pg {
            return pg.mailbox(user, name);
        }
        query::mailbox(&self.conn, user, name)
    }

    /// Mailbox by id.
    ///
    /// # Errors
    /// Only database errors.
    pub fn mailbox_by_id(&self, id: MailboxId) -> Result<Option<Mailbox>> {
        if let Some(pg) = &self.pg {
            return pg.mailbox_by_id(id);
        }
        query::mailbox_by_id(&self.conn, id)
    }

    /// Subscribed names (existing or not), sorted.
    ///
    /// # Errors
    /// Only database errors.
    pub fn subscriptions(&self, user: UserId) -> Result<Vec<String>> {
        if let Some(pg) = &self.pg {
            return pg.subscriptions(user);
        }
        let mut st = self
            .conn
            .prepare_cached("SELECT name FROM subscriptions WHERE user_id = ?1 ORDER BY name")?;
        let rows = st.query_map([user], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Message and unseen counts plus the mailbox's UID/modseq counters.
    ///
    /// # Errors
    /// [`crate::StoreError::NotFound`] for an unknown mailbox.
    pub fn status(&self, mailbox: MailboxId) -> Result<Status> {
        if let Some(pg) = &self.pg {
            return pg.status(mailbox);
        }
        let mb = query::mailbox_by_id(&self.conn, mailbox)?
            .ok_or_else(|| crate::StoreError::NotFound(format!("mailbox {mailbox}")))?;
        let (messages, unseen): (i64, i64) = self
            .conn
            .prepare_cached(
                "SELECT count(*), coalesce(sum((flags & ?2) = 0), 0) FROM entries WHERE mailbox_id = ?1",
            )?
            .query_row(rusqlite::params![mailbox, Flags::SEEN], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        Ok(Status {
            messages: messages as u32,
            unseen: unseen as u32,
            uidnext: mb.uidnext,
            uidvalidity: mb.uidvalidity,
            highestmodseq: mb.highestmodseq,
        })
    }

    /// Total size in octets of the mailbox's messages (RFC 8438 STATUS
    /// SIZE): each entry counts its message's full size, so a message
    /// stored once but held by two mailboxes counts in both. Read only
    /// when asked for: it visits every message row of the mailbox.
    ///
    /// # Errors
    /// Only database errors (an unknown mailbox is empty).
    pub fn mailbox_size(&self, mailbox: MailboxId) -> Result<u64> {
        if let Some(pg) = &self.pg {
            return pg.mailbox_size(mailbox);
        }
        let n: i64 = self
            .conn
            .prepare_cached(
                "SELECT coalesce(sum(m.size), 0) FROM entries e
                 JOIN messages m ON m.id = e.message_id WHERE e.mailbox_id = ?1",
            )?
            .query_row([mailbox], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }

    /// All entries (uid, flags, modseq) by uid; one indexed range scan.
    ///
    /// # Errors
    /// Only database errors (an unknown mailbox has no entries).
    pub fn entries(&self, mailbox: MailboxId) -> Result<Vec<Entry>> {
        if let Some(pg) = &self.pg {
            return pg.entries(mailbox);
        }
        query::entries(&self.conn, mailbox)
    }

    /// What opening a mailbox needs from its entries, in one pass and
    /// without building an [`Entry`] per message: the UIDs ascending, the
    /// 1-based position of the first entry without `\Seen`, and the
    /// keywords in use (first spelling seen, compared case-insensitively).
    ///
    /// # Errors
    /// Only database errors (an unknown mailbox has no entries).
    pub fn mailbox_summary(&self, mailbox: MailboxId) -> Result<MailboxSummary> {
        if let Some(pg) = &self.pg {
            return pg.mailbox_summary(mailbox);
        }
        let mut st = self.conn.prepare_cached(
            "SELECT uid, flags, keywords FROM entries WHERE mailbox_id = ?1 ORDER BY uid",
        )?;
        let mut rows = st.query([mailbox])?;
        let mut out = MailboxSummary::default();
        while let Some(r) = rows.next()? {
            out.uids.push(r.get::<_, i64>(0)? as Uid);
            if out.first_unseen.is_none() && r.get::<_, i64>(1)? & i64::from(Flags::SEEN) == 0 {
                out.first_unseen = Some(out.uids.len() as u32);
            }
            let kw = r.get_ref(2)?;
            let kw = kw.as_str().unwrap_or("");
            for k in kw.split(' ').filter(|k| !k.is_empty()) {
                if !out.keywords.iter().any(|x| x.eq_ignore_ascii_case(k)) {
                    out.keywords.push(k.to_owned());
                }
            }
        }
        Ok(out)
    }

    /// What changed in a mailbox after `modseq`, for bringing a remembered
    /// [`MailboxSummary`] up to date instead of reading every entry again
    /// (issue 21: SELECT of a big mailbox that changed since it was last
    /// selected). `None` when that cannot be answered exactly or cheaply:
    /// the store has forgotten some expunges after `modseq` (see
    /// [`Reader::tombstone_floor`]), more than `max` entries changed or
    /// went (callers then read the whole summary). Both reads are range
    /// scans of the `(mailbox_id, modseq)` indexes, on either backend.
    ///
    /// # Errors
    /// Only database errors.
    pub fn summary_since(
        &self,
        mailbox: MailboxId,
        modseq: u64,
        max: usize,
    ) -> Result<Option<SummaryDelta>> {
        if let Some(pg) = &self.pg {
            return pg.summary_since(mailbox, modseq, max);
        }
        if self.tombstone_floor(mailbox)? > modseq {
            return Ok(None);
        }
        let since = modseq.min(i64::MAX as u64) as i64;
        let mut out = SummaryDelta::default();
        // No `LIMIT ?`: SQLite reads a bound LIMIT as a constant of the
        // plan, so each new binding of it threw the statement away and
        // compiled it again (`sqlite3Reprepare`, on every SELECT); the
        // loops stop once past `max` instead.
        let mut st = self.conn.prepare_cached(
            // No ORDER BY uid: SQLite would then walk every entry of the
            // mailbox by its primary key instead of the modseq range.
            "SELECT uid, flags, keywords FROM entries
             WHERE mailbox_id = ?1 AND modseq > ?2",
        )?;
        let mut rows = st.query(rusqlite::params![mailbox, since])?;
        while let Some(r) = rows.next()? {
            if out.changed.len() > max {
                break;
            }
            let seen = r.get::<_, i64>(1)? & i64::from(Flags::SEEN) != 0;
            let kw = r.get_ref(2)?;
            let kw = kw.as_str().unwrap_or("");
            out.changed
                .push((r.get::<_, i64>(0)? as Uid, seen, kw.to_owned()));
        }
        if out.changed.len() > max {
            return Ok(None);
        }
        out.changed.sort_unstable_by_key(|c| c.0);
        let mut st = self
            .conn
            .prepare_cached("SELECT uid FROM expunged WHERE mailbox_id = ?1 AND modseq > ?2")?;
        let mut rows = st.query(rusqlite::params![mailbox, since])?;
        while let Some(r) = rows.next()? {
            if out.changed.len() + out.expunged.len() > max {
                break;
            }
            out.expunged.push(r.get::<_, i64>(0)? as Uid);
        }
        if out.changed.len() + out.expunged.len() > max {
            return Ok(None);
        }
        out.expunged.sort_unstable();
        out.expunged.dedup();
        Ok(Some(out))
    }

    /// The lowest UID at or above `from` of an entry without `\Seen`: a
    /// scan in UID order that stops at the first one.
    ///
    /// # Errors
    /// Only database errors.
    pub fn first_unseen_from(&self, mailbox: MailboxId, from: Uid) -> Result<Option<Uid>> {
        if let Some(pg) = &self.pg {
            return pg.first_unseen_from(mailbox, from);
        }
        let u: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT uid FROM entries WHERE mailbox_id = ?1 AND uid >= ?2
                 AND flags & ?3 = 0 ORDER BY uid LIMIT 1",
            )?
            .query_row(
                rusqlite::params![mailbox, i64::from(from), i64::from(Flags::SEEN)],
                |r| r.get(0),
            )
            .optional()?;
        Ok(u.map(|u| u as Uid))
    }

    /// Whether any entry of `mailbox` carries `keyword` (compared
    /// case-insensitively, as [`Reader::mailbox_summary`] does): a scan
    /// that stops at the first one.
    ///
    /// # Errors
    /// Only database errors.
    pub fn keyword_in_use(&self, mailbox: MailboxId, keyword: &str) -> Result<bool> {
        if let Some(pg) = &self.pg {
            return pg.keyword_in_use(mailbox, keyword);
        }
        let needle = format!(" {} ", keyword.to_ascii_lowercase());
        let hit: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT 1 FROM entries WHERE mailbox_id = ?1 AND keywords != ''
                 AND instr(' ' || lower(keywords) || ' ', ?2) > 0 LIMIT 1",
            )?
            .query_row(rusqlite::params![mailbox, needle], |r| r.get(0))
            .optional()?;
        Ok(hit.is_some())
    }

    /// Number of stored messages (each counted once however many mailboxes
    /// hold it).
    ///
    /// # Errors
    /// Only database errors.
    pub fn stored_messages(&self) -> Result<u64> {
        if let Some(pg) = &self.pg {
            return pg.stored_messages();
        }
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// A store-wide commit counter, bumped by every write batch of any
    /// process using this file. Poll it to notice another process's writes.
    /// (Unlike `PRAGMA data_version` it is comparable across connections,
    /// which matters because reads run on a pool of connections.)
    ///
    /// # Errors
    /// Only database errors.
    pub fn data_version(&self) -> Result<i64> {
        if let Some(pg) = &self.pg {
            return pg.data_version();
        }
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM meta WHERE key = 'commit_counter'")?
            .query_row([], |r| r.get(0))?)
    }
}
