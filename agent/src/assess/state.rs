//! What this node knows of itself ([`LocalState`]: the probes' latest reports, operator
//! state, the balancer's view) and what the registry's judgement of it came to
//! ([`Assessment`]). Folding reports in and writing the node's state for peers; no
//! judgement (that is the checks', run by [`super::CHECKS`]' loop).

use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::status::ConfigStatus;
use proto::{
    BalancerSeen, CheckState, ConfigSetState, DrainOrder, HealthBits, MountState, NodeId,
    NodeState, TaskPlacement, WallMicros,
};

use super::operator::OperatorState;
use super::reason::Reason;
use crate::config::Config;
use crate::core::Node;
use crate::probe::load::LoadSample;
use crate::probe::{CheckResult, ConfigSetReport, MountReport, ProbeReport};

/// This node's check results and operator state.
pub struct LocalState {
    pub(super) cfg: Arc<Config>,
    pub load: Option<LoadSample>,
    pub overloaded: bool,
    pub joined: bool,
    pub(super) app: Option<CheckResult>,
    pub(super) app_version: Option<Result<String, String>>,
    pub(super) mounts: Vec<Option<MountReport>>,
    pub(super) config: Option<Vec<ConfigSetReport>>,
    /// The nonce this node writes under every `shared` mount (one per incarnation).
    pub nonce: String,
    pub operator: OperatorState,
    /// Orders this node took for other nodes, gossiped until they expire.
    pub drain_orders: Vec<DrainOrder>,
    pub balancer: Option<BalancerSeen>,
    /// The end of the certificate this node runs with (`None`: unreadable). The driver
    /// sets it at start and when a reload brings new TLS files.
    pub cert_expires: Option<WallMicros>,
    /// When the assessment last said `draining` (for the agent-check's drain → maint).
    pub(super) draining_since: Option<Instant>,
    /// Every check has reported at least once since the start. From then on a check
    /// that a reload added or changed shows `first probe pending` until it reports, but
    /// does not make the node not-ready: a reload must not take a healthy primary out
    /// of the election for the few moments its new probes take.
    pub(super) settled: bool,
}

/// Everything that follows from the local state and the peers, at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    pub checks: Vec<CheckState>,
    pub mounts: Vec<MountState>,
    pub config: Vec<ConfigStatus>,
    /// Per alive peer, its config sets compared with the others' (see [`Detail`](super::check::Detail)).
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
            cert_expires: None,
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
    pub(super) fn config_sets(&self) -> Vec<ConfigSetState> {
        self.config
            .iter()
            .flatten()
            .map(crate::probe::config_hash::to_state)
            .collect()
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
            cert_expires: self.cert_expires,
            ..base.clone()
        }
    }
}

impl LocalState {
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
}

/// RFC 3339 (UTC, seconds) for wall µs.
pub fn rfc3339(w: WallMicros) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_micros(w.0))
        .to_string()
}
