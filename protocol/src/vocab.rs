//! The cluster's vocabulary as types: a node's [`Role`], a member's [`MemberState`], a
//! check's [`CheckName`] and its result's [`CheckCode`]. Each is written as the same
//! lowercase word it always was in `/cluster` JSON, and as the same bytes on the wire
//! (a check name as its string, a code as its variant index), so typing them changed no
//! byte (the golden vectors and the `/cluster` tests prove it).
//!
//! Owns the words and their parsing. Must never give a word two spellings, or fail to
//! read a word a newer node may send: each type keeps a catch-all (`Unknown`,
//! [`CheckName::Other`]) for names this build does not know.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::bounded::{self, Breach, BreachKind};
use crate::limits::NAME;

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
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CheckName {
    App,
    Mounts,
    Config,
    Clock,
    Version,
    Load,
    /// This node's certificate: `warn` within 30 days of its end, `fail` past it.
    Certs,
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
            CheckName::Certs => "certs",
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
            "certs" => CheckName::Certs,
            other => CheckName::Other(other.to_owned()),
        }
    }
}

/// A check's result in one byte on the wire (postcard's variant index) and one word in
/// `/cluster` (`ok`, `fail`, `hung`, `drift`, `off`, `warn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CheckCode {
    Ok,
    Fail,
    /// Did not answer within its timeout (a hung NFS mount, a stuck command).
    Hung,
    /// Config files differ from other nodes'.
    Drift,
    /// Not configured.
    #[default]
    Off,
    /// Passing for now, but needs an operator soon (a certificate near its end): shown
    /// and counted as degraded, never a health failure.
    Warn,
    /// A code a newer node sent that this build does not know (never passing).
    #[serde(other)]
    Unknown,
}

impl CheckCode {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckCode::Ok => "ok",
            CheckCode::Fail => "fail",
            CheckCode::Hung => "hung",
            CheckCode::Drift => "drift",
            CheckCode::Off => "off",
            CheckCode::Warn => "warn",
            CheckCode::Unknown => "unknown",
        }
    }

    /// Reads a code word; `Unknown` for any other.
    pub fn parse(s: &str) -> Self {
        match s {
            "ok" => CheckCode::Ok,
            "fail" => CheckCode::Fail,
            "hung" => CheckCode::Hung,
            "drift" => CheckCode::Drift,
            "off" => CheckCode::Off,
            "warn" => CheckCode::Warn,
            _ => CheckCode::Unknown,
        }
    }

    /// Passing, or not configured.
    pub fn passing(self) -> bool {
        matches!(self, CheckCode::Ok | CheckCode::Off)
    }

    /// Failing or hung: what a summary lists as failing.
    pub fn failing(self) -> bool {
        matches!(self, CheckCode::Fail | CheckCode::Hung)
    }
}

/// Names sort as their words, so maps keyed by them (`/cluster`'s `checks`) keep the
/// alphabetical order they had as strings.
impl Ord for CheckName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for CheckName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
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
word!(CheckCode);

impl Serialize for CheckName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Read from the borrowed bytes, held to [`NAME`](crate::limits::NAME): a known name
/// allocates nothing, an unknown one only its own bytes.
impl<'de> Deserialize<'de> for CheckName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = CheckName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a check name of at most {} bytes", NAME.max)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<CheckName, E> {
                if v.len() > NAME.max {
                    return Err(bounded::de_error(Breach {
                        field: "CheckState.name",
                        kind: BreachKind::Over {
                            limit: &NAME,
                            found: Some(v.len()),
                        },
                    }));
                }
                Ok(CheckName::parse(v))
            }
        }
        d.deserialize_str(V)
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
        for c in [
            CheckCode::Ok,
            CheckCode::Fail,
            CheckCode::Hung,
            CheckCode::Drift,
            CheckCode::Off,
            CheckCode::Warn,
        ] {
            assert_eq!(CheckCode::parse(c.as_str()), c);
            let json = serde_json::to_string(&c).unwrap_or_default();
            assert_eq!(json, format!("\"{c}\""));
        }
        let newer: CheckCode = serde_json::from_str("\"stale\"").unwrap_or(CheckCode::Ok);
        assert_eq!(newer, CheckCode::Unknown);
        let mut names = vec![
            CheckName::Version,
            CheckName::App,
            CheckName::Other("disk".into()),
        ];
        names.sort();
        assert_eq!(names, ["app", "disk", "version"].map(CheckName::from));
    }
}
