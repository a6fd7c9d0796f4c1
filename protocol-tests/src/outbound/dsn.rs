//! Reading delivery status notifications (RFC 3464; RFC 3462/6522
//! multipart/report) found in the sender's INBOX: the report's type, its
//! per-message fields and one group of per-recipient fields per
//! recipient, and the Return-Path the final delivery recorded.

use mailparse::MailHeaderMap;

/// Fields of one group (`Name`, value), in order, values unfolded.
pub type Fields = Vec<(String, String)>;

/// One report.
#[derive(Debug, Clone)]
pub struct Report {
    /// Its UID in the INBOX.
    pub uid: u32,
    /// The top-level `report-type` parameter, lower-cased.
    pub report_type: Option<String>,
    /// The Return-Path header, if the delivery added one.
    pub return_path: Option<String>,
    /// Per-message fields (Reporting-MTA, Original-Envelope-Id...).
    pub per_message: Fields,
    /// Per-recipient groups (Final-Recipient, Action, Status...).
    pub recipients: Vec<Fields>,
}

/// The value of field `name` (any case) in `group`.
pub fn field<'a>(group: &'a Fields, name: &str) -> Option<&'a str> {
    group
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The address of an `addr-type; address` value (`rfc822; a@b` -> `a@b`).
pub fn typed_address(v: &str) -> &str {
    let a = v.split_once(';').map_or(v, |(_, a)| a).trim();
    a.strip_prefix('<')
        .and_then(|a| a.strip_suffix('>'))
        .unwrap_or(a)
}

fn groups(text: &[u8]) -> Vec<Fields> {
    let text = String::from_utf8_lossy(text).replace("\r\n", "\n");
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        if block.trim().is_empty() {
            continue;
        }
        let block = format!("{}\n\n", block.trim_matches('\n'));
        let Ok((headers, _)) = mailparse::parse_headers(block.as_bytes()) else {
            continue;
        };
        let fields: Fields = headers
            .iter()
            .map(|h| (h.get_key(), h.get_value().trim().to_string()))
            .collect();
        if !fields.is_empty() {
            out.push(fields);
        }
    }
    out
}

fn status_part<'a>(m: &'a mailparse::ParsedMail<'a>) -> Option<&'a mailparse::ParsedMail<'a>> {
    let t = m.ctype.mimetype.to_ascii_lowercase();
    if t == "message/delivery-status" || t == "message/global-delivery-status" {
        return Some(m);
    }
    m.subparts.iter().find_map(status_part)
}

impl Report {
    /// The report in `raw`, or `None` when it is no multipart/report with
    /// a delivery-status part (an ordinary message).
    pub fn parse(uid: u32, raw: &[u8]) -> Option<Report> {
        let m = mailparse::parse_mail(raw).ok()?;
        if !m.ctype.mimetype.eq_ignore_ascii_case("multipart/report") {
            return None;
        }
        let status = status_part(&m)?;
        let body = status.get_body_raw().ok()?;
        let mut gs = groups(&body).into_iter();
        let per_message = gs.next().unwrap_or_default();
        Some(Report {
            uid,
            report_type: m
                .ctype
                .params
                .get("report-type")
                .map(|s| s.to_ascii_lowercase()),
            return_path: m.headers.get_first_value("Return-Path"),
            per_message,
            recipients: gs.collect(),
        })
    }

    /// The per-recipient group whose Final-Recipient is `addr` (any case).
    pub fn recipient(&self, addr: &str) -> Option<&Fields> {
        self.recipients.iter().find(|g| {
            field(g, "Final-Recipient").is_some_and(|v| typed_address(v).eq_ignore_ascii_case(addr))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DSN: &[u8] = b"Return-Path: <>\r\n\
From: MAILER-DAEMON@mx.example\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: text/plain\r\n\
\r\n\
It failed.\r\n\
--b1\r\n\
Content-Type: message/delivery-status\r\n\
\r\n\
Reporting-MTA: dns; mx.example\r\n\
Original-Envelope-Id: e+1\r\n\
\r\n\
Final-Recipient: rfc822; reject-pt1@d.test\r\n\
Action: failed\r\n\
Status: 5.1.1\r\n\
Diagnostic-Code: smtp; 550 5.1.1 no\r\n\
\x20such user\r\n\
\r\n\
Final-Recipient: rfc822;<Other@d.test>\r\n\
Action: relayed\r\n\
Status: 2.0.0\r\n\
\r\n\
--b1--\r\n";

    #[test]
    fn reads_a_report() {
        let r = Report::parse(7, DSN).unwrap();
        assert_eq!(r.report_type.as_deref(), Some("delivery-status"));
        assert_eq!(r.return_path.as_deref(), Some("<>"));
        assert_eq!(
            field(&r.per_message, "reporting-mta"),
            Some("dns; mx.example")
        );
        assert_eq!(field(&r.per_message, "Original-Envelope-ID"), Some("e+1"));
        let g = r.recipient("REJECT-pt1@d.test").unwrap();
        assert_eq!(field(g, "Action"), Some("failed"));
        assert_eq!(
            field(g, "Diagnostic-Code"),
            Some("smtp; 550 5.1.1 no such user")
        );
        assert_eq!(
            field(r.recipient("other@d.test").unwrap(), "Status"),
            Some("2.0.0")
        );
        assert!(Report::parse(1, b"Subject: hi\r\n\r\nbody\r\n").is_none());
    }
}
