//! The node table's columns, one descriptor each ([`COLUMNS`]): its title, alignment,
//! sort order, what its cell says about a node, and whether and how the terminal UI
//! and `quorate status` show it. Both tables are drawn from this list.
//!
//! Owns: every word a node table says about a node — the one-word summaries of health,
//! config and mounts, the order states and roles sort in — so that the terminal UI and
//! `quorate status` cannot word a column differently. Adding a column is one descriptor
//! here (plus the snapshots it changes).
//!
//! Must never: format a number for a surface (a cell says *which* number, as a
//! [`Datum`]; the terminal UI prints it in a few cells, `quorate status` in full), pick
//! a style or character of the screen, read a clock, or know the terminal UI's state.

use std::cmp::Ordering;
use std::time::Duration;

use proto::status::NodeStatus;
use proto::{CheckCode, CheckName, MemberState, Role};

/// Where a column's text sits in its cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// What a value means; the terminal UI picks the style for it, `quorate status`
/// ignores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Plain,
    Ok,
    Warn,
    Bad,
    Dim,
    Accent,
    /// A name that anchors the row.
    Strong,
}

/// The value a cell shows, before a surface formats it.
#[derive(Debug, Clone, PartialEq)]
pub enum Datum {
    Text(String),
    /// A fraction 0–1, shown as a percentage (and a bar on the screen when there is room).
    Share(f64),
    Number(f64),
    /// Milliseconds; `signed` shows `+` on positive values.
    Millis {
        ms: Option<f64>,
        signed: bool,
    },
    /// How long ago; `None` when not known.
    Age(Option<Duration>),
}

/// One cell: its value, what the value means, and a mark kept whole at the end when the
/// screen cuts the text.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    pub datum: Datum,
    pub level: Level,
    pub suffix: &'static str,
}

impl Value {
    fn new(datum: Datum, level: Level) -> Self {
        Self {
            datum,
            level,
            suffix: "",
        }
    }

    fn text(text: impl Into<String>, level: Level) -> Self {
        Self::new(Datum::Text(text.into()), level)
    }
}

/// What a cell may need beyond the node's own fields.
#[derive(Debug, Clone, Copy)]
pub struct Ctx {
    /// How old the node's values are; `None` when not known (the answering node in
    /// `quorate status`).
    pub age: Option<Duration>,
    /// Older than the screen trusts.
    pub late: bool,
    /// The node runs another app version than most nodes.
    pub skewed: bool,
    /// The mark for "differs from the other nodes" (`≠`, `!=`).
    pub differs: &'static str,
}

impl Ctx {
    /// For `quorate status`: what the node's own fields say, nothing judged.
    pub fn plain(n: &NodeStatus) -> Self {
        Self {
            age: n.last_seen_ms.map(Duration::from_millis),
            late: false,
            skewed: false,
            differs: "≠",
        }
    }
}

/// A column's sort order: `label` in the table's title, `cmp` first-shown first (ties
/// go by node name).
#[derive(Debug, Clone, Copy)]
pub struct Sort {
    pub label: &'static str,
    pub cmp: fn(&NodeStatus, &NodeStatus) -> Ordering,
}

/// Which values of a column go stale with the node's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stale {
    /// The node's values: dim, marked `?` (room for the mark is kept).
    Marked,
    /// The attached agent's own judgement: stale only with the whole snapshot.
    Snapshot,
    /// Dimmed without a mark (the node's name).
    Dimmed,
    /// Never: the column says how old things are.
    Never,
}

/// What the terminal UI needs to size columns: the rows shown and how wide text is.
#[derive(Debug, Clone, Copy)]
pub struct Room<'a> {
    /// Whether CPU and memory get bars.
    pub bars: bool,
    /// Display width of the "differs" mark.
    pub differs: usize,
    pub rows: &'a [&'a NodeStatus],
    /// Display width of a text.
    pub measure: fn(&str) -> usize,
}

impl Room<'_> {
    /// The widest `f` of the rows (`None` without rows).
    fn widest(&self, f: impl Fn(&NodeStatus) -> usize) -> Option<usize> {
        self.rows.iter().map(|n| f(n)).max()
    }
}

/// How the terminal UI shows a column.
#[derive(Debug, Clone, Copy)]
pub struct Screen {
    /// On a narrow screen the column with the highest rank goes first (0: the node).
    pub rank: u8,
    /// Room for the value, its stale mark and the sort mark in the title.
    pub width: fn(&Room<'_>) -> usize,
    /// Up to this many cells of room left over go to this column.
    pub grow: usize,
    pub stale: Stale,
}

/// One column of the node table. See the module doc.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub title: &'static str,
    pub align: Align,
    pub sort: Option<Sort>,
    pub cell: fn(&NodeStatus, &Ctx) -> Value,
    /// In the terminal UI's table.
    pub screen: Option<Screen>,
    /// In `quorate status`'s table.
    pub status: bool,
}

/// Width of the bar in a CPU or memory cell, when there is room for bars.
pub const BAR: usize = 5;

const fn fixed<const W: usize>(_: &Room<'_>) -> usize {
    W
}

fn share_width(r: &Room<'_>) -> usize {
    if r.bars { BAR + 5 } else { 5 }
}

/// Thresholds of a busy CPU or a full memory.
fn share_level(f: f64) -> Level {
    if f >= 0.9 {
        Level::Bad
    } else if f >= 0.7 {
        Level::Warn
    } else {
        Level::Plain
    }
}

/// The columns in display order.
pub static COLUMNS: [Column; 14] = [
    Column {
        title: "NODE",
        align: Align::Left,
        sort: Some(Sort {
            label: "node",
            cmp: |_, _| Ordering::Equal,
        }),
        cell: |n, _| Value::text(node_name(n), Level::Strong),
        screen: Some(Screen {
            rank: 0,
            width: |r| {
                r.widest(|n| (r.measure)(&n.node) + 1)
                    .unwrap_or(4)
                    .clamp(5, 16)
            },
            grow: 0,
            stale: Stale::Dimmed,
        }),
        status: true,
    },
    Column {
        title: "STATE",
        align: Align::Left,
        sort: Some(Sort {
            label: "state",
            cmp: |a, b| state_rank(a.state).cmp(&state_rank(b.state)),
        }),
        cell: |n, _| {
            let level = match n.state {
                MemberState::Alive => Level::Ok,
                MemberState::Suspect => Level::Warn,
                MemberState::Dead => Level::Bad,
                MemberState::Left | MemberState::Unknown => Level::Dim,
            };
            Value::text(n.state.as_str(), level)
        },
        screen: Some(Screen {
            rank: 1,
            width: fixed::<7>,
            grow: 0,
            stale: Stale::Snapshot,
        }),
        status: true,
    },
    Column {
        title: "ROLE",
        align: Align::Left,
        sort: Some(Sort {
            label: "role",
            cmp: |a, b| role_rank(a.role).cmp(&role_rank(b.role)),
        }),
        cell: |n, _| {
            let level = if n.role == Role::Primary {
                Level::Accent
            } else {
                Level::Plain
            };
            Value::text(n.role.as_str(), level)
        },
        screen: Some(Screen {
            rank: 2,
            width: fixed::<10>,
            grow: 0,
            stale: Stale::Marked,
        }),
        status: true,
    },
    Column {
        title: "HEALTH",
        align: Align::Left,
        sort: Some(Sort {
            label: "health (worst first)",
            cmp: |a, b| health(a).kind.cmp(&health(b).kind),
        }),
        cell: |n, _| {
            let h = health(n);
            let level = match h.kind {
                HealthKind::Ok => Level::Ok,
                HealthKind::Draining | HealthKind::Unready => Level::Warn,
                HealthKind::Fail => Level::Bad,
            };
            Value::text(h.text, level)
        },
        // Room left over goes here, for more of the failing checks' names.
        screen: Some(Screen {
            rank: 3,
            width: fixed::<12>,
            grow: 12,
            stale: Stale::Marked,
        }),
        status: true,
    },
    Column {
        title: "CPU",
        align: Align::Right,
        sort: Some(Sort {
            label: "cpu (busiest first)",
            cmp: |a, b| desc(a, b, |n| Some(n.load.cpu)),
        }),
        cell: |n, _| Value::new(Datum::Share(n.load.cpu), share_level(n.load.cpu)),
        screen: Some(Screen {
            rank: 5,
            width: share_width,
            grow: 0,
            stale: Stale::Marked,
        }),
        status: true,
    },
    Column {
        title: "MEM",
        align: Align::Right,
        sort: Some(Sort {
            label: "mem (fullest first)",
            cmp: |a, b| desc(a, b, |n| Some(n.load.mem)),
        }),
        cell: |n, _| Value::new(Datum::Share(n.load.mem), share_level(n.load.mem)),
        screen: Some(Screen {
            rank: 6,
            width: share_width,
            grow: 0,
            stale: Stale::Marked,
        }),
        status: true,
    },
    Column {
        title: "LOAD",
        align: Align::Right,
        sort: Some(Sort {
            label: "load (busiest first)",
            cmp: |a, b| desc(a, b, |n| Some(n.load.load1)),
        }),
        cell: |n, _| Value::new(Datum::Number(n.load.load1), Level::Plain),
        screen: Some(Screen {
            rank: 7,
            width: fixed::<5>,
            grow: 0,
            stale: Stale::Marked,
        }),
        status: true,
    },
    Column {
        title: "RTT",
        align: Align::Right,
        sort: Some(Sort {
            label: "rtt (slowest first)",
            cmp: |a, b| desc(a, b, |n| n.rtt_ms),
        }),
        cell: |n, _| {
            let level = if n.rtt_ms.is_some_and(|r| r > 100.0) {
                Level::Warn
            } else {
                Level::Plain
            };
            let ms = n.rtt_ms;
            Value::new(Datum::Millis { ms, signed: false }, level)
        },
        screen: Some(Screen {
            rank: 10,
            width: fixed::<6>,
            grow: 0,
            stale: Stale::Marked,
        }),
        status: true,
    },
    Column {
        title: "OFFSET",
        align: Align::Right,
        sort: Some(Sort {
            label: "clock offset (largest first)",
            cmp: |a, b| desc(a, b, |n| n.clock_offset_ms.map(f64::abs)),
        }),
        cell: |n, _| {
            let off = n.clock_offset_ms.map(f64::abs);
            let level = if off.is_some_and(|o| o > 500.0) {
                Level::Bad
            } else if off.is_some_and(|o| o > 100.0) {
                Level::Warn
            } else {
                Level::Plain
            };
            let ms = n.clock_offset_ms;
            Value::new(Datum::Millis { ms, signed: true }, level)
        },
        screen: Some(Screen {
            rank: 12,
            width: fixed::<7>,
            grow: 0,
            stale: Stale::Marked,
        }),
        status: true,
    },
    Column {
        title: "CONFIG",
        align: Align::Left,
        sort: None,
        cell: |n, ctx| match config_summary(n) {
            ConfigSummary::None => Value::text("-", Level::Plain),
            ConfigSummary::Ok => Value::text("ok", Level::Ok),
            ConfigSummary::Drift {
                nodes,
                acked: false,
                ..
            } => Value::text(format!("drift{}{nodes}", ctx.differs), Level::Warn),
            ConfigSummary::Drift {
                nodes, acked: true, ..
            } => Value::text(format!("ack{}{nodes}", ctx.differs), Level::Plain),
            ConfigSummary::Fail => Value::text("fail", Level::Bad),
        },
        screen: Some(Screen {
            rank: 8,
            width: |r| 7 + r.differs,
            grow: 0,
            stale: Stale::Marked,
        }),
        status: false,
    },
    Column {
        title: "MOUNT",
        align: Align::Left,
        sort: None,
        cell: |n, _| {
            let (text, level) = match mount_summary(n) {
                MountSummary::None => ("-", Level::Plain),
                MountSummary::Ok => ("ok", Level::Ok),
                MountSummary::Fail => ("fail", Level::Bad),
                MountSummary::Hung => ("hung", Level::Bad),
            };
            Value::text(text, level)
        },
        screen: Some(Screen {
            rank: 9,
            width: fixed::<5>,
            grow: 0,
            stale: Stale::Marked,
        }),
        status: false,
    },
    Column {
        title: "VERSION",
        align: Align::Left,
        sort: None,
        cell: |n, ctx| {
            let app = n.version.app.as_deref().unwrap_or("-");
            if ctx.skewed {
                Value {
                    suffix: ctx.differs,
                    ..Value::text(app, Level::Warn)
                }
            } else {
                Value::text(app, Level::Plain)
            }
        },
        screen: Some(Screen {
            rank: 11,
            width: |r| {
                r.widest(|n| (r.measure)(n.version.app.as_deref().unwrap_or("-")) + 1 + r.differs)
                    .unwrap_or(7)
                    .clamp(7, 12)
            },
            grow: 0,
            stale: Stale::Marked,
        }),
        status: false,
    },
    Column {
        title: "SEEN",
        align: Align::Right,
        sort: Some(Sort {
            label: "last seen (oldest first)",
            // The snapshot's own age is the same for every node.
            cmp: |a, b| {
                let seen = |n: &NodeStatus| n.last_seen_ms.unwrap_or(0);
                seen(b).cmp(&seen(a))
            },
        }),
        cell: |_, ctx| {
            let level = if ctx.late { Level::Warn } else { Level::Plain };
            Value::new(Datum::Age(ctx.age), level)
        },
        screen: Some(Screen {
            rank: 4,
            width: fixed::<5>,
            grow: 0,
            stale: Stale::Never,
        }),
        status: true,
    },
    Column {
        title: "ADDR",
        align: Align::Left,
        sort: None,
        cell: |n, _| Value::text(n.addr.clone(), Level::Plain),
        screen: None,
        status: true,
    },
];

/// A column the node table can be sorted by (`s` cycles through them in display
/// order); the node's name by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SortKey(usize);

impl SortKey {
    /// Every sort key, in display order.
    pub fn all() -> impl Iterator<Item = Self> {
        (0..COLUMNS.len())
            .filter(|i| COLUMNS[*i].sort.is_some())
            .map(Self)
    }

    /// The sort key of the column titled `title`, if it sorts.
    #[cfg(test)]
    pub fn of(title: &str) -> Option<Self> {
        Self::all().find(|k| k.column().title == title)
    }

    pub fn column(self) -> &'static Column {
        &COLUMNS[self.0]
    }

    pub fn next(self) -> Self {
        let all: Vec<Self> = Self::all().collect();
        let i = all.iter().position(|k| *k == self).unwrap_or(0);
        all[(i + 1) % all.len()]
    }

    pub fn prev(self) -> Self {
        let all: Vec<Self> = Self::all().collect();
        let i = all.iter().position(|k| *k == self).unwrap_or(0);
        all[(i + all.len() - 1) % all.len()]
    }

    pub fn label(self) -> &'static str {
        self.column().sort.map_or("", |s| s.label)
    }

    /// `a` before `b`, by this column (ties: `Equal`).
    pub fn compare(self, a: &NodeStatus, b: &NodeStatus) -> Ordering {
        self.column()
            .sort
            .map_or(Ordering::Equal, |s| (s.cmp)(a, b))
    }
}

/// The node's name, `*` after the answering node's.
pub fn node_name(n: &NodeStatus) -> String {
    if n.local {
        format!("{}*", n.node)
    } else {
        n.node.clone()
    }
}

/// A node's health in one word, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum HealthKind {
    Fail,
    Draining,
    Unready,
    Ok,
}

/// The health column: a kind and its words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub kind: HealthKind,
    pub text: String,
}

/// `ok`; `draining` (an operator took it out); `unready` (healthy but not yet ready);
/// `fail:app,mounts` (the checks that fail or hang), worst first: a failing node says
/// so even when drained. `+drift` is added when a config check reports drift, `+certs`
/// when the node's certificate ends within 30 days or has ended (a warning: the node
/// stays `ok`).
pub fn health(n: &NodeStatus) -> Health {
    let (kind, mut text) = if !n.healthy {
        let bad: Vec<&str> = n
            .checks
            .iter()
            .filter(|(_, v)| matches!(v.as_str(), "fail" | "hung"))
            .map(|(k, _)| k.as_str())
            .collect();
        let text = if bad.is_empty() {
            "fail".to_string()
        } else {
            format!("fail:{}", bad.join(","))
        };
        (HealthKind::Fail, text)
    } else if n.draining {
        (HealthKind::Draining, "draining".to_string())
    } else if !n.ready {
        (HealthKind::Unready, "unready".to_string())
    } else {
        (HealthKind::Ok, "ok".to_string())
    };
    if n.checks.values().any(|v| v == "drift") {
        text.push_str("+drift");
    }
    // A failing node already lists an expired certificate among its failing checks.
    match n.checks.get(&CheckName::Certs) {
        Some(CheckCode::Warn) => text.push_str("+certs"),
        Some(c) if c.failing() && kind != HealthKind::Fail => text.push_str("+certs"),
        _ => {}
    }
    Health { kind, text }
}

/// The config column: agreement of all of a node's config sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSummary {
    /// The node watches no config set.
    None,
    Ok,
    /// Some set drifts: it differs from `nodes` nodes (the most of any set; the odd node
    /// out has the highest count), in `files` files; `acked` when every drifting set is
    /// acknowledged.
    Drift {
        nodes: usize,
        files: usize,
        acked: bool,
    },
    /// Some set cannot be hashed.
    Fail,
}

pub fn config_summary(n: &NodeStatus) -> ConfigSummary {
    if n.config.is_empty() {
        return ConfigSummary::None;
    }
    if n.config.iter().any(|c| c.status == "fail") {
        return ConfigSummary::Fail;
    }
    // The agent marks a set `drift` on every node that differs from some peer; an agent
    // too old to say leaves `status` empty, and then any disagreement counts.
    let drifting: Vec<_> = n
        .config
        .iter()
        .filter(|c| c.status == "drift" || (c.status.is_empty() && !c.differs_from.is_empty()))
        .collect();
    if drifting.is_empty() {
        return ConfigSummary::Ok;
    }
    ConfigSummary::Drift {
        nodes: drifting
            .iter()
            .map(|c| c.differs_from.len())
            .max()
            .unwrap_or(0),
        files: drifting.iter().map(|c| c.differing_files.len()).sum(),
        acked: drifting.iter().all(|c| c.acknowledged.is_some()),
    }
}

/// The mounts column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountSummary {
    None,
    Ok,
    Fail,
    /// Hung beats fail: a hung mount blocks whoever touches it.
    Hung,
}

pub fn mount_summary(n: &NodeStatus) -> MountSummary {
    if n.mounts.is_empty() {
        MountSummary::None
    } else if n.mounts.iter().any(|m| m.status == "hung") {
        MountSummary::Hung
    } else if n.mounts.iter().any(|m| m.status != "ok") {
        MountSummary::Fail
    } else {
        MountSummary::Ok
    }
}

fn state_rank(state: MemberState) -> u8 {
    match state {
        MemberState::Alive => 0,
        MemberState::Suspect => 1,
        MemberState::Dead => 2,
        MemberState::Left => 3,
        MemberState::Unknown => 4,
    }
}

fn role_rank(role: Role) -> u8 {
    match role {
        Role::Primary => 0,
        Role::Candidate => 1,
        Role::Secondary => 2,
        Role::Witness => 3,
        Role::Unknown => 4,
    }
}

/// Biggest first; missing or NaN values last.
fn desc(a: &NodeStatus, b: &NodeStatus, f: fn(&NodeStatus) -> Option<f64>) -> Ordering {
    let metric = |x: Option<f64>| match x {
        Some(v) if !v.is_nan() => v,
        _ => f64::NEG_INFINITY,
    };
    metric(f(b)).total_cmp(&metric(f(a)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_unique_and_every_sortable_column_cycles() {
        for (i, c) in COLUMNS.iter().enumerate() {
            assert!(
                COLUMNS[..i].iter().all(|o| o.title != c.title),
                "{}",
                c.title
            );
        }
        let mut ranks: Vec<u8> = COLUMNS
            .iter()
            .filter_map(|c| c.screen)
            .map(|s| s.rank)
            .collect();
        ranks.sort_unstable();
        ranks.dedup();
        assert_eq!(
            ranks.len(),
            COLUMNS.iter().filter(|c| c.screen.is_some()).count()
        );
        assert_eq!(SortKey::default().column().title, "NODE");
        assert_eq!(
            SortKey::of("SEEN").map(SortKey::next),
            Some(SortKey::default())
        );
        assert_eq!(SortKey::of("CONFIG"), None);
    }

    #[test]
    fn a_certificate_warning_is_flagged_without_failing_the_node() {
        let mut n = crate::ui::fixtures::node(1);
        let mut with = |code: &str, healthy: bool| {
            n.checks.insert(CheckName::Certs, CheckCode::from(code));
            n.healthy = healthy;
            let h = health(&n);
            (h.kind, h.text)
        };
        assert_eq!(with("ok", true), (HealthKind::Ok, "ok".into()));
        assert_eq!(with("warn", true), (HealthKind::Ok, "ok+certs".into()));
        assert_eq!(with("fail", true), (HealthKind::Ok, "ok+certs".into()));
        // An unhealthy node lists an expired certificate with its failing checks.
        assert_eq!(with("fail", false), (HealthKind::Fail, "fail:certs".into()));
        assert_eq!(with("warn", false), (HealthKind::Fail, "fail+certs".into()));
    }
}
