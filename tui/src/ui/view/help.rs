//! The overlays: the help (keys and marks) and the confirmation asked before any command
//! is sent.
//!
//! Must never: send anything or decide what is asked (that is `App`); they only show it.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use super::text::width;
use super::theme::{Glyphs, Theme};

/// The keys, for the help overlay.
pub(super) fn help_keys(g: &Glyphs) -> Vec<(String, String)> {
    let fixed: &[(&str, &str)] = &[
        ("q  Ctrl-C", "quit"),
        ("?", "this help (esc closes)"),
        ("↑ ↓  k j", "select a node, or scroll the focused pane"),
        ("PgUp PgDn", "move by ten"),
        ("Home End  g G", "first / last"),
        ("tab  shift-tab", "focus: nodes → detail → events"),
        ("enter", "open / close the detail pane"),
        ("esc", "close the detail pane, else clear the filter"),
        ("/", "filter: typing filters live, enter keeps, esc clears"),
        ("s  S", "sort by the next / previous column"),
        ("d  u", "drain / undrain the selected node (asks first)"),
        ("t", "transfer the primary role to the selected node (asks)"),
        ("f", "freeze / unfreeze the cluster (asks first)"),
    ];
    // The literals above are written in Unicode; the ASCII table swaps the few glyphs.
    fixed
        .iter()
        .map(|(k, v)| {
            let swap = |s: &str| {
                s.replace('↑', g.up)
                    .replace('↓', g.down)
                    .replace('→', g.arrow)
            };
            (swap(k), swap(v))
        })
        .collect()
}

/// The marks the screen uses, for the help overlay.
pub(super) fn help_marks(g: &Glyphs) -> Vec<(String, String)> {
    vec![
        ("*".into(), "the node you are attached to".into()),
        (
            "?".into(),
            "stale: node not alive, silent over 3 s, or old snapshot".into(),
        ),
        (
            g.differs.into(),
            "differs from other nodes (config, version)".into(),
        ),
        // The matrix has its own mark for "differs" only where the text's mark is wider
        // than a cell.
        if g.differs.chars().eq([g.differs_cell]) {
            (
                format!("= {}", g.missing_cell),
                "same / missing, in the config matrix".into(),
            )
        } else {
            (
                format!("= {} {}", g.differs_cell, g.missing_cell),
                "same / differs / missing, in the config matrix".into(),
            )
        },
        (
            g.at_least.into(),
            "at least: the value was already so when the TUI started".into(),
        ),
    ]
}

pub(super) fn draw_help(frame: &mut Frame<'_>, area: Rect, th: Theme) {
    let (keys, marks) = (help_keys(th.g), help_marks(th.g));
    let key_w = keys
        .iter()
        .chain(&marks)
        .map(|(k, _)| width(k))
        .max()
        .unwrap_or(0)
        + 2;
    let mut lines = vec![Line::styled("KEYS", th.strong())];
    let row = |(k, v): &(String, String)| {
        Line::from(vec![
            Span::styled(format!("{k:<key_w$}"), th.accent()),
            Span::raw(v.clone()),
        ])
    };
    lines.extend(keys.iter().map(row));
    lines.push(Line::raw(""));
    lines.push(Line::styled("MARKS", th.strong()));
    lines.extend(marks.iter().map(row));
    let w = lines.iter().map(Line::width).max().unwrap_or(0) + 4;
    let h = lines.len() + 2;
    let r = centered(area, w, h);
    frame.render_widget(Clear, r);
    let block = th
        .block()
        .border_style(th.border(true))
        .title(Line::styled(" help ", th.title(true)));
    frame.render_widget(
        Paragraph::new(lines).block(block.padding(ratatui::widgets::Padding::horizontal(1))),
        r,
    );
}

pub(super) fn draw_confirm(
    frame: &mut Frame<'_>,
    area: Rect,
    question: &str,
    effect: &str,
    th: Theme,
) {
    let w = 64.min(usize::from(area.width).saturating_sub(4)).max(10);
    let text_w = w.saturating_sub(4);
    let mut lines = vec![
        Line::styled(question.to_string(), th.strong()),
        Line::raw(""),
    ];
    lines.extend(th.wrap(effect, text_w).into_iter().map(Line::raw));
    lines.push(Line::raw(""));
    lines.push(Line::from(vec![
        Span::styled("[y]", th.accent()),
        Span::raw(" yes, send it    "),
        Span::styled("[n]", th.accent()),
        Span::raw(" no"),
    ]));
    let r = centered(area, w, lines.len() + 2);
    frame.render_widget(Clear, r);
    let block = th
        .block()
        .border_style(th.warn())
        .title(Line::styled(" confirm ", th.flag()))
        .padding(ratatui::widgets::Padding::horizontal(1));
    frame.render_widget(Paragraph::new(lines).block(block), r);
}

/// A `w`×`h` rectangle in the middle of `area`, no bigger than it.
pub(super) fn centered(area: Rect, w: usize, h: usize) -> Rect {
    let w = u16::try_from(w).unwrap_or(u16::MAX).min(area.width);
    let h = u16::try_from(h).unwrap_or(u16::MAX).min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}
