//! Threads (IMAP's THREADID, RFC 8474 §5.2): which messages belong
//! together, by their Message-ID, In-Reply-To and References headers
//! (the links THREAD=REFERENCES follows, RFC 5256 §2.2, without its
//! subject merging).
//!
//! A thread is decided once, when a message is stored, and never changes
//! afterwards: the message joins the thread any of its ids (own,
//! In-Reply-To, References) already belongs to (the oldest such thread
//! where they name several; threads are not merged later), or starts a
//! new one numbered by its own message id. Every id it names is then
//! recorded as belonging to that thread, so a reply arriving before its
//! parent still finds the parent's thread, and the parent the reply's.
//! The thread is a column of the message row, which COPY, MOVE and
//! RENAME keep, so the THREADID is stable through them.
//!
//! Ids are compared as the bytes between `<` and `>`. At most
//! [`MAX_REFS`] ids of one message are looked at (its own, In-Reply-To,
//! then the last References), so a message with a huge References field
//! costs a bounded number of lookups.

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::Result;
use crate::types::MessageId;

/// Most ids of one message considered for threading.
pub(crate) const MAX_REFS: usize = 64;

/// The longest id recorded (longer ones are ignored).
const MAX_ID_LEN: usize = 998;

/// The `<...>` ids in a header value, in order.
fn ids_in(value: &str) -> impl Iterator<Item = &str> {
    value.split('<').skip(1).filter_map(|s| {
        let id = &s[..s.find('>')?];
        let id = id.trim();
        (!id.is_empty() && id.len() <= MAX_ID_LEN && !id.contains(char::is_whitespace))
            .then_some(id)
    })
}

/// The ids a message links by (top-level headers, lower-case names): its
/// own Message-ID, In-Reply-To, then References from the nearest parent
/// back; at most [`MAX_REFS`], without repeats.
pub(crate) fn thread_ids(headers: &[(String, String)]) -> Vec<&str> {
    fn push<'a>(out: &mut Vec<&'a str>, id: &'a str) {
        if out.len() < MAX_REFS && !out.contains(&id) {
            out.push(id);
        }
    }
    let field = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let mut out: Vec<&str> = Vec::new();
    if let Some(own) = field("message-id").and_then(|v| ids_in(v).next()) {
        push(&mut out, own);
    }
    if let Some(v) = field("in-reply-to") {
        for id in ids_in(v) {
            push(&mut out, id);
        }
    }
    if let Some(v) = field("references") {
        let all: Vec<&str> = ids_in(v).collect();
        for id in all.into_iter().rev() {
            push(&mut out, id);
        }
    }
    out
}

/// Decide the thread of message `id` (about to be inserted, with the
/// returned thread in its row) from its headers and record its ids.
/// Returns the thread.
pub(crate) fn assign(
    conn: &Connection,
    id: MessageId,
    headers: &[(String, String)],
) -> Result<i64> {
    let ids = thread_ids(headers);
    let mut find = conn.prepare_cached("SELECT thread_id FROM thread_refs WHERE msgid = ?1")?;
    let mut thread: Option<i64> = None;
    for msgid in &ids {
        if let Some(t) = find.query_row([msgid], |r| r.get::<_, i64>(0)).optional()? {
            thread = Some(thread.map_or(t, |old| old.min(t)));
        }
    }
    let thread = thread.unwrap_or(id);
    let mut record =
        conn.prepare_cached("INSERT OR IGNORE INTO thread_refs(msgid, thread_id) VALUES (?1, ?2)")?;
    for msgid in &ids {
        record.execute(params![msgid, thread])?;
    }
    Ok(thread)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn ids_in_order_without_repeats() {
        let headers = h(&[
            ("message-id", " <c@x> "),
            ("in-reply-to", "<b@x> (comment)"),
            ("references", "<a@x>\r\n <b@x> <> < bad id> <unterminated"),
        ]);
        assert_eq!(thread_ids(&headers), vec!["c@x", "b@x", "a@x"]);
        assert!(thread_ids(&h(&[("subject", "<x@y>")])).is_empty());
    }

    #[test]
    fn references_are_bounded() {
        let refs: String = (0..1000).map(|i| format!("<r{i}@x> ")).collect();
        let headers = h(&[("message-id", "<own@x>"), ("references", &refs)]);
        let ids = thread_ids(&headers);
        assert_eq!(ids.len(), MAX_REFS);
        assert_eq!(ids[0], "own@x");
        // The nearest ancestors (the end of References) are kept.
        assert_eq!(ids[1], "r999@x");
        let long = format!("<{}@x>", "a".repeat(MAX_ID_LEN));
        assert!(thread_ids(&h(&[("message-id", &long)])).is_empty());
    }
}
