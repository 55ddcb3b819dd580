//! QUIC networking: the endpoint, mutual TLS, admission and peer links.
//!
//! Owns every socket the agent has towards its peers, and the one QUIC port operator
//! tools reach it on. It turns peer connections into [`Inbound`] messages for the driver
//! and sends what the driver gives it; operator connections (`quorate-ctl/1`, from
//! `control_allow` only) it hands to `crate::ctl` untouched. It never decides anything
//! about membership. Work an outsider can trigger (handshakes, malformed
//! bytes) is capped and logged at a limited rate.

mod frame;
mod link;
pub mod tls;

pub use link::{Inbound, LinkId, Net, NetConfig};
