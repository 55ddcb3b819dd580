//! [`ClusterView`]: the immutable snapshot the driver publishes after every turn. HTTP
//! handlers (and later the operator channel) read it and nothing else, so an answer never
//! waits on the driver, a probe or a lock.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use proto::status::{ClusterStatus, LoadStatus, NodeStatus, VersionStatus};
use proto::{HealthBits, Mode};

use crate::core::lease::{self, Lease};
use crate::core::{Member, MemberState, Node};
use crate::probe::load::LoadSample;

/// Why a node is not ready or not healthy, as reason codes safe to show anyone.
pub mod reason {
    /// Has not yet seen a quorum of voters since it started.
    pub const STARTING: &str = "starting";
    /// The first round of local checks has not finished.
    pub const CHECKS_PENDING: &str = "checks-pending";
    pub const OVERLOADED: &str = "overloaded";
    pub const NO_QUORUM: &str = "no-quorum";
    /// `/primary` on a node that does not hold the lease.
    pub const NOT_PRIMARY: &str = "not-primary";
    /// `/secondary` on the primary.
    pub const PRIMARY: &str = "primary";
}

/// Everything readers may know, as of `at`.
#[derive(Debug, Clone)]
pub struct ClusterView {
    pub at: Instant,
    /// The primary lease, if this node is primary; evaluated when an answer is given.
    pub lease: Option<Lease>,
    /// The lease's end on CLOCK_BOOTTIME, which also counts time suspended: a lease
    /// must hold on both clocks.
    pub lease_boot_until: Option<Duration>,
    pub node: String,
    pub cluster: String,
    pub role: &'static str,
    pub term: u64,
    /// `/ready`: joined and first checks done.
    pub ready: bool,
    /// `/health`: fit for traffic.
    pub healthy: bool,
    /// An operator drained this node and it no longer holds the primary role: `/health`
    /// answers [`drain_status`](Self::drain_status).
    pub draining: bool,
    /// `http.drain_status` (404 by default, for HAProxy's `disable-on-404`).
    pub drain_status: u16,
    /// Why not ready or not healthy.
    pub reasons: Vec<&'static str>,
    /// Every local check with its reason, for `/health?verbose`.
    pub checks: Vec<proto::CheckState>,
    /// This node's roles (`/role/{role}`).
    pub roles: Vec<String>,
    /// Every role some known node has: `/role/{role}` answers 404 for others.
    pub cluster_roles: std::collections::BTreeSet<String>,
    /// Every `[[task]]` and whether this node runs it now (`/task/{name}`).
    pub tasks: Vec<TaskClaim>,
    /// The HAProxy agent-check answer, without the newline (`up 80%`, `drain`, `down`,
    /// `maint`). Derived from the same state as `/health`: never `up` while it fails.
    pub agent_check: String,
    /// The `/cluster` document.
    pub status: ClusterStatus,
}

/// One `[[task]]` as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskClaim {
    pub name: String,
    /// `run_on = "primary"`: runs here exactly while the primary lease holds, judged at
    /// the moment of the request (like `/primary`).
    pub on_primary: bool,
    /// For other rules: whether this node runs it now.
    pub claimed: bool,
}

/// This node's own situation, as the driver knows it.
pub struct Local<'a> {
    pub config: &'a crate::config::Config,
    pub load: Option<LoadSample>,
    pub joined: bool,
    pub overloaded: bool,
}

impl Local<'_> {
    pub fn ready(&self) -> bool {
        self.joined && self.load.is_some()
    }

    pub fn healthy(&self) -> bool {
        self.ready() && !self.overloaded
    }

    /// May be primary: member mode, joined, first checks done (issue 4 adds app,
    /// mounts and draining).
    pub fn eligible(&self) -> bool {
        self.config.mode == Mode::Member && self.ready()
    }

    pub fn reasons(&self) -> Vec<&'static str> {
        let mut r = Vec::new();
        if !self.joined {
            r.push(reason::STARTING);
        }
        if self.load.is_none() {
            r.push(reason::CHECKS_PENDING);
        }
        if self.overloaded {
            r.push(reason::OVERLOADED);
        }
        r
    }

    pub fn health_bits(&self) -> HealthBits {
        HealthBits::default()
            .with(HealthBits::READY, self.ready())
            .with(HealthBits::HEALTHY, self.healthy())
            .with(HealthBits::OVERLOADED, self.overloaded)
    }
}

fn role_of(mode: Mode) -> &'static str {
    match mode {
        Mode::Member => "secondary",
        Mode::Witness => "witness",
    }
}

fn checks(load: &'static str) -> BTreeMap<String, String> {
    ["app", "mounts", "config", "clock", "version"]
        .into_iter()
        .map(|c| (c.to_owned(), "off".to_owned()))
        .chain(std::iter::once(("load".to_owned(), load.to_owned())))
        .collect()
}

fn member_status(m: &Member, now: Instant, primary: Option<&proto::NodeId>) -> NodeStatus {
    let st = m.node_state.as_ref();
    let load = m.load;
    let role = if primary == Some(&m.id) && m.state == MemberState::Alive {
        "primary"
    } else {
        role_of(m.mode)
    };
    NodeStatus {
        node: m.id.to_string(),
        addr: m.addr.clone(),
        state: m.state.as_str().to_owned(),
        role: role.to_owned(),
        local: false,
        ready: m.health.has(HealthBits::READY),
        healthy: m.health.has(HealthBits::HEALTHY) && m.state == MemberState::Alive,
        draining: m.health.has(HealthBits::DRAINING),
        priority: st.map(|s| s.priority).unwrap_or_default(),
        roles: st.map(|s| s.roles.clone()).unwrap_or_default(),
        incarnation: m.incarnation.0,
        rtt_ms: m.rtt.map(|d| round3(d.as_secs_f64() * 1000.0)),
        clock_offset_ms: m.clock_offset_us.map(|us| round3(us as f64 / 1000.0)),
        last_seen_ms: m
            .last_heard()
            .map(|t| now.saturating_duration_since(t).as_millis() as u64),
        phi: Some(round3(m.phi(now))),
        load: LoadStatus {
            cpu: f64::from(load.cpu_permille) / 1000.0,
            mem: f64::from(load.mem_permille) / 1000.0,
            load1: f64::from(load.load1_centi) / 100.0,
        },
        checks: checks(if m.health.has(HealthBits::OVERLOADED) {
            "fail"
        } else {
            "ok"
        }),
        config: Vec::new(),
        mounts: Vec::new(),
        version: VersionStatus {
            agent: st.map(|s| s.agent_version.clone()).unwrap_or_default(),
            app: st.and_then(|s| s.app_version.clone()),
        },
        check_reasons: BTreeMap::new(),
        drain: None,
        balancer: None,
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Builds the snapshot from the core and the local situation.
pub fn build(core: &Node, local: &Local<'_>, now: Instant, boot_now: Duration) -> ClusterView {
    let cfg = local.config;
    let load = local.load.unwrap_or_default();
    let lease = core.lease();
    let role = core.role_name(now);
    let primary = if lease::holds(lease.as_ref(), now) {
        Some(&cfg.node)
    } else {
        core.primary().filter(|p| **p != cfg.node)
    };
    let me = NodeStatus {
        node: cfg.node.to_string(),
        addr: cfg.advertise.to_string(),
        state: "alive".to_owned(),
        role: role.to_owned(),
        local: true,
        ready: local.ready(),
        healthy: local.healthy(),
        draining: false,
        priority: cfg.priority,
        roles: cfg.roles.clone(),
        incarnation: core.config().incarnation.0,
        rtt_ms: None,
        clock_offset_ms: None,
        last_seen_ms: None,
        phi: None,
        load: LoadStatus {
            cpu: round3(load.cpu),
            mem: round3(load.mem),
            load1: round3(load.load1),
        },
        checks: checks(match (&cfg.load, local.load) {
            (None, _) => "off",
            (Some(_), _) if local.overloaded => "fail",
            (Some(_), _) => "ok",
        }),
        config: Vec::new(),
        mounts: Vec::new(),
        version: VersionStatus {
            agent: env!("CARGO_PKG_VERSION").to_owned(),
            app: None,
        },
        check_reasons: BTreeMap::new(),
        drain: None,
        balancer: None,
    };
    let mut nodes = vec![me];
    nodes.extend(core.members().map(|m| member_status(m, now, primary)));
    nodes.sort_by(|a, b| a.node.cmp(&b.node));
    let known: Vec<&str> = core.members().map(|m| m.addr.as_str()).collect();
    let unreachable_peers = cfg
        .peers
        .iter()
        .map(|p| p.to_string())
        .filter(|p| !known.contains(&p.as_str()))
        .collect();
    let reasons = local.reasons();
    ClusterView {
        at: now,
        lease,
        lease_boot_until: lease.map(|l| boot_now + l.until.saturating_duration_since(now)),
        node: cfg.node.to_string(),
        cluster: cfg.cluster.to_string(),
        role,
        term: core.term().0,
        ready: local.ready(),
        healthy: local.healthy(),
        draining: false,
        drain_status: cfg.http.drain_status,
        reasons,
        checks: Vec::new(),
        roles: cfg.roles.clone(),
        cluster_roles: Default::default(),
        tasks: Vec::new(),
        agent_check: "down".into(),
        status: ClusterStatus {
            cluster: cfg.cluster.to_string(),
            node: cfg.node.to_string(),
            term: core.term().0,
            primary: primary.map(|p| p.to_string()),
            quorum: core.has_quorum(),
            frozen: core.frozen(),
            voters: cfg.voters(),
            nodes,
            unreachable_peers,
            tasks: Vec::new(),
        },
    }
}
