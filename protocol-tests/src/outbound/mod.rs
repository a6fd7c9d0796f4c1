//! The outbound section: grades an MTA's *sending* side (retries, bounces,
//! TLS, DSN, transparency) without mocking it. The tool runs a scripted
//! remote SMTP server ([`remote`]) on `--outbound-listen`; the operator
//! routes `--outbound-domain` there (minimail `--relay-host`, a Postfix
//! transport map...). The tool then submits messages through the MTA's
//! submission service ([`submit`]) to recipients at that domain whose local
//! part names the scenario (`tempfail-TOKEN@D`, `reject-TOKEN@D`...),
//! waits for what arrives (`--outbound-wait`), waits a quiet period for
//! retries and duplicates that must not come, reads the reports the MTA
//! sent to the sender's INBOX over IMAP ([`inbox`], [`dsn`]), and grades
//! each case against the RFC section it cites.
//!
//! Two phases: first the scripted server offers everything (STARTTLS, DSN,
//! PIPELINING, 8BITMIME, ENHANCEDSTATUSCODES, SIZE); then, for the cases
//! about a next hop without extensions, nothing at all. Messages of one
//! phase are submitted together and delivered concurrently, so a run takes
//! about the longest retry plus the quiet period, not their sum.

pub mod dsn;
pub mod inbox;
pub mod remote;
pub mod submit;
pub mod wire;

use crate::exec::{Failure, Target};
use crate::suite::{selected, unique_token, CaseResult, Outcome};
use dsn::{field, typed_address, Report};
use remote::{param, DataEnd, Delivery, Log, Mode, Param, Remote};
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use submit::{Refused, Submission, Submitter};

/// How the section is run (the `--outbound-*` flags).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the scripted remote server listens (`HOST:PORT`).
    pub listen: String,
    /// The domain the MTA routes there.
    pub domain: String,
    /// The MTA's submission service (`HOST:PORT`).
    pub submission: String,
    /// How long to wait for deliveries, retries and reports.
    pub wait: Duration,
    /// How long nothing more may arrive (retries of refused recipients,
    /// duplicates, reports that must not come); by default twice the
    /// longest retry interval observed (5 s when none was), at least 2 s,
    /// at most `wait`.
    pub quiet: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The scripted server offers every extension.
    Full,
    /// The scripted server offers none.
    Minimal,
}

/// An outbound case: its name, RFC sections and requirement.
#[derive(Debug, Clone, Copy)]
pub struct CaseInfo {
    /// `outbound/RFC-SECTION-what`.
    pub name: &'static str,
    /// RFC references (`5321 4.5.4.1`).
    pub rfc: &'static [&'static str],
    /// The requirement checked.
    pub title: &'static str,
    /// The message scenarios it needs.
    scenarios: &'static [&'static str],
    phase: Phase,
    /// Servers known to deviate here (`--known NAME` reports their failure
    /// as KNOWN), each with the RFC text it deviates from.
    pub differs: &'static [(&'static str, &'static str)],
}

const CASES: &[CaseInfo] = &[
    CaseInfo {
        name: "outbound/5321-4.5.4.1-retry-after-4xx-rcpt",
        rfc: &["5321 4.5.4.1", "5321 4.2.1"],
        title: "a recipient refused with 451 is tried again later and the message delivered exactly once",
        scenarios: &["tempfail"],
        phase: Phase::Full,
        differs: &[],
    },
    CaseInfo {
        name: "outbound/5321-4.2.5-retry-after-4xx-end-of-data",
        rfc: &["5321 4.2.5", "5321 4.5.4.1"],
        title: "a message answered 451 after the final dot is sent again later and delivered exactly once",
        scenarios: &["tempdata"],
        phase: Phase::Full,
        differs: &[],
    },
    CaseInfo {
        name: "outbound/5321-4.2.1-5xx-recipient-not-retried",
        rfc: &["5321 4.2.1", "5321 4.5.4.1"],
        title: "of two recipients, the one refused with 550 is never tried again and the other is delivered exactly once",
        scenarios: &["reject"],
        phase: Phase::Full,
        differs: &[],
    },
    CaseInfo {
        name: "outbound/3464-2-report-for-refused-recipient",
        rfc: &["5321 6.1", "3461 6.3", "3464 2"],
        title: "the sender gets a delivery status notification (multipart/report) naming the refused recipient, with the fields RFC 3461 6.3 requires, and only that one as failed",
        scenarios: &["reject"],
        phase: Phase::Full,
        differs: &[(
            "postfix",
            "writes Original-Recipient (the RCPT address) though no ORCPT was given; RFC 3461 \
             6.3 d: if no ORCPT parameter was provided for this recipient, the \
             Original-Recipient field MUST NOT appear",
        )],
    },
    CaseInfo {
        name: "outbound/5321-6.1-dropped-mid-data-delivered-once",
        rfc: &["5321 6.1", "5321 4.5.4.1"],
        title: "a connection dropped in the middle of the message data is retried; the message arrives complete, exactly once",
        scenarios: &["drop"],
        phase: Phase::Full,
        differs: &[],
    },
    CaseInfo {
        name: "outbound/3207-4-starttls-offered-is-used",
        rfc: &["3207 4", "3207 4.2"],
        title: "STARTTLS offered by the next hop is used (plaintext is allowed: WARN), EHLO is sent again inside TLS, and the message arrives intact",
        scenarios: &["tls"],
        phase: Phase::Full,
        differs: &[],
    },
    CaseInfo {
        name: "outbound/3461-5.2-no-report-for-null-sender",
        rfc: &["3461 5.2", "5321 4.5.5", "5321 4.2.1"],
        title: "a message with the null reverse-path refused with 550 is relayed with MAIL FROM:<>, not retried, and no report goes to anyone, not even the header From",
        scenarios: &["nullsender"],
        phase: Phase::Full,
        differs: &[],
    },
    CaseInfo {
        name: "outbound/3461-5.2.1-dsn-parameters-relayed",
        rfc: &["3461 5.2.1"],
        title: "ENVID, RET, NOTIFY and ORCPT given on submission reach a next hop that offers DSN unchanged",
        scenarios: &["dsn"],
        phase: Phase::Full,
        differs: &[],
    },
    CaseInfo {
        name: "outbound/3461-5.2.2-no-dsn-parameters-to-non-dsn-server",
        rfc: &["3461 5.2.2"],
        title: "to a next hop that does not offer DSN, no ENVID, RET, NOTIFY or ORCPT is sent, and the message is delivered",
        scenarios: &["dsnoff"],
        phase: Phase::Minimal,
        differs: &[],
    },
    CaseInfo {
        name: "outbound/3461-5.2.2-relayed-report-for-notify-success",
        rfc: &["3461 5.2.2", "3461 6.3"],
        title: "NOTIFY=SUCCESS relayed to a next hop without DSN: the sender gets a \"relayed\" report with Original-Envelope-Id (the ENVID, xtext decoded) and Original-Recipient",
        scenarios: &["dsnoff"],
        phase: Phase::Minimal,
        differs: &[],
    },
    CaseInfo {
        name: "outbound/5321-4.5.2-dot-stuffing",
        rfc: &["5321 4.5.2"],
        title: "lines starting with a period arrive unchanged at a next hop without extensions (the MTA dot-stuffs what it sends)",
        scenarios: &["dots"],
        phase: Phase::Minimal,
        differs: &[],
    },
];

/// Every outbound case, in order.
pub fn cases() -> &'static [CaseInfo] {
    CASES
}

/// Cases needing the submission server to offer DSN.
const NEEDS_DSN: &[&str] = &["dsn", "dsnoff"];

/// Body of the `drop` scenario's message: large enough that the MTA is
/// still sending when the server hangs up.
fn big_body() -> String {
    (0..3000)
        .map(|i| format!("line {i:06} {}\r\n", "x".repeat(60)))
        .collect()
}

/// Body of the `dots` scenario's message: every kind of line a careless
/// dot-stuffer gets wrong.
const DOTS_BODY: &str = "Lines that start with a period (RFC 5321 4.5.2):\r\n\
.leading period\r\n\
..two periods\r\n\
.\r\n\
...\r\n\
. space after the period\r\n\
.\ttab after the period\r\n\
 .space before the period\r\n\
..\r\n\
line ending in a period.\r\n\
.last line\r\n";

/// `s` as xtext (RFC 3461 §4): `+`, `=`, controls and non-ASCII as `+HH`.
pub fn xtext_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(b as char);
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

/// xtext decoded (invalid escapes kept as they are).
pub fn xtext_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16);
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'+' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An RFC 5322 date for `t` (UTC).
fn date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let wd = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(m - 1) as usize];
    format!(
        "{wd}, {d} {mon} {y} {:02}:{:02}:{:02} +0000",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The section's fixed inputs for one run.
struct Plan {
    token: String,
    domain: String,
    sender: String,
    /// ENVID given for the `dsn` message (xtext) and its decoded value.
    envid_on: (String, String),
    envid_off: (String, String),
    /// ORCPT given for the `dsn` message (`rfc822;xtext`), decoded address.
    orcpt_on: (String, String),
    orcpt_off: (String, String),
}

impl Plan {
    fn addr(&self, scenario: &str) -> String {
        format!("{scenario}-{}@{}", self.token, self.domain)
    }

    fn message(&self, scenario: &str, to: &[String], body: &str) -> Vec<u8> {
        format!(
            "From: <{}>\r\nTo: {}\r\nSubject: protocol-tests outbound {scenario} {}\r\n\
             Date: {}\r\nMessage-ID: <{scenario}-{}@protocol-tests.invalid>\r\n\
             MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n{body}",
            self.sender,
            to.iter()
                .map(|a| format!("<{a}>"))
                .collect::<Vec<_>>()
                .join(", "),
            self.token,
            date(SystemTime::now()),
            self.token,
        )
        .into_bytes()
    }

    fn body(&self, scenario: &str) -> String {
        match scenario {
            "drop" => big_body(),
            "dots" => DOTS_BODY.to_string(),
            s => format!(
                "protocol-tests outbound scenario `{s}`, run {}.\r\n",
                self.token
            ),
        }
    }

    /// The message of `scenario`.
    fn submission(&self, scenario: &str) -> Submission {
        let plain = |a: String| (a, String::new());
        let (from, mail_params, rcpts) = match scenario {
            "reject" => (
                self.sender.clone(),
                String::new(),
                vec![plain(self.addr("reject")), plain(self.addr("accept"))],
            ),
            "nullsender" => (
                String::new(),
                String::new(),
                vec![plain(self.addr(scenario))],
            ),
            "dsn" | "dsnoff" => {
                let (envid, orcpt) = if scenario == "dsn" {
                    (&self.envid_on.0, &self.orcpt_on.0)
                } else {
                    (&self.envid_off.0, &self.orcpt_off.0)
                };
                (
                    self.sender.clone(),
                    format!(" RET=HDRS ENVID={envid}"),
                    vec![(
                        self.addr(scenario),
                        format!(" NOTIFY=SUCCESS,FAILURE ORCPT={orcpt}"),
                    )],
                )
            }
            _ => (
                self.sender.clone(),
                String::new(),
                vec![plain(self.addr(scenario))],
            ),
        };
        let to: Vec<String> = rcpts.iter().map(|(a, _)| a.clone()).collect();
        Submission {
            from,
            mail_params,
            rcpts,
            content: self.message(scenario, &to, &self.body(scenario)),
        }
    }
}

/// What the INBOX held at a moment.
#[derive(Default)]
struct Inbox {
    messages: Vec<(u32, Vec<u8>)>,
    reports: Vec<Report>,
}

impl Inbox {
    fn read(target: &Target, imap: &str, first: u32) -> Result<Inbox, String> {
        let messages = inbox::since(target, imap, first)?;
        let reports = messages
            .iter()
            .filter_map(|(uid, m)| Report::parse(*uid, m))
            .collect();
        Ok(Inbox { messages, reports })
    }

    /// Reports with a per-recipient group for `addr`.
    fn reports_for(&self, addr: &str) -> Vec<&Report> {
        self.reports
            .iter()
            .filter(|r| r.recipient(addr).is_some())
            .collect()
    }

    /// UIDs of messages whose text contains `needle` (any case).
    fn mentioning(&self, needle: &str) -> Vec<u32> {
        let n = needle.to_ascii_lowercase().into_bytes();
        self.messages
            .iter()
            .filter(|(_, m)| m.windows(n.len()).any(|w| w.eq_ignore_ascii_case(&n)))
            .map(|(u, _)| *u)
            .collect()
    }
}

/// State of one submitted scenario.
struct Sent {
    result: Result<(), String>,
    /// When what it waits for had all arrived.
    settled: Option<Instant>,
}

/// Runs the selected outbound cases, calling `report` after each (they
/// are graded together, after the quiet period).
///
/// # Errors
/// The scripted server cannot listen, the submission server cannot be
/// reached or refuses the login, the INBOX cannot be read, or the MTA
/// accepted none of the messages.
pub fn run(
    target: &Target,
    settings: Option<&Settings>,
    only: &[String],
    known: &[String],
    mut report: impl FnMut(&CaseResult),
) -> Result<Vec<CaseResult>, String> {
    let chosen: Vec<&CaseInfo> = CASES.iter().filter(|c| selected(c.name, only)).collect();
    let mut results = Vec::new();
    let Some(settings) = settings else {
        for c in chosen {
            let r = result(
                c,
                Outcome::Skip("no --outbound-listen given".into()),
                Duration::ZERO,
            );
            report(&r);
            results.push(r);
        }
        return Ok(results);
    };
    if chosen.is_empty() {
        return Ok(results);
    }
    let started = Instant::now();
    let sender = target.address(&target.user);
    let token = unique_token();
    let plan = Plan {
        domain: settings.domain.clone(),
        sender,
        envid_on: (
            xtext_encode(&format!("Env+{token}")),
            format!("Env+{token}"),
        ),
        envid_off: (
            xtext_encode(&format!("Env+Off-{token}")),
            format!("Env+Off-{token}"),
        ),
        orcpt_on: (
            format!(
                "rfc822;{}",
                xtext_encode(&format!("Orig+Dsn-{token}@Example.Test"))
            ),
            format!("Orig+Dsn-{token}@Example.Test"),
        ),
        orcpt_off: (
            format!("rfc822;Orig-Off-{token}@Example.Test"),
            format!("Orig-Off-{token}@Example.Test"),
        ),
        token,
    };

    let mut remote = Remote::start(&settings.listen, &settings.domain, Mode::FULL)
        .map_err(|e| format!("outbound: cannot listen on --outbound-listen {e}"))?;
    let mut sub = Submitter::connect(
        &settings.submission,
        &target.user,
        &target.password,
        target.timeout,
    )
    .map_err(|e| format!("outbound: submission server {}: {e}", settings.submission))?;
    let submission_dsn = sub.offers("DSN");
    let first_uid = match &target.imap {
        Some(imap) => Some(
            inbox::uidnext(target, imap)
                .map_err(|e| format!("outbound: reading the INBOX over IMAP: {e}"))?,
        ),
        None => None,
    };
    let wants = |s: &str| chosen.iter().any(|c| c.scenarios.contains(&s));
    let case_wanted = |n: &str| chosen.iter().any(|c| c.name == n);
    let need_report_reject =
        first_uid.is_some() && case_wanted("outbound/3464-2-report-for-refused-recipient");
    let need_report_relayed = first_uid.is_some()
        && submission_dsn
        && case_wanted("outbound/3461-5.2.2-relayed-report-for-notify-success");

    let mut sent: HashMap<&'static str, Sent> = HashMap::new();
    let mut inbox = Inbox::default();
    let mut any_accepted = false;
    let mut first_refusal = None;
    for phase in [Phase::Full, Phase::Minimal] {
        let scenarios: Vec<&'static str> = [
            "tempfail",
            "tempdata",
            "reject",
            "tls",
            "nullsender",
            "dsn",
            "drop",
            "dsnoff",
            "dots",
        ]
        .into_iter()
        .filter(|s| wants(s))
        .filter(|s| {
            CASES
                .iter()
                .any(|c| c.phase == phase && c.scenarios.contains(s))
        })
        .filter(|s| submission_dsn || !NEEDS_DSN.contains(s))
        .collect();
        if scenarios.is_empty() {
            continue;
        }
        if phase == Phase::Minimal {
            remote.set_mode(Mode::MINIMAL);
        }
        let phase_start = Instant::now();
        for s in &scenarios {
            let m = plan.submission(s);
            let mut res = sub.send(&m);
            if let Err(Refused::Broken(_)) = &res {
                // One more try on a fresh session.
                sub = Submitter::connect(
                    &settings.submission,
                    &target.user,
                    &target.password,
                    target.timeout,
                )
                .map_err(|e| format!("outbound: submission server {}: {e}", settings.submission))?;
                res = sub.send(&m);
            }
            if res.is_ok() {
                any_accepted = true;
            } else if first_refusal.is_none() {
                first_refusal = res.as_ref().err().map(ToString::to_string);
            }
            sent.insert(
                s,
                Sent {
                    result: res.map_err(|e| e.to_string()),
                    settled: None,
                },
            );
        }
        let reports = Reports {
            imap: target.imap.as_deref().zip(first_uid),
            reject: need_report_reject,
            relayed: need_report_relayed,
        };
        await_arrivals(
            &remote,
            target,
            &plan,
            &scenarios,
            &reports,
            &mut sent,
            &mut inbox,
            phase_start + settings.wait,
        );
    }
    if !any_accepted {
        remote.stop();
        return Err(format!(
            "outbound: the MTA accepted none of the test messages (first refusal: {}); \
             it must relay mail from --user to --outbound-domain {}",
            first_refusal.unwrap_or_default(),
            settings.domain
        ));
    }
    // The quiet period: retries of refused recipients, duplicates and
    // reports that must not come have time to show up.
    let quiet = settings
        .quiet
        .unwrap_or_else(|| (longest_retry(&remote.log(), &plan) * 2).max(Duration::from_secs(2)))
        .min(settings.wait);
    sub.quit();
    std::thread::sleep(quiet);
    if let (Some(imap), Some(first)) = (&target.imap, first_uid) {
        inbox = Inbox::read(target, imap, first)
            .map_err(|e| format!("outbound: reading the INBOX over IMAP: {e}"))?;
    }
    remote.stop();
    let log = remote.log();
    let ctx = Ctx {
        plan: &plan,
        log: &log,
        inbox: &inbox,
        imap: first_uid.is_some(),
        submission_dsn,
        wait: settings.wait,
        quiet,
        sent: &sent,
    };
    for c in chosen {
        let outcome = match ctx.grade(c) {
            Outcome::Fail(f) => match c
                .differs
                .iter()
                .find(|(server, _)| known.iter().any(|k| k.eq_ignore_ascii_case(server)))
            {
                Some((server, note)) => Outcome::Known(f, format!("{server}: {note}")),
                None => Outcome::Fail(f),
            },
            o => o,
        };
        let settled = c
            .scenarios
            .iter()
            .filter_map(|s| sent.get(s).and_then(|st| st.settled))
            .max()
            .map_or_else(|| started.elapsed(), |t| t - started);
        let r = result(c, outcome, settled);
        report(&r);
        results.push(r);
    }
    Ok(results)
}

/// Which reports the run waits for, and where the INBOX is.
struct Reports<'a> {
    /// IMAP address and the INBOX's UIDNEXT at the start.
    imap: Option<(&'a str, u32)>,
    /// The report for the refused recipient.
    reject: bool,
    /// The "relayed" report.
    relayed: bool,
}

/// Polls the scripted server's record (and the INBOX, once a second, when
/// a report is awaited) until everything `scenarios` wait for has come or
/// `deadline` passes; marks each scenario's `settled` time.
#[allow(clippy::too_many_arguments)]
fn await_arrivals(
    remote: &Remote,
    target: &Target,
    plan: &Plan,
    scenarios: &[&'static str],
    reports: &Reports<'_>,
    sent: &mut HashMap<&'static str, Sent>,
    inbox: &mut Inbox,
    deadline: Instant,
) {
    let needs_inbox = scenarios
        .iter()
        .any(|s| (*s == "reject" && reports.reject) || (*s == "dsnoff" && reports.relayed));
    let mut last_read: Option<Instant> = None;
    loop {
        let log = remote.log();
        if let (true, Some((imap, first))) = (needs_inbox, reports.imap) {
            if last_read.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                // A failed read is retried; the final one is checked.
                if let Ok(i) = Inbox::read(target, imap, first) {
                    *inbox = i;
                }
                last_read = Some(Instant::now());
            }
        }
        let mut pending = false;
        for s in scenarios {
            let Some(st) = sent.get_mut(s) else {
                continue;
            };
            if st.settled.is_some() {
                continue;
            }
            if st.result.is_err() || arrived(s, plan, &log, inbox, reports.reject, reports.relayed)
            {
                st.settled = Some(Instant::now());
            } else {
                pending = true;
            }
        }
        if !pending || Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn result(c: &CaseInfo, outcome: Outcome, elapsed: Duration) -> CaseResult {
    CaseResult {
        name: c.name.to_string(),
        rfc: c.rfc.iter().map(|s| s.to_string()).collect(),
        title: c.title.to_string(),
        outcome,
        elapsed,
    }
}

/// True when everything `scenario` waits for has come.
fn arrived(
    scenario: &str,
    plan: &Plan,
    log: &Log,
    inbox: &Inbox,
    report_reject: bool,
    report_relayed: bool,
) -> bool {
    let delivered = |s: &str| !log.deliveries_to(&plan.addr(s)).is_empty();
    match scenario {
        "reject" => {
            delivered("accept")
                && !log.rcpts_for(&plan.addr("reject")).is_empty()
                && (!report_reject || !inbox.reports_for(&plan.addr("reject")).is_empty())
        }
        "nullsender" => !log.rcpts_for(&plan.addr("nullsender")).is_empty(),
        "dsnoff" => {
            delivered("dsnoff")
                && (!report_relayed || !inbox.reports_for(&plan.addr("dsnoff")).is_empty())
        }
        s => delivered(s),
    }
}

/// The longest gap between two attempts at one of the retried scenarios.
fn longest_retry(log: &Log, plan: &Plan) -> Duration {
    let mut gaps = Vec::new();
    let a = plan.addr("tempfail");
    let times: Vec<Instant> = log.rcpts_for(&a).iter().map(|r| r.at).collect();
    gaps.extend(times.windows(2).map(|w| w[1] - w[0]));
    for s in ["tempdata", "drop"] {
        let times: Vec<Instant> = log.data_for(&plan.addr(s)).iter().map(|d| d.at).collect();
        gaps.extend(times.windows(2).map(|w| w[1] - w[0]));
    }
    gaps.into_iter()
        .max()
        .unwrap_or(Duration::from_millis(2500))
}

fn fail(msg: impl Into<String>, got: Vec<String>) -> Outcome {
    Outcome::Fail(Failure {
        line: 0,
        msg: msg.into(),
        expected: None,
        got,
    })
}

/// The part of a message after its header section.
fn body_of(m: &[u8]) -> &[u8] {
    m.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(&[][..], |p| &m[p + 4..])
}

/// Where two texts first differ, for a report.
fn first_difference(want: &[u8], got: &[u8]) -> String {
    let w: Vec<&[u8]> = want.split(|&b| b == b'\n').collect();
    let g: Vec<&[u8]> = got.split(|&b| b == b'\n').collect();
    for i in 0..w.len().max(g.len()) {
        let (a, b) = (w.get(i), g.get(i));
        if a != b {
            return format!(
                "body line {}: sent {}, arrived {}",
                i + 1,
                a.map_or("(nothing)".to_string(), |l| crate::conn::show(l)),
                b.map_or("(nothing)".to_string(), |l| crate::conn::show(l))
            );
        }
    }
    "identical".into()
}

fn show_params(p: &[Param]) -> String {
    p.iter()
        .map(|p| match &p.value {
            Some(v) => format!("{}={v}", p.name),
            None => p.name.clone(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

struct Ctx<'a> {
    plan: &'a Plan,
    log: &'a Log,
    inbox: &'a Inbox,
    imap: bool,
    submission_dsn: bool,
    wait: Duration,
    quiet: Duration,
    sent: &'a HashMap<&'static str, Sent>,
}

impl Ctx<'_> {
    fn waited(&self) -> String {
        format!("{} s", self.wait.as_secs_f64())
    }

    /// The dialogue of every connection that carried `addr`.
    fn dialogue(&self, addr: &str) -> Vec<String> {
        let conns: BTreeSet<usize> = self.log.rcpts_for(addr).iter().map(|r| r.conn).collect();
        let mut out = Vec::new();
        for id in conns {
            if let Some(c) = self.log.conn(id) {
                out.push(format!(
                    "connection {id} ({}):",
                    if c.tls { "TLS" } else { "plain" }
                ));
                out.extend(
                    c.lines
                        .iter()
                        .filter(|l| !l.starts_with("S: 250-"))
                        .take(30)
                        .map(|l| format!("  {l}")),
                );
            }
            if out.len() > 120 {
                break;
            }
        }
        out
    }

    fn submitted(&self, scenario: &str) -> Option<Outcome> {
        match self.sent.get(scenario).map(|s| &s.result) {
            Some(Ok(())) => None,
            Some(Err(e)) => Some(Outcome::Skip(format!(
                "the MTA did not take the message: {e}"
            ))),
            None => Some(Outcome::Skip(
                "the submission server does not advertise DSN".into(),
            )),
        }
    }

    fn grade(&self, c: &CaseInfo) -> Outcome {
        match c.name {
            "outbound/5321-4.5.4.1-retry-after-4xx-rcpt" => self.tempfail(),
            "outbound/5321-4.2.5-retry-after-4xx-end-of-data" => self.tempdata(),
            "outbound/5321-4.2.1-5xx-recipient-not-retried" => self.reject(),
            "outbound/3464-2-report-for-refused-recipient" => self.bounce(),
            "outbound/5321-6.1-dropped-mid-data-delivered-once" => self.dropped(),
            "outbound/3207-4-starttls-offered-is-used" => self.tls(),
            "outbound/3461-5.2-no-report-for-null-sender" => self.null_sender(),
            "outbound/3461-5.2.1-dsn-parameters-relayed" => self.dsn_relayed(),
            "outbound/3461-5.2.2-no-dsn-parameters-to-non-dsn-server" => self.dsn_not_relayed(),
            "outbound/3461-5.2.2-relayed-report-for-notify-success" => self.relayed_report(),
            "outbound/5321-4.5.2-dot-stuffing" => self.dots(),
            other => fail(format!("no grader for {other}"), Vec::new()),
        }
    }

    /// Exactly one delivery to `scenario`'s address, the body of its
    /// message intact.
    fn once_intact(&self, scenario: &str, what: &str) -> Result<&Delivery, Outcome> {
        self.once_intact_of(scenario, scenario, what)
    }

    /// [`Ctx::once_intact`] for a recipient (`rcpt`) of the message of
    /// another scenario (`message`).
    fn once_intact_of(&self, rcpt: &str, message: &str, what: &str) -> Result<&Delivery, Outcome> {
        let a = self.plan.addr(rcpt);
        let got = self.log.deliveries_to(&a);
        match got.len() {
            0 => Err(fail(
                format!("<{a}> was not delivered within {} ({what})", self.waited()),
                self.dialogue(&a),
            )),
            1 => {
                let want = self.plan.body(message);
                let body = body_of(&got[0].data);
                if body == want.as_bytes() {
                    Ok(got[0])
                } else {
                    Err(fail(
                        format!(
                            "the message arrived changed ({} body bytes sent, {} arrived)",
                            want.len(),
                            body.len()
                        ),
                        vec![first_difference(want.as_bytes(), body)],
                    ))
                }
            }
            n => Err(fail(
                format!(
                    "<{a}> was delivered {n} times (each accepted with 250 after the final dot): \
                     a duplicate"
                ),
                self.dialogue(&a),
            )),
        }
    }

    fn failed_report_for(&self, addr: &str) -> Option<u32> {
        self.inbox.reports_for(addr).iter().find_map(|r| {
            let g = r.recipient(addr)?;
            field(g, "Action")
                .is_some_and(|a| a.eq_ignore_ascii_case("failed"))
                .then_some(r.uid)
        })
    }

    fn tempfail(&self) -> Outcome {
        if let Some(o) = self.submitted("tempfail") {
            return o;
        }
        let a = self.plan.addr("tempfail");
        let tries = self.log.rcpts_for(&a);
        if tries.is_empty() {
            return fail(
                format!(
                    "the MTA never tried to deliver to <{a}> within {}",
                    self.waited()
                ),
                Vec::new(),
            );
        }
        if tries.len() == 1 {
            return fail(
                format!(
                    "RCPT TO:<{a}> was answered 451 and never tried again within {}: \
                     mail that cannot be transmitted immediately MUST be queued and \
                     periodically retried (RFC 5321 4.5.4.1)",
                    self.waited()
                ),
                self.dialogue(&a),
            );
        }
        if let Err(o) = self.once_intact("tempfail", "after the 451 to its RCPT") {
            return o;
        }
        if let Some(uid) = self.failed_report_for(&a) {
            return fail(
                format!("the sender got a \"failed\" report for <{a}> (UID {uid}), though 451 is a temporary failure"),
                Vec::new(),
            );
        }
        Outcome::Pass
    }

    fn tempdata(&self) -> Outcome {
        if let Some(o) = self.submitted("tempdata") {
            return o;
        }
        let a = self.plan.addr("tempdata");
        let tries = self.log.data_for(&a);
        if tries.is_empty() {
            return fail(
                format!(
                    "the MTA never sent the message for <{a}> within {}",
                    self.waited()
                ),
                self.dialogue(&a),
            );
        }
        if tries.len() == 1 && tries[0].end == DataEnd::Deferred {
            return fail(
                format!(
                    "the message was answered 451 after its final dot and never sent again within {} \
                     (RFC 5321 4.2.5: the client retains responsibility and requeues it, 4.5.4.1)",
                    self.waited()
                ),
                self.dialogue(&a),
            );
        }
        if let Err(o) = self.once_intact("tempdata", "after the 451 to its final dot") {
            return o;
        }
        if let Some(uid) = self.failed_report_for(&a) {
            return fail(
                format!("the sender got a \"failed\" report for <{a}> (UID {uid}), though 451 is a temporary failure"),
                Vec::new(),
            );
        }
        Outcome::Pass
    }

    fn reject(&self) -> Outcome {
        if let Some(o) = self.submitted("reject") {
            return o;
        }
        let refused = self.plan.addr("reject");
        let tries = self.log.rcpts_for(&refused);
        if tries.is_empty() {
            return fail(
                format!("the MTA never tried <{refused}> within {}", self.waited()),
                Vec::new(),
            );
        }
        if tries.len() > 1 {
            return fail(
                format!(
                    "RCPT TO:<{refused}> was sent {} times although the first got 550 \
                     (RFC 5321 4.2.1: the client SHOULD NOT repeat the exact request; a 5yz \
                     is permanent), waited {} s for more",
                    tries.len(),
                    self.quiet.as_secs_f64()
                ),
                self.dialogue(&refused),
            );
        }
        match self.once_intact_of(
            "accept",
            "reject",
            "the recipient accepted beside the refused one",
        ) {
            Ok(_) => Outcome::Pass,
            Err(o) => o,
        }
    }

    fn bounce(&self) -> Outcome {
        if let Some(o) = self.submitted("reject") {
            return o;
        }
        if !self.imap {
            return Outcome::Skip(
                "needs --imap (the report is read from the sender's INBOX)".into(),
            );
        }
        let refused = self.plan.addr("reject");
        let accepted = self.plan.addr("accept");
        let reports = self.inbox.reports_for(&refused);
        let Some(r) = reports.first() else {
            let others = self.inbox.mentioning(&refused);
            let why = if others.is_empty() {
                String::new()
            } else {
                format!(
                    "; INBOX messages mentioning it, but no RFC 3464 multipart/report with a \
                     Final-Recipient for it: UIDs {others:?}"
                )
            };
            return fail(
                format!(
                    "no delivery status notification naming <{refused}> reached the sender's INBOX \
                     within {} (RFC 5321 6.1: after a delivery failure the MTA MUST formulate \
                     and mail a notification){why}",
                    self.waited()
                ),
                Vec::new(),
            );
        };
        let mut problems = Vec::new();
        if r.report_type.as_deref() != Some("delivery-status") {
            problems.push(format!(
                "multipart/report with report-type {:?}, not delivery-status (RFC 3461 6.2)",
                r.report_type
            ));
        }
        if field(&r.per_message, "Reporting-MTA").is_none() {
            problems.push("no Reporting-MTA field (RFC 3461 6.3 b)".into());
        }
        if let Some(rp) = &r.return_path {
            if rp.trim() != "<>" {
                problems.push(format!(
                    "Return-Path: {rp}: a notification MUST be sent with the null reverse-path (RFC 5321 6.1, RFC 3461 6.1)"
                ));
            }
        }
        if let Some(g) = r.recipient(&refused) {
            match field(g, "Action") {
                Some(a) if a.eq_ignore_ascii_case("failed") => {}
                a => problems.push(format!("Action: {a:?}, expected failed (RFC 3464 2.3.3)")),
            }
            match field(g, "Status") {
                Some(s) if is_status(s, '5') => {}
                s => problems.push(format!("Status: {s:?}, expected 5.X.X (RFC 3461 6.3 g)")),
            }
            if field(g, "Remote-MTA").is_none() {
                problems.push("no Remote-MTA field (RFC 3461 6.3 h)".into());
            }
            match field(g, "Diagnostic-Code") {
                Some(d) if d.trim_start().to_ascii_lowercase().starts_with("smtp") => {}
                d => problems.push(format!(
                    "Diagnostic-Code: {d:?}, expected the remote's reply, type smtp (RFC 3461 6.3 i)"
                )),
            }
            if let Some(o) = field(g, "Original-Recipient") {
                problems.push(format!(
                    "Original-Recipient: {o}, though no ORCPT was given (RFC 3461 6.3 d: MUST NOT appear)"
                ));
            }
        }
        if let Some(g) = r.recipient(&accepted) {
            if field(g, "Action").is_some_and(|a| a.eq_ignore_ascii_case("failed")) {
                problems.push(format!(
                    "reports <{accepted}>, which was delivered, as failed"
                ));
            }
        }
        if !problems.is_empty() {
            return fail(
                format!(
                    "the report (INBOX UID {}) is not what RFC 3461/3464 ask for",
                    r.uid
                ),
                problems,
            );
        }
        let mut warnings = Vec::new();
        if reports.len() > 1 {
            warnings.push(format!("{} reports name <{refused}>", reports.len()));
        }
        if r.recipient(&accepted).is_some() {
            warnings.push(format!(
                "the report also describes <{accepted}>, which asked for no notification (RFC 3461 5.2.8 SHOULD NOT)"
            ));
        }
        if warnings.is_empty() {
            Outcome::Pass
        } else {
            Outcome::Warn(warnings.join("; "))
        }
    }

    fn dropped(&self) -> Outcome {
        if let Some(o) = self.submitted("drop") {
            return o;
        }
        let a = self.plan.addr("drop");
        let tries = self.log.data_for(&a);
        if tries.is_empty() {
            return fail(
                format!(
                    "the MTA never sent the message for <{a}> within {}",
                    self.waited()
                ),
                Vec::new(),
            );
        }
        if tries[0].end != DataEnd::Dropped {
            return fail(
                format!(
                    "the scripted server did not get to drop the first attempt (it ended {:?}); \
                     the message is smaller than expected",
                    tries[0].end
                ),
                Vec::new(),
            );
        }
        match self.once_intact(
            "drop",
            "after the connection was dropped mid-DATA: RFC 5321 6.1, the message must not be lost",
        ) {
            Ok(_) => Outcome::Pass,
            Err(o) => o,
        }
    }

    fn tls(&self) -> Outcome {
        if let Some(o) = self.submitted("tls") {
            return o;
        }
        let d = match self.once_intact("tls", "offered STARTTLS") {
            Ok(d) => d,
            Err(o) => return o,
        };
        let Some(c) = self.log.conn(d.conn) else {
            return fail("no record of the delivering connection", Vec::new());
        };
        if c.mail_before_ehlo_after_tls {
            return fail(
                "after STARTTLS the MTA sent MAIL without a new EHLO (RFC 3207 4.2: the SMTP \
                 state is reset; the client MUST discard what it knew and SHOULD send EHLO first)",
                self.dialogue(&self.plan.addr("tls")),
            );
        }
        if !d.tls {
            let errors: Vec<String> = self
                .log
                .conns
                .iter()
                .filter_map(|c| {
                    c.tls_error
                        .as_ref()
                        .map(|e| format!("connection {}: {e}", c.id))
                })
                .collect();
            let why = if errors.is_empty() {
                String::new()
            } else {
                format!(" (TLS handshakes that failed: {})", errors.join("; "))
            };
            return Outcome::Warn(format!(
                "delivered in plaintext although the next hop offered STARTTLS{why}; \
                 allowed (RFC 3207 4: opportunistic), not encrypted"
            ));
        }
        Outcome::Pass
    }

    fn null_sender(&self) -> Outcome {
        if let Some(o) = self.submitted("nullsender") {
            return o;
        }
        if !self.imap {
            return Outcome::Skip(
                "needs --imap (that no report arrives is seen in the sender's INBOX)".into(),
            );
        }
        let a = self.plan.addr("nullsender");
        let tries = self.log.rcpts_for(&a);
        if tries.is_empty() {
            return fail(
                format!("the MTA never tried <{a}> within {}", self.waited()),
                Vec::new(),
            );
        }
        if tries.len() > 1 {
            return fail(
                format!(
                    "RCPT TO:<{a}> was sent {} times although the first got 550 (RFC 5321 4.2.1)",
                    tries.len()
                ),
                self.dialogue(&a),
            );
        }
        let uids = self.inbox.mentioning(&a);
        if !uids.is_empty() {
            return fail(
                format!(
                    "a notification about <{a}> reached the INBOX (UIDs {uids:?}) although the \
                     message's reverse-path was null: RFC 3461 5.2, a DSN MUST NOT be returned \
                     for it even if the sender's address is available from other sources \
                     (e.g., the message header)"
                ),
                Vec::new(),
            );
        }
        if !tries[0].reverse_path.is_empty() {
            return Outcome::Warn(format!(
                "relayed with MAIL FROM:<{}> instead of the null reverse-path it came with \
                 (RFC 5321 4.5.5: SHOULD NOT change a null reverse-path to a non-null one)",
                tries[0].reverse_path
            ));
        }
        Outcome::Pass
    }

    fn dsn_relayed(&self) -> Outcome {
        if !self.submission_dsn {
            return Outcome::Skip("the submission server does not advertise DSN".into());
        }
        if let Some(o) = self.submitted("dsn") {
            return o;
        }
        let a = self.plan.addr("dsn");
        let d = match self.once_intact("dsn", "with DSN parameters") {
            Ok(d) => d,
            Err(o) => return o,
        };
        let mut problems = Vec::new();
        if !d.mode.dsn {
            problems.push("delivered on a connection not offered DSN".to_string());
        }
        match param(&d.mail_params, "RET") {
            Some(v) if v.eq_ignore_ascii_case("HDRS") => {}
            v => problems.push(format!(
                "MAIL: RET={v:?}, given RET=HDRS (RFC 3461 5.2.1 b)"
            )),
        }
        match param(&d.mail_params, "ENVID") {
            Some(v) if xtext_decode(v) == self.plan.envid_on.1 => {}
            v => problems.push(format!(
                "MAIL: ENVID={v:?}, given ENVID={} (RFC 3461 5.2.1 a: the same value)",
                self.plan.envid_on.0
            )),
        }
        let rcpt = d
            .rcpts
            .iter()
            .find(|(r, _)| r.eq_ignore_ascii_case(&a))
            .map(|(_, p)| p.as_slice())
            .unwrap_or_default();
        let notify: BTreeSet<String> = param(rcpt, "NOTIFY")
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_ascii_uppercase)
            .collect();
        if notify != BTreeSet::from(["SUCCESS".to_string(), "FAILURE".to_string()]) {
            problems.push(format!(
                "RCPT: NOTIFY={:?}, given NOTIFY=SUCCESS,FAILURE (RFC 3461 5.2.1 c)",
                param(rcpt, "NOTIFY")
            ));
        }
        match param(rcpt, "ORCPT").and_then(|v| v.split_once(';')) {
            Some((t, v))
                if t.eq_ignore_ascii_case("rfc822") && xtext_decode(v) == self.plan.orcpt_on.1 => {}
            _ => problems.push(format!(
                "RCPT: ORCPT={:?}, given ORCPT={} (RFC 3461 5.2.1 d: the identical address, case kept)",
                param(rcpt, "ORCPT"),
                self.plan.orcpt_on.0
            )),
        }
        if problems.is_empty() {
            Outcome::Pass
        } else {
            problems.push(format!(
                "as relayed: MAIL {} / RCPT {}",
                show_params(&d.mail_params),
                show_params(rcpt)
            ));
            fail(
                "the DSN parameters did not reach the next hop unchanged",
                problems,
            )
        }
    }

    fn dsn_not_relayed(&self) -> Outcome {
        if !self.submission_dsn {
            return Outcome::Skip("the submission server does not advertise DSN".into());
        }
        if let Some(o) = self.submitted("dsnoff") {
            return o;
        }
        let mut problems = Vec::new();
        for m in self.log.mails.iter().filter(|m| !m.mode.dsn) {
            if param(&m.params, "RET").is_some() || param(&m.params, "ENVID").is_some() {
                problems.push(format!(
                    "connection {}: MAIL FROM:<{}> {}",
                    m.conn,
                    m.reverse_path,
                    show_params(&m.params)
                ));
            }
        }
        for r in self.log.rcpts.iter().filter(|r| !r.mode.dsn) {
            if param(&r.params, "NOTIFY").is_some() || param(&r.params, "ORCPT").is_some() {
                problems.push(format!(
                    "connection {}: RCPT TO:<{}> {}",
                    r.conn,
                    r.addr,
                    show_params(&r.params)
                ));
            }
        }
        if !problems.is_empty() {
            return fail(
                "DSN parameters sent to a next hop that does not offer DSN (RFC 3461 5.2.2 a: \
                 MUST NOT be issued); the scripted server answered 555",
                problems,
            );
        }
        match self.once_intact("dsnoff", "to a next hop without DSN") {
            Ok(_) => Outcome::Pass,
            Err(o) => o,
        }
    }

    fn relayed_report(&self) -> Outcome {
        if !self.submission_dsn {
            return Outcome::Skip("the submission server does not advertise DSN".into());
        }
        if let Some(o) = self.submitted("dsnoff") {
            return o;
        }
        if !self.imap {
            return Outcome::Skip(
                "needs --imap (the report is read from the sender's INBOX)".into(),
            );
        }
        let a = self.plan.addr("dsnoff");
        if self.log.deliveries_to(&a).is_empty() {
            return fail(
                format!(
                    "<{a}> was not delivered within {}, so nothing was relayed",
                    self.waited()
                ),
                self.dialogue(&a),
            );
        }
        let reports = self.inbox.reports_for(&a);
        let Some(r) = reports.first() else {
            return fail(
                format!(
                    "no report naming <{a}> reached the sender's INBOX within {} (RFC 3461 \
                     5.2.2 b: NOTIFY included SUCCESS and the next hop, which does not offer \
                     DSN, answered 250: the client MUST issue a \"relayed\" DSN)",
                    self.waited()
                ),
                Vec::new(),
            );
        };
        let mut problems = Vec::new();
        if let Some(g) = r.recipient(&a) {
            match field(g, "Action") {
                Some(v) if v.eq_ignore_ascii_case("relayed") => {}
                v => problems.push(format!(
                    "Action: {v:?}, expected relayed (RFC 3461 5.2.2 b)"
                )),
            }
            match field(g, "Status") {
                Some(s) if is_status(s, '2') => {}
                s => problems.push(format!("Status: {s:?}, expected 2.X.X (RFC 3461 6.3 g)")),
            }
            match field(g, "Original-Recipient") {
                Some(o) if typed_address(o) == self.plan.orcpt_off.1 => {}
                o => problems.push(format!(
                    "Original-Recipient: {o:?}, expected rfc822;{} (RFC 3461 6.3 d: from the ORCPT)",
                    self.plan.orcpt_off.1
                )),
            }
        }
        match field(&r.per_message, "Original-Envelope-Id") {
            Some(v) if v == self.plan.envid_off.1 => {}
            v => problems.push(format!(
                "Original-Envelope-Id: {v:?}, expected {:?}: the ENVID {} xtext-decoded (RFC 3461 6.3 a)",
                self.plan.envid_off.1, self.plan.envid_off.0
            )),
        }
        if field(&r.per_message, "Reporting-MTA").is_none() {
            problems.push("no Reporting-MTA field (RFC 3461 6.3 b)".into());
        }
        if let Some(rp) = &r.return_path {
            if rp.trim() != "<>" {
                problems.push(format!(
                    "Return-Path: {rp}: a DSN MUST be sent with the null reverse-path (RFC 3461 6.1)"
                ));
            }
        }
        if problems.is_empty() {
            Outcome::Pass
        } else {
            fail(
                format!(
                    "the \"relayed\" report (INBOX UID {}) is not what RFC 3461 asks for",
                    r.uid
                ),
                problems,
            )
        }
    }

    fn dots(&self) -> Outcome {
        if let Some(o) = self.submitted("dots") {
            return o;
        }
        match self.once_intact("dots", "to a next hop without extensions") {
            Ok(_) => Outcome::Pass,
            Err(o) => o,
        }
    }
}

/// `s` starts with an RFC 3463 status code of class `class` (`5.1.1`).
fn is_status(s: &str, class: char) -> bool {
    let code = s.split_whitespace().next().unwrap_or("");
    let parts: Vec<&str> = code.split('.').collect();
    parts.len() == 3
        && parts[0] == class.to_string()
        && parts[1..]
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xtext_round_trip() {
        assert_eq!(xtext_encode("Env+a=b c"), "Env+2Ba+3Db+20c");
        assert_eq!(xtext_decode("Env+2Ba+3Db+20c"), "Env+a=b c");
        assert_eq!(xtext_decode("a+"), "a+");
        assert_eq!(xtext_decode("a+zz"), "a+zz");
    }

    #[test]
    fn dates() {
        assert_eq!(date(UNIX_EPOCH), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(
            date(UNIX_EPOCH + Duration::from_secs(951_782_400 + 3661)),
            "Tue, 29 Feb 2000 01:01:01 +0000"
        );
    }

    #[test]
    fn status_codes() {
        assert!(is_status("5.1.1", '5'));
        assert!(is_status("2.0.0 (relayed)", '2'));
        assert!(!is_status("4.1.1", '5'));
        assert!(!is_status("5.1", '5'));
    }

    #[test]
    fn case_names_are_unique_and_outbound() {
        let names: BTreeSet<&str> = CASES.iter().map(|c| c.name).collect();
        assert_eq!(names.len(), CASES.len());
        for c in CASES {
            assert!(c.name.starts_with("outbound/"));
            assert!(!c.scenarios.is_empty());
        }
    }

    #[test]
    fn bodies_and_differences() {
        assert_eq!(body_of(b"A: b\r\n\r\nx\r\n"), b"x\r\n");
        assert_eq!(
            first_difference(b"a\r\n.b\r\n", b"a\r\nb\r\n"),
            "body line 2: sent `.b\\r`, arrived `b\\r`"
        );
    }

    // The graders on made-up observations: each can fail, and says why.

    fn plan() -> Plan {
        Plan {
            token: "pt1".into(),
            domain: "d.test".into(),
            sender: "alice@localhost".into(),
            envid_on: ("Env+2Bpt1".into(), "Env+pt1".into()),
            envid_off: ("Env+2BOff-pt1".into(), "Env+Off-pt1".into()),
            orcpt_on: (
                "rfc822;Orig+2BDsn-pt1@Example.Test".into(),
                "Orig+Dsn-pt1@Example.Test".into(),
            ),
            orcpt_off: (
                "rfc822;Orig-Off-pt1@Example.Test".into(),
                "Orig-Off-pt1@Example.Test".into(),
            ),
        }
    }

    fn attempt(addr: &str, code: u16, reverse_path: &str) -> remote::RcptAttempt {
        remote::RcptAttempt {
            addr: addr.into(),
            conn: 1,
            at: Instant::now(),
            code,
            mode: Mode::FULL,
            reverse_path: reverse_path.into(),
            params: Vec::new(),
        }
    }

    fn delivered(
        p: &Plan,
        scenario: &str,
        rcpt: &str,
        mail_params: Vec<Param>,
        rcpt_params: Vec<Param>,
    ) -> Delivery {
        let m = p.submission(scenario);
        Delivery {
            conn: 1,
            at: Instant::now(),
            tls: true,
            mode: Mode::FULL,
            reverse_path: m.from,
            mail_params,
            rcpts: vec![(p.addr(rcpt), rcpt_params)],
            data: [b"Received: by mta\r\n".to_vec(), m.content].concat(),
        }
    }

    fn prm(name: &str, value: &str) -> Param {
        Param {
            name: name.into(),
            value: Some(value.into()),
        }
    }

    fn grade(name: &str, log: &Log, inbox: &Inbox, imap: bool) -> Outcome {
        let p = plan();
        let sent: HashMap<&'static str, Sent> = [
            "tempfail",
            "tempdata",
            "reject",
            "tls",
            "nullsender",
            "dsn",
            "drop",
            "dsnoff",
            "dots",
        ]
        .into_iter()
        .map(|s| {
            (
                s,
                Sent {
                    result: Ok(()),
                    settled: None,
                },
            )
        })
        .collect();
        let ctx = Ctx {
            plan: &p,
            log,
            inbox,
            imap,
            submission_dsn: true,
            wait: Duration::from_secs(5),
            quiet: Duration::from_secs(2),
            sent: &sent,
        };
        let case = CASES.iter().find(|c| c.name == name).unwrap();
        ctx.grade(case)
    }

    fn failure(o: &Outcome) -> String {
        match o {
            Outcome::Fail(f) => format!("{} {}", f.msg, f.got.join(" ")),
            other => panic!("not a FAIL: {other:?}"),
        }
    }

    const REJECT: &str = "outbound/5321-4.2.1-5xx-recipient-not-retried";
    const BOUNCE: &str = "outbound/3464-2-report-for-refused-recipient";

    #[test]
    fn a_refused_recipient_tried_again_fails() {
        let p = plan();
        let mut log = Log::default();
        log.rcpts.push(attempt(&p.addr("reject"), 550, &p.sender));
        log.deliveries
            .push(delivered(&p, "reject", "accept", vec![], vec![]));
        assert!(matches!(
            grade(REJECT, &log, &Inbox::default(), true),
            Outcome::Pass
        ));
        log.rcpts.push(attempt(&p.addr("reject"), 550, &p.sender));
        assert!(failure(&grade(REJECT, &log, &Inbox::default(), true)).contains("sent 2 times"));
        log.rcpts.pop();
        log.deliveries
            .push(delivered(&p, "reject", "accept", vec![], vec![]));
        assert!(
            failure(&grade(REJECT, &log, &Inbox::default(), true)).contains("delivered 2 times")
        );
    }

    fn report(fields: &str) -> Inbox {
        let raw = format!(
            "Return-Path: <>\r\nContent-Type: multipart/report; report-type=delivery-status; \
             boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nno\r\n--b\r\n\
             Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mta\r\n\r\n\
             Final-Recipient: rfc822; reject-pt1@d.test\r\n{fields}\r\n--b--\r\n"
        );
        let messages = vec![(5, raw.into_bytes())];
        let reports = messages
            .iter()
            .filter_map(|(u, m)| Report::parse(*u, m))
            .collect();
        Inbox { messages, reports }
    }

    #[test]
    fn reports_are_checked_field_by_field() {
        let log = Log::default();
        let full = "Action: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mx.d.test\r\n\
                    Diagnostic-Code: smtp; 550 5.1.1 no\r\n";
        assert!(matches!(
            grade(BOUNCE, &log, &report(full), true),
            Outcome::Pass
        ));
        let no_remote = "Action: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 no\r\n";
        assert!(failure(&grade(BOUNCE, &log, &report(no_remote), true)).contains("Remote-MTA"));
        let delayed = full.replace("failed", "delayed").replace("5.1.1", "4.4.1");
        let f = failure(&grade(BOUNCE, &log, &report(&delayed), true));
        assert!(f.contains("Action") && f.contains("Status"), "{f}");
        let orig = format!("{full}Original-Recipient: rfc822;reject-pt1@d.test\r\n");
        assert!(failure(&grade(BOUNCE, &log, &report(&orig), true)).contains("MUST NOT appear"));
        assert!(
            failure(&grade(BOUNCE, &log, &Inbox::default(), true)).contains("no delivery status")
        );
        assert!(matches!(
            grade(BOUNCE, &log, &Inbox::default(), false),
            Outcome::Skip(_)
        ));
    }

    #[test]
    fn a_report_for_the_null_sender_fails_a_new_reverse_path_warns() {
        const CASE: &str = "outbound/3461-5.2-no-report-for-null-sender";
        let p = plan();
        let mut log = Log::default();
        log.rcpts.push(attempt(&p.addr("nullsender"), 550, ""));
        assert!(matches!(
            grade(CASE, &log, &Inbox::default(), true),
            Outcome::Pass
        ));
        let inbox = Inbox {
            messages: vec![(
                9,
                b"Subject: undeliverable: nullsender-pt1@d.test\r\n\r\n".to_vec(),
            )],
            reports: Vec::new(),
        };
        assert!(failure(&grade(CASE, &log, &inbox, true)).contains("MUST NOT be returned"));
        log.rcpts[0].reverse_path = "MAILER-DAEMON@mta".into();
        assert!(matches!(
            grade(CASE, &log, &Inbox::default(), true),
            Outcome::Warn(_)
        ));
    }

    #[test]
    fn dsn_parameters_must_arrive_unchanged() {
        const CASE: &str = "outbound/3461-5.2.1-dsn-parameters-relayed";
        let p = plan();
        let mail = vec![prm("RET", "HDRS"), prm("ENVID", "Env+2Bpt1")];
        let rcpt = |orcpt: &str| vec![prm("NOTIFY", "FAILURE,SUCCESS"), prm("ORCPT", orcpt)];
        let mut log = Log::default();
        log.deliveries.push(delivered(
            &p,
            "dsn",
            "dsn",
            mail.clone(),
            rcpt("RFC822;Orig+2bDsn-pt1@Example.Test"),
        ));
        assert!(matches!(
            grade(CASE, &log, &Inbox::default(), true),
            Outcome::Pass
        ));
        log.deliveries[0] = delivered(
            &p,
            "dsn",
            "dsn",
            mail,
            rcpt("rfc822;orig+2Bdsn-pt1@example.test"),
        );
        assert!(failure(&grade(CASE, &log, &Inbox::default(), true)).contains("ORCPT"));
    }

    #[test]
    fn a_line_that_lost_its_period_fails_dot_stuffing() {
        const CASE: &str = "outbound/5321-4.5.2-dot-stuffing";
        let p = plan();
        let mut log = Log::default();
        log.deliveries
            .push(delivered(&p, "dots", "dots", vec![], vec![]));
        assert!(matches!(
            grade(CASE, &log, &Inbox::default(), true),
            Outcome::Pass
        ));
        let d = &mut log.deliveries[0];
        let at = d.data.windows(4).position(|w| w == b"\n..t").unwrap();
        d.data.remove(at + 1);
        assert!(failure(&grade(CASE, &log, &Inbox::default(), true)).contains("body line 3"));
    }
}
