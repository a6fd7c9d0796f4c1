//! The data an IMAP URL (RFC 5092) names, for CATENATE (RFC 4469) and
//! URLFETCH (RFC 4467): who may read it, the message (by mailbox,
//! UIDVALIDITY and UID) and the section and partial range of it. Runs on a
//! store thread.
//!
//! URLAUTH (RFC 4467 §3, §6): a URL carrying `;URLAUTH=access:internal:token`
//! may name another user's message; it is honoured when its token is the
//! HMAC-SHA256, under the mailbox's key (kept by mailstore, made by
//! GENURLAUTH, replaced by RESETKEY), of the URL up to the access
//! identifier (the rump), it has not expired, and the access identifier
//! lets the session's user in. A URL without URLAUTH names only the
//! session's own messages.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::fetch_encode::{filter_header, section_range, Range};
use crate::parse::imapurl::Access;
use crate::parse::imapurl::ImapUrl;
use mailstore::{Mailbox, MailboxId, MessageMeta, MetaParts, Reader, User};

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

/// Whether `name` (of `user+name`, RFC 4467 §3) is the account `login`
/// (as given, or `name@host` with the URL's host).
fn is_account(name: &str, url: &ImapUrl, login: &str) -> bool {
    name.eq_ignore_ascii_case(login)
        || url
            .server
            .as_ref()
            .is_some_and(|(_, host)| format!("{name}@{host}").eq_ignore_ascii_case(login))
}

/// The token of the INTERNAL mechanism: HMAC-SHA256 of the rump URL under
/// the mailbox key, in lower-case hex (RFC 4467 §9 `enc-urlauth`, at least
/// 32 hex digits; here 64).
pub(crate) fn internal_token(key: &[u8], rump: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        // HMAC takes keys of any length.
        Err(_) => return String::new(),
    };
    mac.update(rump.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `token` (hex) is the INTERNAL token of `rump` under `key`,
/// compared in constant time.
fn token_ok(key: &[u8], rump: &str, token: &str) -> bool {
    let Some(bytes) = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()
    else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return false;
    };
    mac.update(rump.as_bytes());
    mac.verify_slice(&bytes).is_ok()
}

/// The mailbox `url` names, if the session's user (`me`) may read from it
/// now (`now`: seconds since the epoch, for `;EXPIRE=`).
pub(crate) fn url_mailbox(
    r: &Reader,
    url: &ImapUrl,
    me: &User,
    now: i64,
) -> mailstore::Result<Option<Mailbox>> {
    let Some(auth) = &url.auth else {
        if !names_account(url, &me.address) {
            return Ok(None);
        }
        return r.mailbox(me.id, &url.mailbox);
    };
    let Some((mech, token)) = &auth.verifier else {
        return Ok(None);
    };
    let allowed = match &auth.access {
        Access::Anonymous | Access::AuthUser => true,
        Access::User(name) => is_account(name, url, &me.address),
        // No submission server acts for users here (RFC 4467 §3).
        Access::Submit(_) => false,
    };
    if mech != "internal" || !allowed || auth.expire.is_some_and(|e| e <= now) {
        return Ok(None);
    }
    let Some((Some(user), host)) = &url.server else {
        return Ok(None);
    };
    let owner = match r.user(user)? {
        Some(u) => u,
        None => match r.user(&format!("{user}@{host}"))? {
            Some(u) => u,
            None => return Ok(None),
        },
    };
    let Some(mb) = r.mailbox(owner.id, &url.mailbox)? else {
        return Ok(None);
    };
    let Some(key) = r.mailbox_key(mb.id)? else {
        return Ok(None);
    };
    Ok(token_ok(&key, &auth.rump, token).then_some(mb))
}

/// The message `url` names, with its structure, if `me` may read it.
pub(crate) fn url_message(
    r: &Reader,
    url: &ImapUrl,
    me: &User,
    now: i64,
) -> mailstore::Result<Option<(MailboxId, MessageMeta)>> {
    let Some(mb) = url_mailbox(r, url, me, now)? else {
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

/// Seconds since the epoch, now.
pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_tokens_verify_only_with_their_key_and_rump() {
        // RFC 4231 test case 2 (HMAC-SHA-256).
        assert_eq!(
            internal_token(b"Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let t = internal_token(b"k1", "imap://a@b/X/;UID=1;URLAUTH=authuser");
        assert!(token_ok(b"k1", "imap://a@b/X/;UID=1;URLAUTH=authuser", &t));
        assert!(!token_ok(b"k2", "imap://a@b/X/;UID=1;URLAUTH=authuser", &t));
        assert!(!token_ok(b"k1", "imap://a@b/X/;UID=2;URLAUTH=authuser", &t));
        assert!(!token_ok(
            b"k1",
            "imap://a@b/X/;UID=1;URLAUTH=authuser",
            &t[..62]
        ));
        assert!(!token_ok(
            b"k1",
            "imap://a@b/X/;UID=1;URLAUTH=authuser",
            "zz"
        ));
    }
}
