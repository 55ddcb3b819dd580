//! Judgement: what this node's measurements mean, once the peers' are beside them.
//!
//! Probes measure (`crate::probe`); this module folds their reports into [`LocalState`]
//! and judges them, one file per check: [`app`], [`mounts`] (the shared-storage proofs),
//! [`config`] (drift), [`clock`] (who is off), [`version`] (the upgrade gate), [`load`].
//! [`CHECKS`] is the registry: a check's name, how it is judged, the heartbeat bit that
//! stands for it and the event its transitions are. [`LocalState::assess`] runs the
//! registry and says what follows: readiness, health, eligibility, the [`Reason`]s and
//! the state peers fetch. Beside them: [`reason`] (every reason code), [`weight`] (the
//! HAProxy agent-check weight) and [`operator`] (drains, acknowledgements, the gate).
//!
//! Must never do IO or read a clock (the driver persists and passes `now`/`wall`), and
//! decides nothing about the election: the core does, from the eligibility bit.
//!
//! Adding a node check: its config section, its probe, a file here with its [`Spec`]
//! (listed in [`CHECKS`]), and the docs.

pub mod app;
pub mod clock;
pub mod config;
pub mod load;
pub mod mounts;
pub mod operator;
pub mod reason;
pub mod version;
pub mod weight;

use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::ctl::EventKind;
use proto::status::ConfigStatus;
use proto::{
    BalancerSeen, CheckCode, CheckName, CheckState, ConfigSetState, DrainOrder, HealthBits, Mode,
    MountState, NodeId, NodeState, TaskPlacement, WallMicros,
};

use crate::config::Config;
use crate::core::{Member, MemberState, Node};
use crate::probe::load::LoadSample;
use crate::probe::{CheckResult, ConfigSetReport, MountReport, ProbeReport};
pub use operator::OperatorState;
pub use reason::Reason;

/// What a check's reason says before its probe first reported.
pub const FIRST_PROBE_PENDING: &str = "first probe pending";

/// One node check in the registry.
pub struct Spec {
    pub name: CheckName,
    judge: fn(&Cx<'_>, &mut Detail) -> Judged,
    /// The heartbeat bit a node sets while this check holds it back, and the code shown
    /// for the check from that bit before the node's full state is fetched.
    pub bit: u32,
    pub bad: CheckCode,
    /// A failure makes the node ineligible: `quorate transfer` names it when it refuses.
    pub blocks_eligibility: bool,
    /// Its probe logs its own transitions; the others are judged with the peers, and
    /// the driver logs theirs.
    pub probe_logs: bool,
    /// What its transitions are in the journal.
    pub event: EventKind,
}

/// Every node check, in the order they are shown.
pub static CHECKS: [Spec; 6] = [
    app::SPEC,
    mounts::SPEC,
    config::SPEC,
    clock::SPEC,
    version::SPEC,
    load::SPEC,
];

/// The registry entry of a check, if this build has it.
pub fn spec(name: &CheckName) -> Option<&'static Spec> {
    CHECKS.iter().find(|s| s.name == *name)
}

/// What a check reads: the local state, the config and the peers as the core has them.
pub struct Cx<'a> {
    pub cfg: &'a Config,
    pub local: &'a LocalState,
    pub core: &'a Node,
    /// Alive peers.
    pub alive: Vec<&'a Member>,
    /// Alive peers whose full state this node has.
    pub peers: Vec<(&'a NodeId, &'a NodeState)>,
    pub wall: WallMicros,
    /// This node holds the primary lease.
    pub lease_held: bool,
}

/// What some checks say beyond their line.
#[derive(Default)]
pub struct Detail {
    pub mounts: Vec<MountState>,
    pub config: Vec<ConfigStatus>,
    /// How each alive peer compares its config sets with the others (this node's
    /// included), for `/cluster`.
    pub peer_config: Vec<(NodeId, Vec<ConfigStatus>)>,
}

/// One check's judgement.
#[derive(Debug, Default)]
pub struct Judged {
    pub code: CheckCode,
    pub reason: String,
    /// Configured but not reported yet: the node is not ready until it settles.
    pub pending: bool,
    /// What the check holds back, if anything.
    pub holds: Holds,
}

/// What a check holds the node back from, and the reason code it gives.
#[derive(Debug, Default, Clone, Copy)]
pub struct Holds {
    pub ready: bool,
    pub healthy: bool,
    pub eligible: bool,
    pub reason: Option<Reason>,
    /// Sets the check's [`Spec::bit`] in the heartbeat.
    pub bit: bool,
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
    /// Per alive peer, its config sets compared with the others' (see [`Detail`]).
    pub peer_config: Vec<(NodeId, Vec<ConfigStatus>)>,
    /// Joined, first round of checks done, upgrade gate open.
    pub ready: bool,
    /// Fit for traffic.
    pub healthy: bool,
    /// May be primary.
    pub eligible: bool,
    /// An operator drained this node.
    pub drained: bool,
    pub reasons: Vec<Reason>,
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
            peer_config: Vec::new(),
            ready: false,
            healthy: false,
            eligible: false,
            drained: false,
            reasons: vec![Reason::Starting],
            health: HealthBits::default(),
            placements: Vec::new(),
            draining_since: None,
            suspects: Vec::new(),
        }
    }

    /// How `node` compares its config sets with the others', as far as this node knows
    /// (empty for a node whose state it does not have).
    pub fn config_of(&self, node: &NodeId) -> Vec<ConfigStatus> {
        self.peer_config
            .iter()
            .find(|(n, _)| n == node)
            .map(|(_, c)| c.clone())
            .unwrap_or_default()
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

    /// This node's config sets as peers see them.
    fn config_sets(&self) -> Vec<ConfigSetState> {
        self.config
            .iter()
            .flatten()
            .map(crate::probe::config_hash::to_state)
            .collect()
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
        let alive: Vec<&Member> = core
            .members()
            .filter(|m| m.state == MemberState::Alive)
            .collect();
        let peers = alive
            .iter()
            .filter_map(|m| m.node_state.as_ref().map(|s| (&m.id, s)))
            .collect();
        let mut detail = Detail::default();
        let mut checks = Vec::with_capacity(CHECKS.len());
        let mut pending = false;
        let mut held = Holds::default();
        let mut reasons = Vec::new();
        let mut health = HealthBits::default();
        // The checks read `self` while they judge; what follows is folded afterwards.
        {
            let cx = Cx {
                cfg: &cfg,
                local: self,
                core,
                alive,
                peers,
                wall,
                lease_held,
            };
            for spec in &CHECKS {
                let j = (spec.judge)(&cx, &mut detail);
                pending |= j.pending;
                held.ready |= j.holds.ready;
                held.healthy |= j.holds.healthy;
                held.eligible |= j.holds.eligible;
                reasons.extend(j.holds.reason);
                health = health.with(spec.bit, j.holds.bit);
                checks.push(CheckState {
                    name: spec.name.clone(),
                    code: j.code,
                    reason: j.reason,
                });
            }
        }

        if !pending {
            self.settled = true;
        }
        let pending = pending && !self.settled;
        let ready = self.joined && !pending && !held.ready;
        let drained = self.operator.drain.is_some();
        let healthy = ready && !held.healthy && !drained;
        let eligible = cfg.mode == Mode::Member && ready && !held.eligible && !drained;

        if !self.joined {
            reasons.push(Reason::Starting);
        }
        if pending {
            reasons.push(Reason::ChecksPending);
        }
        if drained {
            reasons.push(Reason::Draining);
        }
        // In `Reason`'s order, whichever check gave them: answers list them that way.
        reasons.sort();

        let health = health
            .with(HealthBits::READY, ready)
            .with(HealthBits::HEALTHY, healthy)
            .with(HealthBits::DRAINING, drained)
            .with(HealthBits::ELIGIBLE, eligible);

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
            mounts: detail.mounts,
            config: detail.config,
            peer_config: detail.peer_config,
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
            config: self.config_sets(),
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

/// RFC 3339 (UTC, seconds) for wall µs.
pub fn rfc3339(w: WallMicros) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_micros(w.0))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

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
            !a.ready && a.reasons.contains(&Reason::ChecksPending),
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
        assert!(!a.healthy && !a.eligible && a.reasons.contains(&Reason::App));
    }

    #[test]
    fn the_registry_lists_every_check_once_in_the_order_shown() {
        let names: Vec<&str> = CHECKS.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["app", "mounts", "config", "clock", "version", "load"]
        );
    }
}
