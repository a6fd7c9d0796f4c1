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
//! DATA the client has 3 minutes per data block (§4.5.3.2.5).

use std::time::Duration;

/// Longest command line, CRLF included (RFC 5321 §4.5.3.1.4).
pub const MAX_COMMAND_LINE: usize = 512;

/// Longest text line in DATA, CRLF included (RFC 5321 §4.5.3.1.6).
pub const MAX_TEXT_LINE: usize = 1000;

/// Recipients accepted per message (RFC 5321 §4.5.3.1.8 minimum).
pub const MAX_RECIPIENTS: usize = 100;

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
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            command: Duration::from_secs(5 * 60),
            data_block: Duration::from_secs(3 * 60),
        }
    }
}

impl Timeouts {
    /// Both timeouts set to `d` (handy for tests).
    pub fn all(d: Duration) -> Timeouts {
        Timeouts {
            command: d,
            data_block: d,
        }
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
        assert_eq!(
            Timeouts::all(Duration::from_secs(1)).command,
            Duration::from_secs(1)
        );
    }
}
