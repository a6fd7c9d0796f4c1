//! The header cache: the values of one indexed header field (schema v14's
//! `header_index`) of one mailbox, held in memory by the store and shared
//! by its readers, so that a header SEARCH is a `memmem` scan over one
//! buffer instead of an SQL range scan with a function call per row (at
//! 100,000 messages: ~1 ms of CPU instead of ~25 ms, issue 21).
//!
//! # Exact, for the reader's snapshot
//! An entry is exact as of one state of its mailbox: its UIDVALIDITY, its
//! `highestmodseq` H and its `uidnext` N. Every change to a mailbox's
//! entries raises its `highestmodseq`: a new entry takes the next UID (and
//! a new modseq, `tx_deliver.rs`), an entry leaves with a tombstone at a
//! new modseq (`tx_flags.rs`), a deleted mailbox takes its entries with it
//! (and a new mailbox has a new UIDVALIDITY). So a search in a snapshot
//! whose mailbox says (H', N'):
//! - H' = H: uses the entry as it is;
//! - H' > H: first brings it forward in the same snapshot: values of UIDs
//!   N..N' from `header_index`, and the entries expunged after H (from
//!   `expunged`; if the mailbox's tombstone floor passed H, some may be
//!   forgotten, and the entry is rebuilt instead);
//! - H' < H (an older snapshot on another reader thread) or another
//!   UIDVALIDITY: the entry cannot answer; the caller runs the SQL scan
//!   (or the entry is rebuilt, for a new UIDVALIDITY).
//!
//! # The bound
//! The cache holds at most [`HeaderCache::limit`] bytes (the capacity of
//! its buffers: values plus 9 bytes of UID, offset and liveness per value;
//! they grow by an eighth at a time; default [`DEFAULT_LIMIT`], changed
//! with [`Store::set_header_cache_limit`](crate::Store::set_header_cache_limit)).
//! Adding an entry evicts the least recently used others until it fits;
//! an entry that alone would pass the bound is not kept (its search runs
//! in SQL). Expunged values stay in the buffer, marked dead, until they
//! are half of it; then the entry is rebuilt.
//!
//! # Filled before the first search
//! Filling an entry reads the field's whole key range of `header_index`
//! (about 0.2 us a value, more where its pages are not in the reader's
//! page cache: 0.8-1.3 ms at 5,000 messages). So that a mailbox's first
//! SUBJECT or FROM search does not wait for that, selecting a mailbox
//! ([`Store::warm_header_cache`](crate::Store::warm_header_cache), called
//! by SELECT and EXAMINE) queues one read job that fills its
//! [`WARM_FIELDS`] entries that are missing, once per mailbox at a time.
//! That fill never evicts: what does not fit in the room the bound leaves
//! is left to the first search, as before (it stops reading once it
//! passes that room, and none is queued while the cache is full or, for
//! a mailbox whose fill did not fit, until there is more room than then;
//! so a client that selects many big mailboxes in turn, as a sync tool
//! does, costs no more than the room).
//!
//! # The lock
//! One mutex guards the entries. Bringing an entry forward (the values of
//! a few new UIDs) happens under it; filling one whole (rebuilding
//! included) does not: the entry is marked as being filled, read without
//! the lock, then put in. A search of the same field meanwhile runs in
//! SQL rather than wait, and searches of other fields and mailboxes do
//! not wait for the fill.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use memchr::memmem;
use rusqlite::{params, OptionalExtension};

use crate::error::Result;
use crate::reader::Reader;
use crate::store::lock;
use crate::types::{MailboxId, Uid};

/// Bytes the cache holds by default (values of about 800,000 From or
/// Subject fields).
pub const DEFAULT_LIMIT: usize = 32 << 20;

/// The fields filled in the background when a session selects a mailbox
/// ([`HeaderCache::warm`]): the ones mail clients' quick filters search
/// first (Thunderbird's sender and subject, mutt's `~f` and `~s`).
pub(crate) const WARM_FIELDS: [&str; 2] = ["subject", "from"];

/// The values of one field of one mailbox, in UID order.
struct Entry {
    uidvalidity: i64,
    /// `highestmodseq` and `uidnext` of the state it is exact for.
    modseq: i64,
    uidnext: i64,
    /// The values, each followed by one `\n`.
    text: Vec<u8>,
    /// Where each value starts in `text`.
    starts: Vec<u32>,
    /// Each value's UID (ascending).
    uids: Vec<Uid>,
    /// Whether each value's entry is still there (false once expunged).
    live: Vec<bool>,
    dead: usize,
    /// Set (to the bound then in force) when the field's values did not
    /// fit: the entry holds nothing and the search runs in SQL until the
    /// bound grows or the mailbox gets another UIDVALIDITY.
    too_big: Option<usize>,
    /// When it was last used (the cache's clock), for eviction.
    used: u64,
}

impl Entry {
    /// Bytes held: the buffers' capacities, not only what they use.
    fn bytes(&self) -> usize {
        self.text.capacity()
            + self.starts.capacity() * 4
            + self.uids.capacity() * 4
            + self.live.capacity()
    }

    /// UIDs (ascending, once each) of the live values containing
    /// `needle` (already in ASCII lower case, as the values are).
    fn find(&self, needle: &[u8]) -> Vec<Uid> {
        let mut out: Vec<Uid> = Vec::new();
        let mut hit = |v: usize| {
            let uid = self.uids[v];
            if self.live[v] && out.last() != Some(&uid) {
                out.push(uid);
            }
        };
        if needle.is_empty() {
            (0..self.uids.len()).for_each(&mut hit);
            return out;
        }
        let finder = memmem::Finder::new(needle);
        let mut pos = 0usize;
        while let Some(i) = finder.find(&self.text[pos..]) {
            let at = pos + i;
            // The value `at` falls in, and where it ends (before its `\n`).
            let v = self.starts.partition_point(|s| *s as usize <= at) - 1;
            let next = self
                .starts
                .get(v + 1)
                .map_or(self.text.len(), |s| *s as usize);
            if at + needle.len() < next {
                hit(v);
                pos = next;
            } else {
                // Across the end of the value: not a match in it.
                pos = at + 1;
            }
            if pos >= self.text.len() {
                break;
            }
        }
        out
    }

    /// Add the values of UIDs >= `from` in the snapshot, stopping (false)
    /// once the entry would pass `limit` bytes.
    fn load(
        &mut self,
        r: &Reader,
        mailbox: MailboxId,
        field: &str,
        from: i64,
        limit: usize,
    ) -> Result<bool> {
        let mut st = r.conn().prepare_cached(
            "SELECT uid, value FROM header_index WHERE mailbox_id = ?1 AND name = ?2 AND uid >= ?3",
        )?;
        let mut rows = st.query(params![mailbox, field, from])?;
        while let Some(row) = rows.next()? {
            let uid = row.get::<_, i64>(0)? as Uid;
            let value = row.get_ref(1)?.as_bytes().map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    1,
                    rusqlite::types::Type::Text,
                    Box::new(e),
                )
            })?;
            let Ok(start) = u32::try_from(self.text.len()) else {
                return Ok(false);
            };
            // Grown by an eighth at a time, not doubled: what the entry
            // holds stays near what it uses.
            let add = value.len() + 1;
            if self.text.capacity() - self.text.len() < add {
                self.text.reserve_exact(add + self.text.len() / 8);
            }
            if self.starts.len() == self.starts.capacity() {
                let n = 1 + self.starts.len() / 8;
                self.starts.reserve_exact(n);
                self.uids.reserve_exact(n);
                self.live.reserve_exact(n);
            }
            self.starts.push(start);
            self.uids.push(uid);
            self.live.push(true);
            self.text.extend_from_slice(value);
            self.text.push(b'\n');
            if self.bytes() > limit {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Mark the values of the UIDs expunged after `modseq` dead.
    fn expunge_since(&mut self, r: &Reader, mailbox: MailboxId, modseq: i64) -> Result<()> {
        let mut st = r
            .conn()
            .prepare_cached("SELECT uid FROM expunged WHERE mailbox_id = ?1 AND modseq > ?2")?;
        let mut rows = st.query(params![mailbox, modseq])?;
        while let Some(row) = rows.next()? {
            let uid = row.get::<_, i64>(0)? as Uid;
            let mut v = self.uids.partition_point(|u| *u < uid);
            // A UID has one value per field of the name (two Subjects).
            while v < self.uids.len() && self.uids[v] == uid {
                if self.live[v] {
                    self.live[v] = false;
                    self.dead += 1;
                }
                v += 1;
            }
        }
        Ok(())
    }
}

/// The mailbox's state in a snapshot.
struct State {
    uidvalidity: i64,
    uidnext: i64,
    modseq: i64,
    floor: i64,
}

/// Entries by (mailbox, field), with their total size and the clock.
#[derive(Default)]
struct Entries {
    map: HashMap<(MailboxId, String), Entry>,
    bytes: usize,
    clock: u64,
    /// Entries being filled whole, outside the lock.
    filling: HashSet<(MailboxId, String)>,
    /// Mailboxes whose fill after SELECT did not fit, with the room the
    /// bound left then: not filled again until there is more.
    no_room: HashMap<MailboxId, usize>,
}

/// The store's header cache (see the module docs).
pub(crate) struct HeaderCache {
    inner: Mutex<Entries>,
    limit: Mutex<usize>,
    /// Mailboxes with a background fill queued ([`HeaderCache::warm`]).
    warming: Mutex<HashSet<MailboxId>>,
}

impl Default for HeaderCache {
    fn default() -> HeaderCache {
        HeaderCache {
            inner: Mutex::default(),
            limit: Mutex::new(DEFAULT_LIMIT),
            warming: Mutex::default(),
        }
    }
}

impl HeaderCache {
    /// The bound in bytes.
    pub(crate) fn limit(&self) -> usize {
        *lock(&self.limit)
    }

    /// Change the bound, evicting entries until the cache fits.
    pub(crate) fn set_limit(&self, bytes: usize) {
        *lock(&self.limit) = bytes;
        let mut e = lock(&self.inner);
        Self::evict(&mut e, bytes);
    }

    /// Bytes and entries (with values) held now.
    pub(crate) fn usage(&self) -> (usize, usize) {
        let e = lock(&self.inner);
        let entries = e.map.values().filter(|v| v.too_big.is_none()).count();
        (e.bytes, entries)
    }

    /// Drop least recently used entries until `bytes` fit.
    fn evict(e: &mut Entries, limit: usize) {
        while e.bytes > limit {
            let Some(key) = e
                .map
                .iter()
                .min_by_key(|(_, v)| v.used)
                .map(|(k, _)| k.clone())
            else {
                return;
            };
            if let Some(old) = e.map.remove(&key) {
                e.bytes -= old.bytes();
            }
        }
    }

    /// UIDs (ascending) of the mailbox's entries whose field `field`
    /// (lower case, one of `header_index`'s) contains `needle` (ASCII
    /// lower case; `""`: has the field), as of the reader's snapshot; or
    /// `None` where the cache cannot answer (the caller scans in SQL).
    pub(crate) fn search(
        &self,
        r: &Reader,
        mailbox: MailboxId,
        field: &str,
        needle: &str,
    ) -> Result<Option<Vec<Uid>>> {
        self.with_entry(r, mailbox, field, true, |en| en.find(needle.as_bytes()))
    }

    /// Whether a session that selects `mailbox` should have its
    /// [`WARM_FIELDS`] filled in the background ([`HeaderCache::warm`]):
    /// the cache is on and not full, one of them has no entry yet, and no
    /// fill for the mailbox is queued already (if so, it is marked queued until
    /// [`HeaderCache::warmed`]).
    pub(crate) fn start_warming(&self, mailbox: MailboxId) -> bool {
        let limit = self.limit();
        if limit == 0 {
            return false;
        }
        {
            let e = lock(&self.inner);
            // Full, or no more room than when the last fill of the
            // mailbox did not fit: a fill that may not evict would keep
            // nothing.
            let room = limit.saturating_sub(e.bytes);
            if room == 0 || e.no_room.get(&mailbox).is_some_and(|r| room <= *r) {
                return false;
            }
            let missing = WARM_FIELDS
                .iter()
                .any(|f| !e.map.contains_key(&(mailbox, (*f).to_owned())));
            if !missing {
                return false;
            }
        }
        lock(&self.warming).insert(mailbox)
    }

    /// Background fills queued or running.
    pub(crate) fn fills_queued(&self) -> usize {
        lock(&self.warming).len()
    }

    /// The background fill of `mailbox` is over (done or failed).
    pub(crate) fn warmed(&self, mailbox: MailboxId) {
        lock(&self.warming).remove(&mailbox);
    }

    /// Fill the entries of `mailbox`'s [`WARM_FIELDS`] that are missing,
    /// so that its first SUBJECT or FROM search
    /// finds them. Never evicts another entry: a field that does not fit
    /// in what the bound leaves free is not kept (a search fills it then).
    pub(crate) fn warm(&self, r: &Reader, mailbox: MailboxId) -> Result<()> {
        for field in WARM_FIELDS {
            // An entry already there is brought forward by the next search.
            if !lock(&self.inner)
                .map
                .contains_key(&(mailbox, field.to_owned()))
            {
                self.with_entry(r, mailbox, field, false, |_| ())?;
            }
        }
        Ok(())
    }

    /// Run `f` on the entry of (`mailbox`, `field`), first brought to the
    /// reader's snapshot (filled, brought forward or rebuilt, see the
    /// module docs); `None` where the cache cannot answer. With `evict`
    /// false an entry that would need others evicted is not kept.
    fn with_entry<T>(
        &self,
        r: &Reader,
        mailbox: MailboxId,
        field: &str,
        evict: bool,
        f: impl FnOnce(&Entry) -> T,
    ) -> Result<Option<T>> {
        let state: Option<State> = r
            .conn()
            .prepare_cached(
                "SELECT uidvalidity, uidnext, highestmodseq, tombstone_floor FROM mailboxes WHERE id = ?1",
            )?
            .query_row([mailbox], |row| {
                Ok(State {
                    uidvalidity: row.get(0)?,
                    uidnext: row.get(1)?,
                    modseq: row.get(2)?,
                    floor: row.get(3)?,
                })
            })
            .optional()?;
        let Some(s) = state else {
            return Ok(None);
        };
        let limit = self.limit();
        let mut guard = lock(&self.inner);
        guard.clock += 1;
        let now = guard.clock;
        let key = (mailbox, field.to_owned());
        let old = guard.map.remove(&key);
        if let Some(old) = &old {
            guard.bytes -= old.bytes();
        }
        let mut entry = match old {
            Some(en)
                if en.uidvalidity == s.uidvalidity
                    && (s.modseq < en.modseq || en.too_big.is_some_and(|l| l >= limit)) =>
            {
                // An older snapshot than the entry's, or too big for the
                // bound: kept as it is; the search runs in SQL.
                guard.bytes += en.bytes();
                guard.map.insert(key, en);
                return Ok(None);
            }
            Some(mut en)
                if en.uidvalidity == s.uidvalidity
                    && en.too_big.is_none()
                    && s.floor <= en.modseq
                    && en.dead * 2 <= en.uids.len() =>
            {
                if s.modseq > en.modseq {
                    en.expunge_since(r, mailbox, en.modseq)?;
                    let from = en.uidnext;
                    if !en.load(r, mailbox, field, from, limit)? {
                        guard.map.insert(key, Entry::too_big(&s, limit));
                        return Ok(None);
                    }
                }
                en
            }
            _ => {
                // A whole fill reads the field's key range (about 0.1 s
                // at 100,000 messages): done outside the lock, so that
                // searches of other fields and mailboxes do not wait for
                // it; one of this field meanwhile runs in SQL.
                if !guard.filling.insert(key.clone()) {
                    return Ok(None);
                }
                // A fill that may not evict stops once it passes the room
                // the bound leaves (not reading values it would drop).
                let cap = if evict {
                    limit
                } else {
                    limit.saturating_sub(guard.bytes)
                };
                drop(guard);
                let mut en = Entry::empty(&s);
                let loaded = en.load(r, mailbox, field, 1, cap);
                guard = lock(&self.inner);
                guard.filling.remove(&key);
                if !loaded? {
                    if evict {
                        guard.map.insert(key, Entry::too_big(&s, limit));
                    } else {
                        guard.no_room.insert(mailbox, cap);
                    }
                    return Ok(None);
                }
                en.text.shrink_to_fit();
                en.starts.shrink_to_fit();
                en.uids.shrink_to_fit();
                en.live.shrink_to_fit();
                en
            }
        };
        entry.modseq = s.modseq;
        entry.uidnext = s.uidnext;
        entry.used = now;
        let found = f(&entry);
        if !evict && guard.bytes + entry.bytes() > limit {
            let room = limit.saturating_sub(guard.bytes);
            guard.no_room.insert(mailbox, room);
            return Ok(Some(found));
        }
        guard.no_room.remove(&mailbox);
        Self::evict(&mut guard, limit.saturating_sub(entry.bytes()));
        guard.bytes += entry.bytes();
        guard.map.insert(key, entry);
        Ok(Some(found))
    }
}

impl Entry {
    fn empty(s: &State) -> Entry {
        Entry {
            uidvalidity: s.uidvalidity,
            modseq: s.modseq,
            uidnext: 1,
            text: Vec::new(),
            starts: Vec::new(),
            uids: Vec::new(),
            live: Vec::new(),
            dead: 0,
            too_big: None,
            used: 0,
        }
    }

    /// The mark of a field whose values pass `limit` bytes.
    fn too_big(s: &State, limit: usize) -> Entry {
        Entry {
            too_big: Some(limit),
            ..Entry::empty(s)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn entry(values: &[(Uid, &str)]) -> Entry {
        let mut e = Entry::empty(&State {
            uidvalidity: 1,
            uidnext: 1,
            modseq: 1,
            floor: 0,
        });
        for (uid, v) in values {
            e.starts.push(e.text.len() as u32);
            e.uids.push(*uid);
            e.live.push(true);
            e.text.extend_from_slice(v.as_bytes());
            e.text.push(b'\n');
        }
        e
    }

    #[test]
    fn matches_within_one_value_only() {
        let e = entry(&[(1, "abc"), (2, "def"), (3, "c\nd"), (3, "xabcx"), (5, "")]);
        assert_eq!(e.find(b"abc"), [1, 3]);
        // Across the boundary of values 1 and 2: no match.
        assert_eq!(e.find(b"c\nd"), [3]);
        assert_eq!(e.find(b"cd"), Vec::<Uid>::new());
        assert_eq!(e.find(b"f"), [2]);
        assert_eq!(e.find(b""), [1, 2, 3, 5]);
        assert_eq!(e.find(b"x"), [3]);
        assert_eq!(e.find(b"abcx"), [3]);
    }
}
