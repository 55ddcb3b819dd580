//! Agent memory and CPU in an idle cluster (issues 2 and 3: RSS ≤ 12 MiB, CPU ≤ 0.5 %).
//!
//! ```text
//! cargo build --release --workspace --bins
//! cargo bench -p quorate-tests --bench resources           # 3 and 5 nodes, 60 s each
//! QUORATE_BENCH_SECONDS=300 cargo bench -p quorate-tests --bench resources
//! ```
//!
//! Reads each agent's VmRSS and utime+stime from /proc after the cluster has converged
//! and elected, over the measuring window.

use std::time::Duration;

use quorate_tests::{Stopwatch, TestCluster};

fn proc_cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn proc_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn measure(n: usize, secs: u64) {
    let c = TestCluster::builder(n).start();
    let _ = c.wait_converged(Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(3));
    let pids: Vec<u32> = (0..n).map(|i| c.pid(i)).collect();
    let before: Vec<u64> = pids
        .iter()
        .map(|p| proc_cpu_ticks(*p).unwrap_or(0))
        .collect();
    let clock = Stopwatch::start();
    std::thread::sleep(Duration::from_secs(secs));
    let wall = clock.elapsed().as_secs_f64();
    let ticks_per_sec = 100.0; // USER_HZ on Linux
    for (i, pid) in pids.iter().enumerate() {
        let cpu =
            (proc_cpu_ticks(*pid).unwrap_or(0) - before[i]) as f64 / ticks_per_sec / wall * 100.0;
        let rss = proc_rss_kib(*pid).unwrap_or(0) as f64 / 1024.0;
        println!("| {n} nodes | {} | {rss:.1} | {cpu:.2} |", c.id(i));
    }
}

fn main() {
    if !quorate_tests::bench::is_bench_run() {
        return;
    }
    let secs: u64 = std::env::var("QUORATE_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    println!("| cluster | node | RSS MiB | CPU % of one core |");
    println!("|---|---|---|---|");
    measure(3, secs);
    measure(5, secs);
}
