//! Issue 21: a body FETCH's memory is bounded by the client's reading, not
//! by what it asks for. A real `minimail up` over a store of 40 MiB of
//! mail: a client that sends `FETCH 1:* BODY.PEEK[]` and then reads
//! nothing must not make the server's RSS grow by anything like the
//! mailbox (the server keeps a bounded window of output and waits for the
//! socket), other clients are served meanwhile, and once the client reads
//! it gets every message byte-exact, in order, then the tagged OK.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Child;
use std::time::Duration;
use testkit::server::{addr_of, sigterm};

const BIN: &str = env!("CARGO_BIN_EXE_minimail");
const PASSWORD: &str = "pw";

/// The messages: sizes either side of the point where a body is streamed
/// in chunks rather than read whole (256 KiB), 40 MiB in all.
fn messages() -> Vec<Vec<u8>> {
    (0..128)
        .map(|i| {
            let kib = if i % 2 == 0 { 200 } else { 440 };
            testkit::store::big_message(
                &format!("Subject: m{i}\r\n\r\n"),
                kib,
                &format!("message {i:03} "),
            )
        })
        .collect()
}

/// A field of `/proc/PID/status` in KiB (`VmRSS`).
fn status_kib(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

/// CPU ticks (user + system) the process has used.
fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = s[s.rfind(')').unwrap() + 2..].split(' ').collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// Wait until the server has used no CPU for a second (at most a minute):
/// it has done what it can and waits for the socket.
fn quiet(pid: u32) {
    let mut last = cpu_ticks(pid);
    let mut still = 0;
    for _ in 0..600 {
        std::thread::sleep(Duration::from_millis(100));
        let now = cpu_ticks(pid);
        still = if now == last { still + 1 } else { 0 };
        last = now;
        if still >= 10 {
            return;
        }
    }
}

struct Imap {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Imap {
    fn login(addr: &str) -> Imap {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut c = Imap {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        };
        assert!(c.line().starts_with("* OK"));
        c.w.write_all(
            format!("a LOGIN bob@localhost {PASSWORD}\r\nb EXAMINE INBOX\r\n").as_bytes(),
        )
        .unwrap();
        c.until("b ");
        c
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).unwrap();
        assert!(!l.is_empty(), "connection closed");
        l
    }

    /// Lines up to and including the one starting with `tag`.
    fn until(&mut self, tag: &str) -> String {
        loop {
            let l = self.line();
            if let Some(status) = l.strip_prefix(tag) {
                assert!(status.starts_with("OK"), "{l}");
                return l;
            }
        }
    }

    /// Read `* n FETCH (BODY[] {len}` + literal + `)` for every message
    /// (the first numbered `first`), then the tagged OK.
    fn bodies(&mut self, first: usize, want: &[Vec<u8>], tag: &str) {
        for (i, m) in want.iter().enumerate() {
            let head = self.line();
            assert!(
                head.starts_with(&format!("* {} FETCH (BODY[] {{{}}}", first + i, m.len())),
                "{head}"
            );
            let mut got = vec![0u8; m.len()];
            self.r.read_exact(&mut got).unwrap();
            assert!(got == *m, "message {} differs", i + 1);
            assert_eq!(self.line(), ")\r\n");
        }
        self.until(tag);
    }
}

fn up(db: &std::path::Path) -> (Child, String) {
    let (child, line, _) = testkit::server::minimail_up(BIN, db, &[], &[]);
    let imap = addr_of(&line, "imap");
    (child, imap)
}

#[test]
fn a_client_that_does_not_read_a_huge_fetch_holds_little_server_memory() {
    let msgs = messages();
    let total: usize = msgs.iter().map(Vec::len).sum();
    let (_dir, db) = testkit::store::closed_store(&["bob@localhost"], PASSWORD, &msgs);
    let (child, addr) = up(&db);
    let pid = child.id();

    // Warm up: one whole fetch read at once, so the page caches and the
    // allocator have reached their working size before the baseline.
    let mut warm = Imap::login(&addr);
    warm.w.write_all(b"w FETCH 1:* BODY.PEEK[]\r\n").unwrap();
    warm.bodies(1, &msgs, "w ");
    quiet(pid);
    let base = status_kib(pid, "VmRSS");

    // The client that does not read: the same FETCH, three times over.
    let mut stuck = Imap::login(&addr);
    stuck
        .w
        .write_all(
            b"s1 FETCH 1:* BODY.PEEK[]\r\ns2 FETCH 1:* BODY.PEEK[]\r\ns3 FETCH 1:* BODY.PEEK[]\r\n",
        )
        .unwrap();
    quiet(pid);
    let held = status_kib(pid, "VmRSS");
    let grown_mib = held.saturating_sub(base) / 1024;
    eprintln!(
        "server RSS {} MiB after the warm-up, {} MiB with {} MiB asked for and unread",
        base / 1024,
        held / 1024,
        3 * total / (1 << 20)
    );
    // Unbounded buffering would hold most of the 120 MiB asked for (the
    // kernel's socket buffers take a few MiB at most).
    assert!(
        grown_mib < 24,
        "server RSS grew by {grown_mib} MiB for a client that reads nothing"
    );

    // Others are served meanwhile.
    let mut other = Imap::login(&addr);
    other.w.write_all(b"o FETCH 2 BODY.PEEK[]\r\n").unwrap();
    other.bodies(2, &msgs[1..2], "o ");
    // Reading now, the stuck client gets everything, byte-exact, in order.
    for tag in ["s1 ", "s2 ", "s3 "] {
        stuck.bodies(1, &msgs, tag);
    }
    sigterm(&child);
}
