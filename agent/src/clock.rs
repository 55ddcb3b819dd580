//! The only place the agent reads clocks. Everything else is handed `now`.
//!
//! The monotonic clock drives leases and timeouts; the wall clock only stamps heartbeats
//! for clock-offset estimates.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Monotonic now.
#[allow(clippy::disallowed_methods)] // the one production read of the monotonic clock
pub fn now() -> Instant {
    Instant::now()
}

/// Wall-clock now, in microseconds since the Unix epoch.
#[allow(clippy::disallowed_methods)] // the one production read of the wall clock
pub fn wall() -> proto::WallMicros {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    proto::WallMicros(u64::try_from(since.as_micros()).unwrap_or(u64::MAX))
}
