//! SEARCH evaluated in Rust, for a query too large for one SQL statement
//! (issue 12 item 6: 1,000 keys in one statement were "Expression tree is
//! too large", and thousands of correlated subqueries would cost keys ×
//! messages subquery runs). The mailbox's messages are read once (UID,
//! flags, keywords, modseq, size, dates), the values of each header field
//! named once, and each criterion is a pass over them; AND, OR and NOT are
//! word-wise operations on bit sets ([`Bits`]). TEXT and BODY need the
//! full-text index: one SQL statement each. The evaluation does exactly
//! what the SQL does (ASCII case folding as SQLite's `lower()`, the same
//! comparisons); a property test in `search/mod.rs` holds the two equal.

use std::collections::HashMap;

use super::{Query, DAY};
use crate::error::Result;
use crate::reader::Reader;
use crate::types::{MailboxId, Uid};

/// One message of the mailbox as the criteria see it.
struct Row {
    uid: Uid,
    flags: i64,
    keywords: String,
    modseq: i64,
    size: i64,
    internal_date: i64,
    sent_date: i64,
    /// The save date, or the internal date where it is not known.
    saved_date: i64,
    /// The stored message (RFC 8474 EMAILID).
    message_id: i64,
    /// The message's thread (RFC 8474 THREADID).
    thread_id: i64,
}

/// A set of rows (by index into [`Eval::rows`]).
#[derive(Clone)]
pub(super) struct Bits(Vec<u64>);

impl Bits {
    fn none(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }

    fn all(n: usize) -> Bits {
        let mut b = Bits(vec![u64::MAX; n.div_ceil(64)]);
        b.trim(n);
        b
    }

    /// Clear the bits past row `n`.
    fn trim(&mut self, n: usize) {
        if !n.is_multiple_of(64) {
            if let Some(last) = self.0.last_mut() {
                *last &= (1u64 << (n % 64)) - 1;
            }
        }
    }

    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }

    fn get(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }

    /// Set rows `lo..hi`.
    fn set_range(&mut self, lo: usize, hi: usize) {
        let mut i = lo;
        while i < hi {
            if i.is_multiple_of(64) && hi - i >= 64 {
                self.0[i / 64] = u64::MAX;
                i += 64;
            } else {
                self.set(i);
                i += 1;
            }
        }
    }

    fn and(&mut self, o: &Bits) {
        self.0.iter_mut().zip(&o.0).for_each(|(a, b)| *a &= b);
    }

    fn or(&mut self, o: &Bits) {
        self.0.iter_mut().zip(&o.0).for_each(|(a, b)| *a |= b);
    }

    fn not(&mut self, n: usize) {
        self.0.iter_mut().for_each(|a| *a = !*a);
        self.trim(n);
    }

    fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }
}

/// A large query evaluated in Rust (see the module docs): the mailbox's
/// messages are read once, each criterion is a pass over them (header
/// fields read once per field name; TEXT and BODY, which need the
/// full-text index, one SQL statement each), and AND/OR/NOT are word-wise
/// operations on bit sets.
pub(super) struct Eval<'r> {
    reader: &'r Reader,
    mailbox: MailboxId,
    rows: Vec<Row>,
    /// Header field (lower case) -> (row, value in ASCII lower case).
    headers: HashMap<String, Vec<(usize, String)>>,
    /// Each row's keywords as `" k1 k2 "`, ASCII lower case, once needed.
    keywords: Option<Vec<String>>,
}

impl<'r> Eval<'r> {
    pub(super) fn new(reader: &'r Reader, mailbox: MailboxId) -> Result<Eval<'r>> {
        let mut st = reader.conn().prepare_cached(
            "SELECT e.uid, e.flags, e.keywords, e.modseq, m.size, m.internal_date, \
             coalesce(m.sent_date, m.internal_date), coalesce(e.saved, m.internal_date), e.message_id, \
             coalesce(m.thread_id, m.id) \
             FROM entries e JOIN messages m ON m.id = e.message_id \
             WHERE e.mailbox_id = ?1 ORDER BY e.uid",
        )?;
        let rows = st
            .query_map([mailbox], |r| {
                Ok(Row {
                    uid: r.get::<_, i64>(0)? as Uid,
                    flags: r.get(1)?,
                    keywords: r.get(2)?,
                    modseq: r.get(3)?,
                    size: r.get(4)?,
                    internal_date: r.get(5)?,
                    sent_date: r.get(6)?,
                    saved_date: r.get(7)?,
                    message_id: r.get(8)?,
                    thread_id: r.get(9)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<Row>>>()?;
        Ok(Eval {
            reader,
            mailbox,
            rows,
            headers: HashMap::new(),
            keywords: None,
        })
    }

    /// The row holding `uid`, if any.
    fn row_of(&self, uid: Uid) -> Option<usize> {
        self.rows.binary_search_by_key(&uid, |r| r.uid).ok()
    }

    fn matching(&self, f: impl Fn(&Row) -> bool) -> Bits {
        let mut b = Bits::none(self.rows.len());
        for (i, r) in self.rows.iter().enumerate() {
            if f(r) {
                b.set(i);
            }
        }
        b
    }

    pub(super) fn eval(&mut self, q: &Query) -> Result<Bits> {
        let n = self.rows.len();
        Ok(match q {
            Query::All => Bits::all(n),
            Query::Uids(ranges) => {
                let mut b = Bits::none(n);
                for (a, z) in ranges {
                    let (a, z) = (*a.min(z), *a.max(z));
                    let lo = self.rows.partition_point(|r| r.uid < a);
                    let hi = self.rows.partition_point(|r| r.uid <= z);
                    b.set_range(lo, hi);
                }
                b
            }
            Query::Flag(f, on) => {
                let bit = i64::from(f.bit());
                self.matching(|r| (r.flags & bit != 0) == *on)
            }
            Query::Keyword(k, on) => {
                let rows = &self.rows;
                let padded = self.keywords.get_or_insert_with(|| {
                    rows.iter()
                        .map(|r| format!(" {} ", r.keywords.to_ascii_lowercase()))
                        .collect()
                });
                let needle = format!(" {} ", k.to_ascii_lowercase());
                let mut b = Bits::none(n);
                for (i, kw) in padded.iter().enumerate() {
                    if kw.contains(&needle) == *on {
                        b.set(i);
                    }
                }
                b
            }
            Query::Header(name, needle) => {
                let field = name.trim().to_ascii_lowercase();
                if !self.headers.contains_key(&field) {
                    let values = self.header_values(&field)?;
                    self.headers.insert(field.clone(), values);
                }
                let needle = needle.to_ascii_lowercase();
                let mut b = Bits::none(n);
                for (i, v) in self.headers.get(&field).into_iter().flatten() {
                    if v.contains(&needle) {
                        b.set(*i);
                    }
                }
                b
            }
            Query::Body(_) | Query::Text(_) => {
                let mut b = Bits::none(n);
                for uid in self.reader.search_statement(self.mailbox, q, &Vec::new())? {
                    if let Some(i) = self.row_of(uid) {
                        b.set(i);
                    }
                }
                b
            }
            Query::Larger(v) => {
                let v = v.min(&(i64::MAX as u64)).to_owned() as i64;
                self.matching(|r| r.size > v)
            }
            Query::Smaller(v) => {
                let v = v.min(&(i64::MAX as u64)).to_owned() as i64;
                self.matching(|r| r.size < v)
            }
            Query::Before(d) => self.matching(|r| r.internal_date < *d),
            Query::Since(d) => self.matching(|r| r.internal_date >= *d),
            Query::On(d) => {
                let end = d.saturating_add(DAY);
                self.matching(|r| r.internal_date >= *d && r.internal_date < end)
            }
            Query::SentBefore(d) => self.matching(|r| r.sent_date < *d),
            Query::SentSince(d) => self.matching(|r| r.sent_date >= *d),
            Query::SentOn(d) => {
                let end = d.saturating_add(DAY);
                self.matching(|r| r.sent_date >= *d && r.sent_date < end)
            }
            Query::SavedBefore(d) => self.matching(|r| r.saved_date < *d),
            Query::SavedSince(d) => self.matching(|r| r.saved_date >= *d),
            Query::SavedOn(d) => {
                let end = d.saturating_add(DAY);
                self.matching(|r| r.saved_date >= *d && r.saved_date < end)
            }
            Query::ModSeq(v) => {
                let v = v.min(&(i64::MAX as u64)).to_owned() as i64;
                self.matching(|r| r.modseq >= v)
            }
            Query::Message(id) => self.matching(|r| r.message_id == *id),
            Query::Thread(id) => self.matching(|r| r.thread_id == *id),
            Query::Not(a) => {
                let mut b = self.eval(a)?;
                b.not(n);
                b
            }
            Query::And(v) => {
                let mut acc = Bits::all(n);
                for q in v {
                    acc.and(&self.eval(q)?);
                    if acc.is_empty() {
                        break;
                    }
                }
                acc
            }
            Query::Any(v) => {
                let mut acc = Bits::none(n);
                for q in v {
                    acc.or(&self.eval(q)?);
                }
                acc
            }
            Query::Or(a, b) => {
                let mut acc = self.eval(a)?;
                acc.or(&self.eval(b)?);
                acc
            }
        })
    }

    /// Every value of the header field `field` (lower case) in the
    /// mailbox, by row, in ASCII lower case (as SQLite's `lower()`).
    fn header_values(&self, field: &str) -> Result<Vec<(usize, String)>> {
        if super::sql::indexed_field(field).is_some() {
            // Schema v14's header_index: already in ASCII lower case.
            let mut st = self.reader.conn().prepare_cached(
                "SELECT uid, value FROM header_index WHERE mailbox_id = ?1 AND name = ?2",
            )?;
            let pairs = st
                .query_map(rusqlite::params![self.mailbox, field], |r| {
                    Ok((r.get::<_, i64>(0)? as Uid, r.get::<_, String>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            return Ok(pairs
                .into_iter()
                .filter_map(|(uid, v)| Some((self.row_of(uid)?, v)))
                .collect());
        }
        let mut st = self.reader.conn().prepare_cached(
            "SELECT e.uid, h.value FROM entries e \
             JOIN message_headers h ON h.message_id = e.message_id \
             WHERE e.mailbox_id = ?1 AND h.name = lower(?2)",
        )?;
        let pairs = st
            .query_map(rusqlite::params![self.mailbox, field], |r| {
                Ok((r.get::<_, i64>(0)? as Uid, r.get::<_, String>(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(pairs
            .into_iter()
            .filter_map(|(uid, v)| Some((self.row_of(uid)?, v.to_ascii_lowercase())))
            .collect())
    }

    pub(super) fn uids(&self, b: &Bits) -> Vec<Uid> {
        (0..self.rows.len())
            .filter(|i| b.get(*i))
            .map(|i| self.rows[i].uid)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_sets() {
        for n in [0, 1, 63, 64, 65, 130] {
            let mut b = Bits::none(n);
            b.set_range(n / 3, n);
            let want: Vec<usize> = (n / 3..n).collect();
            assert_eq!((0..n).filter(|i| b.get(*i)).collect::<Vec<_>>(), want);
            b.not(n);
            assert_eq!((0..n).filter(|i| b.get(*i)).count(), n / 3);
            let mut all = Bits::all(n);
            all.and(&b);
            all.or(&Bits::none(n));
            assert_eq!((0..n).filter(|i| all.get(*i)).count(), n / 3);
            let mut none = Bits::all(n);
            none.not(n);
            assert!(none.is_empty());
        }
    }
}
