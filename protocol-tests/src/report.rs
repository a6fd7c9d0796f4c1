//! Output formats: human text, TAP 13 and JUnit XML, plus the summary line.
//! Each FAIL shows the transcript line, the expected pattern and what came.

use crate::suite::{CaseResult, Outcome};
use std::fmt::Write as _;

/// Output format (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `PASS name (RFC ...)` lines and details on FAIL.
    Text,
    /// Test Anything Protocol, version 13.
    Tap,
    /// JUnit XML (one testsuite).
    Junit,
}

/// Counts per outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Passed cases.
    pub pass: usize,
    /// Failed cases.
    pub fail: usize,
    /// Failed cases excused by `--known`.
    pub known: usize,
    /// Skipped cases.
    pub skip: usize,
    /// Cases that held with a warning (not failures).
    pub warn: usize,
}

impl Summary {
    /// Counts the results.
    pub fn of(results: &[CaseResult]) -> Self {
        let mut s = Summary::default();
        for r in results {
            match r.outcome {
                Outcome::Pass => s.pass += 1,
                Outcome::Fail(_) => s.fail += 1,
                Outcome::Known(..) => s.known += 1,
                Outcome::Skip(_) => s.skip += 1,
                Outcome::Warn(_) => s.warn += 1,
            }
        }
        s
    }

    /// `N passed, N failed, N known differences, N skipped (of N)`, with
    /// `, N warned` before the total when a case warned.
    pub fn line(&self) -> String {
        let warned = if self.warn > 0 {
            format!(", {} warned", self.warn)
        } else {
            String::new()
        };
        format!(
            "{} passed, {} failed, {} known differences, {} skipped{warned} (of {})",
            self.pass,
            self.fail,
            self.known,
            self.skip,
            self.pass + self.fail + self.known + self.skip + self.warn
        )
    }
}

fn rfc(r: &CaseResult) -> String {
    r.rfc
        .iter()
        .map(|s| format!("RFC {s}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn details(r: &CaseResult, indent: &str) -> String {
    let mut s = String::new();
    let f = match &r.outcome {
        Outcome::Fail(f) | Outcome::Known(f, _) => f,
        _ => return s,
    };
    if !r.title.is_empty() {
        let _ = writeln!(s, "{indent}case:     {}", r.title);
    }
    // Outbound cases are code, not transcripts.
    if !r.name.starts_with("outbound/") {
        let _ = writeln!(s, "{indent}at:       transcripts/{}.txt:{}", r.name, f.line);
    }
    let _ = writeln!(s, "{indent}problem:  {}", f.msg);
    if let Some(e) = &f.expected {
        let _ = writeln!(s, "{indent}expected: {e}");
    }
    for (i, g) in f.got.iter().enumerate() {
        let label = if i == 0 { "got:     " } else { "         " };
        let _ = writeln!(s, "{indent}{label} {g}");
    }
    if let Outcome::Known(_, note) = &r.outcome {
        let _ = writeln!(s, "{indent}known:    {note}");
    }
    s
}

/// One case as a text line (plus details on FAIL).
pub fn text_line(r: &CaseResult) -> String {
    let (word, extra) = match &r.outcome {
        Outcome::Pass => ("PASS", String::new()),
        Outcome::Fail(_) => ("FAIL", String::new()),
        Outcome::Known(..) => ("KNOWN", String::new()),
        Outcome::Skip(why) => ("SKIP", format!(" - {why}")),
        Outcome::Warn(why) => ("WARN", format!(" - {why}")),
    };
    format!(
        "{word:5} {} ({}){extra}\n{}",
        r.name,
        rfc(r),
        details(r, "      ")
    )
}

/// The whole TAP document.
pub fn tap(results: &[CaseResult]) -> String {
    let mut s = format!("TAP version 13\n1..{}\n", results.len());
    for (i, r) in results.iter().enumerate() {
        let n = i + 1;
        let _ = match &r.outcome {
            Outcome::Pass => writeln!(s, "ok {n} - {} ({})", r.name, rfc(r)),
            Outcome::Skip(w) => writeln!(s, "ok {n} - {} # SKIP {w}", r.name),
            Outcome::Warn(w) => writeln!(s, "ok {n} - {} ({})\n# warning: {w}", r.name, rfc(r)),
            Outcome::Known(_, note) => writeln!(s, "not ok {n} - {} # TODO {note}", r.name),
            Outcome::Fail(_) => writeln!(s, "not ok {n} - {} ({})", r.name, rfc(r)),
        };
        if matches!(r.outcome, Outcome::Fail(_) | Outcome::Known(..)) {
            for l in details(r, "# ").lines() {
                let _ = writeln!(s, "{l}");
            }
        }
    }
    let _ = writeln!(s, "# {}", Summary::of(results).line());
    s
}

fn xml(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            '&' => "&amp;".into(),
            '"' => "&quot;".into(),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => format!("&#x{:x};", c as u32),
            c => c.to_string(),
        })
        .collect()
}

/// The whole JUnit XML document.
pub fn junit(results: &[CaseResult]) -> String {
    let sum = Summary::of(results);
    let total: f64 = results.iter().map(|r| r.elapsed.as_secs_f64()).sum();
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"protocol-tests\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{total:.3}\">\n",
        results.len(),
        sum.fail,
        sum.skip + sum.known
    );
    for r in results {
        let class = r.name.split('/').next().unwrap_or("case");
        let _ = write!(
            s,
            "  <testcase classname=\"{class}\" name=\"{}\" time=\"{:.3}\">",
            xml(&r.name),
            r.elapsed.as_secs_f64()
        );
        match &r.outcome {
            Outcome::Pass => {}
            Outcome::Skip(w) => {
                let _ = write!(s, "<skipped message=\"{}\"/>", xml(w));
            }
            Outcome::Warn(w) => {
                let _ = write!(s, "<system-out>warning: {}</system-out>", xml(w));
            }
            Outcome::Known(_, note) => {
                let _ = write!(s, "<skipped message=\"known difference: {}\"/>", xml(note));
            }
            Outcome::Fail(f) => {
                let _ = write!(
                    s,
                    "<failure message=\"{} ({})\">{}</failure>",
                    xml(&f.msg),
                    xml(&rfc(r)),
                    xml(&details(r, ""))
                );
            }
        }
        s.push_str("</testcase>\n");
    }
    s.push_str("</testsuite>\n");
    s
}
