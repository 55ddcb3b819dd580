//! The node table on the screen: which of [`COLUMNS`] fit (dropped by rank on narrow
//! screens, bars only when everything fits with them), and each cell's value printed in
//! its few cells, cut, marked stale and styled. What a cell says is the column's.
//!
//! Must never: draw a stale value in a healthy colour (it gets `?` and the dim style), or
//! lose the node column, however narrow the screen.

use proto::status::NodeStatus;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, HighlightSpacing, Paragraph, Row, Table, TableState};

use super::text::{age, millis, num, pct, width};
use super::theme::{Level, Theme};
use crate::columns::{Align, BAR, COLUMNS, Column, Ctx, Datum, Room, Stale};
use crate::ui::app::{App, Focus};
use crate::ui::state::{ConnStatus, STALE_AFTER, State};

/// The columns the screen shows, in display order.
fn on_screen() -> impl Iterator<Item = &'static Column> {
    COLUMNS.iter().filter(|c| c.screen.is_some())
}

/// The column's width in `room` (0 for a column not on the screen).
fn col_width(c: &Column, room: &Room<'_>) -> usize {
    c.screen.map_or(0, |s| (s.width)(room))
}

/// The columns that fit in `width`, with bars only if every column fits with them;
/// columns go by rank (the highest first), never the node's.
pub(super) fn fit_columns(width: usize, room: &Room<'_>) -> (Vec<&'static Column>, bool) {
    // One column for the selection mark, one space between columns.
    let total = |cols: &[&Column], bars: bool| -> usize {
        let room = Room { bars, ..*room };
        1 + cols.iter().map(|c| col_width(c, &room) + 1).sum::<usize>()
    };
    let all: Vec<&Column> = on_screen().collect();
    if total(&all, true) <= width + 1 {
        return (all, true);
    }
    let mut by_rank = all.clone();
    by_rank.sort_by_key(|c| c.screen.map_or(u8::MAX, |s| s.rank));
    while by_rank.len() > 1 && total(&by_rank, false) > width + 1 {
        by_rank.pop();
    }
    let cols = all
        .into_iter()
        .filter(|c| by_rank.iter().any(|k| k.title == c.title))
        .collect();
    (cols, false)
}

pub(super) fn draw_table(frame: &mut Frame<'_>, area: Rect, state: &State, app: &App, th: Theme) {
    let focused = app.focus() == Focus::Nodes;
    let (rows, selected) = app.rows(state);
    let total = state.status().map_or(0, |s| s.nodes.len());
    let mut title = vec![Span::styled(
        format!(" nodes {}/{total} ", rows.len()),
        th.title(focused),
    )];
    title.push(Span::raw(format!(" sort {} ", app.sort().label())));
    if !app.filter().is_empty() {
        title.push(Span::styled(
            format!(
                " filter {}{}{} ",
                th.g.quotes.0,
                app.filter(),
                th.g.quotes.1
            ),
            th.warn(),
        ));
    }
    let mut block = th
        .block()
        .border_style(th.border(focused))
        .title(Line::from(title));
    if let Some(s) = state.status().filter(|s| !s.unreachable_peers.is_empty()) {
        block = block.title_bottom(Line::styled(
            format!(" unreachable: {} ", s.unreachable_peers.join(", ")),
            th.bad(),
        ));
    }
    // A non-voter watches the voters only: the other non-voters are the voters' to
    // show, not missing.
    if let Some(s) = state.status().filter(|s| !s.members.unwatched.is_empty()) {
        block = block.title_bottom(Line::styled(
            format!(
                " not watched here (ask a voter): {} ",
                s.members.unwatched.join(", ")
            ),
            th.stale(),
        ));
    }
    let inner = block.inner(area);
    frame.render_widget(block, area);

    if state.status().is_none() {
        let text = match state.conn() {
            ConnStatus::Connecting { to } => {
                format!("waiting for the first snapshot from {to}{}", th.g.more)
            }
            _ => "no cluster view yet".to_string(),
        };
        frame.render_widget(Paragraph::new(Line::styled(text, th.stale())), inner);
        return;
    }
    if rows.is_empty() {
        let text = if total == 0 {
            "the agent knows no nodes".to_string()
        } else {
            format!(
                "no node matches {}{}{} (esc clears the filter)",
                th.g.quotes.0,
                app.filter(),
                th.g.quotes.1
            )
        };
        frame.render_widget(Paragraph::new(Line::styled(text, th.warn())), inner);
        return;
    }

    let room = Room {
        bars: false,
        differs: width(th.g.differs),
        rows: &rows,
        measure: width,
    };
    let (cols, bars) = fit_columns(usize::from(inner.width), &room);
    let room = Room { bars, ..room };
    // Room left over goes to the columns that grow, in display order.
    let mut spare = usize::from(inner.width)
        .saturating_sub(1 + cols.iter().map(|c| col_width(c, &room) + 1).sum::<usize>());
    let widths: Vec<usize> = cols
        .iter()
        .map(|c| {
            let grow = c.screen.map_or(0, |s| s.grow).min(spare);
            spare -= grow;
            col_width(c, &room) + grow
        })
        .collect();
    let aligned = |c: &Column, line: Line<'static>| {
        Cell::from(match c.align {
            Align::Right => line.right_aligned(),
            Align::Left => line,
        })
    };

    let header = Row::new(cols.iter().map(|c| {
        let mut t = c.title.to_string();
        if app.sort().column().title == c.title {
            t.push_str(th.g.sorted);
        }
        aligned(c, Line::styled(t, th.strong()))
    }));
    let body = rows.iter().map(|n| {
        Row::new(
            cols.iter()
                .zip(&widths)
                .map(|(c, w)| aligned(c, cell(state, n, c, bars, *w, th))),
        )
    });
    let widths: Vec<Constraint> = widths
        .iter()
        .map(|w| Constraint::Length(u16::try_from(*w).unwrap_or(u16::MAX)))
        .collect();
    let highlight = if focused {
        Style::new().add_modifier(Modifier::REVERSED)
    } else {
        Style::new().add_modifier(Modifier::BOLD)
    };
    let table = Table::new(body, widths)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(highlight)
        .highlight_symbol(">")
        .highlight_spacing(HighlightSpacing::Always);
    let mut ts = TableState::new().with_selected(selected);
    frame.render_stateful_widget(table, inner, &mut ts);
}

/// One cell of the node table, `w` cells wide. Values that came from a node whose
/// values are stale get a `?` and the dim style, whatever they say (as the column's
/// [`Stale`] rule has it).
pub(super) fn cell(
    state: &State,
    n: &NodeStatus,
    col: &Column,
    bars: bool,
    w: usize,
    th: Theme,
) -> Line<'static> {
    let seen = state.node_age(n);
    let ctx = Ctx {
        age: Some(seen),
        late: seen > STALE_AFTER,
        skewed: state.version_skewed(n),
        differs: th.g.differs,
    };
    let v = (col.cell)(n, &ctx);
    let rule = col.screen.map_or(Stale::Marked, |s| s.stale);
    let stale = match rule {
        Stale::Marked | Stale::Dimmed => state.node_stale(n),
        Stale::Snapshot => state.snapshot_stale(),
        Stale::Never => false,
    };
    if let Datum::Share(f) = v.datum
        && bars
        && !stale
    {
        let bar_level = if v.level == Level::Plain {
            Level::Ok
        } else {
            v.level
        };
        return Line::from(vec![
            Span::styled(th.bar(f, BAR), th.level(bar_level)),
            Span::raw(format!("{:>5}", pct(f))),
        ]);
    }
    let text = match v.datum {
        Datum::Text(t) => t,
        Datum::Share(f) => pct(f),
        Datum::Number(x) => num(x),
        Datum::Millis { ms, signed } => millis(ms, signed),
        Datum::Age(a) => a.map_or_else(|| "-".to_string(), age),
    };
    // Room for the stale mark where the column may get one.
    let mark = match rule {
        Stale::Marked => true,
        Stale::Snapshot => stale,
        Stale::Dimmed | Stale::Never => false,
    };
    let room = w.saturating_sub(usize::from(mark));
    let text = if v.suffix.is_empty() {
        th.fit(&text, room)
    } else {
        let cut = room.saturating_sub(width(v.suffix));
        format!("{}{}", th.fit(&text, cut), v.suffix)
    };
    if stale {
        let text = if mark { format!("{text}?") } else { text };
        Line::styled(text, th.stale())
    } else {
        Line::styled(text, th.level(v.level))
    }
}
