//! The agreed member set: who votes, who only follows, and which change made it.
//!
//! Every node keeps the set it holds in its `state_dir` and announces the set's
//! [`ConfigStamp`] in every heartbeat; the full [`Membership`] travels in the node's
//! state. What the election does with it lives in the agent's core; this file only says
//! what is on the wire and on disk.

use serde::{Deserialize, Serialize};

use crate::bounded;
use crate::ids::{NodeId, Term};

bounded::fields! {
    slot_addr: Str("MemberSlot.addr", ADDR);
    members: Seq("Membership.members", MEMBERS);
    add_addr: Str("MemberChange::Add.addr", ADDR);
    replace_addr: Str("MemberChange::Replace.addr", ADDR);
    reply_message: Str("MemberReply.message", TEXT);
}

/// Which change made a member set: the term of the primary that made it, and a counter.
/// Ordered like Raft's log positions (term first), which is what voters compare.
/// `ConfigStamp::NONE` (the default) means "no agreed set yet".
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct ConfigStamp {
    pub term: Term,
    /// Fixed-width, so a heartbeat keeps its size as the set changes.
    #[serde(with = "postcard::fixint::le")]
    pub index: u64,
}

impl ConfigStamp {
    /// No agreed set: a node that has not bootstrapped or joined a cluster yet.
    pub const NONE: ConfigStamp = ConfigStamp {
        term: Term(0),
        index: 0,
    };

    pub fn is_none(self) -> bool {
        self == Self::NONE
    }
}

impl std::fmt::Display for ConfigStamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.term.0, self.index)
    }
}

/// One member of the agreed set.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MemberSlot {
    /// The QUIC address the member advertises (unique in a set).
    #[serde(with = "slot_addr")]
    pub addr: String,
    /// The node id its certificate names; `None` for a slot from a bootstrap list whose
    /// node has not been seen yet (the first node that authenticates at `addr` holds it,
    /// and the primary then writes its id down).
    pub node: Option<NodeId>,
    /// Votes (a witness votes too); a non-voter follows, runs checks and answers the
    /// balancer, and never counts towards a majority.
    pub voter: bool,
}

/// The agreed member set, as held by one node.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Membership {
    /// Which cluster the set belongs to: fixed when the cluster is bootstrapped (a hash
    /// of its bootstrap list) or forced anew (`force-new-cluster`), and kept by every
    /// change. Two sets of different origins are two clusters, never versions of one.
    #[serde(with = "postcard::fixint::le")]
    pub origin: u64,
    pub stamp: ConfigStamp,
    /// Sorted by address; addresses and ids are unique.
    #[serde(with = "members")]
    pub members: Vec<MemberSlot>,
}

impl Membership {
    /// The slot a node with this id, at this address, holds: its own by id, or an
    /// unnamed bootstrap slot at its address.
    pub fn slot(&self, node: &NodeId, addr: &str) -> Option<&MemberSlot> {
        self.members
            .iter()
            .find(|s| s.node.as_ref() == Some(node))
            .or_else(|| {
                self.members
                    .iter()
                    .find(|s| s.node.is_none() && s.addr == addr)
            })
    }

    /// Whether `node` (advertising `addr`) is a voter of this set.
    pub fn is_voter(&self, node: &NodeId, addr: &str) -> bool {
        self.slot(node, addr).is_some_and(|s| s.voter)
    }

    pub fn voters(&self) -> usize {
        self.members.iter().filter(|s| s.voter).count()
    }
}

/// A change to the agreed member set, as an operator asks for it. Only the primary
/// makes changes; another node forwards the request ([`MemberRequest`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberChange {
    /// Add `node` at `addr`, voting or not.
    Add {
        node: NodeId,
        #[serde(with = "add_addr")]
        addr: String,
        voter: bool,
    },
    /// Remove `node` (a voter or not).
    Remove { node: NodeId },
    /// Remove `old`, then add `node` at `addr` as a voter: two changes, each committed
    /// before the next.
    Replace {
        old: NodeId,
        node: NodeId,
        #[serde(with = "replace_addr")]
        addr: String,
    },
    /// Make the non-voter `node` a voter.
    Promote { node: NodeId },
}

impl std::fmt::Display for MemberChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MemberChange::Add {
                node,
                addr,
                voter: true,
            } => write!(f, "add {node} at {addr}"),
            MemberChange::Add { node, addr, .. } => {
                write!(f, "add {node} at {addr} (non-voter)")
            }
            MemberChange::Remove { node } => write!(f, "remove {node}"),
            MemberChange::Replace { old, node, addr } => {
                write!(f, "replace {old} with {node} at {addr}")
            }
            MemberChange::Promote { node } => write!(f, "promote {node}"),
        }
    }
}

/// A member change typed on a node that is not the primary, forwarded to the primary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRequest {
    /// Matches the reply.
    pub req: crate::ids::Seq,
    pub change: MemberChange,
}

/// The primary's answer to a [`MemberRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberReply {
    pub req: crate::ids::Seq,
    /// Whether the primary started the change (it commits once a majority holds it).
    pub accepted: bool,
    /// What it did ("member set 4.7: n1, n2, n3, n4"), or why not.
    #[serde(with = "reply_message")]
    pub message: String,
}
