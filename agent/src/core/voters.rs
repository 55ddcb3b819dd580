//! The agreed member set: who votes. Bootstrap, adoption, one change at a time, and the
//! one place that says whose vote or acknowledgement counts (`Node::counts`).
//!
//! The set is Raft's configuration without the rest of the log: each node holds the
//! newest set it has durably adopted ([`HardState::members`](super::HardState::members)) and uses it at once,
//! committed or not. The rules that keep any two majorities in force intersecting:
//! - a set is made only by the primary of a term, stamped `(term, index)`; a node adopts
//!   a newer set only from the primary it follows in its current term (or, holding none
//!   yet, from any peer whose set names it; or, rejoining with an empty `state_dir`,
//!   the newest any peer of its cluster holds), and reports it only once durable;
//! - a voter grants a (pre-)vote only to a candidate whose set is at least as new as its
//!   own (the stamp in [`proto::VoteRequest::config`]);
//! - a primary changes one voter at a time, and only once the set it holds is committed
//!   (a majority of its voters report holding it durably); before its first change in
//!   a term it re-stamps the set it won with in that term and commits it (the fix for
//!   the flaw Ongaro reported in 2015: two single-voter changes from different terms
//!   overlapping a change of primary);
//! - votes and acknowledgements count only from voters of the counter's own set.
//!
//! A set carries its cluster's `origin`: a member of our set holding a set of another
//! origin means two clusters were made from these nodes, and this node stands down.
//! A node without a set (an empty `state_dir`) grants nothing and never campaigns: it
//! bootstraps one together with the nodes it lists, or learns one from a peer.
//!
//! It must never read the node's `peers` file or do IO: what it bootstraps from arrives
//! as [`CoreConfig::bootstrap`](super::CoreConfig::bootstrap), and what it must persist
//! leaves through `poll_persist` like `(term, voted_for)`.

use std::time::Duration;

pub use proto::MemberChange;
use proto::{ConfigStamp, MemberSlot, Membership, NodeId, Term};

/// How long a node with an empty `state_dir` waits for every node it lists before it
/// bootstraps with a majority of them (one host down at install must not block it, and
/// a node whose list differs must have a chance to be seen).
pub const BOOTSTRAP_WAIT: Duration = Duration::from_secs(5);

/// A change the primary is committing: the set it made, and what follows it.
#[derive(Debug, Clone)]
pub(super) struct InFlight {
    pub(super) stamp: ConfigStamp,
    pub(super) what: String,
    /// The steps that follow, each once the one before is committed (a replace's add).
    pub(super) then: std::collections::VecDeque<MemberChange>,
}

/// The set a new cluster starts from: every listed address votes; ids are written down by
/// the first primary.
pub fn bootstrap_set(addrs: &[String]) -> Membership {
    let mut members: Vec<MemberSlot> = addrs
        .iter()
        .map(|a| MemberSlot {
            addr: a.clone(),
            node: None,
            voter: true,
        })
        .collect();
    members.sort_by(|a, b| a.addr.cmp(&b.addr));
    members.dedup_by(|a, b| a.addr == b.addr);
    // Nodes bootstrapping from equal lists must agree on it; FNV-1a of the sorted list.
    let mut origin: u64 = 0xcbf2_9ce4_8422_2325;
    for b in members
        .iter()
        .flat_map(|m| m.addr.bytes().chain(std::iter::once(b',')))
    {
        origin = (origin ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    Membership {
        origin,
        stamp: ConfigStamp {
            term: Term(0),
            index: 1,
        },
        members,
    }
}

/// `set` after `change` (one step of it), or why not.
pub fn apply(set: &Membership, change: &MemberChange) -> Result<Membership, String> {
    let mut next = set.clone();
    let named = |n: &NodeId| set.members.iter().position(|s| s.node.as_ref() == Some(n));
    match change {
        MemberChange::Add { node, addr, voter } => {
            if named(node).is_some() {
                return Err(format!("{node} is already a member"));
            }
            if let Some(s) = set.members.iter().find(|s| s.addr == *addr) {
                return Err(match &s.node {
                    Some(n) => format!("{addr} belongs to member {n}"),
                    None => format!("{addr} is already a member (not seen yet)"),
                });
            }
            next.members.push(MemberSlot {
                addr: addr.clone(),
                node: Some(node.clone()),
                voter: *voter,
            });
            next.members.sort_by(|a, b| a.addr.cmp(&b.addr));
        }
        MemberChange::Remove { node } => {
            let i = named(node).ok_or_else(|| format!("{node} is not a member"))?;
            next.members.remove(i);
            if next.voters() == 0 {
                return Err(format!("{node} is the last voter"));
            }
        }
        MemberChange::Promote { node } => {
            let i = named(node).ok_or_else(|| format!("{node} is not a member"))?;
            if next.members[i].voter {
                return Err(format!("{node} is already a voter"));
            }
            next.members[i].voter = true;
        }
        MemberChange::Replace { .. } => {
            return Err("a replace is two changes; apply its steps".into());
        }
    }
    Ok(next)
}

/// The voters of `set`, for events and logs: ids where known, else addresses.
pub fn describe(set: &Membership) -> Vec<String> {
    set.members
        .iter()
        .map(|s| {
            let name = s
                .node
                .as_ref()
                .map(|n| n.to_string())
                .unwrap_or_else(|| s.addr.clone());
            if s.voter {
                name
            } else {
                format!("{name} (non-voter)")
            }
        })
        .collect()
}
