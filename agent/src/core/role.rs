//! Where a node stands in the election ([`Role`]) and the election's fixed windows.
//! State only: the rules that move a node between roles are `node/election.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use proto::{NodeId, Term};

/// How long a timing mismatch stays shown after it was last seen (it recurs with every
/// heartbeat or vote while it lasts).
pub const TIMING_MISMATCH_SHOWN: Duration = Duration::from_secs(10);

/// For how many election timeouts after it last had a primary (or started) a node defers
/// to a higher-priority eligible voter it hears ([`Node::defers`]). After that, plain
/// Raft: a preferred node that cannot win never blocks the cluster for longer.
pub const DEFER_WINDOW: u32 = 3;

/// Where this node stands in the election.
#[derive(Debug, Clone)]
pub(super) enum Role {
    Follower,
    /// Asking whether a campaign for `term` could win; nothing changed yet.
    PreCandidate {
        req: u64,
        granted: BTreeSet<NodeId>,
        until: Instant,
    },
    /// Campaigning in `term` (already adopted and voted for itself).
    Candidate {
        term: Term,
        req: u64,
        sent: Instant,
        granted: BTreeMap<NodeId, Instant>,
        until: Instant,
    },
    /// Won `term`. `acks` holds, per voter, the send time of the newest heartbeat (or
    /// vote request) it acknowledged in this term.
    Primary {
        acks: BTreeMap<NodeId, Instant>,
        lease_until: Instant,
    },
}
