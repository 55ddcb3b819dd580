//! Phi-accrual failure detection (Hayashibara et al.), over heartbeat inter-arrival times.
//!
//! Pure: it is told when heartbeats arrive and asked for phi at a given instant. phi is
//! `-log10(P(a heartbeat arrives later than now))` under a normal fit of recent
//! intervals, using the logistic approximation of the normal CDF that Akka and Cassandra
//! use. phi 8 means "one chance in 10^8 that a live node would be this late".

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How many recent intervals the fit uses.
const WINDOW: usize = 200;
/// phi is capped so it stays a finite, printable number.
pub const PHI_MAX: f64 = 999.0;
/// An interval this many times the current mean is an outage (a pause, a cut), not the
/// network's jitter: it is not learnt. Learnt, a 3 s pause among 250 ms heartbeats would
/// widen the fit so much that the next 3 s pause went unsuspected (Cassandra drops
/// long intervals for the same reason). Two lost heartbeats in a row (3×) still count.
const OUTAGE_FACTOR: f64 = 4.0;

#[derive(Debug, Clone)]
pub struct PhiDetector {
    intervals_ms: VecDeque<f64>,
    sum: f64,
    sum_sq: f64,
    last: Option<Instant>,
    /// Floor on the standard deviation, so a perfectly regular sender is not suspected
    /// the moment it is a little late.
    min_std_ms: f64,
}

impl PhiDetector {
    /// A detector for a sender expected to beat every `expected`.
    pub fn new(expected: Duration) -> Self {
        let mut d = Self {
            intervals_ms: VecDeque::with_capacity(WINDOW),
            sum: 0.0,
            sum_sq: 0.0,
            last: None,
            min_std_ms: 0.0,
        };
        d.reset(expected);
        d
    }

    /// Forgets the history and starts over for a sender beating every `expected`
    /// (a restart, or a change of heartbeat rate).
    /// The time of the last heartbeat is kept.
    pub fn reset(&mut self, expected: Duration) {
        let mean = expected.as_secs_f64() * 1000.0;
        self.intervals_ms.clear();
        self.sum = 0.0;
        self.sum_sq = 0.0;
        self.min_std_ms = mean / 4.0;
        // Seed the fit like Akka's first-heartbeat estimate: mean ± mean/4.
        self.push(mean - mean / 4.0);
        self.push(mean + mean / 4.0);
    }

    fn push(&mut self, ms: f64) {
        if self.intervals_ms.len() == WINDOW
            && let Some(old) = self.intervals_ms.pop_front()
        {
            self.sum -= old;
            self.sum_sq -= old * old;
        }
        self.intervals_ms.push_back(ms);
        self.sum += ms;
        self.sum_sq += ms * ms;
    }

    /// Records a heartbeat arriving at `now`.
    pub fn heartbeat(&mut self, now: Instant) {
        if let Some(last) = self.last {
            let ms = now.saturating_duration_since(last).as_secs_f64() * 1000.0;
            if ms <= self.mean_std().0 * OUTAGE_FACTOR {
                self.push(ms);
            }
        }
        self.last = Some(now);
    }

    /// When the last heartbeat arrived.
    pub fn last(&self) -> Option<Instant> {
        self.last
    }

    fn mean_std(&self) -> (f64, f64) {
        let n = self.intervals_ms.len().max(1) as f64;
        let mean = self.sum / n;
        let var = (self.sum_sq / n - mean * mean).max(0.0);
        (mean, var.sqrt().max(self.min_std_ms))
    }

    /// The first instant at which phi reaches `threshold` if no heartbeat comes (`None`
    /// before the first heartbeat, or for a threshold phi never reaches). The core
    /// sleeps until then instead of asking phi on a fixed tick: an idle agent's
    /// wake-ups are its cost.
    pub fn crossing(&self, threshold: f64) -> Option<Instant> {
        let last = self.last?;
        let (mean, std) = self.mean_std();
        let ms = elapsed_for(threshold, mean, std)?;
        // Rounded up past the root, so phi is at or above the threshold by then and the
        // check that wakes for it does not find it a hair short and ask again at once.
        Some(last + Duration::from_micros((ms * 1000.0).ceil() as u64 + 1000))
    }

    /// Suspicion level at `now`; 0 before the first heartbeat.
    pub fn phi(&self, now: Instant) -> f64 {
        let Some(last) = self.last else {
            return 0.0;
        };
        let elapsed = now.saturating_duration_since(last).as_secs_f64() * 1000.0;
        let (mean, std) = self.mean_std();
        phi(elapsed, mean, std)
    }
}

/// phi for a silence of `elapsed_ms` given intervals with `mean_ms` and `std_ms`.
pub fn phi(elapsed_ms: f64, mean_ms: f64, std_ms: f64) -> f64 {
    let y = (elapsed_ms - mean_ms) / std_ms;
    let e = (-y * (1.5976 + 0.070566 * y * y)).exp();
    let p_later = if elapsed_ms > mean_ms {
        e / (1.0 + e)
    } else {
        1.0 - 1.0 / (1.0 + e)
    };
    if p_later <= 0.0 || !p_later.is_finite() {
        return PHI_MAX;
    }
    (-p_later.log10()).clamp(0.0, PHI_MAX)
}

/// The silence (ms) at which [`phi`] reaches `threshold`: the inverse of `phi`, found in
/// closed form. With `y = (elapsed - mean) / std`, phi = T means the logistic tail
/// `e / (1 + e)` equals `10^-T`, `e = exp(-y (1.5976 + 0.070566 y²))`, so `y` is the one
/// real root of `0.070566 y³ + 1.5976 y - ln((1 - p) / p) = 0` (Cardano: the cubic is
/// increasing). For a threshold below phi at the mean (≈ 0.3) the other branch of `phi`
/// applies; the mean is returned there, which is early, so only a wake-up too many.
pub fn elapsed_for(threshold: f64, mean_ms: f64, std_ms: f64) -> Option<f64> {
    if !(threshold.is_finite() && mean_ms.is_finite() && std_ms.is_finite()) || threshold >= PHI_MAX
    {
        return None;
    }
    let p = 10f64.powf(-threshold);
    if p >= 0.5 {
        return Some(mean_ms.max(0.0));
    }
    let k = ((1.0 - p) / p).ln();
    let (a, b) = (0.070566, 1.5976);
    let (pp, q) = (b / a, -k / a);
    let disc = (q * q / 4.0 + pp * pp * pp / 27.0).sqrt();
    let y = (-q / 2.0 + disc).cbrt() + (-q / 2.0 - disc).cbrt();
    let ms = mean_ms + y * std_ms;
    ms.is_finite().then_some(ms.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (elapsed, mean, std) → phi, to two decimals (computed independently in Python):
    /// the table the thresholds are tuned on. At the default 250 ms, phi 8 is ≈ 580 ms of silence.
    #[test]
    fn phi_table() {
        let table: &[(f64, f64, f64, f64)] = &[
            (0.0, 250.0, 62.5, 0.0),
            (250.0, 250.0, 62.5, 0.30),
            (375.0, 250.0, 62.5, 1.64),
            (500.0, 250.0, 62.5, 4.74),
            (600.0, 250.0, 62.5, 9.27),
            (750.0, 250.0, 62.5, 21.24),
            (100.0, 50.0, 12.5, 4.74),
            (120.0, 50.0, 12.5, 9.27),
        ];
        for &(elapsed, mean, std, want) in table {
            let got = phi(elapsed, mean, std);
            assert!(
                (got - want).abs() < 0.01,
                "phi({elapsed}, {mean}, {std}) = {got:.3}, table says {want}"
            );
        }
    }

    #[test]
    fn phi_is_monotonic_and_bounded() {
        let mut prev = 0.0;
        for ms in (0..100_000).step_by(7) {
            let p = phi(f64::from(ms), 250.0, 62.5);
            assert!(p >= prev && p.is_finite() && p <= PHI_MAX);
            prev = p;
        }
        assert_eq!(phi(1e12, 250.0, 62.5), PHI_MAX);
    }

    /// The closed form inverts `phi`: at the returned silence phi is the threshold, and a
    /// hair before it phi is below; `crossing` is never early.
    #[test]
    fn elapsed_for_inverts_phi() {
        for &(mean, std) in &[(250.0, 62.5), (50.0, 12.5), (1000.0, 400.0), (50.0, 40.0)] {
            for &t in &[0.5, 1.0, 3.0, 8.0, 12.0, 16.0, 30.0] {
                let ms = elapsed_for(t, mean, std).unwrap();
                let got = phi(ms, mean, std);
                assert!(
                    (got - t).abs() < 1e-6 * t.max(1.0),
                    "phi({ms}) = {got}, want {t}"
                );
                assert!(phi(ms - 0.01, mean, std) < t);
            }
        }
        assert_eq!(elapsed_for(0.1, 250.0, 62.5), Some(250.0));
        assert_eq!(elapsed_for(PHI_MAX, 250.0, 62.5), None);
        assert_eq!(elapsed_for(f64::NAN, 250.0, 62.5), None);
        let t0 = crate::clock::now();
        let mut d = PhiDetector::new(Duration::from_millis(250));
        assert_eq!(d.crossing(8.0), None);
        for i in 0..50 {
            d.heartbeat(t0 + Duration::from_millis(250 * i + (i % 3) * 7));
        }
        let at = d.crossing(8.0).unwrap();
        assert!(d.phi(at) >= 8.0);
        assert!(d.phi(at - Duration::from_millis(2)) < 8.0);
    }

    #[test]
    fn regular_sender_is_not_suspected_when_slightly_late() {
        let t0 = crate::clock::now();
        let mut d = PhiDetector::new(Duration::from_millis(250));
        for i in 0..100 {
            d.heartbeat(t0 + Duration::from_millis(250 * i));
        }
        let last = t0 + Duration::from_millis(250 * 99);
        assert!(d.phi(last + Duration::from_millis(300)) < 1.0);
        assert!(d.phi(last + Duration::from_millis(1000)) > 8.0);
    }

    /// A pause of the sender is not learnt as an interval: the next pause is suspected as
    /// fast as the first.
    #[test]
    fn an_outage_does_not_blind_the_detector_to_the_next() {
        let t0 = crate::clock::now();
        let mut d = PhiDetector::new(Duration::from_millis(250));
        let mut t = t0;
        for _ in 0..20 {
            t += Duration::from_millis(250);
            d.heartbeat(t);
        }
        let (first, fresh) = (t, d.clone());
        // A 3 s pause, then beats again.
        t += Duration::from_secs(3);
        d.heartbeat(t);
        for _ in 0..20 {
            t += Duration::from_millis(250);
            d.heartbeat(t);
        }
        let suspected_after = |d: &PhiDetector, from: Instant| {
            (1..100)
                .map(|i| Duration::from_millis(50 * i))
                .find(|&s| d.phi(from + s) >= 8.0)
        };
        let before = suspected_after(&fresh, first);
        assert!(before.is_some());
        assert_eq!(suspected_after(&d, t), before);
    }

    #[test]
    fn no_heartbeat_no_suspicion() {
        let d = PhiDetector::new(Duration::from_millis(250));
        assert_eq!(d.phi(crate::clock::now() + Duration::from_secs(60)), 0.0);
    }

    #[test]
    fn lossy_sender_widens_the_fit() {
        // Every 20th heartbeat lost: a double interval now and then.
        let t0 = crate::clock::now();
        let mut d = PhiDetector::new(Duration::from_millis(250));
        let mut t = t0;
        for i in 0..200 {
            t += Duration::from_millis(if i % 20 == 0 { 500 } else { 250 });
            d.heartbeat(t);
        }
        // One lost heartbeat is not suspicious.
        assert!(d.phi(t + Duration::from_millis(500)) < 8.0);
    }
}
