//! SEARCH criteria (RFC 3501 §6.4.4, RFC 7162 MODSEQ) as a protocol-neutral
//! [`Query`] tree, and [`Reader::search`], which answers one in the
//! caller's one read snapshot in one of two ways:
//!
//! - a query of up to [`SQL_KEYS`] criteria is one SQL statement
//!   (`sql.rs`: the translation, FTS5 trigram index for TEXT and BODY),
//!   its header criteria on indexed fields answered first by the header
//!   cache (`cache.rs`: a mailbox's values of a field in memory); a query
//!   that is one such criterion needs no statement at all;
//! - a larger query is evaluated in Rust over one read of the mailbox
//!   (`eval.rs`: bit sets; TEXT and BODY one statement each), since
//!   thousands of criteria do not fit one statement.
//!
//! Both give the same answer (the property test below holds them equal).
//! This file also holds the nesting limit ([`MAX_DEPTH`]), checked before
//! either runs.

mod cache;
mod eval;
mod sql;

pub(crate) use cache::HeaderCache;
pub use cache::DEFAULT_LIMIT as HEADER_CACHE_LIMIT;

use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::reader::Reader;
use crate::types::{MailboxId, SystemFlag, Uid};
use eval::Eval;

/// A search criterion. Substring matches are case-insensitive (ASCII for
/// headers; Unicode case folding for body/text via the FTS5 trigram index).
///
/// Date criteria take the unix timestamp of the start of the day (in the
/// time zone the caller chose) and have day granularity:
/// `Before(d)`: date < d; `On(d)`: d <= date < d + 86400; `Since(d)`: date >= d
/// (`Before` and `Since` compare to the second, so they also take any
/// moment: imapd's WITHIN, RFC 5032, passes "now minus an interval").
/// `Before`/`On`/`Since` use INTERNALDATE. `SentBefore`/`SentOn`/`SentSince`
/// use the `Date:` header read as the sender's wall-clock time (its zone
/// disregarded, as RFC 3501 says); a message without a parseable `Date:`
/// uses its INTERNALDATE. `SavedBefore`/`SavedOn`/`SavedSince` use the
/// entry's save date, or its INTERNALDATE for an entry saved before the
/// store kept save dates (RFC 8514 §4.3 falls back so).
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
    /// Save date (RFC 8514; the internal date where it is not known)
    /// before the day.
    SavedBefore(i64),
    /// Save date within the day.
    SavedOn(i64),
    /// Save date on or after the day.
    SavedSince(i64),
    /// Entry modseq >= the value (RFC 7162 §3.1.5).
    ModSeq(u64),
    /// The entry holds this stored message (RFC 8474 EMAILID).
    Message(crate::types::MessageId),
    /// The entry's message is in this thread (RFC 8474 THREADID).
    Thread(i64),
    /// Negation.
    Not(Box<Query>),
    /// All of these (empty = all messages).
    And(Vec<Query>),
    /// Either.
    Or(Box<Query>, Box<Query>),
    /// Any of these (empty = no message): a long OR without nesting.
    Any(Vec<Query>),
}

/// Deepest accepted nesting of Not/And/Or/Any.
const MAX_DEPTH: usize = 64;
/// Most criteria (leaves of the query tree) compiled into one SQL
/// statement; larger queries are evaluated in Rust (see the module docs).
pub const SQL_KEYS: usize = 32;
/// Seconds in a day (the date criteria's granularity).
const DAY: i64 = 86_400;

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

impl Reader {
    /// UIDs (ascending) of the mailbox's messages matching `q`: one SQL
    /// statement (FTS5 trigram index for body/text substrings) for up to
    /// [`SQL_KEYS`] criteria, else evaluated in Rust over one read of the
    /// mailbox (see the module docs).
    ///
    /// # Errors
    /// Database errors; [`StoreError::Invalid`] for absurdly deep nesting.
    pub fn search(&self, mailbox: MailboxId, q: &Query) -> Result<Vec<Uid>> {
        if let Some(pg) = self.pg() {
            check_depth(q, 0)?;
            return pg.search(mailbox, q);
        }
        self.search_with(mailbox, q, SQL_KEYS)
    }

    fn search_with(&self, mailbox: MailboxId, q: &Query, sql_keys: usize) -> Result<Vec<Uid>> {
        check_depth(q, 0)?;
        if leaves(q) <= sql_keys {
            // Header criteria on indexed fields from the header cache: a
            // query of one is answered from it alone, else their UIDs go
            // into the statement.
            let mut cached = self.cached_headers(mailbox, q)?;
            if let Some(key) = only_header(q) {
                if cached.len() == 1 && cached[0].0 == key {
                    return Ok(cached.swap_remove(0).1);
                }
            }
            return self.search_statement(mailbox, q, &cached);
        }
        let mut ev = Eval::new(self, mailbox)?;
        let found = ev.eval(q)?;
        Ok(ev.uids(&found))
    }
}

/// The (field, needle) of a query that is one header criterion on an
/// indexed field (alone, or the only member of an AND or OR), as the
/// header cache keys it: field in lower case, needle in ASCII lower case.
fn only_header(q: &Query) -> Option<(String, String)> {
    match q {
        Query::And(v) | Query::Any(v) if v.len() == 1 => only_header(&v[0]),
        Query::Header(name, needle) => header_key(name, needle),
        _ => None,
    }
}

/// The header cache's key of a criterion on an indexed field.
fn header_key(name: &str, needle: &str) -> Option<(String, String)> {
    Some((sql::indexed_field(name)?, needle.to_ascii_lowercase()))
}

/// Every header criterion on an indexed field in `q`.
fn header_keys(q: &Query, out: &mut Vec<(String, String)>) {
    match q {
        Query::Header(name, needle) => {
            if let Some(k) = header_key(name, needle) {
                if !out.contains(&k) {
                    out.push(k);
                }
            }
        }
        Query::Not(a) => header_keys(a, out),
        Query::Or(a, b) => {
            header_keys(a, out);
            header_keys(b, out);
        }
        Query::And(v) | Query::Any(v) => v.iter().for_each(|q| header_keys(q, out)),
        _ => {}
    }
}

/// Header criteria answered by the header cache: ((field, needle), UIDs).
pub(super) type Cached = Vec<((String, String), Vec<Uid>)>;

impl Reader {
    /// The UIDs of each header criterion of `q` on an indexed field that
    /// the header cache can answer in this snapshot.
    fn cached_headers(&self, mailbox: MailboxId, q: &Query) -> Result<Cached> {
        let Some(cache) = self.header_cache() else {
            return Ok(Vec::new());
        };
        let mut keys = Vec::new();
        header_keys(q, &mut keys);
        let mut out = Vec::with_capacity(keys.len());
        for (field, needle) in keys {
            if let Some(uids) = cache.search(self, mailbox, &field, &needle)? {
                out.push(((field, needle), uids));
            }
        }
        Ok(out)
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
            days().prop_map(move |d| Query::SavedSince(day(d))),
            days().prop_map(move |d| Query::SavedBefore(day(d))),
            days().prop_map(move |d| Query::SavedOn(day(d))),
            (0i64..20).prop_map(Query::Message),
            (0i64..20).prop_map(Query::Thread),
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
        // Save dates on other days than the internal dates, and unknown
        // (before schema v7) for every third entry.
        conn.execute(
            "UPDATE entries SET saved = CASE WHEN uid % 3 = 0 THEN NULL \
             ELSE 1700000000 + (12 - uid) * 86400 + 3600 END",
            [],
        )
        .unwrap();
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
                    r.search_statement(mb, &flat, &Vec::new())?,
                    r.search_with(mb, &deep, usize::MAX)?,
                    r.search(mb, &too_deep).is_err(),
                ))
            })
            .unwrap();
        assert_eq!(a, [1, 3, 5, 7, 9, 11]);
        assert_eq!(b, [2, 7, 11, 12]);
        assert!(c);
    }
}
