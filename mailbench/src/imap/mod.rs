//! `mailbench imap`: IMAP workloads against any server (RFC 3501; LITERAL+
//! RFC 7888 for pipelined APPEND). Each workload returns a [`Report`] whose
//! latencies are its timed operations.
//!
//! - `populate N`: APPEND N messages over one pipelined session.
//! - `select`: connect + LOGIN + SELECT, repeated.
//! - `fetch-meta`: `FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)`.
//! - `search`: `UID SEARCH TEXT word`.
//! - `store`: `STORE 1:* +FLAGS (\Flagged)` then `-FLAGS`.
//! - `body`: many sessions fetching random `UID FETCH n BODY.PEEK[]`.
//! - `sort`, `thread`, `qresync`, `select-changed`, `list-status`: see
//!   `ext.rs`.

pub mod client;
mod ext;
pub mod parse;
mod populate;
mod random;
mod timed;

use crate::stats::Report;
use anyhow::Result;
use std::time::Duration;

/// Where and as whom to run.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: String,
    pub user: String,
    pub password: String,
    pub mailbox: String,
    /// COMPRESS=DEFLATE (RFC 4978) after LOGIN in the sessions of the
    /// timed workloads (select, fetch-meta, search, store, body, sort,
    /// thread).
    pub compress: bool,
}

/// One IMAP workload.
#[derive(Clone, Debug)]
pub enum Workload {
    /// APPEND `count` messages of about `size` bytes, `window` in flight;
    /// `varied` bodies are text of random words (see [`message_text`]);
    /// with `max_size`, sizes spread between `size` and it ([`size_of`]).
    Populate {
        count: u64,
        size: usize,
        window: usize,
        varied: bool,
        max_size: Option<usize>,
    },
    /// Connect + LOGIN + SELECT, `repeat` times.
    Select { repeat: usize },
    /// The metadata FETCH of every message, after one untimed warm-up.
    FetchMeta { repeat: usize },
    /// `UID SEARCH key word`, after one untimed warm-up.
    Search {
        word: String,
        key: String,
        repeat: usize,
        /// The session's SELECT is the mailbox's first (no
        /// `require_messages` check on another connection before it).
        first_select: bool,
    },
    /// `FETCH 1:count BODY.PEEK[]` on one connection, after one untimed
    /// warm-up.
    Bodies { count: u64, repeat: usize },
    /// `+FLAGS` then `-FLAGS` on 1:*, `repeat` pairs.
    Store { repeat: usize },
    /// `count` random `UID FETCH n BODY.PEEK[]` over `sessions` sessions.
    Body { sessions: usize, count: u64 },
    /// `UID SORT (criteria) UTF-8 ALL`, after one untimed warm-up.
    Sort { criteria: String, repeat: usize },
    /// `UID THREAD algorithm UTF-8 ALL`, after one untimed warm-up.
    Thread { algorithm: String, repeat: usize },
    /// A QRESYNC SELECT after `changes` flag changes and `expunges`
    /// expunges by another session.
    Qresync {
        changes: usize,
        expunges: usize,
        repeat: usize,
    },
    /// A SELECT after another session's `changes` flag changes, one
    /// APPEND and one expunge, `repeat` times.
    SelectChanged { changes: usize, repeat: usize },
    /// `LIST "" "*" RETURN (STATUS (MESSAGES UNSEEN))` over `mailboxes`
    /// mailboxes (made if missing), cold then `repeat` times warm.
    ListStatus { mailboxes: usize, repeat: usize },
}

/// Run one workload.
pub fn run(t: &Target, w: &Workload) -> Result<Report> {
    match w {
        Workload::Populate {
            count,
            size,
            window,
            varied,
            max_size,
        } => populate::run(t, *count, (*size, *max_size), *window, *varied),
        Workload::Select { repeat } => timed::select(t, *repeat),
        Workload::FetchMeta { repeat } => timed::fetch_meta(t, *repeat),
        Workload::Search {
            word,
            key,
            repeat,
            first_select,
        } => timed::search(t, key, word, *repeat, *first_select),
        Workload::Bodies { count, repeat } => timed::bodies(t, *count, *repeat),
        Workload::Store { repeat } => timed::store(t, *repeat),
        Workload::Body { sessions, count } => random::run(t, *sessions, *count),
        Workload::Sort { criteria, repeat } => ext::sort(t, criteria, *repeat),
        Workload::Thread { algorithm, repeat } => ext::thread(t, algorithm, *repeat),
        Workload::Qresync {
            changes,
            expunges,
            repeat,
        } => ext::qresync(t, *changes, *expunges, *repeat),
        Workload::SelectChanged { changes, repeat } => ext::select_changed(t, *changes, *repeat),
        Workload::ListStatus { mailboxes, repeat } => ext::list_status(t, *mailboxes, *repeat),
    }
}

/// A report skeleton for workload `name` on target `t`.
pub(crate) fn report(
    t: &Target,
    name: &str,
    unit: &str,
    elapsed: Duration,
    latencies: Vec<Duration>,
) -> Report {
    Report {
        mode: format!("imap {name}"),
        params: vec![
            ("addr".into(), t.addr.clone()),
            ("mailbox".into(), t.mailbox.clone()),
            ("compress".into(), t.compress.to_string()),
        ],
        ok: latencies.len() as u64,
        failed: 0,
        elapsed,
        latencies,
        extra: vec![],
        cpu_wall: Duration::ZERO,
        client_cpu: 0.0,
        server_cpu: None,
        unit: unit.into(),
    }
}

/// A message for APPEND: headers, and 76-character body lines up to `size`;
/// every 100th message (n % 100 == 7) contains the word "kumquat", which
/// `search` looks for by default. Messages come in threads of five (a topic
/// and four replies with In-Reply-To/References, `Re:` subjects) and their
/// Date fields are spread over four weeks out of arrival order, so SORT and
/// THREAD have real work to do.
pub fn message(n: u64, size: usize) -> Vec<u8> {
    message_text(n, size, false)
}

/// The size of message `n` of a populate run: `size`, or with `max_size`
/// a size spread uniformly over `size..=max_size` (seeded by `n`, so every
/// server gets the same mailbox).
pub fn size_of(n: u64, size: usize, max_size: Option<usize>) -> usize {
    match max_size {
        Some(max) if max > size => {
            let mut rng = random::Rng::new(n.wrapping_mul(31).wrapping_add(5));
            size + rng.below(max - size + 1)
        }
        _ => size,
    }
}

/// Words for [`message_text`]'s varied bodies.
const WORDS: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "he",
    "this",
    "are",
    "or",
    "his",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "had",
    "they",
    "you",
    "were",
    "their",
    "one",
    "all",
    "we",
    "can",
    "her",
    "has",
    "there",
    "been",
    "if",
    "more",
    "when",
    "will",
    "would",
    "who",
    "so",
    "no",
    "meeting",
    "report",
    "quarter",
    "budget",
    "server",
    "mailbox",
    "invoice",
    "attached",
    "please",
    "review",
    "thanks",
    "regards",
    "tomorrow",
    "project",
    "deadline",
    "customer",
    "release",
    "version",
    "change",
    "question",
    "schedule",
    "office",
    "agenda",
    "minutes",
    "draft",
    "contract",
    "shipping",
    "order",
    "number",
    "account",
    "password",
    "update",
    "issue",
    "ticket",
    "weekend",
    "holiday",
    "travel",
    "hotel",
    "flight",
    "conference",
    "slides",
    "figures",
    "revenue",
    "growth",
    "team",
    "manager",
    "support",
    "database",
    "backup",
];

/// [`message`], or with `varied`, a body of random words from a small
/// vocabulary (seeded by `n`): it compresses about as well as English
/// mail text does (roughly 3:1 with DEFLATE), where [`message`]'s one
/// repeated line compresses 50:1 and more.
pub fn message_text(n: u64, size: usize, varied: bool) -> Vec<u8> {
    let p = std::process::id();
    let (topic, pos) = (n / 5, n % 5);
    let (subject, refs) = if pos == 0 {
        (format!("populate topic {topic}"), String::new())
    } else {
        let chain: Vec<String> = (topic * 5..n)
            .map(|k| format!("<{k}.{p}@mailbench>"))
            .collect();
        (
            format!("Re: populate topic {topic}"),
            format!(
                "In-Reply-To: <{}.{p}@mailbench>\r\nReferences: {}\r\n",
                n - 1,
                chain.join(" ")
            ),
        )
    };
    let minutes = n.wrapping_mul(7919) % (28 * 1440);
    let mut m = format!(
        "From: Sender {s} <sender{s}@example.org>\r\nTo: <bench@localhost>\r\n\
         Subject: {subject}\r\nMessage-ID: <{n}.{p}@mailbench>\r\n{refs}\
         Date: {d} Jan 2026 {h:02}:{mi:02}:00 +0000\r\n\r\n",
        s = n % 97,
        d = 1 + minutes / 1440,
        h = minutes / 60 % 24,
        mi = minutes % 60,
    )
    .into_bytes();
    if n % 100 == 7 {
        m.extend_from_slice(b"This one mentions a kumquat, which search looks for.\r\n");
    }
    if varied {
        let mut rng = random::Rng::new(n.wrapping_add(17));
        let mut line = String::new();
        while m.len() < size {
            let w = WORDS[rng.below(WORDS.len())];
            if line.len() + w.len() + 1 > 76 {
                m.extend_from_slice(line.as_bytes());
                m.extend_from_slice(b"\r\n");
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(w);
        }
        return m;
    }
    let line = b"The quick brown fox jumps over the lazy dog; pack my box with five dozen j\r\n";
    while m.len() < size {
        m.extend_from_slice(line);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_sizes_spread_over_the_range_and_repeat() {
        let sizes: Vec<usize> = (0..1000).map(|n| size_of(n, 4096, Some(153_600))).collect();
        assert!(sizes.iter().all(|&s| (4096..=153_600).contains(&s)));
        assert!(sizes.iter().any(|&s| s < 20_000) && sizes.iter().any(|&s| s > 140_000));
        let mean = sizes.iter().sum::<usize>() / sizes.len();
        assert!((70_000..90_000).contains(&mean), "mean {mean}");
        assert_eq!(size_of(42, 4096, Some(153_600)), sizes[42]);
        assert_eq!(size_of(42, 4096, None), 4096);
        let m = message_text(3, sizes[3], true);
        assert!(m.len() >= sizes[3] && m.len() < sizes[3] + 100);
    }

    #[test]
    fn one_message_in_a_hundred_has_the_search_word() {
        let hits = (0..1000u64)
            .filter(|&n| message(n, 1024).windows(7).any(|w| w == b"kumquat"))
            .count();
        assert_eq!(hits, 10);
        let m = message(3, 4096);
        assert!(m.len() >= 4096 && m.len() < 4096 + 80);
    }

    #[test]
    fn varied_bodies_differ_and_compress_like_text() {
        let a = message_text(1, 16384, true);
        let b = message_text(2, 16384, true);
        assert!(a.len() >= 16384 && a.len() < 16384 + 80);
        assert_ne!(a[300..], b[300..]);
        let mut z = flate2::Compress::new(flate2::Compression::fast(), false);
        let mut out = Vec::with_capacity(a.len());
        z.compress_vec(&a, &mut out, flate2::FlushCompress::Finish)
            .expect("deflate");
        let ratio = a.len() as f64 / out.len() as f64;
        assert!((2.0..5.0).contains(&ratio), "{ratio}");
    }
}
