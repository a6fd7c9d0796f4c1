//! Per-domain routes (a transport map, as Postfix's `transport(5)` with
//! its `smtp_tls_policy_maps` folded in): where mail for a domain goes
//! instead of its MX hosts, and how carefully.
//!
//! One route per line; `#` starts a comment:
//!
//! ```text
//! # pattern       next hop                     options
//! b.test          [127.0.0.3]:2525             tls=required
//! .corp.example   mail.corp.example:2525
//! legacy.example  [10.0.0.9]                   tls=none
//! gone.example    error:5.1.2 this domain moved to new.example
//! *               [smtp.provider.example]:587  tls=required auth=/etc/minimail/relay-auth
//! ```
//!
//! - pattern: a domain (exactly it), `.domain` (its subdomains, not the
//!   domain itself), or `*` (every domain no other line matches). The most
//!   specific line wins: the domain, then `.parent` patterns from the
//!   nearest parent up, then `*`.
//! - next hop: `[host]` or `[host]:port` connects to that host's
//!   addresses (no MX lookup; `host` may be an IP address); `host` or
//!   `host:port` delivers to `host`'s MX hosts (or its A/AAAA records
//!   without MX), as Postfix does without brackets; `mx` routes by the
//!   recipient domain's own MX records (to override only options);
//!   `error:TEXT` fails the recipients at once with TEXT (an RFC 3463 code
//!   first, else 5.0.0). Without a port: the MX port (`--mx-port`, 25).
//! - options: `tls=none|may|required` (no STARTTLS; opportunistic, the
//!   default; STARTTLS with a verified certificate for the host name, or
//!   no delivery), `auth=FILE` (one line `user:password`, AUTH for that
//!   hop only; as for `--relay-auth-file`).

use crate::client::TlsMode;
use std::path::Path;

/// Where a route sends mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextHop {
    /// The recipient domain's MX hosts.
    Mx,
    /// `[host]:port`: this host's addresses, no MX lookup.
    Host {
        /// Host name or IP address.
        host: String,
        /// Port, `None` for the MX port.
        port: Option<u16>,
    },
    /// `host:port`: the MX hosts of `domain`.
    MxOf {
        /// The domain whose MX records are used.
        domain: String,
        /// Port, `None` for the MX port.
        port: Option<u16>,
    },
    /// `error:text`: fail at once.
    Error(String),
}

/// One line of the map, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Where the mail goes.
    pub next: NextHop,
    /// TLS for this route, `None` for the engine's default.
    pub tls: Option<TlsMode>,
    /// AUTH credentials for this route.
    pub auth: Option<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Domain(String),
    Subdomains(String),
    Any,
}

/// The parsed map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransportMap {
    entries: Vec<(Pattern, Route)>,
}

impl TransportMap {
    /// Read and parse a map file. Errors name the file and line.
    ///
    /// # Errors
    /// Unreadable files, syntax errors, unreadable `auth=` files.
    pub fn load(path: &Path) -> Result<TransportMap, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        TransportMap::parse(&text, base).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parse map text; relative `auth=` paths are taken from `base`.
    ///
    /// # Errors
    /// The first bad line, by number.
    pub fn parse(text: &str, base: &Path) -> Result<TransportMap, String> {
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let entry = parse_line(line, base).map_err(|e| format!("line {}: {e}", n + 1))?;
            if entries.iter().any(|(p, _)| *p == entry.0) {
                return Err(format!(
                    "line {}: a second route for the same pattern",
                    n + 1
                ));
            }
            entries.push(entry);
        }
        Ok(TransportMap { entries })
    }

    /// True when the map has no routes.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The route for mail to `domain`, if a line matches.
    pub fn lookup(&self, domain: &str) -> Option<&Route> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let find = |want: &Pattern| self.entries.iter().find(|(p, _)| p == want).map(|(_, r)| r);
        if let Some(r) = find(&Pattern::Domain(domain.clone())) {
            return Some(r);
        }
        let mut rest = domain.as_str();
        while let Some((_, parent)) = rest.split_once('.') {
            if let Some(r) = find(&Pattern::Subdomains(parent.to_owned())) {
                return Some(r);
            }
            rest = parent;
        }
        find(&Pattern::Any)
    }
}

fn parse_line(line: &str, base: &Path) -> Result<(Pattern, Route), String> {
    let (pattern, rest) = line
        .split_once(char::is_whitespace)
        .ok_or("want: pattern next-hop [options]")?;
    let pattern = match pattern {
        "*" => Pattern::Any,
        p => {
            let (sub, name) = match p.strip_prefix('.') {
                Some(n) => (true, n),
                None => (false, p),
            };
            if !is_domain(name) {
                return Err(format!("{p:?} is not a domain, .domain or *"));
            }
            let name = name.to_ascii_lowercase();
            if sub {
                Pattern::Subdomains(name)
            } else {
                Pattern::Domain(name)
            }
        }
    };
    let rest = rest.trim_start();
    if let Some(text) = rest.strip_prefix("error:") {
        let text = text.trim();
        let text = if crate::dsn::status_of(text, true) == "5.0.0" && !text.starts_with("5.0.0") {
            format!("5.0.0 {text}")
        } else {
            text.to_owned()
        };
        if !text.starts_with('5') {
            return Err("error: wants a permanent (5.x.x) code or none".into());
        }
        return Ok((
            pattern,
            Route {
                next: NextHop::Error(text),
                tls: None,
                auth: None,
            },
        ));
    }
    let mut words = rest.split_whitespace();
    let hop = words.next().ok_or("no next hop")?;
    let next = next_hop(hop)?;
    let mut route = Route {
        next,
        tls: None,
        auth: None,
    };
    for opt in words {
        match opt.split_once('=') {
            Some(("tls", "none")) => route.tls = Some(TlsMode::None),
            Some(("tls", "may" | "opportunistic")) => route.tls = Some(TlsMode::Opportunistic),
            Some(("tls", "required" | "verify" | "secure")) => route.tls = Some(TlsMode::Required),
            Some(("auth", file)) => {
                let path = base.join(file);
                route.auth = Some(read_auth(&path)?);
            }
            _ => {
                return Err(format!(
                    "unknown option {opt:?} (want tls=none|may|required or auth=FILE)"
                ))
            }
        }
    }
    Ok((pattern, route))
}

fn next_hop(hop: &str) -> Result<NextHop, String> {
    if hop.eq_ignore_ascii_case("mx") {
        return Ok(NextHop::Mx);
    }
    let bad = || format!("{hop:?}: want [host]:port, host:port, mx or error:text");
    if let Some(rest) = hop.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        let port = match after {
            "" => None,
            p => Some(port(p.strip_prefix(':').ok_or_else(bad)?).ok_or_else(bad)?),
        };
        if host.parse::<std::net::IpAddr>().is_err() && !is_domain(host) {
            return Err(bad());
        }
        return Ok(NextHop::Host {
            host: host.to_owned(),
            port,
        });
    }
    let (domain, port) = match hop.rsplit_once(':') {
        Some((d, p)) => (d, Some(port(p).ok_or_else(bad)?)),
        None => (hop, None),
    };
    if !is_domain(domain) {
        return Err(bad());
    }
    Ok(NextHop::MxOf {
        domain: domain.to_ascii_lowercase(),
        port,
    })
}

fn port(p: &str) -> Option<u16> {
    p.parse::<u16>().ok().filter(|&p| p != 0)
}

fn is_domain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// One line `user:password` (as `--relay-auth-file`).
///
/// # Errors
/// An unreadable file or another shape.
pub fn read_auth(path: &Path) -> Result<(String, String), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let line = text.lines().next().unwrap_or("");
    match line.split_once(':') {
        Some((u, p)) if !u.is_empty() => Ok((u.to_owned(), p.to_owned())),
        _ => Err(format!("{}: want one line user:password", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(text: &str) -> TransportMap {
        TransportMap::parse(text, Path::new(".")).expect("parses")
    }

    #[test]
    fn the_most_specific_line_wins() {
        let m = map("# routes\n\
             b.test [127.0.0.3]:2525 tls=required\n\
             .corp.example mail.corp.example:2526  # MX of another name\n\
             .example [10.0.0.1]\n\
             gone.example error:5.1.2 moved away\n\
             *  [smtp.provider.example]:587\n");
        assert_eq!(
            m.lookup("B.Test.").map(|r| (&r.next, r.tls)),
            Some((
                &NextHop::Host {
                    host: "127.0.0.3".into(),
                    port: Some(2525)
                },
                Some(TlsMode::Required)
            ))
        );
        assert_eq!(
            m.lookup("a.b.corp.example").map(|r| &r.next),
            Some(&NextHop::MxOf {
                domain: "mail.corp.example".into(),
                port: Some(2526)
            })
        );
        // ".corp.example" is for subdomains; corp.example itself falls to
        // ".example".
        assert_eq!(
            m.lookup("corp.example").map(|r| &r.next),
            Some(&NextHop::Host {
                host: "10.0.0.1".into(),
                port: None
            })
        );
        assert_eq!(
            m.lookup("gone.example").map(|r| &r.next),
            Some(&NextHop::Error("5.1.2 moved away".into()))
        );
        assert_eq!(
            m.lookup("elsewhere.test").map(|r| &r.next),
            Some(&NextHop::Host {
                host: "smtp.provider.example".into(),
                port: Some(587)
            })
        );
        assert!(map("a.test mx tls=none\n").lookup("b.test").is_none());
        assert_eq!(
            map("a.test mx tls=none\n")
                .lookup("a.test")
                .map(|r| (&r.next, r.tls)),
            Some((&NextHop::Mx, Some(TlsMode::None)))
        );
        assert_eq!(
            map("x.test error:no mail here\n")
                .lookup("x.test")
                .map(|r| &r.next),
            Some(&NextHop::Error("5.0.0 no mail here".into()))
        );
    }

    #[test]
    fn bad_lines_are_refused_with_their_number() {
        for (text, want) in [
            ("a.test\n", "line 1"),
            ("\n\na.test [::1\n", "line 3"),
            ("a.test [h]:x\n", "line 1"),
            ("a.test [h]:0\n", "line 1"),
            ("a.test h:70000\n", "line 1"),
            ("a..test h\n", "line 1"),
            ("a.test h tls=maybe\n", "line 1"),
            ("a.test h auth=/nonexistent/file\n", "line 1"),
            ("a.test error:4.0.0 later\n", "line 1"),
            ("a.test h\nA.TEST k\n", "line 2"),
        ] {
            let err = TransportMap::parse(text, Path::new(".")).expect_err(text);
            assert!(err.starts_with(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn auth_files_are_read_relative_to_the_map() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("cred"), "u@x:p:w\n").expect("write");
        std::fs::write(dir.path().join("map"), "* [relay.test]:587 auth=cred\n").expect("write");
        let m = TransportMap::load(&dir.path().join("map")).expect("loads");
        assert_eq!(
            m.lookup("any.test").and_then(|r| r.auth.clone()),
            Some(("u@x".into(), "p:w".into()))
        );
    }
}
