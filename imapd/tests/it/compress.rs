//! COMPRESS=DEFLATE (RFC 4978) over real sockets: commands of the
//! authenticated and selected states over the compressed stream, a large
//! FETCH and APPEND, the errors of §3 (twice, unknown mechanism, before
//! login), COMPRESS inside STARTTLS and implicit TLS, compressed bytes that
//! arrive with the command, decompression bombs cut at the line and
//! literal limits, and corrupt DEFLATE data. The client compresses with
//! flate2 (`netloop::deflate::ClientStream`, via `Client::compress`).

use crate::util::*;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A socket that counts the octets read from it (what came over the wire).
struct Metered {
    s: TcpStream,
    read: Arc<AtomicU64>,
}

impl Read for Metered {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        let n = self.s.read(b)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl Write for Metered {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.s.write(b)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.s.flush()
    }
}

/// A logged-in client over a metered socket, with a clone of the raw
/// socket (to write bytes under the compression layer).
fn metered_login(addr: SocketAddr, user: &str) -> (Client, Arc<AtomicU64>, TcpStream) {
    let s = testkit::net::connect(addr);
    let raw = s.try_clone().unwrap();
    let read = Arc::new(AtomicU64::new(0));
    let mut c = Client::from_stream(Metered {
        s,
        read: Arc::clone(&read),
    });
    c.login(user, PASSWORD);
    (c, read, raw)
}

/// A text message of about `size` octets (mail-like: compressible, not
/// trivially).
fn big_message(size: usize) -> Vec<u8> {
    let mut m = b"From: Alice <alice@example.org>\r\nTo: bob@localhost\r\n\
Subject: big\r\nDate: Mon, 13 Nov 2023 10:00:00 +0000\r\nMessage-ID: <big@x>\r\n\r\n"
        .to_vec();
    let mut i = 0u64;
    while m.len() < size {
        i += 1;
        let words = ["lorem", "ipsum", "mail", "deflate", "window", "server"];
        let w = words[(i * 7 % 6) as usize];
        m.extend_from_slice(
            format!("Line {i}: the {w} said {} times.\r\n", i * 31 % 997).as_bytes(),
        );
    }
    m
}

#[test]
fn commands_work_over_the_compressed_stream() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    s.deliver(bob, MULTIPART);
    s.deliver(bob, &simple("second", "hello compressed world"));
    let mut c = s.client();
    assert!(c.greeting.contains(" COMPRESS=DEFLATE"), "{}", c.greeting);
    c.login("bob@localhost", PASSWORD);
    let r = c.ok("CAPABILITY");
    assert!(r[0].contains(" COMPRESS=DEFLATE"), "{r:?}");
    let r = c.compress();
    assert!(r.last().unwrap().contains("OK"), "{r:?}");
    // Authenticated state.
    let r = c.ok("LIST \"\" *");
    assert!(r.iter().any(|l| l.contains("\"INBOX\"")), "{r:?}");
    c.ok("CREATE Zipped");
    let r = c.ok("STATUS INBOX (MESSAGES UNSEEN)");
    assert!(r[0].contains("MESSAGES 2"), "{r:?}");
    // Selected state.
    let r = c.ok("SELECT INBOX");
    assert!(r.iter().any(|l| l == "* 2 EXISTS"), "{r:?}");
    let r = c.ok("FETCH 1 BODY.PEEK[]");
    assert!(
        r[0].ends_with(&format!(
            "{{{}}}\r\n{})",
            MULTIPART.len(),
            String::from_utf8_lossy(MULTIPART)
        )),
        "{r:?}"
    );
    let r = c.ok("UID SEARCH TEXT compressed");
    assert_eq!(r[0], "* SEARCH 2");
    c.ok("STORE 2 +FLAGS (\\Flagged)");
    c.ok("COPY 1:2 Zipped");
    // An APPEND with a synchronising literal: the continuation request is
    // compressed too.
    let msg = simple("appended", "sent compressed");
    let tag = c.next_tag();
    c.send(format!("{tag} APPEND Zipped {{{}}}\r\n", msg.len()).as_bytes());
    assert!(c.line().starts_with("+ "));
    c.send(&msg);
    c.send(b"\r\n");
    let r = c.until(&tag);
    assert!(r.last().unwrap().contains("OK [APPENDUID"), "{r:?}");
    let r = c.ok("STATUS Zipped (MESSAGES)");
    assert!(r[0].contains("MESSAGES 3"), "{r:?}");
    // IDLE and its DONE go through the stream as well.
    let tag = c.next_tag();
    c.send(format!("{tag} IDLE\r\n").as_bytes());
    assert!(c.line().starts_with("+ "));
    s.deliver(bob, &simple("third", "while idling"));
    assert_eq!(c.line(), "* 3 EXISTS");
    c.send(b"DONE\r\n");
    let r = c.until(&tag);
    assert!(r.last().unwrap().contains("OK"), "{r:?}");
    let r = c.cmd("LOGOUT");
    assert!(r[0].starts_with("* BYE"), "{r:?}");
    assert!(c.closed());
}

#[test]
fn a_large_fetch_and_append_round_trip_compressed() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    let big = big_message(4 << 20);
    s.deliver(bob, &big);
    let (mut c, wire, _raw) = metered_login(s.addr, "bob@localhost");
    c.compress();
    c.ok("SELECT INBOX");
    let before = wire.load(Ordering::Relaxed);
    let tag = c.next_tag();
    c.send(format!("{tag} FETCH 1 BODY.PEEK[]\r\n").as_bytes());
    let body = c.read_literal_after("FETCH");
    assert!(body == big, "the body came back intact");
    let r = c.until(&tag);
    assert!(r.last().unwrap().contains("OK"), "{r:?}");
    let on_wire = wire.load(Ordering::Relaxed) - before;
    println!(
        "FETCH of {} octets: {on_wire} octets on the wire",
        big.len()
    );
    assert!(
        on_wire * 3 < big.len() as u64,
        "compressed: {on_wire} octets on the wire for {}",
        big.len()
    );
    // The other way: a 4 MiB APPEND (non-synchronising literal).
    let tag = c.next_tag();
    c.send(format!("{tag} APPEND INBOX {{{}+}}\r\n", big.len()).as_bytes());
    c.send(&big);
    c.send(b"\r\n");
    let r = c.until(&tag);
    assert!(r.last().unwrap().contains("OK [APPENDUID"), "{r:?}");
    let tag = c.next_tag();
    c.send(format!("{tag} FETCH 2 BODY.PEEK[]\r\n").as_bytes());
    assert!(c.read_literal_after("FETCH") == big);
    c.until(&tag);
}

#[test]
fn compress_errors_follow_rfc_4978_section_3() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let mut c = s.client();
    // command-auth (§5): not before login.
    let r = c.cmd("COMPRESS DEFLATE");
    assert_eq!(Client::status_of(&r), "BAD", "{r:?}");
    c.login("bob@localhost", PASSWORD);
    // Unknown or missing mechanism: BAD, and nothing changes.
    let r = c.cmd("COMPRESS GZIP");
    assert_eq!(Client::status_of(&r), "BAD", "{r:?}");
    assert!(r[0].contains("GZIP"), "{r:?}");
    let r = c.cmd("COMPRESS");
    assert_eq!(Client::status_of(&r), "BAD", "{r:?}");
    c.ok("NOOP");
    // Lower case works (atoms are case-insensitive).
    let tag = c.next_tag();
    c.send(format!("{tag} compress deflate\r\n").as_bytes());
    let r = c.until(&tag);
    assert!(r[0].contains("OK"), "{r:?}");
    // Switch by hand (the tagged OK was read above).
    let mut c = {
        let old = std::mem::replace(
            &mut c.r,
            std::io::BufReader::new(Box::new(std::io::Cursor::new(Vec::new()))),
        );
        let inner = old.into_inner();
        Client::without_greeting(netloop::deflate::ClientStream::new(inner, &[], 6))
    };
    // Twice: NO [COMPRESSIONACTIVE], and the stream stays compressed.
    let r = c.cmd("COMPRESS DEFLATE");
    assert!(r[0].contains(" NO [COMPRESSIONACTIVE]"), "{r:?}");
    let r = c.ok("SELECT INBOX");
    assert!(r.iter().any(|l| l == "* 0 EXISTS"), "{r:?}");
    let r = c.cmd("COMPRESS DEFLATE");
    assert!(r[0].contains(" NO [COMPRESSIONACTIVE]"), "{r:?}");
    c.ok("NOOP");
}

fn local() -> IpAddr {
    "127.0.0.1".parse().unwrap()
}

fn select_fetch_logout(c: &mut Client) {
    let r = c.ok("SELECT INBOX");
    assert!(r.iter().any(|l| l == "* 1 EXISTS"), "{r:?}");
    let r = c.ok("FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    assert!(r[0].contains("Subject: over tls"), "{r:?}");
    let r = c.cmd("LOGOUT");
    assert!(r[0].starts_with("* BYE"), "{r:?}");
    assert!(c.closed());
}

#[test]
fn compress_inside_starttls() {
    let s = TestServer::tls(|_| {});
    let bob = s.add_user("bob@localhost");
    s.deliver(bob, &simple("over tls", "body"));
    let (_, mut c) = starttls_with(local(), s.addr, b"s STARTTLS\r\n");
    c.login("bob@localhost", PASSWORD);
    let r = c.ok("CAPABILITY");
    assert!(r[0].contains(" COMPRESS=DEFLATE"), "{r:?}");
    c.compress();
    select_fetch_logout(&mut c);
}

#[test]
fn compress_inside_implicit_tls() {
    let s = TestServer::tls(|_| {});
    let bob = s.add_user("bob@localhost");
    s.deliver(bob, &simple("over tls", "body"));
    let mut c = Client::connect_tls(s.imaps.unwrap());
    c.login("bob@localhost", PASSWORD);
    c.compress();
    select_fetch_logout(&mut c);
}

#[test]
fn starttls_is_not_offered_or_accepted_once_compressed() {
    // STARTTLS is a not-authenticated command and COMPRESS an authenticated
    // one, so the order cannot happen by the state rules alone; the loop
    // refuses it anyway (TLS under a compressed stream), which is what a
    // session that returns to the not-authenticated state would rely on.
    let s = TestServer::tls(|_| {});
    s.add_user("bob@localhost");
    let mut c = s.login("bob@localhost");
    c.compress();
    let r = c.ok("CAPABILITY");
    assert!(!r[0].contains("STARTTLS"), "{r:?}");
    let r = c.cmd("STARTTLS");
    assert_eq!(Client::status_of(&r), "BAD", "{r:?}");
    c.ok("NOOP");
}

/// A client that sends its first compressed command in the same packet
/// (on TLS: the same record) as COMPRESS, although §3 says to wait: the
/// bytes were read before compression began and must be inflated, not
/// taken as plaintext or dropped.
#[test]
fn compressed_bytes_that_arrive_with_the_command_are_inflated() {
    let s = TestServer::tls(|_| {});
    s.add_user("bob@localhost");
    let mut early = netloop::deflate::ClientStream::new(Vec::new(), &[], 6);
    early.write_all(b"b NOOP\r\n").unwrap();
    let mut first = b"a COMPRESS DEFLATE\r\n".to_vec();
    first.extend_from_slice(early.get_ref());
    for tls in [false, true] {
        let mut c = if tls {
            Client::connect_tls(s.imaps.unwrap())
        } else {
            s.client()
        };
        c.login("bob@localhost", PASSWORD);
        c.send(&first);
        let ok = c.line();
        assert!(ok.starts_with("a OK"), "{ok}");
        let placeholder: Box<dyn testkit::imap::Stream> =
            Box::new(std::io::Cursor::new(Vec::new()));
        let old = std::mem::replace(&mut c.r, std::io::BufReader::new(placeholder));
        let early_in = old.buffer().to_vec();
        let stream = netloop::deflate::ClientStream::new(old.into_inner(), &early_in, 6);
        let mut c = Client::without_greeting(stream);
        let r = c.until("b");
        assert!(r.last().unwrap().starts_with("b OK"), "tls {tls}: {r:?}");
    }
}

/// Raw DEFLATE for `mib` MiB of `fill`: one 1 MiB block (full flush: byte
/// aligned, no references back), repeated.
fn bomb(mib: usize, fill: u8) -> Vec<u8> {
    let mut c = flate2::Compress::new(flate2::Compression::best(), false);
    let mut block = Vec::with_capacity(64 * 1024);
    c.compress_vec(
        &vec![fill; 1 << 20],
        &mut block,
        flate2::FlushCompress::Full,
    )
    .unwrap();
    assert_eq!(c.total_in(), 1 << 20);
    block.repeat(mib)
}

/// The process's peak resident memory (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Write `bytes` under the compression layer from another thread; the
/// server may close before it has read them all.
fn write_raw(mut raw: TcpStream, bytes: Vec<u8>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let _ = raw.write_all(&bytes);
    })
}

#[test]
fn a_deflate_bomb_line_is_cut_at_the_line_limit() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let hwm = peak_rss_kib();
    let (mut c, _, raw) = metered_login(s.addr, "bob@localhost");
    c.compress();
    // 1 GiB of one line in about 1 MiB.
    let bomb = bomb(1024, b'A');
    assert!(bomb.len() < 1100 * 1024, "{}", bomb.len());
    let writer = write_raw(raw, bomb);
    let l = c.line();
    assert!(
        l.starts_with("* BAD [TOOBIG] Line too long (limit 65536 octets)"),
        "{l}"
    );
    let l = c.line();
    assert!(l.starts_with("* BYE "), "{l}");
    assert!(c.closed());
    writer.join().unwrap();
    let grew = peak_rss_kib().saturating_sub(hwm);
    assert!(grew < 256 * 1024, "peak RSS grew by {grew} KiB");
    // The server serves others as before.
    let mut d = s.login("bob@localhost");
    d.compress();
    d.ok("SELECT INBOX");
}

#[test]
fn a_deflate_bomb_literal_is_cut_at_the_literal_limit() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let (mut c, _, raw) = metered_login(s.addr, "bob@localhost");
    c.compress();
    // A non-synchronising literal over --max-literal (64 MiB): its octets
    // would have to be inflated just to be thrown away.
    c.send(b"a9 APPEND INBOX {100000000+}\r\n");
    let writer = write_raw(raw, bomb(128, 0));
    let l = c.line();
    assert!(l.starts_with("a9 BAD [TOOBIG] Literal too large"), "{l}");
    let l = c.line();
    assert!(l.starts_with("* BYE "), "{l}");
    assert!(c.closed());
    writer.join().unwrap();
    // A synchronising literal over the limit costs nothing to refuse:
    // BAD, and the session goes on.
    let mut d = s.login("bob@localhost");
    d.compress();
    let r = d.cmd("APPEND INBOX {100000000}");
    assert!(r[0].contains("BAD [TOOBIG]"), "{r:?}");
    d.ok("NOOP");
    // Within the limit, a literal that inflates 4 MiB from a few KiB is
    // an ordinary APPEND.
    let tag = d.next_tag();
    let mut msg = b"Subject: zeros\r\n\r\n".to_vec();
    msg.extend(std::iter::repeat_n(b'0', 4 << 20));
    d.send(format!("{tag} APPEND INBOX {{{}+}}\r\n", msg.len()).as_bytes());
    d.send(&msg);
    d.send(b"\r\n");
    let r = d.until(&tag);
    assert!(r.last().unwrap().contains("OK [APPENDUID"), "{r:?}");
}

#[test]
fn corrupt_deflate_data_closes_cleanly_and_the_server_goes_on() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let (mut c, _, mut raw) = metered_login(s.addr, "bob@localhost");
    c.compress();
    c.ok("NOOP");
    // Not DEFLATE: a block header of the reserved type 3.
    raw.write_all(&[0xff; 64]).unwrap();
    let l = c.line();
    assert_eq!(l, "* BYE Corrupt compressed input (RFC 4978)");
    assert!(c.closed());
    // Plaintext after COMPRESS is garbage too.
    let (mut c, _, mut raw) = metered_login(s.addr, "bob@localhost");
    c.compress();
    raw.write_all(b"a2 NOOP\r\n").unwrap();
    let l = c.line();
    assert!(l.starts_with("* BYE Corrupt"), "{l}");
    assert!(c.closed());
    let mut d = s.login("bob@localhost");
    d.ok("SELECT INBOX");
}

#[test]
fn a_streamed_fetch_of_every_message_compressed() {
    let s = TestServer::start();
    let bob = s.add_user("bob@localhost");
    s.store
        .write_sync(move |tx| {
            for i in 0..2000 {
                let msg = mailstore::NewMessage {
                    raw: simple(&format!("message {i}"), &format!("body {i}")),
                    internal_date: 1_700_000_000 + i,
                };
                tx.deliver(&msg, &[bob])?;
            }
            Ok(())
        })
        .unwrap();
    let mut c = s.login("bob@localhost");
    c.compress();
    c.ok("EXAMINE INBOX");
    for _ in 0..3 {
        let r = c.ok("FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)");
        assert_eq!(r.len(), 2001);
    }
}

#[test]
fn shutdown_says_bye_through_the_compressed_stream() {
    let s = TestServer::start();
    s.add_user("bob@localhost");
    let mut c = s.login("bob@localhost");
    c.compress();
    c.ok("SELECT INBOX");
    s.shutdown();
    assert_eq!(c.line(), "* BYE Server shutting down");
    assert!(c.closed());
}
