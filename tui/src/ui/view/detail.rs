//! The detail pane of one node: identity and checks, mounts, drain, balancer and
//! versions, the per-file config matrix, and the load history; in two columns when wide,
//! in one scrolled column when narrow.
//!
//! Must never: hide what does not fit without a way to scroll to it (it reports how far
//! it can scroll through `App::detail_max`), or draw a stale value as fresh.

use proto::CheckCode;
use proto::status::NodeStatus;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::text::{age, num, pct, width};
use super::theme::{Glyphs, Level, Theme};
use crate::ui::app::{App, Focus};
use crate::ui::state::State;

pub(super) fn draw_detail(frame: &mut Frame<'_>, area: Rect, state: &State, app: &App, th: Theme) {
    let focused = app.focus() == Focus::Detail;
    let Some(n) = app.current(state) else {
        let block = th
            .block()
            .title(Line::styled(" detail ", th.title(focused)));
        let inner = block.inner(area);
        frame.render_widget(block, area);
        frame.render_widget(Paragraph::new("no node selected"), inner);
        return;
    };
    let inner = th.block().inner(area);

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
        Span::raw(format!(" detail {} enter closes ", th.g.dot)),
    ];
    if scroll < max {
        title.push(Span::styled(
            format!(" {} more: tab, j ", th.g.down),
            th.warn(),
        ));
    } else if scroll > 0 {
        title.push(Span::raw(format!(" {} k ", th.g.up)));
    }
    let block = th
        .block()
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

pub(super) fn heading(text: &str, th: Theme) -> Line<'static> {
    Line::styled(
        text.to_string(),
        th.strong().add_modifier(Modifier::UNDERLINED),
    )
}

/// `text`, or `text?` in the stale style.
pub(super) fn maybe_stale(text: &str, style: Style, stale: bool, th: Theme) -> Span<'static> {
    if stale {
        Span::styled(format!("{text}?"), th.stale())
    } else {
        Span::styled(text.to_string(), style)
    }
}

/// Who the node is, how fresh its values are, and every check with its value, how long
/// it has had it, and why it fails.
pub(super) fn identity_and_checks(
    state: &State,
    n: &NodeStatus,
    w: usize,
    th: Theme,
) -> Vec<Line<'static>> {
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
        Span::styled(n.state.as_str(), state_style),
        Span::raw("  "),
        Span::styled(n.role.as_str(), role_style),
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
    let dot = format!(" {} ", th.g.dot);
    let mut line = vec![
        good_bad(n.healthy, "healthy", "unhealthy"),
        Span::raw(dot.clone()),
        good_bad(n.ready, "ready", "not ready"),
        Span::raw(dot.clone()),
        if n.draining {
            maybe_stale("draining", th.warn(), stale, th)
        } else {
            maybe_stale("in traffic", th.plain(), stale, th)
        },
        Span::raw(format!("{dot}values {} old", age(state.node_age(n)))),
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
    // The day is enough here: the certs check's reason gives the moment when it nears.
    if let Some(end) = &n.cert_expires {
        facts.push(format!("cert until {}", end.get(..10).unwrap_or(end)));
    }
    if !n.roles.is_empty() {
        facts.push(format!("roles {}", n.roles.join(",")));
    }
    for l in th.wrap(&facts.join(&dot), w) {
        out.push(Line::raw(l));
    }
    if n.local {
        out.extend(members_disagreement(state, w, th));
    }

    out.push(Line::raw(""));
    let name_w = n
        .checks
        .keys()
        .map(|k| width(k.as_str()))
        .max()
        .unwrap_or(5)
        .clamp(5, 12);
    // Room for the longest age with its "at least" mark.
    let for_w = 5 + width(th.g.at_least);
    out.push(heading(
        &format!(
            "{:<name_w$} {:<6} {:<for_w$} REASON",
            "CHECK", "VALUE", "FOR"
        ),
        th,
    ));
    if n.checks.is_empty() {
        out.push(Line::raw("(none reported)"));
    }
    let indent = name_w + 1 + 7 + for_w + 1;
    for (check, v) in &n.checks {
        let level = match v {
            CheckCode::Ok => Level::Ok,
            CheckCode::Off => Level::Dim,
            CheckCode::Drift | CheckCode::Warn => Level::Warn,
            CheckCode::Fail | CheckCode::Hung | CheckCode::Unknown => Level::Bad,
        };
        let since = state
            .check_since(&n.node, check)
            .map(|c| {
                let a = age(state.now().saturating_duration_since(c.since));
                if c.observed {
                    a
                } else {
                    format!("{}{a}", th.g.at_least)
                }
            })
            .unwrap_or_default();
        let mut value = maybe_stale(&th.fit(v.as_str(), 5), th.level(level), stale, th);
        value.content = format!("{:<6} ", value.content).into();
        let mut spans = vec![
            Span::raw(format!("{:<name_w$} ", th.fit(check.as_str(), name_w))),
            value,
            Span::raw(format!("{since:<for_w$} ")),
        ];
        let reason = n.check_reasons.get(check).map_or("", String::as_str);
        let mut wrapped = th
            .wrap(reason, w.saturating_sub(indent).max(10))
            .into_iter();
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

/// For the attached node: why it cannot vote, and how its `peers` disagree with the
/// agreed member set (nothing when they agree).
fn members_disagreement(state: &State, w: usize, th: Theme) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    let Some(m) = state.status().map(|s| &s.members).filter(|m| m.disagrees()) else {
        return out;
    };
    let label = |s: &str| Span::styled(format!("{s:<9}"), th.strong());
    if let Some(problem) = &m.problem {
        push_wrapped(&mut out, label("members"), problem, th.warn(), w, th);
    }
    let mut peers = Vec::new();
    if !m.only_in_peers.is_empty() {
        peers.push(format!("only in peers {}", m.only_in_peers.join(", ")));
    }
    if !m.not_in_peers.is_empty() {
        peers.push(format!("not in peers {}", m.not_in_peers.join(", ")));
    }
    if !peers.is_empty() {
        let set = if m.stamp.is_empty() {
            String::new()
        } else {
            format!(" {}", m.stamp)
        };
        let text = format!(
            "peers {} member set{set}: {}",
            th.g.differs,
            peers.join(&format!(" {} ", th.g.dot))
        );
        push_wrapped(&mut out, label("members"), &text, th.warn(), w, th);
    }
    out
}

/// Mounts with their sources, then drain, the load balancer's view, and versions.
pub(super) fn mounts_and_more(
    state: &State,
    n: &NodeStatus,
    w: usize,
    th: Theme,
) -> Vec<Line<'static>> {
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
            let mut status = maybe_stale(&th.fit(&m.status, 4), th.level(level), stale, th);
            status.content = format!("{:<5} ", status.content).into();
            let source = format!(
                "{} {}",
                m.source.as_deref().unwrap_or("?"),
                m.fstype.as_deref().unwrap_or("?"),
            );
            out.push(Line::from(vec![
                Span::raw(format!("{:<path_w$} ", th.fit_left(&m.path, path_w))),
                status,
                Span::raw(th.fit(&source, w.saturating_sub(path_w + 7))),
            ]));
            for l in th.wrap(&m.reason, w.saturating_sub(2).max(10)) {
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
            let text = format!(
                "{} {} by {} since {}{until}",
                d.reason, th.g.dot, d.by, d.since
            );
            push_wrapped(&mut out, label("drain"), &text, th.warn(), w, th);
        }
        None if n.draining => push_wrapped(&mut out, label("drain"), "draining", th.warn(), w, th),
        None => push_wrapped(&mut out, label("drain"), "not drained", th.plain(), w, th),
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
            push_wrapped(&mut out, label("balancer"), &text, style, w, th);
        }
        None => push_wrapped(&mut out, label("balancer"), "no report", th.plain(), w, th),
    }
    let skewed = state.version_skewed(n);
    let mut text = format!("app {}", n.version.app.as_deref().unwrap_or("-"));
    if let (true, Some(common)) = (skewed, state.common_app_version()) {
        text.push_str(&format!(" {} most nodes ({common})", th.g.differs));
    }
    text.push_str(&format!(" {} agent {}", th.g.dot, n.version.agent));
    let style = if skewed { th.warn() } else { th.plain() };
    push_wrapped(&mut out, label("version"), &text, style, w, th);
    out
}

/// `label` then `text`, wrapped under itself.
pub(super) fn push_wrapped(
    out: &mut Vec<Line<'static>>,
    label: Span<'static>,
    text: &str,
    style: Style,
    w: usize,
    th: Theme,
) {
    let indent = label.width();
    let mut lines = th.wrap(text, w.saturating_sub(indent).max(10)).into_iter();
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
pub(super) fn config_matrix(
    state: &State,
    n: &NodeStatus,
    w: usize,
    th: Theme,
) -> Vec<Line<'static>> {
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
            format!("{:>col_w$}", th.fit(name, col_w - 1)),
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
                '!' => th.bad(),
                g if g == th.g.differs_cell => th.bad(),
                _ => th.warn(),
            }
        };
        Span::styled(format!("{g:>col_w$}"), style)
    };
    let has = |list: &[String], node: &str| list.iter().any(|a| a == node);
    for set in &n.config {
        let mut row = vec![Span::styled(
            format!("{:<label_w$}", th.fit(&set_label(set), label_w - 1)),
            th.strong(),
        )];
        for other in &nodes {
            row.push(glyph(if *other == n.node {
                if set.status == "fail" { '!' } else { '=' }
            } else if has(&set.agrees_with, other) {
                '='
            } else if has(&set.differs_from, other) {
                th.g.differs_cell
            } else {
                '?'
            }));
        }
        out.push(Line::from(row));
        for f in &set.differing_files {
            let path = format!(" {}", th.fit_left(&f.path, label_w.saturating_sub(2)));
            let mut row = vec![Span::raw(format!("{path:<label_w$}"))];
            for other in &nodes {
                row.push(glyph(if has(&f.missing_on, other) {
                    th.g.missing_cell
                } else if *other == n.node || has(&f.agrees_with, other) {
                    '='
                } else if has(&f.differs_from, other) {
                    th.g.differs_cell
                } else {
                    '?'
                }));
            }
            out.push(Line::from(row));
        }
        if let Some(ack) = &set.acknowledged {
            out.push(Line::raw(th.fit(&format!(" acknowledged: {ack}"), w)));
        }
    }
    out.push(Line::styled(
        th.fit(
            &format!(
                "= same as {}  {} differs  {} missing  ? unknown",
                n.node, th.g.differs_cell, th.g.missing_cell
            ),
            w,
        ),
        th.stale(),
    ));
    out
}

/// CPU and load over the last minute, one character per sample.
pub(super) fn load_history(
    state: &State,
    n: &NodeStatus,
    w: usize,
    th: Theme,
) -> Vec<Line<'static>> {
    let spark_w = w.saturating_sub(12).clamp(1, crate::ui::state::HISTORY_LEN);
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
            Span::styled(
                format!("{:<spark_w$}", sparkline(&cpu, 1.0, th.g)),
                spark_style,
            ),
            Span::raw(format!(" {:>5}", now_text(pct(n.load.cpu)))),
        ]),
        Line::from(vec![
            Span::raw("load "),
            Span::styled(
                format!("{:<spark_w$}", sparkline(&load, top, th.g)),
                spark_style,
            ),
            Span::raw(format!(" {:>5}", now_text(num(n.load.load1)))),
        ]),
        Line::styled(
            th.fit(
                &format!(
                    "cpu 0{d}100%, load 0{d}{} {} '{}' no fresh value",
                    num(top),
                    th.g.dot,
                    th.g.spark_none,
                    d = th.g.dash
                ),
                w,
            ),
            th.stale(),
        ),
    ]
}

/// One character per sample, scaled to `top`; `·` where the value was stale.
pub(super) fn sparkline(samples: &[Option<f64>], top: f64, g: &Glyphs) -> String {
    samples
        .iter()
        .map(|s| match s {
            Some(v) if v.is_finite() && top > 0.0 => {
                let i = (v / top * 8.0).ceil().clamp(1.0, 8.0) as usize;
                g.spark[i - 1]
            }
            Some(_) => g.spark[0],
            None => g.spark_none,
        })
        .collect()
}
