//! [`Sim`]: the hosts, the network and the agenda of pending inputs, stepped in global
//! virtual time, and the invariant checks after every step. The fault verbs are in
//! `verbs.rs`.
//!
//! The loop (quinn-proto's `Pair::step`, turmoil's `Sim::step`): take the earliest of
//! (the next queued input, the earliest node timer, a leaving node's deadline), advance
//! global time to it, hand it to the node, drain every `poll_*` of that node in the
//! driver's order (persist, transmit, fetch, event), re-arm its timer, check.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use proto::{ClusterName, Datagram, Mode, NodeId, Term};
use quorate_agent::core::lease::Lease;
use quorate_agent::core::{Event, Node, TransferReason};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::clock::NodeClock;
use super::host::{Host, Input, Process};
use super::net::Network;
use super::report::{Failure, Invariant, Trace, Violation, secs};
use super::scenario::{Fault, name};
use super::truth::Truth;
use super::{SimConfig, TraceLevel};

/// Steps at one instant after which a node is taken to be spinning.
const STUCK_STEPS: u32 = 10_000;

/// An input due at a global instant; ordered by (time, sequence number) only.
#[derive(Debug)]
struct Queued {
    at: Duration,
    seq: u64,
    to: usize,
    input: Input,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Queued {}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Queued {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Inputs in flight (datagrams, disk writes, state fetches), earliest first; ties in
/// the order they were queued.
#[derive(Debug, Default)]
pub(super) struct Agenda {
    heap: BinaryHeap<Reverse<Queued>>,
    next_seq: u64,
}

impl Agenda {
    pub(super) fn push(&mut self, at: Duration, to: usize, input: Input) {
        self.next_seq += 1;
        self.heap.push(Reverse(Queued {
            at,
            seq: self.next_seq,
            to,
            input,
        }));
    }

    fn next_at(&self) -> Option<Duration> {
        self.heap.peek().map(|q| q.0.at)
    }

    fn pop(&mut self) -> Option<Queued> {
        self.heap.pop().map(|q| q.0)
    }

    /// Drops everything bound for `node` (it crashed: its sockets are gone).
    pub(super) fn drop_for(&mut self, node: usize) {
        self.heap.retain(|q| q.0.to != node);
    }
}

/// What happens next.
#[derive(Debug, Clone, Copy)]
enum Next {
    Input,
    Timer(usize),
    Leave(usize),
}

/// A term won.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Win {
    pub at: Duration,
    pub node: usize,
    pub term: Term,
}

/// A simulated cluster of core nodes. See the [module docs](super) for the model.
pub struct Sim {
    pub(super) config: SimConfig,
    pub(super) cluster: ClusterName,
    pub(super) rng: SmallRng,
    pub(super) now: Duration,
    pub(super) hosts: Vec<Host>,
    /// `hosts[i].id`, apart so it can be borrowed while a host is.
    pub(super) ids: Vec<NodeId>,
    pub(super) net: Network,
    pub(super) agenda: Agenda,
    /// `connected[a * size + b]`: a connection between the current incarnations of `a`
    /// and `b` exists (both said hello). Symmetric.
    pub(super) connected: Vec<bool>,
    /// Who won which term.
    pub(super) winners: BTreeMap<Term, usize>,
    pub(super) wins: Vec<Win>,
    /// Nodes holding the lease after the last step (to trace changes).
    pub(super) holders: Vec<usize>,
    /// Per task, the nodes claiming it after the last step, a bit each (to trace
    /// changes).
    pub(super) task_holders: Vec<u64>,
    /// Faults applied so far.
    pub(super) applied: Vec<(Duration, Fault)>,
    /// A violation found while draining a node, reported by the next check.
    pub(super) found: Option<Violation>,
    /// The node draining now was woken by its timer (its own heartbeats, not answers).
    pub(super) timer_drain: bool,
    pub(super) trace: Trace,
    pub(super) steps: u64,
    pub(super) steps_at_now: u32,
    /// The whole scenario and its replay command, for a random run's failure report.
    pub(super) plan: Option<(String, String)>,
    /// When processes were stopped and links cut, for the preemption invariant.
    pub(super) truth: Truth,
}

impl Sim {
    /// A cluster whose nodes all start at global time zero (a cold start).
    pub fn new(config: SimConfig) -> Self {
        let mut sim = Self::new_down(config);
        for node in 0..sim.config.initial() {
            sim.start(node);
        }
        sim.connect_pairs();
        sim
    }

    /// A cluster whose nodes are all down; start them with [`restart`](Self::restart).
    pub fn new_down(config: SimConfig) -> Self {
        let size = config.size();
        assert_eq!(
            config.priorities.len(),
            size,
            "one priority per node, witness included"
        );
        let mut rng = SmallRng::seed_from_u64(config.seed ^ 0x5157_u64.rotate_left(40));
        let base = super::base_instant();
        let hosts: Vec<Host> = (0..size)
            .map(|i| {
                let id = NodeId::new(name(i)).expect("n1…nN are valid node ids");
                let mode = if config.witness && i == config.members {
                    Mode::Witness
                } else {
                    Mode::Member
                };
                // Unrelated origins: machines booted at different times.
                let start = Duration::from_millis(rng.random_range(0..3_600_000));
                let skew = rng.random_range(-config.max_skew_ppm..=config.max_skew_ppm);
                let max_offset = config.max_wall_offset.as_micros() as i64;
                let offset = rng.random_range(-max_offset..=max_offset);
                let clock = NodeClock::new(base, start, skew, offset);
                Host::new(id, mode, config.priorities[i], clock)
            })
            .collect();
        Self {
            cluster: ClusterName::new("sim").expect("a valid cluster name"),
            ids: hosts.iter().map(|h| h.id.clone()).collect(),
            net: Network::new(size, config.delay),
            agenda: Agenda::default(),
            connected: vec![false; size * size],
            winners: BTreeMap::new(),
            wins: Vec::new(),
            holders: Vec::new(),
            task_holders: vec![0; config.tasks.len()],
            applied: Vec::new(),
            found: None,
            timer_drain: false,
            trace: Trace::new(config.trace),
            steps: 0,
            steps_at_now: 0,
            plan: None,
            truth: Truth::new(
                size,
                config
                    .timing
                    .election_timeout
                    .min(Duration::from_millis(200)),
            ),
            now: Duration::ZERO,
            rng,
            hosts,
            config,
        }
    }

    /// The scenario text and replay command a failure report shows.
    pub fn set_plan(&mut self, scenario: String, replay: String) {
        self.plan = Some((scenario, replay));
    }

    // ---- queries --------------------------------------------------------------------

    /// Global virtual time.
    pub fn now(&self) -> Duration {
        self.now
    }

    pub fn steps(&self) -> u64 {
        self.steps
    }

    pub fn size(&self) -> usize {
        self.hosts.len()
    }

    /// The node's core, unless it is down.
    pub fn node(&self, node: usize) -> Option<&Node> {
        self.hosts[node].core.as_ref()
    }

    pub fn process(&self, node: usize) -> Process {
        self.hosts[node].process
    }

    /// Node `node`'s monotonic clock now.
    pub fn local_now(&self, node: usize) -> Instant {
        self.hosts[node].clock.now(self.now)
    }

    /// The lease `node` holds now, if it holds one (whatever its process state).
    pub fn lease_of(&self, node: usize) -> Option<Lease> {
        self.hosts[node].lease_held(self.now)
    }

    /// The running nodes that hold the lease now.
    pub fn lease_holders(&self) -> Vec<usize> {
        (0..self.hosts.len())
            .filter(|&i| self.hosts[i].process.is_live() && self.lease_of(i).is_some())
            .collect()
    }

    /// The one running node that holds the lease now, if exactly one does.
    pub fn primary(&self) -> Option<usize> {
        match self.lease_holders()[..] {
            [one] => Some(one),
            _ => None,
        }
    }

    /// Every term won so far, in order.
    pub fn wins(&self) -> &[Win] {
        &self.wins
    }

    /// The node's index by id.
    pub fn index_of(&self, id: &NodeId) -> Option<usize> {
        self.ids.iter().position(|i| i == id)
    }

    // ---- running --------------------------------------------------------------------

    /// Runs until global time `until`.
    pub fn run_until(&mut self, until: Duration) -> Result<(), Failure> {
        while self.step(until)? {}
        Ok(())
    }

    /// Runs for `d` of global time.
    pub fn run_for(&mut self, d: Duration) -> Result<(), Failure> {
        self.run_until(self.now + d)
    }

    /// Runs until `done(self)` holds (checked after every step) or `within` has passed;
    /// says whether it held.
    pub fn run_until_true(
        &mut self,
        within: Duration,
        mut done: impl FnMut(&Sim) -> bool,
    ) -> Result<bool, Failure> {
        let until = self.now + within;
        loop {
            if done(self) {
                return Ok(true);
            }
            if !self.step(until)? {
                return Ok(done(self));
            }
        }
    }

    /// Runs until a node holds the lease; a liveness violation if none does within
    /// `within`. Returns the holder.
    pub fn await_primary(&mut self, within: Duration) -> Result<usize, Failure> {
        let since = self.now;
        if self.run_until_true(within, |sim| sim.primary().is_some())? {
            return Ok(self.primary().expect("checked just now"));
        }
        Err(self.fail(
            Invariant::Liveness,
            format!(
                "no node holds the lease {} after {} ({})",
                secs(within),
                secs(since),
                self.describe_roles()
            ),
        ))
    }

    /// The running nodes that claim task number `task` (in `config.tasks`) now.
    pub fn task_holders(&self, task: usize) -> Vec<usize> {
        let mask = self.task_claim_mask(task);
        (0..self.hosts.len())
            .filter(|&i| mask & (1 << i) != 0)
            .collect()
    }

    /// [`task_holders`](Self::task_holders) as a bit per node.
    fn task_claim_mask(&self, task: usize) -> u64 {
        let name = &self.config.tasks[task].name;
        let mut mask = 0;
        for (i, h) in self.hosts.iter().enumerate() {
            if h.process.is_live()
                && h.core
                    .as_ref()
                    .is_some_and(|c| c.task_claim(name, h.clock.now(self.now)).is_some())
            {
                mask |= 1 << i;
            }
        }
        mask
    }

    /// Runs until every task is claimed by exactly one node; a liveness violation if
    /// that does not happen within `within`.
    pub fn await_task_holders(&mut self, within: Duration) -> Result<(), Failure> {
        let tasks = self.config.tasks.len();
        let all_held = |sim: &Sim| (0..tasks).all(|t| sim.task_holders(t).len() == 1);
        if self.run_until_true(within, all_held)? {
            return Ok(());
        }
        let detail = (0..tasks)
            .map(|t| {
                let names: Vec<&str> = self
                    .task_holders(t)
                    .iter()
                    .map(|&i| self.ids[i].as_str())
                    .collect();
                format!("{}: {names:?}", self.config.tasks[t].name)
            })
            .collect::<Vec<_>>()
            .join(", ");
        Err(self.fail(
            Invariant::TaskLiveness,
            format!("tasks not held by one node each {}: {detail}", secs(within)),
        ))
    }

    /// Exactly one node holds the lease now (the end of a run).
    pub fn expect_one_holder(&mut self) -> Result<usize, Failure> {
        match self.primary() {
            Some(p) => Ok(p),
            None => {
                let detail = format!(
                    "{} nodes hold the lease at the end ({})",
                    self.lease_holders().len(),
                    self.describe_roles()
                );
                Err(self.fail(Invariant::Liveness, detail))
            }
        }
    }

    /// One step no later than `limit`: `false` (and time moved to `limit`) if nothing
    /// was due by then.
    pub fn step(&mut self, limit: Duration) -> Result<bool, Failure> {
        let mut next: Option<(Duration, Next)> = self.agenda.next_at().map(|t| (t, Next::Input));
        for (i, host) in self.hosts.iter().enumerate() {
            let candidates = [
                host.timer_at.map(|t| (t, Next::Timer(i))),
                match host.process {
                    Process::Leaving { deadline, .. } => Some((deadline, Next::Leave(i))),
                    _ => None,
                },
            ];
            for c in candidates.into_iter().flatten() {
                if next.is_none_or(|n| c.0 < n.0) {
                    next = Some(c);
                }
            }
        }
        let Some((at, what)) = next.filter(|n| n.0 <= limit) else {
            self.now = self.now.max(limit);
            return Ok(false);
        };
        if at == self.now {
            self.steps_at_now += 1;
            if self.steps_at_now > STUCK_STEPS {
                let who = match what {
                    Next::Timer(i) | Next::Leave(i) => name(i),
                    Next::Input => "the network".into(),
                };
                return Err(self.fail(
                    Invariant::Progress,
                    format!("{STUCK_STEPS} steps without time moving on; next is {who}"),
                ));
            }
        } else {
            self.steps_at_now = 0;
        }
        self.now = at;
        self.steps += 1;
        match what {
            Next::Input => {
                let q = self.agenda.pop().expect("peeked");
                self.arrive(q.to, q.input);
            }
            Next::Timer(i) => self.fire_timer(i),
            Next::Leave(i) => self.finish_leaving(i),
        }
        self.check()?;
        Ok(true)
    }

    fn arrive(&mut self, to: usize, input: Input) {
        let host = &mut self.hosts[to];
        match host.process {
            Process::Down => {}
            Process::Paused => {
                // The kernel finishes the write; the process hears of it when it runs.
                if let Input::Persisted { hs, vote } = &input {
                    host.write(hs, *vote);
                }
                host.stalled.push(input);
            }
            Process::Suspended => match input {
                // The VM's network is gone while it sleeps.
                Input::Datagram { .. } => {}
                other => host.stalled.push(other),
            },
            Process::Running | Process::Leaving { .. } => self.feed(to, input),
        }
    }

    /// Hands `input` to node `to`'s core and drains it.
    pub(super) fn feed(&mut self, to: usize, input: Input) {
        let target_state = match &input {
            Input::Fetched { target } => (self.hosts[*target].process.is_live()
                && self.net.connected(to, *target))
            .then(|| self.hosts[*target].node_state()),
            _ => None,
        };
        let now = self.now;
        let host = &mut self.hosts[to];
        let (local, wall) = (host.clock.now(now), host.clock.wall(now));
        let Some(core) = host.core.as_mut() else {
            return;
        };
        match input {
            Input::Datagram { from, datagram } => {
                if self.trace.level() >= TraceLevel::Datagrams {
                    self.trace.line(
                        now,
                        format_args!("{} <- {}: {datagram:?}", self.ids[to], self.ids[from]),
                    );
                }
                core.handle_datagram(local, wall, &self.ids[from], datagram);
            }
            Input::Persisted { hs, vote } => {
                // As `Host::write` (the core is borrowed from the host).
                host.disk.members = hs.members.clone();
                if vote {
                    host.disk.term = hs.term;
                    host.disk.voted_for = hs.voted_for.clone();
                    host.has_election = true;
                }
                core.handle_persisted(local, hs);
            }
            Input::Fetched { target } => match target_state {
                Some(state) => core.handle_state(&self.ids[target], state),
                None => core.handle_fetch_failed(&self.ids[target]),
            },
        }
        self.drain(to);
    }

    fn fire_timer(&mut self, node: usize) {
        let now = self.now;
        let host = &mut self.hosts[node];
        if let Some(core) = host.core.as_mut() {
            core.handle_timeout(host.clock.now(now), host.clock.wall(now));
        }
        self.timer_drain = true;
        self.drain(node);
        self.timer_drain = false;
    }

    /// Drains every output of `node` in the driver's order, then re-arms its timer.
    pub(super) fn drain(&mut self, node: usize) {
        let now = self.now;
        let host = &mut self.hosts[node];
        let Some(core) = host.core.as_mut() else {
            host.timer_at = None;
            return;
        };
        while let Some(hs) = core.poll_persist() {
            let vote = core.records_vote();
            let write = if self.config.persist_delay.is_empty() {
                self.config.persist_delay.start
            } else {
                self.rng.random_range(self.config.persist_delay.clone())
            };
            self.agenda
                .push(now + write, node, Input::Persisted { hs, vote });
        }
        while let Some(t) = core.poll_transmit() {
            let Some(to) = self.ids.iter().position(|id| *id == t.to) else {
                continue;
            };
            if self.timer_drain
                && matches!(t.datagram, Datagram::Heartbeat(_))
                && let Some(why) = non_voters_talking(core, &t.to)
            {
                self.found.get_or_insert(Violation {
                    at: now,
                    invariant: Invariant::FleetHeartbeats,
                    detail: format!("{} heartbeats {}: {why}", self.ids[node], t.to),
                });
            }
            // Datagrams travel on a connection between the current incarnations only.
            if !self.connected[node * self.ids.len() + to] {
                continue;
            }
            if let Some(transit) = self.net.transit(node, to, &mut self.rng) {
                self.agenda.push(
                    now + transit,
                    to,
                    Input::Datagram {
                        from: node,
                        datagram: t.datagram,
                    },
                );
            }
        }
        while let Some(target) = core.poll_fetch() {
            let Some(target) = self.ids.iter().position(|id| *id == target) else {
                continue;
            };
            let rtt = self
                .net
                .round_trip(node, target, &mut self.rng)
                .unwrap_or(Duration::from_millis(1));
            self.agenda.push(now + rtt, node, Input::Fetched { target });
        }
        let mut preempted = None;
        while let Some(event) = core.poll_event() {
            if let Event::TransferStarted {
                to,
                reason: TransferReason::Preempt,
                ..
            } = &event
            {
                preempted = self.ids.iter().position(|id| id == to);
            }
            if let Event::BecamePrimary { term } = event {
                self.wins.push(Win {
                    at: now,
                    node,
                    term,
                });
                if !core.eligible() || host.mode != Mode::Member {
                    self.found.get_or_insert(Violation {
                        at: now,
                        invariant: Invariant::OnlyEligibleLead,
                        detail: format!(
                            "{} won term {term} while not eligible ({:?}, drained: {})",
                            self.ids[node], host.mode, host.drained
                        ),
                    });
                }
                if let Some(&first) = self.winners.get(&term)
                    && first != node
                {
                    self.found.get_or_insert(Violation {
                        at: now,
                        invariant: Invariant::OneWinnerPerTerm,
                        detail: format!(
                            "{} won term {term}, which {} had already won",
                            self.ids[node], self.ids[first]
                        ),
                    });
                }
                self.winners.entry(term).or_insert(node);
            }
            if self.trace.level() >= TraceLevel::Events || is_election_event(&event) {
                self.trace.line(
                    now,
                    format_args!("{}: {}", self.ids[node], describe(&event)),
                );
            }
        }
        host.timer_at = core
            .poll_timeout()
            .and_then(|t| host.clock.global_at(t, now));
        if let Process::Leaving { .. } = host.process
            && core.primary().is_some_and(|p| *p != self.ids[node])
        {
            // Handed over: the driver stops waiting at once.
            host.process = Process::Leaving {
                deadline: now,
                restart: matches!(host.process, Process::Leaving { restart: true, .. }),
            };
        }
        if host.core_state() != host.reported {
            // Its state changed: the driver publishes the new digest at once.
            self.report_local(node);
        }
        if let Some(target) = preempted {
            self.check_preemption(node, target);
        }
    }

    /// Invariant 6: `primary` hands over by preemption only to a node it can have seen
    /// alive and eligible, without a break, for `preempt_delay`: not one that started, or
    /// was stopped or cut off from it (either way) for longer than its failure to hear
    /// could go unnoticed, within that delay. (The margins cover clock skew, link jitter
    /// and a few heartbeats lost to link loss, so only a real early preemption fails.)
    fn check_preemption(&mut self, primary: usize, target: usize) {
        let Some(delay) = self.config.preempt else {
            return;
        };
        let now = self.now;
        let after = now.saturating_sub(delay) + Duration::from_millis(10);
        let gap = self.config.timing_of(primary).election_timeout * 2 + Duration::from_millis(100);
        let started = self.hosts[target].started;
        let why = if started > after {
            Some(format!("{} started at {}", self.ids[target], secs(started)))
        } else {
            self.truth.disrupted(now, primary, target, after, gap)
        };
        if let Some(why) = why {
            self.found.get_or_insert(Violation {
                at: now,
                invariant: Invariant::PreemptAfterDelay,
                detail: format!(
                    "{} preempted in favour of {}, but {why}: not seen alive for preempt_delay ({delay:?})",
                    self.ids[primary], self.ids[target]
                ),
            });
        }
    }

    /// After every step: the invariants.
    pub(super) fn check(&mut self) -> Result<(), Failure> {
        let (hosts, net) = (&self.hosts, &self.net);
        self.truth.observe(
            self.now,
            |n| hosts[n].process == Process::Running,
            |a, b| net.up(a, b),
        );
        if let Some(v) = self.found.take() {
            return Err(self.failure(v));
        }
        let mut holders: Vec<(usize, Lease)> = Vec::new();
        for (i, host) in self.hosts.iter().enumerate() {
            if let Some(lease) = host.lease_held(self.now) {
                if host.mode == Mode::Witness {
                    let detail = format!("witness {} holds a lease", self.ids[i]);
                    return Err(self.fail(Invariant::OnlyEligibleLead, detail));
                }
                // A stopped process cannot answer `/primary`: it counts once it runs.
                if host.process.is_live() {
                    holders.push((i, lease));
                }
            }
        }
        if holders.len() > 1 {
            let detail = holders
                .iter()
                .map(|(i, l)| {
                    let left = l.until - self.hosts[*i].clock.now(self.now);
                    format!("{} (term {}, {left:?} left)", self.ids[*i], l.term)
                })
                .collect::<Vec<_>>()
                .join(" and ");
            return Err(self.fail(Invariant::OneLeaseHolder, format!("both hold: {detail}")));
        }
        if holders.len() != self.holders.len()
            || holders.iter().zip(&self.holders).any(|(a, b)| a.0 != *b)
        {
            self.holders = holders.iter().map(|h| h.0).collect();
            match holders.first() {
                Some((i, l)) => self.trace.line(
                    self.now,
                    format_args!("lease: {} holds it (term {})", self.ids[*i], l.term),
                ),
                None => self
                    .trace
                    .line(self.now, format_args!("lease: nobody holds it")),
            }
        }
        for t in 0..self.config.tasks.len() {
            // A bit per node: this runs after every step, so it must not allocate.
            let claims = self.task_claim_mask(t);
            if claims.count_ones() > 1 {
                let name = self.config.tasks[t].name.clone();
                let detail = self
                    .task_holders(t)
                    .iter()
                    .map(|&i| {
                        let h = &self.hosts[i];
                        let now = h.clock.now(self.now);
                        let left = h
                            .core
                            .as_ref()
                            .and_then(|c| c.task_claim(&name, now))
                            .map(|c| c.until - now);
                        format!("{} ({left:?} left)", self.ids[i])
                    })
                    .collect::<Vec<_>>()
                    .join(" and ");
                return Err(self.fail(
                    Invariant::OneTaskHolder,
                    format!("task {name}: both claim it: {detail}"),
                ));
            }
            if claims != self.task_holders[t] {
                self.task_holders[t] = claims;
                let names: Vec<&str> = self
                    .task_holders(t)
                    .iter()
                    .map(|&i| self.ids[i].as_str())
                    .collect();
                self.trace.line(
                    self.now,
                    format_args!("task {}: claimed by {names:?}", self.config.tasks[t].name),
                );
            }
        }
        Ok(())
    }

    pub(super) fn fail(&mut self, invariant: Invariant, detail: String) -> Failure {
        self.failure(Violation {
            at: self.now,
            invariant,
            detail,
        })
    }

    pub(super) fn failure(&self, violation: Violation) -> Failure {
        let mut r = String::new();
        let _ = writeln!(r, "\nSIMULATION FAILED: {violation}\n");
        match &self.plan {
            Some((scenario, _)) => {
                let _ = writeln!(r, "{scenario}\n");
            }
            None => {
                let _ = writeln!(r, "cluster: {}", self.config);
                let _ = writeln!(r, "faults applied:");
                for (at, fault) in &self.applied {
                    let _ = writeln!(r, "  {:>9}  {fault}", secs(*at));
                }
                let _ = writeln!(r);
            }
        }
        let _ = writeln!(r, "last steps:");
        for line in self.trace.tail() {
            let _ = writeln!(r, "  {line}");
        }
        let _ = writeln!(r, "\nroles now: {}", self.describe_roles());
        match &self.plan {
            Some((_, replay)) => {
                let _ = writeln!(r, "replay: {replay}");
            }
            None => {
                let _ = writeln!(
                    r,
                    "replay: run this test again with QUORATE_SIM_TRACE=1 and --nocapture"
                );
            }
        }
        Failure::new(violation, self.plan.as_ref().map(|_| self.config.seed), r)
    }

    /// Every node's process, term and role, for reports.
    fn describe_roles(&self) -> String {
        self.hosts
            .iter()
            .map(|h| match &h.core {
                Some(core) => format!(
                    "{} {:?} term {} {}{}",
                    h.id,
                    h.process,
                    core.term(),
                    core.role_name(h.clock.now(self.now)),
                    if h.drained { " drained" } else { "" }
                ),
                None => format!("{} down", h.id),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Events worth a line in every report (the rest only when tracing).
fn is_election_event(event: &Event) -> bool {
    matches!(
        event,
        Event::ElectionStarted { .. }
            | Event::BecamePrimary { .. }
            | Event::SteppedDown { .. }
            | Event::TransferStarted { .. }
            | Event::SplitBrainSuspected { .. }
    )
}

fn describe(event: &Event) -> String {
    match event {
        Event::ElectionStarted { term, transfer } => {
            format!(
                "campaigns for term {term}{}",
                if *transfer { " (transfer)" } else { "" }
            )
        }
        Event::BecamePrimary { term } => format!("BECAME PRIMARY of term {term}"),
        Event::SteppedDown { term, reason } => format!("steps down from term {term}: {reason}"),
        Event::TransferStarted { to, term, reason } => {
            format!("hands over term {term} to {to} ({})", reason.as_str())
        }
        other => format!("{other:?}"),
    }
}

/// Invariant 8: why a heartbeat `core` sends on its own timer to `to` breaks the fleet
/// rule, if it does: the set it holds names both as non-voters (answers to a primary's
/// heartbeat are not asked about: a stale set may name the primary a non-voter).
fn non_voters_talking(core: &Node, to: &NodeId) -> Option<String> {
    let set = core.agreed();
    if set.stamp.is_none() {
        return None;
    }
    let me = set.slot(core.id(), &core.config().advertise)?;
    let addr = &core.member(to)?.addr;
    let them = set.slot(to, addr)?;
    (!me.voter && !them.voter)
        .then(|| format!("the set {} it holds names both non-voters", set.stamp))
}
