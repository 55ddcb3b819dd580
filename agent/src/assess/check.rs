//! What a node check is to the registry: its [`Spec`] (name, judge, heartbeat bit, what
//! a failure blocks), what it reads ([`Cx`]) and what it says ([`Judged`], [`Holds`],
//! [`Detail`]). Types only; each check's judge lives in its own file.

use proto::ctl::EventKind;
use proto::status::ConfigStatus;
use proto::{CheckCode, CheckName, MountState, NodeId, NodeState, WallMicros};

use super::reason::Reason;
use super::state::LocalState;
use crate::config::Config;
use crate::core::{Member, Node};

/// What a check's reason says before its probe first reported.
pub const FIRST_PROBE_PENDING: &str = "first probe pending";

/// One node check in the registry.
pub struct Spec {
    pub name: CheckName,
    pub(super) judge: fn(&Cx<'_>, &mut Detail) -> Judged,
    /// The heartbeat bit a node sets while this check holds it back, and the code shown
    /// for the check from that bit before the node's full state is fetched. 0 for a check
    /// that holds nothing back (`certs`): it shows `ok` until the state is fetched.
    pub bit: u32,
    pub bad: CheckCode,
    /// A failure makes the node ineligible: `quorate transfer` names it when it refuses.
    pub blocks_eligibility: bool,
    /// Its probe logs its own transitions; the others are judged with the peers, and
    /// the driver logs theirs.
    pub probe_logs: bool,
    /// What its transitions are in the journal.
    pub event: EventKind,
}

/// What a check reads: the local state, the config and the peers as the core has them.
pub struct Cx<'a> {
    pub cfg: &'a Config,
    pub local: &'a LocalState,
    pub core: &'a Node,
    /// Alive peers.
    pub alive: Vec<&'a Member>,
    /// Alive peers whose full state this node has.
    pub peers: Vec<(&'a NodeId, &'a NodeState)>,
    pub wall: WallMicros,
    /// This node holds the primary lease.
    pub lease_held: bool,
}

/// What some checks say beyond their line.
#[derive(Default)]
pub struct Detail {
    pub mounts: Vec<MountState>,
    pub config: Vec<ConfigStatus>,
    /// How each alive peer compares its config sets with the others (this node's
    /// included), for `/cluster`.
    pub peer_config: Vec<(NodeId, Vec<ConfigStatus>)>,
}

/// One check's judgement.
#[derive(Debug, Default)]
pub struct Judged {
    pub code: CheckCode,
    pub reason: String,
    /// Configured but not reported yet: the node is not ready until it settles.
    pub pending: bool,
    /// What the check holds back, if anything.
    pub holds: Holds,
}

/// What a check holds the node back from, and the reason code it gives.
#[derive(Debug, Default, Clone, Copy)]
pub struct Holds {
    pub ready: bool,
    pub healthy: bool,
    pub eligible: bool,
    pub reason: Option<Reason>,
    /// Sets the check's [`Spec::bit`] in the heartbeat.
    pub bit: bool,
}
