//! Background IMAP/SMTP work for the TUI, so the screen never waits on the
//! network: a worker thread owns one IMAP session and answers `Request`s
//! with `Event`s; a watcher thread keeps a second session in IDLE
//! (RFC 2177) on INBOX, learns of the other mailboxes with NOTIFY (RFC
//! 5465) or periodic STATUS, and reports new mail in any of them.

use super::{Event, Purpose, Request};
use crate::error::{MuaError, Result};
use crate::imap::response::Untagged;
use crate::imap::{uid_set, Arg, Client};
use crate::model::{fetch_message, mailbox_rows};
use crate::net::Options;
use crate::smtp::SmtpClient;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

/// Resolved account settings the threads need.
#[derive(Debug, Clone)]
pub struct Account {
    /// IMAP `host:port`.
    pub imap: String,
    /// SMTP `host:port`.
    pub smtp: String,
    /// Login / envelope sender.
    pub user: String,
    /// Password.
    pub password: String,
    /// Sent mailbox.
    pub sent: String,
    /// TLS mode and trust (trace off: the screen is the terminal).
    pub net: Options,
    /// Where mailbox listings are cached (None: no cache; see
    /// `crate::cache`).
    pub cache_dir: Option<std::path::PathBuf>,
}

impl Account {
    fn imap_session(&self) -> Result<Client> {
        let mut c = Client::connect(&self.imap, &self.net)?;
        c.login(&self.user, &self.password)?;
        Ok(c)
    }
}

/// A listed message plus what threading needs (the cache's entry).
pub use crate::cache::Entry as Item;

struct Worker {
    account: Account,
    client: Client,
    mailbox: String,
    has_trash: bool,
    /// The open mailbox's listing as far as known (from the cache, kept
    /// up to date), so rows scrolled into view need no FETCH.
    known: std::collections::BTreeMap<u32, Item>,
}

impl Worker {
    fn handle(&mut self, req: Request) -> Result<Vec<Event>> {
        Ok(match req {
            Request::Mailboxes => {
                // Some servers (Dovecot) answer STATUS on the selected
                // mailbox from the session's view: sync it first.
                if !self.mailbox.is_empty() {
                    self.client.noop()?;
                }
                let rows = mailbox_rows(&mut self.client)?;
                self.has_trash = rows.iter().any(|r| r.name == "Trash");
                vec![Event::Mailboxes(rows)]
            }
            Request::Select { mailbox, query } => {
                let uids = match &query {
                    None => {
                        // The listing from the cache brought up to date
                        // (QRESYNC), or fetched whole.
                        let path = self.account.cache_dir.as_ref().map(|d| {
                            crate::cache::file(d, &self.account.user, &self.account.imap, &mailbox)
                        });
                        let synced =
                            crate::cache::sync(&mut self.client, &mailbox, false, path.as_deref())?;
                        self.known = synced.entries;
                        self.known.keys().rev().copied().collect()
                    }
                    Some(q) => {
                        let criteria = crate::query::to_search(q).map_err(MuaError::Usage)?;
                        if self.mailbox != mailbox {
                            self.known.clear();
                        }
                        self.client.select(&mailbox, false)?;
                        let mut uids = self.client.uid_search(criteria)?;
                        uids.sort_unstable_by(|a, b| b.cmp(a));
                        uids
                    }
                };
                self.mailbox = mailbox.clone();
                vec![Event::Uids {
                    mailbox,
                    uids,
                    query,
                }]
            }
            Request::Rows(uids) => {
                let missing: Vec<u32> = uids
                    .iter()
                    .copied()
                    .filter(|u| !self.known.contains_key(u))
                    .collect();
                if !missing.is_empty() {
                    let data = self
                        .client
                        .uid_fetch(&uid_set(&missing), &crate::cache::entry_items())?;
                    for d in &data {
                        let item = crate::cache::entry(d);
                        self.known.insert(item.row.uid, item);
                    }
                }
                let items: Vec<Item> = uids
                    .iter()
                    .filter_map(|u| self.known.get(u).cloned())
                    .collect();
                if items.is_empty() {
                    return Ok(Vec::new());
                }
                vec![Event::Rows(items)]
            }
            Request::Message { uid, purpose } => {
                let bytes = fetch_message(&mut self.client, &self.mailbox, uid)?;
                if purpose == Purpose::Read {
                    self.client
                        .uid_store(&uid.to_string(), "+FLAGS", &["\\Seen"])?;
                    if let Some(item) = self.known.get_mut(&uid) {
                        if !item
                            .row
                            .flags
                            .iter()
                            .any(|f| f.eq_ignore_ascii_case("\\Seen"))
                        {
                            item.row.flags.push("\\Seen".into());
                        }
                    }
                }
                vec![Event::Message {
                    uid,
                    bytes,
                    purpose,
                }]
            }
            Request::Flag { uid, flag, on } => {
                let op = if on { "+FLAGS" } else { "-FLAGS" };
                self.client
                    .uid_store(&uid.to_string(), op, &[flag.as_str()])?;
                if let Some(item) = self.known.get_mut(&uid) {
                    item.row.flags.retain(|f| !f.eq_ignore_ascii_case(&flag));
                    if on {
                        item.row.flags.push(flag.clone());
                    }
                }
                vec![Event::Info(format!(
                    "{} {flag} on {uid}",
                    if on { "set" } else { "cleared" }
                ))]
            }
            Request::Delete { uid } => {
                let set = uid.to_string();
                if self.has_trash && self.mailbox != "Trash" {
                    self.client.uid_move(&set, "Trash")?;
                } else {
                    self.client.uid_store(&set, "+FLAGS", &["\\Deleted"])?;
                    self.client.uid_expunge(&set)?;
                }
                self.known.remove(&uid);
                vec![
                    Event::Removed(uid),
                    Event::Info(format!("deleted message {uid}")),
                ]
            }
            Request::Move { uid, dest } => {
                self.client.uid_move(&uid.to_string(), &dest)?;
                self.known.remove(&uid);
                vec![
                    Event::Removed(uid),
                    Event::Info(format!("moved message {uid} to {dest}")),
                ]
            }
            Request::Save { uid, index, path } => {
                let bytes = fetch_message(&mut self.client, &self.mailbox, uid)?;
                let msg = crate::message::Message::parse(&bytes)?;
                let att = msg
                    .attachments()
                    .into_iter()
                    .find(|a| a.index == index)
                    .ok_or_else(|| MuaError::NotFound(format!("no attachment {index}")))?;
                std::fs::write(&path, &att.data)
                    .map_err(|e| MuaError::Usage(format!("cannot write {path}: {e}")))?;
                vec![Event::Info(format!(
                    "saved {} ({} bytes) to {path}",
                    att.filename,
                    att.data.len()
                ))]
            }
            Request::Send(draft) => {
                if self.account.smtp.is_empty() {
                    return Err(MuaError::Usage(
                        "no SMTP server configured (--smtp, MUA_SMTP or smtp = in the config)"
                            .into(),
                    ));
                }
                let rcpts = draft.recipients()?;
                let (id, bytes) = draft.build()?;
                let mut smtp = SmtpClient::connect(&self.account.smtp, &self.account.net)?;
                smtp.auth(&self.account.user, &self.account.password)?;
                smtp.send(
                    &self.account.user,
                    &rcpts,
                    &crate::compose::strip_bcc(&bytes),
                )?;
                smtp.quit();
                let filed = self.client.append(&self.account.sent, &["\\Seen"], &bytes);
                vec![Event::Info(match filed {
                    Ok(()) => format!("sent {id}"),
                    Err(e) => format!("sent {id}, but not filed in {}: {e}", self.account.sent),
                })]
            }
        })
    }
}

impl Worker {
    /// A fresh session after the old one died (server restart, autologout),
    /// with the open mailbox selected again.
    fn reconnect(&mut self) -> Result<()> {
        self.client = self.account.imap_session()?;
        if !self.mailbox.is_empty() {
            self.client.select(&self.mailbox, false)?;
        }
        Ok(())
    }

    /// Handles a request; if the connection broke, reconnects and retries
    /// once — except for sending, which must never go out twice.
    fn handle_retrying(&mut self, req: Request) -> Vec<Event> {
        let as_events =
            |r: Result<Vec<Event>>| r.unwrap_or_else(|e| vec![Event::Error(e.to_string())]);
        if matches!(req, Request::Send(_)) {
            return as_events(self.handle(req));
        }
        match self.handle(req.clone()) {
            Ok(evs) => evs,
            Err(MuaError::Protocol(why)) => match self.reconnect() {
                Ok(()) => as_events(self.handle(req)),
                Err(e) => vec![Event::Error(format!("{why}; reconnecting failed: {e}"))],
            },
            Err(e) => vec![Event::Error(e.to_string())],
        }
    }
}

/// Runs the worker on a logged-in session until the request channel closes.
pub fn spawn_worker(
    account: Account,
    client: Client,
    requests: Receiver<Request>,
    events: Sender<Event>,
) {
    std::thread::spawn(move || {
        let mut w = Worker {
            account,
            client,
            mailbox: String::new(),
            has_trash: false,
            known: std::collections::BTreeMap::new(),
        };
        for req in requests {
            for ev in w.handle_retrying(req) {
                if events.send(ev).is_err() {
                    return;
                }
            }
        }
        w.client.logout();
    });
}

/// Where each watched mailbox was: its UIDNEXT and message count.
type Seen = std::collections::HashMap<String, (u64, u64)>;

/// Mailboxes whose new messages are the user's own doing, not news.
fn watched(b: &crate::imap::MailboxInfo) -> bool {
    let own = ["\\Sent", "\\Drafts", "\\Trash"];
    b.selectable()
        && !b.name.eq_ignore_ascii_case("INBOX")
        && !b
            .flags
            .iter()
            .any(|f| own.iter().any(|o| f.eq_ignore_ascii_case(o)))
        && !["Sent", "Drafts", "Trash"].contains(&b.name.as_str())
}

/// UIDNEXT and MESSAGES of `name`, from a STATUS command.
fn uidnext_messages(c: &mut Client, name: &str) -> Result<(u64, u64)> {
    let done = c.run_ok(vec![
        Arg::raw("STATUS"),
        Arg::Mailbox(name.into()),
        Arg::raw("(UIDNEXT MESSAGES)"),
    ])?;
    let mut got = (0, 0);
    for u in done.untagged {
        if let Untagged::Status { items, .. } = u {
            for (k, v) in items {
                match k.as_str() {
                    "UIDNEXT" => got.0 = v,
                    "MESSAGES" => got.1 = v,
                    _ => {}
                }
            }
        }
    }
    Ok(got)
}

/// Whether a STATUS report (`items`) for `mailbox` means new mail since
/// `seen`: UIDNEXT grew, or (without UIDNEXT) the count grew. Records it.
fn status_news(seen: &mut Seen, mailbox: &str, items: &[(String, u64)]) -> bool {
    let get = |k: &str| items.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
    let (old_next, old_count) = seen.get(mailbox).copied().unwrap_or((0, 0));
    let next = get("UIDNEXT");
    let count = get("MESSAGES");
    seen.insert(
        mailbox.to_owned(),
        (next.unwrap_or(old_next), count.unwrap_or(old_count)),
    );
    match (next, count) {
        (Some(n), _) => n > old_next,
        (None, Some(m)) => m > old_count,
        (None, None) => false,
    }
}

/// One watcher session: log in, EXAMINE INBOX, then wait for news of every
/// mailbox until the connection fails (Err) or `stop` is set (Ok). With
/// NOTIFY (RFC 5465) the server reports new mail in the other mailboxes as
/// STATUS responses during IDLE; without it, IDLE covers INBOX and the
/// others are polled with STATUS every round. `count` carries INBOX's
/// message count across reconnections so mail that arrived in between is
/// reported.
fn watch(
    account: &Account,
    events: &Sender<Event>,
    stop: &AtomicBool,
    count: &mut Option<u32>,
) -> Result<()> {
    let mut c = account.imap_session()?;
    let others: Vec<String> = c
        .list()?
        .into_iter()
        .filter(watched)
        .map(|b| b.name)
        .collect();
    let mut seen = Seen::new();
    for name in &others {
        let now = uidnext_messages(&mut c, name)?;
        seen.insert(name.clone(), now);
    }
    let sel = c.select("INBOX", true)?;
    let notify = c.has("NOTIFY")
        && c.run_ok(vec![Arg::raw(
            "NOTIFY SET (selected (MessageNew MessageExpunge)) \
                 (personal (MessageNew MessageExpunge))",
        )])
        .is_ok();
    match *count {
        Some(n) if sel.exists > n => {
            let _ = events.send(Event::NewMail("INBOX".into()));
        }
        None => {
            let how = if notify {
                "NOTIFY"
            } else {
                "IDLE on INBOX, STATUS every 30 s"
            };
            let _ = events.send(Event::Info(format!(
                "watching INBOX and {} other mailboxes for new mail ({how})",
                others.len()
            )));
        }
        _ => {}
    }
    *count = Some(sel.exists);
    let news = |mailbox: &str| events.send(Event::NewMail(mailbox.to_owned())).is_ok();
    while !stop.load(Ordering::Relaxed) {
        // RFC 2177 asks clients to re-issue IDLE at least every 29 minutes;
        // shorter rounds also notice `stop` sooner.
        for u in c.idle(Duration::from_secs(30))? {
            match u {
                Untagged::Exists(n) => {
                    if count.is_some_and(|c| n > c) && !news("INBOX") {
                        return Ok(());
                    }
                    *count = Some(n);
                }
                Untagged::Expunge(_) => *count = count.map(|c| c.saturating_sub(1)),
                Untagged::Status { mailbox, items } => {
                    let unwatched = others.iter().all(|o| o != &mailbox);
                    if !unwatched && status_news(&mut seen, &mailbox, &items) && !news(&mailbox) {
                        return Ok(());
                    }
                }
                _ => {}
            }
        }
        if !notify {
            for name in &others {
                let (next, messages) = uidnext_messages(&mut c, name)?;
                let items = [
                    ("UIDNEXT".to_owned(), next),
                    ("MESSAGES".to_owned(), messages),
                ];
                if status_news(&mut seen, name, &items) && !news(name) {
                    return Ok(());
                }
            }
        }
    }
    c.logout();
    Ok(())
}

/// Watches every mailbox on its own connection (see [`watch`]) and sends
/// `NewMail` when one gets new messages; reconnects (every 5 s) when the
/// session drops. Stops when `stop` is set or the UI is gone.
pub fn spawn_watcher(account: Account, events: Sender<Event>, stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let mut count = None;
        while !stop.load(Ordering::Relaxed) {
            match watch(&account, &events, &stop, &mut count) {
                Ok(()) => return,
                Err(e) => {
                    if events
                        .send(Event::Info(format!("new-mail watcher: {e}; retrying")))
                        .is_err()
                    {
                        return;
                    }
                    std::thread::sleep(Duration::from_secs(5));
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(v: &[(&str, u64)]) -> Vec<(String, u64)> {
        v.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect()
    }

    #[test]
    fn status_reports_count_as_news_only_when_mail_was_added() {
        let mut seen = Seen::new();
        seen.insert("Lists".into(), (10, 5));
        // Same UIDNEXT (a poll with nothing new; an expunge): no news.
        assert!(!status_news(
            &mut seen,
            "Lists",
            &items(&[("UIDNEXT", 10), ("MESSAGES", 4)])
        ));
        // UIDNEXT grew: news, and remembered.
        assert!(status_news(
            &mut seen,
            "Lists",
            &items(&[("UIDNEXT", 12), ("MESSAGES", 6)])
        ));
        assert!(!status_news(
            &mut seen,
            "Lists",
            &items(&[("UIDNEXT", 12), ("MESSAGES", 6)])
        ));
        // NOTIFY's expunge report carries MESSAGES only: fewer is no news.
        assert!(!status_news(&mut seen, "Lists", &items(&[("MESSAGES", 5)])));
        assert!(status_news(&mut seen, "Lists", &items(&[("MESSAGES", 7)])));
        assert_eq!(seen["Lists"], (12, 7));
    }
}
