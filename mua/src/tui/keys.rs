//! Key handling for the TUI state machine: the normal-mode key map (mutt /
//! aerc style), the one-line prompts (search, move, save) and the compose
//! confirm screen. Keys change `App` state and return `Action`s.

use super::app::{Action, App, Mode, Pane, PromptKind};
use super::{Purpose, Request};
use crate::compose::Draft;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

fn req(r: Request) -> Action {
    Action::Request(r)
}

impl App {
    /// Handles one key press.
    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Action> {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            self.quit = true;
            return Vec::new();
        }
        match self.mode.clone() {
            Mode::Prompt { kind, input } => self.on_prompt_key(kind, input, key),
            Mode::Confirm(draft) => self.on_confirm_key(*draft, key),
            Mode::Normal => self.on_normal_key(key),
        }
    }

    fn on_prompt_key(&mut self, kind: PromptKind, mut input: String, key: KeyEvent) -> Vec<Action> {
        match key.code {
            KeyCode::Esc => {
                self.mode = Mode::Normal;
                self.status = "cancelled".into();
                Vec::new()
            }
            KeyCode::Enter => {
                self.mode = Mode::Normal;
                self.submit_prompt(kind, input.trim())
            }
            KeyCode::Backspace => {
                input.pop();
                self.mode = Mode::Prompt { kind, input };
                Vec::new()
            }
            KeyCode::Char(c) => {
                input.push(c);
                self.mode = Mode::Prompt { kind, input };
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn submit_prompt(&mut self, kind: PromptKind, input: &str) -> Vec<Action> {
        match kind {
            PromptKind::Search => {
                if let Err(e) = crate::query::to_search(input) {
                    self.status = format!("bad query: {e}");
                    return Vec::new();
                }
                self.query = (!input.is_empty()).then(|| input.to_string());
                self.status = match &self.query {
                    Some(q) => format!("searching {q}…"),
                    None => "showing all messages".into(),
                };
                self.pane = Pane::List;
                vec![req(Request::Select {
                    mailbox: self.mailbox.clone(),
                    query: self.query.clone(),
                })]
            }
            PromptKind::Move => match self.target() {
                Some(uid) if !input.is_empty() => vec![req(Request::Move {
                    uid,
                    dest: input.to_string(),
                })],
                _ => Vec::new(),
            },
            PromptKind::Save => {
                let Some(r) = &self.reader else {
                    return Vec::new();
                };
                let (num, path) = input.split_once(' ').unwrap_or((input, ""));
                match num.parse::<usize>() {
                    Ok(index) if !path.trim().is_empty() => vec![req(Request::Save {
                        uid: r.uid,
                        index,
                        path: path.trim().to_string(),
                    })],
                    _ => {
                        self.status = "usage: NUMBER PATH".into();
                        Vec::new()
                    }
                }
            }
        }
    }

    fn on_confirm_key(&mut self, draft: Draft, key: KeyEvent) -> Vec<Action> {
        match key.code {
            KeyCode::Char('y') => {
                self.mode = Mode::Normal;
                self.status = "sending…".into();
                vec![req(Request::Send(Box::new(draft)))]
            }
            KeyCode::Char('e') => {
                self.mode = Mode::Normal;
                vec![Action::Edit(Box::new(draft))]
            }
            KeyCode::Char('n') | KeyCode::Char('q') | KeyCode::Esc => {
                self.mode = Mode::Normal;
                self.status = "draft discarded".into();
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn move_sel(&mut self, delta: isize) {
        match self.pane {
            Pane::Mailboxes => {
                let n = self.mailboxes.len() as isize;
                self.mb_sel = (self.mb_sel as isize + delta).clamp(0, (n - 1).max(0)) as usize;
            }
            Pane::List => {
                let n = self.view.len() as isize;
                self.list_sel = (self.list_sel as isize + delta).clamp(0, (n - 1).max(0)) as usize;
            }
            Pane::Reader => {
                if let Some(r) = &mut self.reader {
                    let max = r.lines.len().saturating_sub(1) as isize;
                    r.scroll = (r.scroll as isize + delta).clamp(0, max) as usize;
                }
            }
        }
        self.clamp();
    }

    fn on_normal_key(&mut self, key: KeyEvent) -> Vec<Action> {
        let page = self.list_height.max(1) as isize;
        match key.code {
            KeyCode::Char('q') | KeyCode::Esc => {
                if self.pane == Pane::Reader {
                    self.pane = Pane::List;
                    self.reader = None;
                } else if key.code == KeyCode::Char('q') {
                    self.quit = true;
                }
            }
            KeyCode::Tab => {
                self.pane = match self.pane {
                    Pane::Mailboxes => Pane::List,
                    Pane::List if self.reader.is_some() => Pane::Reader,
                    _ => Pane::Mailboxes,
                }
            }
            KeyCode::BackTab => {
                self.pane = match self.pane {
                    Pane::Reader => Pane::List,
                    Pane::List => Pane::Mailboxes,
                    Pane::Mailboxes if self.reader.is_some() => Pane::Reader,
                    Pane::Mailboxes => Pane::List,
                }
            }
            KeyCode::Char('j') | KeyCode::Down => self.move_sel(1),
            KeyCode::Char('k') | KeyCode::Up => self.move_sel(-1),
            KeyCode::PageDown | KeyCode::Char(' ') => self.move_sel(page),
            KeyCode::PageUp => self.move_sel(-page),
            KeyCode::Home | KeyCode::Char('g') => self.move_sel(-(isize::MAX / 2)),
            KeyCode::End | KeyCode::Char('G') => self.move_sel(isize::MAX / 2),
            KeyCode::Enter => return self.open(),
            KeyCode::Char('r') => return self.fetch_for(Purpose::Reply),
            KeyCode::Char('a') => return self.fetch_for(Purpose::ReplyAll),
            KeyCode::Char('f') => return self.fetch_for(Purpose::Forward),
            KeyCode::Char('c') => {
                return vec![Action::Edit(Box::new(Draft {
                    from: self.me.clone(),
                    ..Draft::default()
                }))]
            }
            KeyCode::Char('d') => {
                if let Some(uid) = self.target() {
                    self.status = format!("deleting {uid}…");
                    return vec![req(Request::Delete { uid })];
                }
            }
            KeyCode::Char('m') if self.target().is_some() => {
                self.mode = Mode::Prompt {
                    kind: PromptKind::Move,
                    input: String::new(),
                };
            }
            KeyCode::Char('s') => match &self.reader {
                Some(r) if !r.attachments.is_empty() => {
                    let (n, name) = &r.attachments[0];
                    self.mode = Mode::Prompt {
                        kind: PromptKind::Save,
                        input: format!("{n} {name}"),
                    };
                }
                Some(_) => self.status = "this message has no attachments".into(),
                None => self.status = "open a message first (Enter)".into(),
            },
            KeyCode::Char('/') => {
                self.mode = Mode::Prompt {
                    kind: PromptKind::Search,
                    input: self.query.clone().unwrap_or_default(),
                }
            }
            KeyCode::Char('u') => return self.toggle_unread(),
            _ => {}
        }
        Vec::new()
    }

    fn open(&mut self) -> Vec<Action> {
        match self.pane {
            Pane::Mailboxes => {
                let Some(mb) = self.mailboxes.get(self.mb_sel) else {
                    return Vec::new();
                };
                let mailbox = mb.name.clone();
                self.pane = Pane::List;
                self.status = format!("opening {mailbox}…");
                vec![req(Request::Select {
                    mailbox,
                    query: None,
                })]
            }
            Pane::List => match self.selected_uid() {
                Some(uid) => vec![req(Request::Message {
                    uid,
                    purpose: Purpose::Read,
                })],
                None => Vec::new(),
            },
            Pane::Reader => Vec::new(),
        }
    }

    fn fetch_for(&mut self, purpose: Purpose) -> Vec<Action> {
        match self.target() {
            Some(uid) => vec![req(Request::Message { uid, purpose })],
            None => Vec::new(),
        }
    }

    fn toggle_unread(&mut self) -> Vec<Action> {
        let Some(uid) = self.target() else {
            return Vec::new();
        };
        let Some(item) = self.items.get_mut(&uid) else {
            return Vec::new();
        };
        let flags = &mut item.row.flags;
        let seen = flags.iter().any(|f| f.eq_ignore_ascii_case("\\Seen"));
        if seen {
            flags.retain(|f| !f.eq_ignore_ascii_case("\\Seen"));
        } else {
            flags.push("\\Seen".into());
        }
        self.adjust_unseen(if seen { 1 } else { -1 });
        vec![req(Request::Flag {
            uid,
            flag: "\\Seen".into(),
            on: !seen,
        })]
    }

    /// Keeps the open mailbox's unread count in step with local changes.
    pub(super) fn adjust_unseen(&mut self, delta: i64) {
        if let Some(m) = self.mailboxes.iter_mut().find(|m| m.name == self.mailbox) {
            m.unseen = m.unseen.saturating_add_signed(delta);
        }
    }
}
