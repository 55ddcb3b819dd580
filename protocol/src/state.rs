//! The full state of one node, fetched over a stream when a heartbeat's digest changes.

use serde::{Deserialize, Serialize};

use crate::ids::{Incarnation, NodeId, WallMicros};
use crate::messages::StateDigest;

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
    pub advertise: String,
    pub mode: Mode,
    pub priority: u32,
    pub roles: Vec<String>,
    pub agent_version: String,
    pub app_version: Option<String>,
    /// When this incarnation started, on the node's own wall clock.
    pub started: WallMicros,
    /// BLAKE3 of the node's sorted peer list: nodes whose voter lists differ disagree on
    /// what a majority is, so a mismatch is flagged.
    pub peers_hash: [u8; 8],
}

impl NodeState {
    /// The digest heartbeats carry: first 8 bytes of a hash of the encoded state. A
    /// receiver whose copy has another digest fetches the state again.
    pub fn digest(&self) -> StateDigest {
        let bytes = postcard::to_stdvec(self).unwrap_or_default();
        StateDigest(fnv1a64(&bytes))
    }
}

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
