//! Singleton tasks: where `[[task]]` `run_on` puts a task, and the claim that lets a
//! node run it — a lease, like the primary's.
//!
//! [`place`] is pure: every node computes the same placement from the same view. A
//! placement alone is not enough to run a task: views differ for a moment, and a node
//! that was paused or cut off still believes its old view. So a node runs a
//! (non-`primary`) task only while it holds a *claim*:
//!
//! - every voter tells each node, in its heartbeats to it, which tasks it places there
//!   (a [`TaskGrant`](proto::TaskGrant)); with the heartbeat's echo, the receiver learns that the voter
//!   still placed the task on it after the echoed heartbeat left (its send time, on the
//!   receiver's monotonic clock);
//! - each grant backs a claim until that send time plus the claim length ([`claim_len`],
//!   cut to two thirds of the promise the grant carries when that is shorter); a claim
//!   holds while a majority of voters back it ([`Node::task_claim`](crate::core::Node::task_claim)), judged at the
//!   moment of the answer: a paused, starved or cut-off holder stops on its own;
//! - a voter that stops placing a task on a node places it on nobody else until its
//!   promise ([`promise_len`]) has run from when it last heard from that node, and a
//!   voter that has just started grants nothing for that long; so every claim resting on
//!   its grant has ended before another can rest on it, and two majorities share a
//!   voter: no two nodes hold a claim at the same instant.
//!
//! Placement never reads the election's votes or leases, and the election never reads
//! tasks. This module never does IO or reads a clock.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use proto::{NodeId, TaskTag, WallMicros};

/// Where a task runs (`run_on` in `[[task]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOn {
    /// On the node holding the primary lease.
    Primary,
    /// On this node only; nowhere while it is unfit.
    Node(NodeId),
    /// On the first fit node of the list.
    Prefer(Vec<NodeId>),
    /// Rendezvous hashing over fit nodes: tasks spread, and a task moves only when its
    /// node becomes unfit (or a node it prefers comes back).
    Spread,
}

impl std::str::FromStr for RunOn {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let node = |n: &str| {
            NodeId::new(n.trim()).map_err(|e| format!("run_on {s:?}: node {:?} {e}", n.trim()))
        };
        match s {
            "primary" => Ok(RunOn::Primary),
            "spread" => Ok(RunOn::Spread),
            _ => {
                if let Some(n) = s.strip_prefix("node:") {
                    Ok(RunOn::Node(node(n)?))
                } else if let Some(list) = s.strip_prefix("prefer:") {
                    let nodes = list.split(',').map(node).collect::<Result<Vec<_>, _>>()?;
                    Ok(RunOn::Prefer(nodes))
                } else {
                    Err(format!(
                        "run_on {s:?}: write \"primary\", \"node:N\", \"prefer:A,B,…\" or \"spread\""
                    ))
                }
            }
        }
    }
}

impl std::fmt::Display for RunOn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunOn::Primary => f.write_str("primary"),
            RunOn::Spread => f.write_str("spread"),
            RunOn::Node(n) => write!(f, "node:{n}"),
            RunOn::Prefer(list) => {
                f.write_str("prefer:")?;
                for (i, n) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    f.write_str(n.as_str())?;
                }
                Ok(())
            }
        }
    }
}

/// Places task `name` among `fit` nodes (alive, healthy, member mode, not draining).
///
/// `settled` are the fit nodes that have been fit without a break for the return delay,
/// and `current` is where the task is now (as this node granted it). A task stays on
/// its current node while that node is fit, and moves to a node the rule prefers only
/// once that node has settled, so a node back from a pause or a cut does not take the
/// task back at once (every glitch would move it twice). A task with no fit current
/// node goes to the best fit node at once. `primary` is the node believed to hold the
/// primary lease.
pub fn place(
    name: &str,
    run_on: &RunOn,
    fit: &[&NodeId],
    settled: &[&NodeId],
    current: Option<&NodeId>,
    primary: Option<&NodeId>,
) -> Option<NodeId> {
    // The holder counts only while the rule could still place the task there.
    let current = current.filter(|c| {
        fit.contains(c)
            && match run_on {
                RunOn::Prefer(list) => list.contains(c),
                _ => true,
            }
    });
    // Whom the task may go to: any fit node when it has no holder; else only the holder
    // or a settled node.
    let candidate = |n: &NodeId| current.is_none_or(|c| c == n) || settled.contains(&n);
    match run_on {
        RunOn::Primary => primary.cloned(),
        RunOn::Node(n) => fit.contains(&n).then(|| n.clone()),
        RunOn::Prefer(list) => list
            .iter()
            .find(|n| fit.contains(n) && candidate(n))
            .cloned(),
        RunOn::Spread => fit
            .iter()
            .filter(|n| candidate(n))
            .max_by_key(|n| (rendezvous(name, n.as_str()), n.as_str()))
            .map(|n| (*n).clone()),
    }
}

/// The rendezvous (highest random weight) score of `node` for `task`: stable across
/// nodes, processes and versions (BLAKE3, not a seeded std hasher).
fn rendezvous(task: &str, node: &str) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(task.as_bytes());
    h.update(&[0]);
    h.update(node.as_bytes());
    let mut out = [0u8; 8];
    out.copy_from_slice(&h.finalize().as_bytes()[..8]);
    u64::from_le_bytes(out)
}

/// One `[[task]]` as the core sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSpec {
    pub name: String,
    pub run_on: RunOn,
}

/// How long a claim lasts after the newest send time a majority confirmed: several
/// heartbeats between two nodes that are not the primary (grants refresh at that rate),
/// and several leases.
pub fn claim_len(lease: Duration, heartbeat_interval: Duration) -> Duration {
    lease.max(heartbeat_interval) * 4
}

/// How long a voter places a task on nobody else after it last heard from the node it
/// placed it on: half as long again as the claim, for the two clocks' rates and the
/// rounding as it travels.
pub fn promise_len(lease: Duration, heartbeat_interval: Duration) -> Duration {
    claim_len(lease, heartbeat_interval) * 3 / 2
}

/// A task claim held now: the task runs here until `until` (this node's monotonic clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskClaim {
    pub until: Instant,
}

/// How many of its own heartbeats to each peer a node remembers, to map an echo back to
/// the monotonic send time.
pub(super) const SENT_KEPT: usize = 64;

/// One task as a [`Node`] keeps it.
#[derive(Debug)]
pub(super) struct Task {
    pub(super) spec: TaskSpec,
    pub(super) tag: TaskTag,
    /// Where this node places it (its own view; shown to operators).
    pub(super) placed: Option<NodeId>,
    /// To whom this node grants it now: its placement, held back by its promise.
    pub(super) granted: Option<NodeId>,
    /// The node last granted it, and until when this node grants it to no other.
    pub(super) promised: Option<(NodeId, Instant)>,
    /// Per voter: until when the voter's newest grant backs a claim here (the send time
    /// of this node's heartbeat it echoed, plus the claim length).
    pub(super) backing: Vec<Backing>,
}

/// One voter's backing of a claim.
#[derive(Debug)]
pub(super) struct Backing {
    pub(super) voter: NodeId,
    pub(super) until: Instant,
    /// Whether `voter` counted in the member set `set` (origin and stamp) held when the
    /// backing was last renewed: claims are judged on every answer, and a set changes
    /// only with its stamp (or its origin).
    pub(super) counted: bool,
    pub(super) set: (u64, proto::ConfigStamp),
}

/// The task state a [`Node`] keeps.
#[derive(Debug, Default)]
pub(super) struct Tasks {
    pub(super) tasks: Vec<Task>,
    /// Promises of tasks a reload removed: one added back under the same name must not
    /// be granted elsewhere early.
    pub(super) retired: Vec<(String, (NodeId, Instant))>,
    /// Per peer: wall and monotonic send times of this node's recent heartbeats to it.
    pub(super) sent: BTreeMap<NodeId, VecDeque<(WallMicros, Instant)>>,
    /// Since when each node (this one included) has been fit without a break.
    pub(super) fit_since: BTreeMap<NodeId, Instant>,
}

impl Tasks {
    pub(super) fn new(specs: Vec<TaskSpec>) -> Self {
        let mut t = Self::default();
        t.set_specs(specs);
        t
    }

    pub(super) fn set_specs(&mut self, specs: Vec<TaskSpec>) {
        let mut old = std::mem::take(&mut self.tasks);
        for t in &old {
            if let Some(p) = &t.promised
                && !specs.iter().any(|s| s.name == t.spec.name)
            {
                self.retired.push((t.spec.name.clone(), p.clone()));
            }
        }
        self.tasks = specs
            .into_iter()
            .map(|spec| {
                let kept = old
                    .iter()
                    .position(|t| t.spec.name == spec.name)
                    .map(|i| old.swap_remove(i));
                let promised = match &kept {
                    Some(t) => t.promised.clone(),
                    None => self
                        .retired
                        .iter()
                        .position(|(n, _)| *n == spec.name)
                        .map(|i| self.retired.swap_remove(i).1),
                };
                Task {
                    tag: TaskTag::of(&spec.name),
                    placed: kept.as_ref().and_then(|t| t.placed.clone()),
                    granted: kept.as_ref().and_then(|t| t.granted.clone()),
                    backing: kept.map(|t| t.backing).unwrap_or_default(),
                    promised,
                    spec,
                }
            })
            .collect();
    }

    /// After a clock jump nothing measured on the monotonic clock can be trusted.
    pub(super) fn forget_support(&mut self) {
        for t in &mut self.tasks {
            t.backing.clear();
        }
        self.sent.clear();
    }
}

/// The `k`-th latest of `times` (1-based). Sets are a handful of voters and this runs
/// on every answer, so up to 16 it stays on the stack.
pub(super) fn kth_latest(times: impl Iterator<Item = Instant>, k: usize) -> Option<Instant> {
    let mut small: [Option<Instant>; 16] = [None; 16];
    let mut n = 0;
    let mut spill: Vec<Instant> = Vec::new();
    for t in times {
        match small.get_mut(n) {
            Some(slot) => {
                *slot = Some(t);
                n += 1;
            }
            None => spill.push(t),
        }
    }
    if spill.is_empty() {
        let filled = &mut small[..n];
        filled.sort_unstable();
        return *filled.get(n.checked_sub(k)?)?;
    }
    spill.extend(small.iter().flatten());
    spill.sort_unstable();
    let i = spill.len().checked_sub(k)?;
    spill.get(i).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    /// (rule, fit nodes, settled nodes, current holder, primary, expected placement)
    type Row<'a> = (
        &'a str,
        &'a [&'a NodeId],
        &'a [&'a NodeId],
        Option<&'a NodeId>,
        Option<&'a NodeId>,
        Option<&'a NodeId>,
    );

    #[test]
    fn placement_table() {
        let (n1, n2, n3) = (id("n1"), id("n2"), id("n3"));
        let all = [&n1, &n2, &n3];
        let no_n1 = [&n2, &n3];
        let none: [&NodeId; 0] = [];
        let table: &[Row<'_>] = &[
            ("primary", &all, &all, None, Some(&n2), Some(&n2)),
            ("primary", &all, &all, None, None, None),
            ("node:n1", &all, &all, None, None, Some(&n1)),
            ("node:n1", &no_n1, &no_n1, None, None, None),
            // A node the rule names comes back: the task follows at once (it had none).
            ("node:n1", &all, &none, None, None, Some(&n1)),
            ("prefer:n1,n3", &all, &all, None, None, Some(&n1)),
            ("prefer:n1,n3", &no_n1, &no_n1, None, None, Some(&n3)),
            ("prefer:n1", &no_n1, &no_n1, None, None, None),
            // With no holder, the best fit node takes it, settled or not.
            ("prefer:n1,n3", &all, &none, None, None, Some(&n1)),
            // n1 is back but not settled: the task stays on n3; settled, it returns.
            (
                "prefer:n1,n3",
                &all,
                &[&n2, &n3],
                Some(&n3),
                None,
                Some(&n3),
            ),
            ("prefer:n1,n3", &all, &all, Some(&n3), None, Some(&n1)),
            // The holder is lost: the next fit node takes it at once.
            (
                "prefer:n1,n2,n3",
                &[&n1, &n2],
                &none,
                Some(&n3),
                None,
                Some(&n1),
            ),
            // A holder the rule no longer names (a reload) holds nothing: the best goes.
            ("prefer:n1,n2", &all, &[&n2], Some(&n3), None, Some(&n1)),
        ];
        for (rule, fit, settled, current, primary, want) in table {
            let run_on: RunOn = rule.parse().unwrap();
            assert_eq!(run_on.to_string(), *rule);
            assert_eq!(
                place("t", &run_on, fit, settled, *current, *primary).as_ref(),
                *want,
                "{rule} over {fit:?}, settled {settled:?}, held by {current:?}"
            );
        }
    }

    #[test]
    fn spread_is_stable_and_moves_only_the_lost_node_tasks() {
        let nodes: Vec<NodeId> = (1..=4).map(|i| id(&format!("n{i}"))).collect();
        let all: Vec<&NodeId> = nodes.iter().collect();
        let tasks: Vec<String> = (0..40).map(|i| format!("task-{i}")).collect();
        let before: Vec<NodeId> = tasks
            .iter()
            .map(|t| place(t, &RunOn::Spread, &all, &all, None, None).unwrap())
            .collect();
        // Every node gets some of 40 tasks.
        for n in &nodes {
            assert!(before.contains(n), "{n} got no task");
        }
        // Order of the fit list does not matter.
        let reversed: Vec<&NodeId> = all.iter().rev().copied().collect();
        for (t, b) in tasks.iter().zip(&before) {
            assert_eq!(
                place(t, &RunOn::Spread, &reversed, &reversed, None, None).as_ref(),
                Some(b)
            );
        }
        // Losing n2 moves only n2's tasks.
        let without: Vec<&NodeId> = all.iter().filter(|n| n.as_str() != "n2").copied().collect();
        for (t, b) in tasks.iter().zip(&before) {
            let after = place(t, &RunOn::Spread, &without, &without, Some(b), None).unwrap();
            if b.as_str() != "n2" {
                assert_eq!(&after, b, "{t} moved needlessly");
            } else {
                assert_ne!(after.as_str(), "n2");
            }
            // n2 back but not settled: nothing moves; settled, its tasks go back.
            let held = after.clone();
            let back = place(t, &RunOn::Spread, &all, &without, Some(&held), None).unwrap();
            assert_eq!(back, held, "{t} moved to a node not settled");
            let settled = place(t, &RunOn::Spread, &all, &all, Some(&held), None).unwrap();
            assert_eq!(&settled, b, "{t} did not go back");
        }
        assert_eq!(place("t", &RunOn::Spread, &[], &[], None, None), None);
    }

    #[test]
    fn bad_rules_are_refused() {
        for bad in ["", "node:", "prefer:a,,b", "prefer:", "Primary", "node:a.b"] {
            assert!(bad.parse::<RunOn>().is_err(), "{bad:?}");
        }
    }
}
