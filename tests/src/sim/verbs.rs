//! The fault verbs on [`Sim`] (turmoil's and raft-rs's harness vocabulary) and the
//! process control behind them: start, pause, suspend, resume, crash, graceful stop,
//! drains, operator commands, connections.

use std::time::Duration;

use proto::{FreezeFlag, LoadFigures};
use quorate_agent::core::{Command, CoreConfig, LostVote, MemberChange, Node};
use rand::Rng;

use super::Sim;
use super::host::{Input, Process};
use super::net::Delay;
use super::report::{Failure, Violation};
use super::scenario::{Fault, MemberOp};

/// How long a leaving primary waits for its successor (the driver's `HANDOVER_WAIT`).
const HANDOVER_WAIT: Duration = Duration::from_secs(2);

impl Sim {
    /// Applies one fault, then checks the invariants.
    pub fn apply(&mut self, fault: Fault) -> Result<(), Failure> {
        self.trace.line(self.now, format_args!("! {fault}"));
        self.steps += 1;
        match &fault {
            Fault::Partition(groups) => self.net.partition(groups),
            Fault::Cut(a, b) => self.net.cut(*a, *b),
            Fault::CutOneWay { from, to } => self.net.cut_one_way(*from, *to),
            Fault::Repair(a, b) => self.net.repair(*a, *b),
            Fault::Heal => self.net.heal(),
            Fault::Loss(p) => self.net.set_loss(*p),
            Fault::Delay(d) => self.net.set_delay(*d),
            Fault::Pause(n) => self.pause_process(*n, false),
            Fault::Suspend(n) => self.pause_process(*n, true),
            Fault::Resume(n) => self.resume_process(*n),
            Fault::Crash(n) => self.crash_process(*n),
            Fault::Stop(n) => self.stop_process(*n, false),
            Fault::Restart(n) => self.start(*n),
            Fault::Drain(n) => self.set_drained(*n, true),
            Fault::Undrain(n) => self.set_drained(*n, false),
            Fault::SetPriority(n, p) => {
                // As the agent does on SIGHUP: the running core takes the new priority
                // (peers learn it from the node's state); a node that is down uses it at
                // its next start.
                self.hosts[*n].priority = *p;
                self.command(*n, Command::SetPriority(*p));
                // Its state (so its digest) changed: the driver re-reports it at once.
                if self.hosts[*n].process.is_live() {
                    self.report_local(*n);
                }
            }
            Fault::Transfer { at, to } => {
                let to = to.map(|t| self.ids[t].clone());
                self.command(*at, Command::Transfer(to));
            }
            Fault::Freeze(n) => self.set_frozen(*n, true, None),
            Fault::Unfreeze(n) => self.set_frozen(*n, false, None),
            Fault::Member(op) => self.member_op(*op),
            Fault::Relist(n, list) => self.config.lists.push((*n, list.clone())),
            Fault::Wipe(n) => {
                self.crash_process(*n);
                self.hosts[*n].disk = Default::default();
                self.hosts[*n].has_election = false;
            }
            Fault::LoseVote(n) => {
                self.crash_process(*n);
                let host = &mut self.hosts[*n];
                host.disk.term = proto::Term(0);
                host.disk.voted_for = None;
                host.has_election = false;
            }
            Fault::LoseMembers(n) => {
                self.crash_process(*n);
                self.hosts[*n].disk.members = Default::default();
            }
        }
        self.applied.push((self.now, fault));
        self.connect_pairs();
        self.check()
    }

    pub fn partition(&mut self, groups: &[&[usize]]) -> Result<(), Failure> {
        self.apply(Fault::Partition(
            groups.iter().map(|g| g.to_vec()).collect(),
        ))
    }

    pub fn cut(&mut self, a: usize, b: usize) -> Result<(), Failure> {
        self.apply(Fault::Cut(a, b))
    }

    pub fn cut_one_way(&mut self, from: usize, to: usize) -> Result<(), Failure> {
        self.apply(Fault::CutOneWay { from, to })
    }

    pub fn repair(&mut self, a: usize, b: usize) -> Result<(), Failure> {
        self.apply(Fault::Repair(a, b))
    }

    pub fn heal(&mut self) -> Result<(), Failure> {
        self.apply(Fault::Heal)
    }

    pub fn loss(&mut self, p: f64) -> Result<(), Failure> {
        self.apply(Fault::Loss(p))
    }

    pub fn delay(&mut self, delay: Delay) -> Result<(), Failure> {
        self.apply(Fault::Delay(delay))
    }

    pub fn pause(&mut self, node: usize) -> Result<(), Failure> {
        self.apply(Fault::Pause(node))
    }

    pub fn suspend(&mut self, node: usize) -> Result<(), Failure> {
        self.apply(Fault::Suspend(node))
    }

    pub fn resume(&mut self, node: usize) -> Result<(), Failure> {
        self.apply(Fault::Resume(node))
    }

    pub fn crash(&mut self, node: usize) -> Result<(), Failure> {
        self.apply(Fault::Crash(node))
    }

    pub fn stop(&mut self, node: usize) -> Result<(), Failure> {
        self.apply(Fault::Stop(node))
    }

    pub fn restart(&mut self, node: usize) -> Result<(), Failure> {
        self.apply(Fault::Restart(node))
    }

    pub fn drain_node(&mut self, node: usize) -> Result<(), Failure> {
        self.apply(Fault::Drain(node))
    }

    pub fn undrain_node(&mut self, node: usize) -> Result<(), Failure> {
        self.apply(Fault::Undrain(node))
    }

    pub fn set_priority(&mut self, node: usize, priority: u32) -> Result<(), Failure> {
        self.apply(Fault::SetPriority(node, priority))
    }

    pub fn transfer(&mut self, at: usize, to: Option<usize>) -> Result<(), Failure> {
        self.apply(Fault::Transfer { at, to })
    }

    /// `quorate member …` on the primary (see [`Fault::Member`]).
    pub fn member(&mut self, op: MemberOp) -> Result<(), Failure> {
        self.apply(Fault::Member(op))
    }

    pub fn relist(&mut self, node: usize, list: &[usize]) -> Result<(), Failure> {
        self.apply(Fault::Relist(node, list.to_vec()))
    }

    /// Edits the node's `peers` file and reloads it (`peers` is live).
    pub fn reload_list(&mut self, node: usize, list: &[usize]) -> Result<(), Failure> {
        self.config.lists.push((node, list.to_vec()));
        let ids: Vec<proto::NodeId> = list.iter().map(|&n| self.ids[n].clone()).collect();
        let (list, hash) = super::host::bootstrap(&ids);
        self.command(node, Command::SetBootstrap { list, hash });
        if self.hosts[node].process.is_live() {
            self.report_local(node);
        }
        self.check()
    }

    pub fn wipe(&mut self, node: usize) -> Result<(), Failure> {
        self.apply(Fault::Wipe(node))
    }

    /// SIGKILL, and `state_dir/election` is lost (the member set survives).
    pub fn lose_vote(&mut self, node: usize) -> Result<(), Failure> {
        self.apply(Fault::LoseVote(node))
    }

    /// SIGKILL, and `state_dir/members` is lost (the vote record survives).
    pub fn lose_members(&mut self, node: usize) -> Result<(), Failure> {
        self.apply(Fault::LoseMembers(node))
    }

    /// `quorate member force-new-cluster` typed on `node`: whether the core took it.
    pub fn force_new_cluster(&mut self, node: usize) -> Result<bool, Failure> {
        let now = self.now;
        let host = &mut self.hosts[node];
        let mut taken = false;
        if let Some(core) = host.core.as_mut() {
            core.handle_command(host.clock.now(now), Command::ForceNewCluster { req: 1 });
            while let Some(event) = core.poll_event() {
                if let quorate_agent::core::Event::MemberAnswer {
                    accepted, message, ..
                } = &event
                {
                    taken = *accepted;
                    self.trace
                        .line(now, format_args!("{}: {message}", self.ids[node]));
                }
            }
        }
        self.drain(node);
        self.check()?;
        Ok(taken)
    }

    pub fn freeze(&mut self, at: usize) -> Result<(), Failure> {
        self.apply(Fault::Freeze(at))
    }

    pub fn unfreeze(&mut self, at: usize) -> Result<(), Failure> {
        self.apply(Fault::Unfreeze(at))
    }

    /// The heal phase: every link up, no loss, every node running (stopped ones
    /// resumed, crashed ones restarted), undrained, and the cluster unfrozen.
    pub fn heal_all(&mut self) -> Result<(), Failure> {
        self.trace.line(self.now, format_args!("! heal everything"));
        self.net.heal();
        self.net.set_loss(0.0);
        for node in 0..self.hosts.len() {
            match self.hosts[node].process {
                Process::Paused | Process::Suspended => self.resume_process(node),
                Process::Leaving { .. } => {
                    self.finish_leaving(node);
                    self.start(node);
                }
                Process::Down => self.start(node),
                Process::Running => {}
            }
            self.set_drained(node, false);
        }
        // Newer than any freeze typed before: a wall clock a second ahead of everyone's.
        let version = self
            .hosts
            .iter()
            .map(|h| h.clock.wall(self.now).0)
            .max()
            .unwrap_or(0)
            + 1_000_000;
        for node in 0..self.hosts.len() {
            self.set_frozen(node, false, Some(version));
        }
        self.applied.push((self.now, Fault::Heal));
        self.connect_pairs();
        self.check()
    }

    /// Starts node `node` if it is down: a new incarnation with the hard state on disk.
    pub(super) fn start(&mut self, node: usize) {
        let now = self.now;
        let seed = self.rng.random();
        let listed: Vec<proto::NodeId> = self
            .config
            .list_of(node)
            .into_iter()
            .chain(std::iter::once(node))
            .map(|n| self.ids[n].clone())
            .collect();
        let (bootstrap, bootstrap_hash) = super::host::bootstrap(&listed);
        let timing = self.config.timing_of(node);
        let (preempt, fault) = (self.config.preempt, self.config.fault);
        let (tasks, task_return_delay) = (self.config.tasks.clone(), self.config.task_return_delay);
        let host = &mut self.hosts[node];
        if host.process != Process::Down {
            return;
        }
        host.incarnation += 1;
        host.started = now;
        host.clock.start(now);
        let config = CoreConfig {
            node: host.id.clone(),
            incarnation: proto::Incarnation(host.incarnation),
            mode: host.mode,
            priority: host.priority,
            advertise: host.advertise(),
            bootstrap,
            bootstrap_hash,
            timing,
            preempt,
            tasks,
            task_return_delay,
            fault,
        };
        let local = host.clock.now(now);
        let core = Node::new(config, local, seed, host.disk.clone());
        let vote_lost = !host.has_election && !host.disk.members.stamp.is_none();
        host.core = Some(if vote_lost {
            core.with_lost_vote(local, LostVote::Missing)
        } else {
            core
        });
        host.process = Process::Running;
        self.trace.line(
            now,
            format_args!(
                "{} starts, incarnation {}, disk {:?}",
                self.ids[node], host.incarnation, host.disk
            ),
        );
        self.report_local(node);
    }

    /// Tells the core its health (the probes' verdict) and state digest.
    pub(super) fn report_local(&mut self, node: usize) {
        let now = self.now;
        let host = &mut self.hosts[node];
        host.reported = host.core_state();
        let (health, digest) = (host.health(), host.node_state().digest());
        let local = host.clock.now(now);
        if let Some(core) = host.core.as_mut() {
            core.handle_local(local, health, LoadFigures::default(), digest);
        }
        self.drain(node);
    }

    fn pause_process(&mut self, node: usize, suspend: bool) {
        let now = self.now;
        let host = &mut self.hosts[node];
        if host.process != Process::Running {
            return;
        }
        if suspend {
            host.process = Process::Suspended;
            host.clock.stop(now);
        } else {
            host.process = Process::Paused;
        }
        host.timer_at = None;
    }

    fn resume_process(&mut self, node: usize) {
        let now = self.now;
        let host = &mut self.hosts[node];
        let suspended = match host.process {
            Process::Paused => false,
            Process::Suspended => true,
            _ => return,
        };
        host.process = Process::Running;
        if suspended {
            host.clock.start(now);
            if self.config.jump_guard
                && let Some(core) = host.core.as_mut()
            {
                // The agent's CLOCK_BOOTTIME guard, before anything else.
                core.handle_clock_jump(host.clock.now(now));
            }
        }
        self.drain(node);
        // The socket buffer, in arrival order (the driver takes inbound before timers).
        let stalled = std::mem::take(&mut self.hosts[node].stalled);
        for input in stalled {
            if let Err(v) = self.check_now() {
                self.found.get_or_insert(v);
                return;
            }
            self.feed(node, input);
        }
        self.report_local(node);
    }

    /// The checks of [`check`](Self::check) between the inputs of one resume.
    fn check_now(&mut self) -> Result<(), Violation> {
        if let Some(v) = self.found.take() {
            return Err(v);
        }
        match self.check() {
            Ok(()) => Ok(()),
            Err(f) => Err(f.violation),
        }
    }

    fn crash_process(&mut self, node: usize) {
        let host = &mut self.hosts[node];
        if host.process == Process::Down {
            return;
        }
        host.process = Process::Down;
        host.core = None;
        host.timer_at = None;
        host.stalled.clear();
        // A crashed VM is reset: its clock runs again.
        host.clock.start(self.now);
        self.agenda.drop_for(node);
        self.disconnect(node);
    }

    /// SIGTERM: the core hands over (if primary), and the process exits once another
    /// node is primary or after [`HANDOVER_WAIT`]; with `restart`, it starts again.
    fn stop_process(&mut self, node: usize, restart: bool) {
        let now = self.now;
        let host = &mut self.hosts[node];
        if host.process != Process::Running {
            return;
        }
        let Some(core) = host.core.as_mut() else {
            return;
        };
        let was_primary = core.lease().is_some();
        core.handle_command(host.clock.now(now), Command::Shutdown);
        host.process = Process::Leaving {
            deadline: if was_primary {
                now + HANDOVER_WAIT
            } else {
                now
            },
            restart,
        };
        self.drain(node);
    }

    /// A leaving node says goodbye and exits (and starts again if it was a restart).
    pub(super) fn finish_leaving(&mut self, node: usize) {
        let Process::Leaving { restart, .. } = self.hosts[node].process else {
            return;
        };
        if let Some(core) = self.hosts[node].core.as_ref() {
            let bye = core.goodbye();
            for to in 0..self.hosts.len() {
                if to != node
                    && self.connected[node * self.hosts.len() + to]
                    && let Some(transit) = self.net.transit(node, to, &mut self.rng)
                {
                    self.agenda.push(
                        self.now + transit,
                        to,
                        Input::Datagram {
                            from: node,
                            datagram: bye.clone(),
                        },
                    );
                }
            }
        }
        self.trace
            .line(self.now, format_args!("{} exits", self.ids[node]));
        self.crash_process(node);
        if restart {
            self.start(node);
            self.connect_pairs();
        }
    }

    fn set_drained(&mut self, node: usize, drained: bool) {
        let host = &mut self.hosts[node];
        if host.drained == drained {
            return;
        }
        host.drained = drained;
        // The probes run inside the agent: a stopped process learns it when it runs.
        if host.process.is_live() {
            self.report_local(node);
        }
    }

    fn member_op(&mut self, op: MemberOp) {
        let Some(at) = self.primary() else {
            self.trace
                .line(self.now, format_args!("  (no primary to take it)"));
            return;
        };
        let id = |n: usize| self.ids[n].clone();
        let addr = |n: usize| super::host::address(&self.ids[n]);
        let change = match op {
            MemberOp::Add { node, voter } => MemberChange::Add {
                node: id(node),
                addr: addr(node),
                voter,
            },
            MemberOp::Remove(node) => MemberChange::Remove { node: id(node) },
            MemberOp::Replace { old, new } => MemberChange::Replace {
                old: id(old),
                node: id(new),
                addr: addr(new),
            },
            MemberOp::Promote(node) => MemberChange::Promote { node: id(node) },
        };
        self.command(at, Command::Member { req: 0, change });
    }

    fn command(&mut self, node: usize, command: Command) {
        let now = self.now;
        let host = &mut self.hosts[node];
        if !host.process.is_live() {
            return;
        }
        if let Some(core) = host.core.as_mut() {
            core.handle_command(host.clock.now(now), command);
        }
        self.drain(node);
    }

    /// `quorate freeze`/`unfreeze` typed on `node`: the flag's version is that node's
    /// wall clock (as the driver does), unless given.
    fn set_frozen(&mut self, node: usize, frozen: bool, version: Option<u64>) {
        let version = version.unwrap_or_else(|| self.hosts[node].clock.wall(self.now).0);
        self.command(node, Command::Freeze(FreezeFlag { frozen, version }));
    }

    fn disconnect(&mut self, node: usize) {
        let size = self.hosts.len();
        for other in 0..size {
            self.connected[node * size + other] = false;
            self.connected[other * size + node] = false;
        }
    }

    /// Every pair of running nodes with both directions up, not yet connected in their
    /// current incarnations, connects: each side's core gets the other's hello.
    pub(super) fn connect_pairs(&mut self) {
        let size = self.hosts.len();
        for a in 0..size {
            for b in a + 1..size {
                let ready = !self.connected[a * size + b]
                    && self.hosts[a].process.is_live()
                    && self.hosts[b].process.is_live()
                    && self.net.connected(a, b);
                if !ready {
                    continue;
                }
                self.connected[a * size + b] = true;
                self.connected[b * size + a] = true;
                for (me, peer) in [(a, b), (b, a)] {
                    let hello = self.hosts[peer].hello(&self.cluster);
                    let host = &mut self.hosts[me];
                    let local = host.clock.now(self.now);
                    if let Some(core) = host.core.as_mut() {
                        core.handle_hello(local, &hello);
                    }
                    self.drain(me);
                }
            }
        }
    }
}
