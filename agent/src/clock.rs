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

/// Environment variable that shifts this agent's wall clock by a signed number of
/// milliseconds: fault injection for tests of clock-offset detection, which must not
/// change the machine's clock. Never set it in production.
pub const WALL_SKEW_ENV: &str = "QUORATE_FAULT_WALL_SKEW_MS";

fn wall_skew_us() -> i64 {
    static SKEW: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *SKEW.get_or_init(|| {
        let skew = std::env::var(WALL_SKEW_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(0);
        if skew != 0 {
            tracing::warn!(
                "{WALL_SKEW_ENV} shifts this agent's wall clock by {skew} ms (fault injection)"
            );
        }
        skew.saturating_mul(1000)
    })
}

/// Wall-clock now, in microseconds since the Unix epoch.
#[allow(clippy::disallowed_methods)] // the one production read of the wall clock
pub fn wall() -> proto::WallMicros {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let us = i64::try_from(since.as_micros()).unwrap_or(i64::MAX);
    proto::WallMicros(u64::try_from(us.saturating_add(wall_skew_us())).unwrap_or(0))
}

/// CLOCK_BOOTTIME: like the monotonic clock, but it keeps counting while the machine is
/// suspended. Comparing the two tells a suspend from a stall.
pub fn boottime() -> Duration {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// Notices the monotonic clock falling behind CLOCK_BOOTTIME (a suspended VM), which
/// would make a lease measured on the monotonic clock look younger than it is.
#[derive(Debug)]
pub struct JumpGuard {
    mono: Instant,
    boot: Duration,
}

impl JumpGuard {
    pub fn new() -> Self {
        Self {
            mono: now(),
            boot: boottime(),
        }
    }

    /// How far boot time ran ahead of monotonic time since the last check, if more
    /// than `tolerance`.
    pub fn check(&mut self, tolerance: Duration) -> Option<Duration> {
        let (mono, boot) = (now(), boottime());
        let mono_elapsed = mono.saturating_duration_since(self.mono);
        let boot_elapsed = boot.saturating_sub(self.boot);
        self.mono = mono;
        self.boot = boot;
        let gap = boot_elapsed.saturating_sub(mono_elapsed);
        (gap > tolerance).then_some(gap)
    }
}

impl Default for JumpGuard {
    fn default() -> Self {
        Self::new()
    }
}
