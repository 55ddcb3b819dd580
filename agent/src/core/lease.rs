//! The primary lease: the one thing `/primary` trusts.
//!
//! A primary holds its lease until `until` on its own monotonic clock. `until` is the
//! send time of the newest heartbeat (or vote request) a majority of voters acknowledged,
//! plus `lease`. Every voter that acknowledged promised not to vote for anyone else for
//! `election_timeout` (> `lease`) after receiving it, so no other node can win an election
//! before the lease ends.

use std::time::Instant;

use proto::Term;

/// A held lease, as published in the view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub term: Term,
    /// The lease ends here, on this node's monotonic clock.
    pub until: Instant,
}

/// Whether `lease` holds at `now`. Evaluated at the moment an answer is given.
pub fn holds(lease: Option<&Lease>, now: Instant) -> bool {
    lease.is_some_and(|l| now < l.until)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn holds_until_the_end_exclusive() {
        let t0 = crate::clock::now();
        let l = Lease {
            term: Term(3),
            until: t0 + Duration::from_millis(300),
        };
        assert!(holds(Some(&l), t0));
        assert!(holds(Some(&l), t0 + Duration::from_millis(299)));
        assert!(!holds(Some(&l), t0 + Duration::from_millis(300)));
        assert!(!holds(None, t0));
    }
}
