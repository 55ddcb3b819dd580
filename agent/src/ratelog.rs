//! Rate-limited warnings for things outsiders can trigger at will (bad packets, wrong
//! certificates, unknown addresses): the first occurrence is logged at once, then at most
//! one line per window with the count of what was suppressed. Lock-free, so any task may
//! call it.

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

/// One slot per kind: the last variant's number, plus one (a new kind goes last).
const SLOTS: usize = Refusal::Revoked as usize + 1;
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
