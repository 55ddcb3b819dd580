//! Task claims, as the node drives them: placing each task, granting it in heartbeats,
//! backing claims from the grants it receives, and answering whether it holds one. The
//! rules (placement, claim and promise lengths) and the per-task state are
//! [`crate::core::tasks`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use proto::{HealthBits, Heartbeat, Mode, NodeId, TaskGrant, TaskPlacement, TaskTag, WallMicros};

use super::Node;
use crate::core::contract::InjectedFault;
use crate::core::lease;
use crate::core::membership::MemberState;
use crate::core::quorum::majority;
use crate::core::tasks::{
    Backing, RunOn, SENT_KEPT, TaskClaim, claim_len, kth_latest, place, promise_len,
};

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
            // A member this node does not watch (a non-voter, seen from another) has no
            // state here to judge: the voters place tasks on it, and their grants
            // decide (a placement over the watched nodes still picks this node whenever
            // the voters' does: the best of a set is the best of any part holding it).
            .filter(|m| m.watched && self.task_fit(&m.id, &m.addr, m.state, m.mode, m.health))
            .map(|m| m.id.clone())
            .collect();
        if self.task_fit(
            &me,
            &self.cfg.advertise,
            MemberState::Alive,
            self.cfg.mode,
            self.own.health,
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
