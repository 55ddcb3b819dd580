//! The JSON shape of `/cluster` and `quorate status --json`: the cluster as one node sees
//! it. The agent serialises it and the operator tool reads it, so it lives here, once.
//! Fields are only ever added; readers ignore what they do not know.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
    /// How many voters the cluster has (configured peers, witnesses and this node).
    pub voters: usize,
    /// Every identified node, the answering one included.
    pub nodes: Vec<NodeStatus>,
    /// Configured peer addresses no node has been identified at yet.
    #[serde(default)]
    pub unreachable_peers: Vec<String>,
}

/// One node, as the answering node sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub node: String,
    /// Its QUIC address (`advertise`).
    pub addr: String,
    /// `alive`, `suspect`, `dead` or `left`.
    pub state: String,
    /// `primary`, `secondary`, `witness` or `candidate`.
    pub role: String,
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
    /// Check name → `ok`, `fail`, `hung`, `drift` or `off`.
    pub checks: BTreeMap<String, String>,
    #[serde(default)]
    pub config: Vec<ConfigStatus>,
    #[serde(default)]
    pub mounts: Vec<MountStatus>,
    pub version: VersionStatus,
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MountStatus {
    pub path: String,
    pub status: String,
    pub source: Option<String>,
    pub fstype: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct VersionStatus {
    pub agent: String,
    pub app: Option<String>,
}
