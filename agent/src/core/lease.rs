//! The primary lease: the one thing `/primary` trusts.
//!
//! A primary holds its lease until `until` on its own monotonic clock. `until` is the
//! send time of the newest heartbeat (or vote request) a majority of voters acknowledged,
//! plus `lease`. Every voter that acknowledged promised not to vote for anyone else for
//! `election_timeout` (> `lease`) after receiving it, so no other node can win an election
//! before the lease ends.
//!
//! Each node reads `lease` and `election_timeout` from its own file, so "the promise
//! outlasts the lease" is not a given between two nodes: both travel in the messages
//! and both ends judge them with [`promise_covers`] (a voter acknowledges only a lease
//! its promise outlasts; a primary counts only such acknowledgements).

use std::time::{Duration, Instant};

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

/// Whether a voter's promise (how long it votes for nobody else after acknowledging a
/// primary) outlasts that primary's lease, both in milliseconds as they travel (see
/// [`lease_ms`], [`promise_ms`]). The one comparison both ends make.
pub fn promise_covers(promise_ms: u32, lease_ms: u32) -> bool {
    promise_ms > lease_ms
}

/// A lease as it travels: rounded up, so a receiver never thinks it shorter.
pub fn lease_ms(lease: Duration) -> u32 {
    let ms = lease.as_micros().div_ceil(1000);
    u32::try_from(ms).unwrap_or(u32::MAX)
}

/// A promise as it travels: rounded down, so a receiver never thinks it longer.
pub fn promise_ms(promise: Duration) -> u32 {
    u32::try_from(promise.as_millis()).unwrap_or(u32::MAX)
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

    #[test]
    fn a_promise_must_outlast_the_lease_after_rounding_on_the_safe_side() {
        let ms = Duration::from_millis;
        // (promise, lease, covered)
        let table = [
            (ms(450), ms(300), true),
            (ms(200), ms(300), false),
            (ms(300), ms(300), false),
            (ms(301), ms(300), true),
            // 300.4 ms of lease travels as 301, 300.9 ms of promise as 300.
            (ms(301), Duration::from_micros(300_400), false),
            (Duration::from_micros(300_900), ms(300), false),
        ];
        for (promise, lease, covered) in table {
            assert_eq!(
                promise_covers(promise_ms(promise), lease_ms(lease)),
                covered,
                "promise {promise:?}, lease {lease:?}"
            );
        }
    }
}
