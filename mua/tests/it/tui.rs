//! The TUI's state machine and worker threads against the real servers:
//! keys in, IMAP out, screen (ratatui TestBackend) checked — including
//! threading and new mail arriving through IDLE without a key press.

use super::util::{Servers, PASSWORD};
use mua::tui::app::{Action, App};
use mua::tui::{draw, worker, Event, Request};
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Harness {
    app: App,
    term: Terminal<TestBackend>,
    requests: Sender<Request>,
    events: Receiver<Event>,
    /// Every status-bar text seen so far.
    statuses: Vec<String>,
}

impl Harness {
    fn act(&mut self, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Request(r) => self.requests.send(r).unwrap(),
                Action::Edit(d) => panic!("unexpected editor for {d:?}"),
            }
        }
    }

    fn screen(&mut self) -> String {
        self.term.draw(|f| draw::draw(f, &mut self.app)).unwrap();
        if let Some(a) = self.app.wanted_rows() {
            self.act(vec![a]);
        }
        let buf = self.term.backend().buffer().clone();
        let mut out = String::new();
        for y in 0..buf.area.height {
            for x in 0..buf.area.width {
                out.push_str(buf[(x, y)].symbol());
            }
            out.push('\n');
        }
        out
    }

    /// Pumps worker events until the screen satisfies `ok` (or 20 s pass).
    fn wait_for(&mut self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}:\n{s}"
            );
            if let Ok(ev) = self.events.recv_timeout(Duration::from_millis(200)) {
                let acts = self.app.on_event(ev);
                self.statuses.push(self.app.status.clone());
                self.act(acts);
            }
        }
    }

    fn key(&mut self, c: KeyCode) {
        let acts = self.app.on_key(KeyEvent::new(c, KeyModifiers::NONE));
        self.act(acts);
    }
}

#[test]
fn tui_lists_threads_reads_and_sees_new_mail_live() {
    let s = Servers::start();
    s.ok(
        "alice@localhost",
        &[
            "send",
            "--to",
            "bob@localhost",
            "--subject",
            "Trip",
            "--body",
            "Where to?",
        ],
        None,
    );
    let uid = s.newest_uid("bob@localhost", "INBOX").to_string();
    let original = s
        .ok("bob@localhost", &["read", &uid, "--raw", "--peek"], None)
        .stdout_bytes;
    let (_, reply) = mua::compose::reply(&original, "alice@localhost", false)
        .unwrap()
        .build()
        .unwrap();
    // Alice answers her own thread to bob (To: is the original sender: fix it up).
    let reply = String::from_utf8(reply)
        .unwrap()
        .replace("To: <alice@localhost>", "To: <bob@localhost>");
    s.ok(
        "alice@localhost",
        &["send", "--raw"],
        Some(reply.as_bytes()),
    );
    s.ok(
        "alice@localhost",
        &[
            "send",
            "--to",
            "bob@localhost",
            "--subject",
            "Unrelated",
            "--body",
            "x",
        ],
        None,
    );

    let account = worker::Account {
        imap: s.imap.to_string(),
        smtp: s.smtp.to_string(),
        user: "bob@localhost".into(),
        password: PASSWORD.into(),
        sent: "Sent".into(),
        net: mua::net::Options::default(),
        cache_dir: Some(s.dir.path().join("tui-cache")),
    };
    let mut client = mua::imap::Client::connect(&account.imap, &account.net).unwrap();
    client.login(&account.user, &account.password).unwrap();
    // A folder besides INBOX, where mail arrives later (NOTIFY reports it).
    client.create("Lists").unwrap();
    let (req_tx, req_rx) = mpsc::channel();
    let (ev_tx, ev_rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    worker::spawn_worker(account.clone(), client, req_rx, ev_tx.clone());
    worker::spawn_watcher(account, ev_tx, stop.clone());
    let (app, initial) = App::new("bob@localhost", "INBOX");
    let mut h = Harness {
        app,
        term: Terminal::new(TestBackend::new(120, 30)).unwrap(),
        requests: req_tx,
        events: ev_rx,
        statuses: Vec::new(),
    };
    h.act(initial);
    let screen = h.wait_for("the three messages", |s| {
        s.contains("Unrelated") && s.contains("Re: Trip")
    });
    let unrelated = screen.find("Unrelated").unwrap();
    let trip = screen.find(" Trip").unwrap();
    let re = screen.find("↳ Re: Trip").unwrap();
    assert!(unrelated < trip && trip < re, "thread order:\n{screen}");

    // Open the first row (Unrelated) and read it.
    h.key(KeyCode::Enter);
    h.wait_for("the reader", |s| {
        s.contains("Message ") && s.contains("Subject: Unrelated")
    });

    // New mail shows up with no key pressed, once the watcher is in IDLE.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !h.statuses.iter().any(|s| s.contains("watching INBOX and")) {
        assert!(
            Instant::now() < deadline,
            "watcher never started: {:?}",
            h.statuses
        );
        if let Ok(ev) = h.events.recv_timeout(Duration::from_millis(200)) {
            let acts = h.app.on_event(ev);
            h.statuses.push(h.app.status.clone());
            h.act(acts);
        }
    }
    s.ok(
        "alice@localhost",
        &[
            "send",
            "--to",
            "bob@localhost",
            "--subject",
            "Fresh news",
            "--body",
            "y",
        ],
        None,
    );
    let screen = h.wait_for("new mail", |s| s.contains("Fresh news"));
    assert!(screen.contains("New mail in INBOX"), "{screen}");
    // The watcher said how it watches: minimail offers NOTIFY.
    assert!(
        h.statuses
            .iter()
            .any(|s| s.contains("watching INBOX and 2 other mailboxes for new mail (NOTIFY)")),
        "{:?}",
        h.statuses
    );

    // Mail arriving in another folder (APPENDed by another session, as a
    // filter or another client would) is announced too.
    let mut other = mua::imap::Client::connect(&s.imap.to_string(), &Default::default()).unwrap();
    other.login("bob@localhost", PASSWORD).unwrap();
    other
        .append(
            "Lists",
            &[],
            b"From: <list@example.org>\r\nSubject: digest\r\n\r\nnews\r\n",
        )
        .unwrap();
    other.logout();
    h.wait_for("news of Lists", |s| s.contains("New mail in Lists"));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
}
