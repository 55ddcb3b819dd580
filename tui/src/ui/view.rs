//! Drawing: [`draw`] turns a [`State`] and an [`App`] into one frame.
//!
//! Owns: layout (and how it degrades: bars become numbers, low-priority columns go,
//! the detail pane replaces the table on small screens), formatting of numbers and ages,
//! and the theme. Every colour has a text twin (`?` for stale, `≠` for drift and skew,
//! `NO QUORUM`, `STALE`), so the screen reads the same under NO_COLOR, where only bold,
//! dim and reverse video are used. A stale value is drawn dim, never green.
//!
//! Must never: do IO, read a clock (ages come from `State::now`), change the state, or
//! panic on any terminal size or any data. The only thing it writes back is how far the
//! detail pane and the event log can scroll (`App::detail_max`, `App::events_max`),
//! through `Cell`s, since only a draw knows what fits.

use std::time::Duration;

use proto::ctl::{EventKind, EventRecord};
use proto::status::NodeStatus;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{
    Block, Cell, Clear, HighlightSpacing, Paragraph, Row, Table, TableState, Wrap,
};

use super::app::{App, Focus, Mode};
use super::state::{
    ConfigSummary, ConnStatus, HealthKind, MountSummary, SortKey, State, config_summary, health,
    mount_summary,
};

/// Below this the screen only says that it is too small.
const MIN_WIDTH: u16 = 30;
const MIN_HEIGHT: u16 = 8;

/// Styles, with and without colour.
#[derive(Debug, Clone, Copy)]
struct Theme {
    color: bool,
}

impl Theme {
    fn fg(self, color: Color) -> Style {
        if self.color {
            Style::new().fg(color)
        } else {
            Style::new()
        }
    }
    fn plain(self) -> Style {
        Style::new()
    }
    fn ok(self) -> Style {
        self.fg(Color::Green)
    }
    fn warn(self) -> Style {
        self.fg(Color::Yellow)
    }
    fn bad(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }
    fn stale(self) -> Style {
        Style::new().add_modifier(Modifier::DIM)
    }
    fn strong(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }
    fn accent(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }
    fn flag(self) -> Style {
        self.warn()
            .add_modifier(Modifier::BOLD | Modifier::REVERSED)
    }
    fn alarm(self) -> Style {
        self.bad().add_modifier(Modifier::REVERSED)
    }
    fn border(self, focused: bool) -> Style {
        if focused {
            self.fg(Color::Cyan)
        } else {
            self.plain()
        }
    }
    fn title(self, focused: bool) -> Style {
        if focused {
            self.accent().add_modifier(Modifier::REVERSED)
        } else {
            self.strong()
        }
    }
    fn level(self, level: Level) -> Style {
        match level {
            Level::Plain => self.plain(),
            Level::Ok => self.ok(),
            Level::Warn => self.warn(),
            Level::Bad => self.bad(),
            Level::Dim => self.stale(),
            Level::Accent => self.accent(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Plain,
    Ok,
    Warn,
    Bad,
    Dim,
    Accent,
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame<'_>, state: &State, app: &App) {
    let th = Theme { color: app.colors };
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        draw_too_small(frame, area, app, th);
        return;
    }

    let header_text = pack(header_parts(state, th), usize::from(area.width));
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
        draw_table(frame, r, state, app, th);
    }
    if let Some(r) = panes.detail {
        draw_detail(frame, r, state, app, th);
    }
    if let Some(r) = panes.events {
        draw_events(frame, r, state, app, th);
    }
    draw_status_line(frame, status, state, app, th);

    match app.mode() {
        Mode::Help => draw_help(frame, area, th),
        Mode::Confirm(c) => draw_confirm(frame, area, &c.question, &c.effect, th),
        Mode::Normal | Mode::Filter { .. } => {}
    }
}

fn draw_too_small(frame: &mut Frame<'_>, area: Rect, app: &App, th: Theme) {
    let mut lines = vec![Line::styled("quorate", th.strong())];
    if let Mode::Confirm(c) = app.mode() {
        lines.push(Line::raw(format!("{} [y/n]", c.question)));
    }
    lines.push(Line::raw(format!(
        "terminal {}×{} is too small; needs {MIN_WIDTH}×{MIN_HEIGHT} (q quits)",
        area.width, area.height
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

// ---------------------------------------------------------------------------------------
// Header

/// Puts the parts side by side, separated by `│`, starting a new line where the next
/// part would not fit (so that nothing is cut on a narrow screen, only wrapped).
fn pack(parts: Vec<Line<'static>>, w: usize) -> Text<'static> {
    let mut lines: Vec<Line<'static>> = Vec::new();
    for part in parts {
        match lines.last_mut() {
            Some(last) if last.width() + 3 + part.width() <= w => {
                last.spans.push(Span::raw(" │ "));
                last.spans.extend(part.spans);
            }
            _ => lines.push(part),
        }
    }
    Text::from(lines)
}

/// The header's parts: the cluster (quorum, primary, term, frozen), the connection, and
/// the snapshot's age.
fn header_parts(state: &State, th: Theme) -> Vec<Line<'static>> {
    let sep = || Span::raw(" │ ");
    let mut a = vec![Span::styled(
        " quorate ",
        th.strong().add_modifier(Modifier::REVERSED),
    )];
    match state.status() {
        None => a.push(Span::raw(" waiting for the first snapshot")),
        Some(s) => {
            a.push(Span::styled(format!(" {}", s.cluster), th.strong()));
            a.push(sep());
            let (alive, voters) = state.quorum_counts().unwrap_or((0, s.voters));
            if s.quorum {
                a.push(Span::styled(format!("quorum {alive}/{voters}"), th.ok()));
            } else {
                a.push(Span::styled(
                    format!(" NO QUORUM {alive}/{voters} "),
                    th.alarm(),
                ));
            }
            a.push(sep());
            match &s.primary {
                Some(p) => {
                    a.push(Span::raw("primary "));
                    a.push(Span::styled(p.clone(), th.accent()));
                }
                None => a.push(Span::styled("no primary", th.bad())),
            }
            a.push(Span::raw(format!(" · term {}", s.term)));
            if s.frozen {
                a.push(Span::raw(" "));
                a.push(Span::styled(" FROZEN ", th.flag()));
            }
        }
    }

    let now = state.now();
    let attached = state.status().map(|s| s.node.clone());
    let mut b = Vec::new();
    match state.conn() {
        ConnStatus::Connecting { to } => {
            b.push(Span::styled(format!("connecting to {to}…"), th.warn()));
        }
        ConnStatus::Connected { to, since } => {
            b.push(Span::raw("attached "));
            match attached.filter(|n| n != to) {
                Some(node) => {
                    b.push(Span::styled(node, th.strong()));
                    b.push(Span::raw(format!(" ({to})")));
                }
                None => b.push(Span::styled(to.clone(), th.strong())),
            }
            b.push(Span::raw(format!(
                " · up {}",
                age(now.saturating_duration_since(*since))
            )));
        }
        ConnStatus::Reconnecting {
            last,
            attempt,
            retry_at,
            error,
        } => {
            b.push(Span::styled(" RECONNECTING ", th.alarm()));
            b.push(Span::raw(format!(
                " {last} lost ({error}); attempt {attempt}, next in {}",
                age(retry_at.saturating_duration_since(now))
            )));
        }
    }
    let mut parts = vec![Line::from(a), Line::from(b)];
    if let Some(a) = state.snapshot_age() {
        let mut c = vec![Span::raw(format!("snapshot {} ago", age(a)))];
        if state.snapshot_stale() {
            c.push(Span::raw(" "));
            c.push(Span::styled(" STALE ", th.alarm()));
        }
        parts.push(Line::from(c));
    }
    parts
}

// ---------------------------------------------------------------------------------------
// Node table

/// Table columns, in display order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Col {
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
const PRIORITY: [Col; 13] = [
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
const BAR: usize = 5;

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

    /// Room for the value, its stale mark and the sort mark in the title.
    fn width(self, bars: bool, node: usize, version: usize) -> usize {
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
            Self::Config => 8,
            Self::Mounts => 5,
            Self::Version => version.clamp(7, 12),
            Self::Seen => 5,
        }
    }
}

/// The columns that fit in `width`, with bars only if every column fits with them.
fn fit_columns(width: usize, node: usize, version: usize) -> (Vec<Col>, bool) {
    // One column for the selection mark, one space between columns.
    let total = |cols: &[Col], bars: bool| -> usize {
        1 + cols
            .iter()
            .map(|c| c.width(bars, node, version) + 1)
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

fn draw_table(frame: &mut Frame<'_>, area: Rect, state: &State, app: &App, th: Theme) {
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
            format!(" filter “{}” ", app.filter()),
            th.warn(),
        ));
    }
    let mut block = Block::bordered()
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
            ConnStatus::Connecting { to } => format!("waiting for the first snapshot from {to}…"),
            _ => "no cluster view yet".to_string(),
        };
        frame.render_widget(Paragraph::new(Line::styled(text, th.stale())), inner);
        return;
    }
    if rows.is_empty() {
        let text = if total == 0 {
            "the agent knows no nodes".to_string()
        } else {
            format!("no node matches “{}” (esc clears the filter)", app.filter())
        };
        frame.render_widget(Paragraph::new(Line::styled(text, th.warn())), inner);
        return;
    }

    let node_w = rows.iter().map(|n| width(&n.node) + 1).max().unwrap_or(4);
    let version_w = rows
        .iter()
        .map(|n| width(n.version.app.as_deref().unwrap_or("-")) + 2)
        .max()
        .unwrap_or(7);
    let (cols, bars) = fit_columns(usize::from(inner.width), node_w, version_w);
    // Room left over goes to the health column, for more of the failing checks' names.
    let used: usize = 1 + cols
        .iter()
        .map(|c| c.width(bars, node_w, version_w) + 1)
        .sum::<usize>();
    let health_w = Col::Health.width(bars, node_w, version_w)
        + usize::from(inner.width).saturating_sub(used).min(12);
    let col_w = |c: Col| {
        if c == Col::Health {
            health_w
        } else {
            c.width(bars, node_w, version_w)
        }
    };

    let header = Row::new(cols.iter().map(|c| {
        let mut t = c.title().to_string();
        if c.sort_key() == Some(app.sort()) {
            t.push('▾');
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
fn cell(state: &State, n: &NodeStatus, col: Col, bars: bool, w: usize, th: Theme) -> Line<'static> {
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
            Line::styled(fit(&name, w), style)
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
                Line::styled(format!("{}?", fit(&n.state, w - 1)), th.stale())
            } else {
                Line::styled(fit(&n.state, w), th.level(level))
            }
        }
        Col::Role => {
            let level = if n.role == "primary" {
                Level::Accent
            } else {
                Level::Plain
            };
            value(fit(&n.role, w - 1), level)
        }
        Col::Health => {
            let h = health(n);
            let level = match h.kind {
                HealthKind::Ok => Level::Ok,
                HealthKind::Draining | HealthKind::Unready => Level::Warn,
                HealthKind::Fail => Level::Bad,
            };
            value(fit(&h.text, w - 1), level)
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
                    Span::styled(bar(f, BAR), th.level(bar_level)),
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
                } => (format!("drift≠{nodes}"), Level::Warn),
                ConfigSummary::Drift {
                    nodes, acked: true, ..
                } => (format!("ack≠{nodes}"), Level::Plain),
                ConfigSummary::Fail => ("fail".to_string(), Level::Bad),
            };
            value(fit(&text, w - 1), level)
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
                value(format!("{}≠", fit(app, w - 2)), Level::Warn)
            } else {
                value(fit(app, w - 1), Level::Plain)
            }
        }
        Col::Seen => {
            let a = state.node_age(n);
            let level = if a > super::state::STALE_AFTER {
                Level::Warn
            } else {
                Level::Plain
            };
            Line::styled(age(a), th.level(level))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Detail pane

fn draw_detail(frame: &mut Frame<'_>, area: Rect, state: &State, app: &App, th: Theme) {
    let focused = app.focus() == Focus::Detail;
    let Some(n) = app.current(state) else {
        let block = Block::bordered().title(Line::styled(" detail ", th.title(focused)));
        let inner = block.inner(area);
        frame.render_widget(block, area);
        frame.render_widget(Paragraph::new("no node selected"), inner);
        return;
    };
    let inner = Block::bordered().inner(area);

    // Wide: identity, checks, mounts on the left; config matrix and load on the right.
    // Narrow: one column, most urgent first, scrolled with tab then j/k.
    let two_columns = inner.width >= 100;
    let (left_w, right_w) = if two_columns {
        let l = inner.width * 11 / 20;
        (l, inner.width - l - 2)
    } else {
        (inner.width, inner.width)
    };
    let (lw, rw) = (usize::from(left_w), usize::from(right_w));
    let (left, right) = if two_columns {
        let mut left = identity_and_checks(state, n, lw, th);
        left.push(Line::raw(""));
        left.extend(mounts_and_more(state, n, lw, th));
        let mut right = config_matrix(state, n, rw, th);
        right.push(Line::raw(""));
        right.extend(load_history(state, n, rw, th));
        (left, right)
    } else {
        let mut all = identity_and_checks(state, n, lw, th);
        for section in [
            config_matrix(state, n, lw, th),
            mounts_and_more(state, n, lw, th),
            load_history(state, n, lw, th),
        ] {
            all.push(Line::raw(""));
            all.extend(section);
        }
        (all, Vec::new())
    };
    let content_h = left.len().max(right.len());
    let max =
        u16::try_from(content_h.saturating_sub(usize::from(inner.height))).unwrap_or(u16::MAX);
    app.detail_max.set(max);
    let scroll = app.detail_scroll.min(max);

    let mut title = vec![
        Span::styled(format!(" {} ", n.node), th.title(focused)),
        Span::raw(" detail · enter closes "),
    ];
    if scroll < max {
        title.push(Span::styled(" ↓ more: tab, j ", th.warn()));
    } else if scroll > 0 {
        title.push(Span::raw(" ↑ k "));
    }
    let block = Block::bordered()
        .border_style(th.border(focused))
        .title(Line::from(title));
    frame.render_widget(block, area);

    if two_columns {
        let [l, _, r] = Layout::horizontal([
            Constraint::Length(left_w),
            Constraint::Length(2),
            Constraint::Length(right_w),
        ])
        .areas(inner);
        frame.render_widget(Paragraph::new(left).scroll((scroll, 0)), l);
        frame.render_widget(Paragraph::new(right).scroll((scroll, 0)), r);
    } else {
        frame.render_widget(Paragraph::new(left).scroll((scroll, 0)), inner);
    }
}

fn heading(text: &str, th: Theme) -> Line<'static> {
    Line::styled(
        text.to_string(),
        th.strong().add_modifier(Modifier::UNDERLINED),
    )
}

/// `text`, or `text?` in the stale style.
fn maybe_stale(text: &str, style: Style, stale: bool, th: Theme) -> Span<'static> {
    if stale {
        Span::styled(format!("{text}?"), th.stale())
    } else {
        Span::styled(text.to_string(), style)
    }
}

/// Who the node is, how fresh its values are, and every check with its value, how long
/// it has had it, and why it fails.
fn identity_and_checks(state: &State, n: &NodeStatus, w: usize, th: Theme) -> Vec<Line<'static>> {
    let stale = state.node_stale(n);
    let attached = state.status().map_or("the agent", |s| s.node.as_str());
    let mut out = Vec::new();

    let state_style = match n.state.as_str() {
        "alive" => th.ok(),
        "suspect" => th.warn(),
        _ => th.bad(),
    };
    let role_style = if n.role == "primary" {
        th.accent()
    } else {
        th.plain()
    };
    let mut who = vec![
        Span::styled(n.node.clone(), th.strong()),
        Span::raw(format!("  {}  ", n.addr)),
        Span::styled(n.state.clone(), state_style),
        Span::raw("  "),
        Span::styled(n.role.clone(), role_style),
    ];
    if n.local {
        who.push(Span::raw("  (attached)"));
    }
    out.push(Line::from(who));

    let good_bad = |yes: bool, good: &str, bad: &str| {
        let (text, style) = if yes {
            (good, th.ok())
        } else {
            (bad, th.bad())
        };
        maybe_stale(text, style, stale, th)
    };
    let mut line = vec![
        good_bad(n.healthy, "healthy", "unhealthy"),
        Span::raw(" · "),
        good_bad(n.ready, "ready", "not ready"),
        Span::raw(" · "),
        if n.draining {
            maybe_stale("draining", th.warn(), stale, th)
        } else {
            maybe_stale("in traffic", th.plain(), stale, th)
        },
        Span::raw(format!(" · values {} old", age(state.node_age(n)))),
    ];
    if stale {
        line.push(Span::raw(" "));
        line.push(Span::styled(" STALE ", th.alarm()));
    }
    out.push(Line::from(line));

    let mut facts = Vec::new();
    if let (Some(phi), false) = (n.phi, n.local) {
        facts.push(format!("phi {} as seen by {attached}", num(phi)));
    }
    if !n.suspected_by.is_empty() {
        facts.push(format!("suspected by {}", n.suspected_by.join(", ")));
    }
    facts.push(format!("incarnation {}", n.incarnation));
    facts.push(format!("priority {}", n.priority));
    if !n.roles.is_empty() {
        facts.push(format!("roles {}", n.roles.join(",")));
    }
    for l in wrap(&facts.join(" · "), w) {
        out.push(Line::raw(l));
    }

    out.push(Line::raw(""));
    let name_w = n
        .checks
        .keys()
        .map(|k| width(k))
        .max()
        .unwrap_or(5)
        .clamp(5, 12);
    out.push(heading(
        &format!("{:<name_w$} {:<6} {:<6} REASON", "CHECK", "VALUE", "FOR"),
        th,
    ));
    if n.checks.is_empty() {
        out.push(Line::raw("(none reported)"));
    }
    let indent = name_w + 1 + 7 + 7;
    for (check, v) in &n.checks {
        let level = match v.as_str() {
            "ok" => Level::Ok,
            "off" => Level::Dim,
            "drift" => Level::Warn,
            _ => Level::Bad,
        };
        let since = state
            .check_since(&n.node, check)
            .map(|c| {
                let a = age(state.now().saturating_duration_since(c.since));
                if c.observed { a } else { format!("≥{a}") }
            })
            .unwrap_or_default();
        let mut value = maybe_stale(&fit(v, 5), th.level(level), stale, th);
        value.content = format!("{:<6} ", value.content).into();
        let mut spans = vec![
            Span::raw(format!("{:<name_w$} ", fit(check, name_w))),
            value,
            Span::raw(format!("{since:<6} ")),
        ];
        let reason = n.check_reasons.get(check).map_or("", String::as_str);
        let mut wrapped = wrap(reason, w.saturating_sub(indent).max(10)).into_iter();
        if let Some(first) = wrapped.next() {
            spans.push(Span::raw(first));
        }
        out.push(Line::from(spans));
        for more in wrapped {
            out.push(Line::raw(format!("{:indent$}{more}", "")));
        }
    }
    out
}

/// Mounts with their sources, then drain, the load balancer's view, and versions.
fn mounts_and_more(state: &State, n: &NodeStatus, w: usize, th: Theme) -> Vec<Line<'static>> {
    let stale = state.node_stale(n);
    let mut out = Vec::new();
    if !n.mounts.is_empty() {
        let path_w = n
            .mounts
            .iter()
            .map(|m| width(&m.path))
            .max()
            .unwrap_or(5)
            .clamp(5, 24);
        out.push(heading(
            &format!("{:<path_w$} {:<5} SOURCE", "MOUNT", "STATE"),
            th,
        ));
        for m in &n.mounts {
            let level = if m.status == "ok" {
                Level::Ok
            } else {
                Level::Bad
            };
            let mut status = maybe_stale(&fit(&m.status, 4), th.level(level), stale, th);
            status.content = format!("{:<5} ", status.content).into();
            let source = format!(
                "{} {}",
                m.source.as_deref().unwrap_or("?"),
                m.fstype.as_deref().unwrap_or("?"),
            );
            out.push(Line::from(vec![
                Span::raw(format!("{:<path_w$} ", fit_left(&m.path, path_w))),
                status,
                Span::raw(fit(&source, w.saturating_sub(path_w + 7))),
            ]));
            for l in wrap(&m.reason, w.saturating_sub(2).max(10)) {
                out.push(Line::styled(format!("  {l}"), th.level(level)));
            }
        }
        out.push(Line::raw(""));
    }

    let label = |s: &str| Span::styled(format!("{s:<9}"), th.strong());
    match &n.drain {
        Some(d) => {
            let until = d
                .until
                .as_deref()
                .map(|u| format!(" until {u}"))
                .unwrap_or_default();
            let text = format!("{} · by {} since {}{until}", d.reason, d.by, d.since);
            push_wrapped(&mut out, label("drain"), &text, th.warn(), w);
        }
        None if n.draining => push_wrapped(&mut out, label("drain"), "draining", th.warn(), w),
        None => push_wrapped(&mut out, label("drain"), "not drained", th.plain(), w),
    }
    match &n.balancer {
        Some(b) => {
            let level = if b.state.starts_with("UP") {
                Level::Ok
            } else {
                Level::Warn
            };
            let mut extra = Vec::new();
            extra.extend(b.balancer.clone());
            extra.extend(b.weight.as_ref().map(|wt| format!("weight {wt}")));
            let extra = if extra.is_empty() {
                String::new()
            } else {
                format!(" ({})", extra.join(", "))
            };
            let mut text = format!("{}{extra} since {}", b.state, b.since);
            if stale {
                text.push_str(" ?");
            }
            let style = if stale { th.stale() } else { th.level(level) };
            push_wrapped(&mut out, label("balancer"), &text, style, w);
        }
        None => push_wrapped(&mut out, label("balancer"), "no report", th.plain(), w),
    }
    let skewed = state.version_skewed(n);
    let mut text = format!("app {}", n.version.app.as_deref().unwrap_or("-"));
    if let (true, Some(common)) = (skewed, state.common_app_version()) {
        text.push_str(&format!(" ≠ most nodes ({common})"));
    }
    text.push_str(&format!(" · agent {}", n.version.agent));
    let style = if skewed { th.warn() } else { th.plain() };
    push_wrapped(&mut out, label("version"), &text, style, w);
    out
}

/// `label` then `text`, wrapped under itself.
fn push_wrapped(
    out: &mut Vec<Line<'static>>,
    label: Span<'static>,
    text: &str,
    style: Style,
    w: usize,
) {
    let indent = label.width();
    let mut lines = wrap(text, w.saturating_sub(indent).max(10)).into_iter();
    let first = lines.next().unwrap_or_default();
    out.push(Line::from(vec![label, Span::styled(first, style)]));
    for l in lines {
        out.push(Line::from(vec![
            Span::raw(" ".repeat(indent)),
            Span::styled(l, style),
        ]));
    }
}

/// The per-file config matrix: one row per config set (its status and hash on this
/// node) and one per file that differs somewhere; one column per node; `=` same as
/// this node, `≠` differs, `–` missing there, `?` not known.
fn config_matrix(state: &State, n: &NodeStatus, w: usize, th: Theme) -> Vec<Line<'static>> {
    let mut nodes: Vec<&str> = state
        .status()
        .map(|s| s.nodes.iter().map(|n| n.node.as_str()).collect())
        .unwrap_or_default();
    nodes.sort_unstable();
    let col_w = nodes
        .iter()
        .map(|s| width(s))
        .max()
        .unwrap_or(1)
        .clamp(1, 6)
        + 1;
    let set_label = |set: &proto::status::ConfigStatus| {
        let status = if set.status.is_empty() {
            "?"
        } else {
            set.status.as_str()
        };
        format!("{} {status} {}", set.name, set.hash)
    };
    let wanted = n
        .config
        .iter()
        .flat_map(|set| {
            std::iter::once(width(&set_label(set)))
                .chain(set.differing_files.iter().map(|f| width(&f.path) + 1))
        })
        .max()
        .unwrap_or(0)
        .max(14)
        + 1;
    let label_w = wanted.min(w.saturating_sub(col_w * nodes.len()).max(8));

    let mut out = Vec::new();
    let stale = state.node_stale(n);
    let title = if stale { "CONFIG (stale)" } else { "CONFIG" };
    let underline = th.strong().add_modifier(Modifier::UNDERLINED);
    let mut head = vec![Span::styled(format!("{title:<label_w$}"), underline)];
    for name in &nodes {
        head.push(Span::styled(
            format!("{:>col_w$}", fit(name, col_w - 1)),
            underline,
        ));
    }
    out.push(Line::from(head));
    if n.config.is_empty() {
        out.push(Line::raw("(no config sets watched)"));
        return out;
    }
    let glyph = |g: char| -> Span<'static> {
        let style = if stale {
            th.stale()
        } else {
            match g {
                '=' => th.ok(),
                '≠' | '!' => th.bad(),
                _ => th.warn(),
            }
        };
        Span::styled(format!("{g:>col_w$}"), style)
    };
    let has = |list: &[String], node: &str| list.iter().any(|a| a == node);
    for set in &n.config {
        let mut row = vec![Span::styled(
            format!("{:<label_w$}", fit(&set_label(set), label_w - 1)),
            th.strong(),
        )];
        for other in &nodes {
            row.push(glyph(if *other == n.node {
                if set.status == "fail" { '!' } else { '=' }
            } else if has(&set.agrees_with, other) {
                '='
            } else if has(&set.differs_from, other) {
                '≠'
            } else {
                '?'
            }));
        }
        out.push(Line::from(row));
        for f in &set.differing_files {
            let path = format!(" {}", fit_left(&f.path, label_w.saturating_sub(2)));
            let mut row = vec![Span::raw(format!("{path:<label_w$}"))];
            for other in &nodes {
                row.push(glyph(if has(&f.missing_on, other) {
                    '–'
                } else if *other == n.node || has(&f.agrees_with, other) {
                    '='
                } else if has(&f.differs_from, other) {
                    '≠'
                } else {
                    '?'
                }));
            }
            out.push(Line::from(row));
        }
        if let Some(ack) = &set.acknowledged {
            out.push(Line::raw(fit(&format!(" acknowledged: {ack}"), w)));
        }
    }
    out.push(Line::styled(
        fit(
            &format!("= same as {}  ≠ differs  – missing  ? unknown", n.node),
            w,
        ),
        th.stale(),
    ));
    out
}

/// CPU and load over the last minute, one character per sample.
fn load_history(state: &State, n: &NodeStatus, w: usize, th: Theme) -> Vec<Line<'static>> {
    let spark_w = w.saturating_sub(12).clamp(1, super::state::HISTORY_LEN);
    let samples: Vec<_> = state
        .history(&n.node)
        .map(|h| h.samples().collect())
        .unwrap_or_default();
    let recent = &samples[samples.len().saturating_sub(spark_w)..];
    let stale = state.node_stale(n);
    let now_text = |s: String| if stale { format!("{s}?") } else { s };
    let spark_style = if stale { th.stale() } else { th.ok() };

    let cpu: Vec<Option<f64>> = recent.iter().map(|s| s.map(|s| s.cpu)).collect();
    let load: Vec<Option<f64>> = recent.iter().map(|s| s.map(|s| s.load1)).collect();
    let top = load
        .iter()
        .flatten()
        .copied()
        .filter(|x| x.is_finite())
        .fold(1.0, f64::max);
    vec![
        heading(&format!("LOAD, last {}s", recent.len()), th),
        Line::from(vec![
            Span::raw("cpu  "),
            Span::styled(format!("{:<spark_w$}", sparkline(&cpu, 1.0)), spark_style),
            Span::raw(format!(" {:>5}", now_text(pct(n.load.cpu)))),
        ]),
        Line::from(vec![
            Span::raw("load "),
            Span::styled(format!("{:<spark_w$}", sparkline(&load, top)), spark_style),
            Span::raw(format!(" {:>5}", now_text(num(n.load.load1)))),
        ]),
        Line::styled(
            fit(
                &format!("cpu 0–100%, load 0–{} · '·' no fresh value", num(top)),
                w,
            ),
            th.stale(),
        ),
    ]
}

/// One character per sample, scaled to `top`; `·` where the value was stale.
fn sparkline(samples: &[Option<f64>], top: f64) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    samples
        .iter()
        .map(|s| match s {
            Some(v) if v.is_finite() && top > 0.0 => {
                let i = (v / top * 8.0).ceil().clamp(1.0, 8.0) as usize;
                BARS[i - 1]
            }
            Some(_) => '▁',
            None => '·',
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Events, status line, overlays

fn draw_events(frame: &mut Frame<'_>, area: Rect, state: &State, app: &App, th: Theme) {
    let focused = app.focus() == Focus::Events;
    let events = state.events();
    let block = Block::bordered().border_style(th.border(focused));
    let inner = block.inner(area);
    let visible = usize::from(inner.height);
    let max_back = events.len().saturating_sub(visible);
    app.events_max.set(max_back);
    let back = app.events_back.min(max_back);
    let mut title = vec![Span::styled(" events (UTC) ", th.title(focused))];
    if back > 0 {
        title.push(Span::raw(format!(" {back} newer below · End follows ")));
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

fn event_line(e: &EventRecord, with_kind: bool, th: Theme) -> Line<'static> {
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

fn draw_status_line(frame: &mut Frame<'_>, area: Rect, state: &State, app: &App, th: Theme) {
    if let Mode::Filter { input } = app.mode() {
        let line = Line::from(vec![
            Span::styled("filter: ", th.strong()),
            Span::raw(input.clone()),
            Span::styled("▏", th.accent()),
            Span::styled("  enter keeps · esc clears", th.stale()),
        ]);
        frame.render_widget(Paragraph::new(line), area);
        return;
    }
    let hints = match app.mode() {
        Mode::Confirm(_) => "y send · n cancel",
        Mode::Help => "esc closes help",
        _ if app.detail_open() => "? help · q quit · tab focus · enter close · d u t f",
        _ => "? help · q quit · / filter · s sort · enter detail",
    };
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
    let hints_w = u16::try_from(width(hints)).unwrap_or(u16::MAX);
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

const HELP: &[(&str, &str)] = &[
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

const MARKS: &[(&str, &str)] = &[
    ("*", "the node you are attached to"),
    (
        "?",
        "stale: node not alive, silent over 3 s, or old snapshot",
    ),
    ("≠", "differs from other nodes (config, version)"),
    ("= –", "same / missing, in the config matrix"),
    (
        "≥",
        "at least: the value was already so when the TUI started",
    ),
];

fn draw_help(frame: &mut Frame<'_>, area: Rect, th: Theme) {
    let key_w = HELP
        .iter()
        .chain(MARKS)
        .map(|(k, _)| width(k))
        .max()
        .unwrap_or(0)
        + 2;
    let mut lines = vec![Line::styled("KEYS", th.strong())];
    let row = |(k, v): &(&str, &str)| {
        Line::from(vec![
            Span::styled(format!("{k:<key_w$}"), th.accent()),
            Span::raw(v.to_string()),
        ])
    };
    lines.extend(HELP.iter().map(row));
    lines.push(Line::raw(""));
    lines.push(Line::styled("MARKS", th.strong()));
    lines.extend(MARKS.iter().map(row));
    let w = lines.iter().map(Line::width).max().unwrap_or(0) + 4;
    let h = lines.len() + 2;
    let r = centered(area, w, h);
    frame.render_widget(Clear, r);
    let block = Block::bordered()
        .border_style(th.border(true))
        .title(Line::styled(" help ", th.title(true)));
    frame.render_widget(
        Paragraph::new(lines).block(block.padding(ratatui::widgets::Padding::horizontal(1))),
        r,
    );
}

fn draw_confirm(frame: &mut Frame<'_>, area: Rect, question: &str, effect: &str, th: Theme) {
    let w = 64.min(usize::from(area.width).saturating_sub(4)).max(10);
    let text_w = w.saturating_sub(4);
    let mut lines = vec![
        Line::styled(question.to_string(), th.strong()),
        Line::raw(""),
    ];
    lines.extend(wrap(effect, text_w).into_iter().map(Line::raw));
    lines.push(Line::raw(""));
    lines.push(Line::from(vec![
        Span::styled("[y]", th.accent()),
        Span::raw(" yes, send it    "),
        Span::styled("[n]", th.accent()),
        Span::raw(" no"),
    ]));
    let r = centered(area, w, lines.len() + 2);
    frame.render_widget(Clear, r);
    let block = Block::bordered()
        .border_style(th.warn())
        .title(Line::styled(" confirm ", th.flag()))
        .padding(ratatui::widgets::Padding::horizontal(1));
    frame.render_widget(Paragraph::new(lines).block(block), r);
}

/// A `w`×`h` rectangle in the middle of `area`, no bigger than it.
fn centered(area: Rect, w: usize, h: usize) -> Rect {
    let w = u16::try_from(w).unwrap_or(u16::MAX).min(area.width);
    let h = u16::try_from(h).unwrap_or(u16::MAX).min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

// ---------------------------------------------------------------------------------------
// Text

/// Display width of `s` in terminal cells (wide characters count two).
fn width(s: &str) -> usize {
    Span::raw(s).width()
}

fn char_width(c: char) -> usize {
    let mut buf = [0u8; 4];
    width(c.encode_utf8(&mut buf))
}

/// `s` cut to `w` cells, with `…` where it was cut.
fn fit(s: &str, w: usize) -> String {
    if width(s) <= w {
        return s.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let cw = char_width(c);
        if used + cw + 1 > w {
            break;
        }
        used += cw;
        out.push(c);
    }
    if w > 0 {
        out.push('…');
    }
    out
}

/// `s` cut to `w` cells from the left (paths keep their file name).
fn fit_left(s: &str, w: usize) -> String {
    if width(s) <= w {
        return s.to_string();
    }
    let mut kept = Vec::new();
    let mut used = 0;
    for c in s.chars().rev() {
        let cw = char_width(c);
        if used + cw + 1 > w {
            break;
        }
        used += cw;
        kept.push(c);
    }
    let mut out = String::new();
    if w > 0 {
        out.push('…');
    }
    out.extend(kept.into_iter().rev());
    out
}

/// Word-wraps `s` to lines of at most `w` cells; words longer than a line are cut.
fn wrap(s: &str, w: usize) -> Vec<String> {
    let w = w.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in s.split_whitespace() {
        let needed = width(&line) + usize::from(!line.is_empty()) + width(word);
        if !line.is_empty() && needed > w {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        if width(word) > w {
            line.push_str(&fit(word, w));
        } else {
            line.push_str(word);
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// A bar of `w` cells for a fraction 0–1, in eighths.
fn bar(fraction: f64, w: usize) -> String {
    const EIGHTHS: [char; 8] = ['▏', '▎', '▍', '▌', '▋', '▊', '▉', '█'];
    let f = if fraction.is_finite() {
        fraction.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let eighths = (f * (w * 8) as f64).round() as usize;
    let mut out = "█".repeat(eighths / 8);
    if let Some(part) = (eighths % 8).checked_sub(1) {
        out.push(EIGHTHS[part]);
    }
    let filled = out.chars().count();
    out.extend(std::iter::repeat_n('░', w.saturating_sub(filled)));
    out
}

/// `45%`; `-` for nonsense.
fn pct(f: f64) -> String {
    if f.is_finite() && f >= 0.0 {
        format!("{:.0}%", (f * 100.0).min(999.0))
    } else {
        "-".to_string()
    }
}

/// At most four characters: `0.85`, `14.2`, `312`, `10k+`.
fn num(x: f64) -> String {
    match x {
        x if !x.is_finite() || x < 0.0 => "-".to_string(),
        x if x < 9.995 => format!("{x:.2}"),
        x if x < 99.95 => format!("{x:.1}"),
        x if x < 9_999.5 => format!("{x:.0}"),
        _ => "10k+".to_string(),
    }
}

/// At most six characters: `0.4ms`, `12ms`, `1.2s`, `+0.4ms`, `>99s`.
fn millis(ms: Option<f64>, signed: bool) -> String {
    let Some(ms) = ms.filter(|m| m.is_finite()) else {
        return "-".to_string();
    };
    let sign = if !signed {
        ""
    } else if ms < 0.0 {
        "-"
    } else {
        "+"
    };
    let a = if signed { ms.abs() } else { ms.max(0.0) };
    let body = if a < 9.95 {
        format!("{a:.1}ms")
    } else if a < 999.5 {
        format!("{a:.0}ms")
    } else if a < 9_950.0 {
        format!("{:.1}s", a / 1000.0)
    } else if a < 99_500.0 {
        format!("{:.0}s", a / 1000.0)
    } else {
        return format!("{}99s", if signed { sign } else { ">" });
    };
    format!("{sign}{body}")
}

/// At most five characters: `0.4s`, `12s`, `4m05s`, `2h05m`, `3d04h`, `>99d`.
fn age(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 9_950 {
        return format!("{:.1}s", ms as f64 / 1000.0);
    }
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3_600 => format!("{}m{:02}s", s / 60, s % 60),
        3_600..86_400 => format!("{}h{:02}m", s / 3_600, s % 3_600 / 60),
        86_400..8_640_000 => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3_600),
        _ => ">99d".to_string(),
    }
}

/// `HH:MM:SS` UTC of a wall time in microseconds since the epoch.
fn clock(at_micros: u64) -> String {
    let s = at_micros / 1_000_000 % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3_600, s % 3_600 / 60, s % 60)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use proto::status::ClusterStatus;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use ratatui::buffer::Buffer;

    use super::*;
    use crate::ui::fixtures;

    /// The screen as text, one line per row, trailing blanks cut (what insta stores).
    fn text(buf: &Buffer) -> String {
        let mut out = String::new();
        for y in 0..buf.area.height {
            let mut line = String::new();
            let mut skip = 0usize;
            for x in 0..buf.area.width {
                let c = &buf[(x, y)];
                if skip == 0 {
                    line.push_str(c.symbol());
                }
                skip = skip.max(width(c.symbol())).saturating_sub(1);
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    fn render(state: &State, app: &App, w: u16, h: u16) -> Buffer {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        terminal.draw(|f| draw(f, state, app)).unwrap();
        terminal.backend().buffer().clone()
    }

    fn keys(app: &mut App, state: &State, keys: &[KeyCode]) {
        for k in keys {
            app.handle_key(KeyEvent::new(*k, KeyModifiers::NONE), state);
        }
    }

    type Fixture = (
        &'static str,
        fn() -> ClusterStatus,
        fn() -> Vec<EventRecord>,
    );

    const FIXTURES: [Fixture; 5] = [
        ("healthy", fixtures::healthy, fixtures::healthy_events),
        ("failover", fixtures::failover, fixtures::failover_events),
        ("drift", fixtures::drift, fixtures::drift_events),
        (
            "hung_mount",
            fixtures::hung_mount,
            fixtures::hung_mount_events,
        ),
        (
            "lost_quorum",
            fixtures::lost_quorum,
            fixtures::lost_quorum_events,
        ),
    ];

    /// Which node each fixture's detail shows: the interesting one.
    fn detail_node(name: &str) -> usize {
        match name {
            "failover" => 0,
            "drift" => 2,
            "hung_mount" => 1,
            "lost_quorum" => 1,
            _ => 1,
        }
    }

    #[test]
    fn screens() {
        for (name, status, events) in FIXTURES {
            let state = fixtures::state(status(), events());
            for (w, h) in [(80, 24), (120, 40)] {
                let mut app = App::new(false);
                let main = text(&render(&state, &app, w, h));
                insta::assert_snapshot!(format!("{name}_main_{w}x{h}"), main);

                keys(&mut app, &state, &vec![KeyCode::Down; detail_node(name)]);
                keys(&mut app, &state, &[KeyCode::Enter]);
                let detail = text(&render(&state, &app, w, h));
                insta::assert_snapshot!(format!("{name}_detail_{w}x{h}"), detail);
            }
        }
    }

    #[test]
    fn help_and_confirm() {
        let state = fixtures::state(fixtures::healthy(), fixtures::healthy_events());
        for (w, h) in [(80, 24), (120, 40)] {
            let mut app = App::new(false);
            keys(&mut app, &state, &[KeyCode::Char('?')]);
            insta::assert_snapshot!(format!("help_{w}x{h}"), text(&render(&state, &app, w, h)));

            let mut app = App::new(false);
            keys(&mut app, &state, &[KeyCode::Down, KeyCode::Char('d')]);
            insta::assert_snapshot!(
                format!("confirm_drain_{w}x{h}"),
                text(&render(&state, &app, w, h))
            );
        }
    }

    #[test]
    fn connection_trouble_and_filter() {
        let mut state = fixtures::state(fixtures::healthy(), fixtures::healthy_events());
        state.on_connection(ConnStatus::Reconnecting {
            last: "n1".into(),
            attempt: 3,
            retry_at: fixtures::now() + Duration::from_secs(6),
            error: "connection refused".into(),
        });
        state.tick(fixtures::now() + Duration::from_secs(4));
        state.on_command_result(Err("n3 is not eligible: app check failing".into()));
        let mut app = App::new(false);
        keys(
            &mut app,
            &state,
            &[KeyCode::Char('/'), KeyCode::Char('n'), KeyCode::Char('2')],
        );
        insta::assert_snapshot!(
            "reconnecting_filter_80x24",
            text(&render(&state, &app, 80, 24))
        );

        let waiting = State::new(
            fixtures::t0(),
            ConnStatus::Connecting {
                to: "10.0.0.1:7400".into(),
            },
        );
        insta::assert_snapshot!(
            "connecting_80x24",
            text(&render(&waiting, &App::new(false), 80, 24))
        );
    }

    /// What does not fit in the detail pane at 80×24 is reachable by scrolling, and
    /// scrolling stops at its end; a command's answer shows in the status line.
    #[test]
    fn detail_scrolls_to_its_end_and_answers_show() {
        let mut state = fixtures::state(fixtures::hung_mount(), fixtures::hung_mount_events());
        let mut app = App::new(false);
        keys(&mut app, &state, &[KeyCode::Down, KeyCode::Enter]);
        let first = text(&render(&state, &app, 80, 24));
        assert!(first.contains("↓ more") && !first.contains("balancer"));
        keys(&mut app, &state, &[KeyCode::Tab, KeyCode::End]);
        let last = text(&render(&state, &app, 80, 24));
        assert!(last.contains("balancer MAINT (lb1, weight 0)"), "{last}");
        assert!(last.contains("↑ k"));
        let max = app.detail_max.get();
        assert!(max > 0);
        assert_eq!(app.detail_scroll, max);
        keys(&mut app, &state, &[KeyCode::Up]);
        assert_eq!(app.detail_scroll, max - 1);

        state.on_command_result(Err("n3 is not eligible: app check failing".into()));
        state.tick(fixtures::now() + Duration::from_secs(2));
        let screen = text(&render(&state, &app, 80, 24));
        let status = screen.lines().last().unwrap();
        assert!(
            status.starts_with("refused: n3 is not eligible: app check failing (2.0s ago)"),
            "{status}"
        );
    }

    /// Every size from tiny to large, every fixture, every overlay: no panic, and nothing
    /// drawn outside the frame (ratatui would panic on that).
    #[test]
    fn no_size_panics() {
        let mut odd = fixtures::healthy();
        odd.nodes[0].node = "ノード-ü-very-long-unicode-name-that-goes-on".into();
        odd.nodes[1].last_seen_ms = Some(u64::MAX);
        odd.nodes[1].load.cpu = f64::NAN;
        odd.nodes[2].load.load1 = 1e300;
        odd.nodes[2].rtt_ms = Some(-1.0);
        odd.nodes[2].clock_offset_ms = Some(f64::INFINITY);
        let mut empty = fixtures::healthy();
        empty.nodes.clear();
        let mut states: Vec<State> = FIXTURES
            .iter()
            .map(|(_, s, e)| fixtures::state(s(), e()))
            .collect();
        states.push(fixtures::state(odd, vec![]));
        states.push(fixtures::state(empty, vec![]));
        states.push(State::new(
            fixtures::t0(),
            ConnStatus::Reconnecting {
                last: "n1".into(),
                attempt: 7,
                retry_at: fixtures::t0(),
                error: "x".into(),
            },
        ));
        for state in &states {
            for extra in [
                &[][..],
                &[KeyCode::Enter],
                &[KeyCode::Char('?')],
                &[KeyCode::Char('d')],
                &[KeyCode::Char('f')],
            ] {
                let mut app = App::new(true);
                keys(&mut app, state, extra);
                for (w, h) in [
                    (1, 1),
                    (20, 5),
                    (29, 7),
                    (30, 8),
                    (40, 12),
                    (60, 15),
                    (80, 24),
                    (100, 30),
                    (119, 29),
                    (120, 40),
                    (200, 60),
                ] {
                    render(state, &app, w, h);
                }
            }
        }
    }

    #[test]
    fn no_color_means_no_colour_and_stale_is_never_green() {
        let state = fixtures::state(fixtures::failover(), fixtures::failover_events());
        let mut app = App::new(false);
        keys(&mut app, &state, &[KeyCode::Enter]);
        let buf = render(&state, &app, 120, 40);
        assert!(
            buf.content
                .iter()
                .all(|c| c.fg == Color::Reset && c.bg == Color::Reset),
            "NO_COLOR: a colour was used"
        );

        // With colours: n1 is dead, and nothing on its table row is green.
        let app = App::new(true);
        let buf = render(&state, &app, 120, 40);
        let screen = text(&buf);
        let y = screen.lines().position(|l| l.contains(" n1 ")).unwrap() as u16;
        for x in 0..buf.area.width {
            assert_ne!(
                buf[(x, y)].fg,
                Color::Green,
                "green at column {x} of the dead node's row"
            );
        }
        // n3 is alive and fresh: its state is green.
        assert!(buf.content.iter().any(|c| c.fg == Color::Green));
    }

    #[test]
    fn formats() {
        assert_eq!(age(Duration::from_millis(400)), "0.4s");
        assert_eq!(age(Duration::from_secs(12)), "12s");
        assert_eq!(age(Duration::from_secs(245)), "4m05s");
        assert_eq!(age(Duration::from_secs(7_500)), "2h05m");
        assert_eq!(age(Duration::MAX), ">99d");
        assert_eq!(millis(Some(0.42), false), "0.4ms");
        assert_eq!(millis(Some(-1234.0), true), "-1.2s");
        assert_eq!(millis(Some(1e9), true), "+99s");
        assert_eq!(millis(Some(f64::NAN), false), "-");
        assert_eq!(num(0.853), "0.85");
        assert_eq!(num(14.2), "14.2");
        assert_eq!(num(1e12), "10k+");
        assert_eq!(pct(0.456), "46%");
        assert_eq!(pct(f64::INFINITY), "-");
        assert_eq!(bar(0.5, 5), "██▌░░");
        assert_eq!(bar(f64::NAN, 3), "░░░");
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("ノード", 4), "ノ…");
        assert_eq!(fit_left("/etc/app/app.conf", 9), "…app.conf");
        assert_eq!(wrap("one two three", 7), ["one two", "three"]);
        assert_eq!(clock(1_748_764_800_000_000 + 3_723_000_000), "09:02:03");
        assert_eq!(
            sparkline(&[Some(0.0), Some(0.5), None, Some(1.0)], 1.0),
            "▁▄·█"
        );
        for w in [0, 1, 30, 80, 200] {
            let (cols, _) = fit_columns(w, 4, 7);
            assert!(cols.contains(&Col::Node));
        }
    }
}
