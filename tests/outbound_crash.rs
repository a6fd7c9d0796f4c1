//! kill -9 of a sending `minimail up` in the middle of delivering 1,000
//! queued messages, five times (issue 15): nothing a sender was told was
//! accepted may be lost. The 1,000 messages are submitted over four
//! authenticated, pipelined SMTP sessions while the remote MX (a recording
//! [`testkit::scripted`] server, found by MX through a real dnsmasq) is
//! still down, so all of them are in the queue; then the MX comes up and,
//! each time another 150 messages have arrived, the sender is SIGKILLed
//! and started again over the same store. At the end every Message-ID
//! arrived at least once and the queue is empty. Messages in flight at a
//! kill (accepted by the remote, not yet marked sent) are sent again after
//! the restart, the duplicates RFC 5321 §6.1 permits: they are counted and
//! printed, and there can be at most one per delivery connection per kill.

mod outbound_sender;

use outbound_sender::{mx, reserve_on, Sender};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::time::{Duration, Instant};
use testkit::dns::Dnsmasq;
use testkit::scripted::Script;

const MESSAGES: usize = 1000;
const KILLS: usize = 5;
/// Delivery connections to the one destination (`--per-destination`).
const CONNECTIONS: usize = 4;
const SUBMITTERS: usize = 4;

/// Submit messages `range` over one authenticated session, pipelining
/// MAIL, RCPT and DATA (RFC 2920) and then the content.
fn submit_range(a: &Sender, range: std::ops::Range<usize>) {
    let c = a.session();
    let mut w = c.stream().try_clone().unwrap();
    let mut r = BufReader::new(c.stream().try_clone().unwrap());
    let mut reply = || {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            assert!(line.len() >= 4, "short reply after {all:?}: {line:?}");
            all.push_str(&line);
            if line.as_bytes()[3] == b' ' {
                return all;
            }
        }
    };
    for i in range {
        w.write_all(b"MAIL FROM:<alice@a.test>\r\nRCPT TO:<bob@b.test>\r\nDATA\r\n")
            .unwrap();
        for want in ["250", "250", "354"] {
            let got = reply();
            assert!(got.starts_with(want), "message {i}: want {want}, got {got}");
        }
        let msg = format!(
            "From: alice@a.test\r\nTo: bob@b.test\r\nSubject: crash test {i}\r\n\
             Message-ID: <crash-{i}@a.test>\r\n\r\nmessage {i}\r\n.\r\n"
        );
        w.write_all(msg.as_bytes()).unwrap();
        let got = reply();
        assert!(got.starts_with("250"), "message {i}: {got}");
    }
    w.write_all(b"QUIT\r\n").unwrap();
}

#[test]
fn kill_9_five_times_while_delivering_1000_messages_loses_none() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (port, mut r) = reserve_on(&["127.0.0.21"]);
    let dns = Dnsmasq::start(&mx("b.test", "127.0.0.21"));
    let down = r.remove(0);
    let mut a = Sender::start(
        dir.path(),
        dns.addr,
        port,
        &[
            "--per-destination",
            &CONNECTIONS.to_string(),
            "--outbound-connections",
            &CONNECTIONS.to_string(),
        ],
    );

    // Queue 1,000 messages while b.test's MX refuses connections.
    std::thread::scope(|s| {
        let per = MESSAGES / SUBMITTERS;
        for k in 0..SUBMITTERS {
            let a = &a;
            s.spawn(move || submit_range(a, k * per..(k + 1) * per));
        }
    });
    let submitted = started.elapsed();
    let listed = a.queue_list();
    assert!(
        listed.contains(&format!("{MESSAGES} message(s)")),
        "{}",
        listed.lines().last().unwrap_or("")
    );

    // The MX comes up; kill -9 the sender each time 150 more arrived.
    let b = down.listen(Script::new("mx.b.test"));
    let mut at_kill = Vec::new();
    for k in 1..=KILLS {
        let target = k * 150;
        let deadline = Instant::now() + Duration::from_secs(60);
        while b.delivered() < target {
            assert!(
                Instant::now() < deadline,
                "kill {k}: {} of {target} delivered; log:\n{}",
                b.delivered(),
                a.log_text()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        a.kill9();
        at_kill.push(b.delivered());
        a.restart();
    }

    // Everything arrives; the queue empties.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    loop {
        seen.clear();
        for d in b.deliveries() {
            let id = d.header("Message-ID").unwrap_or_default();
            seen.entry(id).or_default().push(d.conn);
        }
        if seen.len() >= MESSAGES {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {MESSAGES} distinct messages arrived; queue:\n{}",
            seen.len(),
            a.queue_list()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    a.wait_queue_empty(Duration::from_secs(30));
    let all = b.deliveries();
    let mut seen: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for d in &all {
        assert_eq!(d.rcpts, ["bob@b.test"]);
        let id = d.header("Message-ID").unwrap_or_default();
        seen.entry(id).or_default().push(d.conn);
    }
    for i in 0..MESSAGES {
        assert!(
            seen.contains_key(&format!("<crash-{i}@a.test>")),
            "message {i} never arrived"
        );
    }
    assert_eq!(seen.len(), MESSAGES, "only the messages sent arrived");
    let dups: Vec<(&String, &Vec<usize>)> = seen.iter().filter(|(_, c)| c.len() > 1).collect();
    let extra = all.len() - MESSAGES;
    println!(
        "kill -9 x{KILLS} (at {at_kill:?} delivered): {MESSAGES} messages, {} deliveries, \
         {extra} duplicate(s) over {} connections; submitted in {submitted:?}, all in {:?}",
        all.len(),
        b.connections(),
        started.elapsed()
    );
    for (id, conns) in &dups {
        println!(
            "  duplicate {id}: {} times, on connections {conns:?}",
            conns.len()
        );
    }
    // A duplicate is a message in flight at a kill: its first copy is the
    // last thing its connection carried (the sender died before marking it
    // sent), its second comes on a later connection, after the restart.
    let mut last_on_conn: BTreeMap<usize, usize> = BTreeMap::new();
    for (i, d) in all.iter().enumerate() {
        last_on_conn.insert(d.conn, i);
    }
    for (id, _) in &dups {
        let copies: Vec<usize> = (0..all.len())
            .filter(|&i| all[i].header("Message-ID").as_deref() == Some(id.as_str()))
            .collect();
        let (first, second) = (copies[0], copies[1]);
        assert_eq!(
            last_on_conn.get(&all[first].conn),
            Some(&first),
            "{id}: its first copy was not the last on connection {}",
            all[first].conn
        );
        assert!(all[second].conn > all[first].conn, "{id}: {copies:?}");
    }
    // So at most one per delivery connection per kill.
    assert!(
        extra <= CONNECTIONS * KILLS,
        "{extra} duplicates, more than {CONNECTIONS} connections x {KILLS} kills"
    );
    assert_eq!(a.inbox().len(), 0, "no report");
}
