//! QUIC networking: the endpoint, mutual TLS, admission and peer links.
//!
//! Owns every socket the agent has towards its peers, and the one QUIC port operator
//! tools reach it on. It turns peer connections into [`Inbound`] messages for the driver
//! and keeps the links the driver admits ([`Net::admit`], [`Net::refuse`],
//! [`Net::link_down`]): datagrams the driver hands it go out on them ([`Net::send`]),
//! and state fetches too ([`Net::fetch_state`]), so the driver never touches a
//! connection. Operator connections (`quorate-ctl/1`, from `control_allow` only) it
//! hands to the operator channel untouched; the QUIC plumbing both sides share
//! (transport settings, frames, close reasons, backoff) is [`transport`]. It never
//! decides anything about membership, and never imports the operator channel's modules
//! (they import this one). Work an outsider can trigger is capped and logged at a limited
//! rate: unknown addresses are dropped before TLS, unvalidated ones get a QUIC Retry,
//! handshake slots are held until the hello, hellos are read under a small cap, and a
//! node keeps at most one link per direction to each peer. A settled pair of nodes has
//! one connection, the one the node with the lower id dialed.

mod link;
mod links;
mod socket;
pub mod tls;
pub mod transport;

pub use link::{Inbound, Net, NetConfig};
pub use links::{Link, LinkId};

pub(crate) use socket::register;
