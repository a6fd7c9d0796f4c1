//! The trace headers added on delivery (RFC 5321 §4.4): `Return-Path:` and
//! `Received:`, the RFC 5322 §3.3 date they carry, and message ids.
//!
//! The Received line follows the §4.4 grammar:
//!
//! ```text
//! Received: from <EHLO name> ([<peer address>])
//!         [(using <TLS version> with cipher <cipher> (<bits>/<bits> bits))]
//!         by <our hostname> with <ESMTP|SMTP|UTF8SMTP> id <id>
//!         [for <recipient>]; <date-time>
//! ```
//!
//! The TLS comment is Postfix's (`smtpd_tls_received_header = yes`), with
//! OpenSSL's names for the version and cipher. The protocol names are registered in RFC 3848 and RFC 6531 §3.7.3. We do
//! no reverse DNS (the loop must not block), so TCP-info is the address
//! literal alone.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// Everything the trace headers say about one message.
#[derive(Debug, Clone)]
pub struct Trace<'a> {
    /// The reverse path as sent in MAIL FROM, with its angle brackets.
    pub return_path: &'a str,
    /// The EHLO/HELO name of the client.
    pub helo: &'a str,
    /// The client's IP address.
    pub peer: IpAddr,
    /// Our host name.
    pub hostname: &'a str,
    /// `ESMTP`, `SMTP` or `UTF8SMTP`.
    pub protocol: &'a str,
    /// Our id for the message.
    pub id: &'a str,
    /// The recipient, when there is exactly one.
    pub for_rcpt: Option<&'a str>,
    /// Time of receipt.
    pub when: SystemTime,
    /// What TLS the message came over, if any.
    pub tls: Option<netloop::tls::TlsInfo>,
}

/// An address literal for `ip` (RFC 5321 §4.1.3).
pub fn address_literal(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => format!("[{a}]"),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => format!("[{v4}]"),
            None => format!("[IPv6:{a}]"),
        },
    }
}

impl Trace<'_> {
    /// The header block to put in front of the message, CRLF-terminated.
    pub fn headers(&self) -> Vec<u8> {
        let mut h = format!("Return-Path: {}\r\n", self.return_path);
        let tls = self
            .tls
            .map(|t| format!("\r\n\t(using {t})"))
            .unwrap_or_default();
        h.push_str(&format!(
            "Received: from {} ({}){tls}\r\n\tby {} with {} id {}",
            self.helo,
            address_literal(self.peer),
            self.hostname,
            self.protocol,
            self.id
        ));
        match self.for_rcpt {
            Some(r) => h.push_str(&format!("\r\n\tfor <{r}>; ")),
            None => h.push_str(";\r\n\t"),
        }
        h.push_str(&rfc5322_date(self.when));
        h.push_str("\r\n");
        h.into_bytes()
    }
}

/// `date-time` of RFC 5322 §3.3 in UTC, e.g. `Tue, 24 Nov 2026 22:42:44 +0000`.
pub fn rfc5322_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = mailstore::date::civil_from_days(days);
    // 1970-01-01 was a Thursday.
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let month = mailstore::date::MONTHS[(m - 1) as usize];
    format!(
        "{weekday}, {d:02} {month} {y:04} {:02}:{:02}:{:02} +0000",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// A message id unique within this host: the process start time in
/// microseconds and a counter, in hex.
pub fn new_message_id() -> String {
    static START: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let start = *START.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0)
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{start:X}.{n:X}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_are_rfc5322() {
        assert_eq!(rfc5322_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 +0000");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400 + 3_723); // 2000-02-29 01:02:03
        assert_eq!(rfc5322_date(t), "Tue, 29 Feb 2000 01:02:03 +0000");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_560_000); // 2026-11-24 22:40:00
        assert_eq!(rfc5322_date(t), "Tue, 24 Nov 2026 22:40:00 +0000");
    }

    #[test]
    fn received_header_shape() {
        let t = Trace {
            return_path: "<a@b>",
            helo: "client.example",
            peer: "127.0.0.1".parse().unwrap(),
            hostname: "mx.local",
            protocol: "ESMTP",
            id: "ABC.1",
            for_rcpt: Some("bob@localhost"),
            when: UNIX_EPOCH,
            tls: None,
        };
        let h = String::from_utf8(t.headers()).unwrap();
        assert_eq!(
            h,
            "Return-Path: <a@b>\r\nReceived: from client.example ([127.0.0.1])\r\n\tby mx.local with ESMTP id ABC.1\r\n\tfor <bob@localhost>; Thu, 01 Jan 1970 00:00:00 +0000\r\n"
        );
        let t = Trace {
            for_rcpt: None,
            peer: "::1".parse().unwrap(),
            ..t
        };
        let h = String::from_utf8(t.headers()).unwrap();
        assert!(h.contains("([IPv6:::1])"));
        assert!(h.contains("id ABC.1;\r\n\tThu, 01 Jan 1970"));
        let t = Trace {
            tls: Some(netloop::tls::TlsInfo {
                version: "TLSv1.3",
                cipher: "TLS_AES_256_GCM_SHA384",
                bits: 256,
            }),
            protocol: "ESMTPS",
            ..t
        };
        let h = String::from_utf8(t.headers()).unwrap();
        assert!(
            h.contains("([IPv6:::1])\r\n\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\r\n\tby mx.local with ESMTPS id"),
            "{h}"
        );
    }

    #[test]
    fn message_ids_are_distinct() {
        let a = new_message_id();
        let b = new_message_id();
        assert_ne!(a, b);
    }
}
