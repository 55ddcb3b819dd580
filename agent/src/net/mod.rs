//! QUIC networking: the endpoint, mutual TLS, admission and peer links.
//!
//! Owns every socket the agent has towards its peers. It turns connections into
//! [`Inbound`] messages for the driver and sends what the driver gives it; it never
//! decides anything about membership. Work an outsider can trigger (handshakes, malformed
//! bytes) is capped and logged at a limited rate.

mod frame;
mod link;
pub mod tls;

pub use link::{Inbound, LinkId, Net, NetConfig};
