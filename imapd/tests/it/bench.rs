//! Figures, not assertions (run with `--ignored --nocapture`, ideally
//! `--release`): SELECT, a full-mailbox header FETCH and a text SEARCH on a
//! large mailbox, and BODY.PEEK[] throughput.

use crate::util::*;
use std::time::Instant;

#[test]
#[ignore = "benchmark: prints figures"]
fn bench_large_mailbox() {
    let n: usize = std::env::var("IMAPD_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    let t = Instant::now();
    for start in (0..n).step_by(5000) {
        let end = (start + 5000).min(n);
        s.store
            .write_sync(move |tx| {
                for i in start..end {
                    let word = if i % 1000 == 7 { "needle" } else { "hay" };
                    let msg = mailstore::NewMessage {
                        raw: simple(
                            &format!("message {i}"),
                            &format!("body {i} {word} text\r\nmore text"),
                        ),
                        internal_date: 1_700_000_000 + i as i64,
                    };
                    tx.deliver(&msg, &[bob])?;
                }
                Ok(())
            })
            .unwrap();
    }
    println!("filled {n} messages in {:?}", t.elapsed());
    let mut c = s.login("bob@localhost");
    let t = Instant::now();
    c.ok("SELECT INBOX");
    println!("SELECT: {:?}", t.elapsed());
    let t = Instant::now();
    let r = c.ok("FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE)");
    println!(
        "FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE): {:?} ({} lines)",
        t.elapsed(),
        r.len()
    );
    let t = Instant::now();
    let r = c.ok("UID SEARCH TEXT needle");
    println!(
        "UID SEARCH TEXT needle: {:?} ({} hits)",
        t.elapsed(),
        r[0].split(' ').count() - 2
    );
    let t = Instant::now();
    let r = c.ok("FETCH 1:5000 BODY.PEEK[]");
    let secs = t.elapsed().as_secs_f64();
    println!(
        "FETCH 1:5000 BODY.PEEK[]: {:.0} msg/s",
        (r.len() - 1) as f64 / secs
    );
}
