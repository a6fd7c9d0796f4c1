//! What to do with mail that fails the inbound checks, per receiving
//! domain (`minimail up --auth-policy FILE`). The defaults are the issue's
//! and what receivers commonly do: a DMARC failure of a domain publishing
//! `p=reject` is refused, `p=quarantine` goes to Junk, an SPF hard fail
//! (`-all`) alone is only noted in Authentication-Results.
//!
//! The file has one line per domain of ours (`*` for every other one),
//! `#` comments, and `key=value` words:
//!
//! ```text
//! # DOMAIN   dmarc-reject=ACTION dmarc-quarantine=ACTION spf-fail=ACTION
//! *          spf-fail=junk
//! example.org spf-fail=refuse
//! lists.example.org dmarc-reject=junk
//! ```
//!
//! ACTION is `refuse` (550 at the end of DATA), `junk` (delivered to the
//! Junk mailbox) or `note` (delivered as usual; the verdict is in the
//! header). Keys left out take the `*` line's value, then the default.
//! One SMTP transaction gets one answer, so a message for recipients in
//! several domains is treated by the strictest of their policies.

use crate::verify::{Disposition, Verdict};
use std::collections::HashMap;
use std::path::Path;

/// What to do about one failed check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// Deliver as usual (the header records the failure).
    Note,
    /// Deliver to the Junk mailbox.
    Junk,
    /// Refuse at the end of DATA.
    Refuse,
}

impl Action {
    fn parse(s: &str) -> Option<Action> {
        match s {
            "note" => Some(Action::Note),
            "junk" => Some(Action::Junk),
            "refuse" => Some(Action::Refuse),
            _ => None,
        }
    }

    /// The word used in the file.
    pub fn name(self) -> &'static str {
        match self {
            Action::Note => "note",
            Action::Junk => "junk",
            Action::Refuse => "refuse",
        }
    }
}

/// One domain's choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DomainPolicy {
    /// DMARC failed and the sender's domain publishes `p=reject`.
    pub dmarc_reject: Action,
    /// DMARC failed and the sender's domain publishes `p=quarantine`.
    pub dmarc_quarantine: Action,
    /// SPF said `fail` (the sender's domain ends its record with `-all`).
    pub spf_fail: Action,
}

impl Default for DomainPolicy {
    fn default() -> Self {
        DomainPolicy {
            dmarc_reject: Action::Refuse,
            dmarc_quarantine: Action::Junk,
            spf_fail: Action::Note,
        }
    }
}

/// Keys a line may set; None = not set on that line.
#[derive(Debug, Clone, Copy, Default)]
struct Line {
    dmarc_reject: Option<Action>,
    dmarc_quarantine: Option<Action>,
    spf_fail: Option<Action>,
}

impl Line {
    fn over(self, base: DomainPolicy) -> DomainPolicy {
        DomainPolicy {
            dmarc_reject: self.dmarc_reject.unwrap_or(base.dmarc_reject),
            dmarc_quarantine: self.dmarc_quarantine.unwrap_or(base.dmarc_quarantine),
            spf_fail: self.spf_fail.unwrap_or(base.spf_fail),
        }
    }
}

/// Every domain's policy.
#[derive(Debug, Clone, Default)]
pub struct PolicyMap {
    default: DomainPolicy,
    domains: HashMap<String, DomainPolicy>,
}

impl PolicyMap {
    /// Read a policy file; errors name the line.
    pub fn load(path: &Path) -> Result<PolicyMap, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        PolicyMap::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parse the text of a policy file; errors name the line.
    pub fn parse(text: &str) -> Result<PolicyMap, String> {
        let mut star = Line::default();
        let mut lines: Vec<(String, Line)> = Vec::new();
        let mut seen = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let content = raw.split('#').next().unwrap_or("").trim();
            let mut words = content.split_whitespace();
            let Some(domain) = words.next() else {
                continue;
            };
            let domain = domain.trim_end_matches('.').to_ascii_lowercase();
            if domain != "*"
                && (domain.is_empty() || !domain.contains(|c: char| c.is_ascii_alphanumeric()))
            {
                return Err(format!("line {n}: {domain:?} is not a domain or *"));
            }
            if let Some(first) = seen.insert(domain.clone(), n) {
                return Err(format!("line {n}: {domain} again (first on line {first})"));
            }
            let mut line = Line::default();
            let mut any = false;
            for word in words {
                let Some((key, value)) = word.split_once('=') else {
                    return Err(format!("line {n}: {word:?} is not key=value"));
                };
                let action = Action::parse(value).ok_or_else(|| {
                    format!("line {n}: {key}={value:?}: the action is refuse, junk or note")
                })?;
                let slot = match key {
                    "dmarc-reject" => &mut line.dmarc_reject,
                    "dmarc-quarantine" => &mut line.dmarc_quarantine,
                    "spf-fail" => &mut line.spf_fail,
                    _ => {
                        return Err(format!(
                        "line {n}: unknown key {key:?} (dmarc-reject, dmarc-quarantine, spf-fail)"
                    ))
                    }
                };
                *slot = Some(action);
                any = true;
            }
            if !any {
                return Err(format!("line {n}: {domain} sets nothing"));
            }
            if domain == "*" {
                star = line;
            } else {
                lines.push((domain, line));
            }
        }
        let default = star.over(DomainPolicy::default());
        let domains = lines
            .into_iter()
            .map(|(d, line)| (d, line.over(default)))
            .collect();
        Ok(PolicyMap { default, domains })
    }

    /// The policy of the receiving domain `domain`.
    pub fn for_domain(&self, domain: &str) -> DomainPolicy {
        self.domains
            .get(&domain.trim_end_matches('.').to_ascii_lowercase())
            .copied()
            .unwrap_or(self.default)
    }

    /// What to do with a message checked as `verdict` for recipients in
    /// `domains`: the strictest of their policies.
    pub fn decide<'a>(
        &self,
        verdict: &Verdict,
        domains: impl IntoIterator<Item = &'a str>,
    ) -> Disposition {
        let mut worst: Option<(Action, &'static str)> = None;
        for domain in domains {
            let p = self.for_domain(domain);
            let mut consider = |action: Action, why: &'static str| {
                if worst.is_none_or(|(a, _)| action > a) {
                    worst = Some((action, why));
                }
            };
            match verdict.findings.dmarc_fail {
                Some(crate::verify::Published::Reject) => consider(p.dmarc_reject, "dmarc"),
                Some(crate::verify::Published::Quarantine) => consider(p.dmarc_quarantine, "dmarc"),
                None => {}
            }
            if verdict.findings.spf_fail {
                consider(p.spf_fail, "spf");
            }
        }
        match worst {
            Some((Action::Refuse, "dmarc")) => Disposition::Reject(format!(
                "5.7.1 DMARC policy of {} rejects this message (not aligned with SPF or DKIM)",
                verdict.findings.dmarc_domain
            )),
            Some((Action::Refuse, _)) => Disposition::Reject(format!(
                "5.7.23 SPF validation failed: {} does not designate {} as a permitted sender",
                verdict.findings.spf_domain, verdict.findings.ip
            )),
            Some((Action::Junk, _)) => Disposition::Quarantine,
            _ => Disposition::Accept,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::verify::{Findings, Published};

    fn verdict(dmarc_fail: Option<Published>, spf_fail: bool) -> Verdict {
        Verdict {
            header: String::new(),
            disposition: Disposition::Accept,
            summary: String::new(),
            findings: Findings {
                dmarc_fail,
                dmarc_domain: "sender.test".into(),
                spf_fail,
                spf_domain: "sender.test".into(),
                ip: "192.0.2.1".into(),
            },
        }
    }

    #[test]
    fn defaults_refuse_reject_junk_quarantine_and_note_spf() {
        let p = PolicyMap::default();
        let d = p.decide(&verdict(Some(Published::Reject), true), ["a.test"]);
        assert!(
            matches!(d, Disposition::Reject(ref t) if t.starts_with("5.7.1 DMARC policy of sender.test")),
            "{d:?}"
        );
        assert_eq!(
            p.decide(&verdict(Some(Published::Quarantine), false), ["a.test"]),
            Disposition::Quarantine
        );
        assert_eq!(
            p.decide(&verdict(None, true), ["a.test"]),
            Disposition::Accept
        );
        assert_eq!(
            p.decide(&verdict(None, false), ["a.test"]),
            Disposition::Accept
        );
    }

    #[test]
    fn star_then_domain_lines_overlay_and_the_strictest_wins() {
        let p = PolicyMap::parse(
            "# comment\n\n*  spf-fail=junk\nB.test. spf-fail=refuse dmarc-reject=note # trailing\n",
        )
        .unwrap();
        assert_eq!(
            p.for_domain("b.test"),
            DomainPolicy {
                dmarc_reject: Action::Note,
                dmarc_quarantine: Action::Junk,
                spf_fail: Action::Refuse
            }
        );
        assert_eq!(p.for_domain("other.test").spf_fail, Action::Junk);
        assert_eq!(
            p.decide(&verdict(None, true), ["a.test"]),
            Disposition::Quarantine
        );
        let d = p.decide(&verdict(None, true), ["a.test", "b.test"]);
        assert!(
            matches!(d, Disposition::Reject(ref t) if t.starts_with("5.7.23 SPF validation failed: sender.test does not designate 192.0.2.1")),
            "{d:?}"
        );
        // b.test only notes DMARC rejects; a.test refuses them.
        assert_eq!(
            p.decide(&verdict(Some(Published::Reject), false), ["b.test"]),
            Disposition::Accept
        );
        assert!(matches!(
            p.decide(
                &verdict(Some(Published::Reject), false),
                ["b.test", "a.test"]
            ),
            Disposition::Reject(_)
        ));
    }

    #[test]
    fn errors_name_the_line() {
        for (text, want) in [
            (
                "a.test spf-fail=bounce\n",
                "line 1: spf-fail=\"bounce\": the action is refuse, junk or note",
            ),
            ("\n\na.test spf=junk\n", "line 3: unknown key \"spf\""),
            ("a.test junk\n", "line 1: \"junk\" is not key=value"),
            ("a.test\n", "line 1: a.test sets nothing"),
            (
                "a.test spf-fail=junk\nA.TEST spf-fail=note\n",
                "line 2: a.test again (first on line 1)",
            ),
            (
                "--- spf-fail=junk\n",
                "line 1: \"---\" is not a domain or *",
            ),
        ] {
            let err = PolicyMap::parse(text).unwrap_err();
            assert!(err.starts_with(want), "{text:?}: {err}");
        }
    }
}
