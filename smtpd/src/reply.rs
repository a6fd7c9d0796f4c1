//! SMTP replies (RFC 5321 §4.2) with enhanced status codes (RFC 2034,
//! RFC 3463, RFC 5248), and the wording of every reply the server sends,
//! those of STARTTLS (RFC 3207 §4) and AUTH (RFC 4954 §4, §6) included.
//!
//! A [`Reply`] is a code, an optional enhanced code and one or more text
//! lines; [`Reply::encode`] writes the multiline form of RFC 5321 §4.2.1
//! (`250-...` for all but the last line). Handlers build replies through the
//! named constructors here instead of scattering string literals, so the
//! sequence of codes RFC 5321 §4.3.2 prescribes is visible in one place.

use std::fmt;

/// One SMTP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit reply code.
    pub code: u16,
    /// The RFC 3463 enhanced code (`"5.1.1"`), shown on every line; `None`
    /// for the greeting, EHLO/HELO and 354 (RFC 2034 §3).
    pub enhanced: Option<&'static str>,
    /// The text lines; at least one.
    pub lines: Vec<String>,
}

impl Reply {
    /// A one-line reply.
    pub fn new(code: u16, enhanced: Option<&'static str>, text: impl Into<String>) -> Reply {
        Reply {
            code,
            enhanced,
            lines: vec![text.into()],
        }
    }

    /// A multiline reply.
    pub fn multi(code: u16, enhanced: Option<&'static str>, lines: Vec<String>) -> Reply {
        Reply {
            code,
            enhanced,
            lines,
        }
    }

    /// Append the wire form (CRLF line endings) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let n = self.lines.len().max(1);
        for i in 0..n {
            let text = self.lines.get(i).map(String::as_str).unwrap_or("");
            let sep = if i + 1 < n { '-' } else { ' ' };
            out.extend_from_slice(format!("{}{}", self.code, sep).as_bytes());
            if let Some(e) = self.enhanced {
                out.extend_from_slice(e.as_bytes());
                if !text.is_empty() {
                    out.push(b' ');
                }
            }
            out.extend_from_slice(text.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The wire form as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }

    /// True for 2xx and 3xx replies.
    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    // --- greeting and goodbye (RFC 5321 §4.2, §3.8) ---

    /// `220 host ESMTP minimail ready`
    pub fn greeting(hostname: &str) -> Reply {
        Reply::new(220, None, format!("{hostname} ESMTP minimail ready"))
    }

    /// `221 2.0.0 host closing connection`
    pub fn closing(hostname: &str) -> Reply {
        Reply::new(221, Some("2.0.0"), format!("{hostname} closing connection"))
    }

    /// `421 4.3.2` the server is shutting down.
    pub fn shutting_down(hostname: &str) -> Reply {
        Reply::new(
            421,
            Some("4.3.2"),
            format!("{hostname} Service shutting down, closing transmission channel"),
        )
    }

    /// `421 4.4.2` nothing arrived in time (RFC 5321 §4.5.3.2).
    pub fn timeout(hostname: &str) -> Reply {
        Reply::new(
            421,
            Some("4.4.2"),
            format!("{hostname} Timeout exceeded, closing transmission channel"),
        )
    }

    /// `421 4.7.0` connection limit reached.
    pub fn too_many_connections(hostname: &str) -> Reply {
        Reply::new(
            421,
            Some("4.7.0"),
            format!("{hostname} Too many connections, try again later"),
        )
    }

    // --- positive completions ---

    /// `250 2.0.0 OK`
    pub fn ok() -> Reply {
        Reply::new(250, Some("2.0.0"), "OK")
    }

    /// `250 2.1.0` sender accepted.
    pub fn sender_ok() -> Reply {
        Reply::new(250, Some("2.1.0"), "Sender OK")
    }

    /// `250 2.1.5` recipient accepted.
    pub fn recipient_ok() -> Reply {
        Reply::new(250, Some("2.1.5"), "Recipient OK")
    }

    /// `250 2.0.0` message committed to disk.
    pub fn queued(id: &str) -> Reply {
        Reply::new(250, Some("2.0.0"), format!("OK: message {id} delivered"))
    }

    /// `250 2.0.0` one BDAT chunk received.
    pub fn chunk_ok(n: u64) -> Reply {
        Reply::new(250, Some("2.0.0"), format!("{n} octets received"))
    }

    /// `252 2.0.0` VRFY: we do not confirm addresses.
    pub fn cannot_vrfy() -> Reply {
        Reply::new(
            252,
            Some("2.0.0"),
            "Cannot VRFY user, but will accept message and attempt delivery",
        )
    }

    /// `354` go ahead with DATA.
    pub fn start_data() -> Reply {
        Reply::new(354, None, "Start mail input; end with <CRLF>.<CRLF>")
    }

    /// `214` the HELP text.
    pub fn help() -> Reply {
        Reply::multi(
            214,
            Some("2.0.0"),
            vec![
                "Commands supported:".into(),
                "EHLO HELO STARTTLS AUTH MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP".into(),
                "A session: EHLO name / MAIL FROM:<you@host> / RCPT TO:<user@domain> /".into(),
                "DATA, then the message, then a line with a single dot / QUIT".into(),
                "End of HELP info".into(),
            ],
        )
    }

    // --- sequence and syntax errors (RFC 5321 §4.3.2, §4.2.4) ---

    /// `503 5.5.1` bad sequence of commands, with the reason.
    pub fn bad_sequence(why: &str) -> Reply {
        Reply::new(
            503,
            Some("5.5.1"),
            format!("Bad sequence of commands: {why}"),
        )
    }

    /// `500 5.5.2` command not recognised.
    pub fn unrecognized() -> Reply {
        Reply::new(500, Some("5.5.2"), "Syntax error, command unrecognized")
    }

    /// `500 5.5.2` command or text line too long (RFC 5321 §4.5.3.1.4/6).
    pub fn line_too_long(limit: usize) -> Reply {
        Reply::new(
            500,
            Some("5.5.2"),
            format!("Line too long (limit {limit} octets including CRLF)"),
        )
    }

    /// `500 5.5.2` a DATA text line exceeded the limit; nothing delivered.
    pub fn text_line_too_long(limit: usize) -> Reply {
        Reply::new(
            500,
            Some("5.5.2"),
            format!("Line too long (limit {limit} octets including CRLF); message not delivered"),
        )
    }

    /// `501` syntax error in arguments, with the expected form.
    pub fn syntax(enhanced: &'static str, usage: &str) -> Reply {
        Reply::new(501, Some(enhanced), format!("Syntax error: {usage}"))
    }

    /// `502 5.5.1` a command we know but do not implement.
    pub fn not_implemented(verb: &str) -> Reply {
        Reply::new(502, Some("5.5.1"), format!("{verb} not implemented"))
    }

    /// `555 5.5.4` MAIL/RCPT parameter not recognised (RFC 5321 §4.1.1.11).
    pub fn unknown_parameter(keyword: &str) -> Reply {
        Reply::new(
            555,
            Some("5.5.4"),
            format!("MAIL FROM/RCPT TO parameter {keyword} not recognized or not implemented"),
        )
    }

    // --- policy and resources ---

    /// `552 5.3.4` message bigger than SIZE (RFC 1870).
    pub fn too_big(limit: usize) -> Reply {
        Reply::new(
            552,
            Some("5.3.4"),
            format!("Message size exceeds fixed maximum message size ({limit} octets)"),
        )
    }

    /// `452 4.2.2` the recipient's mailbox is full (RFC 3463 X.2.2:
    /// "Mailbox full", temporary: it may fit once mail is deleted; RFC
    /// 5321 §4.5.3.1.10 452 for RCPT "too much mail data").
    pub fn mailbox_full(addr: &str) -> Reply {
        Reply::new(
            452,
            Some("4.2.2"),
            format!("<{addr}>: mailbox full (over quota), try again later"),
        )
    }

    /// `552 5.2.2` the message is larger than the recipient's whole quota
    /// (RFC 3463 X.2.2; RFC 1870 §6: 552 when it can never fit).
    pub fn over_quota(addr: &str) -> Reply {
        Reply::new(
            552,
            Some("5.2.2"),
            format!("<{addr}>: message exceeds the mailbox's quota"),
        )
    }

    /// `550 5.1.1` no such user here.
    pub fn unknown_user(addr: &str) -> Reply {
        Reply::new(550, Some("5.1.1"), format!("<{addr}>: no such user here"))
    }

    /// `550 5.7.1` the recipient's Sieve script rejected the message (RFC
    /// 5429 §2.1), with the script's reason on one line.
    pub fn sieve_reject(why: &str) -> Reply {
        let why: String = why
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .filter(|c| !c.is_control())
            .take(400)
            .collect();
        Reply::new(550, Some("5.7.1"), format!("Rejected: {why}"))
    }

    /// `550 5.4.6` the recipient's aliases loop or expand past their
    /// bounds (RFC 3463 X.4.6, routing loop detected).
    pub fn alias_refused(addr: &str, why: &str) -> Reply {
        Reply::new(550, Some("5.4.6"), format!("<{addr}>: {why}"))
    }

    /// `550 5.7.1` not a domain we receive mail for; we are no open relay.
    pub fn relay_denied(addr: &str) -> Reply {
        Reply::new(550, Some("5.7.1"), format!("<{addr}>: relay access denied"))
    }

    /// `530 5.7.0` MAIL on a submission port before AUTH (RFC 4954 §6).
    pub fn auth_required() -> Reply {
        Reply::new(530, Some("5.7.0"), "Authentication required")
    }

    /// `550 5.7.1` an authenticated client wrote to a foreign domain: we
    /// deliver locally only.
    pub fn no_outbound_relay(domain: &str) -> Reply {
        Reply::new(
            550,
            Some("5.7.1"),
            format!("No outbound relay configured: cannot deliver to {domain}"),
        )
    }

    /// `550 5.7.1` MAIL FROM (or the header From) is not an address of the
    /// authenticated user.
    pub fn sender_not_owned() -> Reply {
        Reply::new(
            550,
            Some("5.7.1"),
            "Sender address not owned by the authenticated user",
        )
    }

    /// `550 5.7.1` the message's From header names someone else (or no one).
    pub fn header_from_not_owned(why: &str) -> Reply {
        Reply::new(
            550,
            Some("5.7.1"),
            format!(
                "{why}: From header not owned by the authenticated user; message not delivered"
            ),
        )
    }

    // --- STARTTLS (RFC 3207 §4) ---

    /// `220 2.0.0 Ready to start TLS`
    pub fn ready_for_tls() -> Reply {
        Reply::new(220, Some("2.0.0"), "Ready to start TLS")
    }

    /// `503 5.5.1` STARTTLS on a connection that is already encrypted.
    pub fn tls_already_active() -> Reply {
        Reply::new(503, Some("5.5.1"), "TLS already active")
    }

    /// `502 5.5.1` STARTTLS with no certificate configured.
    pub fn tls_unavailable() -> Reply {
        Reply::new(
            502,
            Some("5.5.1"),
            "STARTTLS not available: no certificate configured",
        )
    }

    // --- AUTH (RFC 4954 §4, §6) ---

    /// `334 challenge`: the base64 server challenge (empty for PLAIN).
    /// No enhanced code: the text is SASL data (RFC 4954 §4).
    pub fn auth_challenge(base64: &str) -> Reply {
        Reply::new(334, None, base64)
    }

    /// `235 2.7.0 Authentication successful`
    pub fn auth_ok() -> Reply {
        Reply::new(235, Some("2.7.0"), "Authentication successful")
    }

    /// `535 5.7.8 Authentication credentials invalid`
    pub fn auth_failed() -> Reply {
        Reply::new(535, Some("5.7.8"), "Authentication credentials invalid")
    }

    /// `454 4.7.0` the client address failed too often; try later.
    pub fn auth_throttled() -> Reply {
        Reply::new(
            454,
            Some("4.7.0"),
            "Too many failed authentication attempts, try again later",
        )
    }

    /// `454 4.7.0 Temporary authentication failure` (the store failed).
    pub fn auth_temporary_failure() -> Reply {
        Reply::new(454, Some("4.7.0"), "Temporary authentication failure")
    }

    /// `538 5.7.11` plaintext mechanism on an unencrypted, non-local
    /// connection.
    pub fn encryption_required() -> Reply {
        Reply::new(
            538,
            Some("5.7.11"),
            "Encryption required for requested authentication mechanism",
        )
    }

    /// `504 5.5.4` a SASL mechanism we do not offer.
    pub fn unknown_mechanism(mech: &str) -> Reply {
        Reply::new(
            504,
            Some("5.5.4"),
            format!("Unrecognized authentication type {mech}; use PLAIN or LOGIN"),
        )
    }

    /// `501 5.7.0` the client cancelled the exchange with `*`
    /// (RFC 4954 §6: "Client initiated Authentication Exchange").
    pub fn auth_cancelled() -> Reply {
        Reply::new(501, Some("5.7.0"), "Authentication cancelled")
    }

    /// `501 5.5.2` a SASL response that is not valid base64 (RFC 4954 §6).
    pub fn auth_bad_base64() -> Reply {
        Reply::new(501, Some("5.5.2"), "Cannot decode base64 response")
    }

    /// `500 5.5.6` a SASL response over 12288 octets (RFC 4954 §4, §6).
    pub fn auth_line_too_long() -> Reply {
        Reply::new(
            500,
            Some("5.5.6"),
            "Authentication Exchange line is too long",
        )
    }

    /// `501 5.5.2` a decoded SASL response that does not follow the
    /// mechanism's syntax (PLAIN: `authzid NUL authcid NUL passwd`).
    pub fn auth_malformed(mech: &str) -> Reply {
        Reply::new(501, Some("5.5.2"), format!("Malformed {mech} response"))
    }

    /// `452 4.5.3` too many recipients (RFC 5321 §4.5.3.1.10).
    pub fn too_many_recipients(limit: usize) -> Reply {
        Reply::new(
            452,
            Some("4.5.3"),
            format!("Too many recipients (at most {limit} per message)"),
        )
    }

    /// `554 5.5.1` DATA/BDAT with no accepted recipient (RFC 2920 §3.1).
    pub fn no_valid_recipients() -> Reply {
        Reply::new(554, Some("5.5.1"), "No valid recipients")
    }

    /// `553 5.6.7` a non-ASCII address without SMTPUTF8 (RFC 6531 §3.5).
    pub fn utf8_needs_smtputf8() -> Reply {
        Reply::new(
            553,
            Some("5.6.7"),
            "Non-ASCII address requires the SMTPUTF8 parameter on MAIL",
        )
    }

    /// `452 4.3.1` no room to store the message: the disk (or the store's
    /// page limit) is full. RFC 5321 §4.2.3 "452 Requested action not
    /// taken: insufficient system storage"; RFC 3463 X.3.1 "Mail system
    /// full", a persistent transient error: the sender keeps the message
    /// and retries later.
    pub fn insufficient_storage() -> Reply {
        Reply::new(
            452,
            Some("4.3.1"),
            "Insufficient system storage; message not delivered, try again later",
        )
    }

    /// 451 4.3.0: the mail store's database server is out of reach
    /// (PostgreSQL restarting, the network); nothing was stored, the
    /// client should retry (RFC 5321 §4.2.5, RFC 3463 X.3.0).
    pub fn store_unavailable() -> Reply {
        Reply::new(
            451,
            Some("4.3.0"),
            "Requested action aborted: mail store temporarily unavailable, message not delivered; try again later",
        )
    }

    /// `451 4.3.0` the mail store is damaged and refuses every write, so
    /// nothing is acknowledged that it might not give back; the sender
    /// keeps the message and retries (RFC 5321 §4.2.3 451 "local error in
    /// processing"; RFC 3463 X.3.0 "Other or undefined mail system status").
    pub fn store_damaged() -> Reply {
        Reply::new(
            451,
            Some("4.3.0"),
            "Requested action aborted: mail store damaged, message not delivered; try again later",
        )
    }

    /// `451 4.3.0` the store failed; try again later.
    /// 550 5.7.1: the sender domain's DMARC policy says reject (RFC 7489
    /// §6.6.4, RFC 7372 §3.2), or 550 5.7.23: SPF failed and the policy
    /// refuses that (RFC 7372 §3.2); `why` is the policy's text, starting
    /// with the enhanced code.
    pub fn dmarc_reject(why: &str) -> Reply {
        for code in ["5.7.1", "5.7.23"] {
            if let Some(text) = why.strip_prefix(code).and_then(|t| t.strip_prefix(' ')) {
                return Reply::new(550, Some(code), text.to_owned());
            }
        }
        Reply::new(550, Some("5.7.1"), why.to_owned())
    }

    pub fn local_error() -> Reply {
        Reply::new(
            451,
            Some("4.3.0"),
            "Requested action aborted: local error in processing",
        )
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line_encoding() {
        assert_eq!(Reply::ok().to_bytes(), b"250 2.0.0 OK\r\n");
        assert_eq!(
            Reply::greeting("mx").to_bytes(),
            b"220 mx ESMTP minimail ready\r\n"
        );
        assert_eq!(
            Reply::start_data().to_bytes(),
            b"354 Start mail input; end with <CRLF>.<CRLF>\r\n"
        );
    }

    #[test]
    fn multiline_encoding_marks_all_but_last_line() {
        let r = Reply::multi(
            250,
            None,
            vec!["mx".into(), "PIPELINING".into(), "SIZE 10".into()],
        );
        assert_eq!(r.to_bytes(), b"250-mx\r\n250-PIPELINING\r\n250 SIZE 10\r\n");
        let h = String::from_utf8(Reply::help().to_bytes()).unwrap();
        let lines: Vec<&str> = h.split_terminator("\r\n").collect();
        assert!(lines.len() > 2);
        assert!(lines[..lines.len() - 1]
            .iter()
            .all(|l| l.starts_with("214-2.0.0 ")));
        assert!(lines[lines.len() - 1].starts_with("214 2.0.0 "));
        assert!(h.contains("BDAT"));
    }

    #[test]
    fn codes_match_rfc_classes() {
        assert_eq!(Reply::bad_sequence("x").code, 503);
        assert_eq!(Reply::unknown_parameter("X").code, 555);
        assert_eq!(Reply::too_big(1).code, 552);
        assert_eq!(Reply::unknown_user("a@b").enhanced, Some("5.1.1"));
        assert_eq!(Reply::relay_denied("a@b").enhanced, Some("5.7.1"));
        assert_eq!(Reply::too_many_recipients(100).code, 452);
        assert!(Reply::shutting_down("h")
            .to_string()
            .starts_with("421 4.3.2 "));
        assert!(!Reply::local_error().is_positive());
        assert_eq!(Reply::auth_challenge("").to_bytes(), b"334 \r\n");
        assert_eq!(
            Reply::auth_ok().to_bytes(),
            b"235 2.7.0 Authentication successful\r\n"
        );
        assert_eq!(
            Reply::ready_for_tls().to_bytes(),
            b"220 2.0.0 Ready to start TLS\r\n"
        );
        assert!(Reply::encryption_required()
            .to_string()
            .starts_with("538 5.7.11 "));
        assert!(Reply::no_outbound_relay("example.org")
            .to_string()
            .starts_with("550 5.7.1 No outbound relay configured: cannot deliver to example.org"));
        assert!(Reply::start_data().is_positive());
    }
}
