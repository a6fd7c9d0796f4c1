//! Deliveries sent together. In a batch without a savepoint per job
//! (`writer::run_optimistic`: SMTP deliveries, each of which can run
//! again), a plain delivery whose caller does not need its UIDs
//! (`Tx::deliver_prepared_unreported`) is not sent at once: its message,
//! search text, headers and entries are kept, and all those kept are sent
//! as one statement, before any other statement of the transaction (so
//! every read sees them) and at the latest before the batch's commit
//! counter is bumped. A batch of eight deliveries then makes one
//! delivery statement, not eight: fewer round trips, and PostgreSQL plans,
//! starts and ends one statement, not eight.
//!
//! Each kept delivery names its target mailboxes by (owner, name) and
//! the mailbox id it is expected to have, from an earlier statement's
//! result (`PgConn::known_mailbox`); one not known yet is sent at once.
//! The statement returns the entries it made; if any differs from what
//! was expected (a mailbox deleted, renamed or out of UIDs meanwhile),
//! the statement's result is an error, the transaction is rolled back and
//! the writer runs the batch again the usual way (nothing deferred there).
//! UIDs and modseqs are taken per mailbox in the order the deliveries
//! were kept, as one statement each would have taken them.
//!
//! An APPEND (`Tx::append_prepared` in such a batch: imapd's) is kept the
//! same way although it answers its UID: the batch holds the owner's row
//! lock, so only this batch takes UIDs in the mailbox, and the batch's
//! last statement that took one there tells the next (`PgConn::next_uid`;
//! forgotten when any statement that may take UIDs there runs). The
//! statement's entries are checked against the UIDs told. A message that
//! references another kept one (a Message-ID of its thread) is not kept
//! with it: the statement would not see the other's thread yet, so the
//! ones kept so far are sent first.

use crate::error::{Result, StoreError};
use crate::pg::PgConn;
use crate::types::{MailboxId, UserId};

/// One delivery kept to be sent with the others (see the module).
pub(crate) struct Deferred {
    pub(crate) id: i64,
    pub(crate) size: i64,
    pub(crate) internal_date: i64,
    pub(crate) sent_date: Option<i64>,
    pub(crate) envelope: String,
    pub(crate) envelope_bin: Vec<u8>,
    pub(crate) structure: String,
    pub(crate) raw: Vec<u8>,
    pub(crate) names: Vec<String>,
    pub(crate) values: Vec<String>,
    /// The ids it threads by (`threads::thread_ids`).
    pub(crate) refs: Vec<String>,
    pub(crate) header_text: String,
    pub(crate) body_text: String,
    pub(crate) words: String,
    /// The entries to make, as expected.
    pub(crate) targets: Vec<Target>,
    pub(crate) system: i32,
    pub(crate) keywords: String,
    pub(crate) saved: i64,
}

/// An entry a kept delivery or APPEND is to make, as expected: in
/// `mailbox`, owned by `user`, named `name` (a delivery's target, by
/// name) or with UID `uid` (an APPEND's, whose UID was answered).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Target {
    pub(crate) mailbox: MailboxId,
    pub(crate) user: UserId,
    pub(crate) name: Option<String>,
    pub(crate) uid: Option<i64>,
}

/// The deliveries kept, in one statement: `d` the messages (`k` their
/// order), `x` the ids they thread by, `g` the entries to make (`n`:
/// their order within their mailbox), `b` each mailbox's UIDs and
/// modseqs taken at once. Returns one row per entry made: k, owner,
/// mailbox name, mailbox id, UID.
const INSERT_MANY: &str = "WITH d AS (
         SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[],
                              $6::text[], $7::bytea[], $8::text[], $9::text[], $10::text[],
                              $20::bigint[], $21::bytea[])
             WITH ORDINALITY AS d(id, size, idate, sdate, envelope, structure, raw, headers, body, words,
                                  saved, envelope_bin, k)),
     x AS (SELECT * FROM unnest($11::bigint[], $12::text[]) AS x(k, msgid)),
     m AS (
         INSERT INTO messages(id, size, internal_date, sent_date, envelope, structure, thread_id, envelope_bin)
         SELECT d.id, d.size, d.idate, d.sdate, d.envelope, d.structure, coalesce(
             (SELECT min(t.thread_id) FROM thread_refs t JOIN x ON x.msgid = t.msgid WHERE x.k = d.k), d.id),
             d.envelope_bin
         FROM d
         RETURNING id, thread_id),
     i AS (INSERT INTO thread_refs(msgid, thread_id)
           SELECT x.msgid, m.thread_id FROM x JOIN d ON d.k = x.k JOIN m ON m.id = d.id
           ON CONFLICT DO NOTHING),
     r AS (INSERT INTO message_raw(id, raw) SELECT id, raw FROM d),
     h AS (INSERT INTO message_headers(message_id, name, value)
           SELECT d.id, y.n, y.v FROM unnest($13::bigint[], $14::text[], $15::text[]) AS y(k, n, v)
           JOIN d ON d.k = y.k),
     t AS (INSERT INTO message_text(id, headers, body, words) SELECT id, headers, body, words FROM d),
     g AS (
         SELECT g.k, mb.user_id, mb.name, g.flags, g.keywords, mb.id AS mailbox_id,
                row_number() OVER (PARTITION BY mb.id ORDER BY g.k) AS n
         FROM unnest($16::bigint[], $17::bigint[], $18::int[], $19::text[])
             AS g(k, mailbox_id, flags, keywords)
         JOIN mailboxes mb ON mb.id = g.mailbox_id),
     c AS (SELECT mailbox_id, count(*) AS n FROM g GROUP BY mailbox_id),
     b AS (
         UPDATE mailboxes SET uidnext = uidnext + c.n, highestmodseq = highestmodseq + c.n
         FROM c WHERE mailboxes.id = c.mailbox_id AND mailboxes.uidnext + c.n - 1 <= 4294967295
         RETURNING mailboxes.id, mailboxes.uidnext - c.n AS uid0, mailboxes.highestmodseq - c.n AS modseq0),
     e AS (
         INSERT INTO entries(mailbox_id, uid, message_id, flags, keywords, modseq, saved)
         SELECT b.id, b.uid0 + g.n - 1, d.id, g.flags, g.keywords, b.modseq0 + g.n, d.saved
         FROM g JOIN b ON b.id = g.mailbox_id JOIN d ON d.k = g.k)
     SELECT g.k, g.user_id, g.name, b.id, b.uid0 + g.n - 1 FROM g JOIN b ON b.id = g.mailbox_id";

/// Mailbox (owner, name) -> id pairs remembered for expecting targets.
pub(crate) const MAX_KNOWN: usize = 100_000;

impl PgConn {
    /// Whether a delivery may be kept now: the batch runs without
    /// savepoints and is not sending the kept ones.
    pub(crate) fn may_defer(&self) -> bool {
        self.write.borrow().optimistic && !self.flushing.get()
    }

    /// Keep `d` to be sent with the others; first send those kept if `d`
    /// threads by one of their ids.
    pub(crate) fn defer(&self, d: Deferred) -> Result<()> {
        let clash = self
            .deferred
            .borrow()
            .iter()
            .any(|o| d.refs.iter().any(|r| o.refs.contains(r)));
        if clash {
            self.flush_deferred()?;
        }
        self.deferred.borrow_mut().push(d);
        Ok(())
    }

    /// The mailbox `name` of `user` as an earlier statement found it.
    pub(crate) fn known_mailbox(&self, user: UserId, name: &str) -> Option<MailboxId> {
        self.write
            .borrow()
            .known
            .get(&(user, name.to_owned()))
            .copied()
    }

    /// Remember that `user`'s mailbox `name` is `id`.
    pub(crate) fn note_mailbox(&self, user: UserId, name: &str, id: MailboxId) {
        let mut w = self.write.borrow_mut();
        if w.known.len() >= MAX_KNOWN {
            w.known.clear();
        }
        w.known.insert((user, name.to_owned()), id);
    }

    /// Drop the kept deliveries (their transaction is rolled back).
    pub(crate) fn drop_deferred(&self) {
        self.deferred.borrow_mut().clear();
        if let Ok(mut w) = self.write.try_borrow_mut() {
            w.next_uid.clear();
        }
    }

    /// `mailbox`'s next UID, UIDVALIDITY and owner, if this batch's last
    /// statement told them (no other statement ran since).
    pub(crate) fn next_uid(&self, mailbox: MailboxId) -> Option<(i64, i64, UserId)> {
        self.write.borrow().next_uid.get(&mailbox).copied()
    }

    /// The next UIDs known now, to keep across a statement that changes
    /// only its own mailboxes' ([`PgConn::restore_next_uids`]).
    pub(crate) fn save_next_uids(&self) -> Vec<(MailboxId, (i64, i64, UserId))> {
        self.write
            .borrow()
            .next_uid
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect()
    }

    /// Know `saved` again, except for mailboxes `changed` (those the
    /// statement that just ran took UIDs in).
    pub(crate) fn restore_next_uids(
        &self,
        saved: Vec<(MailboxId, (i64, i64, UserId))>,
        changed: &[MailboxId],
    ) {
        let mut w = self.write.borrow_mut();
        for (mb, v) in saved {
            if !changed.contains(&mb) {
                w.next_uid.entry(mb).or_insert(v);
            }
        }
    }

    /// `mailbox`'s entry `uid` was just made (or is kept to be made).
    pub(crate) fn took_uid(&self, mailbox: MailboxId, uid: i64, validity: i64, owner: UserId) {
        self.write
            .borrow_mut()
            .next_uid
            .insert(mailbox, (uid + 1, validity, owner));
    }

    /// Send the kept deliveries, if any (see the module); an error if the
    /// statement failed or made other entries than expected (then the
    /// transaction must be rolled back).
    pub(crate) fn flush_deferred(&self) -> Result<()> {
        let r = self.send_deferred();
        if r.is_err() {
            self.flush_failed.set(true);
        }
        r
    }

    /// Whether sending kept deliveries failed in this batch (it must not
    /// commit, even if the job that saw the error let it pass).
    pub(crate) fn flush_failed(&self) -> bool {
        self.flush_failed.get()
    }

    fn send_deferred(&self) -> Result<()> {
        let kept = std::mem::take(&mut *self.deferred.borrow_mut());
        if kept.is_empty() {
            return Ok(());
        }
        if self.is_closed() {
            // Their transaction is gone with the connection: never sent
            // on a new one (they would commit on their own).
            return Err(StoreError::Postgres(
                "the connection to PostgreSQL was lost".into(),
            ));
        }
        self.flushing.set(true);
        let r = self.send_many(&kept);
        self.flushing.set(false);
        let rows = r?;
        // Each entry made, with what was expected of it filled in.
        let mut made: Vec<(i64, Target)> = Vec::with_capacity(rows.len());
        for r in &rows {
            let (k, mailbox): (i64, MailboxId) = (r.get(0), r.get(3));
            let want = usize::try_from(k - 1)
                .ok()
                .and_then(|i| kept.get(i))
                .and_then(|d| d.targets.iter().find(|t| t.mailbox == mailbox));
            made.push((
                k,
                Target {
                    mailbox,
                    user: r.get(1),
                    name: want.and_then(|t| t.name.as_ref()).map(|_| r.get(2)),
                    uid: want.and_then(|t| t.uid).map(|_| r.get(4)),
                },
            ));
        }
        made.sort();
        let mut expected: Vec<(i64, Target)> = Vec::new();
        for (k, d) in kept.iter().enumerate() {
            for t in &d.targets {
                expected.push((k as i64 + 1, t.clone()));
            }
        }
        expected.sort();
        if made != expected {
            let mut w = self.write.borrow_mut();
            for (_, t) in &expected {
                if let Some(name) = &t.name {
                    w.known.remove(&(t.user, name.clone()));
                }
            }
            w.next_uid.clear();
            return Err(StoreError::Postgres(
                "a mailbox changed under deliveries sent together; the batch runs again".into(),
            ));
        }
        Ok(())
    }

    fn send_many(&self, kept: &[Deferred]) -> Result<Vec<postgres::Row>> {
        let ids: Vec<i64> = kept.iter().map(|d| d.id).collect();
        let sizes: Vec<i64> = kept.iter().map(|d| d.size).collect();
        let dates: Vec<i64> = kept.iter().map(|d| d.internal_date).collect();
        let sent: Vec<Option<i64>> = kept.iter().map(|d| d.sent_date).collect();
        let envelopes: Vec<&str> = kept.iter().map(|d| d.envelope.as_str()).collect();
        let structures: Vec<&str> = kept.iter().map(|d| d.structure.as_str()).collect();
        let raws: Vec<&[u8]> = kept.iter().map(|d| d.raw.as_slice()).collect();
        let header_texts: Vec<&str> = kept.iter().map(|d| d.header_text.as_str()).collect();
        let bodies: Vec<&str> = kept.iter().map(|d| d.body_text.as_str()).collect();
        let words: Vec<&str> = kept.iter().map(|d| d.words.as_str()).collect();
        let (mut ref_k, mut refs) = (Vec::<i64>::new(), Vec::<&str>::new());
        let (mut h_k, mut h_names, mut h_values) =
            (Vec::<i64>::new(), Vec::<&str>::new(), Vec::<&str>::new());
        let (mut g_k, mut g_boxes, mut g_flags, mut g_keywords) = (
            Vec::<i64>::new(),
            Vec::<i64>::new(),
            Vec::<i32>::new(),
            Vec::<&str>::new(),
        );
        for (i, d) in kept.iter().enumerate() {
            let k = i as i64 + 1;
            for r in &d.refs {
                ref_k.push(k);
                refs.push(r);
            }
            for (n, v) in d.names.iter().zip(&d.values) {
                h_k.push(k);
                h_names.push(n);
                h_values.push(v);
            }
            for t in &d.targets {
                g_k.push(k);
                g_boxes.push(t.mailbox);
                g_flags.push(d.system);
                g_keywords.push(&d.keywords);
            }
        }
        let saved: Vec<i64> = kept.iter().map(|d| d.saved).collect();
        let envelope_bins: Vec<&[u8]> = kept.iter().map(|d| d.envelope_bin.as_slice()).collect();
        self.rows(
            INSERT_MANY,
            &[
                &ids,
                &sizes,
                &dates,
                &sent,
                &envelopes,
                &structures,
                &raws,
                &header_texts,
                &bodies,
                &words,
                &ref_k,
                &refs,
                &h_k,
                &h_names,
                &h_values,
                &g_k,
                &g_boxes,
                &g_flags,
                &g_keywords,
                &saved,
                &envelope_bins,
            ],
        )
    }
}
