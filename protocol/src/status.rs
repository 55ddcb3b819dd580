//! The JSON shape of `/cluster` and `quorate status --json`: the cluster as one node sees
//! it. The agent serialises it and the operator tool reads it, so it lives here, once.
//! Fields are only ever added; readers ignore what they do not know.
//!
//! Also the one judgement of such a document as a whole, [`ClusterStatus::verdict`]: ok,
//! degraded or critical, with its findings (what `quorate status` exits with and prints
//! last, and what its `--json` carries as `verdict`). It lives beside the document so
//! that every reader judges it the same way. It must never read anything but the
//! document, nor list the checks it knows: a check it has never heard of counts too.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use std::fmt;

use crate::{CheckCode, CheckName, MemberState, Role};

/// One node's view of the whole cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub cluster: String,
    /// The node that answered.
    pub node: String,
    pub term: u64,
    pub primary: Option<String>,
    /// Whether the answering node sees a majority of voters alive (itself included).
    pub quorum: bool,
    pub frozen: bool,
    /// How many voters the agreed member set has (witnesses included).
    pub voters: usize,
    /// Every identified node, the answering one included.
    pub nodes: Vec<NodeStatus>,
    /// Configured peer addresses no node has been identified at yet.
    #[serde(default)]
    pub unreachable_peers: Vec<String>,
    /// Every `[[task]]` and where it runs.
    #[serde(default)]
    pub tasks: Vec<TaskStatus>,
    /// Config keys whose value in the answering node's file differs from the one it
    /// runs with, because they apply only at a restart (`timing.lease`, `peers`). Empty
    /// when the file and the running agent agree.
    #[serde(default)]
    pub pending_restart: Vec<String>,
    /// Peers whose `[timing]` does not fit the answering node's (a voter's election
    /// timeout that does not outlast a primary's lease, either way round): leases and
    /// votes between them do not count. Empty when every timing fits.
    #[serde(default)]
    pub timing_mismatch: Vec<String>,
    /// The agreed member set the answering node holds, and what disagrees with it.
    #[serde(default)]
    pub members: MembersStatus,
}

/// The agreed member set as one node holds it (`quorate member` changes it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MembersStatus {
    /// Which change made it (`TERM.INDEX`); empty while the node holds none.
    pub stamp: String,
    pub members: Vec<MemberStatus>,
    /// Why the answering node cannot vote or campaign, if it cannot (bootstrapping,
    /// bootstrap lists that disagree, not a member, removed).
    pub problem: Option<String>,
    /// Addresses in the answering node's `peers` (or its own `advertise`) that the
    /// agreed set lacks, and agreed addresses its `peers` lacks: the file disagrees with
    /// the cluster. Only reported, never acted on.
    #[serde(default)]
    pub only_in_peers: Vec<String>,
    #[serde(default)]
    pub not_in_peers: Vec<String>,
    /// A change the answering node (the primary) is committing.
    pub change: Option<String>,
    /// Members (ids, or addresses of unnamed slots) the answering node exchanges no
    /// heartbeats with, so does not judge: on a non-voter, the other non-voters. They
    /// are absent from `nodes`; the voters watch them. Never a fault.
    #[serde(default)]
    pub unwatched: Vec<String>,
}

impl MembersStatus {
    /// Whether anything here is worth the `members` reason.
    pub fn disagrees(&self) -> bool {
        self.problem.is_some() || !self.only_in_peers.is_empty() || !self.not_in_peers.is_empty()
    }
}

/// One member of the agreed set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberStatus {
    /// Its node id; `None` until a bootstrap slot's node has been seen by a primary.
    pub node: Option<String>,
    pub addr: String,
    pub voter: bool,
}

/// One singleton task, as the answering node places it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskStatus {
    pub name: String,
    /// The `run_on` rule as written.
    pub run_on: String,
    /// Where the rule places it now.
    pub holder: Option<String>,
    /// Whether the answering node runs it now (its `/task/{name}` answers 200).
    pub running_here: bool,
}

/// One node, as the answering node sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub node: String,
    /// Its QUIC address (`advertise`).
    pub addr: String,
    /// `alive`, `suspect`, `dead` or `left`.
    pub state: MemberState,
    /// `primary`, `secondary`, `witness` or `candidate`.
    pub role: Role,
    /// Whether this entry is the answering node itself.
    #[serde(default)]
    pub local: bool,
    pub ready: bool,
    pub healthy: bool,
    pub draining: bool,
    pub priority: u32,
    pub roles: Vec<String>,
    pub incarnation: u64,
    pub rtt_ms: Option<f64>,
    pub clock_offset_ms: Option<f64>,
    /// Milliseconds since the last heartbeat from it (`None` for the answering node).
    pub last_seen_ms: Option<u64>,
    /// Current suspicion level of the failure detector.
    pub phi: Option<f64>,
    pub load: LoadStatus,
    /// Check name → `ok`, `fail`, `hung`, `drift`, `warn` or `off`.
    pub checks: BTreeMap<CheckName, CheckCode>,
    #[serde(default)]
    pub config: Vec<ConfigStatus>,
    #[serde(default)]
    pub mounts: Vec<MountStatus>,
    pub version: VersionStatus,
    /// Why each check that is not `ok` or `off` fails.
    #[serde(default)]
    pub check_reasons: BTreeMap<CheckName, String>,
    #[serde(default)]
    pub drain: Option<DrainStatus>,
    /// What the load balancer last said about the node.
    #[serde(default)]
    pub balancer: Option<BalancerStatus>,
    /// The nodes whose failure detector holds this one suspect or dead (the answering
    /// node's own judgement included), by name.
    #[serde(default)]
    pub suspected_by: Vec<String>,
    /// When the node's certificate ends (`notAfter`), RFC 3339 UTC, as the node itself
    /// reported it; `None` until its state is fetched or when it could not be read.
    #[serde(default)]
    pub cert_expires: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrainStatus {
    pub reason: String,
    pub by: String,
    /// RFC 3339, UTC.
    pub since: String,
    pub until: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BalancerStatus {
    /// `UP`, `UP 2/3`, `DOWN`, `NOLB`, `MAINT`…
    pub state: String,
    pub balancer: Option<String>,
    pub weight: Option<String>,
    pub since: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct LoadStatus {
    /// 0.0–1.0 of all cores.
    pub cpu: f64,
    /// 0.0–1.0.
    pub mem: f64,
    pub load1: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigStatus {
    pub name: String,
    pub hash: String,
    pub agrees_with: Vec<String>,
    pub differs_from: Vec<String>,
    /// `ok`, `drift` or `fail` (cannot hash), for this set on this node.
    #[serde(default)]
    pub status: String,
    /// Files whose hash differs from some node's, or that some node lacks.
    #[serde(default)]
    pub differing_files: Vec<FileDrift>,
    /// An operator's acknowledgement covering this set, if any: "reason (by, until …)".
    #[serde(default)]
    pub acknowledged: Option<String>,
}

/// One file of a config set across nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileDrift {
    pub path: String,
    /// Short hash on this node (`None`: this node lacks the file).
    pub hash: Option<String>,
    pub agrees_with: Vec<String>,
    pub differs_from: Vec<String>,
    /// Nodes that lack the file.
    pub missing_on: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MountStatus {
    pub path: String,
    pub status: String,
    pub source: Option<String>,
    pub fstype: Option<String>,
    #[serde(default)]
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct VersionStatus {
    pub agent: String,
    pub app: Option<String>,
}

/// How the cluster stands as a whole, judged from one node's document: what a monitoring
/// check reports (`quorate status` exits with [`Level::exit_code`]). The level is the
/// worst finding's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub level: Level,
    /// Worst first, then node by node, then what concerns the whole cluster; empty
    /// exactly when the level is `ok`.
    pub findings: Vec<Finding>,
}

/// A verdict's level, worst last (so `max` is the worst).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// One primary, a quorum, and nothing else to report.
    Ok,
    /// Serving, with something an operator should look at.
    Degraded,
    /// No primary or no quorum (and, decided by the caller, no agent to ask).
    Critical,
}

impl Level {
    /// The exit status of a monitoring check: Nagios' and Icinga's OK, WARNING, CRITICAL.
    pub fn exit_code(self) -> u8 {
        match self {
            Level::Ok => 0,
            Level::Degraded => 1,
            Level::Critical => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Degraded => "degraded",
            Level::Critical => "critical",
        }
    }
}

/// One thing a verdict reports. In JSON an object whose `kind` is the variant's name in
/// snake case, with the variant's fields beside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    /// The answering node knows of no primary holding a lease (critical).
    NoPrimary,
    /// The answering node does not see a majority of the voters alive (critical).
    NoQuorum,
    /// A member that is not `alive`: `suspect`, `dead`, `left`, or a state this build
    /// does not know. Its other fields are stale, so nothing else is reported for it.
    Down { node: String, state: MemberState },
    /// Joined but not ready (first checks, the upgrade gate).
    NotReady { node: String },
    /// Ready, not draining, and still not fit for traffic.
    Unhealthy { node: String },
    /// Taken out of traffic by an operator.
    Draining { node: String },
    /// A check whose code is neither `ok` nor `off`: `fail`, `hung`, `drift`, or any code
    /// a newer agent sends.
    Check {
        node: String,
        check: CheckName,
        code: CheckCode,
    },
    /// Elections and handovers are stopped: a failed primary would not be replaced.
    Frozen,
    /// A configured peer address no node has been identified at.
    UnreachablePeer { addr: String },
    /// Peers whose `[timing]` does not fit the answering node's: leases and votes
    /// between them do not count.
    Timing { node: String, peers: Vec<String> },
    /// The answering node's member set has a problem, or its `peers` disagree with it.
    Members {
        node: String,
        problem: Option<String>,
    },
}

impl Finding {
    pub fn level(&self) -> Level {
        match self {
            Finding::NoPrimary | Finding::NoQuorum => Level::Critical,
            _ => Level::Degraded,
        }
    }
}

impl ClusterStatus {
    /// Judges the document as a whole. Critical: no primary, no quorum. Degraded: any
    /// member not alive, not ready, unhealthy or draining; any check not `ok` or `off`
    /// (the clock check is how an offset beyond `clock.max_offset` shows, on the node
    /// the majority finds off); frozen; a peer never seen; a timing mismatch; a member
    /// set problem. Anything else is ok.
    pub fn verdict(&self) -> Verdict {
        let mut findings = Vec::new();
        if self.primary.is_none() {
            findings.push(Finding::NoPrimary);
        }
        if !self.quorum {
            findings.push(Finding::NoQuorum);
        }
        let mut nodes: Vec<&NodeStatus> = self.nodes.iter().collect();
        nodes.sort_by(|a, b| a.node.cmp(&b.node));
        for n in nodes {
            findings.extend(n.findings());
        }
        if self.frozen {
            findings.push(Finding::Frozen);
        }
        findings.extend(
            self.unreachable_peers
                .iter()
                .map(|addr| Finding::UnreachablePeer { addr: addr.clone() }),
        );
        if !self.timing_mismatch.is_empty() {
            findings.push(Finding::Timing {
                node: self.node.clone(),
                peers: self.timing_mismatch.clone(),
            });
        }
        if self.members.disagrees() {
            findings.push(Finding::Members {
                node: self.node.clone(),
                problem: self.members.problem.clone(),
            });
        }
        let level = findings
            .iter()
            .map(Finding::level)
            .max()
            .unwrap_or(Level::Ok);
        Verdict { level, findings }
    }
}

impl NodeStatus {
    /// What the verdict reports about this node.
    fn findings(&self) -> Vec<Finding> {
        let node = || self.node.clone();
        if self.state != MemberState::Alive {
            return vec![Finding::Down {
                node: node(),
                state: self.state,
            }];
        }
        let mut out = Vec::new();
        if !self.ready {
            out.push(Finding::NotReady { node: node() });
        }
        if self.draining {
            out.push(Finding::Draining { node: node() });
        }
        // A drained node answers /health with the drain code: that is not a fault too.
        if self.ready && !self.healthy && !self.draining {
            out.push(Finding::Unhealthy { node: node() });
        }
        // Not `CheckCode::passing`: only these two words are fine, so a code added later
        // (a warning) is reported whatever `passing` comes to mean.
        out.extend(
            self.checks
                .iter()
                .filter(|(_, code)| !matches!(code, CheckCode::Ok | CheckCode::Off))
                .map(|(check, code)| Finding::Check {
                    node: node(),
                    check: check.clone(),
                    code: *code,
                }),
        );
        out
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::NoPrimary => f.write_str("no primary"),
            Finding::NoQuorum => f.write_str("no quorum"),
            Finding::Down { node, state } => write!(f, "{node} {state}"),
            Finding::NotReady { node } => write!(f, "{node} not ready"),
            Finding::Unhealthy { node } => write!(f, "{node} unhealthy"),
            Finding::Draining { node } => write!(f, "{node} draining"),
            Finding::Check { node, check, code } => write!(f, "{check} {code} on {node}"),
            Finding::Frozen => f.write_str("frozen (no failover)"),
            Finding::UnreachablePeer { addr } => write!(f, "peer {addr} never seen"),
            Finding::Timing { node, peers } => {
                write!(f, "timing mismatch between {node} and {}", peers.join(", "))
            }
            Finding::Members {
                node,
                problem: Some(problem),
            } => write!(f, "members on {node}: {problem}"),
            Finding::Members {
                node,
                problem: None,
            } => {
                write!(
                    f,
                    "members on {node}: peers disagree with the agreed member set"
                )
            }
        }
    }
}

/// One line: the level, then the findings (`degraded: n3 dead; config drift on n2`).
impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.level.as_str())?;
        let mut sep = ": ";
        for finding in &self.findings {
            write!(f, "{sep}{finding}")?;
            sep = "; ";
        }
        if self.findings.is_empty() {
            f.write_str(": one primary, quorum, every node alive and healthy")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn node(name: &str, role: Role) -> NodeStatus {
        NodeStatus {
            node: name.into(),
            addr: format!("10.0.0.{}:7700", name.len()),
            state: MemberState::Alive,
            role,
            local: name == "n1",
            ready: true,
            healthy: true,
            draining: false,
            priority: 100,
            roles: vec![],
            incarnation: 1,
            rtt_ms: None,
            clock_offset_ms: None,
            last_seen_ms: None,
            phi: None,
            load: LoadStatus::default(),
            checks: [
                (CheckName::App, CheckCode::Ok),
                (CheckName::Mounts, CheckCode::Off),
                (CheckName::Config, CheckCode::Ok),
                (CheckName::Clock, CheckCode::Ok),
            ]
            .into_iter()
            .collect(),
            config: vec![],
            mounts: vec![],
            version: VersionStatus::default(),
            check_reasons: BTreeMap::new(),
            drain: None,
            balancer: None,
            suspected_by: vec![],
            cert_expires: None,
        }
    }

    /// Three alive, healthy nodes, n2 primary, seen from n1.
    fn healthy() -> ClusterStatus {
        ClusterStatus {
            cluster: "dam-prod".into(),
            node: "n1".into(),
            term: 7,
            primary: Some("n2".into()),
            quorum: true,
            frozen: false,
            voters: 3,
            // Not in id order: findings come node by node, in id order.
            nodes: vec![
                node("n3", Role::Secondary),
                node("n1", Role::Secondary),
                node("n2", Role::Primary),
            ],
            unreachable_peers: vec![],
            tasks: vec![],
            pending_restart: vec![],
            timing_mismatch: vec![],
            members: MembersStatus::default(),
        }
    }

    fn at<'a>(s: &'a mut ClusterStatus, name: &str) -> &'a mut NodeStatus {
        s.nodes.iter_mut().find(|n| n.node == name).unwrap()
    }

    /// (what changed, the change, the level, the line `quorate status` prints last).
    type Case = (&'static str, fn(&mut ClusterStatus), Level, &'static str);

    #[test]
    fn verdict_table() {
        let cases: &[Case] = &[
            (
                "healthy",
                |_| {},
                Level::Ok,
                "ok: one primary, quorum, every node alive and healthy",
            ),
            (
                "pending restart and tasks are no fault",
                |s| s.pending_restart = vec!["timing.lease".into()],
                Level::Ok,
                "ok: one primary, quorum, every node alive and healthy",
            ),
            (
                "no primary",
                |s| s.primary = None,
                Level::Critical,
                "critical: no primary",
            ),
            (
                "no quorum, two dead",
                |s| {
                    s.quorum = false;
                    s.primary = None;
                    at(s, "n2").state = MemberState::Dead;
                    at(s, "n3").state = MemberState::Suspect;
                },
                Level::Critical,
                "critical: no primary; no quorum; n2 dead; n3 suspect",
            ),
            (
                "a primary without quorum (a lease about to end)",
                |s| s.quorum = false,
                Level::Critical,
                "critical: no quorum",
            ),
            (
                "dead: its stale checks are not reported",
                |s| {
                    let n3 = at(s, "n3");
                    n3.state = MemberState::Dead;
                    n3.healthy = false;
                    n3.checks.insert(CheckName::App, CheckCode::Fail);
                },
                Level::Degraded,
                "degraded: n3 dead",
            ),
            (
                "left",
                |s| at(s, "n3").state = MemberState::Left,
                Level::Degraded,
                "degraded: n3 left",
            ),
            (
                "a state this build does not know",
                |s| at(s, "n3").state = MemberState::Unknown,
                Level::Degraded,
                "degraded: n3 unknown",
            ),
            (
                "unhealthy with the check that says why",
                |s| {
                    let n3 = at(s, "n3");
                    n3.healthy = false;
                    n3.checks.insert(CheckName::App, CheckCode::Fail);
                },
                Level::Degraded,
                "degraded: n3 unhealthy; app fail on n3",
            ),
            (
                "not ready is said once, not also unhealthy",
                |s| {
                    let n3 = at(s, "n3");
                    n3.ready = false;
                    n3.healthy = false;
                },
                Level::Degraded,
                "degraded: n3 not ready",
            ),
            (
                "drift and a hung mount",
                |s| {
                    at(s, "n2")
                        .checks
                        .insert(CheckName::Config, CheckCode::Drift);
                    at(s, "n3")
                        .checks
                        .insert(CheckName::Mounts, CheckCode::Hung);
                },
                Level::Degraded,
                "degraded: config drift on n2; mounts hung on n3",
            ),
            (
                "a clock off beyond the limit, as the clock check attributes it",
                |s| {
                    let n1 = at(s, "n1");
                    n1.checks.insert(CheckName::Clock, CheckCode::Fail);
                    n1.clock_offset_ms = Some(900.0);
                },
                Level::Degraded,
                "degraded: clock fail on n1",
            ),
            (
                // As a newer agent's `certs` check reads `warn` before a certificate
                // expires (a word chosen here that no build will ever know).
                "a check and a code this build has never heard of",
                |s| {
                    let code = serde_json::from_str("\"someday\"").unwrap();
                    at(s, "n2").checks.insert(CheckName::parse("certs"), code);
                },
                Level::Degraded,
                "degraded: certs unknown on n2",
            ),
            (
                "draining, not also unhealthy",
                |s| {
                    let n3 = at(s, "n3");
                    n3.draining = true;
                    n3.healthy = false;
                },
                Level::Degraded,
                "degraded: n3 draining",
            ),
            (
                "frozen",
                |s| s.frozen = true,
                Level::Degraded,
                "degraded: frozen (no failover)",
            ),
            (
                "a peer never seen",
                |s| s.unreachable_peers = vec!["10.0.0.14:7700".into()],
                Level::Degraded,
                "degraded: peer 10.0.0.14:7700 never seen",
            ),
            (
                "timing",
                |s| s.timing_mismatch = vec!["n2".into(), "n3".into()],
                Level::Degraded,
                "degraded: timing mismatch between n1 and n2, n3",
            ),
            (
                "members: a problem",
                |s| s.members.problem = Some("not a voter in the agreed member set".into()),
                Level::Degraded,
                "degraded: members on n1: not a voter in the agreed member set",
            ),
            (
                "members: peers disagree",
                |s| s.members.only_in_peers = vec!["10.0.0.14:7700".into()],
                Level::Degraded,
                "degraded: members on n1: peers disagree with the agreed member set",
            ),
            (
                "critical first, then nodes in id order, then the cluster",
                |s| {
                    s.frozen = true;
                    s.primary = None;
                    at(s, "n3").state = MemberState::Dead;
                    at(s, "n1").draining = true;
                },
                Level::Critical,
                "critical: no primary; n1 draining; n3 dead; frozen (no failover)",
            ),
        ];
        for (what, change, level, line) in cases {
            let mut s = healthy();
            change(&mut s);
            let v = s.verdict();
            assert_eq!(v.level, *level, "{what}");
            assert_eq!(v.to_string(), *line, "{what}");
            assert_eq!(v.findings.is_empty(), *level == Level::Ok, "{what}");
        }
    }

    #[test]
    fn exit_codes_are_a_monitoring_check_s() {
        assert_eq!(Level::Ok.exit_code(), 0);
        assert_eq!(Level::Degraded.exit_code(), 1);
        assert_eq!(Level::Critical.exit_code(), 2);
        assert!(Level::Ok < Level::Degraded && Level::Degraded < Level::Critical);
    }

    /// `quorate status --json` carries these names: a change is a change of the
    /// documented shape.
    #[test]
    fn verdict_json_is_stable() {
        let mut s = healthy();
        s.primary = None;
        at(&mut s, "n2")
            .checks
            .insert(CheckName::Config, CheckCode::Drift);
        at(&mut s, "n3").state = MemberState::Dead;
        s.timing_mismatch = vec!["n2".into()];
        s.members.problem = Some("removed".into());
        let v = s.verdict();
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            concat!(
                r#"{"level":"critical","findings":[{"kind":"no_primary"},"#,
                r#"{"kind":"check","node":"n2","check":"config","code":"drift"},"#,
                r#"{"kind":"down","node":"n3","state":"dead"},"#,
                r#"{"kind":"timing","node":"n1","peers":["n2"]},"#,
                r#"{"kind":"members","node":"n1","problem":"removed"}]}"#
            )
        );
        let back: Verdict = serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
        assert_eq!(back, v);
        let others = [
            (Finding::NoQuorum, r#"{"kind":"no_quorum"}"#),
            (
                Finding::NotReady { node: "n1".into() },
                r#"{"kind":"not_ready","node":"n1"}"#,
            ),
            (
                Finding::Unhealthy { node: "n1".into() },
                r#"{"kind":"unhealthy","node":"n1"}"#,
            ),
            (
                Finding::Draining { node: "n1".into() },
                r#"{"kind":"draining","node":"n1"}"#,
            ),
            (Finding::Frozen, r#"{"kind":"frozen"}"#),
            (
                Finding::UnreachablePeer { addr: "a:1".into() },
                r#"{"kind":"unreachable_peer","addr":"a:1"}"#,
            ),
        ];
        for (finding, json) in others {
            assert_eq!(serde_json::to_string(&finding).unwrap(), json);
        }
        for level in [Level::Ok, Level::Degraded, Level::Critical] {
            assert_eq!(
                serde_json::to_string(&level).unwrap(),
                format!("\"{}\"", level.as_str())
            );
        }
    }
}
