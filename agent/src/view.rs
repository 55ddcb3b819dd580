//! [`ClusterView`]: the immutable snapshot the driver publishes after every turn. HTTP
//! handlers and the operator channel read it and nothing else, so an answer never waits
//! on the driver, a probe or a lock. The answers both give (the role at a moment, whether
//! a task runs here) are its methods.
//!
//! Must never judge: the checks, reasons and config comparisons are the assessment's
//! ([`crate::assess`]); the view only arranges them with the core's state for readers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::status::{
    BalancerStatus, ClusterStatus, DrainStatus, LoadStatus, MountStatus, NodeStatus, TaskStatus,
    VersionStatus,
};
use proto::{CheckCode, CheckName, HealthBits, Mode, NodeState, Role};

use crate::assess::{Assessment, CHECKS, LocalState, Reason, rfc3339};
use crate::config::Cidr;
use crate::core::lease::{self, Lease};
use crate::core::tasks::RunOn;
use crate::core::{Member, MemberState, Node};
use crate::events::Tally;

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
    pub role: Role,
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
    pub reasons: Vec<Reason>,
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
    /// Who may read `/cluster` and `/metrics` (`http.allow`, as last reloaded).
    pub http_allow: Arc<[Cidr]>,
    /// The `/cluster` document.
    pub status: ClusterStatus,
    /// What happened since the agent started, counted (the driver fills it in as it
    /// publishes; `/metrics` shows it).
    pub counts: Tally,
    /// The QUIC links to peers that are up (the driver fills it in as it publishes).
    pub links: PeerLinks,
}

/// The QUIC links to peers that are up, by which end dialed. A settled pair keeps one,
/// dialed by the node with the lower id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerLinks {
    pub dialed: usize,
    pub accepted: usize,
}

impl ClusterView {
    /// Whether this node holds the primary lease at `now`/`boot_now`, on both clocks.
    pub fn is_primary_at(&self, now: Instant, boot_now: Duration) -> bool {
        lease::holds(self.lease.as_ref(), now)
            && self.lease_boot_until.is_some_and(|b| boot_now < b)
    }

    /// The role this node is in at `now`/`boot_now`, and the term that goes with it:
    /// the snapshot may say primary while the lease ran out since it was taken.
    pub fn role_now(&self, now: Instant, boot_now: Duration) -> (Role, u64) {
        if self.is_primary_at(now, boot_now) {
            (
                Role::Primary,
                self.lease.map(|l| l.term.0).unwrap_or(self.term),
            )
        } else if self.role == Role::Primary {
            (Role::Candidate, self.term)
        } else {
            (self.role, self.term)
        }
    }

    /// Whether this node runs task `t` at `now`/`boot_now`: the primary lease for
    /// `run_on = "primary"`, else the task's claim, on both clocks (a node that was
    /// paused, starved or suspended answers no before another may take the task).
    pub fn runs_here(&self, t: &TaskClaim, now: Instant, boot_now: Duration) -> bool {
        if t.on_primary {
            self.role_now(now, boot_now).0 == Role::Primary
        } else {
            t.until.is_some_and(|u| now < u) && t.boot_until.is_some_and(|b| boot_now < b)
        }
    }

    /// Whether this node runs task `name` at `now`/`boot_now`, and the term to fence
    /// with: what `/task/{name}` and the operator channel's `should-run` answer. `None`
    /// for a task that is not configured.
    pub fn task_answer(&self, name: &str, now: Instant, boot_now: Duration) -> Option<(bool, u64)> {
        let t = self.tasks.iter().find(|t| t.name == name)?;
        Some((
            self.runs_here(t, now, boot_now),
            self.role_now(now, boot_now).1,
        ))
    }
}

/// The `/cluster` document as text: what `GET /cluster` answers and what an operator
/// channel snapshot carries, byte for byte.
pub fn cluster_json(status: &ClusterStatus) -> serde_json::Result<String> {
    serde_json::to_string_pretty(status).map(|body| body + "\n")
}

/// One `[[task]]` as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskClaim {
    pub name: String,
    /// `run_on = "primary"`: runs here exactly while the primary lease holds, judged at
    /// the moment of the request (like `/primary`).
    pub on_primary: bool,
    /// For other rules: the claim this node holds, as of the view: it runs the task
    /// while both clocks are short of these ends, judged at the moment of the request
    /// (like the primary lease).
    pub until: Option<Instant>,
    pub boot_until: Option<Duration>,
}

/// The local inputs of a view besides the core: the assessment and what the driver keeps.
pub struct Inputs<'a> {
    pub config: &'a crate::config::Config,
    pub state: &'a LocalState,
    pub assessment: &'a Assessment,
    /// This node's full state as peers fetch it.
    pub node_state: &'a NodeState,
    pub agent_check: String,
    /// Keys of the config file a reload did not apply (see the reload module).
    pub pending_restart: &'a [String],
}

fn role_of(mode: Mode) -> Role {
    match mode {
        Mode::Member => Role::Secondary,
        Mode::Witness => Role::Witness,
    }
}

/// The `checks` map and reasons of a node from the check results it gossips. Before its
/// state is fetched, what the heartbeat bits say.
fn checks_of(
    st: Option<&NodeState>,
    health: HealthBits,
) -> (BTreeMap<CheckName, CheckCode>, BTreeMap<CheckName, String>) {
    let mut checks = BTreeMap::new();
    let mut reasons = BTreeMap::new();
    match st {
        Some(st) if !st.checks.is_empty() => {
            for c in &st.checks {
                checks.insert(c.name.clone(), c.code);
                if !c.reason.is_empty() {
                    reasons.insert(c.name.clone(), c.reason.clone());
                }
            }
        }
        _ => {
            for spec in &CHECKS {
                let code = if health.has(spec.bit) {
                    spec.bad
                } else {
                    CheckCode::Ok
                };
                checks.insert(spec.name.clone(), code);
            }
        }
    }
    (checks, reasons)
}

fn mounts_of(st: Option<&NodeState>) -> Vec<MountStatus> {
    st.map(|s| {
        s.mounts
            .iter()
            .map(|m| MountStatus {
                path: m.path.clone(),
                status: m.code.as_str().to_owned(),
                source: m.source.clone(),
                fstype: m.fstype.clone(),
                reason: m.reason.clone(),
            })
            .collect()
    })
    .unwrap_or_default()
}

fn drain_of(d: Option<&proto::Drain>) -> Option<DrainStatus> {
    d.map(|d| DrainStatus {
        reason: d.reason.clone(),
        by: d.by.clone(),
        since: rfc3339(d.since),
        until: d.until.map(rfc3339),
    })
}

fn balancer_of(b: Option<&proto::BalancerSeen>) -> Option<BalancerStatus> {
    b.map(|b| BalancerStatus {
        state: b.state.clone(),
        balancer: b.balancer.clone(),
        weight: b.weight.clone(),
        since: rfc3339(b.since),
    })
}

fn member_status(
    m: &Member,
    now: Instant,
    primary: Option<&proto::NodeId>,
    a: &Assessment,
) -> NodeStatus {
    let st = m.node_state.as_ref();
    let load = m.load;
    let role = if primary == Some(&m.id) && m.state == MemberState::Alive {
        Role::Primary
    } else {
        role_of(m.mode)
    };
    let (checks, check_reasons) = checks_of(st, m.health);
    NodeStatus {
        node: m.id.to_string(),
        addr: m.addr.clone(),
        state: m.state,
        role,
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
        checks,
        config: a.config_of(&m.id),
        mounts: mounts_of(st),
        version: VersionStatus {
            agent: st.map(|s| s.agent_version.clone()).unwrap_or_default(),
            app: st.and_then(|s| s.app_version.clone()),
        },
        check_reasons,
        drain: drain_of(st.and_then(|s| s.drain.as_ref())),
        balancer: balancer_of(st.and_then(|s| s.balancer.as_ref())),
        suspected_by: Vec::new(),
        cert_expires: st.and_then(|s| s.cert_expires).map(rfc3339),
    }
}

/// Who holds `node` suspect or dead, among the nodes whose state this node has (alive
/// peers and itself), by name and in name order.
fn suspected_by(node: &str, states: &[(&str, &NodeState)]) -> Vec<String> {
    let mut by: Vec<String> = states
        .iter()
        .filter(|(_, s)| s.suspects.iter().any(|x| x.as_str() == node))
        .map(|(name, _)| (*name).to_owned())
        .collect();
    by.sort();
    by
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Builds the snapshot from the core and the local situation.
pub fn build(core: &Node, local: &Inputs<'_>, now: Instant, boot_now: Duration) -> ClusterView {
    let cfg = local.config;
    let a = local.assessment;
    let load = local.state.load.unwrap_or_default();
    let lease = core.lease();
    let lease_held = lease::holds(lease.as_ref(), now);
    let role = core.role_name(now);
    let primary = if lease_held {
        Some(&cfg.node)
    } else {
        core.primary().filter(|p| **p != cfg.node)
    };
    let mut states: Vec<(&str, &NodeState)> = core
        .members()
        .filter(|m| m.state == MemberState::Alive && m.watched)
        .filter_map(|m| m.node_state.as_ref().map(|s| (m.id.as_str(), s)))
        .collect();
    states.push((cfg.node.as_str(), local.node_state));
    let (checks, check_reasons) = checks_of(Some(local.node_state), a.health);
    let me = NodeStatus {
        node: cfg.node.to_string(),
        addr: cfg.advertise.to_string(),
        state: MemberState::Alive,
        role,
        local: true,
        ready: a.ready,
        healthy: a.healthy,
        draining: a.drained,
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
        checks,
        config: a.config.clone(),
        mounts: mounts_of(Some(local.node_state)),
        version: VersionStatus {
            agent: env!("CARGO_PKG_VERSION").to_owned(),
            app: local.state.app_version().map(str::to_owned),
        },
        check_reasons,
        drain: drain_of(local.state.operator.drain.as_ref()),
        balancer: balancer_of(local.state.balancer.as_ref()),
        suspected_by: Vec::new(),
        cert_expires: local.state.cert_expires.map(rfc3339),
    };
    let mut nodes = vec![me];
    // A member this node does not watch (a non-voter, seen from another) has no state
    // here worth showing: `members.unwatched` names it, and the voters show it.
    nodes.extend(
        core.members()
            .filter(|m| m.watched)
            .map(|m| member_status(m, now, primary, a)),
    );
    nodes.sort_by(|a, b| a.node.cmp(&b.node));
    for n in &mut nodes {
        n.suspected_by = suspected_by(&n.node, &states);
    }
    // A peer this node is not meant to reach (`peers` may list the whole fleet) is not
    // unreachable.
    let known: Vec<&str> = core
        .members()
        .map(|m| m.addr.as_str())
        .chain(core.unwatched_slots().map(|s| s.addr.as_str()))
        .collect();
    let unreachable_peers = cfg
        .peers
        .iter()
        .map(|p| p.to_string())
        .filter(|p| !known.contains(&p.as_str()))
        .collect();
    let cluster_roles = nodes.iter().flat_map(|n| n.roles.iter().cloned()).collect();
    let tasks: Vec<TaskClaim> = cfg
        .tasks
        .iter()
        .map(|t| {
            let until = core.task_claim(&t.name, now).map(|c| c.until);
            TaskClaim {
                name: t.name.clone(),
                on_primary: t.run_on == RunOn::Primary,
                until,
                boot_until: until.map(|u| boot_now + u.saturating_duration_since(now)),
            }
        })
        .collect();
    let task_status = cfg
        .tasks
        .iter()
        .map(|t| {
            let holder = a
                .placements
                .iter()
                .find(|p| p.name == t.name)
                .and_then(|p| p.holder.as_ref())
                .map(|h| h.to_string());
            TaskStatus {
                name: t.name.clone(),
                run_on: t.run_on.to_string(),
                running_here: if t.run_on == RunOn::Primary {
                    lease_held
                } else {
                    tasks.iter().any(|c| c.name == t.name && c.until.is_some())
                },
                holder,
            }
        })
        .collect();
    let timing_mismatch: Vec<String> = core.timing_mismatches(now).map(|p| p.to_string()).collect();
    let mut reasons = a.reasons.clone();
    if !timing_mismatch.is_empty() {
        reasons.push(Reason::Timing);
    }
    let members = members_status(core, cfg);
    if members.disagrees() {
        reasons.push(Reason::Members);
    }
    ClusterView {
        at: now,
        lease,
        lease_boot_until: lease.map(|l| boot_now + l.until.saturating_duration_since(now)),
        node: cfg.node.to_string(),
        cluster: cfg.cluster.to_string(),
        role,
        term: core.term().0,
        ready: a.ready,
        healthy: a.healthy,
        draining: a.draining_since.is_some(),
        drain_status: cfg.http.drain_status,
        reasons,
        checks: a.checks.clone(),
        roles: cfg.roles.clone(),
        cluster_roles,
        tasks,
        agent_check: local.agent_check.clone(),
        http_allow: cfg.http.allow.as_slice().into(),
        status: ClusterStatus {
            cluster: cfg.cluster.to_string(),
            node: cfg.node.to_string(),
            term: core.term().0,
            primary: primary.map(|p| p.to_string()),
            quorum: core.has_quorum(),
            frozen: core.frozen(),
            voters: core.voters(),
            nodes,
            unreachable_peers,
            tasks: task_status,
            pending_restart: local.pending_restart.to_vec(),
            timing_mismatch: timing_mismatch.clone(),
            members,
        },
        counts: Tally::default(),
        links: PeerLinks::default(),
    }
}

/// The agreed member set as this node holds it, beside what its `peers` file says.
fn members_status(core: &Node, cfg: &crate::config::Config) -> proto::status::MembersStatus {
    let set = core.agreed();
    let listed = cfg.bootstrap_list();
    let held = !set.stamp.is_none();
    let agreed: Vec<&str> = set.members.iter().map(|s| s.addr.as_str()).collect();
    proto::status::MembersStatus {
        stamp: if held {
            set.stamp.to_string()
        } else {
            String::new()
        },
        members: set
            .members
            .iter()
            .map(|s| proto::status::MemberStatus {
                node: s.node.as_ref().map(|n| n.to_string()),
                addr: s.addr.clone(),
                voter: s.voter,
            })
            .collect(),
        problem: core.members_problem().map(|p| p.to_string()),
        unwatched: core
            .unwatched_slots()
            .map(|s| {
                s.node
                    .as_ref()
                    .map_or_else(|| s.addr.clone(), |n| n.to_string())
            })
            .collect(),
        only_in_peers: if held {
            listed
                .iter()
                .filter(|a| !agreed.contains(&a.as_str()))
                .cloned()
                .collect()
        } else {
            Vec::new()
        },
        not_in_peers: agreed
            .iter()
            .filter(|a| !listed.iter().any(|l| l == *a))
            .map(|a| a.to_string())
            .collect(),
        change: core.member_change_in_flight().map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Before a node's state is fetched, its heartbeat bits stand for its checks: every
    /// check in the registry, `ok` unless its bit is set.
    #[test]
    fn checks_before_the_state_is_fetched_come_from_the_heartbeat_bits() {
        let bits = HealthBits(HealthBits::CONFIG_DRIFT | HealthBits::MOUNT_FAIL);
        let (checks, reasons) = checks_of(None, bits);
        let got: Vec<(&str, &str)> = checks
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("app", "ok"),
                ("certs", "ok"),
                ("clock", "ok"),
                ("config", "drift"),
                ("load", "ok"),
                ("mounts", "fail"),
                ("version", "ok"),
            ]
        );
        assert!(reasons.is_empty());
    }
}
