//! The types of the driving contract: what configures a [`Node`](super::Node), what goes
//! in (commands, the durable state it starts from) and what comes out (datagrams to
//! send, events for operators). Plain data: this module holds no rule and never
//! imports the node that uses it.

use std::time::Duration;

use proto::{
    ConfigStamp, Datagram, FreezeFlag, Incarnation, MemberChange, Membership, Mode, NodeId, Term,
};

use super::membership::MemberState;
use super::tasks::TaskSpec;

/// The timing the core runs on: the one definition the agent (from `[timing]`, in
/// `config/`), the core's tests and the simulation all build.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// Between nodes when neither is the primary.
    pub heartbeat_interval: Duration,
    /// From the primary to each voter.
    pub lease_heartbeat_interval: Duration,
    pub lease: Duration,
    /// Minimum election timeout; each node randomises over [T, 1.3T).
    pub election_timeout: Duration,
    pub phi_threshold: f64,
    /// Silence, once suspected, before a member is `dead`.
    pub dead_after: Duration,
}

/// What the core needs to know about this node and its timing.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub node: NodeId,
    pub incarnation: Incarnation,
    pub mode: Mode,
    pub priority: u32,
    /// The address peers reach this node at (its slot in the member set).
    pub advertise: String,
    /// The sorted addresses of the configured peers plus this node: the voters a new
    /// cluster bootstraps with. After that, the agreed set rules ([`super::voters`]).
    pub bootstrap: Vec<String>,
    /// The hash of `bootstrap` that nodes compare (`NodeState::peers_hash`).
    pub bootstrap_hash: [u8; 8],
    pub timing: Timing,
    /// Hand over to a higher-priority eligible node that stayed eligible this long.
    pub preempt: Option<Duration>,
    /// The `[[task]]`s ([`super::tasks`]).
    pub tasks: Vec<TaskSpec>,
    /// A task moves back to a node its rule prefers only once that node has been fit
    /// this long without a break.
    pub task_return_delay: Duration,
    /// Test-only: deliberately break a safety rule, to prove the simulation notices.
    /// The agent never sets it.
    pub fault: Option<InjectedFault>,
}

/// Deliberate bugs for the simulation's self-test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectedFault {
    /// Voters grant votes while they have promised a live primary not to.
    IgnoreLeasePromise,
    /// The primary's lease never expires.
    LeaseNeverExpires,
    /// Acknowledgements and votes are counted whatever the two ends' timing (a voter's
    /// promise may end before the lease it acknowledged).
    IgnoreTiming,
    /// Majorities are counted over the node's own configured list, not the agreed
    /// member set (what quorate did before membership was agreed).
    OwnListMajority,
    /// A voter places a task elsewhere at once, keeping no promise to the node it
    /// placed it on before (and grants as soon as it starts).
    TaskPromiseIgnored,
    /// A member stays "eligible since" through suspicion, silence and the loss of
    /// contact with the primary (what quorate did before issue 11): a node back from a
    /// pause or a cut is preempted to at once.
    KeepEligibleThroughSilence,
    /// A node that cannot prove its last `(term, voted_for)` (its `election` file lost)
    /// votes as if it had never voted: from term 0, at once.
    ForgetLostVote,
    /// Every node heartbeats every member, non-voters each other too (what quorate did
    /// before issue 15): a fleet costs nodes² heartbeats.
    TalkToEveryone,
}

/// Why this node cannot prove the last `(term, voted_for)` it held: it may have voted
/// before, in terms it no longer knows. Such a node rejoins (see `voters::rejoin_tick`):
/// it votes in no term at or below the highest its peers report, and campaigns only
/// above it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LostVote {
    /// It started with an empty `state_dir` and learned a member set naming it a voter.
    EmptyStateDir,
    /// `state_dir/election` is missing while `state_dir/members` is there.
    Missing,
    /// `state_dir/election` could not be read as a vote record (set aside by the
    /// driver); the reason is the parser's.
    Corrupt(String),
}

impl std::fmt::Display for LostVote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LostVote::EmptyStateDir => f.write_str("started with an empty state_dir"),
            LostVote::Missing => f.write_str("state_dir/election is missing"),
            LostVote::Corrupt(why) => write!(f, "state_dir/election was corrupt ({why})"),
        }
    }
}

/// `(term, voted_for)` and the agreed member set: what must be on disk before a vote or
/// an acknowledgement of a new set leaves this node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HardState {
    pub term: Term,
    pub voted_for: Option<NodeId>,
    pub members: Membership,
}

/// A command from an operator or the driver.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Hand the primary role to `to`, or to the best eligible node.
    Transfer(Option<NodeId>),
    /// Set the cluster-wide freeze flag (newest version wins).
    Freeze(FreezeFlag),
    /// The agent is stopping: hand over if primary, never campaign again.
    Shutdown,
    /// A reloaded `priority`. It only orders election timeouts and preemption (peers
    /// learn it from this node's state), so it may change at any moment: safety rests on
    /// votes and leases, never on priorities.
    SetPriority(u32),
    /// A reloaded `[election] preempt` / `preempt_delay` (`None`: no preemption).
    SetPreempt(Option<Duration>),
    /// Reloaded `[[task]]`s and return delay. Placement may change at any moment: the
    /// claims' safety rests on grants and promises, never on placement.
    SetTasks {
        tasks: Vec<TaskSpec>,
        return_delay: Duration,
    },
    /// A reloaded `peers`: the bootstrap list (sorted addresses, this node's included) and
    /// its hash. Matters only to a node that holds no set yet, which judges it afresh.
    SetBootstrap { list: Vec<String>, hash: [u8; 8] },
    /// A change to the agreed member set, typed on this node: made by the primary, so
    /// forwarded to it from any other node. Answered by [`Event::MemberAnswer`] with
    /// `req`.
    Member { req: u64, change: MemberChange },
    /// `quorate member force-new-cluster` (answered by [`Event::MemberAnswer`]).
    ForceNewCluster { req: u64 },
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Transmit {
    pub to: NodeId,
    pub datagram: Datagram,
}

/// Something worth telling an operator about.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A member was identified for the first time.
    Joined {
        node: NodeId,
        incarnation: Incarnation,
    },
    /// A member came back with a new incarnation (it restarted).
    Restarted {
        node: NodeId,
        incarnation: Incarnation,
    },
    /// A member's liveness changed.
    StateChanged {
        node: NodeId,
        from: MemberState,
        to: MemberState,
    },
    /// This node started campaigning for `term`.
    ElectionStarted { term: Term, transfer: bool },
    /// This node won `term`.
    BecamePrimary { term: Term },
    /// This node stopped being primary.
    SteppedDown { term: Term, reason: &'static str },
    /// Another node is primary of `term`.
    PrimaryChanged { node: NodeId, term: Term },
    /// This node hands the primary role over, and why.
    TransferStarted {
        to: NodeId,
        term: Term,
        reason: TransferReason,
    },
    /// Two nodes claim to be primary in the same term, or a primary claim arrived for a
    /// term this node did not expect.
    SplitBrainSuspected {
        claimant: NodeId,
        term: Term,
        believed: Option<NodeId>,
    },
    /// A command was refused, and why.
    Refused { command: String, reason: String },
    /// The cluster-wide freeze flag changed.
    FreezeChanged { frozen: bool },
    /// A peer's timing does not fit this node's: a voter's promise (`promise_ms`) that
    /// does not outlast a primary's lease (`lease_ms`). This node neither acknowledges
    /// such a lease nor counts such a promise; reported once per peer and values.
    TimingMismatch {
        peer: NodeId,
        lease_ms: u32,
        promise_ms: u32,
    },
    /// This node now holds another agreed member set (made, adopted or bootstrapped).
    MembersChanged {
        stamp: ConfigStamp,
        voters: Vec<String>,
    },
    /// The primary's change to the member set is held by a majority.
    MembersCommitted { stamp: ConfigStamp, what: String },
    /// A member of this node's set holds another cluster's set: this node stands down.
    ForeignCluster { peer: NodeId },
    /// This node cannot prove its last vote: it grants nothing and does not campaign
    /// until it has heard enough voters' terms (see [`MembersProblem::Rejoining`]).
    /// Emitted once, when that starts.
    ///
    /// [`MembersProblem::Rejoining`]: super::MembersProblem::Rejoining
    Rejoining {
        cause: LostVote,
        /// The other voters of its set.
        voters: Vec<String>,
    },
    /// Rejoining is over: `floor` (the highest term heard from `heard` voters, or its
    /// own) counts as voted in; this node votes and campaigns only above it.
    Rejoined { floor: Term, heard: usize },
    /// The term is `u64::MAX`: this node cannot campaign (a term must never wrap, it is
    /// a fencing token). Emitted once.
    TermExhausted { term: Term },
    /// The answer to `Command::Member` number `req`: started by the primary (it commits
    /// once a majority holds it), or refused and why.
    MemberAnswer {
        req: u64,
        accepted: bool,
        message: String,
    },
}

/// Why a primary hands its role over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferReason {
    /// The agent is stopping (SIGTERM).
    Shutdown,
    /// `quorate transfer`.
    Operator,
    /// This node is no longer eligible (app check, required mount, drain).
    Ineligible,
    /// A higher-priority node has been seen alive and eligible for `preempt_delay`.
    Preempt,
}

impl TransferReason {
    pub fn as_str(self) -> &'static str {
        match self {
            TransferReason::Shutdown => "shutdown",
            TransferReason::Operator => "operator",
            TransferReason::Ineligible => "ineligible",
            TransferReason::Preempt => "preemption",
        }
    }
}

/// Why this node cannot take part in elections as things stand, for operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembersProblem {
    /// No agreed set yet: waiting for the nodes it lists.
    Bootstrapping { seen: usize, needed: usize },
    /// A node it lists lists other peers: no cluster forms until the lists agree.
    ListsDisagree { node: NodeId },
    /// A node it lists has seen a list that differs from its own: no cluster forms
    /// until the lists agree.
    HeardOfDisagreement { node: NodeId },
    /// Its peers hold an agreed set without it.
    NotAMember { held_by: NodeId },
    /// The agreed set it holds no longer includes it (it was removed).
    Removed,
    /// Members of its set hold the set of another cluster (same nodes, another origin).
    ForeignCluster { peers: Vec<String> },
    /// It cannot prove its last vote (`cause`) and the set names it: it may have voted
    /// before, so it votes only once it has heard every other voter's term, or a
    /// majority of the other voters after a settling wait (then only in later terms).
    Rejoining {
        cause: LostVote,
        /// The other voters it has not heard since it started.
        waiting_for: Vec<String>,
        /// Whether any candidacy its lost vote may have fed is over (see `rejoin_tick`).
        settled: bool,
        /// Other voters heard since then, and how many of them are enough.
        fresh: usize,
        needed: usize,
    },
}

impl std::fmt::Display for MembersProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MembersProblem::Bootstrapping { seen, needed } => write!(
                f,
                "no agreed member set yet: {seen} of the {needed} nodes needed to bootstrap one are up with this node's peer list"
            ),
            MembersProblem::ListsDisagree { node } => write!(
                f,
                "{node} lists other peers than this node: a new cluster forms only from equal lists; make `peers` agree on every node, then reload"
            ),
            MembersProblem::HeardOfDisagreement { node } => write!(
                f,
                "{node} has seen a node whose peers list differs from its own: a new cluster forms only from equal lists; make `peers` agree on every node, then reload"
            ),
            MembersProblem::NotAMember { held_by } => write!(
                f,
                "the cluster's agreed member set (held by {held_by}) does not include this node: add it with `quorate member add`"
            ),
            MembersProblem::ForeignCluster { peers } => write!(
                f,
                "{} belong to this node's member set but hold another cluster's: two clusters formed from these nodes; this node votes for no one until one side is re-made (see the operator guide, force-new-cluster)",
                peers.join(", ")
            ),
            MembersProblem::Removed => f.write_str(
                "the agreed member set no longer includes this node (removed): it takes no part; `quorate member add` brings it back",
            ),
            MembersProblem::Rejoining {
                cause,
                waiting_for,
                settled,
                fresh,
                needed,
            } => {
                write!(
                    f,
                    "rejoining: {cause}, so this node may have voted in terms it no longer knows; it votes and campaigns only above the highest term its peers report, once it has heard every other voter (waiting for {})",
                    waiting_for.join(", ")
                )?;
                if *settled {
                    write!(f, " or {needed} of them afresh ({fresh} so far)")
                } else {
                    write!(f, " or, after a settling wait, {needed} of them afresh")
                }
            }
        }
    }
}
