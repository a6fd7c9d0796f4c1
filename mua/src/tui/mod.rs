//! `mua tui`: the interactive client (ratatui + crossterm).
//!
//! Three pieces: `app` (state machine: keys and events in, actions out),
//! `draw` (screen from state) and `worker` (IMAP/SMTP on background
//! threads, IDLE watcher for new mail). This module runs the loop and owns
//! the terminal: raw mode and the alternate screen are always restored —
//! on quit, on error, on panic (hook), on Ctrl-C (a key in raw mode) and on
//! SIGTERM/SIGHUP (a flag the loop checks).

pub mod app;
pub mod draw;
pub mod keys;
pub mod thread;
pub mod worker;

use crate::cli::Ctx;
use crate::compose::Draft;
use crate::net::Options;
use app::{Action, App};
use ratatui::crossterm::event::{self, Event as TermEvent, KeyEventKind};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::prelude::CrosstermBackend;
use ratatui::Terminal;
use std::io::Stdout;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;
pub use worker::{Account, Item};

/// Why a message is being fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Show it in the reader (and mark it \Seen).
    Read,
    /// Start a reply to the sender.
    Reply,
    /// Start a reply to everyone.
    ReplyAll,
    /// Start a forward.
    Forward,
}

/// Work for the worker thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// List mailboxes with counts.
    Mailboxes,
    /// Select a mailbox and list its UIDs (all, or matching a query).
    Select {
        /// Mailbox name.
        mailbox: String,
        /// Search query in mua's language.
        query: Option<String>,
    },
    /// Fetch listing headers for these UIDs.
    Rows(Vec<u32>),
    /// Fetch a whole message.
    Message {
        /// Its UID.
        uid: u32,
        /// What for.
        purpose: Purpose,
    },
    /// Set or clear a flag.
    Flag {
        /// UID.
        uid: u32,
        /// e.g. `\Seen`.
        flag: String,
        /// Set (true) or clear.
        on: bool,
    },
    /// Delete (to Trash when there is one).
    Delete {
        /// UID.
        uid: u32,
    },
    /// Move to another mailbox.
    Move {
        /// UID.
        uid: u32,
        /// Destination.
        dest: String,
    },
    /// Save an attachment to a file.
    Save {
        /// UID.
        uid: u32,
        /// Attachment number.
        index: usize,
        /// Target path.
        path: String,
    },
    /// Send a draft and file it in Sent.
    Send(Box<Draft>),
}

/// What the worker and watcher report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Mailboxes with counts.
    Mailboxes(Vec<crate::model::MailboxRow>),
    /// The UIDs of a selected mailbox (newest first).
    Uids {
        /// Mailbox name.
        mailbox: String,
        /// UIDs, newest first.
        uids: Vec<u32>,
        /// The query that produced them.
        query: Option<String>,
    },
    /// Listing headers.
    Rows(Vec<Item>),
    /// A whole message.
    Message {
        /// UID.
        uid: u32,
        /// Exact bytes.
        bytes: Vec<u8>,
        /// Why it was fetched.
        purpose: Purpose,
    },
    /// A message left the mailbox (deleted or moved).
    Removed(u32),
    /// Status-bar notice.
    Info(String),
    /// Status-bar error.
    Error(String),
    /// The watcher saw new mail in a mailbox.
    NewMail(String),
}

type Term = Terminal<CrosstermBackend<Stdout>>;

fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(std::io::stdout(), LeaveAlternateScreen);
}

/// Restores the terminal when dropped, whatever way the loop ends.
struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        restore();
    }
}

fn setup() -> anyhow::Result<(Term, Guard)> {
    enable_raw_mode()?;
    let guard = Guard;
    execute!(std::io::stdout(), EnterAlternateScreen)?;
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        prev(info);
    }));
    let term = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    Ok((term, guard))
}

/// Leaves the screen, runs the editor on the draft, comes back.
fn edit(term: &mut Term, app: &mut App, draft: &Draft) -> anyhow::Result<()> {
    restore();
    let result = crate::editor::edit(&draft.to_editor_text());
    enable_raw_mode()?;
    execute!(std::io::stdout(), EnterAlternateScreen)?;
    term.clear()?;
    match result {
        Ok(text) => app.on_edited(draft, &text),
        Err(e) => app.status = format!("error: {e}"),
    }
    Ok(())
}

/// SIGTERM/SIGHUP ask the loop to stop (it restores the terminal). The
/// loop may never see the flag: when the terminal goes away (SIGHUP, e.g. a
/// killed tmux), crossterm's `event::poll` spins on the dead tty without
/// returning. So if the loop has not stopped within a second, restore what
/// can be restored and exit from this thread.
fn watch_signals(flag: Arc<AtomicBool>) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                flag.store(true, Ordering::Relaxed);
                std::thread::sleep(Duration::from_secs(1));
                restore();
                std::process::exit(128 + sig);
            }
        })?;
    Ok(())
}

/// Runs the interactive client.
///
/// # Errors
/// Missing settings, or the terminal cannot be set up.
pub fn run(ctx: &mut Ctx, mailbox: &str) -> anyhow::Result<()> {
    let account = Account {
        imap: ctx.imap_addr()?,
        // Reading needs no SMTP server; sending says so if none is set.
        smtp: ctx.smtp_addr().unwrap_or_default(),
        user: ctx.user()?,
        password: ctx.password()?,
        sent: ctx.sent_mailbox(),
        net: Options {
            trace: false,
            ..ctx.net_options()?
        },
        cache_dir: ctx.cache_dir(),
    };
    // Log in before taking over the screen, so a bad account fails with
    // its exit code; the worker then uses this session.
    let client = ctx.imap()?;
    let (req_tx, req_rx) = mpsc::channel();
    let (ev_tx, ev_rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    worker::spawn_worker(account.clone(), client, req_rx, ev_tx.clone());
    worker::spawn_watcher(account, ev_tx, stop.clone());
    let (mut app, initial) = App::new(&ctx.from_header()?, mailbox);
    let signalled = Arc::new(AtomicBool::new(false));
    watch_signals(signalled.clone())?;
    let (mut term, _guard) = setup()?;
    let mut pending: Vec<Action> = initial;
    loop {
        for action in std::mem::take(&mut pending) {
            match action {
                Action::Request(r) => {
                    if req_tx.send(r).is_err() {
                        app.status = "error: worker stopped".into();
                    }
                }
                Action::Edit(d) => edit(&mut term, &mut app, &d)?,
            }
        }
        term.draw(|f| draw::draw(f, &mut app))?;
        if let Some(a) = app.wanted_rows() {
            pending.push(a);
            continue;
        }
        if app.quit || signalled.load(Ordering::Relaxed) {
            break;
        }
        while let Ok(ev) = ev_rx.try_recv() {
            pending.extend(app.on_event(ev));
        }
        if event::poll(Duration::from_millis(100))? {
            if let TermEvent::Key(k) = event::read()? {
                if k.kind == KeyEventKind::Press {
                    pending.extend(app.on_key(k));
                }
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    Ok(())
}

#[cfg(test)]
mod tests;
