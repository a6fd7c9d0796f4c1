//! The Selected state's view of a mailbox (RFC 3501 §2.3.1): the message
//! sequence number -> UID map *as the client knows it*, this session's
//! `\Recent` messages (§2.3.2), and the changes not yet reported.
//!
//! Rules kept here (RFC 3501 §5.2, §7.4.1): new messages are announced with
//! EXISTS (and RECENT) whenever we sync; flag changes with an untagged
//! FETCH (RFC 7162 §3.2: with MODSEQ under CONDSTORE); expunges are
//! remembered and only announced (EXPUNGE, or VANISHED under QRESYNC,
//! RFC 7162 §3.2.10; renumbering the map) when the
//! current command allows it, so sequence numbers never shift under a
//! FETCH, STORE or SEARCH.
//!
//! Memory: no flags or modseqs are cached per message. The map is an
//! immutable `Arc<[Uid]>` shared by every session in sync with the same
//! state of the mailbox (`views.rs`), `\Recent` is a few UID ranges
//! (`recent.rs`), and what the session itself already showed the client is
//! a small uid -> modseq map that every sync prunes. So an IDLE session
//! costs the same whether its mailbox holds ten messages or ten thousand.

use crate::command::SequenceSet;
use crate::response::{flags_value, Code, Data, Status, StatusLine, Value};
use crate::view::contexts::SearchState;
use crate::view::recent::RecentSet;
use crate::view::views::{build, Views};
use mailstore::{Changes, Flags, MailboxId, SystemFlag, Uid};
use std::collections::HashMap;
use std::sync::Arc;

/// The selected mailbox.
#[derive(Debug)]
pub struct Selection {
    /// Store id.
    pub mailbox: MailboxId,
    /// Name (UTF-8).
    pub name: String,
    /// UIDVALIDITY at selection.
    pub uidvalidity: u32,
    /// EXAMINE, or a mailbox we may not change.
    pub read_only: bool,
    /// UIDs in sequence order (ascending): the client's view. Never
    /// changed in place; shared with other sessions through `views.rs`.
    uids: Arc<[Uid]>,
    /// HIGHESTMODSEQ we are in sync with.
    pub modseq: u64,
    /// Expunged in the store, not yet announced (ascending).
    pub expunged: Vec<Uid>,
    /// Keywords announced in the FLAGS response so far.
    pub keywords: Vec<String>,
    /// `\Recent` for this session.
    recent: RecentSet,
    /// IMAP4rev2 (RFC 9051 Appendix E item 2): no `\Recent` at all; the
    /// session claims none, shows none, sends no RECENT response.
    pub no_recent: bool,
    /// UIDONLY enabled (RFC 9586 §3): FETCH responses are `uid UIDFETCH`
    /// and expunges are announced as VANISHED.
    pub uidonly: bool,
    /// QRESYNC is enabled (RFC 7162 §3.2.10): expunges are announced as
    /// `VANISHED uids`, not `n EXPUNGE`.
    pub vanished: bool,
    /// While expunges are held back (`expunged` not empty): the modseq the
    /// view had before the first of them, a HIGHESTMODSEQ the client may
    /// safely resume from (RFC 7162 §3.2: sent lower than the delayed
    /// expunges' modseq when newer MODSEQs are shown).
    held_since: Option<u64>,
    /// Flag changes this session already showed the client (FETCH, STORE
    /// replies, or a silent STORE of its own), uid -> modseq, for changes
    /// newer than `modseq`: a sync does not repeat them. Pruned at every
    /// sync, so it stays tiny.
    reported: HashMap<Uid, u64>,
    /// The saved search result `$` and the SEARCH UPDATE contexts
    /// (`contexts.rs`).
    pub search: SearchState,
}

/// The FLAGS response and PERMANENTFLAGS code (§7.2.6, §7.1) for a
/// mailbox using `keywords`.
pub fn flags_lines(out: &mut Vec<u8>, keywords: &[String], read_only: bool) {
    let mut flags: Vec<String> = ["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"]
        .iter()
        .map(|f| (*f).to_owned())
        .collect();
    flags.extend(keywords.iter().cloned());
    Data::Flags(&flags).encode(out);
    let perm = if read_only {
        Vec::new()
    } else {
        flags.push("\\*".into());
        flags
    };
    StatusLine::untagged(
        Status::Ok,
        Some(Code::PermanentFlags(perm)),
        "Flags permitted",
    )
    .encode(out);
}

/// Flag atoms of a message (system flags first, then keywords).
pub fn flag_atoms(f: &Flags, recent: bool) -> Vec<String> {
    let mut v = Vec::new();
    for (flag, name) in [
        (SystemFlag::Seen, "\\Seen"),
        (SystemFlag::Answered, "\\Answered"),
        (SystemFlag::Flagged, "\\Flagged"),
        (SystemFlag::Deleted, "\\Deleted"),
        (SystemFlag::Draft, "\\Draft"),
    ] {
        if f.has(flag) {
            v.push(name.to_owned());
        }
    }
    if recent {
        v.push("\\Recent".to_owned());
    }
    v.extend(f.keywords.iter().cloned());
    v
}

/// [`flag_atoms`] as the FLAGS list `(\Seen kw)`, written straight onto
/// `out` (the same octets as `flags_value(&flag_atoms(..))`).
pub fn write_flags(out: &mut Vec<u8>, f: &Flags, recent: bool) {
    out.push(b'(');
    let start = out.len();
    let put = |out: &mut Vec<u8>, atom: &[u8]| {
        if out.len() > start {
            out.push(b' ');
        }
        out.extend_from_slice(atom);
    };
    for (flag, name) in [
        (SystemFlag::Seen, "\\Seen"),
        (SystemFlag::Answered, "\\Answered"),
        (SystemFlag::Flagged, "\\Flagged"),
        (SystemFlag::Deleted, "\\Deleted"),
        (SystemFlag::Draft, "\\Draft"),
    ] {
        if f.has(flag) {
            put(out, name.as_bytes());
        }
    }
    if recent {
        put(out, b"\\Recent");
    }
    for k in &f.keywords {
        put(out, k.as_bytes());
    }
    out.push(b')');
}

impl Selection {
    /// The selection of `uids` (the mailbox's UIDs at HIGHESTMODSEQ
    /// `modseq`, ascending). UIDs above `recent_above` are `\Recent` here.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        mailbox: MailboxId,
        name: String,
        uidvalidity: u32,
        read_only: bool,
        uids: Arc<[Uid]>,
        modseq: u64,
        keywords: Vec<String>,
        recent_above: Uid,
    ) -> Selection {
        let last = uids.last().copied().unwrap_or(0);
        Selection {
            mailbox,
            name,
            uidvalidity,
            read_only,
            uids,
            modseq,
            expunged: Vec::new(),
            keywords,
            recent: RecentSet::above(recent_above, last),
            no_recent: false,
            uidonly: false,
            vanished: false,
            held_since: None,
            reported: HashMap::new(),
            search: SearchState::default(),
        }
    }

    /// Note the keywords of `flags`; a new one is announced with updated
    /// FLAGS/PERMANENTFLAGS responses (§7.2.6) before it is used.
    pub fn learn(&mut self, flags: &Flags, out: &mut Vec<u8>) {
        self.learn_keywords(&flags.keywords, out);
    }

    /// [`Selection::learn`] for a list of keywords.
    pub fn learn_keywords(&mut self, keywords: &[String], out: &mut Vec<u8>) {
        let mut new = false;
        for k in keywords {
            if !self.keywords.iter().any(|x| x.eq_ignore_ascii_case(k)) {
                self.keywords.push(k.clone());
                new = true;
            }
        }
        if new {
            flags_lines(out, &self.keywords, self.read_only);
        }
    }

    /// Number of messages the client knows (the highest sequence number).
    pub fn len(&self) -> u32 {
        self.uids.len() as u32
    }

    /// No messages?
    pub fn is_empty(&self) -> bool {
        self.uids.is_empty()
    }

    /// The UIDs the client knows, in sequence order.
    pub fn uids(&self) -> &[Uid] {
        &self.uids
    }

    /// The UIDs the client knows, shared: for work on another thread
    /// (sequence numbers do not shift while a command runs).
    pub fn uid_map(&self) -> Arc<[Uid]> {
        Arc::clone(&self.uids)
    }

    /// The highest UID the client knows (0 if none).
    pub fn last_uid(&self) -> Uid {
        self.uids.last().copied().unwrap_or(0)
    }

    /// Sequence number (1-based) of `uid`, if the client knows it.
    pub fn seq_of(&self, uid: Uid) -> Option<u32> {
        self.uids.binary_search(&uid).ok().map(|i| i as u32 + 1)
    }

    /// The UID with sequence number `seq`.
    pub fn uid(&self, seq: u32) -> Option<Uid> {
        self.uids.get((seq as usize).checked_sub(1)?).copied()
    }

    /// The untagged FETCH response for the message `seq`/`uid`: `seq
    /// FETCH`, or `uid UIDFETCH` under UIDONLY (RFC 9586 §3.3).
    pub fn fetch_data<'a>(&self, seq: u32, uid: Uid, items: &'a [Value]) -> Data<'a> {
        match self.uidonly {
            true => Data::UidFetch { uid, items },
            false => Data::Fetch { seq, items },
        }
    }

    /// Is `uid` `\Recent` for this session?
    pub fn is_recent(&self, uid: Uid) -> bool {
        !self.no_recent && self.recent.contains(uid)
    }

    /// Number of messages with `\Recent` for this session.
    pub fn recent_count(&self) -> u32 {
        match self.no_recent {
            true => 0,
            false => self.recent.count(&self.uids) as u32,
        }
    }

    /// UID ranges holding this session's `\Recent` messages (they may
    /// also span UIDs the client does not know).
    pub fn recent_ranges(&self) -> &[(Uid, Uid)] {
        self.recent.ranges()
    }

    /// While expunges are held back: a HIGHESTMODSEQ below all of them
    /// (see `held_since`).
    pub fn held_since(&self) -> Option<u64> {
        self.held_since.filter(|_| !self.expunged.is_empty())
    }

    /// Is a held-back expunge still in the map (so it is not the store's
    /// UID set, and may not be shared)?
    pub fn holds_expunges(&self) -> bool {
        !self.expunged.is_empty()
    }

    /// Does this selection use the very same map as `other`?
    pub fn shares_map_with(&self, other: &Selection) -> bool {
        Arc::ptr_eq(&self.uids, &other.uids)
    }

    /// Share the map with other sessions in sync with the same modseq
    /// (`views.rs`); only while it is exactly the store's UID set.
    pub fn share(&mut self, views: &Views) {
        if self.expunged.is_empty() {
            views.intern(self.mailbox, self.uidvalidity, self.modseq, &mut self.uids);
        }
    }

    /// This session's own STORE took `modseq`, the one after `prior`:
    /// when the view was at `prior` (and holds no expunges, and no search
    /// context has to re-evaluate the changed messages), it is now at
    /// `modseq`, every change up to it being the STORE's own, which the
    /// STORE reports itself. The sync after the command then reads only
    /// what came later, instead of reading back (and skipping) every
    /// entry the STORE changed: on a whole mailbox, as much work again as
    /// the STORE (issue 21). Returns whether the view moved.
    pub fn own_store(&mut self, prior: u64, modseq: u64) -> bool {
        if self.modseq != prior
            || modseq <= prior
            || !self.expunged.is_empty()
            || self.search.has_contexts()
        {
            return false;
        }
        self.modseq = modseq;
        self.reported.retain(|_, m| *m > modseq);
        true
    }

    /// The client has been shown `uid`'s flags as of `modseq` (FETCH
    /// FLAGS, a STORE reply, or a .SILENT STORE of its own): the next sync
    /// need not report that change again.
    pub fn note_reported(&mut self, uid: Uid, modseq: u64) {
        if modseq > self.modseq {
            let m = self.reported.entry(uid).or_insert(modseq);
            *m = (*m).max(modseq);
        }
    }

    /// Resolve a set to `(seq, uid)` pairs in ascending order. With `uid`,
    /// the set holds UIDs (`*` = highest UID); otherwise sequence numbers.
    /// Numbers that match nothing are skipped, as RFC 3501 allows for UIDs.
    /// `$` names the saved result's messages still in the view, whether
    /// the command is a UID one or not (RFC 5182 §2.1).
    pub fn resolve(&self, set: &SequenceSet, uid: bool) -> Result<Vec<(u32, Uid)>, String> {
        let mut out = Vec::new();
        let saved = set.is_saved().then(|| self.search.saved());
        if uid || saved.is_some() {
            let ranges = match saved {
                Some(runs) => runs.to_vec(),
                None => set.merged(self.last_uid()),
            };
            // Merged ranges are sorted and disjoint: one binary search each.
            for (a, b) in ranges {
                let mut i = self.uids.partition_point(|&u| u < a);
                while let Some(&u) = self.uids.get(i).filter(|&&u| u <= b) {
                    out.push((i as u32 + 1, u));
                    i += 1;
                }
            }
        } else {
            let n = self.len();
            // `1:*` on an empty mailbox names nothing rather than an error
            // (clients send it right after SELECT); explicit numbers past
            // the end are still refused.
            let star = |r: &crate::command::SeqRange| {
                r.start == crate::command::SeqNum::Star || r.end == crate::command::SeqNum::Star
            };
            if n == 0 && set.0.iter().all(star) {
                return Ok(out);
            }
            let ranges = set.merged(n);
            if ranges.iter().any(|&(a, b)| a == 0 || b > n) {
                return Err("Invalid message sequence number".into());
            }
            for (a, b) in ranges {
                for seq in a..=b {
                    out.push((seq, self.uids[(seq - 1) as usize]));
                }
            }
        }
        Ok(out)
    }

    /// Apply changes read from the store; queue EXISTS/RECENT/FETCH now and
    /// EXPUNGE too if `expunge_ok`. Arrivals with a UID above
    /// `recent_above` get `\Recent`.
    ///
    /// Every flag change of a known message is reported (with MODSEQ
    /// under CONDSTORE, RFC 7162 §3.2) unless this session already showed
    /// the client that very change (`reported`).
    pub fn apply(
        &mut self,
        changes: Changes,
        out: &mut Vec<u8>,
        expunge_ok: bool,
        condstore: bool,
        recent_above: Uid,
        views: &Views,
    ) {
        if self.expunged.is_empty() {
            self.held_since = Some(self.modseq);
        }
        for uid in changes.expunged {
            if self.seq_of(uid).is_some() {
                if let Err(at) = self.expunged.binary_search(&uid) {
                    self.expunged.insert(at, uid);
                }
            }
        }
        let max_uid = self.last_uid();
        let mut arrived: Vec<Uid> = Vec::new();
        for e in changes.changed {
            self.learn(&e.flags, out);
            if e.uid > max_uid {
                if arrived.last().is_none_or(|&u| u < e.uid) {
                    arrived.push(e.uid);
                }
                continue;
            }
            let Some(seq) = self.seq_of(e.uid) else {
                continue;
            };
            if self.expunged.binary_search(&e.uid).is_ok()
                || self.reported.get(&e.uid).is_some_and(|&m| m >= e.modseq)
            {
                continue;
            }
            let mut items = vec![
                Value::Atom("UID".into()),
                Value::Num(u64::from(e.uid)),
                Value::Atom("FLAGS".into()),
                flags_value(&flag_atoms(&e.flags, self.is_recent(e.uid))),
            ];
            if condstore {
                items.push(Value::Atom("MODSEQ".into()));
                items.push(Value::List(vec![Value::Num(e.modseq)]));
            }
            self.fetch_data(seq, e.uid, &items).encode(out);
        }
        self.modseq = self.modseq.max(changes.highestmodseq);
        let modseq = self.modseq;
        self.reported.retain(|_, m| *m > modseq);
        if self.reported.is_empty() {
            self.reported = HashMap::new();
        }
        let removed = if expunge_ok {
            std::mem::take(&mut self.expunged)
        } else {
            Vec::new()
        };
        self.announce_expunges(&removed, out);
        if !removed.is_empty() || !arrived.is_empty() {
            self.uids = if self.expunged.is_empty() {
                // Exactly the store's UIDs at `modseq`: the sessions that
                // make this same change share the result (views.rs).
                views.derive(
                    self.mailbox,
                    self.uidvalidity,
                    self.modseq,
                    &self.uids,
                    &removed,
                    &arrived,
                )
            } else {
                build(&self.uids, &removed, &arrived)
            };
        }
        if !removed.is_empty() {
            self.recent.prune(&self.uids);
        }
        if let Some(&last) = arrived.last() {
            let lo = max_uid.max(recent_above).saturating_add(1);
            self.recent.claim(lo, last, &self.uids);
            Data::Exists(self.len()).encode(out);
            if !self.no_recent {
                Data::Recent(self.recent_count()).encode(out);
            }
        }
    }

    /// After [`Selection::apply`]: tell the search contexts what `found`
    /// (evaluated with the changes applied) says (`contexts.rs`).
    pub fn contexts_changed(&mut self, found: crate::view::contexts::Matches, out: &mut Vec<u8>) {
        let (uids, expunged) = (&self.uids, &self.expunged);
        let seq = |u: Uid| uids.binary_search(&u).ok().map(|i| i as u32 + 1);
        let known = |u: Uid| seq(u).is_some() && expunged.binary_search(&u).is_err();
        self.search.changed(found, known, seq, out);
    }

    /// Announce remembered expunges (highest sequence number first, so
    /// each number is valid when sent) and drop them from the map.
    pub fn flush_expunges(&mut self, out: &mut Vec<u8>) {
        if self.expunged.is_empty() {
            return;
        }
        let gone = std::mem::take(&mut self.expunged);
        self.remove(&gone, out);
    }

    /// Remove `gone` from the map now, announcing `* n EXPUNGE` for each
    /// the client knows (highest first, §7.4.1), in one rebuild of the map.
    pub fn remove(&mut self, gone: &[Uid], out: &mut Vec<u8>) {
        let mut gone: Vec<Uid> = gone
            .iter()
            .copied()
            .filter(|&u| self.seq_of(u).is_some())
            .collect();
        if gone.is_empty() {
            return;
        }
        gone.sort_unstable();
        gone.dedup();
        self.announce_expunges(&gone, out);
        self.uids = build(&self.uids, &gone, &[]);
        self.expunged.retain(|u| gone.binary_search(u).is_err());
        self.recent.prune(&self.uids);
    }

    /// `* n EXPUNGE` for each of `gone` (ascending, all known), highest
    /// first so that every number is valid when sent; the map is not
    /// changed yet. Search contexts hear of it first (REMOVEFROM must
    /// come before the EXPUNGE, RFC 5267 §4.3.4). Under QRESYNC one
    /// `* VANISHED uids` instead (RFC 7162 §3.2.10: only UIDs the client
    /// knows, no EARLIER).
    fn announce_expunges(&mut self, gone: &[Uid], out: &mut Vec<u8>) {
        let uids = &self.uids;
        let seq = |u: Uid| uids.binary_search(&u).ok().map(|i| i as u32 + 1);
        self.search.expunged(gone, seq, out);
        if self.vanished {
            let ranges = crate::op::qresync::ranges(gone.iter().copied());
            Data::Vanished {
                earlier: false,
                ranges: &ranges,
            }
            .encode(out);
            return;
        }
        for &uid in gone.iter().rev() {
            if let Some(seq) = self.seq_of(uid) {
                Data::Expunge(seq).encode(out);
            }
        }
    }
}
