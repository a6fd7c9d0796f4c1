//! metrics: what `minimail up --metrics ADDR` reports, in Prometheus' text
//! exposition format (version 0.0.4), and the small HTTP server that serves
//! it ([`http::serve`]).
//!
//! Every metric is declared here, in one registry of atomics, so counting
//! costs one relaxed atomic add on whatever thread counts (the event loops,
//! the store's writer thread); nothing here locks or allocates on that
//! path. The label values are fixed enums ([`Protocol`], [`Refusal`]), so no
//! client input can add a time series. A scrape ([`render`]) reads the
//! atomics on the exporter's own thread, never on an event loop; the one
//! figure that needs the store (the outbound queue) comes from a probe the
//! binary installs ([`set_queue_probe`]), which the exporter thread calls.
//!
//! The metrics (all prefixed `minimail_`):
//!
//! | name | type | labels |
//! | --- | --- | --- |
//! | `connections_open` | gauge | `protocol` |
//! | `connections_total` | counter | `protocol` |
//! | `connections_refused_total` | counter | `protocol` (a connection limit) |
//! | `tls_refused_total` | counter | `protocol`, `reason` (`alpn`, `incompatible`, `handshake`) |
//! | `smtp_messages_accepted_total` | counter | `service` (`smtp`, `submission`) |
//! | `smtp_refused_total` | counter | `reason` ([`Refusal`]) |
//! | `smtp_delivery_seconds` | histogram | end of DATA to the durable commit |
//! | `store_commit_seconds` | histogram | one group-commit batch, BEGIN to COMMIT |
//! | `outbound_queue_messages`, `outbound_queue_recipients` | gauge | |
//! | `imap_idle_sessions` | gauge | |
//! | `imap_commands_total` | counter | `command` |
//!
//! No protocol, no SQL here.

pub mod http;

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::Duration;

/// The listener a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// SMTP (port 25 style, `--smtp`).
    Smtp,
    /// Submission with STARTTLS (`--submission`).
    Submission,
    /// Submission over implicit TLS (`--smtps`).
    Smtps,
    /// IMAP (`--imap`).
    Imap,
    /// IMAP over implicit TLS (`--imaps`).
    Imaps,
    /// Any other server built on netloop (tests, tools).
    Other,
}

impl Protocol {
    const ALL: [Protocol; 6] = [
        Protocol::Smtp,
        Protocol::Submission,
        Protocol::Smtps,
        Protocol::Imap,
        Protocol::Imaps,
        Protocol::Other,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Protocol::Smtp => "smtp",
            Protocol::Submission => "submission",
            Protocol::Smtps => "smtps",
            Protocol::Imap => "imap",
            Protocol::Imaps => "imaps",
            Protocol::Other => "other",
        }
    }
}

/// Why the SMTP server refused a message or a recipient (the `reason`
/// label of `minimail_smtp_refused_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// RCPT to a domain we do not serve, unauthenticated (554/550 5.7.1).
    RelayDenied,
    /// RCPT to a local address with no such user (550 5.1.1).
    UnknownUser,
    /// SIZE or content over the message size limit (552 5.3.4).
    TooBig,
    /// A text line over the configured limit.
    LineTooLong,
    /// More recipients than allowed in one transaction.
    TooManyRecipients,
    /// MAIL FROM or header From not the authenticated user's.
    SenderNotOwned,
    /// DMARC policy reject (550 5.7.1).
    DmarcReject,
    /// The disk is full (452 4.3.1).
    StorageFull,
    /// The store is damaged or failed (451 4.3.0).
    LocalError,
    /// The recipient's quota has no room (452 4.2.2 / 552 5.2.2).
    OverQuota,
}

impl Refusal {
    const ALL: [Refusal; 10] = [
        Refusal::RelayDenied,
        Refusal::UnknownUser,
        Refusal::TooBig,
        Refusal::LineTooLong,
        Refusal::TooManyRecipients,
        Refusal::SenderNotOwned,
        Refusal::DmarcReject,
        Refusal::StorageFull,
        Refusal::LocalError,
        Refusal::OverQuota,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::RelayDenied => "relay_denied",
            Refusal::UnknownUser => "unknown_user",
            Refusal::TooBig => "too_big",
            Refusal::LineTooLong => "line_too_long",
            Refusal::TooManyRecipients => "too_many_recipients",
            Refusal::SenderNotOwned => "sender_not_owned",
            Refusal::DmarcReject => "dmarc_reject",
            Refusal::StorageFull => "storage_full",
            Refusal::LocalError => "local_error",
            Refusal::OverQuota => "over_quota",
        }
    }
}

/// Why a TLS connection was refused (the `reason` label of
/// `minimail_tls_refused_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsRefusal {
    /// The client offered ALPN protocols, none of them ours (ALPACA).
    Alpn,
    /// Nothing in common: no TLS version, cipher suite or group we accept.
    Incompatible,
    /// Any other handshake failure.
    Handshake,
}

impl TlsRefusal {
    const ALL: [TlsRefusal; 3] = [
        TlsRefusal::Alpn,
        TlsRefusal::Incompatible,
        TlsRefusal::Handshake,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            TlsRefusal::Alpn => "alpn",
            TlsRefusal::Incompatible => "incompatible",
            TlsRefusal::Handshake => "handshake",
        }
    }
}

/// The IMAP commands counted by name; any other is counted as `other`.
pub const IMAP_COMMANDS: [&str; 39] = [
    "APPEND",
    "AUTHENTICATE",
    "CANCELUPDATE",
    "CAPABILITY",
    "CHECK",
    "CLOSE",
    "COMPRESS",
    "COPY",
    "CREATE",
    "DELETE",
    "ENABLE",
    "EXAMINE",
    "EXPUNGE",
    "FETCH",
    "GENURLAUTH",
    "ID",
    "IDLE",
    "LIST",
    "LOGIN",
    "LOGOUT",
    "LSUB",
    "MOVE",
    "NAMESPACE",
    "NOOP",
    "NOTIFY",
    "RENAME",
    "RESETKEY",
    "SEARCH",
    "SELECT",
    "SORT",
    "STARTTLS",
    "STATUS",
    "STORE",
    "SUBSCRIBE",
    "THREAD",
    "UNAUTHENTICATE",
    "UNSELECT",
    "UNSUBSCRIBE",
    "URLFETCH",
];

const N_PROTO: usize = Protocol::ALL.len();
const N_REFUSAL: usize = Refusal::ALL.len();
const N_TLS: usize = TlsRefusal::ALL.len();
const N_IMAP: usize = IMAP_COMMANDS.len() + 1;

/// Histogram bucket bounds, in seconds (a commit takes from well under a
/// millisecond to seconds on a slow disk).
const BOUNDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A latency histogram: cumulative buckets are computed at render time.
struct Histogram {
    /// Observations per bucket (not cumulative); the last is `+Inf`.
    buckets: [AtomicU64; BOUNDS.len() + 1],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    const fn new() -> Self {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; BOUNDS.len() + 1],
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }

    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = BOUNDS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(BOUNDS.len());
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum_nanos
            .fetch_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        header(out, name, help, "histogram");
        let mut cumulative = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            cumulative += b.load(Relaxed);
            let le = BOUNDS.get(i).map_or("+Inf".to_owned(), |b| b.to_string());
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let sum = self.sum_nanos.load(Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}");
        // The count is the +Inf bucket, as the format requires.
        let _ = writeln!(out, "{name}_count {cumulative}");
    }
}

/// Every metric of the process.
struct Registry {
    conn_open: [AtomicI64; N_PROTO],
    conn_total: [AtomicU64; N_PROTO],
    conn_refused: [AtomicU64; N_PROTO],
    tls_refused: [[AtomicU64; N_TLS]; N_PROTO],
    smtp_accepted: [AtomicU64; 2],
    smtp_refused: [AtomicU64; N_REFUSAL],
    smtp_delivery: Histogram,
    store_commit: Histogram,
    imap_idle: AtomicI64,
    imap_commands: [AtomicU64; N_IMAP],
}

static REG: Registry = Registry {
    conn_open: [const { AtomicI64::new(0) }; N_PROTO],
    conn_total: [const { AtomicU64::new(0) }; N_PROTO],
    conn_refused: [const { AtomicU64::new(0) }; N_PROTO],
    tls_refused: [const { [const { AtomicU64::new(0) }; N_TLS] }; N_PROTO],
    smtp_accepted: [const { AtomicU64::new(0) }; 2],
    smtp_refused: [const { AtomicU64::new(0) }; N_REFUSAL],
    smtp_delivery: Histogram::new(),
    store_commit: Histogram::new(),
    imap_idle: AtomicI64::new(0),
    imap_commands: [const { AtomicU64::new(0) }; N_IMAP],
};

/// The size of the outbound queue: messages and recipients waiting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueSize {
    /// Messages with at least one recipient left.
    pub messages: u64,
    /// Recipients not yet delivered or bounced.
    pub recipients: u64,
}

type QueueProbe = Box<dyn Fn() -> Option<QueueSize> + Send + Sync>;
static QUEUE_PROBE: OnceLock<QueueProbe> = OnceLock::new();

/// Install what a scrape calls to learn the outbound queue's size (a store
/// read, run on the exporter's thread). Only the first call counts; `None`
/// from the probe leaves the queue gauges out of that scrape.
pub fn set_queue_probe(probe: impl Fn() -> Option<QueueSize> + Send + Sync + 'static) {
    let _ = QUEUE_PROBE.set(Box::new(probe));
}

fn proto_index(p: Protocol) -> usize {
    Protocol::ALL
        .iter()
        .position(|&x| x == p)
        .unwrap_or(N_PROTO - 1)
}

/// An open connection, counted in `minimail_connections_open` while the
/// guard lives.
#[derive(Debug)]
pub struct OpenConnection(Protocol);

impl OpenConnection {
    /// The listener protocol it is counted under.
    pub fn protocol(&self) -> Protocol {
        self.0
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        REG.conn_open[proto_index(self.0)].fetch_sub(1, Relaxed);
    }
}

/// A connection was accepted on a `p` listener: counted in the total now,
/// and as open until the returned guard is dropped.
pub fn connection_opened(p: Protocol) -> OpenConnection {
    let i = proto_index(p);
    REG.conn_open[i].fetch_add(1, Relaxed);
    REG.conn_total[i].fetch_add(1, Relaxed);
    OpenConnection(p)
}

/// A connection was refused at accept (a connection limit).
pub fn connection_refused(p: Protocol) {
    REG.conn_refused[proto_index(p)].fetch_add(1, Relaxed);
}

/// A TLS handshake on a `p` connection failed for `why`.
pub fn tls_refused(p: Protocol, why: TlsRefusal) {
    let j = TlsRefusal::ALL.iter().position(|&x| x == why).unwrap_or(0);
    REG.tls_refused[proto_index(p)][j].fetch_add(1, Relaxed);
}

/// A message was committed and acknowledged (`250` after DATA/BDAT).
pub fn smtp_accepted(submission: bool) {
    REG.smtp_accepted[usize::from(submission)].fetch_add(1, Relaxed);
}

/// A message or recipient was refused for `why`.
pub fn smtp_refused(why: Refusal) {
    let i = Refusal::ALL.iter().position(|&x| x == why).unwrap_or(0);
    REG.smtp_refused[i].fetch_add(1, Relaxed);
}

/// From the end of a message's content to its durable commit.
pub fn smtp_delivery(took: Duration) {
    REG.smtp_delivery.observe(took);
}

/// One group-commit batch of the store's writer, BEGIN to COMMIT.
pub fn store_commit(took: Duration) {
    REG.store_commit.observe(took);
}

/// An IMAP command was received (`name` as the client spelled it; counted
/// by its upper-case name when it is one of [`IMAP_COMMANDS`], else as
/// `other`).
pub fn imap_command(name: &str) {
    let i = IMAP_COMMANDS
        .iter()
        .position(|c| c.eq_ignore_ascii_case(name))
        .unwrap_or(N_IMAP - 1);
    REG.imap_commands[i].fetch_add(1, Relaxed);
}

/// An IMAP session in IDLE: counted while the returned guard lives.
#[derive(Debug)]
pub struct IdleSession(());

/// Count one IMAP session in IDLE until the guard is dropped.
pub fn idle_session() -> IdleSession {
    REG.imap_idle.fetch_add(1, Relaxed);
    IdleSession(())
}

impl Drop for IdleSession {
    fn drop(&mut self) {
        REG.imap_idle.fetch_sub(1, Relaxed);
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Every metric in Prometheus' text format (version 0.0.4).
pub fn render() -> String {
    let mut out = String::with_capacity(8 * 1024);
    let o = &mut out;
    header(
        o,
        "minimail_connections_open",
        "Connections open now, by listener protocol.",
        "gauge",
    );
    for p in Protocol::ALL {
        let v = REG.conn_open[proto_index(p)].load(Relaxed);
        let _ = writeln!(
            o,
            "minimail_connections_open{{protocol=\"{}\"}} {v}",
            p.label()
        );
    }
    let labelled = |o: &mut String, name: &str, help: &str, vals: &[AtomicU64; N_PROTO]| {
        header(o, name, help, "counter");
        for p in Protocol::ALL {
            let v = vals[proto_index(p)].load(Relaxed);
            let _ = writeln!(o, "{name}{{protocol=\"{}\"}} {v}", p.label());
        }
    };
    labelled(
        o,
        "minimail_connections_total",
        "Connections accepted, by listener protocol.",
        &REG.conn_total,
    );
    labelled(
        o,
        "minimail_connections_refused_total",
        "Connections refused at a connection limit, by listener protocol.",
        &REG.conn_refused,
    );
    header(
        o,
        "minimail_tls_refused_total",
        "TLS handshakes refused or failed, by listener protocol and reason.",
        "counter",
    );
    for p in Protocol::ALL {
        for r in TlsRefusal::ALL {
            let j = TlsRefusal::ALL.iter().position(|&x| x == r).unwrap_or(0);
            let v = REG.tls_refused[proto_index(p)][j].load(Relaxed);
            let _ = writeln!(
                o,
                "minimail_tls_refused_total{{protocol=\"{}\",reason=\"{}\"}} {v}",
                p.label(),
                r.label()
            );
        }
    }
    header(
        o,
        "minimail_smtp_messages_accepted_total",
        "Messages committed and acknowledged over SMTP, by service.",
        "counter",
    );
    for (i, s) in ["smtp", "submission"].iter().enumerate() {
        let v = REG.smtp_accepted[i].load(Relaxed);
        let _ = writeln!(
            o,
            "minimail_smtp_messages_accepted_total{{service=\"{s}\"}} {v}"
        );
    }
    header(
        o,
        "minimail_smtp_refused_total",
        "Messages or recipients refused over SMTP, by reason.",
        "counter",
    );
    for (i, r) in Refusal::ALL.iter().enumerate() {
        let v = REG.smtp_refused[i].load(Relaxed);
        let _ = writeln!(
            o,
            "minimail_smtp_refused_total{{reason=\"{}\"}} {v}",
            r.label()
        );
    }
    REG.smtp_delivery.render(
        o,
        "minimail_smtp_delivery_seconds",
        "Time from the end of a message's content to its durable commit.",
    );
    REG.store_commit.render(
        o,
        "minimail_store_commit_seconds",
        "Time one group-commit batch of the store's writer takes, BEGIN to COMMIT.",
    );
    if let Some(q) = QUEUE_PROBE.get().and_then(|probe| probe()) {
        header(
            o,
            "minimail_outbound_queue_messages",
            "Messages in the outbound queue.",
            "gauge",
        );
        let _ = writeln!(o, "minimail_outbound_queue_messages {}", q.messages);
        header(
            o,
            "minimail_outbound_queue_recipients",
            "Recipients waiting in the outbound queue.",
            "gauge",
        );
        let _ = writeln!(o, "minimail_outbound_queue_recipients {}", q.recipients);
    }
    header(
        o,
        "minimail_imap_idle_sessions",
        "IMAP sessions in IDLE now.",
        "gauge",
    );
    let _ = writeln!(
        o,
        "minimail_imap_idle_sessions {}",
        REG.imap_idle.load(Relaxed)
    );
    header(
        o,
        "minimail_imap_commands_total",
        "IMAP commands received, by name.",
        "counter",
    );
    for (i, v) in REG.imap_commands.iter().enumerate() {
        let name = IMAP_COMMANDS.get(i).copied().unwrap_or("other");
        let _ = writeln!(
            o,
            "minimail_imap_commands_total{{command=\"{name}\"}} {}",
            v.load(Relaxed)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn value(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("{series} not in\n{text}"))
            .parse()
            .unwrap()
    }

    #[test]
    fn counters_move_and_render() {
        let before = render();
        let conn = connection_opened(Protocol::Imaps);
        smtp_refused(Refusal::UnknownUser);
        imap_command("fetch");
        imap_command("XYZZY");
        let guard = idle_session();
        store_commit(Duration::from_millis(3));
        let after = render();
        let d = |s: &str| value(&after, s) - value(&before, s);
        assert_eq!(d("minimail_connections_total{protocol=\"imaps\"}"), 1.0);
        assert_eq!(d("minimail_connections_open{protocol=\"imaps\"}"), 1.0);
        assert_eq!(
            d("minimail_smtp_refused_total{reason=\"unknown_user\"}"),
            1.0
        );
        assert_eq!(d("minimail_imap_commands_total{command=\"FETCH\"}"), 1.0);
        assert_eq!(d("minimail_imap_commands_total{command=\"other\"}"), 1.0);
        assert_eq!(d("minimail_imap_idle_sessions"), 1.0);
        // 3 ms falls in the 0.005 bucket, not the 0.0025 one.
        assert_eq!(d("minimail_store_commit_seconds_bucket{le=\"0.005\"}"), 1.0);
        assert_eq!(
            d("minimail_store_commit_seconds_bucket{le=\"0.0025\"}"),
            0.0
        );
        assert_eq!(d("minimail_store_commit_seconds_bucket{le=\"+Inf\"}"), 1.0);
        assert!(d("minimail_store_commit_seconds_sum") > 0.002);
        drop(guard);
        drop(conn);
        let last = render();
        for s in [
            "minimail_imap_idle_sessions",
            "minimail_connections_open{protocol=\"imaps\"}",
        ] {
            assert_eq!(value(&last, s), value(&before, s), "{s}");
        }
    }
}
