//! MX resolution (RFC 5321 §5.1, RFC 7505): where to deliver mail for a
//! domain.
//!
//! [`Resolver::route`] turns a recipient domain into an ordered list of
//! [`Target`]s: the MX hosts in preference order (equal preferences
//! shuffled, so load spreads as the domain's owner intended), each with its
//! A/AAAA addresses. DNS is hickory-resolver's, run on a small private tokio
//! runtime owned by the [`Resolver`], so callers stay blocking: the delivery
//! engine calls `route` from its worker threads.
//!
//! Failures are sorted by what the queue must do with them: a domain that
//! does not exist, has no mail records at all, or publishes a null MX is
//! permanent (bounce now); anything else DNS can say (SERVFAIL, REFUSED, a
//! timeout, an unreachable server) is temporary (try again later).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig,
    ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::TokioResolver;
use rand::seq::SliceRandom;

/// Time one DNS server gets to answer one query (default).
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(3);
/// Tries per query (per server) before the lookup fails.
const QUERY_ATTEMPTS: usize = 2;
/// Bound on one whole [`Resolver::route`] call, however many lookups it
/// makes, in query timeouts.
const ROUTE_TIMEOUTS: u32 = 6;
/// MX hosts looked at per domain; more is a misconfiguration or an attack.
const MAX_MX_HOSTS: usize = 16;

/// One place to try delivering to: an MX host and its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The MX host name without the trailing dot (the domain itself for an
    /// implicit MX, the literal as given for an address literal). TLS with
    /// verification checks the certificate against this name.
    pub host: String,
    /// MX preference; 0 for an implicit MX or an address literal.
    pub preference: u16,
    /// IPv4 and IPv6 addresses of `host`, never empty.
    pub addrs: Vec<IpAddr>,
}

/// Why a domain has no delivery targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// RFC 7505 null MX: the domain says it accepts no mail. Permanent.
    NullMx,
    /// NXDOMAIN, or the domain exists but has neither MX nor A/AAAA records
    /// (or is not a valid domain name or address literal). Permanent.
    NoSuchDomain,
    /// SERVFAIL, REFUSED, timeout, unreachable DNS server, or every MX host
    /// failed to resolve: retry later.
    Temporary(String),
}

impl RouteError {
    /// True when retrying cannot help: bounce the recipients.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, RouteError::Temporary(_))
    }
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::NullMx => f.write_str("domain does not accept mail (null MX, RFC 7505)"),
            RouteError::NoSuchDomain => f.write_str("no such domain (no MX or address records)"),
            RouteError::Temporary(why) => write!(f, "temporary DNS failure: {why}"),
        }
    }
}

impl std::error::Error for RouteError {}

/// MX resolver. `Send + Sync`; share it between threads with an `Arc`.
/// It caches answers (within their TTLs) like any stub resolver.
pub struct Resolver {
    // Declared before `runtime`: dropped first, while its tasks' runtime lives.
    dns: TokioResolver,
    runtime: tokio::runtime::Runtime,
    route_timeout: Duration,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver").finish_non_exhaustive()
    }
}

impl Resolver {
    /// A resolver asking `dns` (UDP, falling back to TCP; e.g.
    /// `127.0.0.1:5353`), or the servers of `/etc/resolv.conf` when `None`.
    pub fn new(dns: Option<SocketAddr>) -> anyhow::Result<Resolver> {
        Resolver::with_timeout(dns, QUERY_TIMEOUT)
    }

    /// Like [`Resolver::new`], giving each DNS query `timeout` instead of
    /// [`QUERY_TIMEOUT`] (each query is tried twice; one `route` call takes
    /// at most six timeouts).
    pub fn with_timeout(dns: Option<SocketAddr>, timeout: Duration) -> anyhow::Result<Resolver> {
        // One worker thread runs hickory's background tasks; callers block
        // in `block_on` from their own threads.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("outbound-dns")
            .enable_all()
            .build()?;
        let (config, mut opts) = match dns {
            Some(addr) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let server = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                let mut opts = ResolverOpts::default();
                // A server named explicitly answers for everything, hosts too.
                opts.use_hosts_file = ResolveHosts::Never;
                (ResolverConfig::from_name_servers(vec![server]), opts)
            }
            None => hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| anyhow::anyhow!("reading /etc/resolv.conf: {e}"))?,
        };
        opts.timeout = timeout;
        opts.attempts = QUERY_ATTEMPTS;
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        opts.try_tcp_on_error = true;
        let dns = {
            // hickory's runtime provider spawns onto the current runtime.
            let _guard = runtime.enter();
            TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
                .with_options(opts)
                .build()?
        };
        Ok(Resolver {
            dns,
            runtime,
            route_timeout: timeout * ROUTE_TIMEOUTS,
        })
    }

    /// RFC 5321 §5.1: the MX hosts of `domain` in preference order (equal
    /// preferences shuffled), each resolved to its A/AAAA addresses. No MX:
    /// the domain's own addresses as an implicit MX with preference 0. A
    /// null MX ("." , RFC 7505): [`RouteError::NullMx`]. An address literal
    /// such as `[127.0.0.5]` or `[IPv6:::1]` is the address itself (RFC 5321
    /// §4.1.3). MX hosts that resolve to nothing are left out; if none
    /// resolves, that is [`RouteError::Temporary`].
    pub fn route(&self, domain: &str) -> Result<Vec<Target>, RouteError> {
        let domain = domain.trim();
        if domain.starts_with('[') {
            return literal(domain);
        }
        let name = fqdn(domain)?;
        let lookups = self.lookup_targets(domain, name);
        let limit = self.route_timeout;
        match self
            .runtime
            .block_on(async { tokio::time::timeout(limit, lookups).await })
        {
            Ok(result) => result,
            Err(_) => Err(RouteError::Temporary(format!(
                "DNS lookups for {domain} took longer than {:.1} s",
                limit.as_secs_f32()
            ))),
        }
    }

    /// A host named by the operator (a transport map's `[host]`, no MX
    /// lookup): an IP address as is, else its A/AAAA records.
    pub fn host(&self, host: &str) -> Result<Vec<Target>, RouteError> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![Target {
                host: host.to_owned(),
                preference: 0,
                addrs: vec![ip],
            }]);
        }
        let name = fqdn(host)?;
        let limit = self.route_timeout;
        let found = self
            .runtime
            .block_on(async { tokio::time::timeout(limit, self.addresses(name)).await });
        match found {
            Ok(Ok(addrs)) if !addrs.is_empty() => Ok(vec![Target {
                host: host.trim_end_matches('.').to_owned(),
                preference: 0,
                addrs,
            }]),
            Ok(Ok(_)) => Err(RouteError::NoSuchDomain),
            Ok(Err(e)) if e.is_nx_domain() || e.is_no_records_found() => {
                Err(RouteError::NoSuchDomain)
            }
            Ok(Err(e)) => Err(temporary(host, "A/AAAA", &e)),
            Err(_) => Err(RouteError::Temporary(format!(
                "DNS lookups for {host} took longer than {:.1} s",
                limit.as_secs_f32()
            ))),
        }
    }

    async fn lookup_targets(&self, domain: &str, name: Name) -> Result<Vec<Target>, RouteError> {
        let mut mxs: Vec<(u16, Name)> = match self.dns.lookup(name.clone(), RecordType::MX).await {
            Ok(lookup) => lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::MX(mx) => Some((mx.preference, mx.exchange.clone())),
                    _ => None,
                })
                .collect(),
            Err(e) if e.is_nx_domain() => return Err(RouteError::NoSuchDomain),
            Err(e) if e.is_no_records_found() => Vec::new(),
            Err(e) => return Err(temporary(domain, "MX", &e)),
        };

        if mxs.is_empty() {
            // RFC 5321 §5.1: no MX records, so the domain is its own MX.
            return match self.addresses(name).await {
                Ok(addrs) if !addrs.is_empty() => Ok(vec![Target {
                    host: domain.trim_end_matches('.').to_string(),
                    preference: 0,
                    addrs,
                }]),
                Ok(_) => Err(RouteError::NoSuchDomain),
                Err(e) if e.is_no_records_found() => Err(RouteError::NoSuchDomain),
                Err(e) => Err(temporary(domain, "A/AAAA", &e)),
            };
        }

        // RFC 7505: "." is no host at all. A lone null MX means "no mail";
        // a "." among real MX records (a misconfiguration) is just skipped.
        mxs.retain(|(_, exchange)| !exchange.is_root());
        if mxs.is_empty() {
            return Err(RouteError::NullMx);
        }
        order(&mut mxs);
        mxs.truncate(MAX_MX_HOSTS);

        let mut targets = Vec::with_capacity(mxs.len());
        let mut failures = Vec::new();
        for (preference, exchange) in mxs {
            let host = exchange.to_ascii().trim_end_matches('.').to_string();
            match self.addresses(exchange).await {
                Ok(addrs) if !addrs.is_empty() => targets.push(Target {
                    host,
                    preference,
                    addrs,
                }),
                Ok(_) => failures.push(format!("{host}: no addresses")),
                Err(e) if e.is_no_records_found() => failures.push(format!("{host}: no addresses")),
                Err(e) => failures.push(format!("{host}: {e}")),
            }
        }
        if targets.is_empty() {
            return Err(RouteError::Temporary(format!(
                "no MX host of {domain} resolves: {}",
                failures.join("; ")
            )));
        }
        for failure in &failures {
            log::debug!("MX of {domain} skipped: {failure}");
        }
        Ok(targets)
    }

    async fn addresses(&self, name: Name) -> Result<Vec<IpAddr>, NetError> {
        let lookup = self.dns.lookup_ip(name).await?;
        let mut addrs: Vec<IpAddr> = Vec::new();
        for addr in lookup.iter() {
            if !addrs.contains(&addr) {
                addrs.push(addr);
            }
        }
        Ok(addrs)
    }
}

/// Sort by preference, shuffling each run of equal preferences.
fn order(mxs: &mut [(u16, Name)]) {
    let mut rng = rand::rng();
    mxs.shuffle(&mut rng);
    // Stable: the shuffled order survives within each preference.
    mxs.sort_by_key(|(preference, _)| *preference);
}

fn temporary(domain: &str, what: &str, e: &NetError) -> RouteError {
    RouteError::Temporary(format!("{what} lookup for {domain}: {e}"))
}

/// The domain as an absolute DNS name (so no search list applies); IDNs go
/// to their A-label form.
fn fqdn(domain: &str) -> Result<Name, RouteError> {
    if domain.is_empty() || domain == "." {
        return Err(RouteError::NoSuchDomain);
    }
    let mut name = Name::from_utf8(domain).map_err(|_| RouteError::NoSuchDomain)?;
    name.set_fqdn(true);
    Ok(name)
}

/// `[192.0.2.1]` or `[IPv6:2001:db8::1]` (RFC 5321 §4.1.3).
fn literal(domain: &str) -> Result<Vec<Target>, RouteError> {
    let inner = domain
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .ok_or(RouteError::NoSuchDomain)?;
    let addr: IpAddr = match inner.get(..5) {
        Some(tag) if tag.eq_ignore_ascii_case("IPv6:") => inner[5..]
            .parse::<std::net::Ipv6Addr>()
            .map(IpAddr::V6)
            .map_err(|_| RouteError::NoSuchDomain)?,
        _ => inner
            .parse::<std::net::Ipv4Addr>()
            .map(IpAddr::V4)
            .map_err(|_| RouteError::NoSuchDomain)?,
    };
    Ok(vec![Target {
        host: domain.to_string(),
        preference: 0,
        addrs: vec![addr],
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals() {
        let v4 = literal("[127.0.0.5]").expect("v4 literal");
        assert_eq!(
            v4[0].addrs,
            vec!["127.0.0.5".parse::<IpAddr>().expect("ip")]
        );
        let v6 = literal("[IPv6:::1]").expect("v6 literal");
        assert_eq!(v6[0].addrs, vec!["::1".parse::<IpAddr>().expect("ip")]);
        assert_eq!(literal("[::1]"), Err(RouteError::NoSuchDomain));
        assert_eq!(literal("[300.1.1.1]"), Err(RouteError::NoSuchDomain));
        assert_eq!(literal("[127.0.0.1"), Err(RouteError::NoSuchDomain));
    }

    #[test]
    fn equal_preferences_shuffle_but_order_holds() {
        let name = |s: &str| Name::from_ascii(s).expect("name");
        let mut seen_first = std::collections::HashSet::new();
        for _ in 0..200 {
            let mut mxs = vec![
                (20, name("c.")),
                (10, name("a.")),
                (10, name("b.")),
                (5, name("z.")),
            ];
            order(&mut mxs);
            let prefs: Vec<u16> = mxs.iter().map(|(p, _)| *p).collect();
            assert_eq!(prefs, vec![5, 10, 10, 20]);
            seen_first.insert(mxs[1].1.to_ascii());
        }
        assert_eq!(seen_first.len(), 2, "equal preferences are shuffled");
    }

    #[test]
    fn permanence() {
        assert!(RouteError::NullMx.is_permanent());
        assert!(RouteError::NoSuchDomain.is_permanent());
        assert!(!RouteError::Temporary("x".into()).is_permanent());
    }
}
