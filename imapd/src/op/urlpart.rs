//! The data an IMAP URL (RFC 5092) names, for CATENATE (RFC 4469) and
//! URLFETCH (RFC 4467): the message (by mailbox, UIDVALIDITY and UID) and
//! the section and partial range of it. Runs on a store thread.

use super::fetch_encode::{filter_header, section_range, Range};
use crate::parse::imapurl::ImapUrl;
use mailstore::{MailboxId, MessageMeta, MetaParts, Reader, UserId};

/// What a URL resolved to.
pub(crate) enum UrlData {
    /// The octets it names.
    Found(Vec<u8>),
    /// No such mailbox, UIDVALIDITY, message or part.
    Missing,
    /// More than the caller's bound.
    TooBig,
}

/// Whether the server part of a URL (`imap://user@host`) names the
/// account `login`: the user as given, or `user@host` (accounts here are
/// addresses; imapd has no configured host name, so the host is not
/// otherwise checked). A relative URL (no server part) names the session's
/// own account.
pub(crate) fn names_account(url: &ImapUrl, login: &str) -> bool {
    match &url.server {
        None => true,
        Some((Some(user), host)) => {
            user.eq_ignore_ascii_case(login) || format!("{user}@{host}").eq_ignore_ascii_case(login)
        }
        Some((None, _)) => false,
    }
}

/// The message `url` names in `owner`'s mailboxes, with its structure.
pub(crate) fn url_message(
    r: &Reader,
    owner: UserId,
    url: &ImapUrl,
) -> mailstore::Result<Option<(MailboxId, MessageMeta)>> {
    let Some(mb) = r.mailbox(owner, &url.mailbox)? else {
        return Ok(None);
    };
    if url.uidvalidity.is_some_and(|v| v != mb.uidvalidity) {
        return Ok(None);
    }
    let parts = MetaParts {
        envelope: true,
        structure: true,
    };
    let meta = r
        .messages_with(mb.id, &[url.uid], parts)?
        .into_iter()
        .next();
    Ok(meta.filter(|m| m.uid == url.uid).map(|m| (mb.id, m)))
}

/// The octets of `url`'s section and partial range of `meta`, at most
/// `max` of them.
pub(crate) fn section_data(
    r: &Reader,
    mailbox: MailboxId,
    meta: &MessageMeta,
    url: &ImapUrl,
    max: u64,
) -> mailstore::Result<UrlData> {
    let (path, text) = match &url.section {
        Some(s) => (s.part.as_slice(), s.text.clone()),
        None => (&[][..], crate::command::SectionText::Full),
    };
    let clip = |len: u64| -> (u64, u64) {
        match url.partial {
            Some((o, n)) => {
                let o = u64::from(o).min(len);
                let n = n.map_or(len - o, |n| u64::from(n).min(len - o));
                (o, n)
            }
            None => (0, len),
        }
    };
    let data = match section_range(meta, path, &text) {
        None => return Ok(UrlData::Missing),
        Some(Range::Empty) => Vec::new(),
        Some(Range::Fields(a, b, names, keep)) => {
            let header = r.raw_range(mailbox, meta.uid, a, b - a)?;
            let all = filter_header(&header, names, keep);
            let (o, n) = clip(all.len() as u64);
            all[o as usize..(o + n) as usize].to_vec()
        }
        Some(Range::Bytes(a, b)) => {
            let (o, n) = clip(b - a);
            if n > max {
                return Ok(UrlData::TooBig);
            }
            r.raw_range(mailbox, meta.uid, a + o, n)?
        }
    };
    if data.len() as u64 > max {
        return Ok(UrlData::TooBig);
    }
    Ok(UrlData::Found(data))
}
