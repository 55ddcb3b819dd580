//! Per-node clocks: a monotonic clock that runs at its own rate and stops while its VM is
//! suspended, and a wall clock.
//!
//! Global time is a [`Duration`] since the simulation's one base [`Instant`]. A node's
//! monotonic clock reads `base + local`, where `local` grows by `(1 + skew) × Δglobal`
//! while the clock runs. Each node starts at its own offset, so instants of different
//! nodes are unrelated, as on different machines.

use std::time::{Duration, Instant};

use proto::WallMicros;

/// One part per million, as the denominator of a rate.
const PPM: i128 = 1_000_000;

/// Wall time at global time zero: some day in 2023, in µs since the Unix epoch.
const WALL_EPOCH_US: i64 = 1_700_000_000_000_000;

/// One node's monotonic and wall clocks.
#[derive(Debug, Clone)]
pub(crate) struct NodeClock {
    base: Instant,
    /// The monotonic reading (since `base`) at `anchor_global`.
    anchor_local: Duration,
    anchor_global: Duration,
    /// Rate error: +1000 runs 0.1 % fast.
    skew_ppm: i32,
    /// Stopped (a suspended VM): the reading stays at `anchor_local`.
    stopped: bool,
    /// This node's wall clock minus the true wall time.
    wall_offset_us: i64,
}

impl NodeClock {
    /// A running clock that reads `base + start` at global time zero.
    pub(crate) fn new(base: Instant, start: Duration, skew_ppm: i32, wall_offset_us: i64) -> Self {
        Self {
            base,
            anchor_local: start,
            anchor_global: Duration::ZERO,
            skew_ppm,
            stopped: false,
            wall_offset_us,
        }
    }

    /// The monotonic reading at global time `global` (not before the last stop/start).
    pub(crate) fn now(&self, global: Duration) -> Instant {
        self.base + self.local(global)
    }

    fn local(&self, global: Duration) -> Duration {
        if self.stopped {
            return self.anchor_local;
        }
        let elapsed = global.saturating_sub(self.anchor_global).as_nanos() as i128;
        let scaled = elapsed * (PPM + i128::from(self.skew_ppm)) / PPM;
        self.anchor_local + Duration::from_nanos(scaled as u64)
    }

    /// The first global instant, not before `not_before`, at which this clock reads at
    /// least `local`; `None` while the clock is stopped (it will not get there).
    pub(crate) fn global_at(&self, local: Instant, not_before: Duration) -> Option<Duration> {
        if self.stopped {
            return None;
        }
        let target = local.saturating_duration_since(self.base);
        let ahead = target.saturating_sub(self.anchor_local).as_nanos();
        // Round up, then make sure: the node must see its deadline reached.
        let rate = (PPM + i128::from(self.skew_ppm)) as u128;
        let elapsed = (ahead * PPM as u128).div_ceil(rate);
        let mut global = self.anchor_global + Duration::from_nanos(elapsed as u64);
        while self.local(global) < target {
            global += Duration::from_nanos(1);
        }
        Some(global.max(not_before))
    }

    /// Stops the clock at global time `global` (a VM is suspended).
    pub(crate) fn stop(&mut self, global: Duration) {
        if !self.stopped {
            self.anchor_local = self.local(global);
            self.anchor_global = global;
            self.stopped = true;
        }
    }

    /// Starts it again from where it stopped (the VM resumes).
    pub(crate) fn start(&mut self, global: Duration) {
        if self.stopped {
            self.anchor_global = global;
            self.stopped = false;
        }
    }

    /// The wall clock at global time `global`: it keeps running through a suspend (the
    /// host's real-time clock does).
    pub(crate) fn wall(&self, global: Duration) -> WallMicros {
        let us = WALL_EPOCH_US + global.as_micros() as i64 + self.wall_offset_us;
        WallMicros(us.max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn skewed_clock_runs_at_its_rate_and_finds_its_deadlines() {
        let base = crate::sim::base_instant();
        for skew in [-1000, 0, 1000] {
            let clock = NodeClock::new(base, ms(5_000), skew, 0);
            let t = clock.now(ms(10_000));
            // 10 s at `skew` ppm is off by `10 × skew` µs.
            let want_us = 15_000_000 + 10 * i64::from(skew);
            assert_eq!(
                t - base,
                Duration::from_micros(want_us as u64),
                "skew {skew}"
            );
            let deadline = clock.now(ms(1_234)) + Duration::from_nanos(1);
            let g = clock.global_at(deadline, Duration::ZERO).unwrap();
            assert!(clock.now(g) >= deadline);
            assert!(clock.now(g - Duration::from_nanos(1)) < deadline);
        }
    }

    #[test]
    fn suspended_clock_stops_and_resumes_where_it_stopped() {
        let base = crate::sim::base_instant();
        let mut clock = NodeClock::new(base, Duration::ZERO, 0, -500);
        clock.stop(ms(100));
        assert_eq!(clock.now(ms(3_000)) - base, ms(100));
        assert!(clock.global_at(base + ms(200), ms(3_000)).is_none());
        clock.start(ms(3_000));
        assert_eq!(clock.now(ms(3_050)) - base, ms(150));
        assert_eq!(clock.global_at(base + ms(200), ms(3_000)), Some(ms(3_100)));
        assert_eq!(clock.wall(ms(1)).0 as i64, WALL_EPOCH_US + 1_000 - 500);
    }
}
