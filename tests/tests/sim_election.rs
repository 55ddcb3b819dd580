//! The election under the deterministic simulation (`quorate_tests::sim`): thousands of
//! random fault scenarios, the self-test against a deliberately broken core, a replay
//! entry point, and named scenarios for the situations DESIGN.md promises about.
//!
//! - `many_seeds`: `QUORATE_SIM_SEEDS` seeds (default [`CI_SEEDS`]) from
//!   `QUORATE_SIM_FIRST_SEED` (default 0), on `QUORATE_SIM_THREADS` threads (default:
//!   the machine's parallelism).
//! - `replay`: `QUORATE_SIM_SEED=N` runs seed N with a full trace (a no-op without it).
//! - `broken_core_is_caught_*`: the simulation finds a violation in a core with a safety
//!   rule switched off, within the CI seed count.

use std::env;
use std::time::Duration;

use quorate_agent::core::InjectedFault;
use quorate_tests::Stopwatch;
use quorate_tests::sim::{
    self, Delay, Failure, Fault, Invariant, LIVENESS_BOUND, Process, Sim, SimConfig, TraceLevel,
};

/// Seeds `many_seeds` runs in CI. Measured on the 2-core CI machine kind, dev profile
/// (our agent and test crates at opt-level 1), two threads: this whole file (2 500
/// seeds, and the broken-core self-tests, which stop at their first failure) takes
/// about 66 s.
/// A release build runs about 180 seeds/s (100 000 seeds in about 9 minutes).
const CI_SEEDS: u64 = 2_500;

fn env_u64(name: &str) -> Option<u64> {
    env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|e| panic!("{name}={v:?} is not a number: {e}"))
    })
}

fn threads() -> usize {
    env_u64("QUORATE_SIM_THREADS")
        .map(|n| n as usize)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn many_seeds() {
    let count = env_u64("QUORATE_SIM_SEEDS").unwrap_or(CI_SEEDS);
    let first = env_u64("QUORATE_SIM_FIRST_SEED").unwrap_or(0);
    let clock = Stopwatch::start();
    let batch = sim::run_seeds(first..first + count, threads(), None, false);
    let elapsed = clock.elapsed();
    println!(
        "{} seeds in {:.1}s ({:.0} seeds/s, {:.0} s simulated, {} steps)",
        batch.seeds,
        elapsed.as_secs_f64(),
        batch.seeds as f64 / elapsed.as_secs_f64(),
        batch.simulated.as_secs_f64(),
        batch.steps,
    );
    if let Some(first) = batch.failures.first() {
        let seeds: Vec<String> = batch
            .failures
            .iter()
            .map(|f| format!("{:?} ({})", f.seed, f.violation.invariant))
            .collect();
        panic!(
            "{} of {} seeds failed: {}\n\nthe first:\n{first}",
            batch.failures.len(),
            batch.seeds,
            seeds.join(", ")
        );
    }
}

#[test]
fn replay() {
    let Some(seed) = env_u64("QUORATE_SIM_SEED") else {
        return;
    };
    let fault = env::var("QUORATE_SIM_FAULT").ok().map(|name| {
        sim::parse_fault(&name).unwrap_or_else(|| panic!("unknown QUORATE_SIM_FAULT {name:?}"))
    });
    let trace = TraceLevel::from_env_or(TraceLevel::Events);
    match sim::run_seed(seed, fault, trace) {
        Ok(run) => println!(
            "seed {seed} passed: {} steps, {:.1}s simulated",
            run.steps,
            run.simulated.as_secs_f64()
        ),
        Err(failure) => panic!("{failure}"),
    }
}

/// Runs CI's seed count against a core broken by `fault`: some seed must fail, on one of
/// the safety invariants.
fn assert_caught(fault: InjectedFault) {
    assert_caught_by(
        fault,
        &[
            Invariant::OneLeaseHolder,
            Invariant::OneWinnerPerTerm,
            Invariant::OneTaskHolder,
        ],
    );
}

/// Runs CI's seed count against a core broken by `fault`: some seed must fail, on one of
/// `by`.
fn assert_caught_by(fault: InjectedFault, by: &[Invariant]) {
    let batch = sim::run_seeds(0..CI_SEEDS, threads(), Some(fault), true);
    let Some(failure) = batch.failures.first() else {
        panic!(
            "{} seeds ran against a core with {fault:?} and none failed",
            batch.seeds
        );
    };
    println!(
        "{fault:?} caught after about {} seeds: {}",
        batch.seeds, failure.violation
    );
    assert!(
        by.contains(&failure.violation.invariant),
        "{by:?} should catch it, not: {failure}"
    );
}

#[test]
fn broken_core_is_caught_ignore_lease_promise() {
    assert_caught(InjectedFault::IgnoreLeasePromise);
}

#[test]
fn broken_core_is_caught_lease_never_expires() {
    assert_caught(InjectedFault::LeaseNeverExpires);
}

#[test]
fn broken_core_is_caught_ignore_timing() {
    assert_caught(InjectedFault::IgnoreTiming);
}

#[test]
fn broken_core_is_caught_own_list_majority() {
    assert_caught(InjectedFault::OwnListMajority);
}

/// Voters that move a task at once, with no promise to its old holder (and grant from
/// their first moment after a restart): two nodes claim it at once.
#[test]
fn broken_core_is_caught_task_promise_ignored() {
    assert_caught(InjectedFault::TaskPromiseIgnored);
}

/// Issue 11: a node back from a pause or a cut was "eligible for `preempt_delay`" at once,
/// and the role went straight back to it.
#[test]
fn broken_core_is_caught_keep_eligible_through_silence() {
    assert_caught_by(
        InjectedFault::KeepEligibleThroughSilence,
        &[Invariant::PreemptAfterDelay],
    );
}

/// A rolling `[timing]` edit caught half-way: n1 on the defaults (lease 300 ms, and the
/// highest priority, so it campaigns first), n2 and n3 on the fast preset (their promise
/// is a 200 ms election timeout). Acknowledgements whose promise ends before the lease
/// must not count, or the cut-off n1 holds its lease past the moment n2 and n3 may
/// elect: the overlap reproduced from outside with nftables.
fn mixed_timing(seed: u64, fault: Option<InjectedFault>) -> SimConfig {
    let mut config = SimConfig::members(3).seed(seed);
    config.priorities = vec![200, 100, 100];
    config.node_timing = vec![(1, sim::fast_preset()), (2, sim::fast_preset())];
    config.fault = fault;
    config
}

/// Elects, then asks for a handover to n1 (the fast-preset nodes time out first, so the
/// first winner is one of them), then cuts whoever is primary off from the others.
fn hand_to_n1_then_cut_the_primary(sim: &mut Sim) -> Result<usize, Failure> {
    let first = sim.await_primary(secs(5))?;
    // Long enough for everyone to know n1 alive and eligible.
    sim.run_for(secs(2))?;
    if first != 0 {
        sim.transfer(first, Some(0))?;
    }
    sim.run_for(secs(1))?;
    let p = sim.await_primary(secs(3))?;
    let rest = others(sim, p);
    sim.partition(&[&[p], &rest])?;
    Ok(p)
}

#[test]
fn mixed_timing_never_overlaps_when_the_primary_is_cut_off() -> Result<(), Failure> {
    for seed in 0..20 {
        let mut sim = Sim::new(mixed_timing(seed, None));
        let p = hand_to_n1_then_cut_the_primary(&mut sim)?;
        assert_ne!(
            p, 0,
            "seed {seed}: n1's lease outlasts its voters' promises"
        );
        await_successor(&mut sim, p, secs(3))?;
        sim.heal()?;
        sim.run_for(secs(2))?;
    }
    Ok(())
}

#[test]
fn mixed_timing_overlap_is_caught_when_the_core_ignores_timing() {
    let caught = (0..20).any(|seed| {
        let mut sim = Sim::new(mixed_timing(seed, Some(InjectedFault::IgnoreTiming)));
        let result = hand_to_n1_then_cut_the_primary(&mut sim).and_then(|_| sim.run_for(secs(3)));
        matches!(result, Err(f) if f.violation.invariant == Invariant::OneLeaseHolder)
    });
    assert!(
        caught,
        "no seed showed two lease holders with timing ignored"
    );
}

/// A suspended VM resumes with a lease that looks young on its stopped clock: without
/// the CLOCK_BOOTTIME guard it would hold alongside the new primary.
#[test]
fn suspend_without_the_jump_guard_is_caught() {
    let mut config = SimConfig::members(3).seed(11);
    config.jump_guard = false;
    let mut sim = Sim::new(config);
    let result = (|| {
        let p = sim.await_primary(secs(3))?;
        sim.run_for(secs(1))?;
        sim.suspend(p)?;
        sim.run_for(secs(3))?;
        sim.resume(p)?;
        sim.run_for(secs(1))
    })();
    let failure = result.expect_err("the old primary holds alongside the new one");
    assert_eq!(failure.violation.invariant, Invariant::OneLeaseHolder);
}

// ---- named scenarios ----------------------------------------------------------------

/// Runs until a node other than `old` holds the lease (and only it); fails the test if
/// none does within `within`.
fn await_successor(sim: &mut Sim, old: usize, within: Duration) -> Result<usize, Failure> {
    let since = sim.now();
    let found = sim.run_until_true(within, |sim| sim.primary().is_some_and(|p| p != old))?;
    assert!(
        found,
        "no successor to {} within {within:?} of {since:?}",
        sim::node_name(old)
    );
    Ok(sim.primary().expect("checked"))
}

/// The nodes other than `node`.
fn others(sim: &Sim, node: usize) -> Vec<usize> {
    (0..sim.size()).filter(|&n| n != node).collect()
}

/// A winner of a term after `since` other than `not`.
fn new_winner(sim: &Sim, since: Duration, not: usize) -> Option<usize> {
    sim.wins()
        .iter()
        .find(|w| w.at > since && w.node != not)
        .map(|w| w.node)
}

#[test]
fn partitioned_primary_loses_its_lease_before_the_majority_elects() -> Result<(), Failure> {
    for seed in 0..20 {
        let mut sim = Sim::new(SimConfig::members(3).seed(seed));
        let old = sim.await_primary(secs(3))?;
        sim.run_for(secs(2))?;
        let cut_at = sim.now();
        let rest = others(&sim, old);
        sim.partition(&[&[old], &rest])?;
        // Step until the majority side elects; the old primary must have lost its lease
        // strictly before.
        let mut lost_at = None;
        let elected = sim.run_until_true(secs(3), |sim| {
            if lost_at.is_none() && sim.lease_of(old).is_none() {
                lost_at = Some(sim.now());
            }
            new_winner(sim, cut_at, old).is_some()
        })?;
        assert!(elected, "seed {seed}: the majority elects");
        let elected_at = sim.now();
        let lost_at = lost_at.expect("lost before the election");
        assert!(
            lost_at < elected_at,
            "seed {seed}: lease lost at {lost_at:?}, new primary at {elected_at:?}"
        );
        assert!(
            elected_at - cut_at < secs(2),
            "seed {seed}: failover took too long"
        );
        let new = await_successor(&mut sim, old, secs(1))?;
        // Heal: the old primary rejoins as a secondary; the new one is not disturbed.
        let term = sim.node(new).map(|n| n.term());
        sim.heal()?;
        sim.run_for(secs(3))?;
        assert_eq!(sim.primary(), Some(new), "seed {seed}");
        assert_eq!(sim.node(new).map(|n| n.term()), term, "seed {seed}");
    }
    Ok(())
}

#[test]
fn one_way_cut_from_the_primary() -> Result<(), Failure> {
    for seed in 0..20 {
        // The primary's datagrams reach nobody; it still hears everyone.
        let mut sim = Sim::new(SimConfig::members(3).seed(seed));
        let old = sim.await_primary(secs(3))?;
        sim.run_for(secs(1))?;
        let cut_at = sim.now();
        for other in others(&sim, old) {
            sim.cut_one_way(old, other)?;
        }
        await_successor(&mut sim, old, secs(2))?;
        assert!(sim.now() - cut_at < secs(2));
        sim.run_for(secs(3))?;
        sim.heal()?;
        sim.run_for(secs(3))?;
        sim.expect_one_holder()?;
    }
    Ok(())
}

#[test]
fn one_way_cut_to_the_primary() -> Result<(), Failure> {
    for seed in 0..20 {
        // The primary is heard by everyone but hears nobody: no acks, so no lease; the
        // others must notice it is no longer primary and elect one of theirs.
        let mut sim = Sim::new(SimConfig::members(3).seed(seed));
        let old = sim.await_primary(secs(3))?;
        sim.run_for(secs(1))?;
        for other in others(&sim, old) {
            sim.cut_one_way(other, old)?;
        }
        await_successor(&mut sim, old, secs(3))?;
        sim.run_for(secs(5))?;
        sim.heal()?;
        sim.run_for(secs(3))?;
        sim.expect_one_holder()?;
    }
    Ok(())
}

#[test]
fn sigstopped_primary_never_holds_alongside_its_successor() -> Result<(), Failure> {
    for seed in 0..20 {
        let mut sim = Sim::new(SimConfig::members(3).seed(seed));
        let old = sim.await_primary(secs(3))?;
        sim.run_for(secs(1))?;
        let paused_at = sim.now();
        sim.pause(old)?;
        assert_eq!(sim.process(old), Process::Paused);
        let new = await_successor(&mut sim, old, secs(2))?;
        sim.run_until(paused_at + secs(3))?;
        // SIGCONT: the invariant is checked at every step from here on, before and
        // after each datagram that waited in its socket buffer.
        sim.resume(old)?;
        assert!(sim.lease_of(old).is_none(), "seed {seed}");
        sim.run_for(secs(3))?;
        assert_eq!(sim.primary(), Some(new), "seed {seed}: not deposed");
    }
    Ok(())
}

#[test]
fn suspended_primary_drops_its_lease_on_the_clock_jump() -> Result<(), Failure> {
    for seed in 0..20 {
        let mut sim = Sim::new(SimConfig::members(3).seed(seed));
        let old = sim.await_primary(secs(3))?;
        sim.run_for(ms(700))?;
        let before = sim.local_now(old);
        sim.suspend(old)?;
        let new = await_successor(&mut sim, old, secs(2))?;
        sim.run_for(secs(3))?;
        assert!(
            sim.local_now(old) == before,
            "a suspended node's clock stands still"
        );
        sim.resume(old)?;
        assert!(sim.lease_of(old).is_none(), "seed {seed}");
        sim.run_for(secs(3))?;
        assert_eq!(sim.primary(), Some(new), "seed {seed}: not deposed");
    }
    Ok(())
}

#[test]
fn crashed_primary_is_replaced_and_rejoins_as_secondary() -> Result<(), Failure> {
    for seed in 0..20 {
        let mut sim = Sim::new(SimConfig::members(3).seed(seed));
        let old = sim.await_primary(secs(3))?;
        sim.run_for(secs(1))?;
        sim.crash(old)?;
        let new = await_successor(&mut sim, old, secs(2))?;
        let term = sim.node(new).map(|n| n.term());
        sim.run_for(secs(2))?;
        sim.restart(old)?;
        sim.run_for(secs(4))?;
        assert_eq!(sim.primary(), Some(new), "seed {seed}");
        assert_eq!(sim.node(new).map(|n| n.term()), term, "seed {seed}");
    }
    Ok(())
}

#[test]
fn voter_that_just_acked_restarts_at_once() -> Result<(), Failure> {
    for seed in 0..40 {
        // n_old's lease rests on one voter's acks (the other voter is cut off and
        // campaigning). That voter crashes right after acknowledging and is back at
        // once: it must not vote for the campaigner while the lease it backed runs.
        let mut sim = Sim::new(SimConfig::members(3).seed(seed));
        let primary = sim.await_primary(secs(3))?;
        let rest = others(&sim, primary);
        let (voter, campaigner) = (rest[0], rest[1]);
        sim.cut(primary, campaigner)?;
        let acked = sim.run_until_true(secs(1), |sim| {
            sim.lease_of(primary).is_some()
                && sim
                    .node(voter)
                    .is_some_and(|n| n.primary() == sim.node(primary).map(|p| p.id()))
        })?;
        assert!(acked);
        // Let a fresh ack leave, then crash and restart straight away.
        let step = sim.now();
        sim.run_until(step + ms(30))?;
        sim.crash(voter)?;
        sim.restart(voter)?;
        sim.run_for(secs(5))?;
        sim.heal()?;
        sim.run_for(secs(3))?;
        sim.expect_one_holder()?;
    }
    Ok(())
}

#[test]
fn cold_start_of_every_node_elects_one_primary() -> Result<(), Failure> {
    for seed in 0..30 {
        for size in [3, 5] {
            let mut sim = Sim::new(SimConfig::members(size).seed(seed));
            sim.await_primary(LIVENESS_BOUND)?;
            sim.run_for(secs(3))?;
            sim.expect_one_holder()?;
            assert_eq!(sim.wins().len(), 1, "seed {seed}: one election, no churn");
        }
        // Started one by one, in reverse order, 100 ms apart.
        let mut sim = Sim::new_down(SimConfig::members(3).seed(seed));
        for node in (0..3).rev() {
            sim.restart(node)?;
            sim.run_for(ms(100))?;
        }
        sim.await_primary(LIVENESS_BOUND)?;
        sim.run_for(secs(3))?;
        sim.expect_one_holder()?;
    }
    Ok(())
}

#[test]
fn two_members_and_a_witness() -> Result<(), Failure> {
    let witness = 2;
    for seed in 0..20 {
        for victim in [0, 1] {
            let mut sim = Sim::new(SimConfig::members_and_witness(2).seed(seed));
            let first = sim.await_primary(secs(3))?;
            assert_ne!(first, witness);
            sim.run_for(secs(1))?;
            // Kill either member: the other one is primary.
            sim.crash(victim)?;
            let next = await_successor(&mut sim, victim, secs(2))?;
            assert_eq!(next, 1 - victim, "seed {seed}");
            sim.restart(victim)?;
            sim.run_for(secs(3))?;
            assert_eq!(sim.primary(), Some(next), "seed {seed}");
        }
        // Kill the witness: the primary stays.
        let mut sim = Sim::new(SimConfig::members_and_witness(2).seed(seed));
        let primary = sim.await_primary(secs(3))?;
        let term = sim.node(primary).map(|n| n.term());
        sim.crash(witness)?;
        sim.run_for(secs(3))?;
        assert_eq!(sim.primary(), Some(primary), "seed {seed}");
        assert_eq!(sim.node(primary).map(|n| n.term()), term);
        // The witness never leads (checked at every step), and takes no lease here.
        sim.restart(witness)?;
        sim.run_for(secs(2))?;
        assert!(sim.wins().iter().all(|w| w.node != witness));
    }
    Ok(())
}

#[test]
fn restarted_node_does_not_depose_a_healthy_primary() -> Result<(), Failure> {
    for seed in 0..20 {
        for size in [3, 5] {
            let mut sim = Sim::new(SimConfig::members(size).seed(seed));
            let primary = sim.await_primary(secs(3))?;
            sim.run_for(secs(1))?;
            let wins = sim.wins().len();
            for node in others(&sim, primary) {
                // Down long enough to be declared dead, then back.
                sim.crash(node)?;
                sim.run_for(secs(4))?;
                sim.restart(node)?;
                sim.run_for(secs(3))?;
                // And a quick bounce, inside one election timeout.
                sim.crash(node)?;
                sim.restart(node)?;
                sim.run_for(secs(2))?;
                assert_eq!(sim.primary(), Some(primary), "seed {seed}");
                assert_eq!(sim.wins().len(), wins, "seed {seed}: nobody won a term");
            }
        }
    }
    Ok(())
}

#[test]
fn graceful_stop_and_transfer_hand_over() -> Result<(), Failure> {
    for seed in 0..20 {
        let mut sim = Sim::new(SimConfig::members(3).seed(seed));
        let first = sim.await_primary(secs(3))?;
        sim.run_for(secs(1))?;
        sim.transfer(first, None)?;
        let second = await_successor(&mut sim, first, ms(500))?;
        sim.run_for(secs(1))?;
        sim.stop(second)?;
        let third = await_successor(&mut sim, second, ms(500))?;
        sim.run_for(secs(1))?;
        assert_eq!(sim.process(second), Process::Down);
        sim.restart(second)?;
        sim.run_for(secs(2))?;
        assert_eq!(sim.primary(), Some(third), "seed {seed}");
    }
    Ok(())
}

#[test]
fn lossy_jittery_network_keeps_one_primary() -> Result<(), Failure> {
    // 5 % loss and ±20 ms jitter for a minute: no failover (DESIGN.md's targets).
    for seed in 0..5 {
        let mut sim = Sim::new(SimConfig::members(3).seed(seed));
        let primary = sim.await_primary(secs(3))?;
        sim.loss(0.05)?;
        sim.delay(Delay {
            base: ms(1),
            jitter: ms(20),
        })?;
        sim.run_for(secs(60))?;
        assert_eq!(sim.primary(), Some(primary), "seed {seed}");
        assert_eq!(sim.wins().len(), 1, "seed {seed}: no failover");
    }
    Ok(())
}

#[test]
fn scenario_is_a_function_of_its_seed() {
    let a = sim::Scenario::random(42, None).to_string();
    let b = sim::Scenario::random(42, None).to_string();
    assert_eq!(a, b);
    assert_ne!(a, sim::Scenario::random(43, None).to_string());
    let faults = sim::Scenario::random(42, None).faults;
    assert!(
        faults.windows(2).all(|w| w[0].0 <= w[1].0),
        "sorted by time"
    );
    assert!(faults.iter().any(|f| !matches!(f.1, Fault::Heal)));
}

/// Found by seed 11679 of `many_seeds` (a cold start, 21–40 ms links, 1–40 ms disk):
/// n2 is a pre-candidate for term 2 when n3's vote request for term 1 (n2's term)
/// arrives. n2 grants it — a promise to n3 — but stays a pre-candidate; n1's pre-vote
/// grant then makes it campaign, and n1 elects it while n3 holds the lease that n2's
/// vote backs. Both hold at 0.70 s. Ignored until the core ends a pre-candidacy when it
/// grants a vote (or never campaigns while it has promised another node).
#[test]
fn precandidate_that_grants_a_vote_does_not_campaign() -> Result<(), Failure> {
    for seed in [1083, 3282] {
        let mut config = SimConfig::members(3).seed(seed);
        config.delay = Delay {
            base: ms(20),
            jitter: ms(20),
        };
        config.persist_delay = ms(1)..ms(40);
        let mut sim = Sim::new(config);
        sim.run_for(secs(2))?;
    }
    Ok(())
}

/// Found by seed 21087 (and, as a livelock, seed 182 before the sim's priority fix):
/// a primary that wins while a higher-priority node has been eligible for
/// `preempt_delay` preempts in the same tick as its win, before any heartbeat has named
/// it primary of the new term. The target ignores the `TimeoutNow` (it does not know
/// the sender as primary of that term), the sender refuses to campaign for an election
/// timeout, and every voter has just promised it its vote: about half a second with no
/// primary, repeated whenever the next winner is not the preferred node (with five
/// nodes and split votes, for seconds). Here: n3 (priority 150) hands over to n2, which
/// preempts back at once.
#[test]
fn preemption_right_after_a_win_hands_over_quickly() -> Result<(), Failure> {
    for seed in 0..10 {
        let mut config = SimConfig::members(3).seed(seed);
        config.priorities = vec![100, 100, 150];
        config.preempt = Some(secs(1));
        let mut sim = Sim::new(config);
        let preferred = sim.run_until_true(secs(5), |sim| sim.primary() == Some(2))?;
        assert!(
            preferred,
            "seed {seed}: the highest priority ends up primary"
        );
        sim.run_for(secs(2))?;
        sim.transfer(2, Some(1))?;
        let gap = longest_gap_without_primary(&mut sim, secs(3))?;
        assert!(gap < ms(200), "seed {seed}: {gap:?} without a primary");
    }
    Ok(())
}

/// A priority raised by a reload (no restart: the same incarnation) reaches the peers
/// with the node's state, and with `preempt` the primary hands over to it once it has
/// been eligible for `preempt_delay`; lowered again, the role goes back the same way.
#[test]
fn a_priority_reloaded_live_preempts_without_a_restart() -> Result<(), Failure> {
    for seed in 0..10 {
        let mut config = SimConfig::members(3).seed(seed);
        config.priorities = vec![150, 100, 100];
        config.preempt = Some(secs(1));
        let mut sim = Sim::new(config);
        assert!(
            sim.run_until_true(secs(5), |sim| sim.primary() == Some(0))?,
            "seed {seed}: n1 first"
        );
        sim.set_priority(2, 200)?;
        assert!(
            sim.run_until_true(secs(5), |sim| sim.primary() == Some(2))?,
            "seed {seed}: the reloaded priority preempts"
        );
        sim.set_priority(2, 50)?;
        sim.run_for(secs(3))?;
        // Preemption moves the role to n1 (150) again, the highest now.
        assert_eq!(sim.primary(), Some(0), "seed {seed}");
    }
    Ok(())
}

/// Found by seed 37519 (a liveness failure after the heal, 37–94 ms one-way delay, up
/// to 40 ms disk writes): a new primary's lease runs from its campaign's start, and the
/// campaign took two disk writes and a round trip, so the lease lapses before the first
/// heartbeat's acknowledgement can return — and the core then steps down from the role
/// (not just the lease), so the late acknowledgements are dropped. Every term is won
/// and lost within ~100 ms, forever, as long as 2 × RTT + 2 × fsync > lease.
#[test]
fn primary_survives_a_slow_first_acknowledgement() -> Result<(), Failure> {
    let mut config = SimConfig::members(3).seed(1);
    config.delay = Delay {
        base: ms(60),
        jitter: ms(20),
    };
    config.persist_delay = ms(30)..ms(40);
    let mut sim = Sim::new(config);
    sim.await_primary(secs(3))?;
    sim.run_for(secs(3))?;
    sim.expect_one_holder()?;
    Ok(())
}

/// Runs for `within` and returns the longest stretch in which no node held the lease.
fn longest_gap_without_primary(sim: &mut Sim, within: Duration) -> Result<Duration, Failure> {
    let mut gap_since: Option<Duration> = None;
    let mut longest = Duration::ZERO;
    sim.run_until_true(within, |sim| {
        match (sim.primary(), gap_since) {
            (None, None) => gap_since = Some(sim.now()),
            (Some(_), Some(since)) => {
                longest = longest.max(sim.now() - since);
                gap_since = None;
            }
            _ => {}
        }
        false
    })?;
    if let Some(since) = gap_since {
        longest = longest.max(sim.now() - since);
    }
    Ok(longest)
}

/// Issue 11 §2, the measured flap: n1 (the highest priority) is primary, is paused (or cut
/// off) for 3 s, and comes back. The role must not go back to it before `preempt_delay`
/// has passed since its return (the preemption invariant checks every handover), and it
/// does go back after that.
#[test]
fn a_returning_primary_waits_the_whole_preempt_delay() -> Result<(), Failure> {
    for seed in 0..10 {
        for cut in [false, true] {
            let mut config = SimConfig::members(3).seed(seed);
            config.priorities = vec![200, 100, 100];
            config.preempt = Some(secs(2));
            let mut sim = Sim::new(config);
            assert_eq!(sim.await_primary(secs(3))?, 0, "seed {seed}: n1 first");
            sim.run_for(secs(3))?;
            if cut {
                sim.partition(&[&[0], &[1, 2]])?;
            } else {
                sim.pause(0)?;
            }
            let new = await_successor(&mut sim, 0, secs(3))?;
            sim.run_for(secs(2))?;
            let back = sim.now();
            if cut {
                sim.heal()?;
            } else {
                sim.resume(0)?;
            }
            let early = sim.run_until_true(ms(1_900), |sim| sim.primary() == Some(0))?;
            assert!(!early, "seed {seed}: back to n1 at {:?}", sim.now() - back);
            let returned = sim.run_until_true(secs(3), |sim| sim.primary() == Some(0))?;
            assert!(
                returned,
                "seed {seed}: {} keeps the role",
                sim::node_name(new)
            );
        }
    }
    Ok(())
}

/// Issue 11 §3: every node of a cluster starts within 0–50 ms of the others (a power
/// loss, a full restart; in any order), priorities distinct, links from a LAN to tens of
/// milliseconds, disks from instant to 40 ms: the first term is won by the
/// highest-priority node, every seed — by rule (deference, held embargo requests), not by
/// the stagger's timing.
#[test]
fn cold_start_elects_the_highest_priority_first() -> Result<(), Failure> {
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};
    for seed in 0..300 {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
        let mut config = match seed % 3 {
            0 => SimConfig::members(3),
            1 => SimConfig::members(5),
            _ => SimConfig::members_and_witness(2),
        }
        .seed(seed);
        let members = config.members;
        let mut priorities: Vec<u32> = (1..=members as u32).map(|p| p * 10).collect();
        priorities.shuffle(&mut rng);
        config.priorities[..members].copy_from_slice(&priorities);
        config.preempt = Some(secs(30));
        config.delay = match rng.random_range(0..3) {
            0 => Delay::LAN,
            1 => Delay {
                base: Duration::from_micros(rng.random_range(100..5_000)),
                jitter: Duration::from_micros(rng.random_range(0..5_000)),
            },
            _ => Delay {
                base: ms(rng.random_range(1..40)),
                jitter: ms(rng.random_range(0..60)),
            },
        };
        config.persist_delay = match rng.random_range(0..3) {
            0 => Duration::ZERO..Duration::from_micros(1),
            1 => Duration::from_micros(100)..ms(3),
            _ => ms(1)..ms(40),
        };
        let top = (0..members)
            .max_by_key(|&n| config.priorities[n])
            .expect("members");
        let mut sim = Sim::new_down(config);
        let mut order: Vec<usize> = (0..sim.size()).collect();
        order.shuffle(&mut rng);
        for node in order {
            sim.restart(node)?;
            sim.run_for(Duration::from_micros(rng.random_range(0..17_000)))?;
        }
        sim.await_primary(secs(3))?;
        let first = sim.wins()[0];
        assert_eq!(
            first.node,
            top,
            "seed {seed}: {} won term {} first, not {} (the highest priority)",
            sim::node_name(first.node),
            first.term,
            sim::node_name(top)
        );
        sim.run_for(secs(2))?;
        assert_eq!(sim.wins().len(), 1, "seed {seed}: one election");
    }
    Ok(())
}

/// Seeds that once broke an invariant, kept as regression tests (each found by a long
/// `many_seeds` run and fixed in the core).
#[test]
fn seeds_that_once_failed() {
    // 10571: a voter lost its state_dir, restarted, took a peer's term from a heartbeat
    // before it learned the member set, and so did not count as without a vote record:
    // it voted in a term it had voted in before the loss (two winners of term 2).
    // 3363: a suspended node (its monotonic clock stopped for 6.8 s, while a peer was cut
    // off from it) came back, heard that peer again at once and, its clock not having seen
    // the silence, preempted in its favour 0.9 s later: "seen alive without a break"
    // now restarts on every clock jump.
    for seed in [10571, 3363] {
        if let Err(failure) = sim::run_seed(seed, None, TraceLevel::Quiet) {
            panic!("seed {seed} fails again:\n{failure}");
        }
    }
}

/// The random fleets (3–5 voters and four non-voters, 15 % of the seeds without other
/// membership changes) catch a non-voter that heartbeats another.
#[test]
fn broken_core_is_caught_talk_to_everyone() {
    assert_caught_by(InjectedFault::TalkToEveryone, &[Invariant::FleetHeartbeats]);
}
