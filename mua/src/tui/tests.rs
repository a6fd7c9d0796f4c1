//! TUI behaviour driven through the state machine with keys and worker
//! events, checked on a ratatui `TestBackend` screen.

use super::app::{Action, App, Mode, Pane};
use super::worker::Item;
use super::{draw, Event, Purpose, Request};
use crate::model::{MailboxRow, Row};
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;

fn key(app: &mut App, code: KeyCode) -> Vec<Action> {
    app.on_key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn typed(app: &mut App, s: &str) {
    for c in s.chars() {
        key(app, KeyCode::Char(c));
    }
}

fn screen(app: &mut App) -> String {
    let mut term = Terminal::new(TestBackend::new(110, 24)).unwrap();
    term.draw(|f| draw::draw(f, app)).unwrap();
    let buf = term.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

fn item(uid: u32, subject: &str, id: &str, parent: Option<&str>, seen: bool) -> Item {
    Item {
        row: Row {
            uid,
            flags: if seen { vec!["\\Seen".into()] } else { vec![] },
            date: "2024-05-01 12:00".into(),
            from: "Bob".into(),
            from_addr: "bob@localhost".into(),
            subject: subject.into(),
            size: 100,
            message_id: Some(id.into()),
        },
        parent_id: parent.map(str::to_string),
    }
}

/// A client showing INBOX with `n` messages, the newest three loaded.
fn opened(n: u32) -> App {
    let (mut app, init) = App::new("alice@localhost", "INBOX");
    assert!(init.contains(&Action::Request(Request::Mailboxes)));
    app.on_event(Event::Mailboxes(vec![
        MailboxRow {
            name: "INBOX".into(),
            total: n as u64,
            unseen: 2,
        },
        MailboxRow {
            name: "Sent".into(),
            total: 0,
            unseen: 0,
        },
    ]));
    app.on_event(Event::Uids {
        mailbox: "INBOX".into(),
        uids: (1..=n).rev().collect(),
        query: None,
    });
    app.on_event(Event::Rows(vec![
        item(n, "Lunch?", "<c@x>", None, false),
        item(n - 1, "Re: Plans", "<b@x>", Some("<a@x>"), true),
        item(n - 2, "Plans", "<a@x>", None, false),
    ]));
    app
}

const MSG: &[u8] = b"From: Bob <bob@localhost>\r\nTo: alice@localhost\r\nSubject: Plans\r\nMessage-ID: <a@x>\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\nContent-Type: text/plain\r\n\r\nMeet at noon.\r\n--q\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=map.pdf\r\n\r\n%PDF\r\n--q--\r\n";

#[test]
fn large_mailbox_fetches_only_what_is_on_screen() {
    let (mut app, _) = App::new("alice@localhost", "INBOX");
    app.on_event(Event::Uids {
        mailbox: "INBOX".into(),
        uids: (1..=100_000).rev().collect(),
        query: None,
    });
    let s = screen(&mut app);
    assert!(s.contains("INBOX (100000)"), "{s}");
    let Some(Action::Request(Request::Rows(uids))) = app.wanted_rows() else {
        panic!("no row request");
    };
    assert!(uids.len() < 100, "asked for {} rows", uids.len());
    assert_eq!(uids[0], 100_000);
    assert_eq!(app.wanted_rows(), None, "the same rows are not asked twice");
}

#[test]
fn list_shows_threads_newest_first() {
    let mut app = opened(50);
    let s = screen(&mut app);
    let lunch = s.find("Lunch?").unwrap();
    let plans = s.find(" Plans").unwrap();
    let reply = s.find("↳ Re: Plans").unwrap();
    assert!(lunch < plans && plans < reply, "{s}");
    assert!(
        s.lines()
            .any(|l| l.starts_with("│*INBOX") && l.contains(" 2││")),
        "unread count in the mailbox pane: {s}"
    );
    assert!(s.contains("j/k move"), "help bar: {s}");
}

#[test]
fn enter_opens_reader_and_q_goes_back_then_quits() {
    let mut app = opened(50);
    key(&mut app, KeyCode::Char('j'));
    let acts = key(&mut app, KeyCode::Enter);
    assert_eq!(
        acts,
        vec![Action::Request(Request::Message {
            uid: 48,
            purpose: Purpose::Read
        })]
    );
    app.on_event(Event::Message {
        uid: 48,
        bytes: MSG.to_vec(),
        purpose: Purpose::Read,
    });
    assert_eq!(app.pane, Pane::Reader);
    let s = screen(&mut app);
    assert!(s.contains("Meet at noon."), "{s}");
    assert!(s.contains("[1] map.pdf"), "{s}");
    assert_eq!(app.mailboxes[0].unseen, 1, "reading marks it seen");
    key(&mut app, KeyCode::Char('q'));
    assert_eq!(app.pane, Pane::List);
    assert!(!screen(&mut app).contains("Meet at noon."));
    key(&mut app, KeyCode::Char('q'));
    assert!(app.quit);
}

#[test]
fn reply_goes_through_editor_and_confirm_screen() {
    let mut app = opened(50);
    key(&mut app, KeyCode::Char('G'));
    key(&mut app, KeyCode::Char('k'));
    let acts = key(&mut app, KeyCode::Char('r'));
    let Action::Request(Request::Message {
        uid,
        purpose: Purpose::Reply,
    }) = acts[0].clone()
    else {
        panic!("{acts:?}");
    };
    let acts = app.on_event(Event::Message {
        uid,
        bytes: MSG.to_vec(),
        purpose: Purpose::Reply,
    });
    let [Action::Edit(draft)] = acts.as_slice() else {
        panic!("{acts:?}")
    };
    assert_eq!(draft.subject, "Re: Plans");
    assert_eq!(draft.in_reply_to.as_deref(), Some("<a@x>"));
    let edited = draft.to_editor_text().replace("\n\n", "\n\nSounds good.\n");
    app.on_edited(draft, &edited);
    let s = screen(&mut app);
    assert!(s.contains("Send this message?"), "{s}");
    assert!(s.contains("Sounds good."), "{s}");
    let acts = key(&mut app, KeyCode::Char('y'));
    let [Action::Request(Request::Send(sent))] = acts.as_slice() else {
        panic!("{acts:?}")
    };
    assert_eq!(sent.to, vec!["Bob <bob@localhost>"]);
    assert_eq!(sent.references, vec!["<a@x>"]);
    assert_eq!(app.mode, Mode::Normal);
}

#[test]
fn compose_without_recipients_is_discarded() {
    let mut app = opened(5);
    let acts = key(&mut app, KeyCode::Char('c'));
    let [Action::Edit(d)] = acts.as_slice() else {
        panic!("{acts:?}")
    };
    app.on_edited(d, "Subject: hi\n\nbody");
    assert_eq!(app.mode, Mode::Normal);
    assert!(app.status.contains("no recipients"));
}

#[test]
fn compose_attaches_files_named_in_the_draft() {
    let mut app = opened(5);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plan.txt");
    std::fs::write(&file, "0123456789").unwrap();
    let acts = key(&mut app, KeyCode::Char('c'));
    let [Action::Edit(d)] = acts.as_slice() else {
        panic!("{acts:?}")
    };
    let text = d
        .to_editor_text()
        .replace("To: ", "To: bob@localhost")
        .replace(
            "Attach: ",
            &format!("Attach: {}\nAttach: /no/such/file", file.display()),
        );
    app.on_edited(d, &text);
    assert!(
        app.status.contains("cannot attach /no/such/file"),
        "{}",
        app.status
    );
    let s = screen(&mut app);
    assert!(s.contains("Attach:  plan.txt (10 bytes)"), "{s}");
}

#[test]
fn search_prompt_sends_query_and_rejects_bad_ones() {
    let mut app = opened(50);
    key(&mut app, KeyCode::Char('/'));
    typed(&mut app, "from:bob unseen");
    assert!(screen(&mut app).contains("Search: from:bob unseen_"));
    let acts = key(&mut app, KeyCode::Enter);
    assert_eq!(
        acts,
        vec![Action::Request(Request::Select {
            mailbox: "INBOX".into(),
            query: Some("from:bob unseen".into())
        })]
    );
    key(&mut app, KeyCode::Char('/'));
    for _ in 0..20 {
        key(&mut app, KeyCode::Backspace);
    }
    typed(&mut app, "since:yesterday");
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert!(app.status.contains("bad query"), "{}", app.status);
}

#[test]
fn delete_move_and_unread_toggle() {
    let mut app = opened(50);
    assert_eq!(
        key(&mut app, KeyCode::Char('d')),
        vec![Action::Request(Request::Delete { uid: 50 })]
    );
    app.on_event(Event::Removed(50));
    assert!(!screen(&mut app).contains("Lunch?"));
    key(&mut app, KeyCode::Char('m'));
    typed(&mut app, "Archive");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Action::Request(Request::Move {
            uid: 48,
            dest: "Archive".into()
        })]
    );
    // uid 48 ("Plans") is unseen; u marks it read and back.
    let acts = key(&mut app, KeyCode::Char('u'));
    assert_eq!(
        acts,
        vec![Action::Request(Request::Flag {
            uid: 48,
            flag: "\\Seen".into(),
            on: true
        })]
    );
    assert_eq!(app.mailboxes[0].unseen, 1);
    let acts = key(&mut app, KeyCode::Char('u'));
    assert_eq!(
        acts,
        vec![Action::Request(Request::Flag {
            uid: 48,
            flag: "\\Seen".into(),
            on: false
        })]
    );
    assert_eq!(app.mailboxes[0].unseen, 2);
}

#[test]
fn new_mail_refreshes_without_a_key_and_shows_a_notice() {
    let mut app = opened(50);
    let acts = app.on_event(Event::NewMail("INBOX".into()));
    assert!(acts.contains(&Action::Request(Request::Select {
        mailbox: "INBOX".into(),
        query: None
    })));
    app.on_event(Event::Uids {
        mailbox: "INBOX".into(),
        uids: (1..=51).rev().collect(),
        query: None,
    });
    let s = screen(&mut app);
    assert!(s.contains("New mail in INBOX"), "{s}");
    assert!(s.contains("INBOX (51)"), "{s}");
}

#[test]
fn bursts_of_new_mail_are_coalesced() {
    let mut app = opened(50);
    assert_eq!(app.on_event(Event::NewMail("INBOX".into())).len(), 2);
    for _ in 0..100 {
        assert!(app.on_event(Event::NewMail("INBOX".into())).is_empty());
    }
    // The queued refresh answers; exactly one more is asked for.
    let acts = app.on_event(Event::Mailboxes(app.mailboxes.clone()));
    assert_eq!(acts.len(), 2, "{acts:?}");
    assert!(app
        .on_event(Event::Mailboxes(app.mailboxes.clone()))
        .is_empty());
}

#[test]
fn tab_cycles_panes_and_enter_opens_mailbox() {
    let mut app = opened(5);
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.pane, Pane::Mailboxes);
    key(&mut app, KeyCode::Char('j'));
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Action::Request(Request::Select {
            mailbox: "Sent".into(),
            query: None
        })]
    );
    assert_eq!(app.pane, Pane::List);
    app.on_event(Event::Uids {
        mailbox: "Sent".into(),
        uids: vec![],
        query: None,
    });
    assert!(screen(&mut app).contains("Sent (0)"));
    assert!(app
        .on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL))
        .is_empty());
    assert!(app.quit, "Ctrl-C quits");
}

#[test]
fn save_prompt_needs_an_open_message_with_attachments() {
    let mut app = opened(50);
    key(&mut app, KeyCode::Char('s'));
    assert!(app.status.contains("open a message"));
    app.on_event(Event::Message {
        uid: 48,
        bytes: MSG.to_vec(),
        purpose: Purpose::Read,
    });
    key(&mut app, KeyCode::Char('s'));
    assert_eq!(
        app.mode,
        Mode::Prompt {
            kind: super::app::PromptKind::Save,
            input: "1 map.pdf".into()
        }
    );
    let acts = key(&mut app, KeyCode::Enter);
    assert_eq!(
        acts,
        vec![Action::Request(Request::Save {
            uid: 48,
            index: 1,
            path: "map.pdf".into()
        })]
    );
}
