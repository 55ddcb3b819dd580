//! The HAProxy agent-check answer (`up 80%`, `drain`, `down`, `maint`): a judgement of
//! this node's health and load, with hysteresis and a slow start ([`AgentWeight`]). The
//! driver owns one and feeds it after every assessment; `http::haproxy_agent`
//! only serves the answer.
//!
//! Must never answer `up` while `/health` fails: the answer derives from the same
//! `healthy`/`draining` inputs. Pure: time and inputs are passed in.

use std::time::{Duration, Instant};

use super::state::Assessment;
use crate::config::LoadLimits;
use crate::probe::load::LoadSample;

/// The lowest weight `up N%` ever announces: 0% would be a drain in disguise, and a node
/// that is healthy should still take a trickle so its numbers stay real.
const MIN_WEIGHT: u8 = 10;
/// Weights move in steps of this many percent, so small load wobbles change nothing.
const STEP: u8 = 10;
/// Load at or below which the weight is 100%.
const FULL_LOAD_BELOW: f64 = 0.5;
/// A target that stays at least one step away this long is adopted.
pub const HYSTERESIS_HOLD: Duration = Duration::from_secs(5);
/// A target this many steps away (or more) is adopted at once: a real load change should
/// not wait for the hold time.
pub const HYSTERESIS_JUMP_STEPS: u8 = 3;

/// What the driver knows when it publishes a view.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AgentInput {
    /// `/health` would answer 200 (ignoring draining, which wins anyway).
    pub healthy: bool,
    /// When the current drain took effect here, if draining.
    pub draining_since: Option<Instant>,
    /// 0.0–1.0: CPU, or the max of CPU and load-per-core over its limit
    /// ([`load_ratio`]). Not finite counts as fully loaded.
    pub load: f64,
}

impl AgentInput {
    /// The inputs an assessment gives, with this node's latest load sample and its
    /// `[load]` limits (a load average of 4 per core counts as full without them).
    pub fn of(a: &Assessment, sample: Option<LoadSample>, limits: Option<&LoadLimits>) -> Self {
        let load = sample.map_or(0.0, |l| {
            let max_per_core = limits.map_or(4.0, |l| l.max_load_per_core);
            load_ratio(l.cpu, l.load1 / l.cores.max(1) as f64, max_per_core)
        });
        Self {
            healthy: a.healthy,
            draining_since: a.draining_since,
            load,
        }
    }
}

/// The load figure [`AgentInput::load`] expects: the worse of CPU use and load average per
/// core relative to its limit, clamped to 0.0–1.0.
pub fn load_ratio(cpu: f64, load_per_core: f64, max_load_per_core: f64) -> f64 {
    let per_core = if max_load_per_core > 0.0 {
        load_per_core / max_load_per_core
    } else {
        0.0
    };
    let worst = cpu.max(per_core);
    if worst.is_finite() {
        worst.clamp(0.0, 1.0)
    } else {
        1.0
    }
}

/// The weight for `load` before hysteresis: 100% up to 50% load, falling linearly to
/// 10% at full load, rounded to a multiple of 10.
fn load_target(load: f64) -> u8 {
    // Unknown load is treated as full load: a conservative weight, still `up`.
    let load = if load.is_finite() { load } else { 1.0 };
    let over = ((load - FULL_LOAD_BELOW) / (1.0 - FULL_LOAD_BELOW)).clamp(0.0, 1.0);
    let raw = 100.0 - over * (100.0 - f64::from(MIN_WEIGHT));
    let stepped = (raw / f64::from(STEP)).round() * f64::from(STEP);
    // In range by construction (10..=100); the cast cannot truncate.
    stepped.clamp(f64::from(MIN_WEIGHT), 100.0) as u8
}

/// Hysteresis state while up.
#[derive(Debug, Clone, Copy)]
struct Up {
    /// When the node became up again: the slow start runs from here.
    since: Instant,
    /// The load step currently announced (after hysteresis, before the ramp).
    settled: u8,
    /// Since when the target has been at least one step away from `settled`, and in
    /// which direction (`true`: higher). A change of direction restarts the hold.
    away: Option<(Instant, bool)>,
}

/// The agent-check weight state machine. Pure: time and inputs are passed in.
///
/// Rules, in order:
/// 1. draining: `drain` for `maint_after` since the drain took effect (the balancer keeps
///    existing sessions and sees the drain first), then `maint`;
/// 2. not healthy: `down`;
/// 3. otherwise `up N%`. N follows the load (see `load_target`) with hysteresis: a new step
///    is adopted when the target has stayed at least one step away (in the same
///    direction) for [`HYSTERESIS_HOLD`], or at once when it is
///    [`HYSTERESIS_JUMP_STEPS`] steps away or more. After the node comes back from
///    `down`/`drain`/`maint` (or first starts), N ramps linearly from 10% to that figure
///    over `ramp` (slow start), rounded down to a step so the ramp never overshoots.
///
/// `drain` and `maint` set HAProxy's *administrative* state, which only an agent's
/// `ready` clears; so after answering either, the `up` answers say `ready up N%` for
/// [`READY_FOR`] or the ramp, whichever is longer (one lost answer must not leave the
/// server drained). Otherwise `ready` is not sent, so a drain an operator sets in HAProxy
/// itself is left alone.
#[derive(Debug, Clone)]
pub struct AgentWeight {
    maint_after: Duration,
    ramp: Duration,
    up: Option<Up>,
    /// An answer set HAProxy's administrative state; `ready` is owed.
    admin_set: bool,
    /// Until when the `up` answers carry `ready`.
    ready_until: Option<Instant>,
}

/// How long `up` answers carry `ready` after a drain, at least.
pub const READY_FOR: Duration = Duration::from_secs(10);

impl AgentWeight {
    pub fn new(maint_after: Duration, ramp: Duration) -> Self {
        Self {
            maint_after,
            ramp,
            up: None,
            admin_set: false,
            ready_until: None,
        }
    }

    pub fn from_config(cfg: &crate::config::HaproxyAgent) -> Self {
        Self::new(cfg.maint_after.0, cfg.ramp.0)
    }

    /// The answer to give from now on, without the newline.
    pub fn update(&mut self, now: Instant, input: AgentInput) -> String {
        if let Some(since) = input.draining_since {
            self.up = None;
            self.admin_set = true;
            self.ready_until = None;
            return if now.saturating_duration_since(since) < self.maint_after {
                "drain".into()
            } else {
                "maint".into()
            };
        }
        if !input.healthy {
            self.up = None;
            return "down".into();
        }
        let target = load_target(input.load);
        let up = match self.up {
            // Coming back: no stale hysteresis; the ramp starts now.
            None => Up {
                since: now,
                settled: target,
                away: None,
            },
            Some(up) => settle(up, now, target),
        };
        self.up = Some(up);
        if std::mem::take(&mut self.admin_set) {
            self.ready_until = Some(now + self.ramp.max(READY_FOR));
        }
        let weight = self.ramped(up, now);
        match self.ready_until {
            Some(until) if now < until => format!("ready up {weight}%"),
            _ => {
                self.ready_until = None;
                format!("up {weight}%")
            }
        }
    }

    /// The settled weight, capped by the slow start.
    fn ramped(&self, up: Up, now: Instant) -> u8 {
        let elapsed = now.saturating_duration_since(up.since);
        if self.ramp.is_zero() || elapsed >= self.ramp {
            return up.settled;
        }
        let frac = elapsed.as_secs_f64() / self.ramp.as_secs_f64();
        let span = f64::from(up.settled.saturating_sub(MIN_WEIGHT));
        let raw = f64::from(MIN_WEIGHT) + span * frac;
        let stepped = (raw / f64::from(STEP)).floor() * f64::from(STEP);
        // Between MIN_WEIGHT and `settled` by construction.
        (stepped as u8).clamp(MIN_WEIGHT, up.settled.max(MIN_WEIGHT))
    }
}

/// One hysteresis step: adopt `target` at once when far, after the hold when near.
fn settle(mut up: Up, now: Instant, target: u8) -> Up {
    if target == up.settled {
        up.away = None;
        return up;
    }
    let higher = target > up.settled;
    let steps = target.abs_diff(up.settled) / STEP;
    if steps >= HYSTERESIS_JUMP_STEPS {
        up.settled = target;
        up.away = None;
        return up;
    }
    match up.away {
        Some((since, dir)) if dir == higher => {
            if now.saturating_duration_since(since) >= HYSTERESIS_HOLD {
                up.settled = target;
                up.away = None;
            }
        }
        // First time away, or the direction flipped: the hold starts over.
        _ => up.away = Some((now, higher)),
    }
    up
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAINT_AFTER: Duration = Duration::from_secs(6);
    const RAMP: Duration = Duration::from_secs(60);

    fn input(healthy: bool, load: f64) -> AgentInput {
        AgentInput {
            healthy,
            draining_since: None,
            load,
        }
    }

    /// A machine already up and past its ramp, at `t0 + RAMP`.
    fn settled_at(load: f64) -> (AgentWeight, Instant) {
        let t0 = crate::clock::now();
        let mut w = AgentWeight::new(MAINT_AFTER, RAMP);
        w.update(t0, input(true, load));
        let t = t0 + RAMP;
        assert_eq!(
            w.update(t, input(true, load)),
            format!("up {}%", load_target(load))
        );
        (w, t)
    }

    #[test]
    fn load_targets() {
        let table: &[(f64, u8)] = &[
            (0.0, 100),
            (0.5, 100),
            (0.55, 90),
            (0.75, 60), // 55 rounds to 60
            (0.9, 30),  // 28 rounds to 30
            (1.0, 10),
            (3.0, 10),
            (-1.0, 100),
            (f64::NAN, 10),
            (f64::INFINITY, 10),
        ];
        for (load, want) in table {
            assert_eq!(load_target(*load), *want, "load {load}");
        }
    }

    #[test]
    fn load_ratio_takes_the_worse() {
        assert_eq!(load_ratio(0.2, 2.0, 4.0), 0.5);
        assert_eq!(load_ratio(0.7, 2.0, 4.0), 0.7);
        assert_eq!(load_ratio(0.2, 8.0, 4.0), 1.0);
        assert_eq!(load_ratio(0.2, 8.0, 0.0), 0.2);
        assert_eq!(load_ratio(f64::NAN, 1.0, 4.0), 0.25);
        assert_eq!(load_ratio(0.1, f64::INFINITY, 4.0), 1.0);
    }

    #[test]
    fn down_drain_maint() {
        let t0 = crate::clock::now();
        let mut w = AgentWeight::new(MAINT_AFTER, RAMP);
        assert_eq!(w.update(t0, input(false, 0.1)), "down");
        let drain = AgentInput {
            draining_since: Some(t0),
            ..input(true, 0.1)
        };
        assert_eq!(w.update(t0, drain), "drain");
        assert_eq!(w.update(t0 + Duration::from_secs(5), drain), "drain");
        assert_eq!(w.update(t0 + MAINT_AFTER, drain), "maint");
        // Draining wins over health: the balancer must see the drain, not a flap.
        let sick_drain = AgentInput {
            healthy: false,
            ..drain
        };
        assert_eq!(w.update(t0 + Duration::from_secs(1), sick_drain), "drain");
        assert_eq!(w.update(t0 + Duration::from_secs(60), sick_drain), "maint");
    }

    #[test]
    fn never_up_when_not_healthy() {
        let (mut w, t) = settled_at(0.1);
        for load in [0.0, 0.5, 1.0] {
            assert_eq!(w.update(t, input(false, load)), "down");
        }
    }

    #[test]
    fn slow_start_ramps_from_ten_percent() {
        let t0 = crate::clock::now();
        let mut w = AgentWeight::new(MAINT_AFTER, RAMP);
        let s = |secs: u64| t0 + Duration::from_secs(secs);
        // (seconds since becoming healthy, answer) at low load: 10% → 100% over 60 s.
        let seq: &[(u64, &str)] = &[
            (0, "up 10%"),
            (6, "up 10%"),   // 19 floors to 10
            (7, "up 20%"),   // 20.5
            (30, "up 50%"),  // 55 floors to 50
            (59, "up 90%"),  // 98.5
            (60, "up 100%"), // ramp over
            (61, "up 100%"),
        ];
        for (secs, want) in seq {
            assert_eq!(w.update(s(*secs), input(true, 0.1)), *want, "at {secs}s");
        }
        // Down and back: the ramp starts over.
        assert_eq!(w.update(s(70), input(false, 0.1)), "down");
        assert_eq!(w.update(s(71), input(true, 0.1)), "up 10%");
        assert_eq!(w.update(s(101), input(true, 0.1)), "up 50%");
        // Towards a lower load target, the ramp ends there: 10 + (60-10)·½ = 35 → 30.
        let mut w = AgentWeight::new(MAINT_AFTER, RAMP);
        assert_eq!(w.update(s(0), input(true, 0.75)), "up 10%");
        assert_eq!(w.update(s(30), input(true, 0.75)), "up 30%");
        assert_eq!(w.update(s(60), input(true, 0.75)), "up 60%");
    }

    #[test]
    fn after_drain_the_ramp_starts_over() {
        let (mut w, t) = settled_at(0.1);
        let drain = AgentInput {
            draining_since: Some(t),
            ..input(true, 0.1)
        };
        assert_eq!(w.update(t, drain), "drain");
        assert_eq!(w.update(t + Duration::from_secs(10), drain), "maint");
        // `ready` clears the administrative drain/maint in HAProxy.
        assert_eq!(
            w.update(t + Duration::from_secs(20), input(true, 0.1)),
            "ready up 10%"
        );
        let later = t + Duration::from_secs(20) + RAMP.max(READY_FOR);
        assert_eq!(w.update(later, input(true, 0.1)), "up 100%");
    }

    #[test]
    fn ready_is_sent_only_after_a_drain() {
        let (mut w, t) = settled_at(0.1);
        assert_eq!(w.update(t, input(true, 0.1)), "up 100%");
        assert_eq!(w.update(t, input(false, 0.1)), "down");
        assert_eq!(w.update(t, input(true, 0.1)), "up 10%");
    }

    #[test]
    fn zero_ramp_answers_the_target_at_once() {
        let mut w = AgentWeight::new(MAINT_AFTER, Duration::ZERO);
        assert_eq!(w.update(crate::clock::now(), input(true, 0.1)), "up 100%");
    }

    #[test]
    fn hysteresis_holds_small_moves_for_five_seconds() {
        let (mut w, t) = settled_at(0.1); // up 100%
        let s = |ms: u64| t + Duration::from_millis(ms);
        // One step down (load 0.55 → 90%): held 5 s, then adopted.
        assert_eq!(w.update(s(0), input(true, 0.55)), "up 100%");
        assert_eq!(w.update(s(4_999), input(true, 0.55)), "up 100%");
        assert_eq!(w.update(s(5_000), input(true, 0.55)), "up 90%");
        // A wobble back within the hold changes nothing, and resets the hold.
        assert_eq!(w.update(s(6_000), input(true, 0.1)), "up 90%");
        assert_eq!(w.update(s(7_000), input(true, 0.55)), "up 90%");
        assert_eq!(w.update(s(8_000), input(true, 0.1)), "up 90%");
        assert_eq!(w.update(s(12_999), input(true, 0.1)), "up 90%");
        assert_eq!(w.update(s(13_000), input(true, 0.1)), "up 100%");
    }

    #[test]
    fn hysteresis_direction_flip_restarts_the_hold() {
        let (mut w, t) = settled_at(0.75); // up 60%
        let s = |secs: u64| t + Duration::from_secs(secs);
        assert_eq!(w.update(s(0), input(true, 0.67)), "up 60%"); // target 70: up
        assert_eq!(w.update(s(3), input(true, 0.8)), "up 60%"); // target 50: down
        assert_eq!(w.update(s(7), input(true, 0.8)), "up 60%"); // hold from 3 s
        assert_eq!(w.update(s(8), input(true, 0.8)), "up 50%");
    }

    #[test]
    fn hysteresis_jumps_three_steps_at_once() {
        let (mut w, t) = settled_at(0.1); // up 100%
        // 0.75 → 60%: four steps away, adopted immediately.
        assert_eq!(w.update(t, input(true, 0.75)), "up 60%");
        // Two steps (→ 80% at 0.6) wait for the hold.
        assert_eq!(w.update(t, input(true, 0.6)), "up 60%");
        assert_eq!(w.update(t + HYSTERESIS_HOLD, input(true, 0.6)), "up 80%");
        // Exactly three steps (80 → 50 at 0.8) jump too.
        assert_eq!(w.update(t + HYSTERESIS_HOLD, input(true, 0.8)), "up 50%");
    }
}
