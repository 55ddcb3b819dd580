//! quorate-agent as a library: the binary and the tests both run it.
//!
//! Module map:
//! - [`config`]: the config file — parse, check, errors with file:line.
//! - [`core`]: sans-IO state machines (membership, failure detection). No IO, no clocks.
//! - [`net`]: QUIC endpoint, mutual TLS, peer links; turns sockets into core inputs.
//! - [`http`]: health endpoints and `/cluster`, served from a snapshot on their own thread.
//! - [`probe`]: local checks (load); they report, they never decide.
//! - [`driver`]: the one task that owns `core::Node` and publishes [`view::ClusterView`].
//! - [`clock`]: the only place clocks are read.
//! - [`ca`]: cluster CA tooling shared with the `quorate` binary.

pub mod ca;
pub mod clock;
pub mod config;
pub mod core;
pub mod net;
