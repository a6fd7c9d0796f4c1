//! Checking mail that arrives from other hosts: SPF (RFC 7208) of the
//! HELO and MAIL FROM identities, DKIM signatures (RFC 6376), ARC chains
//! (RFC 8617) and DMARC (RFC 7489) alignment and policy, recorded as an
//! `Authentication-Results:` header field (RFC 8601) and turned into a
//! disposition: accept, quarantine (the Junk mailbox) or reject (`550
//! 5.7.1` at the end of DATA).
//!
//! The checks run on a small tokio runtime of their own; [`Verifier::spawn`]
//! calls back from it, so an SMTP session on an event loop only waits for
//! a completion. Every check is bounded by [`Verifier`]'s timeout (DNS
//! timeouts give `temperror`, and the message is accepted), and mail-auth
//! enforces RFC 7208 §4.6.4's lookup limits (`permerror`).

use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::dmarc::Policy;
use mail_auth::hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{AuthenticatedMessage, AuthenticationResults, DmarcResult, MessageAuthenticator};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::Error;

/// What to do with a checked message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Deliver to the INBOX.
    Accept,
    /// Deliver to the Junk mailbox (DMARC `p=quarantine` failed).
    Quarantine,
    /// Refuse with `550 5.7.1` and this text (DMARC `p=reject` failed).
    Reject(String),
}

/// The policy a failing sender's domain publishes (RFC 7489 §6.3 `p=`/`sp=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// `p=reject`.
    Reject,
    /// `p=quarantine`.
    Quarantine,
}

/// The failures a policy acts on (see [`crate::policy`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    /// DMARC failed, and the domain's policy asks for this (None: passed,
    /// no policy, or `p=none`).
    pub dmarc_fail: Option<Published>,
    /// The RFC5322.From domain DMARC was evaluated for.
    pub dmarc_domain: String,
    /// SPF said `fail` for the MAIL FROM (or HELO) identity.
    pub spf_fail: bool,
    /// The domain SPF was checked for.
    pub spf_domain: String,
    /// The client's address.
    pub ip: String,
}

/// The outcome of the checks.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The `Authentication-Results:` field to prepend, with its CRLF.
    pub header: String,
    /// What to do under the default policy (see [`crate::policy`];
    /// `minimail up --auth-policy` decides with [`Verdict::findings`]).
    pub disposition: Disposition,
    /// What failed.
    pub findings: Findings,
    /// One line for the log: `spf=pass dkim=pass dmarc=pass`.
    pub summary: String,
}

/// What a message is checked against: who sent it, from where.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The connecting client's address.
    pub ip: IpAddr,
    /// The name it gave in EHLO/HELO.
    pub helo: String,
    /// The MAIL FROM address ("" for the null sender).
    pub mail_from: String,
}

/// The checker; cheap to share (`Arc`).
pub struct Verifier {
    auth: Arc<MessageAuthenticator>,
    runtime: tokio::runtime::Runtime,
    authserv_id: String,
    timeout: Duration,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("authserv_id", &self.authserv_id)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Verifier {
    /// A checker naming itself `authserv_id` (our host name) in the
    /// results, asking `dns` (or /etc/resolv.conf's servers), giving up
    /// on a message's checks after `timeout`.
    ///
    /// # Errors
    /// The runtime or resolver cannot be set up.
    pub fn new(
        authserv_id: &str,
        dns: Option<SocketAddr>,
        timeout: Duration,
    ) -> Result<Verifier, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("mailauth")
            .enable_all()
            .build()
            .map_err(|e| Error::Dkim(format!("runtime: {e}")))?;
        let auth = {
            let _guard = runtime.enter();
            match dns {
                Some(addr) => {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = addr.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = addr.port();
                    let server = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                    let mut opts = ResolverOpts::default();
                    opts.use_hosts_file = ResolveHosts::Never;
                    opts.timeout = timeout / 3;
                    opts.attempts = 2;
                    MessageAuthenticator::new(ResolverConfig::from_name_servers(vec![server]), opts)
                }
                None => MessageAuthenticator::new_system_conf(),
            }
            .map_err(|e| Error::Dkim(format!("resolver: {e}")))?
        };
        Ok(Verifier {
            auth: Arc::new(auth),
            runtime,
            authserv_id: authserv_id.to_owned(),
            timeout,
        })
    }

    /// Check `raw` and call `done` with the verdict and `raw` itself
    /// (handed back, not copied), from the checker's own thread.
    pub fn spawn(
        &self,
        raw: Vec<u8>,
        env: Envelope,
        done: impl FnOnce(Verdict, Vec<u8>) + Send + 'static,
    ) {
        let auth = Arc::clone(&self.auth);
        let id = self.authserv_id.clone();
        let timeout = self.timeout;
        self.runtime.spawn(async move {
            let verdict = match tokio::time::timeout(timeout, check(&auth, &id, &raw, &env)).await {
                Ok(v) => v,
                Err(_) => timed_out(&id, timeout),
            };
            done(verdict, raw);
        });
    }

    /// [`Verifier::spawn`], waiting for the verdict (tests, tools).
    pub fn check(&self, raw: &[u8], env: &Envelope) -> Verdict {
        let fut = check(&self.auth, &self.authserv_id, raw, env);
        self.runtime.block_on(async {
            tokio::time::timeout(self.timeout, fut)
                .await
                .unwrap_or_else(|_| timed_out(&self.authserv_id, self.timeout))
        })
    }
}

fn timed_out(id: &str, timeout: Duration) -> Verdict {
    Verdict {
        header: format!(
            "Authentication-Results: {id};\r\n\tdmarc=temperror reason=\"checks took longer than {} s\"\r\n",
            timeout.as_secs()
        ),
        disposition: Disposition::Accept,
        summary: "dmarc=temperror (timeout)".into(),
        findings: Findings::default(),
    }
}

fn domain_of(addr: &str) -> &str {
    addr.rsplit_once('@').map_or("", |(_, d)| d)
}

/// Signatures checked per message; the rest are ignored (each may cost a
/// DNS lookup, and a message can carry any number).
pub const MAX_SIGNATURES: usize = 10;

async fn check(auth: &MessageAuthenticator, id: &str, raw: &[u8], env: &Envelope) -> Verdict {
    let limited = drop_fields_after(raw, b"dkim-signature:", MAX_SIGNATURES);
    let raw: &[u8] = &limited;
    let Some(msg) = AuthenticatedMessage::parse(raw) else {
        return Verdict {
            header: format!(
                "Authentication-Results: {id};\r\n\tdkim=permerror reason=\"unparsable message\"\r\n"
            ),
            disposition: Disposition::Accept,
            summary: "unparsable message".into(),
            findings: Findings::default(),
        };
    };
    let helo = env.helo.trim_matches(['[', ']']);
    let spf = auth
        .verify_spf(SpfParameters::verify(env.ip, helo, id, &env.mail_from))
        .await;
    let dkim = auth.verify_dkim(&msg).await;
    let arc = auth.verify_arc(&msg).await;
    let mail_from_domain = match domain_of(&env.mail_from) {
        "" => helo,
        d => d,
    };
    let dmarc = auth
        .verify_dmarc(DmarcParameters::new(&msg, &dkim, mail_from_domain, &spf))
        .await;
    let header_from = msg.from();
    let results = AuthenticationResults::new(id)
        .with_dkim_results(&dkim, header_from)
        .with_spf_mailfrom_result(&spf, env.ip, &env.mail_from, helo)
        .with_arc_result(&arc, env.ip)
        .with_dmarc_result(&dmarc);
    let dmarc_result = dmarc.result();
    let findings = Findings {
        dmarc_fail: match (&dmarc_result, dmarc.policy()) {
            (DmarcResult::Fail(_), Policy::Reject) => Some(Published::Reject),
            (DmarcResult::Fail(_), Policy::Quarantine) => Some(Published::Quarantine),
            _ => None,
        },
        dmarc_domain: dmarc.domain().to_owned(),
        spf_fail: spf.result() == mail_auth::SpfResult::Fail,
        spf_domain: mail_from_domain.to_owned(),
        ip: env.ip.to_string(),
    };
    let word = |s: String| s.split_whitespace().next().unwrap_or("").to_owned();
    // RFC 6376 §6.1.3: a body hash that does not verify is PERMFAIL, i.e.
    // "fail" (RFC 8601 §2.7.1); mail-auth reports it as "neutral".
    let mut header = format!("Authentication-Results: {results}\r\n").replace(
        "dkim=neutral (body hash did not verify)",
        "dkim=fail (body hash did not verify)",
    );
    // Signatures mail-auth could not even parse leave no result of their
    // own; RFC 8601 §2.7.1 calls them permerror.
    let signatures = msg
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(b"DKIM-Signature"))
        .count();
    if dkim.len() < signatures {
        let at = format!("Authentication-Results: {id};").len();
        if header.len() >= at {
            header.insert_str(
                at,
                "\r\n\tdkim=permerror reason=\"malformed DKIM-Signature\";",
            );
        }
    }
    let summary = ["dkim=", "spf=", "arc=", "dmarc="]
        .iter()
        .filter_map(|k| {
            header
                .split(k)
                .nth(1)
                .map(|rest| format!("{k}{}", word(rest.to_owned())))
        })
        .collect::<Vec<_>>()
        .join(" ");
    let mut verdict = Verdict {
        header,
        disposition: Disposition::Accept,
        summary,
        findings,
    };
    verdict.disposition = crate::policy::PolicyMap::default().decide(&verdict, ["*"]);
    verdict
}

/// `raw` without `Authentication-Results:` header fields that claim to
/// come from `authserv_id` (RFC 8601 §5: a forged verdict in our name must
/// not survive), up to the end of the header. Field names are matched
/// case-insensitively, continuation lines go with their field.
pub fn strip_forged_results(raw: &[u8], authserv_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    let mut dropping = false;
    while i < raw.len() {
        let end = raw[i..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |p| i + p + 1);
        let line = &raw[i..end];
        if line == b"\r\n" || line == b"\n" {
            out.extend_from_slice(&raw[i..]);
            return out;
        }
        let continuation = line.first().is_some_and(|&b| b == b' ' || b == b'\t');
        if !continuation {
            dropping = is_our_result(line, authserv_id);
        }
        if !dropping {
            out.extend_from_slice(line);
        }
        i = end;
    }
    out
}

/// `raw` with the header fields named `name` (lower case, with its
/// colon) after the first `keep` left out.
fn drop_fields_after<'a>(raw: &'a [u8], name: &[u8], keep: usize) -> std::borrow::Cow<'a, [u8]> {
    let starts =
        |line: &[u8]| line.len() >= name.len() && line[..name.len()].eq_ignore_ascii_case(name);
    let mut seen = 0;
    let mut out: Option<Vec<u8>> = None;
    let mut i = 0;
    let mut dropping = false;
    while i < raw.len() {
        let end = raw[i..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |p| i + p + 1);
        let line = &raw[i..end];
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if !line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            dropping = starts(line) && {
                seen += 1;
                seen > keep
            };
            if dropping && out.is_none() {
                out = Some(raw[..i].to_vec());
            }
        }
        if let Some(o) = out.as_mut() {
            if !dropping {
                o.extend_from_slice(line);
            }
        }
        i = end;
    }
    match out {
        Some(mut o) => {
            o.extend_from_slice(&raw[i..]);
            std::borrow::Cow::Owned(o)
        }
        None => std::borrow::Cow::Borrowed(raw),
    }
}

fn is_our_result(line: &[u8], authserv_id: &str) -> bool {
    const NAME: &[u8] = b"authentication-results:";
    if line.len() < NAME.len() || !line[..NAME.len()].eq_ignore_ascii_case(NAME) {
        return false;
    }
    let value = String::from_utf8_lossy(&line[NAME.len()..]);
    let id = value
        .trim_start()
        .split([';', ' ', '\t', '\r', '\n'])
        .next()
        .unwrap_or("");
    id.eq_ignore_ascii_case(authserv_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_past_the_limit_are_left_out() {
        let raw = b"DKIM-Signature: 1\r\n\tfolded\r\nX: a\r\ndkim-signature: 2\r\nDKIM-Signature: 3\r\n x\r\nSubject: s\r\n\r\nDKIM-Signature: body\r\n";
        let out = drop_fields_after(raw, b"dkim-signature:", 2);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "DKIM-Signature: 1\r\n\tfolded\r\nX: a\r\ndkim-signature: 2\r\nSubject: s\r\n\r\nDKIM-Signature: body\r\n"
        );
        assert!(matches!(
            drop_fields_after(raw, b"dkim-signature:", 3),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn forged_results_in_our_name_are_removed_others_kept() {
        let raw = b"Received: x\r\n\
            Authentication-Results: mx.a.test;\r\n\tdkim=pass header.d=evil.test\r\n\
            authentication-results: MX.A.TEST; spf=pass\r\n\
            Authentication-Results: mx.other.test; dkim=fail\r\n\
            Subject: hi\r\n\
            \r\n\
            Authentication-Results: mx.a.test; in the body stays\r\n";
        let out = String::from_utf8(strip_forged_results(raw, "mx.a.test")).unwrap_or_default();
        assert_eq!(
            out,
            "Received: x\r\n\
             Authentication-Results: mx.other.test; dkim=fail\r\n\
             Subject: hi\r\n\
             \r\n\
             Authentication-Results: mx.a.test; in the body stays\r\n"
        );
    }
}
