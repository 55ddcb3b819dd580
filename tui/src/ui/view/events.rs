//! The event log: the newest events that fit, or older ones when scrolled back.
//!
//! Must never: scroll past the oldest event (it reports how far it can go through
//! `App::events_max`).

use proto::ctl::{EventKind, EventRecord};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::text::clock;
use super::theme::Theme;
use crate::ui::app::{App, Focus};
use crate::ui::state::State;

pub(super) fn draw_events(frame: &mut Frame<'_>, area: Rect, state: &State, app: &App, th: Theme) {
    let focused = app.focus() == Focus::Events;
    let events = state.events();
    let block = th.block().border_style(th.border(focused));
    let inner = block.inner(area);
    let visible = usize::from(inner.height);
    let max_back = events.len().saturating_sub(visible);
    app.events_max.set(max_back);
    let back = app.events_back.min(max_back);
    let mut title = vec![Span::styled(" events (UTC) ", th.title(focused))];
    if back > 0 {
        title.push(Span::raw(format!(
            " {back} newer below {} End follows ",
            th.g.dot
        )));
    }
    frame.render_widget(block.title(Line::from(title)), area);

    if events.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::styled("no events yet", th.stale())),
            inner,
        );
        return;
    }
    let end = events.len() - back;
    let start = end.saturating_sub(visible);
    let with_kind = inner.width >= 50;
    let lines: Vec<Line<'_>> = events
        .range(start..end)
        .map(|e| event_line(e, with_kind, th))
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

pub(super) fn event_line(e: &EventRecord, with_kind: bool, th: Theme) -> Line<'static> {
    let style = match e.kind {
        EventKind::Alarm => th.alarm(),
        EventKind::Election => th.accent(),
        EventKind::Drift | EventKind::Check => th.warn(),
        EventKind::Membership | EventKind::Operator => th.plain(),
    };
    let mut spans = vec![Span::styled(clock(e.at_micros), th.stale()), Span::raw(" ")];
    if with_kind {
        spans.push(Span::styled(format!("{:<10} ", e.kind.as_str()), style));
    }
    let text_style = if e.kind == EventKind::Alarm {
        th.bad()
    } else {
        th.plain()
    };
    spans.push(Span::styled(e.text.clone(), text_style));
    Line::from(spans)
}
