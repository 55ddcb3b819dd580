//! What a run reports: the trace it keeps, the invariant a step broke ([`Violation`]), and
//! the [`Failure`] printed for it (seed, faults, the last steps, how to replay).

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use super::TraceLevel;

/// The invariants checked after every step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invariant {
    /// Never two running nodes whose lease holds at the same global instant.
    OneLeaseHolder,
    /// At most one node wins any given term.
    OneWinnerPerTerm,
    /// Only an eligible member wins a term, and a witness never holds a lease.
    OnlyEligibleLead,
    /// After the heal, a primary within the bound, and exactly one at the end.
    Liveness,
    /// Time moves on: a node whose timer stays due at the same instant is spinning.
    Progress,
    /// Never two running nodes that claim one task at the same global instant.
    OneTaskHolder,
    /// After the heal and settle, every task is claimed by exactly one node.
    TaskLiveness,
    /// A primary preempts only in favour of a node it has seen alive, without a break,
    /// for `preempt_delay`.
    PreemptAfterDelay,
    /// A cold start of every node elects the highest-priority eligible node first.
    ColdStartOrder,
    /// A non-voter heartbeats no other non-voter of the set it holds (issue 15: a fleet
    /// costs nodes × voters).
    FleetHeartbeats,
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Invariant::OneLeaseHolder => "at most one lease holder at any instant",
            Invariant::OneWinnerPerTerm => "at most one winner per term",
            Invariant::OnlyEligibleLead => "only eligible members lead",
            Invariant::Liveness => "liveness (a primary within the bound, one at the end)",
            Invariant::Progress => "time moves on",
            Invariant::OneTaskHolder => "at most one claim on a task at any instant",
            Invariant::TaskLiveness => "every task claimed by one node after the heal",
            Invariant::PreemptAfterDelay => {
                "preemption only to a node seen alive for preempt_delay"
            }
            Invariant::ColdStartOrder => "a cold start elects the highest priority first",
            Invariant::FleetHeartbeats => "a non-voter heartbeats no other non-voter",
        })
    }
}

/// An invariant broken at a global instant.
#[derive(Debug, Clone)]
pub struct Violation {
    pub at: Duration,
    pub invariant: Invariant,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} violated at {}: {}",
            self.invariant,
            secs(self.at),
            self.detail
        )
    }
}

/// A violation with everything needed to understand and replay it. `Debug` prints the
/// whole report, so a test returning `Result<_, Failure>` shows it.
pub struct Failure {
    pub violation: Violation,
    /// The seed whose scenario failed, if the run was a random scenario.
    pub seed: Option<u64>,
    report: String,
}

impl Failure {
    pub(crate) fn new(violation: Violation, seed: Option<u64>, report: String) -> Self {
        Self {
            violation,
            seed,
            report,
        }
    }

    /// The full report: violation, cluster, faults, last steps, replay command.
    pub fn report(&self) -> &str {
        &self.report
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.report)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.report)
    }
}

impl std::error::Error for Failure {}

/// Seconds with millisecond precision, as every trace line shows time.
pub(crate) fn secs(t: Duration) -> String {
    format!("{:.3}s", t.as_secs_f64())
}

/// How many trace lines a failure report shows.
const TAIL: usize = 60;

/// The run's trace: printed as it happens when verbose, and the last lines kept for a
/// failure report.
#[derive(Debug)]
pub(crate) struct Trace {
    level: TraceLevel,
    tail: VecDeque<String>,
}

impl Trace {
    pub(crate) fn new(level: TraceLevel) -> Self {
        Self {
            level,
            tail: VecDeque::with_capacity(TAIL),
        }
    }

    pub(crate) fn level(&self) -> TraceLevel {
        self.level
    }

    /// Records a line about `what` at `at`.
    pub(crate) fn line(&mut self, at: Duration, what: fmt::Arguments<'_>) {
        let line = format!("{:>10}  {what}", secs(at));
        if self.level >= TraceLevel::Events {
            println!("{line}");
        }
        if self.tail.len() == TAIL {
            self.tail.pop_front();
        }
        self.tail.push_back(line);
    }

    pub(crate) fn tail(&self) -> impl Iterator<Item = &str> {
        self.tail.iter().map(String::as_str)
    }
}
