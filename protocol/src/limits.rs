//! The wire limits: how many entries each collection and how many bytes each string of a
//! message may hold. The decoders enforce them before they allocate, so that no message,
//! however crafted, decodes to more than twice the frame cap in memory
//! (`tests/decode_fuzz.rs` measures the worst cases with a counting allocator); the
//! encoders enforce them too, so a node learns that its own state is too big before its
//! peers refuse it.
//!
//! Owns the numbers and what they mean (the table in `docs/protocol.md`, "Limits", lists
//! every one of them; a test keeps the two equal). Must never hold a limit that a
//! 20-voter cluster with a few hundred non-voters, or a node with a generous
//! configuration, could reach in normal use: a limit is a guard against hostile or broken
//! peers, not a quota.

use std::fmt;

/// What a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Entries of a list.
    Entries,
    /// Bytes of UTF-8 text.
    Bytes,
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unit::Entries => "entries",
            Unit::Bytes => "bytes",
        })
    }
}

/// One wire limit.
#[derive(Debug, PartialEq, Eq)]
pub struct Limit {
    /// The constant's name, as errors and the docs table name it.
    pub name: &'static str,
    /// The most entries or bytes allowed.
    pub max: usize,
    pub unit: Unit,
    /// Where it applies.
    pub applies_to: &'static str,
    /// Whether text over the limit is cut when sent (free text: reasons, messages) rather
    /// than refused (names, paths and lists, whose meaning a cut would change).
    pub cut_when_sent: bool,
}

macro_rules! limits {
    ($($(#[$doc:meta])* $name:ident = $max:expr, $unit:ident, cut: $cut:expr, $applies:expr;)*) => {
        $(
            $(#[$doc])*
            pub const $name: Limit = Limit {
                name: stringify!($name),
                max: $max,
                unit: Unit::$unit,
                applies_to: $applies,
                cut_when_sent: $cut,
            };
        )*
        /// Every limit, in the order of the docs table.
        pub const ALL: &[&Limit] = &[$(&$name),*];
    };
}

limits! {
    /// A node id is a DNS label, so that a certificate can name it.
    NODE_ID = 63, Bytes, cut: false, "every node id";
    /// A cluster name: letters, digits, `-`, `_` and `.`.
    CLUSTER_NAME = 63, Bytes, cut: false, "Hello.cluster";
    /// A QUIC address as text: `[v6%scope]:port` or a DNS name and port.
    ADDR = 255, Bytes, cut: false,
        "Hello.advertise, NodeState.advertise, MemberSlot.addr, MemberChange addr";
    /// Names a config file or an operator gives: roles, tasks, config sets, checks, and
    /// the node, task and set names of operator commands.
    NAME = 255, Bytes, cut: false,
        "NodeState.roles[], CheckState.name, ConfigSetState.name, TaskPlacement.name, \
         DriftAck.name, CtlCommand names, CtlRequest::ShouldRun.task, CtlResponse holder";
    /// Short words that are only shown: a file system type, who gave an order, the
    /// balancer's words (the agent keeps at most 64 bytes of those), who recorded an event.
    LABEL = 255, Bytes, cut: true,
        "MountState.fstype, Drain.by, DriftAck.by, BalancerSeen.state/balancer/weight, \
         EventRecord.recorded_by/node";
    /// Agent and app versions (the agent cuts an app version to 64 characters).
    VERSION = 256, Bytes, cut: false, "NodeState.agent_version, NodeState.app_version";
    /// A file system path (Linux's `PATH_MAX`).
    PATH = 4096, Bytes, cut: false, "MountState.path, FileHash.path";
    /// A shared-mount proof: a nonce (the agent reads no proof file longer than this).
    PROOF = 256, Bytes, cut: false, "MountState.proof";
    /// Free text between agents: why a check fails, why a set cannot be hashed, a drain's
    /// reason, where a mount comes from, an answer to a forwarded member change, an event.
    TEXT = 4096, Bytes, cut: true,
        "CheckState.reason, MountState.reason/source, ConfigSetState.error, Drain.reason, \
         DriftAck.reason, MemberReply.message, EventRecord.text";
    /// A reason an operator types (the agent takes at most 200 characters; this is the
    /// byte bound the decoder can check before it counts characters).
    OPERATOR_REASON = 4096, Bytes, cut: false, "CtlCommand reason (drain, drift ack)";
    /// An agent's answer to an operator command (a member list can be long).
    CTL_TEXT = 64 * 1024, Bytes, cut: true, "CtlResponse Done.message, Refused.reason";
    /// Slots of an agreed member set: 20 voters and a fleet of non-voters.
    MEMBERS = 1024, Entries, cut: false, "Membership.members";
    /// Peers one node holds suspect or dead: at most every member.
    SUSPECTS = 1024, Entries, cut: false, "NodeState.suspects";
    /// Drain orders a node took: one per target node.
    DRAIN_ORDERS = 1024, Entries, cut: false, "NodeState.drain_orders";
    /// Roles of one node (`roles` in its config).
    ROLES = 64, Entries, cut: false, "NodeState.roles";
    /// Checks of one node (six kinds today).
    CHECKS = 64, Entries, cut: false, "NodeState.checks";
    /// `[[mount]]` sections of one node.
    MOUNTS = 256, Entries, cut: false, "NodeState.mounts";
    /// `[[config]]` sets of one node.
    CONFIG_SETS = 128, Entries, cut: false, "NodeState.config";
    /// Files one `[[config]]` set matched.
    CONFIG_FILES_PER_SET = 4096, Entries, cut: false, "ConfigSetState.files";
    /// Files all of a node's `[[config]]` sets matched together.
    CONFIG_FILES = 16384, Entries, cut: false, "NodeState.config[].files, summed";
    /// Drift acknowledgements: one per config set.
    DRIFT_ACKS = 128, Entries, cut: false, "NodeState.drift_acks";
    /// Singleton tasks: the config allows 64 `[[task]]`s; twice that leaves room to grow,
    /// and a grant of that many tags still fits a datagram.
    TASKS = 128, Entries, cut: false, "NodeState.tasks, TaskGrant.tasks";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_limits_positive() {
        for (i, a) in ALL.iter().enumerate() {
            assert!(a.max > 0, "{}", a.name);
            assert!(
                ALL[i + 1..].iter().all(|b| b.name != a.name),
                "{} twice",
                a.name
            );
            assert!(!a.cut_when_sent || a.unit == Unit::Bytes, "{}", a.name);
        }
    }
}
