//! The operator channel (`quorate-ctl/1`): the agent's server side, the client `quorate`
//! uses, and the pure rules both lean on.
//!
//! Owns:
//! - [`server`]: serving operator connections the endpoint hands over (already admitted:
//!   an address in `control_allow`, a certificate of the cluster CA): one request per
//!   stream, answered from the published [`ClusterView`](crate::view::ClusterView), the
//!   [event journal](crate::events), or — for commands — by the driver through an
//!   [`Order`] and its reply;
//! - [`commands`]: what makes a command acceptable (names, reasons, durations, whether a
//!   node may take the primary role), as pure functions;
//! - [`execute`]: carrying a command out against the core the driver lends it, with the
//!   answer the operator reads and what the driver does next;
//! - [`client`]: connecting with a node's or an operator's certificate, the three
//!   exchanges, and the reconnect policy (backoff, which member next), sans-IO;
//! - [`Caller`]: who is asking, read from the certificate.
//!
//! Its server must never decide anything itself (commands are carried out, or refused,
//! in the driver's turn, through [`execute`]), hold a lock, wait on the driver without a deadline, or let any
//! byte a caller sends panic it or change anything but that caller's own stream.

pub mod caller;
pub mod client;
pub mod commands;
pub mod execute;
pub mod server;

pub use caller::{Caller, Order, Who, identify};
pub use server::CtlServer;
