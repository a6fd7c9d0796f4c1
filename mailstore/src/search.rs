//! SEARCH criteria (RFC 3501 §6.4.4, RFC 7162 MODSEQ) as a protocol-neutral
//! [`Query`] tree, compiled to SQL.
//!
//! A query of up to [`SQL_KEYS`] criteria is one SQL statement, its
//! n-ary AND/OR written as balanced trees, so SQLite's expression depth
//! (at most 1,000) grows with the log of their length, not the length.
//!
//! A larger query is evaluated in Rust (issue 12 item 6: 1,000 keys in one
//! statement were "Expression tree is too large", and thousands of
//! correlated subqueries would cost keys × messages subquery runs): the
//! mailbox's messages are read once (UID, flags, keywords, modseq, size,
//! dates), the values of each header field named once, and each criterion
//! is a pass over them; AND, OR and NOT are word-wise operations on bit
//! sets. TEXT and BODY need the full-text index: one SQL statement each.
//! The Rust evaluation does exactly what the SQL does (ASCII case folding
//! as SQLite's `lower()`, the same comparisons); a property test holds the
//! two equal. All of it runs in the caller's one read snapshot.

use serde::{Deserialize, Serialize};

use crate::types::{SystemFlag, Uid};

/// A search criterion. Substring matches are case-insensitive (ASCII for
/// headers; Unicode case folding for body/text via the FTS5 trigram index).
///
/// Date criteria take the unix timestamp of the start of the day (in the
/// time zone the caller chose) and have day granularity:
/// `Before(d)`: date < d; `On(d)`: d <= date < d + 86400; `Since(d)`: date >= d.
/// `Before`/`On`/`Since` use INTERNALDATE. `SentBefore`/`SentOn`/`SentSince`
/// use the `Date:` header read as the sender's wall-clock time (its zone
/// disregarded, as RFC 3501 says); a message without a parseable `Date:`
/// uses its INTERNALDATE.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Query {
    /// Every message.
    All,
    /// UIDs in any of these inclusive ranges.
    Uids(Vec<(Uid, Uid)>),
    /// System flag set (`true`) or not set (`false`).
    Flag(SystemFlag, bool),
    /// Keyword set (`true`) or not set (`false`).
    Keyword(String, bool),
    /// Header field `name` contains the substring; `""` = has the field.
    Header(String, String),
    /// Decoded body text contains the substring.
    Body(String),
    /// Header or body contains the substring.
    Text(String),
    /// RFC822.SIZE larger than.
    Larger(u64),
    /// RFC822.SIZE smaller than.
    Smaller(u64),
    /// INTERNALDATE before the day.
    Before(i64),
    /// INTERNALDATE within the day.
    On(i64),
    /// INTERNALDATE on or after the day.
    Since(i64),
    /// `Date:` before the day.
    SentBefore(i64),
    /// `Date:` within the day.
    SentOn(i64),
    /// `Date:` on or after the day.
    SentSince(i64),
    /// Entry modseq >= the value (RFC 7162 §3.1.5).
    ModSeq(u64),
    /// Negation.
    Not(Box<Query>),
    /// All of these (empty = all messages).
    And(Vec<Query>),
    /// Either.
    Or(Box<Query>, Box<Query>),
    /// Any of these (empty = no message): a long OR without nesting.
    Any(Vec<Query>),
}

use rusqlite::types::Value;
use std::collections::HashMap;

use crate::error::{Result, StoreError};
use crate::reader::Reader;
use crate::types::MailboxId;

/// Deepest accepted nesting of Not/And/Or/Any.
const MAX_DEPTH: usize = 64;
/// Most criteria (leaves of the query tree) compiled into one SQL
/// statement; larger queries are evaluated in Rust (see the module docs).
pub const SQL_KEYS: usize = 32;
/// Above this many UID ranges, ranges are passed as one JSON parameter.
const INLINE_RANGES: usize = 16;
const DAY: i64 = 86_400;

fn int(v: u64) -> Value {
    Value::Integer(v.min(i64::MAX as u64) as i64)
}

/// Escape a substring as an FTS5 phrase.
fn fts_phrase(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Which FTS columns a text criterion looks at.
#[derive(Clone, Copy)]
enum TextScope {
    Body,
    All,
}

struct Sql {
    text: String,
    params: Vec<Value>,
}

impl Sql {
    fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }
    fn param(&mut self, v: Value) {
        self.params.push(v);
        self.text.push('?');
        self.text.push_str(&self.params.len().to_string());
    }

    fn text_match(&mut self, needle: &str, scope: TextScope) {
        if needle.is_empty() {
            self.push("1");
        } else if needle.chars().count() >= 3 {
            // Trigram index: any substring of >= 3 characters, case-folded;
            // text not indexed yet is scanned with the same folding.
            self.push("(e.message_id IN (SELECT rowid FROM message_text WHERE message_text MATCH ");
            let q = match scope {
                TextScope::Body => format!("body : {}", fts_phrase(needle)),
                TextScope::All => fts_phrase(needle),
            };
            self.param(Value::Text(q));
            // Text still waiting for the index: only this mailbox's (?1 is
            // the mailbox). The backlog may hold much other mail (a burst
            // of 64 KiB messages over SMTP) that a SEARCH here must not
            // scan. The plan walks the (small) pending table and probes
            // the covering index entries_message(message_id, mailbox_id);
            // CROSS JOIN keeps that order, and `CASE WHEN x.uid > 0` (always
            // true: UIDs start at 1) ties the folding to x, so SQLite folds
            // the text only after the probe matched instead of for every
            // pending row. (A condition on x.mailbox_id would not do: SQLite
            // propagates `x.mailbox_id = ?1` into it and hoists the call.)
            self.push(
                ") OR e.message_id IN (SELECT p.id FROM pending_text p \
                 CROSS JOIN entries x ON x.message_id = p.id \
                 WHERE x.mailbox_id = ?1 AND (",
            );
            self.push(crate::schema::CONTAINS_FN);
            self.push("(CASE WHEN x.uid > 0 THEN ");
            self.push(crate::indexer::PENDING_BODY);
            self.push(" END, ");
            self.param(Value::Text(needle.to_string()));
            self.push(")");
            if let TextScope::All = scope {
                self.push(" OR ");
                self.push(crate::schema::CONTAINS_FN);
                self.push("(CASE WHEN x.uid > 0 THEN p.headers END, ");
                self.param(Value::Text(needle.to_string()));
                self.push(")");
            }
            self.push(")))");
        } else {
            // Trigrams cannot match 1-2 characters: scan the stored text
            // (indexed or still pending).
            self.push("(");
            for (i, (table, key, body)) in [
                ("message_text", "rowid", "p.body"),
                ("pending_text", "id", crate::indexer::PENDING_BODY),
            ]
            .iter()
            .enumerate()
            {
                if i > 0 {
                    self.push(" OR ");
                }
                self.push(&format!(
                    "EXISTS (SELECT 1 FROM {table} p WHERE p.{key} = e.message_id AND (instr(lower({body}), lower("
                ));
                self.param(Value::Text(needle.to_string()));
                self.push(")) > 0");
                if let TextScope::All = scope {
                    self.push(" OR instr(lower(p.headers), lower(");
                    self.param(Value::Text(needle.to_string()));
                    self.push(")) > 0");
                }
                self.push("))");
            }
            self.push(")");
        }
    }

    fn day_range(&mut self, col: &str, q: &Query) {
        let (op, d) = match q {
            Query::Before(d) | Query::SentBefore(d) => ("<", *d),
            Query::Since(d) | Query::SentSince(d) => (">=", *d),
            Query::On(d) | Query::SentOn(d) => {
                self.push(&format!("({col} >= "));
                self.param(Value::Integer(*d));
                self.push(&format!(" AND {col} < "));
                self.param(Value::Integer(d.saturating_add(DAY)));
                self.push(")");
                return;
            }
            _ => return self.push("0"),
        };
        self.push(&format!("{col} {op} "));
        self.param(Value::Integer(d));
    }

    /// `items` joined by `op` (` AND ` / ` OR `) as a balanced tree, each
    /// compiled at `depth`: SQLite parses `a AND b AND c` as a left-deep
    /// tree, whose depth would be the number of items.
    fn join(&mut self, items: &[&Query], op: &str, depth: usize) -> Result<()> {
        self.push("(");
        match items {
            [] => self.push(if op == " AND " { "1" } else { "0" }),
            [one] => self.compile(one, depth)?,
            _ => {
                let (left, right) = items.split_at(items.len() / 2);
                self.join(left, op, depth)?;
                self.push(op);
                self.join(right, op, depth)?;
            }
        }
        self.push(")");
        Ok(())
    }

    fn compile(&mut self, q: &Query, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(StoreError::Invalid(
                "search criteria nested too deeply".into(),
            ));
        }
        match q {
            Query::All => self.push("1"),
            Query::Uids(ranges) if ranges.is_empty() => self.push("0"),
            Query::Uids(ranges) if ranges.len() <= INLINE_RANGES => {
                self.push("(");
                for (i, (a, b)) in ranges.iter().enumerate() {
                    if i > 0 {
                        self.push(" OR ");
                    }
                    self.push("e.uid BETWEEN ");
                    self.param(Value::Integer(i64::from(*a.min(b))));
                    self.push(" AND ");
                    self.param(Value::Integer(i64::from(*a.max(b))));
                }
                self.push(")");
            }
            Query::Uids(ranges) => {
                let norm: Vec<(u32, u32)> =
                    ranges.iter().map(|(a, b)| (*a.min(b), *a.max(b))).collect();
                let json =
                    serde_json::to_string(&norm).map_err(|e| StoreError::Invalid(e.to_string()))?;
                self.push("EXISTS (SELECT 1 FROM json_each(");
                self.param(Value::Text(json));
                self.push(") j WHERE e.uid BETWEEN j.value ->> 0 AND j.value ->> 1)");
            }
            Query::Flag(f, on) => {
                self.push("(e.flags & ");
                self.param(Value::Integer(i64::from(f.bit())));
                self.push(if *on { ") != 0" } else { ") = 0" });
            }
            Query::Keyword(k, on) => {
                self.push("instr(' ' || lower(e.keywords) || ' ', ' ' || lower(");
                self.param(Value::Text(k.clone()));
                self.push(if *on {
                    ") || ' ') > 0"
                } else {
                    ") || ' ') = 0"
                });
            }
            Query::Header(name, needle) => {
                self.push("EXISTS (SELECT 1 FROM message_headers h WHERE h.message_id = e.message_id AND h.name = lower(");
                self.param(Value::Text(name.trim().to_string()));
                self.push(") AND instr(lower(h.value), lower(");
                self.param(Value::Text(needle.clone()));
                self.push(")) > 0)");
            }
            Query::Body(s) => self.text_match(s, TextScope::Body),
            Query::Text(s) => self.text_match(s, TextScope::All),
            Query::Larger(n) => {
                self.push("m.size > ");
                self.param(int(*n));
            }
            Query::Smaller(n) => {
                self.push("m.size < ");
                self.param(int(*n));
            }
            Query::Before(_) | Query::On(_) | Query::Since(_) => {
                self.day_range("m.internal_date", q)
            }
            Query::SentBefore(_) | Query::SentOn(_) | Query::SentSince(_) => {
                self.day_range("coalesce(m.sent_date, m.internal_date)", q)
            }
            Query::ModSeq(n) => {
                self.push("e.modseq >= ");
                self.param(int(*n));
            }
            Query::Not(inner) => {
                self.push("NOT (");
                self.compile(inner, depth + 1)?;
                self.push(")");
            }
            Query::And(all) if all.is_empty() => self.push("1"),
            Query::And(all) => self.join(&all.iter().collect::<Vec<_>>(), " AND ", depth + 1)?,
            Query::Any(all) if all.is_empty() => self.push("0"),
            Query::Any(all) => self.join(&all.iter().collect::<Vec<_>>(), " OR ", depth + 1)?,
            Query::Or(a, b) => {
                self.push("((");
                self.compile(a, depth + 1)?;
                self.push(") OR (");
                self.compile(b, depth + 1)?;
                self.push("))");
            }
        }
        Ok(())
    }
}

/// Refuse a query nested deeper than [`MAX_DEPTH`] (before anything
/// recurses over all of it).
fn check_depth(q: &Query, depth: usize) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(StoreError::Invalid(
            "search criteria nested too deeply".into(),
        ));
    }
    match q {
        Query::Not(a) => check_depth(a, depth + 1),
        Query::Or(a, b) => {
            check_depth(a, depth + 1)?;
            check_depth(b, depth + 1)
        }
        Query::And(v) | Query::Any(v) => v.iter().try_for_each(|q| check_depth(q, depth + 1)),
        _ => Ok(()),
    }
}

/// Criteria (leaves) in `q`; an empty AND/OR counts as one.
fn leaves(q: &Query) -> usize {
    match q {
        Query::Not(a) => leaves(a),
        Query::Or(a, b) => leaves(a) + leaves(b),
        Query::And(v) | Query::Any(v) if !v.is_empty() => v.iter().map(leaves).sum(),
        _ => 1,
    }
}

/// One message of the mailbox as the criteria see it.
struct Row {
    uid: Uid,
    flags: i64,
    keywords: String,
    modseq: i64,
    size: i64,
    internal_date: i64,
    sent_date: i64,
}

/// A set of rows (by index into [`Eval::rows`]).
#[derive(Clone)]
struct Bits(Vec<u64>);

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
struct Eval<'r> {
    reader: &'r Reader,
    mailbox: MailboxId,
    rows: Vec<Row>,
    /// Header field (lower case) -> (row, value in ASCII lower case).
    headers: HashMap<String, Vec<(usize, String)>>,
    /// Each row's keywords as `" k1 k2 "`, ASCII lower case, once needed.
    keywords: Option<Vec<String>>,
}

impl<'r> Eval<'r> {
    fn new(reader: &'r Reader, mailbox: MailboxId) -> Result<Eval<'r>> {
        let mut st = reader.conn().prepare_cached(
            "SELECT e.uid, e.flags, e.keywords, e.modseq, m.size, m.internal_date, \
             coalesce(m.sent_date, m.internal_date) \
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

    fn eval(&mut self, q: &Query) -> Result<Bits> {
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
                for uid in self.reader.search_statement(self.mailbox, q)? {
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
            Query::ModSeq(v) => {
                let v = v.min(&(i64::MAX as u64)).to_owned() as i64;
                self.matching(|r| r.modseq >= v)
            }
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

    fn uids(&self, b: &Bits) -> Vec<Uid> {
        (0..self.rows.len())
            .filter(|i| b.get(*i))
            .map(|i| self.rows[i].uid)
            .collect()
    }
}

impl Reader {
    /// UIDs (ascending) of the mailbox's messages matching `q`: one SQL
    /// statement (FTS5 trigram index for body/text substrings) for up to
    /// [`SQL_KEYS`] criteria, else evaluated in Rust over one read of the
    /// mailbox (see the module docs).
    ///
    /// # Errors
    /// Database errors; [`StoreError::Invalid`] for absurdly deep nesting.
    pub fn search(&self, mailbox: MailboxId, q: &Query) -> Result<Vec<Uid>> {
        self.search_with(mailbox, q, SQL_KEYS)
    }

    fn search_with(&self, mailbox: MailboxId, q: &Query, sql_keys: usize) -> Result<Vec<Uid>> {
        check_depth(q, 0)?;
        if leaves(q) <= sql_keys {
            return self.search_statement(mailbox, q);
        }
        let mut ev = Eval::new(self, mailbox)?;
        let found = ev.eval(q)?;
        Ok(ev.uids(&found))
    }

    /// UIDs (ascending) matching `q`, in one statement.
    fn search_statement(&self, mailbox: MailboxId, q: &Query) -> Result<Vec<Uid>> {
        let mut sql = Sql {
            text: String::from(
                "SELECT e.uid FROM entries e JOIN messages m ON m.id = e.message_id WHERE e.mailbox_id = ?1 AND ",
            ),
            params: vec![Value::Integer(mailbox)],
        };
        sql.compile(q, 0)?;
        sql.push(" ORDER BY e.uid");
        let mut st = self.conn().prepare(&sql.text)?;
        let rows = st.query_map(rusqlite::params_from_iter(sql.params.iter()), |r| {
            r.get::<_, i64>(0)
        })?;
        Ok(rows
            .map(|r| r.map(|u| u as Uid))
            .collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{Flags, Store};
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    /// A mailbox of 12 messages: subjects "s0".."s11" (every third also
    /// says "common"), sizes growing, every other one seen, every third
    /// with `$Todo` (every fourth also `Work`), every fifth without a Date,
    /// even ones with two X-Tag fields.
    fn setup() -> (tempfile::TempDir, Store, MailboxId) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path().join("m.db")).unwrap();
        let mb = s
            .write_sync(|tx| {
                let u = tx.create_user("a@x", "-")?;
                let mb = tx.create_mailbox(u, "Box", None)?;
                for n in 0..12u32 {
                    let extra = if n % 3 == 0 { " common" } else { "" };
                    let date = if n % 5 == 0 {
                        String::new()
                    } else {
                        format!("Date: {} Nov 2023 10:00:00 +0000\r\n", n + 1)
                    };
                    let tags = if n % 2 == 0 {
                        "X-Tag: one\r\nX-Tag: two\r\n"
                    } else {
                        ""
                    };
                    let raw = format!(
                        "Subject: s{n}{extra}\r\nFrom: f{}@x\r\n{date}{tags}\r\n{}\r\n",
                        n % 4,
                        "body ".repeat(n as usize + 1)
                    );
                    let mut keywords = Vec::new();
                    if n % 3 == 0 {
                        keywords.push("$Todo".to_owned());
                    }
                    if n % 4 == 0 {
                        keywords.push("Work".to_owned());
                    }
                    let flags = Flags {
                        system: if n % 2 == 0 { Flags::SEEN } else { 0 }
                            | if n % 5 == 1 { Flags::FLAGGED } else { 0 },
                        keywords,
                    };
                    tx.append(
                        mb,
                        raw.as_bytes(),
                        &flags,
                        1_700_000_000 + i64::from(n) * 86_400,
                    )?;
                }
                Ok(mb)
            })
            .unwrap();
        (dir, s, mb)
    }

    /// Leaves; `sizes` and `modseqs` are the messages' (for exact
    /// comparisons).
    fn leaf(sizes: Vec<u64>, modseqs: Vec<u64>) -> impl Strategy<Value = Query> {
        let size = move || {
            prop_oneof![
                Just(u64::MAX),
                0u64..400,
                prop::sample::select(sizes.clone())
            ]
        };
        let modseq = prop_oneof![Just(u64::MAX), 0u64..40, prop::sample::select(modseqs)];
        let day = |(d, off): (i64, i64)| 1_700_000_000 + d * 86_400 + off;
        let days = || (0i64..14, -1i64..=1);
        prop_oneof![
            Just(Query::All),
            (
                prop::sample::select(
                    &[SystemFlag::Seen, SystemFlag::Flagged, SystemFlag::Deleted][..]
                ),
                any::<bool>()
            )
                .prop_map(|(f, on)| Query::Flag(f, on)),
            (
                prop::sample::select(&["$todo", "WORK", "Work", "wor", "$Todo Work", ""][..]),
                any::<bool>()
            )
                .prop_map(|(k, on)| Query::Keyword(k.into(), on)),
            (0u32..13).prop_map(|n| Query::Header("Subject".into(), format!("s{n}"))),
            prop::sample::select(&["COMMON", "", "s1 c", "1"][..])
                .prop_map(|v| Query::Header(" subject ".into(), v.into())),
            (0u32..5).prop_map(|n| Query::Header("From".into(), format!("F{n}@"))),
            prop::sample::select(&["one", "TWO", "", "three"][..])
                .prop_map(|v| Query::Header("x-tag".into(), v.into())),
            Just(Query::Header("Date".into(), String::new())),
            (0u32..14, 0u32..14).prop_map(|(a, b)| Query::Uids(vec![(a, b)])),
            Just(Query::Uids(vec![])),
            prop::collection::vec((1u32..14, 0u32..2), 17..20)
                .prop_map(|v| Query::Uids(v.into_iter().map(|(a, l)| (a + l, a)).collect())),
            size().prop_map(Query::Larger),
            size().prop_map(Query::Smaller),
            modseq.prop_map(Query::ModSeq),
            prop::sample::select(&["body body body", "bo", "", "s3", "y b", "BODY"][..])
                .prop_map(|t| Query::Body(t.into())),
            prop::sample::select(&["s3", "S1 com", "f2@", "x", "body body"][..])
                .prop_map(|t| Query::Text(t.into())),
            days().prop_map(move |d| Query::Since(day(d))),
            days().prop_map(move |d| Query::Before(day(d))),
            days().prop_map(move |d| Query::On(day(d))),
            Just(Query::On(i64::MAX)),
            (1_698_000_000i64..1_700_000_000).prop_map(Query::SentSince),
            (1_698_000_000i64..1_700_000_000).prop_map(Query::SentBefore),
            (0i64..14).prop_map(|d| Query::SentOn(1_698_796_800 + d * 86_400)),
        ]
    }

    fn query(sizes: Vec<u64>, modseqs: Vec<u64>) -> impl Strategy<Value = Query> {
        leaf(sizes, modseqs).prop_recursive(5, 48, 6, |inner| {
            prop_oneof![
                inner.clone().prop_map(|q| Query::Not(Box::new(q))),
                (inner.clone(), inner.clone())
                    .prop_map(|(a, b)| Query::Or(Box::new(a), Box::new(b))),
                prop::collection::vec(inner.clone(), 0..6).prop_map(Query::And),
                prop::collection::vec(inner, 0..6).prop_map(Query::Any),
            ]
        })
    }

    /// Evaluated in Rust, a query answers as it does in one statement,
    /// with its text both waiting for the index and indexed.
    #[test]
    fn rust_evaluation_agrees_with_sql() {
        let (dir, s, mb) = setup();
        let conn = crate::schema::connect(&dir.path().join("m.db"), false).unwrap();
        let column = |sql: &str| -> Vec<u64> {
            conn.prepare(sql)
                .unwrap()
                .query_map([], |r| r.get::<_, i64>(0))
                .unwrap()
                .map(|s| s.unwrap() as u64)
                .collect()
        };
        let (sizes, modseqs) = (
            column("SELECT size FROM messages"),
            column("SELECT modseq FROM entries"),
        );
        let compare = |cases: u32| {
            let mut runner = TestRunner::new(Config::with_cases(cases));
            runner
                .run(&query(sizes.clone(), modseqs.clone()), |q| {
                    let q2 = q.clone();
                    let (sql, rust) = s
                        .read_sync(move |r| {
                            Ok((
                                r.search_with(mb, &q2, usize::MAX)?,
                                r.search_with(mb, &q2, 0)?,
                            ))
                        })
                        .unwrap();
                    prop_assert_eq!(sql, rust, "{:?}", q);
                    Ok(())
                })
                .unwrap();
        };
        compare(300);
        while crate::indexer::index_some(&conn, usize::MAX).unwrap().rows > 0 {}
        compare(300);
    }

    /// Thousands of criteria, flat or under NOT, AND and OR: answered, in
    /// several statements, with the right messages.
    #[test]
    fn thousands_of_criteria_are_answered() {
        let (_d, s, mb) = setup();
        let subjects = |n: usize| -> Vec<Query> {
            (0..n)
                .map(|i| Query::Header("Subject".into(), format!("s{}", i % 40 + 12)))
                .collect()
        };
        // 2,000 ORed subjects of which only "s1" (s1, s10, s11) matches.
        let mut any = subjects(2000);
        any.push(Query::Header("Subject".into(), "s1".into()));
        let q = Query::Any(any);
        let q2 = Query::Not(Box::new(q.clone()));
        // 1,000 x (OR SUBJECT a SUBJECT b), flat: the shape.
        let q3 = Query::And(
            (0..1000)
                .map(|i| {
                    Query::Or(
                        Box::new(Query::Header("Subject".into(), "zz".into())),
                        Box::new(Query::Uids(vec![(i % 3 + 1, 20)])),
                    )
                })
                .collect(),
        );
        // 3,000 UID sets ANDed: only 5 is in all of them.
        let q4 = Query::And(
            (0..3000)
                .map(|i| Query::Uids(vec![(5 - i % 3, 5 + i % 5)]))
                .collect(),
        );
        let (a, b, c, d) = s
            .read_sync(move |r| {
                Ok((
                    r.search(mb, &q)?,
                    r.search(mb, &q2)?,
                    r.search(mb, &q3)?,
                    r.search(mb, &q4)?,
                ))
            })
            .unwrap();
        assert_eq!(a, [2, 11, 12]);
        assert_eq!(b, [1, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(c, (3..=12).collect::<Vec<_>>());
        assert_eq!(d, [5]);
    }

    /// One statement holds a long AND (balanced, so SQLite's expression
    /// depth stays far under 1,000) and the deepest nesting accepted.
    #[test]
    fn one_statement_takes_long_lists_and_deep_nesting() {
        let (_d, s, mb) = setup();
        let flat = Query::And(
            (0..1500)
                .map(|_| Query::Flag(SystemFlag::Seen, true))
                .collect(),
        );
        let mut deep = Query::Header("Subject".into(), "s1".into());
        for i in 0.. {
            let next = match i % 3 {
                0 => Query::Or(Box::new(deep.clone()), Box::new(Query::Uids(vec![(7, 7)]))),
                1 => Query::And(vec![Query::All, deep.clone()]),
                _ => Query::Not(Box::new(Query::Not(Box::new(deep.clone())))),
            };
            if check_depth(&next, 0).is_err() {
                break;
            }
            deep = next;
        }
        let mut too_deep = Query::All;
        for _ in 0..=MAX_DEPTH {
            too_deep = Query::Any(vec![too_deep]);
        }
        let (a, b, c) = s
            .read_sync(move |r| {
                Ok((
                    r.search_statement(mb, &flat)?,
                    r.search_with(mb, &deep, usize::MAX)?,
                    r.search(mb, &too_deep).is_err(),
                ))
            })
            .unwrap();
        assert_eq!(a, [1, 3, 5, 7, 9, 11]);
        assert_eq!(b, [2, 7, 11, 12]);
        assert!(c);
    }

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
