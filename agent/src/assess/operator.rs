//! What operators set on this node and what expires: the drain, drift acknowledgements,
//! the upgrade gate, and drain orders gossiped by other nodes. The driver persists
//! [`OperatorState`] (`operator.json`); this module only folds and expires it.

use proto::{Drain, DriftAck, WallMicros};
use serde::{Deserialize, Serialize};

use super::LocalState;
use crate::core::Node;

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

impl LocalState {
    /// Drops what expired at `wall`; returns a line to log per expiry.
    pub fn expire(&mut self, wall: WallMicros) -> Vec<String> {
        let mut said = Vec::new();
        if let Some(d) = &self.operator.drain
            && d.until.is_some_and(|u| u <= wall)
        {
            said.push(format!("drain expired (was: {:?} by {})", d.reason, d.by));
            self.operator.drain = None;
        }
        let before = self.operator.drift_acks.len();
        self.operator.drift_acks.retain(|a| a.until > wall);
        if self.operator.drift_acks.len() != before {
            said.push("a drift acknowledgement expired".into());
        }
        self.drain_orders.retain(|o| {
            o.drain
                .as_ref()
                .is_none_or(|d| d.until.is_none_or(|u| u > wall))
        });
        said
    }

    /// Adopts the newest drain order a peer gossips for this node. Returns whether the
    /// operator state changed (and must be persisted).
    pub fn adopt_orders(&mut self, core: &Node) -> Option<String> {
        let me = &self.cfg.node;
        let newest = core
            .members()
            .filter_map(|m| m.node_state.as_ref())
            .flat_map(|s| s.drain_orders.iter())
            .filter(|o| o.target == *me && o.version > self.operator.drain_version)
            .max_by_key(|o| o.version)?
            .clone();
        self.operator.drain_version = newest.version;
        self.operator.drain = newest.drain.clone();
        Some(match &newest.drain {
            Some(d) => format!("drained by {}: {:?}", d.by, d.reason),
            None => "undrained by an order from another node".to_owned(),
        })
    }
}
