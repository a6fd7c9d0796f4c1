//! The Selected state's view of a mailbox (RFC 3501 §2.3.1): the message
//! sequence number -> UID map *as the client knows it*, cached flags, and
//! the changes not yet reported.
//!
//! Rules kept here (RFC 3501 §5.2, §7.4.1): new messages are announced with
//! EXISTS (and RECENT) whenever we sync; flag changes by others with an
//! untagged FETCH; expunges are remembered and only announced (EXPUNGE,
//! renumbering the map) when the current command allows it, so sequence
//! numbers never shift under a FETCH, STORE or SEARCH.

use crate::command::SequenceSet;
use crate::response::{flags_value, untagged, Code, Status, StatusLine, Value};
use mailstore::{Changes, Flags, MailboxId, SystemFlag, Uid};

/// One message as the client knows it.
#[derive(Debug, Clone)]
pub struct Msg {
    /// Its UID.
    pub uid: Uid,
    /// Flags last reported to the client.
    pub flags: Flags,
    /// Its modseq as last seen.
    pub modseq: u64,
    /// `\Recent` for this session (arrived while selected).
    pub recent: bool,
}

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
    /// Messages in sequence order (ascending UID).
    pub msgs: Vec<Msg>,
    /// HIGHESTMODSEQ we are in sync with.
    pub modseq: u64,
    /// Expunged in the store, not yet announced (ascending).
    pub expunged: Vec<Uid>,
    /// Keywords announced in the FLAGS response so far.
    pub keywords: Vec<String>,
}

/// The FLAGS response and PERMANENTFLAGS code (§7.2.6, §7.1) for a
/// mailbox using `keywords`.
pub fn flags_lines(out: &mut Vec<u8>, keywords: &[String], read_only: bool) {
    let mut flags: Vec<String> = ["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"]
        .iter()
        .map(|f| (*f).to_owned())
        .collect();
    flags.extend(keywords.iter().cloned());
    untagged(out, &format!("FLAGS ({})", flags.join(" ")));
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

impl Selection {
    /// Note the keywords of `flags`; a new one is announced with updated
    /// FLAGS/PERMANENTFLAGS responses (§7.2.6) before it is used.
    pub fn learn(&mut self, flags: &Flags, out: &mut Vec<u8>) {
        let mut new = false;
        for k in &flags.keywords {
            if !self.keywords.iter().any(|x| x.eq_ignore_ascii_case(k)) {
                self.keywords.push(k.clone());
                new = true;
            }
        }
        if new {
            flags_lines(out, &self.keywords, self.read_only);
        }
    }

    /// Sequence number (1-based) of `uid`, if the client knows it.
    pub fn seq_of(&self, uid: Uid) -> Option<u32> {
        self.msgs
            .binary_search_by_key(&uid, |m| m.uid)
            .ok()
            .map(|i| i as u32 + 1)
    }

    /// The message with sequence number `seq`.
    pub fn msg(&self, seq: u32) -> Option<&Msg> {
        self.msgs.get((seq as usize).checked_sub(1)?)
    }

    /// Resolve a set to `(seq, uid)` pairs in ascending order. With `uid`,
    /// the set holds UIDs (`*` = highest UID); otherwise sequence numbers.
    /// Numbers that match nothing are skipped, as RFC 3501 allows for UIDs.
    pub fn resolve(&self, set: &SequenceSet, uid: bool) -> Result<Vec<(u32, Uid)>, String> {
        let mut out = Vec::new();
        if uid {
            let max = self.msgs.last().map_or(0, |m| m.uid);
            // Merged ranges are sorted and disjoint: one binary search each.
            for (a, b) in set.merged(max) {
                let mut i = self.msgs.partition_point(|m| m.uid < a);
                while let Some(m) = self.msgs.get(i).filter(|m| m.uid <= b) {
                    out.push((i as u32 + 1, m.uid));
                    i += 1;
                }
            }
        } else {
            let n = self.msgs.len() as u32;
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
                    out.push((seq, self.msgs[(seq - 1) as usize].uid));
                }
            }
        }
        Ok(out)
    }

    /// Number of messages with `\Recent` for this session.
    pub fn recent_count(&self) -> usize {
        self.msgs.iter().filter(|m| m.recent).count()
    }

    /// Apply changes read from the store; queue EXISTS/RECENT/FETCH now and
    /// EXPUNGE too if `expunge_ok`. Arrivals with a UID above
    /// `recent_above` get `\Recent`.
    pub fn apply(
        &mut self,
        changes: Changes,
        out: &mut Vec<u8>,
        expunge_ok: bool,
        condstore: bool,
        recent_above: Uid,
    ) {
        for uid in changes.expunged {
            if self.seq_of(uid).is_some() && self.expunged.binary_search(&uid).is_err() {
                let at = self.expunged.partition_point(|&u| u < uid);
                self.expunged.insert(at, uid);
            }
        }
        let max_uid = self.msgs.last().map_or(0, |m| m.uid);
        let mut arrived = 0;
        for e in changes.changed {
            self.learn(&e.flags, out);
            if e.uid > max_uid {
                if self.msgs.last().is_none_or(|m| m.uid < e.uid) {
                    self.msgs.push(Msg {
                        uid: e.uid,
                        flags: e.flags,
                        modseq: e.modseq,
                        recent: e.uid > recent_above,
                    });
                    arrived += 1;
                }
                continue;
            }
            let Some(seq) = self.seq_of(e.uid) else {
                continue;
            };
            if self.expunged.binary_search(&e.uid).is_ok() {
                continue;
            }
            let m = &mut self.msgs[(seq - 1) as usize];
            let changed = !m.flags.same_as(&e.flags);
            let modseq_moved = m.modseq != e.modseq;
            m.flags = e.flags;
            m.modseq = e.modseq;
            if changed || (condstore && modseq_moved) {
                let mut items = vec![
                    Value::Atom("UID".into()),
                    Value::Num(u64::from(m.uid)),
                    Value::Atom("FLAGS".into()),
                    flags_value(&flag_atoms(&m.flags, m.recent)),
                ];
                if condstore {
                    items.push(Value::Atom("MODSEQ".into()));
                    items.push(Value::List(vec![Value::Num(m.modseq)]));
                }
                fetch_line(out, seq, &items);
            }
        }
        self.modseq = self.modseq.max(changes.highestmodseq);
        if expunge_ok {
            self.flush_expunges(out);
        }
        if arrived > 0 {
            untagged(out, &format!("{} EXISTS", self.msgs.len()));
            untagged(out, &format!("{} RECENT", self.recent_count()));
        }
    }

    /// Announce remembered expunges (highest sequence number first, so
    /// each number is valid when sent) and drop them from the map.
    pub fn flush_expunges(&mut self, out: &mut Vec<u8>) {
        for uid in std::mem::take(&mut self.expunged).into_iter().rev() {
            self.remove(uid, out);
        }
    }

    /// Remove `uid` from the map now, announcing `* n EXPUNGE`.
    pub fn remove(&mut self, uid: Uid, out: &mut Vec<u8>) {
        if let Some(seq) = self.seq_of(uid) {
            self.msgs.remove((seq - 1) as usize);
            untagged(out, &format!("{seq} EXPUNGE"));
        }
        if let Ok(i) = self.expunged.binary_search(&uid) {
            self.expunged.remove(i);
        }
    }
}

/// `* seq FETCH (items)`
pub fn fetch_line(out: &mut Vec<u8>, seq: u32, items: &[Value]) {
    out.extend_from_slice(format!("* {seq} FETCH ").as_bytes());
    Value::List(items.to_vec()).encode(out);
    out.extend_from_slice(b"\r\n");
}
