//! The duress scenarios: a cluster of real agents in the [`Lab`] under lossy, jittery
//! links, pauses, CPU starvation, a rolling restart and a minority partition, each in a
//! short form (CI, `tests/tests/duress.rs`) and a long one (`tests/benches/duress.rs`).
//!
//! Owns: what each scenario does, what it must find (its `failures`), and the table row
//! it reports. Each scenario builds a fresh lab and drops it (so one scenario's faults
//! never leak into the next) and the caller runs them one after another: together they
//! would fight over the machine's two cores and blur each other's numbers.
//!
//! It must never assert a duration (timing goals are printed; the one bound is how long
//! a starved node may take to recover, a liveness bound far above the expected figure),
//! and never weaken what a scenario must find to make it pass.

use std::fmt::Write as _;
use std::time::Duration;

use super::{Lab, Links, Observer, Record};
use crate::{Stopwatch, wait_until};

/// How long each scenario runs.
#[derive(Debug, Clone, Copy)]
pub struct Forms {
    /// 5 % loss and 20 ± 20 ms delay on every link.
    pub loss: Duration,
    /// SIGSTOPs of 200 ms of the primary, one every 10 s.
    pub pauses: usize,
    /// One node held to 5 % of a core.
    pub starve: Duration,
    /// A minority cut off, before the heal.
    pub partition: Duration,
}

impl Forms {
    /// CI's forms: about 4.5 minutes together, 2 of them the loss scenario.
    pub fn short() -> Forms {
        Forms {
            loss: Duration::from_secs(120),
            pauses: 4,
            starve: Duration::from_secs(20),
            partition: Duration::from_secs(10),
        }
    }

    /// The benchmark's forms: the loss scenario for `loss`, the others long enough to
    /// say something (a minute of starvation, 30 pauses, a minute of partition).
    pub fn long(loss: Duration) -> Forms {
        Forms {
            loss,
            pauses: 30,
            starve: Duration::from_secs(60),
            partition: Duration::from_secs(60),
        }
    }
}

/// The scenarios by name, in the order they run.
pub const SCENARIOS: [&str; 5] = ["loss", "pause", "starve", "rolling", "partition"];

/// What one scenario measured and what it found wrong.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub name: String,
    pub wall: Duration,
    pub polls: usize,
    pub term_changes: usize,
    pub failovers: usize,
    pub dead: usize,
    pub suspect: usize,
    pub overlaps: usize,
    /// The longest stretch without any node answering `/primary` 200.
    pub longest_gap: Option<Duration>,
    pub notes: String,
    pub failures: Vec<String>,
}

impl Outcome {
    fn new(name: &str) -> Outcome {
        Outcome {
            name: name.to_owned(),
            ..Outcome::default()
        }
    }

    fn fail(mut self, why: impl Into<String>) -> Outcome {
        self.failures.push(why.into());
        self
    }

    /// Counts what every scenario reports from the record and the logs.
    fn count(&mut self, lab: &Lab, rec: &Record, logs_before: &[(usize, usize)]) {
        self.polls = rec.polls();
        self.term_changes = rec.term_changes();
        self.failovers = rec.failovers();
        self.overlaps = usize::from(rec.overlap().is_some());
        if let Some(o) = rec.overlap() {
            self.failures.push(format!("two primaries at once: {o}"));
        }
        self.longest_gap = rec.gaps().first().map(|g| g.len());
        // The logs see every transition; the views only those that last 100 ms.
        let (dead, suspect) = log_marks(lab);
        self.dead = dead.saturating_sub(logs_before.iter().map(|x| x.0).sum());
        self.suspect = suspect.saturating_sub(logs_before.iter().map(|x| x.1).sum());
    }

    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Per node, how many `→ dead` and `→ suspect` lines its log has.
fn log_counts(lab: &Lab) -> Vec<(usize, usize)> {
    (0..lab.nodes())
        .map(|i| (lab.log_count(i, "→ dead"), lab.log_count(i, "→ suspect")))
        .collect()
}

fn log_marks(lab: &Lab) -> (usize, usize) {
    log_counts(lab)
        .iter()
        .fold((0, 0), |(d, s), (a, b)| (d + a, s + b))
}

fn ms(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1000.0)
}

/// The table's header (Markdown).
pub fn header() -> String {
    "| scenario | run s | /primary polls | term changes | failovers | dead marks | suspect marks | two primaries | longest gap ms | notes | result |\n\
     |---|---|---|---|---|---|---|---|---|---|---|"
        .to_owned()
}

/// One row of the table.
pub fn row(o: &Outcome) -> String {
    format!(
        "| {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        o.name,
        o.wall.as_secs_f64(),
        o.polls,
        o.term_changes,
        o.failovers,
        o.dead,
        o.suspect,
        o.overlaps,
        o.longest_gap.map_or("-".into(), ms),
        o.notes,
        if o.passed() { "pass" } else { "FAIL" },
    )
}

/// Runs scenario `name` on `n` nodes.
pub fn run(name: &str, n: usize, forms: &Forms) -> Outcome {
    let clock = Stopwatch::start();
    let mut o = match Lab::start(n, "") {
        Err(e) => Outcome::new(name).fail(format!("lab: {e}")),
        Ok(mut lab) => {
            let o = match name {
                "loss" => loss(&mut lab, forms.loss),
                "pause" => pause(&mut lab, forms.pauses),
                "starve" => starve(&mut lab, forms.starve),
                "rolling" => rolling(&mut lab),
                "partition" => partition(&mut lab, forms.partition),
                other => Outcome::new(other).fail("no such scenario"),
            };
            if !o.passed() {
                print_logs(&lab);
            }
            o
        }
    };
    o.wall = clock.elapsed();
    o
}

/// The last lines of every node's log, for a failed scenario.
fn print_logs(lab: &Lab) {
    let mut out = String::new();
    for i in 0..lab.nodes() {
        let log = lab.cluster().log(i);
        let lines: Vec<&str> = log.lines().collect();
        let _ = writeln!(out, "===== {} (last 80 lines) =====", lab.id(i));
        for l in &lines[lines.len().saturating_sub(80)..] {
            let _ = writeln!(out, "{l}");
        }
    }
    eprintln!("{out}");
}

fn sleep(d: Duration) {
    std::thread::sleep(d);
}

/// 5 % loss on every link (each direction) and 20 ± 20 ms of delay: no term change, no
/// change of primary, no `dead` mark, never two primaries.
fn loss(lab: &mut Lab, run: Duration) -> Outcome {
    let mut o = Outcome::new(&format!("5 % loss, 20 ± 20 ms, {} s", run.as_secs()));
    let p = lab.primary();
    let before = log_counts(lab);
    let obs = Observer::start(&lab.http_addrs());
    sleep(Duration::from_secs(1));
    if let Err(e) = lab
        .loss(Links::All, 5)
        .and_then(|()| lab.delay(Duration::from_millis(20), Duration::from_millis(20)))
    {
        return o.fail(e);
    }
    sleep(run);
    // What the agents themselves measure over the delayed links.
    let rtts: Vec<f64> = lab
        .cluster()
        .try_cluster(0)
        .map(|c| {
            crate::cluster::nodes(&c)
                .iter()
                .filter_map(|m| m["rtt_ms"].as_f64())
                .filter(|r| *r > 0.0)
                .collect()
        })
        .unwrap_or_default();
    let undone = lab
        .delay(Duration::ZERO, Duration::ZERO)
        .and_then(|()| lab.loss(Links::All, 0));
    sleep(Duration::from_secs(1));
    let rec = obs.finish();
    o.count(lab, &rec, &before);
    if let Err(e) = undone {
        o.failures.push(e);
    }
    let d = lab.delay_stats();
    o.notes = format!(
        "primary's non-200 answers: {}; {} packets delayed, mean {:.1} ms, max {:.1} ms, {} lost in the queue; n1's RTTs {:?} ms",
        p.map_or(0, |p| rec.not_primary(p).len()),
        d.packets,
        d.mean_ms(),
        d.max_delay_us as f64 / 1000.0,
        d.kernel_dropped,
        rtts.iter().map(|r| r.round() as u64).collect::<Vec<_>>(),
    );
    if d.packets == 0 {
        o.failures.push("the delay queues saw no packet".into());
    }
    if o.term_changes != 0 {
        o.failures.push(format!("terms changed: {:?}", rec.terms()));
    }
    if o.failovers != 0 {
        o.failures
            .push(format!("the primary moved: {:?}", rec.primaries()));
    }
    let seen = rec.marks("dead", None);
    if o.dead != 0 || !seen.is_empty() {
        o.failures.push(format!(
            "false dead marks: {} in the logs, {} seen in /cluster",
            o.dead,
            seen.len()
        ));
    }
    o
}

/// The primary SIGSTOPped for 200 ms every 10 s: no failover, no term change.
fn pause(lab: &mut Lab, pauses: usize) -> Outcome {
    let mut o = Outcome::new(&format!("primary SIGSTOP 200 ms every 10 s, ×{pauses}"));
    let Some(p) = lab.primary() else {
        return o.fail("no primary");
    };
    let before = log_counts(lab);
    let obs = Observer::start(&lab.http_addrs());
    for k in 0..pauses {
        sleep(if k == 0 {
            Duration::from_secs(2)
        } else {
            Duration::from_millis(9_800)
        });
        lab.pause(p);
        sleep(Duration::from_millis(200));
        lab.resume(p);
    }
    sleep(Duration::from_secs(3));
    let rec = obs.finish();
    o.count(lab, &rec, &before);
    o.notes = format!(
        "{} paused; its /primary answers not 200: {}",
        lab.id(p),
        rec.not_primary(p).len()
    );
    if o.term_changes != 0 || o.failovers != 0 {
        o.failures.push(format!(
            "failover: terms {:?}, primaries {:?}",
            rec.terms(),
            rec.primaries()
        ));
    }
    o
}

/// Every member ready, seeing every member alive, and exactly one primary.
fn recovered(lab: &Lab) -> bool {
    let c = lab.cluster();
    (0..lab.nodes()).all(|i| c.is_ready(i) && c.sees_all_alive(i)) && lab.primary().is_some()
}

/// The primary held to 5 % of a core: never two primaries; it may lose the role; once
/// given its CPU back the cluster recovers by itself (within 60 s; the time is printed).
fn starve(lab: &mut Lab, hold: Duration) -> Outcome {
    let mut o = Outcome::new(&format!(
        "primary starved to 5 % of a core, {} s",
        hold.as_secs()
    ));
    let Some(p) = lab.primary() else {
        return o.fail("no primary");
    };
    let before = log_counts(lab);
    let obs = Observer::start(&lab.http_addrs());
    sleep(Duration::from_secs(2));
    if let Err(e) = lab.starve(p, 5) {
        drop(obs.finish());
        return o.fail(e);
    }
    sleep(hold);
    let (throttled, throttled_for) = lab.unstarve(p);
    let clock = Stopwatch::start();
    let back = wait_until(Duration::from_secs(60), || recovered(lab));
    let recovery = clock.elapsed();
    sleep(Duration::from_secs(1));
    let rec = obs.finish();
    o.count(lab, &rec, &before);
    let lost = rec.primaries().iter().any(|(node, _)| *node != p);
    o.notes = format!(
        "{} throttled {throttled}× ({:.1} s); its non-200 answers: {}; {}; recovered {:.1} s after release",
        lab.id(p),
        throttled_for.as_secs_f64(),
        rec.not_primary(p).len(),
        if lost {
            "it lost the role"
        } else {
            "it kept the role"
        },
        recovery.as_secs_f64(),
    );
    if throttled == 0 {
        o.failures
            .push("the kernel never throttled the starved agent".into());
    }
    if !back {
        o.failures.push(
            "not recovered within 60 s of the release (ready, all alive, one primary)".into(),
        );
    }
    o
}

/// Every node SIGTERMed and started again in turn, each back and converged before the
/// next: never two primaries, and a primary again after every step; the handover gaps
/// are printed.
fn rolling(lab: &mut Lab) -> Outcome {
    let mut o = Outcome::new("rolling restart of every node");
    let before = log_counts(lab);
    let obs = Observer::start(&lab.http_addrs());
    sleep(Duration::from_secs(1));
    let mut failures = Vec::new();
    for i in 0..lab.nodes() {
        lab.stop(i);
        lab.restart(i);
        if !wait_until(Duration::from_secs(60), || recovered(lab)) {
            failures.push(format!(
                "after restarting {}: not converged with one primary within 60 s",
                lab.id(i)
            ));
        }
        sleep(Duration::from_secs(1));
    }
    let rec = obs.finish();
    o.count(lab, &rec, &before);
    o.failures.extend(failures);
    let gaps = rec.handover_gaps();
    o.notes = format!(
        "{} handovers, gaps ms: {:?}",
        gaps.len(),
        gaps.iter().map(|g| ms(*g)).collect::<Vec<_>>()
    );
    o
}

/// Two non-primary nodes of five cut off from the rest, then healed: the majority's
/// primary answers 200 throughout, in the same term, and no other node does.
fn partition(lab: &mut Lab, hold: Duration) -> Outcome {
    let mut o = Outcome::new(&format!(
        "minority partition {} s, then heal",
        hold.as_secs()
    ));
    let Some(p) = lab.primary() else {
        return o.fail("no primary");
    };
    let others: Vec<usize> = (0..lab.nodes()).filter(|&i| i != p).collect();
    let minority: Vec<usize> = others[others.len() - (lab.nodes() - 1) / 2..].to_vec();
    let majority: Vec<usize> = (0..lab.nodes()).filter(|i| !minority.contains(i)).collect();
    let before = log_counts(lab);
    let obs = Observer::start(&lab.http_addrs());
    sleep(Duration::from_secs(1));
    let cut = lab.partition(&[&majority, &minority]);
    sleep(hold);
    let healed = lab.heal();
    let back = wait_until(Duration::from_secs(60), || recovered(lab));
    sleep(Duration::from_secs(2));
    let rec = obs.finish();
    o.count(lab, &rec, &before);
    if let Err(e) = cut.and(healed) {
        o.failures.push(e);
    }
    let term0 = rec
        .answers
        .iter()
        .find(|a| a.node == p)
        .and_then(|a| a.term);
    let refused = rec.not_primary(p);
    let http_errors = refused.iter().filter(|s| s.is_none()).count();
    let names = |v: &[usize]| v.iter().map(|&i| lab.id(i)).collect::<Vec<_>>().join(",");
    let minority_terms: std::collections::BTreeSet<u64> = rec
        .views
        .iter()
        .filter(|v| minority.contains(&v.node))
        .map(|v| v.term)
        .collect();
    o.notes = format!(
        "{} vs {}; primary {}; minority's terms {:?}",
        names(&majority),
        names(&minority),
        lab.id(p),
        minority_terms
    );
    if refused.len() > http_errors {
        o.failures.push(format!(
            "the majority's primary {} answered /primary with other than 200 {} times",
            lab.id(p),
            refused.len() - http_errors
        ));
    }
    if http_errors > 0 {
        o.failures.push(format!(
            "the majority's primary {} did not answer /primary {http_errors} times",
            lab.id(p)
        ));
    }
    if rec
        .primaries()
        .iter()
        .any(|&(node, term)| node != p || term != term0)
    {
        o.failures
            .push(format!("the primary changed: {:?}", rec.primaries()));
    }
    let majority_terms: std::collections::BTreeSet<u64> = rec
        .views
        .iter()
        .filter(|v| majority.contains(&v.node))
        .map(|v| v.term)
        .collect();
    if majority_terms.iter().any(|t| Some(*t) != term0) {
        o.failures.push(format!(
            "the majority's term moved from {term0:?}: {majority_terms:?}"
        ));
    }
    if !back {
        o.failures
            .push("not converged within 60 s of the heal (ready, all alive, one primary)".into());
    }
    o
}
