//! `Store::on_commit_detail`: owners of the changed mailboxes and the users
//! whose mailbox list or subscriptions changed (what imapd's NOTIFY needs
//! to route a commit to the sessions following one user's mailboxes).

use std::sync::{Arc, Mutex};

use mailstore::Committed;

use crate::util::{deliver, simple, store, user};

#[test]
fn detail_names_owners_and_list_changes() {
    let (_d, s) = store();
    let a = user(&s, "a@x");
    let b = user(&s, "b@x");
    let seen: Arc<Mutex<Vec<Committed>>> = Arc::default();
    let seen2 = seen.clone();
    s.on_commit_detail(move |c| seen2.lock().unwrap().push(c.clone()));
    // Listeners run after the jobs' `done`: wait for the batch's call.
    let take = || {
        let t = std::time::Instant::now();
        while seen.lock().unwrap().is_empty() && t.elapsed().as_secs() < 5 {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        std::mem::take(&mut *seen.lock().unwrap())
    };
    // The users' own commits may still be reaching the listener.
    std::thread::sleep(std::time::Duration::from_millis(200));
    seen.lock().unwrap().clear();

    // A delivery: its mailbox with its owner, no list change.
    deliver(&s, simple("hi", "x"), &[b]);
    let got = take();
    assert_eq!(got.len(), 1);
    let inbox_b = s
        .read_sync(move |r| r.mailbox(b, "INBOX"))
        .unwrap()
        .unwrap()
        .id;
    assert_eq!(got[0].mailboxes, [inbox_b]);
    assert_eq!(got[0].owners, [(inbox_b, b)]);
    assert!(got[0].lists.is_empty());

    // CREATE, SUBSCRIBE (of a name with no mailbox too), RENAME, DELETE:
    // each names the owner in `lists`.
    let id = s
        .write_sync(move |w| w.create_mailbox(a, "x", None))
        .unwrap();
    assert_eq!(take()[0].lists, [a]);
    s.write_sync(move |w| w.set_subscribed(a, "nowhere", true))
        .unwrap();
    let c = take();
    assert_eq!((c[0].lists.clone(), c[0].mailboxes.len()), (vec![a], 0));
    s.write_sync(move |w| w.rename_mailbox(a, "x", "y"))
        .unwrap();
    let c = take();
    assert_eq!(c[0].lists, [a]);
    assert_eq!(c[0].owners, [(id, a)]);
    s.write_sync(move |w| w.delete_mailbox(id)).unwrap();
    let c = take();
    assert_eq!(c[0].lists, [a]);
    // Deleted: still among the changed mailboxes, no owner left.
    assert_eq!(c[0].mailboxes, [id]);
    assert!(c[0].owners.is_empty());

    // A failing job's list change is rolled back with it.
    let r = s.write_sync(move |w| {
        w.create_mailbox(a, "z", None)?;
        w.create_mailbox(a, "z", None)
    });
    assert!(r.is_err());
    assert!(take()
        .iter()
        .all(|c| c.lists.is_empty() && c.mailboxes.is_empty()));
}

#[test]
fn own_commits_are_recorded_for_telling_other_processes_apart() {
    let (d, s) = store();
    let a = user(&s, "a@x");
    s.on_commit_detail(|_| {});
    // A second handle on the file stands in for another process.
    let other = mailstore::Store::open(d.path().join("mail.db")).unwrap();
    let v0 = s.read_sync(|r| r.data_version()).unwrap();
    s.take_own_commits(v0);
    deliver(&s, simple("ours", "x"), &[a]);
    other
        .write_sync(move |w| w.create_mailbox(a, "theirs", None))
        .unwrap();
    deliver(&s, simple("ours again", "x"), &[a]);
    let v = s.read_sync(|r| r.data_version()).unwrap();
    assert_eq!(v - v0, 3);
    let ours = s.take_own_commits(v);
    // Two of the three moves are ours; the other process's is not listed.
    assert_eq!(ours, [v0 + 1, v0 + 3]);
    assert!(s.take_own_commits(v).is_empty());
}
