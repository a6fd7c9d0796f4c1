//! The limits and timeouts of RFC 5321 §4.5.3 as defaults, and the timeout
//! settings the session applies.
//!
//! Size limits (§4.5.3.1): command lines 512 octets and text lines 1000
//! octets, both counting the CRLF; at least 100 recipients per message must
//! be accepted (we refuse the 101st with 452 4.5.3). The message size limit
//! is ours (advertised with SIZE, RFC 1870).
//!
//! Timeouts (§4.5.3.2) are written for the client; the server side is
//! §4.5.3.2.7: wait at least 5 minutes for the next command, and during
//! DATA the client has 3 minutes per data block (§4.5.3.2.5). Against a
//! client that trickles message content a byte at a time (each byte
//! resetting those timeouts), the content of one DATA or BDAT chunk must
//! also arrive within a total deadline (10 minutes: 25 MiB at ~350 kbit/s).
//!
//! AUTH (RFC 4954 §4) extends the command-line limit to 12288 octets for
//! the AUTH command and the SASL responses that follow it.
//!
//! Limits enforced by netloop and configured through [`Config::net`]:
//! connections in total and per client address (`max_connections`,
//! `max_per_ip`), buffered input per connection (`max_input`), and the
//! per-command deadline against clients trickling bytes (`command_timeout`,
//! default 2 minutes, under the 5 minutes of §4.5.3.2.7).
//!
//! [`Config`] gathers every setting of the receiver, these included.

use std::sync::Arc;
use std::time::Duration;

/// Longest command line, CRLF included (RFC 5321 §4.5.3.1.4).
pub const MAX_COMMAND_LINE: usize = 512;

/// Longest text line in DATA or BDAT, CRLF included. RFC 5321
/// §4.5.3.1.6 sets 1,000 octets as what every server must take, and
/// senders exceed it (a cron job's output through `msmtp -t`, minified
/// HTML): Postfix and Dovecot accept such lines, so we do too and store
/// them unchanged, up to this bound (`--max-text-line`). Lines are only
/// counted while reading, never buffered, so the bound costs no memory.
pub const MAX_TEXT_LINE: usize = 1 << 20;

/// Recipients accepted per message (RFC 5321 §4.5.3.1.8 minimum).
pub const MAX_RECIPIENTS: usize = 100;

/// Longest AUTH command line or SASL response line, CRLF included
/// (RFC 4954 §4).
pub const MAX_AUTH_LINE: usize = 12288;

/// Replies queued for a client that does not read them, past which the
/// session stops taking commands until they drain (memory per connection
/// stays bounded under a pipelined flood).
pub const MAX_PENDING_OUTPUT: usize = 64 * 1024;

/// Default connections from one non-local client address at once.
pub const MAX_PER_IP: usize = 20;

/// Default message size limit: 25 MiB.
pub const MAX_MESSAGE_SIZE: usize = 25 * 1024 * 1024;

/// How long the server waits for the client, per phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Waiting for the next command (§4.5.3.2.7): 5 minutes.
    pub command: Duration,
    /// Waiting for the next block of DATA or BDAT chunk bytes
    /// (§4.5.3.2.5): 3 minutes.
    pub data_block: Duration,
    /// The whole content of one DATA, or one BDAT chunk, must arrive
    /// within this: 10 minutes.
    pub data_total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            command: Duration::from_secs(5 * 60),
            data_block: Duration::from_secs(3 * 60),
            data_total: Duration::from_secs(10 * 60),
        }
    }
}

impl Timeouts {
    /// Every timeout set to `d` (handy for tests).
    pub fn all(d: Duration) -> Timeouts {
        Timeouts {
            command: d,
            data_block: d,
            data_total: d,
        }
    }
}

/// Everything the receiver can be configured with. `Default` gives the
/// RFC 5321 limits, a 25 MiB size limit and the domain `localhost`.
#[derive(Debug, Clone)]
pub struct Config {
    /// Our name, used in the greeting and in Received headers.
    pub hostname: String,
    /// Domains we accept mail for (case-insensitive). Everything else is
    /// refused with 550 5.7.1: this is no open relay.
    pub domains: Vec<String>,
    /// Largest message accepted, in octets (advertised as SIZE).
    pub max_message_size: usize,
    /// Recipients per message; the next one gets 452 4.5.3.
    pub max_recipients: usize,
    /// Longest command line, CRLF included.
    pub max_command_line: usize,
    /// Longest DATA text line, CRLF included.
    pub max_text_line: usize,
    /// How long to wait for the client.
    pub timeouts: Timeouts,
    /// Log every session's dialogue as `C:`/`S:` lines (info level).
    pub trace: bool,
    /// Allow AUTH PLAIN/LOGIN on unencrypted connections from non-local
    /// clients. Without it AUTH is advertised only over TLS or to local
    /// clients (`netloop::ConnInfo::is_local`), and refused with 538 5.7.11
    /// otherwise (RFC 4954 §4, §6).
    pub allow_plaintext_auth: bool,
    /// Failed-AUTH throttling per client address (share one with imapd).
    pub throttle: Arc<netloop::Throttle>,
    /// Accept mail from authenticated users to other domains into the
    /// store's outbound queue (a delivery engine sends it on). Off: such
    /// recipients get 550 5.7.1 "No outbound relay configured".
    pub outbound: bool,
    /// A submission server (RFC 6409 §4.3): MAIL needs AUTH first
    /// (530 5.7.0, RFC 4954 §6).
    pub submission: bool,
    /// DKIM keys: mail from an authenticated user of a domain with an
    /// active key is signed (RFC 6376) before it is stored or queued.
    pub dkim: Option<std::sync::Arc<mailauth::Signer>>,
    /// Check mail from unauthenticated clients (SPF, DKIM, ARC, DMARC)
    /// before it is stored: an Authentication-Results field is added and
    /// DMARC policies are applied (reject: 550 5.7.1, quarantine: Junk).
    pub verifier: Option<std::sync::Arc<mailauth::Verifier>>,
    /// What failed checks lead to, per receiving domain (refuse, Junk or
    /// note; `minimail up --auth-policy`).
    pub auth_policy: std::sync::Arc<mailauth::PolicyMap>,
    /// Sieve (RFC 5228): run each local recipient's active script on
    /// delivery (see filter.rs). `None`: plain INBOX delivery.
    pub sieve: Option<std::sync::Arc<mailsieve::Filter>>,
    /// Event loop settings: connection limits (total and per address),
    /// buffers, the slow-command deadline, TLS (`net.tls`), shutdown grace.
    pub net: netloop::Config,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            hostname: "localhost".into(),
            domains: vec!["localhost".into()],
            max_message_size: MAX_MESSAGE_SIZE,
            max_recipients: MAX_RECIPIENTS,
            max_command_line: MAX_COMMAND_LINE,
            max_text_line: MAX_TEXT_LINE,
            timeouts: Timeouts::default(),
            trace: false,
            outbound: false,
            submission: false,
            dkim: None,
            verifier: None,
            auth_policy: std::sync::Arc::default(),
            sieve: None,
            allow_plaintext_auth: false,
            throttle: netloop::Throttle::new(netloop::ThrottleConfig::default()),
            net: netloop::Config {
                max_per_ip: MAX_PER_IP,
                ..netloop::Config::default()
            },
        }
    }
}

impl Config {
    /// True if `domain` is one we receive mail for.
    pub fn is_local_domain(&self, domain: &str) -> bool {
        self.domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_rfc_5321() {
        let t = Timeouts::default();
        assert_eq!(t.command, Duration::from_secs(300));
        assert_eq!(t.data_block, Duration::from_secs(180));
        assert!(t.data_total > t.data_block);
        assert_eq!(
            Timeouts::all(Duration::from_secs(1)).command,
            Duration::from_secs(1)
        );
        let c = Config::default();
        assert!(!c.allow_plaintext_auth);
        assert!(c.net.tls.is_none());
        assert_eq!(c.net.max_per_ip, MAX_PER_IP);
        assert!(
            c.net.command_timeout <= t.command,
            "{:?}",
            c.net.command_timeout
        );
    }
}
