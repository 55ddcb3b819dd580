//! What the benchmarks in `tests/benches/` share: whether this is a bench run, the trial
//! count, and the Markdown table rows docs/benchmarks.md is made of.

use std::time::Duration;

use quorate_agent::config::Timing;

use crate::{TestCluster, wait_until};

/// Whether the process runs as a benchmark: `cargo bench` passes `--bench`; `cargo test`
/// builds benches too, and they must then do nothing.
pub fn is_bench_run() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// A `[timing]` table to append to each agent's config (what `extra_all` takes).
pub fn timing_table(t: &Timing) -> String {
    format!(
        "[timing]\nheartbeat_interval = \"{}\"\nlease_heartbeat_interval = \"{}\"\nlease = \"{}\"\nelection_timeout = \"{}\"\n",
        t.heartbeat_interval, t.lease_heartbeat_interval, t.lease, t.election_timeout
    )
}

/// The operator guide's fast preset, as the agent's config defines it: failover in
/// about 0.2 s on a quiet LAN.
pub fn fast_preset() -> String {
    timing_table(&Timing::fast_preset())
}

/// The operator guide's lean preset: three times the default intervals, so about a third
/// of the packets, for failover in about 1.5 s.
pub fn lean_preset() -> String {
    timing_table(&Timing::lean_preset())
}

/// `QUORATE_BENCH_TIMING`: `fast`, `lean`, or unset for the defaults: the name to print
/// and the timing.
pub fn timing() -> (&'static str, Timing) {
    match std::env::var("QUORATE_BENCH_TIMING").as_deref() {
        Ok("fast") => ("fast preset", Timing::fast_preset()),
        Ok("lean") => ("lean preset", Timing::lean_preset()),
        _ => ("default timing", Timing::default()),
    }
}

/// `QUORATE_BENCH_TRIALS`, or `default`.
pub fn trials(default: usize) -> usize {
    std::env::var("QUORATE_BENCH_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The `p`-quantile (0.0–1.0) of sorted samples, nearest rank; zero when empty.
pub fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// The table header matching [`row`].
pub fn header() {
    println!("| what | trials | p50 ms | p99 ms | max ms | min ms | failed |");
    println!("|---|---|---|---|---|---|---|");
}

/// Prints one Markdown table row: count, p50, p99, max and min in milliseconds (with
/// `decimals` places), and the failed trials.
pub fn row(name: &str, mut xs: Vec<Duration>, failures: usize, decimals: usize) {
    xs.sort();
    let ms = |d: Duration| format!("{:.*}", decimals, d.as_secs_f64() * 1000.0);
    println!(
        "| {name} | {} | {} | {} | {} | {} | {failures} |",
        xs.len(),
        ms(pct(&xs, 0.5)),
        ms(pct(&xs, 0.99)),
        ms(xs.last().copied().unwrap_or_default()),
        ms(xs.first().copied().unwrap_or_default()),
    );
}

/// `nodes` agents whose first node's app check hangs (a command that never exits, killed
/// at its 300 ms timeout), once that node reports it `hung`; `None` if it never does
/// within `settle`.
pub fn hung_app_cluster(nodes: usize, settle: Duration) -> Option<TestCluster> {
    let c = TestCluster::builder(nodes)
        .extra(
            0,
            "[app]\ncheck = \"exec:sleep 100000\"\ninterval = \"200ms\"\ntimeout = \"300ms\"\n",
        )
        .start();
    let hung = wait_until(settle, || {
        c.member(0, "n1")
            .is_some_and(|m| m["checks"]["app"] == "hung")
    });
    hung.then_some(c)
}
