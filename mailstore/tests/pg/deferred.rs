//! Deliveries sent together (`src/pg/deferred.rs`): SMTP's deliveries
//! (`Tx::deliver_prepared_unreported` in `Store::write_rerunnable` jobs)
//! store exactly what the same deliveries store one statement each
//! (`Tx::deliver_prepared_to` in plain write jobs): UIDs, MODSEQs,
//! headers, search text, threads and quota usage alike, also when a
//! reply's original is in the same batch, when a user has a quota (read
//! between two kept deliveries), when a target mailbox is made by the
//! batch, and when another front end deleted and re-made a mailbox the
//! writer remembered.

use std::collections::HashMap;
use std::sync::mpsc::channel;

use mailstore::{NewMessage, PreparedMessage, Query, Store, UserId};

use crate::util::{store, user};

const N: usize = 90;

/// Message `i` of round `round`: a reply to message `i - 1` every fifth
/// (its original most likely in the same batch), a word of its own.
fn message(round: usize, i: usize) -> Vec<u8> {
    let refs = if i % 5 == 4 {
        format!("In-Reply-To: <r{round}m{}@example.org>\r\n", i - 1)
    } else {
        String::new()
    };
    format!(
        "From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: r{round} m{i}\r\n\
         Date: Tue, 24 Nov 2026 10:00:00 +0100\r\nMessage-ID: <r{round}m{i}@example.org>\r\n{refs}\
         \r\nbody of r{round} m{i}: kw{round}x{i}zq and some {}\r\n",
        "text ".repeat(i % 13)
    )
    .into_bytes()
}

/// Recipients and mailbox of message `i`: one to three users; every
/// seventh into "Lists" (missing at first: made by the delivery).
fn route(users: &[UserId], i: usize) -> (Vec<UserId>, &'static str) {
    let to: Vec<UserId> = match i % 4 {
        0 => vec![users[0]],
        1 => vec![users[1], users[2]],
        2 => vec![users[2], users[0], users[1]],
        _ => vec![users[1]],
    };
    (
        to,
        if i.is_multiple_of(7) {
            "Lists"
        } else {
            "INBOX"
        },
    )
}

/// Every delivery of a round queued at once (so the writer batches
/// them), then each one's result: sent together (`together`) or one
/// statement each.
fn round(s: &Store, users: &[UserId], r: usize, together: bool) {
    let (tx, rx) = channel::<(usize, mailstore::Result<()>)>();
    for i in 0..N {
        let new = NewMessage {
            raw: message(r, i),
            internal_date: 1_790_000_000 + i as i64,
        };
        // Half with the search text made ahead (as smtpd prepares mail),
        // half made by the writer.
        let msg = if i % 2 == 0 {
            s.prepare(new)
        } else {
            PreparedMessage::new(new)
        }
        .unwrap();
        let (to, mailbox) = route(users, i);
        let tx = tx.clone();
        let done = move |res| {
            let _ = tx.send((i, res));
        };
        if together {
            s.write_rerunnable(
                move |t| t.deliver_prepared_unreported(&msg, &to, mailbox),
                done,
            );
        } else {
            s.write(
                move |t| t.deliver_prepared_to(&msg, &to, mailbox).map(|_| ()),
                done,
            );
        }
    }
    drop(tx);
    let mut acked: Vec<usize> = Vec::new();
    for (i, res) in rx.iter() {
        res.unwrap_or_else(|e| panic!("round {r}, message {i}: {e}"));
        acked.push(i);
    }
    assert_eq!(acked, (0..N).collect::<Vec<_>>(), "completed in order");
}

/// (user, mailbox, uid, modseq, subject, the subject of its thread's
/// first message still stored, size, flags) of every entry, and each user's usage, read with SQL.
type Entry = (String, String, i64, i64, String, String, i64, i32);

fn contents(url: &str) -> (Vec<Entry>, Vec<(String, i64, i64)>) {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let mut subject: HashMap<i64, String> = HashMap::new();
    for r in c
        .query(
            "SELECT message_id, value FROM message_headers WHERE lower(name) = 'subject'",
            &[],
        )
        .unwrap()
    {
        subject.insert(r.get(0), r.get::<_, String>(1).trim().to_owned());
    }
    // A thread by its first message still stored (ids ascend in
    // delivery order on both stores).
    let mut first: HashMap<i64, (i64, String)> = HashMap::new();
    for r in c
        .query("SELECT id, coalesce(thread_id, id) FROM messages", &[])
        .unwrap()
    {
        let (id, thread): (i64, i64) = (r.get(0), r.get(1));
        let s = subject.get(&id).cloned().unwrap_or_default();
        let e = first.entry(thread).or_insert((id, s.clone()));
        if id < e.0 {
            *e = (id, s);
        }
    }
    let entries = c
        .query(
            "SELECT u.address, mb.name, e.uid, e.modseq, m.id, coalesce(m.thread_id, m.id), m.size, e.flags
             FROM entries e JOIN mailboxes mb ON mb.id = e.mailbox_id JOIN users u ON u.id = mb.user_id
             JOIN messages m ON m.id = e.message_id ORDER BY 1, 2, 3",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| {
            let (id, thread): (i64, i64) = (r.get(4), r.get(5));
            (
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                subject.get(&id).cloned().unwrap_or_default(),
                first.get(&thread).map(|f| f.1.clone()).unwrap_or_default(),
                r.get(6),
                r.get(7),
            )
        })
        .collect();
    let usage = c
        .query(
            "SELECT address, used_storage, used_messages FROM users ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    // Every message has its raw bytes and search text.
    let missing: i64 = c
        .query_one(
            "SELECT count(*) FROM messages m WHERE NOT EXISTS (SELECT 1 FROM message_raw r WHERE r.id = m.id)
             OR NOT EXISTS (SELECT 1 FROM message_text t WHERE t.id = m.id AND t.words IS NOT NULL)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(missing, 0, "messages without raw bytes or search text");
    (entries, usage)
}

/// Another front end deletes `user`'s "Lists" and makes it again (a new
/// mailbox of the same name).
fn remake_lists(url: &str, user: UserId) {
    let other = Store::open(url).unwrap();
    let id = other
        .read_sync(|r| r.mailbox(user, "Lists"))
        .unwrap()
        .expect("Lists")
        .id;
    other
        .write_sync(move |t| {
            t.delete_mailbox(id)?;
            t.create_mailbox(user, "Lists", None).map(|_| ())
        })
        .unwrap();
    other.shutdown();
}

#[test]
fn deliveries_sent_together_store_what_one_statement_each_stores() {
    let mut seen = Vec::new();
    for together in [true, false] {
        let (db, s) = store();
        let users: Vec<UserId> = ["u0@example.org", "u1@example.org", "u2@example.org"]
            .iter()
            .map(|a| user(&s, a))
            .collect();
        // A limit far above what arrives: its check reads usage between
        // two kept deliveries.
        let limited = users[2];
        s.write_sync(move |t| t.set_quota(limited, Some(1 << 30), Some(100_000)))
            .unwrap();
        round(&s, &users, 0, together);
        remake_lists(db.url(), users[0]);
        round(&s, &users, 1, together);
        // Search reads what was sent together (the trigram index).
        let inbox = s
            .read_sync(|r| r.mailbox(users[1], "INBOX"))
            .unwrap()
            .unwrap()
            .id;
        let hits = s
            .read_sync(move |r| r.search(inbox, &Query::Body("kw1x13zq".into())))
            .unwrap();
        assert_eq!(hits.len(), 1, "one message has that word");
        let (entries, usage) = contents(db.url());
        s.shutdown();
        seen.push((entries, usage));
    }
    let (together, one_each) = (&seen[0], &seen[1]);
    assert_eq!(together.0.len(), one_each.0.len(), "entries");
    for (a, b) in together.0.iter().zip(&one_each.0) {
        assert_eq!(a, b, "sent together vs one statement each");
    }
    assert_eq!(together.1, one_each.1, "quota usage");
    // UIDs 1.. in order and MODSEQs ascending in each mailbox; replies
    // in their original's thread.
    let mut last: HashMap<(String, String), (i64, i64)> = HashMap::new();
    for (user, mailbox, uid, modseq, subject, thread, _, _) in &together.0 {
        let key = (user.clone(), mailbox.clone());
        let (puid, pmodseq) = last.get(&key).copied().unwrap_or((0, 0));
        assert_eq!(*uid, puid + 1, "{user} {mailbox}: UIDs without gaps");
        assert!(*modseq > pmodseq, "{user} {mailbox}: MODSEQs ascend");
        last.insert(key, (*uid, *modseq));
        let i: usize = subject.rsplit('m').next().unwrap().parse().unwrap();
        // (Unless the original went with a deleted "Lists".)
        let gone = subject.starts_with("r0 ") && (i - 1).is_multiple_of(28);
        if i % 5 == 4 && !gone {
            let r = subject.split(' ').next().unwrap();
            assert_eq!(thread, &format!("{r} m{}", i - 1), "{subject}: its thread");
        }
    }
    // The re-made "Lists" got round 1's messages from UID 1.
    let lists: Vec<&Entry> = together
        .0
        .iter()
        .filter(|e| e.0 == "u0@example.org" && e.1 == "Lists")
        .collect();
    assert!(!lists.is_empty());
    assert!(lists.iter().all(|e| e.4.starts_with("r1 ")), "{lists:?}");
}

/// APPENDs in one batch (rerunnable jobs, as imapd's) are sent together
/// too: each is told the UID and UIDVALIDITY its entry has, with its
/// flags, in the order queued; two mailboxes and a quota check (a read
/// between two kept APPENDs) mixed in.
#[test]
fn appends_sent_together_get_the_uids_they_were_told() {
    use mailstore::{Appended, Flags};
    let (db, s) = store();
    let a = user(&s, "a@example.org");
    let b = user(&s, "b@example.org");
    s.write_sync(move |t| t.set_quota(b, Some(1 << 30), None))
        .unwrap();
    let boxes: Vec<(UserId, mailstore::Mailbox)> = [(a, "INBOX"), (a, "Sent"), (b, "INBOX")]
        .iter()
        .map(|&(u, n)| (u, s.read_sync(move |r| r.mailbox(u, n)).unwrap().unwrap()))
        .collect();
    const M: usize = 120;
    // APPEND i's mailbox, of `boxes`.
    let target = |i: usize| i % 3 / 2 + usize::from(i.is_multiple_of(5));
    let (tx, rx) = channel::<(usize, mailstore::Result<Appended>)>();
    for i in 0..M {
        let (_, mb) = &boxes[target(i)];
        let mailbox = mb.id;
        let msg = s
            .prepare(NewMessage {
                raw: message(7, i),
                internal_date: 1_790_000_000,
            })
            .unwrap();
        let flags = Flags {
            system: if i.is_multiple_of(3) { Flags::SEEN } else { 0 },
            keywords: if i.is_multiple_of(4) {
                vec!["$Label1".into()]
            } else {
                Vec::new()
            },
        };
        let tx = tx.clone();
        s.write_rerunnable(
            move |t| t.append_prepared(mailbox, &msg, &flags),
            move |r| {
                let _ = tx.send((i, r));
            },
        );
    }
    drop(tx);
    let told: HashMap<usize, Appended> = rx
        .iter()
        .map(|(i, r)| (i, r.unwrap_or_else(|e| panic!("APPEND {i}: {e}"))))
        .collect();
    assert_eq!(told.len(), M);
    let mut c = postgres::Client::connect(db.url(), postgres::NoTls).unwrap();
    let rows = c
        .query(
            "SELECT e.mailbox_id, e.uid, e.flags, e.keywords, h.value, mb.uidvalidity
             FROM entries e JOIN mailboxes mb ON mb.id = e.mailbox_id
             JOIN message_headers h ON h.message_id = e.message_id AND lower(h.name) = 'subject'
             ORDER BY 1, 2",
            &[],
        )
        .unwrap();
    assert_eq!(rows.len(), M);
    let mut last: HashMap<i64, i64> = HashMap::new();
    for r in &rows {
        let (mailbox, uid, flags, keywords, subject, validity): (
            i64,
            i64,
            i32,
            String,
            String,
            i64,
        ) = (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5));
        let i: usize = subject.trim().rsplit('m').next().unwrap().parse().unwrap();
        let t = &told[&i];
        assert_eq!(i64::from(t.uid), uid, "APPEND {i}: the UID it was told");
        assert_eq!(i64::from(t.uidvalidity), validity, "APPEND {i}");
        let prev = last.insert(mailbox, uid).unwrap_or(0);
        assert_eq!(uid, prev + 1, "mailbox {mailbox}: UIDs in order, no gaps");
        assert_eq!(flags & 1 != 0, i.is_multiple_of(3), "APPEND {i}: \\Seen");
        assert_eq!(
            keywords.contains("$Label1"),
            i.is_multiple_of(4),
            "APPEND {i}: keyword"
        );
    }
    // Queued in order per mailbox: UIDs follow the order of the APPENDs.
    for (_, mb) in &boxes {
        let mut mine: Vec<(u32, usize)> = told
            .iter()
            .filter(|(i, _)| boxes[target(**i)].1.id == mb.id)
            .map(|(i, t)| (t.uid, *i))
            .collect();
        mine.sort();
        assert!(mine.windows(2).all(|w| w[0].1 < w[1].1), "{mine:?}");
    }
}
