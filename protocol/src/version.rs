//! Protocol version, ALPN identifiers, size limits and connection close codes.

/// Version byte that starts every datagram and frame body. Bump it on any change to the
/// encoding of a type in this crate (the golden vectors will tell you).
pub const PROTOCOL_VERSION: u8 = 1;

/// ALPN for agent ↔ agent connections.
pub const ALPN_PEER: &[u8] = b"quorate-peer/1";
/// ALPN for operator tools ↔ agent connections.
pub const ALPN_CTL: &[u8] = b"quorate-ctl/1";

/// Largest datagram payload, version byte included. quinn's datagram limit at the
/// minimum QUIC MTU (1200) is 1162 bytes; we keep headroom below it.
pub const MAX_DATAGRAM: usize = 1100;

/// Largest stream frame body (version byte included, length prefix excluded).
pub const MAX_FRAME: usize = 1 << 20;

/// Largest body of a frame a peer sends unasked (version byte included): the hello that
/// opens a connection, and a state request. A hello takes about 220 bytes at most (a
/// cluster name and a node id of 63 characters each, an address), so a peer that has
/// shown nothing but a certificate cannot make an agent read or decode more than this.
pub const MAX_HELLO: usize = 1024;

/// TLS server name every node certificate carries besides its node id. Peers dial by
/// address and learn the node id from the hello, so the handshake verifies this name
/// and the hello's node id is then checked against the certificate.
pub const PEER_SERVER_NAME: &str = "peer.quorate";

/// QUIC application close codes: why a connection was closed, so both ends can log it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum CloseCode {
    /// The node is shutting down cleanly (its peers mark it `left`).
    Goodbye = 0x100,
    /// The peer speaks another protocol version; the reason text says which.
    VersionMismatch = 0x101,
    /// The peer belongs to another cluster.
    WrongCluster = 0x102,
    /// The certificate does not name the node id the hello claims, or the node is not
    /// a configured peer.
    Identity = 0x103,
    /// A malformed or oversized message.
    Protocol = 0x104,
    /// Another connection between the same two nodes replaced this one: a newer one in
    /// the same direction, or the one the node with the lower id dialed (a pair keeps
    /// one).
    Replaced = 0x105,
    /// Operator channel: the caller's address is not in the agent's `control_allow`.
    NotAllowed = 0x106,
    /// Operator channel: the agent serves as many operator connections as it takes.
    Busy = 0x107,
    /// The dialing node no longer talks to this one (it became a non-voter's link to
    /// another non-voter, or left its set): nothing is wrong.
    Unneeded = 0x108,
}

impl CloseCode {
    pub fn from_u64(code: u64) -> Option<Self> {
        Some(match code {
            0x100 => Self::Goodbye,
            0x101 => Self::VersionMismatch,
            0x102 => Self::WrongCluster,
            0x103 => Self::Identity,
            0x104 => Self::Protocol,
            0x105 => Self::Replaced,
            0x106 => Self::NotAllowed,
            0x107 => Self::Busy,
            0x108 => Self::Unneeded,
            _ => return None,
        })
    }
}
