//! The values of STATUS data items (RFC 3501 §6.3.10; HIGHESTMODSEQ, RFC
//! 7162 §3.1.6; SIZE, RFC 8438 §3; APPENDLIMIT, RFC 7889 §2; MAILBOXID,
//! RFC 8474 §4; DELETED, RFC 9051 §6.3.11; DELETED-STORAGE, RFC 9208 §4.3), shared by the STATUS command
//! (`select.rs`) and LIST's `RETURN (STATUS (...))` (RFC 5819,
//! `list_ext.rs`), so both answer alike.
//!
//! [`read`] runs on a store thread and reads only what the items need
//! (the counters always; the sum of the message sizes only for SIZE);
//! [`values`] turns that into the response's name/number pairs on the
//! loop thread, where `\Recent` (session state kept by the hub) is known.

use crate::command::StatusItem;
use crate::response::Value;
use crate::session::Shared;
use mailstore::{MailboxId, Reader};

/// What the store says about one mailbox, for its STATUS items.
#[derive(Debug, Clone)]
pub(crate) struct Counts {
    /// Message counts and the UID/modseq counters.
    pub(crate) st: mailstore::Status,
    /// Total octets of the messages, when SIZE was asked for.
    pub(crate) size: Option<u64>,
    /// Messages with `\Deleted`, when DELETED was asked for.
    pub(crate) deleted: Option<u64>,
    /// Octets of the messages with `\Deleted`, when DELETED-STORAGE was
    /// asked for.
    pub(crate) deleted_size: Option<u64>,
}

/// Read what `items` need to know about mailbox `id` (on a store thread).
pub(crate) fn read(r: &Reader, id: MailboxId, items: &[StatusItem]) -> mailstore::Result<Counts> {
    let st = r.status(id)?;
    let size = match items.contains(&StatusItem::Size) {
        true => Some(r.mailbox_size(id)?),
        false => None,
    };
    let deleted = match items.contains(&StatusItem::Deleted) {
        true => {
            let q = mailstore::Query::Flag(mailstore::SystemFlag::Deleted, true);
            Some(r.search(id, &q)?.len() as u64)
        }
        false => None,
    };
    let deleted_size = match items.contains(&StatusItem::DeletedStorage) {
        true => Some(r.deleted_size(id)?),
        false => None,
    };
    Ok(Counts {
        st,
        size,
        deleted,
        deleted_size,
    })
}

/// The items asked for, in the order asked, as a STATUS response carries
/// them. APPENDLIMIT is the server's one limit (`--max-literal`, also
/// advertised as `APPENDLIMIT=N`): every mailbox takes the same.
pub(crate) fn values(
    shared: &Shared,
    id: MailboxId,
    c: &Counts,
    items: &[StatusItem],
) -> Vec<(&'static str, Value)> {
    let st = &c.st;
    items
        .iter()
        .map(|item| match item {
            // RFC 8474 §4: `MAILBOXID (objectid)`.
            StatusItem::MailboxId => (
                "MAILBOXID",
                Value::List(vec![Value::Atom(crate::objectid::mailbox(
                    id,
                    st.uidvalidity,
                ))]),
            ),
            item => (item_name(item), Value::Num(number(shared, id, c, item))),
        })
        .collect()
}

/// The name of a numeric item.
fn item_name(item: &StatusItem) -> &'static str {
    match item {
        StatusItem::Messages => "MESSAGES",
        StatusItem::Recent => "RECENT",
        StatusItem::UidNext => "UIDNEXT",
        StatusItem::UidValidity => "UIDVALIDITY",
        StatusItem::Unseen => "UNSEEN",
        StatusItem::HighestModSeq => "HIGHESTMODSEQ",
        StatusItem::Size => "SIZE",
        StatusItem::AppendLimit => "APPENDLIMIT",
        StatusItem::MailboxId => "MAILBOXID",
        StatusItem::Deleted => "DELETED",
        StatusItem::DeletedStorage => "DELETED-STORAGE",
    }
}

/// The value of a numeric item.
fn number(shared: &Shared, id: MailboxId, c: &Counts, item: &StatusItem) -> u64 {
    let st = &c.st;
    match item {
        StatusItem::Messages => u64::from(st.messages),
        StatusItem::Recent => {
            let mark = shared.hub.recent_mark(id, st.uidvalidity);
            let above = u64::from(st.uidnext.saturating_sub(1).saturating_sub(mark));
            above.min(u64::from(st.messages))
        }
        StatusItem::UidNext => u64::from(st.uidnext),
        StatusItem::UidValidity => u64::from(st.uidvalidity),
        StatusItem::Unseen => u64::from(st.unseen),
        StatusItem::HighestModSeq => st.highestmodseq,
        // `read` fills it in whenever SIZE is among the items.
        StatusItem::Size => c.size.unwrap_or(0),
        StatusItem::AppendLimit => shared.config.max_literal,
        StatusItem::Deleted => c.deleted.unwrap_or(0),
        StatusItem::DeletedStorage => c.deleted_size.unwrap_or(0).div_ceil(1024),
        // Not a number: `values` writes it.
        StatusItem::MailboxId => 0,
    }
}
