//! What the screen shows, folded from what the connection layer hands in: the last
//! [`ClusterStatus`] snapshot and when it came, each node's recent load (for the
//! sparklines), when each check last changed value, a bounded event log, the connection's
//! status and the last command's answer.
//!
//! Owns: every rule about *meaning* — sorting, filtering, staleness, the one-word
//! summaries of health, config and mounts, version skew.
//!
//! Must never: do IO, read a clock (time comes in as `now: Instant`), know about keys or
//! ratatui types, or panic on anything an agent sends (empty node lists, NaN loads,
//! `u64::MAX` ages, unicode names). tokio-console couples its state to its view; this
//! one is plain data so that the view and the tests read the same thing.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use proto::ctl::EventRecord;
use proto::status::{ClusterStatus, NodeStatus};

/// A snapshot or a node's values older than this are shown as stale. Snapshots come at
/// least every 2 s (`SNAPSHOT_MAX_INTERVAL_MS`) and heartbeats every 250 ms, so 3 s of
/// silence means something is wrong, not slow.
pub const STALE_AFTER: Duration = Duration::from_secs(3);
/// Load samples kept per node: one minute at one sample per [`HISTORY_EVERY`].
pub const HISTORY_LEN: usize = 60;
/// Snapshots can come every 250 ms; sampling at most this often keeps the sparkline's
/// time axis steady whatever the snapshot rate.
pub const HISTORY_EVERY: Duration = Duration::from_secs(1);
/// Events kept for the log pane; the agent keeps the full journal (`quorate events`).
pub const EVENT_LOG_LEN: usize = 500;

/// Where the connection layer is, as it tells the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnStatus {
    /// Trying `to` (an address or node name) for the first time.
    Connecting { to: String },
    /// Subscribed to `to` since `since`.
    Connected { to: String, since: Instant },
    /// `last` went away with `error`; attempt number `attempt` (1-based) to reach a
    /// member starts at `retry_at`. An instant rather than a duration so that the header
    /// counts down between reports.
    Reconnecting {
        last: String,
        attempt: u32,
        retry_at: Instant,
        error: String,
    },
}

/// One load sample of one node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadSample {
    pub cpu: f64,
    pub load1: f64,
}

/// A node's load over the last minute, oldest first. `None` marks a sample taken while
/// the node's values were stale: a gap, not a zero.
#[derive(Debug, Clone, Default)]
pub struct History {
    last_at: Option<Instant>,
    samples: VecDeque<Option<LoadSample>>,
}

impl History {
    pub fn samples(&self) -> impl ExactSizeIterator<Item = Option<LoadSample>> + '_ {
        self.samples.iter().copied()
    }
}

/// Since when a check has had its current value, as far as this TUI has seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSince {
    value: String,
    /// When the value was first seen.
    pub since: Instant,
    /// Whether the change itself was seen; if not, the value is at least this old.
    pub observed: bool,
}

/// The agent's answer to the last command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub at: Instant,
    pub result: Result<String, String>,
}

/// The columns the node table can be sorted by (`s` cycles through them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    #[default]
    Node,
    State,
    Role,
    Health,
    Cpu,
    Mem,
    Load,
    Rtt,
    Offset,
    Seen,
}

impl SortKey {
    const ALL: [Self; 10] = [
        Self::Node,
        Self::State,
        Self::Role,
        Self::Health,
        Self::Cpu,
        Self::Mem,
        Self::Load,
        Self::Rtt,
        Self::Offset,
        Self::Seen,
    ];

    pub fn next(self) -> Self {
        let i = Self::ALL.iter().position(|k| *k == self).unwrap_or(0);
        Self::ALL[(i + 1) % Self::ALL.len()]
    }

    pub fn prev(self) -> Self {
        let i = Self::ALL.iter().position(|k| *k == self).unwrap_or(0);
        Self::ALL[(i + Self::ALL.len() - 1) % Self::ALL.len()]
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Node => "node",
            Self::State => "state",
            Self::Role => "role",
            Self::Health => "health (worst first)",
            Self::Cpu => "cpu (busiest first)",
            Self::Mem => "mem (fullest first)",
            Self::Load => "load (busiest first)",
            Self::Rtt => "rtt (slowest first)",
            Self::Offset => "clock offset (largest first)",
            Self::Seen => "last seen (oldest first)",
        }
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

/// The health column: a kind and a short text (`fail app,mounts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub kind: HealthKind,
    pub text: String,
}

/// Checks that fail right now: `fail` or `hung` (drift has its own column).
fn failing_checks(n: &NodeStatus) -> impl Iterator<Item = (&str, &str)> {
    n.checks
        .iter()
        .filter(|(_, v)| matches!(v.as_str(), "fail" | "hung"))
        .map(|(k, v)| (k.as_str(), v.as_str()))
}

pub fn health(n: &NodeStatus) -> Health {
    if !n.healthy {
        let bad: Vec<&str> = failing_checks(n).map(|(k, _)| k).collect();
        let text = if bad.is_empty() {
            "fail".to_string()
        } else {
            format!("fail {}", bad.join(","))
        };
        return Health {
            kind: HealthKind::Fail,
            text,
        };
    }
    let (kind, text) = if n.draining {
        (HealthKind::Draining, "draining")
    } else if !n.ready {
        (HealthKind::Unready, "unready")
    } else {
        (HealthKind::Ok, "ok")
    };
    Health {
        kind,
        text: text.to_string(),
    }
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

fn state_rank(state: &str) -> u8 {
    match state {
        "alive" => 0,
        "suspect" => 1,
        "dead" => 2,
        "left" => 3,
        _ => 4,
    }
}

fn role_rank(role: &str) -> u8 {
    match role {
        "primary" => 0,
        "candidate" => 1,
        "secondary" => 2,
        "witness" => 3,
        _ => 4,
    }
}

/// A number to sort by, biggest first; missing or NaN values sort last.
fn metric(x: Option<f64>) -> f64 {
    match x {
        Some(v) if !v.is_nan() => v,
        _ => f64::NEG_INFINITY,
    }
}

/// Whether `n` matches every whitespace-separated term of `filter` (case-insensitive) in
/// its name, address, state, role, health or app version. `/fail` finds failing nodes.
pub fn matches(n: &NodeStatus, filter: &str) -> bool {
    let fields = [
        n.node.to_lowercase(),
        n.addr.to_lowercase(),
        n.state.as_str().to_lowercase(),
        n.role.as_str().to_lowercase(),
        health(n).text,
        n.version.app.as_deref().unwrap_or("").to_lowercase(),
    ];
    filter
        .split_whitespace()
        .map(str::to_lowercase)
        .all(|term| fields.iter().any(|f| f.contains(&term)))
}

/// Everything the screen shows. See the module doc.
#[derive(Debug, Clone)]
pub struct State {
    now: Instant,
    conn: ConnStatus,
    status: Option<ClusterStatus>,
    snapshot_at: Option<Instant>,
    history: BTreeMap<String, History>,
    checks_since: HashMap<(String, String), CheckSince>,
    events: VecDeque<EventRecord>,
    /// The agent whose journal the event log shows.
    journal_of: Option<String>,
    outcome: Option<Outcome>,
    outcomes: u64,
}

impl State {
    pub fn new(now: Instant, conn: ConnStatus) -> Self {
        Self {
            now,
            conn,
            status: None,
            snapshot_at: None,
            history: BTreeMap::new(),
            checks_since: HashMap::new(),
            events: VecDeque::new(),
            journal_of: None,
            outcome: None,
            outcomes: 0,
        }
    }

    /// A fresh view of the cluster arrived at `now`.
    pub fn on_snapshot(&mut self, now: Instant, status: ClusterStatus) {
        self.tick(now);
        self.snapshot_at = Some(now);

        self.history
            .retain(|name, _| status.nodes.iter().any(|n| &n.node == name));
        for n in &status.nodes {
            let stale = n.state != "alive" || seen_age(n, Duration::ZERO) > STALE_AFTER;
            let h = self.history.entry(n.node.clone()).or_default();
            if h.last_at
                .is_some_and(|t| now.saturating_duration_since(t) < HISTORY_EVERY)
            {
                continue;
            }
            h.last_at = Some(now);
            h.samples.push_back((!stale).then_some(LoadSample {
                cpu: n.load.cpu,
                load1: n.load.load1,
            }));
            while h.samples.len() > HISTORY_LEN {
                h.samples.pop_front();
            }
        }

        let mut seen = HashMap::with_capacity(self.checks_since.len());
        for n in &status.nodes {
            for (check, value) in &n.checks {
                let key = (n.node.clone(), check.clone());
                let entry = match self.checks_since.remove(&key) {
                    Some(old) if old.value == *value => old,
                    Some(_) => CheckSince {
                        value: value.clone(),
                        since: now,
                        observed: true,
                    },
                    // First sight: the value may be much older than this TUI.
                    None => CheckSince {
                        value: value.clone(),
                        since: now,
                        observed: false,
                    },
                };
                seen.insert(key, entry);
            }
        }
        self.checks_since = seen;
        self.status = Some(status);
    }

    /// One thing happened. Duplicates (same recorder and sequence number, as after a
    /// reconnect that replays history) are dropped; the log stays in time order and
    /// keeps the newest [`EVENT_LOG_LEN`].
    pub fn on_event(&mut self, event: EventRecord) {
        if self
            .events
            .iter()
            .any(|e| e.seq == event.seq && e.recorded_by == event.recorded_by)
        {
            return;
        }
        let at = self
            .events
            .iter()
            .rposition(|e| e.at_micros <= event.at_micros)
            .map_or(0, |i| i + 1);
        self.events.insert(at, event);
        while self.events.len() > EVENT_LOG_LEN {
            self.events.pop_front();
        }
    }

    /// The connection changed. Attaching to another agent starts the event log afresh:
    /// the log is the attached agent's journal, and another agent recorded the same
    /// happenings under its own numbers, so keeping both would show everything twice.
    pub fn on_connection(&mut self, conn: ConnStatus) {
        if let ConnStatus::Connected { to, .. } = &conn
            && self.journal_of.as_ref() != Some(to)
        {
            self.events.clear();
            self.journal_of = Some(to.clone());
        }
        self.conn = conn;
    }

    /// The agent answered the last command (`Ok`: what it did; `Err`: why not).
    pub fn on_command_result(&mut self, result: Result<String, String>) {
        self.outcome = Some(Outcome {
            at: self.now,
            result,
        });
        self.outcomes += 1;
    }

    /// Time passes; ages on screen grow from here.
    pub fn tick(&mut self, now: Instant) {
        // Never backwards, so that ages never shrink if two callers race.
        self.now = self.now.max(now);
    }

    pub fn now(&self) -> Instant {
        self.now
    }

    pub fn conn(&self) -> &ConnStatus {
        &self.conn
    }

    pub fn status(&self) -> Option<&ClusterStatus> {
        self.status.as_ref()
    }

    pub fn events(&self) -> &VecDeque<EventRecord> {
        &self.events
    }

    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// How many command results have come in; the app uses it to know whether its own
    /// notice is newer than the last result.
    pub fn outcomes(&self) -> u64 {
        self.outcomes
    }

    pub fn history(&self, node: &str) -> Option<&History> {
        self.history.get(node)
    }

    pub fn check_since(&self, node: &str, check: &str) -> Option<&CheckSince> {
        self.checks_since
            .get(&(node.to_string(), check.to_string()))
    }

    /// How old the last snapshot is (`None` before the first).
    pub fn snapshot_age(&self) -> Option<Duration> {
        self.snapshot_at
            .map(|t| self.now.saturating_duration_since(t))
    }

    /// No snapshot yet, or the last one is too old to trust.
    pub fn snapshot_stale(&self) -> bool {
        self.snapshot_age().is_none_or(|a| a > STALE_AFTER)
    }

    /// How old `n`'s values are now: its heartbeat age in the snapshot plus the snapshot's
    /// own age.
    pub fn node_age(&self, n: &NodeStatus) -> Duration {
        seen_age(n, self.snapshot_age().unwrap_or(Duration::MAX))
    }

    /// Whether `n`'s values must be shown as stale: it is not alive, its last heartbeat
    /// is old, or the whole snapshot is.
    pub fn node_stale(&self, n: &NodeStatus) -> bool {
        n.state != "alive" || self.node_age(n) > STALE_AFTER || self.snapshot_stale()
    }

    /// The node rows to show: those matching `filter`, sorted by `sort` (ties by name).
    pub fn rows(&self, sort: SortKey, filter: &str) -> Vec<&NodeStatus> {
        let Some(status) = &self.status else {
            return Vec::new();
        };
        let mut rows: Vec<&NodeStatus> =
            status.nodes.iter().filter(|n| matches(n, filter)).collect();
        rows.sort_by(|a, b| self.compare(sort, a, b).then_with(|| a.node.cmp(&b.node)));
        rows
    }

    fn compare(&self, sort: SortKey, a: &NodeStatus, b: &NodeStatus) -> Ordering {
        let desc = |f: fn(&NodeStatus) -> Option<f64>| metric(f(b)).total_cmp(&metric(f(a)));
        match sort {
            SortKey::Node => Ordering::Equal,
            SortKey::State => state_rank(a.state.as_str()).cmp(&state_rank(b.state.as_str())),
            SortKey::Role => role_rank(a.role.as_str()).cmp(&role_rank(b.role.as_str())),
            SortKey::Health => health(a).kind.cmp(&health(b).kind),
            SortKey::Cpu => desc(|n| Some(n.load.cpu)),
            SortKey::Mem => desc(|n| Some(n.load.mem)),
            SortKey::Load => desc(|n| Some(n.load.load1)),
            SortKey::Rtt => desc(|n| n.rtt_ms),
            SortKey::Offset => desc(|n| n.clock_offset_ms.map(f64::abs)),
            SortKey::Seen => self.node_age(b).cmp(&self.node_age(a)),
        }
    }

    /// The app version most nodes run (ties: the greatest string), if any node reports one.
    pub fn common_app_version(&self) -> Option<&str> {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for n in self.status.iter().flat_map(|s| &s.nodes) {
            if let Some(v) = &n.version.app {
                *counts.entry(v.as_str()).or_default() += 1;
            }
        }
        counts.into_iter().max_by_key(|(_, c)| *c).map(|(v, _)| v)
    }

    /// Whether `n` runs another app version than most nodes.
    pub fn version_skewed(&self, n: &NodeStatus) -> bool {
        match (&n.version.app, self.common_app_version()) {
            (Some(mine), Some(common)) => mine != common,
            _ => false,
        }
    }

    /// Voters seen alive (the attached node counts itself) and the voter count.
    pub fn quorum_counts(&self) -> Option<(usize, usize)> {
        let s = self.status.as_ref()?;
        Some((crate::table::alive_voters(s), s.voters))
    }
}

/// `n`'s heartbeat age plus `extra`; the answering node itself has no heartbeat age.
fn seen_age(n: &NodeStatus, extra: Duration) -> Duration {
    Duration::from_millis(n.last_seen_ms.unwrap_or(0)).saturating_add(extra)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::ui::fixtures::{self, event, t0};

    fn names(rows: &[&NodeStatus]) -> Vec<String> {
        rows.iter().map(|n| n.node.clone()).collect()
    }

    fn state_with(status: ClusterStatus) -> State {
        let mut s = State::new(t0(), ConnStatus::Connecting { to: "n1".into() });
        s.on_snapshot(t0(), status);
        s
    }

    #[test]
    fn sorts_by_each_key_with_name_as_tie_break() {
        let mut status = fixtures::healthy();
        status.nodes.reverse();
        status.nodes[0].load.cpu = 0.9; // n3
        status.nodes[2].load.cpu = f64::NAN; // n1
        let s = state_with(status);
        assert_eq!(names(&s.rows(SortKey::Node, "")), ["n1", "n2", "n3"]);
        assert_eq!(names(&s.rows(SortKey::Cpu, "")), ["n3", "n2", "n1"]);
        assert_eq!(names(&s.rows(SortKey::Role, "")), ["n1", "n2", "n3"]);

        let s = state_with(fixtures::failover());
        // n1 is dead: last by state, first by age.
        assert_eq!(names(&s.rows(SortKey::State, "")), ["n2", "n3", "n1"]);
        assert_eq!(names(&s.rows(SortKey::Seen, ""))[0], "n1");
        assert_eq!(names(&s.rows(SortKey::Role, ""))[0], "n2"); // the candidate
    }

    #[test]
    fn sort_keys_cycle_both_ways() {
        let mut k = SortKey::default();
        for _ in 0..SortKey::ALL.len() {
            assert_eq!(k.next().prev(), k);
            k = k.next();
        }
        assert_eq!(k, SortKey::Node);
    }

    #[test]
    fn filters_on_every_term_case_insensitively() {
        let s = state_with(fixtures::hung_mount());
        assert_eq!(names(&s.rows(SortKey::Node, "N2")), ["n2"]);
        assert_eq!(names(&s.rows(SortKey::Node, "fail")), ["n2"]);
        assert_eq!(
            names(&s.rows(SortKey::Node, "alive secondary")),
            ["n2", "n3"]
        );
        assert_eq!(names(&s.rows(SortKey::Node, "10.0.0.3")), ["n3"]);
        assert!(s.rows(SortKey::Node, "nothing-like-this").is_empty());
        assert_eq!(s.rows(SortKey::Node, "   ").len(), 3);
    }

    #[test]
    fn staleness_of_snapshot_and_nodes() {
        let mut s = state_with(fixtures::failover());
        let n = |s: &State, name: &str| {
            s.status()
                .unwrap()
                .nodes
                .iter()
                .find(|n| n.node == name)
                .cloned()
                .unwrap()
        };
        assert!(!s.snapshot_stale());
        assert!(s.node_stale(&n(&s, "n1")), "dead is stale");
        assert!(!s.node_stale(&n(&s, "n2")));

        // n3 was seen 200 ms before the snapshot; 2.9 s later it is 3.1 s old.
        s.tick(t0() + Duration::from_millis(2_900));
        assert!(!s.snapshot_stale());
        assert!(s.node_stale(&n(&s, "n3")));
        assert!(
            !s.node_stale(&n(&s, "n2")),
            "the answering node has no heartbeat age"
        );

        s.tick(t0() + Duration::from_secs(4));
        assert!(s.snapshot_stale());
        assert!(s.node_stale(&n(&s, "n2")));

        // A new snapshot makes everything fresh again; time never runs backwards.
        s.on_snapshot(t0() + Duration::from_secs(5), fixtures::failover());
        s.tick(t0());
        assert_eq!(s.snapshot_age(), Some(Duration::ZERO));
        assert!(!s.snapshot_stale());
    }

    #[test]
    fn no_snapshot_is_stale_and_has_no_rows() {
        let s = State::new(t0(), ConnStatus::Connecting { to: "x".into() });
        assert!(s.snapshot_stale());
        assert!(s.rows(SortKey::Cpu, "").is_empty());
        assert_eq!(s.quorum_counts(), None);
        assert_eq!(s.common_app_version(), None);
    }

    #[test]
    fn history_is_sampled_once_a_second_bounded_and_pruned() {
        let mut s = State::new(t0(), ConnStatus::Connecting { to: "n1".into() });
        for i in 0..200u64 {
            // Four snapshots a second: only one sample each second.
            s.on_snapshot(t0() + Duration::from_millis(250 * i), fixtures::healthy());
        }
        let h = s.history("n1").unwrap();
        assert_eq!(h.samples().len(), 50);
        for i in 200..600u64 {
            s.on_snapshot(t0() + Duration::from_millis(250 * i), fixtures::healthy());
        }
        assert_eq!(s.history("n1").unwrap().samples().len(), HISTORY_LEN);

        // Stale samples are gaps; a node that leaves the view takes its history along.
        s.on_snapshot(t0() + Duration::from_secs(1_000), fixtures::failover());
        assert_eq!(s.history("n1").unwrap().samples().last(), Some(None));
        let mut two = fixtures::healthy();
        two.nodes.retain(|n| n.node != "n3");
        s.on_snapshot(t0() + Duration::from_secs(1_001), two);
        assert!(s.history("n3").is_none());
    }

    #[test]
    fn event_ring_is_bounded_ordered_and_deduplicated() {
        let mut s = State::new(t0(), ConnStatus::Connecting { to: "n1".into() });
        for i in 0..(EVENT_LOG_LEN as u64 + 20) {
            s.on_event(event(i, i * 1_000, "tick"));
        }
        assert_eq!(s.events().len(), EVENT_LOG_LEN);
        assert_eq!(s.events().front().unwrap().seq, 20);
        // A replayed event is dropped; a late one goes where its time says.
        s.on_event(event(100, 100_000, "again"));
        assert_eq!(s.events().len(), EVENT_LOG_LEN);
        s.on_event(event(9_999, 50_500, "late"));
        let pos = s.events().iter().position(|e| e.text == "late").unwrap();
        assert_eq!(s.events()[pos - 1].seq, 50);
        assert_eq!(s.events()[pos + 1].seq, 51);
    }

    #[test]
    fn attaching_to_another_agent_shows_its_journal_only() {
        let connected = |to: &str| ConnStatus::Connected {
            to: to.into(),
            since: t0(),
        };
        let mut s = State::new(t0(), ConnStatus::Connecting { to: "a".into() });
        s.on_connection(connected("a"));
        s.on_event(event(1, 1_000, "seen by a"));
        // The same agent again (a reconnect): its replayed history is deduplicated.
        s.on_connection(connected("a"));
        s.on_event(event(1, 1_000, "seen by a"));
        assert_eq!(s.events().len(), 1);
        // Another agent: its journal replaces the log.
        s.on_connection(connected("b"));
        assert!(s.events().is_empty());
    }

    #[test]
    fn check_changes_are_dated() {
        let mut s = state_with(fixtures::healthy());
        let first = s.check_since("n2", "mounts").unwrap().clone();
        assert!(!first.observed);
        let later = t0() + Duration::from_secs(10);
        s.on_snapshot(later, fixtures::hung_mount());
        let changed = s.check_since("n2", "mounts").unwrap();
        assert!(changed.observed);
        assert_eq!(changed.since, later);
        // Unchanged values keep their date.
        assert_eq!(s.check_since("n1", "app").unwrap().since, t0());
    }

    #[test]
    fn summaries() {
        let s = state_with(fixtures::drift());
        let nodes = &s.status().unwrap().nodes;
        let drift = |nodes, files| ConfigSummary::Drift {
            nodes,
            files,
            acked: false,
        };
        assert_eq!(config_summary(&nodes[0]), drift(1, 2));
        assert_eq!(config_summary(&nodes[2]), drift(2, 2));
        assert_eq!(mount_summary(&nodes[0]), MountSummary::Ok);
        assert!(s.version_skewed(&nodes[2]));
        assert!(!s.version_skewed(&nodes[0]));
        assert_eq!(s.common_app_version(), Some("2.4.1"));

        let s = state_with(fixtures::hung_mount());
        let n2 = &s.status().unwrap().nodes[1];
        assert_eq!(mount_summary(n2), MountSummary::Hung);
        assert_eq!(health(n2).text, "fail mounts");

        let s = state_with(fixtures::lost_quorum());
        assert_eq!(s.quorum_counts(), Some((1, 3)));
    }

    #[test]
    fn odd_input_does_not_panic() {
        let mut status = fixtures::healthy();
        status.nodes[0].node = "ノード-ü".into();
        status.nodes[0].last_seen_ms = Some(u64::MAX);
        status.nodes[0].load.cpu = f64::INFINITY;
        status.nodes[1].load.load1 = f64::NAN;
        status.nodes[1].rtt_ms = Some(f64::NEG_INFINITY);
        status.voters = 0;
        let s = state_with(status);
        for k in SortKey::ALL {
            assert_eq!(s.rows(k, "").len(), 3);
        }
        assert!(s.node_stale(&s.status().unwrap().nodes[0]));
        assert_eq!(s.quorum_counts(), Some((3, 0)));

        let mut empty = fixtures::healthy();
        empty.nodes.clear();
        let s = state_with(empty);
        assert!(s.rows(SortKey::Seen, "x").is_empty());
    }
}
