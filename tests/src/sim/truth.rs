//! Ground truth for the preemption invariant: when each process was stopped (paused,
//! suspended, down, leaving) and when each directed link was cut, as the simulation
//! knows it and no node does.
//!
//! [`Truth::observe`] runs after every step and records the moments these change; a
//! preemption is then judged against what really happened to its target
//! ([`Truth::disrupted`]): the primary must not hand over to a node it could not have
//! seen alive, without a break, for `preempt_delay`.

use std::time::Duration;

/// Outages of one thing (a process or a directed link): finished ones, and the one in
/// progress.
#[derive(Debug, Clone, Default)]
struct Outages {
    since: Option<Duration>,
    /// Finished outages `(start, end)`, oldest first; only long ones are kept.
    past: Vec<(Duration, Duration)>,
}

impl Outages {
    fn set(&mut self, down: bool, now: Duration, keep_longer_than: Duration) {
        match (down, self.since) {
            (true, None) => self.since = Some(now),
            (false, Some(start)) => {
                self.since = None;
                if now - start > keep_longer_than {
                    self.past.push((start, now));
                }
            }
            _ => {}
        }
    }

    /// The newest outage longer than `longer_than` that ended after `after` (or is still
    /// going on), as `(start, end or now)`.
    fn newest(
        &self,
        now: Duration,
        after: Duration,
        longer_than: Duration,
    ) -> Option<(Duration, Duration)> {
        self.since
            .map(|s| (s, now))
            .into_iter()
            .chain(self.past.iter().rev().copied())
            .find(|(s, e)| *e > after && *e - *s > longer_than)
    }
}

/// What happened to every process and link.
#[derive(Debug, Clone)]
pub(crate) struct Truth {
    size: usize,
    processes: Vec<Outages>,
    /// `links[from * size + to]`.
    links: Vec<Outages>,
    /// Outages at most this long are not worth keeping (shorter than any election timeout).
    keep_longer_than: Duration,
}

impl Truth {
    pub(crate) fn new(size: usize, keep_longer_than: Duration) -> Self {
        Self {
            size,
            processes: vec![Outages::default(); size],
            links: vec![Outages::default(); size * size],
            keep_longer_than,
        }
    }

    /// Records the state after a step: `running(n)` whether process `n` runs, `up(a, b)`
    /// whether `a`'s datagrams can reach `b`.
    pub(crate) fn observe(
        &mut self,
        now: Duration,
        running: impl Fn(usize) -> bool,
        up: impl Fn(usize, usize) -> bool,
    ) {
        let keep = self.keep_longer_than;
        for n in 0..self.size {
            self.processes[n].set(!running(n), now, keep);
            for m in 0..self.size {
                if m != n {
                    self.links[n * self.size + m].set(!up(n, m), now, keep);
                }
            }
        }
    }

    /// Why `target` was not seen alive by `primary` without a break since `after`: a stop
    /// of its process, or a cut of either direction between them, longer than
    /// `longer_than`, that ended after `after` (or still lasts).
    pub(crate) fn disrupted(
        &self,
        now: Duration,
        primary: usize,
        target: usize,
        after: Duration,
        longer_than: Duration,
    ) -> Option<String> {
        let show = |what: String, (s, e): (Duration, Duration)| {
            format!(
                "{what} from {:.3}s to {:.3}s",
                s.as_secs_f64(),
                e.as_secs_f64()
            )
        };
        let (p, t) = (super::node_name(primary), super::node_name(target));
        if let Some(o) = self.processes[target].newest(now, after, longer_than) {
            return Some(show(format!("{t} was not running"), o));
        }
        if let Some(o) = self.links[target * self.size + primary].newest(now, after, longer_than) {
            return Some(show(format!("{t} --> {p} was cut"), o));
        }
        if let Some(o) = self.links[primary * self.size + target].newest(now, after, longer_than) {
            return Some(show(format!("{p} --> {t} was cut"), o));
        }
        None
    }
}
