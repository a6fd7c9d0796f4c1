//! Delivery status notifications (RFC 3464, RFC 3462 multipart/report):
//! the bounce a sender gets when a recipient failed for good, with a
//! human-readable part, the machine-readable message/delivery-status part
//! and the original message (or only its header when RET=HDRS, RFC 3461
//! §4.3).

use std::fmt::Write as _;
use std::time::SystemTime;

/// One recipient's outcome, as reported.
#[derive(Debug, Clone)]
pub struct Failed {
    /// The recipient address.
    pub addr: String,
    /// RFC 3461 ORCPT as given (addr-type;xtext), if any.
    pub orcpt: Option<String>,
    /// RFC 3463 status code, e.g. "5.1.1".
    pub status: String,
    /// The remote host that answered, if one did.
    pub remote: Option<String>,
    /// The SMTP reply or our own diagnosis.
    pub diagnostic: String,
}

/// What the report says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Given up (RFC 3464 §2.3.3 "failed").
    Failed,
    /// Still trying (a delay warning: "delayed").
    Delayed,
    /// Handed to a host that does not offer DSN, for a recipient who asked
    /// for NOTIFY=SUCCESS (RFC 3461 §5.2.2: "relayed").
    Relayed,
    /// Delivered into a local mailbox, for NOTIFY=SUCCESS (RFC 3461 §6.2.1:
    /// "delivered").
    Delivered,
}

impl Action {
    /// The RFC 3464 §2.3.3 action value.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Failed => "failed",
            Action::Delayed => "delayed",
            Action::Relayed => "relayed",
            Action::Delivered => "delivered",
        }
    }
}

/// Everything a report is made of.
#[derive(Debug)]
pub struct Report<'a> {
    /// Our host name (Reporting-MTA, the From's domain).
    pub hostname: &'a str,
    /// Whom the report goes to (the original envelope sender).
    pub to: &'a str,
    /// The queue id of the original message.
    pub qid: &'a str,
    /// RFC 3461 ENVID of the original.
    pub envid: Option<&'a str>,
    /// When the original arrived (Unix seconds).
    pub arrival: i64,
    /// Failed or delayed.
    pub action: Action,
    /// The recipients concerned.
    pub rcpts: &'a [Failed],
    /// The original message.
    pub original: &'a [u8],
    /// Attach only the original's header (RET=HDRS).
    pub headers_only: bool,
}

/// The RFC 3463 status code in a reply or diagnosis text ("550 5.1.1
/// ..." or "5.4.6 ..." -> the code), else the generic one for the reply's
/// class ("5.0.0", "4.0.0").
pub fn status_of(text: &str, permanent: bool) -> String {
    let is_code = |word: &str| {
        let parts: Vec<&str> = word.split('.').collect();
        parts.len() == 3
            && matches!(parts[0], "2" | "4" | "5")
            && parts[1..]
                .iter()
                .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
    };
    let mut words = text.split_whitespace();
    let first = words.next().unwrap_or("");
    if is_code(first) {
        return first.to_owned();
    }
    if first.len() == 3 && first.bytes().all(|b| b.is_ascii_digit()) {
        if let Some(second) = words.next().filter(|w| is_code(w)) {
            return second.to_owned();
        }
        if first.starts_with('5') {
            return "5.0.0".into();
        }
    }
    if permanent { "5.0.0" } else { "4.0.0" }.to_owned()
}

/// `Thu, 1 Jan 1970 00:00:00 +0000` (RFC 5322 §3.3), in UTC.
pub fn rfc5322_date(unix: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = mailstore::date::civil_from_days(days);
    format!(
        "{}, {d} {} {y} {:02}:{:02}:{:02} +0000",
        DAYS[days.rem_euclid(7) as usize],
        mailstore::date::MONTHS[(m as usize).saturating_sub(1) % 12],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The header of a message: up to and including the empty line (CRLF,
/// or a bare LF as some submitting clients send).
fn header_of(raw: &[u8]) -> &[u8] {
    let mut start = 0;
    while start < raw.len() {
        let end = memchr::memchr(b'\n', &raw[start..]).map_or(raw.len(), |i| start + i + 1);
        let line = &raw[start..end];
        if line == b"\n" || line == b"\r\n" {
            return &raw[..end];
        }
        start = end;
    }
    raw
}

/// The report as a message, ready to store or send.
pub fn build(r: &Report<'_>) -> Vec<u8> {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let boundary = format!("{}/{}", r.qid, r.hostname);
    let (subject, lead) = match r.action {
        Action::Failed => (
            "Undelivered Mail Returned to Sender",
            "Your message could not be delivered to one or more recipients.\r\n\
             It has been returned with this report; nothing more will be tried.",
        ),
        Action::Delayed => (
            "Delayed Mail (still being retried)",
            "Your message has not been delivered yet to the recipients below.\r\n\
             This is only a warning: delivery will be tried again, and you will\r\n\
             hear again only if it fails for good.",
        ),
        Action::Relayed => (
            "Successful Mail Delivery Report",
            "Your message was handed on to the recipients' mail system, as you\r\n\
             asked (NOTIFY=SUCCESS). That system does not report delivery, so\r\n\
             this is the last notice you will get about it.",
        ),
        Action::Delivered => (
            "Successful Mail Delivery Report",
            "Your message was delivered to the mailboxes of the recipients\r\n\
             below, as you asked (NOTIFY=SUCCESS).",
        ),
    };
    let mut m = String::new();
    let _ = write!(
        m,
        "From: Mail Delivery System <MAILER-DAEMON@{host}>\r\n\
         To: <{to}>\r\n\
         Subject: {subject}\r\n\
         Date: {date}\r\n\
         Message-ID: <{qid}.{action}.{now}.dsn@{host}>\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status;\r\n\
         \tboundary=\"{boundary}\"\r\n\
         \r\n\
         This is a MIME-encapsulated message.\r\n\
         \r\n\
         --{boundary}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         This is the mail system at host {host}.\r\n\
         \r\n\
         {lead}\r\n\
         \r\n",
        host = r.hostname,
        to = r.to,
        date = rfc5322_date(now),
        qid = r.qid,
        action = r.action.as_str(),
    );
    for f in r.rcpts {
        let _ = write!(m, "<{}>: {}\r\n", f.addr, f.diagnostic);
    }
    let _ = write!(
        m,
        "\r\n--{boundary}\r\n\
         Content-Type: message/delivery-status\r\n\
         \r\n\
         Reporting-MTA: dns; {host}\r\n\
         X-Queue-ID: {qid}\r\n",
        host = r.hostname,
        qid = r.qid
    );
    if let Some(envid) = r.envid {
        let _ = write!(m, "Original-Envelope-Id: {envid}\r\n");
    }
    let _ = write!(m, "Arrival-Date: {}\r\n", rfc5322_date(r.arrival));
    for f in r.rcpts {
        m.push_str("\r\n");
        if let Some(orcpt) = &f.orcpt {
            let _ = write!(m, "Original-Recipient: {orcpt}\r\n");
        }
        let _ = write!(
            m,
            "Final-Recipient: rfc822; {}\r\nAction: {}\r\nStatus: {}\r\n",
            f.addr,
            r.action.as_str(),
            f.status
        );
        if let Some(remote) = &f.remote {
            let _ = write!(m, "Remote-MTA: dns; {remote}\r\n");
        }
        let diag: String = f
            .diagnostic
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let _ = write!(m, "Diagnostic-Code: smtp; {diag}\r\n");
    }
    let _ = write!(
        m,
        "\r\n--{boundary}\r\nContent-Type: {}\r\n\r\n",
        if r.headers_only {
            "text/rfc822-headers"
        } else {
            "message/rfc822"
        }
    );
    let mut out = m.into_bytes();
    if r.headers_only {
        out.extend_from_slice(header_of(r.original));
    } else {
        out.extend_from_slice(r.original);
        if !r.original.ends_with(b"\r\n") {
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc5322() {
        assert_eq!(rfc5322_date(0), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_709_208_000),
            "Thu, 29 Feb 2024 12:00:00 +0000"
        );
    }

    #[test]
    fn status_codes_come_from_the_reply_or_the_class() {
        assert_eq!(status_of("550 5.1.1 no such user", true), "5.1.1");
        assert_eq!(status_of("550 no such user", true), "5.0.0");
        assert_eq!(status_of("451 4.3.0 later", false), "4.3.0");
        assert_eq!(status_of("connection refused", false), "4.0.0");
        assert_eq!(status_of("5.4.6 loops back", true), "5.4.6");
    }

    #[test]
    fn report_is_multipart_report_that_mailparse_reads() {
        let original = b"From: a@a.test\r\nSubject: hi\r\n\r\nbody\r\n";
        let rcpts = [Failed {
            addr: "x@b.test".into(),
            orcpt: Some("rfc822;x@b.test".into()),
            status: "5.1.1".into(),
            remote: Some("mx.b.test".into()),
            diagnostic: "550 5.1.1 no such user".into(),
        }];
        for headers_only in [false, true] {
            let raw = build(&Report {
                hostname: "mx.a.test",
                to: "a@a.test",
                qid: "Q1",
                envid: Some("E1"),
                arrival: 0,
                action: Action::Failed,
                rcpts: &rcpts,
                original,
                headers_only,
            });
            let parsed = mailparse::parse_mail(&raw).expect("parses");
            assert_eq!(parsed.ctype.mimetype, "multipart/report");
            assert_eq!(parsed.subparts.len(), 3);
            let status = parsed.subparts[1].get_body().expect("body");
            assert!(
                status.contains("Final-Recipient: rfc822; x@b.test"),
                "{status}"
            );
            assert!(status.contains("Status: 5.1.1"), "{status}");
            assert!(status.contains("Original-Envelope-Id: E1"), "{status}");
            let third = parsed.subparts[2].get_body_raw().expect("body");
            assert_eq!(third.ends_with(b"body\r\n"), !headers_only);
        }
    }

    #[test]
    fn the_header_ends_at_the_first_empty_line_whatever_the_line_ends() {
        assert_eq!(
            header_of(b"A: 1\r\nB: 2\r\n\r\nbody\r\n\r\n"),
            b"A: 1\r\nB: 2\r\n\r\n"
        );
        assert_eq!(header_of(b"A: 1\r\nB: 2\n\nbody\n"), b"A: 1\r\nB: 2\n\n");
        assert_eq!(header_of(b"\r\nbody"), b"\r\n");
        assert_eq!(header_of(b"A: 1\r\n"), b"A: 1\r\n");
    }
}
