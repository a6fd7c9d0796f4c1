//! Bounds on a PostgreSQL server that accepts TCP but never answers (a
//! stopped process, a hung host whose kernel still acknowledges): TCP
//! keepalives and `tcp_user_timeout` (mod.rs) cannot see it, since every
//! segment is acknowledged, and the sync client has no read timeout.
//!
//! - Connecting: the client connects on a thread of its own, and the
//!   caller waits [`bound`] at most (then [`Connect::NoAnswer`]; the thread
//!   is left to finish or hang, at most [`MAX_HUNG`] of them at once).
//! - Statements: while a connection is borrowed for a statement
//!   ([`Busy`]), a watchdog thread (one per process) checks every 250 ms;
//!   one borrowed longer than [`bound`] has its socket shut down
//!   (`shutdown(2)`), so the statement fails as a lost connection
//!   ([`super::is_gone`]: `StoreError::Unavailable`, answered `451 4.3.0`
//!   / `NO [UNAVAILABLE]`) and the next job connects again.
//!
//! The socket is found once per connection, without a statement (one
//! would not be bounded yet): the one TCP socket to the configured host
//! and port that appeared in this process (Linux `/proc/self/fd`) while
//! the connection was made is it; connects are made one at a time, so no
//! other appears meanwhile (see [`connect`]). This holds through NAT and
//! poolers (PgBouncer, which may answer the start-up itself while the
//! server behind it is stopped). Failing that, the server tells the
//! client's address and port (`inet_client_addr()`, `inet_client_port()`)
//! and the socket with those ends is it. Over a Unix socket, or behind
//! NAT when neither works, the connection is not watched (logged once).
//!
//! [`bound`]: `MINIMAIL_PG_TIMEOUT` seconds (1 to 3600), else 30.

use std::cell::RefMut;
use std::net::{IpAddr, SocketAddr};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};

/// Connect threads left hanging at most; past that, connecting fails at
/// once (the server is not answering anyway).
pub(crate) const MAX_HUNG: usize = 4;

/// How long the server may take to answer one statement (or the start-up
/// handshake): `MINIMAIL_PG_TIMEOUT` seconds, else 30.
pub(crate) fn bound() -> Duration {
    static BOUND: OnceLock<Duration> = OnceLock::new();
    *BOUND.get_or_init(|| {
        let secs = std::env::var("MINIMAIL_PG_TIMEOUT")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|n| (1..=3600).contains(n))
            .unwrap_or(30);
        Duration::from_secs(secs)
    })
}

/// Why connecting failed.
pub(crate) enum Connect {
    /// The client's or the server's error.
    Failed(postgres::Error),
    /// No answer within [`bound`].
    NoAnswer(String),
}

static HUNG: AtomicUsize = AtomicUsize::new(0);

/// Held while a connection is made (and the sockets looked at before and
/// after), so that the socket that appeared is that connection's.
static CONNECTING: Mutex<()> = Mutex::new(());

thread_local! {
    /// The sockets (local, peer) to the configured endpoint that appeared
    /// while this thread's last connection was made: [`Watch::of`]'s
    /// answer when the server's view of the connection is not ours.
    static FRESH: std::cell::RefCell<Vec<(i32, SocketAddr, SocketAddr)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The addresses `config` connects to over TCP (host names resolved).
fn endpoints(config: &postgres::Config) -> Vec<SocketAddr> {
    use std::net::ToSocketAddrs;
    let ports = config.get_ports();
    let mut out = Vec::new();
    for (i, host) in config.get_hosts().iter().enumerate() {
        let port = match ports.len() {
            0 => 5432,
            1 => ports[0],
            _ => ports.get(i).copied().unwrap_or(5432),
        };
        if let postgres::config::Host::Tcp(name) = host {
            if let Ok(addrs) = (name.as_str(), port).to_socket_addrs() {
                out.extend(addrs);
            }
        }
    }
    out
}

/// This process's TCP sockets whose peer is one of `to`: (fd, local, peer).
fn sockets_to(to: &[SocketAddr]) -> Vec<(i32, SocketAddr, SocketAddr)> {
    sockets()
        .filter(|(_, _, p)| to.iter().any(|t| same(*p, *t)))
        .collect()
}

/// This process's sockets with both ends (Linux `/proc/self/fd`): (fd,
/// local, peer).
fn sockets() -> impl Iterator<Item = (i32, SocketAddr, SocketAddr)> {
    std::fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|fd| ends(fd).map(|(l, p)| (fd, l, p)))
}

/// `config.connect(NoTls)`, waited for [`bound`] at most.
pub(crate) fn connect(config: postgres::Config, url: &str) -> Result<Client, Connect> {
    FRESH.with(|f| f.borrow_mut().clear());
    let limit = bound();
    let what = || {
        format!(
            "cannot connect to {}: the server did not answer within {} s",
            super::redact(url),
            limit.as_secs()
        )
    };
    if HUNG.load(Ordering::SeqCst) >= MAX_HUNG {
        return Err(Connect::NoAnswer(what()));
    }
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("pg-connect".into())
        .spawn(move || {
            let to = endpoints(&config);
            let _one = CONNECTING.lock().unwrap_or_else(PoisonError::into_inner);
            let before = sockets_to(&to);
            let r = config.connect(NoTls);
            let fresh: Vec<_> = sockets_to(&to)
                .into_iter()
                .filter(|s| !before.contains(s))
                .collect();
            let _ = tx.send((r, fresh));
        });
    if spawned.is_err() {
        return Err(Connect::NoAnswer("cannot start a connect thread".into()));
    }
    match rx.recv_timeout(limit) {
        Ok((r, fresh)) => {
            FRESH.with(|f| *f.borrow_mut() = fresh);
            r.map_err(Connect::Failed)
        }
        Err(_) => {
            // Counted while it hangs; a late connection is dropped.
            HUNG.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let _ = rx.recv();
                HUNG.fetch_sub(1, Ordering::SeqCst);
            });
            Err(Connect::NoAnswer(what()))
        }
    }
}

/// One watched connection: its socket and since when it is borrowed.
pub(crate) struct Watch {
    fd: i32,
    local: SocketAddr,
    peer: SocketAddr,
    /// Milliseconds since [`epoch`] + 1 when borrowed, 0 when not.
    busy: AtomicU64,
    /// The watchdog shut the socket down.
    cut: std::sync::atomic::AtomicBool,
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX) + 1
}

fn watched() -> &'static Mutex<Vec<Weak<Watch>>> {
    static WATCHED: OnceLock<Mutex<Vec<Weak<Watch>>>> = OnceLock::new();
    WATCHED.get_or_init(|| {
        let _ = std::thread::Builder::new()
            .name("pg-watchdog".into())
            .spawn(watchdog);
        Mutex::new(Vec::new())
    })
}

impl Watch {
    /// Find `client`'s socket and watch it; `None` when it cannot be
    /// found (not TCP, NAT) or asked for.
    pub(crate) fn of(client: &mut Client) -> Option<Arc<Watch>> {
        // The one socket that appeared while connecting is it: no
        // statement is needed (one would not be bounded yet, and a pooler
        // may have answered the start-up itself with the server behind it
        // stopped).
        let fresh = FRESH.with(|f| std::mem::take(&mut *f.borrow_mut()));
        let (fd, local, peer) = match fresh.as_slice() {
            [one] => *one,
            _ => {
                let (local, peer) = Self::server_view(client)?;
                let Some(fd) = find_socket(local, peer) else {
                    not_found(local, peer);
                    return None;
                };
                (fd, local, peer)
            }
        };
        let w = Arc::new(Watch {
            fd,
            local,
            peer,
            busy: AtomicU64::new(0),
            cut: std::sync::atomic::AtomicBool::new(false),
        });
        let mut list = watched().lock().unwrap_or_else(PoisonError::into_inner);
        list.retain(|w| w.strong_count() > 0);
        list.push(Arc::downgrade(&w));
        Some(w)
    }
}

impl Watch {
    /// The connection's ends as the server sees them (client address and
    /// port, server address and port): ours unless NAT or a pooler is
    /// between.
    fn server_view(client: &mut Client) -> Option<(SocketAddr, SocketAddr)> {
        let rows = client
            .simple_query(
                "SELECT host(inet_client_addr()), inet_client_port()::text, \
                 host(inet_server_addr()), inet_server_port()::text",
            )
            .ok()?;
        let row = rows.iter().find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })?;
        let addr = |i: usize, j: usize| -> Option<SocketAddr> {
            let ip: IpAddr = row.get(i)?.parse().ok()?;
            let port: u16 = row.get(j)?.parse().ok()?;
            Some(SocketAddr::new(ip, port))
        };
        Some((addr(0, 1)?, addr(2, 3)?))
    }
}

fn sockaddr(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says it is a sockaddr_in.
            let a = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::new(
                IpAddr::from(u32::from_be(a.sin_addr.s_addr).to_be_bytes()),
                u16::from_be(a.sin_port),
            ))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says it is a sockaddr_in6.
            let a = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::new(
                IpAddr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
            ))
        }
        _ => None,
    }
}

/// The local and peer address of socket `fd`.
fn ends(fd: i32) -> Option<(SocketAddr, SocketAddr)> {
    let get = |peer: bool| -> Option<SocketAddr> {
        // SAFETY: a zeroed sockaddr_storage is valid; the length says its
        // size, and the call writes at most that.
        let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        let p = (&mut ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr>();
        // SAFETY: as above; a bad fd only makes the call fail.
        let r = unsafe {
            if peer {
                libc::getpeername(fd, p, &mut len)
            } else {
                libc::getsockname(fd, p, &mut len)
            }
        };
        if r != 0 {
            return None;
        }
        sockaddr(&ss)
    };
    Some((get(false)?, get(true)?))
}

fn same(a: SocketAddr, b: SocketAddr) -> bool {
    let canon = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    a.port() == b.port() && canon(a.ip()) == canon(b.ip())
}

fn find_socket(local: SocketAddr, peer: SocketAddr) -> Option<i32> {
    sockets()
        .find(|(_, l, p)| same(*l, local) && same(*p, peer))
        .map(|(fd, _, _)| fd)
}

/// Said once per process: a connection that is not watched.
fn not_found(local: SocketAddr, peer: SocketAddr) {
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        log::warn!(
            "PostgreSQL connection {local} -> {peer} not found among this process's \
             sockets (NAT?): a server that stops answering is not timed out"
        )
    });
}

fn watchdog() {
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let limit = u64::try_from(bound().as_millis()).unwrap_or(u64::MAX);
        let list: Vec<Arc<Watch>> = watched()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        let now = now_ms();
        for w in list {
            let since = w.busy.load(Ordering::SeqCst);
            if since == 0 || now.saturating_sub(since) < limit {
                continue;
            }
            // Still that connection's socket (the client is borrowed, so
            // it is open): cut it.
            match ends(w.fd) {
                Some((l, p)) if same(l, w.local) && same(p, w.peer) => {
                    log::warn!(
                        "PostgreSQL {} did not answer within {} s: connection closed",
                        w.peer,
                        limit / 1000
                    );
                    w.cut.store(true, Ordering::SeqCst);
                    // SAFETY: shutting down a socket we checked is ours.
                    unsafe {
                        libc::shutdown(w.fd, libc::SHUT_RDWR);
                    }
                }
                _ => {}
            }
            w.busy.store(0, Ordering::SeqCst);
        }
    }
}

/// A borrowed client, watched while borrowed.
pub(crate) struct Busy<'a> {
    c: RefMut<'a, Client>,
    w: Option<Arc<Watch>>,
}

impl<'a> Busy<'a> {
    pub(crate) fn new(c: RefMut<'a, Client>, w: Option<Arc<Watch>>) -> Busy<'a> {
        if let Some(w) = &w {
            w.busy.store(now_ms(), Ordering::SeqCst);
        }
        Busy { c, w }
    }
}

impl Watch {
    /// Mark the connection as waiting for the server (`true`) or not, for
    /// a client not borrowed through [`Busy`] (the LISTEN thread's probe).
    pub(crate) fn waiting(&self, yes: bool) {
        self.busy
            .store(if yes { now_ms() } else { 0 }, Ordering::SeqCst);
    }

    /// Whether the watchdog cut this connection (the server did not
    /// answer in time).
    pub(crate) fn was_cut(&self) -> bool {
        self.cut.load(Ordering::SeqCst)
    }
}

impl Busy<'_> {
    /// Not watched from here on: for work that may rightly take long (a
    /// migration, `minimail migrate`'s copy).
    pub(crate) fn unwatch(&mut self) {
        if let Some(w) = self.w.take() {
            w.busy.store(0, Ordering::SeqCst);
        }
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if let Some(w) = &self.w {
            w.busy.store(0, Ordering::SeqCst);
        }
    }
}

impl Deref for Busy<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.c
    }
}

impl DerefMut for Busy<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.c
    }
}
