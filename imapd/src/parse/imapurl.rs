//! IMAP URLs (RFC 5092) naming one message or part, as CATENATE (RFC 4469
//! §5), GENURLAUTH and URLFETCH (RFC 4467) use them:
//!
//! ```text
//! imapurl      = "imap://" iserver ipath-query          ; absolute
//! iserver      = [iuserinfo "@"] host [":" port]
//! iuserinfo    = enc-user [iauth] / [enc-user] iauth
//! imessagepart = imailbox-ref iuid [isection] [ipartial] [iurlauth]
//! imailbox-ref = enc-mailbox [";UIDVALIDITY=" nz-number]
//! iuid         = "/;UID=" nz-number
//! isection     = "/;SECTION=" enc-section
//! ipartial     = "/;PARTIAL=" number ["." nz-number]
//! iurlauth     = [";EXPIRE=" date-time] ";URLAUTH=" access
//!                [":" uauth-mechanism ":" enc-urlauth]
//! access       = ("submit+" enc-user) / ("user+" enc-user) /
//!                "authuser" / "anonymous"
//! ```
//!
//! A relative URL (`/mailbox/;UID=n...`, RFC 4469 §5: relative to the
//! session's server and user) has no server part. Keys are
//! case-insensitive; values are percent-decoded (mailbox names as UTF-8,
//! RFC 5092 §3.3). Parsing is pure: the store is asked only when the URL
//! is used.

use crate::command::Section;

/// Who may fetch a URLAUTH-authorized URL (RFC 4467 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// `anonymous`: anyone.
    Anonymous,
    /// `authuser`: any authenticated user of this server.
    AuthUser,
    /// `user+name`: only that user.
    User(String),
    /// `submit+name`: only a submission server acting for that user.
    Submit(String),
}

/// The URLAUTH part of a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlAuth {
    /// `;EXPIRE=`, as seconds since the epoch.
    pub expire: Option<i64>,
    /// Who may use it.
    pub access: Access,
    /// The URL up to and including the access identifier (the "rump URL"
    /// the token authorizes, RFC 4467 §2.1).
    pub rump: String,
    /// `:mechanism:token`, when present (lower-cased mechanism).
    pub verifier: Option<(String, String)>,
}

/// One parsed IMAP URL naming a message (or a part of one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapUrl {
    /// `imap://user@host`: the user and host, when absolute.
    pub server: Option<(Option<String>, String)>,
    /// The mailbox, decoded.
    pub mailbox: String,
    /// `;UIDVALIDITY=`
    pub uidvalidity: Option<u32>,
    /// `;UID=`
    pub uid: u32,
    /// `;SECTION=`, parsed like a FETCH section.
    pub section: Option<Section>,
    /// `;PARTIAL=offset[.length]`
    pub partial: Option<(u32, Option<u32>)>,
    /// `;URLAUTH=...` with `;EXPIRE=`.
    pub auth: Option<UrlAuth>,
}

fn pct_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

fn pct_text(s: &str) -> Option<String> {
    String::from_utf8(pct_decode(s)?).ok()
}

fn find_ci(hay: &str, needle: &str) -> Option<usize> {
    hay.as_bytes()
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

fn nz(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|n| *n != 0)
}

/// Parse an IMAP URL; `None` if it is not one naming a message.
pub fn parse_url(url: &str) -> Option<ImapUrl> {
    if url.len() > 8192 || url.bytes().any(|c| c <= b' ' || c >= 0x7f) {
        return None;
    }
    let (server, path) = if url.len() >= 7 && url[..7].eq_ignore_ascii_case("imap://") {
        let rest = &url[7..];
        let slash = rest.find('/')?;
        let (authority, path) = rest.split_at(slash);
        let (user, hostport) = match authority.rfind('@') {
            Some(at) => {
                let info = &authority[..at];
                let user = match find_ci(info, ";AUTH=") {
                    Some(p) => &info[..p],
                    None => info,
                };
                let user = if user.is_empty() {
                    None
                } else {
                    Some(pct_text(user)?)
                };
                (user, &authority[at + 1..])
            }
            None => (None, authority),
        };
        let host = match hostport.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|c| c.is_ascii_digit()) => h,
            _ => hostport,
        };
        if host.is_empty() {
            return None;
        }
        (Some((user, host.to_ascii_lowercase())), path)
    } else {
        (None, url)
    };
    let path = path.strip_prefix('/')?;
    let uid_at = find_ci(path, "/;UID=")?;
    let mut mbox_ref = &path[..uid_at];
    let mut uidvalidity = None;
    if let Some(p) = find_ci(mbox_ref, ";UIDVALIDITY=") {
        uidvalidity = Some(nz(&mbox_ref[p + 13..])?);
        mbox_ref = &mbox_ref[..p];
    }
    if mbox_ref.is_empty() || mbox_ref.contains(';') {
        return None;
    }
    let mailbox = crate::parse::normalise_inbox(pct_text(mbox_ref)?);
    let params_at = uid_at + 1;
    let mut out = ImapUrl {
        server,
        mailbox,
        uidvalidity,
        uid: 0,
        section: None,
        partial: None,
        auth: None,
    };
    // `;KEY=value` parameters, each optionally followed by `/`, in order.
    let mut rank = 0;
    let mut expire = None;
    let mut at = params_at; // index in `path` of the `;`
    let base = url.len() - path.len();
    while at < path.len() {
        let tail = &path[at..];
        let tail = tail.strip_prefix(';')?;
        let end = tail.find(';').map_or(tail.len(), |e| e);
        let mut item = &tail[..end];
        let next = at + 1 + end;
        let (key, value) = item.split_once('=')?;
        let key = key.to_ascii_uppercase();
        let (r, last) = match key.as_str() {
            "UID" => (1, false),
            "SECTION" => (2, false),
            "PARTIAL" => (3, false),
            "EXPIRE" => (4, false),
            "URLAUTH" => (5, true),
            _ => return None,
        };
        if r <= rank {
            return None;
        }
        rank = r;
        if !last {
            item = value.strip_suffix('/').unwrap_or(value);
        }
        match key.as_str() {
            "UID" => out.uid = nz(item)?,
            "SECTION" => out.section = Some(section(&pct_text(item)?)?),
            "PARTIAL" => {
                out.partial = Some(match item.split_once('.') {
                    Some((o, n)) => (o.parse().ok()?, Some(nz(n)?)),
                    None => (item.parse().ok()?, None),
                })
            }
            "EXPIRE" => expire = Some(rfc3339(&pct_text(item)?)?),
            _ => {
                // URLAUTH: the rest of the URL.
                let (access, verifier) = match value.split_once(':') {
                    Some((a, v)) => {
                        let (mech, token) = v.split_once(':')?;
                        if mech.is_empty() || token.is_empty() {
                            return None;
                        }
                        (a, Some((mech.to_ascii_lowercase(), token.to_owned())))
                    }
                    None => (value, None),
                };
                let rump_end = base + at + 1 + "URLAUTH=".len() + access.len();
                out.auth = Some(UrlAuth {
                    expire,
                    access: parse_access(access)?,
                    rump: url[..rump_end].to_owned(),
                    verifier,
                });
                if next != path.len() {
                    return None;
                }
            }
        }
        at = next;
    }
    if out.uid == 0 || (expire.is_some() && out.auth.is_none()) {
        return None;
    }
    Some(out)
}

fn parse_access(a: &str) -> Option<Access> {
    let lower = a.to_ascii_lowercase();
    if lower == "anonymous" {
        return Some(Access::Anonymous);
    }
    if lower == "authuser" {
        return Some(Access::AuthUser);
    }
    if let Some(u) = lower.strip_prefix("user+") {
        let _ = u;
        return Some(Access::User(pct_text(&a[5..]).filter(|s| !s.is_empty())?));
    }
    if lower.starts_with("submit+") {
        return Some(Access::Submit(pct_text(&a[7..]).filter(|s| !s.is_empty())?));
    }
    None
}

/// A FETCH-style section spec (`1.2`, `HEADER`, `1.MIME`,
/// `HEADER.FIELDS (A B)`).
fn section(spec: &str) -> Option<Section> {
    let wrapped = format!("[{spec}]");
    match super::fetch::section(wrapped.as_bytes()) {
        Ok((b"", s)) => Some(s),
        _ => None,
    }
}

/// RFC 3339 `date-time` (`2026-12-05T07:00:00Z`, offsets and fractions
/// allowed) as seconds since the epoch.
fn rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |a: usize, n: usize| -> Option<i64> {
        let t = s.get(a..a + n)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (h, mi, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if b[13] != b':' || b[16] != b':' || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        c @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let o = num(i + 1, 2)? * 3600 + num(i + 4, 2)? * 60;
            if *c == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    let days = crate::parse::days_from_civil(y as i32, mo as u32, d as u32);
    Some(days * 86_400 + h * 3600 + mi * 60 + sec - offset)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::command::SectionText;

    #[test]
    fn relative_urls_for_catenate() {
        let u = parse_url("/INBOX;UIDVALIDITY=7/;UID=20/;SECTION=1.MIME/;PARTIAL=5.10").unwrap();
        assert_eq!(u.server, None);
        assert_eq!(u.mailbox, "INBOX");
        assert_eq!(u.uidvalidity, Some(7));
        assert_eq!(u.uid, 20);
        let s = u.section.unwrap();
        assert_eq!((s.part, s.text), (vec![1], SectionText::Mime));
        assert_eq!(u.partial, Some((5, Some(10))));
        let u = parse_url("/a/b%20c/;uid=3/;section=header.fields%20(From%20To)").unwrap();
        assert_eq!(u.mailbox, "a/b c");
        assert_eq!(
            u.section.unwrap().text,
            SectionText::HeaderFields(vec!["From".into(), "To".into()])
        );
        for bad in [
            "/INBOX",
            "/INBOX/;UID=0",
            "/;UID=1",
            "INBOX/;UID=1",
            "/INBOX/;UID=1/;SECTION=bogus",
            "/INBOX/;SECTION=1/;UID=1",
            "/INBOX/;UID=1;EXPIRE=2026-01-01T00:00:00Z",
            "/INBOX/;UID=1/;FOO=1",
        ] {
            assert_eq!(parse_url(bad), None, "{bad}");
        }
    }

    #[test]
    fn urlauth_urls_keep_their_rump() {
        // RFC 4467 §7's example.
        let url = "imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred:internal:91354a473744909de610943775f92038";
        let u = parse_url(url).unwrap();
        assert_eq!(u.server, Some((Some("joe".into()), "example.com".into())));
        let a = u.auth.unwrap();
        assert_eq!(a.access, Access::Submit("fred".into()));
        assert_eq!(a.rump, &url[..url.find(":internal").unwrap()]);
        assert_eq!(
            a.verifier,
            Some(("internal".into(), "91354a473744909de610943775f92038".into()))
        );
        let u = parse_url(
            "imap://a%40b@h:143/X/;UID=1;EXPIRE=1970-01-01T01:00:00+01:00;URLAUTH=authuser",
        )
        .unwrap();
        assert_eq!(u.server, Some((Some("a@b".into()), "h".into())));
        let a = u.auth.unwrap();
        assert_eq!(
            (a.expire, a.access, a.verifier),
            (Some(0), Access::AuthUser, None)
        );
        assert_eq!(rfc3339("2004-11-30T12:00:00.5Z"), Some(1_101_816_000));
    }
}
