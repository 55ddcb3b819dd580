//! Identifier newtypes. Strings that name things are parsed once, here, and then trusted.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must not be empty")]
    Empty,
    #[error("is {len} characters long; at most {max} are allowed")]
    TooLong { len: usize, max: usize },
    #[error("contains {0:?}; only ASCII letters, digits and '-' are allowed")]
    BadChar(char),
    #[error("must start with a letter or digit")]
    BadStart,
}

const MAX_ID: usize = 63;

fn check_label(s: &str, extra: &[char]) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if s.len() > MAX_ID {
        return Err(IdError::TooLong {
            len: s.len(),
            max: MAX_ID,
        });
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || extra.contains(c)))
    {
        return Err(IdError::BadChar(c));
    }
    if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(IdError::BadStart);
    }
    Ok(())
}

/// A node's id: a DNS label (letters, digits, '-'; at most 63), so that a certificate can
/// name it as a DNS subject alternative name. Defaults to the short hostname.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NodeId(String);

impl NodeId {
    pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
        let s = s.into();
        check_label(&s, &[])?;
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for NodeId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::new(s)
    }
}

impl From<NodeId> for String {
    fn from(id: NodeId) -> String {
        id.0
    }
}

impl std::str::FromStr for NodeId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::new(s)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// A cluster's name: letters, digits, '-', '_' and '.'; at most 63.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClusterName(String);

impl ClusterName {
    pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
        let s = s.into();
        check_label(&s, &['_', '.'])?;
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ClusterName {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::new(s)
    }
}

impl From<ClusterName> for String {
    fn from(c: ClusterName) -> String {
        c.0
    }
}

impl fmt::Display for ClusterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ClusterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

macro_rules! fixed_u64 {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Encoded as 8 fixed little-endian bytes, so a heartbeat keeps its size as it counts.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
        pub struct $name(#[serde(with = "postcard::fixint::le")] pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

fixed_u64!(
    /// An election term: a fencing token that only grows.
    Term
);
fixed_u64!(
    /// Changes on every start of an agent, so peers can tell a restart from a delay.
    Incarnation
);
fixed_u64!(
    /// Heartbeat sequence number, per sender incarnation.
    Seq
);
fixed_u64!(
    /// Wall-clock time in microseconds since the Unix epoch, as the sender read it.
    /// Used only to estimate clock offsets; never for leases or timeouts.
    WallMicros
);
