//! The full state of one node, fetched over a stream when a heartbeat's digest changes.

use serde::{Deserialize, Serialize};

use crate::bounded;
use crate::ids::{Incarnation, NodeId, WallMicros};
use crate::limits::{CONFIG_FILES, CONFIG_SETS};
use crate::members::Membership;
use crate::vocab::{CheckCode, CheckName};

// Every list and string of a node's state, held to its wire limit (see `crate::limits`).
bounded::fields! {
    advertise: Str("NodeState.advertise", ADDR);
    roles: StrSeq("NodeState.roles", ROLES, "NodeState.roles[]", NAME);
    agent_version: Str("NodeState.agent_version", VERSION);
    app_version: OptStr("NodeState.app_version", VERSION);
    checks: Seq("NodeState.checks", CHECKS);
    mounts: Seq("NodeState.mounts", MOUNTS);
    drain_orders: Seq("NodeState.drain_orders", DRAIN_ORDERS);
    drift_acks: Seq("NodeState.drift_acks", DRIFT_ACKS);
    tasks: Seq("NodeState.tasks", TASKS);
    suspects: Seq("NodeState.suspects", SUSPECTS);
    check_reason: Str("CheckState.reason", TEXT);
    mount_path: Str("MountState.path", PATH);
    mount_reason: Str("MountState.reason", TEXT);
    mount_source: OptStr("MountState.source", TEXT);
    mount_fstype: OptStr("MountState.fstype", LABEL);
    mount_proof: OptStr("MountState.proof", PROOF);
    set_name: Str("ConfigSetState.name", NAME);
    set_files: Seq("ConfigSetState.files", CONFIG_FILES_PER_SET);
    set_error: OptStr("ConfigSetState.error", TEXT);
    file_path: Str("FileHash.path", PATH);
    drain_reason: Str("Drain.reason", TEXT);
    drain_by: Str("Drain.by", LABEL);
    ack_name: Str("DriftAck.name", NAME);
    ack_reason: Str("DriftAck.reason", TEXT);
    ack_by: Str("DriftAck.by", LABEL);
    balancer_state: Str("BalancerSeen.state", LABEL);
    balancer_name: OptStr("BalancerSeen.balancer", LABEL);
    balancer_weight: OptStr("BalancerSeen.weight", LABEL);
    task_name: Str("TaskPlacement.name", NAME);
}

/// Whether a node may become primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum Mode {
    /// Runs checks, votes, may be primary.
    #[default]
    Member,
    /// Votes, runs no checks, is never primary.
    Witness,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Member => "member",
            Mode::Witness => "witness",
        }
    }
}

/// Everything a node says about itself that does not fit, or need to be, in a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeState {
    pub node: NodeId,
    pub incarnation: Incarnation,
    /// The QUIC address peers reach it on (`advertise` in its config).
    #[serde(with = "advertise")]
    pub advertise: String,
    pub mode: Mode,
    pub priority: u32,
    #[serde(with = "roles")]
    pub roles: Vec<String>,
    #[serde(with = "agent_version")]
    pub agent_version: String,
    #[serde(with = "app_version")]
    pub app_version: Option<String>,
    /// When this incarnation started, on the node's own wall clock.
    pub started: WallMicros,
    /// BLAKE3 of the sorted addresses of the node's `peers` plus its own: the list a new
    /// cluster bootstraps from, which must be equal on the nodes that bootstrap together.
    pub peers_hash: [u8; 8],
    /// The agreed member set this node holds (durably): what its votes and
    /// acknowledgements are judged against.
    pub members: Membership,
    /// Holding no set yet, it has seen a listed node with another bootstrap list: it
    /// will not bootstrap, and neither will the nodes it lists that hear of it.
    pub lists_disagree: bool,
    /// Every local check with its current result (app, mounts, config, clock, version,
    /// load), in a fixed order.
    #[serde(with = "checks")]
    pub checks: Vec<CheckState>,
    #[serde(with = "mounts")]
    pub mounts: Vec<MountState>,
    /// Per `[[config]]` set, the hash of every file it matched. Contents never leave the
    /// node.
    #[serde(with = "config_sets")]
    pub config: Vec<ConfigSetState>,
    /// Set while an operator has drained this node.
    pub drain: Option<Drain>,
    /// Drain and undrain orders this node took for other nodes; each target adopts the
    /// newest order naming it (gossip, so an order reaches a node that was unreachable).
    #[serde(with = "drain_orders")]
    pub drain_orders: Vec<DrainOrder>,
    /// Known configuration differences an operator acknowledged, until they expire.
    #[serde(with = "drift_acks")]
    pub drift_acks: Vec<DriftAck>,
    /// What the load balancer last said about this node (`X-Haproxy-Server-State`).
    pub balancer: Option<BalancerSeen>,
    /// Where this node places each singleton task (`None`: nowhere). A node runs a task
    /// only while a majority of voters place it there.
    #[serde(with = "tasks")]
    pub tasks: Vec<TaskPlacement>,
    /// The operator opened the upgrade gate for this node's app version.
    pub upgrade_allowed: bool,
    /// The peers this node's failure detector currently holds suspect or dead, so every
    /// node can show who suspects whom (one side of a partition, or one bad link).
    #[serde(with = "suspects")]
    pub suspects: Vec<NodeId>,
    /// The end of the node's own certificate (`notAfter`), so every node sees every
    /// node's; `None` when it could not be read. Read again when a reload brings new
    /// TLS files.
    pub cert_expires: Option<WallMicros>,
}

/// One check's result, with why it is not `ok` (empty when it is).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckState {
    /// Travels as the plain string it always was (see [`CheckName`]).
    pub name: CheckName,
    pub code: CheckCode,
    #[serde(with = "check_reason")]
    pub reason: String,
}

/// One `[[mount]]` as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountState {
    #[serde(with = "mount_path")]
    pub path: String,
    pub code: CheckCode,
    #[serde(with = "mount_reason")]
    pub reason: String,
    #[serde(with = "mount_source")]
    pub source: Option<String>,
    #[serde(with = "mount_fstype")]
    pub fstype: Option<String>,
    /// For `shared = true`: the nonce this node wrote to `<path>/.quorate/<node>`. Peers
    /// that cannot read it there are not looking at the same storage.
    #[serde(with = "mount_proof")]
    pub proof: Option<String>,
}

/// The file hashes of one `[[config]]` set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigSetState {
    #[serde(with = "set_name")]
    pub name: String,
    #[serde(with = "set_files")]
    pub files: Vec<FileHash>,
    /// Why the set could not be hashed (unreadable file), if so.
    #[serde(with = "set_error")]
    pub error: Option<String>,
}

/// One file's BLAKE3 hash (first 16 bytes), after dropping ignored lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileHash {
    #[serde(with = "file_path")]
    pub path: String,
    pub hash: [u8; 16],
}

/// An operator's drain of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drain {
    #[serde(with = "drain_reason")]
    pub reason: String,
    /// Who asked (operator or node name, as known to the node that took the command).
    #[serde(with = "drain_by")]
    pub by: String,
    pub since: WallMicros,
    /// When it ends by itself, if ever.
    pub until: Option<WallMicros>,
}

/// "Drain (or undrain, `drain: None`) `target`", taken by some node at `version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainOrder {
    pub target: NodeId,
    pub drain: Option<Drain>,
    /// Wall µs when the order was taken: the newest order for a node wins.
    pub version: u64,
}

/// An acknowledged difference in config set `name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftAck {
    #[serde(with = "ack_name")]
    pub name: String,
    #[serde(with = "ack_reason")]
    pub reason: String,
    #[serde(with = "ack_by")]
    pub by: String,
    pub until: WallMicros,
}

/// The balancer's own view of this node, from `X-Haproxy-Server-State`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalancerSeen {
    /// The state word and check counts, e.g. `UP`, `UP 2/3`, `DOWN`, `NOLB`, `MAINT`.
    #[serde(with = "balancer_state")]
    pub state: String,
    /// The balancer's name (`node=`), if it said.
    #[serde(with = "balancer_name")]
    pub balancer: Option<String>,
    /// The weight it applies (`weight=`), e.g. `1/2`.
    #[serde(with = "balancer_weight")]
    pub weight: Option<String>,
    /// When the state word last changed, on this node's wall clock.
    pub since: WallMicros,
}

/// Where a node places one singleton task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskPlacement {
    #[serde(with = "task_name")]
    pub name: String,
    pub holder: Option<NodeId>,
}

impl NodeState {
    /// A node's state as it starts: who it is, and nothing checked, placed or ordered
    /// yet. The agent fills in the rest as its checks report.
    pub fn new(
        node: NodeId,
        incarnation: Incarnation,
        advertise: String,
        mode: Mode,
        priority: u32,
        started: WallMicros,
    ) -> Self {
        Self {
            node,
            incarnation,
            advertise,
            mode,
            priority,
            roles: Vec::new(),
            agent_version: String::new(),
            app_version: None,
            started,
            peers_hash: [0; 8],
            members: Membership::default(),
            lists_disagree: false,
            checks: Vec::new(),
            mounts: Vec::new(),
            config: Vec::new(),
            drain: None,
            drain_orders: Vec::new(),
            drift_acks: Vec::new(),
            balancer: None,
            tasks: Vec::new(),
            upgrade_allowed: false,
            suspects: Vec::new(),
            cert_expires: None,
        }
    }

    /// The digest heartbeats carry: first 8 bytes of a hash of the encoded state. A
    /// receiver whose copy has another digest fetches the state again.
    pub fn digest(&self) -> StateDigest {
        let bytes = postcard::to_stdvec(self).unwrap_or_default();
        StateDigest(fnv1a64(&bytes))
    }
}

/// `NodeState.config`: at most [`CONFIG_SETS`] sets of at most
/// [`CONFIG_FILES_PER_SET`](crate::limits::CONFIG_FILES_PER_SET) files each, and
/// [`CONFIG_FILES`] files in all. The total is checked after each set,
/// so at most one set's files are read past it before the state is refused.
mod config_sets {
    use std::fmt;

    use serde::de::{SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    use super::{CONFIG_FILES, CONFIG_SETS, ConfigSetState};
    use crate::bounded::{self, Breach, BreachKind};

    const FIELD: &str = "NodeState.config";
    const FILES_FIELD: &str = "NodeState.config[].files, all sets together";

    /// `found`: the total when known (sending); receiving stops at the set that
    /// crosses the limit, before it knows what the sets after it hold.
    fn too_many_files(found: Option<usize>) -> Breach {
        Breach {
            field: FILES_FIELD,
            kind: BreachKind::Over {
                limit: &CONFIG_FILES,
                found,
            },
        }
    }

    pub(crate) fn serialize<S: Serializer>(v: &[ConfigSetState], s: S) -> Result<S::Ok, S::Error> {
        let files: usize = v.iter().map(|set| set.files.len()).sum();
        if files > CONFIG_FILES.max {
            return Err(serde::ser::Error::custom(bounded::record(too_many_files(
                Some(files),
            ))));
        }
        bounded::ser_seq(v, FIELD, &CONFIG_SETS, s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<ConfigSetState>, D::Error> {
        d.deserialize_seq(Sets)
    }

    struct Sets;

    impl<'de> Visitor<'de> for Sets {
        type Value = Vec<ConfigSetState>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a list of at most {} config sets", CONFIG_SETS.max)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let hint = seq.size_hint();
            let over = |found| Breach {
                field: FIELD,
                kind: BreachKind::Over {
                    limit: &CONFIG_SETS,
                    found,
                },
            };
            if let Some(n) = hint.filter(|n| *n > CONFIG_SETS.max) {
                return Err(bounded::de_error(over(Some(n))));
            }
            let mut out = Vec::with_capacity(hint.unwrap_or(0));
            let mut files = 0usize;
            while let Some(set) = seq.next_element::<ConfigSetState>()? {
                if out.len() == CONFIG_SETS.max {
                    return Err(bounded::de_error(over(None)));
                }
                files += set.files.len();
                if files > CONFIG_FILES.max {
                    return Err(bounded::de_error(too_many_files(None)));
                }
                out.push(set);
            }
            Ok(out)
        }
    }
}

/// Hash of a node's [`NodeState`] (see [`NodeState::digest`]); a change tells receivers to fetch it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct StateDigest(#[serde(with = "postcard::fixint::le")] pub u64);

/// FNV-1a: the digest only needs to change when the state changes; it is not a security
/// boundary (the connection is authenticated), so a tiny dependency-free hash will do.
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Orders app versions: numeric parts numerically, others as text (`5.10.0 > 5.9.1`,
/// `5.2.1-rc1 < 5.2.1-rc2`). The agent's upgrade gate and `quorate upgrade status` must
/// agree on "newer", so this lives here, once.
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let (pa, pb) = (parts(a), parts(b));
    for (x, y) in pa.iter().zip(&pb) {
        let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => x.cmp(y),
        };
        if ord.is_ne() {
            return ord;
        }
    }
    pa.len().cmp(&pb.len())
}
