//! Push across front ends: a commit through one store (front end) is
//! announced to a listener of another ([`Store::listen_commits`]), also
//! after PostgreSQL restarts.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use mailstore::Store;

use crate::util::{simple, user};

/// Wait for the next announcement (up to `secs`); how long it took.
fn next(rx: &mpsc::Receiver<Instant>, secs: u64) -> Duration {
    let t = Instant::now();
    rx.recv_timeout(Duration::from_secs(secs))
        .unwrap_or_else(|e| panic!("no announcement within {secs} s: {e}"));
    t.elapsed()
}

fn deliver(s: &Store, to: mailstore::UserId, subject: &str) -> mailstore::Result<()> {
    let raw = simple(subject, "x");
    s.write_sync(move |tx| {
        tx.deliver(
            &mailstore::NewMessage {
                raw,
                internal_date: 1_790_000_000,
            },
            &[to],
        )
    })
    .map(|_| ())
}

#[test]
fn commits_of_another_front_end_are_announced_also_after_a_restart() {
    let pg = testkit::pg::PgCluster::start();
    let a = Store::open(pg.url()).unwrap();
    let b = Store::open(pg.url()).unwrap();
    let (tx, rx) = mpsc::channel();
    let listener = a
        .listen_commits(move || {
            let _ = tx.send(Instant::now());
        })
        .expect("a listener on PostgreSQL");
    // Once connected, one "something changed".
    next(&rx, 10);
    let u = user(&b, "u@x");
    next(&rx, 10);
    while rx.try_recv().is_ok() {}
    // A commit of front end B reaches A's listener.
    let t = Instant::now();
    deliver(&b, u, "one").unwrap();
    rx.recv_timeout(Duration::from_secs(10))
        .expect("B's commit announced to A");
    eprintln!("commit -> announcement: {:?}", t.elapsed());
    // Nothing is announced without a commit.
    assert!(rx.recv_timeout(Duration::from_millis(1500)).is_err());
    // PostgreSQL restarts: the listener connects again and says so once.
    pg.restart();
    let waited = next(&rx, 30);
    eprintln!("restart -> reconnected announcement after {waited:?}");
    // B's writer meets its cut connection once at most, then commits, and
    // A hears of it on the new LISTEN connection.
    let mut tries = 0;
    while let Err(e) = deliver(&b, u, "two") {
        tries += 1;
        assert!(tries <= 2, "still failing: {e}");
    }
    next(&rx, 10);
    drop(listener);
    let mb = a
        .read_sync(move |r| r.mailbox(u, "INBOX"))
        .unwrap()
        .unwrap()
        .id;
    assert_eq!(a.read_sync(move |r| r.uids(mb)).unwrap(), [1, 2]);
}

#[test]
fn no_listener_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path().join("m.db")).unwrap();
    assert!(s.listen_commits(|| {}).is_none());
}
