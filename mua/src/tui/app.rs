//! The TUI's state and its update logic, free of terminal and network code:
//! keys and worker events go in, `Action`s (requests for the worker, or
//! "open the editor") come out. Drawing reads this state (`draw.rs`), so
//! tests drive the whole client through `on_key`/`on_event` and check a
//! `TestBackend` screen. Key handling lives in `keys.rs`.

use super::thread::{self, Node};
use super::worker::Item;
use super::{Event, Purpose, Request};
use crate::compose::{self, Draft};
use crate::message::{human_size, Message};
use crate::model::MailboxRow;
use std::collections::{HashMap, HashSet};

/// Which pane has the focus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    /// The mailbox list.
    Mailboxes,
    /// The message list.
    List,
    /// The open message.
    Reader,
}

/// What a one-line prompt is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKind {
    /// `/` search query.
    Search,
    /// `m` destination mailbox.
    Move,
    /// `s` attachment number and path.
    Save,
}

/// Input mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Keys navigate and act.
    Normal,
    /// Keys edit a one-line prompt.
    Prompt {
        /// What the answer is for.
        kind: PromptKind,
        /// Text typed so far.
        input: String,
    },
    /// A composed draft waits for send / edit / discard.
    Confirm(Box<Draft>),
}

/// Something the runner must do for the state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send a request to the worker thread.
    Request(Request),
    /// Suspend the screen and edit this draft in $EDITOR, then call
    /// `App::on_edited`.
    Edit(Box<Draft>),
}

/// The open message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reader {
    /// Its UID.
    pub uid: u32,
    /// Rendered lines (headers, text, attachment list).
    pub lines: Vec<String>,
    /// (number, file name) of each attachment.
    pub attachments: Vec<(usize, String)>,
    /// Scroll offset in lines.
    pub scroll: usize,
}

/// The whole client state.
#[derive(Debug)]
pub struct App {
    /// Account address (From for new mail).
    pub me: String,
    /// Mailboxes with counts.
    pub mailboxes: Vec<MailboxRow>,
    /// Highlighted mailbox.
    pub mb_sel: usize,
    /// The open mailbox.
    pub mailbox: String,
    /// Active search query, if the list shows results.
    pub query: Option<String>,
    /// UIDs in the list (newest first) — all of them, loaded or not.
    pub uids: Vec<u32>,
    /// Loaded headers by UID.
    pub items: HashMap<u32, Item>,
    pub(super) requested: HashSet<u32>,
    /// Display order: (uid, thread depth).
    pub view: Vec<(u32, usize)>,
    /// Highlighted row in `view`.
    pub list_sel: usize,
    /// First visible row.
    pub list_offset: usize,
    /// Visible rows (set by drawing).
    pub list_height: usize,
    /// The open message.
    pub reader: Option<Reader>,
    /// Focused pane.
    pub pane: Pane,
    /// Input mode.
    pub mode: Mode,
    /// Status-bar message.
    pub status: String,
    /// Set when the user quits.
    pub quit: bool,
    /// A new-mail refresh is queued at the worker.
    refreshing: bool,
    /// More mail arrived while a refresh was queued.
    stale: bool,
}

fn req(r: Request) -> Action {
    Action::Request(r)
}

impl App {
    /// A fresh client for `me`, about to open `mailbox`; returns the
    /// initial requests too.
    pub fn new(me: &str, mailbox: &str) -> (App, Vec<Action>) {
        let app = App {
            me: me.to_string(),
            mailboxes: Vec::new(),
            mb_sel: 0,
            mailbox: mailbox.to_string(),
            query: None,
            uids: Vec::new(),
            items: HashMap::new(),
            requested: HashSet::new(),
            view: Vec::new(),
            list_sel: 0,
            list_offset: 0,
            list_height: 20,
            reader: None,
            pane: Pane::List,
            mode: Mode::Normal,
            status: format!("opening {mailbox}…"),
            quit: false,
            refreshing: false,
            stale: false,
        };
        let acts = vec![
            req(Request::Mailboxes),
            req(Request::Select {
                mailbox: mailbox.to_string(),
                query: None,
            }),
        ];
        (app, acts)
    }

    /// UID of the highlighted list row.
    pub fn selected_uid(&self) -> Option<u32> {
        self.view.get(self.list_sel).map(|&(u, _)| u)
    }

    /// The message an action applies to: the open one in the reader, else
    /// the highlighted row.
    pub(super) fn target(&self) -> Option<u32> {
        match (&self.reader, self.pane) {
            (Some(r), Pane::Reader) => Some(r.uid),
            _ => self.selected_uid(),
        }
    }

    pub(super) fn rebuild_view(&mut self) {
        let keep = self.selected_uid();
        let nodes: Vec<Node> = self
            .items
            .values()
            .map(|i| Node {
                uid: i.row.uid,
                message_id: i.row.message_id.clone(),
                parent_id: i.parent_id.clone(),
            })
            .collect();
        self.view = thread::order(&self.uids, &nodes);
        if let Some(k) = keep {
            if let Some(pos) = self.view.iter().position(|&(u, _)| u == k) {
                self.list_sel = pos;
            }
        }
        self.clamp();
    }

    /// Keeps the selection inside the list and visible (after a resize).
    pub fn clamp_view(&mut self) {
        self.clamp();
    }

    pub(super) fn clamp(&mut self) {
        if self.list_sel >= self.view.len() {
            self.list_sel = self.view.len().saturating_sub(1);
        }
        let h = self.list_height.max(1);
        if self.list_sel < self.list_offset {
            self.list_offset = self.list_sel;
        } else if self.list_sel >= self.list_offset + h {
            self.list_offset = self.list_sel + 1 - h;
        }
        if self.mb_sel >= self.mailboxes.len() {
            self.mb_sel = self.mailboxes.len().saturating_sub(1);
        }
    }

    /// Requests headers for visible (and the next screenful of) rows not
    /// loaded yet — a large mailbox loads only what is looked at.
    pub fn wanted_rows(&mut self) -> Option<Action> {
        let h = self.list_height.max(1);
        let end = (self.list_offset + 2 * h).min(self.view.len());
        let want: Vec<u32> = self.view[self.list_offset.min(end)..end]
            .iter()
            .map(|&(u, _)| u)
            .filter(|u| !self.items.contains_key(u) && !self.requested.contains(u))
            .collect();
        if want.is_empty() {
            return None;
        }
        self.requested.extend(&want);
        Some(req(Request::Rows(want)))
    }

    /// The editor returned `text` for `draft`: show the confirm screen.
    pub fn on_edited(&mut self, draft: &Draft, text: &str) {
        let mut d = draft.from_editor_text(text);
        for path in compose::attach_lines(text) {
            match compose::Attachment::from_path(std::path::Path::new(&path)) {
                Ok(a) => d.attachments.push(a),
                Err(e) => self.status = format!("cannot attach {path}: {e}"),
            }
        }
        if d.to.is_empty() && d.cc.is_empty() && d.bcc.is_empty() {
            self.status = "draft has no recipients; discarded".into();
            self.mode = Mode::Normal;
        } else {
            self.mode = Mode::Confirm(Box::new(d));
        }
    }

    /// Handles one message from the worker or the IDLE watcher.
    pub fn on_event(&mut self, ev: Event) -> Vec<Action> {
        match ev {
            Event::Mailboxes(rows) => {
                let mut acts = Vec::new();
                if self.refreshing {
                    self.refreshing = false;
                    if std::mem::take(&mut self.stale) {
                        acts = self.refresh();
                    }
                }
                let first = self.mailboxes.is_empty();
                self.mailboxes = rows;
                if first {
                    if let Some(i) = self.mailboxes.iter().position(|m| m.name == self.mailbox) {
                        self.mb_sel = i;
                    }
                }
                self.clamp();
                return acts;
            }
            Event::Uids {
                mailbox,
                uids,
                query,
            } => {
                if mailbox != self.mailbox {
                    self.items.clear();
                    self.requested.clear();
                    self.list_sel = 0;
                    self.list_offset = 0;
                    self.reader = None;
                }
                self.mailbox = mailbox;
                self.query = query;
                let summary = match &self.query {
                    Some(q) => format!("{} matches for {q}", uids.len()),
                    None => format!("{}: {} messages", self.mailbox, uids.len()),
                };
                // Keep a new-mail notice visible after the refresh it caused.
                self.status = if self.status.starts_with("New mail") {
                    format!("{} — {summary}", self.status)
                } else {
                    summary
                };
                self.uids = uids;
                self.rebuild_view();
            }
            Event::Rows(items) => {
                for i in items {
                    self.requested.remove(&i.row.uid);
                    self.items.insert(i.row.uid, i);
                }
                self.rebuild_view();
            }
            Event::Message {
                uid,
                bytes,
                purpose,
            } => return self.on_message(uid, &bytes, purpose),
            Event::Info(s) => self.status = s,
            Event::Error(s) => {
                self.status = format!("error: {s}");
                // Whatever was asked may not come: allow asking again.
                self.requested.clear();
            }
            Event::NewMail(mb) => {
                self.status = format!("New mail in {mb}");
                if self.refreshing {
                    // Coalesce a burst of arrivals into one more refresh.
                    self.stale = true;
                    return Vec::new();
                }
                return self.refresh();
            }
            Event::Removed(uid) => {
                self.uids.retain(|&u| u != uid);
                self.items.remove(&uid);
                if self.reader.as_ref().is_some_and(|r| r.uid == uid) {
                    self.reader = None;
                    self.pane = Pane::List;
                }
                self.rebuild_view();
                return vec![req(Request::Mailboxes)];
            }
        }
        Vec::new()
    }

    /// Re-reads mailbox counts and the open mailbox's UIDs.
    fn refresh(&mut self) -> Vec<Action> {
        self.refreshing = true;
        vec![
            req(Request::Mailboxes),
            req(Request::Select {
                mailbox: self.mailbox.clone(),
                query: self.query.clone(),
            }),
        ]
    }

    fn on_message(&mut self, uid: u32, bytes: &[u8], purpose: Purpose) -> Vec<Action> {
        let draft = match purpose {
            Purpose::Read => {
                match Message::parse(bytes) {
                    Ok(m) => {
                        let atts = m.attachments();
                        self.reader = Some(Reader {
                            uid,
                            lines: m.render().lines().map(str::to_string).collect(),
                            attachments: atts
                                .iter()
                                .map(|a| (a.index, a.filename.clone()))
                                .collect(),
                            scroll: 0,
                        });
                        self.pane = Pane::Reader;
                        if let Some(i) = self.items.get_mut(&uid) {
                            if !i.row.flags.iter().any(|f| f == "\\Seen") {
                                i.row.flags.push("\\Seen".into());
                                self.adjust_unseen(-1);
                            }
                        }
                        self.status = match atts.len() {
                            0 => format!("message {uid}"),
                            n => format!(
                                "message {uid}, {n} attachment(s), {}",
                                human_size(atts.iter().map(|a| a.data.len() as u64).sum())
                            ),
                        };
                    }
                    Err(e) => self.status = format!("error: {e}"),
                }
                return Vec::new();
            }
            Purpose::Reply => compose::reply(bytes, &self.me, false),
            Purpose::ReplyAll => compose::reply(bytes, &self.me, true),
            Purpose::Forward => compose::forward(bytes, &self.me),
        };
        match draft {
            Ok(d) => vec![Action::Edit(Box::new(d))],
            Err(e) => {
                self.status = format!("error: {e}");
                Vec::new()
            }
        }
    }
}
