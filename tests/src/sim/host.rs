//! [`Host`]: one simulated machine — its agent process (a [`core::Node`]) and what
//! survives the process: the disk, the clocks, the configuration, the operator's drain.

use std::time::Duration;

use proto::{ClusterName, HealthBits, Hello, Incarnation, Mode, NodeId, NodeState, WallMicros};
use quorate_agent::core::{self, HardState, Node};

use super::clock::NodeClock;

/// Whether the agent process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    Running,
    /// SIGSTOP: hears and sends nothing; its clock runs on.
    Paused,
    /// VM suspend: as paused, and its monotonic clock stops.
    Suspended,
    /// SIGTERM: handing over, then it says goodbye and exits at `deadline`, or as soon
    /// as another node is primary.
    Leaving {
        deadline: Duration,
        /// Start again at once when gone (a restart to apply a config change).
        restart: bool,
    },
    /// Crashed or exited: all volatile state is gone.
    Down,
}

impl Process {
    /// Whether the process takes inputs and sends (running, or leaving gracefully).
    pub fn is_live(self) -> bool {
        matches!(self, Process::Running | Process::Leaving { .. })
    }
}

/// An input that reached a node: from the network, or the disk.
#[derive(Debug, Clone)]
pub(crate) enum Input {
    Datagram {
        from: usize,
        datagram: proto::Datagram,
    },
    /// A write of the hard state finished; `vote`: with `(term, voted_for)` (the
    /// core's `records_vote` when it was handed out), else the member set only.
    Persisted { hs: HardState, vote: bool },
    /// A state fetch from `target` finished (it fails unless both ends are up).
    Fetched { target: usize },
}

/// One machine.
#[derive(Debug)]
pub(crate) struct Host {
    pub(crate) id: NodeId,
    pub(crate) mode: Mode,
    /// The configured priority; a reload gives it to the running core, else it takes
    /// effect at the next start.
    pub(crate) priority: u32,
    pub(crate) process: Process,
    /// The agent's state machine; `None` while down.
    pub(crate) core: Option<Node>,
    pub(crate) clock: NodeClock,
    /// The hard state on disk: what a restart reads.
    pub(crate) disk: HardState,
    /// Whether the `election` file exists. Without it, a restart with a member set on
    /// disk has no proof of the last vote (`LostVote::Missing`), as the agent's
    /// `persist::load_hard_state` reports it; without either it is a first start.
    pub(crate) has_election: bool,
    /// Counts starts; the agent's incarnation.
    pub(crate) incarnation: u64,
    /// Drained by an operator (or its app check fails): not eligible.
    pub(crate) drained: bool,
    /// When the core's timer fires, in global time; `None` unless live.
    pub(crate) timer_at: Option<Duration>,
    /// Inputs that arrived while the process was stopped, in arrival order.
    pub(crate) stalled: Vec<Input>,
    /// When this incarnation started (global time).
    pub(crate) started: Duration,
    /// What of its state the core changes (its durable set, its bootstrap objection),
    /// as last reported with the digest: the agent's driver re-reports on a change.
    pub(crate) reported: (proto::ConfigStamp, bool),
}

impl Host {
    pub(crate) fn new(id: NodeId, mode: Mode, priority: u32, clock: NodeClock) -> Self {
        Self {
            id,
            mode,
            priority,
            process: Process::Down,
            core: None,
            clock,
            disk: HardState::default(),
            has_election: false,
            incarnation: 0,
            drained: false,
            timer_at: None,
            stalled: Vec::new(),
            started: Duration::ZERO,
            reported: Default::default(),
        }
    }

    /// A write of the hard state finished, as the agent's `persist::save_hard_state`
    /// does it: the member set, and `(term, voted_for)` only with `vote`.
    pub(crate) fn write(&mut self, hs: &HardState, vote: bool) {
        self.disk.members = hs.members.clone();
        if vote {
            self.disk.term = hs.term;
            self.disk.voted_for = hs.voted_for.clone();
            self.has_election = true;
        }
    }

    /// What the probes report: a drained node (or a witness) is not eligible.
    pub(crate) fn health(&self) -> HealthBits {
        let base = HealthBits(HealthBits::READY | HealthBits::HEALTHY);
        if self.drained {
            base.with(HealthBits::HEALTHY, false)
                .with(HealthBits::DRAINING, true)
        } else {
            base.with(HealthBits::ELIGIBLE, self.mode == Mode::Member)
        }
    }

    /// The full state peers fetch (its digest goes in every heartbeat): what the running
    /// agent runs with (the core's priority, which a reload changes; its bootstrap list;
    /// the member set it holds durably).
    pub(crate) fn node_state(&self) -> NodeState {
        let priority = self
            .core
            .as_ref()
            .map_or(self.priority, |core| core.config().priority);
        NodeState {
            agent_version: "sim".into(),
            peers_hash: self
                .core
                .as_ref()
                .map_or([0; 8], |core| core.config().bootstrap_hash),
            members: self
                .core
                .as_ref()
                .map_or_else(Default::default, |core| core.persisted().members.clone()),
            lists_disagree: self.core_state().1,
            ..NodeState::new(
                self.id.clone(),
                Incarnation(self.incarnation),
                self.advertise(),
                self.mode,
                priority,
                WallMicros(self.started.as_micros() as u64),
            )
        }
    }

    pub(crate) fn hello(&self, cluster: &ClusterName) -> Hello {
        Hello {
            cluster: cluster.clone(),
            node: self.id.clone(),
            incarnation: Incarnation(self.incarnation),
            advertise: self.advertise(),
            mode: self.mode,
        }
    }

    pub(crate) fn advertise(&self) -> String {
        address(&self.id)
    }

    /// The parts of its state the core itself changes (see `reported`).
    pub(crate) fn core_state(&self) -> (proto::ConfigStamp, bool) {
        self.core.as_ref().map_or_else(Default::default, |core| {
            (core.persisted().members.stamp, core.lists_disagree())
        })
    }

    /// The lease, if this node holds it at global time `now`.
    pub(crate) fn lease_held(&self, now: Duration) -> Option<core::lease::Lease> {
        let core = self.core.as_ref()?;
        let lease = core.lease();
        core::lease::holds(lease.as_ref(), self.clock.now(now))
            .then_some(lease)
            .flatten()
    }
}

/// The address a simulated node advertises.
pub(crate) fn address(id: &NodeId) -> String {
    format!("sim://{id}")
}

/// The bootstrap list a core gets from a `peers` file naming `ids` (itself included),
/// and its hash (any stable hash: the agent's is BLAKE3).
pub(crate) fn bootstrap(ids: &[NodeId]) -> (Vec<String>, [u8; 8]) {
    let mut list: Vec<String> = ids.iter().map(address).collect();
    list.sort();
    list.dedup();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in list.join(",").bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (list, h.to_le_bytes())
}
