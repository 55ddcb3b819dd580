//! Singleton tasks: where `[[task]]` `run_on` puts a task, and the claim that lets a
//! node run it — a lease, like the primary's.
//!
//! [`place`] is pure: every node computes the same placement from the same view. A
//! placement alone is not enough to run a task: views differ for a moment, and a node
//! that was paused or cut off still believes its old view. So a node runs a
//! (non-`primary`) task only while it holds a *claim*:
//!
//! - every voter tells each node, in its heartbeats to it, which tasks it places there
//!   (a [`TaskGrant`]); with the heartbeat's echo, the receiver learns that the voter
//!   still placed the task on it after the echoed heartbeat left (its send time, on the
//!   receiver's monotonic clock);
//! - each grant backs a claim until that send time plus the claim length ([`claim_len`],
//!   cut to two thirds of the promise the grant carries when that is shorter); a claim
//!   holds while a majority of voters back it ([`Node::task_claim`]), judged at the
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

use proto::{HealthBits, Heartbeat, Mode, NodeId, TaskGrant, TaskPlacement, TaskTag, WallMicros};

use super::lease;
use super::membership::MemberState;
use super::node::{InjectedFault, Node};
use super::quorum::majority;

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
const SENT_KEPT: usize = 64;

/// One task as a [`Node`] keeps it.
#[derive(Debug)]
struct Task {
    spec: TaskSpec,
    tag: TaskTag,
    /// Where this node places it (its own view; shown to operators).
    placed: Option<NodeId>,
    /// To whom this node grants it now: its placement, held back by its promise.
    granted: Option<NodeId>,
    /// The node last granted it, and until when this node grants it to no other.
    promised: Option<(NodeId, Instant)>,
    /// Per voter: until when the voter's newest grant backs a claim here (the send time
    /// of this node's heartbeat it echoed, plus the claim length).
    backing: Vec<Backing>,
}

/// One voter's backing of a claim.
#[derive(Debug)]
struct Backing {
    voter: NodeId,
    until: Instant,
    /// Whether `voter` counted in the member set `set` (origin and stamp) held when the
    /// backing was last renewed: claims are judged on every answer, and a set changes
    /// only with its stamp (or its origin).
    counted: bool,
    set: (u64, proto::ConfigStamp),
}

/// The task state a [`Node`] keeps.
#[derive(Debug, Default)]
pub(super) struct Tasks {
    tasks: Vec<Task>,
    /// Promises of tasks a reload removed: one added back under the same name must not
    /// be granted elsewhere early.
    retired: Vec<(String, (NodeId, Instant))>,
    /// Per peer: wall and monotonic send times of this node's recent heartbeats to it.
    sent: BTreeMap<NodeId, VecDeque<(WallMicros, Instant)>>,
    /// Since when each node (this one included) has been fit without a break.
    fit_since: BTreeMap<NodeId, Instant>,
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
fn kth_latest(times: impl Iterator<Item = Instant>, k: usize) -> Option<Instant> {
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

impl Node {
    fn claim_len(&self) -> Duration {
        claim_len(self.cfg.timing.lease, self.cfg.timing.heartbeat_interval)
    }

    fn promise_len(&self) -> Duration {
        promise_len(self.cfg.timing.lease, self.cfg.timing.heartbeat_interval)
    }

    /// What names the member set this node holds: a change of voters changes it.
    fn set_key(&self) -> (u64, proto::ConfigStamp) {
        (self.hard.members.origin, self.hard.members.stamp)
    }

    /// Whether a node may hold a task: alive, in the agreed member set (voting or not; a
    /// node not yet added, or removed, holds none), a member (not a witness), healthy,
    /// not draining.
    fn task_fit(
        &self,
        id: &NodeId,
        addr: &str,
        state: MemberState,
        mode: Mode,
        health: HealthBits,
    ) -> bool {
        let in_set = if self.hard.members.stamp.is_none() {
            self.cfg.bootstrap.iter().any(|a| a == addr)
        } else {
            self.hard.members.slot(id, addr).is_some()
        };
        in_set
            && state == MemberState::Alive
            && mode == Mode::Member
            && health.has(HealthBits::HEALTHY)
            && !health.has(HealthBits::DRAINING)
    }

    /// Re-places every task and decides what this node grants: on every membership
    /// check (each `check_interval`).
    pub(super) fn tasks_tick(&mut self, now: Instant) {
        if self.tasks.tasks.is_empty() {
            return;
        }
        let me = self.cfg.node.clone();
        let mut fit: Vec<NodeId> = self
            .members
            .values()
            .filter(|m| self.task_fit(&m.id, &m.addr, m.state, m.mode, m.health))
            .map(|m| m.id.clone())
            .collect();
        if self.task_fit(
            &me,
            &self.cfg.advertise,
            MemberState::Alive,
            self.cfg.mode,
            self.local.health,
        ) {
            fit.push(me.clone());
        }
        let t = &mut self.tasks;
        t.fit_since.retain(|n, _| fit.contains(n));
        for n in &fit {
            if !t.fit_since.contains_key(n) {
                t.fit_since.insert(n.clone(), now);
            }
        }
        let delay = self.cfg.task_return_delay;
        let settled: Vec<&NodeId> = fit
            .iter()
            .filter(|n| {
                t.fit_since
                    .get(*n)
                    .is_some_and(|s| now.saturating_duration_since(*s) >= delay)
            })
            .collect();
        let fit_refs: Vec<&NodeId> = fit.iter().collect();
        let primary = self.primary().cloned();
        let promise = self.promise_len();
        let broken = self.cfg.fault == Some(InjectedFault::TaskPromiseIgnored);
        let may_grant = broken || now >= self.started + promise;
        for task in &mut self.tasks.tasks {
            // The grant in force until now: refresh what it promises (heartbeats sent
            // since the last tick echoed what had arrived from its holder by now).
            if let Some(holder) = &task.granted {
                let heard = if *holder == me {
                    Some(now)
                } else {
                    self.members.get(holder).and_then(|m| m.last_heard())
                };
                if let Some(heard) = heard {
                    let until = heard + promise;
                    match &mut task.promised {
                        Some((n, u)) if n == holder => *u = (*u).max(until),
                        p => *p = Some((holder.clone(), until)),
                    }
                }
            }
            let current = task.granted.as_ref().or_else(|| {
                task.promised
                    .as_ref()
                    .filter(|(_, until)| now < *until)
                    .map(|(n, _)| n)
            });
            let placed = place(
                &task.spec.name,
                &task.spec.run_on,
                &fit_refs,
                &settled,
                current,
                primary.as_ref(),
            );
            task.granted = match (&task.spec.run_on, &placed) {
                // The primary lease decides these; nothing to grant.
                (RunOn::Primary, _) | (_, None) => None,
                (_, Some(to)) => {
                    let free = broken
                        || task
                            .promised
                            .as_ref()
                            .is_none_or(|(n, until)| n == to || now >= *until);
                    (may_grant && free).then(|| to.clone())
                }
            };
            task.placed = placed;
        }
    }

    /// What this node grants `to` in its next heartbeat: the tasks it places there.
    /// Only a voter of an agreed set that it may vote in grants (the same gate as its
    /// votes): a node still bootstrapping, rejoining after losing its disk, or standing
    /// down beside another cluster grants nothing.
    pub(super) fn task_grant_for(&self, to: &NodeId) -> Option<TaskGrant> {
        if self.tasks.tasks.is_empty() || !self.in_the_set() {
            return None;
        }
        let tasks: Vec<TaskTag> = self
            .tasks
            .tasks
            .iter()
            .filter(|t| t.granted.as_ref() == Some(to))
            .map(|t| t.tag)
            .collect();
        (!tasks.is_empty()).then(|| TaskGrant {
            promise_ms: lease::promise_ms(self.promise_len()),
            tasks,
        })
    }

    /// Remembers when a heartbeat to `to` left, to read the echo of it.
    pub(super) fn task_heartbeat_sent(&mut self, now: Instant, wall: WallMicros, to: &NodeId) {
        if self.tasks.tasks.is_empty() {
            return;
        }
        let horizon = self.claim_len();
        let sent = &mut self.tasks.sent;
        if !sent.contains_key(to) {
            sent.insert(to.clone(), VecDeque::new());
        }
        let Some(log) = sent.get_mut(to) else {
            return;
        };
        log.push_back((wall, now));
        while log.len() > SENT_KEPT
            || log
                .front()
                .is_some_and(|(_, t)| now.saturating_duration_since(*t) > horizon)
        {
            log.pop_front();
        }
    }

    /// A fresh heartbeat from `from`: what it grants this node, as of the echoed send.
    pub(super) fn task_heartbeat(&mut self, from: &NodeId, hb: &Heartbeat) {
        if self.tasks.tasks.is_empty() {
            return;
        }
        let sent = hb.echo.and_then(|e| {
            self.tasks
                .sent
                .get(from)
                .and_then(|log| log.iter().find(|(w, _)| *w == e.peer_sent))
                .map(|(_, t)| *t)
        });
        // What the grant backs: the claim length, cut to two thirds of the granter's
        // promise when that is shorter (nodes part-way through a `[timing]` edit).
        let broken = self.cfg.fault == Some(InjectedFault::TaskPromiseIgnored);
        let claim = self.claim_len();
        let backs = hb.tasks.as_ref().map(|g| {
            let promise = Duration::from_millis(u64::from(g.promise_ms));
            if broken {
                claim
            } else {
                claim.min(promise * 2 / 3)
            }
        });
        let (counted, set) = (self.counts(from), self.set_key());
        for task in &mut self.tasks.tasks {
            let granted = hb
                .tasks
                .as_ref()
                .is_some_and(|g| g.tasks.contains(&task.tag));
            let at = task.backing.iter().position(|b| b.voter == *from);
            match (granted, sent, backs, at) {
                (true, Some(sent), Some(backs), Some(i)) => {
                    let b = &mut task.backing[i];
                    b.until = b.until.max(sent + backs);
                    (b.counted, b.set) = (counted, set);
                }
                (true, Some(sent), Some(backs), None) => {
                    task.backing.push(Backing {
                        voter: from.clone(),
                        until: sent + backs,
                        counted,
                        set,
                    });
                }
                // The voter no longer places it here: stop as soon as that is known.
                (false, _, _, Some(i)) => {
                    task.backing.swap_remove(i);
                }
                // Granted, but the echo is of a heartbeat too old to remember: what it
                // confirmed before still stands.
                _ => {}
            }
        }
    }

    /// The claim on task `name` this node holds at `now`, if any: it places the task
    /// here, grants it to itself, and a majority of voters back it. `run_on = "primary"`
    /// tasks have none (the primary lease rules them).
    pub fn task_claim(&self, name: &str, now: Instant) -> Option<TaskClaim> {
        let task = self.tasks.tasks.iter().find(|t| t.spec.name == name)?;
        // Majorities are of an agreed set: none without one, or beside another cluster.
        if task.spec.run_on == RunOn::Primary
            || task.granted.as_ref() != Some(&self.cfg.node)
            || self.hard.members.stamp.is_none()
            || !self.foreign.is_empty()
        {
            return None;
        }
        let voters = self.voter_count();
        if voters == 0 {
            return None;
        }
        let own = self.in_the_set().then(|| now + self.claim_len());
        let set = self.set_key();
        let backed = task
            .backing
            .iter()
            .filter(|b| {
                if b.set == set {
                    b.counted
                } else {
                    self.counts(&b.voter)
                }
            })
            .map(|b| b.until)
            .chain(own);
        let until = kth_latest(backed, majority(voters))?;
        (now < until).then_some(TaskClaim { until })
    }

    /// Every task and where this node places it, for its state (operators see it).
    pub fn task_placements(&self) -> Vec<TaskPlacement> {
        self.tasks
            .tasks
            .iter()
            .map(|t| TaskPlacement {
                name: t.spec.name.clone(),
                holder: t.placed.clone(),
            })
            .collect()
    }
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
