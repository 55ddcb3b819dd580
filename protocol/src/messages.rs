//! Datagrams and stream frames exchanged between agents.

use serde::{Deserialize, Serialize};

use crate::bounded;
use crate::ids::{ClusterName, Incarnation, NodeId, Seq, Term, WallMicros};
use crate::members::{ConfigStamp, MemberReply, MemberRequest};
use crate::state::{Mode, NodeState, StateDigest};

bounded::fields! {
    hello_advertise: Str("Hello.advertise", ADDR);
    grant_tasks: Seq("TaskGrant.tasks", TASKS);
}

/// Everything sent as a QUIC DATAGRAM between agents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Datagram {
    Heartbeat(Heartbeat),
    Goodbye(Goodbye),
    /// "Would you vote for me in `term`?" — asked before campaigning, changes nothing.
    PreVote(VoteRequest),
    PreVoteReply(VoteReply),
    /// A candidate asks for a vote in `term`.
    Vote(VoteRequest),
    VoteReply(VoteReply),
    /// The primary hands over: the receiver campaigns at once (Raft's TimeoutNow).
    TimeoutNow(TimeoutNow),
    /// Asks the primary to hand over (an operator's `quorate transfer` arriving at
    /// another node is forwarded to the primary this way).
    TransferRequest(TransferRequest),
    /// A member change forwarded to the primary, and its answer.
    MemberRequest(MemberRequest),
    MemberReply(MemberReply),
}

/// "Primary, please hand over to `to` (or to the best node)."
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferRequest {
    pub to: Option<NodeId>,
}

/// A request for a (pre-)vote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteRequest {
    /// The term the candidate campaigns for.
    pub term: Term,
    pub candidate: NodeId,
    /// Set when the current primary handed over to the candidate: the primary gave up its
    /// lease first, so voters may disregard their promise to it.
    pub transfer_from: Option<NodeId>,
    /// Matches replies to this request.
    pub req: Seq,
    /// The lease the candidate will hold after each acknowledgement, in milliseconds: a
    /// voter whose promise (its election timeout) does not outlast it refuses.
    #[serde(with = "postcard::fixint::le")]
    pub lease_ms: u32,
    /// The agreed member set the candidate holds: a voter holding a newer one refuses
    /// (Raft's "at least as up to date" check, over the member set).
    pub config: ConfigStamp,
}

/// The answer to a [`VoteRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteReply {
    /// The voter's term after handling the request.
    pub term: Term,
    pub voter: NodeId,
    pub granted: bool,
    /// The request answered.
    pub req: Seq,
    /// How long the voter's promise lasts (its election timeout), in milliseconds: a
    /// candidate counts a vote only when the promise outlasts its lease.
    #[serde(with = "postcard::fixint::le")]
    pub promise_ms: u32,
}

/// The primary of `term` hands the primary role to the receiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeoutNow {
    pub term: Term,
    pub from: NodeId,
}

/// The cluster-wide freeze flag, gossiped in every heartbeat; the newest `version` wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FreezeFlag {
    pub frozen: bool,
    /// When an operator set it (wall µs at the node that took the command).
    #[serde(with = "postcard::fixint::le")]
    pub version: u64,
}

/// Everything sent as a length-prefixed frame on a QUIC stream between agents.
///
/// A connection starts with the dialer opening a bidirectional stream and sending
/// [`Frame::Hello`]; the listener answers with its own. Later, either side may open a
/// bidirectional stream with [`Frame::StateRequest`] and read one [`Frame::State`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
// A frame is decoded once per state fetch and moved once; boxing the state would cost an
// allocation on every fetch to save a few hundred bytes of stack.
#[allow(clippy::large_enum_variant)]
pub enum Frame {
    Hello(Hello),
    StateRequest,
    State(NodeState),
}

/// Binds a connection to a node: checked against the peer's certificate, the cluster
/// name and the configured peer list before anything else is accepted on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub cluster: ClusterName,
    pub node: NodeId,
    pub incarnation: Incarnation,
    /// The address this node's peers have in their `peers` lists.
    #[serde(with = "hello_advertise")]
    pub advertise: String,
    pub mode: Mode,
}

/// A node leaving cleanly: its peers mark it `left` at once instead of suspecting it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Goodbye {
    pub node: NodeId,
    pub incarnation: Incarnation,
}

/// NTP-style echo of the last heartbeat received from the peer this one is sent to.
///
/// With the echoing heartbeat's own send time `t3` and its arrival time `t4`:
/// RTT = `(t4 - t1) - held`, offset = `((t2 - t1) + (t3 - t4)) / 2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Echo {
    /// `t1`: the echoed heartbeat's send time, on the peer's wall clock.
    pub peer_sent: WallMicros,
    /// `t2`: when it arrived here, on this node's wall clock.
    pub received: WallMicros,
    /// Microseconds between that arrival and this send, on this node's monotonic clock.
    #[serde(with = "postcard::fixint::le")]
    pub held_us: u32,
}

/// Health summary carried in every heartbeat: which reasons hold right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HealthBits(#[serde(with = "postcard::fixint::le")] pub u32);

impl HealthBits {
    /// Joined and first round of checks done.
    pub const READY: u32 = 1 << 0;
    /// Fit for traffic.
    pub const HEALTHY: u32 = 1 << 1;
    /// Drained by an operator.
    pub const DRAINING: u32 = 1 << 2;
    /// Load above its thresholds.
    pub const OVERLOADED: u32 = 1 << 3;
    /// The application check fails.
    pub const APP_FAIL: u32 = 1 << 4;
    /// A required mount fails.
    pub const MOUNT_FAIL: u32 = 1 << 5;
    /// May be primary: member mode, app and required mounts passing, not draining.
    pub const ELIGIBLE: u32 = 1 << 6;
    /// Its wall clock is off from most of the cluster by more than `clock.max_offset`.
    pub const CLOCK_FAIL: u32 = 1 << 7;
    /// Its config files differ from other nodes' (and no acknowledgement covers it).
    pub const CONFIG_DRIFT: u32 = 1 << 8;
    /// Held not-ready by the upgrade gate (newer app version than the primary's).
    pub const UPGRADE_HELD: u32 = 1 << 9;

    pub fn has(self, bit: u32) -> bool {
        self.0 & bit != 0
    }

    pub fn with(self, bit: u32, on: bool) -> Self {
        if on {
            Self(self.0 | bit)
        } else {
            Self(self.0 & !bit)
        }
    }
}

/// Load figures in fixed-point so a heartbeat keeps a constant size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LoadFigures {
    /// CPU use, 0–1000 (‰ of all cores).
    #[serde(with = "postcard::fixint::le")]
    pub cpu_permille: u16,
    /// Memory use, 0–1000 (‰).
    #[serde(with = "postcard::fixint::le")]
    pub mem_permille: u16,
    /// 1-minute load average × 100.
    #[serde(with = "postcard::fixint::le")]
    pub load1_centi: u32,
}

/// The heartbeat datagram. Fixed-width integers keep its size constant in a steady
/// cluster (see `tests/golden.rs` for the byte count).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub node: NodeId,
    pub incarnation: Incarnation,
    pub seq: Seq,
    /// `t3` for the peer's echo arithmetic: this node's wall clock at send.
    pub sent: WallMicros,
    /// The sender's heartbeat interval on this link, so the receiver's failure detector
    /// re-learns at once when the rate changes (primary ↔ voter links are fast).
    #[serde(with = "postcard::fixint::le")]
    pub interval_ms: u16,
    pub echo: Option<Echo>,
    /// The sender's current term.
    pub term: Term,
    /// Who the sender believes is primary in `term`.
    pub primary: Option<NodeId>,
    /// Lease acknowledgement: the `seq` of the newest heartbeat received from the primary
    /// of `term` (the sender promises not to vote for anyone else for an election
    /// timeout after receiving it).
    pub lease_ack: Option<Seq>,
    /// The sender's own timing, in milliseconds, so that what a lease rests on is judged
    /// by both ends, not read from each node's file: `lease_ms`, how long a lease lasts
    /// after an acknowledgement when the sender is primary; `promise_ms`, how long the
    /// sender votes for nobody else after acknowledging a primary (its election
    /// timeout). A voter acknowledges only a lease its promise outlasts, and a primary
    /// counts only such acknowledgements.
    #[serde(with = "postcard::fixint::le")]
    pub lease_ms: u32,
    #[serde(with = "postcard::fixint::le")]
    pub promise_ms: u32,
    pub freeze: FreezeFlag,
    pub health: HealthBits,
    pub load: LoadFigures,
    pub digest: StateDigest,
    /// The agreed member set the sender holds durably: the primary counts a change as
    /// committed once a majority report it, and a node behind fetches the sender's state.
    pub config: ConfigStamp,
    /// The singleton tasks the sender places on the receiver, and what that promises:
    /// `None` when it places none there (the common case costs one byte).
    pub tasks: Option<TaskGrant>,
}

/// A voter's word, in a heartbeat to a node, that it places these tasks on that node.
///
/// Together with the heartbeat's echo it confirms a task claim: the receiver knows that
/// the voter still placed the task on it after the echoed heartbeat left. The voter
/// promises to place the task on nobody else for `promise_ms` after it last heard from
/// the receiver, so a claim that ends `claim` after the echoed send time, with `claim`
/// shorter than the promise, ends before any other node's can begin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskGrant {
    #[serde(with = "postcard::fixint::le")]
    pub promise_ms: u32,
    #[serde(with = "grant_tasks")]
    pub tasks: Vec<TaskTag>,
}

/// A task, as it travels: a hash of its `[[task]]` name (names are checked for tag
/// collisions when the config is read, so within a cluster a tag names one task).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TaskTag(#[serde(with = "postcard::fixint::le")] pub u32);

impl TaskTag {
    /// The tag of task `name` (FNV-1a, folded to 32 bits): the same on every node and
    /// every version.
    pub fn of(name: &str) -> Self {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.as_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        TaskTag((h ^ (h >> 32)) as u32)
    }
}
