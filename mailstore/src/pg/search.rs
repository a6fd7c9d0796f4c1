//! SEARCH on PostgreSQL: a [`Query`] compiled to one statement, as
//! `search/sql.rs` does for SQLite, with the same semantics.
//!
//! # TEXT and BODY
//! `message_text` holds each message's decoded search text (headers and
//! body) already case-folded with the fold SQLite's FTS5 trigram index
//! uses ([`fold_text`]: one-to-one Unicode lower-casing, in Rust, so the
//! result depends neither on the database's locale nor on PostgreSQL's
//! `lower()`, which folds ASCII only under the C locale). A criterion is
//! `body LIKE '%needle%'` with the needle folded the same way and its
//! `%`, `_` and `\` escaped: an exact substring test, which the `pg_trgm`
//! GIN indexes of schema version 16 answer (the index finds candidates
//! by trigrams, PostgreSQL rechecks the LIKE on each). A needle under 3
//! characters has no trigram: PostgreSQL then reads the text itself
//! (still exact). Header criteria fold ASCII case, as on SQLite.

use postgres::types::ToSql;

use crate::error::{Result, StoreError};
use crate::pg::PgConn;
use crate::search::Query;
use crate::types::{MailboxId, Uid};

const DAY: i64 = 86_400;
/// As `search/mod.rs`.
const MAX_DEPTH: usize = 64;

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[derive(Default)]
struct Sql {
    text: String,
    params: Vec<Box<dyn ToSql + Sync>>,
}

impl Sql {
    fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }

    fn param(&mut self, v: impl ToSql + Sync + 'static) {
        self.params.push(Box::new(v));
        self.text.push_str(&format!("${}", self.params.len()));
    }

    fn day_range(&mut self, col: &str, q: &Query) {
        let (op, d) = match q {
            Query::Before(d) | Query::SentBefore(d) | Query::SavedBefore(d) => ("<", *d),
            Query::Since(d) | Query::SentSince(d) | Query::SavedSince(d) => (">=", *d),
            Query::On(d) | Query::SentOn(d) | Query::SavedOn(d) => {
                self.push(&format!("({col} >= "));
                self.param(*d);
                self.push(&format!(" AND {col} < "));
                self.param(d.saturating_add(DAY));
                self.push(")");
                return;
            }
            _ => return self.push("false"),
        };
        self.push(&format!("{col} {op} "));
        self.param(d);
    }

    fn join(&mut self, items: &[Query], op: &str, depth: usize) -> Result<()> {
        self.push("(");
        match items {
            [] => self.push(if op == " AND " { "true" } else { "false" }),
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

    fn text_match(&mut self, needle: &str, all: bool) {
        if needle.is_empty() {
            return self.push("true");
        }
        let pattern = like_pattern(needle);
        self.push("EXISTS (SELECT 1 FROM message_text t WHERE t.id = e.message_id AND ((");
        // The body's distinct words hold each of the needle's words (the
        // index finds those rows), then the body itself the needle.
        for w in needle_words(needle) {
            self.push("t.words LIKE ");
            self.param(w);
            self.push(" AND ");
        }
        self.push("t.body LIKE ");
        self.param(pattern.clone());
        self.push(")");
        if all {
            self.push(" OR t.headers LIKE ");
            self.param(pattern);
        }
        self.push("))");
    }

    fn compile(&mut self, q: &Query, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(StoreError::Invalid(
                "search criteria nested too deeply".into(),
            ));
        }
        match q {
            Query::All => self.push("true"),
            Query::Uids(ranges) => {
                let lo: Vec<i64> = ranges.iter().map(|(a, b)| i64::from(*a.min(b))).collect();
                let hi: Vec<i64> = ranges.iter().map(|(a, b)| i64::from(*a.max(b))).collect();
                self.push("EXISTS (SELECT 1 FROM unnest(");
                self.param(lo);
                self.push("::bigint[], ");
                self.param(hi);
                self.push("::bigint[]) AS r(lo, hi) WHERE e.uid BETWEEN r.lo AND r.hi)");
            }
            Query::Flag(f, on) => {
                self.push("(e.flags & ");
                self.param(i32::from(f.bit()));
                self.push(if *on { ") != 0" } else { ") = 0" });
            }
            Query::Keyword(k, on) => {
                self.push("position(' ' || lower(");
                self.param(k.replace('\0', ""));
                self.push(") || ' ' IN ' ' || lower(e.keywords) || ' ')");
                self.push(if *on { " > 0" } else { " = 0" });
            }
            Query::Header(name, needle) => {
                self.push("EXISTS (SELECT 1 FROM message_headers h WHERE h.message_id = e.message_id AND h.name = lower(");
                self.param(name.trim().replace('\0', ""));
                self.push(") AND position(lower(");
                self.param(needle.replace('\0', ""));
                self.push(") IN lower(h.value)) > 0)");
            }
            Query::Body(s) => self.text_match(s, false),
            Query::Text(s) => self.text_match(s, true),
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
                self.param(*id);
            }
            Query::Thread(id) => {
                self.push("coalesce(m.thread_id, m.id) = ");
                self.param(*id);
            }
            Query::Not(inner) => {
                self.push("NOT coalesce(");
                self.compile(inner, depth + 1)?;
                self.push(", false)");
            }
            Query::And(all) => self.join(all, " AND ", depth + 1)?,
            Query::Any(all) => self.join(all, " OR ", depth + 1)?,
            Query::Or(a, b) => {
                self.push("(");
                self.compile(a, depth + 1)?;
                self.push(" OR ");
                self.compile(b, depth + 1)?;
                self.push(")");
            }
        }
        Ok(())
    }
}

/// Search text as `message_text` keeps it: NUL characters dropped
/// (PostgreSQL's text cannot hold them), every character folded as
/// SQLite's FTS5 trigram index folds it (`schema::fold_char`).
pub(crate) fn fold_text(s: &str) -> String {
    // ASCII (most mail text) folds byte by byte, as `fold_char` would.
    if s.is_ascii() {
        let mut b = s.as_bytes().to_ascii_lowercase();
        b.retain(|&c| c != 0);
        return String::from_utf8(b).unwrap_or_default();
    }
    s.chars()
        .filter(|c| *c != '\0')
        .map(|c| {
            if c.is_ascii() {
                c.to_ascii_lowercase()
            } else {
                crate::schema::fold_char(c)
            }
        })
        .collect()
}

/// What PostgreSQL stores of a message for SEARCH (`message_text`): its
/// header and body text folded ([`fold_text`]) and the body's distinct
/// words ([`words`]).
#[derive(Clone, Debug)]
pub(crate) struct SearchText {
    pub(crate) header: String,
    pub(crate) body: String,
    pub(crate) words: String,
}

impl SearchText {
    pub(crate) fn of(meta: &crate::tx_deliver::Meta) -> SearchText {
        let body = fold_text(&meta.body_text);
        SearchText {
            header: fold_text(&meta.header_text),
            words: words(&body),
            body,
        }
    }
}

/// The LIKE pattern matching text that contains `needle` (folded as
/// [`fold_text`], LIKE's metacharacters escaped with its default escape
/// character, the backslash).
fn like_pattern(needle: &str) -> String {
    like_folded(&fold_text(needle))
}

/// [`like_pattern`] of text already folded.
fn like_folded(folded: &str) -> String {
    let mut p = String::with_capacity(folded.len() + 2);
    p.push('%');
    for c in folded.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// What separates words in [`words`] (and the SQL of schema version 17,
/// `schema.rs`): ASCII white space.
fn is_word_sep(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// `message_text.words` (schema version 17): the distinct words of folded
/// text (runs of characters between [`is_word_sep`] characters), each
/// once, separated by a space. Its trigram index answers TEXT/BODY in
/// place of one on the whole body: a needle's own words lie each inside
/// one word of any text that contains the needle, so a row whose `words`
/// lack one of them cannot match, and the body's LIKE decides the rest
/// (exact as before). Extracting trigrams costs PostgreSQL about 20 ms per
/// 64 KiB of text; the distinct words of a body are usually a fraction of
/// it.
pub(crate) fn words(folded: &str) -> String {
    let mut seen = foldhash::HashSet::default();
    let mut out = String::new();
    for w in folded.split(is_word_sep).filter(|w| !w.is_empty()) {
        if seen.insert(w) {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(w);
        }
    }
    out
}

/// Words of a needle the index can use: those of 3 characters or more
/// (shorter ones have no trigram), distinct, at most 8 (the longest),
/// as LIKE patterns.
fn needle_words(needle: &str) -> Vec<String> {
    let folded = fold_text(needle);
    let mut ws: Vec<&str> = folded
        .split(is_word_sep)
        .filter(|w| w.chars().count() >= 3)
        .collect();
    ws.sort_unstable_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    ws.dedup();
    ws.truncate(8);
    ws.into_iter().map(like_folded).collect()
}

/// SQLite function `mm_fold(text)`: [`fold_text`] of its argument, for
/// `minimail migrate`, which copies SQLite's search text (not folded)
/// into `message_text` (folded).
pub(crate) const FOLD_FN: &str = "mm_fold";

/// SQLite function `mm_words(text)`: [`words`] of (folded) text, for
/// `minimail migrate`.
pub(crate) const WORDS_FN: &str = "mm_words";

/// Register [`FOLD_FN`] and [`WORDS_FN`] on a SQLite connection.
pub(crate) fn register_fold(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    use rusqlite::types::{Value, ValueRef};
    conn.create_scalar_function(
        WORDS_FN,
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            Ok(match ctx.get_raw(0) {
                ValueRef::Text(b) | ValueRef::Blob(b) => {
                    Value::Text(words(&String::from_utf8_lossy(b)))
                }
                ValueRef::Null => Value::Null,
                ValueRef::Integer(i) => Value::Text(i.to_string()),
                ValueRef::Real(f) => Value::Text(f.to_string()),
            })
        },
    )?;
    conn.create_scalar_function(
        FOLD_FN,
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            Ok(match ctx.get_raw(0) {
                ValueRef::Text(b) | ValueRef::Blob(b) => {
                    Value::Text(fold_text(&String::from_utf8_lossy(b)))
                }
                ValueRef::Null => Value::Null,
                ValueRef::Integer(i) => Value::Text(i.to_string()),
                ValueRef::Real(f) => Value::Text(f.to_string()),
            })
        },
    )
}

/// Rows re-folded per statement by [`prepare_trgm`].
const REFOLD_BATCH: i32 = 500;

/// Schema version 16, before its indexes are made: the `pg_trgm`
/// extension (a clear error if this database cannot have it) and the
/// search text stored before version 16 (not folded) folded.
pub(crate) fn prepare_trgm(t: &mut postgres::Transaction<'_>) -> Result<()> {
    t.batch_execute("SAVEPOINT trgm")?;
    if let Err(e) = t.batch_execute("CREATE EXTENSION IF NOT EXISTS pg_trgm") {
        let _ = t.batch_execute("ROLLBACK TO SAVEPOINT trgm");
        return Err(StoreError::Postgres(format!(
            "schema version 16 needs PostgreSQL's pg_trgm extension (SEARCH TEXT/BODY \
             index) and it cannot be created here: {}. Install it on the PostgreSQL \
             server (Debian/Ubuntu: postgresql-contrib, part of the postgresql package \
             since PostgreSQL 10; RPM: postgresqlNN-contrib), then let the database owner \
             create it (a trusted extension since PostgreSQL 13) or run \
             `CREATE EXTENSION pg_trgm;` in this database as a superuser",
            crate::pg::pg_message(&e)
        )));
    }
    t.batch_execute("RELEASE SAVEPOINT trgm")?;
    // Existing rows: read in id order, a batch at a time, each rewritten
    // once if folding changes it (nearly every one: capitals).
    let mut after: i64 = i64::MIN;
    loop {
        let rows = t.query(
            "SELECT id, headers, body FROM message_text WHERE id > $1 ORDER BY id LIMIT $2",
            &[&after, &i64::from(REFOLD_BATCH)],
        )?;
        let Some(last) = rows.last() else { break };
        after = last.get(0);
        let mut ids = Vec::new();
        let mut heads = Vec::new();
        let mut bodies = Vec::new();
        for r in &rows {
            let (h, b): (&str, &str) = (r.get(1), r.get(2));
            let (fh, fb) = (fold_text(h), fold_text(b));
            if fh != h || fb != b {
                ids.push(r.get::<_, i64>(0));
                heads.push(fh);
                bodies.push(fb);
            }
        }
        if !ids.is_empty() {
            t.execute(
                "UPDATE message_text SET headers = x.h, body = x.b
                 FROM unnest($1::bigint[], $2::text[], $3::text[]) AS x(id, h, b)
                 WHERE message_text.id = x.id",
                &[&ids, &heads, &bodies],
            )?;
        }
    }
    Ok(())
}

impl PgConn {
    /// UIDs (ascending) of the mailbox's messages matching `q`.
    pub(crate) fn search(&self, mailbox: MailboxId, q: &Query) -> Result<Vec<Uid>> {
        let mut sql = Sql::default();
        sql.push("SELECT e.uid FROM entries e JOIN messages m ON m.id = e.message_id WHERE e.mailbox_id = ");
        sql.param(mailbox);
        sql.push(" AND (");
        sql.compile(q, 0)?;
        sql.push(") ORDER BY e.uid");
        let params: Vec<&(dyn ToSql + Sync)> = sql.params.iter().map(|p| p.as_ref()).collect();
        // One-off text: not kept among the prepared statements.
        let rows = self.c()?.query(sql.text.as_str(), &params)?;
        Ok(rows.iter().map(|r| r.get::<_, i64>(0) as Uid).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::{fold_text, words};

    /// The fast paths fold as `fold_char` does, character by character.
    #[test]
    fn fold_text_folds_as_fold_char() {
        for s in [
            "",
            "Plain ASCII Text, WITH Caps and digits 0123 \t\r\n",
            "nul\0inside\0",
            "Grüße AUS München: ÄÖÜ ẞ",
            "İstanbul ΣΟΦΊΑ Ǆ \u{0}x",
            "mixed ASCII then 日本語 and Ω",
        ] {
            let slow: String = s
                .chars()
                .filter(|c| *c != '\0')
                .map(crate::schema::fold_char)
                .collect();
            assert_eq!(fold_text(s), slow, "{s:?}");
        }
    }

    #[test]
    fn words_are_distinct_in_first_order() {
        assert_eq!(words("b a  b\tc a\r\nd"), "b a c d");
        assert_eq!(words(""), "");
    }
}
