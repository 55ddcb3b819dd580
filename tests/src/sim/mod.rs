//! The deterministic simulation of the election: N instances of the sans-IO core
//! (`quorate_agent::core::Node`) on a simulated network, in virtual time, driven by a seed.
//!
//! # What it models
//!
//! - **Time.** One global virtual clock (a [`Duration`] since the one base [`Instant`]
//!   read in [`base_instant`]). Each node has its own monotonic clock, which runs at
//!   its own rate (skew up to ±1000 ppm) from its own origin, and a wall clock (global
//!   time plus an offset) for heartbeat timestamps. Timers fire when the node's own
//!   clock reaches them.
//! - **Network.** Every directed link is up or cut (a symmetric partition cuts both
//!   directions, a one-way cut one) and loses datagrams with a probability (0–50 %);
//!   every datagram is delayed by `base + U(0, jitter)`, so jitter reorders. Deliveries
//!   are events in a priority queue keyed by (global time, sequence number). A
//!   connection (the hello exchange) needs both directions up and both processes
//!   running; datagrams only travel on a connection between the current incarnations.
//! - **Disk.** `poll_persist` starts a write that completes after a random delay; only
//!   then is it on disk and reported with `handle_persisted`. A crash loses what was
//!   not written yet.
//! - **Processes.** A node is running, paused (SIGSTOP: no inputs, sends nothing, its
//!   clock runs on; datagrams wait in the socket buffer), suspended (a VM suspend: the
//!   same, its monotonic clock stops and datagrams are lost; on resume the sim calls
//!   `handle_clock_jump` first, as the agent's CLOCK_BOOTTIME guard does), leaving
//!   (SIGTERM: hand over, then goodbye) or down (crashed: volatile state gone, in-flight
//!   datagrams to it dropped; a restart is a new incarnation that reads its disk and
//!   says hello to every peer it can reach).
//! - **Disks.** A crash may lose the whole `state_dir` (`wipe`), only the vote record
//!   (`lose-vote`: the agent then starts with `LostVote::Missing`, as its
//!   `persist::load_hard_state` reports it) or only the member set (`lose-members`).
//! - **Operators.** Drain/undrain (the eligibility bit), priority changes (applied live,
//!   as a reload does), `quorate transfer`, freeze/unfreeze.
//!
//! The fault verbs are [`Fault`]'s variants, and methods of [`Sim`] of the same names
//! (turmoil's and raft-rs's harness vocabulary).
//!
//! # Scenarios
//!
//! A seed ([`Scenario::random`]) picks a cluster (3 members half the time, 5 members
//! 30 %, 2 members and a witness 20 %), priorities, preemption, disk and link delays,
//! then 20–40 fault episodes at random times over 20–60 s of simulated time, most with
//! their repair some milliseconds to seconds later. Then the heal phase, and a settling
//! run of at least 3 s (longer than any `preempt_delay` plus 2 s). 30 % of the seeds
//! change their membership on the way; 15 % of the others grow a fleet: four more nodes
//! added as non-voters one at a time, one crashed and restarted, perhaps one promoted.
//!
//! # Invariants, checked after every step (delivery, timer, fault)
//!
//! 1. Never two nodes, among those running, whose lease holds
//!    (`lease::holds(node.lease(), its own now)`) at the same global instant. A paused
//!    or suspended node cannot answer `/primary`, so it is not counted while stopped —
//!    only from the moment it runs again.
//! 2. At most one node wins any term (`Event::BecamePrimary`).
//! 3. Only an eligible member wins a term; a witness never holds a lease.
//! 4. Liveness: after the final heal (every link up, no loss, every node running,
//!    undrained, unfrozen) some node holds the lease within [`LIVENESS_BOUND`] of
//!    simulated time (stretched by [`SimConfig::slowness`] where nodes run slower timing
//!    such as the lean preset), and exactly one holds it at the end of the run.
//! 5. Progress: a node's timer does not stay due while time stands still.
//! 6. Never two running nodes that hold a claim on the same task
//!    (`node.task_claim(name, its own now)`) at the same global instant; and after the
//!    final heal and settle, every task is claimed by exactly one node within
//!    [`TASK_LIVENESS_BOUND`] (stretched likewise).
//! 7. Preemption: a primary hands over by preemption only to a node it can have seen
//!    alive and eligible without a break for `preempt_delay` — not one whose process
//!    started, or was stopped, or whose link to or from the primary was cut for longer
//!    than twice an election timeout, within that delay (ground truth in `truth`).
//! 8. Fleet: a non-voter's own heartbeats (on its timer) go to no node its set names a
//!    non-voter (`Node::talks_to`).
//!
//! # Replaying a seed
//!
//! A failure prints the seed, the scenario (every fault with its time), the broken
//! invariant, the last steps, and the command that replays it with a full trace:
//!
//! ```text
//! QUORATE_SIM_SEED=1234 cargo test -p quorate-tests --test sim_election -- replay --nocapture
//! ```
//!
//! `QUORATE_SIM_TRACE=datagrams` adds every delivery to the trace;
//! `QUORATE_SIM_FAULT=ignore-lease-promise` (or `lease-never-expires`, `ignore-timing`,
//! `own-list-majority`, `keep-eligible-through-silence`, `task-promise-ignored`,
//! `forget-lost-vote`, `talk-to-everyone`) replays a seed
//! against the deliberately broken core. A seed that found a bug becomes a named test.
//!
//! CI runs `many_seeds` with the default count; the long run is
//!
//! ```text
//! QUORATE_SIM_SEEDS=100000 cargo test --release -p quorate-tests --test sim_election many_seeds
//! ```
//!
//! (`QUORATE_SIM_FIRST_SEED` moves the window; `QUORATE_SIM_THREADS` sets the threads.)
//!
//! # Modules
//!
//! - `harness`: [`Sim`], the step loop and the invariant checks;
//! - `verbs`: the fault verbs and process control (start, pause, crash, leave, hello);
//! - `host`: one machine — the core, its process state, disk, drain flag;
//! - `clock`: skewed monotonic clocks that stop on suspend, and wall clocks;
//! - `net`: directed links, loss, delay;
//! - `scenario`: [`Fault`] and the random [`Scenario`] of a seed;
//! - `truth`: when processes were stopped and links cut (the preemption invariant);
//! - `report`: [`Invariant`], [`Violation`], [`Failure`] and the trace.

mod clock;
mod harness;
mod host;
mod net;
mod report;
mod scenario;
mod truth;
mod verbs;

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use std::{env, fmt, thread};

use proto::NodeId;
use quorate_agent::core::InjectedFault;
use quorate_agent::core::tasks::{RunOn, TaskSpec};

pub use harness::{Sim, Win};
pub use host::Process;
pub use net::Delay;
pub use report::{Failure, Invariant, Violation};
pub use scenario::{Fault, MemberOp, Scenario, name as node_name};

/// After the final heal, a primary must hold the lease within this much simulated time.
pub const LIVENESS_BOUND: Duration = Duration::from_secs(2);

/// After the settle, every task must be claimed by exactly one node within this much
/// simulated time (a task moving back waits out a promise: 1.8 s at default timing).
pub const TASK_LIVENESS_BOUND: Duration = Duration::from_secs(8);

/// The simulation's one reading of the real monotonic clock: every node's clock is
/// `base + something virtual`. Only the differences matter, so runs stay deterministic.
#[allow(clippy::disallowed_methods)] // the sim needs one real Instant to build virtual ones on
pub fn base_instant() -> Instant {
    Instant::now()
}

/// How much a run prints as it goes (it always keeps the last lines for a failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum TraceLevel {
    #[default]
    Quiet,
    /// Faults, elections, lease changes.
    Events,
    /// And every datagram delivered.
    Datagrams,
}

impl TraceLevel {
    /// From `QUORATE_SIM_TRACE` (`1`/`events`, `2`/`datagrams`), else `default`.
    pub fn from_env_or(default: TraceLevel) -> TraceLevel {
        match env::var("QUORATE_SIM_TRACE").as_deref() {
            Ok("1" | "events") => TraceLevel::Events,
            Ok("2" | "datagrams") => TraceLevel::Datagrams,
            Ok("0" | "quiet") => TraceLevel::Quiet,
            _ => default,
        }
    }
}

/// The core's timing, as every node gets it unless `node_timing` says otherwise.
pub use quorate_agent::core::Timing;

/// The agent's default timing, from the one place it is written: its config.
pub fn default_timing() -> Timing {
    quorate_agent::config::Timing::default().core()
}

/// The operator guide's fast preset, as the agent's config defines it.
pub fn fast_preset() -> Timing {
    quorate_agent::config::Timing::fast_preset().core()
}

/// The operator guide's lean preset, as the agent's config defines it.
pub fn lean_preset() -> Timing {
    quorate_agent::config::Timing::lean_preset().core()
}

/// A simulated cluster: its shape, settings and the seed of everything random.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seeds the network, the disk, the clocks and every node's RNG.
    pub seed: u64,
    /// Member nodes (they may be primary): `n1` … `nM`.
    pub members: usize,
    /// One more voter, `n(M+1)`, in witness mode.
    pub witness: bool,
    /// Member hosts after those (and the witness), down at the start and in nobody's
    /// list: what `member add` and `member replace` bring in.
    pub spares: usize,
    /// Per node (by index), the nodes its `peers` file lists (itself included), when it
    /// is not every initial node: a stale or edited file. Read at each start.
    pub lists: Vec<(usize, Vec<usize>)>,
    /// Per node, witness included.
    pub priorities: Vec<u32>,
    /// `preempt_delay`, if preemption is on.
    pub preempt: Option<Duration>,
    /// Each node's clock rate error is drawn from ±this.
    pub max_skew_ppm: i32,
    /// Each node's wall clock is off by up to ±this.
    pub max_wall_offset: Duration,
    /// How long a hard-state write takes.
    pub persist_delay: Range<Duration>,
    pub delay: Delay,
    pub timing: Timing,
    /// Per node (by index), timing that differs from `timing`: nodes that read
    /// different `[timing]` from their files (a rolling edit).
    pub node_timing: Vec<(usize, Timing)>,
    /// The `[[task]]`s every node runs with (the task invariant checks their claims).
    pub tasks: Vec<TaskSpec>,
    /// A task moves back to a node its rule prefers once that node was fit this long.
    pub task_return_delay: Duration,
    /// A deliberately broken core, for the self-test.
    pub fault: Option<InjectedFault>,
    /// Call `handle_clock_jump` when a suspended node resumes (the agent does).
    pub jump_guard: bool,
    pub trace: TraceLevel,
}

impl SimConfig {
    /// `members` member nodes, default settings.
    pub fn members(members: usize) -> Self {
        Self {
            seed: 0,
            members,
            witness: false,
            spares: 0,
            lists: Vec::new(),
            priorities: vec![100; members],
            preempt: None,
            max_skew_ppm: 1000,
            max_wall_offset: Duration::from_millis(200),
            persist_delay: Duration::from_micros(200)..Duration::from_millis(2),
            delay: Delay::LAN,
            timing: default_timing(),
            node_timing: Vec::new(),
            tasks: default_tasks(members),
            task_return_delay: Duration::from_secs(1),
            fault: None,
            jump_guard: true,
            trace: TraceLevel::from_env_or(TraceLevel::Quiet),
        }
    }

    /// `members` member nodes plus a witness.
    pub fn members_and_witness(members: usize) -> Self {
        let mut config = Self::members(members);
        config.witness = true;
        config.priorities.push(0);
        config
    }

    /// `spares` more member hosts, down and unlisted (priority 100).
    pub fn with_spares(mut self, spares: usize) -> Self {
        self.spares += spares;
        self.priorities.extend(std::iter::repeat_n(100, spares));
        self
    }

    /// The nodes `node`'s `peers` file lists, itself included.
    pub fn list_of(&self, node: usize) -> Vec<usize> {
        self.lists
            .iter()
            .rev()
            .find(|(n, _)| *n == node)
            .map_or_else(|| (0..self.initial()).collect(), |(_, l)| l.clone())
    }

    /// The nodes that start with the cluster: members and the witness.
    pub fn initial(&self) -> usize {
        self.members + usize::from(self.witness)
    }

    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The timing `node` runs with.
    pub fn timing_of(&self, node: usize) -> Timing {
        self.node_timing
            .iter()
            .rev()
            .find(|(n, _)| *n == node)
            .map_or(self.timing, |(_, t)| *t)
    }

    /// How much longer than at the default timing things may take here: the longest
    /// election timeout any node runs with, over the default's (at least 1). The lean
    /// preset's nodes wait three times as long before they elect.
    pub fn slowness(&self) -> f64 {
        let default = default_timing().election_timeout.as_secs_f64();
        (0..self.size())
            .map(|n| self.timing_of(n).election_timeout.as_secs_f64() / default)
            .fold(1.0, f64::max)
    }

    /// Every host: members, the witness and the spares.
    pub fn size(&self) -> usize {
        self.initial() + self.spares
    }
}

impl fmt::Display for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} members", self.members)?;
        if self.witness {
            write!(f, " + witness {}", scenario::name(self.members))?;
        }
        if self.spares > 0 {
            write!(
                f,
                " + {} spare(s) from {}",
                self.spares,
                scenario::name(self.initial())
            )?;
        }
        for (node, list) in &self.lists {
            let names: Vec<String> = list.iter().map(|&n| scenario::name(n)).collect();
            write!(f, ", {} lists [{}]", scenario::name(*node), names.join(" "))?;
        }
        write!(f, ", priorities {:?}", self.priorities)?;
        match self.preempt {
            Some(d) => write!(f, ", preempt after {d:?}")?,
            None => f.write_str(", no preempt")?,
        }
        write!(
            f,
            ", delay {}, disk {:?}..{:?}",
            self.delay, self.persist_delay.start, self.persist_delay.end
        )?;
        for (node, t) in &self.node_timing {
            write!(
                f,
                ", {} with lease {:?} and election timeout {:?}",
                scenario::name(*node),
                t.lease,
                t.election_timeout
            )?;
        }
        if let Some(fault) = self.fault {
            write!(f, ", BROKEN CORE: {fault:?}")?;
        }
        if !self.jump_guard {
            f.write_str(", no clock-jump guard")?;
        }
        Ok(())
    }
}

/// The tasks a simulated cluster of `members` runs: one that prefers the last members
/// first (so its holder is often not the primary, whose links are fast) and one spread
/// by rendezvous hashing. (`run_on = "primary"` tasks are the primary lease's, which
/// invariant 1 checks.)
pub fn default_tasks(members: usize) -> Vec<TaskSpec> {
    let id = |i: usize| NodeId::new(scenario::name(i)).expect("n1…nN are valid node ids");
    vec![
        TaskSpec {
            name: "resolver".into(),
            // Spares added later (and still unnamed hosts) are listed too: after
            // membership changes the members may all be former spares.
            run_on: RunOn::Prefer((0..members + 8).rev().map(id).collect()),
        },
        TaskSpec {
            name: "indexer".into(),
            run_on: RunOn::Spread,
        },
    ]
}

/// The env value naming a broken core (`QUORATE_SIM_FAULT`).
pub fn fault_name(fault: InjectedFault) -> &'static str {
    match fault {
        InjectedFault::IgnoreLeasePromise => "ignore-lease-promise",
        InjectedFault::LeaseNeverExpires => "lease-never-expires",
        InjectedFault::IgnoreTiming => "ignore-timing",
        InjectedFault::OwnListMajority => "own-list-majority",
        InjectedFault::TaskPromiseIgnored => "task-promise-ignored",
        InjectedFault::KeepEligibleThroughSilence => "keep-eligible-through-silence",
        InjectedFault::ForgetLostVote => "forget-lost-vote",
        InjectedFault::TalkToEveryone => "talk-to-everyone",
    }
}

/// Parses [`fault_name`]'s output.
pub fn parse_fault(name: &str) -> Option<InjectedFault> {
    match name {
        "ignore-lease-promise" => Some(InjectedFault::IgnoreLeasePromise),
        "lease-never-expires" => Some(InjectedFault::LeaseNeverExpires),
        "ignore-timing" => Some(InjectedFault::IgnoreTiming),
        "own-list-majority" => Some(InjectedFault::OwnListMajority),
        "task-promise-ignored" => Some(InjectedFault::TaskPromiseIgnored),
        "keep-eligible-through-silence" => Some(InjectedFault::KeepEligibleThroughSilence),
        "forget-lost-vote" => Some(InjectedFault::ForgetLostVote),
        "talk-to-everyone" => Some(InjectedFault::TalkToEveryone),
        _ => None,
    }
}

/// The command that replays `seed` with a full trace.
pub fn replay_command(seed: u64, fault: Option<InjectedFault>) -> String {
    let fault = fault
        .map(|f| format!("QUORATE_SIM_FAULT={} ", fault_name(f)))
        .unwrap_or_default();
    format!(
        "QUORATE_SIM_SEED={seed} {fault}cargo test -p quorate-tests --test sim_election -- replay --nocapture"
    )
}

/// What one seed's run did.
#[derive(Debug, Clone, Copy)]
pub struct SeedRun {
    /// Deliveries, timers and faults stepped through.
    pub steps: u64,
    pub simulated: Duration,
}

/// Runs the scenario of `seed`: its faults, the heal, the settling run. Every step is
/// checked against the invariants.
pub fn run_seed(
    seed: u64,
    fault: Option<InjectedFault>,
    trace: TraceLevel,
) -> Result<SeedRun, Failure> {
    let scenario = Scenario::random(seed, fault);
    let mut config = scenario.config.clone();
    let slowness = config.slowness();
    config.trace = trace;
    if trace > TraceLevel::Quiet {
        println!("{scenario}\n");
    }
    let mut sim = Sim::new(config);
    sim.set_plan(scenario.to_string(), replay_command(seed, fault));
    for (at, fault) in &scenario.faults {
        sim.run_until(*at)?;
        sim.apply(fault.clone())?;
    }
    sim.run_until(scenario.heal_at)?;
    sim.heal_all()?;
    sim.await_primary(LIVENESS_BOUND.mul_f64(slowness))?;
    sim.run_until(scenario.heal_at + scenario.settle)?;
    sim.expect_one_holder()?;
    // A deliberately broken core is judged on safety alone.
    if fault.is_none() {
        sim.await_task_holders(TASK_LIVENESS_BOUND.mul_f64(slowness))?;
    }
    Ok(SeedRun {
        steps: sim.steps(),
        simulated: sim.now(),
    })
}

/// What a batch of seeds found.
#[derive(Debug, Default)]
pub struct Batch {
    /// Seeds run to the end or to a failure.
    pub seeds: u64,
    pub steps: u64,
    pub simulated: Duration,
    /// Sorted by seed.
    pub failures: Vec<Failure>,
}

/// Runs `seeds` on `threads` threads; with `stop_at_first`, stops every thread at the
/// first failure (the self-test), else runs them all and keeps every failure.
pub fn run_seeds(
    seeds: Range<u64>,
    threads: usize,
    fault: Option<InjectedFault>,
    stop_at_first: bool,
) -> Batch {
    let threads = threads.max(1) as u64;
    let stop = AtomicBool::new(false);
    let steps = AtomicU64::new(0);
    let simulated_ms = AtomicU64::new(0);
    let ran = AtomicU64::new(0);
    let mut failures: Vec<Failure> = thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|k| {
                let (seeds, stop, steps, simulated_ms, ran) =
                    (seeds.clone(), &stop, &steps, &simulated_ms, &ran);
                s.spawn(move || {
                    let mut failures = Vec::new();
                    for seed in seeds.skip(k as usize).step_by(threads as usize) {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        ran.fetch_add(1, Ordering::Relaxed);
                        match run_seed(seed, fault, TraceLevel::Quiet) {
                            Ok(run) => {
                                steps.fetch_add(run.steps, Ordering::Relaxed);
                                simulated_ms
                                    .fetch_add(run.simulated.as_millis() as u64, Ordering::Relaxed);
                            }
                            Err(failure) => {
                                failures.push(failure);
                                if stop_at_first {
                                    stop.store(true, Ordering::Relaxed);
                                }
                            }
                        }
                    }
                    failures
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    failures.sort_by_key(|f| f.seed);
    Batch {
        seeds: ran.into_inner(),
        steps: steps.into_inner(),
        simulated: Duration::from_millis(simulated_ms.into_inner()),
        failures,
    }
}
