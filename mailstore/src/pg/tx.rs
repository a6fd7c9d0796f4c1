//! Writes on PostgreSQL: what [`Tx`] does on SQLite (`tx.rs`,
//! `tx_deliver.rs`, `tx_flags.rs`, `tombstones.rs`), in this dialect, run
//! by the writer thread inside its batch transaction (`writer.rs`). UIDs
//! and MODSEQs come from `UPDATE mailboxes ... RETURNING`, which holds
//! the mailbox row's lock until COMMIT: two front ends adding to one
//! mailbox get ascending, never reused UIDs in commit order.

use crate::error::{Result, StoreError};
use crate::pg::deferred::{Deferred, Target};
use crate::pg::reader::{entry_at, uid_array};
use crate::pg::{is_fk_violation, is_unique_violation, PgConn};
use crate::sieve::Filing;
use crate::tombstones::DEFAULT_MAX_TOMBSTONES;
use crate::tx::{encode_keywords, normalize_name, now, Tx, DEFAULT_MAILBOXES};
use crate::tx_deliver::{Meta, PreparedMessage};
use crate::types::{
    Appended, CopyOutcome, Delivered, Entry, FlagOp, Flags, MailboxId, MessageId, StoreOutcome,
    Uid, UserId,
};

fn sorted(uids: &[Uid]) -> Vec<Uid> {
    let mut v = uids.to_vec();
    v.sort_unstable();
    v.dedup();
    v
}

impl Tx<'_> {
    pub(crate) fn pg_create_user(
        &mut self,
        pg: &PgConn,
        address: &str,
        password_hash: &str,
    ) -> Result<UserId> {
        let address = address.trim();
        if address.is_empty() || address.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(StoreError::Invalid(format!("bad address {address:?}")));
        }
        let id: i64 = pg
            .one(
                "UPDATE meta SET value = greatest(value, (SELECT coalesce(max(id), 0) FROM users)) + 1
                 WHERE key = 'last_user_id' RETURNING value",
                &[],
            )?
            .get(0);
        match pg.guarded(
            "INSERT INTO users(id, address, password_hash, created) VALUES ($1, $2, $3, $4)",
            &[&id, &address, &password_hash, &now()],
        )? {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Exists(format!("user {address}")))
            }
            other => other?,
        };
        for (name, special) in DEFAULT_MAILBOXES {
            self.pg_create_mailbox(pg, id, name, *special)?;
            self.pg_set_subscribed(pg, id, name, true)?;
        }
        Ok(id)
    }

    pub(crate) fn pg_delete_user(&mut self, pg: &PgConn, address: &str) -> Result<()> {
        let user = pg
            .user(address)?
            .ok_or_else(|| StoreError::NotFound(format!("user {address}")))?;
        pg.lock_users(&[user.id])?;
        pg.limits_change(user.id);
        for mb in pg.mailboxes(user.id)? {
            self.pg_drop_mailbox_entries(pg, mb.id)?;
            pg.forget_owner(mb.id);
        }
        pg.exec("DELETE FROM users WHERE id = $1", &[&user.id])?;
        self.lists.push(user.id);
        Ok(())
    }

    pub(crate) fn pg_set_password_hash(
        &mut self,
        pg: &PgConn,
        address: &str,
        password_hash: &str,
    ) -> Result<()> {
        let n = pg.exec(
            "UPDATE users SET password_hash = $2 WHERE lower(address) = lower($1)",
            &[&address.trim(), &password_hash],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("user {address}")));
        }
        Ok(())
    }

    pub(crate) fn pg_create_mailbox(
        &mut self,
        pg: &PgConn,
        user: UserId,
        name: &str,
        special_use: Option<&str>,
    ) -> Result<MailboxId> {
        let name = normalize_name(name)?;
        pg.lock_users(&[user])?;
        let uidvalidity = pg.next_uidvalidity(now())? & 0xffff_ffff;
        let inserted = pg.guarded(
            "INSERT INTO mailboxes(user_id, name, uidvalidity, special_use) VALUES ($1, $2, $3, $4)
             RETURNING id",
            &[&user, &name, &uidvalidity, &special_use],
        )?;
        let id: i64 = match inserted {
            Ok(rows) => rows
                .first()
                .map(|r| r.get(0))
                .ok_or_else(|| StoreError::Postgres("INSERT returned no id".into()))?,
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Exists(format!("mailbox {name}")))
            }
            Err(e) if is_fk_violation(&e) => {
                return Err(StoreError::NotFound(format!("user {user}")))
            }
            Err(e) => return Err(e.into()),
        };
        pg.note_owner(id, user);
        self.touched.push(id);
        self.lists.push(user);
        Ok(id)
    }

    pub(crate) fn pg_delete_mailbox(&mut self, pg: &PgConn, id: MailboxId) -> Result<()> {
        let mb = pg
            .mailbox_by_id(id)?
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {id}")))?;
        if mb.name == "INBOX" {
            return Err(StoreError::Invalid("INBOX cannot be deleted".into()));
        }
        pg.lock_users(&[mb.user_id])?;
        self.pg_drop_mailbox_entries(pg, id)?;
        pg.exec("DELETE FROM mailboxes WHERE id = $1", &[&id])?;
        pg.forget_owner(id);
        self.touched.push(id);
        self.lists.push(mb.user_id);
        Ok(())
    }

    fn pg_drop_mailbox_entries(&mut self, pg: &PgConn, id: MailboxId) -> Result<()> {
        let ids: Vec<MessageId> = pg
            .rows(
                "DELETE FROM entries WHERE mailbox_id = $1 RETURNING message_id",
                &[&id],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect();
        self.touched.push(id);
        self.pg_collect_garbage(pg, &ids)
    }

    pub(crate) fn pg_rename_mailbox(
        &mut self,
        pg: &PgConn,
        user: UserId,
        old: &str,
        new: &str,
    ) -> Result<()> {
        let old = normalize_name(old)?;
        let new = normalize_name(new)?;
        if new == "INBOX" {
            return Err(StoreError::Exists("mailbox INBOX".into()));
        }
        pg.lock_users(&[user])?;
        let src = pg
            .mailbox(user, &old)?
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {old}")))?;
        if pg.mailbox(user, &new)?.is_some() {
            return Err(StoreError::Exists(format!("mailbox {new}")));
        }
        if old == "INBOX" {
            let dst = self.pg_create_mailbox(pg, user, &new, None)?;
            let uids = pg.uids(src.id)?;
            self.pg_move_messages(pg, src.id, &uids, dst)?;
            return Ok(());
        }
        if new.starts_with(&format!("{old}/")) {
            return Err(StoreError::Invalid(format!(
                "cannot rename {old} to its own child {new}"
            )));
        }
        let under = "user_id = $1 AND (name = $2 OR left(name, length($2) + 1) = $2 || '/')";
        let affected: Vec<MailboxId> = pg
            .rows(
                &format!("SELECT id FROM mailboxes WHERE {under}"),
                &[&user, &old],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let renamed = pg.guarded(
            &format!(
                "UPDATE mailboxes SET name = $3 || substr(name, length($2) + 1) WHERE {under}"
            ),
            &[&user, &old, &new],
        )?;
        match renamed {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Exists(format!("a child of {new}")))
            }
            Err(e) => return Err(e.into()),
        }
        // Subscriptions follow; one already there under the new name wins
        // (SQLite's UPDATE OR REPLACE).
        pg.exec(
            &format!(
                "DELETE FROM subscriptions WHERE user_id = $1 AND name IN (
                     SELECT $3 || substr(name, length($2) + 1) FROM subscriptions WHERE {under})"
            ),
            &[&user, &old, &new],
        )?;
        pg.exec(
            &format!(
                "UPDATE subscriptions SET name = $3 || substr(name, length($2) + 1) WHERE {under}"
            ),
            &[&user, &old, &new],
        )?;
        self.touched.extend(affected);
        self.lists.push(user);
        Ok(())
    }

    pub(crate) fn pg_set_subscribed(
        &mut self,
        pg: &PgConn,
        user: UserId,
        name: &str,
        subscribed: bool,
    ) -> Result<()> {
        let name = normalize_name(name)?;
        if subscribed {
            pg.exec(
                "INSERT INTO subscriptions(user_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&user, &name],
            )?;
        } else {
            pg.exec(
                "DELETE FROM subscriptions WHERE user_id = $1 AND name = $2",
                &[&user, &name],
            )?;
        }
        if let Some(mb) = pg.mailbox(user, &name)? {
            self.touched.push(mb.id);
        }
        self.lists.push(user);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn pg_deliver_parts(
        &mut self,
        pg: &PgConn,
        raw: &[u8],
        internal_date: i64,
        meta: &Meta,
        recipients: &[UserId],
        mailbox: &str,
        defer: bool,
    ) -> Result<Delivered> {
        let mut users: Vec<UserId> = Vec::with_capacity(recipients.len());
        for r in recipients {
            if !users.contains(r) {
                users.push(*r);
            }
        }
        if users.is_empty() {
            return Err(StoreError::Invalid("no recipients".into()));
        }
        // The owners first, in id order (pg/mod.rs); an unknown user is
        // NotFound before anything is written.
        pg.lock_users(&users)?;
        let name = inbox_cased(mailbox);
        let names = vec![name.to_owned(); users.len()];
        let (message_id, added) = self.pg_insert_message(
            pg,
            raw,
            internal_date,
            meta,
            Some((Into::Named(&users, &names), &Flags::empty())),
            defer,
        )?;
        let mut entries = Vec::with_capacity(users.len());
        for user in users {
            if let Some(a) = added.iter().find(|a| a.0 == user) {
                entries.push((a.1, a.2));
                continue;
            }
            // No such mailbox (or it is out of UIDs): the slow way.
            let target = match pg.mailbox(user, mailbox)? {
                Some(mb) => mb.id,
                None => {
                    if pg.user_by_id(user)?.is_none() {
                        return Err(StoreError::NotFound(format!("user {user}")));
                    }
                    let special = DEFAULT_MAILBOXES
                        .iter()
                        .find(|(name, _)| *name == mailbox)
                        .and_then(|(_, special)| *special);
                    self.pg_create_mailbox(pg, user, mailbox, special)?
                }
            };
            let uid = self.pg_add_entry(pg, target, message_id, &Flags::empty())?;
            entries.push((target, uid));
        }
        Ok(Delivered {
            message_id,
            entries,
        })
    }

    pub(crate) fn pg_append_parts(
        &mut self,
        pg: &PgConn,
        mailbox: MailboxId,
        raw: &[u8],
        internal_date: i64,
        meta: &Meta,
        flags: &Flags,
    ) -> Result<Appended> {
        encode_keywords(flags)?;
        // The owner (remembered after the first time), locked; the
        // UIDVALIDITY comes back with the entry: one round trip per
        // APPEND to a mailbox of a user this batch holds.
        let owner = pg.lock_owner(mailbox)?;
        self.check_quota(owner, raw.len() as u64, 1)?;
        let (message_id, added) = self.pg_insert_message(
            pg,
            raw,
            internal_date,
            meta,
            Some((Into::Id(mailbox), flags)),
            true,
        )?;
        if let Some(a) = added.first() {
            return Ok(Appended {
                uidvalidity: a.4 as u32,
                uid: a.2,
            });
        }
        // Gone meanwhile (NotFound) or out of UIDs: as before.
        let mb = pg
            .mailbox_by_id(mailbox)?
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox}")))?;
        let uid = self.pg_add_entry(pg, mailbox, message_id, flags)?;
        Ok(Appended {
            uidvalidity: mb.uidvalidity,
            uid,
        })
    }

    /// One message row with its raw bytes, headers, search text and
    /// thread, and (with `into`) its entries in the mailboxes that exist,
    /// all in one statement (one round trip). The caller holds the
    /// owners' locks. Returns the message id and the (owner, mailbox,
    /// UID) of each entry made; a mailbox missing or out of UIDs gets
    /// none. With `defer`, in a batch without savepoints, the statement
    /// may be kept to be sent with others (deferred.rs): the entries are
    /// then the ones expected (into mailboxes named: known ones, UID 0;
    /// into one by id: the UID its next one is known to be).
    pub(super) fn pg_insert_message(
        &mut self,
        pg: &PgConn,
        raw: &[u8],
        internal_date: i64,
        meta: &Meta,
        into: Option<(Into<'_>, &Flags)>,
        defer: bool,
    ) -> Result<(MessageId, Vec<Added>)> {
        let id = pg.next_message_id()?;
        let names: Vec<String> = meta.headers.iter().map(|(n, _)| strip_nul(n)).collect();
        let values: Vec<String> = meta.headers.iter().map(|(_, v)| strip_nul(v)).collect();
        // THREADID (RFC 8474 §5.2) as `threads::assign` decides it: the
        // thread of the ids already known, else the message's own.
        let refs: Vec<String> = crate::threads::thread_ids(&meta.headers)
            .into_iter()
            .map(strip_nul)
            .collect();
        let size = raw.len() as i64;
        // Made ahead of time (Store::prepare) or here.
        let made;
        let text = match &meta.pg_text {
            Some(t) => t,
            None => {
                made = crate::pg::search::SearchText::of(meta);
                &made
            }
        };
        let (header_text, body_text, words) = (&text.header, &text.body, &text.words);
        let stored = now();
        let (system, keywords) = match &into {
            Some((_, flags)) => (
                i32::from(flags.system & Flags::ALL_SYSTEM),
                encode_keywords(flags)?,
            ),
            None => (0, String::new()),
        };
        if defer && pg.may_defer() {
            // The entries as expected, and what the caller is told: a
            // delivery's mailboxes as earlier statements found them, an
            // APPEND's UID as the batch's last statement left its mailbox
            // (no other statement ran since; deferred.rs).
            let expected: Option<(Vec<Target>, Vec<Added>)> = match &into {
                Some((Into::Named(users, mailboxes), _)) => users
                    .iter()
                    .zip(mailboxes.iter())
                    .map(|(u, n)| {
                        pg.known_mailbox(*u, n).map(|mb| {
                            let t = Target {
                                mailbox: mb,
                                user: *u,
                                name: Some(n.clone()),
                                uid: None,
                            };
                            (t, (*u, mb, 0, n.clone(), 0))
                        })
                    })
                    .collect::<Option<Vec<_>>>()
                    .map(|v| v.into_iter().unzip()),
                Some((Into::Id(mb), _)) => pg.next_uid(*mb).map(|(uid, validity, owner)| {
                    let t = Target {
                        mailbox: *mb,
                        user: owner,
                        name: None,
                        uid: Some(uid),
                    };
                    (
                        vec![t],
                        vec![(owner, *mb, uid as Uid, String::new(), validity)],
                    )
                }),
                None => None,
            };
            if let Some((targets, added)) = expected {
                for t in &targets {
                    pg.note_owner(t.mailbox, t.user);
                    self.touched.push(t.mailbox);
                    // Its next UID (if known), one on.
                    if let Some((next, validity, owner)) = pg.next_uid(t.mailbox) {
                        pg.took_uid(t.mailbox, next, validity, owner);
                    }
                }
                pg.defer(Deferred {
                    id,
                    size,
                    internal_date,
                    sent_date: meta.sent_date,
                    envelope: meta.envelope_json.clone(),
                    envelope_bin: meta.envelope_bin.clone(),
                    structure: meta.structure_json.clone(),
                    raw: raw.to_vec(),
                    names,
                    values,
                    refs,
                    header_text: header_text.clone(),
                    body_text: body_text.clone(),
                    words: words.clone(),
                    targets,
                    system,
                    keywords,
                    saved: stored,
                })?;
                return Ok((id, added));
            }
        }
        let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> = vec![
            &id,
            &size,
            &internal_date,
            &meta.sent_date,
            &meta.envelope_json,
            &meta.structure_json,
            &refs,
            &raw,
            &names,
            &values,
            header_text,
            body_text,
            words,
            &meta.envelope_bin,
        ];
        let ids: Vec<i64>;
        let target = match &into {
            None => None,
            Some((Into::Id(mb), _)) => {
                ids = vec![*mb];
                params.push(&ids);
                Some(("id = ANY($15)", 16))
            }
            Some((Into::Named(users, mailboxes), _)) => {
                params.push(users);
                params.push(mailboxes);
                Some((
                    "(user_id, name) IN (SELECT * FROM unnest($15::bigint[], $16::text[]))",
                    17,
                ))
            }
        };
        let sql = match target {
            None => format!(
                "{INSERT_MESSAGE} SELECT 0::bigint, 0::bigint, 0::bigint, ''::text, 0::bigint FROM m WHERE false"
            ),
            Some((target, f)) => {
                params.push(&system);
                params.push(&keywords);
                params.push(&stored);
                let (k, t) = (f + 1, f + 2);
                format!(
                    "{INSERT_MESSAGE},
                     b AS (
                         UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1
                         WHERE {target} AND uidnext <= 4294967295
                         RETURNING id, user_id, name, uidnext - 1 AS uid, highestmodseq AS modseq, uidvalidity),
                     e AS (
                         INSERT INTO entries(mailbox_id, uid, message_id, flags, keywords, modseq, saved)
                         SELECT b.id, b.uid, m.id, ${f}, ${k}, b.modseq, ${t} FROM b, m)
                     SELECT user_id, id, uid, name, uidvalidity FROM b"
                )
            }
        };
        // Into one mailbox by id, this statement takes UIDs there only:
        // the next UIDs known of others stay known (deferred.rs). By name,
        // all are forgotten (which mailboxes is known only after).
        let known = match &into {
            Some((Into::Id(mb), _)) => Some((pg.save_next_uids(), *mb)),
            _ => None,
        };
        let rows = pg.rows(&sql, &params)?;
        if let Some((known, mb)) = known {
            pg.restore_next_uids(known, &[mb]);
        }
        let mut added = Vec::with_capacity(rows.len());
        for r in rows {
            let (user, mailbox, uid): (UserId, MailboxId, i64) = (r.get(0), r.get(1), r.get(2));
            pg.note_owner(mailbox, user);
            self.touched.push(mailbox);
            let name: String = r.get(3);
            if matches!(into, Some((Into::Named(..), _))) {
                pg.note_mailbox(user, &name, mailbox);
            }
            let validity: i64 = r.get(4);
            pg.took_uid(mailbox, uid, validity, user);
            added.push((user, mailbox, uid as Uid, name, validity));
        }
        Ok((id, added))
    }

    /// The next UID of `mailbox` at a new modseq, under its row lock.
    fn pg_add_entry(
        &mut self,
        pg: &PgConn,
        mailbox: MailboxId,
        message: MessageId,
        flags: &Flags,
    ) -> Result<Uid> {
        let keywords = encode_keywords(flags)?;
        pg.lock_owner(mailbox)?;
        // One statement: the UID and modseq taken under the mailbox row's
        // lock (held to COMMIT), and the entry.
        let row = pg.opt(
            "WITH b AS (
                 UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1
                 WHERE id = $1 RETURNING uidnext - 1 AS uid, highestmodseq AS modseq)
             INSERT INTO entries(mailbox_id, uid, message_id, flags, keywords, modseq, saved)
             SELECT $1, uid, $2, $3, $4, modseq, $5 FROM b WHERE uid <= 4294967295
             RETURNING uid",
            &[
                &mailbox,
                &message,
                &i32::from(flags.system & Flags::ALL_SYSTEM),
                &keywords,
                &now(),
            ],
        )?;
        let Some(row) = row else {
            return Err(match pg.mailbox_by_id(mailbox)? {
                None => StoreError::NotFound(format!("mailbox {mailbox}")),
                Some(_) => StoreError::Invalid(format!("mailbox {mailbox} is out of UIDs")),
            });
        };
        let uid: i64 = row.get(0);
        self.touched.push(mailbox);
        Ok(uid as Uid)
    }

    /// Delete the given messages if no entry references them any more,
    /// with their raw bytes, headers and search text (no foreign keys
    /// since schema version 19: deleted here, in the same statement).
    fn pg_collect_garbage(&mut self, pg: &PgConn, ids: &[MessageId]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        pg.exec(
            "WITH d AS (
                 DELETE FROM messages m WHERE m.id = ANY($1)
                 AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.message_id = m.id)
                 RETURNING m.id),
             r AS (DELETE FROM message_raw WHERE id IN (SELECT id FROM d)),
             h AS (DELETE FROM message_headers WHERE message_id IN (SELECT id FROM d))
             DELETE FROM message_text WHERE id IN (SELECT id FROM d)",
            &[&ids],
        )?;
        Ok(())
    }

    fn pg_bump_modseq(&mut self, pg: &PgConn, mailbox: MailboxId) -> Result<u64> {
        pg.lock_owner(mailbox)?;
        let m: i64 = pg
            .opt(
                "UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = $1 RETURNING highestmodseq",
                &[&mailbox],
            )?
            .map(|r| r.get(0))
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox}")))?;
        self.touched.push(mailbox);
        Ok(m as u64)
    }

    fn pg_require_mailbox(&self, pg: &PgConn, mailbox: MailboxId) -> Result<crate::types::Mailbox> {
        pg.mailbox_by_id(mailbox)?
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox}")))
    }

    /// (message id, entry) of each of `uids` present, uid ascending.
    fn pg_entries_of(
        &self,
        pg: &PgConn,
        mailbox: MailboxId,
        uids: &[Uid],
    ) -> Result<Vec<(MessageId, Entry)>> {
        Ok(pg
            .rows(
                "SELECT message_id, uid, flags, keywords, modseq FROM entries
                 WHERE mailbox_id = $1 AND uid = ANY($2) ORDER BY uid",
                &[&mailbox, &uid_array(uids)],
            )?
            .iter()
            .map(|r| (r.get(0), entry_at(r, 1)))
            .collect())
    }

    pub(crate) fn pg_store_flags(
        &mut self,
        pg: &PgConn,
        mailbox: MailboxId,
        uids: &[Uid],
        op: FlagOp,
        flags: &Flags,
        unchanged_since: Option<u64>,
    ) -> Result<StoreOutcome> {
        self.pg_require_mailbox(pg, mailbox)?;
        encode_keywords(flags)?;
        // Read under the owner's lock: no other batch changes them meanwhile.
        pg.lock_owner(mailbox)?;
        let mut out = StoreOutcome::default();
        let mut modseq: Option<u64> = None;
        for (_, cur) in self.pg_entries_of(pg, mailbox, &sorted(uids))? {
            let uid = cur.uid;
            if unchanged_since.is_some_and(|u| cur.modseq > u) {
                out.failed_modified.push(uid);
                continue;
            }
            let new = cur.flags.apply(op, flags);
            if new.same_as(&cur.flags) {
                continue;
            }
            let m = match modseq {
                Some(m) => m,
                None => {
                    let m = self.pg_bump_modseq(pg, mailbox)?;
                    modseq = Some(m);
                    m
                }
            };
            pg.exec(
                "UPDATE entries SET flags = $3, keywords = $4, modseq = $5 WHERE mailbox_id = $1 AND uid = $2",
                &[
                    &mailbox,
                    &i64::from(uid),
                    &i32::from(new.system),
                    &encode_keywords(&new)?,
                    &(m as i64),
                ],
            )?;
            out.updated.push(Entry {
                uid,
                flags: new,
                modseq: m,
            });
        }
        Ok(out)
    }

    /// Remove entries, leave tombstones at one new modseq; returns the
    /// message ids they referenced.
    fn pg_remove_entries(
        &mut self,
        pg: &PgConn,
        mailbox: MailboxId,
        uids: &[Uid],
    ) -> Result<Vec<MessageId>> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let modseq = self.pg_bump_modseq(pg, mailbox)? as i64;
        let rows = pg.rows(
            "DELETE FROM entries WHERE mailbox_id = $1 AND uid = ANY($2) RETURNING uid, message_id",
            &[&mailbox, &uid_array(uids)],
        )?;
        let gone: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        let ids: Vec<MessageId> = rows.iter().map(|r| r.get(1)).collect();
        pg.exec(
            "INSERT INTO expunged(mailbox_id, uid, modseq) SELECT $1, u, $3 FROM unnest($2::bigint[]) AS u
             ON CONFLICT (mailbox_id, uid) DO UPDATE SET modseq = excluded.modseq",
            &[&mailbox, &gone, &modseq],
        )?;
        self.pg_count_tombstones(pg, mailbox, gone.len())?;
        Ok(ids)
    }

    /// `tombstones.rs`'s bound, in this dialect.
    fn pg_count_tombstones(&mut self, pg: &PgConn, mailbox: MailboxId, added: usize) -> Result<()> {
        if added == 0 {
            return Ok(());
        }
        let count: i64 = pg
            .one(
                "UPDATE mailboxes SET tombstones = tombstones + $2 WHERE id = $1 RETURNING tombstones",
                &[&mailbox, &(added as i64)],
            )?
            .get(0);
        let max: i64 = pg
            .opt("SELECT value FROM meta WHERE key = 'max_tombstones'", &[])?
            .map_or(i64::from(DEFAULT_MAX_TOMBSTONES), |r| r.get(0))
            .max(0);
        if count <= max {
            return Ok(());
        }
        let keep = max - max / 4;
        let cutoff: Option<i64> = pg
            .opt(
                "SELECT modseq FROM expunged WHERE mailbox_id = $1 ORDER BY modseq LIMIT 1 OFFSET $2",
                &[&mailbox, &(count - keep - 1)],
            )?
            .map(|r| r.get(0));
        let Some(cutoff) = cutoff else {
            return Ok(());
        };
        pg.exec(
            "DELETE FROM expunged WHERE mailbox_id = $1 AND modseq <= $2",
            &[&mailbox, &cutoff],
        )?;
        pg.exec(
            "UPDATE mailboxes SET tombstone_floor = greatest(tombstone_floor, $2),
             tombstones = (SELECT count(*) FROM expunged WHERE mailbox_id = $1) WHERE id = $1",
            &[&mailbox, &cutoff],
        )?;
        Ok(())
    }

    pub(crate) fn pg_set_max_tombstones(&mut self, pg: &PgConn, max: u32) -> Result<()> {
        pg.exec(
            "INSERT INTO meta(key, value) VALUES ('max_tombstones', $1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&i64::from(max)],
        )?;
        Ok(())
    }

    pub(crate) fn pg_expunge(
        &mut self,
        pg: &PgConn,
        mailbox: MailboxId,
        only: Option<&[Uid]>,
    ) -> Result<Vec<Uid>> {
        self.pg_require_mailbox(pg, mailbox)?;
        pg.lock_owner(mailbox)?;
        let deleted = i32::from(Flags::DELETED);
        let mut uids: Vec<Uid> = pg
            .rows(
                "SELECT uid FROM entries WHERE mailbox_id = $1 AND (flags & $2) != 0 ORDER BY uid",
                &[&mailbox, &deleted],
            )?
            .iter()
            .map(|r| r.get::<_, i64>(0) as Uid)
            .collect();
        if let Some(only) = only {
            let only = sorted(only);
            uids.retain(|u| only.binary_search(u).is_ok());
        }
        let ids = self.pg_remove_entries(pg, mailbox, &uids)?;
        self.pg_collect_garbage(pg, &ids)?;
        Ok(uids)
    }

    /// COPY: the copies must fit the destination owner's quota.
    pub(crate) fn pg_copy(
        &mut self,
        pg: &PgConn,
        src: MailboxId,
        uids: &[Uid],
        dst: MailboxId,
    ) -> Result<CopyOutcome> {
        self.pg_lock_both(pg, src, dst)?;
        let r = pg.one(
            "SELECT coalesce(sum(m.size), 0)::BIGINT, count(*) FROM entries e
             JOIN messages m ON m.id = e.message_id WHERE e.mailbox_id = $1 AND e.uid = ANY($2)",
            &[&src, &uid_array(&sorted(uids))],
        )?;
        let (octets, count) = (
            r.get::<_, i64>(0).max(0) as u64,
            r.get::<_, i64>(1).max(0) as u64,
        );
        if count > 0 {
            self.check_mailbox_quota(dst, octets, count)?;
        }
        self.pg_copy_entries(pg, src, uids, dst)
    }

    /// COPY without the quota check (MOVE frees what it adds).
    fn pg_copy_entries(
        &mut self,
        pg: &PgConn,
        src: MailboxId,
        uids: &[Uid],
        dst: MailboxId,
    ) -> Result<CopyOutcome> {
        self.pg_require_mailbox(pg, src)?;
        let dst_box = self.pg_require_mailbox(pg, dst)?;
        self.pg_lock_both(pg, src, dst)?;
        let mut map = Vec::with_capacity(uids.len());
        for (msg, e) in self.pg_entries_of(pg, src, &sorted(uids))? {
            let new = self.pg_add_entry(pg, dst, msg, &e.flags)?;
            map.push((e.uid, new));
        }
        Ok(CopyOutcome {
            uidvalidity: dst_box.uidvalidity,
            map,
        })
    }

    /// Lock the owners of `src` and `dst` together (in id order).
    fn pg_lock_both(&self, pg: &PgConn, src: MailboxId, dst: MailboxId) -> Result<()> {
        let owners: Vec<UserId> = pg.owners_of(&[src, dst])?.iter().map(|o| o.1).collect();
        pg.lock_users(&owners)
    }

    pub(crate) fn pg_move_messages(
        &mut self,
        pg: &PgConn,
        src: MailboxId,
        uids: &[Uid],
        dst: MailboxId,
    ) -> Result<CopyOutcome> {
        let out = self.pg_copy_entries(pg, src, uids, dst)?;
        let moved: Vec<Uid> = out.map.iter().map(|(s, _)| *s).collect();
        let ids = self.pg_remove_entries(pg, src, &moved)?;
        self.pg_collect_garbage(pg, &ids)?;
        Ok(out)
    }

    /// `sieve.rs`'s `deliver_filed`: one stored message, a copy per
    /// filing (each mailbox once), missing mailboxes made for `create` or
    /// the copy filed in INBOX.
    pub(crate) fn pg_deliver_filed(
        &mut self,
        pg: &PgConn,
        msg: &PreparedMessage,
        filings: &[Filing],
    ) -> Result<()> {
        if filings.is_empty() {
            return Err(StoreError::Invalid("no recipients".into()));
        }
        let mut users: Vec<UserId> = filings.iter().map(|f| f.user).collect();
        users.sort_unstable();
        users.dedup();
        pg.lock_users(&users)?;
        // When every filing has the same flags (plain keeps), they go in
        // with the message, into the mailboxes that exist; else (and for
        // missing mailboxes) one by one, in order, as on SQLite.
        let first = &filings[0].flags;
        let alike = filings.iter().all(|f| f.flags.same_as(first));
        let into: Vec<&Filing> = if alike {
            filings.iter().collect()
        } else {
            Vec::new()
        };
        let owners: Vec<UserId> = into.iter().map(|f| f.user).collect();
        let names: Vec<String> = into
            .iter()
            .map(|f| inbox_cased(&f.mailbox).to_owned())
            .collect();
        let (message, added) = self.pg_insert_message(
            pg,
            msg.raw(),
            msg.internal_date(),
            msg.meta(),
            alike.then_some((Into::Named(&owners, &names), first)),
            false,
        )?;
        let mut done: Vec<MailboxId> = added.iter().map(|a| a.1).collect();
        for f in filings {
            let name = inbox_cased(&f.mailbox);
            if added.iter().any(|a| a.0 == f.user && a.3 == name) {
                continue;
            }
            let mailbox = match pg.mailbox(f.user, &f.mailbox)? {
                Some(mb) => mb.id,
                None if f.create && !f.mailbox.eq_ignore_ascii_case("INBOX") => {
                    match self.pg_create_mailbox(pg, f.user, &f.mailbox, None) {
                        Ok(id) => {
                            self.pg_set_subscribed(pg, f.user, &f.mailbox, true)?;
                            id
                        }
                        Err(StoreError::Invalid(why)) => {
                            log::warn!(
                                "sieve: cannot create {:?}: {why}; filed in INBOX",
                                f.mailbox
                            );
                            self.pg_inbox_of(pg, f.user)?
                        }
                        Err(e) => return Err(e),
                    }
                }
                None => self.pg_inbox_of(pg, f.user)?,
            };
            if done.contains(&mailbox) {
                continue;
            }
            done.push(mailbox);
            self.pg_add_entry(pg, mailbox, message, &f.flags)?;
        }
        Ok(())
    }

    /// `user`'s INBOX, re-created if missing.
    fn pg_inbox_of(&mut self, pg: &PgConn, user: UserId) -> Result<MailboxId> {
        if let Some(mb) = pg.mailbox(user, "INBOX")? {
            return Ok(mb.id);
        }
        if pg.user_by_id(user)?.is_none() {
            return Err(StoreError::NotFound(format!("user {user}")));
        }
        self.pg_create_mailbox(pg, user, "INBOX", None)
    }

    /// `quota.rs`'s `check_quota`.
    pub(crate) fn pg_check_quota(
        &self,
        pg: &PgConn,
        user: UserId,
        octets: u64,
        messages: u64,
    ) -> Result<()> {
        if pg.unlimited(user) {
            return Ok(());
        }
        pg.quota(user)?.check(octets, messages)
    }
}

/// An entry [`Tx::pg_insert_message`] made: owner, mailbox, UID, name,
/// the mailbox's UIDVALIDITY.
type Added = (UserId, MailboxId, Uid, String, i64);

/// Where [`Tx::pg_insert_message`] adds entries: a mailbox, or each
/// (user, mailbox name) pair that exists.
pub(super) enum Into<'a> {
    Id(MailboxId),
    Named(&'a Vec<UserId>, &'a Vec<String>),
}

/// The message, its raw bytes, headers, search text (with the body's
/// words, $13), thread ($1: id, $7: the ids it threads by) and binary
/// envelope ($14, envelope_bin.rs: what the metadata FETCH reads); ends
/// in CTE `m` (its id).
const INSERT_MESSAGE: &str = "WITH m AS (
         INSERT INTO messages(id, size, internal_date, sent_date, envelope, structure, thread_id, envelope_bin)
         VALUES ($1, $2, $3, $4, $5, $6, coalesce(
             (SELECT min(thread_id) FROM thread_refs WHERE msgid = ANY($7::text[])), $1), $14)
         RETURNING id, thread_id),
     i AS (INSERT INTO thread_refs(msgid, thread_id)
           SELECT x, m.thread_id FROM unnest($7::text[]) AS x, m ON CONFLICT DO NOTHING),
     r AS (INSERT INTO message_raw(id, raw) SELECT id, $8 FROM m),
     h AS (INSERT INTO message_headers(message_id, name, value)
           SELECT m.id, x.n, x.v FROM m, unnest($9::text[], $10::text[]) AS x(n, v)),
     t AS (INSERT INTO message_text(id, headers, body, words) SELECT id, $11, $12, $13 FROM m)";

/// Mailbox names are stored with INBOX in capitals.
fn inbox_cased(name: &str) -> &str {
    if name.eq_ignore_ascii_case("INBOX") {
        "INBOX"
    } else {
        name
    }
}

/// PostgreSQL text cannot hold NUL (SQLite's can): search text and ids
/// drop it.
fn strip_nul(s: &str) -> String {
    if s.contains('\0') {
        s.replace('\0', "")
    } else {
        s.to_owned()
    }
}
