//! What operators set on this node and what expires: the drain, drift acknowledgements,
//! the upgrade gate, and drain orders gossiped by other nodes. The driver persists
//! [`OperatorState`] (`operator.json`); this module only folds and expires it.

use proto::{Drain, DriftAck};
use serde::{Deserialize, Serialize};

/// What an operator set on this node, kept across restarts (`operator.json` in
/// `state_dir`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OperatorState {
    pub drain: Option<Drain>,
    /// Version (wall µs) of the drain or undrain order in force: an order gossiped by
    /// another node applies only if newer.
    pub drain_version: u64,
    pub drift_acks: Vec<DriftAck>,
    /// The app version an operator let through the upgrade gate.
    pub upgrade_allowed: Option<String>,
}
