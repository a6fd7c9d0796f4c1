//! MX routing against a real DNS server: Debian's dnsmasq on a loopback
//! port, started per test binary with the zone given on its command line.

use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::time::{Duration, Instant};

use outbound::route::{Resolver, RouteError};

use testkit::dns::Dnsmasq as Server;

fn free_port() -> u16 {
    // The port of a TCP listener just closed; dnsmasq binds UDP and TCP.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("local addr").port()
}

/// A port nobody listens on: queries sent there are never answered.
fn dead_port() -> u16 {
    free_port()
}

/// A broken upstream name server: answers every UDP query with SERVFAIL
/// (the query sent back with QR set and RCODE 2). dnsmasq forwards
/// `fail.test` here and relays the SERVFAIL. The thread ends with the test
/// process.
fn servfail_upstream() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    let port = socket.local_addr().expect("local addr").port();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((len, from)) = socket.recv_from(&mut buf) {
            if len < 12 {
                continue;
            }
            buf[2] |= 0x80; // QR: a response
            buf[3] = (buf[3] & 0xf0) | 2; // RCODE: SERVFAIL
            let _ = socket.send_to(&buf[..len], from);
        }
    });
    port
}

fn start_dnsmasq() -> Server {
    let servfail = servfail_upstream();
    let dead = dead_port();
    Server::start(&[
        // a.test: two MX hosts, preferences 10 and 20.
        "--mx-host=a.test,mx1.a.test,10".to_string(),
        "--mx-host=a.test,mx2.a.test,20".to_string(),
        "--host-record=mx1.a.test,127.0.0.2".to_string(),
        "--host-record=mx2.a.test,127.0.0.3,::3".to_string(),
        // nomx.test: no MX, an address: implicit MX.
        "--host-record=nomx.test,127.0.0.4".to_string(),
        // null.test: RFC 7505 null MX (type 15: preference 0, root name).
        "--dns-rr=null.test,15,000000".to_string(),
        "--host-record=null.test,127.0.0.9".to_string(),
        // empty.test exists (a TXT record) but has neither MX nor address.
        "--txt-record=empty.test,nothing here".to_string(),
        // dangling.test: its only MX host does not exist.
        "--mx-host=dangling.test,nowhere.test,10".to_string(),
        // partial.test: one MX host missing, one fine.
        "--mx-host=partial.test,gone.test,5".to_string(),
        "--mx-host=partial.test,mx1.a.test,10".to_string(),
        // eq.test: two MX hosts of equal preference.
        "--mx-host=eq.test,mx1.a.test,10".to_string(),
        "--mx-host=eq.test,mx2.a.test,10".to_string(),
        // fail.test is forwarded to a server that answers SERVFAIL;
        // slow.test to a port where nobody answers.
        format!("--server=/fail.test/127.0.0.1#{servfail}"),
        format!("--server=/slow.test/127.0.0.1#{dead}"),
    ])
}

/// A fresh dnsmasq and a resolver asking it; keep the server alive.
fn resolver() -> (Server, Resolver) {
    let server = start_dnsmasq();
    let resolver = Resolver::new(Some(server.addr)).expect("resolver");
    (server, resolver)
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

#[test]
fn mx_records_in_preference_order_with_addresses() {
    let (_dns, resolver) = resolver();
    let targets = resolver.route("a.test").expect("route a.test");
    let hosts: Vec<(&str, u16)> = targets
        .iter()
        .map(|t| (t.host.as_str(), t.preference))
        .collect();
    assert_eq!(hosts, vec![("mx1.a.test", 10), ("mx2.a.test", 20)]);
    assert_eq!(targets[0].addrs, vec![ip("127.0.0.2")]);
    let mut mx2 = targets[1].addrs.clone();
    mx2.sort();
    assert_eq!(mx2, vec![ip("127.0.0.3"), ip("::3")], "A and AAAA");
    // Case and a trailing dot do not matter.
    let again = resolver.route("A.Test.").expect("route A.Test.");
    assert_eq!(again.len(), 2);
}

#[test]
fn no_mx_means_the_domain_itself() {
    let (_dns, resolver) = resolver();
    let targets = resolver.route("nomx.test").expect("route nomx.test");
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0].host, "nomx.test");
    assert_eq!(targets[0].preference, 0);
    assert_eq!(targets[0].addrs, vec![ip("127.0.0.4")]);
}

#[test]
fn nxdomain_is_permanent() {
    let (_dns, resolver) = resolver();
    let err = resolver.route("nosuch.test").expect_err("nosuch.test");
    assert_eq!(err, RouteError::NoSuchDomain);
    assert!(err.is_permanent());
}

#[test]
fn existing_name_without_mail_records_is_permanent() {
    let (_dns, resolver) = resolver();
    let err = resolver.route("empty.test").expect_err("empty.test");
    assert_eq!(err, RouteError::NoSuchDomain);
}

#[test]
fn null_mx_is_permanent() {
    let (_dns, resolver) = resolver();
    let err = resolver.route("null.test").expect_err("null.test");
    assert_eq!(err, RouteError::NullMx);
    assert!(err.is_permanent());
    assert!(err.to_string().contains("null MX"), "{err}");
}

#[test]
fn servfail_is_temporary() {
    let (_dns, resolver) = resolver();
    let started = Instant::now();
    let err = resolver.route("x.fail.test").expect_err("x.fail.test");
    match &err {
        RouteError::Temporary(why) => {
            assert!(why.to_lowercase().contains("server failure"), "{why}")
        }
        other => panic!("expected Temporary, got {other:?}"),
    }
    assert!(!err.is_permanent());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered, not timed out"
    );
}

#[test]
fn dns_timeout_is_temporary() {
    let dns = start_dnsmasq();
    let timeout = Duration::from_millis(300);
    let resolver = Resolver::with_timeout(Some(dns.addr), timeout).expect("resolver");
    let started = Instant::now();
    let err = resolver.route("x.slow.test").expect_err("x.slow.test");
    assert!(matches!(err, RouteError::Temporary(_)), "{err:?}");
    assert!(started.elapsed() < timeout * 7, "{:?}", started.elapsed());
}

#[test]
fn unreachable_dns_server_is_temporary() {
    let dead: SocketAddr = ([127, 0, 0, 1], dead_port()).into();
    let resolver =
        Resolver::with_timeout(Some(dead), Duration::from_millis(300)).expect("resolver");
    let err = resolver.route("a.test").expect_err("no server");
    assert!(matches!(err, RouteError::Temporary(_)), "{err:?}");
}

#[test]
fn all_mx_hosts_unresolvable_is_temporary() {
    let (_dns, resolver) = resolver();
    let err = resolver.route("dangling.test").expect_err("dangling.test");
    match err {
        RouteError::Temporary(why) => assert!(why.contains("nowhere.test"), "{why}"),
        other => panic!("expected Temporary, got {other:?}"),
    }
}

#[test]
fn unresolvable_mx_host_is_skipped() {
    let (_dns, resolver) = resolver();
    let targets = resolver.route("partial.test").expect("partial.test");
    let hosts: Vec<&str> = targets.iter().map(|t| t.host.as_str()).collect();
    assert_eq!(hosts, vec!["mx1.a.test"]);
}

#[test]
fn equal_preferences_are_shuffled() {
    let (_dns, resolver) = resolver();
    let mut firsts = std::collections::HashSet::new();
    for _ in 0..64 {
        let targets = resolver.route("eq.test").expect("eq.test");
        assert_eq!(targets.len(), 2);
        firsts.insert(targets[0].host.clone());
        if firsts.len() == 2 {
            break;
        }
    }
    assert_eq!(firsts.len(), 2, "both hosts come first sometimes");
}

#[test]
fn address_literals_need_no_dns() {
    let dead: SocketAddr = ([127, 0, 0, 1], dead_port()).into();
    let resolver = Resolver::new(Some(dead)).expect("resolver");
    let targets = resolver.route("[127.0.0.5]").expect("literal");
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0].addrs, vec![ip("127.0.0.5")]);
    assert_eq!(targets[0].preference, 0);
    let targets = resolver.route("[IPv6:::1]").expect("v6 literal");
    assert_eq!(targets[0].addrs, vec![ip("::1")]);
    assert_eq!(
        resolver.route("[not an address]"),
        Err(RouteError::NoSuchDomain)
    );
}

#[test]
fn resolver_is_shared_between_threads() {
    let (_dns, resolver) = resolver();
    let resolver = std::sync::Arc::new(resolver);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let resolver = resolver.clone();
            std::thread::spawn(move || resolver.route("a.test").map(|t| t.len()))
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().expect("thread"), Ok(2));
    }
}

#[test]
fn system_configuration_loads() {
    // /etc/resolv.conf as the machine has it; nothing is looked up.
    if std::path::Path::new("/etc/resolv.conf").exists() {
        Resolver::new(None).expect("resolver from /etc/resolv.conf");
    }
}
