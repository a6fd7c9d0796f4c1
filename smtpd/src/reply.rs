//! SMTP replies (RFC 5321 §4.2) with enhanced status codes (RFC 2034,
//! RFC 3463), and the wording of every reply the server sends.
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
                "EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP".into(),
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

    /// `550 5.1.1` no such user here.
    pub fn unknown_user(addr: &str) -> Reply {
        Reply::new(550, Some("5.1.1"), format!("<{addr}>: no such user here"))
    }

    /// `550 5.7.1` not a domain we receive mail for; we are no open relay.
    pub fn relay_denied(addr: &str) -> Reply {
        Reply::new(550, Some("5.7.1"), format!("<{addr}>: relay access denied"))
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

    /// `451 4.3.0` the store failed; try again later.
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
        assert!(Reply::start_data().is_positive());
    }
}
