//! `minimail report dmarc|tls`: the DMARC aggregate reports (RFC 7489
//! §7.2) and SMTP TLS reports (RFC 8460) other domains have mailed to a
//! user (the address published as `rua=` in the domain's `_dmarc` /
//! `_smtp._tls` records), read from the store and summarised: each report,
//! then totals per domain. Parsing and adding up are `mailauth::reports`';
//! this module reads the mailboxes and prints.

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use mailauth::reports::{self, Parsed};
use netloop::cli::DbArg;
use std::fmt::Write as _;

#[derive(Subcommand)]
pub enum ReportCmd {
    /// DMARC aggregate reports (RFC 7489 §7.2; XML, zip or gzip attachments).
    Dmarc(ReportArgs),
    /// SMTP TLS reports (RFC 8460; JSON, gzip attachments).
    Tls(ReportArgs),
}

#[derive(Args)]
pub struct ReportArgs {
    /// Whose mail to read, e.g. the rua address dmarc@example.org
    /// (repeatable; default: every user).
    #[arg(long)]
    user: Vec<String>,
    /// Mailbox to read (repeatable).
    #[arg(long, default_value = "INBOX")]
    mailbox: Vec<String>,
    /// Print the reports and the totals as one JSON object.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    db: DbArg,
}

/// One report and where it was found.
struct Found<T> {
    place: String,
    report: Box<T>,
}

/// What the scan of the mailboxes found.
struct Scan<T> {
    reports: Vec<Found<T>>,
    /// Messages that were not reports of the kind asked for.
    other: usize,
    /// Reports that could not be read: place and why.
    malformed: Vec<(String, String)>,
    /// Places read.
    places: Vec<String>,
}

pub fn run(cmd: ReportCmd) -> Result<()> {
    match cmd {
        ReportCmd::Dmarc(a) => {
            let scan = scan(&a, reports::parse_dmarc)?;
            let totals = reports::dmarc_totals(scan.reports.iter().map(|f| &*f.report));
            if a.json {
                print_json(&scan, &totals)
            } else {
                print!("{}", dmarc_text(&scan, &totals));
                warn_malformed(&scan);
                Ok(())
            }
        }
        ReportCmd::Tls(a) => {
            let scan = scan(&a, reports::parse_tls)?;
            let totals = reports::tls_totals(scan.reports.iter().map(|f| &*f.report));
            if a.json {
                print_json(&scan, &totals)
            } else {
                print!("{}", tls_text(&scan, &totals));
                warn_malformed(&scan);
                Ok(())
            }
        }
    }
}

/// Read every message of the chosen mailboxes, one at a time (a big
/// mailbox is never all in memory), and keep the reports.
fn scan<T>(a: &ReportArgs, parse: fn(&[u8]) -> Parsed<T>) -> Result<Scan<T>> {
    let store = crate::open_store(&a.db)?;
    let users = if a.user.is_empty() {
        store.read_sync(|r| r.users())?
    } else {
        let mut users = Vec::new();
        for addr in &a.user {
            match store.read_sync(|r| r.user(addr))? {
                Some(u) => users.push(u),
                None => bail!("no user {addr}"),
            }
        }
        users
    };
    let mut out = Scan {
        reports: Vec::new(),
        other: 0,
        malformed: Vec::new(),
        places: Vec::new(),
    };
    for user in &users {
        for name in &a.mailbox {
            let Some(mailbox) = store.read_sync(|r| r.mailbox(user.id, name))? else {
                if !a.user.is_empty() {
                    bail!("{} has no mailbox {name}", user.address);
                }
                continue;
            };
            out.places.push(format!("{}/{name}", user.address));
            for entry in store.read_sync(|r| r.entries(mailbox.id))? {
                let raw = store.read_sync(|r| r.raw(mailbox.id, entry.uid))?;
                let place = format!("{}/{name} UID {}", user.address, entry.uid);
                match parse(&raw) {
                    Parsed::Report(report) => out.reports.push(Found { place, report }),
                    Parsed::NotAReport => out.other += 1,
                    Parsed::Malformed(why) => out.malformed.push((place, why)),
                }
            }
        }
    }
    Ok(out)
}

fn warn_malformed<T>(scan: &Scan<T>) {
    for (place, why) in &scan.malformed {
        eprintln!("minimail report: {place}: {why}");
    }
}

fn print_json<T: serde::Serialize, U: serde::Serialize>(scan: &Scan<T>, totals: &U) -> Result<()> {
    let reports: Vec<_> = scan
        .reports
        .iter()
        .map(|f| serde_json::json!({"found": f.place, "report": f.report}))
        .collect();
    let malformed: Vec<_> = scan
        .malformed
        .iter()
        .map(|(place, why)| serde_json::json!({"found": place, "error": why}))
        .collect();
    let v = serde_json::json!({
        "read": scan.places,
        "reports": reports,
        "totals": totals,
        "other_messages": scan.other,
        "malformed": malformed,
    });
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

fn header<T>(kind: &str, scan: &Scan<T>) -> String {
    let n = scan.reports.len();
    format!(
        "{kind}: {n} report{} in {} ({} other message{} skipped{})\n",
        if n == 1 { "" } else { "s" },
        if scan.places.is_empty() {
            "no mailbox".to_string()
        } else {
            scan.places.join(", ")
        },
        scan.other,
        if scan.other == 1 { "" } else { "s" },
        if scan.malformed.is_empty() {
            String::new()
        } else {
            format!(", {} unreadable", scan.malformed.len())
        }
    )
}

/// Seconds since 1970 as `YYYY-MM-DD HH:MM` (UTC).
fn utc(secs: u64) -> String {
    let secs = i64::try_from(secs).unwrap_or(i64::MAX);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = mailstore::date::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

/// The name serde gives a value of one of the crate's enums (the RFCs'
/// names, e.g. `starttls-not-supported`, `sts`).
fn name<T: serde::Serialize + std::fmt::Debug>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => format!("{v:?}").to_ascii_lowercase(),
    }
}

fn dmarc_text(
    scan: &Scan<reports::DmarcReport>,
    totals: &std::collections::BTreeMap<String, reports::DmarcTotals>,
) -> String {
    let mut s = header("DMARC aggregate reports", scan);
    for f in &scan.reports {
        let r = &f.report;
        let m = &r.report_metadata;
        let p = &r.policy_published;
        let _ = writeln!(
            s,
            "\n{}, report {} ({}), {} to {} UTC",
            m.org_name,
            m.report_id,
            f.place,
            utc(m.date_range.begin),
            utc(m.date_range.end)
        );
        let _ = writeln!(
            s,
            "  policy for {}: p={} sp={} adkim={} aspf={}{}",
            p.domain,
            p.p,
            p.sp,
            p.adkim,
            p.aspf,
            if p.testing { " (testing)" } else { "" }
        );
        let _ = writeln!(
            s,
            "  {:<39} {:>6}  {:<11} {:<5} {:<5} {:<20} auth results",
            "source", "count", "disposition", "dkim", "spf", "header_from"
        );
        for rec in &r.record {
            let row = &rec.row;
            let auth: Vec<String> = rec
                .auth_results
                .dkim
                .iter()
                .map(|d| format!("dkim {}={}", d.domain, d.result))
                .chain(
                    rec.auth_results
                        .spf
                        .iter()
                        .map(|x| format!("spf {}={}", x.domain, x.result)),
                )
                .collect();
            let _ = writeln!(
                s,
                "  {:<39} {:>6}  {:<11} {:<5} {:<5} {:<20} {}",
                row.source_ip
                    .map(|ip| ip.to_string())
                    .unwrap_or_else(|| "?".into()),
                row.count,
                row.policy_evaluated.disposition.to_string(),
                row.policy_evaluated.dkim.to_string(),
                row.policy_evaluated.spf.to_string(),
                rec.identifiers.header_from,
                auth.join(", ")
            );
        }
    }
    if !totals.is_empty() {
        s.push_str("\nTotals by domain\n");
    }
    for (domain, t) in totals {
        let _ = writeln!(
            s,
            "  {domain}: {} messages, {} pass ({}), {} fail; aligned dkim {}, aligned spf {}; \
             disposition none {}, quarantine {}, reject {}; reported by {}",
            t.messages,
            t.pass,
            percent(t.pass, t.messages),
            t.fail,
            t.dkim_pass,
            t.spf_pass,
            t.none,
            t.quarantine,
            t.reject,
            t.reporters.join(", ")
        );
        if !t.failing_sources.is_empty() {
            let list: Vec<String> = t
                .failing_sources
                .iter()
                .map(|(ip, n)| format!("{ip} ({n})"))
                .collect();
            let _ = writeln!(s, "    failing sources: {}", list.join(", "));
        }
    }
    s
}

fn tls_text(
    scan: &Scan<reports::TlsReport>,
    totals: &std::collections::BTreeMap<String, reports::TlsTotals>,
) -> String {
    let mut s = header("TLS reports", scan);
    for f in &scan.reports {
        let r = &f.report;
        let _ = writeln!(
            s,
            "\n{}, report {} ({}), {} to {}",
            r.organization_name.as_deref().unwrap_or("(unnamed)"),
            r.report_id,
            f.place,
            r.date_range.start_datetime.to_rfc3339(),
            r.date_range.end_datetime.to_rfc3339()
        );
        for p in &r.policies {
            let d = &p.policy;
            let mx = if d.mx_host.is_empty() {
                String::new()
            } else {
                format!(" (mx: {})", d.mx_host.join(", "))
            };
            let _ = writeln!(
                s,
                "  {} policy for {}{mx}: {} successful, {} failed sessions",
                name(&d.policy_type),
                d.policy_domain,
                p.summary.total_success,
                p.summary.total_failure
            );
            for fd in &p.failure_details {
                let from = fd
                    .sending_mta_ip
                    .map(|ip| ip.to_string())
                    .unwrap_or_else(|| "?".into());
                let to = fd.receiving_mx_hostname.as_deref().unwrap_or("?");
                let _ = writeln!(
                    s,
                    "    {} x{}: {from} -> {to}{}",
                    reports::result_type_name(fd),
                    fd.failed_session_count,
                    fd.additional_information
                        .as_deref()
                        .map(|i| format!(" ({i})"))
                        .unwrap_or_default()
                );
            }
        }
    }
    if !totals.is_empty() {
        s.push_str("\nTotals by domain\n");
    }
    for (domain, t) in totals {
        let kinds: Vec<String> = t
            .failures_by_type
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let _ = writeln!(
            s,
            "  {domain}: {} sessions, {} successful, {} failed ({}){}; reported by {}",
            t.success + t.failure,
            t.success,
            t.failure,
            percent(t.failure, t.success + t.failure),
            if kinds.is_empty() {
                String::new()
            } else {
                format!(": {}", kinds.join(", "))
            },
            t.reporters.join(", ")
        );
    }
    s
}
