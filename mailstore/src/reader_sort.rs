//! `Reader` query for ordering and threading messages: what a server needs
//! of each message to sort it by date, size, subject or address, or to
//! thread it by its Message-ID, In-Reply-To and References fields
//! (RFC 5322 §3.6.4), read in one pass over the mailbox. The values are
//! plain data (decoded text, UTC seconds); the orderings themselves belong
//! to the protocol that asks.

use rusqlite::params;
use serde::Deserialize;

use crate::error::{Result, StoreError};
use crate::meta::Address;
use crate::mime::header::decode_words;
use crate::reader::Reader;
use crate::types::{MailboxId, Uid};

/// Which of [`MessageFields`]' optional parts to read. Size and dates are
/// always there; the rest costs a decode of the stored envelope (and the
/// thread fields one more index lookup per message).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FieldSet {
    /// `Date:` as [`MessageFields::sent_date`].
    pub sent_date: bool,
    /// [`MessageFields::subject`].
    pub subject: bool,
    /// [`MessageFields::from`], `to` and `cc`.
    pub addresses: bool,
    /// [`MessageFields::message_id`], `in_reply_to` and `references`.
    pub thread: bool,
}

/// The first address of an address-list field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FirstAddress {
    /// The display name with RFC 2047 encoded words decoded to UTF-8
    /// (`None` when absent). For a group, the group's name.
    pub name: Option<String>,
    /// The local part (for a group, the group's name, as in RFC 3501's
    /// envelope group marker).
    pub local: Option<String>,
    /// The domain (`None` for a group or an address without one).
    pub host: Option<String>,
    /// The field starts with a group (`name: members;`).
    pub group: bool,
}

/// What sorting and threading read of one message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageFields {
    /// UID in the mailbox asked about.
    pub uid: Uid,
    /// Size in octets.
    pub size: u64,
    /// INTERNALDATE, unix seconds.
    pub internal_date: i64,
    /// `Date:` as unix seconds (UTC, the zone applied), if it parses.
    pub sent_date: Option<i64>,
    /// `Subject:` unfolded, encoded words decoded to UTF-8.
    pub subject: Option<String>,
    /// First `From:` address.
    pub from: Option<FirstAddress>,
    /// First `To:` address.
    pub to: Option<FirstAddress>,
    /// First `Cc:` address.
    pub cc: Option<FirstAddress>,
    /// `Message-ID:` as sent (unfolded).
    pub message_id: Option<String>,
    /// `In-Reply-To:` as sent (unfolded).
    pub in_reply_to: Option<String>,
    /// `References:` unfolded.
    pub references: Option<String>,
}

/// The envelope fields sorting reads; the others are skipped undecoded.
#[derive(Deserialize)]
pub(crate) struct SortEnvelope {
    #[serde(default)]
    pub(crate) date: Option<String>,
    #[serde(default)]
    pub(crate) subject: Option<String>,
    #[serde(default)]
    pub(crate) from: Vec<Address>,
    #[serde(default)]
    pub(crate) to: Vec<Address>,
    #[serde(default)]
    pub(crate) cc: Vec<Address>,
    #[serde(default)]
    pub(crate) in_reply_to: Option<String>,
    #[serde(default)]
    pub(crate) message_id: Option<String>,
}

pub(crate) fn first(list: &[Address]) -> Option<FirstAddress> {
    let a = list.first()?;
    let group = a.host.is_none() && a.local.is_some() && a.name.is_none();
    let name = match group {
        true => a.local.as_deref().map(decode_words),
        false => a.name.as_deref().map(decode_words),
    };
    Some(FirstAddress {
        name,
        local: a.local.clone(),
        host: a.host.clone(),
        group,
    })
}

/// `Date:` to UTC unix seconds (the zone applied); `None` if it does not
/// parse. Like the stored sent date, at least a day and a year are
/// demanded of the lenient parser.
pub(crate) fn utc_date(value: &str) -> Option<i64> {
    if value.chars().filter(char::is_ascii_digit).count() < 3 {
        return None;
    }
    mailparse::dateparse(value).ok()
}

impl Reader {
    /// The fields in `want` of every message of `mailbox` whose UID is in
    /// `uids` (ascending), uid ascending, in one query (a range scan, or
    /// lookups when `uids` is sparse); UIDs not in the mailbox are skipped.
    ///
    /// # Errors
    /// Database errors; [`StoreError::Corrupt`] if a stored envelope does
    /// not decode.
    pub fn message_fields(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        want: FieldSet,
    ) -> Result<Vec<MessageFields>> {
        if let Some(pg) = self.pg() {
            return pg.message_fields(mailbox, uids, want);
        }
        let (Some(&lo), Some(&hi)) = (uids.first(), uids.last()) else {
            return Ok(Vec::new());
        };
        let envelope = want.sent_date || want.subject || want.addresses || want.thread;
        // A dense set is read with one range scan; a sparse one (under a
        // quarter of its range) by looking up each UID.
        let dense = (uids.len() as u64).saturating_mul(4) > u64::from(hi.saturating_sub(lo));
        // Parameters: ?1 mailbox, ?2 whether to read the envelope, ?3 the
        // references; then the UIDs (?4-?5 a range, or ?4 a list).
        let select = "SELECT e.uid, m.size, m.internal_date,
                    CASE WHEN ?2 THEN m.envelope END,
                    CASE WHEN ?3 THEN (SELECT h.value FROM message_headers h
                         WHERE h.message_id = m.id AND h.name = 'references' LIMIT 1) END
             FROM entries e JOIN messages m ON m.id = e.message_id
             WHERE e.mailbox_id = ?1 AND ";
        let mut st;
        let mut rows = if dense {
            st = self
                .conn()
                .prepare_cached(&format!("{select}e.uid BETWEEN ?4 AND ?5 ORDER BY e.uid"))?;
            st.query(params![mailbox, envelope, want.thread, lo, hi])?
        } else {
            let list = serde_json::to_string(uids)
                .map_err(|e| StoreError::Invalid(format!("uid list: {e}")))?;
            st = self.conn().prepare_cached(&format!(
                "{select}e.uid IN (SELECT value FROM json_each(?4)) ORDER BY e.uid"
            ))?;
            st.query(params![mailbox, envelope, want.thread, list])?
        };
        let mut out = Vec::with_capacity(uids.len());
        let mut next = 0usize;
        while let Some(r) = rows.next()? {
            let uid = r.get::<_, i64>(0)? as Uid;
            // Both ascending: walk `uids` along with the rows.
            while next < uids.len() && uids[next] < uid {
                next += 1;
            }
            if uids.get(next) != Some(&uid) {
                continue;
            }
            let mut f = MessageFields {
                uid,
                size: r.get::<_, i64>(1)? as u64,
                internal_date: r.get(2)?,
                ..MessageFields::default()
            };
            if let Some(json) = r.get_ref(3)?.as_str_or_null().map_err(corrupt)? {
                let env: SortEnvelope = serde_json::from_str(json).map_err(|e| {
                    StoreError::Corrupt(format!("stored envelope does not decode: {e}"))
                })?;
                if want.sent_date {
                    f.sent_date = env.date.as_deref().and_then(utc_date);
                }
                if want.subject {
                    f.subject = env.subject.as_deref().map(decode_words);
                }
                if want.addresses {
                    f.from = first(&env.from);
                    f.to = first(&env.to);
                    f.cc = first(&env.cc);
                }
                if want.thread {
                    f.message_id = env.message_id;
                    f.in_reply_to = env.in_reply_to;
                    f.references = r.get(4)?;
                }
            }
            out.push(f);
        }
        Ok(out)
    }
}

fn corrupt(e: rusqlite::types::FromSqlError) -> StoreError {
    StoreError::Corrupt(format!("stored envelope: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{Flags, Store};

    #[test]
    fn fields_are_read_decoded_for_the_uids_asked() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path().join("m.db")).unwrap();
        let raws: [&[u8]; 3] = [
            b"From: =?iso-8859-1?q?J=F6rg?= <j@x.org>\r\nTo: team: a@b.c, d@e.f;\r\n\
              Subject: =?utf-8?q?Re:_caf=C3=A9?=\r\nDate: Fri, 22 Feb 2008 02:00:00 +0200\r\n\
              Message-ID: <m1@x>\r\nReferences: <r1@x>\r\n <r2@x>\r\nIn-Reply-To: <r2@x>\r\n\r\nbody\r\n",
            b"Subject: plain\r\n\r\nb\r\n",
            b"Date: garbage\r\nCc: c@d\r\n\r\nc\r\n",
        ];
        let mb = s
            .write_sync(move |tx| {
                let u = tx.create_user("a@x", "-")?;
                let mb = tx.create_mailbox(u, "Box", None)?;
                for (i, raw) in raws.iter().enumerate() {
                    tx.append(mb, raw, &Flags::empty(), 1000 + i as i64)?;
                }
                Ok(mb)
            })
            .unwrap();
        let all = FieldSet {
            sent_date: true,
            subject: true,
            addresses: true,
            thread: true,
        };
        let f = s
            .read_sync(move |r| r.message_fields(mb, &[1, 3, 9], all))
            .unwrap();
        assert_eq!(f.len(), 2);
        let m = &f[0];
        assert_eq!(m.uid, 1);
        assert_eq!(m.internal_date, 1000);
        // 02:00 +0200 is midnight UTC.
        assert_eq!(m.sent_date, Some(1_203_638_400));
        assert_eq!(m.subject.as_deref(), Some("Re: caf\u{e9}"));
        let from = m.from.as_ref().unwrap();
        assert_eq!(from.name.as_deref(), Some("J\u{f6}rg"));
        assert_eq!(
            (from.local.as_deref(), from.host.as_deref()),
            (Some("j"), Some("x.org"))
        );
        let to = m.to.as_ref().unwrap();
        assert!(to.group);
        assert_eq!(to.name.as_deref(), Some("team"));
        assert_eq!(m.message_id.as_deref(), Some("<m1@x>"));
        assert_eq!(m.in_reply_to.as_deref(), Some("<r2@x>"));
        assert_eq!(m.references.as_deref(), Some("<r1@x> <r2@x>"));
        let m = &f[1];
        assert_eq!(m.uid, 3);
        assert_eq!(m.sent_date, None);
        assert_eq!(m.subject, None);
        assert_eq!(m.cc.as_ref().unwrap().local.as_deref(), Some("c"));
        // A sparse set is looked up UID by UID, with the same result.
        let sparse = s
            .read_sync(move |r| r.message_fields(mb, &[3, 40], all))
            .unwrap();
        assert_eq!(sparse, f[1..]);
        // Size and dates alone need no envelope.
        let f = s
            .read_sync(move |r| r.message_fields(mb, &[2], FieldSet::default()))
            .unwrap();
        assert_eq!((f[0].uid, f[0].subject.is_none()), (2, true));
        assert!(f[0].size > 0);
    }
}
