//! Cross-session notifications (RFC 3501 §5.2: servers tell clients about
//! mailbox changes).
//!
//! Every session with a mailbox selected registers here with a
//! [`Wake`] callback. Two sources wake them:
//! - the store's commit listener (in-process writes: SMTP delivery in the
//!   same process, other IMAP sessions), which names the mailboxes touched;
//! - a watcher thread polling [`mailstore::Reader::data_version`] every
//!   [`POLL_EVERY`] for commits by another process on the same database
//!   file; when the counter moves it reads the watched mailboxes'
//!   HIGHESTMODSEQ and wakes the sessions that are behind.
//!
//! A wake-up is only a hint (the session's callback sends itself a
//! `Changed` completion); the session then reads
//! `changes_since` itself and decides what it may send, and when. Wake-ups
//! are coalesced with a per-session flag so a burst of commits costs one
//! message per session.
//!
//! The hub also holds what sessions share about a mailbox: the `\Recent`
//! marks and the registry of sequence-number maps (`views.rs`).

use crate::limits::POLL_EVERY;
use crate::view::views::Views;
use mailstore::{MailboxId, Store};
use netloop::ConnId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;

/// How the hub wakes one session: called from the store's commit listener
/// or the watcher thread, so it only queues a message to the session's loop.
pub type Wake = Box<dyn Fn() + Send>;

struct Watch {
    mailbox: MailboxId,
    wake: Wake,
    pending: Arc<AtomicBool>,
    /// The HIGHESTMODSEQ the session has caught up with.
    synced: Arc<AtomicU64>,
}

/// The registry of sessions waiting to hear about mailbox changes.
pub struct Hub {
    watches: Mutex<HashMap<ConnId, Watch>>,
    /// Per mailbox, the highest UID some session has already been told
    /// about, keyed by id *and* UIDVALIDITY (SQLite may reuse the id of a
    /// deleted mailbox): newer messages are `\Recent` for the next session to see
    /// them (RFC 3501 §2.3.2). Kept in memory: after a restart every
    /// message counts as recent once.
    recent: Mutex<HashMap<(MailboxId, u32), mailstore::Uid>>,
    /// Sequence-number maps shared between sessions (`views.rs`).
    pub views: Views,
    /// SELECT's answers per mailbox state (`select_cache.rs`).
    pub selects: crate::view::select_cache::SelectCache,
    stop: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Hub {
    /// A hub wired to `store`: registers the commit listener and starts the
    /// cross-process watcher thread (stopped by [`Hub::stop`]).
    pub fn start(store: &Store) -> Arc<Hub> {
        let hub = Arc::new(Hub {
            watches: Mutex::new(HashMap::new()),
            recent: Mutex::new(HashMap::new()),
            views: Views::new(),
            selects: Default::default(),
            stop: AtomicBool::new(false),
        });
        let weak = Arc::downgrade(&hub);
        store.on_commit(move |touched| {
            if let Some(hub) = weak.upgrade() {
                hub.wake(|m| touched.binary_search(&m).is_ok());
            }
        });
        let weak = Arc::downgrade(&hub);
        let store = store.clone();
        let spawned = thread::Builder::new()
            .name("imapd-watcher".into())
            .spawn(move || watch_loop(weak, store));
        if let Err(e) = spawned {
            log::error!("imapd: cannot start the change watcher: {e}");
        }
        hub
    }

    /// Ask the watcher thread to end.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Register (or move) a session's interest in `mailbox`.
    pub fn watch(
        &self,
        conn: ConnId,
        mailbox: MailboxId,
        wake: Wake,
        pending: Arc<AtomicBool>,
        synced: Arc<AtomicU64>,
    ) {
        lock(&self.watches).insert(
            conn,
            Watch {
                mailbox,
                wake,
                pending,
                synced,
            },
        );
    }

    /// Claim messages up to `up_to` for the calling session: returns the
    /// previous mark, so UIDs above it are `\Recent` for the caller only.
    pub fn claim_recent(
        &self,
        mailbox: MailboxId,
        uidvalidity: u32,
        up_to: mailstore::Uid,
    ) -> mailstore::Uid {
        let mut map = lock(&self.recent);
        let mark = map.entry((mailbox, uidvalidity)).or_insert(0);
        let prev = *mark;
        *mark = prev.max(up_to);
        prev
    }

    /// The current mark without claiming (EXAMINE, STATUS).
    pub fn recent_mark(&self, mailbox: MailboxId, uidvalidity: u32) -> mailstore::Uid {
        lock(&self.recent)
            .get(&(mailbox, uidvalidity))
            .copied()
            .unwrap_or(0)
    }

    /// Forget a session.
    pub fn unwatch(&self, conn: ConnId) {
        lock(&self.watches).remove(&conn);
    }

    /// Mailboxes someone is watching.
    fn watched(&self) -> Vec<MailboxId> {
        let mut v: Vec<MailboxId> = lock(&self.watches).values().map(|w| w.mailbox).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Wake sessions behind their mailbox's HIGHESTMODSEQ (or whose
    /// mailbox is not in `current`, e.g. deleted).
    fn wake_stale(&self, current: &HashMap<MailboxId, u64>) {
        self.wake_if(|w| {
            current
                .get(&w.mailbox)
                .is_none_or(|&hms| hms > w.synced.load(Ordering::SeqCst))
        });
    }

    fn wake(&self, affected: impl Fn(MailboxId) -> bool) {
        self.wake_if(|w| affected(w.mailbox));
    }

    fn wake_if(&self, affected: impl Fn(&Watch) -> bool) {
        for w in lock(&self.watches).values() {
            if affected(w) && !w.pending.swap(true, Ordering::SeqCst) {
                (w.wake)();
            }
        }
    }
}

fn watch_loop(hub: std::sync::Weak<Hub>, store: Store) {
    let mut last_version: Option<i64> = None;
    let mut first = true;
    loop {
        // Take the baseline at once, then poll.
        if !std::mem::take(&mut first) {
            thread::sleep(POLL_EVERY);
        }
        let Some(h) = hub.upgrade() else { return };
        if h.stop.load(Ordering::SeqCst) {
            return;
        }
        let watched = h.watched();
        drop(h);
        // One read: the commit counter and each watched mailbox's
        // HIGHESTMODSEQ (every change to a mailbox bumps it).
        let (tx, rx) = mpsc::channel();
        store.read(
            move |r| {
                let version = r.data_version()?;
                let mut current = HashMap::new();
                for id in watched {
                    if let Some(mb) = r.mailbox_by_id(id)? {
                        current.insert(id, mb.highestmodseq);
                    }
                }
                Ok((version, current))
            },
            move |v| {
                let _ = tx.send(v);
            },
        );
        let (version, current) = match rx.recv() {
            Ok(Ok(v)) => v,
            Ok(Err(mailstore::StoreError::Closed)) | Err(_) => return,
            Ok(Err(e)) => {
                log::warn!("imapd watcher: {e}");
                continue;
            }
        };
        let Some(h) = hub.upgrade() else { return };
        // The counter cannot tell our commits from another process's (the
        // commit listener already woke sessions for ours), so on any change
        // wake exactly the sessions that are behind their mailbox.
        if last_version.is_some_and(|prev| prev != version) {
            h.wake_stale(&current);
        }
        last_version = Some(version);
    }
}
