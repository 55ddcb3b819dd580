//! Identifier newtypes. Strings that name things are parsed once, here, and then trusted.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::bounded::{Breach, BreachKind};
use crate::limits::{self, Limit};

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

fn check_label(s: &str, extra: &[char], limit: &Limit) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if s.len() > limit.max {
        return Err(IdError::TooLong {
            len: s.len(),
            max: limit.max,
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
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(String);

impl NodeId {
    pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
        let s = s.into();
        check_label(&s, &[], &limits::NODE_ID)?;
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
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ClusterName(String);

impl ClusterName {
    pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
        let s = s.into();
        check_label(&s, CLUSTER_EXTRA, &limits::CLUSTER_NAME)?;
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

/// Characters a cluster name may hold besides a node id's.
const CLUSTER_EXTRA: &[char] = &['_', '.'];

/// On the wire an id is the plain string it always was. It is checked on the borrowed
/// bytes before anything is copied, so a 1 MiB "node id" costs nothing to refuse.
macro_rules! label_serde {
    ($t:ident, $what:literal, $extra:expr, $limit:path) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $t;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($what)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$t, E> {
                        match check_label(v, $extra, &$limit) {
                            Ok(()) => Ok($t(v.to_owned())),
                            Err(e) => Err(crate::bounded::de_error(id_breach($what, &$limit, e))),
                        }
                    }
                }
                d.deserialize_str(V)
            }
        }
    };
}

label_serde!(NodeId, "a node id", &[], limits::NODE_ID);
label_serde!(
    ClusterName,
    "a cluster name",
    CLUSTER_EXTRA,
    limits::CLUSTER_NAME
);

/// What a refused id was: too long (a wire limit), or not an id at all.
fn id_breach(what: &'static str, limit: &'static Limit, e: IdError) -> Breach {
    let kind = match e {
        IdError::TooLong { len, .. } => BreachKind::Over {
            limit,
            found: Some(len),
        },
        IdError::Empty => BreachKind::Invalid("is empty"),
        IdError::BadChar(_) => BreachKind::Invalid(
            "holds a character other than ASCII letters, digits and '-' ('_' and '.' too in a cluster name)",
        ),
        IdError::BadStart => BreachKind::Invalid("does not start with a letter or digit"),
    };
    Breach { field: what, kind }
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
