//! The JSON shape of `/cluster` and `quorate status --json`: the cluster as one node sees
//! it. The agent serialises it and the operator tool reads it, so it lives here, once.
//! Fields are only ever added; readers ignore what they do not know.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
