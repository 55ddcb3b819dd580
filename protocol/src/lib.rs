//! quorate's wire protocol: every type that crosses a socket, and nothing else.
//!
//! What is on the wire:
//! - **Datagrams** ([`Datagram`]): QUIC DATAGRAM frames between agents — heartbeats and
//!   goodbyes (and, later, election messages). At most [`MAX_DATAGRAM`] bytes each.
//! - **Stream frames** ([`Frame`]): length-prefixed messages on QUIC streams — the hello
//!   exchange that binds a connection to a node id, and full [`NodeState`] fetches.
//!   At most [`MAX_FRAME`] bytes each.
//! - **The operator channel** ([`ctl`]): requests and answers between `quorate` and an
//!   agent, framed the same way, on connections with ALPN [`ALPN_CTL`].
//!
//! Every datagram and every frame body begins with [`PROTOCOL_VERSION`]. The bytes after
//! it are postcard 1.x (a published, stable format). A change to any type here changes the
//! golden vectors in `tests/golden/` and is a protocol bump.
//!
//! This crate owns the size limits and checks them *before* allocating: the caps of whole
//! messages here, and the [wire limits](limits) of every list and string inside them, so
//! that no message decodes to more than twice [`MAX_FRAME`] in memory. Decoders return
//! [`DecodeError`] on any byte string, naming the field and limit a message broke; they
//! never panic. It must never depend on tokio,
//! quinn or anything that does IO.

// Nothing here needs unsafe code; `forbid` (not the workspace's `deny`) so no
// `#[allow]` can bring it back.
#![forbid(unsafe_code)]

mod bounded;
mod codec;
pub mod ctl;
mod ids;
pub mod limits;
mod members;
mod messages;
mod state;
pub mod status;
mod version;
mod vocab;

pub use codec::{
    DecodeError, EncodeError, FRAME_HEADER_LEN, decode_datagram, decode_frame_body,
    encode_datagram, encode_frame, frame_body_len,
};
pub use ids::{ClusterName, IdError, Incarnation, NodeId, Seq, Term, WallMicros};
pub use members::{ConfigStamp, MemberChange, MemberReply, MemberRequest, MemberSlot, Membership};
pub use messages::{
    Datagram, Echo, Frame, FreezeFlag, Goodbye, HealthBits, Heartbeat, Hello, LoadFigures,
    TaskGrant, TaskTag, TimeoutNow, TransferRequest, VoteReply, VoteRequest,
};
pub use state::{
    BalancerSeen, CheckState, ConfigSetState, Drain, DrainOrder, DriftAck, FileHash, Mode,
    MountState, NodeState, StateDigest, TaskPlacement, compare_versions,
};
pub use version::{
    ALPN_CTL, ALPN_PEER, CloseCode, MAX_DATAGRAM, MAX_FRAME, MAX_HELLO, PEER_SERVER_NAME,
    PROTOCOL_VERSION,
};
pub use vocab::{CheckCode, CheckName, MemberState, Role};
