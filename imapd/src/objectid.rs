//! Object identifiers (OBJECTID, RFC 8474): how store ids become the
//! `objectid` strings clients see, and back. No protocol syntax beyond
//! the `objectid` rule, no store access.
//!
//! ```text
//! objectid = 1*255(ALPHA / DIGIT / "_" / "-")   ; RFC 8474 §7
//! ```
//!
//! - MAILBOXID (§4): `F<row id>-<uidvalidity>`. The row keeps its id and
//!   UIDVALIDITY through RENAME; a mailbox created anew (even under an
//!   old name, or in a reused row) gets a fresh UIDVALIDITY from the
//!   store's global counter, so an id never names two mailboxes.
//! - EMAILID (§5.1): `M<message id>`. One stored message is shared by
//!   every entry that holds it (delivery to several mailboxes, COPY,
//!   MOVE), so copies share the EMAILID (§5.1 allows it); the store never
//!   reuses a message id (schema v10).
//! - THREADID (§5.2): `T<thread>`. The store decides a message's thread
//!   when it is stored, by Message-ID/In-Reply-To/References (mailstore's
//!   `threads.rs`), and keeps it in the message row, so it is the same in
//!   every mailbox and through COPY, MOVE and RENAME.

use mailstore::{MailboxId, MessageId};

/// The MAILBOXID of a mailbox row with its UIDVALIDITY.
pub fn mailbox(id: MailboxId, uidvalidity: u32) -> String {
    format!("F{id}-{uidvalidity}")
}

/// The EMAILID of a stored message.
pub fn email(id: MessageId) -> String {
    format!("M{id}")
}

/// The stored message an EMAILID names, if it is one of ours.
pub fn parse_email(objectid: &str) -> Option<MessageId> {
    let digits = objectid.strip_prefix('M')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The THREADID of a stored thread.
pub fn thread(id: i64) -> String {
    format!("T{id}")
}

/// The thread a THREADID names, if it is one of ours.
pub fn parse_thread(objectid: &str) -> Option<i64> {
    let digits = objectid.strip_prefix('T')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Whether `s` is an `objectid` (RFC 8474 §7).
pub fn is_objectid(s: &[u8]) -> bool {
    (1..=255).contains(&s.len())
        && s.iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_are_objectids() {
        assert_eq!(parse_email(&email(42)), Some(42));
        assert_eq!(parse_thread(&thread(42)), Some(42));
        assert_eq!(parse_thread(&email(42)), None);
        assert_eq!(parse_email(&thread(42)), None);
        assert!(is_objectid(thread(42).as_bytes()));
        assert!(is_objectid(email(42).as_bytes()));
        assert!(is_objectid(mailbox(7, 1_700_000_000).as_bytes()));
        for bad in [
            "",
            "M",
            "m1",
            "M1x",
            "F1-2",
            "M-1",
            "M99999999999999999999999",
        ] {
            assert_eq!(parse_email(bad), None, "{bad}");
        }
        assert!(!is_objectid(b""));
        assert!(!is_objectid(b"a b"));
        assert!(!is_objectid(&[b'a'; 256]));
    }
}
