//! Drawing: [`draw`] turns a [`State`] and an [`App`] into one frame.
//!
//! Owns: layout (and how it degrades: bars become numbers, low-priority columns go,
//! the detail pane replaces the table on small screens), formatting of numbers and ages,
//! and the theme and glyphs. Every colour has a text twin (`?` for stale, `≠` for drift and skew,
//! `NO QUORUM`, `STALE`), so the screen reads the same under NO_COLOR, where only bold,
//! dim and reverse video are used. A stale value is drawn dim, never green.
//!
//! Every character the view draws itself comes from a [`Glyphs`](theme::Glyphs) table, Unicode or
//! ASCII (`App::charset`, decided by `term::charset`); text from the cluster is printed as
//! it is.
//!
//! The parts (tokio-console's `src/view/` is split the same way): [`header`],
//! [`table`], [`detail`], [`events`], [`status`] line, [`help`] and confirmation
//! overlays, over [`theme`] (glyphs and styles) and [`text`] (cutting and formats).
//! This module owns [`draw`] and the layout between them.
//!
//! Must never: do IO, read a clock (ages come from `State::now`), change the state, or
//! panic on any terminal size or any data. The only thing it writes back is how far the
//! detail pane and the event log can scroll (`App::detail_max`, `App::events_max`),
//! through `Cell`s, since only a draw knows what fits.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};

use self::theme::{Theme, glyphs};
use super::app::{App, Mode};
use super::state::State;

mod detail;
mod events;
mod header;
mod help;
mod status;
mod table;
mod text;
mod theme;

#[cfg(test)]
mod tests;

/// Below this the screen only says that it is too small.
const MIN_WIDTH: u16 = 30;
const MIN_HEIGHT: u16 = 8;

/// Draws the whole screen.
pub fn draw(frame: &mut Frame<'_>, state: &State, app: &App) {
    let th = Theme {
        color: app.colors,
        g: glyphs(app.charset),
    };
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        draw_too_small(frame, area, app, th);
        return;
    }

    let header_text = header::pack(header::header_parts(state, th), usize::from(area.width), th);
    let header_h = u16::try_from(header_text.lines.len()).unwrap_or(1);
    let [header, body, status] = Layout::vertical([
        Constraint::Length(header_h),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(header_text), header);

    let (rows, _) = app.rows(state);
    let table_needed = u16::try_from(rows.len().max(1))
        .unwrap_or(u16::MAX)
        .saturating_add(3);
    let panes = split_body(
        body,
        table_needed,
        app.detail_open && state.status().is_some(),
    );
    if let Some(r) = panes.table {
        table::draw_table(frame, r, state, app, th);
    }
    if let Some(r) = panes.detail {
        detail::draw_detail(frame, r, state, app, th);
    }
    if let Some(r) = panes.events {
        events::draw_events(frame, r, state, app, th);
    }
    status::draw_status_line(frame, status, state, app, th);

    match app.mode() {
        Mode::Help => help::draw_help(frame, area, th),
        Mode::Confirm(c) => help::draw_confirm(frame, area, &c.question, &c.effect, th),
        Mode::Normal | Mode::Filter { .. } => {}
    }
}

fn draw_too_small(frame: &mut Frame<'_>, area: Rect, app: &App, th: Theme) {
    let mut lines = vec![Line::styled("quorate", th.strong())];
    if let Mode::Confirm(c) = app.mode() {
        lines.push(Line::raw(format!("{} [y/n]", c.question)));
    }
    lines.push(Line::raw(format!(
        "terminal {}{x}{} is too small; needs {MIN_WIDTH}{x}{MIN_HEIGHT} (q quits)",
        area.width,
        area.height,
        x = th.g.times
    )));
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), area);
}

struct Panes {
    table: Option<Rect>,
    detail: Option<Rect>,
    events: Option<Rect>,
}

/// Splits the body between the node table, the detail pane and the event log. The
/// event log keeps at least three lines while there is room; on a small screen an open
/// detail pane takes the table's place.
fn split_body(body: Rect, table_needed: u16, detail_open: bool) -> Panes {
    let h = body.height;
    let split = |heights: &[u16]| -> Vec<Rect> {
        Layout::vertical(heights.iter().map(|h| Constraint::Length(*h)))
            .split(body)
            .to_vec()
    };
    if !detail_open {
        if h < 9 {
            return Panes {
                table: Some(body),
                detail: None,
                events: None,
            };
        }
        let table = table_needed.min(h - 5);
        let r = split(&[table, h - table]);
        return Panes {
            table: Some(r[0]),
            detail: None,
            events: Some(r[1]),
        };
    }
    if body.width >= 120 && h >= 30 {
        let table = table_needed.min(h / 3);
        let events = (h / 5).max(5);
        let r = split(&[table, h - table - events, events]);
        return Panes {
            table: Some(r[0]),
            detail: Some(r[1]),
            events: Some(r[2]),
        };
    }
    if h < 12 {
        return Panes {
            table: None,
            detail: Some(body),
            events: None,
        };
    }
    let events = (h / 5).max(4);
    let r = split(&[h - events, events]);
    Panes {
        table: None,
        detail: Some(r[0]),
        events: Some(r[1]),
    }
}
