//! Drawing the TUI from `App` state with ratatui: mailbox pane, message
//! list, reader, status line, help bar and the compose confirm screen.
//! Drawing only reads state, except recording how many list rows fit.

use super::app::{App, Mode, Pane, PromptKind};
use crate::model::fit;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

fn block(title: String, focused: bool) -> Block<'static> {
    let b = Block::default().borders(Borders::ALL).title(title);
    if focused {
        b.border_style(Style::default().add_modifier(Modifier::BOLD))
    } else {
        b
    }
}

fn selected(line: String, on: bool, focused: bool) -> Line<'static> {
    if on {
        let style = if focused {
            Style::default().add_modifier(Modifier::REVERSED)
        } else {
            Style::default().add_modifier(Modifier::UNDERLINED)
        };
        Line::from(Span::styled(line, style))
    } else {
        Line::from(line)
    }
}

/// The help bar text for the current pane and mode.
pub fn help_text(app: &App) -> &'static str {
    match (&app.mode, app.pane) {
        (Mode::Prompt { .. }, _) => "Enter confirm  Esc cancel",
        (Mode::Confirm(_), _) => "y send  e edit again  n discard",
        (_, Pane::Mailboxes) => "j/k move  Enter open  Tab next pane  c compose  q quit",
        (_, Pane::List) => {
            "j/k move  Enter read  r reply  a all  f fwd  c compose  d del  m move  u unread  / search  Tab  q quit"
        }
        (_, Pane::Reader) => {
            "j/k scroll  r reply  a all  f fwd  d del  m move  s save  u unread  Tab  q back"
        }
    }
}

fn draw_mailboxes(f: &mut Frame, app: &App, area: Rect) {
    let focused = app.pane == Pane::Mailboxes;
    let w = area.width.saturating_sub(2) as usize;
    let lines: Vec<Line> = app
        .mailboxes
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let count = if m.unseen > 0 {
                format!(" {}", m.unseen)
            } else {
                String::new()
            };
            let mark = if m.name == app.mailbox { "*" } else { " " };
            let name_w = w.saturating_sub(count.len() + 1);
            selected(
                format!("{mark}{}{count}", fit(&m.name, name_w)),
                i == app.mb_sel,
                focused,
            )
        })
        .collect();
    f.render_widget(
        Paragraph::new(lines).block(block("Mailboxes".into(), focused)),
        area,
    );
}

fn draw_list(f: &mut Frame, app: &mut App, area: Rect) {
    let focused = app.pane == Pane::List;
    app.list_height = area.height.saturating_sub(2).max(1) as usize;
    app.clamp_view();
    let w = area.width.saturating_sub(2) as usize;
    let from_w = 20.min(w / 4);
    let end = (app.list_offset + app.list_height).min(app.view.len());
    let lines: Vec<Line> = app.view[app.list_offset.min(end)..end]
        .iter()
        .enumerate()
        .map(|(i, &(uid, depth))| {
            let text = match app.items.get(&uid) {
                Some(item) => {
                    let r = &item.row;
                    let indent = "  ".repeat(depth.min(8));
                    let arrow = if depth > 0 { "↳ " } else { "" };
                    format!(
                        "{uid:>6} {} {} {} {indent}{arrow}{}",
                        r.flag_letters(),
                        fit(&r.date, 16),
                        fit(&r.from, from_w),
                        r.subject
                    )
                }
                None => format!("{uid:>6}      …"),
            };
            selected(fit(&text, w), app.list_offset + i == app.list_sel, focused)
        })
        .collect();
    let title = match &app.query {
        Some(q) => format!("{} — search: {q} ({})", app.mailbox, app.view.len()),
        None => format!("{} ({})", app.mailbox, app.view.len()),
    };
    f.render_widget(Paragraph::new(lines).block(block(title, focused)), area);
}

fn draw_reader(f: &mut Frame, app: &App, area: Rect) {
    let Some(r) = &app.reader else { return };
    let focused = app.pane == Pane::Reader;
    let lines: Vec<Line> = r.lines.iter().map(|l| Line::from(l.clone())).collect();
    f.render_widget(
        Paragraph::new(lines)
            .block(block(format!("Message {}", r.uid), focused))
            .wrap(Wrap { trim: false })
            .scroll((r.scroll.min(u16::MAX as usize) as u16, 0)),
        area,
    );
}

fn draw_confirm(f: &mut Frame, app: &App, area: Rect) {
    let Mode::Confirm(d) = &app.mode else { return };
    let popup = Rect {
        x: area.x + area.width / 10,
        y: area.y + area.height / 10,
        width: area.width - area.width / 5,
        height: area.height - area.height / 5,
    };
    let mut lines = vec![
        Line::from(format!("From:    {}", d.from)),
        Line::from(format!("To:      {}", d.to.join(", "))),
    ];
    if !d.cc.is_empty() {
        lines.push(Line::from(format!("Cc:      {}", d.cc.join(", "))));
    }
    if !d.bcc.is_empty() {
        lines.push(Line::from(format!("Bcc:     {}", d.bcc.join(", "))));
    }
    lines.push(Line::from(format!("Subject: {}", d.subject)));
    for a in &d.attachments {
        lines.push(Line::from(format!(
            "Attach:  {} ({} bytes)",
            a.filename,
            a.data.len()
        )));
    }
    lines.push(Line::from(""));
    lines.extend(d.body.lines().map(|l| Line::from(l.to_string())));
    f.render_widget(Clear, popup);
    f.render_widget(
        Paragraph::new(lines)
            .block(block(
                "Send this message? (y send / e edit / n discard)".into(),
                true,
            ))
            .wrap(Wrap { trim: false }),
        popup,
    );
}

/// Draws the whole screen.
pub fn draw(f: &mut Frame, app: &mut App) {
    let [main, status, help] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(f.area());
    let [left, right] =
        Layout::horizontal([Constraint::Length(24), Constraint::Min(20)]).areas(main);
    draw_mailboxes(f, app, left);
    if app.reader.is_some() {
        let [list, reader] =
            Layout::vertical([Constraint::Percentage(35), Constraint::Min(5)]).areas(right);
        draw_list(f, app, list);
        draw_reader(f, app, reader);
    } else {
        draw_list(f, app, right);
    }
    let status_line = match &app.mode {
        Mode::Prompt { kind, input } => {
            let label = match kind {
                PromptKind::Search => "Search",
                PromptKind::Move => "Move to mailbox",
                PromptKind::Save => "Save attachment (NUMBER PATH)",
            };
            format!("{label}: {input}_")
        }
        _ => app.status.clone(),
    };
    f.render_widget(Paragraph::new(status_line), status);
    f.render_widget(
        Paragraph::new(help_text(app)).style(Style::default().add_modifier(Modifier::REVERSED)),
        help,
    );
    draw_confirm(f, app, f.area());
}
