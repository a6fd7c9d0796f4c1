//! Reads on PostgreSQL: what [`crate::Reader`] (and the lookups [`crate::Tx`]
//! shares with it) does on SQLite, in this dialect. Each function mirrors
//! the SQLite method of the same name.

use postgres::fallible_iterator::FallibleIterator;
use postgres::Row;

use crate::error::{Result, StoreError};
use crate::meta::{EnvelopeRef, MessageMeta, MetaParts};
use crate::mime::header::decode_words;
use crate::pg::PgConn;
use crate::query::flags_from;
use crate::quota::Quota;
use crate::reader::{MailboxSummary, SummaryDelta};
use crate::reader_sort::{first, utc_date, FieldSet, MessageFields, SortEnvelope};
use crate::types::{
    Changes, Entry, Flags, Mailbox, MailboxId, MessageId, Status, Uid, User, UserId,
};

const MAILBOX_COLS: &str = "m.id, m.user_id, m.name, m.uidvalidity, m.uidnext, m.highestmodseq, \
     m.special_use, EXISTS(SELECT 1 FROM subscriptions s WHERE s.user_id = m.user_id AND s.name = m.name)";

fn user_row(r: &Row) -> User {
    User {
        id: r.get(0),
        address: r.get(1),
    }
}

fn mailbox_row(r: &Row) -> Mailbox {
    Mailbox {
        id: r.get(0),
        user_id: r.get(1),
        name: r.get(2),
        uidvalidity: r.get::<_, i64>(3) as u32,
        uidnext: r.get::<_, i64>(4) as u32,
        highestmodseq: r.get::<_, i64>(5) as u64,
        special_use: r.get(6),
        subscribed: r.get(7),
    }
}

/// Entry from columns (uid, flags, keywords, modseq) starting at `at`.
pub(crate) fn entry_at(r: &Row, at: usize) -> Entry {
    let kw: String = r.get(at + 2);
    Entry {
        uid: r.get::<_, i64>(at) as u32,
        flags: flags_from(i64::from(r.get::<_, i32>(at + 1)), &kw),
        modseq: r.get::<_, i64>(at + 3) as u64,
    }
}

/// The [`MessageMeta`] of a metadata row (uid, flags, keywords, modseq,
/// size, internal date, two parts, id, save date, thread), without its
/// envelope and structure.
fn meta_at(r: &Row) -> MessageMeta {
    let entry = entry_at(r, 0);
    MessageMeta {
        uid: entry.uid,
        flags: entry.flags,
        modseq: entry.modseq,
        size: r.get::<_, i64>(4) as u64,
        internal_date: r.get(5),
        save_date: r.get(9),
        envelope: Default::default(),
        structure: Default::default(),
        message_id: r.get(8),
        thread_id: r.get(10),
    }
}

fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("stored metadata does not decode: {e}"))
}

/// UIDs as PostgreSQL `bigint[]`.
pub(crate) fn uid_array(uids: &[Uid]) -> Vec<i64> {
    uids.iter().map(|&u| i64::from(u)).collect()
}

impl PgConn {
    pub(crate) fn user(&self, address: &str) -> Result<Option<User>> {
        Ok(self
            .opt(
                "SELECT id, address FROM users WHERE lower(address) = lower($1)",
                &[&address.trim()],
            )?
            .map(|r| user_row(&r)))
    }

    pub(crate) fn user_by_id(&self, id: UserId) -> Result<Option<User>> {
        Ok(self
            .opt("SELECT id, address FROM users WHERE id = $1", &[&id])?
            .map(|r| user_row(&r)))
    }

    pub(crate) fn resolve_recipient(&self, address: &str) -> Result<Option<User>> {
        if let Some(u) = self.user(address)? {
            return Ok(Some(u));
        }
        let Some((local, domain)) = address.trim().rsplit_once('@') else {
            return Ok(None);
        };
        match local.split_once('+') {
            Some((base, _tag)) if !base.is_empty() => self.user(&format!("{base}@{domain}")),
            _ => Ok(None),
        }
    }

    pub(crate) fn users(&self) -> Result<Vec<User>> {
        Ok(self
            .rows("SELECT id, address FROM users ORDER BY lower(address)", &[])?
            .iter()
            .map(user_row)
            .collect())
    }

    pub(crate) fn password_hash(&self, address: &str) -> Result<Option<(User, String)>> {
        Ok(self
            .opt(
                "SELECT id, address, password_hash FROM users WHERE lower(address) = lower($1)",
                &[&address.trim()],
            )?
            .map(|r| (user_row(&r), r.get(2))))
    }

    pub(crate) fn mailboxes(&self, user: UserId) -> Result<Vec<Mailbox>> {
        let sql = format!(
            "SELECT {MAILBOX_COLS} FROM mailboxes m WHERE m.user_id = $1 ORDER BY m.name COLLATE \"C\""
        );
        Ok(self.rows(&sql, &[&user])?.iter().map(mailbox_row).collect())
    }

    pub(crate) fn mailbox(&self, user: UserId, name: &str) -> Result<Option<Mailbox>> {
        let name = if name.eq_ignore_ascii_case("INBOX") {
            "INBOX"
        } else {
            name
        };
        let sql =
            format!("SELECT {MAILBOX_COLS} FROM mailboxes m WHERE m.user_id = $1 AND m.name = $2");
        Ok(self.opt(&sql, &[&user, &name])?.map(|r| mailbox_row(&r)))
    }

    pub(crate) fn mailbox_by_id(&self, id: MailboxId) -> Result<Option<Mailbox>> {
        let sql = format!("SELECT {MAILBOX_COLS} FROM mailboxes m WHERE m.id = $1");
        Ok(self.opt(&sql, &[&id])?.map(|r| mailbox_row(&r)))
    }

    pub(crate) fn subscriptions(&self, user: UserId) -> Result<Vec<String>> {
        Ok(self
            .rows(
                "SELECT name FROM subscriptions WHERE user_id = $1 ORDER BY name COLLATE \"C\"",
                &[&user],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    pub(crate) fn status(&self, mailbox: MailboxId) -> Result<Status> {
        let mb = self
            .mailbox_by_id(mailbox)?
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox}")))?;
        let seen = i32::from(Flags::SEEN);
        let r = self.one(
            "SELECT count(*), count(*) FILTER (WHERE (flags & $2) = 0) FROM entries WHERE mailbox_id = $1",
            &[&mailbox, &seen],
        )?;
        Ok(Status {
            messages: r.get::<_, i64>(0) as u32,
            unseen: r.get::<_, i64>(1) as u32,
            uidnext: mb.uidnext,
            uidvalidity: mb.uidvalidity,
            highestmodseq: mb.highestmodseq,
        })
    }

    pub(crate) fn mailbox_size(&self, mailbox: MailboxId) -> Result<u64> {
        let n: i64 = self
            .one(
                "SELECT coalesce(sum(m.size), 0)::BIGINT FROM entries e
                 JOIN messages m ON m.id = e.message_id WHERE e.mailbox_id = $1",
                &[&mailbox],
            )?
            .get(0);
        Ok(n.max(0) as u64)
    }

    pub(crate) fn deleted_size(&self, mailbox: MailboxId) -> Result<u64> {
        let deleted = i32::from(Flags::DELETED);
        let n: i64 = self
            .one(
                "SELECT coalesce(sum(m.size), 0)::BIGINT FROM entries e
                 JOIN messages m ON m.id = e.message_id
                 WHERE e.mailbox_id = $1 AND (e.flags & $2) != 0",
                &[&mailbox, &deleted],
            )?
            .get(0);
        Ok(n.max(0) as u64)
    }

    pub(crate) fn entries(&self, mailbox: MailboxId) -> Result<Vec<Entry>> {
        Ok(self
            .rows(
                "SELECT uid, flags, keywords, modseq FROM entries WHERE mailbox_id = $1 ORDER BY uid",
                &[&mailbox],
            )?
            .iter()
            .map(|r| entry_at(r, 0))
            .collect())
    }

    pub(crate) fn mailbox_summary(&self, mailbox: MailboxId) -> Result<MailboxSummary> {
        let rows = self.rows(
            "SELECT uid, flags, keywords FROM entries WHERE mailbox_id = $1 ORDER BY uid",
            &[&mailbox],
        )?;
        let mut out = MailboxSummary::default();
        for r in &rows {
            out.uids.push(r.get::<_, i64>(0) as Uid);
            if out.first_unseen.is_none() && r.get::<_, i32>(1) & i32::from(Flags::SEEN) == 0 {
                out.first_unseen = Some(out.uids.len() as u32);
            }
            let kw: &str = r.get(2);
            for k in kw.split(' ').filter(|k| !k.is_empty()) {
                if !out.keywords.iter().any(|x| x.eq_ignore_ascii_case(k)) {
                    out.keywords.push(k.to_owned());
                }
            }
        }
        Ok(out)
    }

    pub(crate) fn stored_messages(&self) -> Result<u64> {
        let n: i64 = self.one("SELECT count(*) FROM messages", &[])?.get(0);
        Ok(n as u64)
    }

    pub(crate) fn data_version(&self) -> Result<i64> {
        Ok(self
            .one("SELECT value FROM meta WHERE key = 'commit_counter'", &[])?
            .get(0))
    }

    pub(crate) fn messages_with(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        parts: MetaParts,
    ) -> Result<Vec<MessageMeta>> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let list = uid_array(uids);
        let rows = self.rows(
            "SELECT e.uid, e.flags, e.keywords, e.modseq, m.size, m.internal_date,
                    CASE WHEN $3 THEN m.envelope END, CASE WHEN $4 THEN m.structure END,
                    m.id, e.saved, coalesce(m.thread_id, m.id)
             FROM entries e JOIN messages m ON m.id = e.message_id
             WHERE e.mailbox_id = $1 AND e.uid = ANY($2)
             ORDER BY e.uid",
            &[&mailbox, &list, &parts.envelope, &parts.structure],
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut meta = meta_at(r);
            if let Some(j) = r.get::<_, Option<&str>>(6) {
                meta.envelope = serde_json::from_str(j).map_err(json_err)?;
            }
            if let Some(j) = r.get::<_, Option<&str>>(7) {
                meta.structure = serde_json::from_str(j).map_err(json_err)?;
            }
            out.push(meta);
        }
        Ok(out)
    }

    /// `Reader::each_message`: each message's metadata with its envelope
    /// borrowed from the row, from its binary form (schema v20, written
    /// by every delivery since) or, for a row that has none, its JSON. A
    /// run of UIDs (a FETCH 1:*) is one range scan of the entries' key,
    /// the rows of UIDs not asked for skipped; else the UIDs as a list.
    pub(crate) fn each_message(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        f: &mut dyn FnMut(&MessageMeta, &EnvelopeRef<'_>) -> Result<()>,
    ) -> Result<()> {
        const COLUMNS: &str =
            "SELECT e.uid, e.flags, e.keywords, e.modseq, m.size, m.internal_date,
                    m.envelope_bin, CASE WHEN m.envelope_bin IS NULL THEN m.envelope END,
                    m.id, e.saved, coalesce(m.thread_id, m.id)
             FROM entries e JOIN messages m ON m.id = e.message_id";
        let (Some(&lo), Some(&hi)) = (uids.first(), uids.last()) else {
            return Ok(());
        };
        let dense =
            uids.windows(2).all(|w| w[0] < w[1]) && u64::from(hi - lo) < 2 * uids.len() as u64;
        let (lo, hi, list) = (i64::from(lo), i64::from(hi), uid_array(uids));
        let (sql, params): (String, Vec<&(dyn postgres::types::ToSql + Sync)>) = if dense {
            (
                format!(
                    "{COLUMNS} WHERE e.mailbox_id = $1 AND e.uid BETWEEN $2 AND $3 ORDER BY e.uid"
                ),
                vec![&mailbox, &lo, &hi],
            )
        } else {
            (
                format!("{COLUMNS} WHERE e.mailbox_id = $1 AND e.uid = ANY($2) ORDER BY e.uid"),
                vec![&mailbox, &list],
            )
        };
        // Streamed: each row handed on as it arrives, so the server's
        // work and the response's encoding overlap (`rows` would wait for
        // the last row first).
        let mut c = self.c()?;
        let st = self.prep(&mut c, &sql)?;
        let mut it = match c.query_raw(&st, params.iter().copied()) {
            Ok(it) => it,
            Err(e) => {
                self.saw(&e);
                return Err(e.into());
            }
        };
        loop {
            let r = match it.next() {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(e) => {
                    self.saw(&e);
                    return Err(e.into());
                }
            };
            let r = &r;
            let meta = meta_at(r);
            if dense && uids.binary_search(&meta.uid).is_err() {
                continue;
            }
            let envelope: EnvelopeRef<'_> = match r.get::<_, Option<&[u8]>>(6) {
                Some(b) => crate::envelope_bin::decode(b)?,
                None => serde_json::from_str(r.get::<_, Option<&str>>(7).unwrap_or("{}"))
                    .map_err(json_err)?,
            };
            f(&meta, &envelope)?;
        }
        Ok(())
    }

    fn message_of(&self, mailbox: MailboxId, uid: Uid) -> Result<MessageId> {
        self.opt(
            "SELECT message_id FROM entries WHERE mailbox_id = $1 AND uid = $2",
            &[&mailbox, &i64::from(uid)],
        )?
        .map(|r| r.get(0))
        .ok_or_else(|| StoreError::NotFound(format!("message uid {uid} in mailbox {mailbox}")))
    }

    pub(crate) fn raw_range(
        &self,
        mailbox: MailboxId,
        uid: Uid,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>> {
        let id = self.message_of(mailbox, uid)?;
        // substring() counts from 1 and takes int4 positions.
        let from = i32::try_from(offset.saturating_add(1)).unwrap_or(i32::MAX);
        let n = i32::try_from(len).unwrap_or(i32::MAX);
        let r = self.one(
            "SELECT substring(raw FROM $2 FOR $3) FROM message_raw WHERE id = $1",
            &[&id, &from, &n],
        )?;
        Ok(r.get(0))
    }

    /// `len` bytes from `offset` of stored message `message` (fewer at its
    /// end; none past it), for `RawReader::read_into`.
    pub(crate) fn message_range(
        &self,
        message: MessageId,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>> {
        let from = i32::try_from(offset.saturating_add(1)).unwrap_or(i32::MAX);
        let n = i32::try_from(len).unwrap_or(i32::MAX);
        let r = self
            .opt(
                "SELECT substring(raw FROM $2 FOR $3) FROM message_raw WHERE id = $1",
                &[&message, &from, &n],
            )?
            .ok_or_else(|| StoreError::NotFound(format!("message {message}")))?;
        Ok(r.get(0))
    }

    pub(crate) fn raw_len(&self, mailbox: MailboxId, uid: Uid) -> Result<u64> {
        let id = self.message_of(mailbox, uid)?;
        let n: i64 = self
            .one("SELECT size FROM messages WHERE id = $1", &[&id])?
            .get(0);
        Ok(n as u64)
    }

    pub(crate) fn tombstone_floor(&self, mailbox: MailboxId) -> Result<u64> {
        let f: Option<i64> = self
            .opt(
                "SELECT tombstone_floor FROM mailboxes WHERE id = $1",
                &[&mailbox],
            )?
            .map(|r| r.get(0));
        Ok(f.unwrap_or(0).max(0) as u64)
    }

    pub(crate) fn tombstones(&self, mailbox: MailboxId) -> Result<u64> {
        let n: i64 = self
            .one(
                "SELECT count(*) FROM expunged WHERE mailbox_id = $1",
                &[&mailbox],
            )?
            .get(0);
        Ok(n as u64)
    }

    pub(crate) fn uids(&self, mailbox: MailboxId) -> Result<Vec<Uid>> {
        Ok(self
            .rows(
                "SELECT uid FROM entries WHERE mailbox_id = $1 ORDER BY uid",
                &[&mailbox],
            )?
            .iter()
            .map(|r| r.get::<_, i64>(0) as Uid)
            .collect())
    }

    pub(crate) fn changes_since(&self, mailbox: MailboxId, modseq: u64) -> Result<Changes> {
        let mb = self
            .mailbox_by_id(mailbox)?
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox}")))?;
        let since = modseq.min(i64::MAX as u64) as i64;
        let changed = self
            .rows(
                "SELECT uid, flags, keywords, modseq FROM entries
                 WHERE mailbox_id = $1 AND modseq > $2 ORDER BY uid",
                &[&mailbox, &since],
            )?
            .iter()
            .map(|r| entry_at(r, 0))
            .collect();
        let expunged = self
            .rows(
                "SELECT uid FROM expunged WHERE mailbox_id = $1 AND modseq > $2 ORDER BY uid",
                &[&mailbox, &since],
            )?
            .iter()
            .map(|r| r.get::<_, i64>(0) as Uid)
            .collect();
        let floor = self.tombstone_floor(mailbox)?;
        Ok(Changes {
            changed,
            expunged,
            expunged_complete: modseq >= floor,
            highestmodseq: mb.highestmodseq,
        })
    }

    /// `reader.rs`'s `first_unseen_from`: a primary-key scan in UID order
    /// that stops at the first entry without `\Seen`.
    pub(crate) fn first_unseen_from(&self, mailbox: MailboxId, from: Uid) -> Result<Option<Uid>> {
        Ok(self
            .opt(
                "SELECT uid FROM entries WHERE mailbox_id = $1 AND uid >= $2
                 AND flags & $3 = 0 ORDER BY uid LIMIT 1",
                &[&mailbox, &i64::from(from), &i32::from(Flags::SEEN)],
            )?
            .map(|r| r.get::<_, i64>(0) as Uid))
    }

    /// `reader.rs`'s `keyword_in_use`: a scan that stops at the first
    /// entry carrying `keyword` (ASCII case-insensitively).
    pub(crate) fn keyword_in_use(&self, mailbox: MailboxId, keyword: &str) -> Result<bool> {
        let needle = format!(" {} ", keyword.to_ascii_lowercase());
        Ok(self
            .opt(
                "SELECT 1 FROM entries WHERE mailbox_id = $1 AND keywords <> ''
                 AND strpos(' ' || lower(keywords) || ' ', $2) > 0 LIMIT 1",
                &[&mailbox, &needle],
            )?
            .is_some())
    }

    /// `reader.rs`'s `summary_since`: the entries changed and the UIDs
    /// expunged after `modseq`, both range scans of the `(mailbox_id,
    /// modseq)` indexes; `None` when some expunges after `modseq` were
    /// forgotten or more than `max` rows changed or went.
    pub(crate) fn summary_since(
        &self,
        mailbox: MailboxId,
        modseq: u64,
        max: usize,
    ) -> Result<Option<SummaryDelta>> {
        if self.tombstone_floor(mailbox)? > modseq {
            return Ok(None);
        }
        let since = modseq.min(i64::MAX as u64) as i64;
        let limit = max.min(i64::MAX as usize - 1) as i64 + 1;
        let mut out = SummaryDelta::default();
        for r in self.rows(
            "SELECT uid, flags, keywords FROM entries
             WHERE mailbox_id = $1 AND modseq > $2 LIMIT $3",
            &[&mailbox, &since, &limit],
        )? {
            let seen = i64::from(r.get::<_, i32>(1)) & i64::from(Flags::SEEN) != 0;
            out.changed
                .push((r.get::<_, i64>(0) as Uid, seen, r.get::<_, String>(2)));
        }
        if out.changed.len() > max {
            return Ok(None);
        }
        out.changed.sort_unstable_by_key(|c| c.0);
        let left = (max - out.changed.len()) as i64 + 1;
        for r in self.rows(
            "SELECT uid FROM expunged WHERE mailbox_id = $1 AND modseq > $2 LIMIT $3",
            &[&mailbox, &since, &left],
        )? {
            out.expunged.push(r.get::<_, i64>(0) as Uid);
        }
        if out.changed.len() + out.expunged.len() > max {
            return Ok(None);
        }
        out.expunged.sort_unstable();
        out.expunged.dedup();
        Ok(Some(out))
    }

    /// `quota.rs`'s `quota`: limits and the usage the triggers keep.
    pub(crate) fn quota(&self, user: UserId) -> Result<Quota> {
        let r = self
            .opt(
                "SELECT quota_storage, quota_messages, used_storage, used_messages FROM users WHERE id = $1",
                &[&user],
            )?
            .ok_or_else(|| StoreError::NotFound(format!("user {user}")))?;
        Ok(Quota {
            storage_limit: r.get::<_, Option<i64>>(0).map(|n| n.max(0) as u64),
            message_limit: r.get::<_, Option<i64>>(1).map(|n| n.max(0) as u64),
            storage_used: r.get::<_, i64>(2).max(0) as u64,
            messages_used: r.get::<_, i64>(3).max(0) as u64,
        })
    }

    /// Set (or with `None` clear) a user's limits (writer only).
    pub(crate) fn set_quota(
        &self,
        user: UserId,
        storage: Option<u64>,
        messages: Option<u64>,
    ) -> Result<()> {
        let clamp = |v: Option<u64>| v.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        self.limits_change(user);
        let n = self.exec(
            "UPDATE users SET quota_storage = $2, quota_messages = $3 WHERE id = $1",
            &[&user, &clamp(storage), &clamp(messages)],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("user {user}")));
        }
        Ok(())
    }

    /// The owner of a mailbox.
    pub(crate) fn owner(&self, mailbox: MailboxId) -> Result<UserId> {
        self.opt("SELECT user_id FROM mailboxes WHERE id = $1", &[&mailbox])?
            .map(|r| r.get(0))
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox}")))
    }
}

impl PgConn {
    /// `reader_sort.rs`'s `message_fields`: what SORT and THREAD read.
    pub(crate) fn message_fields(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        want: FieldSet,
    ) -> Result<Vec<MessageFields>> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let envelope = want.sent_date || want.subject || want.addresses || want.thread;
        let rows = self.rows(
            "SELECT e.uid, m.size, m.internal_date,
                    CASE WHEN $3 THEN m.envelope END,
                    CASE WHEN $4 THEN (SELECT h.value FROM message_headers h
                         WHERE h.message_id = m.id AND h.name = 'references' LIMIT 1) END
             FROM entries e JOIN messages m ON m.id = e.message_id
             WHERE e.mailbox_id = $1 AND e.uid = ANY($2) ORDER BY e.uid",
            &[&mailbox, &uid_array(uids), &envelope, &want.thread],
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut f = MessageFields {
                uid: r.get::<_, i64>(0) as Uid,
                size: r.get::<_, i64>(1) as u64,
                internal_date: r.get(2),
                ..MessageFields::default()
            };
            if let Some(json) = r.get::<_, Option<&str>>(3) {
                let env: SortEnvelope = serde_json::from_str(json).map_err(|e| {
                    StoreError::Corrupt(format!("stored envelope does not decode: {e}"))
                })?;
                if want.sent_date {
                    f.sent_date = env.date.as_deref().and_then(utc_date);
                }
                if want.subject {
                    f.subject = env.subject.as_deref().map(decode_words);
                }
                if want.addresses {
                    f.from = first(&env.from);
                    f.to = first(&env.to);
                    f.cc = first(&env.cc);
                }
                if want.thread {
                    f.message_id = env.message_id;
                    f.in_reply_to = env.in_reply_to;
                    f.references = r.get(4);
                }
            }
            out.push(f);
        }
        Ok(out)
    }

    /// The mailbox's URLAUTH key (`keys.rs`), if it has one.
    pub(crate) fn mailbox_key(&self, mailbox: MailboxId) -> Result<Option<Vec<u8>>> {
        Ok(self
            .opt(
                "SELECT key FROM mailbox_keys WHERE mailbox_id = $1",
                &[&mailbox],
            )?
            .map(|r| r.get(0)))
    }

    /// The mailbox's key, made now (random) if it has none (writer only).
    pub(crate) fn make_mailbox_key(&self, mailbox: MailboxId) -> Result<Vec<u8>> {
        if let Some(k) = self.mailbox_key(mailbox)? {
            return Ok(k);
        }
        let key: [u8; crate::keys::MAILBOX_KEY_LEN] = rand::random();
        match self.guarded(
            "INSERT INTO mailbox_keys(mailbox_id, key) VALUES ($1, $2)",
            &[&mailbox, &key.to_vec()],
        )? {
            Ok(_) => Ok(key.to_vec()),
            Err(e) if super::is_fk_violation(&e) => {
                Err(StoreError::NotFound(format!("mailbox {mailbox}")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Forget the key of the user's mailbox `name`, or of all theirs.
    pub(crate) fn reset_mailbox_keys(&self, user: UserId, name: Option<&str>) -> Result<bool> {
        match name {
            Some(name) => {
                let Some(mb) = self.mailbox(user, name)? else {
                    return Ok(false);
                };
                self.exec("DELETE FROM mailbox_keys WHERE mailbox_id = $1", &[&mb.id])?;
            }
            None => {
                self.exec(
                    "DELETE FROM mailbox_keys
                     WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE user_id = $1)",
                    &[&user],
                )?;
            }
        }
        Ok(true)
    }
}

impl PgConn {
    /// `dkim.rs`'s `add_dkim_key` (writer only).
    pub(crate) fn add_dkim_key(&self, key: &crate::DkimKey) -> Result<bool> {
        let added = self.exec(
            "INSERT INTO dkim_keys(domain, selector, algorithm, private_key, public_key, created, active)
             VALUES ($1, $2, $3, $4, $5, $6, 0) ON CONFLICT DO NOTHING",
            &[
                &key.domain,
                &key.selector,
                &key.algorithm,
                &key.private_key,
                &key.public_key,
                &key.created,
            ],
        )?;
        if added == 0 {
            return Ok(false);
        }
        self.exec(
            "UPDATE dkim_keys SET active = (lower(selector) = lower($2))::int
             WHERE lower(domain) = lower($1)",
            &[&key.domain, &key.selector],
        )?;
        Ok(true)
    }

    /// `dkim.rs`'s `dkim_keys`.
    pub(crate) fn dkim_keys(&self, domain: Option<&str>) -> Result<Vec<crate::DkimKey>> {
        Ok(self
            .rows(
                "SELECT domain, selector, algorithm, private_key, public_key, created, active
                 FROM dkim_keys WHERE $1::text IS NULL OR lower(domain) = lower($1)
                 ORDER BY lower(domain), active DESC, created DESC, selector",
                &[&domain],
            )?
            .iter()
            .map(|r| crate::DkimKey {
                domain: r.get(0),
                selector: r.get(1),
                algorithm: r.get(2),
                private_key: r.get(3),
                public_key: r.get(4),
                created: r.get(5),
                active: r.get::<_, i64>(6) != 0,
            })
            .collect())
    }
}
