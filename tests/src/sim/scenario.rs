//! Fault verbs ([`Fault`]) and the random [`Scenario`] a seed stands for.
//!
//! A scenario is a pure function of its seed: the cluster's shape and settings, a list of
//! timed faults, then a heal phase. Nodes are numbered from 0 and named `n1`, `n2`, …
//! in everything printed.

use std::fmt;
use std::ops::Range;
use std::time::Duration;

use quorate_agent::core::InjectedFault;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::SimConfig;
use super::net::Delay;

/// A node's printed name: `n1` for node 0.
pub fn name(node: usize) -> String {
    format!("n{}", node + 1)
}

/// One fault, or the repair of one. Verbs that do not apply (resuming a running node,
/// restarting one that is up) do nothing.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Nodes talk only within their group.
    Partition(Vec<Vec<usize>>),
    /// Both directions between two nodes.
    Cut(usize, usize),
    /// `from`'s datagrams no longer reach `to`; the other way still works.
    CutOneWay {
        from: usize,
        to: usize,
    },
    /// Both directions between two nodes work again.
    Repair(usize, usize),
    /// Every link works again (loss and delay stay).
    Heal,
    /// Datagram loss on every link, 0–0.5.
    Loss(f64),
    Delay(Delay),
    /// SIGSTOP.
    Pause(usize),
    /// VM suspend: paused, and its monotonic clock stops.
    Suspend(usize),
    /// SIGCONT, or VM resume.
    Resume(usize),
    /// SIGKILL: volatile state and unwritten hard state are lost.
    Crash(usize),
    /// SIGTERM: hand over, say goodbye, exit.
    Stop(usize),
    /// Start a node that is down, with its disk.
    Restart(usize),
    /// An operator drains the node (or its app check fails): not eligible.
    Drain(usize),
    Undrain(usize),
    /// Edit the node's priority and reload it (SIGHUP): the running agent takes it.
    SetPriority(usize, u32),
    /// `quorate transfer [to]`, typed on node `at`.
    Transfer {
        at: usize,
        to: Option<usize>,
    },
    /// `quorate freeze`, typed on node `at`.
    Freeze(usize),
    Unfreeze(usize),
    /// `quorate member …`, typed on the node that holds the primary lease (nothing
    /// happens without one; the core refuses what it cannot do safely now).
    Member(MemberOp),
    /// Edit the node's `peers` file to list these nodes (itself included); read at its
    /// next start.
    Relist(usize, Vec<usize>),
    /// SIGKILL, and the node's `state_dir` is lost (a new disk).
    Wipe(usize),
    /// SIGKILL, and only `state_dir/election` (the vote record) is lost.
    LoseVote(usize),
    /// SIGKILL, and only `state_dir/members` is lost.
    LoseMembers(usize),
}

/// A change to the agreed member set, by node index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberOp {
    Add { node: usize, voter: bool },
    Remove(usize),
    Replace { old: usize, new: usize },
    Promote(usize),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Partition(groups) => {
                let groups: Vec<String> = groups
                    .iter()
                    .map(|g| g.iter().map(|&n| name(n)).collect::<Vec<_>>().join(" "))
                    .collect();
                write!(f, "partition [{}]", groups.join("] | ["))
            }
            Fault::Cut(a, b) => write!(f, "cut {} <-> {}", name(*a), name(*b)),
            Fault::CutOneWay { from, to } => write!(f, "cut {} --> {}", name(*from), name(*to)),
            Fault::Repair(a, b) => write!(f, "repair {} <-> {}", name(*a), name(*b)),
            Fault::Heal => f.write_str("heal"),
            Fault::Loss(p) => write!(f, "loss {:.0}%", p * 100.0),
            Fault::Delay(d) => write!(f, "delay {d}"),
            Fault::Pause(n) => write!(f, "pause {}", name(*n)),
            Fault::Suspend(n) => write!(f, "suspend {}", name(*n)),
            Fault::Resume(n) => write!(f, "resume {}", name(*n)),
            Fault::Crash(n) => write!(f, "crash {}", name(*n)),
            Fault::Stop(n) => write!(f, "stop {}", name(*n)),
            Fault::Restart(n) => write!(f, "restart {}", name(*n)),
            Fault::Drain(n) => write!(f, "drain {}", name(*n)),
            Fault::Undrain(n) => write!(f, "undrain {}", name(*n)),
            Fault::SetPriority(n, p) => write!(f, "set-priority {} {p}", name(*n)),
            Fault::Transfer { at, to } => match to {
                Some(to) => write!(f, "transfer to {} (typed on {})", name(*to), name(*at)),
                None => write!(f, "transfer (typed on {})", name(*at)),
            },
            Fault::Freeze(n) => write!(f, "freeze (typed on {})", name(*n)),
            Fault::Member(MemberOp::Add { node, voter }) => write!(
                f,
                "member add {}{}",
                name(*node),
                if *voter { "" } else { " --non-voter" }
            ),
            Fault::Member(MemberOp::Remove(n)) => write!(f, "member remove {}", name(*n)),
            Fault::Member(MemberOp::Replace { old, new }) => {
                write!(f, "member replace {} {}", name(*old), name(*new))
            }
            Fault::Member(MemberOp::Promote(n)) => write!(f, "member promote {}", name(*n)),
            Fault::Relist(n, list) => {
                let names: Vec<String> = list.iter().map(|&n| name(n)).collect();
                write!(f, "relist {}: peers [{}]", name(*n), names.join(" "))
            }
            Fault::Wipe(n) => write!(f, "wipe {} (crash, state_dir lost)", name(*n)),
            Fault::LoseVote(n) => write!(f, "lose-vote {} (crash, election file lost)", name(*n)),
            Fault::LoseMembers(n) => {
                write!(f, "lose-members {} (crash, members file lost)", name(*n))
            }
            Fault::Unfreeze(n) => write!(f, "unfreeze (typed on {})", name(*n)),
        }
    }
}

/// What a seed stands for: a cluster, faults at times, a heal, and a settling run.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub seed: u64,
    pub config: SimConfig,
    /// Sorted by time.
    pub faults: Vec<(Duration, Fault)>,
    /// When everything is healed, restarted, resumed, undrained and unfrozen.
    pub heal_at: Duration,
    /// How long to run after the heal (at least 3 s, and past any preemption).
    pub settle: Duration,
}

/// Faults are drawn in this window of simulated time.
const FAULT_WINDOW_S: Range<f64> = 20.0..60.0;
const FAULTS: Range<usize> = 20..41;

impl Scenario {
    /// The scenario of `seed`, for a core broken by `fault` (normally `None`).
    pub fn random(seed: u64, fault: Option<InjectedFault>) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut config = match rng.random_range(0..10) {
            0..5 => SimConfig::members(3),
            5..8 => SimConfig::members(5),
            _ => SimConfig::members_and_witness(2),
        };
        config.seed = seed;
        config.fault = fault;
        let size = config.size();
        if rng.random_bool(0.5) {
            // Distinct priorities, so stagger and preemption matter.
            for p in config.priorities.iter_mut() {
                *p = rng.random_range(1..4) * 50;
            }
        }
        config.preempt = rng
            .random_bool(0.5)
            .then(|| Duration::from_millis(rng.random_range(1_000..6_000)));
        config.persist_delay = match rng.random_range(0..4) {
            0 => Duration::ZERO..Duration::from_micros(1),
            1 | 2 => Duration::from_micros(100)..Duration::from_millis(3),
            _ => Duration::from_millis(1)..Duration::from_millis(40),
        };
        config.delay = random_delay(&mut rng);
        // A quarter of the clusters are mid-way through a rolling `[timing]` edit: some
        // nodes on the fast preset, the rest on the defaults. Drawn from a stream of its
        // own, so every other choice of a seed stays what it was.
        // Only on networks the fast preset is meant for (a quiet LAN): with a 150 ms
        // lease, one-way delays of tens of milliseconds cost liveness on their own.
        let mut timing_rng = SmallRng::seed_from_u64(seed ^ 0x7131_4e55_0000_0000);
        let lan = config.delay.base + config.delay.jitter <= Duration::from_millis(10);
        if timing_rng.random_bool(0.25) && lan {
            config.node_timing = some_nodes_on(super::fast_preset(), size, &mut timing_rng);
        } else if timing_rng.random_bool(0.15) {
            // Or on their way to the lean preset, on any network (it is the slower one).
            config.node_timing = some_nodes_on(super::lean_preset(), size, &mut timing_rng);
        }

        let window = rng.random_range(FAULT_WINDOW_S);
        let count = rng.random_range(FAULTS);
        let mut faults = Vec::with_capacity(count * 2);
        for _ in 0..count {
            let at = Duration::from_secs_f64(rng.random_range(0.5..window));
            let node = rng.random_range(0..size);
            let other = (node + rng.random_range(1..size)) % size;
            // How long an episode (pause, crash, cut…) lasts before its repair.
            let lasts = Duration::from_millis(match rng.random_range(0..3) {
                0 => rng.random_range(20..500),
                1 => rng.random_range(500..2_500),
                _ => rng.random_range(2_500..8_000),
            });
            let mut episode = |start: Fault, end: Option<Fault>| {
                faults.push((at, start));
                if let Some(end) = end {
                    faults.push((at + lasts, end));
                }
            };
            match rng.random_range(0..100) {
                0..10 => {
                    let mut nodes: Vec<usize> = (0..size).collect();
                    nodes.shuffle(&mut rng);
                    let split = rng.random_range(1..size);
                    let groups = vec![nodes[..split].to_vec(), nodes[split..].to_vec()];
                    episode(Fault::Partition(groups), Some(Fault::Heal));
                }
                10..16 => episode(Fault::Cut(node, other), Some(Fault::Repair(node, other))),
                16..26 => episode(
                    Fault::CutOneWay {
                        from: node,
                        to: other,
                    },
                    Some(Fault::Repair(node, other)),
                ),
                26..30 => episode(Fault::Heal, None),
                30..36 => episode(
                    Fault::Loss(rng.random_range(0.0..0.5)),
                    Some(Fault::Loss(0.0)),
                ),
                36..40 => {
                    let mut delay = random_delay(&mut rng);
                    // The fast preset's nodes stay on the quiet LAN it is meant for (the
                    // delay is not healed at the end).
                    if !config.node_timing.is_empty()
                        && delay.base + delay.jitter > Duration::from_millis(10)
                    {
                        delay = Delay::LAN;
                    }
                    episode(Fault::Delay(delay), None);
                }
                40..48 => episode(Fault::Pause(node), Some(Fault::Resume(node))),
                48..54 => episode(Fault::Suspend(node), Some(Fault::Resume(node))),
                54..64 => episode(Fault::Crash(node), Some(Fault::Restart(node))),
                64..68 => episode(Fault::Stop(node), Some(Fault::Restart(node))),
                68..76 => episode(Fault::Drain(node), Some(Fault::Undrain(node))),
                76..80 => {
                    let priority = rng.random_range(1..4) * 50;
                    episode(Fault::SetPriority(node, priority), None);
                }
                80..90 => {
                    let to = rng.random_bool(0.6).then_some(other);
                    episode(Fault::Transfer { at: node, to }, None);
                }
                90..94 => episode(Fault::Freeze(node), Some(Fault::Unfreeze(other))),
                _ => {
                    // Two faults at once: the primary's neighbourhood is where bugs live.
                    episode(Fault::Pause(node), Some(Fault::Resume(node)));
                    faults.push((
                        at,
                        Fault::CutOneWay {
                            from: other,
                            to: node,
                        },
                    ));
                }
            }
        }
        // 30 % of the clusters change their membership on the way: spares started, added,
        // promoted; members removed or replaced; `peers` files edited (a rolling edit);
        // a node's disk lost. Drawn from a stream of its own, so every other choice of a
        // seed stays what it was.
        let mut member_rng = SmallRng::seed_from_u64(seed ^ 0x6d65_6d62_0000_0000);
        let membership = member_rng.random_bool(0.3);
        if membership {
            let spares = member_rng.random_range(1..3);
            config = config.with_spares(spares);
            let all: Vec<usize> = (0..config.size()).collect();
            // A new node's file lists the whole cluster it is meant for.
            for spare in size..config.size() {
                config.lists.push((spare, all.clone()));
            }
            let mut wiped = false;
            for _ in 0..member_rng.random_range(2..7) {
                let at = Duration::from_secs_f64(member_rng.random_range(0.5..window));
                let later = at + Duration::from_millis(member_rng.random_range(200..3_000));
                let node = member_rng.random_range(0..config.size());
                let spare = member_rng.random_range(size..config.size());
                match member_rng.random_range(0..100) {
                    0..30 => {
                        faults.push((at, Fault::Restart(spare)));
                        let voter = member_rng.random_bool(0.8);
                        faults.push((later, Fault::Member(MemberOp::Add { node: spare, voter })));
                        if !voter {
                            faults.push((
                                later + Duration::from_secs(1),
                                Fault::Member(MemberOp::Promote(spare)),
                            ));
                        }
                    }
                    30..50 => faults.push((at, Fault::Member(MemberOp::Remove(node)))),
                    50..65 => {
                        let old = member_rng.random_range(0..size);
                        faults.push((at, Fault::Restart(spare)));
                        faults.push((later, Fault::Member(MemberOp::Replace { old, new: spare })));
                    }
                    65..85 => {
                        // A rolling `peers` edit, applied by a restart.
                        faults.push((at, Fault::Relist(node, all.clone())));
                        faults.push((at, Fault::Stop(node)));
                        faults.push((later, Fault::Restart(node)));
                    }
                    85..93 => {
                        // The old members against the last of them with the new nodes:
                        // where majorities of different lists part ways.
                        let groups =
                            vec![(0..size - 1).collect(), (size - 1..config.size()).collect()];
                        faults.push((at, Fault::Partition(groups)));
                        faults.push((later + Duration::from_secs(2), Fault::Heal));
                    }
                    _ if !wiped => {
                        wiped = true;
                        // Which part of the disk is lost: drawn from a stream of its own,
                        // so the rest of the membership plan stays what it was.
                        let mut disk_rng = SmallRng::seed_from_u64(seed ^ 0x6469_736b);
                        faults.push((
                            at,
                            match disk_rng.random_range(0..3) {
                                0 => Fault::Wipe(node),
                                1 => Fault::LoseVote(node),
                                _ => Fault::LoseMembers(node),
                            },
                        ));
                        faults.push((later, Fault::Restart(node)));
                    }
                    _ => {}
                }
            }
        }
        // 15 % of the others grow a fleet (issue 15): four spares added as non-voters
        // one at a time, which talk to the voters only; then a non-voter crashes and
        // comes back, and perhaps one is promoted and so starts talking to everyone.
        // Drawn from a stream of its own, so every other choice of a seed stays.
        let mut fleet_rng = SmallRng::seed_from_u64(seed ^ 0x666c_6565_7400_0000);
        if !membership && fleet_rng.random_bool(0.15) {
            config = config.with_spares(4);
            let all: Vec<usize> = (0..config.size()).collect();
            for spare in size..config.size() {
                config.lists.push((spare, all.clone()));
            }
            let mut at = Duration::from_secs_f64(fleet_rng.random_range(0.5..2.0));
            for spare in size..config.size() {
                faults.push((at, Fault::Restart(spare)));
                let add = at + Duration::from_millis(fleet_rng.random_range(300..1_500));
                faults.push((
                    add,
                    Fault::Member(MemberOp::Add {
                        node: spare,
                        voter: false,
                    }),
                ));
                at = add + Duration::from_millis(fleet_rng.random_range(200..1_500));
            }
            let spare = fleet_rng.random_range(size..config.size());
            let crash = at + Duration::from_secs_f64(fleet_rng.random_range(0.5..window.max(1.0)));
            faults.push((crash, Fault::Crash(spare)));
            faults.push((
                crash + Duration::from_millis(fleet_rng.random_range(500..4_000)),
                Fault::Restart(spare),
            ));
            if fleet_rng.random_bool(0.5) {
                let promoted = fleet_rng.random_range(size..config.size());
                let when =
                    at + Duration::from_secs_f64(fleet_rng.random_range(0.5..window.max(1.0)));
                faults.push((when, Fault::Member(MemberOp::Promote(promoted))));
            }
        }
        faults.sort_by_key(|f| f.0);
        let end_of_faults = faults.last().map_or(Duration::ZERO, |f| f.0);
        let heal_at = end_of_faults + Duration::from_millis(rng.random_range(0..1_000));
        let settle = Duration::from_secs(3)
            .mul_f64(config.slowness())
            .max(config.preempt.unwrap_or_default() + Duration::from_secs(2));
        Self {
            seed,
            config,
            faults,
            heal_at,
            settle,
        }
    }
}

fn random_delay(rng: &mut SmallRng) -> Delay {
    match rng.random_range(0..4) {
        0 => Delay::LAN,
        1 | 2 => Delay {
            base: Duration::from_micros(rng.random_range(100..5_000)),
            jitter: Duration::from_micros(rng.random_range(0..5_000)),
        },
        _ => Delay {
            base: Duration::from_millis(rng.random_range(1..40)),
            jitter: Duration::from_millis(rng.random_range(0..60)),
        },
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "seed {}: {}", self.seed, self.config)?;
        writeln!(f, "faults ({}):", self.faults.len())?;
        for (at, fault) in &self.faults {
            writeln!(f, "  {:>9.3}s  {fault}", at.as_secs_f64())?;
        }
        writeln!(
            f,
            "  {:>9.3}s  heal everything (links, loss, processes, drains, freeze)",
            self.heal_at.as_secs_f64()
        )?;
        write!(
            f,
            "  {:>9.3}s  end (a primary must hold from {:.3}s on)",
            (self.heal_at + self.settle).as_secs_f64(),
            (self.heal_at + super::LIVENESS_BOUND).as_secs_f64()
        )
    }
}

/// At least one node of `size` and not all, drawn from `rng`, each on `preset`: a
/// rolling `[timing]` edit part-way through.
fn some_nodes_on(
    preset: super::Timing,
    size: usize,
    rng: &mut SmallRng,
) -> Vec<(usize, super::Timing)> {
    let count = rng.random_range(1..size);
    let mut nodes: Vec<usize> = (0..size).collect();
    nodes.shuffle(rng);
    nodes[..count].iter().map(|&n| (n, preset)).collect()
}
