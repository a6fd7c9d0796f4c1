//! Reports other domains send about mail in our name: DMARC aggregate
//! reports (RFC 7489 §7.2: XML, usually zipped or gzipped, attached to a
//! message sent to the `rua` address) and SMTP TLS reports (RFC 8460:
//! JSON, usually gzipped, `application/tlsrpt+gzip`). The `mail-auth`
//! crate finds and decodes the attachment and parses it; this module
//! decides which messages are reports and adds up what they say, for
//! `minimail report dmarc|tls`.

pub use mail_auth::report::tlsrpt::TlsReport;
pub use mail_auth::report::Report as DmarcReport;
use mail_auth::report::{ActionDisposition, DmarcResult, Error as ReportError, Report};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Largest report accepted once decompressed (a zip or gzip bomb stops
/// here): far above any real aggregate report.
pub const MAX_REPORT_SIZE: usize = 32 << 20;

/// What one stored message turned out to be.
#[derive(Debug)]
pub enum Parsed<T> {
    /// A report of the kind asked for.
    Report(Box<T>),
    /// No report of that kind in it (ordinary mail, or the other kind).
    NotAReport,
    /// It carries a report that cannot be read: why.
    Malformed(String),
}

fn classify<T>(r: Result<T, ReportError>) -> Parsed<T> {
    match r {
        Ok(report) => Parsed::Report(Box::new(report)),
        Err(ReportError::NoReportsFound) | Err(ReportError::MailParseError) => Parsed::NotAReport,
        Err(ReportError::ReportTooLarge) => Parsed::Malformed(format!(
            "larger than {MAX_REPORT_SIZE} bytes once decompressed"
        )),
        Err(ReportError::ReportParseError(why)) => {
            Parsed::Malformed(format!("cannot parse: {why}"))
        }
        Err(ReportError::UncompressError(why)) => {
            Parsed::Malformed(format!("cannot decompress: {why}"))
        }
    }
}

/// The DMARC aggregate report in the message `raw`, if any (a TLS report
/// is not one, though its gzip attachment looks alike).
pub fn parse_dmarc(raw: &[u8]) -> Parsed<Report> {
    if is_tls_report(raw) {
        return Parsed::NotAReport;
    }
    classify(Report::parse_rfc5322(raw, MAX_REPORT_SIZE))
}

/// The TLS report in the message `raw`, if any: only messages marked as
/// one (RFC 8460 §5.3: a `TLS-Report-Domain` field, or
/// `multipart/report; report-type="tlsrpt"`) are read.
pub fn parse_tls(raw: &[u8]) -> Parsed<TlsReport> {
    if !is_tls_report(raw) {
        return Parsed::NotAReport;
    }
    classify(TlsReport::parse_rfc5322(raw, MAX_REPORT_SIZE))
}

/// Whether the header section of `raw` marks it as a TLS report.
fn is_tls_report(raw: &[u8]) -> bool {
    let end = header_end(raw).unwrap_or(raw.len());
    let header: Vec<u8> = raw[..end]
        .iter()
        .filter(|b| !b.is_ascii_whitespace() || **b == b'\n')
        .map(u8::to_ascii_lowercase)
        .collect();
    let has = |needle: &[u8]| header.windows(needle.len()).any(|w| w == needle);
    header.starts_with(b"tls-report-domain:")
        || has(b"\ntls-report-domain:")
        || has(b"report-type=tlsrpt")
        || has(b"report-type=\"tlsrpt\"")
}

/// Where the header section of a message ends (its first empty line).
fn header_end(raw: &[u8]) -> Option<usize> {
    [&b"\r\n\r\n"[..], b"\n\n"]
        .iter()
        .filter_map(|sep| memchr::memmem::find(raw, sep))
        .min()
}

/// DMARC results for one domain over many reports.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct DmarcTotals {
    /// Messages the reports cover.
    pub messages: u64,
    /// Messages that passed DMARC (aligned DKIM or aligned SPF).
    pub pass: u64,
    /// Messages that failed it.
    pub fail: u64,
    /// Of these, passed by aligned DKIM / by aligned SPF.
    pub dkim_pass: u64,
    pub spf_pass: u64,
    /// What the receivers did: none, quarantine, reject.
    pub none: u64,
    pub quarantine: u64,
    pub reject: u64,
    /// Failing messages by source address, most first.
    pub failing_sources: Vec<(IpAddr, u64)>,
    /// Organisations that reported.
    pub reporters: Vec<String>,
}

/// Add up `reports` by the domain whose policy they evaluate.
pub fn dmarc_totals<'a>(
    reports: impl IntoIterator<Item = &'a Report>,
) -> BTreeMap<String, DmarcTotals> {
    let mut by_domain: BTreeMap<String, (DmarcTotals, BTreeMap<IpAddr, u64>)> = BTreeMap::new();
    for report in reports {
        let domain = report.policy_published.domain.to_ascii_lowercase();
        let (t, sources) = by_domain.entry(domain).or_default();
        let org = report.report_metadata.org_name.clone();
        if !t.reporters.contains(&org) {
            t.reporters.push(org);
        }
        for record in &report.record {
            let n = u64::from(record.row.count);
            let eval = &record.row.policy_evaluated;
            let dkim = eval.dkim == DmarcResult::Pass;
            let spf = eval.spf == DmarcResult::Pass;
            t.messages += n;
            t.dkim_pass += if dkim { n } else { 0 };
            t.spf_pass += if spf { n } else { 0 };
            if dkim || spf {
                t.pass += n;
            } else {
                t.fail += n;
                if let Some(ip) = record.row.source_ip {
                    *sources.entry(ip).or_default() += n;
                }
            }
            match eval.disposition {
                ActionDisposition::Quarantine => t.quarantine += n,
                ActionDisposition::Reject => t.reject += n,
                _ => t.none += n,
            }
        }
    }
    by_domain
        .into_iter()
        .map(|(domain, (mut t, sources))| {
            let mut sources: Vec<_> = sources.into_iter().collect();
            sources.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            t.failing_sources = sources;
            (domain, t)
        })
        .collect()
}

/// TLS results for one policy domain over many reports.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct TlsTotals {
    /// Sessions that negotiated TLS as the policy asks.
    pub success: u64,
    /// Sessions that failed.
    pub failure: u64,
    /// Failed sessions by result type (e.g. `starttls-not-supported`).
    pub failures_by_type: BTreeMap<String, u64>,
    /// Organisations that reported.
    pub reporters: Vec<String>,
}

/// Add up `reports` by policy domain.
pub fn tls_totals<'a>(
    reports: impl IntoIterator<Item = &'a TlsReport>,
) -> BTreeMap<String, TlsTotals> {
    let mut by_domain: BTreeMap<String, TlsTotals> = BTreeMap::new();
    for report in reports {
        let org = report
            .organization_name
            .clone()
            .unwrap_or_else(|| "(unnamed)".into());
        for p in &report.policies {
            let t = by_domain
                .entry(p.policy.policy_domain.to_ascii_lowercase())
                .or_default();
            if !t.reporters.contains(&org) {
                t.reporters.push(org.clone());
            }
            t.success += u64::from(p.summary.total_success);
            t.failure += u64::from(p.summary.total_failure);
            for f in &p.failure_details {
                *t.failures_by_type.entry(result_type_name(f)).or_default() +=
                    u64::from(f.failed_session_count);
            }
        }
    }
    by_domain
}

/// The RFC 8460 §4.3 name of a failure's result type.
pub fn result_type_name(f: &mail_auth::report::tlsrpt::FailureDetails) -> String {
    // The crate serialises the enum with the RFC's names.
    match serde_json::to_value(f.result_type) {
        Ok(serde_json::Value::String(s)) => s,
        _ => format!("{:?}", f.result_type),
    }
}
