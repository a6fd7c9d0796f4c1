//! Cross-session notifications (RFC 3501 §5.2: servers tell clients about
//! mailbox changes).
//!
//! Every session with a mailbox selected registers here with a
//! [`Wake`] callback. Two sources wake them:
//! - the store's commit listener (in-process writes: SMTP delivery in the
//!   same process, other IMAP sessions), which names the mailboxes touched;
//! - a watcher thread reading [`mailstore::Reader::data_version`] for
//!   commits by another process on the same database: every
//!   [`POLL_EVERY`] on SQLite; on PostgreSQL as soon as another front end's
//!   commit is announced ([`mailstore::Store::listen_commits`], LISTEN/
//!   NOTIFY), and every [`SAFETY_POLL`] besides; when the counter moves it
//!   reads the watched mailboxes'
//!   HIGHESTMODSEQ and wakes the sessions that are behind; NOTIFY
//!   sessions are told to look at everything when the counter moved by
//!   more than this process's own commits (the store records those).
//!
//! A wake-up is only a hint (the session's callback sends itself a
//! `Changed` completion); the session then reads
//! `changes_since` itself and decides what it may send, and when. Wake-ups
//! are coalesced with a per-session flag so a burst of commits costs one
//! message per session.
//!
//! Sessions that used NOTIFY (RFC 5465) also register the user whose
//! mailboxes they follow ([`Hub::watch_notify`]): a commit that changes one
//! of that user's mailboxes, or their mailbox list or subscriptions, marks
//! it in the session's [`Dirty`] set and wakes it once; the session then
//! reads what changed for the mailboxes it follows. The registrations are
//! indexed by mailbox (selected sessions) and by user (NOTIFY), so a
//! commit costs work in proportion to the sessions watching what it
//! touched, never to all sessions. A session's dirty set is bounded
//! ([`MAX_DIRTY`]; past it, "everything") and so is what it follows (one
//! user's mailboxes, at most `MAX_MAILBOXES`).
//!
//! The hub also holds what sessions share about a mailbox: the `\Recent`
//! marks and the registry of sequence-number maps (`views.rs`).

use crate::limits::{POLL_EVERY, SAFETY_POLL};
use crate::view::views::Views;
use mailstore::{Committed, MailboxId, Store, UserId};
use netloop::ConnId;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;

/// How the hub wakes one session: called from the store's commit listener
/// or the watcher thread, so it only queues a message to the session's loop.
pub type Wake = Box<dyn Fn() + Send>;

/// Most mailboxes a NOTIFY session's dirty set names; beyond, it says
/// "everything" ([`DirtySet::all`]).
pub const MAX_DIRTY: usize = 256;

struct Watch {
    mailbox: MailboxId,
    wake: Wake,
    pending: Arc<AtomicBool>,
    /// The HIGHESTMODSEQ the session has caught up with.
    synced: Arc<AtomicU64>,
}

/// What changed for a NOTIFY session since it last looked.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DirtySet {
    /// Mailboxes (of the followed user) whose contents changed.
    pub mailboxes: BTreeSet<MailboxId>,
    /// The user's mailbox list or subscriptions changed.
    pub lists: bool,
    /// Anything may have changed (too many mailboxes, or another process
    /// committed): look at everything.
    pub all: bool,
}

impl DirtySet {
    /// Nothing to look at.
    pub fn is_empty(&self) -> bool {
        self.mailboxes.is_empty() && !self.lists && !self.all
    }
}

/// A NOTIFY session's [`DirtySet`], shared between the hub and the session.
#[derive(Debug, Default)]
pub struct Dirty(Mutex<DirtySet>);

impl Dirty {
    /// Change the set; true if it was empty before (the session needs a
    /// wake-up; otherwise one is already on its way).
    fn mark(&self, f: impl FnOnce(&mut DirtySet)) -> bool {
        let mut d = lock(&self.0);
        let was_empty = d.is_empty();
        f(&mut d);
        if d.mailboxes.len() > MAX_DIRTY {
            d.mailboxes.clear();
            d.all = true;
        }
        was_empty && !d.is_empty()
    }

    /// Take what changed, leaving the set empty.
    pub fn take(&self) -> DirtySet {
        std::mem::take(&mut lock(&self.0))
    }

    /// Is there anything to look at?
    pub fn is_dirty(&self) -> bool {
        !lock(&self.0).is_empty()
    }

    /// Mark everything (a fresh NOTIFY, or a lost baseline).
    pub fn mark_all(&self) {
        self.mark(|d| d.all = true);
    }
}

struct NotifyWatch {
    user: UserId,
    wake: Wake,
    dirty: Arc<Dirty>,
}

/// Who waits for what, with the indexes a commit is routed through.
#[derive(Default)]
struct Registry {
    /// Sessions with a mailbox selected.
    watches: HashMap<ConnId, Watch>,
    /// The same, by mailbox.
    by_mailbox: HashMap<MailboxId, Vec<ConnId>>,
    /// NOTIFY sessions.
    notify: HashMap<ConnId, NotifyWatch>,
    /// The same, by the user they follow.
    by_user: HashMap<UserId, Vec<ConnId>>,
}

fn unindex<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Vec<ConnId>>, key: K, conn: ConnId) {
    if let Some(v) = map.get_mut(&key) {
        v.retain(|c| *c != conn);
        if v.is_empty() {
            map.remove(&key);
        }
    }
}

impl Registry {
    fn wake_notify(&self, user: UserId, f: impl Fn(&mut DirtySet)) {
        for conn in self.by_user.get(&user).into_iter().flatten() {
            if let Some(n) = self.notify.get(conn) {
                if n.dirty.mark(&f) {
                    (n.wake)();
                }
            }
        }
    }
}

/// The registry of sessions waiting to hear about mailbox changes.
pub struct Hub {
    reg: Mutex<Registry>,
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
    /// SORT and THREAD answers per mailbox state (`sort_cache.rs`).
    pub sorts: crate::view::sort_cache::SortCache,
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
            reg: Mutex::new(Registry::default()),
            recent: Mutex::new(HashMap::new()),
            views: Views::new(),
            selects: Default::default(),
            sorts: Default::default(),
            stop: AtomicBool::new(false),
        });
        let weak = Arc::downgrade(&hub);
        store.on_commit_detail(move |c| {
            if let Some(hub) = weak.upgrade() {
                hub.committed(c);
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
        let mut reg = lock(&self.reg);
        let old = reg.watches.insert(
            conn,
            Watch {
                mailbox,
                wake,
                pending,
                synced,
            },
        );
        if let Some(old) = old {
            unindex(&mut reg.by_mailbox, old.mailbox, conn);
        }
        reg.by_mailbox.entry(mailbox).or_default().push(conn);
    }

    /// Register (or replace) a NOTIFY session's interest in `user`'s
    /// mailboxes (RFC 5465): changes are marked in `dirty`, and `wake` is
    /// called when it was empty.
    pub fn watch_notify(&self, conn: ConnId, user: UserId, wake: Wake, dirty: Arc<Dirty>) {
        let mut reg = lock(&self.reg);
        let old = reg.notify.insert(conn, NotifyWatch { user, wake, dirty });
        if let Some(old) = old {
            unindex(&mut reg.by_user, old.user, conn);
        }
        reg.by_user.entry(user).or_default().push(conn);
    }

    /// Forget a session's NOTIFY interest (NOTIFY NONE, end of session).
    pub fn unwatch_notify(&self, conn: ConnId) {
        let mut reg = lock(&self.reg);
        if let Some(old) = reg.notify.remove(&conn) {
            unindex(&mut reg.by_user, old.user, conn);
        }
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

    /// Forget a session's selected mailbox.
    pub fn unwatch(&self, conn: ConnId) {
        let mut reg = lock(&self.reg);
        if let Some(old) = reg.watches.remove(&conn) {
            unindex(&mut reg.by_mailbox, old.mailbox, conn);
        }
    }

    /// Mailboxes someone has selected.
    fn watched(&self) -> Vec<MailboxId> {
        let mut v: Vec<MailboxId> = lock(&self.reg).by_mailbox.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// A batch committed by this process: wake the sessions with a changed
    /// mailbox selected, and mark the changes for the NOTIFY sessions of
    /// the users concerned.
    fn committed(&self, c: &Committed) {
        let reg = lock(&self.reg);
        for id in &c.mailboxes {
            for conn in reg.by_mailbox.get(id).into_iter().flatten() {
                if let Some(w) = reg.watches.get(conn) {
                    if !w.pending.swap(true, Ordering::SeqCst) {
                        (w.wake)();
                    }
                }
            }
        }
        if reg.by_user.is_empty() {
            return;
        }
        // Each NOTIFY session gets all of the commit's changes at once (it
        // may take its set between two marks otherwise).
        let mut per_user: HashMap<UserId, (Vec<MailboxId>, bool)> = HashMap::new();
        for &(id, user) in &c.owners {
            if reg.by_user.contains_key(&user) {
                per_user.entry(user).or_default().0.push(id);
            }
        }
        for &user in &c.lists {
            if reg.by_user.contains_key(&user) {
                per_user.entry(user).or_default().1 = true;
            }
        }
        for (user, (ids, lists)) in per_user {
            reg.wake_notify(user, |d| {
                d.mailboxes.extend(ids.iter().copied());
                d.lists |= lists;
            });
        }
    }

    /// Wake sessions behind their mailbox's HIGHESTMODSEQ (or whose
    /// mailbox is not in `current`, e.g. deleted).
    fn wake_stale(&self, current: &HashMap<MailboxId, u64>) {
        for w in lock(&self.reg).watches.values() {
            let behind = current
                .get(&w.mailbox)
                .is_none_or(|&hms| hms > w.synced.load(Ordering::SeqCst));
            if behind && !w.pending.swap(true, Ordering::SeqCst) {
                (w.wake)();
            }
        }
    }

    /// Another process committed: every NOTIFY session looks at everything
    /// (we cannot tell what changed without reading it).
    fn wake_all_notify(&self) {
        for n in lock(&self.reg).notify.values() {
            if n.dirty.mark(|d| d.all = true) {
                (n.wake)();
            }
        }
    }

    /// Registered NOTIFY sessions (tests, diagnostics).
    pub fn notify_sessions(&self) -> usize {
        lock(&self.reg).notify.len()
    }
}

fn watch_loop(hub: std::sync::Weak<Hub>, store: Store) {
    let mut last_version: Option<i64> = None;
    let mut first = true;
    // On PostgreSQL every front end's commits are announced (LISTEN/
    // NOTIFY, `mailstore`'s pg/notify.rs): each announcement runs one
    // round below at once, and the poll is only a safety net. On SQLite,
    // the file's commit counter is polled.
    let (kick, kicked) = mpsc::channel::<()>();
    let listener = store.listen_commits(move || {
        let _ = kick.send(());
    });
    let every = if listener.is_some() {
        SAFETY_POLL
    } else {
        POLL_EVERY
    };
    loop {
        // Take the baseline at once, then wait for a commit or the poll.
        if !std::mem::take(&mut first) {
            match kicked.recv_timeout(every) {
                Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => thread::sleep(POLL_EVERY),
            }
            // A burst of announcements is one round.
            while kicked.try_recv().is_ok() {}
        }
        let Some(h) = hub.upgrade() else { return };
        if h.stop.load(Ordering::SeqCst) {
            return;
        }
        let watched = h.watched();
        let idle = watched.is_empty() && h.notify_sessions() == 0;
        drop(h);
        if idle && last_version.is_some() {
            // Nobody to wake: no read (on PostgreSQL, every front end's
            // commit would otherwise cost each front end a transaction).
            // `last_version` stays, older than the store: the first round
            // with a session compares with it, and wakes only sessions
            // behind their mailbox (and NOTIFY sessions, if others
            // committed meanwhile). The baseline itself is always read.
            continue;
        }
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
        // The counter moves by one per commit, ours included; the store
        // recorded ours before they became visible, so the rest of the
        // move is exactly another process's commits.
        let ours = store.take_own_commits(version);
        if let Some(prev) = last_version {
            if prev != version {
                h.wake_stale(&current);
                let own = ours.iter().filter(|&&v| v > prev).count();
                let moved = usize::try_from(version.saturating_sub(prev)).unwrap_or(usize::MAX);
                if moved > own {
                    h.wake_all_notify();
                }
            }
        }
        last_version = Some(version);
    }
}
