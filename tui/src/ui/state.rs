//! What the screen shows, folded from what the connection layer hands in: the last
//! [`ClusterStatus`] snapshot and when it came, each node's recent load (for the
//! sparklines), when each check last changed value, a bounded event log, the connection's
//! status and the last command's answer.
//!
//! Owns: every rule about *meaning* that needs more than one node's fields — filtering,
//! staleness, version skew; the columns' own words and sort orders are
//! [`crate::columns`]'s.
//!
//! Must never: do IO, read a clock (time comes in as `now: Instant`), know about keys or
//! ratatui types, or panic on anything an agent sends (empty node lists, NaN loads,
//! `u64::MAX` ages, unicode names). tokio-console couples its state to its view; this
//! one is plain data so that the view and the tests read the same thing.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use proto::ctl::EventRecord;
use proto::status::{ClusterStatus, NodeStatus};
use proto::{CheckCode, CheckName};

use crate::columns::{SortKey, health};

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
    value: CheckCode,
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

/// Whether `n` matches every whitespace-separated term of `filter` (case-insensitive) in
/// its name, address, state, role, health or app version. `/fail` finds failing nodes.
pub fn matches(n: &NodeStatus, filter: &str) -> bool {
    let fields = [
        n.node.to_lowercase(),
        n.addr.to_lowercase(),
        n.state.as_str().to_owned(),
        n.role.as_str().to_owned(),
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
    checks_since: HashMap<(String, CheckName), CheckSince>,
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
                        value: *value,
                        since: now,
                        observed: true,
                    },
                    // First sight: the value may be much older than this TUI.
                    None => CheckSince {
                        value: *value,
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

    pub fn check_since(&self, node: &str, check: &CheckName) -> Option<&CheckSince> {
        self.checks_since.get(&(node.to_string(), check.clone()))
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
        rows.sort_by(|a, b| sort.compare(a, b).then_with(|| a.node.cmp(&b.node)));
        rows
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
    use crate::columns::{ConfigSummary, MountSummary, config_summary, mount_summary};
    use crate::ui::fixtures::{self, event, t0};

    fn key(title: &str) -> SortKey {
        SortKey::of(title).unwrap()
    }

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
        assert_eq!(names(&s.rows(SortKey::default(), "")), ["n1", "n2", "n3"]);
        assert_eq!(names(&s.rows(key("CPU"), "")), ["n3", "n2", "n1"]);
        assert_eq!(names(&s.rows(key("ROLE"), "")), ["n1", "n2", "n3"]);

        let s = state_with(fixtures::failover());
        // n1 is dead: last by state, first by age.
        assert_eq!(names(&s.rows(key("STATE"), "")), ["n2", "n3", "n1"]);
        assert_eq!(names(&s.rows(key("SEEN"), ""))[0], "n1");
        assert_eq!(names(&s.rows(key("ROLE"), ""))[0], "n2"); // the candidate
    }

    #[test]
    fn sort_keys_cycle_both_ways() {
        let mut k = SortKey::default();
        for _ in 0..SortKey::all().count() {
            assert_eq!(k.next().prev(), k);
            k = k.next();
        }
        assert_eq!(k, SortKey::default());
    }

    #[test]
    fn filters_on_every_term_case_insensitively() {
        let s = state_with(fixtures::hung_mount());
        assert_eq!(names(&s.rows(SortKey::default(), "N2")), ["n2"]);
        assert_eq!(names(&s.rows(SortKey::default(), "fail")), ["n2"]);
        assert_eq!(
            names(&s.rows(SortKey::default(), "alive secondary")),
            ["n2", "n3"]
        );
        assert_eq!(names(&s.rows(SortKey::default(), "10.0.0.3")), ["n3"]);
        assert!(s.rows(SortKey::default(), "nothing-like-this").is_empty());
        assert_eq!(s.rows(SortKey::default(), "   ").len(), 3);
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
        assert!(s.rows(key("CPU"), "").is_empty());
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
        let first = s.check_since("n2", &CheckName::Mounts).unwrap().clone();
        assert!(!first.observed);
        let later = t0() + Duration::from_secs(10);
        s.on_snapshot(later, fixtures::hung_mount());
        let changed = s.check_since("n2", &CheckName::Mounts).unwrap();
        assert!(changed.observed);
        assert_eq!(changed.since, later);
        // Unchanged values keep their date.
        assert_eq!(s.check_since("n1", &CheckName::App).unwrap().since, t0());
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
        assert_eq!(health(n2).text, "fail:mounts");

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
        for k in SortKey::all() {
            assert_eq!(s.rows(k, "").len(), 3);
        }
        assert!(s.node_stale(&s.status().unwrap().nodes[0]));
        assert_eq!(s.quorum_counts(), Some((3, 0)));

        let mut empty = fixtures::healthy();
        empty.nodes.clear();
        let s = state_with(empty);
        assert!(s.rows(key("SEEN"), "x").is_empty());
    }
}
