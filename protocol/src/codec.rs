//! Encoding and decoding behind hard size limits.
//!
//! Layout: a datagram is `[version][postcard(Datagram)]`; a stream frame is
//! `[u32 big-endian body length][version][postcard(Frame)]`. Lengths are checked
//! against the caps before any buffer is allocated, and every list and string inside
//! against its [wire limit](crate::limits) before it is read.

use crate::bounded::{self, Breach, BreachKind};
use crate::limits::Unit;
use crate::messages::{Datagram, Frame};
use crate::version::{MAX_DATAGRAM, MAX_FRAME, PROTOCOL_VERSION};

/// Bytes in a frame's length prefix.
pub const FRAME_HEADER_LEN: usize = 4;

/// Why bytes could not be decoded. Decoding never changes any state, so the caller
/// can drop the message, log it (rate-limited) and carry on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("empty message")]
    Empty,
    #[error("peer speaks quorate protocol version {theirs}, this agent speaks {ours}")]
    Version { theirs: u8, ours: u8 },
    #[error("message of {len} bytes exceeds the {cap}-byte limit")]
    TooLarge { len: usize, cap: usize },
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("{0} trailing bytes after the message")]
    Trailing(usize),
    /// A list or a string holds more than its wire limit allows (see [`crate::limits`]).
    #[error("{}", bounded::over_text(.field, .limit, .found, .max, .unit))]
    OverLimit {
        /// Where: `NodeState.config[].files`.
        field: &'static str,
        /// The limit's name in [`crate::limits`].
        limit: &'static str,
        /// How many entries or bytes it holds, when known (a claimed length that the
        /// rest of the message could not even hold is not).
        found: Option<usize>,
        max: usize,
        unit: Unit,
    },
    /// A field holds something no sender writes there (a node id that is not one).
    #[error("{field}: {reason}")]
    Invalid {
        field: &'static str,
        reason: &'static str,
    },
}

impl From<Breach> for DecodeError {
    fn from(b: Breach) -> Self {
        match b.kind {
            BreachKind::Over { limit, found } => DecodeError::OverLimit {
                field: b.field,
                limit: limit.name,
                found,
                max: limit.max,
                unit: limit.unit,
            },
            BreachKind::Invalid(reason) => DecodeError::Invalid {
                field: b.field,
                reason,
            },
        }
    }
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("message of {len} bytes exceeds the {cap}-byte limit")]
    TooLarge { len: usize, cap: usize },
    #[error("cannot encode: {0}")]
    Serialize(String),
    /// A list or a name of this node's own state is over its wire limit, so peers would
    /// refuse it; the message names the field and the limit.
    #[error("cannot encode: {0}")]
    OverLimit(String),
}

fn encode_body<T: serde::Serialize>(
    msg: &T,
    cap: usize,
    prefix: usize,
) -> Result<Vec<u8>, EncodeError> {
    let mut out = vec![0u8; prefix];
    out.push(PROTOCOL_VERSION);
    bounded::clear();
    let out = postcard::to_extend(msg, out).map_err(|e| match bounded::take() {
        Some(breach) => EncodeError::OverLimit(breach.to_string()),
        None => EncodeError::Serialize(e.to_string()),
    })?;
    let len = out.len() - prefix;
    if len > cap {
        return Err(EncodeError::TooLarge { len, cap });
    }
    Ok(out)
}

fn decode_body<'a, T: serde::Deserialize<'a>>(
    bytes: &'a [u8],
    cap: usize,
) -> Result<T, DecodeError> {
    if bytes.len() > cap {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            cap,
        });
    }
    let (&version, rest) = bytes.split_first().ok_or(DecodeError::Empty)?;
    if version != PROTOCOL_VERSION {
        return Err(DecodeError::Version {
            theirs: version,
            ours: PROTOCOL_VERSION,
        });
    }
    bounded::clear();
    let (msg, trailing) = postcard::take_from_bytes(rest).map_err(|e| match bounded::take() {
        Some(breach) => DecodeError::from(breach),
        None => DecodeError::Malformed(e.to_string()),
    })?;
    if !trailing.is_empty() {
        return Err(DecodeError::Trailing(trailing.len()));
    }
    Ok(msg)
}

/// Encodes a datagram; fails if it would exceed [`MAX_DATAGRAM`].
pub fn encode_datagram(msg: &Datagram) -> Result<Vec<u8>, EncodeError> {
    encode_body(msg, MAX_DATAGRAM, 0)
}

/// Decodes a datagram of at most [`MAX_DATAGRAM`] bytes.
pub fn decode_datagram(bytes: &[u8]) -> Result<Datagram, DecodeError> {
    decode_body(bytes, MAX_DATAGRAM)
}

/// Encodes a frame with its length prefix; fails if the body would exceed [`MAX_FRAME`].
pub fn encode_frame(msg: &Frame) -> Result<Vec<u8>, EncodeError> {
    encode_framed(msg, MAX_FRAME)
}

/// Any stream message (peer [`Frame`] or operator-channel message) with its length
/// prefix, under `cap` (at most [`MAX_FRAME`]).
pub(crate) fn encode_framed<T: serde::Serialize>(
    msg: &T,
    cap: usize,
) -> Result<Vec<u8>, EncodeError> {
    let mut out = encode_body(msg, cap.min(MAX_FRAME), FRAME_HEADER_LEN)?;
    let len = u32::try_from(out.len() - FRAME_HEADER_LEN).map_err(|_| EncodeError::TooLarge {
        len: out.len(),
        cap,
    })?;
    out[..FRAME_HEADER_LEN].copy_from_slice(&len.to_be_bytes());
    Ok(out)
}

/// Reads a frame's length prefix and checks it against [`MAX_FRAME`], so the caller
/// allocates the body only once it is known to be within the cap.
pub fn frame_body_len(header: [u8; FRAME_HEADER_LEN]) -> Result<usize, DecodeError> {
    let len = u32::from_be_bytes(header) as usize;
    if len == 0 {
        return Err(DecodeError::Empty);
    }
    if len > MAX_FRAME {
        return Err(DecodeError::TooLarge {
            len,
            cap: MAX_FRAME,
        });
    }
    Ok(len)
}

/// Decodes a frame body (the bytes after the length prefix).
pub fn decode_frame_body(bytes: &[u8]) -> Result<Frame, DecodeError> {
    decode_framed(bytes, MAX_FRAME)
}

/// Decodes any stream message body (the bytes after the length prefix) of at most `cap`
/// bytes (at most [`MAX_FRAME`]).
pub(crate) fn decode_framed<'a, T: serde::Deserialize<'a>>(
    bytes: &'a [u8],
    cap: usize,
) -> Result<T, DecodeError> {
    decode_body(bytes, cap.min(MAX_FRAME))
}
