//! The reason codes: every word an answer gives for not being ready, healthy, primary, in
//! a role or running a task, in one place. They are safe to show anyone (no paths, no
//! peers' names) and written in lowercase with dashes (`checks-pending`), in the health
//! answers' `"reasons"`, the `?verbose` text and the logs.
//!
//! Owns the codes and their order: an answer lists its reasons in declaration order.
//! Must never give a code two spellings.

use std::fmt;

use serde::Serialize;

/// Why a node is not ready, not healthy, or does not answer 200 on some path.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Has not yet seen a quorum of voters since it started.
    Starting,
    /// The first round of local checks has not finished.
    ChecksPending,
    /// Started on a newer app version than the primary's; `quorate upgrade allow` opens.
    UpgradeHeld,
    /// The app check fails.
    App,
    /// A required mount fails.
    Mount,
    Overloaded,
    /// Drained by an operator (`/health` and friends on a drained node).
    Draining,
    /// The node's certificate ends within 30 days, or has ended (`quorate ca renew`).
    /// A warning: it never fails an answer by itself.
    Certs,
    /// A peer's `[timing]` does not fit this node's: their leases and votes do not count.
    Timing,
    /// The node cannot vote (no agreed member set, not a voter in it), or its `peers`
    /// file disagrees with the agreed set.
    Members,
    NoQuorum,
    /// `/primary` on a node that does not hold the lease.
    NotPrimary,
    /// `/secondary` on the primary.
    Primary,
    /// `/role/{role}`: healthy, but this node does not have the role.
    NotInRole,
    /// `/role/{role}`: no known node has the role.
    UnknownRole,
    /// `/task/{name}`: another node runs it now.
    NotHere,
    /// `/task/{name}`: no such `[[task]]`.
    UnknownTask,
    Forbidden,
    NotFound,
    Method,
    Internal,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Starting => "starting",
            Reason::ChecksPending => "checks-pending",
            Reason::UpgradeHeld => "upgrade-held",
            Reason::App => "app",
            Reason::Mount => "mount",
            Reason::Overloaded => "overloaded",
            Reason::Draining => "draining",
            Reason::Certs => "certs",
            Reason::Timing => "timing",
            Reason::Members => "members",
            Reason::NoQuorum => "no-quorum",
            Reason::NotPrimary => "not-primary",
            Reason::Primary => "primary",
            Reason::NotInRole => "not-in-role",
            Reason::UnknownRole => "unknown-role",
            Reason::NotHere => "not-here",
            Reason::UnknownTask => "unknown-task",
            Reason::Forbidden => "forbidden",
            Reason::NotFound => "not-found",
            Reason::Method => "method",
            Reason::Internal => "internal",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// As the word itself, quoted: log lines print reason lists with `?` and must read as
/// they always did (`["starting"]`).
impl fmt::Debug for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// The reasons joined with `, `, as the text answers and journal lines write them.
pub fn join(reasons: &[Reason]) -> String {
    reasons
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_writes_the_same_word() {
        for r in [
            Reason::Starting,
            Reason::ChecksPending,
            Reason::UpgradeHeld,
            Reason::NoQuorum,
            Reason::Certs,
            Reason::NotInRole,
            Reason::UnknownTask,
            Reason::Internal,
        ] {
            assert_eq!(
                serde_json::to_string(&r).unwrap_or_default(),
                format!("\"{r}\"")
            );
            assert_eq!(format!("{r:?}"), format!("\"{r}\""));
        }
    }
}
