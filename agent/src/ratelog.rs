//! Rate-limited warnings for things outsiders can trigger at will (bad packets, wrong
//! certificates, unknown addresses): the first occurrence is logged at once, then at most
//! one line per window with the count of what was suppressed. Lock-free, so any task may
//! call it.
//!
//! Every refusal is also counted, logged or not, in one counter per [`Refusal`] kind for
//! the whole process ([`refusals`], read by `/metrics`): the limiters live where the
//! refusals happen (one per listener), the agent is one process, and a counter that
//! restarts with the process is what Prometheus expects.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::clock;

/// What was refused; one rate limit each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A connection from an address that is neither a peer nor in `control_allow`.
    Address = 0,
    /// A TLS handshake that failed (unknown CA, no certificate, wrong ALPN…).
    Handshake,
    /// An authenticated connection whose hello was refused (identity, cluster, version).
    Hello,
    /// A malformed datagram or frame on an authenticated connection.
    Malformed,
    /// Too many handshakes (or operator connections, or streams) at once.
    Busy,
    /// An operator connection from a peer's address that is not in `control_allow`.
    Control,
    /// An HTTP connection refused: the slots for addresses outside `http.allow` are taken.
    HttpBusy,
    /// An HTTP connection refused: its source address holds its share of the slots.
    HttpSource,
    /// An HTTP connection closed without a complete request within the header timeout.
    HttpSlow,
    /// An HTTP request hyper could not parse (answered 400, 414 or 431).
    HttpMalformed,
    /// An `X-Haproxy-Server-State` header from an address outside `http.allow` (ignored).
    BalancerHeader,
    /// A certificate of the cluster CA that is not a node's (an operator's) on the peer
    /// ALPN, closed right after the handshake.
    PeerCertificate,
    /// An operator connection whose certificate a revocation list (`[tls] crl`) revokes,
    /// past the handshake (it beat the reload that brought the list).
    Revoked,
}

impl Refusal {
    /// Every kind, in slot order.
    pub const ALL: [Refusal; SLOTS] = [
        Refusal::Address,
        Refusal::Handshake,
        Refusal::Hello,
        Refusal::Malformed,
        Refusal::Busy,
        Refusal::Control,
        Refusal::HttpBusy,
        Refusal::HttpSource,
        Refusal::HttpSlow,
        Refusal::HttpMalformed,
        Refusal::BalancerHeader,
        Refusal::PeerCertificate,
        Refusal::Revoked,
    ];

    /// The kind as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Address => "address",
            Refusal::Handshake => "handshake",
            Refusal::Hello => "hello",
            Refusal::Malformed => "malformed",
            Refusal::Busy => "busy",
            Refusal::Control => "control",
            Refusal::HttpBusy => "http-busy",
            Refusal::HttpSource => "http-source",
            Refusal::HttpSlow => "http-slow",
            Refusal::HttpMalformed => "http-malformed",
            Refusal::BalancerHeader => "balancer-header",
            Refusal::PeerCertificate => "peer-certificate",
            Refusal::Revoked => "revoked",
        }
    }
}

/// One slot per kind: the last variant's number, plus one (a new kind goes last).
pub const SLOTS: usize = Refusal::Revoked as usize + 1;

/// Refusals of each kind since the process started (see the module doc).
static REFUSED: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];

/// How many refusals of each kind this process made, in [`Refusal::ALL`]'s order.
pub fn refusals() -> [(Refusal, u64); SLOTS] {
    Refusal::ALL.map(|k| (k, REFUSED[k as usize].load(Ordering::Relaxed)))
}
const WINDOW: Duration = Duration::from_secs(10);

/// One limiter per process.
pub struct RateLog {
    epoch: Instant,
    /// Per slot: milliseconds since `epoch` of the last line written, +1 (0 = never).
    last_ms: [AtomicU64; SLOTS],
    suppressed: [AtomicU64; SLOTS],
}

impl RateLog {
    pub fn new() -> Self {
        Self {
            epoch: clock::now(),
            last_ms: Default::default(),
            suppressed: Default::default(),
        }
    }

    /// Logs `msg` as a warning unless this kind of refusal was logged within the window.
    pub fn warn(&self, kind: Refusal, msg: impl FnOnce() -> String) {
        let slot = kind as usize;
        REFUSED[slot].fetch_add(1, Ordering::Relaxed);
        let now_ms = u64::try_from(clock::now().duration_since(self.epoch).as_millis())
            .unwrap_or(u64::MAX)
            + 1;
        let last = self.last_ms[slot].load(Ordering::Relaxed);
        let window = WINDOW.as_millis() as u64;
        if last != 0 && now_ms.saturating_sub(last) < window {
            self.suppressed[slot].fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.last_ms[slot]
            .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            self.suppressed[slot].fetch_add(1, Ordering::Relaxed);
            return;
        }
        let n = self.suppressed[slot].swap(0, Ordering::Relaxed);
        if n > 0 {
            tracing::warn!(
                "{} (and {n} more like it in the last {}s)",
                msg(),
                WINDOW.as_secs()
            );
        } else {
            tracing::warn!("{}", msg());
        }
    }
}

impl Default for RateLog {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_is_counted_logged_or_not() {
        let before = refusals()[Refusal::Revoked as usize].1;
        let log = RateLog::new();
        for _ in 0..3 {
            log.warn(Refusal::Revoked, || "revoked".into());
        }
        // Other tests may refuse too (the counter is the process's): at least these.
        assert!(refusals()[Refusal::Revoked as usize].1 >= before + 3);
        for (i, k) in Refusal::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i, "{k:?} out of slot order");
        }
    }
}
