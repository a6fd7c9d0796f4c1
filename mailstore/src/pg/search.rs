//! SEARCH on PostgreSQL: a [`Query`] compiled to one statement, as
//! `search/sql.rs` does for SQLite, with the same semantics. TEXT and BODY
//! are a plain case-insensitive substring scan of the decoded text
//! (`message_text`; a `pg_trgm` index is the planned speed-up); header
//! values and the text fold ASCII case, as on SQLite for headers.

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
        let needle = needle.replace('\0', "");
        self.push(
            "EXISTS (SELECT 1 FROM message_text t WHERE t.id = e.message_id AND (position(lower(",
        );
        self.param(needle.clone());
        self.push(") IN lower(t.body)) > 0");
        if all {
            self.push(" OR position(lower(");
            self.param(needle);
            self.push(") IN lower(t.headers)) > 0");
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
