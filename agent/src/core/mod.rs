//! The sans-IO core: membership, failure detection and the election.
//!
//! Everything here is a pure state machine driven by `handle_*(now, …)` calls and drained
//! through `poll_*` calls; see [`Node`] for the driving contract. The core must never
//! read a clock, touch a socket, spawn a task or draw unseeded randomness: that is what
//! lets the simulation in `quorate-tests` replay thousands of partitions from a seed.
//! `agent/tests/core_fence.rs` checks the fence.

pub mod detector;
mod election;
pub mod lease;
pub mod membership;
mod node;
pub mod quorum;
pub mod tasks;
pub mod voters;

pub use membership::{Member, MemberState};
pub use node::{
    Command, CoreConfig, Event, HardState, InjectedFault, LostVote, Node, Timing, TransferReason,
    Transmit,
};
pub use voters::{MemberChange, MembersProblem};

#[cfg(test)]
mod tests;
