//! A local cache of each mailbox's listing (the rows `mua list` and the TUI
//! show, and what threading needs), kept in `$XDG_CACHE_HOME/mua/` (else
//! `~/.cache/mua/`), one JSON file per account and mailbox, and brought up
//! to date with QRESYNC (RFC 7162 §3.2.5): SELECT names the UIDVALIDITY and
//! MODSEQ the cache was made at, the server answers with only the UIDs
//! expunged since (`VANISHED (EARLIER)`) and the flags changed since, and
//! only messages newer than the cache are fetched. A mailbox of 100,000
//! messages with 10 changes then costs a few hundred octets, not the 30 MB
//! of its envelopes. Without QRESYNC, or when UIDVALIDITY changed, the
//! listing is fetched whole (and cached for next time).

use crate::imap::fetch::fetch_data;
use crate::imap::response::Untagged;
use crate::imap::Client;
use crate::model::{Row, ROW_ITEMS};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// FETCH items for threading: the two header fields.
pub const THREAD_ITEMS: &str = "BODY.PEEK[HEADER.FIELDS (REFERENCES IN-REPLY-TO)]";

/// FETCH items for one cached entry: the row's and the thread fields.
pub fn entry_items() -> String {
    format!("{} {THREAD_ITEMS})", ROW_ITEMS.trim_end_matches(')'))
}

/// One cached message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// What the listing shows.
    pub row: Row,
    /// The Message-ID it answers (References / In-Reply-To), for threads.
    pub parent_id: Option<String>,
}

/// A mailbox's cached listing.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Cached {
    /// UIDVALIDITY the UIDs belong to.
    pub uidvalidity: u32,
    /// HIGHESTMODSEQ when the cache was last brought up to date.
    pub modseq: u64,
    /// The messages by UID.
    pub entries: BTreeMap<u32, Entry>,
}

/// How a listing was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// Fetched whole (no cache, no QRESYNC, or UIDVALIDITY changed).
    Full,
    /// From the cache, brought up to date with QRESYNC.
    Resync,
}

/// The result of [`sync`].
#[derive(Debug)]
pub struct Synced {
    /// The messages by UID.
    pub entries: BTreeMap<u32, Entry>,
    /// How.
    pub how: How,
    /// Flag changes, expunges and new messages learnt.
    pub changed: usize,
    pub vanished: usize,
    pub new: usize,
    /// Octets received for it (SELECT included).
    pub received: u64,
}

/// Where caches live: `$XDG_CACHE_HOME/mua`, else `~/.cache/mua`; None
/// when neither can be named (no HOME).
pub fn dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("mua"))
}

/// The cache file in `dir` for `user` at `server`, mailbox `mailbox`.
pub fn file(dir: &Path, user: &str, server: &str, mailbox: &str) -> PathBuf {
    dir.join(safe_name(&format!("{user}@{server}")))
        .join(format!("{}.json", safe_name(mailbox)))
}

/// `s` as one file name: letters, digits, `.-_@` kept, anything else as
/// `%XX` (so different names never share a file).
fn safe_name(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_@".contains(&b) || (b == b'.' && !out.is_empty()) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The cache at `path`, if there is a readable one.
pub fn load(path: &Path) -> Option<Cached> {
    let text = std::fs::read(path).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Write `cached` to `path` (a temporary file renamed into place, so a
/// crash never leaves half a cache).
///
/// # Errors
/// The directory or file cannot be written.
pub fn save(path: &Path, cached: &Cached) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec(cached).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(&tmp, path)
}

/// The UIDs a `VANISHED` response names (`* VANISHED (EARLIER) 1:3,7`),
/// as inclusive ranges.
fn vanished_ranges(text: &str) -> Option<Vec<(u32, u32)>> {
    let mut words = text.split_whitespace();
    words.find(|w| w.eq_ignore_ascii_case("VANISHED"))?;
    let set = words.rfind(|w| !w.starts_with('('))?;
    set.split(',')
        .map(|part| {
            let (a, b) = part.split_once(':').unwrap_or((part, part));
            let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
            Some((a.min(b), a.max(b)))
        })
        .collect()
}

/// An entry from FETCH data with the row and thread items.
pub fn entry(d: &crate::imap::FetchData) -> Entry {
    let (refs, irt) = d
        .header
        .as_deref()
        .and_then(|h| mailparse::parse_headers(h).ok())
        .map(|(hs, _)| {
            let get = |k: &str| {
                hs.iter()
                    .find(|h| h.get_key_ref().eq_ignore_ascii_case(k))
                    .map(|h| h.get_value())
            };
            (get("References"), get("In-Reply-To"))
        })
        .unwrap_or_default();
    Entry {
        row: Row::from_fetch(d),
        parent_id: crate::tui::thread::parent_of(refs.as_deref(), irt.as_deref()),
    }
}

/// Select `mailbox` (EXAMINE when `read_only`) and bring its listing up to
/// date, starting from the cache at `path` (None: no cache); the cache is
/// written back.
///
/// # Errors
/// No such mailbox, transport failures. An unwritable cache is not an
/// error (the listing is still right).
pub fn sync(
    c: &mut Client,
    mailbox: &str,
    read_only: bool,
    path: Option<&Path>,
) -> crate::error::Result<Synced> {
    let start = c.received();
    let qresync = c.has("QRESYNC") && c.enable("QRESYNC")?;
    let cached = path.and_then(load).filter(|k| k.modseq > 0 && qresync);
    let params = cached
        .as_ref()
        .map(|k| format!("(QRESYNC ({} {}))", k.uidvalidity, k.modseq));
    let (sel, untagged) = c.select_with(mailbox, read_only, params.as_deref())?;
    let mut out = Synced {
        entries: BTreeMap::new(),
        how: How::Full,
        changed: 0,
        vanished: 0,
        new: 0,
        received: 0,
    };
    if let Some(k) = cached.filter(|k| Some(k.uidvalidity) == sel.uid_validity) {
        out.how = How::Resync;
        out.entries = k.entries;
        for u in untagged {
            match u {
                Untagged::Other(text) => {
                    for (a, b) in vanished_ranges(&text).unwrap_or_default() {
                        let gone: Vec<u32> = out.entries.range(a..=b).map(|(u, _)| *u).collect();
                        for uid in gone {
                            out.entries.remove(&uid);
                            out.vanished += 1;
                        }
                    }
                }
                Untagged::Fetch { seq, items } => {
                    let d = fetch_data(seq, &items);
                    if let (Some(uid), Some(flags)) = (d.uid, d.flags) {
                        if let Some(e) = out.entries.get_mut(&uid) {
                            e.row.flags = flags;
                            out.changed += 1;
                        }
                    }
                }
                _ => {}
            }
        }
    }
    let items = entry_items();
    // What is newer than the cache (everything, without one).
    let from = out
        .entries
        .keys()
        .next_back()
        .map_or(1, |u| u.saturating_add(1));
    let more = match sel.uid_next {
        Some(next) => next > from,
        None => sel.exists > 0,
    };
    if more && sel.exists > 0 {
        for d in c.uid_fetch(&format!("{from}:*"), &items)? {
            // `n:*` names the last message even when it is below n.
            if d.uid.is_some_and(|u| u >= from) {
                let e = entry(&d);
                out.entries.insert(e.row.uid, e);
                out.new += 1;
            }
        }
    }
    // A cache that disagrees with the server's count is not trusted: fetch
    // the listing whole.
    if out.how == How::Resync && out.entries.len() != sel.exists as usize {
        out.how = How::Full;
        out.entries.clear();
        if sel.exists > 0 {
            for d in c.uid_fetch("1:*", &items)? {
                let e = entry(&d);
                out.entries.insert(e.row.uid, e);
            }
        }
    }
    if let (Some(p), Some(v), Some(m)) = (path, sel.uid_validity, sel.highest_modseq) {
        let cached = Cached {
            uidvalidity: v,
            modseq: m,
            entries: out.entries.clone(),
        };
        if let Err(e) = save(p, &cached) {
            log_cache_error(p, &e);
        }
    }
    out.received = c.received().saturating_sub(start);
    Ok(out)
}

fn log_cache_error(p: &Path, e: &std::io::Error) {
    eprintln!("mua: cannot write the cache {}: {e}", p.display());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vanished_sets() {
        assert_eq!(
            vanished_ranges("VANISHED (EARLIER) 1:3,7,9:8"),
            Some(vec![(1, 3), (7, 7), (8, 9)])
        );
        assert_eq!(vanished_ranges("VANISHED 5"), Some(vec![(5, 5)]));
        assert_eq!(vanished_ranges("FLAGS (x)"), None);
        assert_eq!(vanished_ranges("VANISHED (EARLIER) x"), None);
    }

    #[test]
    fn file_names_are_safe_and_distinct() {
        assert_eq!(safe_name("bob@localhost"), "bob@localhost");
        assert_eq!(safe_name("a/b"), "a%2Fb");
        assert_eq!(safe_name("../x"), "%2E.%2Fx");
        assert_ne!(safe_name("a b"), safe_name("a_b"));
    }
}
