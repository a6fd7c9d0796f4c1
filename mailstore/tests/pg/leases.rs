//! The shared outbound queue's leases (`pg/outq.rs`): front ends (each a
//! `Store` of its own over one database) claiming at once never get the
//! same recipient; a live lease keeps others off, an expired one does
//! not; an outcome is recorded only under a lease still held; a restart
//! takes back its own earlier leases and nobody else's.

use std::collections::HashSet;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use mailstore::Store;

use crate::outq::msg;
use crate::util::store;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

const LONG: Duration = Duration::from_secs(600);

fn enqueue(s: &Store, n: usize, rcpts: &[&str]) {
    let msgs: Vec<_> = (0..n).map(|i| msg(&format!("Q{i}"), rcpts)).collect();
    s.write_sync(move |tx| {
        for m in &msgs {
            tx.enqueue(m)?;
        }
        Ok(())
    })
    .unwrap();
}

#[test]
fn front_ends_claiming_at_once_never_share_a_recipient() {
    let (db, s) = store();
    enqueue(&s, 300, &["x@b.test", "y@c.test"]);
    let url = db.url().to_owned();
    let start = Arc::new(Barrier::new(3));
    let claimers: Vec<_> = (0..3)
        .map(|f| {
            let url = url.clone();
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                let s = Store::open(&url).unwrap();
                let leases = s.queue_leases(&format!("front-{f}")).unwrap().unwrap();
                start.wait();
                let mut got = Vec::new();
                loop {
                    let claimed = leases.claim(now() + 1, 7, LONG).unwrap();
                    if claimed.is_empty() {
                        break;
                    }
                    for q in &claimed {
                        assert_eq!(q.lease_owner.as_deref(), Some(leases.owner()));
                    }
                    got.extend(claimed.iter().map(|q| q.id));
                }
                s.shutdown();
                got
            })
        })
        .collect();
    let got: Vec<Vec<i64>> = claimers.into_iter().map(|t| t.join().unwrap()).collect();
    let mut seen = HashSet::new();
    for (f, ids) in got.iter().enumerate() {
        for id in ids {
            assert!(seen.insert(*id), "recipient {id} claimed twice (front {f})");
        }
    }
    assert_eq!(seen.len(), 600, "every recipient claimed once");
    eprintln!(
        "claims per front end: {:?}",
        got.iter().map(Vec::len).collect::<Vec<_>>()
    );
    // Every row is leased, to the front end that claimed it.
    let listed = s.read_sync(|r| r.queue_list()).unwrap();
    for q in &listed {
        let f = got.iter().position(|ids| ids.contains(&q.id)).unwrap();
        assert_eq!(
            q.lease_owner.as_deref(),
            Some(format!("front-{f}").as_str())
        );
        assert!(q.lease_until.is_some());
    }
    // Nothing is due for a reader either while the leases live.
    assert!(s
        .read_sync(|r| r.queue_due(now() + 1, 10))
        .unwrap()
        .is_empty());
}

#[test]
fn a_live_lease_keeps_others_off_an_expired_one_does_not() {
    let (db, s) = store();
    enqueue(&s, 2, &["x@b.test"]);
    let other = Store::open(db.url()).unwrap();
    let a = s.queue_leases("a").unwrap().unwrap();
    let b = other.queue_leases("b").unwrap().unwrap();
    let short = Duration::from_millis(1500);
    let mine = a.claim(now() + 1, 10, short).unwrap();
    assert_eq!(mine.len(), 2);
    assert!(b.claim(now() + 1, 10, LONG).unwrap().is_empty(), "live");
    assert!(a.claim(now() + 1, 10, LONG).unwrap().is_empty(), "ours");
    // Renewing keeps it live past the first expiry.
    let ids: Vec<i64> = mine.iter().map(|q| q.id).collect();
    std::thread::sleep(Duration::from_millis(1000));
    assert!(a.renew(&ids, short).unwrap().is_empty());
    std::thread::sleep(Duration::from_millis(1000));
    assert!(b.claim(now() + 1, 10, LONG).unwrap().is_empty(), "renewed");
    // Not renewed: expired, and the other front end takes it.
    std::thread::sleep(Duration::from_millis(1700));
    let theirs = b.claim(now() + 1, 10, LONG).unwrap();
    assert_eq!(theirs.iter().map(|q| q.id).collect::<Vec<_>>(), ids);
    assert!(theirs.iter().all(|q| q.lease_owner.as_deref() == Some("b")));
    // Renewing a lease that passed to another front end says so.
    assert_eq!(a.renew(&ids, short).unwrap(), ids);
    // A due time in the future is not claimable, leased or not.
    assert_eq!(b.release(&ids).unwrap(), 2);
    assert!(a.claim(now() - 10, 10, LONG).unwrap().is_empty());
    // Released: due for anyone at once.
    assert_eq!(a.claim(now() + 1, 10, LONG).unwrap().len(), 2);
    other.shutdown();
}

#[test]
fn an_outcome_counts_only_under_a_lease_still_held() {
    let (db, s) = store();
    enqueue(&s, 1, &["x@b.test", "y@b.test"]);
    let other = Store::open(db.url()).unwrap();
    let a = s.queue_leases("a").unwrap().unwrap();
    let b = other.queue_leases("b").unwrap().unwrap();
    let ids: Vec<i64> = a
        .claim(now() + 1, 10, Duration::from_millis(300))
        .unwrap()
        .iter()
        .map(|q| q.id)
        .collect();
    assert_eq!(ids.len(), 2);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(b.claim(now() + 1, 10, LONG).unwrap().len(), 2);
    // Front end a comes back from a stall and would record "delivered":
    // nothing of it is its own any more, so nothing is recorded.
    let ids2 = ids.clone();
    let kept = s
        .write_sync(move |tx| {
            let kept = tx.queue_still_leased(&ids2, "a")?;
            for id in &kept {
                tx.queue_finish(*id)?;
            }
            Ok(kept)
        })
        .unwrap();
    assert!(kept.is_empty(), "{kept:?}");
    assert_eq!(s.read_sync(|r| r.queue_size()).unwrap(), (1, 2));
    // Front end b records: one delivered, one deferred (its lease goes).
    let (done, later) = (ids[0], ids[1]);
    let ids2 = ids.clone();
    let kept = other
        .write_sync(move |tx| {
            let kept = tx.queue_still_leased(&ids2, "b")?;
            tx.queue_finish(done)?;
            tx.queue_defer(later, 0, "451 later")?;
            Ok(kept)
        })
        .unwrap();
    assert_eq!(kept, ids);
    let left = s.read_sync(|r| r.queue_list()).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, later);
    assert_eq!(left[0].lease_owner, None);
    assert_eq!(left[0].attempts, 1);
    // Deferred to the past: due, and a may claim it at once.
    assert_eq!(a.claim(now() + 1, 10, LONG).unwrap().len(), 1);
    other.shutdown();
}

#[test]
fn the_last_recipients_finished_by_two_front_ends_take_the_message_along() {
    for _ in 0..5 {
        let (db, s) = store();
        enqueue(&s, 1, &["x@b.test", "y@c.test"]);
        let other = Store::open(db.url()).unwrap();
        let ids: Vec<i64> = s
            .read_sync(|r| r.queue_list())
            .unwrap()
            .iter()
            .map(|q| q.id)
            .collect();
        let start = Arc::new(Barrier::new(2));
        let ts: Vec<_> = [(s.clone(), ids[0]), (other.clone(), ids[1])]
            .into_iter()
            .map(|(st, id)| {
                let start = Arc::clone(&start);
                std::thread::spawn(move || {
                    start.wait();
                    st.write_sync(move |tx| tx.queue_finish(id)).unwrap();
                })
            })
            .collect();
        for t in ts {
            t.join().unwrap();
        }
        other.shutdown();
        let mut c = postgres::Client::connect(db.url(), postgres::NoTls).unwrap();
        let left: i64 = c
            .query_one("SELECT count(*) FROM outq_msg", &[])
            .unwrap()
            .get(0);
        assert_eq!(left, 0, "a message without recipients stayed behind");
    }
}

#[test]
fn a_restart_takes_back_its_own_leases_and_nobody_elses() {
    let (db, s) = store();
    enqueue(&s, 3, &["x@b.test"]);
    let other = Store::open(db.url()).unwrap();
    let old = s
        .queue_leases("host-a[127.0.0.2:25]/100/1")
        .unwrap()
        .unwrap();
    let b = other
        .queue_leases("host-a[127.0.0.3:25]/200/1")
        .unwrap()
        .unwrap();
    assert_eq!(old.claim(now() + 1, 2, LONG).unwrap().len(), 2);
    assert_eq!(b.claim(now() + 1, 1, LONG).unwrap().len(), 1);
    // The same front end (host and address) started again.
    let new = s
        .queue_leases("host-a[127.0.0.2:25]/101/9")
        .unwrap()
        .unwrap();
    assert!(new.recover("").is_err());
    assert!(new.recover("host-b").is_err());
    assert_eq!(new.recover("host-a[127.0.0.2:25]/").unwrap(), 2);
    let listed = s.read_sync(|r| r.queue_list()).unwrap();
    let owners: Vec<Option<&str>> = listed.iter().map(|q| q.lease_owner.as_deref()).collect();
    assert_eq!(
        owners.iter().filter(|o| o.is_none()).count(),
        2,
        "{owners:?}"
    );
    assert!(owners.contains(&Some("host-a[127.0.0.3:25]/200/1")));
    // Its own live leases stay: recovering again gives nothing back.
    assert_eq!(new.claim(now() + 1, 10, LONG).unwrap().len(), 2);
    assert_eq!(new.recover("host-a[127.0.0.2:25]/").unwrap(), 0);
    other.shutdown();
}
