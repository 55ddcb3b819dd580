//! What the load balancer says about this node (`X-Haproxy-Server-State`), taken at a
//! bounded rate.
//!
//! Owns: the pace at which a new state is handed to the driver ([`TAKE_EVERY`]: at most
//! one change a second, the latest heard winning when the second is over, so the final
//! state is never lost) and the log line saying what the balancer said (at most one per
//! [`LOG_EVERY`]; a line after a quiet spell says how many changes it sums up). A taken
//! change changes this node's `NodeState`, whose digest makes every peer fetch it again:
//! the pace here is what bounds that.
//!
//! Must never: hand on a state at more than one change per [`TAKE_EVERY`], drop the
//! latest state, log a line per change, or read a clock itself ([`Throttle`] takes
//! `now`; the task [`forward`] reads `crate::clock`).
//!
//! Which addresses may send the header at all (`http.allow`) is `http/mod.rs`'s rule.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::haproxy_agent::ServerState;
use crate::clock;

/// At most one change of the balancer's state is taken per this long.
pub const TAKE_EVERY: Duration = Duration::from_secs(1);
/// At most one log line about it per this long.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// A state as the server heard it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heard {
    pub state: ServerState,
    /// Who sent it (an `http.allow` address).
    pub from: IpAddr,
}

/// A line to log: the state taken last, and how many changes were taken since the
/// previous line (this one included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Said {
    pub heard: Heard,
    pub changes: u32,
}

/// What one [`Throttle::offer`] came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Step {
    /// Hand this on (a change).
    pub take: Option<ServerState>,
    /// Log this now.
    pub log: Option<Said>,
}

/// The pace of taking and logging, sans IO.
#[derive(Debug, Clone, Default)]
pub struct Throttle {
    /// The last state handed on, and when.
    taken: Option<(Heard, Instant)>,
    /// When the last line was logged.
    logged_at: Option<Instant>,
    /// Changes taken since the last line.
    unlogged: u32,
}

impl Throttle {
    /// Whether a change may be taken at `now`.
    pub fn may_take(&self, now: Instant) -> bool {
        self.next_take().is_none_or(|at| now >= at)
    }

    /// When the next change may be taken (`None`: at once).
    pub fn next_take(&self) -> Option<Instant> {
        self.taken.as_ref().map(|(_, at)| *at + TAKE_EVERY)
    }

    /// The latest state heard, offered at `now` (call only when [`Self::may_take`]).
    pub fn offer(&mut self, now: Instant, heard: Heard) -> Step {
        if self
            .taken
            .as_ref()
            .is_some_and(|(t, _)| t.state == heard.state)
        {
            return Step::default();
        }
        self.taken = Some((heard.clone(), now));
        self.unlogged = self.unlogged.saturating_add(1);
        let take = Some(heard.state);
        let log = if self.logged_at.is_none_or(|at| now >= at + LOG_EVERY) {
            self.line(now)
        } else {
            None
        };
        Step { take, log }
    }

    /// When a summary line is due (changes were taken since the last line).
    pub fn log_due(&self) -> Option<Instant> {
        // The first change is logged at once, so `logged_at` is set when one waits.
        self.logged_at
            .filter(|_| self.unlogged > 0)
            .map(|at| at + LOG_EVERY)
    }

    /// The summary line, if one is due at `now`.
    pub fn flush(&mut self, now: Instant) -> Option<Said> {
        if self.log_due().is_some_and(|due| now >= due) {
            self.line(now)
        } else {
            None
        }
    }

    fn line(&mut self, now: Instant) -> Option<Said> {
        let (heard, _) = self.taken.as_ref()?;
        let said = Said {
            heard: heard.clone(),
            changes: self.unlogged,
        };
        self.unlogged = 0;
        self.logged_at = Some(now);
        Some(said)
    }
}

fn log(said: &Said) {
    let s = &said.heard.state;
    let balancer = s.balancer.as_deref().unwrap_or("-");
    let weight = s.weight.as_deref().unwrap_or("-");
    if said.changes <= 1 {
        tracing::info!(
            balancer,
            weight,
            from = %said.heard.from,
            "the load balancer says {}",
            s.state
        );
    } else {
        tracing::info!(
            balancer,
            weight,
            from = %said.heard.from,
            "the load balancer says {} ({} changes in the last {}s, the latest shown; a \
             state that changes this often is taken at most once a second: check that only \
             one balancer backend sends send-state for this node)",
            s.state,
            said.changes,
            LOG_EVERY.as_secs()
        );
    }
}

/// Hands what the server heard (`heard`, written on every change) to the driver
/// (`out`) at the pace of [`Throttle`], and logs it. Ends when the server is gone.
pub async fn forward(
    mut heard: watch::Receiver<Option<Heard>>,
    out: watch::Sender<Option<ServerState>>,
) {
    let mut throttle = Throttle::default();
    loop {
        let now = clock::now();
        if let Some(said) = throttle.flush(now) {
            log(&said);
        }
        let may_take = throttle.may_take(now);
        let open = throttle.next_take().unwrap_or(now);
        let due = throttle.log_due();
        tokio::select! {
            changed = heard.changed(), if may_take => {
                if changed.is_err() {
                    return;
                }
                let Some(h) = heard.borrow_and_update().clone() else {
                    continue;
                };
                let step = throttle.offer(clock::now(), h);
                if let Some(said) = step.log {
                    log(&said);
                }
                if let Some(state) = step.take {
                    out.send_replace(Some(state));
                }
            }
            // The window is closed: wait for it (what arrives meanwhile waits in
            // `heard`, the latest value only).
            () = tokio::time::sleep_until(open.into()), if !may_take => {}
            () = tokio::time::sleep_until(due.unwrap_or(now).into()), if due.is_some() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heard(state: &str) -> Heard {
        Heard {
            state: ServerState {
                state: state.into(),
                balancer: Some("lb1".into()),
                weight: None,
            },
            from: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        }
    }

    /// A balancer flapping its state every 10 ms for a minute: one change taken per
    /// second at most, one line per 10 s at most, every change taken counted in a line,
    /// and the last state heard is the one left.
    #[test]
    fn a_flapping_state_is_taken_once_a_second_and_logged_once_in_ten() {
        let t0 = clock::now();
        let mut t = Throttle::default();
        let (mut taken, mut lines, mut counted) = (0u32, 0u32, 0u32);
        let mut handed_on = None;
        let mut last_heard = None;
        let mut step_at = |t: &mut Throttle, now: Instant, h: Option<Heard>| {
            if let Some(said) = t.flush(now) {
                lines += 1;
                counted += said.changes;
            }
            let Some(h) = h else { return };
            if !t.may_take(now) {
                return;
            }
            let step = t.offer(now, h);
            if let Some(s) = step.take {
                taken += 1;
                handed_on = Some(s);
            }
            if let Some(said) = step.log {
                lines += 1;
                counted += said.changes;
            }
        };
        for i in 0..6000u32 {
            let now = t0 + Duration::from_millis(u64::from(i) * 10);
            let h = heard(if i % 2 == 0 { "UP" } else { "DOWN 1/2" });
            last_heard = Some(h.clone());
            step_at(&mut t, now, Some(h));
        }
        // The flood stops; its last state is offered once the window opens, and the
        // summary comes when due.
        let end = t0 + Duration::from_secs(60) + TAKE_EVERY;
        step_at(&mut t, end, last_heard.clone());
        step_at(&mut t, end + LOG_EVERY, None);
        // 60 s: one change per second, and one at the start.
        assert!((55..=62).contains(&taken), "taken {taken}");
        assert!((6..=8).contains(&lines), "lines {lines}");
        assert_eq!(counted, taken, "every change taken is in a line");
        assert_eq!(handed_on, last_heard.map(|h| h.state));
        assert_eq!(t.log_due(), None);
    }

    #[test]
    fn a_steady_balancer_is_taken_and_logged_at_once() {
        let t0 = clock::now();
        let mut t = Throttle::default();
        let step = t.offer(t0, heard("UP"));
        assert_eq!(step.take, Some(heard("UP").state));
        assert_eq!(step.log.map(|s| s.changes), Some(1));
        assert_eq!(t.log_due(), None);
        // The same state again: nothing.
        let later = t0 + Duration::from_secs(5);
        assert_eq!(t.offer(later, heard("UP")), Step::default());
        // A change a minute later: taken and logged at once.
        let later = t0 + Duration::from_secs(60);
        let step = t.offer(later, heard("DOWN"));
        assert_eq!(step.take, Some(heard("DOWN").state));
        assert_eq!(step.log.map(|s| s.changes), Some(1));
        // One more 2 s later: taken, its line waits for the window.
        let soon = later + Duration::from_secs(2);
        let step = t.offer(soon, heard("UP 1/2"));
        assert!(step.take.is_some());
        assert_eq!(step.log, None);
        assert_eq!(t.log_due(), Some(later + LOG_EVERY));
        assert_eq!(t.flush(soon), None);
        let said = t.flush(later + LOG_EVERY).unwrap();
        assert_eq!((said.heard, said.changes), (heard("UP 1/2"), 1));
        assert_eq!(t.log_due(), None);
    }
}
