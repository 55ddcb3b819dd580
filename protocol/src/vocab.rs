//! The cluster's vocabulary as types: a node's [`Role`], a member's [`MemberState`] and a
//! check's [`CheckName`]. Each is written as the same lowercase word it always was, in
//! `/cluster` JSON and on the wire, so typing them changed no byte (the golden vectors
//! and the `/cluster` tests prove it).
//!
//! Owns the words and their parsing. Must never give a word two spellings, or fail to
//! read a word a newer node may send: each type keeps a catch-all (`Unknown`,
//! [`CheckName::Other`]) for names this build does not know.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A node's role as the cluster sees it (`/cluster`'s `role`, the health answers'
/// `"role"`, hooks' `QUORATE_ROLE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Holds the primary lease.
    Primary,
    /// A member following the primary (or waiting for one).
    Secondary,
    /// A voter that never becomes primary.
    Witness,
    /// Campaigning, or a primary whose lease ran out.
    Candidate,
    /// A role a newer node named that this build does not know.
    #[serde(other)]
    Unknown,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Secondary => "secondary",
            Role::Witness => "witness",
            Role::Candidate => "candidate",
            Role::Unknown => "unknown",
        }
    }

    /// Reads a role word; `Unknown` for any other.
    pub fn parse(s: &str) -> Self {
        match s {
            "primary" => Role::Primary,
            "secondary" => Role::Secondary,
            "witness" => Role::Witness,
            "candidate" => Role::Candidate,
            _ => Role::Unknown,
        }
    }
}

/// A member's liveness as one node judges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberState {
    Alive,
    /// The failure detector's phi crossed the threshold; not yet declared dead.
    Suspect,
    Dead,
    /// Said goodbye on a clean shutdown.
    Left,
    /// A state a newer node named that this build does not know.
    #[serde(other)]
    Unknown,
}

impl MemberState {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Alive => "alive",
            MemberState::Suspect => "suspect",
            MemberState::Dead => "dead",
            MemberState::Left => "left",
            MemberState::Unknown => "unknown",
        }
    }

    /// Reads a state word; `Unknown` for any other.
    pub fn parse(s: &str) -> Self {
        match s {
            "alive" => MemberState::Alive,
            "suspect" => MemberState::Suspect,
            "dead" => MemberState::Dead,
            "left" => MemberState::Left,
            _ => MemberState::Unknown,
        }
    }
}

/// A node check's name. On the wire and in JSON it is the plain string it always was;
/// a name this build does not know (a newer peer's check) is kept as [`CheckName::Other`]
/// and shown as it came.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CheckName {
    App,
    Mounts,
    Config,
    Clock,
    Version,
    Load,
    Other(String),
}

impl CheckName {
    pub fn as_str(&self) -> &str {
        match self {
            CheckName::App => "app",
            CheckName::Mounts => "mounts",
            CheckName::Config => "config",
            CheckName::Clock => "clock",
            CheckName::Version => "version",
            CheckName::Load => "load",
            CheckName::Other(s) => s,
        }
    }

    /// Reads a check name; a name this build does not know is kept as it came.
    pub fn parse(s: &str) -> Self {
        match s {
            "app" => CheckName::App,
            "mounts" => CheckName::Mounts,
            "config" => CheckName::Config,
            "clock" => CheckName::Clock,
            "version" => CheckName::Version,
            "load" => CheckName::Load,
            other => CheckName::Other(other.to_owned()),
        }
    }
}

macro_rules! word {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl From<&str> for $t {
            fn from(s: &str) -> Self {
                Self::parse(s)
            }
        }
        impl From<String> for $t {
            fn from(s: String) -> Self {
                Self::parse(&s)
            }
        }
        impl PartialEq<str> for $t {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }
        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}
word!(Role);
word!(MemberState);
word!(CheckName);

impl Serialize for CheckName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CheckName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_unknown_words_are_kept() {
        for r in [
            Role::Primary,
            Role::Secondary,
            Role::Witness,
            Role::Candidate,
        ] {
            assert_eq!(Role::parse(r.as_str()), r);
            let json = serde_json::to_string(&r).unwrap_or_default();
            assert_eq!(json, format!("\"{r}\""));
        }
        for m in [
            MemberState::Alive,
            MemberState::Suspect,
            MemberState::Dead,
            MemberState::Left,
        ] {
            assert_eq!(MemberState::parse(m.as_str()), m);
            let json = serde_json::to_string(&m).unwrap_or_default();
            assert_eq!(json, format!("\"{m}\""));
        }
        let newer: Role = serde_json::from_str("\"observer\"").unwrap_or(Role::Primary);
        assert_eq!(newer, Role::Unknown);
        let newer: MemberState = serde_json::from_str("\"asleep\"").unwrap_or(MemberState::Alive);
        assert_eq!(newer, MemberState::Unknown);
        let c: CheckName = serde_json::from_str("\"disk\"").unwrap_or(CheckName::App);
        assert_eq!(c, CheckName::Other("disk".into()));
        assert_eq!(serde_json::to_string(&c).unwrap_or_default(), "\"disk\"");
        assert_eq!(CheckName::from("config"), CheckName::Config);
    }
}
