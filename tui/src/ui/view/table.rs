//! The node table: which columns fit (dropped by priority on narrow screens, bars only
//! when everything fits with them) and what each cell says.
//!
//! Must never: draw a stale value in a healthy colour (it gets `?` and the dim style), or
//! lose the node column, however narrow the screen.

use proto::status::NodeStatus;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, HighlightSpacing, Paragraph, Row, Table, TableState};

use super::text::{age, bar, millis, num, pct, width};
use super::theme::{Level, Theme};
use crate::ui::app::{App, Focus};
use crate::ui::state::{
    ConfigSummary, ConnStatus, HealthKind, MountSummary, SortKey, State, config_summary, health,
    mount_summary,
};

/// Table columns, in display order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Col {
    Node,
    State,
    Role,
    Health,
    Cpu,
    Mem,
    Load,
    Rtt,
    Offset,
    Config,
    Mounts,
    Version,
    Seen,
}

/// Most important first: on a narrow screen columns go from the end of this list.
pub(super) const PRIORITY: [Col; 13] = [
    Col::Node,
    Col::State,
    Col::Role,
    Col::Health,
    Col::Seen,
    Col::Cpu,
    Col::Mem,
    Col::Load,
    Col::Config,
    Col::Mounts,
    Col::Rtt,
    Col::Version,
    Col::Offset,
];

/// Width of the bar in a CPU or memory cell, when there is room for bars.
pub(super) const BAR: usize = 5;

impl Col {
    fn title(self) -> &'static str {
        match self {
            Self::Node => "NODE",
            Self::State => "STATE",
            Self::Role => "ROLE",
            Self::Health => "HEALTH",
            Self::Cpu => "CPU",
            Self::Mem => "MEM",
            Self::Load => "LOAD",
            Self::Rtt => "RTT",
            Self::Offset => "OFFSET",
            Self::Config => "CONFIG",
            Self::Mounts => "MOUNT",
            Self::Version => "VERSION",
            Self::Seen => "SEEN",
        }
    }

    fn sort_key(self) -> Option<SortKey> {
        Some(match self {
            Self::Node => SortKey::Node,
            Self::State => SortKey::State,
            Self::Role => SortKey::Role,
            Self::Health => SortKey::Health,
            Self::Cpu => SortKey::Cpu,
            Self::Mem => SortKey::Mem,
            Self::Load => SortKey::Load,
            Self::Rtt => SortKey::Rtt,
            Self::Offset => SortKey::Offset,
            Self::Seen => SortKey::Seen,
            Self::Config | Self::Mounts | Self::Version => return None,
        })
    }

    fn right_aligned(self) -> bool {
        matches!(
            self,
            Self::Cpu | Self::Mem | Self::Load | Self::Rtt | Self::Offset | Self::Seen
        )
    }

    /// Room for the value, its stale mark and the sort mark in the title; `differs` is
    /// the width of the "differs" mark (`drift≠2`).
    fn width(self, bars: bool, node: usize, version: usize, differs: usize) -> usize {
        match self {
            Self::Node => node.clamp(5, 16),
            Self::State => 7,
            Self::Role => 10,
            Self::Health => 12,
            Self::Cpu | Self::Mem if bars => BAR + 5,
            Self::Cpu | Self::Mem => 5,
            Self::Load => 5,
            Self::Rtt => 6,
            Self::Offset => 7,
            Self::Config => 7 + differs,
            Self::Mounts => 5,
            Self::Version => version.clamp(7, 12),
            Self::Seen => 5,
        }
    }
}

/// The columns that fit in `width`, with bars only if every column fits with them.
pub(super) fn fit_columns(
    width: usize,
    node: usize,
    version: usize,
    differs: usize,
) -> (Vec<Col>, bool) {
    // One column for the selection mark, one space between columns.
    let total = |cols: &[Col], bars: bool| -> usize {
        1 + cols
            .iter()
            .map(|c| c.width(bars, node, version, differs) + 1)
            .sum::<usize>()
    };
    if total(&PRIORITY, true) <= width + 1 {
        let mut cols = PRIORITY.to_vec();
        cols.sort();
        return (cols, true);
    }
    let mut cols = PRIORITY.to_vec();
    while cols.len() > 1 && total(&cols, false) > width + 1 {
        cols.pop();
    }
    cols.sort();
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

    let differs_w = width(th.g.differs);
    let node_w = rows.iter().map(|n| width(&n.node) + 1).max().unwrap_or(4);
    let version_w = rows
        .iter()
        .map(|n| width(n.version.app.as_deref().unwrap_or("-")) + 1 + width(th.g.differs))
        .max()
        .unwrap_or(7);
    let (cols, bars) = fit_columns(usize::from(inner.width), node_w, version_w, differs_w);
    // Room left over goes to the health column, for more of the failing checks' names.
    let used: usize = 1 + cols
        .iter()
        .map(|c| c.width(bars, node_w, version_w, differs_w) + 1)
        .sum::<usize>();
    let health_w = Col::Health.width(bars, node_w, version_w, differs_w)
        + usize::from(inner.width).saturating_sub(used).min(12);
    let col_w = |c: Col| {
        if c == Col::Health {
            health_w
        } else {
            c.width(bars, node_w, version_w, differs_w)
        }
    };

    let header = Row::new(cols.iter().map(|c| {
        let mut t = c.title().to_string();
        if c.sort_key() == Some(app.sort()) {
            t.push_str(th.g.sorted);
        }
        let line = Line::styled(t, th.strong());
        Cell::from(if c.right_aligned() {
            line.right_aligned()
        } else {
            line
        })
    }));
    let body = rows.iter().map(|n| {
        Row::new(cols.iter().map(|c| {
            let line = cell(state, n, *c, bars, col_w(*c), th);
            Cell::from(if c.right_aligned() {
                line.right_aligned()
            } else {
                line
            })
        }))
    });
    let widths: Vec<Constraint> = cols
        .iter()
        .map(|c| Constraint::Length(u16::try_from(col_w(*c)).unwrap_or(u16::MAX)))
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

/// One cell of the node table. Values that came from a node whose values are stale get
/// a `?` and the dim style, whatever they say.
pub(super) fn cell(
    state: &State,
    n: &NodeStatus,
    col: Col,
    bars: bool,
    w: usize,
    th: Theme,
) -> Line<'static> {
    let stale = state.node_stale(n);
    let value = |text: String, level: Level| -> Line<'static> {
        if stale {
            Line::styled(format!("{text}?"), th.stale())
        } else {
            Line::styled(text, th.level(level))
        }
    };
    match col {
        Col::Node => {
            let name = if n.local {
                format!("{}*", n.node)
            } else {
                n.node.clone()
            };
            let style = if stale { th.stale() } else { th.strong() };
            Line::styled(th.fit(&name, w), style)
        }
        Col::State => {
            let level = match n.state.as_str() {
                "alive" => Level::Ok,
                "suspect" => Level::Warn,
                "dead" => Level::Bad,
                _ => Level::Dim,
            };
            // The state is the attached agent's own judgement: only an old snapshot
            // makes it stale.
            if state.snapshot_stale() {
                Line::styled(format!("{}?", th.fit(n.state.as_str(), w - 1)), th.stale())
            } else {
                Line::styled(th.fit(n.state.as_str(), w), th.level(level))
            }
        }
        Col::Role => {
            let level = if n.role == "primary" {
                Level::Accent
            } else {
                Level::Plain
            };
            value(th.fit(n.role.as_str(), w - 1), level)
        }
        Col::Health => {
            let h = health(n);
            let level = match h.kind {
                HealthKind::Ok => Level::Ok,
                HealthKind::Draining | HealthKind::Unready => Level::Warn,
                HealthKind::Fail => Level::Bad,
            };
            value(th.fit(&h.text, w - 1), level)
        }
        Col::Cpu | Col::Mem => {
            let f = if col == Col::Cpu {
                n.load.cpu
            } else {
                n.load.mem
            };
            let level = if f >= 0.9 {
                Level::Bad
            } else if f >= 0.7 {
                Level::Warn
            } else {
                Level::Plain
            };
            if bars && !stale {
                let bar_level = if level == Level::Plain {
                    Level::Ok
                } else {
                    level
                };
                Line::from(vec![
                    Span::styled(bar(f, BAR, th.g), th.level(bar_level)),
                    Span::raw(format!("{:>5}", pct(f))),
                ])
            } else {
                value(pct(f), level)
            }
        }
        Col::Load => value(num(n.load.load1), Level::Plain),
        Col::Rtt => {
            let level = if n.rtt_ms.is_some_and(|r| r > 100.0) {
                Level::Warn
            } else {
                Level::Plain
            };
            value(millis(n.rtt_ms, false), level)
        }
        Col::Offset => {
            let off = n.clock_offset_ms.map(f64::abs);
            let level = if off.is_some_and(|o| o > 500.0) {
                Level::Bad
            } else if off.is_some_and(|o| o > 100.0) {
                Level::Warn
            } else {
                Level::Plain
            };
            value(millis(n.clock_offset_ms, true), level)
        }
        Col::Config => {
            let (text, level) = match config_summary(n) {
                ConfigSummary::None => ("-".to_string(), Level::Plain),
                ConfigSummary::Ok => ("ok".to_string(), Level::Ok),
                ConfigSummary::Drift {
                    nodes,
                    acked: false,
                    ..
                } => (format!("drift{}{nodes}", th.g.differs), Level::Warn),
                ConfigSummary::Drift {
                    nodes, acked: true, ..
                } => (format!("ack{}{nodes}", th.g.differs), Level::Plain),
                ConfigSummary::Fail => ("fail".to_string(), Level::Bad),
            };
            value(th.fit(&text, w - 1), level)
        }
        Col::Mounts => {
            let (text, level) = match mount_summary(n) {
                MountSummary::None => ("-", Level::Plain),
                MountSummary::Ok => ("ok", Level::Ok),
                MountSummary::Fail => ("fail", Level::Bad),
                MountSummary::Hung => ("hung", Level::Bad),
            };
            value(text.to_string(), level)
        }
        Col::Version => {
            let app = n.version.app.as_deref().unwrap_or("-");
            if state.version_skewed(n) {
                let cut = w.saturating_sub(1 + width(th.g.differs));
                value(format!("{}{}", th.fit(app, cut), th.g.differs), Level::Warn)
            } else {
                value(th.fit(app, w - 1), Level::Plain)
            }
        }
        Col::Seen => {
            let a = state.node_age(n);
            let level = if a > crate::ui::state::STALE_AFTER {
                Level::Warn
            } else {
                Level::Plain
            };
            Line::styled(age(a), th.level(level))
        }
    }
}
