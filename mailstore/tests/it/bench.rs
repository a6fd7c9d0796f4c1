//! Timing figures (printed, never asserted). Run with
//! `cargo test -p mailstore --release --test it bench -- --ignored --nocapture`.

use std::sync::mpsc::channel;
use std::time::Instant;

use mailstore::{Flags, NewMessage, Query, SystemFlag};

use crate::util::{simple, store, user};

/// A realistic ~12 KB message: headers, text part, base64 attachment.
fn realistic(i: usize) -> Vec<u8> {
    let text = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(60);
    let att =
        "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODkwMTIzNDU2Nzg5MDEyMzQ1Njc4\r\n".repeat(100);
    format!(
        "Received: from mx.example.org by localhost; Tue, 24 Nov 2026 10:00:00 +0000\r\n\
         From: \"Sender {i}\" <sender{i}@example.org>\r\nTo: a@x, b@x\r\nSubject: report {i}\r\n\
         Date: Tue, 24 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{i}@example.org>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n--b1\r\n\
         Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n{att}--b1--\r\n"
    )
    .into_bytes()
}

#[test]
#[ignore = "benchmark: prints figures"]
fn bench_group_commit_realistic() {
    let (_d, s) = store();
    let a = user(&s, "a@x");
    let b = user(&s, "b@x");
    let msgs: Vec<Vec<u8>> = (0..4000).map(realistic).collect();
    println!("realistic message size: {} bytes", msgs[0].len());
    let v0 = s.read_sync(|r| r.data_version()).unwrap();
    let (tx, rx) = channel();
    let t0 = Instant::now();
    let mut it = msgs.into_iter();
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let chunk: Vec<Vec<u8>> = it.by_ref().take(250).collect();
            let s = s.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for raw in chunk {
                    let tx = tx.clone();
                    s.write(
                        move |w| {
                            w.deliver(
                                &NewMessage {
                                    raw,
                                    internal_date: 1,
                                },
                                &[a, b],
                            )
                        },
                        move |r| tx.send(r.is_ok()).unwrap(),
                    );
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    drop(tx);
    let ok = rx.iter().filter(|&b| b).count();
    let el = t0.elapsed();
    let batches = s.read_sync(|r| r.data_version()).unwrap() - v0;
    println!(
        "group commit, realistic mail to 2 users: {ok} in {el:?} ({:.0}/s), {batches} batches",
        ok as f64 / el.as_secs_f64()
    );
}

#[test]
#[ignore = "benchmark: prints figures"]
fn bench_group_commit_and_big_mailbox_reads() {
    let (_d, s) = store();
    let a = user(&s, "a@x");

    // Sequential: one commit (fsync) per delivery.
    let t = Instant::now();
    for i in 0..200 {
        let raw = simple(&format!("seq{i}"), "body");
        s.write_sync(move |w| {
            w.deliver(
                &NewMessage {
                    raw,
                    internal_date: 1,
                },
                &[a],
            )
        })
        .unwrap();
    }
    let seq = t.elapsed();
    println!(
        "sequential write_sync: 200 deliveries in {seq:?} ({:.0}/s)",
        200.0 / seq.as_secs_f64()
    );

    // Concurrent: 16 senders share fsyncs.
    let v0 = s.read_sync(|r| r.data_version()).unwrap();
    let (tx, rx) = channel();
    let t = Instant::now();
    let threads: Vec<_> = (0..16)
        .map(|th| {
            let s = s.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for i in 0..500 {
                    let raw = simple(&format!("c{th}-{i}"), "body");
                    let tx = tx.clone();
                    s.write(
                        move |w| {
                            w.deliver(
                                &NewMessage {
                                    raw,
                                    internal_date: 1,
                                },
                                &[a],
                            )
                        },
                        move |r| tx.send(r.is_ok()).unwrap(),
                    );
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    drop(tx);
    let ok = rx.iter().filter(|&b| b).count();
    let conc = t.elapsed();
    let batches = s.read_sync(|r| r.data_version()).unwrap() - v0;
    println!(
        "group commit: {ok} deliveries from 16 threads in {conc:?} ({:.0}/s), {batches} batches (avg {:.1} jobs/batch)",
        ok as f64 / conc.as_secs_f64(),
        ok as f64 / batches.max(1) as f64
    );

    // A 100k-message mailbox.
    let mb = s
        .write_sync(move |w| w.create_mailbox(a, "Big", None))
        .unwrap();
    let t = Instant::now();
    for chunk in 0..10 {
        s.write_sync(move |w| {
            for i in 0..10_000 {
                let body = if i == 5_000 && chunk == 7 {
                    "needle-in-haystack"
                } else {
                    "hay"
                };
                let raw = simple(&format!("b{chunk}-{i}"), body);
                w.append(mb, &raw, &Flags::empty(), 1)?;
            }
            Ok(())
        })
        .unwrap();
    }
    println!("append 100k messages (10 jobs): {:?}", t.elapsed());
    let t = Instant::now();
    let entries = s.read_sync(move |r| r.entries(mb)).unwrap();
    println!("entries() on {} rows: {:?}", entries.len(), t.elapsed());
    let uids: Vec<u32> = entries.iter().map(|e| e.uid).collect();
    let t = Instant::now();
    let metas = s.read_sync(move |r| r.messages(mb, &uids)).unwrap();
    println!("messages() for {} uids: {:?}", metas.len(), t.elapsed());
    let t = Instant::now();
    let hit = s
        .read_sync(move |r| r.search(mb, &Query::Body("needle-in".into())))
        .unwrap();
    println!(
        "search BODY substring over 100k: {:?} -> {hit:?}",
        t.elapsed()
    );
    let t = Instant::now();
    let unseen = s
        .read_sync(move |r| r.search(mb, &Query::Flag(SystemFlag::Seen, false)))
        .unwrap();
    println!(
        "search UNSEEN over 100k: {:?} -> {} hits",
        t.elapsed(),
        unseen.len()
    );
    let t = Instant::now();
    let hdr = s
        .read_sync(move |r| r.search(mb, &Query::Header("subject".into(), "b7-5000".into())))
        .unwrap();
    println!(
        "search HEADER subject over 100k: {:?} -> {hdr:?}",
        t.elapsed()
    );
    let all: Vec<u32> = metas.iter().map(|m| m.uid).collect();
    let t = Instant::now();
    let n = s
        .write_sync(move |w| {
            w.store_flags(
                mb,
                &all,
                mailstore::FlagOp::Add,
                &Flags::system(Flags::SEEN),
                None,
            )
        })
        .unwrap()
        .updated
        .len();
    println!("store +FLAGS \\Seen on {n} entries: {:?}", t.elapsed());
}
