//! This node's own situation: the latest result of every local check, the operator's
//! drain, drift acknowledgements, the upgrade gate, and what the load balancer said.
//!
//! [`LocalState`] folds probe reports and operator commands. [`LocalState::assess`] judges
//! what needs the peers as well (shared-storage proofs, config drift, clock offsets, the
//! upgrade gate, task placement) and says what follows: readiness, health, eligibility,
//! reason codes and the [`NodeState`] peers fetch. It must never do IO or read a clock
//! (the driver persists and passes `now`/`wall`), and it decides nothing about the
//! election: the core does, from the eligibility bit.

use std::cmp::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::status::ConfigStatus;
use proto::{
    BalancerSeen, CheckCode, CheckState, ConfigSetState, Drain, DrainOrder, DriftAck, HealthBits,
    Mode, MountState, NodeId, NodeState, TaskPlacement, WallMicros,
};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::core::{MemberState, Node};
use crate::probe::load::LoadSample;
use crate::probe::{CheckResult, ConfigSetReport, MountReport, ProbeReport, config_hash, mounts};
use crate::view::reason;
pub use proto::compare_versions;

/// Check names, in the order they are shown.
pub const CHECKS: [&str; 6] = ["app", "mounts", "config", "clock", "version", "load"];

/// What an operator set on this node, kept across restarts (`operator.json` in
/// `state_dir`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OperatorState {
    pub drain: Option<Drain>,
    /// Version (wall µs) of the drain or undrain order in force: an order gossiped by
    /// another node applies only if newer.
    pub drain_version: u64,
    pub drift_acks: Vec<DriftAck>,
    /// The app version an operator let through the upgrade gate.
    pub upgrade_allowed: Option<String>,
}

/// This node's check results and operator state.
pub struct LocalState {
    cfg: Arc<Config>,
    pub load: Option<LoadSample>,
    pub overloaded: bool,
    pub joined: bool,
    app: Option<CheckResult>,
    app_version: Option<Result<String, String>>,
    mounts: Vec<Option<MountReport>>,
    config: Option<Vec<ConfigSetReport>>,
    /// The nonce this node writes under every `shared` mount (one per incarnation).
    pub nonce: String,
    pub operator: OperatorState,
    /// Orders this node took for other nodes, gossiped until they expire.
    pub drain_orders: Vec<DrainOrder>,
    pub balancer: Option<BalancerSeen>,
    /// When the assessment last said `draining` (for the agent-check's drain → maint).
    draining_since: Option<Instant>,
    /// Every check has reported at least once since the start. From then on a check
    /// that a reload added or changed shows `first probe pending` until it reports, but
    /// does not make the node not-ready: a reload must not take a healthy primary out
    /// of the election for the few moments its new probes take.
    settled: bool,
}

/// Everything that follows from the local state and the peers, at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    pub checks: Vec<CheckState>,
    pub mounts: Vec<MountState>,
    pub config: Vec<ConfigStatus>,
    /// Joined, first round of checks done, upgrade gate open.
    pub ready: bool,
    /// Fit for traffic.
    pub healthy: bool,
    /// May be primary.
    pub eligible: bool,
    /// An operator drained this node.
    pub drained: bool,
    pub reasons: Vec<&'static str>,
    pub health: HealthBits,
    /// Where this node places each task (the core places; see `core::tasks`).
    pub placements: Vec<TaskPlacement>,
    pub draining_since: Option<Instant>,
    /// Peers this node's failure detector holds suspect or dead, by id.
    pub suspects: Vec<NodeId>,
}

impl Assessment {
    /// Before the first judgement: nothing ready.
    pub fn starting() -> Self {
        Self {
            checks: Vec::new(),
            mounts: Vec::new(),
            config: Vec::new(),
            ready: false,
            healthy: false,
            eligible: false,
            drained: false,
            reasons: vec![reason::STARTING],
            health: HealthBits::default(),
            placements: Vec::new(),
            draining_since: None,
            suspects: Vec::new(),
        }
    }
}

impl LocalState {
    pub fn new(cfg: Arc<Config>, nonce: String, operator: OperatorState) -> Self {
        Self {
            mounts: vec![None; cfg.mounts.len()],
            cfg,
            load: None,
            overloaded: false,
            joined: false,
            app: None,
            app_version: None,
            config: None,
            nonce,
            operator,
            drain_orders: Vec::new(),
            balancer: None,
            draining_since: None,
            settled: false,
        }
    }

    /// Takes a reloaded config. The results of the checks whose config changed are
    /// dropped (their probes are replaced and report again); the rest are kept.
    pub fn reconfigure(&mut self, cfg: Arc<Config>, app: bool, mounts: bool, config: bool) {
        if app {
            self.app = None;
            self.app_version = None;
        }
        if mounts {
            self.mounts = vec![None; cfg.mounts.len()];
        }
        if config {
            self.config = None;
        }
        self.cfg = cfg;
    }

    /// Folds one probe report in.
    pub fn apply(&mut self, report: ProbeReport) {
        match report {
            ProbeReport::App(r) => self.app = Some(r),
            ProbeReport::AppVersion(v) => self.app_version = Some(v),
            ProbeReport::Mount { index, report } => {
                if let Some(slot) = self.mounts.get_mut(index) {
                    *slot = Some(report);
                }
            }
            ProbeReport::Config(sets) => self.config = Some(sets),
        }
    }

    pub fn app_version(&self) -> Option<&str> {
        self.app_version
            .as_ref()
            .and_then(|v| v.as_ref().ok())
            .map(String::as_str)
    }

    /// Drops what expired at `wall`; returns a line to log per expiry.
    pub fn expire(&mut self, wall: WallMicros) -> Vec<String> {
        let mut said = Vec::new();
        if let Some(d) = &self.operator.drain
            && d.until.is_some_and(|u| u <= wall)
        {
            said.push(format!("drain expired (was: {:?} by {})", d.reason, d.by));
            self.operator.drain = None;
        }
        let before = self.operator.drift_acks.len();
        self.operator.drift_acks.retain(|a| a.until > wall);
        if self.operator.drift_acks.len() != before {
            said.push("a drift acknowledgement expired".into());
        }
        self.drain_orders.retain(|o| {
            o.drain
                .as_ref()
                .is_none_or(|d| d.until.is_none_or(|u| u > wall))
        });
        said
    }

    /// Adopts the newest drain order a peer gossips for this node. Returns whether the
    /// operator state changed (and must be persisted).
    pub fn adopt_orders(&mut self, core: &Node) -> Option<String> {
        let me = &self.cfg.node;
        let newest = core
            .members()
            .filter_map(|m| m.node_state.as_ref())
            .flat_map(|s| s.drain_orders.iter())
            .filter(|o| o.target == *me && o.version > self.operator.drain_version)
            .max_by_key(|o| o.version)?
            .clone();
        self.operator.drain_version = newest.version;
        self.operator.drain = newest.drain.clone();
        Some(match &newest.drain {
            Some(d) => format!("drained by {}: {:?}", d.by, d.reason),
            None => "undrained by an order from another node".to_owned(),
        })
    }

    /// Judges everything at `now`. `lease_held`: this node holds the primary lease.
    pub fn assess(
        &mut self,
        core: &Node,
        now: Instant,
        wall: WallMicros,
        lease_held: bool,
    ) -> Assessment {
        let cfg = self.cfg.clone();
        let alive: Vec<_> = core
            .members()
            .filter(|m| m.state == MemberState::Alive)
            .collect();
        let peer_states: Vec<(&NodeId, &NodeState)> = alive
            .iter()
            .filter_map(|m| m.node_state.as_ref().map(|s| (&m.id, s)))
            .collect();

        // app
        let (app_code, app_reason, app_pending) = match (&cfg.app.check, &self.app) {
            (None, _) => (CheckCode::Off, String::new(), false),
            (Some(_), None) => (CheckCode::Off, "first probe pending".into(), true),
            (Some(_), Some(r)) => (r.code, r.reason.clone(), false),
        };

        // mounts
        let mut mount_states = Vec::new();
        let mut mounts_pending = false;
        let mut required_fail: Option<String> = None;
        let mut any_mount_fail: Option<(CheckCode, String)> = None;
        for (i, m) in cfg.mounts.iter().enumerate() {
            let path = m.path.to_string_lossy().into_owned();
            let Some(Some(rep)) = self.mounts.get(i) else {
                mounts_pending = true;
                mount_states.push(MountState {
                    path,
                    code: CheckCode::Off,
                    reason: "first probe pending".into(),
                    source: None,
                    fstype: None,
                    proof: m.shared.then(|| self.nonce.clone()),
                });
                continue;
            };
            let (mut code, mut why) = (rep.result.code, rep.result.reason.clone());
            if m.shared && code == CheckCode::Ok {
                let peers: Vec<(&str, Option<&str>)> = peer_states
                    .iter()
                    .filter(|(_, s)| s.mode == Mode::Member)
                    .map(|(id, s)| {
                        let proof = s
                            .mounts
                            .iter()
                            .find(|pm| pm.path == path)
                            .and_then(|pm| pm.proof.as_deref());
                        (id.as_str(), proof)
                    })
                    .collect();
                (code, why) =
                    mounts::judge_shared(cfg.node.as_str(), &self.nonce, &rep.proofs, &peers);
            }
            if !code.passing() {
                let line = format!("{path} {}: {why}", code.as_str());
                if m.required && required_fail.is_none() {
                    required_fail = Some(line.clone());
                }
                if any_mount_fail.is_none() {
                    any_mount_fail = Some((code, line));
                }
            }
            mount_states.push(MountState {
                path,
                code,
                reason: why,
                source: rep.source.clone(),
                fstype: rep.fstype.clone(),
                proof: m.shared.then(|| self.nonce.clone()),
            });
        }
        let (mounts_code, mounts_reason) = if cfg.mounts.is_empty() {
            (CheckCode::Off, String::new())
        } else if let Some((code, line)) = &any_mount_fail {
            (*code, line.clone())
        } else if mounts_pending {
            (CheckCode::Off, "first probe pending".into())
        } else {
            (CheckCode::Ok, String::new())
        };

        // config
        let acks: Vec<&DriftAck> = self
            .operator
            .drift_acks
            .iter()
            .chain(peer_states.iter().flat_map(|(_, s)| s.drift_acks.iter()))
            .filter(|a| a.until > wall)
            .collect();
        let mut config_status = Vec::new();
        let (mut config_code, mut config_reason) = (CheckCode::Off, String::new());
        if let Some(sets) = &self.config {
            config_code = CheckCode::Ok;
            for set in sets {
                let mine = ConfigSetState {
                    name: set.name.clone(),
                    files: set.files.clone(),
                    error: set.error.clone(),
                };
                let peers: Vec<(&str, &ConfigSetState)> = peer_states
                    .iter()
                    .filter_map(|(id, s)| {
                        s.config
                            .iter()
                            .find(|c| c.name == set.name)
                            .map(|c| (id.as_str(), c))
                    })
                    .collect();
                let mut st = config_hash::compare(cfg.node.as_str(), &mine, &peers);
                if let Some(a) = acks.iter().find(|a| a.name == set.name) {
                    st.acknowledged = Some(format!(
                        "{} (by {}, until {})",
                        a.reason,
                        a.by,
                        rfc3339(a.until)
                    ));
                }
                let code = match st.status.as_str() {
                    "fail" => CheckCode::Fail,
                    "drift" if st.acknowledged.is_none() => CheckCode::Drift,
                    _ => CheckCode::Ok,
                };
                if code != CheckCode::Ok && config_code == CheckCode::Ok {
                    config_code = code;
                    config_reason = match code {
                        CheckCode::Fail => {
                            format!("{}: {}", set.name, set.error.clone().unwrap_or_default())
                        }
                        _ => format!("{} differs from {}", set.name, st.differs_from.join(", ")),
                    };
                }
                config_status.push(st);
            }
        }
        let config_pending = !cfg.config_sets.is_empty() && self.config.is_none();

        // clock: at fault when off from most of the others (see `clock_fault`).
        let offsets: Vec<(&NodeId, i64)> = alive
            .iter()
            .filter_map(|m| m.clock_offset_us.map(|o| (&m.id, o)))
            .collect();
        let max_us = i64::try_from(cfg.clock.max_offset.0.as_micros()).unwrap_or(i64::MAX);
        let (clock_code, clock_reason) = match clock_fault(&offsets, alive.len(), max_us) {
            None => (CheckCode::Ok, String::new()),
            Some(off) => (
                CheckCode::Fail,
                format!(
                    "wall clock off by more than {} from {}",
                    cfg.clock.max_offset,
                    off.join(", ")
                ),
            ),
        };

        // version and the upgrade gate
        let primary = if lease_held { None } else { core.primary() };
        let primary_version = primary
            .and_then(|p| core.member(p))
            .filter(|m| m.state == MemberState::Alive)
            .and_then(|m| m.node_state.as_ref())
            .and_then(|s| s.app_version.clone().map(|v| (m_id(s), v)));
        let mine = self.app_version();
        let gate_open = self.operator.upgrade_allowed.as_deref() == mine && mine.is_some();
        let upgrade_held = match (mine, &primary_version) {
            (Some(v), Some((_, pv))) => {
                cfg.app.upgrade_gate && compare_versions(v, pv) == Ordering::Greater && !gate_open
            }
            _ => false,
        };
        let version_pending = (cfg.app.version_file.is_some() || cfg.app.version_command.is_some())
            && self.app_version.is_none();
        let (version_code, version_reason) = match (&self.app_version, &primary_version) {
            (Some(Err(e)), _) => (CheckCode::Fail, e.clone()),
            (None, _) => (CheckCode::Off, String::new()),
            (Some(Ok(_)), Some((p, pv))) if upgrade_held => (
                CheckCode::Fail,
                format!(
                    "newer than primary {p}'s {pv}: held not-ready until `quorate upgrade allow`"
                ),
            ),
            (Some(Ok(v)), _) => {
                let skew: Vec<String> = peer_states
                    .iter()
                    .filter_map(|(id, s)| {
                        s.app_version
                            .as_ref()
                            .filter(|pv| *pv != v)
                            .map(|pv| format!("{id} {pv}"))
                    })
                    .collect();
                if skew.is_empty() {
                    (CheckCode::Ok, String::new())
                } else {
                    (CheckCode::Ok, format!("skew: {}", skew.join(", ")))
                }
            }
        };

        // load
        let (load_code, load_reason) = match (&cfg.load, self.overloaded) {
            (None, _) => (CheckCode::Off, String::new()),
            (Some(_), true) => (CheckCode::Fail, "above its limits".to_owned()),
            (Some(_), false) => (CheckCode::Ok, String::new()),
        };

        let checks: Vec<CheckState> = [
            (app_code, app_reason),
            (mounts_code, mounts_reason),
            (config_code, config_reason),
            (clock_code, clock_reason),
            (version_code, version_reason),
            (load_code, load_reason),
        ]
        .into_iter()
        .zip(CHECKS)
        .map(|((code, reason), name)| CheckState {
            name: name.to_owned(),
            code,
            reason,
        })
        .collect();

        let pending = self.load.is_none()
            || app_pending
            || mounts_pending
            || config_pending
            || version_pending;
        if !pending {
            self.settled = true;
        }
        let pending = pending && !self.settled;
        let ready = self.joined && !pending && !upgrade_held;
        let app_ok = app_code.passing();
        let mounts_ok = required_fail.is_none();
        let drained = self.operator.drain.is_some();
        let healthy = ready && app_ok && mounts_ok && !self.overloaded && !drained;
        let eligible = cfg.mode == Mode::Member && ready && app_ok && mounts_ok && !drained;

        let mut reasons = Vec::new();
        if !self.joined {
            reasons.push(reason::STARTING);
        }
        if pending {
            reasons.push(reason::CHECKS_PENDING);
        }
        if upgrade_held {
            reasons.push(reason::UPGRADE_HELD);
        }
        if !app_ok {
            reasons.push(reason::APP);
        }
        if !mounts_ok {
            reasons.push(reason::MOUNT);
        }
        if self.overloaded {
            reasons.push(reason::OVERLOADED);
        }
        if drained {
            reasons.push(reason::DRAINING);
        }

        let health = HealthBits::default()
            .with(HealthBits::READY, ready)
            .with(HealthBits::HEALTHY, healthy)
            .with(HealthBits::OVERLOADED, self.overloaded)
            .with(HealthBits::DRAINING, drained)
            .with(HealthBits::APP_FAIL, !app_ok)
            .with(HealthBits::MOUNT_FAIL, !mounts_ok)
            .with(HealthBits::ELIGIBLE, eligible)
            .with(HealthBits::CLOCK_FAIL, clock_code == CheckCode::Fail)
            .with(HealthBits::CONFIG_DRIFT, config_code == CheckCode::Drift)
            .with(HealthBits::UPGRADE_HELD, upgrade_held);

        // Drain answers wait for the handover: a drained primary keeps answering as
        // itself until another node holds the role.
        let draining_now = drained && !lease_held;
        match (draining_now, self.draining_since) {
            (true, None) => self.draining_since = Some(now),
            (false, Some(_)) => self.draining_since = None,
            _ => {}
        }

        Assessment {
            checks,
            mounts: mount_states,
            config: config_status,
            ready,
            healthy,
            eligible,
            drained,
            reasons,
            health,
            placements: core.task_placements(),
            draining_since: self.draining_since,
            suspects: core
                .members()
                .filter(|m| matches!(m.state, MemberState::Suspect | MemberState::Dead))
                .map(|m| m.id.clone())
                .collect(),
        }
    }

    /// The full state peers fetch.
    pub fn node_state(&self, base: &NodeState, a: &Assessment) -> NodeState {
        NodeState {
            app_version: self.app_version().map(str::to_owned),
            checks: a.checks.clone(),
            mounts: a.mounts.clone(),
            config: self
                .config
                .iter()
                .flatten()
                .map(|s| ConfigSetState {
                    name: s.name.clone(),
                    files: s.files.clone(),
                    error: s.error.clone(),
                })
                .collect(),
            drain: self.operator.drain.clone(),
            drain_orders: self.drain_orders.clone(),
            drift_acks: self.operator.drift_acks.clone(),
            balancer: self.balancer.clone(),
            tasks: a.placements.clone(),
            upgrade_allowed: self.operator.upgrade_allowed.is_some()
                && self.operator.upgrade_allowed.as_deref() == self.app_version(),
            suspects: a.suspects.clone(),
            ..base.clone()
        }
    }
}

fn m_id(s: &NodeState) -> String {
    s.node.to_string()
}

/// Majority attribution of a clock fault: `offsets` are (peer, its clock − ours, µs) for
/// alive peers. This node is at fault when it is off by more than `max_us` from a strict
/// majority of them, or from all of them (with one peer, both nodes are flagged: two
/// clocks cannot say which is wrong). Returns the peers it is off from, if at fault.
///
/// DESIGN.md says "at least half"; with three nodes and one bad clock, a good node is off
/// from exactly half (the bad one), so "at least half" would flag it too.
///
/// `peers` counts every alive peer, measured or not: a node that has so far measured
/// only the one bad clock is off from all it has measured, yet not from a majority.
pub fn clock_fault(offsets: &[(&NodeId, i64)], peers: usize, max_us: i64) -> Option<Vec<String>> {
    let off: Vec<String> = offsets
        .iter()
        .filter(|(_, o)| o.unsigned_abs() > max_us.unsigned_abs())
        .map(|(id, o)| format!("{id} ({:+} ms)", o / 1000))
        .collect();
    let n = peers.max(offsets.len());
    (n > 0 && !off.is_empty() && (off.len() * 2 > n || off.len() == n)).then_some(off)
}

/// RFC 3339 (UTC, seconds) for wall µs.
pub fn rfc3339(w: WallMicros) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_micros(w.0))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    #[test]
    fn a_check_added_by_a_reload_does_not_unready_a_settled_node() {
        let dir = tempfile::tempdir().unwrap();
        let plain = Arc::new(crate::config::tests_support::parse(dir.path(), ""));
        let with_app = Arc::new(crate::config::tests_support::parse(
            dir.path(),
            "[app]\ncheck = \"tcp://127.0.0.1:1\"\n",
        ));
        let now = crate::clock::now();
        let core = Node::new(
            crate::core::CoreConfig {
                preempt: None,
                ..plain.core_config(proto::Incarnation(1))
            },
            now,
            1,
            Default::default(),
        );
        let fresh = |cfg: &Arc<Config>| {
            let mut l = LocalState::new(cfg.clone(), "nonce".into(), OperatorState::default());
            l.joined = true;
            l.load = Some(LoadSample::default());
            l
        };
        let wall = WallMicros(1);

        // At start, a configured check that has not reported holds readiness back.
        let mut starting = fresh(&with_app);
        let a = starting.assess(&core, now, wall, false);
        assert!(
            !a.ready && a.reasons.contains(&reason::CHECKS_PENDING),
            "{a:?}"
        );

        // Once settled, a check a reload adds is pending without unreadying the node.
        let mut local = fresh(&plain);
        assert!(local.assess(&core, now, wall, false).ready);
        local.reconfigure(with_app.clone(), true, false, false);
        let a = local.assess(&core, now, wall, false);
        assert!(a.ready && a.eligible, "{a:?}");
        assert_eq!(a.checks[0].reason, "first probe pending");
        // Its first result decides.
        local.apply(ProbeReport::App(CheckResult {
            code: CheckCode::Fail,
            reason: "connect: connection refused".into(),
            at: now,
        }));
        let a = local.assess(&core, now, wall, false);
        assert!(!a.healthy && !a.eligible && a.reasons.contains(&reason::APP));
    }

    #[test]
    fn clock_fault_is_attributed_to_the_odd_one_out() {
        let (n1, n2, n3, n4) = (id("n1"), id("n2"), id("n3"), id("n4"));
        let max = 500_000;
        // (offsets to peers, alive peers, at fault)
        type Case<'a> = (&'a [(&'a NodeId, i64)], usize, bool);
        let table: &[Case<'_>] = &[
            (&[], 0, false),
            (&[], 2, false),
            // Two nodes a second apart: neither can tell, both are flagged.
            (&[(&n2, 1_000_000)], 1, true),
            (&[(&n2, 100_000)], 1, false),
            // Three nodes, n3 one second ahead. As n1: off from n3 only → fine.
            (&[(&n2, 0), (&n3, 1_000_000)], 2, false),
            // As n1 before it measured n2: off from all it measured, not from a majority.
            (&[(&n3, 1_000_000)], 2, false),
            // As n3: off from both → at fault.
            (&[(&n1, -1_000_000), (&n2, -1_000_000)], 2, true),
            // Four nodes, this one off from three.
            (&[(&n2, 900_000), (&n3, -900_000), (&n4, 800_000)], 3, true),
            // Four nodes, off from one of three.
            (&[(&n2, 900_000), (&n3, 0), (&n4, 0)], 3, false),
        ];
        for (offsets, peers, fault) in table {
            assert_eq!(
                clock_fault(offsets, *peers, max).is_some(),
                *fault,
                "{offsets:?} of {peers}"
            );
        }
    }

    #[test]
    fn versions_order() {
        use Ordering::*;
        for (a, b, want) in [
            ("5.2.1", "5.2.1", Equal),
            ("5.10.0", "5.9.1", Greater),
            ("5.2", "5.2.1", Less),
            ("5.2.1-rc1", "5.2.1-rc2", Less),
            ("v6", "v5", Greater),
        ] {
            assert_eq!(compare_versions(a, b), want, "{a} vs {b}");
        }
    }
}
