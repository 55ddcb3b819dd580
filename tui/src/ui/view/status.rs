//! The status line: the filter being typed, else a notice or the last command's answer
//! on the left and the key hints on the right.
//!
//! Must never: cut a notice or an answer for the hints (the hints give way, whole).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::text::{age, width};
use super::theme::Theme;
use crate::ui::app::{App, Mode};
use crate::ui::state::State;

pub(super) fn draw_status_line(
    frame: &mut Frame<'_>,
    area: Rect,
    state: &State,
    app: &App,
    th: Theme,
) {
    if let Mode::Filter { input } = app.mode() {
        let line = Line::from(vec![
            Span::styled("filter: ", th.strong()),
            Span::raw(input.clone()),
            Span::styled(th.g.cursor, th.accent()),
            Span::styled(format!("  enter keeps {} esc clears", th.g.dot), th.stale()),
        ]);
        frame.render_widget(Paragraph::new(line), area);
        return;
    }
    let hints = match app.mode() {
        Mode::Confirm(_) => "y send · n cancel",
        Mode::Help => "esc closes help",
        _ if app.detail_open() => "? help · q quit · tab focus · enter close · d u t f",
        _ => "? help · q quit · / filter · s sort · enter detail",
    }
    .replace('·', th.g.dot);
    let left = if let Some(text) = app.notice(state) {
        Line::raw(text.to_string())
    } else if let Some(o) = state.outcome() {
        let ago = age(state.now().saturating_duration_since(o.at));
        match &o.result {
            Ok(m) => Line::from(vec![
                Span::styled("done: ", th.ok()),
                Span::raw(format!("{m} ({ago} ago)")),
            ]),
            Err(e) => Line::from(vec![
                Span::styled("refused: ", th.bad()),
                Span::raw(format!("{e} ({ago} ago)")),
            ]),
        }
    } else {
        Line::raw("")
    };
    // A notice or an answer matters more than the hints: they get what it leaves, and
    // are shown only whole.
    let left_w = u16::try_from(left.width()).unwrap_or(u16::MAX);
    let room = area
        .width
        .saturating_sub(if left_w == 0 { 0 } else { left_w + 1 });
    let hints_w = u16::try_from(width(&hints)).unwrap_or(u16::MAX);
    let hints_w = if hints_w <= room || left_w == 0 {
        hints_w.min(area.width)
    } else {
        0
    };
    let [l, _, r] = Layout::horizontal([
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(hints_w),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(left), l);
    frame.render_widget(
        Paragraph::new(Line::styled(hints, th.stale()).right_aligned()),
        r,
    );
}
