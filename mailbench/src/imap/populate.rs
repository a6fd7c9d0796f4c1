//! `mailbench imap populate N`: APPEND N messages over one session with up
//! to `window` commands in flight (RFC 3501 §6.3.11). With LITERAL+
//! (RFC 7888) each APPEND is sent whole at once; otherwise each literal waits
//! for its `+` continuation, while earlier APPENDs still complete meanwhile.
//! The mailbox is CREATEd first (a NO because it exists is fine).

use super::client::Imap;
use super::parse::{self, Kind};
use super::Target;
use crate::stats::Report;
use anyhow::{bail, Result};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Tagged APPENDs sent but not yet answered, oldest first.
struct InFlight {
    q: VecDeque<(String, Instant)>,
    lat: Vec<Duration>,
    failed: u64,
    first_error: Option<String>,
}

impl InFlight {
    /// Read one response; record a tagged completion. True for `+`.
    fn read_one(&mut self, c: &mut Imap) -> Result<bool> {
        match c.read()? {
            Kind::Continue => Ok(true),
            Kind::Untagged(_) => Ok(false),
            Kind::Tagged { tag, ok, text } => {
                let Some(pos) = self.q.iter().position(|(t, _)| t.as_bytes() == tag) else {
                    bail!("unknown tag {}", String::from_utf8_lossy(tag));
                };
                let text = String::from_utf8_lossy(text).into_owned();
                if let Some((_, sent)) = self.q.remove(pos) {
                    if ok {
                        self.lat.push(sent.elapsed());
                    } else {
                        self.failed += 1;
                        self.first_error.get_or_insert(text);
                    }
                }
                Ok(false)
            }
        }
    }
}

/// Run the populate workload.
pub fn run(
    t: &Target,
    count: u64,
    (size, max_size): (usize, Option<usize>),
    window: usize,
    varied: bool,
) -> Result<Report> {
    let mut c = Imap::connect(&t.addr)?;
    c.login(&t.user, &t.password)?;
    let mb = parse::quote(&t.mailbox);
    if !t.mailbox.eq_ignore_ascii_case("INBOX") {
        c.run_with(&format!("CREATE {mb}"), |_| {})?;
    }
    let plus = c.has("LITERAL+");
    let window = window.max(1);
    let mut fl = InFlight {
        q: VecDeque::new(),
        lat: Vec::with_capacity(count as usize),
        failed: 0,
        first_error: None,
    };
    let start = Instant::now();
    for n in 0..count {
        while fl.q.len() >= window {
            if fl.read_one(&mut c)? {
                bail!("unexpected continuation");
            }
        }
        let msg = super::message_text(n, super::size_of(n, size, max_size), varied);
        let tag = c.tag();
        let sent = Instant::now();
        if plus {
            let mut cmd = format!("{tag} APPEND {mb} {{{}+}}\r\n", msg.len()).into_bytes();
            cmd.extend_from_slice(&msg);
            cmd.extend_from_slice(b"\r\n");
            c.send(&cmd)?;
            fl.q.push_back((tag, sent));
        } else {
            c.send(format!("{tag} APPEND {mb} {{{}}}\r\n", msg.len()).as_bytes())?;
            fl.q.push_back((tag.clone(), sent));
            loop {
                if fl.read_one(&mut c)? {
                    break;
                }
                if !fl.q.iter().any(|(t, _)| *t == tag) {
                    bail!("APPEND refused before its literal: {:?}", fl.first_error);
                }
            }
            c.send(&msg)?;
            c.send(b"\r\n")?;
        }
    }
    while !fl.q.is_empty() {
        fl.read_one(&mut c)?;
    }
    let elapsed = start.elapsed();
    if let Some(e) = &fl.first_error {
        eprintln!("mailbench: APPEND refused: {e}");
    }
    let mut exists = 0;
    c.run(&format!("STATUS {mb} (MESSAGES)"), |u| {
        let s = String::from_utf8_lossy(u);
        if let Some(at) = s.find("MESSAGES ") {
            let digits: String = s[at + 9..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            exists = digits.parse().unwrap_or(0);
        }
    })?;
    c.logout();
    let mut r = super::report(t, "populate", "msg/s", elapsed, fl.lat);
    r.failed = fl.failed;
    r.params.push(("count".into(), count.to_string()));
    r.params.push(("size".into(), size.to_string()));
    if let Some(max) = max_size {
        r.params.push(("max size".into(), max.to_string()));
    }
    r.params.push(("window".into(), window.to_string()));
    r.extra
        .push(("literal+".into(), if plus { "yes" } else { "no" }.into()));
    r.extra.push(("messages now".into(), exists.to_string()));
    Ok(r)
}

/// Make sure `t.mailbox` holds at least one message (for the read
/// workloads); the number of messages it holds.
pub fn require_messages(t: &Target) -> Result<u32> {
    let mut c = Imap::connect(&t.addr)?;
    c.login(&t.user, &t.password)?;
    let n = c.select(&t.mailbox, true)?;
    c.logout();
    if n == 0 {
        bail!(
            "mailbox {} is empty: run `mailbench imap populate N` first",
            t.mailbox
        );
    }
    Ok(n)
}
