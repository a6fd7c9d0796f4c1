//! The delivery engine: takes due recipients from the store's outbound
//! queue, routes them by domain (RFC 5321 §5.1 MX, or a relay host),
//! delivers over SMTP on worker threads of its own (never on a server's
//! event loop), and records each recipient's outcome in the store:
//!
//! - 2xx: done (a log line, the row is dropped);
//! - 5xx, null MX, no such domain, a loop back to ourselves: failed for
//!   good; a bounce (RFC 3464, see `dsn.rs`) goes to the sender unless the
//!   sender is the null path `<>` (RFC 5321 §4.5.5: never a DSN for a DSN)
//!   or NOTIFY said otherwise (RFC 3461 §4.1);
//! - 4xx, timeouts, refused connections, DNS SERVFAIL: tried again after a
//!   growing delay (`retry_min` doubling up to `retry_max`), until the
//!   message has been queued for `lifetime` (Postfix's
//!   `maximal_queue_lifetime`, 5 days); then it fails as above.
//!
//! One scheduler thread wakes on every store commit (new mail) or once a
//! second, and hands a destination's due recipients (up to `batch`
//! messages) to a worker thread; at most `max_connections` workers run at
//! once and at most `per_destination` per domain, and a worker carries
//! all its messages over one connection (RFC 5321 §4.1.1.4 allows many
//! transactions per session). Recipients in flight are remembered so no
//! two workers send the same one; a kill -9 mid-delivery leaves them
//! queued, so they are sent again after the restart (the duplicates RFC
//! 5321 §6.1 allows, never a loss).
//!
//! On PostgreSQL several front ends share the queue. Each takes due
//! recipients by *claiming* them (a lease under its identity, host +
//! address + pid + start time, for `lease`), renews the leases of what
//! its workers are delivering every third of `lease`, gives back at once
//! what it claimed but has no worker for, and records an outcome only for
//! recipients still leased to it (mailstore's `QueueLeases` and
//! `Tx::queue_still_leased`). A front end killed mid-delivery stops
//! renewing: once its leases pass, another front end delivers those
//! recipients (again, if the first got as far as the remote's `250`: the
//! same duplicate a restart makes). At start a front end takes back the
//! leases of its own earlier runs (same host and address) at once, and
//! never another front end's live ones.

use crate::client::{ClientConfig, Envelope, Failure, Rcpt, RcptResult, Session, TlsMode};
use crate::dsn;
use crate::route::{Resolver, RouteError, Target};
use crate::transport::{NextHop, TransportMap};
use mailstore::{OutMessage, OutRcpt, QueueLeases, Queued, Store};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A smarthost all mail goes through (e.g. a provider's submission port
/// when port 25 is blocked).
#[derive(Debug, Clone)]
pub struct Relay {
    /// Host name (also the name its certificate is checked against).
    pub host: String,
    /// Port.
    pub port: u16,
    /// AUTH user and password.
    pub auth: Option<(String, String)>,
}

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Our host name: EHLO, Reporting-MTA, loop detection.
    pub hostname: String,
    /// Our mail domains (an MX host named like one of them, or like our
    /// host name, is a loop).
    pub domains: Vec<String>,
    /// Port to reach MX hosts on (25; tests use another).
    pub mx_port: u16,
    /// Resolver to ask instead of /etc/resolv.conf.
    pub dns: Option<SocketAddr>,
    /// Send everything through this host instead of MX routing (a
    /// transport map line wins over it for its domains).
    pub relay: Option<Relay>,
    /// Per-domain routes.
    pub transport: TransportMap,
    /// TLS towards MX hosts (and the relay).
    pub tls: TlsMode,
    /// Extra trusted CA certificates (PEM) for verified TLS.
    pub extra_ca: Option<std::path::PathBuf>,
    /// Give up on a message queued this long.
    pub lifetime: Duration,
    /// First retry delay; doubles per attempt.
    pub retry_min: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// Worker connections at once, in total.
    pub max_connections: usize,
    /// Worker connections at once to one destination domain.
    pub per_destination: usize,
    /// Messages one worker carries over one connection.
    pub batch: usize,
    /// Timeout for connecting.
    pub connect_timeout: Duration,
    /// Timeout for each reply.
    pub command_timeout: Duration,
    /// Log each delivery's SMTP dialogue (`--trace`).
    pub trace: bool,
    /// Warn the sender (a "delayed" DSN, once per recipient) when a
    /// recipient is still queued this long after arrival; zero: never.
    pub delay_warning: Duration,
    /// How long a claim on a queued recipient holds without renewal (a
    /// queue shared by front ends, PostgreSQL): how soon another front
    /// end takes over the deliveries of one that died.
    pub lease: Duration,
    /// This front end's name among those sharing the queue (host and
    /// listening address); the lease owner is it plus pid and start time.
    /// Empty: `hostname`.
    pub lease_node: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            hostname: "localhost".into(),
            domains: Vec::new(),
            mx_port: 25,
            dns: None,
            relay: None,
            transport: TransportMap::default(),
            tls: TlsMode::Opportunistic,
            extra_ca: None,
            lifetime: Duration::from_secs(5 * 24 * 3600),
            retry_min: Duration::from_secs(60),
            retry_max: Duration::from_secs(3600),
            max_connections: 20,
            per_destination: 4,
            batch: 100,
            connect_timeout: Duration::from_secs(30),
            command_timeout: Duration::from_secs(300),
            trace: false,
            delay_warning: Duration::from_secs(4 * 3600),
            lease: DEFAULT_LEASE,
            lease_node: String::new(),
        }
    }
}

/// [`Config::lease`]'s default.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// The shortest [`Config::lease`] (renewed every third of it, and the
/// scheduler wakes at least once a second).
pub const MIN_LEASE: Duration = Duration::from_secs(2);

/// The lease owner of a front end named `node` (see [`Config::lease_node`]):
/// `node/pid/start`, unique per process run.
pub fn lease_owner(node: &str) -> String {
    format!("{node}/{}/{}", std::process::id(), unix_now_ms())
}

fn unix_now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// How long a shutdown on a shared queue waits for the workers before it
/// gives back the leases of what they still send ([`Engine::shutdown`]).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The running engine; [`Engine::shutdown`] stops it.
pub struct Engine {
    stop: Arc<AtomicBool>,
    /// A new configuration for the scheduler to take ([`Engine::reconfigure`]).
    next_config: Arc<Mutex<Option<Config>>>,
    wake: SyncSender<()>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Engine")
    }
}

impl Engine {
    /// Start delivering from `store`'s queue.
    ///
    /// # Errors
    /// When the resolver cannot be set up or the thread not started.
    pub fn start(store: Store, config: Config) -> anyhow::Result<Engine> {
        let resolver = Arc::new(Resolver::new(config.dns)?);
        let node = if config.lease_node.is_empty() {
            config.hostname.clone()
        } else {
            config.lease_node.clone()
        };
        let leases = store
            .queue_leases(&lease_owner(&node))
            .map_err(|e| anyhow::anyhow!("the shared queue: {e}"))?;
        if let Some(l) = &leases {
            log::info!(
                "outbound: sharing the queue as {} (leases of {} s)",
                l.owner(),
                config.lease.max(MIN_LEASE).as_secs()
            );
            match l.recover(&format!("{node}/")) {
                Ok(0) => {}
                Ok(n) => log::info!(
                    "outbound: took back {n} recipient(s) an earlier run of this front end had leased"
                ),
                Err(e) => log::error!("outbound: cannot take back earlier leases: {e}"),
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (wake, woken) = mpsc::sync_channel(1);
        // Woken by commits that changed the queue (a message queued, a
        // worker's outcome recorded), not by every local delivery.
        let on_commit = wake.clone();
        store.on_queue_change(move || {
            // Full means a wake-up is already pending.
            let _ = on_commit.try_send(());
        });
        // On PostgreSQL also by what other front ends queue or give back
        // (schema v18's NOTIFY on `minimail_queue`); the poll below stays
        // as the safety net.
        let on_notify = wake.clone();
        let queue_listener = store.listen_queue(move || {
            let _ = on_notify.try_send(());
        });
        let next_config = Arc::new(Mutex::new(None));
        let s = Scheduler {
            next_config: Arc::clone(&next_config),
            store,
            config: Arc::new(config),
            resolver,
            stop: Arc::clone(&stop),
            woken,
            in_flight: Arc::new(Mutex::new(HashSet::new())),
            active: HashMap::new(),
            total: 0,
            leases,
            last_renew: Instant::now(),
            _queue_listener: queue_listener,
            poll: poll_interval(),
        };
        let thread = std::thread::Builder::new()
            .name("outbound".into())
            .spawn(move || s.run())?;
        Ok(Engine {
            stop,
            next_config,
            wake,
            thread: Some(thread),
        })
    }

    /// A handle that gives the running engine a new configuration.
    pub fn reconfigure_handle(&self) -> Reconfigure {
        Reconfigure {
            next_config: Arc::clone(&self.next_config),
            wake: self.wake.clone(),
        }
    }

    /// Look at the queue now (e.g. after `minimail queue retry`).
    pub fn wake(&self) {
        let _ = self.wake.try_send(());
    }

    /// Stop taking work and wait for the scheduler; workers finish the
    /// message they are sending (what they have not recorded stays queued).
    /// On a shared queue (PostgreSQL) they get [`SHUTDOWN_GRACE`]; the
    /// leases of what they still send then are given back, due at once
    /// for the other front ends, and they are not waited for.
    pub fn shutdown(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.wake.try_send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Gives a running [`Engine`] a new configuration (a reload). Cloneable
/// and `Send`.
#[derive(Clone)]
pub struct Reconfigure {
    next_config: Arc<Mutex<Option<Config>>>,
    wake: SyncSender<()>,
}

impl Reconfigure {
    /// Deliver with `config` from now on: deliveries already under way
    /// finish with the settings they started with.
    pub fn apply(&self, config: Config) {
        *self
            .next_config
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(config);
        let _ = self.wake.try_send(());
    }
}

struct Scheduler {
    next_config: Arc<Mutex<Option<Config>>>,
    store: Store,
    config: Arc<Config>,
    resolver: Arc<Resolver>,
    stop: Arc<AtomicBool>,
    woken: Receiver<()>,
    in_flight: Arc<Mutex<HashSet<i64>>>,
    active: HashMap<String, usize>,
    total: usize,
    /// Claims on the shared queue (PostgreSQL); `None` on SQLite.
    leases: Option<QueueLeases>,
    last_renew: Instant,
    /// LISTENs for recipients queued or freed by other front ends
    /// (PostgreSQL); stops when the scheduler ends.
    _queue_listener: Option<mailstore::CommitListener>,
    /// The longest sleep between two looks at the queue.
    poll: Duration,
}

/// How often the scheduler looks at the queue when nothing woke it:
/// `MINIMAIL_OUTBOUND_POLL_MS` (100 ms to 1 hour), else 1 s. Deferred
/// recipients come due by this poll; new mail wakes the scheduler at once
/// (its own front end's commits, and on PostgreSQL other front ends'
/// NOTIFYs).
fn poll_interval() -> Duration {
    const DEFAULT: Duration = Duration::from_secs(1);
    match std::env::var("MINIMAIL_OUTBOUND_POLL_MS") {
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(ms) if (100..=3_600_000).contains(&ms) => Duration::from_millis(ms),
            _ => {
                log::warn!(
                    "MINIMAIL_OUTBOUND_POLL_MS={v:?} is not 100 to 3600000 milliseconds; polling every {DEFAULT:?}"
                );
                DEFAULT
            }
        },
        Err(_) => DEFAULT,
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Scheduler {
    fn run(mut self) {
        let (done_tx, done_rx) = mpsc::channel::<(String, Vec<i64>)>();
        let mut workers: Vec<JoinHandle<()>> = Vec::new();
        while !self.stop.load(Ordering::SeqCst) {
            self.take_new_config();
            while let Ok((domain, ids)) = done_rx.try_recv() {
                self.finished(&domain, &ids);
            }
            workers.retain(|w| !w.is_finished());
            self.renew();
            self.dispatch(&done_tx, &mut workers);
            let tick = self.poll.min(self.lease() / 3);
            match self.woken.recv_timeout(tick) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        if self.leases.is_some() {
            self.give_back(&done_rx, workers);
            return;
        }
        for w in workers {
            let _ = w.join();
        }
    }

    /// Shutting down on a shared queue: the workers get
    /// [`SHUTDOWN_GRACE`] to finish (their outcomes recorded); the leases
    /// of what is still in flight then are given back, so another front
    /// end delivers it at once rather than after the lease, and those
    /// workers are not waited for (they end with the process; an outcome
    /// one still reaches is not recorded, the lease being no longer ours).
    fn give_back(&mut self, done_rx: &Receiver<(String, Vec<i64>)>, workers: Vec<JoinHandle<()>>) {
        let until = Instant::now() + SHUTDOWN_GRACE;
        while workers.iter().any(|w| !w.is_finished()) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        while let Ok((domain, ids)) = done_rx.try_recv() {
            self.finished(&domain, &ids);
        }
        let ids: Vec<i64> = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .copied()
            .collect();
        if let (Some(leases), false) = (&self.leases, ids.is_empty()) {
            match leases.release(&ids) {
                Ok(n) => log::info!(
                    "outbound: shutting down: gave back the leases of {n} recipient(s) in flight \
                     (due at once for the other front ends)"
                ),
                Err(e) => log::error!(
                    "outbound: shutting down: cannot give back {} lease(s) (they pass when they expire): {e}",
                    ids.len()
                ),
            }
        }
        for w in workers.into_iter().filter(|w| w.is_finished()) {
            let _ = w.join();
        }
    }

    /// Take a configuration a [`Reconfigure`] handle left; a resolver
    /// that cannot be set up for a new `dns` keeps the old one.
    fn take_new_config(&mut self) {
        let next = self
            .next_config
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(config) = next else { return };
        if config.dns != self.config.dns {
            match Resolver::new(config.dns) {
                Ok(r) => self.resolver = Arc::new(r),
                Err(e) => log::error!("outbound: kept the old DNS resolver: {e}"),
            }
        }
        self.config = Arc::new(config);
    }

    fn lease(&self) -> Duration {
        self.config.lease.max(MIN_LEASE)
    }

    /// Renew the leases of what the workers deliver, every third of the
    /// lease.
    fn renew(&mut self) {
        let lease = self.lease();
        let Some(leases) = &self.leases else { return };
        if self.last_renew.elapsed() < lease / 3 {
            return;
        }
        self.last_renew = Instant::now();
        let ids: Vec<i64> = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .copied()
            .collect();
        if ids.is_empty() {
            return;
        }
        match leases.renew(&ids, lease) {
            Ok(lost) if !lost.is_empty() => log::info!(
                "outbound: {} recipient(s) in flight are no longer leased to {} \
                 (recorded meanwhile, deleted, or taken over by another front end: \
                 their outcome is not recorded here)",
                lost.len(),
                leases.owner()
            ),
            Ok(_) => {}
            Err(e) => log::error!("outbound: cannot renew leases: {e}"),
        }
    }

    fn finished(&mut self, domain: &str, ids: &[i64]) {
        if let Some(n) = self.active.get_mut(domain) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.active.remove(domain);
            }
        }
        self.total = self.total.saturating_sub(1);
        let mut f = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for id in ids {
            f.remove(id);
        }
    }

    /// Start workers for due recipients, within the limits.
    fn dispatch(&mut self, done: &Sender<(String, Vec<i64>)>, workers: &mut Vec<JoinHandle<()>>) {
        if self.total >= self.config.max_connections {
            return;
        }
        let due = match &self.leases {
            Some(leases) => {
                // Only what free workers can take: the rest stays
                // claimable by the other front ends.
                let free = self.config.max_connections - self.total;
                let limit = self.config.batch.saturating_mul(free).max(1);
                match leases.claim(unix_now(), limit, self.lease()) {
                    Ok(d) => d,
                    Err(e) => {
                        log::error!("outbound: cannot claim from the queue: {e}");
                        return;
                    }
                }
            }
            None => {
                let limit = (self.config.batch * self.config.max_connections).max(1000);
                match self.store.read_sync(|r| r.queue_due(unix_now(), limit)) {
                    Ok(d) => d,
                    Err(e) => {
                        log::error!("outbound: cannot read the queue: {e}");
                        return;
                    }
                }
            }
        };
        let mut by_domain: Vec<(String, Vec<Queued>)> = Vec::new();
        {
            let f = self
                .in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for q in due {
                if f.contains(&q.id) {
                    continue;
                }
                match by_domain.iter_mut().find(|(d, _)| *d == q.domain) {
                    Some((_, v)) => v.push(q),
                    None => by_domain.push((q.domain.clone(), vec![q])),
                }
            }
        }
        // Claimed but left for later (limits): given back at once.
        let mut leftover: Vec<i64> = Vec::new();
        for (domain, rcpts) in by_domain {
            let mut rcpts = rcpts;
            while !rcpts.is_empty() {
                if self.total >= self.config.max_connections {
                    break;
                }
                let active = self.active.get(&domain).copied().unwrap_or(0);
                if active >= self.config.per_destination {
                    break;
                }
                // Up to `batch` messages for this worker.
                let mut msgs: Vec<i64> = Vec::new();
                let mut take = 0;
                for q in &rcpts {
                    if !msgs.contains(&q.msg_id) {
                        if msgs.len() >= self.config.batch {
                            break;
                        }
                        msgs.push(q.msg_id);
                    }
                    take += 1;
                }
                let job: Vec<Queued> = rcpts.drain(..take).collect();
                let ids: Vec<i64> = job.iter().map(|q| q.id).collect();
                self.in_flight
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend(ids.iter().copied());
                *self.active.entry(domain.clone()).or_insert(0) += 1;
                self.total += 1;
                let worker = Worker {
                    store: self.store.clone(),
                    config: Arc::clone(&self.config),
                    resolver: Arc::clone(&self.resolver),
                    lease_owner: self.leases.as_ref().map(|l| Arc::from(l.owner())),
                };
                let done = done.clone();
                let d = domain.clone();
                let job_ids = ids.clone();
                let spawned = std::thread::Builder::new()
                    .name("outbound-worker".into())
                    .spawn(move || {
                        // What could not be recorded stays in flight: not
                        // sent again by this process (see `record`). With
                        // leases it leaves the flight unrenewed instead:
                        // tried again (by any front end) once the lease
                        // has passed.
                        let leased = worker.lease_owner.is_some();
                        let held = worker.deliver(&d, job);
                        let ids = ids
                            .into_iter()
                            .filter(|id| leased || !held.contains(id))
                            .collect();
                        let _ = done.send((d, ids));
                    });
                match spawned {
                    Ok(h) => workers.push(h),
                    Err(e) => {
                        log::error!("outbound: cannot start a worker: {e}");
                        self.finished(&domain, &job_ids);
                        leftover.extend(job_ids);
                        break;
                    }
                }
            }
            leftover.extend(rcpts.iter().map(|q| q.id));
        }
        if let (Some(leases), false) = (&self.leases, leftover.is_empty()) {
            if let Err(e) = leases.release(&leftover) {
                log::error!(
                    "outbound: cannot give back {} claimed recipient(s) (they are due again when the lease passes): {e}",
                    leftover.len()
                );
            }
        }
    }
}

/// The outcome of one recipient.
enum Outcome {
    Sent(String),
    Retry(String),
    Fail(String),
}

struct Worker {
    store: Store,
    config: Arc<Config>,
    resolver: Arc<Resolver>,
    /// Our lease owner on a shared queue: outcomes are recorded only for
    /// recipients still leased to it.
    lease_owner: Option<Arc<str>>,
}

/// How one destination is reached.
struct Plan {
    /// Hosts to try, in order.
    targets: Vec<Target>,
    /// Port on each.
    port: u16,
    /// STARTTLS policy.
    tls: TlsMode,
    /// AUTH credentials.
    auth: Option<(String, String)>,
    /// An MX naming us is a loop (not for hosts the operator chose).
    check_loop: bool,
}

/// Messages of a job, each with its recipients, in queue order.
fn by_message(job: Vec<Queued>) -> Vec<Vec<Queued>> {
    let mut out: Vec<Vec<Queued>> = Vec::new();
    for q in job {
        match out.iter_mut().find(|v| v[0].msg_id == q.msg_id) {
            Some(v) => v.push(q),
            None => out.push(vec![q]),
        }
    }
    out
}

impl Worker {
    fn client_config(&self, plan: &Plan) -> ClientConfig {
        let c = &self.config;
        ClientConfig {
            helo: c.hostname.clone(),
            tls: plan.tls,
            extra_ca: c.extra_ca.clone(),
            auth: plan.auth.clone(),
            connect_timeout: c.connect_timeout,
            command_timeout: c.command_timeout,
            data_timeout: c.command_timeout * 2,
            trace: c.trace,
        }
    }

    fn is_us(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        host.eq_ignore_ascii_case(&self.config.hostname)
    }

    /// How mail for `domain` goes: its transport map line, else the relay,
    /// else its MX hosts. `Err` is the outcome for every recipient when
    /// there is nowhere to go (now, or ever).
    fn plan(&self, domain: &str) -> Result<Plan, Outcome> {
        let cfg = &self.config;
        let routed = |r: Result<Vec<Target>, RouteError>, name: &str| {
            r.map_err(|e| {
                if e.is_permanent() {
                    Outcome::Fail(format!("5.1.2 {name}: {e}"))
                } else {
                    Outcome::Retry(format!("4.4.3 {name}: {e}"))
                }
            })
        };
        if let Some(route) = cfg.transport.lookup(domain) {
            let tls = route.tls.unwrap_or(cfg.tls);
            let (targets, port, check_loop) = match &route.next {
                NextHop::Error(text) => return Err(Outcome::Fail(text.clone())),
                NextHop::Mx => (routed(self.resolver.route(domain), domain)?, None, true),
                NextHop::MxOf { domain: d, port } => {
                    (routed(self.resolver.route(d), d)?, *port, true)
                }
                NextHop::Host { host, port } => {
                    (routed(self.resolver.host(host), host)?, *port, false)
                }
            };
            return Ok(Plan {
                targets,
                port: port.unwrap_or(cfg.mx_port),
                tls,
                auth: route.auth.clone(),
                check_loop,
            });
        }
        if let Some(r) = &cfg.relay {
            let addrs: Vec<IpAddr> = (r.host.as_str(), r.port)
                .to_socket_addrs()
                .map_err(|e| Outcome::Retry(format!("4.4.3 relay host {}: {e}", r.host)))?
                .map(|a| a.ip())
                .collect();
            return Ok(Plan {
                targets: vec![Target {
                    host: r.host.clone(),
                    preference: 0,
                    addrs,
                }],
                port: r.port,
                tls: cfg.tls,
                auth: r.auth.clone(),
                check_loop: false,
            });
        }
        Ok(Plan {
            targets: routed(self.resolver.route(domain), domain)?,
            port: cfg.mx_port,
            tls: cfg.tls,
            auth: None,
            check_loop: true,
        })
    }

    /// Connect to the first target that answers.
    fn connect(&self, plan: &Plan) -> Result<(Session, String), Outcome> {
        let cfg = self.client_config(plan);
        let mut last = String::from("no address to connect to");
        for t in &plan.targets {
            if plan.check_loop && self.is_us(&t.host) {
                return Err(Outcome::Fail(format!(
                    "5.4.6 mail for this domain loops back to myself (MX {})",
                    t.host
                )));
            }
            for ip in &t.addrs {
                let addr = SocketAddr::new(*ip, plan.port);
                match Session::connect(addr, &t.host, &cfg) {
                    Ok(s) => {
                        if plan.check_loop && self.is_us(s.remote_greeting_host()) {
                            s.quit();
                            return Err(Outcome::Fail(format!(
                                "5.4.6 mail for this domain loops back to myself ({} greets as {})",
                                t.host, self.config.hostname
                            )));
                        }
                        return Ok((s, format!("{}[{}]:{}", t.host, ip, addr.port())));
                    }
                    // The client's errors name the peer already.
                    Err(Failure::Permanent(e)) => {
                        last = e;
                        // A 5xx greeting: try the next host, as for 4xx.
                    }
                    Err(Failure::Temporary(e)) => last = e,
                }
            }
        }
        Err(Outcome::Retry(last))
    }

    /// Deliver `job`; returns the recipients whose outcome could not be
    /// recorded (see [`Worker::record`]).
    fn deliver(&self, domain: &str, job: Vec<Queued>) -> Vec<i64> {
        let started = Instant::now();
        let mut held = Vec::new();
        let msgs = by_message(job);
        let plan = match self.plan(domain) {
            Ok(p) => p,
            Err(outcome) => {
                for m in &msgs {
                    held.extend(self.record(m, |_| clone_outcome(&outcome), "none", started));
                }
                return held;
            }
        };
        let (mut session, relay) = match self.connect(&plan) {
            Ok(s) => s,
            Err(outcome) => {
                for m in &msgs {
                    held.extend(self.record(m, |_| clone_outcome(&outcome), "none", started));
                }
                return held;
            }
        };
        let mut broken: Option<String> = None;
        for m in &msgs {
            if let Some(why) = &broken {
                let o = Outcome::Retry(why.clone());
                held.extend(self.record(m, |_| clone_outcome(&o), &relay, started));
                continue;
            }
            let msg_id = m[0].msg_id;
            let raw = match self.store.read_sync(|r| r.queue_raw(msg_id)) {
                Ok(Some(raw)) => raw,
                Ok(None) => continue, // deleted meanwhile
                Err(e) => {
                    log::error!("outbound: cannot read queued message {}: {e}", m[0].qid);
                    continue;
                }
            };
            let rcpts: Vec<Rcpt<'_>> = m
                .iter()
                .map(|q| Rcpt {
                    addr: &q.addr,
                    notify: q.notify.as_deref(),
                    orcpt: q.orcpt.as_deref(),
                })
                .collect();
            let env = Envelope {
                from: &m[0].sender,
                rcpts: &rcpts,
                body: &raw,
                ret: m[0].ret.as_deref(),
                envid: m[0].envid.as_deref(),
            };
            match session.send(&env) {
                Ok(results) => {
                    let results: Vec<Outcome> = results
                        .into_iter()
                        .map(|r| match r {
                            RcptResult::Delivered(reply) => Outcome::Sent(reply.to_string()),
                            RcptResult::Temporary(reply) => Outcome::Retry(reply.to_string()),
                            RcptResult::Permanent(reply) => Outcome::Fail(reply.to_string()),
                        })
                        .collect();
                    let remote_dsn = session.offers_dsn();
                    held.extend(self.record_with(
                        m,
                        |i| {
                            results.get(i).map_or_else(
                                || Outcome::Retry("no reply for this recipient".into()),
                                clone_outcome,
                            )
                        },
                        &relay,
                        started,
                        remote_dsn,
                    ));
                }
                Err(Failure::Temporary(why)) | Err(Failure::Permanent(why)) => {
                    let o = Outcome::Retry(why.clone());
                    held.extend(self.record(m, |_| clone_outcome(&o), &relay, started));
                    broken = Some(why);
                }
            }
            if broken.is_none() && !session.reusable() {
                broken = Some("connection closed by the remote host".into());
            }
        }
        if broken.is_none() {
            session.quit();
        }
        held
    }

    /// [`Worker::record_with`] for outcomes no remote DSN support bears on.
    fn record(
        &self,
        rcpts: &[Queued],
        outcome: impl Fn(usize) -> Outcome,
        relay: &str,
        started: Instant,
    ) -> Vec<i64> {
        self.record_with(rcpts, outcome, relay, started, true)
    }

    /// Write the outcomes of one message's recipients (one transaction),
    /// log each, and queue or store the reports they call for: a bounce
    /// for failures, a delay warning for recipients queued longer than
    /// `delay_warning` (once each), and a "relayed" notice for recipients
    /// who asked for NOTIFY=SUCCESS when the receiving host (`remote_dsn`
    /// false) does not offer DSN to pass the request on (RFC 3461 §5.2.2).
    ///
    /// If that transaction fails (a report that does not fit on a full
    /// disk), the delivered recipients are still marked done on their own
    /// and the others deferred, their reports to be made on a later try:
    /// left due, the delivered ones would be sent again at once, and again
    /// (issue 15). Returns the recipients not even that could record
    /// (a store refusing every write): this process must not try them
    /// again; a restart will.
    fn record_with(
        &self,
        rcpts: &[Queued],
        outcome: impl Fn(usize) -> Outcome,
        relay: &str,
        started: Instant,
        remote_dsn: bool,
    ) -> Vec<i64> {
        let now = unix_now();
        let cfg = &self.config;
        let mut failed: Vec<dsn::Failed> = Vec::new();
        let mut delayed: Vec<dsn::Failed> = Vec::new();
        let mut relayed: Vec<dsn::Failed> = Vec::new();
        let mut finish: Vec<i64> = Vec::new();
        let mut defer: Vec<(i64, i64, String)> = Vec::new();
        let mut warned: Vec<i64> = Vec::new();
        let warn_after = cfg.delay_warning.as_secs() as i64;
        // The fallback: delivered recipients, and everyone else deferred.
        let mut sent: Vec<i64> = Vec::new();
        let mut later: Vec<(i64, i64, String)> = Vec::new();
        for (i, q) in rcpts.iter().enumerate() {
            let retry_at = now + backoff(cfg, q.attempts + 1).as_secs() as i64;
            let age = now.saturating_sub(q.created);
            let (status, text) = match outcome(i) {
                Outcome::Sent(t) => {
                    finish.push(q.id);
                    sent.push(q.id);
                    if !remote_dsn && wants(q, "SUCCESS", false) {
                        let status = dsn::status_of(&t, false);
                        let status = if status.starts_with('2') {
                            status.as_str()
                        } else {
                            "2.0.0"
                        };
                        relayed.push(failure(q, &t, relay, Some(status)));
                    }
                    ("sent", t)
                }
                Outcome::Fail(t) => {
                    finish.push(q.id);
                    failed.push(failure(q, &t, relay, None));
                    later.push((q.id, retry_at, t.clone()));
                    ("bounced", t)
                }
                Outcome::Retry(t) if age >= cfg.lifetime.as_secs() as i64 => {
                    finish.push(q.id);
                    let t = format!("gave up after {} attempts: {t}", q.attempts + 1);
                    failed.push(failure(q, &t, relay, Some("5.4.7")));
                    later.push((q.id, retry_at, t.clone()));
                    ("expired", t)
                }
                Outcome::Retry(t) => {
                    defer.push((q.id, retry_at, t.clone()));
                    later.push((q.id, retry_at, t.clone()));
                    if warn_after > 0 && age >= warn_after && !q.warned {
                        // Marked even when NOTIFY leaves DELAY out: the
                        // question is settled for this recipient.
                        warned.push(q.id);
                        if wants(q, "DELAY", true) {
                            let status = dsn::status_of(&t, false);
                            delayed.push(failure(q, &t, relay, Some(&status)));
                        }
                    }
                    ("deferred", t)
                }
            };
            log::info!(
                "outbound: id={} to=<{}> relay={relay} status={status} attempt={} delay={}s elapsed={}ms ({})",
                q.qid,
                q.addr,
                q.attempts + 1,
                age,
                started.elapsed().as_millis(),
                text.trim_end()
            );
        }
        let reports: Vec<(ReportMail, Option<mailstore::UserId>)> = [
            (dsn::Action::Failed, failed),
            (dsn::Action::Delayed, delayed),
            (dsn::Action::Relayed, relayed),
        ]
        .into_iter()
        .filter_map(|(action, list)| self.report(rcpts, action, &list))
        .map(|r| {
            let user = self
                .store
                .read_sync(|rd| rd.resolve_recipient(&r.to))
                .ok()
                .flatten()
                .map(|u| u.id);
            (r, user)
        })
        .collect();
        let all: Vec<i64> = rcpts.iter().map(|q| q.id).collect();
        let owner = self.lease_owner.clone();
        let (all2, owner2) = (all.clone(), owner.clone());
        let result = self.store.write_sync(move |tx| {
            let kept = still_ours(tx, &all, owner.as_deref())?;
            for id in finish.into_iter().filter(|id| kept.contains(id)) {
                tx.queue_finish(id)?;
            }
            for (id, next, why) in defer.into_iter().filter(|d| kept.contains(&d.0)) {
                tx.queue_defer(id, next, &why)?;
            }
            for id in warned.into_iter().filter(|id| kept.contains(id)) {
                tx.queue_warned(id)?;
            }
            for (r, user) in reports {
                if r.rcpts.iter().all(|id| kept.contains(id)) {
                    deliver_report(tx, r, user)?;
                }
            }
            Ok(kept)
        });
        let qid = rcpts.first().map_or("?", |q| q.qid.as_str());
        let e = match result {
            Ok(kept) => {
                self.log_lost(rcpts, &kept);
                return Vec::new();
            }
            Err(e) => e,
        };
        let fallback = self.store.write_sync(move |tx| {
            let kept = still_ours(tx, &all2, owner2.as_deref())?;
            for id in sent.into_iter().filter(|id| kept.contains(id)) {
                tx.queue_finish(id)?;
            }
            for (id, next, why) in later.into_iter().filter(|d| kept.contains(&d.0)) {
                tx.queue_defer(id, next, &why)?;
            }
            Ok(kept)
        });
        match fallback {
            Ok(kept) => {
                self.log_lost(rcpts, &kept);
                log::error!(
                    "outbound: cannot record results for {qid}: {e} (delivered recipients marked done, the others tried again later)"
                );
                Vec::new()
            }
            Err(e2) => {
                log::error!(
                    "outbound: cannot record results for {qid}: {e}; {e2} (it stays queued, not tried again before a restart)"
                );
                rcpts.iter().map(|q| q.id).collect()
            }
        }
    }

    /// Log the recipients whose outcome was not recorded because their
    /// lease had passed to another front end (or they were deleted).
    fn log_lost(&self, rcpts: &[Queued], kept: &[i64]) {
        for q in rcpts.iter().filter(|q| !kept.contains(&q.id)) {
            log::warn!(
                "outbound: id={} to=<{}> outcome not recorded: no longer leased to {} \
                 (taken over by another front end after the lease passed, or deleted)",
                q.qid,
                q.addr,
                self.lease_owner.as_deref().unwrap_or("this process")
            );
        }
    }

    /// The report of `action` for `listed` recipients, if the sender gets
    /// one.
    fn report(
        &self,
        rcpts: &[Queued],
        action: dsn::Action,
        listed: &[dsn::Failed],
    ) -> Option<ReportMail> {
        let first = rcpts.first()?;
        // Never a report about a report (RFC 5321 §4.5.5), nor to
        // recipients who asked for none (RFC 3461 §4.1 NOTIFY).
        let wanted: Vec<dsn::Failed> = listed
            .iter()
            .filter(|f| {
                rcpts
                    .iter()
                    .find(|q| q.addr == f.addr)
                    .is_none_or(|q| action != dsn::Action::Failed || wants(q, "FAILURE", true))
            })
            .cloned()
            .collect();
        if first.sender.is_empty() || wanted.is_empty() {
            return None;
        }
        let original = match self.store.read_sync(|r| r.queue_raw(first.msg_id)) {
            Ok(Some(raw)) => raw,
            _ => Vec::new(),
        };
        let raw = dsn::build(&dsn::Report {
            hostname: &self.config.hostname,
            to: &first.sender,
            qid: &first.qid,
            envid: first.envid.as_deref(),
            arrival: first.created,
            action,
            rcpts: &wanted,
            original: &original,
            // RET applies to failures; other notices carry the header
            // only (RFC 3461 §4.3).
            headers_only: action != dsn::Action::Failed
                || first
                    .ret
                    .as_deref()
                    .is_some_and(|r| r.eq_ignore_ascii_case("HDRS")),
        });
        let suffix = match action {
            dsn::Action::Failed => "B",
            dsn::Action::Delayed => "D",
            dsn::Action::Relayed => "S",
            dsn::Action::Delivered => "L",
        };
        // Unique in the queue: each recipient row gets at most one report
        // of each kind.
        let row = rcpts
            .iter()
            .find(|q| wanted.first().is_some_and(|f| f.addr == q.addr))
            .map_or(first.id, |q| q.id);
        Some(ReportMail {
            to: first.sender.clone(),
            qid: format!("{}.{suffix}{row}", first.qid),
            raw,
            rcpts: rcpts
                .iter()
                .filter(|q| wanted.iter().any(|f| f.addr == q.addr))
                .map(|q| q.id)
                .collect(),
        })
    }
}

struct ReportMail {
    to: String,
    qid: String,
    raw: Vec<u8>,
    /// The queued recipients it reports on.
    rcpts: Vec<i64>,
}

/// Those of `ids` whose outcome this process may record: all of them
/// where one process owns the queue, else those still leased to `owner`.
fn still_ours(
    tx: &mut mailstore::Tx<'_>,
    ids: &[i64],
    owner: Option<&str>,
) -> mailstore::Result<Vec<i64>> {
    match owner {
        Some(o) => tx.queue_still_leased(ids, o),
        None => Ok(ids.to_vec()),
    }
}

/// A report goes into the sender's INBOX when the sender is one of our
/// users, else into the queue from the null sender.
fn deliver_report(
    tx: &mut mailstore::Tx<'_>,
    r: ReportMail,
    user: Option<mailstore::UserId>,
) -> mailstore::Result<()> {
    match user {
        Some(id) => {
            let msg = mailstore::NewMessage {
                raw: r.raw,
                internal_date: unix_now(),
            };
            tx.deliver(&msg, &[id])?;
        }
        None => {
            tx.enqueue(&OutMessage {
                qid: r.qid,
                sender: String::new(),
                raw: r.raw,
                ret: None,
                envid: None,
                rcpts: vec![OutRcpt {
                    addr: r.to,
                    notify: None,
                    orcpt: None,
                }],
            })?;
        }
    }
    Ok(())
}

/// Whether recipient `q` asked for notices of `kind` (RFC 3461 §4.1):
/// its NOTIFY names it; without NOTIFY, `default` (failures and delays
/// are reported, successes not).
fn wants(q: &Queued, kind: &str, default: bool) -> bool {
    match q.notify.as_deref() {
        Some(n) => n.split(',').any(|w| w.trim().eq_ignore_ascii_case(kind)),
        None => default,
    }
}

fn failure(q: &Queued, text: &str, relay: &str, status: Option<&str>) -> dsn::Failed {
    dsn::Failed {
        addr: q.addr.clone(),
        orcpt: q.orcpt.clone(),
        status: status.map_or_else(|| dsn::status_of(text, true), str::to_owned),
        remote: (relay != "none").then(|| relay.split('[').next().unwrap_or(relay).to_owned()),
        diagnostic: text.to_owned(),
    }
}

fn clone_outcome(o: &Outcome) -> Outcome {
    match o {
        Outcome::Sent(t) => Outcome::Sent(t.clone()),
        Outcome::Retry(t) => Outcome::Retry(t.clone()),
        Outcome::Fail(t) => Outcome::Fail(t.clone()),
    }
}

/// The delay before attempt `attempt + 1`: `retry_min` doubled per
/// attempt, at most `retry_max`.
pub fn backoff(cfg: &Config, attempt: u32) -> Duration {
    let shift = attempt.saturating_sub(1).min(20);
    cfg.retry_min
        .saturating_mul(1u32 << shift)
        .min(cfg.retry_max)
        .max(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let cfg = Config::default();
        assert_eq!(backoff(&cfg, 1), Duration::from_secs(60));
        assert_eq!(backoff(&cfg, 2), Duration::from_secs(120));
        assert_eq!(backoff(&cfg, 4), Duration::from_secs(480));
        assert_eq!(backoff(&cfg, 30), Duration::from_secs(3600));
    }
}
