//! The sans-IO core: membership, failure detection and the election.
//!
//! Everything here is a pure state machine driven by `handle_*(now, …)` calls and drained
//! through `poll_*` calls; see [`Node`] for the driving contract. The core must never
//! read a clock, touch a socket, spawn a task or draw unseeded randomness: that is what
//! lets the simulation in `quorate-tests` replay thousands of partitions from a seed.
//! `agent/tests/core_fence.rs` checks the fence.

mod contract;
pub mod detector;
pub mod lease;
pub mod membership;
mod node;
pub mod quorum;
mod role;
pub mod tasks;
pub mod voters;

pub use contract::{
    Command, CoreConfig, Event, HardState, InjectedFault, LostVote, MembersProblem, Timing,
    TransferReason, Transmit,
};
pub use membership::{Member, MemberState};
pub use node::Node;
pub use voters::MemberChange;

#[cfg(test)]
pub(crate) mod tests;
