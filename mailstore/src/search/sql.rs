//! SEARCH translated to SQL: a [`Query`] of up to
//! [`SQL_KEYS`](super::SQL_KEYS) criteria becomes one statement over the
//! mailbox's entries. n-ary AND/OR are written as balanced trees, so
//! SQLite's expression depth (at most 1,000) grows with the log of their
//! length; many UID ranges go in as one JSON parameter; TEXT and BODY use
//! the FTS5 trigram index (needles under 3 characters scan the stored
//! text) and also scan the text still waiting for the index.

use rusqlite::types::Value;

use super::{Cached, Query, DAY, MAX_DEPTH};
use crate::error::{Result, StoreError};
use crate::reader::Reader;
use crate::types::{MailboxId, Uid};

/// Above this many UID ranges, ranges are passed as one JSON parameter.
const INLINE_RANGES: usize = 16;

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

/// A statement being written: its text and its numbered parameters.
struct Sql<'a> {
    text: String,
    params: Vec<Value>,
    /// Header criteria the header cache answered, with their UIDs.
    cached: &'a Cached,
}

impl Sql<'_> {
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
                // The index's Unicode folding (not SQLite's ASCII-only
                // lower()), so "ä" finds "Ä" as "äRG" finds "ÄRGER".
                let f = crate::schema::CONTAINS_FN;
                self.push(&format!(
                    "EXISTS (SELECT 1 FROM {table} p WHERE p.{key} = e.message_id AND ({f}({body}, "
                ));
                self.param(Value::Text(needle.to_string()));
                self.push(")");
                if let TextScope::All = scope {
                    self.push(&format!(" OR {f}(p.headers, "));
                    self.param(Value::Text(needle.to_string()));
                    self.push(")");
                }
                self.push("))");
            }
            self.push(")");
        }
    }

    /// Header field `name` contains `needle` (ASCII case-insensitive;
    /// `""`: the field is there).
    fn header_match(&mut self, name: &str, needle: &str) {
        let key = (name, needle);
        if let Some((_, uids)) = self
            .cached
            .iter()
            .find(|(k, _)| super::header_key(key.0, key.1).as_ref() == Some(k))
        {
            // From the header cache (search/cache.rs): its UIDs, as one
            // JSON array (the subquery is uncorrelated: read once).
            let json = serde_json::to_string(uids).unwrap_or_else(|_| "[]".into());
            self.push("e.uid IN (SELECT value FROM json_each(");
            self.param(Value::Text(json));
            self.push("))");
            return;
        }
        match indexed_field(name) {
            Some(field) => {
                // Schema v14's header_index: the mailbox's values of the
                // field are one key range, already in ASCII lower case;
                // the subquery is uncorrelated, so it runs once, not once
                // per message.
                self.push(
                    "e.uid IN (SELECT x.uid FROM header_index x WHERE x.mailbox_id = ?1 AND x.name = ",
                );
                self.param(Value::Text(field));
                self.push(" AND instr(x.value, ");
                self.param(Value::Text(needle.to_ascii_lowercase()));
                self.push(") > 0)");
            }
            None => {
                self.push("EXISTS (SELECT 1 FROM message_headers h WHERE h.message_id = e.message_id AND h.name = lower(");
                self.param(Value::Text(name.trim().to_string()));
                self.push(") AND instr(lower(h.value), lower(");
                self.param(Value::Text(needle.to_string()));
                self.push(")) > 0)");
            }
        }
    }

    fn day_range(&mut self, col: &str, q: &Query) {
        let (op, d) = match q {
            Query::Before(d) | Query::SentBefore(d) | Query::SavedBefore(d) => ("<", *d),
            Query::Since(d) | Query::SentSince(d) | Query::SavedSince(d) => (">=", *d),
            Query::On(d) | Query::SentOn(d) | Query::SavedOn(d) => {
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
            Query::Header(name, needle) => self.header_match(name, needle),
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
            Query::SavedBefore(_) | Query::SavedOn(_) | Query::SavedSince(_) => {
                self.day_range("coalesce(e.saved, m.internal_date)", q)
            }
            Query::ModSeq(n) => {
                self.push("e.modseq >= ");
                self.param(int(*n));
            }
            Query::Message(id) => {
                self.push("e.message_id = ");
                self.param(Value::Integer(*id));
            }
            Query::Thread(id) => {
                self.push("coalesce(m.thread_id, m.id) = ");
                self.param(Value::Integer(*id));
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

/// The lower-case name of a header field that schema v14's
/// `header_index` holds (as SEARCH names it: any case, blanks around).
pub(super) fn indexed_field(name: &str) -> Option<String> {
    let field = name.trim().to_ascii_lowercase();
    crate::schema::INDEXED_HEADERS
        .contains(&field.as_str())
        .then_some(field)
}

/// Whether `q` reads a column of `messages` (size, dates, thread): only
/// then does the statement join it (a header or flag search reads only
/// the mailbox's entries).
fn needs_message(q: &Query) -> bool {
    match q {
        Query::Larger(_)
        | Query::Smaller(_)
        | Query::Before(_)
        | Query::On(_)
        | Query::Since(_)
        | Query::SentBefore(_)
        | Query::SentOn(_)
        | Query::SentSince(_)
        | Query::SavedBefore(_)
        | Query::SavedOn(_)
        | Query::SavedSince(_)
        | Query::Thread(_) => true,
        Query::Not(a) => needs_message(a),
        Query::Or(a, b) => needs_message(a) || needs_message(b),
        Query::And(v) | Query::Any(v) => v.iter().any(needs_message),
        _ => false,
    }
}

impl Reader {
    /// UIDs (ascending) matching `q`, in one statement.
    pub(super) fn search_statement(
        &self,
        mailbox: MailboxId,
        q: &Query,
        cached: &Cached,
    ) -> Result<Vec<Uid>> {
        let from = if needs_message(q) {
            "SELECT e.uid FROM entries e JOIN messages m ON m.id = e.message_id WHERE e.mailbox_id = ?1 AND "
        } else {
            "SELECT e.uid FROM entries e WHERE e.mailbox_id = ?1 AND "
        };
        let mut sql = Sql {
            text: String::from(from),
            params: vec![Value::Integer(mailbox)],
            cached,
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
